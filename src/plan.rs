//! `greenwave plan`: offline optimization from detector counts. Assembly only: counts are read
//! by `optimizer::counts`, flows estimated by `optimizer::estimate`, plans computed by
//! `optimizer::webster` and checked against the plans in force by `optimizer::decide`.
//!
//! Without `--counts`, the counts are those the network's detectors report while the
//! simulator runs the network's demand file under its scheduled plans, so a shipped network
//! can be re-planned out of the box.

use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use intersections::load;
use intersections::{IntersectionIdx, Ms, Network, Plan};
use optimizer::adaptive::simulated_counts;
use optimizer::counts::{parse_counts, CountRecord};
use optimizer::decide::{self, validate_candidate, Decision, Figures, ValidateParams};
use optimizer::estimate::{demand_from_flows, estimate, EstimateParams, FlowEstimate};
use optimizer::offsets::OffsetMethod;
use optimizer::webster::{plan_network, NetworkPlan, PlanParams};
use simulator::{Control, Scenario, SimConfig};

pub struct Args {
    pub network: PathBuf,
    pub counts: Option<PathBuf>,
    pub out: PathBuf,
    pub demand: Option<PathBuf>,
    pub json: bool,
    pub check: Check,
    /// The planner's parameters (`--offsets`).
    pub plan: PlanParams,
}

/// The simulation check's settings (`--seeds`, `--horizon`, `--threshold`,
/// `--no-early-reject`).
pub struct Check {
    pub seeds: u64,
    pub horizon_s: f64,
    pub threshold_pct: f64,
    /// `ValidateParams::early_reject`.
    pub early_reject: bool,
}

impl Default for Check {
    /// `greenwave plan`'s defaults (its flags' and the demo's): 3 seeds, an hour, 3%,
    /// stopping early on a clear rejection.
    fn default() -> Self {
        Check {
            seeds: 3,
            horizon_s: 3600.0,
            threshold_pct: 3.0,
            early_reject: true,
        }
    }
}

impl Check {
    /// `--threshold` as the check's least improvement (a fraction), by the rule every check
    /// follows ([`decide::threshold_from_pct`]: a finite percentage from 0 to under 100).
    /// `greenwave plan` and `bench control` take it here.
    pub fn threshold(pct: f64) -> Result<f64> {
        decide::threshold_from_pct(pct).map_err(|e| anyhow!("--threshold: {e}"))
    }

    /// `--seeds` as the check's seeds `1..=n`, by the rule every check follows
    /// ([`decide::check_seeds`]: at least one, at most [`decide::MAX_CHECK_SEEDS`]).
    /// `greenwave plan` and `bench planning` take it here.
    pub fn seeds(n: u64) -> Result<Vec<u64>> {
        decide::check_seeds(usize::try_from(n).unwrap_or(usize::MAX))
            .map_err(|e| anyhow!("--seeds: {e}"))
    }
}

fn default_demand(network: &Path) -> Option<PathBuf> {
    let stem = network.file_stem()?.to_str()?;
    let p = network.with_file_name(format!("{stem}.demand.toml"));
    p.exists().then_some(p)
}

/// `to` relative to the folder `from_dir` (both made absolute first).
fn relative(from_dir: &Path, to: &Path) -> Result<String> {
    let a = std::fs::canonicalize(from_dir)
        .with_context(|| format!("folder {}", from_dir.display()))?;
    let b = std::fs::canonicalize(to).with_context(|| format!("file {}", to.display()))?;
    let ac: Vec<Component> = a.components().collect();
    let bc: Vec<Component> = b.components().collect();
    let common = ac.iter().zip(&bc).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".into(); ac.len() - common];
    parts.extend(
        bc[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().to_string()),
    );
    Ok(parts.join("/"))
}

/// The plan each intersection runs at model time `t` (its schedule's).
fn in_force(net: &Network, t: Ms) -> Vec<(IntersectionIdx, Plan)> {
    net.intersections
        .iter()
        .enumerate()
        .filter_map(|(i, ix)| {
            ix.scheduled_plan(t)
                .map(|p| (IntersectionIdx(i), p.clone()))
        })
        .collect()
}

