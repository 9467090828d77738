//! Ingest of detector reports as they arrive from MQTT (`greenwave/v1/{region}/+/detectors`,
//! QoS 1): at-least-once delivery means duplicates, and a cabinet that was cut off sends its
//! buffered reports late and in a burst. The store keeps one sample per detector and interval,
//! whatever the order and however often it arrives, and diagnoses detectors from what they
//! report.
//!
//! Diagnostics (after NTCIP 1202's detector diagnostics, judged at the centre from counts):
//! - **stuck on**: occupancy of at least 95% for 5 minutes of reports;
//! - **stuck off**: no vehicle for 30 minutes while another detector of the same intersection
//!   counted at least 20;
//! - **chattering**: more counts than a lane can carry (2,600 veh/h);
//! - **implausible**: over the last interval, more than 5 times the mean flow of the
//!   intersection's other healthy detectors plus 60 veh/h, when there are at least three
//!   healthy detectors and the others average at least 20 veh/h. A crude neighbour check: the
//!   store does not know the detectors' kinds or lanes, so it looks only for the flow no
//!   neighbour comes near (a low count is left alone: a left-turn pocket may well count a
//!   fifth of the through lanes). There is no check against history here.
//!
//! The cabinet's own diagnosis (`health` in the report) is taken too. A failed detector
//! raises an [`Alarm`]; its flows are then left out ([`CountStore::flow_veh_h`] is `None`)
//! and the estimator falls back on the other detectors and its prior (the history's flows
//! when the region names a history). It recovers when its reports have been diagnosed
//! healthy for [`RECOVERY`] in a row, so that a fault that comes and goes does not flap.
//!
//! Duplicates: a report is a duplicate when the same intersection sent the same `seq` for the
//! same interval before (QoS 1 delivers at least once), or when every detector of it already
//! has a sample for its interval. A cabinet that restarts its `seq` counter sends new
//! intervals under old numbers; those are new reports, not duplicates.

use std::collections::{BTreeMap, BTreeSet};

use intersections::messages::{DetectorHealth, DetectorReport, WIRE_VERSION};
use intersections::Ms;

/// Most plausible flow over one lane, veh/h.
pub const MAX_LANE_FLOW_VEH_H: f64 = 2_600.0;

/// How long a detector in fault must be diagnosed healthy, report after report, before its
/// alarm clears.
pub const RECOVERY: Ms = Ms(5 * 60_000);

/// Most (interval, seq) pairs remembered per intersection for spotting duplicates; the
/// oldest intervals are forgotten first.
const SEEN_MAX: usize = 10_000;

/// One detector over one interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub start: Ms,
    pub end: Ms,
    pub count: u32,
    pub occupancy: f64,
    pub health: DetectorHealth,
}

/// Why a detector is not trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    StuckOn,
    StuckOff,
    Chattering,
    Implausible,
    /// The cabinet reported it failed.
    Cabinet,
}

/// A detector fault, for the console and the time series.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Alarm {
    pub region: String,
    pub intersection: String,
    pub detector: String,
    pub fault: Fault,
    /// End of the interval in which it was found.
    pub since_ms: i64,
}

/// What became of one report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ingested {
    New,
    /// Seen before (same intersection, sequence and interval, or every detector's interval
    /// already stored): nothing changed.
    Duplicate,
    /// Older than reports already stored; filed in its place.
    Late,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum IngestError {
    #[error("detectors: not a detector report: {0}")]
    Malformed(String),
    #[error("detectors: version {0} is not supported")]
    Version(u32),
    #[error("detectors: {0}")]
    Invalid(String),
}

type Key = (String, String, String); // region, intersection, detector

/// Detector samples of many intersections, deduplicated and in time order.
#[derive(Clone, Debug, Default)]
pub struct CountStore {
    samples: BTreeMap<Key, BTreeMap<i64, Sample>>,
    /// Interval start of each sample, to know its length.
    starts: BTreeMap<(Key, i64), i64>,
    /// (interval end, seq) of the reports seen, per intersection.
    seen: BTreeMap<(String, String), BTreeSet<(i64, u64)>>,
    latest: BTreeMap<(String, String), i64>,
    faults: BTreeMap<Key, Alarm>,
    /// Detectors in fault diagnosed healthy since (the start of the interval) this time.
    healthy_since: BTreeMap<Key, i64>,
    /// Alarms raised (`true`) and cleared since [`CountStore::take_alarm_changes`] last took
    /// them.
    changes: Vec<(Alarm, bool)>,
    /// Samples older than this before the newest are forgotten.
    pub keep: Ms,
}

