//! Time series: detector counts, estimated flows, plan decisions and performance, written to
//! InfluxDB through its v2 write API (the `influxdb2` crate) or, without a database, kept as
//! line protocol in the data directory. The schema is in `docs/timeseries.md`.
//!
//! Nothing is lost while the database is unreachable: points are sealed into batches of at
//! most [`BATCH_LINES`] lines (InfluxDB's advice for v2: 5,000) in an on-disk queue
//! ([`intersections::queue::DiskQueue`]), and a batch leaves the queue only after the database
//! accepted it. [`SeriesWriter::flush`] sends what it can in order and stops at the first
//! failure; [`run_flusher`] calls it periodically with exponential backoff (5 s doubling to
//! 125 s, the official clients' defaults) while the database is down.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use intersections::messages::DetectorReport;
use intersections::queue::{BufferError, DiskQueue};
use intersections::Ms;

/// Largest batch written in one request.
pub const BATCH_LINES: usize = 5_000;

/// A field value of a point.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Float(f64),
    Int(i64),
    Bool(bool),
    Str(String),
}

/// One point: measurement, tags, fields, time (Unix milliseconds).
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub measurement: String,
    pub tags: BTreeMap<String, String>,
    pub fields: BTreeMap<String, Value>,
    pub time: Ms,
}

fn escape(s: &str, specials: &[char]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if specials.contains(&c) || c == '\\' {
            out.push('\\');
        }
        if c == '\n' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

impl Point {
    pub fn new(measurement: &str, time: Ms) -> Self {
        Point {
            measurement: measurement.into(),
            tags: BTreeMap::new(),
            fields: BTreeMap::new(),
            time,
        }
    }
    pub fn tag(mut self, k: &str, v: &str) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
    pub fn field(mut self, k: &str, v: Value) -> Self {
        self.fields.insert(k.into(), v);
        self
    }

    /// The point as one line of line protocol, millisecond precision; tags sorted (as InfluxDB
    /// advises). `None` for a point without fields.
    pub fn line(&self) -> Option<String> {
        if self.fields.is_empty() {
            return None;
        }
        let mut l = escape(&self.measurement, &[',', ' ']);
        for (k, v) in &self.tags {
            l.push(',');
            l.push_str(&escape(k, &[',', '=', ' ']));
            l.push('=');
            l.push_str(&escape(v, &[',', '=', ' ']));
        }
        l.push(' ');
        let fields: Vec<String> = self
            .fields
            .iter()
            .filter_map(|(k, v)| {
                let v = match v {
                    Value::Float(f) if !f.is_finite() => return None,
                    Value::Float(f) => format!("{f}"),
                    Value::Int(i) => format!("{i}i"),
                    Value::Bool(b) => format!("{b}"),
                    Value::Str(s) => {
                        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
                    }
                };
                Some(format!("{}={v}", escape(k, &[',', '=', ' '])))
            })
            .collect();
        if fields.is_empty() {
            return None;
        }
        l.push_str(&fields.join(","));
        l.push(' ');
        l.push_str(&self.time.0.to_string());
        Some(l)
    }
}

/// Points of a detector report: one `detector_counts` point per detector (see the schema).
pub fn points_from_report(r: &DetectorReport) -> Vec<Point> {
    r.detectors
        .iter()
        .map(|d| {
            Point::new("detector_counts", Ms(r.interval_end_ms))
                .tag("region", &r.region)
                .tag("intersection", &r.intersection)
                .tag("detector", &d.detector)
                .field("count", Value::Int(d.count as i64))
                .field("occupancy", Value::Float(d.occupancy))
                .field(
                    "interval_s",
                    Value::Float((r.interval_end_ms - r.interval_start_ms) as f64 / 1000.0),
                )
                .field(
                    "healthy",
                    Value::Bool(d.health == intersections::messages::DetectorHealth::Ok),
                )
        })
        .collect()
}

/// Where series go.
#[derive(Clone, Debug)]
pub enum SeriesTarget {
    /// An InfluxDB v2 write API (InfluxDB 2, or anything that speaks it).
    Influx {
        url: String,
        org: String,
        bucket: String,
        token: String,
    },
    /// The embedded default: line protocol files in the data directory.
    Files,
}

#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    #[error("series buffer: {0}")]
    Buffer(#[from] BufferError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the time-series database refused or is unreachable: {0}")]
    Write(String),
}

/// Batches points, keeps them on disk until written, writes them in order.
pub struct SeriesWriter {
    target: SeriesTarget,
    client: Option<influxdb2::Client>,
    queue: DiskQueue,
    pending: Vec<String>,
    files_dir: PathBuf,
    /// Lines written to the target so far.
    pub written_lines: u64,
}

/// What one flush did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    pub batches: usize,
    pub lines: usize,
}

