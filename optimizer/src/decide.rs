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

use intersections::control::ActuatedParams;
use intersections::demand::Demand;
use intersections::{IntersectionIdx, Ms, Network, Plan};
use serde::Serialize;
use simulator::{Control, ControlKind, RunMetrics, Scenario, SimConfig, SimError, Simulation};

use crate::cabinet::Cabinets;

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
}

impl Default for ValidateParams {
    fn default() -> Self {
        ValidateParams {
            threshold: 0.03,
            seeds: vec![1, 2, 3],
            horizon: Ms::from_s(3600),
            warmup: Ms::from_s(300),
            sim: SimConfig::default(),
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
    ) -> Result<Vec<Vec<RunMetrics>>, SimError> {
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
    pub seeds: Vec<u64>,
    pub horizon_s: f64,
    pub warmup_s: f64,
    /// How the candidate runs: `coordinated` or `actuated` (see [`Operation`]).
    pub mode: String,
    pub reason: String,
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
    )?;
    Ok(decide(&per_seed, candidates, p, p.warmup))
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
fn fork_piece((s, c, end): &mut Fork) -> Result<Option<RunMetrics>, SimError> {
    let to = (s.now() + FORK_PIECE).min(*end);
    let running = c.run_until(s, to);
    Ok((!running || s.now() >= *end).then(|| s.metrics()))
}

/// The decision from each seed's runs (the plans in force first, then the candidates): the
/// candidate with the lowest mean delay among those that gridlock no more often than the
/// plans in force, accepted if it beats them by more than the threshold. `warmup` is what
/// preceded the measured time, for the record.
fn decide(
    per_seed: &[Vec<RunMetrics>],
    candidates: &[Operation],
    p: &ValidateParams,
    warmup: Ms,
) -> (Decision, usize) {
    let figures: Vec<Figures> = (0..=candidates.len())
        .map(|k| Figures::of(&per_seed.iter().map(|r| r[k].clone()).collect::<Vec<_>>()))
        .collect();
    let before = figures[0].clone();
    let best = (1..figures.len())
        .min_by(|&a, &b| {
            let key = |k: usize| {
                (
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
    let improvement = if before.mean_delay_s > 0.0 {
        (before.mean_delay_s - after.mean_delay_s) / before.mean_delay_s
    } else {
        0.0
    };
    let gridlock = after.gridlocks > before.gridlocks;
    let accepted = improvement > p.threshold && !gridlock;
    let mode = candidates[best - 1].mode();
    let reason = if gridlock {
        format!(
            "the candidate gridlocked in {} of {} runs",
            after.gridlocks,
            p.seeds.len()
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
            seeds: p.seeds.clone(),
            horizon_s: p.horizon.as_secs_f64(),
            warmup_s: warmup.as_secs_f64(),
            mode: mode.into(),
            reason,
        },
        best - 1,
    )
}

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
fn fork_runs<S, P, T, W, B, G>(
    seeds: &[u64],
    forks: usize,
    warm: W,
    begin: B,
    piece: G,
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
    let shared = Mutex::new(Shared {
        queue: (0..n).map(Task::Warm).collect(),
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
                if let Some(t) = g.queue.pop_front() {
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
                    Ok(st) => {
                        g.states[i] = Some(Arc::new(st));
                        // Behind the warm-ups still queued, so those start first.
                        for k in 0..forks {
                            g.queue.push_back(Task::Fork(i, k, None));
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
                    Ok(Ok(t)) => g.results[i][k] = Some(Ok(t)),
                    Ok(Err(f)) => g.queue.push_back(Task::Fork(i, k, Some(f))),
                    Err(e) => g.results[i][k] = Some(Err(e)),
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
    let mut out = Vec::with_capacity(n);
    for (i, (row, failed)) in g.results.into_iter().zip(g.failed).enumerate() {
        if let Some(e) = failed {
            return Err(e);
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
    use super::fork_runs;
    use simulator::SimError;

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
        let out = fork_runs(&seeds, 3, Ok, |st: &u64, k| Ok((st + k as u64, *st)), piece).unwrap();
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
        )
        .unwrap_err();
        assert!(e.to_string().contains("panicked: piece at 3 broke"), "{e}");
    }
}
