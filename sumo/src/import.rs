//! A SUMO network (`.net.xml`), its demand (routes, trips, flows) and its E1 induction loops as
//! a Greenwave network and demand (issue 5, item 1). Pure: texts in, file specs and a report
//! out; the caller reads and writes the files.
//!
//! What maps to what (docs/sumo.md has the full table):
//! - internal edges and junctions (`function="internal"`, ids starting with `:`) and walking
//!   areas are skipped;
//! - a junction whose connections are all turnarounds (or that has none), such as a dead end,
//!   becomes a **boundary node**, where traffic enters and leaves;
//! - a junction whose connections a `<tlLogic>` controls becomes a **signalised
//!   intersection**; every other junction a **priority junction**;
//! - an edge becomes a **link**: its vehicle lanes (lanes that allow passenger cars, renumbered
//!   from the right), their mean length and their highest speed;
//! - the connections between the same two edges become one **movement** (`dir` gives the turn);
//! - links of a traffic light that show the same colour in every phase (`G`, `g` and `s` count
//!   as green, `y` as yellow, `u` as red-yellow, `r` as red) form one **signal group**; it is
//!   permissive when any of its links shows `g` or `s` (its turns yield);
//! - each phase without yellow or red-yellow whose green groups are not a strict subset of both
//!   neighbouring such phases is a **stage** (the green groups); the other phases are
//!   interstages. The program becomes the **default plan** `sumo` with SUMO's greens,
//!   interstages, cycle and offset, lengthened where Greenwave's safety rules (minimum greens,
//!   intergreens from geometry, cycle bounds) need more time, each lengthening reported;
//! - the pedestrian crossings a traffic light signals become **pedestrian groups** in the
//!   stages SUMO shows them green in, one per leg and set of stages ([`draft_crossings`]);
//! - E1 induction loops become **detectors** (see [`detectors`]); without them a stop-line and an
//!   advance detector are placed on every lane of every signalised approach.
//!
//! Whatever cannot be mapped is reported, never dropped silently: a traffic light whose program
//! Greenwave cannot run safely as it is (links shown off, one movement with lanes on different
//! signals, stages whose groups conflict in Greenwave's geometry) is imported as a priority
//! junction and the reason reported.

use std::collections::{BTreeMap, BTreeSet};

use intersections::diag::Seg;
use intersections::plan;
use intersections::spec::{
    ControlKind, DemandSpec, DetectorKind, DetectorSpec, GroupKind, IntersectionSpec, LinkSpec,
    MovementSpec, NetworkSpec, NodeSpec, PlanSpec, Protection, SafetySpec, SignalGroupSpec,
    StageSpec, StageTimeSpec, Turn,
};
use intersections::{Ms, Network};
use roxmltree::Node;

use crate::xml::{greenwave_id, Source, SumoError, Xml};

/// How to import.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportOptions {
    /// The network's name (file stem of the output).
    pub name: String,
    /// Demand slice length, seconds.
    pub slice_s: f64,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            name: "imported".into(),
            slice_s: 900.0,
        }
    }
}

/// Id of the default plan written for every traffic light.
pub const PLAN_ID: &str = "sumo";
/// Distance of placed stop-line detectors from the stop line, metres.
pub const STOP_LINE_DISTANCE_M: f64 = 1.0;
/// Distance of placed advance detectors from the stop line, metres.
pub const ADVANCE_DISTANCE_M: f64 = 50.0;
/// A loop closer than this to the stop line is a stop-line detector, else an advance one.
pub const STOP_LINE_ZONE_M: f64 = 15.0;

/// How one traffic-light junction was imported.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalImport {
    /// Greenwave id of the intersection.
    pub intersection: String,
    /// SUMO id of the traffic light and its program.
    pub tls: String,
    pub program_id: String,
    /// Controlled links (connections with a linkIndex) at this junction.
    pub links: usize,
    /// SUMO's cycle (sum of the phase durations).
    pub sumo_cycle: Ms,
    /// The imported plan's cycle; `None` when the junction was imported without signals.
    pub cycle: Option<Ms>,
    /// SUMO's timing as read, in the plan's stage order: (green, interstage after it). Empty
    /// when the program could not be mapped to stages.
    pub sumo_plan: Vec<(Ms, Ms)>,
    /// Every change made to SUMO's timing to meet Greenwave's safety rules.
    pub lengthened: Vec<String>,
}

/// The result of an import.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    pub network: NetworkSpec,
    /// Present when route files were given.
    pub demand: Option<DemandSpec>,
    pub signals: Vec<SignalImport>,
    /// What was not mapped, simplified or changed, one line each.
    pub report: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// The SUMO network as read.

