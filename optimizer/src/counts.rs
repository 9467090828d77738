//! Detector counts as the offline planner reads them: `DetectorReport` JSON messages (one per
//! line, or one JSON array of them) or a CSV of counts per detector and interval.
//!
//! CSV: a header line naming the columns, then one row per detector and interval:
//!
//! ```text
//! detector,interval_start_s,interval_end_s,count[,occupancy][,intersection]
//! W_stop_0,0,900,212,0.18
//! ```
//!
//! Columns may come in any order; `occupancy` (0 to 1) and `intersection` are optional. A
//! detector id that several intersections use needs the `intersection` column. Times are
//! seconds of model time (the simulator's clock; for a real day, seconds since midnight).
//! JSON reports carry their own `interval_start_ms` / `interval_end_ms` (Unix epoch ms, or
//! model ms); the planner only uses their differences and their time of day.
//!
//! A record identical to one already read (same intersection, detector, interval, count and
//! occupancy) is a re-delivery and counts once, as in [`crate::ingest`]. The same detector and
//! interval with another count or occupancy, or an interval that overlaps another of the same
//! detector, is an error that names the line of the other.
//!
//! Every problem is reported at once, located as `file:line: field: what`.

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};

use intersections::diag::{Diagnostic, Diagnostics, FieldPath};
use intersections::messages::{DetectorReport, WIRE_VERSION};
use intersections::{IntersectionIdx, Ms, Network};

/// One detector's count over one interval, resolved against a network.
#[derive(Clone, Debug, PartialEq)]
pub struct CountRecord {
    pub intersection: IntersectionIdx,
    /// Index into the intersection's detectors.
    pub detector: usize,
    pub start: Ms,
    pub end: Ms,
    pub count: u32,
    /// Share of the interval the loop was occupied, when known.
    pub occupancy: Option<f64>,
}

/// Most plausible flow over one loop, veh/h (as [`crate::ingest::MAX_LANE_FLOW_VEH_H`]).
const MAX_FLOW_VEH_H: f64 = crate::ingest::MAX_LANE_FLOW_VEH_H;

fn diag(file: &str, line: usize, path: FieldPath, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        line: Some(line),
        path,
        message: message.into(),
    }
}

/// How a format writes its times, for messages: CSV in seconds, JSON reports in ms.
#[derive(Clone, Copy)]
enum TimeUnit {
    S,
    Ms,
}

impl TimeUnit {
    fn interval(self, start: Ms, end: Ms) -> String {
        match self {
            TimeUnit::S => format!("{} to {} s", start.as_secs_f64(), end.as_secs_f64()),
            TimeUnit::Ms => format!("{} to {} ms", start.0, end.0),
        }
    }
}

/// Why a record cannot be taken beside those already read.
enum Clash {
    /// The same interval with another count.
    Count(String),
    /// The same interval and count with another occupancy.
    Occupancy(String),
    /// An interval that overlaps another of the same detector.
    Interval(String),
}

/// A record already read: where its interval ends, what it said, and its line.
struct SeenRecord {
    end: Ms,
    count: u32,
    occupancy: Option<f64>,
    line: usize,
}

/// The records read so far, and beside them, per detector and interval start, the line each
/// came from (`CountRecord` does not carry lines). Their intervals never overlap.
#[derive(Default)]
struct Records {
    out: Vec<CountRecord>,
    seen: BTreeMap<(IntersectionIdx, usize), BTreeMap<Ms, SeenRecord>>,
}

