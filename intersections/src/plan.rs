//! Timing plans and the one safety validator that every producer and consumer of plans calls.
//!
//! A plan is a cycle, an offset against the shared reference time, and a sequence of stages
//! with green times. Between consecutive stages runs an interstage: the groups that end show
//! their yellow, conflicting groups wait out their intergreens, groups that start may show
//! red-yellow. The cycle timer is `(t - offset) mod cycle`; at cycle time 0 the first stage's
//! green begins.
//!
//! Within its green span a pedestrian group shows walk and then its clearance (flashing green),
//! so the clearance ends when the stage ends; a vehicle group shows green to the end of the
//! stage and its yellow in the following interstage.

use crate::diag::{FieldPath, Problem};
use crate::model::{GroupIdx, Intersection, Safety};
use crate::spec::{GroupKind, PlanSpec};
use crate::time::Ms;

/// One stage of a checked plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageTime {
    /// Index into [`Intersection::stages`].
    pub stage: usize,
    pub green: Ms,
    /// Interstage from this stage to the next in the sequence.
    pub interstage: Ms,
}

/// A checked plan: every intergreen, minimum green, pedestrian time and cycle bound holds.
/// Only [`validate`] makes one.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub id: String,
    pub cycle: Ms,
    pub offset: Ms,
    pub stages: Vec<StageTime>,
    /// Per group, when it is open in the cycle.
    pub spans: Vec<Vec<Span>>,
}

/// One period in which a signal group is open, in cycle time. `open` lies in `[0, cycle)`;
/// later fields may run past `cycle` (the period wraps into the next cycle).
///
/// - vehicles: red-yellow `[open - red_yellow, open)`, green `[open, green_end)`,
///   yellow `[green_end, clear_end)`;
/// - pedestrians: walk `[open, green_end)`, clearance `[green_end, clear_end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub open: Ms,
    pub green_end: Ms,
    pub clear_end: Ms,
    /// The group is open for the whole cycle (no change at all).
    pub always: bool,
}

impl Plan {
    /// Start of each stage's green in cycle time.
    pub fn stage_starts(&self) -> Vec<Ms> {
        let mut t = Ms::ZERO;
        self.stages
            .iter()
            .map(|s| {
                let start = t;
                t += s.green + s.interstage;
                start
            })
            .collect()
    }

    /// Back to the form of a file.
    pub fn to_spec(&self, ix: &Intersection) -> PlanSpec {
        PlanSpec {
            id: self.id.clone(),
            cycle_s: self.cycle.as_secs_f64(),
            offset_s: self.offset.as_secs_f64(),
            stages: self
                .stages
                .iter()
                .map(|s| crate::spec::StageTimeSpec {
                    stage: ix.stages[s.stage].id.clone(),
                    green_s: s.green.as_secs_f64(),
                    interstage_s: Some(s.interstage.as_secs_f64()),
                })
                .collect(),
        }
    }
}

/// The shortest interstage from stage `a` to stage `b` that the intergreens, yellows and
/// red-yellows allow (looking at this transition only).
pub fn required_interstage(ix: &Intersection, a: usize, b: usize) -> Ms {
    let ga = &ix.stages[a].groups;
    let gb = &ix.stages[b].groups;
    let ending: Vec<GroupIdx> = ga.iter().copied().filter(|g| !gb.contains(g)).collect();
    let starting: Vec<GroupIdx> = gb.iter().copied().filter(|g| !ga.contains(g)).collect();
    let mut req = Ms::ZERO;
    for e in &ending {
        let ge = &ix.groups[e.0];
        // A pedestrian's clearance runs inside the stage; a vehicle's yellow after it.
        let done_in_stage = if ge.kind == GroupKind::Pedestrian {
            ge.clearance
        } else {
            Ms::ZERO
        };
        if ge.kind == GroupKind::Vehicle {
            req = req.max(ge.clearance);
        }
        for s in &starting {
            if ix.conflict(*e, *s) {
                req = req.max(ix.intergreen[e.0][s.0] - done_in_stage);
            }
        }
    }
    for s in &starting {
        req = req.max(ix.groups[s.0].red_yellow);
    }
    req
}

fn in_cyclic(t: Ms, start: Ms, end: Ms, cycle: Ms) -> bool {
    // Is t in [start, end) taken modulo cycle (end - start < cycle)?
    let off = (t - start).rem_euclid(cycle);
    off < end - start
}

/// Check a plan against an intersection and the safety rules. Returns the checked plan, or
/// every problem found, each with its field path (below `path`).
pub fn validate(
    ix: &Intersection,
    safety: &Safety,
    spec: &PlanSpec,
    path: &FieldPath,
) -> Result<Plan, Vec<Problem>> {
    check(ix, safety, spec, path, true)
}