#[derive(Clone, Debug)]
pub(crate) struct SLane {
    pub index: usize,
    pub speed: f64,
    pub length: f64,
    pub vehicle: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct SEdge {
    pub id: String,
    pub from: String,
    pub to: String,
    pub lanes: Vec<SLane>,
    pub line: usize,
}

impl SEdge {
    /// Greenwave lane index of a SUMO lane index (vehicle lanes only, from the right).
    pub fn gw_lane(&self, sumo_index: usize) -> Option<u32> {
        let mut k = 0;
        for l in &self.lanes {
            if l.vehicle {
                if l.index == sumo_index {
                    return Some(k);
                }
                k += 1;
            }
        }
        None
    }
    pub fn vehicle_lanes(&self) -> impl Iterator<Item = &SLane> {
        self.lanes.iter().filter(|l| l.vehicle)
    }
}

#[derive(Clone, Debug)]
struct SJunction {
    id: String,
    kind: String,
    x: f64,
    y: f64,
    line: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct SConn {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) from_lane: usize,
    pub(crate) tl: Option<String>,
    pub(crate) link_index: Option<usize>,
    pub(crate) dir: char,
}

#[derive(Clone, Debug)]
pub(crate) struct SPhase {
    pub(crate) duration: Ms,
    pub(crate) state: Vec<char>,
}

#[derive(Clone, Debug)]
pub(crate) struct STl {
    pub(crate) id: String,
    pub(crate) program_id: String,
    pub(crate) kind: String,
    pub(crate) offset: Ms,
    pub(crate) phases: Vec<SPhase>,
    pub(crate) params: Vec<String>,
    pub(crate) has_next: bool,
    pub(crate) line: usize,
}

/// A pedestrian crossing (`function="crossing"` edge) and the normal edges it crosses.
#[derive(Clone, Debug)]
pub(crate) struct SCrossing {
    pub(crate) id: String,
    pub(crate) edges: Vec<String>,
    pub(crate) line: usize,
}

/// A traffic light's signal for a crossing: the connection from a walking area onto the
/// crossing (`linkIndex`, and `linkIndex2` where SUMO signals the two directions apart).
#[derive(Clone, Debug)]
pub(crate) struct SCrossingLink {
    pub(crate) crossing: String,
    pub(crate) tl: String,
    pub(crate) link_indices: Vec<usize>,
}

/// The parts of a `.net.xml` the import uses, checked for consistency.
pub(crate) struct SumoNet {
    pub(crate) edges: Vec<SEdge>,
    junctions: Vec<SJunction>,
    pub(crate) conns: Vec<SConn>,
    pub(crate) tls: Vec<STl>,
    pub(crate) crossings: Vec<SCrossing>,
    pub(crate) crossing_links: Vec<SCrossingLink>,
    skipped_special_edges: BTreeMap<String, usize>,
    extra_programs: Vec<(String, String, usize)>,
}

fn is_vehicle_lane(allow: Option<&str>, disallow: Option<&str>) -> bool {
    if let Some(a) = allow {
        let a: Vec<&str> = a.split_whitespace().collect();
        return a.contains(&"all") || a.contains(&"passenger");
    }
    if let Some(d) = disallow {
        let d: Vec<&str> = d.split_whitespace().collect();
        return !(d.contains(&"all") || d.contains(&"passenger"));
    }
    true
}

const STATE_CHARS: &str = "rRyYgGsuoO";

pub(crate) fn read_net(x: &Xml) -> Result<SumoNet, SumoError> {
    let root = x.root(&["net"])?;
    let mut edges = Vec::new();
    let mut junctions = Vec::new();
    let mut conns = Vec::new();
    let mut tls: Vec<STl> = Vec::new();
    let mut skipped_special_edges = BTreeMap::new();
    let mut special_ids: BTreeSet<String> = BTreeSet::new();
    let mut extra_programs = Vec::new();
    let mut crossings: Vec<SCrossing> = Vec::new();
    let mut crossing_links: Vec<(SCrossingLink, Node)> = Vec::new();
    for n in root.children().filter(|n| n.is_element()) {
        match n.tag_name().name() {
            "edge" => {
                let id = x.req(n, "id")?;
                let function = n.attribute("function").unwrap_or("normal");
                if function == "internal" {
                    continue;
                }
                if function == "crossing" {
                    let edges: Vec<String> = x
                        .req(n, "crossingEdges")?
                        .split_whitespace()
                        .map(str::to_string)
                        .collect();
                    crossings.push(SCrossing {
                        id: id.to_string(),
                        edges,
                        line: x.line(n),
                    });
                    special_ids.insert(id.to_string());
                    continue;
                }
                if function != "normal" || id.starts_with(':') {
                    *skipped_special_edges
                        .entry(function.to_string())
                        .or_insert(0) += 1;
                    special_ids.insert(id.to_string());
                    continue;
                }
                let from = x.req(n, "from")?;
                let to = x.req(n, "to")?;
                let mut lanes: Vec<SLane> = Vec::new();
                for l in n.children().filter(|c| c.has_tag_name("lane")) {
                    let index = x.req_index(l, "index")?;
                    if lanes.iter().any(|o| o.index == index) {
                        return Err(x.err_attr(
                            l,
                            "index",
                            format!("lane index {index} is given twice in edge {id:?}"),
                        ));
                    }
                    let speed = x.req_f64(l, "speed")?;
                    if speed <= 0.0 {
                        return Err(x.err_attr(
                            l,
                            "speed",
                            format!("speed {speed} m/s must be positive"),
                        ));
                    }
                    let length = x.req_f64(l, "length")?;
                    if length <= 0.0 {
                        return Err(x.err_attr(
                            l,
                            "length",
                            format!("length {length} m must be positive"),
                        ));
                    }
                    lanes.push(SLane {
                        index,
                        speed,
                        length,
                        vehicle: is_vehicle_lane(l.attribute("allow"), l.attribute("disallow")),
                    });
                }
                if lanes.is_empty() {
                    return Err(x.err(n, format!("edge {id:?} has no <lane>")));
                }
                lanes.sort_by_key(|l| l.index);
                for (k, l) in lanes.iter().enumerate() {
                    if l.index != k {
                        return Err(x.err(
                            n,
                            format!(
                                "edge {id:?}: lane indices must be 0 to {} without gaps",
                                lanes.len() - 1
                            ),
                        ));
                    }
                }
                edges.push(SEdge {
                    id: id.to_string(),
                    from: from.to_string(),
                    to: to.to_string(),
                    lanes,
                    line: x.line(n),
                });
            }
            "junction" => {
                let id = x.req(n, "id")?;
                let kind = n.attribute("type").unwrap_or("priority");
                if id.starts_with(':') || kind == "internal" {
                    continue;
                }
                junctions.push(SJunction {
                    id: id.to_string(),
                    kind: kind.to_string(),
                    x: x.req_f64(n, "x")?,
                    y: x.req_f64(n, "y")?,
                    line: x.line(n),
                });
            }
            "connection" => {
                let from = x.req(n, "from")?;
                if from.starts_with(':') {
                    // A walking area onto a crossing: the crossing's signal, if it has one.
                    let to = x.req(n, "to")?;
                    if let (Some(tl), true, true) = (
                        n.attribute("tl"),
                        to.starts_with(':'),
                        n.attribute("linkIndex").is_some(),
                    ) {
                        let mut link_indices = vec![x.req_index(n, "linkIndex")?];
                        if n.attribute("linkIndex2").is_some() {
                            link_indices.push(x.req_index(n, "linkIndex2")?);
                        }
                        crossing_links.push((
                            SCrossingLink {
                                crossing: to.to_string(),
                                tl: tl.to_string(),
                                link_indices,
                            },
                            n,
                        ));
                    }
                    continue;
                }
                let to = x.req(n, "to")?;
                if to.starts_with(':') {
                    continue;
                }
                let from_lane = x.req_index(n, "fromLane")?;
                x.req_index(n, "toLane")?;
                let tl = n.attribute("tl").map(str::to_string);
                let link_index = match (&tl, n.attribute("linkIndex")) {
                    (Some(_), Some(_)) => Some(x.req_index(n, "linkIndex")?),
                    (Some(_), None) => {
                        return Err(x.err_attr(
                            n,
                            "linkIndex",
                            "missing attribute (the connection names a traffic light)",
                        ))
                    }
                    (None, _) => None,
                };
                let dir = n
                    .attribute("dir")
                    .and_then(|d| d.chars().next())
                    .unwrap_or('s');
                if !"srlRLt".contains(dir) {
                    return Err(x.err_attr(
                        n,
                        "dir",
                        format!("unknown direction {dir:?} (expected s, r, l, R, L or t)"),
                    ));
                }
                conns.push(SConn {
                    from: from.to_string(),
                    to: to.to_string(),
                    from_lane,
                    tl,
                    link_index,
                    dir,
                });
            }
            "tlLogic" => {
                let id = x.req(n, "id")?.to_string();
                let program_id = n.attribute("programID").unwrap_or("0").to_string();
                if tls.iter().any(|t| t.id == id) {
                    extra_programs.push((id, program_id, x.line(n)));
                    continue;
                }
                let offset = x.opt_time(n, "offset")?.unwrap_or(0.0);
                let mut phases: Vec<SPhase> = Vec::new();
                let mut params = Vec::new();
                let mut has_next = false;
                for c in n.children().filter(|c| c.is_element()) {
                    match c.tag_name().name() {
                        "phase" => {
                            let d = x.req_time(c, "duration")?;
                            let duration = Ms::from_secs_f64(d)
                                .filter(|d| *d > Ms::ZERO)
                                .ok_or_else(|| {
                                    x.err_attr(
                                        c,
                                        "duration",
                                        format!("duration {d} s must be positive"),
                                    )
                                })?;
                            let state: Vec<char> = x.req(c, "state")?.chars().collect();
                            if let Some(bad) = state.iter().find(|s| !STATE_CHARS.contains(**s)) {
                                return Err(x.err_attr(c, "state", format!("unknown signal state {bad:?} (expected one of {STATE_CHARS})")));
                            }
                            if let Some(first) = phases.first() {
                                if first.state.len() != state.len() {
                                    return Err(x.err_attr(c, "state", format!("{} signals, but the first phase of tlLogic {id:?} has {}", state.len(), first.state.len())));
                                }
                            }
                            has_next |= c.attribute("next").is_some();
                            phases.push(SPhase { duration, state });
                        }
                        "param" => params.push(c.attribute("key").unwrap_or("?").to_string()),
                        _ => {}
                    }
                }
                if phases.is_empty() {
                    return Err(x.err(n, format!("tlLogic {id:?} has no <phase>")));
                }
                tls.push(STl {
                    id,
                    program_id,
                    kind: n.attribute("type").unwrap_or("static").to_string(),
                    offset: Ms::from_secs_f64(offset).unwrap_or(Ms::ZERO),
                    phases,
                    params,
                    has_next,
                    line: x.line(n),
                });
            }
            _ => {}
        }
    }
    // References resolve.
    let jset: BTreeSet<&str> = junctions.iter().map(|j| j.id.as_str()).collect();
    for (e, n) in edges.iter().zip(root.children().filter(|n| {
        n.has_tag_name("edge")
            && !n.attribute("id").unwrap_or(":").starts_with(':')
            && n.attribute("function").unwrap_or("normal") == "normal"
    })) {
        for attr in ["from", "to"] {
            let j = if attr == "from" { &e.from } else { &e.to };
            if !jset.contains(j.as_str()) {
                return Err(x.err_attr(n, attr, format!("unknown junction {j:?}")));
            }
        }
    }
    let eidx: BTreeMap<&str, usize> = edges
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id.as_str(), i))
        .collect();
    let conn_nodes: Vec<Node> = root
        .children()
        .filter(|n| {
            n.has_tag_name("connection")
                && !n.attribute("from").unwrap_or(":").starts_with(':')
                && !n.attribute("to").unwrap_or(":").starts_with(':')
        })
        .collect();
    for (c, n) in conns.iter().zip(&conn_nodes) {
        let Some(&fe) = eidx.get(c.from.as_str()) else {
            if !special_ids.contains(&c.from) {
                return Err(x.err_attr(*n, "from", format!("unknown edge {:?}", c.from)));
            }
            continue;
        };
        let Some(&te) = eidx.get(c.to.as_str()) else {
            if !special_ids.contains(&c.to) {
                return Err(x.err_attr(*n, "to", format!("unknown edge {:?}", c.to)));
            }
            continue;
        };
        for (attr, e) in [("fromLane", fe), ("toLane", te)] {
            let lane = x.req_index(*n, attr)?;
            if lane >= edges[e].lanes.len() {
                return Err(x.err_attr(
                    *n,
                    attr,
                    format!(
                        "lane {lane} does not exist: edge {:?} has {} lanes",
                        edges[e].id,
                        edges[e].lanes.len()
                    ),
                ));
            }
        }
        if edges[fe].to != edges[te].from {
            return Err(x.err(
                *n,
                format!(
                    "edge {:?} ends at {:?} but edge {:?} starts at {:?}",
                    c.from, edges[fe].to, c.to, edges[te].from
                ),
            ));
        }
        if let (Some(tl), Some(k)) = (&c.tl, c.link_index) {
            let Some(t) = tls.iter().find(|t| &t.id == tl) else {
                return Err(x.err_attr(*n, "tl", format!("unknown tlLogic {tl:?}")));
            };
            let size = t.phases[0].state.len();
            if k >= size {
                return Err(x.err_attr(
                    *n,
                    "linkIndex",
                    format!("linkIndex {k} is out of range: tlLogic {tl:?} (line {}) has {size} signals per phase", t.line),
                ));
            }
        }
    }
    // Crossings' signals name a known crossing and traffic light, within its state strings.
    for (c, n) in &crossing_links {
        if !crossings.iter().any(|k| k.id == c.crossing) {
            continue; // a connection between walking areas, or onto a crossing not read
        }
        let Some(t) = tls.iter().find(|t| t.id == c.tl) else {
            return Err(x.err_attr(*n, "tl", format!("unknown tlLogic {:?}", c.tl)));
        };
        let size = t.phases[0].state.len();
        if let Some(k) = c.link_indices.iter().find(|k| **k >= size) {
            return Err(x.err_attr(
                *n,
                "linkIndex",
                format!("linkIndex {k} is out of range: tlLogic {:?} (line {}) has {size} signals per phase", c.tl, t.line),
            ));
        }
    }
    let crossing_links: Vec<SCrossingLink> = crossing_links
        .into_iter()
        .map(|(c, _)| c)
        .filter(|c| crossings.iter().any(|k| k.id == c.crossing))
        .collect();
    for c in &crossings {
        for e in &c.edges {
            if !edges.iter().any(|x| &x.id == e) {
                return Err(SumoError {
                    file: x.file.into(),
                    line: c.line,
                    place: "edge/crossingEdges".into(),
                    message: format!("crossing {:?} crosses unknown edge {e:?}", c.id),
                });
            }
        }
    }
    Ok(SumoNet {
        edges,
        junctions,
        conns,
        tls,
        crossings,
        crossing_links,
        skipped_special_edges,
        extra_programs,
    })
}

