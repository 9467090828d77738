//! Golden runs: the results of a set of runs (shipped networks under every control, a couple of
//! seeds, generated grids, half-second steps, dawdling, a run continued under another control)
//! must not change, bit for bit, unless the model is meant to change. Each run is reduced to a
//! digest of its metrics JSON (with every vehicle record), its detector events, and what the
//! `Field` reports (detector states and movement queues) after every step.
//!
//! After a deliberate change of the model, regenerate `tests/golden/digests.txt` with
//! `GREENWAVE_BLESS=1 cargo test -p simulator --test golden`, and say why in the commit.

mod common;

use std::fmt::Write as _;

use intersections::field::Field;
use intersections::{IntersectionIdx, Ms};
use simulator::{synth, Control, ControlKind, DriverParams, Scenario, SimConfig, Simulation};

/// FNV-1a, 64 bits: a digest that does not depend on the platform or the toolchain.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= x as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn u64(&mut self, x: u64) {
        self.bytes(&x.to_le_bytes());
    }
}

fn cfg() -> SimConfig {
    SimConfig {
        record_vehicles: true,
        record_detector_events: true,
        ..SimConfig::default()
    }
}

/// Everything the field reports now, into the digest.
fn field_digest(sim: &Simulation, h: &mut Fnv) {
    for xi in 0..sim.intersection_count() {
        let m = sim.measurements(IntersectionIdx(xi));
        for d in m.detectors {
            h.u64(d.occupied as u64);
            h.u64(d.count);
            h.u64(d.occupied_time.0 as u64);
            h.u64(d.last_on.map_or(u64::MAX, |t| t.0 as u64));
            h.u64(d.last_off.map_or(u64::MAX, |t| t.0 as u64));
        }
        for &q in m.movement_queue_veh.iter().chain(m.movement_downstream_veh) {
            h.u64(q as u64);
        }
    }
}

/// Run to `end` step by step, digesting the field after every step; then the metrics and the
/// detector events.
fn finish(mut sim: Simulation, end: Ms, h: &mut Fnv) -> String {
    while sim.now() < end && sim.gridlock().is_none() {
        sim.step();
        field_digest(&sim, h);
    }
    let m = sim.metrics();
    h.bytes(serde_json::to_string(&m).unwrap().as_bytes());
    h.bytes(
        serde_json::to_string(sim.detector_events())
            .unwrap()
            .as_bytes(),
    );
    format!(
        "{:016x} completed {} unfinished {} mean_delay_s {:.3} vehicle_steps {} gridlock {}",
        h.0,
        m.completed,
        m.unfinished,
        m.mean_delay_s,
        m.vehicle_steps,
        m.gridlock.is_some()
    )
}

fn run(sc: &Scenario, kind: ControlKind, seed: u64, end: Ms) -> String {
    let sim = sc.simulation(&Control::of_kind(kind), seed).unwrap();
    finish(sim, end, &mut Fnv::new())
}

fn kind_name(k: &ControlKind) -> &'static str {
    k.name()
}

fn results() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let kinds = [
        ControlKind::Fixed,
        ControlKind::Actuated,
        ControlKind::MaxPressure,
    ];
    for name in ["single", "arterial", "grid4", "district"] {
        let (net, demand) = common::shipped(name);
        let end = demand.duration();
        let sc = Scenario::new(net, demand, cfg()).unwrap();
        for kind in &kinds {
            out.push((
                format!("{name} {} seed 1", kind_name(kind)),
                run(&sc, kind.clone(), 1, end),
            ));
        }
        out.push((
            format!("{name} fixed seed 5"),
            run(&sc, ControlKind::Fixed, 5, end),
        ));
        if name == "arterial" {
            // Half an hour fixed, then max-pressure from the saved state, metrics reset.
            let mut sim = sc.simulation(&Control::fixed(), 2).unwrap();
            let mut h = Fnv::new();
            sim.run_until(Ms::from_s(1800));
            field_digest(&sim, &mut h);
            let mut sim = sim.clone();
            sim.set_control(&Control::of_kind(ControlKind::MaxPressure))
                .unwrap();
            sim.reset_metrics();
            out.push((
                "arterial fixed then max-pressure seed 2".into(),
                finish(sim, end, &mut h),
            ));
        }
    }
    // Generated grids: uncongested, congested, half-second steps with dawdling.
    let (net, demand) = synth::grid(6, 150.0, 1).unwrap();
    let sc = Scenario::new(net, demand, cfg()).unwrap();
    out.push((
        "grid6 150 fixed seed 1".into(),
        run(&sc, ControlKind::Fixed, 1, Ms::from_s(3600)),
    ));
    let (net, demand) = synth::grid(5, 500.0, 1).unwrap();
    let sc = Scenario::new(net, demand, cfg()).unwrap();
    for kind in &kinds {
        out.push((
            format!("grid5 500 {} seed 3", kind_name(kind)),
            run(&sc, kind.clone(), 3, Ms::from_s(3600)),
        ));
    }
    let (net, demand) = synth::grid(4, 300.0, 1).unwrap();
    let half = SimConfig {
        step: Ms(500),
        driver: DriverParams {
            sigma: 0.5,
            ..DriverParams::default()
        },
        ..cfg()
    };
    let sc = Scenario::new(net, demand, half).unwrap();
    out.push((
        "grid4 300 fixed step 0.5 sigma 0.5 seed 4".into(),
        run(&sc, ControlKind::Fixed, 4, Ms::from_s(1800)),
    ));
    out
}

#[test]
fn runs_are_unchanged_bit_for_bit() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/digests.txt");
    let mut text = String::new();
    for (case, r) in results() {
        writeln!(text, "{case}: {r}").unwrap();
    }
    if std::env::var_os("GREENWAVE_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    let diff: Vec<String> = want
        .lines()
        .zip(text.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("  was {a}\n  now {b}"))
        .collect();
    assert!(
        diff.is_empty() && want.lines().count() == text.lines().count(),
        "runs changed (regenerate with GREENWAVE_BLESS=1 only if the model is meant to change):\n{}",
        diff.join("\n")
    );
}
