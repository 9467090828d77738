//! Offsets of a coordination group by a TRANSYT-style search: a cyclic flow profile model of
//! the links between the group's members and a hill-climb of their offsets on its
//! performance index.
//!
//! - **Cyclic flow profiles** (D. I. Robertson, *TRANSYT: a traffic network study tool*, RRL
//!   Report LR 253, 1969): flows over one cycle in steps of 1 s. A **stream** is the traffic of
//!   one approach of one intersection served by one signal group. Its arrivals are uniform at
//!   its flow, or, on a link from another member of the group, the modelled outflow of that
//!   member (scaled to the stream's own flow). It is released at saturation flow (the
//!   distinct lanes of its movements times their least saturation flow) during the effective
//!   green of its group while a queue exists, then at the arrival rate. The effective green is
//!   the displayed green less the start-up loss ([`PlanParams::startup_lost_s`]), with no end
//!   gain for the yellow, as in the splits ([`crate::webster`]).
//! - **Platoon dispersion** (Robertson 1969): the profile leaving the upstream stop line onto a
//!   link reaches the downstream stop line as `q'(i + t') = F q(i) + (1 - F) q'(i + t' - 1)`,
//!   `F = 1 / (1 + alpha beta t)`, `t' = beta t` (rounded to a step), `t` the travel time at
//!   the link's speed limit, `beta = 0.8`, `alpha = 0.35` (urban). Solved cyclically in closed
//!   form, so a cycle's vehicles are kept exactly.
//! - **Queue, delay and stops**: the downstream streams of the link run the dispersed
//!   arrivals through their green windows. Delay is the queue summed over the cycle; a stop is
//!   a vehicle that arrives to red or to a queue. The cycle is run from the end of a green
//!   with no queue and, if a queue is left at its end, once more from that queue (the steady
//!   state of a stream that clears; an oversaturated one carries one cycle's overflow). No
//!   random or oversaturation delay term: those hardly depend on offsets.
//! - **Performance index** `PI = sum over links of (delay veh-h/h + K stops/h)` with
//!   `K = 20 s / 3600` veh-h per stop ([`TransytParams::stop_weight_s`]): a stop weighs as
//!   20 s of delay, for the decelerating, standing and regaining speed that a stop costs
//!   beyond its queueing time (TRANSYT too weighs stops against delay by a stop penalty the
//!   user sets). Measured on the arterial's fixed plans (5 seeds, 2 h): K = 20 s gave 40.5 s
//!   mean delay, 0, 10 and 40 s gave 41.4, 41.4 and 41.7 s (the green wave 41.6 s). It covers
//!   the links between members of the group (both directions), each at its downstream
//!   member: entry links and approaches from outside the group see uniform arrivals whose
//!   delay does not depend on offsets, so they are left out of the index and of the search.
//! - **Search**: from the green-wave offsets, each member's offset in turn (the wave's first
//!   member fixed as the reference) moved by a step while the PI falls, first in one
//!   direction and then the other, sweeps repeated until none moves, for steps of a half, a
//!   quarter and an eighth of the cycle, then 4, 2 and 1 s (TRANSYT's hill-climb: large steps
//!   to leave a poor start, small ones to settle). Bounded by
//!   [`TransytParams::max_evaluations_per_member`]. The PI never rises over the search, and
//!   offsets stay on the green wave's 100 ms grid (whole-second moves from it).
//!
//! **Which is used where, and why** ([`OffsetChoice::Auto`]; not the planner's default, which
//! is the green wave, see the end of this section): the search for a
//! coordination group that no signal outside it feeds (an arterial whose side streets come
//! from outside the controlled area), the green wave for a group that other groups' signals
//! feed (a network of groups: grids, districts). Measured with `greenwave bench control`
//! (2 h, fixed plans on the demand file's mean flows, seeds 1-20) and by simulating 12 sets
//! of random offsets per network (docs/benchmarks.md):
//! - on the arterial the index predicts the simulator (correlation 0.97 between the index
//!   and mean delay over the random offsets) and the search's offsets cut the fixed plans'
//!   delay by 1.7-2.6% in each block of seeds (41.8 s to 40.9 s over 20 seeds);
//! - on grid4 and district the delay is governed by queues spilling back between groups and
//!   the traffic that other groups' signals release, neither of which the model has (no
//!   storage, uniform arrivals from outside the group); the index hardly predicts the
//!   simulator there (correlation 0.48 and -0.07) and the search's offsets made the fixed
//!   plans worse (+7.3% and +13.7% delay), so those groups keep the green wave.
//!
//! The rule is what the planner can see of that difference, and it is conservative: on
//! generated grids whose rows are groups (fed by each other, uncongested) the search also won
//! the 15-minute simulation check (`greenwave bench planning --coordinate-rows`). In the
//! adaptive loop on the arterial the search neither won nor lost beyond the noise of its
//! re-plan decisions with the check from empty (44.2 s against 44.1 s over 20 seeds); with
//! the check that includes the transition it lost (43.3 s against 40.8 s with the wave,
//! seeds 1-5: re-plans tuned to estimated flows that lag the demand). So `Auto` is offered,
//! and the planner's default stays the green wave.
//!
//! Departures from TRANSYT: platoons are propagated one level (the outflow of a member
//! whose own arrivals are uniform feeds the next member's departures, whose outflow feeds the
//! link's downstream queue), not iterated over the whole group; splits are not searched (the
//! Webster splits stay); no queue-length limit or blocking back; turning flows mix in a
//! stream's queue in proportion to their flows (FIFO), and lanes a stream shares with
//! another group count fully for both.

