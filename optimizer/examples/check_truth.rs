//! Does the check before deployment predict what a re-plan does on the street? Runs
//! greenwave's adaptive loop on a shipped network (the benchmark's loop, coordinated, one
//! seed: plans for the forecast, the check replaying the last hour's estimates, the history's
//! plans on offer) and at every re-plan sets the check's verdict beside the truth: the street
//! itself forked at that moment and run on for the check's horizon with the plans in force
//! and with the chosen candidate handed to the cabinets.
//!
//! ```text
//! cargo run --release -p optimizer --example check_truth -- grid4 [--price] [--seed N]
//!     [--no-replay: the check fills an empty street for 10 min on the newest estimate]
//!     [--no-library: no history plans on offer] [--start-mean: start on the history's plans]
//!     [--held: plan for the estimate of the interval just counted, not the forecast]
//!     [--twin: the check forks a persistent twin (`decide::Twin`) instead of the replay]
//!     [--turn-speeds: street and check with the simulator's turn speeds]
//!     [--true-demand: the check replays and looks ahead on the demand file's true flows
//!      (the slice each interval falls in) instead of the estimates; the plans are still
//!      made from the estimates. Tells estimation error from what the replay cannot rebuild]
//! ```

mod common;

use optimizer::adaptive::{AdaptiveParams, CountTaker};
use optimizer::cabinet::Cabinets;
use optimizer::decide::{check_demand, validate_operations, Operation, Twin, TwinStep};
use optimizer::estimate::{demand_flows, demand_from_flows, Estimator};
use optimizer::webster::plan_network;
use simulator::{Control, ControlKind};

