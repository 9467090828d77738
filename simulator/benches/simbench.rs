//! Simulator benchmark: vehicle-steps per second, single-threaded, and peak memory per vehicle,
//! over the shipped networks and generated NxN grids; then a scaling series (NxN grids at the
//! same demand per entry, uncongested and congested) with the cost per unit of work. Seeded;
//! prints two tables.
//!
//! ```text
//! cargo bench -p simulator --bench simbench            # every case
//! cargo bench -p simulator --bench simbench -- grid8   # cases whose name contains "grid8"
//! cargo bench -p simulator --bench simbench -- scale   # only the scaling series
//! GW_SIMBENCH_LANE_CHANGES=0 cargo bench -p simulator --bench simbench   # without lane changes
//! ```
//!
//! Each case runs in a child process of this binary, so that the peak resident memory
//! (`VmHWM` from `/proc/self/status`, Linux) is that case's alone.
//!
//! Scaling series (`scale<flow>-<n>x<n>`): `synth::grid(n, flow, 1)` for n = 4, 8, 16, 32 at
//! 150 veh/h per entry (uncongested) and 400 veh/h (the grid cases above), one hour, best of
//! three runs. Its cost per unit of work is the time on a CPU (`/proc/self/schedstat`, so that
//! waiting for a core on a shared machine does not count) over vehicle-steps, and over
//! vehicle-steps plus lane-steps (lanes times steps: the work a step does for the network
//! itself, vehicles or not); linear growth shows as a flat column.

use std::path::Path;
use std::process::Command;

use intersections::demand::Demand;
use intersections::{Ms, Network};
use simulator::{synth, Control, Scenario, SimConfig};

/// Entry flows of the scaling series, veh/h per entry.
const SCALE_FLOWS: [f64; 2] = [150.0, synth::BENCH_GRID_FLOW_VEH_H];
/// Runs per scaling case; the fastest counts (the machine is shared).
const SCALE_REPS: usize = 3;
/// Least CPU time of one timed batch of runs in the scaling series, seconds.
const MIN_BATCH_CPU_S: f64 = 0.5;

fn case_names() -> Vec<String> {
    synth::bench_case_names()
}

fn scale_names() -> Vec<String> {
    SCALE_FLOWS
        .iter()
        .flat_map(|q| {
            synth::BENCH_GRIDS
                .iter()
                .map(move |n| format!("scale{q:.0}-{n}x{n}"))
        })
        .collect()
}