use intersections::plan::Plan;
use intersections::{IntersectionIdx, Ms, Network};
use serde::Serialize;

use crate::webster::PlanParams;

/// Which method sets a coordination group's offsets ([`PlanParams::offsets`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OffsetChoice {
    /// The green wave for every group.
    GreenWave,
    /// The TRANSYT-style search for every group.
    Transyt,
    /// The search for a group no signal outside it feeds ([`fed_from_outside`]), the green
    /// wave for the others (see the module documentation for why).
    Auto,
}

/// How a coordination group's offsets were set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OffsetMethod {
    /// A one-way green wave in the heavier direction ([`crate::webster`]).
    GreenWave,
    /// From the green wave, the hill-climb of this module on the delay-and-stops index.
    Transyt,
}

impl OffsetMethod {
    pub fn name(self) -> &'static str {
        match self {
            OffsetMethod::GreenWave => "green-wave",
            OffsetMethod::Transyt => "transyt",
        }
    }
}

/// Parameters of the cyclic flow profile model and of the search.
#[derive(Clone, Debug, PartialEq)]
pub struct TransytParams {
    /// Robertson's dispersion factor (0.35 urban, TRANSYT's default).
    pub alpha: f64,
    /// Robertson's travel-time factor: the platoon's head arrives after `beta t`.
    pub beta: f64,
    /// Weight of a stop in the index, in seconds of delay (`K = stop_weight_s / 3600`).
    pub stop_weight_s: f64,
    /// Moves tried per movable member, at most; the search stops there.
    pub max_evaluations_per_member: usize,
}

impl Default for TransytParams {
    fn default() -> Self {
        TransytParams {
            alpha: 0.35,
            beta: 0.8,
            stop_weight_s: 20.0,
            max_evaluations_per_member: 200,
        }
    }
}

/// The index of a set of links at a set of offsets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Performance {
    /// `delay_veh_h_per_h + K stops_per_h`, in veh-h/h.
    pub pi: f64,
    pub delay_veh_h_per_h: f64,
    pub stops_per_h: f64,
}

impl Performance {
    fn add(&mut self, o: &Performance) {
        self.pi += o.pi;
        self.delay_veh_h_per_h += o.delay_veh_h_per_h;
        self.stops_per_h += o.stops_per_h;
    }
}

/// How a group's offsets were set, with the index of its links.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OffsetReport {
    /// The method that set the offsets.
    pub method: OffsetMethod,
    /// Why that method, under [`PlanParams::offsets`].
    pub why: String,
    /// What the index covers: the links between members of the group (each direction
    /// counts), at their downstream member. Entry links and approaches from outside the
    /// group are not in it (uniform arrivals: their delay does not depend on offsets).
    pub links: usize,
    /// The index at the green-wave offsets (where the search starts).
    pub before: Performance,
    /// The index at the offsets set (the same as `before` for the green wave).
    pub after: Performance,
    /// Offsets tried by the search (0 for the green wave).
    pub evaluations: usize,
}

/// The first approach of a member of `members` that comes from a signalised intersection
/// outside them, as (member, that intersection); `None` for a group no other signal feeds.
pub fn fed_from_outside(
    net: &Network,
    members: &[IntersectionIdx],
) -> Option<(IntersectionIdx, IntersectionIdx)> {
    use intersections::model::Endpoint;
    use intersections::spec::ControlKind;
    members.iter().find_map(|&m| {
        net.intersections[m.0]
            .approaches
            .iter()
            .find_map(|a| match net.links[a.0].from {
                Endpoint::Intersection(u)
                    if !members.contains(&u)
                        && net.intersections[u.0].control == ControlKind::Signal =>
                {
                    Some((m, u))
                }
                _ => None,
            })
    })
}

/// A small amount of vehicles below which a queue counts as empty.
const EMPTY: f64 = 1e-9;

/// Robertson's platoon dispersion of a cyclic profile `q` (vehicles per step) over a link of
/// `travel_s` seconds: the profile at the downstream stop line, the same vehicles per cycle.
pub fn disperse(q: &[f64], travel_s: f64, alpha: f64, beta: f64) -> Vec<f64> {
    let c = q.len();
    if c == 0 {
        return Vec::new();
    }
    let t = travel_s.max(0.0);
    let lag = (beta * t).round() as usize % c;
    let f = 1.0 / (1.0 + alpha * beta * t);
    let g = 1.0 - f;
    // The cyclic solution at the last step: F sum_k (1-F)^k q(C-1-t'-k) / (1 - (1-F)^C).
    let at = |j: isize| q[(j.rem_euclid(c as isize)) as usize];
    let mut last = 0.0;
    let mut w = 1.0;
    for k in 0..c as isize {
        last += w * at(c as isize - 1 - lag as isize - k);
        w *= g;
    }
    let last = f * last / (1.0 - w);
    let mut p = vec![0.0; c];
    let mut prev = last;
    for (j, pj) in p.iter_mut().enumerate() {
        *pj = f * at(j as isize - lag as isize) + g * prev;
        prev = *pj;
    }
    p[c - 1] = last;
    p
}

