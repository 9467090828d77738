//! Greenwave's simulator against Eclipse SUMO on the same network, plans and vehicles, in one
//! run (issues 3 and 5): vehicle-steps per second of each and their ratio, plus the two
//! simulators' throughput and delay for the agreement check.
//!
//! ```text
//! cargo bench -p sumo --bench vs_sumo                 # every case
//! cargo bench -p sumo --bench vs_sumo -- grid8 single # cases whose name contains a word
//! GW_VS_SUMO_END=600 cargo bench -p sumo --bench vs_sumo   # simulate 600 s in every case
//! cargo bench -p sumo --bench vs_sumo -- --agree      # agreement over seeds (GW_VS_SUMO_SEEDS, 5)
//! cargo bench -p sumo --bench vs_sumo -- --agree DIR/NAME.toml   # an imported network
//! GW_VS_SUMO_DEMAND=1.3 cargo bench -p sumo --bench vs_sumo -- --agree   # every entry flow x1.3
//! GW_VS_SUMO_TURN_SPEEDS=1 cargo bench -p sumo --bench vs_sumo -- --agree  # ours with turn speeds
//! GW_VS_SUMO_CROSSINGS=1 cargo bench -p sumo --bench vs_sumo -- --agree    # export --crossings
//! ```
//!
//! A case named by a path ending in `.toml` is a network file with its demand beside it
//! (`NAME.demand.toml`), such as `greenwave sumo import` writes for a network made by SUMO's
//! `netgenerate` (`tools/sumo_closed_loop.py --generate-only` makes the ones in
//! docs/benchmarks.md); it simulates its demand's horizon and is exported like the others, so
//! both simulators run the imported plans (SUMO's programs made valid for Greenwave).
//!
//! `--agree` runs, per case (by default the shipped networks and the 4x4 and 8x8 grids), seeds
//! 1..=N on both simulators with the same vehicles per seed, and prints the mean throughput
//! (completed vehicles) and mean delay of each (ours: travel time minus free-flow time; SUMO's:
//! `timeLoss`, both over the vehicles that completed their trip), with their differences
//! against issue 5's marks (throughput within 5%, delay within 15%).
//!
//! Each case: the network (a shipped one, or `simulator::synth::grid`) is exported with
//! `sumo::export` with explicit vehicles — the very vehicles (arrival times, entries, routes)
//! that Greenwave's simulator generates with seed 1 — and its plans in force as the programs;
//! SUMO's `netconvert` builds the net; `sumo` runs it at a 1 s step, single-threaded, and
//! reports its own loop time and vehicle updates per second (`--duration-log.statistics`:
//! `Duration`, `UPS`); Greenwave's simulator runs the same network, plans and seed at a 1 s
//! step, single-threaded, timed around `run_until` only (loading excluded on both sides), best
//! of three runs. SUMO is found through `SUMO_HOME`, `PATH` or `.venv-sumo` (PyPI's
//! `eclipse-sumo`); without it the SUMO columns say so and only Greenwave's figures print.
//! Files go to `target/vs_sumo/<case>/`.

use std::path::{Path, PathBuf};

use intersections::demand::Demand;
use intersections::{Ms, Network};
use simulator::{synth, Control, Scenario, SimConfig, TurnSpeeds};
use sumo::tools;

#[path = "../tests/support/live.rs"]
mod live;

const SEED: u64 = 1;
/// Cases of `--agree` when none is named.
const AGREE_DEFAULT: [&str; 6] = [
    "single", "arterial", "grid4", "district", "grid4x4", "grid8x8",
];

fn case_names() -> Vec<String> {
    synth::bench_case_names()
}

/// Network, demand and simulated time of a case, every entry flow times `GW_VS_SUMO_DEMAND`
/// (default 1; a heavier level for the agreement check).
fn load(name: &str) -> (Network, Demand, Ms) {
    let (net, mut demand, d) = load_case(name);
    let k = tools::demand_factor(std::env::var("GW_VS_SUMO_DEMAND").ok().as_deref())
        .unwrap_or_else(|e| panic!("{e}"));
    if k != 1.0 {
        for e in &mut demand.entries {
            for f in &mut e.flows_veh_h {
                *f *= k;
            }
        }
    }
    (net, demand, d)
}

