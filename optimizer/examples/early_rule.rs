//! How rules for stopping a check early (`decide::clearly_rejected`) do on every check of
//! greenwave's loop as `bench control` runs it, each check run whole (`early_reject` off):
//! for each variant of the rule, the checks it would stop on their first two seeds and, of
//! those, the ones the whole check accepted (what stopping early would lose). The first row
//! is the rule the check uses (`decide::EARLY_RULE`).
//!
//! ```text
//! cargo run --release -p optimizer --example early_rule -- [NETWORK...] [--price] [--twin]
//!     [--seeds N]
//! ```
//! (default: the four shipped networks, seeds 1-10; `--price`: the planner that prices
//! permissive left turns, as `bench control --price-permissive-lefts`; `--twin`: the
//! persistent twin, as `bench control --persistent-twin`.)

mod common;

use optimizer::adaptive::{commission, run_greenwave_at, AdaptiveParams};
use optimizer::decide::{clearly_rejected, Decision, EarlyRule, EARLY_RULE, EARLY_SEEDS};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seeds: u64 = args
        .iter()
        .position(|a| a == "--seeds")
        .map(|i| {
            args.get(i + 1)
                .and_then(|n| n.parse().ok())
                .expect("--seeds takes a number")
        })
        .unwrap_or(10);
    let mut networks: Vec<String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--seeds"))
        .map(|(_, a)| a.clone())
        .collect();
    if networks.is_empty() {
        networks = ["single", "arterial", "grid4", "district"]
            .map(String::from)
            .to_vec();
    }
    // `--price` as the examples' common command line has it.
    let (_, plan) = common::args();
    let mut params = AdaptiveParams {
        plan,
        persistent_twin: args.iter().any(|a| a == "--twin"),
        ..AdaptiveParams::default()
    };
    params
        .validate
        .as_mut()
        .expect("the loop checks by default")
        .early_reject = false;
    let rules = [
        EARLY_RULE,
        EarlyRule {
            spread_factor: 1.0,
            ..EARLY_RULE
        },
        EarlyRule {
            margin: 0.08,
            ..EARLY_RULE
        },
        EarlyRule {
            spread_factor: 1.0,
            margin: 0.10,
            ..EARLY_RULE
        },
        EarlyRule {
            margin: 0.10,
            ..EARLY_RULE
        },
        EarlyRule {
            spread_factor: 1.0,
            weight_factor: 1.5,
            ..EARLY_RULE
        },
    ];
    let seeds: Vec<u64> = (1..=seeds.max(1)).collect();
    let mut all: Vec<(String, Vec<Decision>)> = Vec::new();
    for name in &networks {
        let sc = common::shipped(name);
        let commissioned = commission(&sc, &params).expect("commissioning");
        let dur = sc.demand().duration();
        let logs = simulator::par_seeds(&seeds, |s| {
            run_greenwave_at(&sc, s, dur, &params, &commissioned).map(|(_, log)| log)
        })
        .expect("the loop runs");
        all.push((
            name.clone(),
            logs.into_iter().flat_map(|l| l.decisions).collect(),
        ));
    }
    println!(
        "checks run whole, seeds 1-{}: {}",
        seeds.len(),
        all.iter()
            .map(|(n, d)| format!(
                "{n} {} ({} accepted)",
                d.len(),
                d.iter().filter(|d| d.accepted).count()
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("rule (spread factor, margin, weight factor): stopped / lost per network, all");
    for (i, rule) in rules.iter().enumerate() {
        let count = |ds: &[Decision]| {
            let stopped: Vec<&Decision> = ds
                .iter()
                .filter(|d| {
                    d.runs.len() > EARLY_SEEDS
                        && clearly_rejected(&d.runs[..EARLY_SEEDS], d.threshold, d.runs.len(), rule)
                })
                .collect();
            let lost = stopped.iter().filter(|d| d.accepted).count();
            (stopped.len(), lost)
        };
        let per: Vec<(usize, usize)> = all.iter().map(|(_, d)| count(d)).collect();
        let (s, l) = per.iter().fold((0, 0), |(s, l), (a, b)| (s + a, l + b));
        println!(
            "{:>4} x spread, {:>2.0} points, x{:.1}{}: {}; all {s} / {l}",
            rule.spread_factor,
            rule.margin * 100.0,
            rule.weight_factor,
            if i == 0 { " (the check's)" } else { "" },
            per.iter()
                .zip(&all)
                .map(|((s, l), (n, _))| format!("{n} {s} / {l}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