// ---------------------------------------------------------------------------------------------
// Signal colours.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Col {
    Red,
    RedYellow,
    Green,
    Yellow,
    Off,
}

fn col(c: char) -> Col {
    match c {
        'G' | 'g' | 's' => Col::Green,
        'y' | 'Y' => Col::Yellow,
        'u' => Col::RedYellow,
        'o' | 'O' => Col::Off,
        _ => Col::Red,
    }
}

/// A movement being built.
#[derive(Clone, Debug)]
struct Mv {
    from: usize,
    to: usize,
    lanes: BTreeSet<u32>,
    turn: Turn,
    links: BTreeSet<usize>,
}

/// A draft signal program for one junction: groups (movement indices), stages (group indices),
/// plan (stage index, green, interstage), offset.
#[derive(Clone, Debug)]
struct Draft {
    groups: Vec<(Vec<usize>, Protection, Vec<usize>)>,
    stages: Vec<Vec<usize>>,
    seq: Vec<(usize, Ms, Ms)>,
    /// Start of each plan position's green in SUMO's cycle (as `seq`).
    starts: Vec<Ms>,
    offset: Ms,
    sumo_cycle: Ms,
    /// Pedestrian groups from the crossings the traffic light signals ([`draft_crossings`]).
    peds: Vec<PedDraft>,
}

/// A pedestrian group made of one or more SUMO crossings of the same leg that show the same
/// signals.
#[derive(Clone, Debug, PartialEq)]
struct PedDraft {
    /// Greenwave id of the link whose leg it crosses.
    crossing: String,
    /// Stages (indices into [`Draft::stages`]) it walks with.
    stages: Vec<usize>,
    /// SUMO ids of its crossings.
    sumo: Vec<String>,
}

fn turn_of(dir: char) -> Turn {
    match dir {
        'r' | 'R' => Turn::Right,
        'l' | 'L' => Turn::Left,
        't' => Turn::Uturn,
        _ => Turn::Through,
    }
}

fn link_list(v: &[usize]) -> String {
    // "0-2, 5, 7-8"
    let mut out: Vec<String> = Vec::new();
    let mut k = 0;
    while k < v.len() {
        let mut j = k;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if j > k {
            format!("{}-{}", v[k], v[j])
        } else {
            v[k].to_string()
        });
        k = j + 1;
    }
    out.join(", ")
}

/// Groups, stages and the draft plan of a junction's program; `Err` says why it cannot be
/// mapped.
fn draft_program(tl: &STl, mvs: &[Mv]) -> Result<Draft, String> {
    // Colour sequence of each link of this junction.
    let mut key_of: BTreeMap<usize, Vec<Col>> = BTreeMap::new();
    for m in mvs {
        for &k in &m.links {
            key_of.insert(k, tl.phases.iter().map(|p| col(p.state[k])).collect());
        }
    }
    let off: Vec<usize> = key_of
        .iter()
        .filter(|(_, v)| v.contains(&Col::Off))
        .map(|(k, _)| *k)
        .collect();
    if !off.is_empty() {
        return Err(format!(
            "links {} are shown off (o/O) in some phase; Greenwave signals every movement",
            link_list(&off)
        ));
    }
    // Groups: one per colour sequence; a movement's links must share one.
    let mut groups: Vec<(Vec<Col>, Vec<usize>)> = Vec::new();
    for (mi, m) in mvs.iter().enumerate() {
        let keys: BTreeSet<&Vec<Col>> = m.links.iter().map(|k| &key_of[k]).collect();
        if keys.len() > 1 {
            let links: Vec<usize> = m.links.iter().copied().collect();
            return Err(format!(
                "the lanes of one movement show different signals (links {})",
                link_list(&links)
            ));
        }
        let Some(key) = keys.into_iter().next() else {
            return Err("a movement has no controlled link".into());
        };
        let g = match groups.iter().position(|(k, _)| k == key) {
            Some(g) => g,
            None => {
                groups.push((key.clone(), Vec::new()));
                groups.len() - 1
            }
        };
        groups[g].1.push(mi);
    }
    // Order groups by their first link.
    let first_link = |g: &(Vec<Col>, Vec<usize>)| {
        g.1.iter()
            .filter_map(|&m| mvs[m].links.iter().next().copied())
            .min()
            .unwrap_or(usize::MAX)
    };
    groups.sort_by_key(first_link);
    let never: Vec<usize> = groups
        .iter()
        .filter(|g| !g.0.contains(&Col::Green))
        .flat_map(|g| g.1.iter().flat_map(|&m| mvs[m].links.iter().copied()))
        .collect();
    if !never.is_empty() {
        let mut never = never;
        never.sort_unstable();
        return Err(format!("links {} are never green", link_list(&never)));
    }
    let group_out: Vec<(Vec<usize>, Protection, Vec<usize>)> = groups
        .iter()
        .map(|(_, ms)| {
            let mut links: Vec<usize> = ms
                .iter()
                .flat_map(|&m| mvs[m].links.iter().copied())
                .collect();
            links.sort_unstable();
            let permissive = links
                .iter()
                .any(|&k| tl.phases.iter().any(|p| matches!(p.state[k], 'g' | 's')));
            (
                ms.clone(),
                if permissive {
                    Protection::Permissive
                } else {
                    Protection::Protected
                },
                links,
            )
        })
        .collect();

    // Phases as group colours; consecutive equal phases merged (cyclically).
    let n = tl.phases.len();
    let vecs: Vec<Vec<Col>> = (0..n)
        .map(|p| groups.iter().map(|g| g.0[p]).collect())
        .collect();
    let start = (0..n).find(|&p| vecs[p] != vecs[(p + n - 1) % n]);
    let mut times = vec![Ms::ZERO; n];
    for p in 1..n {
        times[p] = times[p - 1] + tl.phases[p - 1].duration;
    }
    let sumo_cycle = times[n - 1] + tl.phases[n - 1].duration;
    // (colours, duration, start time in SUMO's cycle)
    let mut blocks: Vec<(Vec<Col>, Ms, Ms)> = Vec::new();
    match start {
        None => blocks.push((vecs[0].clone(), sumo_cycle, Ms::ZERO)),
        Some(s) => {
            for i in 0..n {
                let p = (s + i) % n;
                match blocks.last_mut() {
                    Some(b) if b.0 == vecs[p] => b.1 += tl.phases[p].duration,
                    _ => blocks.push((vecs[p].clone(), tl.phases[p].duration, times[p])),
                }
            }
        }
    }
    let greens = |b: &(Vec<Col>, Ms, Ms)| -> BTreeSet<usize> {
        b.0.iter()
            .enumerate()
            .filter(|(_, c)| **c == Col::Green)
            .map(|(g, _)| g)
            .collect()
    };
    let cands: Vec<usize> = (0..blocks.len())
        .filter(|&b| {
            !blocks[b]
                .0
                .iter()
                .any(|c| matches!(c, Col::Yellow | Col::RedYellow))
                && !greens(&blocks[b]).is_empty()
        })
        .collect();
    let stage_blocks: Vec<usize> = cands
        .iter()
        .enumerate()
        .filter(|(k, &b)| {
            if cands.len() < 2 {
                return true;
            }
            let prev = cands[(k + cands.len() - 1) % cands.len()];
            let next = cands[(k + 1) % cands.len()];
            let g = greens(&blocks[b]);
            let strict_sub = |o: usize| {
                let og = greens(&blocks[o]);
                g.len() < og.len() && g.is_subset(&og)
            };
            !(strict_sub(prev) && strict_sub(next))
        })
        .map(|(_, &b)| b)
        .collect();
    if stage_blocks.is_empty() {
        return Err("no phase shows a green without yellow".into());
    }
    // The plan starts with the stage that starts first in SUMO's cycle.
    let first = (0..stage_blocks.len())
        .min_by_key(|&k| blocks[stage_blocks[k]].2)
        .unwrap_or(0);
    let mut stages: Vec<Vec<usize>> = Vec::new();
    let mut seq = Vec::new();
    let mut starts = Vec::new();
    let m = stage_blocks.len();
    for i in 0..m {
        let k = (first + i) % m;
        let b = stage_blocks[k];
        let next = stage_blocks[(k + 1) % m];
        let set: Vec<usize> = greens(&blocks[b]).into_iter().collect();
        let si = match stages.iter().position(|s| *s == set) {
            Some(si) => si,
            None => {
                stages.push(set);
                stages.len() - 1
            }
        };
        let mut inter = Ms::ZERO;
        let mut j = (b + 1) % blocks.len();
        while j != next {
            inter += blocks[j].1;
            j = (j + 1) % blocks.len();
        }
        seq.push((si, blocks[b].1, inter));
        starts.push(blocks[b].2);
    }
    let start_t = blocks[stage_blocks[first]].2;
    let offset = (tl.offset + start_t).rem_euclid(sumo_cycle);
    Ok(Draft {
        groups: group_out,
        stages,
        seq,
        starts,
        offset,
        sumo_cycle,
        peds: Vec::new(),
    })
}

