//! The machine's actuated modes on the shipped single intersection (`offpeak`: cycle 80 s,
//! offset 0; arterial 0-30 s, arterial_left 36-44 s, collector 50-74 s), with the detector
//! inputs driven by the test and every output watched by the independent [`Audit`].

mod common;

use std::path::Path;

use intersections::audit::Audit;
use intersections::field::DetectorState;
use intersections::load::load_network;
use intersections::machine::{Detectors, SignalMachine};
use intersections::messages::Mode;
use intersections::model::{Intersection, Network};
use intersections::runner::FixedTimeRunner;
use intersections::{Colour, Ms};

fn net() -> Network {
    load_network(&Path::new(env!("CARGO_MANIFEST_DIR")).join("networks/single.toml")).unwrap()
}

/// One step of a run: time, colours, mode.
type Trace = Vec<(Ms, Vec<Colour>, Mode)>;

/// Run a machine on the `offpeak` plan from 1 s to `until`, stepping at its wake-ups (at most
/// 100 ms apart); `occupied(now, detector)` and `failed` drive the detectors.
fn run(
    ix: &Intersection,
    net: &Network,
    isolated: bool,
    until: Ms,
    failed: &[bool],
    occupied: impl Fn(Ms, usize) -> bool,
) -> Trace {
    let plan = ix.plan("offpeak").unwrap().clone();
    let mut m = SignalMachine::new(ix, &net.safety, Some(plan), Ms(1_000));
    m.set_isolated(isolated);
    let mut states = vec![DetectorState::default(); ix.detectors.len()];
    let mut now = Ms(1_000);
    let mut trace = Trace::new();
    let mut audit: Option<Audit> = None;
    while now < until {
        for (d, st) in states.iter_mut().enumerate() {
            let occ = occupied(now, d);
            common::set_occupied(st, now, occ);
        }
        let out = m.step_with(
            now,
            &Detectors {
                states: &states,
                failed,
            },
        );
        match &mut audit {
            None => audit = Some(Audit::new(ix, &out.colours, now)),
            Some(a) => a.see(now, &out.colours).unwrap(),
        }
        trace.push((now, out.colours.clone(), out.mode));
        now = out.next_wake.min(now + Ms(100)).max(now + Ms(1));
    }
    trace
}

/// Start and end of each green of group `g` (ends that fall in the trace).
fn greens(trace: &Trace, g: usize) -> Vec<(Ms, Ms)> {
    let mut out = Vec::new();
    let mut start = None;
    for (t, c, _) in trace {
        match (c[g].is_green(), start) {
            (true, None) => start = Some(*t),
            (false, Some(s)) => {
                out.push((s, *t));
                start = None;
            }
            _ => {}
        }
    }
    out
}

const CYCLE: Ms = Ms(80_000);

#[test]
fn a_stage_without_demand_gaps_out_and_the_coordinated_stage_keeps_its_schedule() {
    let n = net();
    let ix = &n.intersections[0];
    let trace = run(
        ix,
        &n,
        false,
        Ms::from_s(500),
        &vec![false; ix.detectors.len()],
        |_, _| false,
    );
    assert_eq!(trace.last().unwrap().2, Mode::CoordinatedActuated);
    let left = ix.group("EW_left").unwrap().0;
    let art = ix.group("EW_through").unwrap().0;
    let coll = ix.group("NS").unwrap().0;
    // From the second cycle on (the first runs in fixed time until its boundary).
    let from = Ms::from_s(160);
    let lefts: Vec<_> = greens(&trace, left)
        .into_iter()
        .filter(|g| g.0 >= from)
        .collect();
    assert!(lefts.len() >= 3, "{lefts:?}");
    for (s, e) in &lefts {
        assert_eq!(
            s.rem_euclid(CYCLE),
            Ms::from_s(36),
            "left starts on schedule"
        );
        assert!(
            *e - *s < Ms::from_s(8),
            "the left turn gapped out: {s}..{e}"
        );
    }
    for (s, e) in greens(&trace, coll).into_iter().filter(|g| g.0 >= from) {
        assert!(
            s.rem_euclid(CYCLE) < Ms::from_s(50),
            "collector starts early: {s}"
        );
        // It is the last stage before the coordinated one: it rests to its force-off.
        assert_eq!(
            e.rem_euclid(CYCLE),
            Ms::from_s(74),
            "collector forced off: {e}"
        );
    }
    for (s, _) in greens(&trace, art).into_iter().filter(|g| g.0 >= from) {
        assert_eq!(
            s.rem_euclid(CYCLE),
            Ms::ZERO,
            "the coordinated stage starts at 0: {s}"
        );
    }
}

