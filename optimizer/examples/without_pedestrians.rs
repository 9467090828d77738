//! What could pedestrian push-buttons win at most? Greenwave serves every crossing every
//! cycle (as on pedestrian recall): a stage that carries a crossing runs at least its walk
//! plus clearance, and the least cycle is set by those times. Push-buttons would drop a
//! crossing's time from the cycles nobody calls it in. The most they could win is what the
//! controls do on the same network with no crossings at all, which this example measures:
//! every control of `greenwave bench control`, seeds 1-5, the shipped demand, on the network
//! as shipped and with its pedestrian groups removed (from the groups and from every stage;
//! the shipped plans and their interstages are kept, they stay valid).
//!
//! ```text
//! cargo run --release -p optimizer --example without_pedestrians -- single arterial
//! ```
//!
//! Figures in docs/benchmarks.md (Optimizer, "Control").

use std::path::Path;

use intersections::load;
use intersections::spec::GroupKind;
use intersections::Network;
use optimizer::adaptive::{bench_network, AdaptiveParams, BenchControl, BenchRow};
use simulator::{Scenario, SimConfig};

/// The network with no pedestrian group, built and checked like a network file (`file` names
/// it in errors: a bad file gives the loader's located error).
fn without_pedestrians(text: &str, file: &str) -> Network {
    let mut spec = load::network_spec_from_str(file, text).unwrap_or_else(|e| panic!("{e}"));
    for ix in &mut spec.intersections {
        let peds: Vec<String> = ix
            .signal_groups
            .iter()
            .filter(|g| g.kind == GroupKind::Pedestrian)
            .map(|g| g.id.clone())
            .collect();
        ix.signal_groups.retain(|g| g.kind != GroupKind::Pedestrian);
        for s in &mut ix.stages {
            s.groups.retain(|g| !peds.contains(g));
        }
        ix.conflicts
            .retain(|c| !c.groups.iter().any(|g| peds.contains(g)));
        ix.intergreens
            .retain(|ig| !peds.contains(&ig.from) && !peds.contains(&ig.to));
    }
    Network::from_spec(&spec).unwrap_or_else(|problems| {
        let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        panic!("{file} without pedestrians: {}", list.join("; "))
    })
}

fn main() {
    let names: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let names = if names.is_empty() {
        vec!["single".to_string(), "arterial".to_string()]
    } else {
        names
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    let seeds = [1u64, 2, 3, 4, 5];
    let params = AdaptiveParams::default();
    println!(
        "{:<10} {:<16} {:>14} {:>14} {:>14} {:>14}",
        "network", "pedestrians", "fixed-webster", "actuated", "max-pressure", "greenwave"
    );
    for name in &names {
        let np = dir.join(format!("{name}.toml"));
        let text = std::fs::read_to_string(&np).unwrap_or_else(|e| panic!("{name}: {e}"));
        let shipped = load::load_network(&np).unwrap_or_else(|e| panic!("{name}: {e}"));
        let bare = without_pedestrians(&text, &np.display().to_string());
        let mut base: Option<f64> = None;
        for (label, net) in [("as shipped", shipped), ("none", bare)] {
            let demand = load::load_demand_for(&dir.join(format!("{name}.demand.toml")), &net)
                .unwrap_or_else(|e| panic!("{name} demand: {e}"));
            let sc = Scenario::new(net, demand, SimConfig::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let rows: Vec<BenchRow> = bench_network(
                &sc,
                &BenchControl::ALL,
                &seeds,
                sc.demand().duration(),
                &params,
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            let b = *base.get_or_insert(rows[0].mean_delay_s);
            let cells: Vec<String> = rows
                .iter()
                .map(|r| {
                    format!(
                        "{:.1} ({:+.1}%)",
                        r.mean_delay_s,
                        (r.mean_delay_s / b - 1.0) * 100.0
                    )
                })
                .collect();
            println!(
                "{:<10} {:<16} {:>14} {:>14} {:>14} {:>14}",
                name, label, cells[0], cells[1], cells[2], cells[3]
            );
        }
    }
    println!(
        "(mean delay s over completed vehicles, seeds 1-5; % against fixed-webster as shipped)"
    );
}
