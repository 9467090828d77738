//! The actuated and max-pressure policies keep a stage between its minimum and its maximum as
//! the street sees it: the vehicle green of a stage whose crosswalks clear after the request
//! lasts exactly as long as the limit says, not the limit plus the crosswalk clearance.
//! Shipped single intersection: the arterial stage carries two crosswalks (clearance 7 s), the
//! `offpeak` plan gives it 30 s.

mod common;

use std::path::Path;

use intersections::audit::Audit;
use intersections::control::{Actuated, ActuatedParams, MaxPressure, MaxPressureParams};
use intersections::field::{DetectorState, Measurements, SignalLogic};
use intersections::load::load_network;
use intersections::model::{Intersection, Network};
use intersections::spec::GroupKind;
use intersections::Ms;

fn net() -> Network {
    load_network(&Path::new(env!("CARGO_MANIFEST_DIR")).join("networks/single.toml")).unwrap()
}

/// Step `logic` every 100 ms from 0 to `until` with detectors occupied as `occupied(detector)`
/// says and the given queues per movement; returns the (start, end) of every green of `group`
/// that ended, every colour watched by the independent audit.
fn greens_of(
    ix: &Intersection,
    logic: &mut dyn SignalLogic,
    until: Ms,
    occupied: &dyn Fn(usize) -> bool,
    queues: &[u32],
    group: usize,
) -> Vec<(Ms, Ms)> {
    let mut states = vec![DetectorState::default(); ix.detectors.len()];
    let down = vec![0u32; ix.movements.len()];
    let mut audit: Option<Audit> = None;
    let mut out = Vec::new();
    let mut start = None;
    let mut now = Ms::ZERO;
    while now < until {
        for (d, st) in states.iter_mut().enumerate() {
            let occ = occupied(d);
            common::set_occupied(st, now, occ);
        }
        let m = Measurements {
            detectors: &states,
            movement_queue_veh: queues,
            movement_downstream_veh: &down,
        };
        logic.step(now, &m);
        let c = logic.colours();
        match &mut audit {
            None => audit = Some(Audit::new(ix, c, now)),
            Some(a) => a.see(now, c).unwrap(),
        }
        match (c[group].is_green(), start) {
            (true, None) => start = Some(now),
            (false, Some(s)) => {
                out.push((s, now));
                start = None;
            }
            _ => {}
        }
        now += Ms(100);
    }
    out
}

fn crosswalk_clearance(ix: &Intersection, stage: usize) -> Ms {
    ix.stages[stage]
        .groups
        .iter()
        .map(|g| &ix.groups[g.0])
        .filter(|g| g.kind == GroupKind::Pedestrian)
        .map(|g| g.clearance)
        .max()
        .unwrap()
}

#[test]
fn actuated_maximum_includes_the_crosswalk_clearance() {
    let n = net();
    let ix = &n.intersections[0];
    let plan = ix.plan("offpeak").unwrap();
    let art = ix.stages.iter().position(|s| s.id == "arterial").unwrap();
    assert!(
        crosswalk_clearance(ix, art) > Ms::ZERO,
        "the test needs a crosswalk"
    );
    let through = ix.group("EW_through").unwrap().0;
    let mut a = Actuated::new(ix, plan, &ActuatedParams::default(), Ms::ZERO);
    // Demand everywhere, all the time: every stage maxes out.
    let q = vec![5; ix.movements.len()];
    let g = greens_of(ix, &mut a, Ms::from_s(400), &|_| true, &q, through);
    assert!(g.len() >= 3, "{g:?}");
    let max = plan.stages.iter().find(|s| s.stage == art).unwrap().green;
    for (s, e) in g {
        assert_eq!(
            e - s,
            max,
            "arterial green {s}..{e} against a maximum of {max}"
        );
    }
}

