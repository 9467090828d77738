//! The plan validator accepts exactly the safe plans.
//!
//! Random plans for every signalised intersection of every shipped network (random stage
//! sequences, whole-second greens of 1-60 s, interstages omitted or 0-10 s, the exact cycle or
//! a random one, random offsets) are judged twice: by `plan::validate`, and by an oracle
//! written here that shares no code with the validator or the runner. The oracle lays out the
//! colour of every signal group over the cycle, tick by tick (a tick divides every duration
//! involved, so sampling is exact), and checks the safety rules on that picture: conflicting
//! groups never open together, every intergreen measured from end of green (walk) to start of
//! green (walk), minimum greens and walks, yellows inside their interstage, cycle bounds, the
//! cycle adding up, every group served. The two must agree on every plan; and without that last
//! rule the oracle must agree with `plan::validate_part` (a part of a plan: a transition).
//!
//! `plan::required_interstage` is used only to build inputs (the exact cycle of a plan whose
//! interstages are omitted, and near-minimal explicit interstages); the oracle computes the
//! omitted interstages on its own.

mod common;

use std::cell::Cell;

use intersections::diag::FieldPath;
use intersections::load::network_from_str;
use intersections::model::{Intersection, Network, Safety};
use intersections::plan;
use intersections::spec::{ControlKind, GroupKind, PlanSpec, StageTimeSpec};
use intersections::Ms;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

// ---------------------------------------------------------------------------------------------
// The oracle.