#[test]
fn with_continuous_demand_it_runs_the_plan_as_in_fixed_time() {
    let n = net();
    let ix = &n.intersections[0];
    let trace = run(
        ix,
        &n,
        false,
        Ms::from_s(500),
        &vec![false; ix.detectors.len()],
        |_, _| true,
    );
    let runner = FixedTimeRunner::new(ix, ix.plan("offpeak").unwrap());
    let mut actuated = 0;
    for (t, c, mode) in &trace {
        if *mode == Mode::CoordinatedActuated {
            actuated += 1;
            assert_eq!(c, &runner.state_at(*t).colours, "at {t}");
        }
    }
    assert!(actuated > 100);
}

#[test]
fn a_failed_detector_recalls_its_stage_to_its_force_off() {
    let n = net();
    let ix = &n.intersections[0];
    let mut failed = vec![false; ix.detectors.len()];
    failed[ix
        .detectors
        .iter()
        .position(|d| d.id == "E_stop_left")
        .unwrap()] = true;
    let trace = run(ix, &n, false, Ms::from_s(500), &failed, |_, _| false);
    let left = ix.group("EW_left").unwrap().0;
    let lefts: Vec<_> = greens(&trace, left)
        .into_iter()
        .filter(|g| g.0 >= Ms::from_s(160))
        .collect();
    assert!(lefts.len() >= 3);
    for (s, e) in lefts {
        assert_eq!(
            (s.rem_euclid(CYCLE), e.rem_euclid(CYCLE)),
            (Ms::from_s(36), Ms::from_s(44)),
            "recalled: fixed green"
        );
    }
}

#[test]
fn isolated_actuated_serves_demand_and_skips_stages_without() {
    let n = net();
    let ix = &n.intersections[0];
    let north = ix.detectors.iter().position(|d| d.id == "N_stop").unwrap();
    let east = ix
        .detectors
        .iter()
        .position(|d| d.id == "E_stop_0")
        .unwrap();
    // A vehicle on the collector every 20 s, one on the arterial every 40 s; none turns left.
    let trace = run(
        ix,
        &n,
        true,
        Ms::from_s(600),
        &vec![false; ix.detectors.len()],
        |t, d| {
            let s = t.0 / 1000;
            (d == north && s % 20 == 0) || (d == east && s % 40 == 10)
        },
    );
    assert_eq!(trace.last().unwrap().2, Mode::Actuated);
    let left = ix.group("EW_left").unwrap().0;
    let art = ix.group("EW_through").unwrap().0;
    let coll = ix.group("NS").unwrap().0;
    let from = Ms::from_s(100);
    assert!(
        greens(&trace, left).iter().all(|g| g.0 < from),
        "the left turn without demand is skipped"
    );
    let colls: Vec<_> = greens(&trace, coll)
        .into_iter()
        .filter(|g| g.0 >= from)
        .collect();
    assert!(colls.len() >= 5, "the collector is served: {colls:?}");
    for (s, e) in greens(&trace, art).into_iter().filter(|g| g.0 >= from) {
        assert!(
            e - s < Ms::from_s(30),
            "the arterial gaps out before its maximum: {s}..{e}"
        );
    }
}