#[derive(serde::Serialize)]
struct Report<'a> {
    plan_file: String,
    decision_file: String,
    counts: String,
    intervals: usize,
    estimate: &'a FlowEstimate,
    intersections: &'a [optimizer::webster::IntersectionReport],
    groups: &'a [optimizer::webster::GroupReport],
    decision: &'a Decision,
}

/// The result of re-planning a network from counts.
pub struct Replanned {
    pub net: Network,
    pub records: usize,
    pub source: String,
    pub est: FlowEstimate,
    pub planned: NetworkPlan,
    pub vp: ValidateParams,
    pub decision: Decision,
}

/// Estimate flows from counts (or from the network's detectors simulated over its demand),
/// compute plans, and check them against the plans in force in simulation.
pub fn replan(
    network: &Path,
    counts: Option<&Path>,
    demand: Option<&Path>,
    check: &Check,
    plan_params: &PlanParams,
) -> Result<Replanned> {
    let Check {
        seeds,
        horizon_s,
        threshold_pct,
        early_reject,
    } = *check;
    // Refused before anything is read or simulated.
    let threshold = Check::threshold(threshold_pct)?;
    let seeds = Check::seeds(seeds)?;
    let horizon = Ms::from_secs_f64(horizon_s)
        .filter(|h| *h >= Ms::from_s(60))
        .ok_or_else(|| anyhow!("--horizon {horizon_s} must be at least 60 s"))?;
    let net = load::load_network(network).map_err(|d| anyhow!("{d}"))?;
    let demand_path = demand
        .map(Path::to_path_buf)
        .or_else(|| default_demand(network));
    let demand = match &demand_path {
        Some(p) => Some(load::load_demand_for(p, &net).map_err(|d| anyhow!("{d}"))?),
        None => None,
    };
    let (records, source): (Vec<CountRecord>, String) = match counts {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let r =
                parse_counts(&net, &p.display().to_string(), &text).map_err(|d| anyhow!("{d}"))?;
            (r, p.display().to_string())
        }
        None => {
            let Some(d) = &demand else {
                bail!("no counts and no demand: pass --counts FILE, or --demand FILE to simulate counts from");
            };
            let sc = Scenario::new(net.clone(), d.clone(), SimConfig::default())?;
            let r = simulated_counts(&sc, &Control::fixed(), 1, d.duration(), Ms::from_s(900))?;
            (
                r,
                format!(
                    "simulated detectors ({} under its scheduled plans, seed 1, 15 min intervals)",
                    demand_path
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ),
            )
        }
    };
    if records.is_empty() {
        bail!("no counts to plan from");
    }
    let last_end = records.iter().map(|r| r.end).max().unwrap_or(Ms::ZERO);
    let est = estimate(&net, &records, demand.as_ref(), EstimateParams::default());
    let flows = est.planning_flows(optimizer::estimate::LOWER_BOUND_BOOST);
    let planned: NetworkPlan = plan_network(&net, &flows, plan_params)?;

    let vp = ValidateParams {
        threshold,
        seeds,
        horizon,
        early_reject,
        ..ValidateParams::default()
    };
    let sim_demand = demand_from_flows(&net, &flows, vp.warmup + vp.horizon)
        .map_err(|p| anyhow!("the estimated demand does not check: {p:?}"))?;
    // The plans in force: each intersection's schedule at the time of the last count.
    let before = in_force(&net, last_end);
    let decision = validate_candidate(&net, &sim_demand, &before, &planned.plans, &vp)?;
    Ok(Replanned {
        net,
        records: records.len(),
        source,
        est,
        planned,
        vp,
        decision,
    })
}

