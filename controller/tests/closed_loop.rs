//! The real cabinet logic (machine, monitor, fallback, detector counting) driving the
//! simulator through the shared `Field` interface: the simulator plays the street, the cabinet
//! obeys its detectors and sets its signals. Checked by the independent audit, and the traffic
//! gets through.

use std::path::Path;

use controller::cabinet::{Cabinet, DetectorLimits, Outgoing, Persisted, Settings};
use intersections::audit::Audit;
use intersections::field::drive;
use intersections::load::{load_demand_for, load_network};
use intersections::signing::{Signer25519, Verifier25519};
use intersections::{IntersectionIdx, Ms};
use simulator::{Control, ControlKind, Scenario, SimConfig};

#[test]
fn the_cabinet_runs_the_simulated_street() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    let net = load_network(&dir.join("single.toml")).unwrap();
    let demand = load_demand_for(&dir.join("single.demand.toml"), &net).unwrap();
    // A 100 ms step: every signal interval is a multiple of 0.1 s, so the street shows each one
    // in full (a 1 s step would show a 3.8 s yellow as 3 or 4 s).
    let cfg = SimConfig {
        step: Ms(100),
        ..SimConfig::default()
    };
    let scenario = Scenario::new(net.clone(), demand, cfg).unwrap();
    let mut sim = scenario
        .simulation(&Control::of_kind(ControlKind::External), 1)
        .unwrap();
    let settings = Settings {
        region: "sim".into(),
        intersection: "C".into(),
        report_interval: Some(Ms::from_s(300)),
        backup_time: Ms::from_s(300),
        utc_offset: Ms::ZERO,
        detector_limits: DetectorLimits::default(),
        state_file: None,
    };
    let key = Signer25519::from_seed("centre-1", [1; 32]).public_base64();
    let v = Verifier25519::from_base64("centre-1", &key).unwrap();
    let mut cabinets =
        vec![Cabinet::new(settings, net.clone(), v, Persisted::default(), sim.now()).unwrap()];
    let ix = &net.intersections[0];
    let mut audit: Option<Audit> = None;
    let mut reports = Vec::new();
    let end = Ms::from_s(3600);
    while sim.now() < end {
        drive(&mut sim, &mut cabinets);
        let colours = sim.colours(IntersectionIdx(0)).to_vec();
        match audit.as_mut() {
            None => audit = Some(Audit::new(ix, &colours, sim.now())),
            Some(a) => a.see(sim.now(), &colours).unwrap(),
        }
        for o in cabinets[0].take_outbox() {
            if let Outgoing::Report(r) = o {
                reports.push(r);
            }
        }
        sim.step();
    }
    assert!(cabinets[0].status(sim.now(), true).fault.is_none());
    let m = sim.metrics();
    assert!(m.completed > 1500, "{} vehicles got through", m.completed);
    assert!(m.mean_delay_s < 90.0, "mean delay {}", m.mean_delay_s);
    assert!(audit.unwrap().changes > 200);
    // The cabinet counted the simulated vehicles on its detectors.
    assert_eq!(reports.len(), 11);
    let counted: u32 = reports
        .iter()
        .flat_map(|r| &r.detectors)
        .filter(|d| d.detector.ends_with("stop") || d.detector.contains("_stop_"))
        .map(|d| d.count)
        .sum();
    assert!(
        counted as u64 > m.completed / 2,
        "stop-line detectors counted {counted} of {} vehicles",
        m.completed
    );
}