impl Records {
    /// Takes `r`, read at `line`, unless it repeats a record already read (a re-delivery,
    /// counted once); refuses it when it clashes with one. `name` is the detector's id, for
    /// messages.
    fn admit(
        &mut self,
        r: CountRecord,
        line: usize,
        name: &str,
        unit: TimeUnit,
    ) -> Result<(), Clash> {
        let series = self.seen.entry((r.intersection, r.detector)).or_default();
        let here = unit.interval(r.start, r.end);
        // The intervals read are disjoint, so `r` overlaps one of them only if it overlaps the
        // last one starting at or before it, or the first one starting after it.
        let before = series.range(..=r.start).next_back();
        let after = series.range((Excluded(r.start), Unbounded)).next();
        if let Some((&s, o)) = before {
            if s == r.start && o.end == r.end {
                if o.count != r.count {
                    return Err(Clash::Count(format!(
                        "{} vehicles, but detector {name:?} over {here} was given at line {} with count {}",
                        r.count, o.line, o.count
                    )));
                }
                if o.occupancy != r.occupancy {
                    let show = |x: Option<f64>| x.map_or("none".to_string(), |x| x.to_string());
                    return Err(Clash::Occupancy(format!(
                        "{}, but detector {name:?} over {here} was given at line {} with occupancy {}",
                        show(r.occupancy),
                        o.line,
                        show(o.occupancy)
                    )));
                }
                return Ok(());
            }
        }
        let overlapping = before
            .filter(|(_, o)| o.end > r.start)
            .or(after.filter(|(s, _)| **s < r.end));
        if let Some((&s, o)) = overlapping {
            return Err(Clash::Interval(format!(
                "interval {here} of detector {name:?} overlaps {} given at line {}",
                unit.interval(s, o.end),
                o.line
            )));
        }
        series.insert(
            r.start,
            SeenRecord {
                end: r.end,
                count: r.count,
                occupancy: r.occupancy,
                line,
            },
        );
        self.out.push(r);
        Ok(())
    }
}

/// Detector ids of a network: id -> every (intersection, index) that uses it.
fn detector_index(net: &Network) -> BTreeMap<&str, Vec<(IntersectionIdx, usize)>> {
    let mut m: BTreeMap<&str, Vec<(IntersectionIdx, usize)>> = BTreeMap::new();
    for (i, ix) in net.intersections.iter().enumerate() {
        for (d, det) in ix.detectors.iter().enumerate() {
            m.entry(det.id.as_str())
                .or_default()
                .push((IntersectionIdx(i), d));
        }
    }
    m
}

/// Read counts from a file's text: JSON (`[` or `{` first) or CSV. `file` names it in errors.
pub fn parse_counts(
    net: &Network,
    file: &str,
    text: &str,
) -> Result<Vec<CountRecord>, Diagnostics> {
    let first = text.trim_start().chars().next();
    match first {
        Some('[') | Some('{') => parse_reports(net, file, text),
        None => Err(Diagnostics(vec![diag(
            file,
            1,
            FieldPath::root(),
            "no counts: the file is empty",
        )])),
        _ => parse_csv(net, file, text),
    }
}

/// Records from reports already parsed (the simulator's detectors, the MQTT ingest).
pub fn records_from_reports(
    net: &Network,
    reports: &[DetectorReport],
) -> Result<Vec<CountRecord>, Diagnostics> {
    let mut records = Records::default();
    let mut diags = Vec::new();
    for (k, r) in reports.iter().enumerate() {
        check_report(
            net,
            "reports",
            k + 1,
            &FieldPath::root().index(k),
            r,
            &mut records,
            &mut diags,
        );
    }
    if diags.is_empty() {
        Ok(records.out)
    } else {
        Err(Diagnostics(diags))
    }
}