/// Seconds as written in a file to milliseconds, the way a person reads them.
fn ms_of(s: f64) -> Option<i64> {
    if s.is_finite() && s.abs() < 1e9 {
        Some((s * 1000.0).round() as i64)
    } else {
        None
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

/// What a group shows at one tick, as far as safety goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Show {
    Red,
    RedYellow,
    /// Green or walk.
    Go,
    /// Yellow or pedestrian clearance.
    Clear,
}

impl Show {
    fn open(self) -> bool {
        matches!(self, Show::Go | Show::Clear)
    }
}

/// The shortest interstage from stage `a` to stage `b`, from this transition alone: ending
/// vehicles show their whole yellow in it, starting groups their red-yellow, and every
/// conflicting (ending, starting) pair gets its intergreen, which for an ending pedestrian group
/// already runs during its clearance at the end of the stage.
fn shortest_interstage(ix: &Intersection, a: usize, b: usize) -> i64 {
    let ga = &ix.stages[a].groups;
    let gb = &ix.stages[b].groups;
    let mut need = 0i64;
    for e in ga.iter().filter(|g| !gb.contains(g)) {
        let eg = &ix.groups[e.0];
        let already = match eg.kind {
            GroupKind::Vehicle => {
                need = need.max(eg.clearance.0);
                0
            }
            GroupKind::Pedestrian => eg.clearance.0,
        };
        for s in gb.iter().filter(|g| !ga.contains(g)) {
            if ix.conflicts[e.0][s.0] {
                need = need.max(ix.intergreen[e.0][s.0].0 - already);
            }
        }
    }
    for s in gb.iter().filter(|g| !ga.contains(g)) {
        need = need.max(ix.groups[s.0].red_yellow.0);
    }
    need
}

/// Cyclic runs `[start, start + len)` of ticks where `on` holds (none if always or never).
fn runs(on: &[bool]) -> Vec<(usize, usize)> {
    let n = on.len();
    let Some(off) = on.iter().position(|x| !x) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut k = 0;
    while k < n {
        let t = (off + k) % n;
        if on[t] {
            let mut len = 0;
            while len < n && on[(t + len) % n] {
                len += 1;
            }
            out.push((t, len));
            k += len;
        } else {
            k += 1;
        }
    }
    out
}

/// Judge a plan by the safety rules. `Ok` if safe, else the reasons.
fn oracle(
    ix: &Intersection,
    safety: &Safety,
    spec: &PlanSpec,
    every_group: bool,
) -> Result<(), Vec<String>> {
    let mut why = Vec::new();
    // Field bounds.
    let cycle = ms_of(spec.cycle_s);
    let (cmin, cmax) = (
        ms_of(safety.spec.cycle_min_s).unwrap(),
        ms_of(safety.spec.cycle_max_s).unwrap(),
    );
    match cycle {
        Some(c) if c >= cmin && c <= cmax => {}
        _ => why.push(format!("cycle {} outside bounds", spec.cycle_s)),
    }
    match (ms_of(spec.offset_s), cycle) {
        (Some(o), Some(c)) if o >= 0 && o < c => {}
        _ => why.push(format!("offset {} not in [0, cycle)", spec.offset_s)),
    }
    if spec.stages.is_empty() {
        why.push("no stages".into());
    }
    let mut seq = Vec::new();
    for st in &spec.stages {
        match ix.stages.iter().position(|s| s.id == st.stage) {
            Some(i) => seq.push(i),
            None => why.push(format!("unknown stage {}", st.stage)),
        }
        if !ms_of(st.green_s).is_some_and(|g| g > 0 && g <= 300_000) {
            why.push(format!("green {} out of range", st.green_s));
        }
        if let Some(i) = st.interstage_s {
            if !ms_of(i).is_some_and(|v| (0..=60_000).contains(&v)) {
                why.push(format!("interstage {i} out of range"));
            }
        }
    }
    if !why.is_empty() {
        return Err(why);
    }
    let cycle = cycle.unwrap();
    let n = seq.len();
    let green: Vec<i64> = spec
        .stages
        .iter()
        .map(|s| ms_of(s.green_s).unwrap())
        .collect();
    let inter: Vec<i64> = (0..n)
        .map(|k| match spec.stages[k].interstage_s {
            Some(v) => ms_of(v).unwrap(),
            None => shortest_interstage(ix, seq[k], seq[(k + 1) % n]),
        })
        .collect();
    let total: i64 = green.iter().sum::<i64>() + inter.iter().sum::<i64>();
    if total != cycle {
        return Err(vec![format!(
            "greens + interstages {total} != cycle {cycle}"
        )]);
    }

    let groups = &ix.groups;
    let ng = groups.len();
    let member = |g: usize, k: usize| ix.stages[seq[k % n]].groups.iter().any(|x| x.0 == g);

    // Yellows and red-yellows inside the interstage.
    for k in 0..n {
        for g in 0..ng {
            let (now, next) = (member(g, k), member(g, k + 1));
            if now
                && !next
                && groups[g].kind == GroupKind::Vehicle
                && inter[k] < groups[g].clearance.0
            {
                why.push(format!(
                    "yellow of {} does not fit interstage {k}",
                    groups[g].id
                ));
            }
            if !now && next && inter[k] < groups[g].red_yellow.0 {
                why.push(format!(
                    "red-yellow of {} does not fit interstage {k}",
                    groups[g].id
                ));
            }
        }
    }
    for g in 0..ng {
        if every_group && !(0..n).any(|k| member(g, k)) {
            why.push(format!("{} never served", groups[g].id));
        }
    }

    // The tick: divides every time involved.
    let mut tick = cycle;
    for v in green.iter().chain(&inter) {
        tick = gcd(tick, *v);
    }
    for g in groups {
        for v in [g.clearance.0, g.red_yellow.0, g.min_green.0] {
            tick = gcd(tick, v);
        }
    }
    let nt = (cycle / tick) as usize;
    let at = |ms: i64| (ms / tick) as usize;

    // Per group: "in the stage's time" — the stage's green, and its interstage when the group
    // runs on into the next stage.
    let mut base = vec![vec![false; nt]; ng];
    let mut t0 = 0i64;
    for k in 0..n {
        for g in 0..ng {
            if !member(g, k) {
                continue;
            }
            let end = if member(g, k + 1) {
                t0 + green[k] + inter[k]
            } else {
                t0 + green[k]
            };
            for t in at(t0)..at(end) {
                base[g][t] = true;
            }
        }
        t0 += green[k] + inter[k];
    }

    // Colours.
    let mut show = vec![vec![Show::Red; nt]; ng];
    for g in 0..ng {
        let grp = &groups[g];
        let rs = runs(&base[g]);
        if base[g].iter().all(|x| *x) {
            show[g] = vec![Show::Go; nt];
            continue;
        }
        match grp.kind {
            GroupKind::Vehicle => {
                for &(s, len) in &rs {
                    for d in 0..len {
                        show[g][(s + d) % nt] = Show::Go;
                    }
                }
                for &(s, len) in &rs {
                    let end = s + len;
                    for d in 0..at(grp.clearance.0) {
                        let t = (end + d) % nt;
                        if show[g][t] == Show::Go {
                            break;
                        }
                        show[g][t] = Show::Clear;
                    }
                    for d in 1..=at(grp.red_yellow.0) {
                        let t = (s + nt - d % nt) % nt;
                        if show[g][t] == Show::Red {
                            show[g][t] = Show::RedYellow;
                        }
                    }
                }
            }
            GroupKind::Pedestrian => {
                for &(s, len) in &rs {
                    let clear = at(grp.clearance.0).min(len);
                    for d in 0..len {
                        show[g][(s + d) % nt] = if d < len - clear {
                            Show::Go
                        } else {
                            Show::Clear
                        };
                    }
                }
            }
        }
    }

    // Conflicting groups never open together.
    for a in 0..ng {
        for b in (a + 1)..ng {
            if ix.conflicts[a][b] {
                if let Some(t) = (0..nt).find(|&t| show[a][t].open() && show[b][t].open()) {
                    why.push(format!(
                        "{} and {} open together at {} ms",
                        groups[a].id,
                        groups[b].id,
                        t as i64 * tick
                    ));
                }
            }
        }
    }

    // Green (walk) starts and ends.
    let go: Vec<Vec<bool>> = show
        .iter()
        .map(|s| s.iter().map(|c| *c == Show::Go).collect())
        .collect();
    let starts: Vec<Vec<usize>> = go
        .iter()
        .map(|v| runs(v).iter().map(|r| r.0).collect())
        .collect();
    let ends: Vec<Vec<usize>> = go
        .iter()
        .map(|v| runs(v).iter().map(|r| (r.0 + r.1) % nt).collect())
        .collect();

    // Intergreens, measured on the picture.
    for e in 0..ng {
        for s in 0..ng {
            if e == s || !ix.conflicts[e][s] || ends[e].is_empty() {
                continue;
            }
            for &ts in &starts[s] {
                let gap =
                    ends[e].iter().map(|&te| (ts + nt - te) % nt).min().unwrap() as i64 * tick;
                if gap < ix.intergreen[e][s].0 {
                    why.push(format!(
                        "intergreen {} -> {} is {gap} ms, needs {}",
                        groups[e].id, groups[s].id, ix.intergreen[e][s].0
                    ));
                }
            }
        }
    }

    // Minimum green and walk.
    for g in 0..ng {
        if base[g].iter().all(|x| *x) {
            continue;
        }
        let grp = &groups[g];
        for &(_, len) in &runs(&base[g]) {
            let go_len = match grp.kind {
                GroupKind::Vehicle => len as i64 * tick,
                GroupKind::Pedestrian => len as i64 * tick - grp.clearance.0,
            };
            if go_len < grp.min_green.0 {
                why.push(format!(
                    "{} gets {go_len} ms of green/walk, needs {}",
                    grp.id, grp.min_green.0
                ));
            }
        }
    }

    if why.is_empty() {
        Ok(())
    } else {
        Err(why)
    }
}

// ---------------------------------------------------------------------------------------------
// Plans to judge.

/// Random choices, turned into a plan for a given intersection by [`build`].
#[derive(Clone, Debug)]
struct Raw {
    /// Build a plausible plan (every stage once, greens above the minimums, interstages near
    /// the shortest) rather than a wild one.
    plausible: bool,
    seq: Vec<usize>,
    greens: Vec<u32>,
    inters: Vec<Option<u32>>,
    exact_cycle: bool,
    cycle: u32,
    offset: u32,
    /// Plausible plans: nudge one value by a second (stage position, which value, sign).
    nudge: Option<(usize, u8, bool)>,
    /// Plausible plans: stretch the first green so the cycle lands on or just outside a bound.
    target: Option<u8>,
    /// Offset inside the cycle (0), exactly the cycle (1) or beyond it (2).
    offset_kind: u8,
}

fn raw() -> impl Strategy<Value = Raw> {
    (
        any::<bool>(),
        prop::collection::vec(0usize..64, 1..=6),
        prop::collection::vec(1u32..=60, 8),
        prop::collection::vec(prop::option::of(0u32..=10), 8),
        prop::bool::weighted(0.8),
        20u32..=200,
        0u32..=200,
        prop::option::of((0usize..8, 0u8..3, any::<bool>())),
        prop::option::weighted(0.2, 0u8..4),
        prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
    )
        .prop_map(
            |(
                plausible,
                seq,
                greens,
                inters,
                exact_cycle,
                cycle,
                offset,
                nudge,
                target,
                offset_kind,
            )| Raw {
                plausible,
                seq,
                greens,
                inters,
                exact_cycle,
                cycle,
                offset,
                nudge,
                target,
                offset_kind,
            },
        )
}

fn ceil_s(m: Ms) -> u32 {
    ((m.0 + 999) / 1000) as u32
}

fn build(ix: &Intersection, safety: &Safety, r: &Raw) -> PlanSpec {
    let ns = ix.stages.len();
    let (seq, greens, mut inters): (Vec<usize>, Vec<u32>, Vec<Option<f64>>) = if r.plausible {
        // Every stage once, in an order set by the random keys.
        let mut order: Vec<usize> = (0..ns).collect();
        order.sort_by_key(|&s| (r.seq.get(s).copied().unwrap_or(0), s));
        let greens = order
            .iter()
            .enumerate()
            .map(|(k, &s)| {
                let need = ix.stages[s]
                    .groups
                    .iter()
                    .map(|g| {
                        let g = &ix.groups[g.0];
                        match g.kind {
                            GroupKind::Vehicle => g.min_green,
                            GroupKind::Pedestrian => g.min_green + g.clearance,
                        }
                    })
                    .max()
                    .unwrap_or(Ms::ZERO);
                ceil_s(need).max(1) + r.greens[k % 8] % 8
            })
            .collect();
        let inters = (0..order.len())
            .map(|k| {
                r.inters[k % 8].map(|x| {
                    let req = plan::required_interstage(ix, order[k], order[(k + 1) % order.len()]);
                    (ceil_s(req) + x % 3) as f64
                })
            })
            .collect();
        (order, greens, inters)
    } else {
        let seq: Vec<usize> = r.seq.iter().map(|s| s % ns).collect();
        let greens = (0..seq.len()).map(|k| r.greens[k]).collect();
        let inters = (0..seq.len()).map(|k| r.inters[k].map(f64::from)).collect();
        (seq, greens, inters)
    };
    let mut greens: Vec<f64> = greens.into_iter().map(f64::from).collect();
    let n = seq.len();
    let mut cycle_delta = 0.0;
    if let (true, Some((k, what, up))) = (r.plausible, r.nudge) {
        let d = if up { 1.0 } else { -1.0 };
        let k = k % n;
        match what {
            0 => greens[k] = (greens[k] + d).max(1.0),
            1 => {
                if let Some(v) = inters[k] {
                    inters[k] = Some((v + d).max(0.0));
                }
            }
            _ => cycle_delta = d,
        }
    }
    let exact: Ms = (0..n).fold(Ms::ZERO, |acc, k| {
        let i = match inters[k] {
            Some(v) => Ms::from_secs_f64(v).unwrap(),
            None => plan::required_interstage(ix, seq[k], seq[(k + 1) % n]),
        };
        acc + Ms::from_secs_f64(greens[k]).unwrap() + i
    });
    let mut cycle_s = if r.exact_cycle || r.plausible {
        exact.as_secs_f64() + cycle_delta
    } else {
        f64::from(r.cycle)
    };
    if let (true, Some(t)) = (r.plausible, r.target) {
        let goal = match t {
            0 => safety.spec.cycle_min_s - 1.0,
            1 => safety.spec.cycle_min_s,
            2 => safety.spec.cycle_max_s,
            _ => safety.spec.cycle_max_s + 1.0,
        };
        let stretched = greens[0] + goal - exact.as_secs_f64();
        if stretched >= 1.0 {
            greens[0] = (stretched * 1000.0).round() / 1000.0;
            cycle_s = goal;
        }
    }
    let whole = cycle_s.max(1.0).floor() as u32;
    let offset_s = match r.offset_kind {
        0 => f64::from(r.offset % whole),
        1 => cycle_s,
        _ => cycle_s + f64::from(r.offset % 50),
    };
    PlanSpec {
        id: "p".into(),
        cycle_s,
        offset_s,
        stages: (0..n)
            .map(|k| StageTimeSpec {
                stage: ix.stages[seq[k]].id.clone(),
                green_s: greens[k],
                interstage_s: inters[k],
            })
            .collect(),
    }
}

fn verdicts_agree(ix: &Intersection, safety: &Safety, spec: &PlanSpec) -> Result<bool, String> {
    // A whole plan (`validate`), and the same stages as a part of a plan that need not serve
    // every group (`validate_part`, the transitions of stage skipping).
    let part = agree(
        "validate_part",
        plan::validate_part(ix, safety, spec, &FieldPath::root()),
        oracle(ix, safety, spec, false),
        ix,
        spec,
    )?;
    let whole = agree(
        "validate",
        plan::validate(ix, safety, spec, &FieldPath::root()),
        oracle(ix, safety, spec, true),
        ix,
        spec,
    )?;
    if whole && !part {
        return Err(format!(
            "a whole plan passes where its part does not at {}",
            ix.id
        ));
    }
    Ok(whole)
}

fn agree(
    what: &str,
    v: Result<intersections::Plan, Vec<intersections::diag::Problem>>,
    o: Result<(), Vec<String>>,
    ix: &Intersection,
    spec: &PlanSpec,
) -> Result<bool, String> {
    match (&v, &o) {
        (Ok(_), Ok(())) => Ok(true),
        (Err(_), Err(_)) => Ok(false),
        (Ok(_), Err(why)) => Err(format!(
            "{what} ACCEPTS an unsafe plan at {}:\n{spec:#?}\noracle: {why:#?}",
            ix.id
        )),
        (Err(ps), Ok(())) => Err(format!(
            "{what} REJECTS a safe plan at {}:\n{spec:#?}\nvalidator: {}",
            ix.id,
            ps.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )),
    }
}

const CASES_PER_INTERSECTION: u32 = 256;

/// The shipped networks, plus two variants of `single.toml` that widen what the generator can
/// reach: extra stages (a vehicle group that ends with nothing conflicting starting, a
/// pedestrian scramble) and a jurisdiction with red-yellow before green.
fn networks() -> Vec<(String, Network)> {
    let mut out: Vec<(String, Network)> = common::shipped_networks()
        .iter()
        .map(|(f, n)| (common::name(f), n.clone()))
        .collect();
    let single = std::fs::read_to_string(common::networks_dir().join("single.toml")).unwrap();
    let extra_stages = "[[intersections.stages]]\nid = \"walk_collector\"\ngroups = [\"P_north\", \"P_south\"]\n\n\
        [[intersections.stages]]\nid = \"through_only\"\ngroups = [\"EW_through\"]\n\n\
        [[intersections.stages]]\nid = \"scramble\"\ngroups = [\"P_north\", \"P_south\", \"P_east\", \"P_west\"]\n\n\
        [[intersections.detectors]]";
    let staged = single.replacen("[[intersections.detectors]]", extra_stages, 1);
    let variants = [
        ("single.toml+stages", staged.clone()),
        (
            "single.toml+stages+red-yellow",
            staged.replacen("[[nodes]]", "[safety]\nred_yellow_s = 1\n\n[[nodes]]", 1),
        ),
    ];
    for (name, text) in variants {
        assert_ne!(text, single);
        let net = network_from_str(name, &text).unwrap_or_else(|d| panic!("{d}"));
        out.push((name.to_string(), net));
    }
    out
}

/// A seed per intersection, so that each sees different plans, the same on every run.
fn seed(file: &str, ix: &str) -> [u8; 32] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut out = [0u8; 32];
    for (i, b) in file.bytes().chain([0]).chain(ix.bytes()).enumerate() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        out[i % 32] ^= (h >> 24) as u8;
    }
    out[..8].copy_from_slice(&h.to_le_bytes());
    out
}

