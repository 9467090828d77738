//! Time series: detector counts, estimated flows, plan decisions and performance, written to
//! InfluxDB through its v2 write API (the `influxdb2` crate) or, without a database, kept as
//! line protocol in the data directory. The schema is in `docs/timeseries.md`.
//!
//! Nothing is lost while the database is unreachable: points are sealed into batches of at
//! most [`BATCH_LINES`] lines (InfluxDB's advice for v2: 5,000) in an on-disk queue
//! ([`intersections::queue::DiskQueue`]), and a batch leaves the queue only after the database
//! accepted it, or refused it for good (malformed, a field type conflict, too old: then it is
//! appended to [`REJECTED_FILE`] and the writer goes on with the next). [`SeriesWriter::flush`]
//! sends what it can in order and stops at the first other failure; every write is bounded by
//! [`WRITE_TIMEOUT`]. [`run_flusher`] flushes periodically, without holding the writer during
//! a write (so adding points never waits for the database), and backs off exponentially
//! (5 s doubling to 125 s, the official clients' defaults) while the database is down.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

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

/// Points of a planning round's estimated flows: one `flow_estimate` point per movement, at
/// the round's time.
pub fn points_from_flows(
    region: &str,
    time: Ms,
    flows: &[crate::estimate::EstimatedFlow],
) -> Vec<Point> {
    flows
        .iter()
        .map(|f| {
            Point::new("flow_estimate", time)
                .tag("region", region)
                .tag("intersection", &f.intersection)
                .tag("movement", &f.estimate.movement)
                .field("flow_veh_h", Value::Float(f.estimate.flow_veh_h))
                .field("std_veh_h", Value::Float(f.estimate.std_veh_h))
                .field("planned_veh_h", Value::Float(f.planned_veh_h))
                .field("measured", Value::Bool(f.estimate.measured))
                .field("lower_bound", Value::Bool(f.estimate.lower_bound))
        })
        .collect()
}

/// Points of one decision of a planning round (`deploy`: it sends plans to the group's
/// controllers; false: the plans in force stay), at the round's time: a `plan_decision` point, and the check's simulated figures as `simulated_performance`
/// points, one for the plans in force and one for the candidate, when the record has them
/// (read as the console reads it, [`crate::console::Summary::of`]).
pub fn points_from_decision(
    region: &str,
    group: &str,
    time: Ms,
    deploy: bool,
    record: &serde_json::Value,
) -> Vec<Point> {
    let s = crate::console::Summary::of(record);
    let mut d = Point::new("plan_decision", time)
        .tag("region", region)
        .tag("group", group)
        .field("deploy", Value::Bool(deploy));
    if let Some(what) = s.as_ref().and_then(|s| s.what.clone()) {
        d = d.tag("what", &what);
    }
    let mut out = Vec::new();
    if let Some(s) = &s {
        if let Some(a) = s.accepted {
            d = d.field("accepted", Value::Bool(a));
        }
        if let Some(i) = s.improvement {
            d = d.field("improvement_pct", Value::Float(i * 100.0));
        }
        if let Some(t) = s.threshold {
            d = d.field("threshold_pct", Value::Float(t * 100.0));
        }
        if let Some(m) = &s.mode {
            d = d.field("mode", Value::Str(m.clone()));
        }
        if let Some(r) = &s.reason {
            d = d.field("reason", Value::Str(r.clone()));
        }
        for (plans, f) in [("in-force", &s.before), ("candidate", &s.after)] {
            let Some(f) = f else { continue };
            let mut p = Point::new("simulated_performance", time)
                .tag("region", region)
                .tag("group", group)
                .tag("plans", plans);
            for (k, v) in [
                ("mean_delay_s", f.mean_delay_s),
                ("mean_stops", f.mean_stops),
                ("travel_time_index", f.travel_time_index),
                ("mean_speed_mps", f.mean_speed_mps),
            ] {
                if let Some(v) = v {
                    p = p.field(k, Value::Float(v));
                }
            }
            if !p.fields.is_empty() {
                out.push(p);
            }
        }
    }
    out.insert(0, d);
    out
}