impl CountStore {
    pub fn new(keep: Ms) -> Self {
        CountStore {
            keep,
            ..Default::default()
        }
    }

    /// Parse and ingest a payload from the `detectors` topic.
    pub fn ingest_json(&mut self, payload: &[u8]) -> Result<Ingested, IngestError> {
        let r: DetectorReport =
            serde_json::from_slice(payload).map_err(|e| IngestError::Malformed(e.to_string()))?;
        self.ingest(&r)
    }

    /// Ingest one report. A report is checked whole before anything of it is stored.
    pub fn ingest(&mut self, r: &DetectorReport) -> Result<Ingested, IngestError> {
        if r.version != WIRE_VERSION {
            return Err(IngestError::Version(r.version));
        }
        if r.interval_end_ms <= r.interval_start_ms
            || r.interval_end_ms - r.interval_start_ms > 3_600_000
        {
            return Err(IngestError::Invalid(format!(
                "{}/{} seq {}: interval {} to {} is not 0 to 1 h long",
                r.region, r.intersection, r.seq, r.interval_start_ms, r.interval_end_ms
            )));
        }
        for (i, d) in r.detectors.iter().enumerate() {
            if !(d.occupancy.is_finite() && (0.0..=1.0).contains(&d.occupancy))
                || d.detector.is_empty()
            {
                return Err(IngestError::Invalid(format!(
                    "{}/{} seq {}: detectors[{i}]: occupancy {} is not within 0 to 1, or no id",
                    r.region, r.intersection, r.seq, d.occupancy
                )));
            }
        }
        let ix = (r.region.clone(), r.intersection.clone());
        let seen = self.seen.entry(ix.clone()).or_default();
        if !seen.insert((r.interval_end_ms, r.seq)) {
            return Ok(Ingested::Duplicate);
        }
        if seen.len() > SEEN_MAX {
            seen.pop_first();
        }
        let latest = self.latest.entry(ix.clone()).or_insert(i64::MIN);
        let late = r.interval_end_ms < *latest;
        *latest = (*latest).max(r.interval_end_ms);
        let newest = *latest;
        let mut any_new = false;
        for d in &r.detectors {
            let key = (r.region.clone(), r.intersection.clone(), d.detector.clone());
            let series = self.samples.entry(key.clone()).or_default();
            if series.contains_key(&r.interval_end_ms) {
                continue; // same interval again under another seq (a cabinet restart)
            }
            series.insert(
                r.interval_end_ms,
                Sample {
                    start: Ms(r.interval_start_ms),
                    end: Ms(r.interval_end_ms),
                    count: d.count,
                    occupancy: d.occupancy,
                    health: d.health,
                },
            );
            self.starts
                .insert((key.clone(), r.interval_end_ms), r.interval_start_ms);
            while series
                .first_key_value()
                .is_some_and(|(t, _)| *t < newest - self.keep.0)
            {
                if let Some((t, _)) = series.pop_first() {
                    self.starts.remove(&(key.clone(), t));
                }
            }
            any_new = true;
        }
        self.diagnose(&r.region, &r.intersection);
        Ok(if !any_new {
            Ingested::Duplicate
        } else if late {
            Ingested::Late
        } else {
            Ingested::New
        })
    }

    /// Samples of one detector, oldest first.
    pub fn samples(
        &self,
        region: &str,
        intersection: &str,
        detector: &str,
    ) -> impl Iterator<Item = &Sample> {
        self.samples
            .get(&(region.into(), intersection.into(), detector.into()))
            .into_iter()
            .flat_map(|m| m.values())
    }

    /// Mean flow of a detector over `[from, to)` (by interval end), veh/h, from its samples;
    /// `None` without samples or when the detector is in fault.
    pub fn flow_veh_h(
        &self,
        region: &str,
        intersection: &str,
        detector: &str,
        from: Ms,
        to: Ms,
    ) -> Option<f64> {
        let key: Key = (region.into(), intersection.into(), detector.into());
        if self.faults.contains_key(&key) {
            return None;
        }
        let series = self.samples.get(&key)?;
        let (mut n, mut ms) = (0u64, 0i64);
        for (end, s) in series.range(from.0..to.0) {
            n += s.count as u64;
            ms += end
                - self
                    .starts
                    .get(&(key.clone(), *end))
                    .copied()
                    .unwrap_or(*end);
        }
        (ms > 0).then(|| n as f64 * 3_600_000.0 / ms as f64)
    }

    /// Detectors in fault now.
    pub fn alarms(&self) -> Vec<&Alarm> {
        self.faults.values().collect()
    }

