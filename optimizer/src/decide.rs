//! Validation before deployment: the candidate plans and the plans in force each run in the
//! simulator over the same horizon, with the same estimated demand and the same seeds (common
//! random numbers: the same vehicles on the same routes). The candidate is accepted only if
//! the mean delay improves by more than the threshold (default 3%). Every decision, accepted
//! or not, is a [`Decision`] with its before and after figures.
//!
//! Every run is driven by the cabinets' own logic ([`crate::cabinet::Cabinets`], each
//! intersection's `SignalMachine`). Per seed, the street fills from empty under the operation
//! in force for a warm-up (not measured); from that one state the run goes on twice or more:
//! under the operation in force (before), and with the candidate handed to the cabinets at
//! the end of the warm-up (after), which move to it as they would on the street: at a cycle
//! boundary through transition cycles (`intersections::transition`), or by switching between
//! coordinated and isolated actuated operation. So a candidate pays for its transition and
//! starts from the queues the plans in force leave, and the horizon is measured from the
//! switch.
//!
//! [`validate_operations`] checks several candidate [`Operation`]s at once (the same plans run
//! coordinated and run isolated actuated, say) and decides on the best of them.

use std::collections::BTreeMap;

use intersections::control::ActuatedParams;
use intersections::demand::Demand;
use intersections::{IntersectionIdx, Ms, Network, Plan};
use serde::Serialize;
use simulator::{Control, ControlKind, RunMetrics, Scenario, SimConfig, SimError, Simulation};

use crate::cabinet::{Cabinets, Trip};

/// Plans and how the cabinets run them: coordinated (fixed time, the plans' cycles and
/// offsets) or isolated actuated (each cabinet runs the plan's stage sequence with gap-out
/// and max-out, [`intersections::control::Actuated`], the plan's greens times a factor as the
/// maximums), everywhere or at some intersections. The simulator runs both with the signal
/// logic the cabinet runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    pub plans: Vec<(IntersectionIdx, Plan)>,
    /// `Some`: the plans run isolated actuated with these parameters (at the intersections
    /// of `actuated_only_at` if that is `Some`, else everywhere).
    pub actuated: Option<ActuatedParams>,
    pub actuated_only_at: Option<Vec<IntersectionIdx>>,
}

impl Operation {
    /// The plans run coordinated in fixed time.
    pub fn coordinated(plans: Vec<(IntersectionIdx, Plan)>) -> Self {
        Operation {
            plans,
            actuated: None,
            actuated_only_at: None,
        }
    }

    /// The plans run isolated actuated, each stage up to its green times `max_green_factor`.
    pub fn actuated(plans: Vec<(IntersectionIdx, Plan)>, max_green_factor: f64) -> Self {
        Operation {
            plans,
            actuated: Some(ActuatedParams {
                max_green_factor,
                ..ActuatedParams::default()
            }),
            actuated_only_at: None,
        }
    }

    /// The plans run isolated actuated at `at` and coordinated elsewhere.
    pub fn mixed(
        plans: Vec<(IntersectionIdx, Plan)>,
        at: Vec<IntersectionIdx>,
        max_green_factor: f64,
    ) -> Self {
        if at.is_empty() {
            return Operation::coordinated(plans);
        }
        let mut op = Operation::actuated(plans, max_green_factor);
        op.actuated_only_at = Some(at);
        op
    }

    /// The actuated parameters intersection `i` runs with, `None` if it runs coordinated.
    pub fn actuated_at(&self, i: IntersectionIdx) -> Option<&ActuatedParams> {
        let a = self.actuated.as_ref()?;
        match &self.actuated_only_at {
            Some(at) if !at.contains(&i) => None,
            _ => Some(a),
        }
    }

    /// `coordinated`, `actuated` or `mixed`.
    pub fn mode(&self) -> &'static str {
        let n = self
            .plans
            .iter()
            .filter(|(i, _)| self.actuated_at(*i).is_some())
            .count();
        if n == 0 {
            "coordinated"
        } else if n == self.plans.len() {
            "actuated"
        } else {
            "mixed"
        }
    }

    /// The simulator's control that runs this operation.
    pub fn control(&self) -> Control {
        Control {
            kind: ControlKind::Fixed,
            plans: self.plans.clone(),
            kinds: self
                .plans
                .iter()
                .filter(|(i, _)| self.actuated_at(*i).is_some())
                .map(|(i, _)| (*i, ControlKind::Actuated))
                .collect(),
            actuated: self.actuated.clone().unwrap_or_default(),
            ..Control::default()
        }
    }
}

/// Settings of the check.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidateParams {
    /// Least relative improvement of mean delay to accept (0.03 = 3%).
    pub threshold: f64,
    pub seeds: Vec<u64>,
    /// Measured time.
    pub horizon: Ms,
    /// Time run first to fill the network (not measured).
    pub warmup: Ms,
    /// The simulator's configuration of the check's runs (the model the centre checks with;
    /// the adaptive benchmark checks with its street's).
    pub sim: SimConfig,
    /// Stop after the first [`EARLY_SEEDS`] seeds when they reject every candidate beyond
    /// doubt ([`clearly_rejected`]): the other seeds' runs are not made. Only a rejection is
    /// ever decided early; an acceptance always takes every seed.
    pub early_reject: bool,
}

/// Most seeds a check may run (each is three runs of the whole region).
pub const MAX_CHECK_SEEDS: usize = 20;

/// A check threshold given in percent, as the commands and `serve.toml` take it: a finite
/// number from 0 to under 100. Returns the fraction ([`ValidateParams::threshold`]), or what is
/// wrong with it.
pub fn threshold_from_pct(pct: f64) -> Result<f64, String> {
    if pct.is_finite() && (0.0..100.0).contains(&pct) {
        Ok(pct / 100.0)
    } else {
        Err(format!("{pct} is not a percentage from 0 to under 100"))
    }
}

/// A check's number of seeds: 1 to [`MAX_CHECK_SEEDS`]. Returns the seeds the check runs
/// (1 to `n`), or what is wrong with the number.
pub fn check_seeds(n: usize) -> Result<Vec<u64>, String> {
    if (1..=MAX_CHECK_SEEDS).contains(&n) {
        Ok((1..=n as u64).collect())
    } else {
        Err(format!("{n} seeds: a check runs 1 to {MAX_CHECK_SEEDS}"))
    }
}

impl Default for ValidateParams {
    fn default() -> Self {
        ValidateParams {
            threshold: 0.03,
            seeds: vec![1, 2, 3],
            horizon: Ms::from_s(3600),
            warmup: Ms::from_s(300),
            sim: SimConfig::default(),
            early_reject: true,
        }
    }
}

