//! Time series against a real server that speaks the InfluxDB v2 write API: Debian's
//! `victoria-metrics` (installed by `.ci/run`), started here on a loopback port of its own so
//! the test can stop and restart it. Points written while it is down wait on disk; none is
//! lost.

// The test needs real timestamps near now: the server refuses points outside its retention.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use intersections::Ms;
use optimizer::timeseries::{Point, SeriesTarget, SeriesWriter, Value};

fn vm_bin() -> PathBuf {
    for p in [
        "/usr/bin/victoria-metrics",
        "/usr/local/bin/victoria-metrics",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("victoria-metrics is not installed (apt-get install victoria-metrics; .ci/run does it)");
}

struct Vm {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Vm {
    fn start() -> Vm {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("gw-vm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut vm = Vm {
            port,
            dir,
            child: None,
        };
        vm.spawn();
        vm
    }
    fn spawn(&mut self) {
        let child = Command::new(vm_bin())
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .arg(format!("-storageDataPath={}", self.dir.display()))
            .arg("-retentionPeriod=100y")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..200 {
            if get(self.port, "/health").is_some_and(|b| b.contains("OK")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("victoria-metrics did not start");
    }
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A plain HTTP GET on loopback; the body, or None.
fn get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Some(dechunk(body));
    }
    Some(body.to_string())
}

/// Decode an HTTP/1.1 chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// Samples of `gwtest_*` series stored, by counting exported timestamps.
fn stored(port: u16) -> usize {
    let _ = get(port, "/internal/force_flush");
    let body = get(
        port,
        "/api/v1/export?match%5B%5D=%7B__name__%3D~%22gwtest_.*%22%7D",
    )
    .unwrap_or_default();
    body.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["timestamps"].as_array().map_or(0, |a| a.len()))
        .sum()
}

fn points(from: i64, n: i64, now: i64) -> Vec<Point> {
    (from..from + n)
        .map(|i| {
            Point::new("gwtest", Ms(now - 600_000 + i * 10))
                .tag("intersection", &format!("I{}", i % 7))
                .field("count", Value::Int(i))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_survive_a_database_restart() {
    let mut vm = Vm::start();
    let data = std::env::temp_dir().join(format!("gw-vm-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let target = SeriesTarget::Influx {
        url: format!("http://127.0.0.1:{}", vm.port),
        org: "greenwave".into(),
        bucket: "greenwave".into(),
        token: "unused".into(),
    };
    let mut w = SeriesWriter::open(target, &data, 1000).unwrap();
    w.add(&points(0, 7_000, now)).unwrap();
    let f = w.flush().await.unwrap();
    assert_eq!((f.batches, f.lines), (2, 7_000));
    let mut seen = 0;
    for _ in 0..50 {
        seen = stored(vm.port);
        if seen == 7_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(seen, 7_000, "points read back");

    // The database goes away: writes fail, points wait on disk.
    vm.stop();
    w.add(&points(7_000, 3_000, now)).unwrap();
    assert!(w.flush().await.is_err());
    assert_eq!(w.waiting(), 1);
    // Even a restart of the optimizer keeps them.
    drop(w);
    vm.spawn();
    let target = SeriesTarget::Influx {
        url: format!("http://127.0.0.1:{}", vm.port),
        org: "greenwave".into(),
        bucket: "greenwave".into(),
        token: "unused".into(),
    };
    let mut w = SeriesWriter::open(target, &data, 1000).unwrap();
    assert_eq!(w.waiting(), 1);
    let f = w.flush().await.unwrap();
    assert_eq!(f.lines, 3_000);
    for _ in 0..50 {
        seen = stored(vm.port);
        if seen == 10_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(seen, 10_000, "no point lost across the restart");
    let _ = std::fs::remove_dir_all(&data);
}
