//! Plan computation: cycle, splits and offsets from flows per movement.
//!
//! - **Flow ratios.** A signal group's flow ratio is the largest, over the lane clusters of its
//!   approaches, of `(flow of its movements there) / (saturation flow x lanes of the cluster)`
//!   (HCM 2010, ch. 18: lane groups; a shared lane counts once). A stage's flow ratio is the
//!   largest ratio among its vehicle groups, a group green in `k` stages of the sequence
//!   counting `1/k` in each; the intersection's `Y` is the sum over the sequence.
//! - **Lost time** `L`: the interstages of the sequence ([`plan::required_interstage`]) plus a
//!   start-up loss of [`PlanParams::startup_lost_s`] per stage (HCM: 2 s). Departure from
//!   Webster: we take no end gain for the yellow (the simulator stops for yellow when it can),
//!   so the effective green is the displayed green less the start-up loss.
//! - **Cycle**: Webster's optimum `C0 = (1.5 L + 5) / (1 - Y)` (F. V. Webster, *Traffic signal
//!   settings*, Road Research Technical Paper 39, HMSO 1958); at `Y >= max_flow_ratio` the
//!   formula has no meaning and the cycle is the maximum. A coordination group runs the
//!   largest `C0` of its members (its critical intersection), within `[cycle_min, cycle_max]`
//!   and never shorter than a member's stage minimums and interstages allow.
//! - **Splits**: effective greens in proportion to the stage flow ratios, which gives every
//!   critical movement the same degree of saturation `x = Y C / (C - L)` (Webster 1958); a
//!   stage below its minimum (the longest minimum green of its vehicle groups, or walk +
//!   clearance of its pedestrian groups) is fixed there and the rest is shared again.
//!   Greens are rounded to whole seconds except one stage's, which takes what fractional
//!   interstages leave so that the stages fill the cycle exactly (so a plan file may say
//!   `green_s = 17.2`).
//! - **Offsets**: first a one-way green wave along the group's members in the order the
//!   network lists them, in the direction that carries more traffic between them (so the wave
//!   follows the peak: inbound in the morning, outbound in the evening). The main stage of
//!   each downstream member (the one serving the through movement from the upstream member)
//!   starts its green one travel time after its upstream neighbour's: link length over the
//!   speed limit, plus the start-up loss. Then, by [`PlanParams::offsets`], either that wave
//!   stays or a TRANSYT-style search ([`crate::offsets`]: cyclic flow profiles with Robertson's
//!   platoon dispersion, a delay-and-stops index over the links between members, a hill-climb
//!   of each member's offset from the wave) moves it. The default is the wave ([`OffsetChoice::GreenWave`]):
//!   [`OffsetChoice::Auto`] searches a group that no signal outside it feeds (the arterial:
//!   fixed plans 2% less delay in simulation) and keeps the wave where groups feed each other
//!   (grid4, district: there queues spill back between groups, which the flow-profile model
//!   does not see, and the searched offsets lost 7-14%), but in the adaptive loop, re-planned
//!   every 10 min from estimated flows behind the transition-aware check, the searched
//!   offsets on the arterial were 6% worse than the wave (43.3 s against 40.8 s, seeds 1-5):
//!   offsets tuned to an estimate that lags the demand lose more than they gain.
//!   [`crate::offsets`] has the figures. Bandwidth
//!   maximisation is not used: on the one-way peaks of the shipped arterials it gives the
//!   wave above, and the search covers both directions by the index. Each group's report
//!   ([`GroupReport::offsets`]) says which method set its offsets and the index before and
//!   after the search.
//!
//! Every plan produced is checked by the one validator, [`plan::validate`].

use intersections::diag::{FieldPath, Problem};
use intersections::model::Endpoint;
use intersections::plan::{self, Plan};
use intersections::spec::{
    ControlKind, GroupKind, IntersectionPlanSpec, PlanFileSpec, PlanSpec, Protection,
    StageTimeSpec, Turn,
};
use intersections::{GroupIdx, IntersectionIdx, Ms, Network};
use serde::Serialize;

