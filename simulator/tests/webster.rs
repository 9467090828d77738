//! An isolated fixed-time crossing with Poisson arrivals: the mean delay per approach agrees
//! with Webster's formula (1958) within 15% for degrees of saturation 0.3 to 0.85.
//!
//! Webster needs the saturation flow `s` and the effective green ratio `lambda`; like an
//! engineer in the field we measure them on the model: `s` from a standing queue's discharge,
//! the capacity `lambda * s` from an oversaturated run. Delay is measured to the stop line
//! (the approach delay), which is what Webster's queue at the stop line describes.

mod common;

use intersections::Ms;
use simulator::{synth, Control, Scenario, SimConfig};

const CYCLE: f64 = 60.0;

fn scenario(q: f64) -> Scenario {
    let (net, demand) = synth::crossing(600.0, 24.0, 24.0, 6.0, q, q, 3).unwrap();
    Scenario::new(net, demand, SimConfig::default()).unwrap()
}

/// Vehicles per hour through one approach when it always has a queue.
fn capacity() -> f64 {
    let sc = scenario(1600.0);
    let mut sim = sc.simulation(&Control::fixed(), 1).unwrap();
    sim.run_until(Ms::from_s(300));
    sim.reset_metrics();
    sim.run_until(Ms::from_s(300 + 1800));
    let m = sim.metrics();
    m.approach("C", "W_C").unwrap().vehicles as f64 * 2.0
}

fn webster(c: f64, lambda: f64, s: f64, q_veh_h: f64) -> f64 {
    let q = q_veh_h / 3600.0;
    let x = q / (lambda * s / 3600.0);
    c * (1.0 - lambda).powi(2) / (2.0 * (1.0 - lambda * x)) + x * x / (2.0 * q * (1.0 - x))
        - 0.65 * (c / (q * q)).powf(1.0 / 3.0) * x.powf(2.0 + 5.0 * lambda)
}

/// Mean approach delay per approach (`W_C`, `S_C`) over several seeds, after a 10-minute
/// warm-up.
fn simulated_delay(q: f64, seeds: &[u64], minutes: i64) -> [f64; 2] {
    let sc = scenario(q);
    let mut total = [0.0; 2];
    let mut n = [0.0; 2];
    for &seed in seeds {
        let mut sim = sc.simulation(&Control::fixed(), seed).unwrap();
        sim.run_until(Ms::from_s(600));
        sim.reset_metrics();
        sim.run_until(Ms::from_s(600 + minutes * 60));
        let m = sim.metrics();
        for (k, link) in ["W_C", "S_C"].into_iter().enumerate() {
            let a = m.approach("C", link).unwrap();
            total[k] += a.mean_delay_s * a.vehicles as f64;
            n[k] += a.vehicles as f64;
        }
    }
    [total[0] / n[0], total[1] / n[1]]
}

#[test]
fn delay_agrees_with_webster() {
    let s = common::saturation_flow(&common::discharge(Ms(1000)));
    let cap = capacity();
    let lambda = cap / s;
    eprintln!("s = {s:.0} veh/h, capacity = {cap:.0} veh/h, lambda = {lambda:.3}");
    assert!(
        (0.4..0.55).contains(&lambda),
        "effective green ratio {lambda}"
    );
    for x in [0.3, 0.5, 0.7, 0.85] {
        let q = x * cap;
        let w = webster(CYCLE, lambda, s, q);
        for (approach, d) in ["W_C", "S_C"]
            .into_iter()
            .zip(simulated_delay(q, &[1, 2, 3, 4], 60))
        {
            let err = (d - w) / w;
            eprintln!(
                "x = {x}: {approach} q = {q:.0} veh/h, Webster {w:.1} s, simulated {d:.1} s ({:+.1}%)",
                100.0 * err
            );
            assert!(
                err.abs() <= 0.15,
                "x = {x}, approach {approach}: simulated {d:.1} s vs Webster {w:.1} s"
            );
        }
    }
}