    /// The alarms raised (`true`: new, or the same detector with another fault) and cleared
    /// (`false`) since the last call, in the order it happened.
    pub fn take_alarm_changes(&mut self) -> Vec<(Alarm, bool)> {
        std::mem::take(&mut self.changes)
    }

    fn diagnose(&mut self, region: &str, intersection: &str) {
        let keys: Vec<Key> = self
            .samples
            .range((region.to_string(), intersection.to_string(), String::new())..)
            .take_while(|(k, _)| k.0 == region && k.1 == intersection)
            .map(|(k, _)| k.clone())
            .collect();
        // Flow of each detector over its last 30 minutes, for the neighbour checks.
        let window = |k: &Key| -> Vec<(i64, &Sample)> {
            let s = &self.samples[k];
            let last = s.last_key_value().map_or(0, |(t, _)| *t);
            s.range(last - 30 * 60_000 + 1..)
                .map(|(t, v)| (*t, v))
                .collect()
        };
        let mut found: Vec<(Key, Option<(Fault, i64)>)> = Vec::new();
        for k in &keys {
            let w = window(k);
            let Some((last_t, last)) = w.last().map(|(t, s)| (*t, (*s).clone())) else {
                continue;
            };
            let span_ms =
                |from: i64| last_t - self.starts.get(&(k.clone(), from)).copied().unwrap_or(from);
            let first_t = w.first().map_or(last_t, |(t, _)| *t);
            let counts: u64 = w.iter().map(|(_, s)| s.count as u64).sum();
            let covered = span_ms(first_t);
            let others_max: u64 = keys
                .iter()
                .filter(|o| *o != k)
                .map(|o| window(o).iter().map(|(_, s)| s.count as u64).sum::<u64>())
                .max()
                .unwrap_or(0);
            // Stuck on: the last 5 minutes of reports all nearly fully occupied.
            let recent: Vec<&Sample> = w
                .iter()
                .filter(|(t, _)| *t > last_t - 5 * 60_000)
                .map(|(_, s)| *s)
                .collect();
            let recent_ms = w
                .iter()
                .filter(|(t, _)| *t > last_t - 5 * 60_000)
                .map(|(t, _)| span_ms(*t).min(5 * 60_000))
                .max()
                .unwrap_or(0);
            let interval_ms = (last_t
                - self
                    .starts
                    .get(&(k.clone(), last_t))
                    .copied()
                    .unwrap_or(last_t))
            .max(1);
            let fault = if last.health != DetectorHealth::Ok {
                Some(Fault::Cabinet)
            } else if !recent.is_empty()
                && recent_ms >= 5 * 60_000 - interval_ms
                && recent.iter().all(|s| s.occupancy >= 0.95)
            {
                Some(Fault::StuckOn)
            } else if last.count as f64 * 3_600_000.0 / interval_ms as f64 > MAX_LANE_FLOW_VEH_H {
                Some(Fault::Chattering)
            } else if counts == 0 && covered >= 30 * 60_000 - interval_ms && others_max >= 20 {
                Some(Fault::StuckOff)
            } else {
                None
            };
            found.push((k.clone(), fault.map(|f| (f, last_t))));
            if fault.is_none() && self.faults.contains_key(k) {
                self.healthy_since
                    .entry(k.clone())
                    .or_insert(last_t - interval_ms);
            }
        }
        // Neighbour plausibility over the last interval, among detectors not already failed.
        let healthy: Vec<(Key, f64)> = found
            .iter()
            .filter(|(_, f)| f.is_none())
            .filter_map(|(k, _)| {
                let s = self.samples[k].last_key_value()?;
                let ms =
                    (s.0 - self.starts.get(&(k.clone(), *s.0)).copied().unwrap_or(*s.0)).max(1);
                Some((k.clone(), s.1.count as f64 * 3_600_000.0 / ms as f64))
            })
            .collect();
        if healthy.len() >= 3 {
            for (k, f) in found.iter_mut().filter(|(_, f)| f.is_none()) {
                let others: Vec<f64> = healthy
                    .iter()
                    .filter(|(o, _)| o != k)
                    .map(|(_, v)| *v)
                    .collect();
                let mean = others.iter().sum::<f64>() / others.len() as f64;
                let mine = healthy
                    .iter()
                    .find(|(o, _)| o == k)
                    .map_or(0.0, |(_, v)| *v);
                if mean >= 20.0 && (mine > 5.0 * mean + 60.0) {
                    let t = self.samples[k].last_key_value().map_or(0, |(t, _)| *t);
                    *f = Some((Fault::Implausible, t));
                }
            }
        }
        for (k, f) in found {
            match f {
                Some((fault, t)) => {
                    let entry = self.faults.entry(k.clone()).or_insert_with(|| {
                        let new = Alarm {
                            region: k.0.clone(),
                            intersection: k.1.clone(),
                            detector: k.2.clone(),
                            fault,
                            since_ms: t,
                        };
                        self.changes.push((new.clone(), true));
                        new
                    });
                    if entry.fault != fault {
                        // Another fault of the same detector: the old one cleared, the new raised.
                        self.changes.push((entry.clone(), false));
                        entry.fault = fault;
                        self.changes.push((entry.clone(), true));
                    }
                    self.healthy_since.remove(&k);
                }
                None => {
                    let last_t = self.samples[&k].last_key_value().map_or(0, |(t, _)| *t);
                    let recovered = self
                        .healthy_since
                        .get(&k)
                        .is_none_or(|since| last_t - since >= RECOVERY.0);
                    if recovered {
                        if let Some(a) = self.faults.remove(&k) {
                            self.changes.push((a, false));
                        }
                        self.healthy_since.remove(&k);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use intersections::messages::DetectorCount;

    fn report(seq: u64, start_s: i64, counts: &[(&str, u32, f64)]) -> DetectorReport {
        DetectorReport {
            version: WIRE_VERSION,
            region: "r".into(),
            intersection: "C".into(),
            seq,
            interval_start_ms: start_s * 1000,
            interval_end_ms: (start_s + 60) * 1000,
            detectors: counts
                .iter()
                .map(|(d, c, o)| DetectorCount {
                    detector: d.to_string(),
                    count: *c,
                    occupancy: *o,
                    health: DetectorHealth::Ok,
                })
                .collect(),
        }
    }

    #[test]
    fn duplicates_late_and_out_of_order_reports_count_once() {
        let mut s = CountStore::new(Ms::from_s(7200));
        assert_eq!(
            s.ingest(&report(1, 0, &[("a", 10, 0.1)])),
            Ok(Ingested::New)
        );
        assert_eq!(
            s.ingest(&report(3, 120, &[("a", 12, 0.1)])),
            Ok(Ingested::New)
        );
        assert_eq!(
            s.ingest(&report(1, 0, &[("a", 10, 0.1)])),
            Ok(Ingested::Duplicate)
        );
        assert_eq!(
            s.ingest(&report(2, 60, &[("a", 11, 0.1)])),
            Ok(Ingested::Late)
        );
        // The same interval again under a new seq (a cabinet that restarted its counter).
        assert_eq!(
            s.ingest(&report(9, 60, &[("a", 11, 0.1)])),
            Ok(Ingested::Duplicate)
        );
        let counts: Vec<u32> = s.samples("r", "C", "a").map(|x| x.count).collect();
        assert_eq!(counts, vec![10, 11, 12]);
        let f = s
            .flow_veh_h("r", "C", "a", Ms(0), Ms::from_s(10_000))
            .unwrap();
        assert!((f - 33.0 * 20.0).abs() < 1e-9, "{f}");
        // The cabinet restarted its counter: old numbers on new intervals are new reports,
        // and their re-deliveries duplicates again.
        assert_eq!(
            s.ingest(&report(1, 180, &[("a", 13, 0.1)])),
            Ok(Ingested::New)
        );
        assert_eq!(
            s.ingest(&report(2, 240, &[("a", 14, 0.1)])),
            Ok(Ingested::New)
        );
        assert_eq!(
            s.ingest(&report(1, 180, &[("a", 13, 0.1)])),
            Ok(Ingested::Duplicate)
        );
        let counts: Vec<u32> = s.samples("r", "C", "a").map(|x| x.count).collect();
        assert_eq!(counts, vec![10, 11, 12, 13, 14]);
    }

    #[test]
    fn bad_reports_are_refused_whole() {
        let mut s = CountStore::new(Ms::from_s(7200));
        let mut r = report(1, 0, &[("a", 1, 0.1), ("b", 1, 1.5)]);
        assert!(matches!(s.ingest(&r), Err(IngestError::Invalid(m)) if m.contains("detectors[1]")));
        assert_eq!(s.samples("r", "C", "a").count(), 0);
        r.detectors[1].occupancy = 0.5;
        r.interval_end_ms = r.interval_start_ms;
        assert!(s.ingest(&r).is_err());
        assert!(matches!(
            s.ingest_json(b"{}"),
            Err(IngestError::Malformed(_))
        ));
    }

    #[test]
    fn faults_are_diagnosed_and_recover() {
        let mut s = CountStore::new(Ms::from_s(7200));
        // 40 minutes: "off" never counts, "on" is occupied throughout, "chat" chatters
        // once, "x" and "y" count normally.
        for k in 0..40 {
            let chat = if k == 39 { 90 } else { 10 };
            s.ingest(&report(
                k,
                k as i64 * 60,
                &[
                    ("off", 0, 0.0),
                    ("on", 0, 1.0),
                    ("chat", chat, 0.1),
                    ("x", 10, 0.1),
                    ("y", 12, 0.12),
                ],
            ))
            .unwrap();
        }
        let faults: BTreeMap<String, Fault> = s
            .alarms()
            .iter()
            .map(|a| (a.detector.clone(), a.fault))
            .collect();
        assert_eq!(faults.get("off"), Some(&Fault::StuckOff));
        assert_eq!(faults.get("on"), Some(&Fault::StuckOn));
        assert_eq!(faults.get("chat"), Some(&Fault::Chattering));
        assert!(!faults.contains_key("x") && !faults.contains_key("y"));
        assert_eq!(
            s.flow_veh_h("r", "C", "off", Ms(0), Ms::from_s(10_000)),
            None
        );
        // "on" comes back: one healthy minute does not clear it, five in a row do.
        let back = |k: u64| {
            report(
                k,
                k as i64 * 60,
                &[
                    ("off", 0, 0.0),
                    ("on", 9, 0.1),
                    ("chat", 10, 0.1),
                    ("x", 10, 0.1),
                    ("y", 12, 0.12),
                ],
            )
        };
        for k in 40..44 {
            s.ingest(&back(k)).unwrap();
            let on = s.alarms().iter().any(|a| a.detector == "on");
            assert!(on, "cleared after {} healthy minutes", k - 39);
        }
        s.ingest(&back(44)).unwrap();
        assert!(!s.alarms().iter().any(|a| a.detector == "on"));
        // A chattering detector that comes and goes stays in fault: each relapse raises the
        // alarm at once, and it clears only after five healthy minutes in a row.
        assert!(!s.alarms().iter().any(|a| a.detector == "chat"));
        let mut relapse = back(45);
        relapse.detectors[2].count = 90;
        s.ingest(&relapse).unwrap();
        assert!(s.alarms().iter().any(|a| a.detector == "chat"));
        for k in 46..50 {
            s.ingest(&back(k)).unwrap();
            assert!(s.alarms().iter().any(|a| a.detector == "chat"));
        }
        for k in 50..52 {
            s.ingest(&report(
                k,
                k as i64 * 60,
                &[
                    ("off", 0, 0.0),
                    ("on", 9, 0.1),
                    ("chat", 10, 0.1),
                    ("x", 10, 0.1),
                    ("y", 12, 0.12),
                ],
            ))
            .unwrap();
        }
        let faults: BTreeMap<String, Fault> = s
            .alarms()
            .iter()
            .map(|a| (a.detector.clone(), a.fault))
            .collect();
        assert!(
            !faults.contains_key("on") && !faults.contains_key("chat"),
            "{faults:?}"
        );
        assert_eq!(faults.get("off"), Some(&Fault::StuckOff));
    }

    #[test]
    fn alarm_changes_name_the_raised_and_the_cleared() {
        let mut s = CountStore::new(Ms::from_s(7200));
        let at = |k: u64, chat: u32| {
            report(
                k,
                k as i64 * 60,
                &[("x", 10, 0.1), ("y", 12, 0.1), ("chat", chat, 0.1)],
            )
        };
        s.ingest(&at(0, 10)).unwrap();
        assert_eq!(s.take_alarm_changes(), vec![]);
        s.ingest(&at(1, 90)).unwrap();
        let raised = s.take_alarm_changes();
        assert_eq!(raised.len(), 1);
        assert_eq!(
            (
                raised[0].0.detector.as_str(),
                raised[0].0.fault,
                raised[0].1
            ),
            ("chat", Fault::Chattering, true)
        );
        assert_eq!(s.take_alarm_changes(), vec![], "taken once");
        // Still chattering: no change; then five healthy minutes clear it.
        s.ingest(&at(2, 90)).unwrap();
        assert_eq!(s.take_alarm_changes(), vec![]);
        for k in 3..8 {
            s.ingest(&at(k, 10)).unwrap();
        }
        let cleared = s.take_alarm_changes();
        assert_eq!(cleared.len(), 1);
        assert_eq!(
            (cleared[0].0.detector.as_str(), cleared[0].1),
            ("chat", false)
        );
    }
}
