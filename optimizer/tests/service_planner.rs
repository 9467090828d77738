//! The service's planner on counts that arrived as detector reports: the arterial's simulated
//! detectors report for an hour, the store ingests them (duplicates and all), and the planner
//! decides per coordination group, with the check's figures recorded.

use std::path::Path;

use intersections::load::{load_demand_for, load_network};
use intersections::messages::{DetectorCount, DetectorHealth, DetectorReport, WIRE_VERSION};
use intersections::Ms;
use optimizer::adaptive::simulated_counts;
use optimizer::decide::ValidateParams;
use optimizer::ingest::CountStore;
use optimizer::serve::{optimizer_planner, OperationChoice};
use simulator::{Control, Scenario, SimConfig};

#[test]
fn the_service_planner_decides_per_group_from_ingested_reports() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    let net = load_network(&dir.join("arterial.toml")).unwrap();
    let demand = load_demand_for(&dir.join("arterial.demand.toml"), &net).unwrap();
    let sc = Scenario::new(net.clone(), demand, SimConfig::default()).unwrap();
    let records =
        simulated_counts(&sc, &Control::fixed(), 1, Ms::from_s(3600), Ms::from_s(300)).unwrap();
    // As the cabinets would send them: one report per intersection and interval.
    let mut store = CountStore::new(Ms::from_s(4 * 3600));
    let mut keys: Vec<(usize, Ms, Ms)> = records
        .iter()
        .map(|r| (r.intersection.0, r.start, r.end))
        .collect();
    keys.sort();
    keys.dedup();
    for (seq, (i, start, end)) in (1u64..).zip(keys) {
        let ix = &net.intersections[i];
        let r = DetectorReport {
            version: WIRE_VERSION,
            region: "r".into(),
            intersection: ix.id.clone(),
            seq,
            interval_start_ms: start.0,
            interval_end_ms: end.0,
            detectors: records
                .iter()
                .filter(|c| c.intersection.0 == i && c.start == start)
                .map(|c| DetectorCount {
                    detector: ix.detectors[c.detector].id.clone(),
                    count: c.count,
                    occupancy: c.occupancy.unwrap_or(0.0),
                    health: DetectorHealth::Ok,
                })
                .collect(),
        };
        store.ingest(&r).unwrap();
        store.ingest(&r).unwrap(); // at-least-once delivery
    }
    let planner = optimizer_planner(
        Ms::from_s(3600),
        ValidateParams {
            seeds: vec![1, 2],
            horizon: Ms::from_s(1800),
            ..ValidateParams::default()
        },
        OperationChoice::default(),
    );
    let decisions = planner("r", &net, &store, &Default::default(), Ms::from_s(3600));
    assert!(!decisions.is_empty());
    for d in &decisions {
        assert!(
            d.record["detail"]["before"]["mean_delay_s"].is_number(),
            "{}",
            d.record
        );
    }
    // Deployed or not, it is one decision per coordination group; a deployment carries a
    // checked plan for every member.
    if decisions.iter().any(|d| !d.plans.is_empty()) {
        let g = &net.coordination_groups[0];
        let d = decisions
            .iter()
            .find(|d| d.group == g.id)
            .expect("the corridor's decision");
        assert_eq!(d.plans.len(), g.intersections.len());
        // It carries the operation the check chose.
        assert_eq!(
            Some(d.operation.mode()),
            d.record["detail"]["mode"].as_str(),
            "{}",
            d.record
        );
        for (ix, p) in &d.plans {
            let i = net.intersection(ix).unwrap();
            intersections::plan::validate(
                &net.intersections[i.0],
                &net.safety,
                p,
                &intersections::diag::FieldPath::root(),
            )
            .unwrap();
        }
    }
}
