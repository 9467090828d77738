//! `greenwave bench`: the control benchmark of issue 6 (`bench control`) and the planning
//! scale bench (`bench planning`). Assembly only; the logic lives in `optimizer::adaptive`,
//! `optimizer::webster` and `optimizer::decide`. The wall clock is read here, and only here,
//! to report how long planning took.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use intersections::load;
use intersections::model::CoordinationGroup;
use intersections::Ms;
use optimizer::adaptive::{bench_network, AdaptiveParams, BenchControl, BenchRow};
use optimizer::decide::{check_demand, validate_candidate, Operation, Twin, TwinStep};
use optimizer::estimate::demand_flows;
use optimizer::webster::{plan_network, PlanParams};
use simulator::{Scenario, SimConfig};

use crate::plan::Check;

/// The shipped networks, in the order of the table.
pub const SHIPPED: [&str; 4] = ["single", "arterial", "grid4", "district"];

pub struct ControlArgs {
    pub dir: PathBuf,
    pub networks: Vec<String>,
    pub seeds: u64,
    pub duration_s: Option<f64>,
    pub json: bool,
    pub no_validate: bool,
    /// `--max-green-factor`: greenwave's actuated maximums (default: the adaptive default).
    pub max_green_factor: Option<f64>,
    /// `--persistent-twin`: `AdaptiveParams::persistent_twin`.
    pub persistent_twin: bool,
    /// Not `--no-early-reject`: `ValidateParams::early_reject` of greenwave's check.
    pub early_reject: bool,
    /// `--turn-speeds`: the simulator with `SimConfig::turn_speeds`.
    pub turn_speeds: bool,
    /// Not `--no-price-choice`: `AdaptiveParams::offer_left_price`.
    pub price_choice: bool,
    /// `--threshold`: the check's least improvement, percent (default: the loop's).
    pub threshold_pct: Option<f64>,
    /// The planner's parameters (`--offsets`).
    pub plan: PlanParams,
}

/// A shipped network and its demand, by name, simulated with `cfg`.
pub fn scenario(dir: &Path, name: &str, cfg: SimConfig) -> Result<Scenario> {
    let np = dir.join(format!("{name}.toml"));
    let dp = dir.join(format!("{name}.demand.toml"));
    let net = load::load_network(&np).map_err(|d| anyhow!("{d}"))?;
    let demand = load::load_demand_for(&dp, &net).map_err(|d| anyhow!("{d}"))?;
    Ok(Scenario::new(net, demand, cfg)?)
}

pub fn control(a: ControlArgs) -> Result<()> {
    let networks: Vec<String> = if a.networks.is_empty() {
        SHIPPED.iter().map(|s| s.to_string()).collect()
    } else {
        a.networks.clone()
    };
    // The bench's own runs (each greenwave run checks its re-plans on the loop's seeds): any
    // number of them, but at least one.
    if a.seeds == 0 {
        return Err(anyhow!(
            "--seeds: 0 seeds: the bench runs every control on seeds 1 to N, N at least 1"
        ));
    }
    let seeds: Vec<u64> = (1..=a.seeds).collect();
    let mut params = AdaptiveParams {
        plan: a.plan.clone(),
        persistent_twin: a.persistent_twin,
        offer_left_price: a.price_choice,
        ..AdaptiveParams::default()
    };
    if let Some(t) = a.threshold_pct {
        let t = Check::threshold(t)?;
        if let Some(v) = params.validate.as_mut() {
            v.threshold = t;
        }
    }
    if let Some(v) = params.validate.as_mut() {
        v.early_reject = a.early_reject;
    }
    if a.no_validate {
        params.validate = None;
    }
    if let Some(f) = a.max_green_factor {
        // The cabinets' limits, the same as on the wire and in serve.toml.
        let r = intersections::messages::MAX_GREEN_FACTOR_RANGE;
        if !r.contains(&f) {
            return Err(anyhow!(
                "--max-green-factor {f} is outside {} to {} (a stage's maximum is its planned green times the factor; the limits the cabinets enforce)",
                r.start(),
                r.end()
            ));
        }
        params.actuated_max_green_factor = Some(f);
    }
    let mut rows: Vec<BenchRow> = Vec::new();
    for name in &networks {
        let cfg = SimConfig {
            turn_speeds: a.turn_speeds.then(simulator::TurnSpeeds::default),
            ..SimConfig::default()
        };
        let sc = scenario(&a.dir, name, cfg).with_context(|| format!("network {name}"))?;
        let duration = match a.duration_s {
            Some(s) => Ms::from_secs_f64(s)
                .filter(|d| *d > Ms::ZERO)
                .ok_or_else(|| anyhow!("--duration {s} must be a positive number of seconds"))?,
            None => sc.demand().duration(),
        };
        let r = bench_network(&sc, &BenchControl::ALL, &seeds, duration, &params)
            .with_context(|| format!("network {name}"))?;
        if !a.json {
            print_table(
                name,
                duration,
                seeds.len(),
                sc.network().intersections.len(),
                &r,
            );
        }
        rows.extend(r);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    }
    Ok(())
}

