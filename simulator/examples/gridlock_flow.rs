//! The flow figures behind the low-throughput gridlock rule: every shipped network with its
//! demand under fixed, actuated and max-pressure control, seeds 1-5, for the demand's two
//! hours. Per run: the lowest number of vehicles that left a link in a window of
//! `gridlock_after` (5 min) per vehicle in the network (over windows with at least
//! `gridlock_min_vehicles` in it), and the gridlock reported, if any.
//!
//! `cargo run --release -p simulator --example gridlock_flow` (about 10 s).

use std::collections::VecDeque;
use std::path::Path;

use intersections::Ms;
use simulator::{Control, ControlKind, Scenario, SimConfig};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    let kinds = [
        ControlKind::Fixed,
        ControlKind::Actuated,
        ControlKind::MaxPressure,
    ];
    println!("network control seed | lowest link exits per vehicle per window (at s, vehicles) | completed unfinished | gridlock");
    for name in ["single", "arterial", "grid4", "district"] {
        let net = intersections::load::load_network(&dir.join(format!("{name}.toml"))).unwrap();
        let demand =
            intersections::load::load_demand_for(&dir.join(format!("{name}.demand.toml")), &net)
                .unwrap();
        let end = demand.duration();
        let cfg = SimConfig::default();
        let (window, min_vehicles) = (cfg.gridlock_after, cfg.gridlock_min_vehicles);
        let sc = Scenario::new(net, demand, cfg).unwrap();
        for kind in &kinds {
            for seed in 1..=5 {
                let mut sim = sc
                    .simulation(&Control::of_kind(kind.clone()), seed)
                    .unwrap();
                let mut history = VecDeque::from([(Ms::ZERO, 0u64)]);
                let mut lowest = (f64::INFINITY, 0.0, 0);
                while sim.now() < end && sim.gridlock().is_none() {
                    sim.step();
                    let now = sim.now();
                    history.push_back((now, sim.link_exits()));
                    while history.len() > 1 && history[1].0 <= now - window {
                        history.pop_front();
                    }
                    let n = sim.vehicles_in_network();
                    if history[0].0 <= now - window && n >= min_vehicles {
                        let r = (sim.link_exits() - history[0].1) as f64 / n as f64;
                        if r < lowest.0 {
                            lowest = (r, now.as_secs_f64(), n);
                        }
                    }
                }
                let m = sim.metrics();
                let g = m.gridlock.as_ref().map_or("none".to_string(), |g| {
                    format!(
                        "{} at {:.0} s: {} link exits ({} network exits) in {:.0} s, {} in the network, {} waiting",
                        g.rule.name(),
                        g.at_s,
                        g.link_exits,
                        g.network_exits,
                        g.window_s,
                        g.vehicles,
                        g.waiting_to_enter
                    )
                });
                println!(
                    "{name} {} {seed} | {:.3} ({:.0} s, {}) | {} {} | {g}",
                    kind.name(),
                    lowest.0,
                    lowest.1,
                    lowest.2,
                    m.completed,
                    m.unfinished
                );
            }
        }
    }
}
