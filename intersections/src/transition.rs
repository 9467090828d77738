//! Plan transitions: an algorithm of its own (STYLE.md §4), not an assignment.
//!
//! A new plan starts at a cycle boundary with its first stage. Its cycle timer at that moment
//! is generally not where its offset wants it, so the controller runs a few *transition
//! cycles*: the new plan with every green scaled so that the cycle is a little shorter or
//! longer, until the cycle boundary falls where the offset puts it. The rules (DESIGN.md):
//!
//! - the offset is corrected in as few cycles as the other rules allow: at most 3 when the
//!   cycle length changes by less than 20% (each cycle may move 20% of the cycle), more only
//!   while a larger change of cycle length ramps;
//! - no cycle differs from the one before it by more than 20%: a large change of cycle
//!   length first ramps in steps of at most 20%;
//! - every transition cycle is a plan checked by [`crate::plan::validate`], so no minimum
//!   green, pedestrian time or intergreen is ever shortened, and the interstages are the new
//!   plan's.
//!
//! Shortening and lengthening (NTCIP's short-way and long-way) are both considered; the
//! fewest cycles win, then the least change. Greens shrink only in their time above the
//! stage's minimum. If nothing fits the bounds, the plan starts as it is and the offset error
//! is reported.

use crate::diag::FieldPath;
use crate::model::{Intersection, Safety};
use crate::plan::{validate, Plan};
use crate::spec::{PlanSpec, StageTimeSpec};
use crate::time::Ms;

/// Largest change of cycle length from one cycle to the next.
pub const MAX_CYCLE_CHANGE: f64 = 0.20;

/// The cycles to run from `start` (when the first of them begins) until `target` runs in phase.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// Plans to run one cycle each, in order, starting at `start`.
    pub cycles: Vec<Plan>,
    /// When `target` takes over (its cycle time is 0 there, unless `residual_offset_error`).
    pub target_from: Ms,
    /// Offset error left when no correction fits the bounds (0 normally).
    pub residual_offset_error: Ms,
}

/// `plan` with its stage sequence rotated to begin with sequence position `first`, and its
/// offset moved so that it runs exactly as before.
pub fn rotate(ix: &Intersection, safety: &Safety, plan: &Plan, first: usize) -> Plan {
    if first == 0 || first >= plan.stages.len() {
        return plan.clone();
    }
    let starts = plan.stage_starts();
    let mut spec = plan.to_spec(ix);
    spec.stages.rotate_left(first);
    spec.offset_s = (plan.offset + starts[first])
        .rem_euclid(plan.cycle)
        .as_secs_f64();
    validate(ix, safety, &spec, &FieldPath::root()).unwrap_or_else(|_| plan.clone())
}

/// The least green of each stage of `plan` (ms), never more than the plan gives it.
fn stage_minimums(ix: &Intersection, plan: &Plan) -> Vec<i64> {
    plan.stages
        .iter()
        .map(|s| ix.stage_min_green(s.stage).0.max(1000).min(s.green.0))
        .collect()
}

/// The plan scaled to cycle length `cycle`: interstages kept, and each green's time above its
/// stage's minimum scaled in proportion (to 0.1 s; the rounding goes to the longest green), the
/// offset set so that it starts at `start`. `None` if that breaks a rule of the validator.
pub fn scaled(
    ix: &Intersection,
    safety: &Safety,
    plan: &Plan,
    cycle: Ms,
    start: Ms,
) -> Option<Plan> {
    let inter: i64 = plan.stages.iter().map(|s| s.interstage.0).sum();
    // The least green each stage needs for its own groups.
    let mins = stage_minimums(ix, plan);
    let slack: i64 = plan
        .stages
        .iter()
        .zip(&mins)
        .map(|(s, m)| s.green.0 - m)
        .sum();
    let new_slack = cycle.0 - inter - mins.iter().sum::<i64>();
    if new_slack < 0 {
        return None;
    }
    let mut greens: Vec<i64> = plan
        .stages
        .iter()
        .zip(&mins)
        .map(|(s, m)| {
            let share = if slack > 0 {
                (s.green.0 - m) as f64 / slack as f64
            } else {
                1.0 / plan.stages.len() as f64
            };
            m + ((share * new_slack as f64) / 100.0).floor() as i64 * 100
        })
        .collect();
    let rest = cycle.0 - inter - greens.iter().sum::<i64>();
    let longest = (0..greens.len()).max_by_key(|&i| greens[i]).unwrap_or(0);
    greens[longest] += rest;
    let spec = PlanSpec {
        id: format!("{}~transition", plan.id),
        cycle_s: cycle.as_secs_f64(),
        offset_s: start.rem_euclid(cycle).as_secs_f64(),
        stages: plan
            .stages
            .iter()
            .zip(&greens)
            .map(|(s, g)| StageTimeSpec {
                stage: ix.stages[s.stage].id.clone(),
                green_s: Ms(*g).as_secs_f64(),
                interstage_s: Some(s.interstage.as_secs_f64()),
            })
            .collect(),
    };
    validate(ix, safety, &spec, &FieldPath::root()).ok()
}

