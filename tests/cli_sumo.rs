//! `greenwave sumo export` writes the SUMO files of a shipped network (without SUMO:
//! `--no-netconvert`) and reports a malformed input with its file, line and field.

use std::path::Path;
use std::process::Command;

fn out_dir(name: &str) -> std::path::PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn export_writes_every_file_and_notes_what_it_leaves_out() {
    let net = Path::new(env!("CARGO_MANIFEST_DIR")).join("intersections/networks/single.toml");
    let out = out_dir("sumo_export_single");
    let o = Command::new(env!("CARGO_BIN_EXE_greenwave"))
        .args(["sumo", "export", "--no-netconvert", "--network"])
        .arg(&net)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("greenwave runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for ext in ["nod", "edg", "con", "tll", "tls.add", "rou"] {
        let f = out.join(format!("single.{ext}.xml"));
        assert!(f.is_file(), "{} missing; {stdout}", f.display());
    }
    assert!(
        stdout.contains("pedestrian signal groups are not exported"),
        "{stdout}"
    );
}

#[test]
fn export_of_a_broken_network_gives_located_errors() {
    let out = out_dir("sumo_export_broken");
    std::fs::create_dir_all(&out).unwrap();
    let bad = out.join("bad.toml");
    std::fs::write(
        &bad,
        "kind = \"network\"\nversion = 1\nname = \"x\"\nintersections = []\n\
         links = [{id = \"a\", from = \"P\", to = \"Q\", lanes = 0, speed_limit_kmh = 50}]\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_greenwave"))
        .args(["sumo", "export", "--no-netconvert", "--network"])
        .arg(&bad)
        .arg("--out")
        .arg(out.join("x"))
        .output()
        .expect("greenwave runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bad.toml:5: links[0].lanes"), "{stderr}");
    assert!(
        !out.join("x").exists(),
        "nothing written for a broken input"
    );
}
