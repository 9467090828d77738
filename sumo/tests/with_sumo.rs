//! Tests that run the real SUMO (1.28, PyPI's `eclipse-sumo`, which `.ci/run` installs in
//! `.venv-sumo`; without it they are skipped with a note, except under CI where they fail):
//!
//! - the `.net.xml` fixtures the import tests read (`tests/data/shipped/`) are exactly what
//!   `netconvert` builds from today's export, so those tests cannot pass on a stale export;
//! - Greenwave's simulator agrees with SUMO on the same plans and vehicles (issue 5, item 4:
//!   throughput within 5%, mean delay within 15% of SUMO's time loss, 5 seeds), on every
//!   shipped network and the 4x4 grid of the `vs_sumo` bench.
//!
//! Each case writes its files under the target's temporary folder, `with_sumo/<case>/`.

#[path = "support/live.rs"]
mod live;

use std::path::{Path, PathBuf};

use simulator::{synth, SimConfig};
use sumo::{tools, ExportOptions};

fn work(case: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("with_sumo")
        .join(case);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("work folder");
    d
}

/// A SUMO file without its opening comment (netconvert's date, version and options).
fn body(text: &str) -> &str {
    match text.find("-->") {
        Some(k) => text[k + 3..].trim_start(),
        None => text,
    }
}

#[test]
fn the_committed_shipped_nets_are_what_netconvert_builds_from_the_export_now() {
    let Some(bins) = live::for_test("the_committed_shipped_nets_...") else {
        return;
    };
    let networks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/shipped");
    let mut stale = Vec::new();
    for (name, crossings) in [
        ("single", false),
        ("arterial", false),
        ("grid4", false),
        ("district", false),
        ("single", true),
        ("district", true),
    ] {
        let fixture = if crossings {
            format!("{name}.crossings.net.xml")
        } else {
            format!("{name}.net.xml")
        };
        let net = intersections::load::load_network(&networks.join(format!("{name}.toml")))
            .unwrap_or_else(|e| panic!("{e}"));
        let opts = ExportOptions {
            crossings,
            ..ExportOptions::default()
        };
        let files = sumo::export(&net, &[], None, &opts).unwrap_or_else(|e| panic!("{e}"));
        let dir = work(&format!("export_{}", fixture.trim_end_matches(".net.xml")));
        for (f, text) in files.files() {
            std::fs::write(dir.join(f), text).expect("write");
        }
        let built = tools::netconvert(&bins.netconvert, &dir, &files.name)
            .unwrap_or_else(|e| panic!("{fixture}: netconvert refused today's export: {e}"));
        let built = std::fs::read_to_string(&built).expect("netconvert's output");
        let committed = std::fs::read_to_string(data.join(&fixture)).expect("fixture");
        if body(&built) != body(&committed) {
            let line = body(&built)
                .lines()
                .zip(body(&committed).lines())
                .position(|(a, b)| a != b)
                .map_or("past the end of one".to_string(), |k| format!("{}", k + 1));
            stale.push(format!(
                "{fixture} (first difference at line {line} of the body)"
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "the committed nets differ from what netconvert builds from today's export: {stale:?}; \
         regenerate them with `bash tools/gen_sumo_fixtures.sh` and check the import tests"
    );
}

/// Issue 5's marks on one case of the `vs_sumo` bench, 5 seeds, the plans in force, our
/// simulator's default model and the default export.
fn agrees(case: &str) {
    let Some(bins) = live::for_test(case) else {
        return;
    };
    let networks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    let (net, demand, duration) =
        synth::bench_case(case, &networks).unwrap_or_else(|e| panic!("{e}"));
    let a = live::agree(
        &work(&format!("agree_{case}")),
        &net,
        &demand,
        duration,
        5,
        &SimConfig::default(),
        false,
        &bins,
    )
    .unwrap_or_else(|e| panic!("{case}: {e}"));
    eprintln!("{case}: {a:?}");
    assert!(
        a.throughput_ok() && a.delay_ok(),
        "{case}: completed {:.0} against SUMO's {:.0} ({:+.1}%, mark {}%), delay {:.1} s against \
         SUMO's time loss {:.1} s ({:+.1}%, mark {}%), SUMO teleports {}",
        a.completed.0,
        a.completed.1,
        a.throughput_diff_pct(),
        live::THROUGHPUT_MARK_PCT,
        a.delay_s.0,
        a.delay_s.1,
        a.delay_diff_pct(),
        live::DELAY_MARK_PCT,
        a.teleports
    );
}

#[test]
fn agrees_with_sumo_on_single() {
    agrees("single");
}

#[test]
fn agrees_with_sumo_on_arterial() {
    agrees("arterial");
}

#[test]
fn agrees_with_sumo_on_grid4() {
    agrees("grid4");
}

#[test]
fn agrees_with_sumo_on_district() {
    agrees("district");
}

#[test]
fn agrees_with_sumo_on_the_4x4_grid() {
    agrees("grid4x4");
}
