//! Simulator benchmark: vehicle-steps per second, single-threaded, and peak memory per vehicle,
//! over the shipped networks and generated NxN grids. Seeded; prints one table.
//!
//! ```text
//! cargo bench -p simulator --bench simbench            # every case
//! cargo bench -p simulator --bench simbench -- grid8   # cases whose name contains "grid8"
//! ```
//!
//! Each case runs in a child process of this binary, so that the peak resident memory
//! (`VmHWM` from `/proc/self/status`, Linux) is that case's alone.

use std::path::Path;
use std::process::Command;

use intersections::demand::Demand;
use intersections::{Ms, Network};
use simulator::{synth, Control, Scenario, SimConfig};

fn case_names() -> Vec<String> {
    synth::bench_case_names()
}

fn load(name: &str) -> (Network, Demand, Ms) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    synth::bench_case(name, &dir).unwrap_or_else(|e| panic!("{e}"))
}

fn status_kb(field: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The bench measures wall time; that is its purpose (the simulator itself never reads it).
#[allow(clippy::disallowed_methods)]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

fn run_case(name: &str) {
    let (net, demand, duration) = load(name);
    let (ixs, links) = (net.intersections.len(), net.links.len());
    let sc = Scenario::new(net, demand, SimConfig::default()).expect("scenario");
    let mut sim = sc.simulation(&Control::fixed(), 1).expect("simulation");
    // Reset the peak to the current size (Linux: clear_refs 5), so the peak is the run's.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = status_kb("VmRSS:").unwrap_or(0.0);
    let t = now();
    sim.run_until(duration);
    let wall = t.elapsed().as_secs_f64();
    let m = sim.metrics();
    let hwm = status_kb("VmHWM:").unwrap_or(0.0);
    let per_vehicle_b = (hwm - rss_before).max(0.0) * 1024.0 / m.peak_in_network.max(1) as f64;
    println!(
        "{name}\t{ixs}\t{links}\t{:.0}\t{}\t{}\t{}\t{:.3}\t{:.0}\t{:.0}\t{:.1}",
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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--case") {
        run_case(&args[i + 1]);
        return;
    }
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let exe = std::env::current_exe().expect("own path");
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
    for name in case_names() {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let out = Command::new(&exe)
            .args(["--case", &name])
            .output()
            .expect("run case");
        let text = String::from_utf8_lossy(&out.stdout);
        let Some(line) = text.lines().last() else {
            eprintln!("{name}: {}", String::from_utf8_lossy(&out.stderr));
            continue;
        };
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 11 {
            eprintln!("{name}: {line}");
            continue;
        }
        println!(
            "{:<12} {:>5} {:>6} {:>7} {:>8} {:>7} {:>12} {:>8} {:>14} {:>10} {:>8}",
            f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10]
        );
    }
}