/// A report's measured performance of its intersection, at the end of its interval: a
/// `measured_performance` point with the volume through the stop lines (veh/h, the sum over
/// the stop-line detectors that the cabinet says are healthy and the centre has not found in
/// fault), their mean occupancy, and how many detectors are in fault. `in_fault`: the ids of
/// the intersection's detectors in fault at the centre.
pub fn points_from_measured(
    r: &DetectorReport,
    ix: &intersections::model::Intersection,
    in_fault: &[&str],
) -> Vec<Point> {
    use intersections::spec::DetectorKind;
    let hours = (r.interval_end_ms - r.interval_start_ms) as f64 / 3_600_000.0;
    let stop_line = |id: &str| {
        ix.detectors
            .iter()
            .any(|d| d.id == id && d.kind == DetectorKind::StopLine)
    };
    let (healthy, faulty): (Vec<_>, Vec<_>) = r.detectors.iter().partition(|d| {
        d.health == intersections::messages::DetectorHealth::Ok
            && !in_fault.contains(&d.detector.as_str())
    });
    let faulty = faulty.len();
    let good: Vec<_> = healthy
        .into_iter()
        .filter(|d| stop_line(&d.detector))
        .collect();
    let mut p = Point::new("measured_performance", Ms(r.interval_end_ms))
        .tag("region", &r.region)
        .tag("intersection", &r.intersection)
        .field("detectors_in_fault", Value::Int(faulty as i64))
        .field("stop_line_detectors", Value::Int(good.len() as i64));
    if !good.is_empty() && hours > 0.0 {
        let volume: u64 = good.iter().map(|d| d.count as u64).sum();
        let occ = good.iter().map(|d| d.occupancy).sum::<f64>() / good.len() as f64;
        p = p
            .field("volume_veh_h", Value::Float(volume as f64 / hours))
            .field("occupancy", Value::Float(occ));
    }
    vec![p]
}

/// A detector alarm raised (`active`) or cleared, as a `detector_alarm` point at `time`.
pub fn points_from_alarm(a: &crate::ingest::Alarm, active: bool, time: Ms) -> Vec<Point> {
    let fault = serde_json::to_value(a.fault)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    vec![Point::new("detector_alarm", time)
        .tag("region", &a.region)
        .tag("intersection", &a.intersection)
        .tag("detector", &a.detector)
        .field("active", Value::Bool(active))
        .field("fault", Value::Str(fault))]
}

/// A controller's status as a `controller_status` point, at the status's time: online, mode,
/// plan version, cycle time, failed detectors and fault.
pub fn points_from_status(st: &intersections::messages::ControllerStatus) -> Vec<Point> {
    let mode = serde_json::to_value(st.mode)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let mut p = Point::new("controller_status", Ms(st.time_ms))
        .tag("region", &st.region)
        .tag("intersection", &st.intersection)
        .field("online", Value::Bool(st.online))
        .field("mode", Value::Str(mode))
        .field(
            "failed_detectors",
            Value::Int(st.failed_detectors.len() as i64),
        )
        .field("fault", Value::Bool(st.fault.is_some()));
    if let Some(v) = st.plan_version {
        p = p.field("plan_version", Value::Int(v as i64));
    }
    if let Some(id) = &st.plan_id {
        p = p.field("plan_id", Value::Str(id.clone()));
    }
    if let Some(c) = st.cycle_time_ms {
        p = p.field("cycle_time_s", Value::Float(c as f64 / 1000.0));
    }
    vec![p]
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

/// How long one write may take before it counts as failed and is retried with the backoff: a
/// database that accepts connections and never answers must not hold up the batches for good.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where, in the data directory, batches the database refused for good are appended.
pub const REJECTED_FILE: &str = "series-rejected.lp";

#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    #[error("series buffer: {0}")]
    Buffer(#[from] BufferError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("time-series database URL: {0}")]
    Url(String),
    #[error("time-series database client: {0}")]
    Client(String),
    #[error("the time-series database refused or is unreachable: {0}")]
    Write(String),
}

/// Check the URL of a time-series database: `http://` or `https://`, a host, optionally a
/// port, and nothing else (the client writes to `/api/v2/write` on the host and would silently
/// drop a path). The error says what is wrong, e.g. that `127.0.0.1:8086` lacks its scheme.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.trim().is_empty() {
        return Err("the URL is empty (e.g. http://127.0.0.1:8086)".into());
    }
    if url.trim() != url {
        return Err(format!("{url:?} has spaces around it"));
    }
    let lower = url.to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return Err(match url.split_once("://") {
            Some((scheme, _)) => {
                format!("{url:?}: the scheme must be http or https, not {scheme:?}")
            }
            None => format!("{url:?} has no scheme: write http://{url} (or https://{url})"),
        });
    }
    let base = parse_as(|b| &b.base, url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(base.host_str(), Some(h) if !h.is_empty()) {
        return Err(format!("{url:?} has no host"));
    }
    if base.path() != "/" || base.query().is_some() || base.fragment().is_some() {
        return Err(format!(
            "{url:?}: give only the scheme, host and port (the client writes to /api/v2/write \
             on the host; a path, query or fragment would be ignored)"
        ));
    }
    Ok(())
}