/// A stop line's queue over its steady-state cycle.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueCycle {
    /// Vehicles leaving in each step.
    pub departures: Vec<f64>,
    /// Queue summed over the cycle, vehicle-seconds.
    pub delay_veh_s: f64,
    /// Vehicles that arrive to red or to a queue.
    pub stops: f64,
}

/// Run `arrivals` (vehicles per 1 s step over a cycle) through a stop line that discharges at
/// most `sat_veh_s` per step while `green`.
pub fn queue_cycle(arrivals: &[f64], green: &[bool], sat_veh_s: f64) -> QueueCycle {
    let c = arrivals.len();
    let mut out = QueueCycle {
        departures: vec![0.0; c],
        delay_veh_s: 0.0,
        stops: 0.0,
    };
    if c == 0 {
        return out;
    }
    // Start at the first red step after a green: there the queue is smallest.
    let start = (0..c)
        .find(|&k| !green[k] && green[(k + c - 1) % c])
        .unwrap_or(0);
    let mut q0 = 0.0;
    for pass in 0..2 {
        let mut q = q0;
        out.delay_veh_s = 0.0;
        out.stops = 0.0;
        for n in 0..c {
            let k = (start + n) % c;
            let a = arrivals[k];
            let before = q;
            let dep = if green[k] {
                (q + a).min(sat_veh_s)
            } else {
                0.0
            };
            q = q + a - dep;
            if !green[k] || before > EMPTY {
                out.stops += a;
            }
            out.delay_veh_s += 0.5 * (before + q);
            out.departures[k] = dep;
        }
        if pass == 0 && q > EMPTY {
            q0 = q;
            continue;
        }
        break;
    }
    out
}

/// The traffic of one approach at one member served by one signal group.
#[derive(Clone, Debug)]
struct Stream {
    flow_veh_h: f64,
    sat_veh_s: f64,
    /// Effective green per step of the member's cycle time.
    green: Vec<bool>,
    /// The coordinated link it arrives on, if any.
    upstream: Option<usize>,
    /// Per coordinated link out of its member: the share of its flow that leaves onto it.
    onto: Vec<(usize, f64)>,
}

/// A link between two members.
#[derive(Clone, Debug)]
struct CoordLink {
    from: usize,
    to: usize,
    travel_s: f64,
    /// Streams at `from` that send vehicles onto it, with the share of their flow.
    feeders: Vec<(usize, f64)>,
    /// Streams at `to` that arrive on it.
    downstream: Vec<usize>,
    /// Outflow of `from` onto it with uniform arrivals at `from`, dispersed to `to`'s stop
    /// line, in `from`'s cycle time: what feeds `to`'s departures (one level of platoons).
    base_arrivals: Vec<f64>,
}

/// The cyclic flow profile model of a coordination group at fixed cycle and splits.
#[derive(Clone, Debug)]
pub struct GroupModel {
    /// Cycle in steps of 1 s.
    cycle_s: usize,
    members: Vec<IntersectionIdx>,
    streams: Vec<Stream>,
    links: Vec<CoordLink>,
    /// Per member: the links whose index depends on its offset.
    affects: Vec<Vec<usize>>,
    alpha: f64,
    beta: f64,
    stop_weight_s: f64,
}

/// Effective green per 1 s step (by the step's midpoint) of group `g` of a plan.
fn green_mask(plan: &Plan, g: usize, startup: Ms, cycle_s: usize) -> Vec<bool> {
    let c = plan.cycle;
    (0..cycle_s)
        .map(|k| {
            let mid = Ms(k as i64 * 1000 + 500);
            plan.spans[g].iter().any(|s| {
                if s.always {
                    return true;
                }
                let from = s.open + startup;
                let len = s.green_end - from;
                len > Ms::ZERO && (mid - from).rem_euclid(c) < len
            })
        })
        .collect()
}

