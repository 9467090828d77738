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

/// An observer that knows nothing of the logic: from the colours it sees at each sample it
/// checks conflicts, intergreens, minimum greens and yellows of one intersection.
pub struct SafetyObserver {
    ix: intersections::Intersection,
    last: Vec<Colour>,
    green_start: Vec<Option<Ms>>,
    green_end: Vec<Option<Ms>>,
    yellow_start: Vec<Option<Ms>>,
    pub violations: Vec<String>,
    pub changes: usize,
}

impl SafetyObserver {
    pub fn new(ix: &intersections::Intersection) -> Self {
        let n = ix.groups.len();
        SafetyObserver {
            ix: ix.clone(),
            last: Vec::new(),
            green_start: vec![None; n],
            green_end: vec![None; n],
            yellow_start: vec![None; n],
            violations: Vec::new(),
            changes: 0,
        }
    }

    /// Look at the colours shown at `t` (samples in time order, at least every step).
    pub fn see(&mut self, t: Ms, colours: &[Colour]) {
        let ix = &self.ix;
        let n = ix.groups.len();
        assert_eq!(colours.len(), n);
        for a in 0..n {
            for b in a + 1..n {
                if ix.conflicts[a][b] && colours[a].is_open() && colours[b].is_open() {
                    self.violations.push(format!(
                        "{t}: conflicting {} and {} open together ({:?}, {:?})",
                        ix.groups[a].id, ix.groups[b].id, colours[a], colours[b]
                    ));
                }
            }
        }
        if self.last.is_empty() {
            self.last = colours.to_vec();
            for g in 0..n {
                if colours[g].is_green() {
                    self.green_start[g] = Some(t);
                }
            }
            return;
        }
        for g in 0..n {
            let (was, now) = (self.last[g], colours[g]);
            if was == now {
                continue;
            }
            self.changes += 1;
            let name = &ix.groups[g].id;
            if !was.is_green() && now.is_green() {
                for e in 0..n {
                    if let Some(end) = self.green_end[e] {
                        if ix.conflicts[e][g] && t - end < ix.intergreen[e][g] {
                            self.violations.push(format!(
                                "{t}: {name} green {} after {} ended, intergreen is {}",
                                t - end,
                                ix.groups[e].id,
                                ix.intergreen[e][g]
                            ));
                        }
                    }
                }
                self.green_start[g] = Some(t);
            }
            if was.is_green() && !now.is_green() {
                if let Some(start) = self.green_start[g] {
                    if t - start < ix.groups[g].min_green {
                        self.violations.push(format!(
                            "{t}: {name} green only {}, minimum {}",
                            t - start,
                            ix.groups[g].min_green
                        ));
                    }
                }
                self.green_end[g] = Some(t);
            }
            if now == Colour::Yellow {
                self.yellow_start[g] = Some(t);
            }
            if was == Colour::Yellow {
                if let Some(y) = self.yellow_start[g] {
                    if t - y < ix.groups[g].clearance {
                        self.violations.push(format!(
                            "{t}: {name} yellow only {}, clearance {}",
                            t - y,
                            ix.groups[g].clearance
                        ));
                    }
                }
            }
        }
        self.last = colours.to_vec();
    }
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