fn check_report(
    net: &Network,
    file: &str,
    line: usize,
    base: &FieldPath,
    r: &DetectorReport,
    records: &mut Records,
    diags: &mut Vec<Diagnostic>,
) {
    if r.version != WIRE_VERSION {
        diags.push(diag(
            file,
            line,
            base.key("version"),
            format!(
                "version {} is not supported (this build speaks {WIRE_VERSION})",
                r.version
            ),
        ));
        return;
    }
    let Some(ix) = net.intersection(&r.intersection) else {
        diags.push(diag(
            file,
            line,
            base.key("intersection"),
            format!(
                "unknown intersection {:?} in network {:?}",
                r.intersection, net.name
            ),
        ));
        return;
    };
    let (start, end) = (Ms(r.interval_start_ms), Ms(r.interval_end_ms));
    if end <= start || end - start > Ms::from_s(3600) {
        diags.push(diag(
            file,
            line,
            base.key("interval_end_ms"),
            format!(
                "interval {} to {} ms must be more than 0 and at most 1 h long",
                r.interval_start_ms, r.interval_end_ms
            ),
        ));
        return;
    }
    let dets = &net.intersections[ix.0].detectors;
    for (j, d) in r.detectors.iter().enumerate() {
        let p = base.key("detectors").index(j);
        let Some(di) = dets.iter().position(|x| x.id == d.detector) else {
            diags.push(diag(
                file,
                line,
                p.key("detector"),
                format!(
                    "intersection {:?} has no detector {:?}",
                    r.intersection, d.detector
                ),
            ));
            continue;
        };
        if !(d.occupancy.is_finite() && (0.0..=1.0).contains(&d.occupancy)) {
            diags.push(diag(
                file,
                line,
                p.key("occupancy"),
                format!("{} is not within 0 to 1", d.occupancy),
            ));
            continue;
        }
        if let Some(msg) = implausible(d.count, start, end) {
            diags.push(diag(file, line, p.key("count"), msg));
            continue;
        }
        if d.health != intersections::messages::DetectorHealth::Ok {
            // The cabinet says the loop is not to be trusted: its count is left out, and the
            // estimator falls back on the other detectors and on history.
            continue;
        }
        let rec = CountRecord {
            intersection: ix,
            detector: di,
            start,
            end,
            count: d.count,
            occupancy: Some(d.occupancy),
        };
        match records.admit(rec, line, &d.detector, TimeUnit::Ms) {
            Ok(()) => {}
            Err(Clash::Count(m)) => diags.push(diag(file, line, p.key("count"), m)),
            Err(Clash::Occupancy(m)) => diags.push(diag(file, line, p.key("occupancy"), m)),
            Err(Clash::Interval(m)) => {
                diags.push(diag(file, line, base.key("interval_start_ms"), m))
            }
        }
    }
}

fn implausible(count: u32, start: Ms, end: Ms) -> Option<String> {
    let hours = (end - start).as_secs_f64() / 3600.0;
    let flow = count as f64 / hours;
    (flow > MAX_FLOW_VEH_H).then(|| {
        format!(
            "{count} vehicles in {} is {flow:.0} veh/h, more than a lane can carry ({MAX_FLOW_VEH_H:.0})",
            end - start
        )
    })
}

/// Byte offsets of the top-level elements of a JSON array (strings and nesting respected).
fn array_elements(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut in_str = false;
    let mut esc = false;
    let mut start = None;
    for (i, &c) in b.iter().enumerate() {
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
            continue;
        }
        match c {
            b'"' => {
                in_str = true;
                if depth == 1 && start.is_none() {
                    start = Some(i);
                }
            }
            b'[' | b'{' => {
                if depth == 1 && start.is_none() {
                    start = Some(i);
                }
                depth += 1;
            }
            b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    if let Some(s) = start.take() {
                        out.push((s, i));
                    }
                }
            }
            b',' if depth == 1 => {
                if let Some(s) = start.take() {
                    out.push((s, i));
                }
            }
            c if depth == 1 && start.is_none() && !c.is_ascii_whitespace() => start = Some(i),
            _ => {}
        }
    }
    out
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn parse_reports(net: &Network, file: &str, text: &str) -> Result<Vec<CountRecord>, Diagnostics> {
    let mut diags = Vec::new();
    let mut records = Records::default();
    // (first line of the value, its text, its field path)
    let mut values: Vec<(usize, &str, FieldPath)> = Vec::new();
    if text.trim_start().starts_with('[') {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
            return Err(Diagnostics(vec![diag(
                file,
                e.line().max(1),
                FieldPath::root(),
                format!("not valid JSON: {e}"),
            )]));
        }
        for (k, (s, e)) in array_elements(text).into_iter().enumerate() {
            values.push((line_of(text, s), &text[s..e], FieldPath::root().index(k)));
        }
    } else {
        for (n, l) in text.lines().enumerate() {
            if !l.trim().is_empty() {
                values.push((n + 1, l, FieldPath::root()));
            }
        }
    }
    for (line, v, base) in values {
        let mut de = serde_json::Deserializer::from_str(v);
        match serde_path_to_error::deserialize::<_, DetectorReport>(&mut de) {
            Ok(r) => check_report(net, file, line, &base, &r, &mut records, &mut diags),
            Err(e) => {
                let mut path = base.clone();
                path.0.extend(FieldPath::parse(&e.path().to_string()).0);
                let inner = e.into_inner();
                diags.push(diag(
                    file,
                    line + inner.line().saturating_sub(1),
                    path,
                    format!("not a detector report: {inner}"),
                ));
            }
        }
    }
    if diags.is_empty() {
        Ok(records.out)
    } else {
        Err(Diagnostics(diags))
    }
}