impl GroupModel {
    /// The model of the members `members` (in wave order, with their plans; every plan on
    /// the group's cycle of whole seconds, or half of it) under `flows` (veh/h per movement, per intersection).
    pub fn new(
        net: &Network,
        flows: &[Vec<f64>],
        members: &[(IntersectionIdx, &Plan)],
        plan_params: &PlanParams,
        params: &TransytParams,
    ) -> GroupModel {
        let startup = Ms::from_secs_f64(plan_params.startup_lost_s).unwrap_or(Ms::ZERO);
        // The group's cycle: the longest (a double-cycling member runs half of it, and its
        // green windows repeat twice over the model's cycle).
        let cycle_s = members
            .iter()
            .map(|(_, p)| (p.cycle.0 / 1000).max(1) as usize)
            .max()
            .unwrap_or(1);
        let pos = |i: IntersectionIdx| members.iter().position(|(m, _)| *m == i);
        // Links between members, in the order of the network.
        let mut links: Vec<CoordLink> = Vec::new();
        let mut link_ids: Vec<usize> = Vec::new();
        for (l, lk) in net.links.iter().enumerate() {
            use intersections::model::Endpoint;
            if let (Endpoint::Intersection(a), Endpoint::Intersection(b)) = (lk.from, lk.to) {
                if let (Some(pa), Some(pb)) = (pos(a), pos(b)) {
                    if pa != pb {
                        links.push(CoordLink {
                            from: pa,
                            to: pb,
                            travel_s: lk.length_m / lk.speed_mps.max(1.0),
                            feeders: Vec::new(),
                            downstream: Vec::new(),
                            base_arrivals: Vec::new(),
                        });
                        link_ids.push(l);
                    }
                }
            }
        }
        let coord_of = |l: usize| link_ids.iter().position(|&x| x == l);
        // Streams: every (approach, vehicle group) pair with flow at every member.
        let mut streams: Vec<Stream> = Vec::new();
        for (ii, plan) in members {
            let ix = &net.intersections[ii.0];
            let f = &flows[ii.0];
            for &a in &ix.approaches {
                for g in 0..ix.groups.len() {
                    let mvs: Vec<usize> = (0..ix.movements.len())
                        .filter(|&m| {
                            ix.movements[m].from == a
                                && ix.movements[m].group.map(|x| x.0) == Some(g)
                        })
                        .collect();
                    let flow: f64 = mvs.iter().map(|&m| f[m].max(0.0)).sum();
                    if mvs.is_empty() || flow <= 0.0 {
                        continue;
                    }
                    let mut lanes: Vec<u32> = mvs
                        .iter()
                        .flat_map(|&m| ix.movements[m].lanes.iter().copied())
                        .collect();
                    lanes.sort_unstable();
                    lanes.dedup();
                    let sat = mvs
                        .iter()
                        .map(|&m| ix.movements[m].saturation_flow_veh_h)
                        .fold(f64::INFINITY, f64::min);
                    let sat_veh_s = if sat.is_finite() {
                        sat * lanes.len().max(1) as f64 / 3600.0
                    } else {
                        0.0
                    };
                    let mut onto: Vec<(usize, f64)> = Vec::new();
                    for &m in &mvs {
                        if let Some(cl) = coord_of(ix.movements[m].to.0) {
                            let share = f[m].max(0.0) / flow;
                            match onto.iter_mut().find(|(x, _)| *x == cl) {
                                Some(o) => o.1 += share,
                                None => onto.push((cl, share)),
                            }
                        }
                    }
                    streams.push(Stream {
                        flow_veh_h: flow,
                        sat_veh_s,
                        green: green_mask(plan, g, startup, cycle_s),
                        upstream: coord_of(a.0),
                        onto,
                    });
                }
            }
        }
        for (s, st) in streams.iter().enumerate() {
            for &(cl, share) in &st.onto {
                links[cl].feeders.push((s, share));
            }
            if let Some(cl) = st.upstream {
                links[cl].downstream.push(s);
            }
        }
        let mut model = GroupModel {
            cycle_s,
            members: members.iter().map(|(i, _)| *i).collect(),
            streams,
            links,
            affects: Vec::new(),
            alpha: params.alpha,
            beta: params.beta,
            stop_weight_s: params.stop_weight_s,
        };
        // One level of platoons: each link's outflow with uniform arrivals at its start.
        for l in 0..model.links.len() {
            let dep = model.departures(l, &|_| None);
            let lk = &model.links[l];
            model.links[l].base_arrivals = disperse(&dep, lk.travel_s, model.alpha, model.beta);
        }
        // What a member's offset reaches: its links, and the links leaving the members its
        // own links feed.
        let n = model.members.len();
        model.affects = (0..n)
            .map(|m| {
                (0..model.links.len())
                    .filter(|&l| {
                        let lk = &model.links[l];
                        lk.from == m
                            || lk.to == m
                            || lk.feeders.iter().any(|&(s, _)| {
                                model.streams[s]
                                    .upstream
                                    .is_some_and(|u| model.links[u].from == m)
                            })
                    })
                    .collect()
            })
            .collect();
        model
    }

    /// Links between members (each direction one).
    pub fn links(&self) -> usize {
        self.links.len()
    }

    pub fn members(&self) -> &[IntersectionIdx] {
        &self.members
    }

    /// Uniform arrivals per step at `flow_veh_h`.
    fn uniform(&self, flow_veh_h: f64) -> Vec<f64> {
        vec![flow_veh_h / 3600.0; self.cycle_s]
    }

    /// Arrivals of stream `s` in its member's cycle time: uniform, or the profile `arriving`
    /// gives for its link (in that member's cycle time) scaled to the stream's flow.
    fn arrivals(&self, s: usize, arriving: &dyn Fn(usize) -> Option<Vec<f64>>) -> Vec<f64> {
        let st = &self.streams[s];
        let per_cycle = st.flow_veh_h * self.cycle_s as f64 / 3600.0;
        match st.upstream.and_then(arriving) {
            Some(p) => {
                let total: f64 = p.iter().sum();
                if total > EMPTY {
                    p.iter().map(|x| x * per_cycle / total).collect()
                } else {
                    self.uniform(st.flow_veh_h)
                }
            }
            None => self.uniform(st.flow_veh_h),
        }
    }