fn print_table(name: &str, duration: Ms, seeds: usize, n_signals: usize, rows: &[BenchRow]) {
    println!(
        "network {name}: {:.0} min, {seeds} seeds (means over seeds)",
        duration.as_secs_f64() / 60.0
    );
    println!(
        "{:<14} {:>9} {:>11} {:>7} {:>7} {:>9} {:>10} {:>24}",
        "control",
        "delay s",
        "all veh. s",
        "stops",
        "TTI",
        "speed m/s",
        "completed",
        "vs fixed-webster (all)"
    );
    let base = rows.iter().find(|r| r.control == "fixed-webster");
    for r in rows {
        let vs = base
            .filter(|b| b.mean_delay_s > 0.0 && b.mean_delay_all_s > 0.0)
            .map(|b| {
                format!(
                    "{:+.1}% delay ({:+.1}%)",
                    (r.mean_delay_s / b.mean_delay_s - 1.0) * 100.0,
                    (r.mean_delay_all_s / b.mean_delay_all_s - 1.0) * 100.0
                )
            })
            .unwrap_or_default();
        println!(
            "{:<14} {:>9.1} {:>11.1} {:>7.2} {:>7.3} {:>9.2} {:>10.0} {:>24}{}{}",
            r.control,
            r.mean_delay_s,
            r.mean_delay_all_s,
            r.mean_stops,
            r.travel_time_index,
            r.mean_speed_mps,
            r.completed,
            vs,
            if r.gridlocks > 0 {
                format!(
                    "  [{} of {} runs stopped on a gridlock]",
                    r.gridlocks, r.seeds
                )
            } else {
                String::new()
            },
            r.replans
                .as_ref()
                .map(|l| format!(
                    "  ({} of {} re-plans deployed, {} actuated, {} back to the history's plans; {}; permissive lefts priced at {} of {} signals)",
                    l.accepted, l.replans, l.actuated, l.history, early(l), l.priced, n_signals
                ))
                .unwrap_or_default()
        );
    }
    println!();
}

/// How many checks stopped early, and what stopping early missed when it was off
/// (`AdaptiveLog::early_rejected`, `AdaptiveLog::early_missed`).
fn early(l: &optimizer::adaptive::AdaptiveLog) -> String {
    if l.early_rejected > 0 || l.early_missed == 0 {
        format!("{} rejected on the first two seeds", l.early_rejected)
    } else {
        format!(
            "{} accepted that the first two seeds alone would have rejected",
            l.early_missed
        )
    }
}

/// The machine the timings were taken on: the processor's model name (Linux
/// `/proc/cpuinfo`; "unknown" elsewhere) and the threads available, so that figures from
/// different machines are not compared as if they were one.
fn machine() -> (String, usize) {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    (model, threads)
}

/// The one place this command reads the wall clock: to time planning and validation.
#[allow(clippy::disallowed_methods)]
fn wall_clock() -> std::time::Instant {
    std::time::Instant::now()
}

pub struct PlanningArgs {
    pub sizes: Vec<usize>,
    /// The check's seeds, horizon and replayed warm-up; `None`: the adaptive loop's
    /// (`AdaptiveParams::default().validate`).
    pub seeds: Option<u64>,
    pub horizon_s: Option<f64>,
    pub warmup_s: Option<f64>,
    pub json: bool,
    /// Each east-west row of the grid one coordination group.
    pub coordinate_rows: bool,
    /// Not `--no-early-reject`: `ValidateParams::early_reject`.
    pub early_reject: bool,
    pub plan: PlanParams,
}

#[derive(serde::Serialize)]
struct PlanningRow {
    intersections: usize,
    links: usize,
    groups: usize,
    /// Offsets tried by the TRANSYT searches, over all groups.
    offset_evaluations: usize,
    planning_s: f64,
    validation_s: f64,
    total_s: f64,
    seeds: u64,
    horizon_s: f64,
    warmup_s: f64,
    improvement: f64,
    /// Seeds whose forks ran: all of `seeds`, or the first two when the check stopped
    /// early (`ValidateParams::early_reject`).
    forked_seeds: u64,
    /// The check from a persistent twin: one interval on, then the forks.
    twin_validation_s: f64,
    twin_interval_s: f64,
    twin_improvement: f64,
    twin_forked_seeds: u64,
    /// The processor's model name and the threads available to the run.
    cpu: String,
    threads: usize,
}