pub fn run(a: Args) -> Result<()> {
    let Replanned {
        net,
        records,
        source,
        est,
        planned,
        vp,
        decision,
    } = replan(
        &a.network,
        a.counts.as_deref(),
        a.demand.as_deref(),
        &a.check,
        &a.plan,
    )?;
    let out_dir = match a.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let spec = planned.to_file(&net, &relative(&out_dir, &a.network)?);
    let header = format!(
        "# Written by `greenwave plan` from {source}.\n# Validation: {} ({}).\n",
        if decision.accepted {
            "accepted"
        } else {
            "NOT accepted"
        },
        decision.reason
    );
    let text = format!("{header}{}", toml::to_string(&spec)?);
    // What we write must be what `greenwave check` accepts.
    load::plans_for(&net, &a.out.display().to_string(), &text)
        .map_err(|d| anyhow!("internal error: the plan file does not check:\n{d}"))?;
    std::fs::write(&a.out, text).with_context(|| format!("writing {}", a.out.display()))?;
    let decision_path = a.out.with_extension("decision.json");
    std::fs::write(&decision_path, serde_json::to_string_pretty(&decision)?)
        .with_context(|| format!("writing {}", decision_path.display()))?;

    if a.json {
        let r = Report {
            plan_file: a.out.display().to_string(),
            decision_file: decision_path.display().to_string(),
            counts: source,
            intervals: est.intervals,
            estimate: &est,
            intersections: &planned.intersections,
            groups: &planned.groups,
            decision: &decision,
        };
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "counts: {source}: {} records, {} intervals",
        records, est.intervals
    );
    println!();
    println!(
        "{:<14} {:<16} {:>6} {:>7} {:>9} {:>7} {:>7}  greens s",
        "intersection", "group", "Y", "L s", "Webster", "cycle", "offset"
    );
    for r in &planned.intersections {
        let p = planned
            .plans
            .iter()
            .find(|(i, _)| net.intersections[i.0].id == r.intersection)
            .map(|(_, p)| p);
        let greens = p
            .map(|p| {
                p.stages
                    .iter()
                    .map(|s| format!("{:.0}", s.green.as_secs_f64()))
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .unwrap_or_default();
        println!(
            "{:<14} {:<16} {:>6.3} {:>7.1} {:>9.0} {:>7.0} {:>7.1}  {}",
            r.intersection,
            r.group.as_deref().unwrap_or("-"),
            r.flow_ratio,
            r.lost_time_s,
            r.webster_cycle_s,
            r.cycle_s,
            p.map_or(0.0, |p| p.offset.as_secs_f64()),
            greens
        );
    }
    for g in &planned.groups {
        println!(
            "group {}: cycle {:.0} s set by {}, green wave {}",
            g.group,
            g.cycle_s,
            g.critical,
            g.wave.join(" -> ")
        );
        let o = &g.offsets;
        let index = |p: &optimizer::offsets::Performance| {
            format!(
                "{:.2} veh-h/h (delay {:.2} veh-h/h, {:.0} stops/h)",
                p.pi, p.delay_veh_h_per_h, p.stops_per_h
            )
        };
        match o.method {
            OffsetMethod::GreenWave => {
                println!("  offsets: the green wave ({})", o.why);
                println!(
                    "  PI on its {} links between members: {}",
                    o.links,
                    index(&o.before)
                );
            }
            OffsetMethod::Transyt => {
                println!(
                    "  offsets: TRANSYT search from the green wave ({}; {} offsets tried)",
                    o.why, o.evaluations
                );
                println!(
                    "  PI on its {} links between members: {} -> {}",
                    o.links,
                    index(&o.before),
                    index(&o.after)
                );
            }
        }
    }
    println!();
    println!(
        "validation: {} seeds, {:.0} s after a {:.0} s warm-up, estimated demand",
        vp.seeds.len(),
        vp.horizon.as_secs_f64(),
        vp.warmup.as_secs_f64()
    );
    print_figures(&decision.before, &decision.after);
    println!(
        "decision: {} — {}",
        if decision.accepted {
            "accept"
        } else {
            "keep the plans in force"
        },
        decision.reason
    );
    println!("wrote {} and {}", a.out.display(), decision_path.display());
    Ok(())
}

fn print_figures(b: &Figures, a: &Figures) {
    println!(
        "{:<22} {:>10} {:>10} {:>8}",
        "", "in force", "candidate", "change"
    );
    let row = |name: &str, x: f64, y: f64, prec: usize| {
        let ch = if x != 0.0 {
            format!("{:+.1}%", (y / x - 1.0) * 100.0)
        } else {
            String::new()
        };
        println!("{name:<22} {x:>10.prec$} {y:>10.prec$} {ch:>8}");
    };
    row("mean delay s", b.mean_delay_s, a.mean_delay_s, 1);
    row("stops per vehicle", b.mean_stops, a.mean_stops, 2);
    row(
        "travel time index",
        b.travel_time_index,
        a.travel_time_index,
        3,
    );
    row("mean speed m/s", b.mean_speed_mps, a.mean_speed_mps, 2);
    row("completed vehicles", b.completed, a.completed, 0);
}