    /// Outflow of link `l`'s upstream member onto it, in that member's cycle time.
    fn departures(&self, l: usize, arriving: &dyn Fn(usize) -> Option<Vec<f64>>) -> Vec<f64> {
        let mut out = vec![0.0; self.cycle_s];
        for &(s, share) in &self.links[l].feeders {
            let st = &self.streams[s];
            let q = queue_cycle(&self.arrivals(s, arriving), &st.green, st.sat_veh_s);
            for (o, d) in out.iter_mut().zip(&q.departures) {
                *o += share * d;
            }
        }
        out
    }

    /// `p` (in the cycle time of a member at offset `from_s`) in the cycle time of a member
    /// at offset `to_s`.
    fn shift(&self, p: &[f64], from_s: usize, to_s: usize) -> Vec<f64> {
        let c = self.cycle_s;
        let by = (to_s + c - from_s) % c;
        (0..c).map(|k| p[(k + by) % c]).collect()
    }

    /// The index of link `l` with members at offsets `off_s` (whole seconds in `[0, C)`).
    fn link_index(&self, l: usize, off_s: &[usize]) -> Performance {
        let lk = &self.links[l];
        let at_from = |u: usize| -> Option<Vec<f64>> {
            let up = &self.links[u];
            Some(self.shift(&up.base_arrivals, off_s[up.from], off_s[lk.from]))
        };
        let dep = self.departures(l, &at_from);
        let p = disperse(&dep, lk.travel_s, self.alpha, self.beta);
        let p = self.shift(&p, off_s[lk.from], off_s[lk.to]);
        let mut perf = Performance::default();
        let c = self.cycle_s as f64;
        for &s in &lk.downstream {
            let st = &self.streams[s];
            let arr = self.arrivals(s, &|_| Some(p.clone()));
            let q = queue_cycle(&arr, &st.green, st.sat_veh_s);
            // Per cycle to per hour: delay veh-s/cycle x (3600/C cycles/h) / 3600 s/h.
            let delay = q.delay_veh_s / c;
            let stops = q.stops * 3600.0 / c;
            perf.add(&Performance {
                pi: delay + self.stop_weight_s / 3600.0 * stops,
                delay_veh_h_per_h: delay,
                stops_per_h: stops,
            });
        }
        perf
    }

    /// Member offsets in whole seconds of the model's cycle (rounded to the nearest second).
    fn to_steps(&self, offsets: &[Ms]) -> Vec<usize> {
        let c = self.cycle_s as i64;
        offsets
            .iter()
            .map(|o| ((o.0 + 500).div_euclid(1000)).rem_euclid(c) as usize)
            .collect()
    }

    /// The index of the group's links with its members at `offsets` (in member order).
    pub fn performance(&self, offsets: &[Ms]) -> Performance {
        let off = self.to_steps(offsets);
        let mut perf = Performance::default();
        for l in 0..self.links.len() {
            perf.add(&self.link_index(l, &off));
        }
        perf
    }
}

/// What the search found.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchResult {
    /// Offsets per member (in member order), on the 100 ms grid of the start.
    pub offsets: Vec<Ms>,
    pub before: Performance,
    pub after: Performance,
    pub evaluations: usize,
    /// The index after each accepted move, from the start (never rising).
    pub trace: Vec<f64>,
}