/// The check's demand from the estimates of the last intervals (`recent`, oldest first, each
/// the movement flows estimated over one `interval`, the last the newest): the street's
/// recent past replayed as the warm-up, as many whole intervals as fit in `p.warmup`, then
/// the newest estimate held over the horizon. Returns the demand and the check's settings
/// with the warm-up that is replayed (shorter than `p.warmup` while fewer intervals are
/// known). A warm-up shorter than one interval replays nothing: the newest estimate from
/// empty for the warm-up and the horizon, the settings as given.
///
/// Replaying the estimated recent past, rather than filling an empty street for a while on
/// the newest estimate alone, gives the check the queues the street has built: on grid4 the
/// check from empty saw half the delay the street had at the peak and so ranked re-plans as
/// on a light network (docs/benchmarks.md, "The check's warm-up").
pub fn check_demand(
    net: &Network,
    recent: &[Vec<Vec<f64>>],
    interval: Ms,
    p: &ValidateParams,
) -> Result<(Demand, ValidateParams), Vec<intersections::diag::Problem>> {
    assert!(
        !recent.is_empty() && interval > Ms::ZERO,
        "check_demand needs an estimate and an interval"
    );
    let newest = recent.last().expect("checked above");
    let fit = replayed_intervals(p, interval).min(recent.len());
    if fit == 0 {
        let demand = crate::estimate::demand_from_flows(net, newest, p.warmup + p.horizon)?;
        return Ok((demand, p.clone()));
    }
    let ahead = (p.horizon.0 + interval.0 - 1) / interval.0;
    let mut slices: Vec<&[Vec<f64>]> = recent[recent.len() - fit..]
        .iter()
        .map(Vec::as_slice)
        .collect();
    slices.extend(std::iter::repeat_n(
        newest.as_slice(),
        ahead.max(1) as usize,
    ));
    let demand = crate::estimate::demand_from_flow_slices(net, &slices, interval)?;
    let mut p = p.clone();
    p.warmup = Ms(interval.0 * fit as i64);
    Ok((demand, p))
}

/// How many intervals of estimates the check replays as its warm-up: as many whole
/// `interval`s as fit in `p.warmup` (the one rule, for [`check_demand`] and [`Twin`]).
fn replayed_intervals(p: &ValidateParams, interval: Ms) -> usize {
    (p.warmup.0 / interval.0.max(1)).max(0) as usize
}

/// The estimated street the check forks from, kept from one check to the next: per seed of
/// the check, a simulation of the network driven by the cabinets' logic under the operations
/// that were in force, advanced over each interval on that interval's estimate
/// ([`Simulation::set_demand`]). At each check the twins advance over the interval just
/// ended, and each candidate is forked from them as in [`validate_operations`].
///
/// Against [`check_demand`]'s replay (the last hour's estimates from an empty street, under
/// the operation in force now), a twin has the whole past behind it, under the operations
/// that really ran, and costs one interval of simulation per check instead of the hour
/// replayed: the per-check time of the 1,024-intersection bench falls by about a third
/// (docs/benchmarks.md). The twin is a pure function of the sequence of checks it is given
/// (the estimates, the times and the operations in force), so runs stay reproducible.
///
/// A seed's twin starts again from a replay of the estimates it keeps ([`check_demand`])
/// when it has none yet, when it gridlocked, when the checks are not one interval apart, or
/// when the check's seeds change; and at every check unless it is persistent. A twin that is
/// not persistent is [`check_demand`]'s replay followed by [`validate_operations`], the same
/// figures to the last digit: the adaptive loop's check by default, because on the priced
/// benchmark the persistent twin lost to it (docs/benchmarks.md, "A persistent twin").
#[derive(Clone, Debug, Default)]
pub struct Twin {
    interval: Ms,
    persistent: bool,
    /// The estimates of the last intervals, oldest first: what a restart replays.
    recent: Vec<Vec<Vec<f64>>>,
    /// The time of the last check, and the operation that ran from it.
    last: Option<(Ms, Operation)>,
    seeds: Vec<u64>,
    runs: Vec<Option<TwinRun>>,
}

#[derive(Clone, Debug)]
struct TwinRun {
    sim: Simulation,
    cabinets: Cabinets,
    /// The street's time at the simulation's time 0.
    origin: Ms,
}

/// One interval of the street as a [`Twin`] sees it, at a check or an advance.
#[derive(Clone, Debug)]
pub struct TwinStep<'a> {
    /// Street time at the end of the interval.
    pub now: Ms,
    /// The estimate of the movement flows over the interval, which the twins advance on.
    pub past: Vec<Vec<f64>>,
    /// The flows the candidates are checked on, held over the horizon; `None`: `past`.
    pub ahead: Option<&'a [Vec<f64>]>,
    /// The operation in force.
    pub in_force: &'a Operation,
}

