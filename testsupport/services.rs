//! Real services for integration tests, started by the test itself on a loopback port of its
//! own (so a test can stop and restart them): Mosquitto and victoria-metrics (which speaks the
//! InfluxDB v2 write API). `.ci/run` installs both. Included by path from the tests of the
//! crates that need them: `#[path = "../../testsupport/services.rs"] mod services;`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn find(names: &[&str], package: &str) -> PathBuf {
    for p in names {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("{package} is not installed (apt-get install {package}; .ci/run does it)");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gw-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Stop a child gracefully (SIGTERM), so it saves its state.
fn terminate(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let _ = c.wait();
    }
}

/// A Mosquitto broker with persistence (sessions and queued messages survive a restart).
pub struct Broker {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Broker {
    pub fn start(name: &str) -> Broker {
        let mut b = Broker {
            port: free_port(),
            dir: scratch(&format!("mqtt-{name}")),
            child: None,
        };
        b.spawn();
        b
    }

    /// Start (again) on the same port with the same persistence.
    pub fn spawn(&mut self) {
        let conf = self.dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "user root\nlistener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nautosave_interval 1\n",
                self.port,
                self.dir.display()
            ),
        )
        .unwrap();
        let bin = find(
            &[
                "/usr/sbin/mosquitto",
                "/usr/bin/mosquitto",
                "/usr/local/sbin/mosquitto",
            ],
            "mosquitto",
        );
        self.child = Some(
            Command::new(bin)
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("mosquitto did not start on port {}", self.port);
    }

    pub fn stop(&mut self) {
        terminate(&mut self.child);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A victoria-metrics server (InfluxDB v2 write API at /api/v2/write).
pub struct Tsdb {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Tsdb {
    pub fn start(name: &str) -> Tsdb {
        let mut t = Tsdb {
            port: free_port(),
            dir: scratch(&format!("vm-{name}")),
            child: None,
        };
        t.spawn();
        t
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn spawn(&mut self) {
        let bin = find(
            &[
                "/usr/bin/victoria-metrics",
                "/usr/local/bin/victoria-metrics",
            ],
            "victoria-metrics",
        );
        self.child = Some(
            Command::new(bin)
                .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
                .arg(format!("-storageDataPath={}", self.dir.display()))
                .arg("-retentionPeriod=100y")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        for _ in 0..200 {
            if http_get(self.port, "/health").is_some_and(|b| b.contains("OK")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("victoria-metrics did not start");
    }

    pub fn stop(&mut self) {
        terminate(&mut self.child);
    }

    /// Samples stored in series whose name matches the regex `name_re`.
    pub fn samples(&self, name_re: &str) -> usize {
        let _ = http_get(self.port, "/internal/force_flush");
        let q: String = format!("{{__name__=~\"{name_re}\"}}")
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let body =
            http_get(self.port, &format!("/api/v1/export?match%5B%5D={q}")).unwrap_or_default();
        body.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| v["timestamps"].as_array().map_or(0, |a| a.len()))
            .sum()
    }
}

impl Drop for Tsdb {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A plain HTTP/1.1 GET on loopback: the body of a 200 answer.
pub fn http_get(port: u16, path: &str) -> Option<String> {
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