/// The edges crossing `cr` crosses that touch SUMO junction `junction`: (index into `edges`,
/// the SUMO junction at the edge's other end).
pub(crate) fn crossed_legs<'a>(
    edges: &'a [SEdge],
    cr: &SCrossing,
    junction: &str,
) -> Vec<(usize, &'a str)> {
    cr.edges
        .iter()
        .filter_map(|e| {
            let k = edges.iter().position(|x| &x.id == e)?;
            let ed = &edges[k];
            if ed.to == junction {
                Some((k, ed.from.as_str()))
            } else if ed.from == junction {
                Some((k, ed.to.as_str()))
            } else {
                None
            }
        })
        .collect()
}

/// Pedestrian groups for the crossings traffic light `tl` signals at junction `junction` (a
/// drafted program `d`): a crossing walks with the stages whose green contains every phase in
/// which SUMO shows it green; crossings of the same leg with the same stages form one group.
/// Returns the groups and, per crossing that cannot be mapped, why.
fn draft_crossings(
    s: &SumoNet,
    tl: &STl,
    junction: &str,
    d: &Draft,
    link_of: &[Option<String>],
) -> (Vec<PedDraft>, Vec<String>) {
    let cycle = d.sumo_cycle;
    let mut t = Ms::ZERO;
    let phase_at: Vec<(Ms, Ms)> = tl
        .phases
        .iter()
        .map(|p| {
            let a = (t, p.duration);
            t += p.duration;
            a
        })
        .collect();
    // Whether [a, a + da) lies within [b, b + db), on the cycle.
    let within = |a: Ms, da: Ms, b: Ms, db: Ms| (a - b).rem_euclid(cycle) + da <= db;
    let mut peds: Vec<(String, String, Vec<usize>, Vec<String>)> = Vec::new();
    let mut why = Vec::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for c in s.crossing_links.iter().filter(|c| c.tl == tl.id) {
        if !seen.insert(c.crossing.as_str()) {
            continue;
        }
        let mut indices: Vec<usize> = s
            .crossing_links
            .iter()
            .filter(|o| o.tl == tl.id && o.crossing == c.crossing)
            .flat_map(|o| o.link_indices.iter().copied())
            .collect();
        indices.sort_unstable();
        indices.dedup();
        let Some(cr) = s.crossings.iter().find(|k| k.id == c.crossing) else {
            continue;
        };
        let colours: Vec<Vec<Col>> = indices
            .iter()
            .map(|&k| tl.phases.iter().map(|p| col(p.state[k])).collect())
            .collect();
        if colours.windows(2).any(|w| w[0] != w[1]) {
            why.push(format!(
                "crossing {:?}: its signals (links {}) differ",
                cr.id,
                link_list(&indices)
            ));
            continue;
        }
        let green: Vec<usize> = (0..tl.phases.len())
            .filter(|&p| colours[0][p] == Col::Green)
            .collect();
        if green.is_empty() {
            why.push(format!("crossing {:?}: never green", cr.id));
            continue;
        }
        // The leg: the first crossed edge that is a link touching this junction. A crossing
        // none of whose edges touches it belongs to another junction of the same light.
        let touching = crossed_legs(&s.edges, cr, junction);
        if touching.is_empty() {
            continue;
        }
        let leg = touching
            .iter()
            .find_map(|(k, other)| Some((link_of[*k].clone()?, other.to_string())));
        let Some((link, neighbour)) = leg else {
            why.push(format!(
                "crossing {:?}: crosses no imported link of the junction ({})",
                cr.id,
                cr.edges.join(" ")
            ));
            continue;
        };
        let mut stages: Vec<usize> = Vec::new();
        // Green phases in an interstage: allowed where the crossing walks on from the stage
        // before it into the stage after (a walk over a run of stages).
        let mut between: Vec<usize> = Vec::new();
        let mut outside = false;
        let n = d.seq.len();
        for &p in &green {
            let (a, da) = phase_at[p];
            if let Some(k) = (0..n).find(|&k| within(a, da, d.starts[k], d.seq[k].1)) {
                stages.push(d.seq[k].0);
            } else if let Some(k) =
                (0..n).find(|&k| within(a, da, d.starts[k] + d.seq[k].1, d.seq[k].2))
            {
                between.push(k);
            } else {
                outside = true;
            }
        }
        outside |= between
            .iter()
            .any(|&k| !stages.contains(&d.seq[k].0) || !stages.contains(&d.seq[(k + 1) % n].0));
        if outside {
            why.push(format!(
                "crossing {:?}: green outside the vehicle stages' greens (during a change)",
                cr.id
            ));
            continue;
        }
        stages.sort_unstable();
        stages.dedup();
        match peds
            .iter_mut()
            .find(|(_, n, st, _)| *n == neighbour && *st == stages)
        {
            Some(p) => p.3.push(cr.id.clone()),
            None => peds.push((link, neighbour, stages, vec![cr.id.clone()])),
        }
    }
    (
        peds.into_iter()
            .map(|(crossing, _, stages, sumo)| PedDraft {
                crossing,
                stages,
                sumo,
            })
            .collect(),
        why,
    )
}

// ---------------------------------------------------------------------------------------------
// The mapping.

/// Where a SUMO junction goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Boundary,
    Intersection,
}

/// What the demand and detector mapping needs to know about the imported network.
pub(crate) struct Mapping {
    pub edges: Vec<SEdge>,
    /// Greenwave link id per SUMO edge (None: skipped).
    pub link_of: Vec<Option<String>>,
    /// Whether an edge starts at a boundary node / ends at one.
    pub starts_at_boundary: Vec<bool>,
    pub ends_at_boundary: Vec<bool>,
    /// Greenwave intersection id at the end / start of an edge, if any.
    pub to_intersection: Vec<Option<String>>,
    pub from_intersection: Vec<Option<String>>,
    /// Imported movements: (from edge, to edge).
    pub movements: BTreeSet<(usize, usize)>,
    /// Every pair of SUMO edges a connection joins (for checking and routing SUMO's routes).
    pub sumo_pairs: BTreeSet<(usize, usize)>,
    /// The same pairs as successor lists per edge.
    pub successors: Vec<Vec<usize>>,
    pub edge_index: BTreeMap<String, usize>,
}