impl<'a> TwinStep<'a> {
    /// The interval ending at `now` on `flows`, checked on the same flows (the adaptive
    /// loop advances on its forecast and checks on it).
    pub fn held(now: Ms, flows: Vec<Vec<f64>>, in_force: &'a Operation) -> TwinStep<'a> {
        TwinStep {
            now,
            past: flows,
            ahead: None,
            in_force,
        }
    }

    /// The candidates checked on `ahead` instead of the interval's flows.
    pub fn ahead(self, ahead: &'a [Vec<f64>]) -> TwinStep<'a> {
        TwinStep {
            ahead: Some(ahead),
            ..self
        }
    }
}

impl Twin {
    /// A twin for checks `interval` apart, kept from check to check if `persistent`; it
    /// builds its simulations at the first check.
    pub fn new(interval: Ms, persistent: bool) -> Self {
        assert!(interval > Ms::ZERO, "a twin needs an interval");
        Twin {
            interval,
            persistent,
            ..Twin::default()
        }
    }

    /// How many estimates the twin keeps for a replay with the check's settings `p`, oldest
    /// first (the caller's own list of them, if it keeps one, needs no more).
    pub fn keeps(&self, p: &ValidateParams) -> usize {
        replayed_intervals(p, self.interval).max(1)
    }

    /// How long the street behind the check is: the shortest history of the seeds' twins
    /// (zero before the first check).
    pub fn age(&self, now: Ms) -> Ms {
        self.runs
            .iter()
            .map(|r| r.as_ref().map_or(Ms::ZERO, |r| now - r.origin))
            .min()
            .unwrap_or(Ms::ZERO)
    }

    /// The check at the end of `step`: if `step.in_force` is not the operation of the last
    /// check, the twins take it as from the last check (the adaptive loop deploys at the
    /// check's time, so the twins follow the street exactly); they go on over the interval on
    /// `step.past`; then, per seed, each twin goes on from its state under the operation in
    /// force and with each candidate, over `p.horizon`, on `step`'s flows ahead. The decision
    /// is [`validate_operations`]'s (its `warmup_s` is the twins' age).
    pub fn check(
        &mut self,
        net: &Network,
        step: TwinStep<'_>,
        candidates: &[Operation],
        p: &ValidateParams,
    ) -> Result<(Decision, usize), SimError> {
        assert!(!candidates.is_empty(), "a check needs a candidate");
        let now = step.now;
        let per_seed = self.go(net, step, candidates, p)?;
        let age = self.age(now);
        Ok(decide(&per_seed, candidates, p, age))
    }

    /// The twins go on over `step` as in [`Twin::check`], with nothing to check: an interval
    /// without a re-plan, or a benchmark's way to a twin with a past.
    pub fn advance(
        &mut self,
        net: &Network,
        step: TwinStep<'_>,
        p: &ValidateParams,
    ) -> Result<(), SimError> {
        self.go(net, step, &[], p)?;
        Ok(())
    }

    /// [`Twin::check`]'s runs: per seed, the operation in force and then each candidate
    /// (none if `candidates` is empty).
    fn go(
        &mut self,
        net: &Network,
        step: TwinStep<'_>,
        candidates: &[Operation],
        p: &ValidateParams,
    ) -> Result<Vec<Vec<ForkRun>>, SimError> {
        let TwinStep {
            now,
            past,
            ahead,
            in_force,
        } = step;
        let problems = |p: Vec<intersections::diag::Problem>| {
            SimError::Config(format!(
                "the estimated demand does not check: {}",
                p.iter()
                    .map(|x| format!("{}: {}", x.path, x.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        };
        let ahead = ahead.filter(|a| *a != past.as_slice());
        self.recent.push(past);
        let keep = self.keeps(p);
        if self.recent.len() > keep {
            self.recent.drain(..self.recent.len() - keep);
        }
        let since = now - self.interval;
        let last = self.last.take();
        let go_on = self.persistent
            && self.seeds == p.seeds
            && last.as_ref().is_some_and(|(t, _)| *t == since);
        if !go_on {
            self.seeds = p.seeds.clone();
            self.runs = vec![None; p.seeds.len()];
        }
        // Taken as from the last check, where the street took it.
        let switch = last
            .as_ref()
            .and_then(|(_, op)| (op != in_force).then_some(in_force));
        // A demand held from the oldest twin's time 0 (a restarted one's included) to the end
        // of the horizon: a single slice, so where a twin's time 0 is does not matter.
        let reach = self
            .runs
            .iter()
            .flatten()
            .map(|r| now - r.origin)
            .chain([Ms(self.interval.0 * keep as i64)])
            .max()
            .unwrap_or(Ms::ZERO)
            + p.horizon;
        let held = |flows: &[Vec<f64>]| -> Result<Scenario, SimError> {
            Scenario::new(
                net.clone(),
                crate::estimate::demand_from_flows(net, flows, reach).map_err(problems)?,
                p.sim.clone(),
            )
        };
        let over_past = match go_on {
            true => Some(held(self.recent.last().expect("pushed above"))?),
            false => None,
        };
        // The replay and `over_past` hold the newest estimate on: a switch only if the
        // horizon's flows are other ones.
        let over_horizon = ahead.map(held).transpose()?;
        // Made the first time a seed starts again: the estimates kept, replayed.
        let replay = std::sync::OnceLock::new();
        let runs: Vec<std::sync::Mutex<Option<TwinRun>>> = std::mem::take(&mut self.runs)
            .into_iter()
            .map(std::sync::Mutex::new)
            .collect();
        let index = |seed: u64| {
            p.seeds
                .iter()
                .position(|&s| s == seed)
                .expect("a seed of p")
        };
        let restart = |seed: u64| -> Result<TwinRun, SimError> {
            let (scenario, warmup) = replay
                .get_or_init(|| -> Result<(Scenario, Ms), SimError> {
                    let (d, q) =
                        check_demand(net, &self.recent, self.interval, p).map_err(problems)?;
                    Ok((Scenario::new(net.clone(), d, p.sim.clone())?, q.warmup))
                })
                .as_ref()
                .map_err(|e| SimError::Config(e.to_string()))?;
            let (sim, cabinets) = power_up(scenario, in_force, seed, *warmup)?;
            Ok(TwinRun {
                sim,
                cabinets,
                origin: now - *warmup,
            })
        };
        let forks = if candidates.is_empty() {
            0
        } else {
            candidates.len() + 1
        };
        let per_seed = fork_runs(
            &p.seeds,
            forks,
            |seed| -> Result<(Simulation, Cabinets), SimError> {
                let mut slot = runs[index(seed)].lock().unwrap_or_else(|e| e.into_inner());
                let run = match slot.take() {
                    Some(mut r) if r.sim.gridlock().is_none() => {
                        r.sim
                            .set_demand(over_past.as_ref().expect("made for twins that go on"))?;
                        if let Some(op) = switch {
                            let at = r.sim.now();
                            r.cabinets.deploy(op, at);
                        }
                        let end = now - r.origin;
                        if r.cabinets.run_until(&mut r.sim, end) {
                            r
                        } else {
                            restart(seed)?
                        }
                    }
                    _ => restart(seed)?,
                };
                let mut state = (run.sim.clone(), run.cabinets.clone());
                if let Some(d) = &over_horizon {
                    state.0.set_demand(d)?;
                }
                state.0.reset_metrics();
                *slot = Some(run);
                Ok(state)
            },
            |state, k| begin_fork(state, candidates, k, p.horizon),
            fork_piece,
            early(p).as_ref(),
        );
        self.runs = runs
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect();
        let per_seed = per_seed?;
        self.last = Some((now, in_force.clone()));
        Ok(per_seed)
    }
}

/// Figures of a set of runs, averaged over seeds (the simulator's one definition).
pub use simulator::SeedSummary as Figures;

/// The record of one decision.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub accepted: bool,
    /// Relative improvement of mean delay, (before - after) / before.
    pub improvement: f64,
    pub threshold: f64,
    pub before: Figures,
    pub after: Figures,
    /// The seeds whose runs the figures are from: the check's, or its first
    /// [`EARLY_SEEDS`] when it stopped early.
    pub seeds: Vec<u64>,
    /// Rejected on the first seeds alone ([`ValidateParams::early_reject`]); `seeds` says
    /// which.
    pub stopped_early: bool,
    /// Whether the first [`EARLY_SEEDS`] seeds' runs alone reject every candidate beyond doubt
    /// ([`clearly_rejected`] by [`EARLY_RULE`]), also when the check ran every seed: what
    /// measures stopping early against the whole check (`AdaptiveLog::early_missed`). Not in
    /// the record.
    #[serde(skip)]
    pub clear_on_first_seeds: bool,
    /// Per seed that ran, the delays the check compared (for measuring rules of stopping
    /// early, `examples/early_rule.rs`). Not in the record.
    #[serde(skip)]
    pub runs: Vec<SeedDelays>,
    pub horizon_s: f64,
    pub warmup_s: f64,
    /// How the candidate runs: `coordinated` or `actuated` (see [`Operation`]).
    pub mode: String,
    pub reason: String,
    /// The cabinets' safety monitors that the candidate tripped after the switch (the
    /// intersection went to flash), on the first seed that tripped one, as
    /// `"intersection at time: fault"`; a candidate that trips one is never accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monitor_trips: Vec<String>,
    /// Per intersection (by id), its approaches' delay under the plans in force and under
    /// the chosen candidate, over every seed's run. Not in the record: the service puts each
    /// group's ([`ApproachDelays::of_group`]) into that group's decision.
    #[serde(skip)]
    pub intersection_delays: BTreeMap<String, ApproachDelays>,
}

/// One intersection's approach delay in a check, both ways: the sums over the vehicles that
/// crossed its stop lines in every seed's run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ApproachDelays {
    pub before_veh: u64,
    pub before_delay_veh_s: f64,
    pub after_veh: u64,
    pub after_delay_veh_s: f64,
}

impl ApproachDelays {
    /// The mean approach delay of the intersections `ids` together, before and after (s per
    /// vehicle), and its relative improvement; `None` when no vehicle crossed them either way.
    pub fn of_group(
        delays: &BTreeMap<String, ApproachDelays>,
        ids: &[&str],
    ) -> Option<(f64, f64, f64)> {
        let mut t = ApproachDelays::default();
        for d in ids.iter().filter_map(|id| delays.get(*id)) {
            t.before_veh += d.before_veh;
            t.before_delay_veh_s += d.before_delay_veh_s;
            t.after_veh += d.after_veh;
            t.after_delay_veh_s += d.after_delay_veh_s;
        }
        if t.before_veh == 0 || t.after_veh == 0 {
            return None;
        }
        let (b, a) = (
            t.before_delay_veh_s / t.before_veh as f64,
            t.after_delay_veh_s / t.after_veh as f64,
        );
        Some((b, a, relative_improvement(b, a)))
    }
}

/// One fork of a check: the street's figures over the fork's time, and every safety monitor
/// its cabinets tripped (the warm-up's included: compare with the fork of the plans in force
/// from the same state).
#[derive(Clone, Debug)]
pub struct ForkRun {
    pub metrics: RunMetrics,
    pub trips: Vec<Trip>,
}

/// Simulate the plans in force and the candidate with `demand` and decide (both run
/// coordinated).
pub fn validate_candidate(
    net: &Network,
    demand: &Demand,
    in_force: &[(IntersectionIdx, Plan)],
    candidate: &[(IntersectionIdx, Plan)],
    p: &ValidateParams,
) -> Result<Decision, SimError> {
    let (d, _) = validate_operations(
        net,
        demand,
        &Operation::coordinated(in_force.to_vec()),
        &[Operation::coordinated(candidate.to_vec())],
        p,
    )?;
    Ok(d)
}

/// Simulate the operation in force and each candidate with `demand` (the same seeds, common
/// random numbers), take the candidate with the lowest mean delay among those that gridlock
/// no more often than the operation in force, and decide on it. Returns the decision and the
/// index of the candidate it is about. `candidates` must not be empty.
pub fn validate_operations(
    net: &Network,
    demand: &Demand,
    in_force: &Operation,
    candidates: &[Operation],
    p: &ValidateParams,
) -> Result<(Decision, usize), SimError> {
    assert!(
        !candidates.is_empty(),
        "validate_operations needs a candidate"
    );
    let scenario = Scenario::new(net.clone(), demand.clone(), p.sim.clone())?;
    // Per seed, the street under the operation in force from power-up through the warm-up,
    // then, from that same state, on under it (before) and with each candidate handed to the
    // cabinets (after): common random numbers, and each candidate's transition measured.
    let per_seed = fork_runs(
        &p.seeds,
        candidates.len() + 1,
        |seed| -> Result<(Simulation, Cabinets), SimError> {
            let (mut sim, cabinets) = power_up(&scenario, in_force, seed, p.warmup)?;
            sim.reset_metrics();
            Ok((sim, cabinets))
        },
        |state, k| begin_fork(state, candidates, k, p.horizon),
        fork_piece,
        early(p).as_ref(),
    )?;
    Ok(decide(&per_seed, candidates, p, p.warmup))
}

/// Seeds a check runs before it may stop on a clear rejection ([`ValidateParams::early_reject`]).
pub const EARLY_SEEDS: usize = 2;

/// How sure the first seeds must be to stop a check early ([`clearly_rejected`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EarlyRule {
    /// The other seeds' needed improvement must exceed the best first seed's by this many
    /// times the first seeds' spread ...
    pub spread_factor: f64,
    /// ... and by at least this much (relative delay).
    pub margin: f64,
    /// Each other seed weighs (its delay before) this many times the heaviest first seed.
    pub weight_factor: f64,
}

/// The rule the check stops by: twice the spread, at least 5 points, the other seeds weighing
/// as much as the heaviest first one. Chosen on the benchmark's checks of seeds 1-10, every
/// check run whole (`cargo run --release -p optimizer --example early_rule`;
/// docs/benchmarks.md, "Stopping early").
pub const EARLY_RULE: EarlyRule = EarlyRule {
    spread_factor: 2.0,
    margin: 0.05,
    weight_factor: 1.0,
};

/// One seed's runs of a check as [`clearly_rejected`] reads them: the mean delay under the
/// operation in force, then under each candidate, and whether any of them gridlocked.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedDelays {
    pub delays: Vec<f64>,
    pub gridlocked: bool,
}

impl SeedDelays {
    pub fn of<'a>(runs: impl IntoIterator<Item = &'a ForkRun>) -> SeedDelays {
        let mut gridlocked = false;
        let delays = runs
            .into_iter()
            .map(|r| &r.metrics)
            .map(|r| {
                gridlocked |= r.gridlock.is_some();
                r.mean_delay_s
            })
            .collect();
        SeedDelays { delays, gridlocked }
    }
}

/// The check's rule for stopping early, when `p` asks for it and has more seeds than the
/// first ones.
fn early(p: &ValidateParams) -> Option<Early<'_, ForkRun>> {
    (p.early_reject && p.seeds.len() > EARLY_SEEDS).then(|| Early {
        seeds: EARLY_SEEDS,
        settled: Box::new(move |runs: &[Vec<&ForkRun>]| {
            let first: Vec<SeedDelays> = runs
                .iter()
                .map(|r| SeedDelays::of(r.iter().copied()))
                .collect();
            clearly_rejected(&first, p.threshold, p.seeds.len(), &EARLY_RULE)
        }),
    })
}