#[test]
fn actuated_minimum_includes_the_crosswalk_clearance() {
    let n = net();
    let ix = &n.intersections[0];
    let plan = ix.plan("offpeak").unwrap();
    let art = ix.stages.iter().position(|s| s.id == "arterial").unwrap();
    let through = ix.group("EW_through").unwrap().0;
    let mut a = Actuated::new(ix, plan, &ActuatedParams::default(), Ms::ZERO);
    // No vehicle on the arterial, one waiting on the collector: the arterial, green first,
    // gaps out at its minimum.
    let north = ix.detectors.iter().position(|d| d.id == "N_stop").unwrap();
    let g = greens_of(
        ix,
        &mut a,
        Ms::from_s(120),
        &|d| d == north,
        &vec![0; ix.movements.len()],
        through,
    );
    let min = ix.stage_min_green(art);
    assert!(min > crosswalk_clearance(ix, art));
    assert_eq!(g.first().map(|(s, e)| *e - *s), Some(min), "{g:?}");
}

#[test]
fn max_pressure_maximum_includes_the_crosswalk_clearance() {
    let n = net();
    let ix = &n.intersections[0];
    let art = ix.stages.iter().position(|s| s.id == "arterial").unwrap();
    let through = ix.group("EW_through").unwrap().0;
    let params = MaxPressureParams {
        period: Ms::from_s(5),
        max_green: Ms::from_s(30),
    };
    let mut mp = MaxPressure::new(ix, art, &params, Ms::ZERO);
    // The arterial always has the highest pressure, the others some: the arterial runs to
    // its maximum each time.
    let on_art: Vec<usize> = ix.groups[through].movements.clone();
    let q: Vec<u32> = (0..ix.movements.len())
        .map(|m| if on_art.contains(&m) { 20 } else { 2 })
        .collect();
    let g = greens_of(ix, &mut mp, Ms::from_s(400), &|_| true, &q, through);
    assert!(g.len() >= 3, "{g:?}");
    for (s, e) in g {
        assert_eq!(e - s, params.max_green, "arterial green {s}..{e}");
    }
}

#[test]
fn max_pressure_minimum_includes_the_crosswalk_clearance() {
    let n = net();
    let ix = &n.intersections[0];
    let art = ix.stages.iter().position(|s| s.id == "arterial").unwrap();
    let through = ix.group("EW_through").unwrap().0;
    let mut mp = MaxPressure::new(ix, art, &MaxPressureParams::default(), Ms::ZERO);
    // Nobody on the arterial, a queue on the collector: the arterial ends at its minimum.
    let coll: Vec<usize> = ix.groups[ix.group("NS").unwrap().0].movements.clone();
    let q: Vec<u32> = (0..ix.movements.len())
        .map(|m| if coll.contains(&m) { 5 } else { 0 })
        .collect();
    let g = greens_of(ix, &mut mp, Ms::from_s(60), &|_| false, &q, through);
    assert_eq!(
        g.first().map(|(s, e)| *e - *s),
        Some(ix.stage_min_green(art)),
        "{g:?}"
    );
}

#[test]
fn actuated_maximum_scales_with_the_factor() {
    let n = net();
    let ix = &n.intersections[0];
    let plan = ix.plan("offpeak").unwrap();
    let art = ix.stages.iter().position(|s| s.id == "arterial").unwrap();
    let through = ix.group("EW_through").unwrap().0;
    let params = ActuatedParams {
        max_green_factor: 1.5,
        ..ActuatedParams::default()
    };
    let mut a = Actuated::new(ix, plan, &params, Ms::ZERO);
    let q = vec![5; ix.movements.len()];
    let g = greens_of(ix, &mut a, Ms::from_s(400), &|_| true, &q, through);
    assert!(g.len() >= 3, "{g:?}");
    let planned = plan.stages.iter().find(|s| s.stage == art).unwrap().green;
    for (s, e) in g {
        assert_eq!(e - s, Ms(planned.0 * 3 / 2), "arterial green {s}..{e}");
    }
}
