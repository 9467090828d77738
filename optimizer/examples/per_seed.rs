//! Seed by seed: greenwave's adaptive loop (as `bench control` runs it, the commissioning's
//! choice of planner and modes included) against the fixed plans for the mean demand of the
//! planner that prices permissive left turns, and of the one given (`--price` prices them),
//! mean delay of completed vehicles, with the loop's re-plans deployed. Where the loop loses
//! over many seeds, this says whether it loses a little everywhere or much on a few seeds.
//!
//! ```text
//! cargo run --release -p optimizer --example per_seed -- district [--price] [--seeds N]
//!     [--threshold PCT] [--check-seeds N] [--horizon S]
//! ```

mod common;

use optimizer::adaptive::{commission, run_greenwave_at, webster_plans, AdaptiveParams};
use optimizer::decide::Operation;
use optimizer::webster::{GapAcceptance, PlanParams};

fn main() {
    let (name, pp) = common::args();
    let flag = |name: &str| -> Option<f64> {
        std::env::args().skip_while(|a| a != name).nth(1).map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
    };
    let n = flag("--seeds").unwrap_or(20.0) as u64;
    let sc = common::shipped(&name);
    let seeds: Vec<u64> = (1..=n).collect();
    let dur = sc.demand().duration();
    let mut params = AdaptiveParams {
        plan: pp.clone(),
        ..AdaptiveParams::default()
    };
    if let Some(v) = params.validate.as_mut() {
        // `--threshold PCT` and `--check-seeds N`: the check's (default 3% and 3 seeds).
        if let Some(t) = flag("--threshold") {
            v.threshold = t / 100.0;
        }
        if let Some(h) = flag("--horizon") {
            v.horizon = intersections::Ms::from_secs_f64(h).expect("--horizon S");
        }
        if let Some(k) = flag("--check-seeds") {
            v.seeds = (1..=k as u64).collect();
        }
    }
    let priced = PlanParams {
        permissive_left: Some(GapAcceptance::default()),
        ..PlanParams::default()
    };
    let fixed_of = |p: &PlanParams| Operation::coordinated(webster_plans(&sc, p).unwrap());
    let (fixed, fixed_priced) = (fixed_of(&pp), fixed_of(&priced));
    let commissioned = commission(&sc, &params).unwrap();
    let rows = simulator::par_seeds(&seeds, |s| {
        let a = sc.run(&fixed.control(), s, dur)?;
        let b = sc.run(&fixed_priced.control(), s, dur)?;
        let (g, log) = run_greenwave_at(&sc, s, dur, &params, &commissioned)?;
        Ok::<_, optimizer::adaptive::AdaptiveError>((
            s,
            a.mean_delay_s,
            b.mean_delay_s,
            g.mean_delay_s,
            log,
        ))
    })
    .unwrap();
    println!("{name}: seed, fixed (as given), fixed (priced), greenwave, greenwave vs fixed priced, re-plans deployed (back to the history's)");
    for (s, a, b, g, log) in rows {
        println!(
            "{s:>4} {a:>8.1} {b:>8.1} {g:>8.1} {:>+7.1}% {:>3} of {} ({})",
            (g / b - 1.0) * 100.0,
            log.accepted,
            log.replans,
            log.history
        );
    }
}