use crate::offsets::{self, GroupModel, OffsetChoice, OffsetMethod, OffsetReport, TransytParams};

/// Tuning of the planner.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanParams {
    /// Start-up lost time per stage, seconds (HCM: 2 s).
    pub startup_lost_s: f64,
    /// At or above this sum of critical flow ratios the cycle is the maximum.
    pub max_flow_ratio: f64,
    /// Id of the plans produced.
    pub plan_id: String,
    /// Let a lightly loaded member of a coordination group run half the group's cycle
    /// (double cycling): when its own Webster cycle and its minimums fit in half the group's
    /// cycle, and that half is within the safety bounds.
    pub double_cycling: bool,
    /// How coordination groups get their offsets.
    pub offsets: OffsetChoice,
    /// The TRANSYT-style model and search (the index is reported for the green wave too).
    pub transyt: TransytParams,
    /// How permissive left turns are priced in the flow ratios (`None`: as through
    /// vehicles, the planner before 2026-11-29).
    pub permissive_left: Option<GapAcceptance>,
    /// Where [`PlanParams::permissive_left`] applies (`None`: at every intersection). The
    /// adaptive loop's commissioning chooses the price per coordination group by simulating
    /// the history ([`crate::adaptive::commission`]), so it names the intersections here.
    pub permissive_left_at: Option<Vec<IntersectionIdx>>,
}

/// Gap acceptance of a permissive left turn (or U-turn): it crosses the opposing stream when
/// the next opposing vehicle is at least `critical_gap_s` away, and queued turners follow
/// each other `follow_up_s` apart. The defaults are the simulator's
/// ([`simulator::SimConfig`]'s `critical_gap_s` and `follow_up_s`), within HCM's ranges.
#[derive(Clone, Debug, PartialEq)]
pub struct GapAcceptance {
    pub critical_gap_s: f64,
    pub follow_up_s: f64,
}

impl Default for GapAcceptance {
    fn default() -> Self {
        let c = simulator::SimConfig::default();
        GapAcceptance {
            critical_gap_s: c.critical_gap_s,
            follow_up_s: c.follow_up_s,
        }
    }
}

impl GapAcceptance {
    /// Saturation flow of a permissive turn, veh/h of green, against an opposing flow of
    /// `opposing_veh_h` during that green (Siegloch's capacity of a stream crossing a Poisson
    /// stream; it tends to `3600 / follow_up_s` as the opposing flow vanishes).
    pub fn saturation_flow_veh_h(&self, opposing_veh_h: f64) -> f64 {
        let q = opposing_veh_h.max(0.0) / 3600.0;
        if q < 1e-9 {
            return 3600.0 / self.follow_up_s;
        }
        3600.0 * q * (-q * self.critical_gap_s).exp() / (1.0 - (-q * self.follow_up_s).exp())
    }
}

impl Default for PlanParams {
    fn default() -> Self {
        PlanParams {
            startup_lost_s: 2.0,
            max_flow_ratio: 0.9,
            plan_id: "greenwave".into(),
            double_cycling: false,
            offsets: OffsetChoice::GreenWave,
            transyt: TransytParams::default(),
            permissive_left: None,
            permissive_left_at: None,
        }
    }
}

impl PlanParams {
    /// How the permissive left turns of intersection `i` are priced (`None`: as through
    /// vehicles).
    pub fn permissive_left_of(&self, i: IntersectionIdx) -> Option<&GapAcceptance> {
        self.permissive_left.as_ref().filter(|_| {
            self.permissive_left_at
                .as_ref()
                .is_none_or(|at| at.contains(&i))
        })
    }
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "intersection {intersection}: the computed plan does not pass the validator: {problems}"
    )]
    Invalid {
        intersection: String,
        problems: String,
    },
    #[error("flows for {got} intersections, the network has {want}")]
    Shape { got: usize, want: usize },
    #[error("intersection {intersection}: {got} flows for {want} movements, or a flow that is negative or not a number")]
    Flows {
        intersection: String,
        got: usize,
        want: usize,
    },
}