fn main() {
    let (name, pp) = common::args();
    let seed: u64 = std::env::args()
        .skip_while(|a| a != "--seed")
        .nth(1)
        .map(|s| s.parse().expect("--seed N"))
        .unwrap_or(1);
    let sc = common::shipped(&name);
    let net = sc.network();
    let mut params = AdaptiveParams {
        plan: pp.clone(),
        ..AdaptiveParams::default()
    };
    if let Some(x) = std::env::args().skip_while(|a| a != "--sat-advance").nth(1) {
        params.estimate.saturated_occupancy_advance = x.parse().expect("--sat-advance SHARE");
    }
    let mut vp = params.validate.clone().expect("the default checks");
    // The check simulates with the street's model (`--turn-speeds`).
    vp.sim = sc.config().clone();
    let flag = |f: &str| std::env::args().any(|a| a == f);
    let (replay, library, held) = (!flag("--no-replay"), !flag("--no-library"), flag("--held"));
    let true_demand = flag("--true-demand");
    let mut entering_log: Vec<(f64, f64)> = Vec::new();
    let mut history: Vec<Vec<Vec<f64>>> = Vec::new();
    let mut twin = flag("--twin").then(|| Twin::new(params.replan_every, true));
    // Sums of the check's and the truth's delay under the plans in force: the check's bias.
    let (mut sum_check, mut sum_true) = (0.0, 0.0);
    let dur = sc.demand().duration();
    let start_mean = flag("--start-mean");
    let first = plan_network(
        net,
        &demand_flows(net, sc.demand(), (!start_mean).then_some(0)),
        &pp,
    )
    .unwrap()
    .plans;
    let mean = Operation::coordinated(
        plan_network(net, &demand_flows(net, sc.demand(), None), &pp)
            .unwrap()
            .plans,
    );
    let mut in_force = Operation::coordinated(first);
    let mut sim = sc
        .simulation(&Control::of_kind(ControlKind::External), seed)
        .unwrap();
    let mut cab = Cabinets::new(&sim, &in_force).unwrap();
    let mut est = Estimator::new(net, Some(sc.demand()), params.estimate.clone());
    let mut taker = CountTaker::new(&sim);
    println!(
        "{name} seed {seed} price {}: check (estimated demand, seeds {:?}) against truth (the street forked), delay s over {} s",
        pp.permissive_left.is_some(),
        vp.seeds,
        vp.horizon.0 / 1000
    );
    println!("  t s | check in force | check candidate | check gain | true in force | true candidate | true gain | deployed");
    let mut t = params.replan_every;
    let (mut agree, mut n) = (0, 0);
    while t < dur {
        cab.run_until(&mut sim, t);
        est.push(&taker.take(&sim));
        let flows = if held {
            est.estimate()
        } else {
            est.forecast(t + intersections::Ms(params.replan_every.0 / 2))
        }
        .planning_flows(params.lower_bound_boost);
        let cand = Operation::coordinated(plan_network(net, &flows, &pp).unwrap().plans);
        // What the check sees: the forecast, or in its place the demand file's flows of the
        // slice the forecast's time falls in (the middle of the interval to come).
        let seen = if true_demand {
            let at = t + intersections::Ms(params.replan_every.0 / 2);
            let k = ((at.0 / sc.demand().slice.0) as usize).min(sc.demand().slices - 1);
            demand_flows(net, sc.demand(), Some(k))
        } else {
            flows.clone()
        };
        // What enters the network in the check (the entries' movements) against the demand
        // file's flow over the interval to come.
        let entering = |f: &[Vec<f64>]| -> f64 {
            let entries: Vec<_> = sc.demand().entries.iter().map(|e| e.link).collect();
            net.intersections
                .iter()
                .enumerate()
                .flat_map(|(i, ix)| {
                    ix.movements
                        .iter()
                        .enumerate()
                        .filter(|(_, mv)| entries.contains(&mv.from))
                        .map(move |(m, _)| f[i][m])
                })
                .sum()
        };
        let k_now = (((t + intersections::Ms(params.replan_every.0 / 2)).0 / sc.demand().slice.0)
            as usize)
            .min(sc.demand().slices - 1);
        entering_log.push((
            entering(&seen),
            entering(&demand_flows(net, sc.demand(), Some(k_now))),
        ));
        history.push(seen.clone());
        let (d, vp) = if replay {
            check_demand(net, &history, params.replan_every, &vp).unwrap()
        } else {
            let mut vp = vp.clone();
            vp.warmup = params.replan_every;
            (
                demand_from_flows(net, &seen, vp.warmup + vp.horizon).unwrap(),
                vp,
            )
        };
        let mut cands = vec![cand];
        if library {
            cands.push(mean.clone());
        }
        let (dec, k) = match twin.as_mut() {
            Some(tw) => tw
                .check(net, TwinStep::held(t, seen.clone(), &in_force), &cands, &vp)
                .unwrap(),
            None => validate_operations(net, &d, &in_force, &cands, &vp).unwrap(),
        };
        let cand = cands.swap_remove(k);
        let truth = |deploy: bool| {
            let (mut s, mut c) = (sim.clone(), cab.clone());
            s.reset_metrics();
            if deploy {
                c.deploy(&cand, s.now());
            }
            c.run_until(&mut s, t + vp.horizon);
            s.metrics().mean_delay_s
        };
        let (tb, ta) = (truth(false), truth(true));
        let tg = (tb - ta) / tb;
        sum_check += dec.before.mean_delay_s;
        sum_true += tb;
        n += 1;
        if (tg > vp.threshold) == dec.accepted {
            agree += 1;
        }
        println!(
            "{:5} | {:14.1} | {:15.1} | {:+9.1}% | {:13.1} | {:14.1} | {:+8.1}% | {}",
            t.0 / 1000,
            dec.before.mean_delay_s,
            dec.after.mean_delay_s,
            dec.improvement * 100.0,
            tb,
            ta,
            tg * 100.0,
            match (dec.accepted, k) {
                (false, _) => "no",
                (true, 0) => "yes",
                (true, _) => "yes, the mean plans",
            }
        );
        if dec.accepted {
            cab.deploy(&cand, t);
            in_force = cand;
        }
        t += params.replan_every;
    }
    cab.run_until(&mut sim, dur);
    println!(
        "entering veh/h, check against the demand file, per re-plan: {}",
        entering_log
            .iter()
            .map(|(a, b)| format!("{a:.0}/{b:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "the check agreed with the truth on {agree} of {n} re-plans; under the plans in force it saw {:+.1}% the truth's delay; the run's mean delay {:.1} s",
        (sum_check / sum_true - 1.0) * 100.0,
        sim.metrics().mean_delay_s
    );
}