/// Whether the runs of the first seeds of a check of `seeds` seeds reject every candidate
/// beyond doubt, whatever the other seeds give.
///
/// The whole check's improvement, `(sum of before - sum of after) / sum of before` over its
/// seeds, is a mean of the seeds' own improvements weighted by their delays before. For each
/// candidate, the other seeds (each weighing as much as the heaviest first seed, times
/// `rule.weight_factor`) would need to improve on average by some `x` for the whole to pass
/// `threshold`; the candidate is out of reach when `x` exceeds the best improvement on a
/// first seed by more than `rule.spread_factor` times the first seeds' spread (the best less
/// the worst), and by at least `rule.margin`. Every candidate must be out of reach, and no
/// run may have gridlocked (a gridlock decides otherwise). Only a rejection is ever settled
/// this way: a deployment takes every seed.
pub fn clearly_rejected(
    first: &[SeedDelays],
    threshold: f64,
    seeds: usize,
    rule: &EarlyRule,
) -> bool {
    let Some(forks) = first.first().map(|s| s.delays.len()) else {
        return false;
    };
    let rest = seeds.saturating_sub(first.len()) as f64;
    if forks < 2
        || rest == 0.0
        || first
            .iter()
            .any(|s| s.gridlocked || s.delays.len() != forks)
    {
        return false;
    }
    let before: Vec<f64> = first.iter().map(|s| s.delays[0]).collect();
    let sum_before: f64 = before.iter().sum();
    let heaviest = before.iter().copied().fold(0.0, f64::max);
    if heaviest <= 0.0 {
        return false; // nothing to weigh the other seeds against
    }
    let w = rest * heaviest * rule.weight_factor;
    (1..forks).all(|k| {
        let after: Vec<f64> = first.iter().map(|s| s.delays[k]).collect();
        let gained: f64 = before.iter().zip(&after).map(|(b, a)| b - a).sum();
        let r: Vec<f64> = before
            .iter()
            .zip(&after)
            .map(|(&b, &a)| relative_improvement(b, a))
            .collect();
        let best = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let worst = r.iter().copied().fold(f64::INFINITY, f64::min);
        let needed = (threshold * (sum_before + w) - gained) / w;
        needed >= best + (rule.spread_factor * (best - worst)).max(rule.margin)
    })
}

