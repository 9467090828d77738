//! Bench: the `controller` binary running one intersection in real time against a real
//! Mosquitto. Reports its peak resident memory, its CPU use, and the timing error of its signal
//! changes (how late each tick ran against its scheduled model time).
//!
//! `cargo bench -p controller --bench realtime` (GW_BENCH_SECONDS sets the duration, default 60).
//! Goals (Controller issue): under 20 MB, under 1% of a core, changes within 100 ms.

// A bench measures wall time by design.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn proc_field(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn main() {
    let secs: f64 = std::env::var("GW_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60.0);
    let dir = std::env::temp_dir().join(format!("gw-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mosq = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let mut broker = mosq.map(|m| {
        std::fs::write(
            dir.join("m.conf"),
            format!("user root\nlistener {port} 127.0.0.1\nallow_anonymous true\n"),
        )
        .unwrap();
        Command::new(m)
            .arg("-c")
            .arg(dir.join("m.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    });
    let net = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks/single.toml");
    let cfg = format!(
        "region = \"bench\"\nintersection = \"C\"\nnetwork = \"{}\"\ndata_dir = \"{}\"\nreport_interval_s = 10\n[broker]\nhost = \"127.0.0.1\"\nport = {port}\n[centre]\nkey_id = \"centre-1\"\npublic_key = \"iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=\"\n",
        net.display(),
        dir.join("data").display()
    );
    std::fs::write(dir.join("cabinet.toml"), cfg).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_controller"))
        .arg("--config")
        .arg(dir.join("cabinet.toml"))
        .arg("--duration")
        .arg(secs.to_string())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("controller binary");
    let pid = child.id();
    let mut peak_kb = 0;
    let mut last_cpu = 0;
    while start.elapsed().as_secs_f64() < secs - 0.5 {
        std::thread::sleep(Duration::from_millis(250));
        peak_kb = peak_kb.max(proc_field(pid, "VmHWM:").unwrap_or(0));
        last_cpu = cpu_ticks(pid).unwrap_or(last_cpu);
    }
    let wall = start.elapsed().as_secs_f64();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut summary = String::new();
    for line in out.lines().map_while(Result::ok) {
        if line.contains("cabinet stopped") {
            summary = line;
        }
    }
    let _ = child.wait();
    if let Some(b) = broker.as_mut() {
        let _ = b.kill();
        let _ = b.wait();
    }
    let hz = 100.0; // USER_HZ on Linux
    let cpu_pct = last_cpu as f64 / hz / wall * 100.0;
    let field = |k: &str| {
        summary
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .unwrap_or("?")
            .to_string()
    };
    println!(
        "controller real-time bench: one intersection (single.toml), {secs:.0} s, broker: {}",
        if mosq.is_some() { "mosquitto" } else { "none" }
    );
    println!(
        "  peak resident memory : {:.1} MB (goal < 20 MB)",
        peak_kb as f64 / 1024.0
    );
    println!("  CPU                  : {cpu_pct:.2}% of one core (goal < 1%)");
    println!("  ticks                : {}", field("ticks"));
    println!(
        "  max tick lateness    : {} ms (goal: changes within 100 ms)",
        field("max_late_ms")
    );
    println!("  reports acknowledged : {}", field("reports_sent"));
    let _ = std::fs::remove_dir_all(&dir);
}