/// What the planner found for one intersection.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IntersectionReport {
    pub intersection: String,
    /// Sum of the critical flow ratios.
    pub flow_ratio: f64,
    pub lost_time_s: f64,
    /// Webster's optimum for this intersection alone (clamped to the safety bounds).
    pub webster_cycle_s: f64,
    /// Cycle it runs (its group's).
    pub cycle_s: f64,
    /// Degree of saturation of the critical movements at that cycle.
    pub degree_of_saturation: f64,
    pub group: Option<String>,
}

/// What the planner found for one coordination group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupReport {
    pub group: String,
    pub cycle_s: f64,
    /// The member with the largest cycle of its own (Webster's, or what its minimum greens
    /// and interstages need, whichever is more): the one that set the group's.
    pub critical: String,
    /// Members in the order of the green wave.
    pub wave: Vec<String>,
    /// Which method set the offsets, and the delay-and-stops index of the links between
    /// members before and after the search.
    pub offsets: OffsetReport,
}

/// Plans for a network, each checked by the validator.
#[derive(Clone, Debug)]
pub struct NetworkPlan {
    pub plans: Vec<(IntersectionIdx, Plan)>,
    pub intersections: Vec<IntersectionReport>,
    pub groups: Vec<GroupReport>,
}

impl NetworkPlan {
    /// The plans as a plan file (`kind = "plans"`), naming the network by `network_path`
    /// (relative to where the file will be written).
    pub fn to_file(&self, net: &Network, network_path: &str) -> PlanFileSpec {
        PlanFileSpec {
            kind: "plans".into(),
            version: 1,
            network: network_path.into(),
            plans: self
                .plans
                .iter()
                .map(|(i, p)| {
                    let ix = &net.intersections[i.0];
                    let s = p.to_spec(ix);
                    IntersectionPlanSpec {
                        intersection: ix.id.clone(),
                        id: s.id,
                        cycle_s: s.cycle_s,
                        offset_s: s.offset_s,
                        stages: s.stages,
                    }
                })
                .collect(),
        }
    }
}

/// The stage sequence an intersection runs: its first plan's, else every stage in order.
fn sequence(net: &Network, i: usize) -> Vec<usize> {
    let ix = &net.intersections[i];
    match ix.plans.first() {
        Some(p) => p.stages.iter().map(|s| s.stage).collect(),
        None => (0..ix.stages.len()).collect(),
    }
}

/// Flow ratio of each vehicle group (0 for pedestrian groups); each movement's flow counts
/// `weight[movement]` times (through-vehicle equivalents).
fn group_flow_ratios(net: &Network, i: usize, flows: &[f64], weight: &[f64]) -> Vec<f64> {
    let ix = &net.intersections[i];
    let mut y = vec![0.0f64; ix.groups.len()];
    for &a in &ix.approaches {
        // Lane clusters of this approach: movements joined by shared lanes.
        let mvs: Vec<usize> = (0..ix.movements.len())
            .filter(|&m| ix.movements[m].from == a)
            .collect();
        let mut cluster: Vec<usize> = (0..mvs.len()).collect();
        for x in 0..mvs.len() {
            for z in 0..mvs.len() {
                let share = ix.movements[mvs[x]]
                    .lanes
                    .iter()
                    .any(|l| ix.movements[mvs[z]].lanes.contains(l));
                if share {
                    let (cx, cz) = (cluster[x], cluster[z]);
                    for c in cluster.iter_mut() {
                        if *c == cz {
                            *c = cx;
                        }
                    }
                }
            }
        }
        let mut roots: Vec<usize> = cluster.clone();
        roots.sort_unstable();
        roots.dedup();
        for r in roots {
            let members: Vec<usize> = (0..mvs.len()).filter(|&k| cluster[k] == r).collect();
            let mut lanes: Vec<u32> = members
                .iter()
                .flat_map(|&k| ix.movements[mvs[k]].lanes.iter().copied())
                .collect();
            lanes.sort_unstable();
            lanes.dedup();
            let sat = members
                .iter()
                .map(|&k| ix.movements[mvs[k]].saturation_flow_veh_h)
                .fold(f64::INFINITY, f64::min);
            let cap = sat * lanes.len().max(1) as f64;
            if !(cap.is_finite() && cap > 0.0) {
                continue;
            }
            // Per group: the flow of its movements in this cluster.
            for (g, grp) in ix.groups.iter().enumerate() {
                if grp.kind != GroupKind::Vehicle {
                    continue;
                }
                let f: f64 = members
                    .iter()
                    .filter(|&&k| grp.movements.contains(&mvs[k]))
                    .map(|&k| flows[mvs[k]].max(0.0) * weight[mvs[k]])
                    .sum();
                y[g] = y[g].max(f / cap);
            }
        }
    }
    y
}

