//! What the optimizer's diagnostic examples share: a shipped network with its demand, and
//! their command line (`NETWORK [--price] [--turn-speeds]`).

use std::path::Path;

use intersections::load;
use optimizer::webster::{GapAcceptance, PlanParams};
use simulator::{Scenario, SimConfig};

/// A shipped network (`intersections/networks/NAME.toml`) with its demand file.
pub fn shipped(name: &str) -> Scenario {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    let net = load::load_network(&dir.join(format!("{name}.toml")))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let demand = load::load_demand_for(&dir.join(format!("{name}.demand.toml")), &net)
        .unwrap_or_else(|e| panic!("{name} demand: {e}"));
    // `--turn-speeds`: the simulator with `SimConfig::turn_speeds` (docs/benchmarks.md).
    let cfg = SimConfig {
        turn_speeds: std::env::args()
            .any(|a| a == "--turn-speeds")
            .then(simulator::TurnSpeeds::default),
        ..SimConfig::default()
    };
    Scenario::new(net, demand, cfg).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The network named on the command line (the first argument not starting with `--`,
/// `grid4` if none) and the planner's parameters: with `--price`, permissive left turners
/// priced by gap acceptance (docs/optimizer.md).
pub fn args() -> (String, PlanParams) {
    let name = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_else(|| "grid4".into());
    let price = std::env::args().any(|a| a == "--price");
    let params = PlanParams {
        permissive_left: price.then(GapAcceptance::default),
        ..PlanParams::default()
    };
    (name, params)
}
