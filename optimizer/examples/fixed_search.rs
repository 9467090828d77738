//! How far is the `fixed-webster` baseline of `greenwave bench control` from the best fixed
//! plan? A greedy search of the simulator over every plan parameter (each stage's green,
//! with the cycle following; each group's common cycle; each member's offset), judged on
//! mean delay over the shipped demand (2 h) on training seeds 11-13, and the plan found
//! then measured on the benchmark's seeds 1-5. Every plan tried goes through the one
//! validator, so no search step breaks a minimum green, a pedestrian time or a clearance.
//!
//! ```text
//! cargo run --release -p optimizer --example fixed_search -- single arterial
//! ```
//!
//! The figures are in docs/benchmarks.md (Optimizer: "How good is the baseline").

use std::path::Path;

use intersections::diag::FieldPath;
use intersections::spec::PlanSpec;
use intersections::{load, plan, IntersectionIdx, Network, Plan};
use optimizer::adaptive::webster_plans;
use optimizer::decide::Figures;
use optimizer::webster::PlanParams;
use simulator::{Control, Scenario, SimConfig};

type Specs = Vec<(IntersectionIdx, PlanSpec)>;

fn checked(net: &Network, specs: &Specs) -> Option<Vec<(IntersectionIdx, Plan)>> {
    specs
        .iter()
        .map(|(i, s)| {
            plan::validate(&net.intersections[i.0], &net.safety, s, &FieldPath::root())
                .ok()
                .map(|p| (*i, p))
        })
        .collect()
}

/// Every neighbour of `specs` at step `d` seconds.
fn moves(net: &Network, specs: &Specs, d: f64) -> Vec<Specs> {
    let mut out = Vec::new();
    // Greens: from one stage to another (cycle kept), or one stage longer or shorter (the
    // cycle follows) where the intersection is in no group.
    for (k, (i, s)) in specs.iter().enumerate() {
        let grouped = net
            .coordination_groups
            .iter()
            .any(|g| g.intersections.len() > 1 && g.intersections.contains(i));
        let n = s.stages.len();
        for a in 0..n {
            for b in 0..n {
                if a != b {
                    let mut c = specs.clone();
                    c[k].1.stages[a].green_s -= d;
                    c[k].1.stages[b].green_s += d;
                    out.push(c);
                }
            }
            if !grouped {
                for sign in [-1.0, 1.0] {
                    let mut c = specs.clone();
                    c[k].1.stages[a].green_s += sign * d;
                    c[k].1.cycle_s += sign * d;
                    out.push(c);
                }
            }
        }
    }
    // Groups: the common cycle longer or shorter on each member's longest stage; each member
    // but the first its offset earlier or later.
    for g in &net.coordination_groups {
        let ks: Vec<usize> = (0..specs.len())
            .filter(|&k| g.intersections.contains(&specs[k].0))
            .collect();
        if ks.len() < 2 {
            continue;
        }
        for sign in [-1.0, 1.0] {
            let mut c = specs.clone();
            for &k in &ks {
                let s = &mut c[k].1;
                let long = (0..s.stages.len())
                    .max_by(|&x, &y| s.stages[x].green_s.total_cmp(&s.stages[y].green_s))
                    .unwrap_or(0);
                s.stages[long].green_s += sign * d;
                s.cycle_s += sign * d;
            }
            out.push(c);
            for &k in &ks[1..] {
                let mut c = specs.clone();
                let s = &mut c[k].1;
                s.offset_s = (s.offset_s + sign * d).rem_euclid(s.cycle_s);
                out.push(c);
            }
        }
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let names: Vec<String> = std::env::args().skip(1).collect();
    let names = if names.is_empty() {
        vec!["single".to_string(), "arterial".to_string()]
    } else {
        names
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    for name in names {
        let net = load::load_network(&dir.join(format!("{name}.toml")))?;
        let demand = load::load_demand_for(&dir.join(format!("{name}.demand.toml")), &net)?;
        let sc = Scenario::new(net.clone(), demand, SimConfig::default())?;
        let dur = sc.demand().duration();
        let eval = |plans: &[(IntersectionIdx, Plan)], seeds: &[u64]| -> f64 {
            sc.run_seeds(&Control::with_plans(plans.to_vec()), seeds, dur)
                .map(|r| Figures::of(&r).mean_delay_s)
                .unwrap_or(f64::INFINITY)
        };
        let train = [11, 12, 13];
        let bench = [1, 2, 3, 4, 5];
        let webster = webster_plans(&sc, &PlanParams::default())?;
        let mut specs: Specs = webster
            .iter()
            .map(|(i, p)| (*i, p.to_spec(&net.intersections[i.0])))
            .collect();
        let mut best = eval(&webster, &train);
        let start = best;
        let mut tried = 0usize;
        for d in [4.0, 2.0, 1.0] {
            loop {
                let mut improved = false;
                for c in moves(&net, &specs, d) {
                    let Some(plans) = checked(&net, &c) else {
                        continue;
                    };
                    tried += 1;
                    let v = eval(&plans, &train);
                    if v < best - 1e-9 {
                        best = v;
                        specs = c;
                        improved = true;
                    }
                }
                if !improved {
                    break;
                }
            }
        }
        let found = checked(&net, &specs).ok_or("the search kept an invalid plan")?;
        let w = eval(&webster, &bench);
        let f = eval(&found, &bench);
        println!(
            "{name}: {tried} plans tried; training seeds {start:.1} -> {best:.1} s; \
             benchmark seeds 1-5: fixed-webster {w:.1} s, best fixed found {f:.1} s ({:+.1}%)",
            (f / w - 1.0) * 100.0
        );
        for (i, s) in &specs {
            println!(
                "  {} cycle {} s offset {:.1} s greens {:?}",
                net.intersections[i.0].id,
                s.cycle_s,
                s.offset_s,
                s.stages
                    .iter()
                    .map(|x| format!("{} {}", x.stage, x.green_s))
                    .collect::<Vec<_>>()
            );
        }
    }
    Ok(())
}
