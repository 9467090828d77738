//! How far are the estimator's flows from the demand that made the counts? Runs a network
//! under the fixed plans for its mean demand (priced permissive lefts), seed 1, feeds each
//! 10 min of simulated detector counts to the `Estimator`, and prints the mean absolute
//! error of the planning flows per movement against the demand file's slice (left turns and
//! the others apart): the estimate (the filter as a random walk) against the interval just
//! counted and against the interval to come, and the forecast along the history's profile
//! (`Estimator::forecast`) against the interval to come.
//!
//! ```text
//! cargo run --release -p optimizer --example estimate_error -- grid4
//! ```

mod common;

use intersections::spec::Turn;
use intersections::Ms;
use optimizer::adaptive::{webster_plans, CountTaker};
use optimizer::cabinet::Cabinets;
use optimizer::decide::Operation;
use optimizer::estimate::{demand_flows, EstimateParams, Estimator};
use optimizer::webster::{GapAcceptance, PlanParams};
use simulator::{Control, ControlKind};

fn main() {
    let (name, _) = common::args();
    let sc = common::shipped(&name);
    let pp = PlanParams {
        permissive_left: Some(GapAcceptance::default()),
        ..PlanParams::default()
    };
    let plans = webster_plans(&sc, &pp).unwrap();
    let op = Operation::coordinated(plans);
    let net = sc.network();
    let mut sim = sc
        .simulation(&Control::of_kind(ControlKind::External), 1)
        .unwrap();
    let mut cab = Cabinets::new(&sim, &op).unwrap();
    let mut est = Estimator::new(net, Some(sc.demand()), EstimateParams::default());
    let mut still = Estimator::new(
        net,
        Some(sc.demand()),
        EstimateParams {
            history_trend: false,
            ..EstimateParams::default()
        },
    );
    let mut taker = CountTaker::new(&sim);
    // Mean absolute error per movement (share of the true flow), left turns and the others.
    let mape = |e: &[Vec<f64>], truth: &[Vec<f64>]| {
        let (mut el, mut nl, mut eo, mut no) = (0.0, 0, 0.0, 0);
        for (i, ix) in net.intersections.iter().enumerate() {
            for (m, mv) in ix.movements.iter().enumerate() {
                let (a, b) = (e[i][m], truth[i][m]);
                if b < 1.0 {
                    continue;
                }
                let err = (a - b).abs() / b;
                if matches!(mv.turn, Turn::Left) {
                    el += err;
                    nl += 1;
                } else {
                    eo += err;
                    no += 1;
                }
            }
        }
        (100.0 * el / nl.max(1) as f64, 100.0 * eo / no.max(1) as f64)
    };
    let slice_of = |t: i64| ((t / 900) as usize).min(sc.demand().slices - 1);
    println!(
        "{name}: error per movement, left turns / the others (mean absolute, % of the true flow)"
    );
    println!("    t s | estimate, interval ended | estimate held, interval to come | forecast, interval to come");
    let mut sums = [0.0; 3];
    for k in 1..=12 {
        let t = Ms::from_s(600 * k);
        cab.run_until(&mut sim, t);
        let records = taker.take(&sim);
        est.push(&records);
        still.push(&records);
        let past = demand_flows(net, sc.demand(), Some(slice_of(600 * k - 300)));
        let coming = demand_flows(net, sc.demand(), Some(slice_of(600 * k + 300)));
        let a = mape(
            &still
                .estimate()
                .planning_flows(optimizer::estimate::LOWER_BOUND_BOOST),
            &past,
        );
        let b = mape(
            &still
                .estimate()
                .planning_flows(optimizer::estimate::LOWER_BOUND_BOOST),
            &coming,
        );
        let c = mape(
            &est.forecast(t + Ms::from_s(300))
                .planning_flows(optimizer::estimate::LOWER_BOUND_BOOST),
            &coming,
        );
        if k > 1 {
            for (s, x) in sums.iter_mut().zip([a, b, c]) {
                *s += (x.0 + x.1) / 2.0 / 11.0;
            }
        }
        println!(
            "{:7} | {:10.1}% / {:5.1}%        | {:10.1}% / {:5.1}%               | {:10.1}% / {:5.1}%",
            600 * k, a.0, a.1, b.0, b.1, c.0, c.1
        );
    }
    println!(
        "mean from 20 min on: estimate {:.1}%, held for the interval to come {:.1}%, forecast {:.1}%",
        sums[0], sums[1], sums[2]
    );
}