/// [`validate`] for a sequence of stages that need not serve every signal group: a part of a
/// plan's cycle, such as the transition from one stage to another that an actuated program
/// skipping the stages between runs. Every other rule holds as in [`validate`] (the groups
/// the sequence never opens stay red in the returned plan).
pub fn validate_part(
    ix: &Intersection,
    safety: &Safety,
    spec: &PlanSpec,
    path: &FieldPath,
) -> Result<Plan, Vec<Problem>> {
    check(ix, safety, spec, path, false)
}

fn check(
    ix: &Intersection,
    safety: &Safety,
    spec: &PlanSpec,
    path: &FieldPath,
    every_group: bool,
) -> Result<Plan, Vec<Problem>> {
    let mut p = Vec::new();
    if spec.id.is_empty() {
        p.push(Problem::new(path.key("id"), "a plan needs an id"));
    }
    let cycle = match Ms::from_secs_f64(spec.cycle_s) {
        Some(c) if c >= safety.cycle_min && c <= safety.cycle_max => Some(c),
        _ => {
            p.push(Problem::new(
                path.key("cycle_s"),
                format!(
                    "cycle {} s is outside {} to {}",
                    spec.cycle_s, safety.cycle_min, safety.cycle_max
                ),
            ));
            None
        }
    };
    let offset = Ms::from_secs_f64(spec.offset_s);
    match (offset, cycle) {
        (Some(o), Some(c)) if o >= Ms::ZERO && o < c => {}
        (Some(o), None) if o >= Ms::ZERO => {}
        _ => p.push(Problem::new(
            path.key("offset_s"),
            format!(
                "offset {} s must be at least 0 and less than the cycle",
                spec.offset_s
            ),
        )),
    }
    if spec.stages.is_empty() {
        p.push(Problem::new(
            path.key("stages"),
            "a plan has at least one stage",
        ));
    }
    let mut stages: Vec<Option<usize>> = Vec::new();
    let mut greens: Vec<Option<Ms>> = Vec::new();
    for (k, st) in spec.stages.iter().enumerate() {
        let sp = path.key("stages").index(k);
        let idx = ix.stage(&st.stage);
        if idx.is_none() {
            p.push(Problem::new(
                sp.key("stage"),
                format!("unknown stage {:?} at intersection {:?}", st.stage, ix.id),
            ));
        }
        stages.push(idx);
        match Ms::from_secs_f64(st.green_s) {
            Some(g) if g > Ms::ZERO && g <= Ms::from_s(300) => greens.push(Some(g)),
            _ => {
                p.push(Problem::new(
                    sp.key("green_s"),
                    format!("green {} s must be more than 0 and at most 300", st.green_s),
                ));
                greens.push(None);
            }
        }
        if let Some(i) = st.interstage_s {
            if Ms::from_secs_f64(i).is_none_or(|v| v < Ms::ZERO || v > Ms::from_s(60)) {
                p.push(Problem::new(
                    sp.key("interstage_s"),
                    format!("interstage {i} s must be 0 to 60"),
                ));
            }
        }
    }
    let (Some(cycle), Some(offset)) = (cycle, offset) else {
        return Err(p);
    };
    if !p.is_empty() {
        return Err(p);
    }
    let stages: Vec<usize> = stages.into_iter().flatten().collect();
    let greens: Vec<Ms> = greens.into_iter().flatten().collect();
    let n = stages.len();

    // Interstages: as given, else the shortest the adjacent transition allows.
    let mut timed = Vec::with_capacity(n);
    for k in 0..n {
        let next = stages[(k + 1) % n];
        let inter = match spec.stages[k].interstage_s {
            Some(v) => Ms::from_secs_f64(v).unwrap_or(Ms::ZERO),
            None => required_interstage(ix, stages[k], next),
        };
        timed.push(StageTime {
            stage: stages[k],
            green: greens[k],
            interstage: inter,
        });
    }
    let total = timed
        .iter()
        .fold(Ms::ZERO, |acc, s| acc + s.green + s.interstage);
    if total != cycle {
        let inter: Vec<String> = (0..n)
            .map(|k| {
                format!(
                    "{} -> {} {}",
                    ix.stages[timed[k].stage].id,
                    ix.stages[timed[(k + 1) % n].stage].id,
                    timed[k].interstage
                )
            })
            .collect();
        p.push(Problem::new(
            path.key("cycle_s"),
            format!("greens and interstages add up to {total}, but the cycle is {cycle} (interstages: {})", inter.join(", ")),
        ));
        return Err(p);
    }

    // Yellows and red-yellows must fit in their interstage.
    for k in 0..n {
        let a = &ix.stages[timed[k].stage];
        let b = &ix.stages[timed[(k + 1) % n].stage];
        let inter = timed[k].interstage;
        let sp = path.key("stages").index(k).key("interstage_s");
        for g in &a.groups {
            let gg = &ix.groups[g.0];
            if gg.kind == GroupKind::Vehicle && !b.groups.contains(g) && inter < gg.clearance {
                p.push(Problem::new(
                    sp.clone(),
                    format!(
                        "interstage {} -> {} is {inter}, shorter than the yellow of {} ({})",
                        a.id, b.id, gg.id, gg.clearance
                    ),
                ));
            }
        }
        for g in &b.groups {
            let gg = &ix.groups[g.0];
            if !a.groups.contains(g) && inter < gg.red_yellow {
                p.push(Problem::new(
                    sp.clone(),
                    format!(
                        "interstage {} -> {} is {inter}, shorter than the red-yellow of {} ({})",
                        a.id, b.id, gg.id, gg.red_yellow
                    ),
                ));
            }
        }
    }

    // The spans of every group.
    let mut starts = Vec::with_capacity(n);
    let mut t = Ms::ZERO;
    for s in &timed {
        starts.push(t);
        t += s.green + s.interstage;
    }
    let in_stage = |g: GroupIdx, k: usize| ix.stages[timed[k].stage].groups.contains(&g);
    let mut spans: Vec<Vec<Span>> = vec![Vec::new(); ix.groups.len()];
    // For messages: the plan stage entry in which each span ends.
    let mut span_end_stage: Vec<Vec<usize>> = vec![Vec::new(); ix.groups.len()];
    for (gi, g) in ix.groups.iter().enumerate() {
        let gidx = GroupIdx(gi);
        let member: Vec<bool> = (0..n).map(|k| in_stage(gidx, k)).collect();
        if member.iter().all(|m| *m) {
            spans[gi].push(Span {
                open: Ms::ZERO,
                green_end: cycle,
                clear_end: cycle,
                always: true,
            });
            span_end_stage[gi].push(0);
            continue;
        }
        if !member.iter().any(|m| *m) {
            if !every_group {
                continue; // red throughout
            }
            p.push(Problem::new(
                path.key("stages"),
                format!("signal group {} is never green in this plan", g.id),
            ));
            continue;
        }
        for k in 0..n {
            if member[k] && !member[(k + n - 1) % n] {
                let mut j = k;
                while member[(j + 1) % n] {
                    j = (j + 1) % n;
                }
                let open = starts[k];
                let mut stage_end = starts[j] + timed[j].green;
                if j < k {
                    stage_end += cycle;
                }
                let (green_end, clear_end) = match g.kind {
                    GroupKind::Vehicle => (stage_end, stage_end + g.clearance),
                    GroupKind::Pedestrian => (stage_end - g.clearance, stage_end),
                };
                spans[gi].push(Span {
                    open,
                    green_end,
                    clear_end,
                    always: false,
                });
                span_end_stage[gi].push(j);
            }
        }
    }

    // Minimum green, pedestrian walk + clearance.
    for (gi, g) in ix.groups.iter().enumerate() {
        for (s, &j) in spans[gi].iter().zip(&span_end_stage[gi]) {
            if s.always {
                continue;
            }
            let green = s.green_end - s.open;
            let sp = path.key("stages").index(j).key("green_s");
            match g.kind {
                GroupKind::Vehicle if green < g.min_green => p.push(Problem::new(
                    sp,
                    format!("signal group {} gets {green} of green, its minimum is {}", g.id, g.min_green),
                )),
                GroupKind::Pedestrian if green < g.min_green => p.push(Problem::new(
                    sp,
                    format!(
                        "pedestrian walk + clearance do not fit: group {} is open {}, needs {} walk + {} clearance",
                        g.id,
                        s.clear_end - s.open,
                        g.min_green,
                        g.clearance
                    ),
                )),
                _ => {}
            }
        }
    }

    // Every ordered pair of conflicting groups: from the end of one's green to the start of the
    // other's, at least the intergreen.
    let mut reported_together = std::collections::BTreeSet::new();
    for s in 0..ix.groups.len() {
        for e in 0..ix.groups.len() {
            if e == s || !ix.conflicts[e][s] {
                continue;
            }
            let need = ix.intergreen[e][s];
            for (si, ss) in spans[s].iter().enumerate() {
                if ss.always {
                    continue;
                }
                for se in &spans[e] {
                    let together = se.always || in_cyclic(ss.open, se.open, se.green_end, cycle);
                    let gap = (ss.open - se.green_end).rem_euclid(cycle);
                    if together {
                        if !reported_together.insert((e.min(s), e.max(s))) {
                            continue;
                        }
                        p.push(Problem::new(
                            path.key("stages").index(span_end_stage[s][si]),
                            format!("conflicting signal groups {} and {} are green together at {} of the cycle", ix.groups[e].id, ix.groups[s].id, ss.open),
                        ));
                    } else if gap < need {
                        p.push(Problem::new(
                            path.key("stages"),
                            format!(
                                "intergreen from {} to {} is {gap}, shorter than the required {need} (green starts at {} of the cycle)",
                                ix.groups[e].id, ix.groups[s].id, ss.open
                            ),
                        ));
                    }
                }
            }
        }
    }

    if p.is_empty() {
        Ok(Plan {
            id: spec.id.clone(),
            cycle,
            offset,
            stages: timed,
            spans,
        })
    } else {
        Err(p)
    }
}
