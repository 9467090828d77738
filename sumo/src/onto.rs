//! Greenwave's programs onto the SUMO network a Greenwave network was imported from
//! (`greenwave sumo export --onto NET.net.xml`), so that a plan made for an imported network runs
//! in SUMO on SUMO's own network, beside SUMO's own programs, rather than on a net rebuilt from
//! the export's plain files.
//!
//! Per `<tlLogic>` of the SUMO network (its first program, as the import reads it): when all the
//! links it controls sit at one junction that Greenwave signalises, the plan's program (from
//! [`crate::export::program`]) is written under the traffic light's id with SUMO's `linkIndex`
//! numbering: each link shows the colour of the Greenwave movement from its edge to its edge.
//! Links without a movement (turnarounds, which the import leaves out) stay red. A traffic light
//! over several junctions, or at a junction Greenwave imported without signals, keeps SUMO's
//! program; each such case is listed in [`Onto::kept`].
//!
//! An actuated program ([`crate::export::actuate`]) keeps its phases' bounds and `max-gap`, and
//! names its loops per SUMO lane: each lane the traffic light controls gets the loop Greenwave
//! gaps out on at the same lane of the same link (SUMO's vehicle lanes counted from the right,
//! as the import numbers them), `NO_DETECTOR` where Greenwave has none.

use std::collections::BTreeMap;

use intersections::spec::ControlKind;
use intersections::Network;

use crate::export::{write_tl_logic, Connection, Program};
use crate::import::read_net;
use crate::xml::{greenwave_id, Source, SumoError, Xml};

/// Programs mapped onto a SUMO network.
#[derive(Clone, Debug, PartialEq)]
pub struct Onto {
    /// `sumo -a` additional file: one `<tlLogic>` per mapped traffic light.
    pub additional: String,
    /// Ids of the traffic lights that run Greenwave's program.
    pub mapped: Vec<String>,
    /// Traffic lights that keep SUMO's program, with the reason.
    pub kept: Vec<String>,
}

/// Map `programs` (over `conns`, as [`crate::export::export`] made them for `net`) onto the
/// traffic lights of the SUMO network `sumo_net`, under `program_id`.
pub fn programs_onto(
    sumo_net: Source,
    net: &Network,
    programs: &[Program],
    conns: &[Connection],
    program_id: &str,
) -> Result<Onto, SumoError> {
    let x = Xml::parse(sumo_net)?;
    let s = read_net(&x)?;
    let edge_to: BTreeMap<&str, &str> = s
        .edges
        .iter()
        .map(|e| (e.id.as_str(), e.to.as_str()))
        .collect();
    let edges: BTreeMap<&str, &crate::import::SEdge> =
        s.edges.iter().map(|e| (e.id.as_str(), e)).collect();
    let mut additional = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- Greenwave's programs on SUMO's network (load with sumo -a), written by `greenwave sumo export` (option onto) -->\n<additional>\n",
    );
    let (mut mapped, mut kept) = (Vec::new(), Vec::new());
    for tl in &s.tls {
        let links: Vec<_> = s
            .conns
            .iter()
            .filter_map(|c| match (&c.tl, c.link_index) {
                (Some(t), Some(k)) if *t == tl.id => Some((k, c)),
                _ => None,
            })
            .collect();
        let mut junctions: Vec<&str> = links
            .iter()
            .filter_map(|(_, c)| edge_to.get(c.from.as_str()).copied())
            .collect();
        junctions.sort_unstable();
        junctions.dedup();
        let [junction] = junctions[..] else {
            kept.push(format!(
                "tlLogic {:?}: controls {} junctions ({}); SUMO's program kept",
                tl.id,
                junctions.len(),
                junctions.join(", ")
            ));
            continue;
        };
        let gid = greenwave_id(junction);
        let Some(ixi) = net.intersections.iter().position(|ix| ix.id == gid) else {
            kept.push(format!(
                "tlLogic {:?}: junction {junction:?} is not an intersection of the network; SUMO's program kept",
                tl.id
            ));
            continue;
        };
        if net.intersections[ixi].control != ControlKind::Signal {
            kept.push(format!(
                "tlLogic {:?}: junction {junction:?} was imported without signals; SUMO's program kept",
                tl.id
            ));
            continue;
        }
        let Some(p) = programs.iter().find(|p| p.intersection.0 == ixi) else {
            kept.push(format!(
                "tlLogic {:?}: no program for intersection {gid:?}; SUMO's program kept",
                tl.id
            ));
            continue;
        };
        let size = tl.phases[0].state.len();
        // Column of each SUMO link in Greenwave's state strings (None: stays red).
        let mut column: Vec<Option<usize>> = vec![None; size];
        for (k, c) in &links {
            let (from, to) = (greenwave_id(&c.from), greenwave_id(&c.to));
            column[*k] = conns
                .iter()
                .find(|gc| {
                    gc.intersection.0 == ixi
                        && net.links[gc.from.0].id == from
                        && net.links[gc.to.0].id == to
                })
                .and_then(|gc| gc.link_index);
        }
        // The loop of each SUMO lane the light controls (actuated programs).
        let lanes: Option<Vec<(String, Option<String>)>> = p.actuation.as_ref().map(|a| {
            let mut lanes: BTreeMap<String, Option<String>> = BTreeMap::new();
            for (_, c) in &links {
                let gw_lane = edges
                    .get(c.from.as_str())
                    .and_then(|e| e.gw_lane(c.from_lane));
                let from = greenwave_id(&c.from);
                let det = a
                    .lane_loops
                    .iter()
                    .find(|(l, k, _)| net.links[l.0].id == from && Some(*k) == gw_lane)
                    .and_then(|(_, _, d)| d.clone());
                lanes.insert(format!("{}_{}", c.from, c.from_lane), det);
            }
            lanes.into_iter().collect()
        });
        write_tl_logic(
            &mut additional,
            &tl.id,
            p,
            program_id,
            lanes.as_deref(),
            |ph| {
                let gw: Vec<char> = ph.state.chars().collect();
                column
                    .iter()
                    .map(|c| c.and_then(|i| gw.get(i).copied()).unwrap_or('r'))
                    .collect()
            },
        );
        mapped.push(tl.id.clone());
    }
    additional.push_str("</additional>\n");
    Ok(Onto {
        additional,
        mapped,
        kept,
    })
}
