//! Helpers shared by the simulator's integration tests.
#![allow(dead_code)]

use intersections::field::Field;
use intersections::{Colour, IntersectionIdx, Ms};
use simulator::{synth, Control, ControlKind, Scenario, SimConfig};

/// Crossing times (end of the step in which a front bumper reached the stop-line detector) of
/// a queue built on 150 s of red, released into a 60 s green.
pub fn discharge(step: Ms) -> Vec<Ms> {
    let (net, demand) = synth::crossing(800.0, 30.0, 30.0, 6.0, 1500.0, 0.0, 1).unwrap();
    let cfg = SimConfig {
        step,
        record_detector_events: true,
        ..SimConfig::default()
    };
    let sc = Scenario::new(net, demand, cfg).unwrap();
    let mut sim = sc
        .simulation(&Control::of_kind(ControlKind::External), 7)
        .unwrap();
    let ix = IntersectionIdx(0);
    sim.set_colours(ix, &[Colour::Red, Colour::Red]);
    sim.run_until(Ms::from_s(150));
    assert!(sim.vehicles_in_network() > 35, "a queue formed");
    sim.set_colours(ix, &[Colour::Green, Colour::Red]);
    sim.run_until(Ms::from_s(150 + 60));
    sim.detector_events()
        .iter()
        .filter(|e| e.detector == 0 && e.on && e.time > Ms::from_s(150))
        .map(|e| e.time)
        .collect()
}

/// Saturation flow from discharge times: skip the first four vehicles (start-up), take the
/// next twenty.
pub fn saturation_flow(times: &[Ms]) -> f64 {
    let t = &times[4..24];
    let span = (t[t.len() - 1] - t[0]).as_secs_f64();
    3600.0 * (t.len() - 1) as f64 / span
}

/// A shipped network and its demand.
pub fn shipped(name: &str) -> (intersections::Network, intersections::demand::Demand) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    let net = intersections::load::load_network(&dir.join(format!("{name}.toml")))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let demand =
        intersections::load::load_demand_for(&dir.join(format!("{name}.demand.toml")), &net)
            .unwrap_or_else(|e| panic!("{name} demand: {e}"));
    (net, demand)
}