/// Planning plus validation on generated `n` x `n` grids (sizes given as intersection counts,
/// rounded to the nearest square).
pub fn planning(a: PlanningArgs) -> Result<()> {
    let seeds = a.seeds.map(Check::seeds).transpose()?;
    let mut rows = Vec::new();
    let (cpu, threads) = machine();
    if !a.json {
        println!("machine: {cpu}, {threads} threads");
    }
    for &size in &a.sizes {
        let n = ((size as f64).sqrt().round() as usize).max(1);
        let (mut net, demand) = simulator::synth::grid(n, 400.0, 1)?;
        if a.coordinate_rows {
            net.coordination_groups = (0..n)
                .map(|j| CoordinationGroup {
                    id: format!("row{j}"),
                    intersections: (0..n)
                        .filter_map(|i| net.intersection(&format!("I{i}_{j}")))
                        .collect(),
                })
                .collect();
        }
        let flows = demand_flows(&net, &demand, None);
        let t0 = wall_clock();
        let planned = plan_network(&net, &flows, &a.plan)?;
        let planning_s = t0.elapsed().as_secs_f64();
        // The check as the adaptive loop runs it: the estimates of the last intervals
        // replayed (here the grid's one demand, interval after interval), then the horizon.
        let adaptive = AdaptiveParams::default();
        let mut vp = adaptive.validate.clone().expect("the adaptive loop checks");
        if let Some(s) = &seeds {
            vp.seeds = s.clone();
        }
        vp.early_reject = a.early_reject;
        if let Some(h) = a.horizon_s {
            vp.horizon = Ms::from_secs_f64(h)
                .filter(|h| *h >= Ms::from_s(60))
                .ok_or_else(|| anyhow!("--horizon {h} must be at least 60 s"))?;
        }
        if let Some(w) = a.warmup_s {
            vp.warmup = Ms::from_secs_f64(w)
                .filter(|w| *w >= Ms::ZERO)
                .ok_or_else(|| anyhow!("--warmup {w} must be 0 or more seconds"))?;
        }
        let t1 = wall_clock();
        let every = adaptive.replan_every;
        let known = ((vp.warmup.0 / every.0) as usize).max(1);
        let check = vp.clone();
        let (d, vp) = check_demand(&net, &vec![flows.clone(); known], every, &vp)
            .map_err(|p| anyhow!("estimated demand: {p:?}"))?;
        let in_force: Vec<_> = net
            .intersections
            .iter()
            .enumerate()
            .filter_map(|(i, ix)| {
                ix.plans
                    .first()
                    .map(|p| (intersections::IntersectionIdx(i), p.clone()))
            })
            .collect();
        let decision = validate_candidate(&net, &d, &in_force, &planned.plans, &vp)?;
        let validation_s = t1.elapsed().as_secs_f64();
        // The same check from a persistent twin (`--persistent-twin`): the twin is brought to
        // an hour of past first (not timed), then one re-plan's check is timed: the twin goes
        // on over one interval and forks.
        let op = Operation::coordinated(in_force.clone());
        let mut twin = Twin::new(every, true);
        for k in 1..=known {
            twin.advance(
                &net,
                TwinStep::held(Ms(every.0 * k as i64), flows.clone(), &op),
                &check,
            )?;
        }
        let t2 = wall_clock();
        let (twin_decision, _) = twin.check(
            &net,
            TwinStep::held(Ms(every.0 * (known + 1) as i64), flows.clone(), &op),
            &[Operation::coordinated(planned.plans.clone())],
            &check,
        )?;
        let twin_validation_s = t2.elapsed().as_secs_f64();
        let row = PlanningRow {
            intersections: net.intersections.len(),
            links: net.links.len(),
            groups: planned.groups.len(),
            offset_evaluations: planned.groups.iter().map(|g| g.offsets.evaluations).sum(),
            planning_s,
            validation_s,
            total_s: planning_s + validation_s,
            seeds: vp.seeds.len() as u64,
            horizon_s: vp.horizon.as_secs_f64(),
            warmup_s: vp.warmup.as_secs_f64(),
            improvement: decision.improvement,
            forked_seeds: decision.seeds.len() as u64,
            twin_validation_s,
            twin_interval_s: every.as_secs_f64(),
            twin_improvement: twin_decision.improvement,
            twin_forked_seeds: twin_decision.seeds.len() as u64,
            cpu: cpu.clone(),
            threads,
        };
        if !a.json {
            println!(
                "{:>5} intersections, {:>5} links, {} groups ({} offsets tried): planning {:.3} s, validation {:.2} s ({} seeds x {:.0} s replayed, {} of them on with 2 plans x {:.0} s), total {:.2} s; candidate {:+.1}% delay; from a persistent twin: validation {:.2} s ({:.0} s on, {} seeds on with 2 plans x {:.0} s), total {:.2} s, candidate {:+.1}%",
                row.intersections,
                row.links,
                row.groups,
                row.offset_evaluations,
                row.planning_s,
                row.validation_s,
                row.seeds,
                row.warmup_s,
                row.forked_seeds,
                row.horizon_s,
                row.total_s,
                -row.improvement * 100.0,
                row.twin_validation_s,
                row.twin_interval_s,
                row.twin_forked_seeds,
                row.horizon_s,
                row.planning_s + row.twin_validation_s,
                -row.twin_improvement * 100.0
            );
        }
        rows.push(row);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    }
    Ok(())
}