/// Most through-vehicle equivalents a permissive turner counts for (against an opposing
/// stream that leaves almost no gap, where the formula's capacity tends to zero).
const MAX_TURN_WEIGHT: f64 = 20.0;

struct Local {
    seq: Vec<usize>,
    inter: Vec<Ms>,
    stage_y: Vec<f64>,
    mins: Vec<Ms>,
    lost_s: f64,
    y: f64,
    c0_s: f64,
    /// Least cycle the minimums and interstages allow.
    feasible_min: Ms,
}

fn local(net: &Network, i: usize, flows: &[f64], p: &PlanParams) -> Local {
    let ix = &net.intersections[i];
    let seq = sequence(net, i);
    let n = seq.len();
    let inter: Vec<Ms> = (0..n)
        .map(|k| plan::required_interstage(ix, seq[k], seq[(k + 1) % n]))
        .collect();
    let stage_ys = |gy: &[f64]| -> Vec<f64> {
        seq.iter()
            .map(|&s| {
                ix.stages[s]
                    .groups
                    .iter()
                    .map(|g| {
                        let k = seq
                            .iter()
                            .filter(|&&t| ix.stages[t].groups.contains(g))
                            .count()
                            .max(1);
                        gy[g.0] / k as f64
                    })
                    .fold(0.0, f64::max)
            })
            .collect()
    };
    let mins: Vec<Ms> = seq
        .iter()
        .map(|&s| ix.stage_min_green(s).max(net.safety.min_green))
        .collect();
    let lost_s = inter.iter().map(|m| m.as_secs_f64()).sum::<f64>() + n as f64 * p.startup_lost_s;
    let cmax = net.safety.cycle_max.as_secs_f64();
    let webster_c0 = |y: f64| {
        if y >= p.max_flow_ratio {
            cmax
        } else {
            ((1.5 * lost_s + 5.0) / (1.0 - y)).min(cmax)
        }
    };
    let mut weight = vec![1.0; ix.movements.len()];
    let mut stage_y = stage_ys(&group_flow_ratios(net, i, flows, &weight));
    if let Some(ga) = p.permissive_left_of(IntersectionIdx(i)) {
        // Pass 1 (every vehicle a through vehicle) gives each stage's share of the cycle;
        // a permissive turner's opposing stream arrives during its group's green, so its
        // rate then is the hourly flow over the group's green share.
        let y1: f64 = stage_y.iter().sum();
        let c1 = webster_c0(y1).max(lost_s + 1.0);
        let share = |k: usize| {
            if y1 > 0.0 {
                (c1 - lost_s) / c1 * stage_y[k] / y1
            } else {
                (c1 - lost_s) / c1 / n as f64
            }
        };
        let me = IntersectionIdx(i);
        let mut priced = false;
        for (m, mv) in ix.movements.iter().enumerate() {
            let Some(g) = mv.group else { continue };
            if ix.groups[g.0].protection != Protection::Permissive
                || !matches!(mv.turn, Turn::Left | Turn::Uturn)
            {
                continue;
            }
            let Some(o) = net.opposing_approach(me, mv.from) else {
                continue;
            };
            let q_o: f64 = ix
                .movements
                .iter()
                .enumerate()
                .filter(|(_, x)| x.from == o)
                .map(|(k, _)| flows[k].max(0.0))
                .sum();
            let green_share: f64 = seq
                .iter()
                .enumerate()
                .filter(|(_, &s)| ix.stages[s].groups.contains(&g))
                .map(|(k, _)| share(k))
                .sum::<f64>()
                .max(0.05);
            let s_turn = ga.saturation_flow_veh_h(q_o / green_share);
            weight[m] = (mv.saturation_flow_veh_h / s_turn.max(1.0)).clamp(1.0, MAX_TURN_WEIGHT);
            priced = true;
        }
        if priced {
            stage_y = stage_ys(&group_flow_ratios(net, i, flows, &weight));
        }
    }
    let y: f64 = stage_y.iter().sum();
    let c0_s = webster_c0(y);
    let feasible_min =
        inter.iter().fold(Ms::ZERO, |a, b| a + *b) + mins.iter().fold(Ms::ZERO, |a, b| a + *b);
    Local {
        seq,
        inter,
        stage_y,
        mins,
        lost_s,
        y,
        c0_s,
        feasible_min,
    }
}

