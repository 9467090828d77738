//! Does the offset search's index predict the simulator? On each shipped network with
//! coordination groups: the fixed plans for the demand file's mean flows (green-wave offsets),
//! and 11 more sets with every member but each group's first at a random offset (a fixed
//! generator, so the sets are the same every run), each simulated for 2 h over seeds 1-3;
//! printed: the index summed over the groups and the mean delay of each set, and their
//! correlation. The figures behind the choice of `OffsetChoice::Auto` (docs/benchmarks.md).
//! A study, not a check: run with
//! `cargo test --release -p optimizer --test offsets_study -- --ignored --nocapture`.

use std::path::Path;

use intersections::diag::FieldPath;
use intersections::{load, plan, IntersectionIdx, Ms, Plan};
use optimizer::decide::Figures;
use optimizer::estimate::demand_flows;
use optimizer::offsets::{GroupModel, OffsetChoice};
use optimizer::webster::{plan_network, PlanParams};
use simulator::{Control, Scenario, SimConfig};

/// Knuth's MMIX linear congruential generator: enough to scatter offsets, and portable.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: i64) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as i64).rem_euclid(n)
    }
}

#[test]
#[ignore = "a study of a few minutes; figures in docs/benchmarks.md"]
fn index_against_simulated_delay_over_random_offsets() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    for name in ["arterial", "grid4", "district"] {
        let net = load::load_network(&dir.join(format!("{name}.toml"))).unwrap();
        let d = load::load_demand_for(&dir.join(format!("{name}.demand.toml")), &net).unwrap();
        let sc = Scenario::new(net.clone(), d.clone(), SimConfig::default()).unwrap();
        let flows = demand_flows(&net, &d, None);
        let pp = PlanParams {
            offsets: OffsetChoice::GreenWave,
            ..PlanParams::default()
        };
        let planned = plan_network(&net, &flows, &pp).unwrap();
        let mut rng = Lcg(12345);
        let mut rows: Vec<(f64, f64)> = Vec::new();
        for set in 0..12 {
            let mut plans = planned.plans.clone();
            let mut pi = 0.0;
            for g in &planned.groups {
                let order: Vec<IntersectionIdx> = g
                    .wave
                    .iter()
                    .map(|id| net.intersection(id).unwrap())
                    .collect();
                for (k, i) in order.iter().enumerate() {
                    if set > 0 && k > 0 {
                        let p = &mut plans.iter_mut().find(|(j, _)| j == i).unwrap().1;
                        let ix = &net.intersections[i.0];
                        let mut spec = p.to_spec(ix);
                        spec.offset_s = rng.below(p.cycle.0 / 1000) as f64;
                        *p = plan::validate(ix, &net.safety, &spec, &FieldPath::root()).unwrap();
                    }
                }
                let members: Vec<(IntersectionIdx, &Plan)> = order
                    .iter()
                    .map(|i| (*i, &plans.iter().find(|(j, _)| j == i).unwrap().1))
                    .collect();
                let model = GroupModel::new(&net, &flows, &members, &pp, &pp.transyt);
                let offsets: Vec<Ms> = members.iter().map(|(_, p)| p.offset).collect();
                pi += model.performance(&offsets).pi;
            }
            let runs = sc
                .run_seeds(&Control::with_plans(plans), &[1, 2, 3], Ms::from_s(7200))
                .unwrap();
            let f = Figures::of(&runs);
            println!(
                "{name} {}: index {pi:.1} veh-h/h, mean delay {:.1} s",
                if set == 0 {
                    "green wave".to_string()
                } else {
                    format!("random set {set}")
                },
                f.mean_delay_s
            );
            rows.push((pi, f.mean_delay_s));
        }
        let n = rows.len() as f64;
        let mx = rows.iter().map(|r| r.0).sum::<f64>() / n;
        let my = rows.iter().map(|r| r.1).sum::<f64>() / n;
        let cov: f64 = rows.iter().map(|r| (r.0 - mx) * (r.1 - my)).sum();
        let vx: f64 = rows.iter().map(|r| (r.0 - mx).powi(2)).sum();
        let vy: f64 = rows.iter().map(|r| (r.1 - my).powi(2)).sum();
        println!(
            "{name}: correlation of index and delay {:.2}",
            cov / (vx * vy).sqrt()
        );
    }
}