/// Parse `s` as the type of the field `_field` picks: the URL type of the `influxdb2` client,
/// so this module checks a URL with the very parser the client uses (and panics on) without
/// depending on the `url` crate itself.
fn parse_as<T: std::str::FromStr>(
    _field: fn(&influxdb2::ClientBuilder) -> &T,
    s: &str,
) -> Result<T, T::Err> {
    s.parse()
}

/// Whether an HTTP status from the write API refuses the batch itself, for good (400 malformed
/// or a field type conflict, 413 too large, 422 outside the retention, ...): any 4xx except
/// 408 and 429 (try again later) and 401, 403 and 404 (a wrong token, organisation or bucket:
/// the configuration's fault, not the batch's; every batch would be refused alike, so they
/// wait in the buffer until it is fixed). Everything else (5xx, the unexpected) is retried.
fn refuses_for_good(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 401 | 403 | 404 | 408 | 429)
}

/// The database's message in an error answer: InfluxDB's JSON `message`, else the text.
fn db_message(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| text.trim().to_string())
}

/// Append `body` and a newline to `path`, durably.
fn append_lines(path: &Path, body: &str) -> Result<(), SeriesError> {
    use std::io::Write;
    let io = |source| SeriesError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    writeln!(f, "{body}").map_err(io)?;
    f.sync_data().map_err(io)
}

/// Where batches go, shared with the batches in flight (sent without the writer's lock).
enum Sink {
    Influx {
        client: influxdb2::Client,
        org: String,
        bucket: String,
        /// For messages.
        write_url: String,
    },
    Files {
        path: PathBuf,
    },
}

/// The front batch of the buffer, taken to be sent without holding the writer.
struct Outgoing {
    /// The batch's number: batches that left the buffer's front before it (popped, or dropped
    /// by the bound). It is still the front when the writer's count says the same.
    seq: u64,
    body: String,
    lines: usize,
    sink: Arc<Sink>,
    timeout: Duration,
}

/// How sending a batch ended.
enum Sent {
    Accepted,
    /// The database refused the batch itself, for good ([`refuses_for_good`]).
    Refused {
        status: u16,
        message: String,
    },
    /// Worth another try later: unreachable, no answer in time, overloaded, misconfigured.
    Failed(SeriesError),
}