fn fmt_s(t: Ms) -> String {
    let s = format!("{:.3}", t.as_secs_f64());
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Import a SUMO network, optional route files and optional additional files with E1 loops.
pub fn import(
    net: Source,
    routes: &[Source],
    detectors: &[Source],
    opts: &ImportOptions,
) -> Result<Imported, SumoError> {
    let x = Xml::parse(net)?;
    let s = read_net(&x)?;
    let mut report: Vec<String> = Vec::new();
    let file = net.file;
    let at = |line: usize| format!("{file}:{line}");

    for (f, n) in &s.skipped_special_edges {
        report.push(format!(
            "{n} {f} edges skipped (Greenwave models vehicle lanes, and pedestrians only as the signal groups of crossings)"
        ));
    }
    for (id, prog, line) in &s.extra_programs {
        report.push(format!(
            "{}: tlLogic {id:?} program {prog:?}: only the first program of a traffic light is imported",
            at(*line)
        ));
    }

    // Ids.
    let mut seen_j: BTreeMap<String, usize> = BTreeMap::new();
    for j in &s.junctions {
        let g = greenwave_id(&j.id);
        check_len(&g, file, j.line, "junction/id")?;
        if let Some(l) = seen_j.insert(g.clone(), j.line) {
            return Err(SumoError {
                file: file.into(),
                line: j.line,
                place: "junction/id".into(),
                message: format!("id {:?} becomes {g:?} in Greenwave, as the junction at line {l} does; rename one", j.id),
            });
        }
    }
    let mut seen_e: BTreeMap<String, usize> = BTreeMap::new();
    for e in &s.edges {
        let g = greenwave_id(&e.id);
        check_len(&g, file, e.line, "edge/id")?;
        if let Some(l) = seen_e.insert(g.clone(), e.line) {
            return Err(SumoError {
                file: file.into(),
                line: e.line,
                place: "edge/id".into(),
                message: format!(
                    "id {:?} becomes {g:?} in Greenwave, as the edge at line {l} does; rename one",
                    e.id
                ),
            });
        }
    }
    let renamed = s
        .junctions
        .iter()
        .map(|j| &j.id)
        .chain(s.edges.iter().map(|e| &e.id))
        .filter(|id| greenwave_id(id) != **id)
        .count();
    if renamed > 0 {
        report.push(format!(
            "{renamed} ids renamed: characters other than letters, digits, '_', '-', '.', ':' became '_'"
        ));
    }

    let edge_index: BTreeMap<String, usize> = s
        .edges
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id.clone(), i))
        .collect();
    let jidx: BTreeMap<&str, usize> = s
        .junctions
        .iter()
        .enumerate()
        .map(|(i, j)| (j.id.as_str(), i))
        .collect();

    // Usable connections: between known vehicle lanes.
    let mut no_vehicle = 0;
    let vehicle_edge: Vec<bool> = s
        .edges
        .iter()
        .map(|e| {
            let v = e.lanes.iter().any(|l| l.vehicle);
            if !v {
                no_vehicle += 1;
            }
            v
        })
        .collect();
    if no_vehicle > 0 {
        report.push(format!(
            "{no_vehicle} edges without a lane for passenger cars skipped (footpaths, bicycle or rail)"
        ));
    }
    let conns: Vec<(usize, usize, &SConn)> = s
        .conns
        .iter()
        .filter_map(|c| {
            let f = *edge_index.get(&c.from)?;
            let t = *edge_index.get(&c.to)?;
            (vehicle_edge[f] && vehicle_edge[t] && s.edges[f].gw_lane(c.from_lane).is_some())
                .then_some((f, t, c))
        })
        .collect();

    // Junction roles.
    let mut role = vec![Role::Boundary; s.junctions.len()];
    for (f, _, c) in &conns {
        if c.dir != 't' {
            role[jidx[s.edges[*f].to.as_str()]] = Role::Intersection;
        }
    }
    let mut edge_kept: Vec<bool> = vec![true; s.edges.len()];
    let mut between_boundaries = 0;
    for (i, e) in s.edges.iter().enumerate() {
        if !vehicle_edge[i] {
            edge_kept[i] = false;
            continue;
        }
        let rf = role[jidx[e.from.as_str()]];
        let rt = role[jidx[e.to.as_str()]];
        if rf == Role::Boundary && rt == Role::Boundary {
            edge_kept[i] = false;
            between_boundaries += 1;
        }
    }
    if between_boundaries > 0 {
        report.push(format!(
            "{between_boundaries} edges between two dead ends skipped (a Greenwave link touches an intersection)"
        ));
    }
    let boundary_tls: Vec<&str> = s
        .junctions
        .iter()
        .enumerate()
        .filter(|(i, j)| role[*i] == Role::Boundary && j.kind.starts_with("traffic_light"))
        .map(|(_, j)| j.id.as_str())
        .collect();
    if !boundary_tls.is_empty() {
        report.push(format!(
            "{} traffic lights at dead ends (only turnarounds) imported as boundary nodes: {}",
            boundary_tls.len(),
            boundary_tls.join(", ")
        ));
    }
    let uturns_at_boundary = conns
        .iter()
        .filter(|(f, _, c)| c.dir == 't' && role[jidx[s.edges[*f].to.as_str()]] == Role::Boundary)
        .count();
    if uturns_at_boundary > 0 {
        report.push(format!(
            "{uturns_at_boundary} turnarounds at dead ends not imported: a vehicle leaves the network there"
        ));
    }

    // Links.
    let mut links: Vec<LinkSpec> = Vec::new();
    let mut link_of: Vec<Option<String>> = vec![None; s.edges.len()];
    let mut short = Vec::new();
    let mut clamped_speed = Vec::new();
    for (i, e) in s.edges.iter().enumerate() {
        if !edge_kept[i] {
            continue;
        }
        let vl: Vec<&SLane> = e.vehicle_lanes().collect();
        if vl.len() > 8 {
            return Err(SumoError {
                file: file.into(),
                line: e.line,
                place: "edge".into(),
                message: format!(
                    "edge {:?} has {} vehicle lanes; Greenwave links have 1 to 8",
                    e.id,
                    vl.len()
                ),
            });
        }
        let speed = vl.iter().map(|l| l.speed).fold(0.0, f64::max);
        let mut kmh = (speed * 3.6 * 100.0).round() / 100.0;
        if !(5.0..=130.0).contains(&kmh) {
            clamped_speed.push(e.id.clone());
            kmh = kmh.clamp(5.0, 130.0);
        }
        let mut length = vl.iter().map(|l| l.length).sum::<f64>() / vl.len() as f64;
        length = (length * 100.0).round() / 100.0;
        if length < 10.0 {
            short.push(e.id.clone());
            length = 10.0;
        }
        let id = greenwave_id(&e.id);
        link_of[i] = Some(id.clone());
        links.push(LinkSpec {
            id,
            from: greenwave_id(&e.from),
            to: greenwave_id(&e.to),
            lanes: vl.len() as u32,
            speed_limit_kmh: kmh,
            length_m: Some(length),
            grade_pct: 0.0,
        });
    }
    if !short.is_empty() {
        report.push(format!(
            "{} edges shorter than Greenwave's 10 m minimum lengthened to 10 m: {}",
            short.len(),
            short.join(", ")
        ));
    }
    if !clamped_speed.is_empty() {
        report.push(format!(
            "{} edges with a speed outside 5-130 km/h clamped: {}",
            clamped_speed.len(),
            clamped_speed.join(", ")
        ));
    }

    // Nodes and intersections.
    let mut nodes = Vec::new();
    let mut ix_specs: Vec<IntersectionSpec> = Vec::new();
    let mut ix_of_junction: BTreeMap<usize, usize> = BTreeMap::new();
    let mut other_types: BTreeMap<String, usize> = BTreeMap::new();
    for (i, j) in s.junctions.iter().enumerate() {
        let touches = s
            .edges
            .iter()
            .enumerate()
            .any(|(k, e)| edge_kept[k] && (e.from == j.id || e.to == j.id));
        if !touches {
            continue;
        }
        let gid = greenwave_id(&j.id);
        match role[i] {
            Role::Boundary => nodes.push(NodeSpec {
                id: gid,
                x_m: j.x,
                y_m: j.y,
            }),
            Role::Intersection => {
                if !j.kind.starts_with("traffic_light")
                    && !matches!(j.kind.as_str(), "priority" | "dead_end")
                {
                    *other_types.entry(j.kind.clone()).or_insert(0) += 1;
                }
                ix_of_junction.insert(i, ix_specs.len());
                ix_specs.push(IntersectionSpec {
                    id: gid,
                    name: None,
                    x_m: j.x,
                    y_m: j.y,
                    lat: None,
                    lon: None,
                    control: ControlKind::Priority,
                    movements: Vec::new(),
                    signal_groups: Vec::new(),
                    stages: Vec::new(),
                    conflicts: Vec::new(),
                    intergreens: Vec::new(),
                    detectors: Vec::new(),
                    plans: Vec::new(),
                    schedule: Vec::new(),
                });
            }
        }
    }
    let mut junction_of = vec![0; ix_specs.len()];
    for (j, xi) in &ix_of_junction {
        junction_of[*xi] = *j;
    }
    for (t, n) in &other_types {
        report.push(format!(
            "{n} junctions of type {t} imported as priority junctions (the road with most lanes has priority)"
        ));
    }

    // Movements per intersection, and the traffic light of each. Turnarounds are left out:
    // Greenwave's geometry cannot let a U-turn yield to the traffic it merges with.
    let mut mvs: Vec<Vec<Mv>> = vec![Vec::new(); ix_specs.len()];
    let mut tl_of: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); ix_specs.len()];
    let mut uncontrolled: Vec<usize> = vec![0; ix_specs.len()];
    let mut uturns = 0;
    for (f, t, c) in &conns {
        let j = jidx[s.edges[*f].to.as_str()];
        let Some(&xi) = ix_of_junction.get(&j) else {
            continue;
        };
        if c.dir == 't' {
            uturns += 1;
            continue;
        }
        let lane = s.edges[*f].gw_lane(c.from_lane).unwrap_or(0);
        let list = &mut mvs[xi];
        let k = match list.iter().position(|m| m.from == *f && m.to == *t) {
            Some(k) => k,
            None => {
                list.push(Mv {
                    from: *f,
                    to: *t,
                    lanes: BTreeSet::new(),
                    turn: turn_of(c.dir),
                    links: BTreeSet::new(),
                });
                list.len() - 1
            }
        };
        list[k].lanes.insert(lane);
        match (&c.tl, c.link_index) {
            (Some(tl), Some(li)) => {
                tl_of[xi].insert(tl.as_str());
                list[k].links.insert(li);
            }
            _ => uncontrolled[xi] += 1,
        }
    }
    if uturns > 0 {
        report.push(format!(
            "{uturns} turnaround connections (U-turns) at intersections not imported (`--onto` shows each as the left turn from its lane, yielding)"
        ));
    }
    // Every lane of every approach serves a movement.
    let mut entering: Vec<Vec<usize>> = vec![Vec::new(); ix_specs.len()];
    for (ei, e) in s.edges.iter().enumerate() {
        if let (true, Some(&xi)) = (edge_kept[ei], ix_of_junction.get(&jidx[e.to.as_str()])) {
            entering[xi].push(ei);
        }
    }
    for (xi, list) in mvs.iter_mut().enumerate() {
        let approaches: BTreeSet<usize> = list.iter().map(|m| m.from).collect();
        for &ei in &entering[xi] {
            let e = &s.edges[ei];
            if !approaches.contains(&ei) {
                return Err(SumoError {
                    file: file.into(),
                    line: e.line,
                    place: "edge".into(),
                    message: format!(
                        "edge {:?} enters junction {:?}, but no connection leads on from it",
                        e.id, e.to
                    ),
                });
            }
            let nl = e.vehicle_lanes().count() as u32;
            for lane in 0..nl {
                if list.iter().any(|m| m.from == ei && m.lanes.contains(&lane)) {
                    continue;
                }
                // The nearest lane that leads somewhere lends its movements.
                let served: Vec<u32> = list
                    .iter()
                    .filter(|m| m.from == ei)
                    .flat_map(|m| m.lanes.iter().copied())
                    .collect();
                let Some(&near) = served
                    .iter()
                    .min_by_key(|l| (**l as i64 - lane as i64).abs())
                else {
                    continue;
                };
                for m in list
                    .iter_mut()
                    .filter(|m| m.from == ei && m.lanes.contains(&near))
                {
                    m.lanes.insert(lane);
                }
                report.push(format!(
                    "{}: edge {:?} lane {lane} has no connection; it takes the movements of lane {near}",
                    at(e.line),
                    e.id
                ));
            }
        }
        // Movements in order of their first link (signalised) or as read.
        list.sort_by_key(|m| m.links.iter().next().copied().unwrap_or(usize::MAX));
    }

    // Traffic lights.
    let mut signals = Vec::new();
    let mut drafts: Vec<Option<Draft>> = vec![None; ix_specs.len()];
    let mut tl_junctions: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (xi, tset) in tl_of.iter().enumerate() {
        for t in tset {
            tl_junctions
                .entry(t)
                .or_default()
                .push(ix_specs[xi].id.clone());
        }
    }
    for (t, js) in &tl_junctions {
        if js.len() > 1 {
            let tl = s
                .tls
                .iter()
                .find(|x| x.id == *t)
                .map(|x| x.line)
                .unwrap_or(0);
            report.push(format!(
                "{}: tlLogic {t:?} controls {} junctions ({}): each is imported as its own intersection running the program's signals for its links",
                at(tl),
                js.len(),
                js.join(", ")
            ));
        }
    }
    for tl in &s.tls {
        if tl.kind != "static" {
            report.push(format!(
                "{}: tlLogic {:?} is {}: imported as a fixed-time plan with the phases' durations (minDur/maxDur and actuation are not mapped)",
                at(tl.line),
                tl.id,
                tl.kind
            ));
        }
        if !tl.params.is_empty() {
            report.push(format!(
                "{}: tlLogic {:?}: parameters not mapped: {}",
                at(tl.line),
                tl.id,
                tl.params.join(", ")
            ));
        }
        if tl.has_next {
            report.push(format!(
                "{}: tlLogic {:?}: phase `next` attributes not mapped (phases run in order)",
                at(tl.line),
                tl.id
            ));
        }
        if !tl_junctions.contains_key(tl.id.as_str()) && !boundary_tls.contains(&tl.id.as_str()) {
            report.push(format!(
                "{}: tlLogic {:?} controls no imported connection; not imported",
                at(tl.line),
                tl.id
            ));
        }
    }
    for xi in 0..ix_specs.len() {
        if tl_of[xi].is_empty() {
            continue;
        }
        let id = ix_specs[xi].id.clone();
        let tset: Vec<&str> = tl_of[xi].iter().copied().collect();
        let Some(tl) = s.tls.iter().find(|t| t.id == tset[0]) else {
            continue;
        };
        let links: usize = mvs[xi].iter().map(|m| m.links.len()).sum();
        let mut sig = SignalImport {
            intersection: id.clone(),
            tls: tl.id.clone(),
            program_id: tl.program_id.clone(),
            links,
            sumo_cycle: tl.phases.iter().fold(Ms::ZERO, |a, p| a + p.duration),
            cycle: None,
            sumo_plan: Vec::new(),
            lengthened: Vec::new(),
        };
        let why = if tset.len() > 1 {
            Err(format!(
                "its connections belong to several traffic lights ({})",
                tset.join(", ")
            ))
        } else if uncontrolled[xi] > 0 {
            Err(format!(
                "{} of its connections have no signal",
                uncontrolled[xi]
            ))
        } else {
            draft_program(tl, &mvs[xi])
        };
        match why {
            Ok(mut d) => {
                sig.sumo_plan = d.seq.iter().map(|(_, g, i)| (*g, *i)).collect();
                let junction = &s.junctions[junction_of[xi]];
                let (peds, not) = draft_crossings(&s, tl, &junction.id, &d, &link_of);
                for w in not {
                    report.push(format!(
                        "{}: junction {id:?} (tlLogic {:?}): {w}; not imported",
                        at(junction.line),
                        tl.id
                    ));
                }
                d.peds = peds;
                drafts[xi] = Some(d)
            }
            Err(w) => report.push(format!(
                "{}: junction {id:?} (tlLogic {:?}) imported without signals, as a priority junction: {w}",
                at(s.junctions[junction_of[xi]].line),
                tl.id
            )),
        }
        sig.links = links;
        signals.push(sig);
    }

    // Movements into the specs.
    for (xi, list) in mvs.iter().enumerate() {
        ix_specs[xi].movements = list
            .iter()
            .enumerate()
            .map(|(k, m)| MovementSpec {
                id: format!("m{k}"),
                from: link_of[m.from].clone().unwrap_or_default(),
                to: link_of[m.to].clone().unwrap_or_default(),
                turn: Some(m.turn),
                lanes: m.lanes.iter().copied().collect(),
                saturation_flow_veh_h: None,
            })
            .collect();
    }

    // Probe: the signal structure with generous plans, to learn what Greenwave's geometry
    // demands (minimum greens, intergreens) and which programs it cannot run.
    let mut spec = NetworkSpec {
        kind: "network".into(),
        version: 1,
        name: opts.name.clone(),
        description: Some(format!(
            "Imported from SUMO network {file} by `greenwave sumo import`"
        )),
        safety: SafetySpec::default(),
        nodes,
        intersections: ix_specs,
        links,
        coordination_groups: Vec::new(),
    };
    let probe_net = loop {
        let mut probe = spec.clone();
        probe.safety.cycle_max_s = 300.0;
        probe.safety.cycle_min_s = 20.0;
        for (xi, d) in drafts.iter().enumerate() {
            if let Some(d) = d {
                set_signals(&mut probe.intersections[xi], d, None);
            }
        }
        match Network::from_spec(&probe) {
            Ok(n) => break n,
            Err(problems) => {
                let mut bad: BTreeMap<usize, Vec<String>> = BTreeMap::new();
                let mut other = Vec::new();
                for p in problems {
                    match p.path.0.as_slice() {
                        [Seg::Key(k), Seg::Index(i), ..]
                            if k == "intersections" && drafts[*i].is_some() =>
                        {
                            bad.entry(*i).or_default().push(p.to_string())
                        }
                        _ => other.push(p.to_string()),
                    }
                }
                if !other.is_empty() || bad.is_empty() {
                    return Err(SumoError {
                        file: file.into(),
                        line: 1,
                        place: "net".into(),
                        message: format!(
                            "the imported network does not pass Greenwave's checks: {}",
                            other.join("; ")
                        ),
                    });
                }
                for (xi, ps) in bad {
                    let j = &s.junctions[junction_of[xi]];
                    if let Some(d) = drafts[xi].as_mut().filter(|d| !d.peds.is_empty()) {
                        // First without its crossings: the vehicle program may still map.
                        let crossings: Vec<String> =
                            d.peds.iter().flat_map(|p| p.sumo.iter().cloned()).collect();
                        d.peds.clear();
                        report.push(format!(
                            "{}: junction {:?}: pedestrian crossings {} not imported: Greenwave's validator rejects them in their stages: {}",
                            at(j.line),
                            spec.intersections[xi].id,
                            crossings.join(", "),
                            ps.join("; ")
                        ));
                        continue;
                    }
                    drafts[xi] = None;
                    report.push(format!(
                        "{}: junction {:?} imported without signals, as a priority junction: Greenwave's validator rejects its program: {}",
                        at(j.line),
                        spec.intersections[xi].id,
                        ps.join("; ")
                    ));
                }
            }
        }
    };

    // Plans: SUMO's timing, lengthened where Greenwave's rules need more.
    let mut imported_crossings = 0;
    for xi in 0..spec.intersections.len() {
        let Some(d) = drafts[xi].clone() else {
            continue;
        };
        let ix = &probe_net.intersections[xi];
        let id = spec.intersections[xi].id.clone();
        let mut notes = Vec::new();
        let mut seq = d.seq.clone();
        let n = seq.len();
        let sname = |k: usize| ix.stages[seq_stage(&d, k)].id.clone();
        for k in 0..n {
            let min = ix.stage_min_green(seq[k].0);
            if seq[k].1 < min {
                notes.push(format!(
                    "stage {} green {} s lengthened to the minimum green {} s",
                    sname(k),
                    fmt_s(seq[k].1),
                    fmt_s(min)
                ));
                seq[k].1 = min;
            }
            let req = plan::required_interstage(ix, seq[k].0, seq[(k + 1) % n].0);
            if seq[k].2 < req {
                notes.push(format!(
                    "interstage {} -> {} {} s lengthened to {} s (yellow and all-red from Greenwave's geometry)",
                    sname(k),
                    sname((k + 1) % n),
                    fmt_s(seq[k].2),
                    fmt_s(req)
                ));
                seq[k].2 = req;
            }
        }
        let safety = intersections::model::Safety::default();
        let mut cycle = seq.iter().fold(Ms::ZERO, |a, s| a + s.1 + s.2);
        if cycle < safety.cycle_min {
            let k = (0..n).max_by_key(|&k| seq[k].1).unwrap_or(0);
            let add = safety.cycle_min - cycle;
            seq[k].1 += add;
            notes.push(format!(
                "cycle {} s lengthened to Greenwave's minimum {} s (stage {} green)",
                fmt_s(cycle),
                fmt_s(safety.cycle_min),
                sname(k)
            ));
            cycle = safety.cycle_min;
        }
        let mut reject = None;
        if cycle > safety.cycle_max {
            // Shorten the greens in proportion, down to their minimums.
            let fixed: Ms = seq.iter().fold(Ms::ZERO, |a, s| a + s.2);
            let mins: Vec<Ms> = seq.iter().map(|s| ix.stage_min_green(s.0)).collect();
            let min_total = mins.iter().fold(Ms::ZERO, |a, m| a + *m);
            if fixed + min_total > safety.cycle_max {
                reject = Some(format!(
                    "its cycle {} s cannot be brought within Greenwave's maximum {} s",
                    fmt_s(cycle),
                    fmt_s(safety.cycle_max)
                ));
            } else {
                let greens: Ms = seq.iter().fold(Ms::ZERO, |a, s| a + s.1);
                let room = (safety.cycle_max - fixed - min_total).0 as f64;
                let extra = (greens - min_total).0 as f64;
                let mut total = fixed;
                for k in 0..n {
                    let g =
                        mins[k] + Ms(((seq[k].1 - mins[k]).0 as f64 * room / extra).floor() as i64);
                    seq[k].1 = g;
                    total += g;
                }
                seq[0].1 += safety.cycle_max - total;
                notes.push(format!(
                    "cycle {} s is above Greenwave's maximum {} s: greens shortened in proportion",
                    fmt_s(cycle),
                    fmt_s(safety.cycle_max)
                ));
                cycle = safety.cycle_max;
            }
        }
        let plan_spec = plan_of(ix, &d, &seq, cycle);
        if reject.is_none() {
            if let Err(ps) = plan::validate(
                ix,
                &safety,
                &plan_spec,
                &intersections::diag::FieldPath::root(),
            ) {
                reject = Some(format!(
                    "Greenwave's validator rejects its program: {}",
                    ps.iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
        }
        let sig = signals
            .iter_mut()
            .find(|s| s.intersection == id)
            .expect("every drafted junction has a signal record");
        if let Some(w) = reject {
            report.push(format!(
                "{}: junction {id:?} imported without signals, as a priority junction: {w}",
                at(s.junctions[junction_of[xi]].line)
            ));
            continue;
        }
        if cycle != d.sumo_cycle || !notes.is_empty() {
            report.push(format!(
                "{}: tlLogic {:?} at {id:?}: program made valid for Greenwave, cycle {} s -> {} s: {}",
                at(s.tls.iter().find(|t| t.id == sig.tls).map(|t| t.line).unwrap_or(0)),
                sig.tls,
                fmt_s(d.sumo_cycle),
                fmt_s(cycle),
                notes.join("; ")
            ));
        }
        sig.cycle = Some(cycle);
        sig.lengthened = notes;
        if !d.peds.is_empty() {
            let n: usize = d.peds.iter().map(|p| p.sumo.len()).sum();
            report.push(format!(
                "{}: junction {id:?}: {n} pedestrian crossings imported as {} pedestrian groups (walk and clearance by Greenwave's rules, the crossing as wide as the leg): {}",
                at(s.junctions[junction_of[xi]].line),
                d.peds.len(),
                d.peds
                    .iter()
                    .enumerate()
                    .map(|(k, p)| format!("ped{} = {} over link {}", k + 1, p.sumo.join(" + "), p.crossing))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            imported_crossings += n;
        }
        set_signals(&mut spec.intersections[xi], &d, Some(plan_spec));
    }
    let unsignalled = s.crossings.len() - imported_crossings;
    if unsignalled > 0 {
        report.push(format!(
            "{unsignalled} of {} pedestrian crossings not imported: Greenwave models pedestrians as the signal groups of a signalised intersection (crossings at junctions without lights, and those reported above)",
            s.crossings.len()
        ));
    }
    for sig in &signals {
        if let Some(xi) = spec
            .intersections
            .iter()
            .position(|i| i.id == sig.intersection)
        {
            if sig.cycle.is_some() {
                spec.intersections[xi].control = ControlKind::Signal;
            }
        }
    }

    let sumo_pairs: BTreeSet<(usize, usize)> = s
        .conns
        .iter()
        .filter_map(|c| Some((*edge_index.get(&c.from)?, *edge_index.get(&c.to)?)))
        .collect();
    let mapping = Mapping {
        link_of,
        starts_at_boundary: s
            .edges
            .iter()
            .map(|e| role[jidx[e.from.as_str()]] == Role::Boundary)
            .collect(),
        ends_at_boundary: s
            .edges
            .iter()
            .map(|e| role[jidx[e.to.as_str()]] == Role::Boundary)
            .collect(),
        to_intersection: s
            .edges
            .iter()
            .map(|e| (role[jidx[e.to.as_str()]] == Role::Intersection).then(|| greenwave_id(&e.to)))
            .collect(),
        from_intersection: s
            .edges
            .iter()
            .map(|e| {
                (role[jidx[e.from.as_str()]] == Role::Intersection).then(|| greenwave_id(&e.from))
            })
            .collect(),
        movements: mvs
            .iter()
            .flat_map(|l| l.iter().map(|m| (m.from, m.to)))
            .collect(),
        successors: {
            let mut succ = vec![Vec::new(); s.edges.len()];
            for &(f, t) in &sumo_pairs {
                succ[f].push(t);
            }
            succ
        },
        sumo_pairs,
        edges: s.edges.clone(),
        edge_index,
    };

    // Detectors.
    if detectors.is_empty() {
        place_detectors(&mut spec, &mut report);
    } else {
        for src in detectors {
            crate::detectors::read_loops(*src, &mut spec, &mapping, &mut report)?;
        }
    }

    // Demand.
    let demand = if routes.is_empty() {
        None
    } else {
        crate::routes::demand(routes, &spec, &mapping, opts, &mut report)?
    };

    // The result must pass Greenwave's checks.
    if let Err(ps) = Network::from_spec(&spec) {
        return Err(SumoError {
            file: file.into(),
            line: 1,
            place: "net".into(),
            message: format!(
                "the imported network does not pass Greenwave's checks: {}",
                ps.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        });
    }
    Ok(Imported {
        network: spec,
        demand,
        signals,
        report,
    })
}

fn check_len(id: &str, file: &str, line: usize, place: &str) -> Result<(), SumoError> {
    if id.is_empty() || id.len() > 64 {
        return Err(SumoError {
            file: file.into(),
            line,
            place: place.into(),
            message: format!("id {id:?} must be 1 to 64 characters for Greenwave"),
        });
    }
    Ok(())
}

fn seq_stage(d: &Draft, k: usize) -> usize {
    d.seq[k].0
}

fn plan_of(
    ix: &intersections::Intersection,
    d: &Draft,
    seq: &[(usize, Ms, Ms)],
    cycle: Ms,
) -> PlanSpec {
    PlanSpec {
        id: PLAN_ID.into(),
        cycle_s: cycle.as_secs_f64(),
        offset_s: d.offset.rem_euclid(cycle).as_secs_f64(),
        stages: seq
            .iter()
            .map(|(s, g, i)| StageTimeSpec {
                stage: ix.stages[*s].id.clone(),
                green_s: g.as_secs_f64(),
                interstage_s: Some(i.as_secs_f64()),
            })
            .collect(),
    }
}

/// Signal groups, stages and a plan (the given one, or a generous probe plan).
fn set_signals(ix: &mut IntersectionSpec, d: &Draft, plan: Option<PlanSpec>) {
    ix.control = ControlKind::Signal;
    ix.signal_groups = d
        .groups
        .iter()
        .enumerate()
        .map(|(g, (ms, prot, _))| SignalGroupSpec {
            id: format!("sg{}", g + 1),
            kind: GroupKind::Vehicle,
            movements: ms.iter().map(|m| format!("m{m}")).collect(),
            protection: *prot,
            crossing: None,
            crossing_length_m: None,
            min_green_s: None,
        })
        .collect();
    // Pedestrian groups: the crossing's length is Greenwave's width of the leg, as for every
    // network (docs/formats.md), so walk and clearance follow Greenwave's own rules.
    ix.signal_groups
        .extend(d.peds.iter().enumerate().map(|(k, p)| SignalGroupSpec {
            id: format!("ped{}", k + 1),
            kind: GroupKind::Pedestrian,
            movements: Vec::new(),
            protection: Protection::Protected,
            crossing: Some(p.crossing.clone()),
            crossing_length_m: None,
            min_green_s: None,
        }));
    ix.stages = d
        .stages
        .iter()
        .enumerate()
        .map(|(k, gs)| StageSpec {
            id: format!("stage{}", k + 1),
            groups: gs
                .iter()
                .map(|g| format!("sg{}", g + 1))
                .chain(
                    d.peds
                        .iter()
                        .enumerate()
                        .filter(|(_, p)| p.stages.contains(&k))
                        .map(|(n, _)| format!("ped{}", n + 1)),
                )
                .collect(),
        })
        .collect();
    // The probe's greens: 10 s, or with pedestrian groups as long as the probe's 300 s cycle
    // allows, so that their walk and clearance fit and only the structure is probed.
    let n = d.seq.len() as f64;
    let green = if d.peds.is_empty() {
        10.0
    } else {
        ((300.0 - 12.0 * n) / n).floor().max(10.0)
    };
    let plan = plan.unwrap_or_else(|| PlanSpec {
        id: PLAN_ID.into(),
        cycle_s: (green + 12.0) * n,
        offset_s: 0.0,
        stages: d
            .seq
            .iter()
            .map(|(s, _, _)| StageTimeSpec {
                stage: format!("stage{}", s + 1),
                green_s: green,
                interstage_s: Some(12.0),
            })
            .collect(),
    });
    ix.plans = vec![plan];
    ix.schedule = Vec::new();
}

/// Without loops from SUMO: a stop-line and an advance detector on every lane of every
/// signalised approach (the advance one where the link is long enough).
fn place_detectors(spec: &mut NetworkSpec, report: &mut Vec<String>) {
    let mut no_advance = 0;
    let mut too_long = 0;
    let mut placed = 0;
    let by_id: BTreeMap<&str, &LinkSpec> = spec.links.iter().map(|l| (l.id.as_str(), l)).collect();
    for ix in spec.intersections.iter_mut() {
        if ix.control != ControlKind::Signal {
            continue;
        }
        let mut approaches: Vec<&LinkSpec> = Vec::new();
        for mv in &ix.movements {
            if let Some(l) = by_id.get(mv.from.as_str()) {
                if !approaches.iter().any(|a| a.id == l.id) {
                    approaches.push(l);
                }
            }
        }
        for l in approaches {
            let len = l.length_m.unwrap_or(10.0);
            for lane in 0..l.lanes {
                // The advance loop moves closer on a short link, but stays out of the
                // stop-line zone.
                let adv = ADVANCE_DISTANCE_M.min(len - 3.0);
                for (kind, what, dist) in [
                    (DetectorKind::StopLine, "stop", STOP_LINE_DISTANCE_M),
                    (DetectorKind::Advance, "adv", adv),
                ] {
                    if dist + 2.0 > len
                        || (kind == DetectorKind::Advance && dist <= STOP_LINE_ZONE_M)
                    {
                        no_advance += 1;
                        continue;
                    }
                    let id = format!("{}_{what}_{lane}", l.id);
                    if id.len() > 64 {
                        too_long += 1;
                        continue;
                    }
                    placed += 1;
                    ix.detectors.push(DetectorSpec {
                        id,
                        link: l.id.clone(),
                        lane,
                        distance_m: dist,
                        kind,
                        length_m: None,
                    });
                }
            }
        }
    }
    report.push(format!(
        "no E1 detectors given: {placed} detectors placed, a stop-line one {STOP_LINE_DISTANCE_M} m and an advance one {ADVANCE_DISTANCE_M} m (or 3 m short of the link's start) before the stop line on every lane of every signalised approach"
    ));
    if no_advance > 0 {
        report.push(format!(
            "{no_advance} advance detectors not placed: their link is shorter than {} m",
            STOP_LINE_ZONE_M + 5.0
        ));
    }
    if too_long > 0 {
        report.push(format!(
            "{too_long} detectors not placed: their id would be longer than 64 characters"
        ));
    }
}

/// The TOML text of a network spec, with a header.
pub fn network_toml(n: &NetworkSpec) -> Result<String, toml::ser::Error> {
    Ok(format!(
        "# Written by `greenwave sumo import`; see import-report.txt for what was not mapped.\n{}",
        toml::to_string(n)?
    ))
}

/// The TOML text of a demand spec, with a header.
pub fn demand_toml(d: &DemandSpec) -> Result<String, toml::ser::Error> {
    Ok(format!(
        "# Written by `greenwave sumo import` from SUMO routes.\n{}",
        toml::to_string(d)?
    ))
}
