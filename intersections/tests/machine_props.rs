//! Property test of the signal state machine: random sequences of plans, commands and faults,
//! watched by the independent [`Audit`] (it shares no code with the validator, the runner or
//! the machine): conflicting groups are never open together, every intergreen and minimum
//! green holds, yellows and pedestrian clearances are shown in full, flash is left via red.
//! With random detector inputs (and failed detectors) the plans run coordinated actuated, or
//! isolated actuated when the test switches it on.

mod common;

use std::path::{Path, PathBuf};

use intersections::audit::Audit;
use intersections::field::DetectorState;
use intersections::load::load_network;
use intersections::machine::{Detectors, Manual, SignalMachine};
use intersections::model::Network;
use intersections::Ms;
use proptest::prelude::*;

fn shipped() -> Vec<(PathBuf, Network)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("networks");
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        if !text.contains("kind = \"network\"") {
            continue;
        }
        out.push((f.clone(), load_network(&f).unwrap()));
    }
    out
}

#[derive(Clone, Debug)]
enum Op {
    SetPlan(usize),
    Hold(usize),
    Release,
    AllRed,
    Flash,
    Fault,
    Reset,
    /// Which detectors see traffic (bit per detector) and how often (on one second in n).
    Traffic(u64, u8),
    /// Which detectors are failed (bit per detector).
    Failed(u64),
    Isolated(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..8).prop_map(Op::SetPlan),
        2 => (0usize..8).prop_map(Op::Hold),
        3 => Just(Op::Release),
        1 => Just(Op::AllRed),
        1 => Just(Op::Flash),
        1 => Just(Op::Fault),
        2 => Just(Op::Reset),
        3 => (any::<u64>(), 1u8..6).prop_map(|(p, n)| Op::Traffic(p, n)),
        1 => any::<u64>().prop_map(|p| Op::Failed(p & p.rotate_left(7))),
        2 => any::<bool>().prop_map(Op::Isolated),
    ]
}

/// Detector states driven by a bit pattern: detector `d` is occupied during one second in
/// `every` when its bit is set.
struct Street {
    states: Vec<DetectorState>,
    failed: Vec<bool>,
    pattern: u64,
    every: i64,
}

impl Street {
    fn new(n: usize) -> Self {
        Street {
            states: vec![DetectorState::default(); n],
            failed: vec![false; n],
            pattern: 0,
            every: 1,
        }
    }
    fn at(&mut self, now: Ms) {
        for (d, st) in self.states.iter_mut().enumerate() {
            let occ = (self.pattern >> (d % 64)) & 1 == 1 && (now.0 / 1000) % self.every == 0;
            common::set_occupied(st, now, occ);
        }
    }
}

fn step(
    m: &mut SignalMachine,
    street: &mut Option<Street>,
    now: Ms,
) -> intersections::machine::Output {
    match street {
        Some(s) => {
            s.at(now);
            m.step_with(
                now,
                &Detectors {
                    states: &s.states,
                    failed: &s.failed,
                },
            )
        }
        None => m.step(now),
    }
}

fn run(net: &Network, ixi: usize, ops: &[(u32, Op)], detectors: bool) -> Result<usize, String> {
    let ix = &net.intersections[ixi];
    let plans = &ix.plans;
    let mut m = SignalMachine::new(ix, &net.safety, plans.first().cloned(), Ms(1_000));
    let mut street = detectors.then(|| Street::new(ix.detectors.len()));
    let mut now = Ms(1_000);
    let first = step(&mut m, &mut street, now);
    let mut obs = Audit::new(ix, &first.colours, now);
    let mut wake = first.next_wake;
    for (delay, op) in ops {
        let until = now + Ms(*delay as i64);
        while now < until {
            let next = (now + Ms(100)).min(wake).min(until);
            now = if next > now { next } else { now + Ms(1) };
            let out = step(&mut m, &mut street, now);
            obs.see(now, &out.colours)?;
            wake = out.next_wake;
        }
        match op {
            Op::SetPlan(k) => m.set_plan(plans[k % plans.len()].clone()),
            Op::Hold(s) => {
                let _ = m.command(now, Manual::HoldStage(s % ix.stages.len()));
            }
            Op::Release => {
                let _ = m.command(now, Manual::Release);
            }
            Op::AllRed => {
                let _ = m.command(now, Manual::AllRed);
            }
            Op::Flash => {
                let _ = m.command(now, Manual::Flash);
            }
            Op::Fault => m.fault(now, "test"),
            Op::Reset => {
                let _ = m.command(now, Manual::ResetFault);
            }
            Op::Traffic(p, n) => {
                if let Some(s) = &mut street {
                    s.pattern = *p;
                    s.every = *n as i64;
                }
            }
            Op::Failed(p) => {
                if let Some(s) = &mut street {
                    for (d, f) in s.failed.iter_mut().enumerate() {
                        *f = (p >> (d % 64)) & 1 == 1;
                    }
                }
            }
            Op::Isolated(on) => m.set_isolated(*on),
        }
        let out = step(&mut m, &mut street, now);
        obs.see(now, &out.colours)?;
        wake = out.next_wake;
    }
    Ok(obs.changes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    #[test]
    fn machine_never_breaks_a_safety_rule(ops in proptest::collection::vec((prop_oneof![0u32..8_000, 0u32..120_000], op()), 1..16), pick in 0usize..1000, detectors in proptest::bool::weighted(0.75)) {
        let nets = shipped();
        let all: Vec<(usize, usize)> = nets.iter().enumerate().flat_map(|(n, (_, net))| {
            net.intersections.iter().enumerate().filter(|(_, ix)| !ix.plans.is_empty()).map(move |(i, _)| (n, i))
        }).collect();
        let (n, i) = all[pick % all.len()];
        let r = run(&nets[n].1, i, &ops, detectors);
        prop_assert!(r.is_ok(), "{}: intersection {}: {}", nets[n].0.display(), nets[n].1.intersections[i].id, r.unwrap_err());
    }
}

#[test]
fn machine_runs_plans_and_changes_between_them() {
    for (file, net) in shipped() {
        // The first three signalised intersections of each network (the proptest above samples
        // all of them).
        for (i, ix) in net
            .intersections
            .iter()
            .enumerate()
            .filter(|(_, ix)| !ix.plans.is_empty())
            .take(3)
        {
            let last = ix.plans.len() - 1;
            let ops = vec![
                (200_000, Op::SetPlan(last)),
                (400_000, Op::SetPlan(0)),
                (300_000, Op::Hold(0)),
                (100_000, Op::Release),
                (200_000, Op::Release),
            ];
            let changes = run(&net, i, &ops, false)
                .unwrap_or_else(|e| panic!("{}: {}: {e}", file.display(), ix.id));
            assert!(
                changes > 20,
                "{}: {}: only {changes} changes",
                file.display(),
                ix.id
            );
        }
    }
}