impl Outgoing {
    /// Send the batch; the one place the write API's answers are sorted out.
    async fn send(&self) -> Sent {
        match &*self.sink {
            Sink::Influx {
                client,
                org,
                bucket,
                write_url,
            } => {
                let write = client.write_line_protocol_with_precision(
                    org,
                    bucket,
                    self.body.clone(),
                    influxdb2::api::write::TimestampPrecision::Milliseconds,
                );
                match tokio::time::timeout(self.timeout, write).await {
                    Ok(Ok(())) => Sent::Accepted,
                    Ok(Err(influxdb2::RequestError::Http { status, text })) => {
                        let status = status.as_u16();
                        let message = db_message(&text);
                        if refuses_for_good(status) {
                            Sent::Refused { status, message }
                        } else {
                            Sent::Failed(SeriesError::Write(format!(
                                "{write_url}: HTTP {status}: {message}"
                            )))
                        }
                    }
                    Ok(Err(e)) => Sent::Failed(SeriesError::Write(format!("{write_url}: {e}"))),
                    Err(_) => Sent::Failed(SeriesError::Write(format!(
                        "{write_url}: no answer within {:?}",
                        self.timeout
                    ))),
                }
            }
            Sink::Files { path } => match append_lines(path, &self.body) {
                Ok(()) => Sent::Accepted,
                Err(e) => Sent::Failed(e),
            },
        }
    }
}

/// Batches points, keeps them on disk until written, writes them in order.
pub struct SeriesWriter {
    sink: Arc<Sink>,
    queue: DiskQueue,
    /// Batches popped from the queue since it was opened (see [`Outgoing::seq`]).
    popped: u64,
    pending: Vec<String>,
    rejected_file: PathBuf,
    write_timeout: Duration,
    /// Lines written to the target so far.
    pub written_lines: u64,
}

/// What one flush did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Batches and lines the target accepted.
    pub batches: usize,
    pub lines: usize,
    /// Batches and lines the database refused for good, moved to [`REJECTED_FILE`].
    pub rejected_batches: usize,
    pub rejected_lines: usize,
}

impl SeriesWriter {
    /// Open the writer; the buffer lives in `data_dir/series-buffer`, at most `max_batches`
    /// batches (past it the oldest batch is dropped and logged). An unusable database URL is
    /// an error ([`check_url`]), before anything is created.
    pub fn open(
        target: SeriesTarget,
        data_dir: &Path,
        max_batches: usize,
    ) -> Result<Self, SeriesError> {
        let sink = match target {
            SeriesTarget::Influx {
                url,
                org,
                bucket,
                token,
            } => {
                check_url(&url).map_err(SeriesError::Url)?;
                let client = influxdb2::ClientBuilder::new(url.as_str(), org.as_str(), token)
                    .build()
                    .map_err(|e| SeriesError::Client(e.to_string()))?;
                Sink::Influx {
                    client,
                    org,
                    bucket,
                    write_url: format!("{}/api/v2/write", url.trim_end_matches('/')),
                }
            }
            SeriesTarget::Files => Sink::Files {
                path: data_dir.join("series").join("series.lp"),
            },
        };
        let queue = DiskQueue::open(&data_dir.join("series-buffer"), max_batches)?;
        Ok(SeriesWriter {
            sink: Arc::new(sink),
            queue,
            popped: 0,
            pending: Vec::new(),
            rejected_file: data_dir.join(REJECTED_FILE),
            write_timeout: WRITE_TIMEOUT,
            written_lines: 0,
        })
    }

    /// Bound each write by `timeout` rather than [`WRITE_TIMEOUT`].
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Add points; full batches are sealed into the on-disk buffer at once. Never waits for
    /// the database.
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

    /// Seal what is pending into a batch.
    fn seal(&mut self) -> Result<(), SeriesError> {
        let batch = std::mem::take(&mut self.pending);
        self.push_batch(batch)
    }

    /// Batches waiting on disk (not counting points not yet sealed).
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    fn front_seq(&self) -> u64 {
        self.popped + self.queue.dropped()
    }

    /// The oldest waiting batch, to be sent without holding the writer.
    fn take_front(&self) -> Option<Outgoing> {
        let front = self.queue.front()?;
        let body: String = serde_json::from_str(front).unwrap_or_default();
        Some(Outgoing {
            seq: self.front_seq(),
            lines: body.lines().count(),
            body,
            sink: self.sink.clone(),
            timeout: self.write_timeout,
        })
    }