/// `(before - after) / before`, 0 when nothing was delayed before.
fn relative_improvement(before: f64, after: f64) -> f64 {
    if before > 0.0 {
        (before - after) / before
    } else {
        0.0
    }
}

/// The street of `scenario` from empty for `seed`, the cabinets powering up on `in_force`
/// and running it through `warmup`: where every check's runs start (the replay's warm-up,
/// and a twin's).
fn power_up(
    scenario: &Scenario,
    in_force: &Operation,
    seed: u64,
    warmup: Ms,
) -> Result<(Simulation, Cabinets), SimError> {
    let mut sim = scenario.simulation(&Control::of_kind(ControlKind::External), seed)?;
    let mut cabinets = Cabinets::new(&sim, in_force)?;
    cabinets.run_until(&mut sim, warmup);
    Ok((sim, cabinets))
}

/// Simulated time a fork runs at a time: a check's forks run in pieces so that both cores
/// stay busy to the end (see [`fork_runs`]); a fork's pieces give the figures of one run.
const FORK_PIECE: Ms = Ms::from_s(600);

/// A fork in progress: the street, its cabinets, and when it ends.
type Fork = (Simulation, Cabinets, Ms);

/// From a warmed-up state: the fork that goes on under the operation in force (`k` = 0) or
/// with candidate `k - 1` handed to the cabinets now, for `horizon`.
fn begin_fork(
    (sim, cabinets): &(Simulation, Cabinets),
    candidates: &[Operation],
    k: usize,
    horizon: Ms,
) -> Result<Fork, SimError> {
    let (s, mut c) = (sim.clone(), cabinets.clone());
    if k > 0 {
        c.deploy(&candidates[k - 1], s.now());
    }
    let end = s.now() + horizon;
    Ok((s, c, end))
}

/// The next piece of a fork: the figures of its time once it has ended (or gridlocked).
fn fork_piece((s, c, end): &mut Fork) -> Result<Option<ForkRun>, SimError> {
    let to = (s.now() + FORK_PIECE).min(*end);
    let running = c.run_until(s, to);
    Ok((!running || s.now() >= *end).then(|| ForkRun {
        metrics: s.metrics(),
        trips: c.trips().to_vec(),
    }))
}