const CSV_COLUMNS: [&str; 6] = [
    "detector",
    "interval_start_s",
    "interval_end_s",
    "count",
    "occupancy",
    "intersection",
];

fn parse_csv(net: &Network, file: &str, text: &str) -> Result<Vec<CountRecord>, Diagnostics> {
    let index = detector_index(net);
    let mut diags = Vec::new();
    let mut records = Records::default();
    let mut lines = text.lines().enumerate().filter(|(_, l)| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    });
    let Some((hn, header)) = lines.next() else {
        return Err(Diagnostics(vec![diag(
            file,
            1,
            FieldPath::root(),
            "no header line",
        )]));
    };
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let mut col: BTreeMap<&str, usize> = BTreeMap::new();
    for (k, n) in names.iter().enumerate() {
        if !CSV_COLUMNS.contains(n) {
            diags.push(diag(
                file,
                hn + 1,
                FieldPath::root().key(n),
                format!("unknown column; expected {}", CSV_COLUMNS.join(", ")),
            ));
        } else if col.insert(n, k).is_some() {
            diags.push(diag(
                file,
                hn + 1,
                FieldPath::root().key(n),
                "column given twice",
            ));
        }
    }
    for need in &CSV_COLUMNS[..4] {
        if !col.contains_key(need) {
            diags.push(diag(
                file,
                hn + 1,
                FieldPath::root().key(need),
                "missing column",
            ));
        }
    }
    if !diags.is_empty() {
        return Err(Diagnostics(diags));
    }
    for (n, l) in lines {
        let line = n + 1;
        let cells: Vec<&str> = l.split(',').map(str::trim).collect();
        if cells.len() != names.len() {
            diags.push(diag(
                file,
                line,
                FieldPath::root(),
                format!("{} cells, the header has {}", cells.len(), names.len()),
            ));
            continue;
        }
        let cell = |name: &str| col.get(name).map(|&k| cells[k]);
        let f = |name: &str| FieldPath::root().key(name);
        let mut bad = false;
        let mut num = |name: &str| -> Option<f64> {
            let c = cell(name)?;
            if c.is_empty() && name == "occupancy" {
                return None;
            }
            match c.parse::<f64>() {
                Ok(v) if v.is_finite() => Some(v),
                _ => {
                    diags.push(diag(file, line, f(name), format!("{c:?} is not a number")));
                    bad = true;
                    None
                }
            }
        };
        let start_s = num("interval_start_s");
        let end_s = num("interval_end_s");
        let count = num("count");
        let occupancy = num("occupancy");
        if bad {
            continue;
        }
        let (Some(start_s), Some(end_s), Some(count)) = (start_s, end_s, count) else {
            continue;
        };
        let det = cell("detector").unwrap_or_default();
        let place = match (
            cell("intersection").filter(|s| !s.is_empty()),
            index.get(det),
        ) {
            (_, None) => {
                diags.push(diag(
                    file,
                    line,
                    f("detector"),
                    format!("no detector {det:?} in network {:?}", net.name),
                ));
                continue;
            }
            (Some(ix), Some(places)) => {
                match places.iter().find(|(i, _)| net.intersections[i.0].id == ix) {
                    Some(p) => *p,
                    None => {
                        diags.push(diag(
                            file,
                            line,
                            f("intersection"),
                            format!("intersection {ix:?} has no detector {det:?}"),
                        ));
                        continue;
                    }
                }
            }
            (None, Some(places)) if places.len() > 1 => {
                diags.push(diag(
                    file,
                    line,
                    f("detector"),
                    format!(
                        "detector {det:?} is at {} intersections; add an intersection column",
                        places.len()
                    ),
                ));
                continue;
            }
            (None, Some(places)) => places[0],
        };
        let (Some(start), Some(end)) = (Ms::from_secs_f64(start_s), Ms::from_secs_f64(end_s))
        else {
            continue;
        };
        if end <= start || end - start > Ms::from_s(3600) {
            diags.push(diag(
                file,
                line,
                f("interval_end_s"),
                format!("interval {start_s} to {end_s} s must be more than 0 and at most 1 h long"),
            ));
            continue;
        }
        if count < 0.0 || count.fract() != 0.0 || count > u32::MAX as f64 {
            diags.push(diag(
                file,
                line,
                f("count"),
                format!("{count} is not a whole number of vehicles"),
            ));
            continue;
        }
        if let Some(msg) = implausible(count as u32, start, end) {
            diags.push(diag(file, line, f("count"), msg));
            continue;
        }
        if let Some(o) = occupancy {
            if !(0.0..=1.0).contains(&o) {
                diags.push(diag(
                    file,
                    line,
                    f("occupancy"),
                    format!("{o} is not within 0 to 1"),
                ));
                continue;
            }
        }
        let rec = CountRecord {
            intersection: place.0,
            detector: place.1,
            start,
            end,
            count: count as u32,
            occupancy,
        };
        match records.admit(rec, line, det, TimeUnit::S) {
            Ok(()) => {}
            Err(Clash::Count(m)) => diags.push(diag(file, line, f("count"), m)),
            Err(Clash::Occupancy(m)) => diags.push(diag(file, line, f("occupancy"), m)),
            Err(Clash::Interval(m)) => diags.push(diag(file, line, f("interval_start_s"), m)),
        }
    }
    if diags.is_empty() {
        Ok(records.out)
    } else {
        Err(Diagnostics(diags))
    }
}

