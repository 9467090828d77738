//! Greenwave's programs onto the SUMO network a Greenwave network was imported from
//! (`greenwave sumo export --onto NET.net.xml`), so that a plan made for an imported network runs
//! in SUMO on SUMO's own network, beside SUMO's own programs, rather than on a net rebuilt from
//! the export's plain files.
//!
//! Per `<tlLogic>` of the SUMO network (its first program, as the import reads it): when all the
//! links it controls sit at one junction that Greenwave signalises, the plan's program (from
//! [`crate::export::program`]) is written under the traffic light's id with SUMO's `linkIndex`
//! numbering: each link shows the colour of the Greenwave movement from its edge to its edge.
//! A turnaround (the import leaves them out) shows the left turn from its lane as a yielding
//! green, else red; a crossing the light signals shows the walk of the pedestrian group over
//! its leg: in static programs the phases are cut where a walk starts or ends; in actuated
//! ones the crossings walk in fixed phases at the start of their stage's green, before its
//! actuated phase (crossings that cannot be timed so stay red, said in [`Onto::notes`]). A traffic light
//! over several junctions, or at a junction Greenwave imported without signals, keeps SUMO's
//! program; each such case is listed in [`Onto::kept`].
//!
//! An actuated program ([`crate::export::actuate`]) keeps its phases' bounds and `max-gap`, and
//! names its loops per SUMO lane: each lane the traffic light controls gets the loop Greenwave
//! gaps out on at the same lane of the same link (SUMO's vehicle lanes counted from the right,
//! as the import numbers them), `NO_DETECTOR` where Greenwave has none.

use std::collections::BTreeMap;

use intersections::spec::{ControlKind, Turn};
use intersections::{IntersectionIdx, Network};

use crate::export::{walked, write_tl_logic, yield_turns, Connection, Program, SumoNames};
use crate::import::{crossed_legs, read_net};
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
    /// Crossings of mapped traffic lights that stay red, with the reason.
    pub notes: Vec<String>,
}

/// SUMO's names for the links and lanes of a network imported from `sumo_net` (see
/// [`SumoNames`]): each edge under the id the import gave it, each vehicle lane under the
/// number the import gave it.
pub fn sumo_names(sumo_net: Source) -> Result<SumoNames, SumoError> {
    let x = Xml::parse(sumo_net)?;
    let s = read_net(&x)?;
    let mut names = SumoNames::default();
    for e in &s.edges {
        let id = greenwave_id(&e.id);
        for l in e.vehicle_lanes() {
            if let Some(k) = e.gw_lane(l.index) {
                names.lanes.insert((id.clone(), k), l.index);
            }
        }
        names.edges.insert(id, e.id.clone());
    }
    Ok(names)
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
    let (mut mapped, mut kept, mut notes) = (Vec::new(), Vec::new(), Vec::new());
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
        // Turnarounds, which the import leaves out, show the colour of the left turn from
        // their lane as a yielding green (`g`), as SUMO's own programs do; one held red
        // forever would hold every vehicle queued behind it.
        let mut yields = vec![false; size];
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
            if column[*k].is_none() && c.dir == 't' {
                let lane = edges
                    .get(c.from.as_str())
                    .and_then(|e| e.gw_lane(c.from_lane));
                column[*k] = conns
                    .iter()
                    .find(|gc| {
                        gc.intersection.0 == ixi
                            && net.links[gc.from.0].id == from
                            && Some(gc.from_lane) == lane
                            && net.intersections[ixi].movements[gc.movement].turn == Turn::Left
                    })
                    .and_then(|gc| gc.link_index);
                yields[*k] = column[*k].is_some();
            }
        }
        // Crossings: each SUMO crossing the light signals shows the walk of the pedestrian
        // group over the same leg ([`walked`]; where an actuated program cannot show it, every
        // crossing of the light stays red).
        let width = p.phases.first().map_or(0, |ph| ph.state.chars().count());
        let mut crossing_red = Vec::new();
        let mut walks = false;
        for c in s.crossing_links.iter().filter(|c| c.tl == tl.id) {
            let Some(cr) = s.crossings.iter().find(|k| k.id == c.crossing) else {
                continue;
            };
            let legs: Vec<String> = crossed_legs(&s.edges, cr, junction)
                .into_iter()
                .map(|(_, far)| greenwave_id(far))
                .collect();
            let group = p.walks.iter().position(|(g, _)| {
                net.intersections[ixi].groups[g.0]
                    .crossing
                    .and_then(|l| net.far_end(l, IntersectionIdx(ixi)))
                    .is_some_and(|f| legs.iter().any(|g| g == net.endpoint_id(f)))
            });
            match group {
                Some(w) => {
                    for &k in &c.link_indices {
                        column[k] = Some(width + w);
                    }
                    walks = true;
                }
                None => crossing_red.push(cr.id.clone()),
            }
        }
        let own: Vec<&Connection> = conns.iter().filter(|c| c.intersection.0 == ixi).collect();
        let walked_program = if !walks {
            None
        } else {
            let w = walked(net, p).map(|mut q| {
                yield_turns(net, &mut q, &own);
                q
            });
            if w.is_none() {
                // Every crossing of this light stays red.
                for c in s.crossing_links.iter().filter(|c| c.tl == tl.id) {
                    for &k in &c.link_indices {
                        column[k] = None;
                    }
                    crossing_red.push(c.crossing.clone());
                }
                notes.push(format!(
                    "tlLogic {:?}: the crossings stay red in its actuated program: a walk runs over several stages or the stages are skipped, which an actuated SUMO program cannot time as Greenwave does",
                    tl.id
                ));
            }
            w
        };
        if !crossing_red.is_empty() && (walked_program.is_some() || !walks) {
            crossing_red.sort();
            crossing_red.dedup();
            notes.push(format!(
                "tlLogic {:?}: crossings {} stay red: no pedestrian group of the intersection crosses their leg",
                tl.id,
                crossing_red.join(", "),
            ));
        }
        let p = walked_program.as_ref().unwrap_or(p);
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
                    .zip(&yields)
                    .map(|(c, y)| match c.and_then(|i| gw.get(i).copied()) {
                        Some('G') if *y => 'g',
                        Some(ch) => ch,
                        None => 'r',
                    })
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
        notes,
    })
}