/// Greens (whole seconds, ms) for cycle `c`: effective greens in proportion to the flow
/// ratios, minimums respected.
fn splits(l: &Local, c: Ms, startup: Ms) -> Vec<Ms> {
    let n = l.seq.len();
    let total_inter = l.inter.iter().fold(Ms::ZERO, |a, b| a + *b);
    let mut fixed: Vec<Option<i64>> = vec![None; n];
    let mut greens = vec![0i64; n];
    loop {
        let free: Vec<usize> = (0..n).filter(|&k| fixed[k].is_none()).collect();
        let used: i64 = fixed.iter().flatten().sum();
        let avail = (c - total_inter).0 - used;
        let ysum: f64 = free.iter().map(|&k| l.stage_y[k]).sum();
        let eff = avail - startup.0 * free.len() as i64;
        let mut again = false;
        for &k in &free {
            let share = if ysum > 0.0 {
                l.stage_y[k] / ysum
            } else {
                1.0 / free.len() as f64
            };
            greens[k] = startup.0 + (eff as f64 * share) as i64;
            if greens[k] < l.mins[k].0 {
                fixed[k] = Some(l.mins[k].0);
                again = true;
            }
        }
        if !again || free.is_empty() {
            break;
        }
    }
    for k in 0..n {
        if let Some(f) = fixed[k] {
            greens[k] = f;
        }
    }
    // Whole seconds, never below the minimum; the remainder to the most loaded free stage.
    for k in 0..n {
        let down = greens[k] / 1000 * 1000;
        greens[k] = if down >= l.mins[k].0 {
            down
        } else {
            (l.mins[k].0 + 999) / 1000 * 1000
        };
    }
    let rest = (c - total_inter).0 - greens.iter().sum::<i64>();
    let best = (0..n)
        .max_by(|&a, &b| {
            l.stage_y[a]
                .partial_cmp(&l.stage_y[b])
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(b.cmp(&a))
        })
        .unwrap_or(0);
    greens[best] += rest;
    if greens[best] < l.mins[best].0 {
        // Only when the cycle is below the feasible minimum (never chosen so); take from the
        // others above their minimum.
        let mut need = l.mins[best].0 - greens[best];
        greens[best] = l.mins[best].0;
        for k in 0..n {
            if k != best && need > 0 {
                let spare = (greens[k] - l.mins[k].0).max(0).min(need);
                greens[k] -= spare;
                need -= spare;
            }
        }
    }
    greens.into_iter().map(Ms).collect()
}

/// The link from intersection `a` to intersection `b`, if there is one.
fn link_between(net: &Network, a: IntersectionIdx, b: IntersectionIdx) -> Option<usize> {
    net.links
        .iter()
        .position(|l| l.from == Endpoint::Intersection(a) && l.to == Endpoint::Intersection(b))
}