/// The records as CSV (the format [`parse_counts`] reads), for examples and tests.
pub fn to_csv(net: &Network, records: &[CountRecord]) -> String {
    let mut s =
        String::from("intersection,detector,interval_start_s,interval_end_s,count,occupancy\n");
    for r in records {
        let ix = &net.intersections[r.intersection.0];
        s.push_str(&format!(
            "{},{},{},{},{},{}\n",
            ix.id,
            ix.detectors[r.detector].id,
            r.start.as_secs_f64(),
            r.end.as_secs_f64(),
            r.count,
            r.occupancy.map_or(String::new(), |o| format!("{o:.4}"))
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(detector: usize, start_s: i64, end_s: i64, count: u32, occ: Option<f64>) -> CountRecord {
        CountRecord {
            intersection: IntersectionIdx(0),
            detector,
            start: Ms::from_s(start_s),
            end: Ms::from_s(end_s),
            count,
            occupancy: occ,
        }
    }

    /// Touching intervals and other detectors are no clash; a repeat is taken once; a missing
    /// occupancy differs from a given one; an interval inside another clashes with it.
    #[test]
    fn records_count_repeats_once_and_refuse_clashes() {
        let mut r = Records::default();
        let admit = |r: &mut Records, x: CountRecord, line| r.admit(x, line, "d", TimeUnit::S);
        assert!(admit(&mut r, rec(0, 0, 900, 10, Some(0.2)), 2).is_ok());
        assert!(admit(&mut r, rec(0, 900, 1800, 10, None), 3).is_ok());
        assert!(admit(&mut r, rec(1, 0, 900, 12, None), 4).is_ok());
        assert!(admit(&mut r, rec(0, 0, 900, 10, Some(0.2)), 5).is_ok());
        assert_eq!(r.out.len(), 3);
        match admit(&mut r, rec(0, 900, 1800, 10, Some(0.1)), 6) {
            Err(Clash::Occupancy(m)) => assert_eq!(
                m,
                "0.1, but detector \"d\" over 900 to 1800 s was given at line 3 with occupancy none"
            ),
            _ => panic!("another occupancy taken"),
        }
        match admit(&mut r, rec(0, 100, 200, 1, None), 7) {
            Err(Clash::Interval(m)) => assert_eq!(
                m,
                "interval 100 to 200 s of detector \"d\" overlaps 0 to 900 s given at line 2"
            ),
            _ => panic!("an interval inside another taken"),
        }
        assert_eq!(r.out.len(), 3);
    }
}
