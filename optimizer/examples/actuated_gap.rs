//! Why does greenwave's actuated operation trail the simulator's `actuated` control on a
//! network? Runs, over seeds 1-5 and the shipped demand, the same isolated actuated operation
//! four ways: plans (the network's scheduled plans, or Webster's for the mean demand) x
//! signal logic (the simulator's `Actuated` policy, or the cabinets' `SignalMachine`s through
//! `Cabinets`), at a few maximum-green factors.
//!
//! ```text
//! cargo run --release -p optimizer --example actuated_gap -- grid4 [--price]
//! ```
//!
//! Figures in docs/benchmarks.md (Optimizer, "Control").

mod common;

use intersections::{IntersectionIdx, Plan};
use optimizer::adaptive::webster_plans;
use optimizer::cabinet::Cabinets;
use optimizer::decide::{Figures, Operation};
use simulator::{Control, ControlKind};

fn main() {
    let (name, pp) = common::args();
    let sc = common::shipped(&name);
    let seeds = [1u64, 2, 3, 4, 5];
    let dur = sc.demand().duration();
    // The plans the schedule runs at the start (what the simulator's `actuated` runs).
    let net = sc.network();
    let shipped: Vec<(IntersectionIdx, Plan)> = (0..net.intersections.len())
        .map(IntersectionIdx)
        .filter_map(|i| {
            net.plan_in_force(i, &[], sc.config().start_of_day)
                .map(|p| (i, p.clone()))
        })
        .collect();
    let webster = webster_plans(&sc, &pp).unwrap();
    for (i, p) in &webster {
        let g: Vec<f64> = p.stages.iter().map(|s| s.green.as_secs_f64()).collect();
        println!(
            "{}: Webster cycle {:.0} s, greens {g:?}",
            sc.network().intersections[i.0].id,
            p.cycle.as_secs_f64()
        );
    }
    // Webster's splits stretched to a longer cycle, run with factor 1: maximums that add up
    // to that cycle.
    let stretch = |c_max: f64| -> Vec<(IntersectionIdx, Plan)> {
        webster
            .iter()
            .map(|(i, p)| {
                let ix = &sc.network().intersections[i.0];
                let mut spec = p.to_spec(ix);
                let lost: f64 = spec
                    .stages
                    .iter()
                    .map(|s| s.interstage_s.unwrap_or(0.0))
                    .sum();
                let g: f64 = spec.stages.iter().map(|s| s.green_s).sum();
                let k = ((c_max - lost) / g).max(1.0);
                for s in &mut spec.stages {
                    s.green_s = (s.green_s * k).floor();
                }
                spec.cycle_s = spec
                    .stages
                    .iter()
                    .map(|s| s.green_s + s.interstage_s.unwrap_or(0.0))
                    .sum();
                spec.offset_s = 0.0;
                let q = intersections::plan::validate(
                    ix,
                    &sc.network().safety,
                    &spec,
                    &intersections::diag::FieldPath::root(),
                )
                .unwrap();
                (*i, q)
            })
            .collect()
    };
    for c in [80.0, 100.0, 120.0] {
        let op = Operation::actuated(stretch(c), 1.0);
        let runs = simulator::par_seeds(&seeds, |s| sc.run(&op.control(), s, dur)).unwrap();
        println!(
            "webster stretched to {c} s, x1: simulator actuated {:6.1} s",
            Figures::of(&runs).mean_delay_s
        );
    }
    for (pname, plans) in [("scheduled", &shipped), ("webster", &webster)] {
        for f in [1.0, 1.5, 2.0] {
            let op = Operation::actuated(plans.clone(), f);
            let sim_runs = simulator::par_seeds(&seeds, |s| sc.run(&op.control(), s, dur)).unwrap();
            let cab_runs = simulator::par_seeds(&seeds, |s| {
                let mut sim = sc.simulation(&Control::of_kind(ControlKind::External), s)?;
                let mut cab = Cabinets::new(&sim, &op)?;
                cab.run_until(&mut sim, dur);
                Ok::<_, simulator::SimError>(sim.metrics())
            })
            .unwrap();
            let (a, b) = (Figures::of(&sim_runs), Figures::of(&cab_runs));
            println!(
                "{pname:9} x{f:.1}: simulator actuated {:6.1} s   cabinets {:6.1} s",
                a.mean_delay_s, b.mean_delay_s
            );
        }
    }
}