/// Network, demand and simulated time of a case. Grids simulate less of their hour as they
/// grow, so that SUMO's side of the 32x32 grid stays within minutes.
fn load_case(name: &str) -> (Network, Demand, Ms) {
    if name.ends_with(".toml") {
        let path = Path::new(name);
        let net = intersections::load::load_network(path).unwrap_or_else(|e| panic!("{e}"));
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("network");
        let demand = intersections::load::load_demand_for(
            &path.with_file_name(format!("{stem}.demand.toml")),
            &net,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let d = demand.duration();
        return (net, demand, d);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    let (net, demand, d) = synth::bench_case(name, &dir).unwrap_or_else(|e| panic!("{e}"));
    let d = match synth::bench_grid_size(name) {
        Some(0..=8) | None => d,
        Some(9..=16) => Ms::from_s(1800),
        Some(_) => Ms::from_s(900),
    };
    (net, demand, d)
}

/// The bench measures wall time; that is its purpose (the simulator itself never reads it).
#[allow(clippy::disallowed_methods)]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

struct Ours {
    vehicles: u64,
    completed: u64,
    vehicle_steps: u64,
    wall_s: f64,
    mean_delay_s: f64,
    mean_travel_time_s: f64,
}

/// Our simulator's model: the default, with turn speeds as `GW_VS_SUMO_TURN_SPEEDS` says.
fn our_config() -> SimConfig {
    let mut cfg = SimConfig::default();
    match tools::turn_speeds(std::env::var("GW_VS_SUMO_TURN_SPEEDS").ok().as_deref()) {
        Ok(None) => {}
        Ok(Some(on)) => cfg.turn_speeds = on.then(TurnSpeeds::default),
        Err(e) => panic!("{e}"),
    }
    cfg
}

/// Our side of the speed table: the best wall time of `repeat` runs.
fn run_ours(net: &Network, demand: &Demand, duration: Ms, seed: u64, repeat: usize) -> Ours {
    let sc = Scenario::new(net.clone(), demand.clone(), our_config()).expect("scenario");
    let mut best: Option<Ours> = None;
    for _ in 0..repeat {
        let mut sim = sc.simulation(&Control::fixed(), seed).expect("simulation");
        let t = now();
        sim.run_until(duration);
        let wall_s = t.elapsed().as_secs_f64();
        let m = sim.metrics();
        if best.as_ref().is_none_or(|b| wall_s < b.wall_s) {
            best = Some(Ours {
                vehicles: m.entered,
                completed: m.completed,
                vehicle_steps: m.vehicle_steps,
                wall_s,
                mean_delay_s: m.mean_delay_s,
                mean_travel_time_s: m.mean_travel_time_s,
            });
        }
    }
    best.expect("at least one run")
}

/// The case's files: `target/vs_sumo/<case>/`.
fn case_dir(name: &str) -> PathBuf {
    let case = Path::new(name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(name);
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/vs_sumo")
        .join(case)
}

/// Whether the export has `--crossings` (`GW_VS_SUMO_CROSSINGS`).
fn crossings() -> bool {
    tools::switch(
        "GW_VS_SUMO_CROSSINGS",
        std::env::var("GW_VS_SUMO_CROSSINGS").ok().as_deref(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .unwrap_or(false)
}

fn mega(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else {
        format!("{:.0} k", v / 1e3)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let end_override = std::env::var("GW_VS_SUMO_END")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .map(Ms::from_s);
    let agree = args.iter().any(|a| a == "--agree");
    let bins = live::find();
    match &bins {
        Some(b) => println!("SUMO: {}", b.sumo.display()),
        None => println!(
            "SUMO not found (SUMO_HOME, PATH or .venv-sumo): the SUMO cases are skipped.\n\
             Install it with: {}",
            live::INSTALL
        ),
    }
    if agree {
        match &bins {
            Some(b) => agreement(&filter, end_override, b),
            None => println!("--agree needs SUMO"),
        }
        return;
    }
    println!(
        "{:<11} {:>6} | {:>8} {:>9} {:>8} {:>11} {:>7} | {:>8} {:>9} {:>8} {:>11} {:>7} | {:>7}",
        "case",
        "sim s",
        "GW veh",
        "veh-steps",
        "wall s",
        "veh-steps/s",
        "delay",
        "SUMO veh",
        "veh-steps",
        "wall s",
        "veh-steps/s",
        "tloss",
        "ratio"
    );
    for name in case_names() {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let (net, demand, duration) = load(&name);
        let duration = end_override.unwrap_or(duration);
        let ours = run_ours(&net, &demand, duration, SEED, 3);
        let our_rate = ours.vehicle_steps as f64 / ours.wall_s;
        let left = format!(
            "{:<11} {:>6.0} | {:>8} {:>9} {:>8.3} {:>11} {:>7.1}",
            name,
            duration.as_secs_f64(),
            ours.vehicles,
            mega(ours.vehicle_steps as f64),
            ours.wall_s,
            mega(our_rate),
            ours.mean_delay_s
        );
        let Some(bins) = &bins else {
            println!("{left} | SUMO not installed: skipped");
            continue;
        };
        let dir = case_dir(&name);
        match live::run_sumo(&dir, &net, &demand, duration, SEED, crossings(), bins) {
            Ok(s) => {
                println!(
                    "{left} | {:>8} {:>9} {:>8.3} {:>11} {:>7.1} | {:>6.0}x",
                    s.inserted,
                    mega(s.vehicle_steps()),
                    s.duration_s,
                    mega(s.ups),
                    s.mean_time_loss_s.unwrap_or(f64::NAN),
                    our_rate / s.ups
                );
                println!(
                    "{:<11}   completed: GW {} (mean travel {:.1} s), SUMO {} (mean travel {:.1} s), SUMO teleports {}",
                    "",
                    ours.completed,
                    ours.mean_travel_time_s,
                    s.arrived.unwrap_or(0),
                    s.mean_duration_s.unwrap_or(f64::NAN),
                    s.teleports
                );
            }
            Err(e) => println!("{left} | SUMO failed: {e}"),
        }
    }
}

/// Throughput and delay of both simulators over several seeds (issue 5, item 4).
fn agreement(filter: &[&String], end_override: Option<Ms>, bins: &live::Bins) {
    let seeds: u64 = std::env::var("GW_VS_SUMO_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    println!(
        "{:<11} {:>6} {:>5} | {:>9} {:>9} {:>7} | {:>8} {:>8} {:>7} | {:>8} {:>8}",
        "case",
        "sim s",
        "seeds",
        "GW done",
        "SUMO done",
        "diff",
        "GW delay",
        "SUMO tl",
        "diff",
        "teleport",
        "marks"
    );
    let files: Vec<String> = filter
        .iter()
        .filter(|f| f.ends_with(".toml"))
        .map(|f| f.to_string())
        .collect();
    for name in case_names().into_iter().chain(files) {
        let picked = if name.ends_with(".toml") {
            true
        } else if filter.is_empty() {
            AGREE_DEFAULT.contains(&name.as_str())
        } else {
            filter.iter().any(|f| name.contains(f.as_str()))
        };
        if !picked {
            continue;
        }
        let (net, demand, duration) = load(&name);
        let duration = end_override.unwrap_or(duration);
        let result = live::agree(
            &case_dir(&name),
            &net,
            &demand,
            duration,
            seeds,
            &our_config(),
            crossings(),
            bins,
        );
        let name = Path::new(&name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(&name)
            .to_string();
        let a = match result {
            Ok(a) => a,
            Err(e) => {
                println!("{name:<11} SUMO failed: {e}");
                continue;
            }
        };
        let marks = format!(
            "{} {}",
            if a.throughput_ok() { "ok" } else { "OUT" },
            if a.delay_ok() { "ok" } else { "OUT" }
        );
        println!(
            "{:<11} {:>6.0} {:>5} | {:>9.0} {:>9.0} {:>6.1}% | {:>8.1} {:>8.1} {:>6.1}% | {:>8} {:>8}",
            name,
            duration.as_secs_f64(),
            seeds,
            a.completed.0,
            a.completed.1,
            a.throughput_diff_pct(),
            a.delay_s.0,
            a.delay_s.1,
            a.delay_diff_pct(),
            a.teleports,
            marks
        );
    }
}