impl SeriesWriter {
    /// Open the writer; the buffer lives in `data_dir/series-buffer`, at most `max_batches`
    /// batches (past it the oldest batch is dropped and logged).
    pub fn open(
        target: SeriesTarget,
        data_dir: &Path,
        max_batches: usize,
    ) -> Result<Self, SeriesError> {
        let queue = DiskQueue::open(&data_dir.join("series-buffer"), max_batches)?;
        let client = match &target {
            SeriesTarget::Influx {
                url, org, token, ..
            } => Some(influxdb2::Client::new(
                url.clone(),
                org.clone(),
                token.clone(),
            )),
            SeriesTarget::Files => None,
        };
        Ok(SeriesWriter {
            target,
            client,
            queue,
            pending: Vec::new(),
            files_dir: data_dir.join("series"),
            written_lines: 0,
        })
    }

    /// Add points; full batches are sealed into the on-disk buffer at once.
    pub fn add(&mut self, points: &[Point]) -> Result<(), SeriesError> {
        self.pending.extend(points.iter().filter_map(Point::line));
        while self.pending.len() >= BATCH_LINES {
            let rest = self.pending.split_off(BATCH_LINES);
            let batch = std::mem::replace(&mut self.pending, rest);
            self.push_batch(batch)?;
        }
        Ok(())
    }

    fn push_batch(&mut self, lines: Vec<String>) -> Result<(), SeriesError> {
        if lines.is_empty() {
            return Ok(());
        }
        let payload = serde_json::to_string(&lines.join("\n")).unwrap_or_default();
        if self.queue.push(&payload)? {
            tracing::warn!(
                dropped = self.queue.dropped(),
                "series buffer full: dropped the oldest batch"
            );
        }
        Ok(())
    }

    /// Batches waiting on disk (not counting points not yet sealed).
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// Seal what is pending and write every waiting batch, oldest first, stopping at the first
    /// failure (nothing is dropped; the next flush retries).
    pub async fn flush(&mut self) -> Result<Flushed, SeriesError> {
        let batch = std::mem::take(&mut self.pending);
        self.push_batch(batch)?;
        let mut done = Flushed::default();
        while let Some(front) = self.queue.front() {
            let body: String = serde_json::from_str(front).unwrap_or_default();
            let n = body.lines().count();
            match (&self.target, &self.client) {
                (SeriesTarget::Influx { org, bucket, .. }, Some(c)) => {
                    let r = c
                        .write_line_protocol_with_precision(
                            org,
                            bucket,
                            body,
                            influxdb2::api::write::TimestampPrecision::Milliseconds,
                        )
                        .await;
                    if let Err(e) = r {
                        return Err(SeriesError::Write(e.to_string()));
                    }
                }
                _ => {
                    use std::io::Write;
                    let path = self.files_dir.join("series.lp");
                    let io = |source| SeriesError::Io {
                        path: path.clone(),
                        source,
                    };
                    std::fs::create_dir_all(&self.files_dir).map_err(io)?;
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .map_err(io)?;
                    writeln!(f, "{body}").map_err(io)?;
                    f.sync_data().map_err(io)?;
                }
            }
            self.queue.pop()?;
            done.batches += 1;
            done.lines += n;
            self.written_lines += n as u64;
        }
        Ok(done)
    }
}

/// Flush every `every` until `stop`; while the target fails, back off from 5 s doubling to
/// 125 s. Points keep arriving through `writer` (shared with the producers).
pub async fn run_flusher(
    writer: std::sync::Arc<tokio::sync::Mutex<SeriesWriter>>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(5);
    let mut wait = every;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        let r = writer.lock().await.flush().await;
        match r {
            Ok(_) => {
                backoff = Duration::from_secs(5);
                wait = every;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_s = backoff.as_secs(), "time series not written; kept on disk");
                wait = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(125));
            }
        }
    }
    let _ = writer.lock().await.flush().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_protocol_escapes_and_sorts() {
        let p = Point::new("detector counts", Ms(1_700_000_000_123))
            .tag("z", "last")
            .tag("intersection", "A,1 b=2")
            .field("count", Value::Int(12))
            .field("note", Value::Str("say \"hi\"".into()))
            .field("occupancy", Value::Float(0.25))
            .field("bad", Value::Float(f64::NAN));
        assert_eq!(
            p.line().unwrap(),
            "detector\\ counts,intersection=A\\,1\\ b\\=2,z=last count=12i,note=\"say \\\"hi\\\"\",occupancy=0.25 1700000000123"
        );
        assert!(Point::new("m", Ms(0)).line().is_none());
    }

    #[tokio::test]
    async fn files_target_keeps_everything_in_order() {
        let dir = std::env::temp_dir().join(format!("gw-series-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut w = SeriesWriter::open(SeriesTarget::Files, &dir, 100).unwrap();
        let pts: Vec<Point> = (0..12_000)
            .map(|i| Point::new("m", Ms(i)).field("v", Value::Int(i)))
            .collect();
        w.add(&pts).unwrap();
        assert_eq!(w.waiting(), 2);
        let f = w.flush().await.unwrap();
        assert_eq!((f.batches, f.lines), (3, 12_000));
        let text = std::fs::read_to_string(dir.join("series/series.lp")).unwrap();
        let times: Vec<i64> = text
            .lines()
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(times, (0..12_000).collect::<Vec<_>>());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