/// Most cycles a transition may take (ramping a large cycle change plus the correction).
pub const MAX_TRANSITION_CYCLES: usize = 8;

/// Plan the transition into `target`, whose first stage starts at `start`; `previous_cycle`
/// is the length of the cycle that ran before (for the 20% rule).
///
/// The lengths L_1..L_n of the transition cycles must satisfy linear constraints: each within
/// 20% of the one before (the first of `previous_cycle`), the target's cycle within 20% of
/// L_n, each at least what the target's interstages and minimum greens need and within the
/// cycle bounds. Feasible sequences form a convex set, so every total between the least and
/// the greatest feasible total is reached by mixing the shortest and the longest sequence.
/// The smallest n is taken whose range holds a total that brings the target in phase, with the
/// total closest to n target cycles (the least disturbance).
pub fn plan_transition(
    ix: &Intersection,
    safety: &Safety,
    previous_cycle: Ms,
    target: &Plan,
    start: Ms,
) -> Transition {
    let c = target.cycle.0 as f64;
    // A little inside the bound, so rounding to whole milliseconds cannot cross it.
    let step = MAX_CYCLE_CHANGE - 0.002;
    let inter: i64 = target.stages.iter().map(|s| s.interstage.0).sum();
    let least_green: i64 = stage_minimums(ix, target).iter().sum();
    let abs_min = (safety.cycle_min.0.max(inter + least_green) + 100) as f64;
    let abs_max = (safety.cycle_max.0 - 100) as f64;
    let residue = (target.offset - start).rem_euclid(target.cycle).0; // total ≡ residue (mod c)
    if residue == 0 && (c - previous_cycle.0 as f64).abs() <= previous_cycle.0 as f64 * step {
        return Transition {
            cycles: Vec::new(),
            target_from: start,
            residual_offset_error: Ms::ZERO,
        };
    }
    for n in 1..=MAX_TRANSITION_CYCLES {
        // Bounds from the end: L_n within 20% of c seen from L_n, and each L_k within 20% of L_k+1.
        let mut lb = vec![0.0; n];
        let mut ub = vec![0.0; n];
        lb[n - 1] = (c / (1.0 + step)).max(abs_min);
        ub[n - 1] = (c / (1.0 - step)).min(abs_max);
        for k in (0..n - 1).rev() {
            lb[k] = (lb[k + 1] / (1.0 + step)).max(abs_min);
            ub[k] = (ub[k + 1] / (1.0 - step)).min(abs_max);
        }
        // Shortest and longest sequences, forward from the previous cycle.
        let mut lo = Vec::with_capacity(n);
        let mut hi = Vec::with_capacity(n);
        let (mut pl, mut ph) = (previous_cycle.0 as f64, previous_cycle.0 as f64);
        let mut feasible = true;
        for k in 0..n {
            let l = (pl * (1.0 - step)).max(lb[k]);
            let h = (ph * (1.0 + step)).min(ub[k]);
            if l > pl * (1.0 + step) || h < ph * (1.0 - step) || l > ub[k] || h < lb[k] || l > h {
                feasible = false;
                break;
            }
            lo.push(l.ceil());
            hi.push(h.floor());
            pl = l;
            ph = h;
        }
        if !feasible {
            continue;
        }
        let smin: i64 = lo.iter().map(|v| *v as i64).sum();
        let smax: i64 = hi.iter().map(|v| *v as i64).sum();
        // Totals in range with the right residue; take the one nearest n cycles of c.
        let first = smin + (residue - smin).rem_euclid(target.cycle.0);
        let mut best: Option<i64> = None;
        let mut s = first;
        while s <= smax {
            if best.is_none_or(|b| {
                (s - n as i64 * target.cycle.0).abs() < (b - n as i64 * target.cycle.0).abs()
            }) {
                best = Some(s);
            }
            s += target.cycle.0;
        }
        let Some(total) = best else { continue };
        let lambda = if smax > smin {
            (total - smin) as f64 / (smax - smin) as f64
        } else {
            0.0
        };
        let mut lens: Vec<i64> = lo
            .iter()
            .zip(&hi)
            .map(|(l, h)| (l + lambda * (h - l)).round() as i64)
            .collect();
        let diff = total - lens.iter().sum::<i64>();
        lens[n - 1] += diff;
        let mut cycles = Vec::with_capacity(n);
        let mut t = start;
        for len in &lens {
            match scaled(ix, safety, target, Ms(*len), t) {
                Some(p) => {
                    t += p.cycle;
                    cycles.push(p);
                }
                None => break,
            }
        }
        if cycles.len() == n {
            return Transition {
                cycles,
                target_from: t,
                residual_offset_error: Ms::ZERO,
            };
        }
    }
    Transition {
        cycles: Vec::new(),
        target_from: start,
        residual_offset_error: Ms(residue),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_network;
    use std::path::Path;

    /// Every ordered pair of plans of every signalised intersection of every shipped network,
    /// from several start times.
    #[test]
    fn transitions_land_in_phase_within_bounds() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/networks"));
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let mut pairs = 0;
        for f in files {
            if !std::fs::read_to_string(&f)
                .unwrap()
                .contains("kind = \"network\"")
            {
                continue;
            }
            let net = load_network(&f).unwrap();
            for ix in &net.intersections {
                for target in &ix.plans {
                    for from in &ix.plans {
                        pairs += 1;
                        for start_s in [0, 7, 33, 61, 100, 1234] {
                            check(ix, &net.safety, from, target, Ms::from_s(start_s));
                        }
                    }
                }
            }
        }
        assert!(pairs >= 4);
    }

    fn check(ix: &Intersection, safety: &Safety, from: &Plan, target: &Plan, start: Ms) {
        let tr = plan_transition(ix, safety, from.cycle, target, start);
        let what = format!("{}: {} -> {} at {start}", ix.id, from.id, target.id);
        assert_eq!(tr.residual_offset_error, Ms::ZERO, "{what}");
        assert_eq!(
            (tr.target_from - target.offset).rem_euclid(target.cycle),
            Ms::ZERO,
            "{what}"
        );
        if (target.cycle.0 - from.cycle.0).abs() as f64 <= from.cycle.0 as f64 * 0.2 {
            assert!(tr.cycles.len() <= 3, "{what}: {} cycles", tr.cycles.len());
        }
        let mut prev = from.cycle;
        let mut t = start;
        for p in &tr.cycles {
            assert!(
                (p.cycle.0 - prev.0).abs() as f64 <= prev.0 as f64 * 0.2 + 1.0,
                "{what}"
            );
            assert_eq!((t - p.offset).rem_euclid(p.cycle), Ms::ZERO, "{what}");
            // Each transition cycle passed the validator (scaled() only returns checked plans)
            // and keeps the target's stage sequence and interstages.
            assert_eq!(p.stages.len(), target.stages.len(), "{what}");
            for (a, b) in p.stages.iter().zip(&target.stages) {
                assert_eq!((a.stage, a.interstage), (b.stage, b.interstage), "{what}");
            }
            t += p.cycle;
            prev = p.cycle;
        }
        assert_eq!(t, tr.target_from, "{what}");
        assert!(
            (target.cycle.0 - prev.0).abs() as f64 <= prev.0 as f64 * 0.2 + 1.0,
            "{what}"
        );
    }
}