/// TRANSYT's hill-climb of the members' offsets from `start` (member order; the first
/// member stays where it is).
pub fn search(model: &GroupModel, start: &[Ms], params: &TransytParams) -> SearchResult {
    let n = model.members.len();
    let c = model.cycle_s;
    let c_ms = Ms(c as i64 * 1000);
    let base = model.to_steps(start);
    // Moves from the start, whole seconds in [0, C).
    let mut d = vec![0usize; n];
    let steps_of = |d: &[usize]| -> Vec<usize> { (0..n).map(|m| (base[m] + d[m]) % c).collect() };
    let mut per_link: Vec<Performance> = (0..model.links.len())
        .map(|l| model.link_index(l, &base))
        .collect();
    let total = |v: &[Performance]| {
        let mut p = Performance::default();
        for x in v {
            p.add(x);
        }
        p
    };
    let before = total(&per_link);
    let mut pi = before.pi;
    let mut trace = vec![pi];
    let mut evaluations = 0usize;
    let budget = params.max_evaluations_per_member * n.saturating_sub(1);
    let mut sizes: Vec<usize> = vec![c / 2, c / 4, c / 8, 4, 2, 1];
    sizes.retain(|&s| s >= 1 && s < c);
    sizes.dedup();
    'sizes: for &step in &sizes {
        loop {
            let mut moved = false;
            for m in 1..n {
                if model.affects[m].is_empty() {
                    continue;
                }
                let dirs: &[usize] = if c - step == step {
                    &[step]
                } else {
                    &[step, c - step]
                };
                for &dir in dirs {
                    let mut went = false;
                    // Keep going in a direction while it pays (at most once round the cycle).
                    for _ in 0..c.div_ceil(step) {
                        if evaluations >= budget {
                            break 'sizes;
                        }
                        evaluations += 1;
                        let mut trial = d.clone();
                        trial[m] = (trial[m] + dir) % c;
                        let off = steps_of(&trial);
                        let new: Vec<(usize, Performance)> = model.affects[m]
                            .iter()
                            .map(|&l| (l, model.link_index(l, &off)))
                            .collect();
                        let old: f64 = model.affects[m].iter().map(|&l| per_link[l].pi).sum();
                        let now: f64 = new.iter().map(|(_, p)| p.pi).sum();
                        // Relative tolerance: a move must pay more than rounding noise.
                        if now < old - 1e-9 * (1.0 + pi.abs()) {
                            d = trial;
                            for (l, p) in new {
                                per_link[l] = p;
                            }
                            pi = total(&per_link).pi;
                            trace.push(pi);
                            moved = true;
                            went = true;
                        } else {
                            break;
                        }
                    }
                    if went {
                        break;
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }
    let offsets = (0..n)
        .map(|m| (start[m] + Ms(d[m] as i64 * 1000)).rem_euclid(c_ms))
        .collect();
    SearchResult {
        offsets,
        before,
        after: total(&per_link),
        evaluations,
        trace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimate::demand_flows;
    use crate::webster::plan_network;
    use std::path::Path;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
    }

    /// A platoon of 10 steps at 0.5 veh/s in a 60 s cycle.
    fn platoon() -> Vec<f64> {
        (0..60).map(|k| if k < 10 { 0.5 } else { 0.0 }).collect()
    }

    #[test]
    fn dispersion_keeps_the_vehicles_and_flattens_the_platoon() {
        let q = platoon();
        let p = disperse(&q, 20.0, 0.35, 0.8);
        let sum = |v: &[f64]| v.iter().sum::<f64>();
        assert!(close(sum(&p), sum(&q)), "{} vs {}", sum(&p), sum(&q));
        let peak = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
        // F = 1 / (1 + 0.35 x 0.8 x 20); after the platoon's 10 steps the profile has
        // climbed to 0.5 (1 - (1 - F)^10), about 0.40 (the cycle's wrap adds next to nothing).
        let f: f64 = 1.0 / (1.0 + 0.35 * 0.8 * 20.0);
        let want = 0.5 * (1.0 - (1.0 - f).powi(10));
        assert!((peak(&p) - want).abs() < 1e-3, "{} vs {want}", peak(&p));
        assert!(peak(&p) < 0.85 * peak(&q), "{} vs {}", peak(&p), peak(&q));
        // The head arrives after beta t = 16 s; before it only the tail of the last cycle's
        // platoon.
        assert!(p[..16].iter().all(|&x| x < 0.01 * peak(&p)), "{p:?}");
        assert!(p[16] > 0.15 * peak(&p), "{p:?}");
        // Longer links disperse more; no travel time, no change.
        assert!(peak(&disperse(&q, 60.0, 0.35, 0.8)) < peak(&p));
        assert_eq!(disperse(&q, 0.0, 0.35, 0.8), q);
        // Cyclic: a profile shifted by 7 s disperses to the same profile shifted by 7 s.
        let shifted: Vec<f64> = (0..60).map(|k| q[(k + 53) % 60]).collect();
        let ps = disperse(&shifted, 20.0, 0.35, 0.8);
        assert!((0..60).all(|k| close(ps[k], p[(k + 53) % 60])));
    }

    #[test]
    fn the_queue_keeps_the_vehicles_and_gives_the_uniform_delay() {
        // Green the first 30 s of 60, saturation 1 veh/s, 0.2 veh/s uniform: the queue grows
        // to 6 over the red and clears in 7.5 s, delay q r^2 / (2 (1 - q/s)) = 112.5 veh-s.
        let green: Vec<bool> = (0..60).map(|k| k < 30).collect();
        let uniform = vec![0.2; 60];
        let q = queue_cycle(&uniform, &green, 1.0);
        assert!(close(q.departures.iter().sum::<f64>(), 12.0));
        // (112.6 in 1 s steps: the queue empties half-way through its last step, which the
        // step's mean queue, 0.2, counts as 0.2 s rather than 0.1.)
        assert!(close(q.delay_veh_s, 112.6), "{}", q.delay_veh_s);
        // The 6 arriving on red and the 1.6 that join the queue as it clears.
        assert!(close(q.stops, 7.6), "{}", q.stops);
        // A platoon, anywhere in the cycle: what arrives leaves.
        for at in [0, 25, 45] {
            let p: Vec<f64> = (0..60).map(|k| platoon()[(k + 60 - at) % 60]).collect();
            let q = queue_cycle(&p, &green, 1.0);
            assert!(close(q.departures.iter().sum::<f64>(), 5.0), "at {at}");
            assert!(q.departures.iter().all(|&d| d <= 1.0 + 1e-12));
        }
        // A platoon on green passes without a stop; on red it all stops.
        assert!(close(queue_cycle(&platoon(), &green, 1.0).stops, 0.0));
        let late: Vec<f64> = (0..60).map(|k| platoon()[(k + 20) % 60]).collect();
        assert!(close(queue_cycle(&late, &green, 1.0).stops, 5.0));
    }

    /// A 2x2 generated grid (links 250 m at 50 km/h: 18 s) with flow only eastbound along
    /// its southern row, I0_0 -> I1_0, and the generated plan (60 s, east-west green first).
    fn toy() -> (Network, Vec<Vec<f64>>, Vec<(IntersectionIdx, Plan)>) {
        let (net, _) = simulator::synth::grid(2, 400.0, 1).unwrap();
        let a = net.intersection("I0_0").unwrap();
        let b = net.intersection("I1_0").unwrap();
        let mut flows: Vec<Vec<f64>> = net
            .intersections
            .iter()
            .map(|ix| vec![0.0; ix.movements.len()])
            .collect();
        for (i, from, to) in [(a, "W0-I0_0", "I0_0-I1_0"), (b, "I0_0-I1_0", "I1_0-E0")] {
            let ix = &net.intersections[i.0];
            let m = (0..ix.movements.len())
                .find(|&m| {
                    ix.movements[m].from == net.link(from).unwrap()
                        && ix.movements[m].to == net.link(to).unwrap()
                })
                .unwrap();
            flows[i.0][m] = 900.0;
        }
        let plans = [a, b]
            .iter()
            .map(|&i| (i, net.intersections[i.0].plans[0].clone()))
            .collect();
        (net, flows, plans)
    }

    fn model(net: &Network, flows: &[Vec<f64>], plans: &[(IntersectionIdx, Plan)]) -> GroupModel {
        let refs: Vec<(IntersectionIdx, &Plan)> = plans.iter().map(|(i, p)| (*i, p)).collect();
        GroupModel::new(
            net,
            flows,
            &refs,
            &PlanParams::default(),
            &TransytParams::default(),
        )
    }

    #[test]
    fn the_model_moves_every_vehicle_onto_the_link() {
        let (net, flows, plans) = toy();
        let m = model(&net, &flows, &plans);
        assert_eq!(m.links(), 2); // both directions, one of them empty
        let east = (0..m.links.len()).find(|&l| m.links[l].from == 0).unwrap();
        // 900 veh/h over a 60 s cycle: 15 vehicles leave I0_0 and reach I1_0.
        let dep = m.departures(east, &|_| None);
        assert!(close(dep.iter().sum::<f64>(), 15.0), "{dep:?}");
        assert!(close(m.links[east].base_arrivals.iter().sum::<f64>(), 15.0));
        // And whatever the offsets, what the downstream stop line serves is those 15.
        for off in [0, 13, 40] {
            let arr = m.arrivals(m.links[east].downstream[0], &|_| {
                Some(m.shift(&m.links[east].base_arrivals, 0, off))
            });
            let q = queue_cycle(&arr, &m.streams[m.links[east].downstream[0]].green, 1.0);
            assert!(close(q.departures.iter().sum::<f64>(), 15.0), "{off}");
        }
    }

    #[test]
    fn the_search_finds_the_travel_time_from_a_bad_start() {
        let (net, flows, plans) = toy();
        let m = model(&net, &flows, &plans);
        let mut found = Vec::new();
        for bad in [0, 30, 45, 55] {
            let r = search(&m, &[Ms::ZERO, Ms::from_s(bad)], &TransytParams::default());
            assert_eq!(r.offsets[0], Ms::ZERO, "the first member stays");
            let rel = r.offsets[1].as_secs_f64();
            // Travel time 250 m / 13.9 m/s = 18 s (the head of the platoon after 14 s); found:
            // 15 s from every start.
            assert!((14.0..=22.0).contains(&rel), "from {bad}: {rel} s, {r:?}");
            found.push(rel);
            assert!(r.after.pi < 0.5 * r.before.pi, "{r:?}");
            assert!(r.trace.windows(2).all(|w| w[1] <= w[0]), "{:?}", r.trace);
            assert!(close(r.after.pi, m.performance(&r.offsets).pi));
        }
        assert!(found.iter().all(|&x| x == found[0]), "{found:?}");
    }

    fn load(name: &str) -> (Network, Vec<Vec<f64>>) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
        let net = intersections::load::load_network(&dir.join(format!("{name}.toml"))).unwrap();
        let d =
            intersections::load::load_demand_for(&dir.join(format!("{name}.demand.toml")), &net)
                .unwrap();
        let flows = demand_flows(&net, &d, None);
        (net, flows)
    }

    /// Double cycling: with light flows, members whose own cycle fits in half the group's run
    /// half of it, their offsets in their own cycle; the search handles them (their green
    /// windows repeat twice over the model's cycle) and never raises the index. Without the
    /// option every member runs the group's cycle.
    #[test]
    fn double_cycling_halves_lightly_loaded_members_only() {
        for name in ["district"] {
            let (net, flows) = load(name);
            let light: Vec<Vec<f64>> = flows
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    // Every other intersection light, the rest heavier (a long group cycle).
                    let k = if i % 2 == 0 { 0.2 } else { 1.6 };
                    f.iter().map(|x| x * k).collect()
                })
                .collect();
            let cycle_of = |np: &crate::webster::NetworkPlan, i: IntersectionIdx| {
                np.plans.iter().find(|(j, _)| *j == i).unwrap().1.clone()
            };
            let off = plan_network(&net, &light, &PlanParams::default()).unwrap();
            for g in &net.coordination_groups {
                let c: Vec<Ms> = g
                    .intersections
                    .iter()
                    .map(|&i| cycle_of(&off, i).cycle)
                    .collect();
                assert!(c.iter().all(|x| *x == c[0]), "{name}: {c:?}");
            }
            for offsets in [OffsetChoice::GreenWave, OffsetChoice::Transyt] {
                let p = PlanParams {
                    double_cycling: true,
                    offsets,
                    ..PlanParams::default()
                };
                let on = plan_network(&net, &light, &p).unwrap();
                let mut halved = 0;
                for (g, r) in net.coordination_groups.iter().zip(&on.groups) {
                    let full = Ms::from_secs_f64(r.cycle_s).unwrap();
                    for &i in &g.intersections {
                        let pl = cycle_of(&on, i);
                        assert!(
                            pl.cycle == full || pl.cycle.0 * 2 == full.0,
                            "{name}: {pl:?}"
                        );
                        assert!(pl.offset < pl.cycle, "{name}: {pl:?}");
                        halved += usize::from(pl.cycle != full);
                    }
                    assert!(r.offsets.after.pi <= r.offsets.before.pi + 1e-9, "{r:?}");
                }
                assert!(halved > 0, "{name}: no member double cycles");
            }
        }
    }

    /// The default searches the arterial (no signal outside it feeds it) and keeps the green
    /// wave on grid4's avenues (the cross streets come from the other avenues' signals).
    #[test]
    fn auto_searches_isolated_groups_only() {
        let (net, flows) = load("arterial");
        let a = plan_network(&net, &flows, &PlanParams::default()).unwrap();
        assert_eq!(PlanParams::default().offsets, OffsetChoice::GreenWave);
        assert_eq!(a.groups[0].offsets.method, OffsetMethod::GreenWave);
        let auto = PlanParams {
            offsets: OffsetChoice::Auto,
            ..PlanParams::default()
        };
        let a = plan_network(&net, &flows, &auto).unwrap();
        assert_eq!(a.groups[0].offsets.method, OffsetMethod::Transyt);
        assert!(a.groups[0].offsets.after.pi < a.groups[0].offsets.before.pi);
        let (net, flows) = load("grid4");
        let g = plan_network(&net, &flows, &auto).unwrap();
        assert_eq!(g.groups.len(), 4);
        for r in &g.groups {
            assert_eq!(r.offsets.method, OffsetMethod::GreenWave, "{r:?}");
            assert_eq!(r.offsets.evaluations, 0);
            assert!(r.offsets.why.contains("outside the group feeds"), "{r:?}");
        }
        let forced = PlanParams {
            offsets: OffsetChoice::Transyt,
            ..PlanParams::default()
        };
        let t = plan_network(&net, &flows, &forced).unwrap();
        assert!(t
            .groups
            .iter()
            .all(|r| r.offsets.method == OffsetMethod::Transyt));
        // Splits and cycles are the same; only offsets differ.
        for ((_, x), (_, y)) in g.plans.iter().zip(&t.plans) {
            assert_eq!((x.cycle, &x.stages), (y.cycle, &y.stages));
        }
    }

    #[test]
    fn the_index_never_rises_and_the_search_is_deterministic() {
        let (net, flows) = load("arterial");
        let p = PlanParams {
            offsets: OffsetChoice::Transyt,
            ..PlanParams::default()
        };
        let a = plan_network(&net, &flows, &p).unwrap();
        let b = plan_network(&net, &flows, &p).unwrap();
        assert_eq!(a.plans, b.plans);
        let g = &a.groups[0].offsets;
        assert_eq!(g.method, OffsetMethod::Transyt);
        assert_eq!(g.links, 8);
        assert!(g.after.pi <= g.before.pi && g.evaluations > 0, "{g:?}");
        // The green wave reports the same start and moves nothing.
        let w = plan_network(
            &net,
            &flows,
            &PlanParams {
                offsets: OffsetChoice::GreenWave,
                ..PlanParams::default()
            },
        )
        .unwrap();
        let gw = &w.groups[0].offsets;
        assert_eq!(gw.method, OffsetMethod::GreenWave);
        assert!(close(gw.before.pi, g.before.pi) && gw.after == gw.before);
        // Every trace of the search falls, from the green wave and from every member at 0.
        let order: Vec<IntersectionIdx> = a.groups[0]
            .wave
            .iter()
            .map(|id| net.intersection(id).unwrap())
            .collect();
        let plans: Vec<(IntersectionIdx, Plan)> = order
            .iter()
            .map(|i| (*i, w.plans.iter().find(|(j, _)| j == i).unwrap().1.clone()))
            .collect();
        let m = model(&net, &flows, &plans);
        let wave: Vec<Ms> = plans.iter().map(|(_, p)| p.offset).collect();
        for start in [wave.clone(), vec![Ms::ZERO; wave.len()]] {
            let r = search(&m, &start, &TransytParams::default());
            assert!(r.trace.windows(2).all(|w| w[1] <= w[0]), "{:?}", r.trace);
            assert!(close(*r.trace.last().unwrap(), r.after.pi));
            assert!(close(r.after.pi, m.performance(&r.offsets).pi));
            assert!(r.offsets.iter().all(|o| o.0 % 100 == 0));
        }
    }
}