    /// Record how sending `batch` ended. An accepted batch leaves the buffer; a refused one is
    /// appended to [`REJECTED_FILE`] first; either way the buffer's front moves on only if it
    /// is still that batch (the bound may have dropped it while it was in flight). A failure
    /// leaves the batch at the front and is returned.
    fn settle(
        &mut self,
        batch: &Outgoing,
        sent: Sent,
        done: &mut Flushed,
    ) -> Result<(), SeriesError> {
        match sent {
            Sent::Accepted => {
                done.batches += 1;
                done.lines += batch.lines;
                self.written_lines += batch.lines as u64;
            }
            Sent::Refused { status, message } => {
                append_lines(&self.rejected_file, &batch.body)?;
                tracing::error!(
                    status,
                    message = %message,
                    lines = batch.lines,
                    moved_to = %self.rejected_file.display(),
                    "time-series batch refused for good; moved aside, going on"
                );
                done.rejected_batches += 1;
                done.rejected_lines += batch.lines;
            }
            Sent::Failed(e) => return Err(e),
        }
        if self.front_seq() == batch.seq {
            let popped = self.queue.pop();
            self.popped += 1;
            popped?;
        }
        Ok(())
    }

    /// Seal what is pending and write every waiting batch, oldest first; a batch the database
    /// refuses for good is moved aside ([`REJECTED_FILE`]), any other failure stops the flush
    /// (nothing is dropped; the next flush retries). For a writer shared with producers use
    /// [`flush_shared`], which does not hold it during the writes.
    pub async fn flush(&mut self) -> Result<Flushed, SeriesError> {
        self.seal()?;
        let mut done = Flushed::default();
        while let Some(batch) = self.take_front() {
            let sent = batch.send().await;
            self.settle(&batch, sent, &mut done)?;
        }
        Ok(done)
    }
}

/// [`SeriesWriter::flush`] on a writer shared with producers: the lock is taken only to take a
/// batch and to settle it, never across a write, so [`SeriesWriter::add`] never waits for the
/// database. One flusher at a time is expected (two would send some batches twice).
pub async fn flush_shared(writer: &Mutex<SeriesWriter>) -> Result<Flushed, SeriesError> {
    let mut next = {
        let mut w = writer.lock().await;
        w.seal()?;
        w.take_front()
    };
    let mut done = Flushed::default();
    while let Some(batch) = next {
        let sent = batch.send().await;
        let mut w = writer.lock().await;
        w.settle(&batch, sent, &mut done)?;
        next = w.take_front();
    }
    Ok(done)
}

