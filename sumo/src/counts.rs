//! SUMO E1 detector output (`<detector><interval begin end id nVehContrib occupancy .../>`) as
//! Greenwave detector reports ([`DetectorReport`], the wire message), so that `greenwave plan
//! --counts` optimizes from counts measured in SUMO (issue 5, item 3).
//!
//! - `id` maps to a detector of the network by the import's rule
//!   ([`crate::xml::greenwave_id`]: the SUMO id, characters Greenwave does not allow as `_`),
//!   or, when no single detector has that id, as `<intersection>.<detector>` (the export's
//!   loop ids); an id no intersection has is a located error;
//! - `nVehContrib` (vehicles whose back passed the loop) is the count, `occupancy` (percent)
//!   becomes a share (0 to 1; SUMO's slight excess over 100 % for a vehicle standing on the loop
//!   through the interval, up to 2 s of the interval, is taken as 100 %), `begin`/`end`
//!   (seconds) the interval in model milliseconds;
//! - one report per intersection and interval, detectors in the network's order, `seq`
//!   counting 1, 2, ... per intersection in time order, health `ok`.

use std::collections::BTreeMap;

use intersections::messages::{DetectorCount, DetectorHealth, DetectorReport, WIRE_VERSION};
use intersections::{IntersectionIdx, Ms, Network};

use crate::xml::{greenwave_id, Source, SumoError, Xml};

/// Longest interval `greenwave plan` accepts in a report.
const MAX_INTERVAL: Ms = Ms::from_s(3600);

/// Read an E1 output file into detector reports for `net`, in `region`.
pub fn counts(net: &Network, src: Source, region: &str) -> Result<Vec<DetectorReport>, SumoError> {
    let x = Xml::parse(src)?;
    let root = x.root(&["detector"])?;
    // Detector id -> (intersection, index).
    let mut index: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
    for (i, ix) in net.intersections.iter().enumerate() {
        for (d, det) in ix.detectors.iter().enumerate() {
            index.entry(det.id.as_str()).or_default().push((i, d));
        }
    }
    // (begin, end, intersection) -> (detector index, count)
    let mut groups: BTreeMap<(Ms, Ms, usize), Vec<(usize, DetectorCount)>> = BTreeMap::new();
    for n in root.children().filter(|n| n.has_tag_name("interval")) {
        let sid = x.req(n, "id")?;
        let id = greenwave_id(sid);
        let (ix, di) = match (index.get(id.as_str()).map(Vec::as_slice), qualified(net, &id)) {
            (Some([one]), _) => *one,
            (_, Some(q)) => q,
            (Some(several), None) => {
                let names: Vec<&str> = several
                    .iter()
                    .map(|(i, _)| net.intersections[*i].id.as_str())
                    .collect();
                return Err(x.err_attr(
                    n,
                    "id",
                    format!("detector {id:?} is used by several intersections ({}); the SUMO output cannot say which (name the loop <intersection>.<detector>)", names.join(", ")),
                ));
            }
            (None, None) => {
                return Err(x.err_attr(
                    n,
                    "id",
                    format!("unknown detector {sid:?}: no intersection of network {:?} has a detector {id:?}", net.name),
                ))
            }
        };
        let begin = x.req_time(n, "begin")?;
        let end = x.req_time(n, "end")?;
        let (Some(b), Some(e)) = (Ms::from_secs_f64(begin), Ms::from_secs_f64(end)) else {
            return Err(x.err_attr(n, "end", "times out of range"));
        };
        if b < Ms::ZERO || e <= b {
            return Err(x.err_attr(
                n,
                "end",
                format!("interval {begin} to {end} s is empty or negative"),
            ));
        }
        if e - b > MAX_INTERVAL {
            return Err(x.err_attr(
                n,
                "end",
                format!("interval {begin} to {end} s is longer than 1 h; write the E1 output with freq=\"3600\" or less"),
            ));
        }
        let c = x.req_f64(n, "nVehContrib")?;
        if c < 0.0 || (c - c.round()).abs() > 1e-6 || c > u32::MAX as f64 {
            return Err(x.err_attr(n, "nVehContrib", format!("{c} is not a vehicle count")));
        }
        let occ = x.req_f64(n, "occupancy")?;
        // SUMO reports a little over 100 % for a vehicle that stands on the loop through the
        // interval (seen: 100.33 % over 300 s, one 1 s step counted at the interval's edge);
        // up to 2 s of the interval over is taken as 100 %, more is an error.
        let allowed = 100.0 * (1.0 + 2.0 / (end - begin));
        if !(0.0..=allowed + 1e-6).contains(&occ) {
            return Err(x.err_attr(
                n,
                "occupancy",
                format!(
                    "{occ} % is outside 0 to 100 (SUMO's own excess at an interval's edges, up to {allowed:.2} % here, is taken as 100 %)"
                ),
            ));
        }
        let occ = occ.min(100.0);
        let list = groups.entry((b, e, ix)).or_default();
        if list.iter().any(|(d, _)| *d == di) {
            return Err(x.err(
                n,
                format!("detector {sid:?} has two intervals from {begin} to {end} s"),
            ));
        }
        list.push((
            di,
            DetectorCount {
                detector: net.intersections[ix].detectors[di].id.clone(),
                count: c.round() as u32,
                occupancy: ((occ / 100.0) * 1e6).round().min(1e6) / 1e6,
                health: DetectorHealth::Ok,
            },
        ));
    }
    let mut seq: BTreeMap<usize, u64> = BTreeMap::new();
    let mut out = Vec::new();
    for ((b, e, ix), mut list) in groups {
        list.sort_by_key(|(d, _)| *d);
        let s = seq.entry(ix).or_insert(0);
        *s += 1;
        out.push(DetectorReport {
            version: WIRE_VERSION,
            region: region.to_string(),
            intersection: net.intersections[IntersectionIdx(ix).0].id.clone(),
            seq: *s,
            interval_start_ms: b.0,
            interval_end_ms: e.0,
            detectors: list.into_iter().map(|(_, c)| c).collect(),
        });
    }
    Ok(out)
}

/// A detector named `<intersection>.<detector>` (the ids `greenwave sumo export` gives its E1
/// loops, since detector ids are unique per intersection only): (intersection, index).
fn qualified(net: &Network, id: &str) -> Option<(usize, usize)> {
    id.match_indices('.').find_map(|(k, _)| {
        let (ix, det) = (&id[..k], &id[k + 1..]);
        let i = net.intersections.iter().position(|x| x.id == ix)?;
        let d = net.intersections[i]
            .detectors
            .iter()
            .position(|d| d.id == det)?;
        Some((i, d))
    })
}

/// Reports as a JSON array, one report per line (what `greenwave plan --counts` reads).
pub fn counts_json(reports: &[DetectorReport]) -> Result<String, serde_json::Error> {
    let mut s = String::from("[\n");
    for (k, r) in reports.iter().enumerate() {
        s.push_str(&serde_json::to_string(r)?);
        if k + 1 < reports.len() {
            s.push(',');
        }
        s.push('\n');
    }
    s.push_str("]\n");
    Ok(s)
}
