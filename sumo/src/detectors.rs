//! SUMO E1 induction loops (`<inductionLoop>`, `<e1Detector>` in an additional file) as
//! Greenwave detectors.
//!
//! - SUMO's E1 is a point; Greenwave's loop is 2 m long, centred on it (the export writes the
//!   middle of Greenwave's loops, so a round trip keeps `distance_m`).
//! - A loop on a link that ends at an intersection is an approach detector of that
//!   intersection: `distance_m` is its distance from the stop line (lane length minus `pos`,
//!   minus 1 m to the loop's downstream end, at least 0), `stop-line` when it is within
//!   [`STOP_LINE_ZONE_M`] of it, else `advance`.
//! - A loop on a link from an intersection to a boundary node is an `exit` detector of that
//!   intersection, `distance_m` = `pos` - 1 m (at least 0).
//! - The lane index becomes the Greenwave lane (vehicle lanes counted from the right).
//! - The id is kept (characters Greenwave does not allow become `_`, see
//!   [`crate::xml::greenwave_id`]), so SUMO's detector output maps back by the same rule.
//!
//! Other detectors (E2, E3, instant loops) are reported, not imported.

use std::collections::BTreeMap;

use intersections::spec::{DetectorKind, DetectorSpec, NetworkSpec};

use crate::import::{Mapping, STOP_LINE_ZONE_M};
use crate::xml::{greenwave_id, Source, SumoError, Xml};

/// Half the length of the loop a SUMO E1 point becomes (Greenwave's default loop is 2 m).
const HALF_LOOP_M: f64 = 1.0;

/// Split a SUMO lane id `<edge>_<index>`.
pub(crate) fn split_lane(lane: &str) -> Option<(&str, usize)> {
    let (e, i) = lane.rsplit_once('_')?;
    Some((e, i.parse().ok()?))
}

/// Read the E1 loops of an additional file into the network's intersections.
pub(crate) fn read_loops(
    src: Source,
    spec: &mut NetworkSpec,
    m: &Mapping,
    report: &mut Vec<String>,
) -> Result<(), SumoError> {
    let x = Xml::parse(src)?;
    let root = x.root(&["additional", "add"])?;
    let mut other: BTreeMap<String, usize> = BTreeMap::new();
    let mut read = 0;
    for n in root.children().filter(|n| n.is_element()) {
        let tag = n.tag_name().name();
        match tag {
            "inductionLoop" | "e1Detector" => {}
            "e2Detector"
            | "laneAreaDetector"
            | "e3Detector"
            | "entryExitDetector"
            | "instantInductionLoop"
            | "e1DetectorInstant" => {
                *other.entry(tag.to_string()).or_insert(0) += 1;
                continue;
            }
            _ => continue,
        }
        let sid = x.req(n, "id")?;
        let id = greenwave_id(sid);
        if id.is_empty() || id.len() > 64 {
            return Err(x.err_attr(
                n,
                "id",
                format!("id {sid:?} must be 1 to 64 characters for Greenwave"),
            ));
        }
        let lane = x.req(n, "lane")?;
        let Some((eid, li)) = split_lane(lane) else {
            return Err(x.err_attr(
                n,
                "lane",
                format!("{lane:?} is not a lane id (<edge>_<index>)"),
            ));
        };
        let Some(&ei) = m.edge_index.get(eid) else {
            return Err(x.err_attr(n, "lane", format!("unknown edge {eid:?}")));
        };
        let e = &m.edges[ei];
        let Some(sl) = e.lanes.iter().find(|l| l.index == li) else {
            return Err(x.err_attr(
                n,
                "lane",
                format!(
                    "lane {li} does not exist: edge {eid:?} has {} lanes",
                    e.lanes.len()
                ),
            ));
        };
        let pos = x.req_f64(n, "pos")?;
        let friendly = matches!(n.attribute("friendlyPos"), Some("true" | "1" | "True"));
        let mut p = if pos < 0.0 { sl.length + pos } else { pos };
        if !(0.0..=sl.length).contains(&p) {
            if !friendly {
                return Err(x.err_attr(
                    n,
                    "pos",
                    format!("position {pos} m is not on lane {lane:?} ({} m long); set friendlyPos=\"true\" to move it onto the lane", sl.length),
                ));
            }
            p = p.clamp(0.0, sl.length);
        }
        let where_ = format!("{}:{}", src.file, x.line(n));
        let (Some(link), Some(gl)) = (&m.link_of[ei], e.gw_lane(li)) else {
            report.push(format!(
                "{where_}: detector {sid:?} on lane {lane:?} not imported: the lane is not a vehicle lane of an imported link"
            ));
            continue;
        };
        let link_len = spec
            .links
            .iter()
            .find(|l| &l.id == link)
            .and_then(|l| l.length_m)
            .unwrap_or(sl.length);
        let (ix_id, kind, raw) = if let Some(ix) = &m.to_intersection[ei] {
            let d = sl.length - p - HALF_LOOP_M;
            let kind = if d <= STOP_LINE_ZONE_M {
                DetectorKind::StopLine
            } else {
                DetectorKind::Advance
            };
            (ix.clone(), kind, d)
        } else if let (Some(ix), true) = (&m.from_intersection[ei], m.ends_at_boundary[ei]) {
            (ix.clone(), DetectorKind::Exit, p - HALF_LOOP_M)
        } else {
            report.push(format!(
                "{where_}: detector {sid:?} not imported: its link neither enters nor leaves an intersection"
            ));
            continue;
        };
        // A 2 m loop that fits on the link.
        let distance_m = (raw.max(0.0).min(link_len - 2.0) * 100.0).round() / 100.0;
        let Some(ix) = spec.intersections.iter_mut().find(|i| i.id == ix_id) else {
            continue;
        };
        if ix.detectors.iter().any(|d| d.id == id) {
            return Err(x.err_attr(
                n,
                "id",
                format!("detector id {id:?} is used twice at intersection {ix_id:?}"),
            ));
        }
        ix.detectors.push(DetectorSpec {
            id,
            link: link.clone(),
            lane: gl,
            distance_m,
            kind,
            length_m: None,
        });
        read += 1;
    }
    report.push(format!("{}: {read} E1 detectors imported", src.file));
    for (t, k) in other {
        report.push(format!(
            "{}: {k} <{t}> detectors not imported (Greenwave models induction loops only)",
            src.file
        ));
    }
    Ok(())
}