#[test]
fn validator_accepts_exactly_the_safe_plans() {
    let nets = networks();
    let jobs: Vec<(&str, &Network, &Intersection)> = nets
        .iter()
        .flat_map(|(f, n)| n.intersections.iter().map(move |ix| (f.as_str(), n, ix)))
        .filter(|(_, _, ix)| ix.control == ControlKind::Signal && !ix.stages.is_empty())
        .collect();
    assert!(!jobs.is_empty());
    // Two workers (CI has two cores); each intersection is one deterministic run.
    let results: Vec<(usize, usize)> = std::thread::scope(|sc| {
        let halves: Vec<_> = jobs
            .chunks(jobs.len().div_ceil(2))
            .map(|chunk| {
                sc.spawn(move || {
                    chunk
                        .iter()
                        .map(|&(f, n, ix)| judge_many(f, n, ix))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        halves
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let accepted: usize = results.iter().map(|r| r.0).sum();
    let rejected: usize = results.iter().map(|r| r.1).sum();
    assert!(accepted > 0 && rejected > 0);
}

/// Judge [`CASES_PER_INTERSECTION`] random plans at one intersection; (accepted, rejected).
fn judge_many(file: &str, net: &Network, ix: &Intersection) -> (usize, usize) {
    let counts = (Cell::new(0usize), Cell::new(0usize));
    let config = Config {
        cases: CASES_PER_INTERSECTION,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed(file, &ix.id)),
    );
    let result = runner.run(&raw(), |r| {
        let spec = build(ix, &net.safety, &r);
        match verdicts_agree(ix, &net.safety, &spec) {
            Ok(true) => counts.0.set(counts.0.get() + 1),
            Ok(false) => counts.1.set(counts.1.get() + 1),
            Err(e) => return Err(TestCaseError::fail(e)),
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{file} {}: {e}", ix.id);
    }
    let (acc, rej) = (counts.0.get(), counts.1.get());
    // Both verdicts occur in numbers at every intersection.
    assert!(
        acc >= 16 && rej >= 16,
        "{file} {}: too one-sided: {acc} accepted, {rej} rejected",
        ix.id
    );
    (acc, rej)
}

/// Every plan that ships is safe by the oracle, and the oracle sees the unsafety of some
/// plainly broken variants of it (so it is not vacuous).
#[test]
fn oracle_agrees_on_shipped_plans_and_their_breakage() {
    let mut checked = 0;
    for (file, net) in common::shipped_networks() {
        for ix in &net.intersections {
            for p in &ix.plans {
                let spec = p.to_spec(ix);
                oracle(ix, &net.safety, &spec, true).unwrap_or_else(|why| {
                    panic!("{} {} {}: {why:#?}", common::name(file), ix.id, p.id)
                });
                // Every interstage down to zero (cycle kept consistent): unsafe.
                let mut zero = spec.clone();
                for s in &mut zero.stages {
                    zero.cycle_s -= s.interstage_s.unwrap_or(0.0);
                    s.interstage_s = Some(0.0);
                }
                zero.cycle_s = (zero.cycle_s * 1000.0).round() / 1000.0;
                if zero.cycle_s >= net.safety.spec.cycle_min_s {
                    assert!(
                        oracle(ix, &net.safety, &zero, true).is_err(),
                        "{} {}",
                        ix.id,
                        p.id
                    );
                    assert!(!verdicts_agree(ix, &net.safety, &zero).unwrap());
                }
                // Greens of one second: below every minimum.
                let mut short = spec.clone();
                for s in &mut short.stages {
                    short.cycle_s -= s.green_s - 1.0;
                    s.green_s = 1.0;
                }
                assert!(oracle(ix, &net.safety, &short, true).is_err());
                checked += 1;
            }
        }
    }
    assert!(checked > 0);
}

/// The yellow of a vehicle group, and the red-yellow of a starting group, must fit in the
/// interstage even where no conflicting group starts or ends there (the intergreens then say
/// nothing). The random plans rarely reach that corner, so it is walked here.
#[test]
fn interstages_hold_yellow_and_red_yellow_without_conflicts() {
    let nets = networks();
    let (_, plain) = nets
        .iter()
        .find(|(n, _)| n == "single.toml+stages")
        .unwrap();
    let (_, ry) = nets
        .iter()
        .find(|(n, _)| n == "single.toml+stages+red-yellow")
        .unwrap();
    // (network, stage sequence, position of the interstage that varies)
    let cases: [(&Network, [&str; 4], usize); 2] = [
        // arterial -> walk_collector: EW_through ends, nothing starts.
        (
            plain,
            ["arterial", "walk_collector", "arterial_left", "collector"],
            0,
        ),
        // walk_collector -> arterial: EW_through starts (red-yellow), nothing ends.
        (
            ry,
            ["collector", "walk_collector", "arterial", "arterial_left"],
            1,
        ),
    ];
    for (net, seq, k) in cases {
        let ix = &net.intersections[0];
        let mut outcomes = (0, 0);
        for tenths in 0..=60 {
            let stages: Vec<StageTimeSpec> = seq
                .iter()
                .enumerate()
                .map(|(i, s)| StageTimeSpec {
                    stage: s.to_string(),
                    green_s: 30.0,
                    interstage_s: (i == k).then_some(f64::from(tenths) / 10.0),
                })
                .collect();
            let idx: Vec<usize> = seq.iter().map(|s| ix.stage(s).unwrap()).collect();
            let cycle: Ms = (0..4).fold(Ms::ZERO, |acc, i| {
                let inter = match stages[i].interstage_s {
                    Some(v) => Ms::from_secs_f64(v).unwrap(),
                    None => plan::required_interstage(ix, idx[i], idx[(i + 1) % 4]),
                };
                acc + Ms::from_s(30) + inter
            });
            let spec = PlanSpec {
                id: "p".into(),
                cycle_s: cycle.as_secs_f64(),
                offset_s: 0.0,
                stages,
            };
            match verdicts_agree(ix, &net.safety, &spec) {
                Ok(true) => outcomes.0 += 1,
                Ok(false) => outcomes.1 += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(outcomes.0 > 0 && outcomes.1 > 0, "{seq:?}: {outcomes:?}");
    }
}
