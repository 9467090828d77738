//! `greenwave plan` and `greenwave bench control` end to end: a shipped network re-planned out
//! of the box, a plan file that `check` accepts and `simulate --plan` runs, and the bench's
//! JSON shape.

use std::path::Path;
use std::process::Command;

fn gw(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_greenwave"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn plan_out_of_the_box_checks_and_simulates() {
    let dir = std::env::temp_dir().join(format!("gw-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("single.plans.toml");
    let o = gw(&[
        "plan",
        "--network",
        "intersections/networks/single.toml",
        "--out",
        out.to_str().unwrap(),
        "--seeds",
        "1",
        "--horizon",
        "900",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["decision"]["before"]["mean_delay_s"].is_number());
    assert!(v["decision"]["accepted"].is_boolean());
    let c = gw(&["check", out.to_str().unwrap()]);
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    let s = gw(&[
        "simulate",
        "--network",
        "intersections/networks/single.toml",
        "--plan",
        out.to_str().unwrap(),
        "--duration",
        "600",
    ]);
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let dec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("single.plans.decision.json")).unwrap(),
    )
    .unwrap();
    assert!(dec["after"]["travel_time_index"].is_number());

    // Counts from a CSV, with a located error for a bad row.
    let csv = dir.join("bad.csv");
    std::fs::write(
        &csv,
        "detector,interval_start_s,interval_end_s,count\nnope,0,900,12\n",
    )
    .unwrap();
    let e = gw(&[
        "plan",
        "--network",
        "intersections/networks/single.toml",
        "--counts",
        csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!e.status.success());
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(
        err.contains("bad.csv:2: detector: no detector \"nope\""),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_control_json_has_the_issue_fields() {
    let o = gw(&[
        "bench",
        "control",
        "--json",
        "--networks",
        "single",
        "--seeds",
        "1",
        "--duration",
        "900",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for r in rows {
        for k in [
            "network",
            "control",
            "mean_delay_s",
            "travel_time_index",
            "mean_speed_mps",
            "completed",
        ] {
            assert!(!r[k].is_null(), "{k} missing in {r}");
        }
    }
}

/// Runs a short `bench control` on `single` with `args` added, asserts that it is refused,
/// and returns what it wrote to stderr.
fn bench_control_refusing(args: &[&str]) -> String {
    let mut all = vec![
        "bench",
        "control",
        "--networks",
        "single",
        "--seeds",
        "1",
        "--duration",
        "60",
    ];
    all.extend_from_slice(args);
    let o = gw(&all);
    assert!(!o.status.success(), "{args:?} accepted");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `bench control --max-green-factor` outside the cabinets' limits is refused before any
/// run, naming the option, the value and the limits.
#[test]
fn bench_control_refuses_a_max_green_factor_outside_the_cabinets_limits() {
    for bad in ["0.5", "3.5"] {
        let err = bench_control_refusing(&["--max-green-factor", bad]);
        assert!(
            err.contains(&format!("--max-green-factor {bad} is outside 1 to 3")),
            "{err}"
        );
    }
}

/// `bench control --threshold` must be a percentage from 0 to under 100: anything else is
/// refused before any run, naming the option and the value.
#[test]
fn bench_control_refuses_a_threshold_that_is_not_a_percentage() {
    for bad in ["-1", "100", "NaN"] {
        let err = bench_control_refusing(&[&format!("--threshold={bad}")]);
        assert!(
            err.contains(&format!(
                "--threshold: {bad} is not a percentage from 0 to under 100"
            )),
            "{err}"
        );
    }
}

/// `greenwave plan` refuses a threshold that is not a percentage from 0 to under 100, as
/// `bench control` does, and a number of seeds a check cannot run, as `bench planning` does
/// (the rule of every check, `serve.toml`'s too), naming the option and the value, before
/// anything is read or simulated; `bench control` refuses no seeds at all.
#[test]
fn plan_and_the_benches_refuse_a_bad_threshold_or_seed_count() {
    let plan_refusing = |arg: &str| {
        let o = gw(&[
            "plan",
            "--network",
            "intersections/networks/single.toml",
            "--out",
            "never-written.plans.toml",
            arg,
        ]);
        assert!(!o.status.success(), "plan {arg} accepted");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    for bad in ["-50", "100", "NaN", "inf"] {
        let err = plan_refusing(&format!("--threshold={bad}"));
        assert!(
            err.contains(&format!(
                "--threshold: {bad} is not a percentage from 0 to under 100"
            )),
            "{err}"
        );
    }
    // A check's seeds: 1 to 20, the same rule as serve.toml's check_seeds.
    for (bad, want) in [
        ("0", "--seeds: 0 seeds: a check runs 1 to 20"),
        ("21", "--seeds: 21 seeds: a check runs 1 to 20"),
    ] {
        let err = plan_refusing(&format!("--seeds={bad}"));
        assert!(err.contains(want), "{err}");
    }
    for (args, want) in [
        (
            &["bench", "planning", "--sizes", "4", "--seeds=0"][..],
            "--seeds: 0 seeds: a check runs 1 to 20",
        ),
        (
            &["bench", "control", "--networks", "single", "--seeds=0"],
            "--seeds: 0 seeds: the bench runs every control on seeds 1 to N, N at least 1",
        ),
    ] {
        let o = gw(args);
        assert!(!o.status.success(), "{args:?} accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{err}");
    }
}

/// `greenwave plan --counts`: a row given twice counts once, but another count for the same
/// detector and interval, or an overlapping interval, is refused at its line, naming the line
/// of the other.
#[test]
fn plan_refuses_conflicting_counts() {
    let dir = std::env::temp_dir().join(format!("gw-plan-dup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("dup.csv");
    std::fs::write(
        &csv,
        "detector,interval_start_s,interval_end_s,count\n\
         W_stop_0,0,900,10\nW_stop_0,0,900,10\nW_stop_0,0,900,12\nW_stop_0,600,1200,10\n",
    )
    .unwrap();
    let o = gw(&[
        "plan",
        "--network",
        "intersections/networks/single.toml",
        "--counts",
        csv.to_str().unwrap(),
        "--out",
        dir.join("p.plans.toml").to_str().unwrap(),
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "dup.csv:4: count: 12 vehicles, but detector \"W_stop_0\" over 0 to 900 s was given at line 2 with count 10"
        ),
        "{err}"
    );
    assert!(
        err.contains("dup.csv:5: interval_start_s: interval 600 to 1200 s of detector \"W_stop_0\" overlaps 0 to 900 s given at line 2"),
        "{err}"
    );
    assert!(
        !err.contains("dup.csv:3"),
        "a re-delivery is no error: {err}"
    );
}

/// `bench planning` runs the adaptive loop's check by default and takes its seeds, horizon
/// and replayed warm-up from the command line: a tiny grid runs and says what it simulated,
/// the replayed check and one re-plan's check from a persistent twin, after a line naming
/// the machine (figures from different machines must not be compared as one); a horizon under a minute or a negative warm-up is refused, naming the option and value.
#[test]
fn bench_planning_takes_the_check_settings_and_refuses_bad_ones() {
    let o = gw(&[
        "bench",
        "planning",
        "--sizes",
        "4",
        "--seeds",
        "1",
        "--horizon",
        "120",
        "--warmup",
        "1200",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.starts_with("machine: ") && out.lines().next().unwrap().ends_with(" threads"),
        "the machine line comes first: {out}"
    );
    assert!(
        out.contains("4 intersections")
            && out.contains("1 seeds x 1200 s replayed, 1 of them on with 2 plans x 120 s")
            && out.contains("from a persistent twin: validation")
            && out.contains("(600 s on, 1 seeds on with 2 plans x 120 s)"),
        "{out}"
    );
    for (flag, bad, want) in [
        ("--horizon", "30", "--horizon 30 must be at least 60 s"),
        ("--warmup", "-5", "--warmup -5 must be 0 or more seconds"),
    ] {
        let arg = format!("{flag}={bad}");
        let o = gw(&["bench", "planning", "--sizes", "4", &arg]);
        assert!(!o.status.success(), "{flag} {bad} accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{err}");
    }
}