/// Position in the sequence of the stage that serves traffic arriving on `link` at `b`: the
/// stage of its through movement's group, else of its busiest movement's.
fn main_stage(net: &Network, b: usize, link: usize, seq: &[usize], flows: &[f64]) -> Option<usize> {
    let ix = &net.intersections[b];
    let mvs: Vec<usize> = (0..ix.movements.len())
        .filter(|&m| ix.movements[m].from.0 == link)
        .collect();
    let m = mvs
        .iter()
        .copied()
        .find(|&m| ix.movements[m].turn == Turn::Through)
        .or_else(|| {
            mvs.iter().copied().max_by(|&x, &y| {
                flows[x]
                    .partial_cmp(&flows[y])
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
        })?;
    let g: GroupIdx = ix.movements[m].group?;
    seq.iter().position(|&s| ix.stages[s].groups.contains(&g))
}

fn spec_of(
    ix_stages: &[String],
    greens: &[Ms],
    inter: &[Ms],
    cycle: Ms,
    offset: Ms,
    id: &str,
) -> PlanSpec {
    PlanSpec {
        id: id.into(),
        cycle_s: cycle.as_secs_f64(),
        offset_s: offset.rem_euclid(cycle).as_secs_f64(),
        stages: ix_stages
            .iter()
            .zip(greens)
            .zip(inter)
            .map(|((s, g), i)| StageTimeSpec {
                stage: s.clone(),
                green_s: g.as_secs_f64(),
                interstage_s: Some(i.as_secs_f64()),
            })
            .collect(),
    }
}

fn fmt_problems(p: &[Problem]) -> String {
    p.iter()
        .map(|x| format!("{}: {}", x.path, x.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `spec` for intersection `i`, through the validator.
fn checked(net: &Network, i: usize, spec: &PlanSpec) -> Result<Plan, PlanError> {
    let ix = &net.intersections[i];
    plan::validate(ix, &net.safety, spec, &FieldPath::root()).map_err(|pr| PlanError::Invalid {
        intersection: ix.id.clone(),
        problems: fmt_problems(&pr),
    })
}

/// The cycle a member of a group running `group_cycle` runs: half of it (double cycling)
/// when `p.double_cycling` allows, the member is coordinated with others (`in_group`), half
/// the cycle is a whole number of 100 ms within the safety bounds, and the member's own
/// Webster cycle and the least cycle its minimum greens and interstages allow both fit in
/// it; else the group's cycle.
fn member_cycle(l: &Local, group_cycle: Ms, in_group: bool, cmin: Ms, p: &PlanParams) -> Ms {
    let half = Ms(group_cycle.0 / 2);
    let fits = p.double_cycling
        && in_group
        && group_cycle.0 % 200 == 0
        && half >= cmin
        && l.feasible_min <= half
        && Ms::from_secs_f64(l.c0_s.ceil()).is_some_and(|c0| c0 <= half);
    if fits {
        half
    } else {
        group_cycle
    }
}

/// A group's offsets by `p.offsets`, from the green wave its members' plans carry (members
/// in wave order); plans whose offset moves are validated again.
fn set_offsets(
    net: &Network,
    flows: &[Vec<f64>],
    members: &mut [(IntersectionIdx, Plan, PlanSpec)],
    p: &PlanParams,
) -> Result<OffsetReport, PlanError> {
    let refs: Vec<(IntersectionIdx, &Plan)> = members.iter().map(|(i, pl, _)| (*i, pl)).collect();
    let model = GroupModel::new(net, flows, &refs, p, &p.transyt);
    let start: Vec<Ms> = members.iter().map(|(_, pl, _)| pl.offset).collect();
    let name = |i: IntersectionIdx| net.intersections[i.0].id.clone();
    let (method, why) = match p.offsets {
        OffsetChoice::GreenWave => (
            OffsetMethod::GreenWave,
            "set by the planner's parameters".to_string(),
        ),
        OffsetChoice::Transyt => (
            OffsetMethod::Transyt,
            "set by the planner's parameters".to_string(),
        ),
        OffsetChoice::Auto => match offsets::fed_from_outside(net, model.members()) {
            None => (
                OffsetMethod::Transyt,
                "auto: no signal outside the group feeds it".to_string(),
            ),
            Some((m, u)) => (
                OffsetMethod::GreenWave,
                format!(
                    "auto: signal {} outside the group feeds {}",
                    name(u),
                    name(m)
                ),
            ),
        },
    };
    let mut report = OffsetReport {
        method,
        why,
        links: model.links(),
        before: offsets::Performance::default(),
        after: offsets::Performance::default(),
        evaluations: 0,
    };
    match method {
        OffsetMethod::GreenWave => {
            report.before = model.performance(&start);
            report.after = report.before;
        }
        OffsetMethod::Transyt => {
            let r = offsets::search(&model, &start, &p.transyt);
            report.before = r.before;
            report.after = r.after;
            report.evaluations = r.evaluations;
            for ((i, plan, spec), o) in members.iter_mut().zip(r.offsets) {
                // A double-cycling member's offset is in its own (half) cycle.
                let o = o.rem_euclid(plan.cycle);
                if o != plan.offset {
                    spec.offset_s = o.as_secs_f64();
                    *plan = checked(net, i.0, spec)?;
                }
            }
        }
    }
    Ok(report)
}

/// Plans for every signalised intersection from flows per movement (`flows[i][m]`, veh/h).
pub fn plan_network(
    net: &Network,
    flows: &[Vec<f64>],
    p: &PlanParams,
) -> Result<NetworkPlan, PlanError> {
    if flows.len() != net.intersections.len() {
        return Err(PlanError::Shape {
            got: flows.len(),
            want: net.intersections.len(),
        });
    }
    for (ix, f) in net.intersections.iter().zip(flows) {
        if f.len() != ix.movements.len() || f.iter().any(|q| !(q.is_finite() && *q >= 0.0)) {
            return Err(PlanError::Flows {
                intersection: ix.id.clone(),
                got: f.len(),
                want: ix.movements.len(),
            });
        }
    }
    let startup = Ms::from_secs_f64(p.startup_lost_s).unwrap_or(Ms::ZERO);
    let signalised = |i: usize| {
        let ix = &net.intersections[i];
        ix.control == ControlKind::Signal && !ix.stages.is_empty()
    };
    let locals: Vec<Option<Local>> = (0..net.intersections.len())
        .map(|i| signalised(i).then(|| local(net, i, &flows[i], p)))
        .collect();
    // Groups: the network's coordination groups, then every other signal on its own.
    let mut groups: Vec<(Option<String>, Vec<usize>)> = Vec::new();
    let mut grouped = vec![false; net.intersections.len()];
    for g in &net.coordination_groups {
        let members: Vec<usize> = g
            .intersections
            .iter()
            .map(|i| i.0)
            .filter(|&i| locals[i].is_some() && !grouped[i])
            .collect();
        for &i in &members {
            grouped[i] = true;
        }
        if !members.is_empty() {
            groups.push((Some(g.id.clone()), members));
        }
    }
    for i in 0..net.intersections.len() {
        if locals[i].is_some() && !grouped[i] {
            groups.push((None, vec![i]));
        }
    }
    let mut plans = Vec::new();
    let mut reports: Vec<Option<IntersectionReport>> = vec![None; net.intersections.len()];
    let mut group_reports = Vec::new();
    for (gid, members) in groups {
        let (cmin, cmax) = (net.safety.cycle_min, net.safety.cycle_max);
        let mut cycle = Ms::ZERO;
        let mut critical = members[0];
        for &i in &members {
            let l = locals[i].as_ref().expect("signalised");
            let c = Ms::from_secs_f64(l.c0_s.ceil())
                .unwrap_or(cmax)
                .max(l.feasible_min);
            if c > cycle {
                cycle = c;
                critical = i;
            }
        }
        let cycle = cycle.ceil_to(Ms::from_s(1)).clamp(cmin, cmax);
        // Direction of the wave: forward along the listed order or backward, whichever
        // carries more between the members.
        let flow_on = |a: usize, b: usize| -> f64 {
            link_between(net, IntersectionIdx(a), IntersectionIdx(b)).map_or(0.0, |l| {
                let ix = &net.intersections[a];
                (0..ix.movements.len())
                    .filter(|&m| ix.movements[m].to.0 == l)
                    .map(|m| flows[a][m])
                    .sum()
            })
        };
        let fwd: f64 = members.windows(2).map(|w| flow_on(w[0], w[1])).sum();
        let bwd: f64 = members.windows(2).map(|w| flow_on(w[1], w[0])).sum();
        let mut order = members.clone();
        if bwd > fwd {
            order.reverse();
        }
        // Greens per member, then offsets along the wave.
        let mut green_start = Ms::ZERO; // absolute time the main stage's green starts
        let mut prev: Option<usize> = None;
        // Per member in wave order: its plan at the green-wave offset, and that plan's spec.
        let mut members: Vec<(IntersectionIdx, Plan, PlanSpec)> = Vec::new();
        for &i in &order {
            let ix = &net.intersections[i];
            let l = locals[i].as_ref().expect("signalised");
            let own = member_cycle(l, cycle, gid.is_some() && order.len() > 1, cmin, p);
            let greens = splits(l, own, startup);
            let starts: Vec<Ms> = (0..l.seq.len())
                .scan(Ms::ZERO, |t, k| {
                    let s = *t;
                    *t += greens[k] + l.inter[k];
                    Some(s)
                })
                .collect();
            let mut offset = Ms::ZERO;
            if let Some(a) = prev {
                if let Some(link) = link_between(net, IntersectionIdx(a), IntersectionIdx(i)) {
                    if let Some(pos) = main_stage(net, i, link, &l.seq, &flows[i]) {
                        let lk = &net.links[link];
                        let travel = Ms::from_secs_f64(lk.length_m / lk.speed_mps.max(1.0))
                            .unwrap_or(Ms::ZERO)
                            + startup;
                        green_start += travel;
                        offset = green_start - starts[pos];
                    }
                }
            } else if let Some(&next) = order.get(1) {
                // The first member: its stage toward the next member starts the wave at 0.
                if let Some(link) = link_between(net, IntersectionIdx(i), IntersectionIdx(next)) {
                    let from_here: Vec<usize> = (0..ix.movements.len())
                        .filter(|&m| {
                            ix.movements[m].to.0 == link && ix.movements[m].turn == Turn::Through
                        })
                        .collect();
                    let pos = from_here.first().and_then(|&m| {
                        let g = ix.movements[m].group?;
                        l.seq.iter().position(|&s| ix.stages[s].groups.contains(&g))
                    });
                    if let Some(pos) = pos {
                        offset = Ms::ZERO - starts[pos];
                    }
                }
            }
            let offset = Ms((offset.rem_euclid(own).0 / 100) * 100);
            let names: Vec<String> = l.seq.iter().map(|&s| ix.stages[s].id.clone()).collect();
            let spec = spec_of(&names, &greens, &l.inter, own, offset, &p.plan_id);
            let plan = checked(net, i, &spec)?;
            let c = own.as_secs_f64();
            reports[i] = Some(IntersectionReport {
                intersection: ix.id.clone(),
                flow_ratio: l.y,
                lost_time_s: l.lost_s,
                webster_cycle_s: l.c0_s.clamp(cmin.as_secs_f64(), cmax.as_secs_f64()),
                cycle_s: c,
                degree_of_saturation: if c > l.lost_s {
                    l.y * c / (c - l.lost_s)
                } else {
                    f64::INFINITY
                },
                group: gid.clone(),
            });
            members.push((IntersectionIdx(i), plan, spec));
            prev = Some(i);
        }
        if let Some(id) = gid {
            let offsets = set_offsets(net, flows, &mut members, p)?;
            group_reports.push(GroupReport {
                group: id,
                cycle_s: cycle.as_secs_f64(),
                critical: net.intersections[critical].id.clone(),
                wave: order
                    .iter()
                    .map(|&i| net.intersections[i].id.clone())
                    .collect(),
                offsets,
            });
        }
        plans.extend(members.into_iter().map(|(i, plan, _)| (i, plan)));
    }
    plans.sort_by_key(|(i, _)| *i);
    Ok(NetworkPlan {
        plans,
        intersections: reports.into_iter().flatten().collect(),
        groups: group_reports,
    })
}
