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

fn greenwave(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_greenwave"))
        .args(args)
        .output()
        .expect("greenwave runs");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// SUMO files in, a checked network out, SUMO's detector output through `plan --counts`: the
/// whole loop on the committed netgenerate grid (no SUMO needed).
#[test]
fn import_then_counts_then_plan() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("sumo/tests/data");
    let out = out_dir("sumo_import_grid3");
    let os = |p: &Path| p.as_os_str().to_owned();
    let (code, stdout, stderr) = greenwave(&[
        "sumo".as_ref(),
        "import".as_ref(),
        &os(&data.join("grid3.net.xml")),
        "--routes".as_ref(),
        &os(&data.join("grid3.rou.xml")),
        "--detectors".as_ref(),
        &os(&data.join("grid3.det.add.xml")),
        "--out".as_ref(),
        &os(&out),
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("45 intersections (9 signalised, of 9 traffic-light junctions)"),
        "{stdout}"
    );
    let report = std::fs::read_to_string(out.join("import-report.txt")).expect("report");
    assert!(
        report.contains("program made valid for Greenwave"),
        "{report}"
    );
    let net = out.join("grid3.toml");
    let (code, stdout, stderr) = greenwave(&[
        "check".as_ref(),
        &os(&net),
        &os(&out.join("grid3.demand.toml")),
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let counts = out.join("counts.json");
    let (code, stdout, stderr) = greenwave(&[
        "sumo".as_ref(),
        "counts".as_ref(),
        &os(&data.join("grid3.e1.out.xml")),
        "--network".as_ref(),
        &os(&net),
        "--out".as_ref(),
        &os(&counts),
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("6 detector reports (110 vehicles counted)"),
        "{stdout}"
    );
    let plans = out.join("plans.toml");
    let (code, stdout, stderr) = greenwave(&[
        "plan".as_ref(),
        "--network".as_ref(),
        &os(&net),
        "--counts".as_ref(),
        &os(&counts),
        "--out".as_ref(),
        &os(&plans),
        "--seeds".as_ref(),
        "1".as_ref(),
        "--horizon".as_ref(),
        "600".as_ref(),
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(plans.is_file());
}

#[test]
fn import_of_a_broken_net_gives_a_located_error_and_writes_nothing() {
    let out = out_dir("sumo_import_broken");
    std::fs::create_dir_all(&out).unwrap();
    let bad = out.join("bad.net.xml");
    std::fs::write(
        &bad,
        "<net>\n  <edge id=\"a\" from=\"x\" to=\"y\">\n  </edge>\n</net>\n",
    )
    .unwrap();
    let (code, stdout, stderr) = greenwave(&[
        "sumo".as_ref(),
        "import".as_ref(),
        bad.as_os_str(),
        "--out".as_ref(),
        out.join("x").as_os_str(),
    ]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert_eq!(
        stderr.trim(),
        format!("error: {}:2: edge: edge \"a\" has no <lane>", bad.display())
    );
    assert!(!out.join("x").exists());
}