fn load(name: &str) -> (Network, Demand, Ms) {
    if let Some((q, n)) = name
        .strip_prefix("scale")
        .and_then(|r| r.split_once('-'))
        .and_then(|(q, g)| {
            Some((
                q.parse::<f64>().ok()?,
                synth::bench_grid_size(&format!("grid{g}"))?,
            ))
        })
    {
        let (net, demand) = synth::grid(n, q, 1).unwrap_or_else(|e| panic!("{e}"));
        return (net, demand, Ms::from_s(3600));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    synth::bench_case(name, &dir).unwrap_or_else(|e| panic!("{e}"))
}

fn status_kb(field: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Time this process has spent on a CPU, seconds (Linux `/proc/self/schedstat`, in ns): on a
/// shared machine it leaves out the time spent waiting for a core.
fn cpu_s() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    Some(s.split_whitespace().next()?.parse::<f64>().ok()? * 1e-9)
}

/// The bench measures wall time; that is its purpose (the simulator itself never reads it).
#[allow(clippy::disallowed_methods)]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

fn run_case(name: &str, reps: usize) {
    let (net, demand, duration) = load(name);
    let (ixs, links) = (net.intersections.len(), net.links.len());
    let lanes: u64 = net.links.iter().map(|l| l.lanes as u64).sum();
    let cfg = SimConfig {
        // The cost of the lane-change pass, against a run without it (docs/benchmarks.md).
        lane_changes: std::env::var("GW_SIMBENCH_LANE_CHANGES").map_or(true, |v| v != "0"),
        ..SimConfig::default()
    };
    let steps = ((duration.0 + cfg.step.0 - 1) / cfg.step.0) as u64;
    let sc = Scenario::new(net, demand, cfg).expect("scenario");
    let mut best = f64::INFINITY;
    let mut best_cpu = f64::INFINITY;
    let mut out = None;
    for _ in 0..reps.max(1) {
        let mut sim = sc.simulation(&Control::fixed(), 1).expect("simulation");
        // Reset the peak to the current size (Linux: clear_refs 5), so the peak is the run's.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let rss_before = status_kb("VmRSS:").unwrap_or(0.0);
        let c = cpu_s();
        let t = now();
        sim.run_until(duration);
        let wall = t.elapsed().as_secs_f64();
        let cpu = match (c, cpu_s()) {
            (Some(a), Some(b)) => b - a,
            _ => wall,
        };
        let m = sim.metrics();
        // The CPU clock may tick in milliseconds: with several runs asked for, time short
        // runs in batches of at least MIN_BATCH_CPU_S (each run's state created afresh, which
        // takes microseconds) and take the mean of the batch.
        let (mut batch_cpu, mut batch_wall, mut k) = (cpu, wall, 1u32);
        if reps > 1 && cpu < MIN_BATCH_CPU_S {
            let c = cpu_s();
            let t = now();
            while k < 1000 {
                let mut again = sc.simulation(&Control::fixed(), 1).expect("simulation");
                again.run_until(duration);
                k += 1;
                if c.zip(cpu_s())
                    .map_or(t.elapsed().as_secs_f64(), |(a, b)| b - a)
                    >= MIN_BATCH_CPU_S
                {
                    break;
                }
            }
            batch_wall = t.elapsed().as_secs_f64();
            batch_cpu = c.zip(cpu_s()).map_or(batch_wall, |(a, b)| b - a);
            (batch_cpu, batch_wall) = (batch_cpu / (k - 1) as f64, batch_wall / (k - 1) as f64);
        }
        best_cpu = best_cpu.min(batch_cpu);
        let wall = batch_wall;
        let hwm = status_kb("VmHWM:").unwrap_or(0.0);
        let per_vehicle_b = (hwm - rss_before).max(0.0) * 1024.0 / m.peak_in_network.max(1) as f64;
        if wall < best {
            best = wall;
        }
        // Memory from the first run (later runs reuse what the first one touched).
        out.get_or_insert((m, per_vehicle_b));
    }
    let (m, per_vehicle_b) = out.expect("one run");
    let wall = best;
    println!(
        "{name}\t{ixs}\t{links}\t{:.0}\t{}\t{}\t{}\t{:.3}\t{:.0}\t{:.0}\t{:.1}\t{lanes}\t{steps}\t{best_cpu:.4}",
        duration.as_secs_f64(),
        m.entered,
        m.peak_in_network,
        m.vehicle_steps,
        wall,
        m.vehicle_steps as f64 / wall,
        per_vehicle_b,
        m.mean_delay_s
    );
}

/// Run a case in a child process; its tab-separated fields.
fn child(exe: &Path, name: &str, reps: usize) -> Option<Vec<String>> {
    let out = Command::new(exe)
        .args(["--case", name, "--reps", &reps.to_string()])
        .output()
        .expect("run case");
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(line) = text.lines().last() else {
        eprintln!("{name}: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    };
    let f: Vec<String> = line.split('\t').map(str::to_string).collect();
    if f.len() < 14 {
        eprintln!("{name}: {line}");
        return None;
    }
    Some(f)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--case") {
        let reps = args
            .iter()
            .position(|a| a == "--reps")
            .and_then(|j| args.get(j + 1)?.parse().ok())
            .unwrap_or(1);
        run_case(&args[i + 1], reps);
        return;
    }
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let exe = std::env::current_exe().expect("own path");
    let cases: Vec<String> = case_names().into_iter().filter(|n| wanted(n)).collect();
    if !cases.is_empty() {
        println!(
            "{:<12} {:>5} {:>6} {:>7} {:>8} {:>7} {:>12} {:>8} {:>14} {:>10} {:>8}",
            "case",
            "ixs",
            "links",
            "sim s",
            "vehicles",
            "peak",
            "veh-steps",
            "wall s",
            "veh-steps/s",
            "B/vehicle",
            "delay s"
        );
    }
    for name in cases {
        let Some(f) = child(&exe, &name, 1) else {
            continue;
        };
        println!(
            "{:<12} {:>5} {:>6} {:>7} {:>8} {:>7} {:>12} {:>8} {:>14} {:>10} {:>8}",
            f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10]
        );
    }
    let scale: Vec<String> = scale_names().into_iter().filter(|n| wanted(n)).collect();
    if scale.is_empty() {
        return;
    }
    println!(
        "\nscaling: NxN grids, same demand per entry, 1 h, best of {SCALE_REPS}; ns per unit of work from the time on a CPU (flat = linear)"
    );
    println!(
        "{:<16} {:>6} {:>8} {:>7} {:>12} {:>12} {:>8} {:>8} {:>12} {:>14} {:>8}",
        "case",
        "lanes",
        "vehicles",
        "peak",
        "veh-steps",
        "lane-steps",
        "wall s",
        "cpu s",
        "ns/veh-step",
        "ns/(veh+lane)",
        "delay s"
    );
    for name in scale {
        let Some(f) = child(&exe, &name, SCALE_REPS) else {
            continue;
        };
        let num = |i: usize| f[i].parse::<f64>().unwrap_or(f64::NAN);
        let (vs, cpu, lanes, steps) = (num(6), num(13), num(11), num(12));
        let ls = lanes * steps;
        println!(
            "{:<16} {:>6} {:>8} {:>7} {:>12} {:>12.0} {:>8} {:>8.3} {:>12.1} {:>14.1} {:>8}",
            f[0],
            f[11],
            f[4],
            f[5],
            f[6],
            ls,
            f[7],
            cpu,
            cpu * 1e9 / vs,
            cpu * 1e9 / (vs + ls),
            f[10]
        );
    }
}
