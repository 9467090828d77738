//! `greenwave simulate`: run the simulator on a network and demand and print its metrics.
//! Assembly only; the model lives in the `simulator` crate. The wall clock is read here, and
//! only here, to report how long the run took.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use intersections::load;
use intersections::Ms;
use simulator::{Control, ControlKind, Gridlock, GridlockRule, RunMetrics, Scenario, SimConfig};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ControlArg {
    Fixed,
    Actuated,
    MaxPressure,
}

pub struct Args {
    pub network: PathBuf,
    pub demand: Option<PathBuf>,
    pub plan: Option<PathBuf>,
    pub control: ControlArg,
    pub duration_s: Option<f64>,
    pub step_s: f64,
    pub seed: u64,
    pub json: bool,
}

fn default_demand(network: &Path) -> Option<PathBuf> {
    let stem = network.file_stem()?.to_str()?;
    let p = network.with_file_name(format!("{stem}.demand.toml"));
    p.exists().then_some(p)
}

fn secs(s: f64, what: &str) -> Result<Ms> {
    Ms::from_secs_f64(s)
        .filter(|m| *m > Ms::ZERO)
        .ok_or_else(|| anyhow!("{what} {s} s must be a positive number of seconds"))
}

pub fn run(a: Args) -> Result<()> {
    let net = load::load_network(&a.network).map_err(|d| anyhow!("{d}"))?;
    let demand_path = match a.demand.clone().or_else(|| default_demand(&a.network)) {
        Some(p) => p,
        None => bail!(
            "no demand: pass --demand FILE (or put {} next to the network)",
            a.network
                .with_extension("demand.toml")
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default()
        ),
    };
    let demand = load::load_demand_for(&demand_path, &net).map_err(|d| anyhow!("{d}"))?;
    let mut control = Control::of_kind(match a.control {
        ControlArg::Fixed => ControlKind::Fixed,
        ControlArg::Actuated => ControlKind::Actuated,
        ControlArg::MaxPressure => ControlKind::MaxPressure,
    });
    if let Some(p) = &a.plan {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let plans =
            load::plans_for(&net, &p.display().to_string(), &text).map_err(|d| anyhow!("{d}"))?;
        // The first plan given for an intersection runs there.
        for (ix, plan) in plans {
            if !control.plans.iter().any(|(i, _)| *i == ix) {
                control.plans.push((ix, plan));
            }
        }
    }
    let duration = match a.duration_s {
        Some(s) => secs(s, "--duration")?,
        None => demand.duration(),
    };
    let cfg = SimConfig {
        step: secs(a.step_s, "--step")?,
        ..SimConfig::default()
    };
    let scenario = Scenario::new(net, demand, cfg)?;
    let mut sim = scenario.simulation(&control, a.seed)?;

    let progress = std::io::stderr().is_terminal() && duration >= Ms::from_s(600);
    let started = wall_clock();
    let chunk = Ms::from_s(60);
    while sim.now() < duration {
        let next = (sim.now() + chunk).min(duration);
        if !sim.run_until(next) {
            break;
        }
        if progress {
            let done = sim.now().as_secs_f64() / duration.as_secs_f64();
            let bar = (done * 30.0) as usize;
            eprint!(
                "\r[{}{}] {:>3.0}%  {} vehicles in the network ",
                "#".repeat(bar),
                " ".repeat(30 - bar.min(30)),
                done * 100.0,
                sim.vehicles_in_network()
            );
            let _ = std::io::stderr().flush();
        }
    }
    let wall_s = wall_clock().duration_since(started).as_secs_f64();
    if progress {
        eprintln!();
    }
    let m = sim.metrics();
    if a.json {
        let mut v = serde_json::to_value(&m)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("wall_time_s".into(), serde_json::json!(wall_s));
            o.insert(
                "vehicle_steps_per_s".into(),
                serde_json::json!(if wall_s > 0.0 {
                    m.vehicle_steps as f64 / wall_s
                } else {
                    0.0
                }),
            );
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_table(&m, wall_s, scenario.config());
    }
    // The table says it in its second line; under --json, say it on stderr too.
    if let (Some(g), true) = (&m.gridlock, a.json) {
        eprintln!("{}; the run stopped", gridlock_line(g, scenario.config()));
    }
    Ok(())
}

/// What a gridlock record says, in words: the rule that fired and its figures.
fn gridlock_line(g: &Gridlock, cfg: &SimConfig) -> String {
    let from = g.at_s - g.window_s;
    match g.rule {
        GridlockRule::Standstill => format!(
            "gridlock ({}) at {:.0} s: no vehicle moved from {:.0} s on, with {} vehicles in the network and {} waiting to enter",
            g.rule.name(),
            g.at_s,
            from,
            g.vehicles,
            g.waiting_to_enter
        ),
        GridlockRule::LowThroughput => format!(
            "gridlock ({}) at {:.0} s: from {:.0} s to {:.0} s only {} vehicles left a link ({} left the network), under {:.0}% of the {} in the network; {} waiting to enter",
            g.rule.name(),
            g.at_s,
            from,
            g.at_s,
            g.link_exits,
            g.network_exits,
            cfg.gridlock_exit_fraction * 100.0,
            g.vehicles,
            g.waiting_to_enter
        ),
    }
}

/// The one place the simulate command reads the wall clock: to report the run's speed.
#[allow(clippy::disallowed_methods)]
fn wall_clock() -> std::time::Instant {
    std::time::Instant::now()
}

fn print_table(m: &RunMetrics, wall_s: f64, cfg: &SimConfig) {
    println!(
        "network {}  control {}  seed {}  {:.0} s simulated at {} s steps",
        m.network, m.control, m.seed, m.duration_s, m.step_s
    );
    if let Some(g) = &m.gridlock {
        println!("{}; the run stopped there", gridlock_line(g, cfg));
    }
    println!(
        "vehicles: {} generated, {} entered, {} completed, {} unfinished ({} in the network, {} waiting to enter)",
        m.generated, m.entered, m.completed, m.unfinished, m.in_network, m.waiting_to_enter
    );
    println!(
        "per vehicle: travel time {:.1} s, delay {:.1} s, {:.2} stops, speed {:.1} m/s, travel time index {:.2}",
        m.mean_travel_time_s, m.mean_delay_s, m.mean_stops, m.mean_speed_mps, m.travel_time_index
    );
    println!(
        "delay of all {} vehicles that arrived, unfinished included (so far) with entry waits: {:.1} s",
        m.completed + m.unfinished,
        m.mean_delay_all_s
    );
    println!(
        "throughput {:.0} veh/h, entry wait {:.1} s, {} vehicle-steps in {:.2} s ({:.0}/s)",
        m.throughput_veh_h,
        m.mean_entry_wait_s,
        m.vehicle_steps,
        wall_s,
        if wall_s > 0.0 {
            m.vehicle_steps as f64 / wall_s
        } else {
            0.0
        }
    );
    println!();
    println!(
        "{:<16} {:<12} {:>10} {:>9} {:>7} {:>10} {:>9}",
        "intersection", "control", "veh/h", "delay s", "stops", "queue veh", "max queue"
    );
    for ix in &m.intersections {
        println!(
            "{:<16} {:<12} {:>10.0} {:>9.1} {:>7.2} {:>10.1} {:>9}",
            ix.id,
            ix.control,
            ix.throughput_veh_h,
            ix.mean_delay_s,
            ix.mean_stops,
            ix.mean_queue_veh,
            ix.max_queue_veh
        );
    }
}
