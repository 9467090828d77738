//! Does re-timing every 10 min pay at all on a network? Re-plans from the true demand of the
//! coming slice (an oracle no centre has), deployed unchecked through the cabinets, against
//! the fixed plans for the mean demand, seeds 1-5, the shipped demand.
//!
//! ```text
//! cargo run --release -p optimizer --example oracle_replan -- grid4 [--price]
//! ```

mod common;

use intersections::Ms;
use optimizer::adaptive::webster_plans;
use optimizer::cabinet::Cabinets;
use optimizer::decide::{Figures, Operation};
use optimizer::estimate::demand_flows;
use optimizer::webster::plan_network;
use simulator::{Control, ControlKind};

fn main() {
    let (name, pp) = common::args();
    let price = pp.permissive_left.is_some();
    let sc = common::shipped(&name);
    let seeds = [1u64, 2, 3, 4, 5];
    let dur = sc.demand().duration();
    let slice_s = sc.demand().slice.0 / 1000;
    let fixed = Operation::coordinated(webster_plans(&sc, &pp).unwrap());
    let fixed_runs = simulator::par_seeds(&seeds, |s| sc.run(&fixed.control(), s, dur)).unwrap();
    for every in [600i64, 900] {
        let runs = simulator::par_seeds(&seeds, |s| {
            let net = sc.network();
            let mut sim = sc.simulation(&Control::of_kind(ControlKind::External), s)?;
            let plan_at = |t: i64| {
                let slice = ((t + every / 2) / slice_s) as usize;
                let slice = slice.min(sc.demand().slices - 1);
                let f = demand_flows(net, sc.demand(), Some(slice));
                Operation::coordinated(plan_network(net, &f, &pp).unwrap().plans)
            };
            let mut cab = Cabinets::new(&sim, &plan_at(0))?;
            let mut t = every;
            while Ms::from_s(t) < dur {
                cab.run_until(&mut sim, Ms::from_s(t));
                cab.deploy(&plan_at(t), Ms::from_s(t));
                t += every;
            }
            cab.run_until(&mut sim, dur);
            Ok::<_, simulator::SimError>(sim.metrics())
        })
        .unwrap();
        println!(
            "{name} price {price}: fixed mean-demand plans {:6.1} s, oracle re-plans every {every} s {:6.1} s",
            Figures::of(&fixed_runs).mean_delay_s,
            Figures::of(&runs).mean_delay_s
        );
    }
}
