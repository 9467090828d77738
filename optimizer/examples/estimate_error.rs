//! How far are the estimator's flows from the demand that made the counts? Runs a network
//! under the fixed plans for its mean demand (priced permissive lefts), seed 1, feeds each
//! 10 min of simulated detector counts to the `Estimator`, and prints the mean absolute
//! error of the planning flows per movement against the demand file's slice (left turns and
//! the others apart).
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
    let mut taker = CountTaker::new(&sim);
    for k in 1..=12 {
        let t = Ms::from_s(600 * k);
        cab.run_until(&mut sim, t);
        est.push(&taker.take(&sim));
        let e = est.estimate().planning_flows(1.1);
        let slice = ((600 * k - 300) / 900) as usize;
        let truth = demand_flows(net, sc.demand(), Some(slice));
        let (mut el, mut nl, mut eo, mut no) = (0.0, 0, 0.0, 0);
        let (mut sl_e, mut sl_t) = (0.0, 0.0);
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
                    sl_e += a;
                    sl_t += b;
                } else {
                    eo += err;
                    no += 1;
                }
            }
        }
        println!("t={:5} slice {slice}: left MAPE {:5.1}% (sum est {:6.0} true {:6.0}), other MAPE {:5.1}%", 600*k, 100.0*el/nl as f64, sl_e, sl_t, 100.0*eo/no as f64);
    }
}