/// The decision from each seed's runs (the plans in force first, then the candidates): the
/// candidate with the lowest mean delay among those that gridlock no more often than the
/// plans in force, accepted if it beats them by more than the threshold. `warmup` is what
/// preceded the measured time, for the record.
fn decide(
    per_seed: &[Vec<ForkRun>],
    candidates: &[Operation],
    p: &ValidateParams,
    warmup: Ms,
) -> (Decision, usize) {
    let figures: Vec<Figures> = (0..=candidates.len())
        .map(|k| {
            Figures::of(
                &per_seed
                    .iter()
                    .map(|r| r[k].metrics.clone())
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    // The monitors candidate `k` tripped after the switch, on the first seed where it
    // tripped any: those of its fork beyond those of the plans in force from the same state.
    let trips = |k: usize| -> Vec<&Trip> {
        per_seed
            .iter()
            .map(|r| {
                r[k].trips
                    .iter()
                    .filter(|t| !r[0].trips.contains(t))
                    .collect::<Vec<_>>()
            })
            .find(|t| !t.is_empty())
            .unwrap_or_default()
    };
    let before = figures[0].clone();
    let best = (1..figures.len())
        .min_by(|&a, &b| {
            let key = |k: usize| {
                (
                    !trips(k).is_empty(),
                    figures[k].gridlocks > before.gridlocks,
                    figures[k].mean_delay_s,
                )
            };
            key(a)
                .partial_cmp(&key(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .unwrap_or(1);
    let after = figures[best].clone();
    let improvement = relative_improvement(before.mean_delay_s, after.mean_delay_s);
    let gridlock = after.gridlocks > before.gridlocks;
    let monitor_trips: Vec<String> = trips(best)
        .iter()
        .map(|t| format!("{} at {:.1} s: {}", t.id, t.time.as_secs_f64(), t.fault))
        .collect();
    let accepted = improvement > p.threshold && !gridlock && monitor_trips.is_empty();
    let mut intersection_delays: BTreeMap<String, ApproachDelays> = BTreeMap::new();
    for r in per_seed {
        for (k, after) in [(0, false), (best, true)] {
            for ix in &r[k].metrics.intersections {
                let d = intersection_delays.entry(ix.id.clone()).or_default();
                let sum = ix.mean_delay_s * ix.throughput_veh as f64;
                if after {
                    d.after_veh += ix.throughput_veh;
                    d.after_delay_veh_s += sum;
                } else {
                    d.before_veh += ix.throughput_veh;
                    d.before_delay_veh_s += sum;
                }
            }
        }
    }
    let mode = candidates[best - 1].mode();
    let seeds = p.seeds[..per_seed.len().min(p.seeds.len())].to_vec();
    let stopped_early = seeds.len() < p.seeds.len();
    let runs: Vec<SeedDelays> = per_seed.iter().map(SeedDelays::of).collect();
    let clear_on_first_seeds = runs.len() >= EARLY_SEEDS
        && clearly_rejected(
            &runs[..EARLY_SEEDS],
            p.threshold,
            p.seeds.len(),
            &EARLY_RULE,
        );
    let reason = if !monitor_trips.is_empty() {
        format!(
            "the candidate tripped the cabinets' safety monitor ({}): the plans in force stay",
            monitor_trips.join("; ")
        )
    } else if gridlock {
        format!(
            "the candidate gridlocked in {} of {} runs",
            after.gridlocks,
            seeds.len()
        )
    } else if stopped_early {
        format!(
            "mean delay {:.1} s -> {:.1} s ({:+.1}%, {mode}) on the first {} of {} seeds, out of reach of the {:.1}% threshold (the other seeds would have to do far better than these): the plans in force stay, the other seeds not run",
            before.mean_delay_s,
            after.mean_delay_s,
            -improvement * 100.0,
            seeds.len(),
            p.seeds.len(),
            p.threshold * 100.0
        )
    } else if accepted {
        format!(
            "mean delay {:.1} s -> {:.1} s ({:+.1}%, {mode}), better than the {:.1}% threshold",
            before.mean_delay_s,
            after.mean_delay_s,
            -improvement * 100.0,
            p.threshold * 100.0
        )
    } else {
        format!(
            "mean delay {:.1} s -> {:.1} s ({:+.1}%, {mode}), not better than the {:.1}% threshold: the plans in force stay",
            before.mean_delay_s,
            after.mean_delay_s,
            -improvement * 100.0,
            p.threshold * 100.0
        )
    };
    (
        Decision {
            accepted,
            improvement,
            threshold: p.threshold,
            before,
            after,
            seeds,
            stopped_early,
            clear_on_first_seeds,
            runs,
            horizon_s: p.horizon.as_secs_f64(),
            warmup_s: warmup.as_secs_f64(),
            mode: mode.into(),
            reason,
            monitor_trips,
            intersection_delays,
        },
        best - 1,
    )
}

/// When [`fork_runs`] may stop: once every fork of the first `seeds` seeds has its result,
/// `settled(results)` says whether the other seeds' forks need not run.
struct Early<'a, T> {
    seeds: usize,
    settled: Settled<'a, T>,
}

/// [`Early::settled`]: per first seed, its forks' results in order.
type Settled<'a, T> = Box<dyn Fn(&[Vec<&T>]) -> bool + Sync + 'a>;

/// Runs `warm(seed)` for every seed and then, for `k` in `0..forks`, fork `k` of each seed:
/// `begin(&state, k)` makes the fork from the seed's state and `piece(&mut fork)` runs it one
/// piece at a time until it returns its result. Runs on as many threads as the machine has
/// cores, taking work as it comes: a finished warm-up queues its forks, an unfinished fork
/// queues its next piece behind them, and any idle thread takes the next task (warm-ups
/// first, so every seed's forks become available early). Returns per seed, in the order of
/// `seeds`, the forks' results in order of `k`; the first error (in that order) wins. Each
/// task is deterministic on its own and a fork's pieces run in order, so the result does not
/// depend on the scheduling. With 3 seeds on 2 cores, whole forks left one core idle through
/// the last one (9 equal runs take 5 on 2 cores); in pieces the cores share the end.
///
/// With `early`, the forks of the seeds after its first ones queue behind every other task,
/// and once the first seeds' forks have all ended, `early.settled` on their results may stop
/// the rest: then only the first seeds' results are returned. Every warm-up runs whatever
/// `early` says (a persistent twin goes on for every seed), and the result depends only on
/// the first seeds' results, not on the scheduling.
fn fork_runs<S, P, T, W, B, G>(
    seeds: &[u64],
    forks: usize,
    warm: W,
    begin: B,
    piece: G,
    early: Option<&Early<'_, T>>,
) -> Result<Vec<Vec<T>>, SimError>
where
    S: Send + Sync,
    P: Send,
    T: Send,
    W: Fn(u64) -> Result<S, SimError> + Sync,
    B: Fn(&S, usize) -> Result<P, SimError> + Sync,
    G: Fn(&mut P) -> Result<Option<T>, SimError> + Sync,
{
    use std::collections::VecDeque;
    use std::sync::{Arc, Condvar, Mutex};
    enum Task<P> {
        Warm(usize),
        /// Fork `k` of seed `i`, not begun yet, or begun and paused.
        Fork(usize, usize, Option<P>),
    }
    struct Shared<S, P, T> {
        queue: VecDeque<Task<P>>,
        /// Forks of the seeds after `early`'s first ones: taken only when `queue` is empty.
        later: VecDeque<Task<P>>,
        /// `early` has looked at the first seeds' results (once they were all in).
        looked: bool,
        /// ... and stopped the rest.
        stopped: bool,
        /// Tasks taken but not finished: an idle thread waits for what they queue.
        busy: usize,
        states: Vec<Option<Arc<S>>>,
        /// Forks begun per seed (its state is freed once all are).
        begun: Vec<usize>,
        results: Vec<Vec<Option<Result<T, SimError>>>>,
        /// Seeds whose warm-up failed (their forks are not run).
        failed: Vec<Option<SimError>>,
    }
    let n = seeds.len();
    // Seeds whose forks go first (all of them without `early`).
    let first = early.map_or(n, |e| e.seeds.min(n));
    let shared = Mutex::new(Shared {
        queue: (0..n).map(Task::Warm).collect(),
        later: VecDeque::new(),
        looked: first == n,
        stopped: false,
        busy: 0,
        states: (0..n).map(|_| None).collect(),
        begun: vec![0; n],
        results: (0..n).map(|_| (0..forks).map(|_| None).collect()).collect(),
        failed: (0..n).map(|_| None).collect(),
    });
    let ready = Condvar::new();
    let threads = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1)
        .min((n * forks.max(1)).max(1));
    let worker = || loop {
        let task = {
            let mut g = shared.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(t) = g.queue.pop_front().or_else(|| g.later.pop_front()) {
                    g.busy += 1;
                    break t;
                }
                if g.busy == 0 {
                    return;
                }
                g = ready.wait(g).unwrap_or_else(|e| e.into_inner());
            }
        };
        match task {
            Task::Warm(i) => {
                let state = simulator::guard(
                    || format!("the warm-up of seed {}", seeds[i]),
                    || warm(seeds[i]),
                );
                let mut g = shared.lock().unwrap_or_else(|e| e.into_inner());
                match state {
                    Ok(_) if i >= first && g.stopped => {} // its forks are not needed
                    Ok(st) => {
                        g.states[i] = Some(Arc::new(st));
                        // Behind the warm-ups still queued, so those start first; a later
                        // seed's behind every other task.
                        for k in 0..forks {
                            let t = Task::Fork(i, k, None);
                            match i < first {
                                true => g.queue.push_back(t),
                                false => g.later.push_back(t),
                            }
                        }
                    }
                    Err(e) => g.failed[i] = Some(e),
                }
                g.busy -= 1;
                ready.notify_all();
            }
            Task::Fork(i, k, paused) => {
                let label = || format!("fork {k} of seed {}", seeds[i]);
                let fork = match paused {
                    Some(f) => Ok(f),
                    None => {
                        let st = {
                            let g = shared.lock().unwrap_or_else(|e| e.into_inner());
                            g.states[i]
                                .clone()
                                .expect("forks are queued after their warm-up")
                        };
                        let f = simulator::guard(label, || begin(&st, k));
                        drop(st);
                        let mut g = shared.lock().unwrap_or_else(|e| e.into_inner());
                        g.begun[i] += 1;
                        if g.begun[i] == forks {
                            g.states[i] = None; // free the warm state
                        }
                        f
                    }
                };
                let ran = fork.and_then(|mut f| {
                    simulator::guard(label, || piece(&mut f)).map(|r| r.ok_or(f))
                });
                let mut g = shared.lock().unwrap_or_else(|e| e.into_inner());
                match ran {
                    _ if i >= first && g.stopped => {}
                    Ok(Ok(t)) => g.results[i][k] = Some(Ok(t)),
                    Ok(Err(f)) if i < first => g.queue.push_back(Task::Fork(i, k, Some(f))),
                    Ok(Err(f)) => g.later.push_back(Task::Fork(i, k, Some(f))),
                    Err(e) => g.results[i][k] = Some(Err(e)),
                }
                if let Some(e) = early.filter(|_| !g.looked && i < first) {
                    let firsts = &g.results[..first];
                    if firsts.iter().flatten().all(Option::is_some) {
                        let done: Option<Vec<Vec<&T>>> = firsts
                            .iter()
                            .map(|r| r.iter().map(|x| x.as_ref()?.as_ref().ok()).collect())
                            .collect();
                        // An error in the first seeds: everything runs, the error is reported.
                        let stop = done.is_some_and(|d| (e.settled)(&d));
                        g.looked = true;
                        if stop {
                            g.stopped = true;
                            g.later.clear();
                            for s in &mut g.states[first..] {
                                *s = None;
                            }
                        }
                    }
                }
                g.busy -= 1;
                ready.notify_all();
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(worker);
        }
    });
    let g = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    let ran = if g.stopped { first } else { n };
    let mut out = Vec::with_capacity(ran);
    for (i, (row, failed)) in g.results.into_iter().zip(g.failed).enumerate() {
        if let Some(e) = failed {
            return Err(e);
        }
        if i >= ran {
            continue;
        }
        let mut r = Vec::with_capacity(forks);
        for x in row {
            r.push(x.unwrap_or_else(|| {
                Err(SimError::Config(format!(
                    "seed {}: a fork did not run",
                    seeds[i]
                )))
            })?);
        }
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{clearly_rejected, fork_runs, Early, SeedDelays, EARLY_RULE};
    use simulator::SimError;
    use std::sync::Mutex;

    /// A fork that is done at once: `fork_runs` with whole forks.
    fn done<T>(t: &mut Option<T>) -> Result<Option<T>, SimError> {
        Ok(t.take())
    }

    /// Every fork of every seed runs once from its own seed's state, results in order of
    /// seed and fork whatever the threads did; a failed warm-up is the error, the first seed's
    /// first.
    #[test]
    fn fork_runs_keeps_the_order_and_reports_the_first_error() {
        let seeds = [7u64, 3, 11, 5, 2];
        let out = fork_runs(
            &seeds,
            3,
            |s| Ok(s * 100),
            |st: &u64, k| Ok(Some(st + k as u64)),
            done,
            None,
        )
        .unwrap();
        let want: Vec<Vec<u64>> = seeds
            .iter()
            .map(|s| (0..3).map(|k| s * 100 + k).collect())
            .collect();
        assert_eq!(out, want);
        let e = fork_runs(
            &seeds,
            2,
            |s| {
                if s == 11 || s == 2 {
                    Err(SimError::Config(format!("seed {s} failed")))
                } else {
                    Ok(s)
                }
            },
            |st: &u64, _| Ok(Some(*st)),
            done,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("seed 11 failed"), "{e}");
        // A panicking fork is an error, not a hang.
        let e = fork_runs(
            &seeds,
            2,
            Ok,
            |st: &u64, k| {
                if *st == 5 && k == 1 {
                    panic!("boom")
                }
                Ok(Some(*st))
            },
            done,
            None,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "fork 1 of seed 5 panicked: boom");
        // A panicking warm-up names its seed and keeps the formatted message.
        let e = fork_runs(
            &seeds,
            2,
            |s| {
                if s == 7 {
                    panic!("warm-up {s} broke")
                }
                Ok(s)
            },
            |st: &u64, _| Ok(Some(*st)),
            done,
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the warm-up of seed 7 panicked: warm-up 7 broke"
        );
    }

    /// A fork run in pieces gives what it gives in one go: each piece goes on from where the
    /// last stopped, in order, however the threads interleave the forks; a piece's error or
    /// panic is the fork's, named.
    #[test]
    fn fork_runs_in_pieces_go_on_from_where_they_stopped() {
        let seeds = [4u64, 9, 1];
        // A fork is (pieces left, a running hash of the pieces in order).
        let piece = |f: &mut (u64, u64)| {
            f.1 = f.1.wrapping_mul(31).wrapping_add(f.0);
            f.0 -= 1;
            Ok((f.0 == 0).then_some(f.1))
        };
        let whole = |s: u64, k: usize| {
            let mut f = (s + k as u64, s);
            loop {
                if let Some(h) = piece(&mut f).unwrap() {
                    return h;
                }
            }
        };
        let out = fork_runs(
            &seeds,
            3,
            Ok,
            |st: &u64, k| Ok((st + k as u64, *st)),
            piece,
            None,
        )
        .unwrap();
        let want: Vec<Vec<u64>> = seeds
            .iter()
            .map(|&s| (0..3).map(|k| whole(s, k)).collect())
            .collect();
        assert_eq!(out, want);
        let e = fork_runs(
            &seeds,
            2,
            Ok,
            |st: &u64, k| Ok((st + k as u64, *st)),
            |f: &mut (u64, u64)| {
                if f.0 == 3 && f.1 != 1 {
                    panic!("piece at {} broke", f.0)
                }
                piece(f)
            },
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("panicked: piece at 3 broke"), "{e}");
    }

    /// With `early`, the first seeds' results go to `settled` once all are in, in order; when
    /// it says so only they come back, else every seed's, the same as without `early`. Every
    /// warm-up runs either way, and a warm-up that fails is the error even when its seed's
    /// forks were not needed.
    #[test]
    fn fork_runs_stop_after_the_first_seeds_when_settled() {
        let seeds = [7u64, 3, 11, 5];
        // Forks in three pieces each, so that the scheduling interleaves.
        let piece = |f: &mut (u64, u64)| {
            f.0 -= 1;
            Ok((f.0 == 0).then_some(f.1))
        };
        let begin = |st: &u64, k: usize| Ok((3, st * 10 + k as u64));
        let all = fork_runs(&seeds, 3, Ok, begin, piece, None).unwrap();
        for stop in [true, false] {
            let seen = Mutex::new(Vec::new());
            let warmed = Mutex::new(Vec::new());
            let early = Early {
                seeds: 2,
                settled: Box::new(|r: &[Vec<&u64>]| {
                    let r: Vec<Vec<u64>> =
                        r.iter().map(|s| s.iter().map(|x| **x).collect()).collect();
                    seen.lock().unwrap().push(r);
                    stop
                }),
            };
            let out = fork_runs(
                &seeds,
                3,
                |s| {
                    warmed.lock().unwrap().push(s);
                    Ok(s)
                },
                begin,
                piece,
                Some(&early),
            )
            .unwrap();
            assert_eq!(*seen.lock().unwrap(), vec![all[..2].to_vec()]);
            let want = if stop { &all[..2] } else { &all[..] };
            assert_eq!(out, want, "stop {stop}");
            let mut w = warmed.into_inner().unwrap();
            w.sort();
            assert_eq!(w, vec![3, 5, 7, 11]);
        }
        // A later seed's failed warm-up is the error, stopped or not.
        let early = Early::<u64> {
            seeds: 2,
            settled: Box::new(|_| true),
        };
        let e = fork_runs(
            &seeds,
            2,
            |s| match s {
                5 => Err(SimError::Config("seed 5 failed".into())),
                _ => Ok(s),
            },
            begin,
            piece,
            Some(&early),
        )
        .unwrap_err();
        assert!(e.to_string().contains("seed 5 failed"), "{e}");
        // An error among the first seeds: nothing stops, the error is reported.
        let never = Early::<u64> {
            seeds: 2,
            settled: Box::new(|_| panic!("not asked when a first seed failed")),
        };
        let e = fork_runs(
            &seeds,
            2,
            Ok,
            |st: &u64, k| match (*st, k) {
                (3, 1) => Err(SimError::Config("fork 1 of 3 failed".into())),
                _ => begin(st, k),
            },
            piece,
            Some(&never),
        )
        .unwrap_err();
        assert!(e.to_string().contains("fork 1 of 3 failed"), "{e}");
    }

    /// Seeds with the given mean delays: the operation in force then each candidate.
    fn runs(delays: &[&[f64]]) -> Vec<SeedDelays> {
        delays
            .iter()
            .map(|d| SeedDelays {
                delays: d.to_vec(),
                gridlocked: false,
            })
            .collect()
    }

    /// [`clearly_rejected`] on the first seeds' mean delays, of a check of 3 seeds at 3%.
    fn rejected(delays: &[&[f64]]) -> bool {
        clearly_rejected(&runs(delays), 0.03, 3, &EARLY_RULE)
    }

    /// The rule for stopping early: for every candidate, the improvement the other seeds would
    /// need for the whole check to pass must exceed the first seeds' best by twice their
    /// spread and at least 5 points; a gridlock, no candidate, or no seed left settles nothing.
    #[test]
    fn only_a_rejection_beyond_doubt_stops_a_check_early() {
        // 10% worse on both seeds: the third would need +22.5%, against -10% + 5 points.
        assert!(rejected(&[&[100.0, 110.0], &[50.0, 55.0]]));
        // No change on either: the third would need +8.4%.
        assert!(rejected(&[&[100.0, 100.0], &[80.0, 80.0]]));
        // 0.5% better on both: the third would need +8%, more than 0.5 + 5 points.
        assert!(rejected(&[&[100.0, 99.5], &[100.0, 99.5]]));
        // 1.5% better on both: it would need +6%, within 5 points of them: the rest must run.
        assert!(!rejected(&[&[100.0, 98.5], &[100.0, 98.5]]));
        // -10% and -5%: the third would need +24%, more than the best (-5%) by twice the
        // spread (10 points).
        assert!(rejected(&[&[100.0, 110.0], &[100.0, 105.0]]));
        // -10% and 0%: it would need +19%, within twice the spread (20 points) of the best.
        assert!(!rejected(&[&[100.0, 110.0], &[100.0, 100.0]]));
        // -30% and +10%: it would need +29%, within twice the spread of the best.
        assert!(!rejected(&[&[100.0, 130.0], &[100.0, 90.0]]));
        // Past the threshold on one seed: never settled.
        assert!(!rejected(&[&[100.0, 90.0], &[100.0, 120.0]]));
        // Every candidate must be out of reach, not only the first.
        assert!(!rejected(&[&[100.0, 120.0, 97.5], &[100.0, 120.0, 97.5]]));
        assert!(rejected(&[&[100.0, 120.0, 101.0], &[100.0, 120.0, 102.0]]));
        // Nothing delayed before on the first seeds: nothing to weigh the rest against.
        assert!(!rejected(&[&[0.0, 5.0], &[0.0, 0.0]]));
        // The more seeds left, the less the first ones settle: with 10 seeds the other 8 would
        // need only +3.6% on average where the third alone needed +8%.
        let r = runs(&[&[100.0, 99.5], &[100.0, 99.5]]);
        assert!(!clearly_rejected(&r, 0.03, 10, &EARLY_RULE));
        assert!(!clearly_rejected(&r, 0.03, 2, &EARLY_RULE), "no seed left");
        // A gridlock anywhere, no candidate, no seed: nothing settled.
        let mut g = runs(&[&[100.0, 120.0], &[100.0, 120.0]]);
        assert!(clearly_rejected(&g, 0.03, 3, &EARLY_RULE));
        g[1].gridlocked = true;
        assert!(!clearly_rejected(&g, 0.03, 3, &EARLY_RULE));
        assert!(!rejected(&[&[100.0], &[100.0]]));
        assert!(!clearly_rejected(&[], 0.03, 3, &EARLY_RULE));
        // A wider rule stops less: with a margin of 30 points the third seed's needed +24%
        // is within reach of the best first seed's -5%.
        let wide = super::EarlyRule {
            margin: 0.30,
            ..EARLY_RULE
        };
        let r = runs(&[&[100.0, 110.0], &[100.0, 105.0]]);
        assert!(clearly_rejected(&r, 0.03, 3, &EARLY_RULE));
        assert!(!clearly_rejected(&r, 0.03, 3, &wide));
    }
}