/// Flush every `every` until `stop`; while the target fails, back off from 5 s doubling to
/// 125 s. Points keep arriving through `writer` (shared with the producers, who are never held
/// up by a write: [`flush_shared`]).
pub async fn run_flusher(
    writer: Arc<Mutex<SeriesWriter>>,
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
        match flush_shared(&writer).await {
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
    let _ = flush_shared(&writer).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

    fn single() -> intersections::model::Network {
        intersections::load::load_network(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../intersections/networks/single.toml"
        )))
        .unwrap()
    }

    #[test]
    fn decisions_flows_status_and_measures_become_points() {
        // A decision as the service's planner records it: the check's figures both ways.
        let record = serde_json::json!({"region": "r", "time_ms": 5, "what": "deploy", "detail": {
            "accepted": true, "improvement": 0.125, "threshold": 0.03, "mode": "coordinated",
            "before": {"mean_delay_s": 40.0, "mean_stops": 1.2, "travel_time_index": 1.5, "mean_speed_mps": 8.0},
            "after": {"mean_delay_s": 35.0, "mean_stops": 1.0, "travel_time_index": 1.4, "mean_speed_mps": 8.4},
            "reason": "better",
        }});
        let pts = points_from_decision("r", "corridor", Ms(1_000), true, &record);
        let lines: Vec<String> = pts.iter().filter_map(Point::line).collect();
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert_eq!(
            lines[0],
            "plan_decision,group=corridor,region=r,what=deploy accepted=true,deploy=true,improvement_pct=12.5,mode=\"coordinated\",reason=\"better\",threshold_pct=3 1000"
        );
        assert_eq!(
            lines[1],
            "simulated_performance,group=corridor,plans=in-force,region=r mean_delay_s=40,mean_speed_mps=8,mean_stops=1.2,travel_time_index=1.5 1000"
        );
        assert!(lines[2].starts_with(
            "simulated_performance,group=corridor,plans=candidate,region=r mean_delay_s=35,"
        ));
        // A decision without figures (no demand yet): the decision alone.
        let bare = serde_json::json!({"what": "no demand", "detail": "no counts"});
        let pts = points_from_decision("r", "*", Ms(2_000), false, &bare);
        assert_eq!(pts.len(), 1);
        assert_eq!(pts[0].fields["deploy"], Value::Bool(false));
        assert_eq!(pts[0].tags["what"], "no demand");

        // Flows: one point per movement.
        let flows = vec![crate::estimate::EstimatedFlow {
            intersection: "C".into(),
            estimate: crate::estimate::MovementEstimate {
                movement: "W_left".into(),
                flow_veh_h: 120.0,
                std_veh_h: 15.5,
                lower_bound: true,
                measured: true,
            },
            planned_veh_h: 132.0,
        }];
        let l = points_from_flows("r", Ms(3_000), &flows)[0].line().unwrap();
        assert_eq!(l, "flow_estimate,intersection=C,movement=W_left,region=r flow_veh_h=120,lower_bound=true,measured=true,planned_veh_h=132,std_veh_h=15.5 3000");

        // Measured: the stop-line loops only (not the advance or exit loops), without the
        // ones in fault at the cabinet or at the centre.
        let net = single();
        let ix = &net.intersections[0];
        let det =
            |id: &str, count: u32, occ: f64, ok: bool| intersections::messages::DetectorCount {
                detector: id.into(),
                count,
                occupancy: occ,
                health: if ok {
                    intersections::messages::DetectorHealth::Ok
                } else {
                    intersections::messages::DetectorHealth::NoActivity
                },
            };
        let r = DetectorReport {
            version: intersections::messages::WIRE_VERSION,
            region: "r".into(),
            intersection: "C".into(),
            seq: 1,
            interval_start_ms: 0,
            interval_end_ms: 300_000,
            detectors: vec![
                det("N_stop", 10, 0.2, true),
                det("S_stop", 20, 0.4, true),
                det("E_stop_0", 0, 0.0, false),
                det("W_stop_0", 99, 0.9, true),
                det("E_advance", 50, 0.3, true),
                det("N_exit", 40, 0.2, true),
            ],
        };
        let p = &points_from_measured(&r, ix, &["W_stop_0"])[0];
        assert_eq!(p.measurement, "measured_performance");
        assert_eq!(p.time, Ms(300_000));
        assert_eq!(p.fields["volume_veh_h"], Value::Float(30.0 * 12.0));
        assert_eq!(p.fields["occupancy"], Value::Float(0.30000000000000004));
        assert_eq!(p.fields["detectors_in_fault"], Value::Int(2));
        assert_eq!(p.fields["stop_line_detectors"], Value::Int(2));

        // A controller's status.
        let st: intersections::messages::ControllerStatus = serde_json::from_value(serde_json::json!({
            "version": 1, "region": "r", "intersection": "C", "time_ms": 7000, "online": true,
            "mode": "coordinated", "plan_id": "peak", "plan_version": 4, "cycle_time_ms": 12500,
            "stage": "arterial", "signal_groups": {}, "failed_detectors": ["N_exit"], "fault": null,
        }))
        .unwrap();
        let alarm = crate::ingest::Alarm {
            region: "r".into(),
            intersection: "C".into(),
            detector: "N_exit".into(),
            fault: crate::ingest::Fault::StuckOff,
            since_ms: 6000,
        };
        assert_eq!(
            points_from_alarm(&alarm, true, Ms(6000))[0].line().unwrap(),
            "detector_alarm,detector=N_exit,intersection=C,region=r active=true,fault=\"stuck-off\" 6000"
        );
        let l = points_from_status(&st)[0].line().unwrap();
        assert_eq!(l, "controller_status,intersection=C,region=r cycle_time_s=12.5,failed_detectors=1i,fault=false,mode=\"coordinated\",online=true,plan_id=\"peak\",plan_version=4i 7000");
    }

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gw-series-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn influx(url: &str) -> SeriesTarget {
        SeriesTarget::Influx {
            url: url.into(),
            org: "greenwave".into(),
            bucket: "greenwave".into(),
            token: "token".into(),
        }
    }

    fn points(from: i64, n: i64) -> Vec<Point> {
        (from..from + n)
            .map(|i| Point::new("m", Ms(i)).field("v", Value::Int(i)))
            .collect()
    }

    fn lines(from: i64, n: i64) -> String {
        let l: Vec<String> = points(from, n).iter().filter_map(Point::line).collect();
        l.join("\n")
    }

    /// What the fake database does with a request.
    #[derive(Clone, Copy)]
    enum Answer {
        /// Read it and never answer (until the client hangs up).
        Hang,
        Status(u16),
    }

    /// Bodies the fake database received, in order.
    type Received = Arc<std::sync::Mutex<Vec<String>>>;

    /// A fake InfluxDB write API on a loopback port, on std threads: the `n`th request gets
    /// `script[n]` (204 past its end). Returns its URL, the bodies received, and a channel told
    /// the number of each request as it arrives.
    fn fake_db(script: Vec<Answer>) -> (String, Received, UnboundedReceiver<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received: Received = Arc::default();
        let (tx, rx) = unbounded_channel();
        let r = received.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (script, r, tx) = (script.clone(), r.clone(), tx.clone());
                std::thread::spawn(move || answer_requests(conn, &script, &r, &tx));
            }
        });
        (url, received, rx)
    }

    fn answer_requests(
        mut conn: TcpStream,
        script: &[Answer],
        received: &Received,
        tx: &UnboundedSender<usize>,
    ) {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        loop {
            let mut len = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap();
                    }
                }
            }
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let n = {
                let mut r = received.lock().unwrap();
                r.push(String::from_utf8(body).unwrap());
                r.len() - 1
            };
            let _ = tx.send(n);
            let written = match script.get(n).copied().unwrap_or(Answer::Status(204)) {
                Answer::Hang => {
                    let _ = reader.read_to_end(&mut Vec::new());
                    return;
                }
                Answer::Status(204) => write!(conn, "HTTP/1.1 204 No Content\r\n\r\n"),
                Answer::Status(status) => {
                    let msg = format!(r#"{{"code":"invalid","message":"fake says {status}"}}"#);
                    write!(
                        conn,
                        "HTTP/1.1 {status} Fake\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\n\r\n{msg}",
                        msg.len()
                    )
                }
            };
            if written.is_err() {
                return;
            }
        }
    }

    #[tokio::test]
    async fn a_hung_database_never_holds_up_adding_and_the_write_times_out() {
        let dir = tmpdir("hung");
        let (url, received, mut arrived) = fake_db(vec![Answer::Hang]);
        let w = SeriesWriter::open(influx(&url), &dir, 100)
            .unwrap()
            .with_write_timeout(Duration::from_secs(2));
        let w = Arc::new(Mutex::new(w));
        w.lock().await.add(&points(0, 10)).unwrap();
        let flush = tokio::spawn({
            let w = w.clone();
            async move { flush_shared(&w).await }
        });
        // The write is in flight and the database will not answer: adding goes on.
        tokio::time::timeout(Duration::from_secs(5), arrived.recv())
            .await
            .expect("the write never reached the database")
            .unwrap();
        tokio::time::timeout(Duration::from_millis(100), w.lock())
            .await
            .expect("adding points waited for the database")
            .add(&points(10, 10))
            .unwrap();
        let e = tokio::time::timeout(Duration::from_secs(10), flush)
            .await
            .expect("the write did not time out")
            .unwrap()
            .unwrap_err();
        assert!(e.to_string().contains("no answer within 2s"), "{e}");
        assert_eq!(w.lock().await.waiting(), 1, "the batch stays buffered");
        // Retried later (the database answers now): that batch, then the new points.
        let f = flush_shared(&w).await.unwrap();
        assert_eq!((f.batches, f.lines), (2, 20));
        assert_eq!(w.lock().await.waiting(), 0);
        assert_eq!(
            *received.lock().unwrap(),
            [lines(0, 10), lines(0, 10), lines(10, 10)]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_batch_refused_for_good_is_moved_aside_and_the_rest_go() {
        let dir = tmpdir("refused");
        let (url, received, _arrived) = fake_db(vec![Answer::Status(503), Answer::Status(400)]);
        let mut w = SeriesWriter::open(influx(&url), &dir, 100).unwrap();
        w.add(&points(0, 12_000)).unwrap();
        // Overloaded: a transient failure keeps everything for the next flush.
        let e = w.flush().await.unwrap_err();
        assert!(e.to_string().contains("HTTP 503: fake says 503"), "{e}");
        assert_eq!(w.waiting(), 3);
        assert!(!dir.join(REJECTED_FILE).exists());
        // The first batch is refused for good: moved aside, and the others go.
        let f = w.flush().await.unwrap();
        assert_eq!(
            f,
            Flushed {
                batches: 2,
                lines: 7_000,
                rejected_batches: 1,
                rejected_lines: 5_000
            }
        );
        assert_eq!(w.waiting(), 0);
        assert_eq!(
            std::fs::read_to_string(dir.join(REJECTED_FILE)).unwrap(),
            lines(0, 5_000) + "\n"
        );
        assert_eq!(
            *received.lock().unwrap(),
            [
                lines(0, 5_000),
                lines(0, 5_000),
                lines(5_000, 5_000),
                lines(10_000, 2_000)
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_the_batchs_own_faults_refuse_it_for_good() {
        for s in [400, 413, 422] {
            assert!(refuses_for_good(s), "{s}");
        }
        for s in [200, 301, 401, 403, 404, 408, 429, 500, 502, 503, 504] {
            assert!(!refuses_for_good(s), "{s}");
        }
    }

    #[tokio::test]
    async fn a_batch_dropped_by_the_bound_while_in_flight_takes_no_other_with_it() {
        let dir = tmpdir("inflight");
        let mut w = SeriesWriter::open(SeriesTarget::Files, &dir, 1).unwrap();
        w.add(&points(0, BATCH_LINES as i64)).unwrap();
        let first = w.take_front().unwrap();
        // While it is sent, another batch arrives and the bound (1) drops the first.
        w.add(&points(BATCH_LINES as i64, BATCH_LINES as i64))
            .unwrap();
        let sent = first.send().await;
        let mut done = Flushed::default();
        w.settle(&first, sent, &mut done).unwrap();
        assert_eq!(w.waiting(), 1, "the second batch is still waiting");
        let f = w.flush().await.unwrap();
        assert_eq!(f.lines, BATCH_LINES);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn urls_are_checked_not_panicked_on() {
        for ok in [
            "http://127.0.0.1:8086",
            "https://influx.example.org",
            "http://[::1]:8086/",
            "HTTP://Influx:8086",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("127.0.0.1:8086", "no scheme: write http://127.0.0.1:8086"),
            ("localhost:8086", "no scheme"),
            ("ftp://influx", "scheme must be http or https, not \"ftp\""),
            ("http://", "not a URL: empty host"),
            ("http://influx:99999", "not a URL: invalid port"),
            (
                "http://influx:8086/prefix",
                "only the scheme, host and port",
            ),
            ("http://influx:8086?org=x", "only the scheme, host and port"),
            ("", "empty"),
            (" http://influx", "spaces"),
        ] {
            let e = check_url(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        // The writer says so too, where the client would panic, and creates nothing.
        let dir = tmpdir("badurl");
        match SeriesWriter::open(influx("127.0.0.1:8086"), &dir, 10) {
            Err(SeriesError::Url(e)) => assert!(e.contains("no scheme"), "{e}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted a URL without a scheme"),
        }
        assert!(!dir.exists());
    }

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
