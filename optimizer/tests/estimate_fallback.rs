//! A movement whose detectors stop counting (in fault, so the service leaves their reports
//! out) keeps its last estimate for a while, then falls back to the history's demand for it;
//! without a history it keeps the last estimate.

use std::path::Path;

use intersections::load::{load_demand_for, load_network};
use intersections::Ms;
use optimizer::adaptive::simulated_counts;
use optimizer::estimate::{EstimateParams, Estimator, HISTORY_AFTER};
use simulator::{Control, Scenario, SimConfig};

#[test]
fn a_movement_without_counts_falls_back_to_history() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    let net = load_network(&dir.join("single.toml")).unwrap();
    let demand = load_demand_for(&dir.join("single.demand.toml"), &net).unwrap();
    let sc = Scenario::new(net.clone(), demand.clone(), SimConfig::default()).unwrap();
    let step = Ms::from_s(300);
    let records = simulated_counts(&sc, &Control::fixed(), 1, Ms::from_s(7200), step).unwrap();
    let ix = &net.intersections[0];
    let loop_ = ix
        .detectors
        .iter()
        .position(|d| d.id == "W_stop_left")
        .unwrap();
    let m = ix.movements.iter().position(|m| m.id == "W_left").unwrap();
    // The first hour whole; then the left-turn pocket's loop is out.
    let interval = |k: i64| {
        records
            .iter()
            .filter(|r| r.end == Ms(step.0 * (k + 1)))
            .filter(|r| k < 12 || r.detector != loop_)
            .cloned()
            .collect::<Vec<_>>()
    };
    let flow = |e: &Estimator| e.estimate().intersections[0].movements[m].clone();
    for history in [Some(&demand), None] {
        let mut e = Estimator::new(&net, history, EstimateParams::default());
        // Beside it, one that never had the loop: the history's flow at each interval.
        let mut never = Estimator::new(&net, history, EstimateParams::default());
        for k in 0..24 {
            e.push(&interval(k));
            never.push(
                &interval(k)
                    .into_iter()
                    .filter(|r| r.detector != loop_)
                    .collect::<Vec<_>>(),
            );
            let (got, hist) = (flow(&e), flow(&never));
            let out = Ms(step.0 * (k - 11)); // how long the loop has been out
            if k < 12 {
                assert!(got.measured);
            } else if out < HISTORY_AFTER || history.is_none() {
                // Out for less than the limit, or no history: the last estimate stays.
                assert!(got.measured, "k {k}");
            } else {
                assert!(!got.measured, "k {k}: {got:?}");
                assert!(
                    (got.flow_veh_h - hist.flow_veh_h).abs() < 1e-9,
                    "k {k}: {} veh/h against the history's {}",
                    got.flow_veh_h,
                    hist.flow_veh_h
                );
            }
            if history.is_none() {
                assert_eq!(hist.flow_veh_h, 0.0, "no loop and no history: nothing");
            } else {
                assert!(hist.flow_veh_h > 20.0, "the history has left turners");
            }
        }
    }
}
