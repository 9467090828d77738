//! The cabinet binary never crash-loops on bad configuration: it reports located errors and
//! runs on the last good configuration, or with none waits (signals flashing) and retries.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn config(net: &Path, data: &Path, extra: &str) -> String {
    format!(
        "region = \"t\"\nintersection = \"C\"\nnetwork = \"{}\"\ndata_dir = \"{}\"\n{extra}[broker]\nhost = \"127.0.0.1\"\nport = 1\n[centre]\nkey_id = \"centre-1\"\npublic_key = \"iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=\"\n",
        net.display(),
        data.display()
    )
}

#[test]
fn bad_config_runs_on_the_last_good_one() {
    let dir = std::env::temp_dir().join(format!("gw-binary-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let net = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks/single.toml");
    let cfg = dir.join("cabinet.toml");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_controller"))
            .args([
                "--config",
                cfg.to_str().unwrap(),
                "--duration",
                "200",
                "--speed",
                "100",
            ])
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    // A good configuration runs, and is kept as the last good one.
    std::fs::write(&cfg, config(&net, &dir.join("data"), "")).unwrap();
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(dir.join("cabinet.toml.last-good/cabinet.toml").exists());
    // A corrupt one: the error is located, and the cabinet runs on the last good one.
    std::fs::write(&cfg, config(&net, &dir.join("data"), "speed_limit = 3\n")).unwrap();
    let out = run();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("cabinet.toml:5: speed_limit: unknown field"),
        "{log}"
    );
    assert!(
        log.contains("running on the last good configuration"),
        "{log}"
    );
    // With no last good copy either, it does not exit: it waits and retries.
    std::fs::remove_dir_all(dir.join("cabinet.toml.last-good")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_controller"))
        .args(["--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the controller exited on a bad configuration"
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
