//! `greenwave sumo export` writes the SUMO files of a shipped network (without SUMO:
//! `--no-netconvert`) and reports a malformed input with its file, line and field; import,
//! counts and plan chain up. With the real SUMO (`.ci/run` installs it; skipped elsewhere
//! without it): the simulators agree on networks made by `netgenerate`, and the closed loop
//! through SUMO meets issue 5's marks where docs/benchmarks.md says it does.

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

#[test]
fn export_actuated_writes_actuated_programs_and_the_loops_they_name() {
    let net = Path::new(env!("CARGO_MANIFEST_DIR")).join("intersections/networks/single.toml");
    let out = out_dir("sumo_export_single_actuated");
    let (code, stdout, stderr) = greenwave(&[
        "sumo".as_ref(),
        "export".as_ref(),
        "--no-netconvert".as_ref(),
        "--network".as_ref(),
        net.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--actuated".as_ref(),
        "--passage".as_ref(),
        "2.5".as_ref(),
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let add = std::fs::read_to_string(out.join("single.tls.add.xml")).expect("tls.add.xml");
    assert!(add.contains("type=\"actuated\""), "{add}");
    assert!(
        add.contains("<param key=\"max-gap\" value=\"2.5\"/>"),
        "{add}"
    );
    // Without a value the factor is 2: single's first stage (30 s green) runs up to 60 s.
    assert!(add.contains("maxDur=\"60\""), "{add}");
    let det = std::fs::read_to_string(out.join("single.det.add.xml")).expect("det.add.xml");
    assert!(add.contains("value=\"C.W_stop_0\"") && det.contains("id=\"C.W_stop_0\""));
    // The net's own program stays static.
    let tll = std::fs::read_to_string(out.join("single.tll.xml")).expect("tll.xml");
    assert!(tll.contains("type=\"static\"") && !tll.contains("minDur"));
    // No stage skipping unless asked for; with `--skip-stages` each of single's three stage
    // greens lists its transitions to the two others.
    assert!(!add.contains("next="), "{add}");
    let skip = out_dir("sumo_export_single_skip");
    let (code, stdout, stderr) = greenwave(&[
        "sumo".as_ref(),
        "export".as_ref(),
        "--no-netconvert".as_ref(),
        "--network".as_ref(),
        net.as_os_str(),
        "--out".as_ref(),
        skip.as_os_str(),
        "--actuated".as_ref(),
        "--skip-stages".as_ref(),
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let add = std::fs::read_to_string(skip.join("single.tls.add.xml")).expect("tls.add.xml");
    let lists = add
        .lines()
        .filter(|l| l.contains("minDur") && l.contains("next=\""))
        .filter(|l| {
            let n = l
                .split("next=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            n.split(' ').count() == 2
        })
        .count();
    assert_eq!(lists, 3, "{add}");
}

#[test]
fn export_actuated_with_a_factor_outside_1_to_3_is_an_error_naming_the_flag() {
    let net = Path::new(env!("CARGO_MANIFEST_DIR")).join("intersections/networks/single.toml");
    let out = out_dir("sumo_export_bad_factor");
    for (args, want) in [
        (
            vec!["--actuated", "5"],
            "invalid value '5' for '--actuated [<FACTOR>]': 5 is outside 1 to 3",
        ),
        (
            vec!["--actuated", "0.9"],
            "invalid value '0.9' for '--actuated [<FACTOR>]': 0.9 is outside 1 to 3",
        ),
        (
            vec!["--actuated", "2", "--passage", "20"],
            "invalid value '20' for '--passage <SECONDS>': 20 is outside 1 to 10",
        ),
        (vec!["--passage", "2"], "--actuated"),
        (vec!["--skip-stages"], "--actuated"),
    ] {
        let mut a: Vec<&std::ffi::OsStr> = vec![
            "sumo".as_ref(),
            "export".as_ref(),
            "--no-netconvert".as_ref(),
            "--network".as_ref(),
            net.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ];
        a.extend(args.iter().map(std::ffi::OsStr::new));
        let (code, stdout, stderr) = greenwave(&a);
        assert_eq!(code, Some(2), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!out.exists(), "{args:?}: nothing written");
    }
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

#[path = "../sumo/tests/support/live.rs"]
mod live;

/// Run `tools/sumo_closed_loop.py ARGS --work WORK` with the `greenwave` binary under test;
/// its standard output, after checking that it succeeded (`what` names the run in messages).
fn closed_loop_script(what: &str, args: &[&str], work: &Path) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = Command::new("python3")
        .arg(root.join("tools/sumo_closed_loop.py"))
        .args(args)
        .arg("--work")
        .arg(work)
        .arg("--greenwave")
        .arg(env!("CARGO_BIN_EXE_greenwave"))
        .output()
        .expect("python3 runs");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// `tools/sumo_closed_loop.py` (the script of docs/benchmarks.md, "Closed loop with SUMO") on
/// one network, seed 1, with the `greenwave` binary under test and `extra` arguments: its
/// summary (the JSON object of the network), after checking that every program ran the same
/// vehicles to the end. Also the figures, for messages.
fn closed_loop(network: &str, extra: &[&str]) -> (serde_json::Value, String) {
    let work = out_dir(&format!("sumo_closed_loop_{network}"));
    let mut args = vec![
        "--networks",
        network,
        "--seeds",
        "1",
        "--jobs",
        "2",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = closed_loop_script(network, &args, &work);
    let mut v: serde_json::Value = serde_json::from_slice(&out).expect("the script's JSON");
    let s = v[0].take();
    let p = &s["programs"];
    let tl = |prog: &str| p[prog]["mean_time_loss_s"].as_f64().expect(prog);
    let done = |prog: &str| p[prog]["completed"].as_f64().expect(prog);
    for prog in [
        "default",
        "webster",
        "actuated",
        "greenwave",
        "greenwave_act",
    ] {
        assert_eq!(
            done(prog),
            done("default"),
            "{network}: {prog} completed: {p}"
        );
    }
    let figures = format!(
        "{network}: default {:.1} s, webster {:.1} s, actuated {:.1} s, greenwave {:.1} s, \
         greenwave_act {:.1} s",
        tl("default"),
        tl("webster"),
        tl("actuated"),
        tl("greenwave"),
        tl("greenwave_act")
    );
    (s, figures)
}

/// The closed loop of issue 5 in the real SUMO on district, seed 1: SUMO's loops under its
/// default program -> `greenwave sumo counts` -> `greenwave plan --counts` -> `greenwave sumo
/// export --plan` -> SUMO. District is where the loop meets issue 5's marks
/// (docs/benchmarks.md): time loss at least 25% below SUMO's default program, fixed and
/// actuated, and at least 10% below SUMO's Webster (`tlsCycleAdaptation.py`) actuated. Every
/// figure is SUMO's (tripinfo `timeLoss`); SUMO and Greenwave are deterministic for a seed.
/// Skipped without SUMO, except under CI, which installs it.
#[test]
fn the_closed_loop_in_sumo_meets_the_marks_on_district() {
    if live::for_test("the_closed_loop_in_sumo_..._district").is_none() {
        return;
    }
    let (s, figures) = closed_loop("district", &[]);
    assert_eq!(s["marks"]["default_25pct"], true, "{figures}");
    assert_eq!(s["marks_greenwave_act"]["default_25pct"], true, "{figures}");
    assert_eq!(s["marks_greenwave_act"]["webster_10pct"], true, "{figures}");
}

/// The same on grid4 with the crossings exported (`--crossings`: every program, SUMO's too,
/// serves the same pedestrian crossings), where Greenwave's plans run actuated meet all three
/// marks: at least 25% below SUMO's default program, 10% below its Webster, and no more than
/// 5% above its actuated program (here below it); fixed, 10% below Webster.
#[test]
fn the_closed_loop_in_sumo_meets_every_mark_on_grid4_with_crossings() {
    if live::for_test("the_closed_loop_in_sumo_..._grid4").is_none() {
        return;
    }
    let (s, figures) = closed_loop("grid4", &["--crossings"]);
    assert_eq!(s["marks"]["webster_10pct"], true, "{figures}");
    let act = &s["marks_greenwave_act"];
    assert_eq!(act["default_25pct"], true, "{figures}");
    assert_eq!(act["webster_10pct"], true, "{figures}");
    assert_eq!(act["actuated_within_5pct"], true, "{figures}");
}

/// Issue 5's agreement marks on networks made by SUMO's `netgenerate` (docs/benchmarks.md,
/// "Networks made by SUMO's netgenerate"): `tools/sumo_closed_loop.py --generate-only` makes
/// the 4x4 grid, the spider and the random network with `randomTrips.py` demand and imports
/// them with this `greenwave sumo import`; then, as the `vs_sumo` bench's `--agree` does (the
/// same code), seeds 1-3 of the same vehicles run in both simulators on the imported plans.
/// Throughput within 5%, mean delay within 15% of SUMO's time loss.
#[test]
fn the_simulators_agree_on_networks_made_by_netgenerate() {
    let Some(bins) = live::for_test("the_simulators_agree_on_networks_made_by_netgenerate") else {
        return;
    };
    let work = out_dir("sumo_netgenerate");
    let names = ["ng-grid", "ng-spider", "ng-rand"];
    let list = names.join(",");
    closed_loop_script(
        "netgenerate",
        &["--networks", &list, "--generate-only"],
        &work,
    );
    let mut missed = Vec::new();
    for name in names {
        let dir = work.join("generated").join(name).join("imported");
        let net = intersections::load::load_network(&dir.join(format!("{name}.toml")))
            .unwrap_or_else(|e| panic!("{e}"));
        let demand =
            intersections::load::load_demand_for(&dir.join(format!("{name}.demand.toml")), &net)
                .unwrap_or_else(|e| panic!("{e}"));
        let a = live::agree(
            &work.join("agree").join(name),
            &net,
            &demand,
            demand.duration(),
            3,
            &simulator::SimConfig::default(),
            false,
            &bins,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        eprintln!("{name}: {a:?}");
        if !(a.throughput_ok() && a.delay_ok()) {
            missed.push(format!(
                "{name}: completed {:+.1}%, delay {:.1} s against SUMO's {:.1} s ({:+.1}%)",
                a.throughput_diff_pct(),
                a.delay_s.0,
                a.delay_s.1,
                a.delay_diff_pct()
            ));
        }
    }
    assert!(missed.is_empty(), "outside the marks: {missed:?}");
}
