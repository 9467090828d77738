//! A checked Greenwave network, its plans and its demand as SUMO files (issue 5, item 2).
//!
//! What maps to what:
//! - boundary nodes and intersections become `<node>`s (signalised ones `traffic_light`, the
//!   others `priority`); links become `<edge>`s with their lanes, speed, length and lane width;
//! - every lane of every movement becomes one `<connection>` (lane-to-lane). The target lane is
//!   the same rank among the exit's lanes counted from the right (right turns and throughs) or
//!   from the left (left turns and U-turns), clamped to the exit's lanes. At a signalised
//!   intersection the connections get linkIndex 0, 1, ... in the order of the intersection's
//!   movements and, within a movement, of its lanes;
//! - the plan in force (a plan file's, else the one the schedule runs at `start_of_day`)
//!   becomes a static `<tlLogic>`: one phase per interval in which no vehicle signal group
//!   changes colour, phase 0 starting with the first stage's green, so SUMO's `offset` (phase 0
//!   starts at simulation time `offset`) is our offset. Green is `G`, or `g` for the left turns
//!   and U-turns of a permissive group (they yield); the yellow of a group whose green ends runs
//!   in the interstage as in our plans (`y`); red-yellow is `u`. Pedestrian groups are not
//!   exported by default (SUMO's program then has only the vehicle groups' links); with
//!   [`ExportOptions::crossings`] every edge gets a sidewalk and each pedestrian group of a
//!   signalised intersection a `<crossing>` over its leg, whose `linkIndex` follows the
//!   vehicle links and whose column shows the group's walk (`G`, red from its clearance on;
//!   in actuated programs the walk comes first, [`with_walks_actuated`]), and the turns of
//!   permissive groups are `g`, as they yield to the pedestrians;
//! - demand: per entry a `<routeDistribution>` of routes drawn from the turning ratios, and per
//!   entry and time slice a `<flow>` with exponential headways (`period="exp(rate)"`: Poisson
//!   arrivals at the slice's rate, as our simulator draws them), `departLane="best"`,
//!   `departSpeed="max"`, and one vehicle type with our simulator's Krauss parameters.
//!
//! Isolated actuated operation ([`ExportOptions::operation`] `actuated`, the cabinet's
//! [`Operation::Actuated`]): the same phases, in the additional file as `type="actuated"`
//! programs. The phase that is exactly one plan stage's green gets `minDur` = the stage's
//! minimum ([`Intersection::stage_min_green`](intersections::Intersection::stage_min_green)) and
//! `maxDur` = its maximum ([`ActuatedParams::max_greens`]: plan green × factor), `duration` =
//! the plan's green; every other phase (yellows, all-reds, red-yellows) is fixed
//! (`minDur` = `maxDur` = `duration`), so clearances are never shortened; `offset` is 0 (no
//! cycle, no coordination). The plan with every stage at its minimum must pass the plan
//! validator (an intergreen across a shortened stage), else that program stays static with a
//! note ([`actuate`]). The net's own program (`.tll.xml`) stays static: the actuated one names
//! loops that only the detectors file defines. SUMO gaps a phase out
//! when none of its loops has seen a vehicle for `max-gap` = the passage time. SUMO takes one
//! loop per lane (`<param key="LANE" value="LOOP"/>`): the lane's stop-line loop of
//! [`SumoFiles::detectors`], else its advance loop; a lane with neither gets `NO_DETECTOR`
//! (Greenwave's stage without detectors gaps out at its minimum too). With
//! [`ExportOptions::skip_stages`] (off by default) programs of three stages or more skip
//! stages as Greenwave's machine does: each stage's green lists SUMO's
//! `next` phases, one transition to every other stage, and the transitions that the plan's
//! sequence does not hold are appended after its phases, each checked by the plan validator
//! ([`intersections::plan::validate_part`]) as the two-stage part of a plan it is. Without it
//! SUMO serves every stage in order every cycle. What SUMO's actuated logic does not do as
//! Greenwave's even then: among the stages whose loops call it takes
//! the one with the most calling loops (or the one waiting longest, past 180 s) where
//! Greenwave takes the next calling stage in the plan's order; with no call it moves on to the
//! next stage at its minimum where Greenwave rests in green; and it reads one loop per lane
//! where Greenwave reads the stop-line and the advance loop together.
//!
//! Routes: the turning ratios define a tree of routes per entry, which on a large grid has far
//! too many leaves to write. The tree is expanded best first (most probable branch first) up to
//! `max_routes_per_entry` routes; a branch left unexpanded then keeps its whole probability and
//! follows its most likely turns to the end of the network. So the first decisions of every
//! vehicle follow the ratios exactly and only rare long routes are simplified; the probability
//! that was simplified is reported per entry ([`RouteSet::simplified`]).

use std::collections::{BTreeMap, BinaryHeap};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;

use intersections::control::ActuatedParams;
use intersections::diag::FieldPath;
use intersections::messages::Operation;
use intersections::model::Endpoint;
use intersections::plan::Span;
use intersections::spec::{
    ControlKind, DetectorKind, GroupKind, PlanSpec, Protection, StageTimeSpec, Turn,
};
use intersections::{demand::Demand, GroupIdx, IntersectionIdx, LinkIdx, Ms, Network, Plan};

/// What stops an export.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ExportError {
    #[error(
        "{what} id {id:?} starts with ':', which SUMO keeps for the inside of junctions; rename it"
    )]
    ReservedId { what: &'static str, id: String },
    #[error("signalised intersection {intersection:?} has no plan in force at {at}")]
    NoPlan { intersection: String, at: Ms },
    #[error("{}", problems.join("; "))]
    Operation { problems: Vec<String> },
}

/// The vehicle type written into the routes: by default our simulator's Krauss driver
/// (`simulator::DriverParams::default()`): SUMO's passenger car with no dawdling
/// (`sigma = 0`), a reaction time of 1.4 s, and every driver at the speed limit
/// (`speedDev = 0`).
#[derive(Clone, Debug, PartialEq)]
pub struct VehicleType {
    pub accel_mps2: f64,
    pub decel_mps2: f64,
    pub tau_s: f64,
    pub length_m: f64,
    pub min_gap_m: f64,
    pub sigma: f64,
    /// Spread of the drivers' speed factor around 1 (SUMO's default is 0.1).
    pub speed_dev: f64,
}

impl Default for VehicleType {
    fn default() -> Self {
        VehicleType {
            accel_mps2: 2.6,
            decel_mps2: 4.5,
            tau_s: 1.4,
            length_m: 5.0,
            min_gap_m: 2.5,
            sigma: 0.0,
            speed_dev: 0.0,
        }
    }
}

/// How to export.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportOptions {
    /// `programID` of the programs in the additional file (the net's own program is `"0"`).
    pub program_id: String,
    /// Time of day at simulation time 0: which scheduled plan is in force.
    pub start_of_day: Ms,
    pub vehicle: VehicleType,
    /// Routes written per entry (see the module documentation).
    pub max_routes_per_entry: usize,
    /// Longest route, in links (our simulator cuts routes at 512 movements).
    pub max_route_links: usize,
    /// Write explicit vehicles instead of flows: the very vehicles (arrival times, entries and
    /// routes) that Greenwave's simulator generates with this seed (see [`sample_vehicles`]).
    pub vehicles_of_seed: Option<u64>,
    /// Aggregation period of the E1 loops' output, seconds (`greenwave plan` takes intervals
    /// up to 1 h).
    pub detector_period_s: u32,
    /// How the additional file's programs run: `coordinated` (static programs, the plans'
    /// cycle and offset) or isolated `actuated` (see the module documentation). The net's own
    /// program (`tll`) is static either way.
    pub operation: Operation,
    /// Actuated programs of three stages or more skip stages nobody calls (SUMO's `next`
    /// lists, see [`actuate`]). Off by default: SUMO picks among the calling stages by how
    /// many loops call, not in the plan's order as Greenwave does, which passes over stages
    /// with few loops; measured worse on three of the four shipped networks
    /// (docs/benchmarks.md, "Stage skipping in SUMO").
    pub skip_stages: bool,
    /// SUMO's names of the links and lanes of a network imported from SUMO (`--onto`, from
    /// [`crate::onto::sumo_names`]): the routes and loops are also written with them
    /// ([`SumoFiles::onto_routes`], [`SumoFiles::onto_detectors`]), to run on SUMO's own net.
    pub onto_names: Option<SumoNames>,
    /// Write the network's pedestrian groups into the plain network as signalised crossings:
    /// every edge gets a sidewalk (SUMO's lane 0, so the vehicle lanes count from 1 in the
    /// plain files and the loops), each pedestrian group of a signalised intersection a
    /// `<crossing>` over its leg with its own `linkIndex` after the vehicle links, the
    /// programs its walk, and the turns of permissive groups yield (`g`), as they yield to
    /// pedestrians in Greenwave. Off by default: the agreement and closed-loop figures are
    /// measured without (docs/sumo.md).
    pub crossings: bool,
}

/// SUMO's names for a network's links and lanes, where they differ from Greenwave's: the
/// import renames ids with characters Greenwave does not take (OpenStreetMap's `#`) and
/// numbers only the lanes cars may use (a sidewalk is SUMO's lane 0). The plain network with
/// crossings ([`ExportOptions::crossings`]) keeps the ids and shifts every lane by one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SumoNames {
    /// Greenwave link id -> SUMO edge id.
    pub edges: BTreeMap<String, String>,
    /// (Greenwave link id, Greenwave lane) -> SUMO lane index.
    pub lanes: BTreeMap<(String, u32), usize>,
    /// Added to a lane that [`SumoNames::lanes`] does not name.
    pub lane_offset: u32,
}

impl SumoNames {
    fn edge<'a>(&'a self, link: &'a str) -> &'a str {
        self.edges.get(link).map_or(link, String::as_str)
    }
    fn lane(&self, link: &str, lane: u32) -> usize {
        self.lanes
            .get(&(link.to_string(), lane))
            .copied()
            .unwrap_or((lane + self.lane_offset) as usize)
    }
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            program_id: "greenwave".into(),
            start_of_day: Ms::ZERO,
            vehicle: VehicleType::default(),
            max_routes_per_entry: 256,
            max_route_links: 513,
            vehicles_of_seed: None,
            detector_period_s: 300,
            operation: Operation::Coordinated,
            skip_stages: false,
            onto_names: None,
            crossings: false,
        }
    }
}

/// One lane-to-lane connection.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    pub intersection: IntersectionIdx,
    /// Index into the intersection's movements.
    pub movement: usize,
    pub from: LinkIdx,
    pub to: LinkIdx,
    pub from_lane: u32,
    pub to_lane: u32,
    /// Position in the state strings of the intersection's program (signalised only).
    pub link_index: Option<usize>,
}

/// One phase of a SUMO program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase {
    pub duration: Ms,
    pub state: String,
    /// The plan position whose whole green this phase is (`None`: an interstage, or a phase
    /// that joins a green with its neighbours because no vehicle signal changes between them).
    pub stage: Option<usize>,
    /// `minDur` and `maxDur` of an actuated program's green phase (`None`: fixed).
    pub bounds: Option<(Ms, Ms)>,
    /// SUMO's `next`: the phases that may follow (`None`: the next in the list). A stage's
    /// green in an actuated program lists the first phase of its transition to every other
    /// stage, so SUMO can skip a stage nobody calls ([`actuate`]).
    pub next: Option<Vec<usize>>,
}

/// A plan as a SUMO program: static, or actuated when [`Program::actuation`] says so.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub intersection: IntersectionIdx,
    pub plan_id: String,
    pub cycle: Ms,
    pub offset: Ms,
    pub phases: Vec<Phase>,
    pub actuation: Option<Actuation>,
    /// Per pedestrian group of the intersection, when it shows walk: intervals of program
    /// time (from the first phase's start) within `[0, cycle)`. The phases carry vehicle
    /// links only; [`crate::onto`] writes crossings from these.
    pub walks: Vec<(GroupIdx, Vec<(Ms, Ms)>)>,
}

/// What makes a program actuated besides its phases' bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct Actuation {
    /// SUMO's `max-gap`: Greenwave's passage time.
    pub passage: Ms,
    /// Every approach lane of the intersection's movements (link, lane), with the id of the E1
    /// loop SUMO gaps out on (as in [`SumoFiles::detectors`]), `None` for a lane without one.
    pub lane_loops: Vec<(LinkIdx, u32, Option<String>)>,
}

/// SUMO's value of a lane parameter that tells an actuated program to use no loop there.
pub const NO_DETECTOR: &str = "NO_DETECTOR";

/// The routes of one entry, with probabilities summing to 1.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteSet {
    pub entry: LinkIdx,
    pub routes: Vec<(Vec<LinkIdx>, f64)>,
    /// Probability carried by routes whose tail follows the most likely turns instead of the
    /// ratios (see the module documentation).
    pub simplified: f64,
}

/// Everything an export produced: the file contents and the structures they were written from.
#[derive(Clone, Debug, PartialEq)]
pub struct SumoFiles {
    /// File stem (the network's name).
    pub name: String,
    pub nodes: String,
    pub edges: String,
    pub connections: String,
    /// `netconvert --tllogic-files`: the programs (programID `"0"`) and each connection's
    /// traffic light and linkIndex.
    pub tll: String,
    /// `sumo -a`: the same programs under [`ExportOptions::program_id`].
    pub tls_additional: String,
    /// `sumo -a`: one E1 loop per detector of the network, id `<intersection>.<detector>`
    /// (detector ids are unique per intersection only; `greenwave sumo counts` maps these ids
    /// back), its output written to `<name>.e1.out.xml`.
    pub detectors: String,
    /// The demand, when one was given.
    pub routes: Option<String>,
    /// With [`ExportOptions::onto_names`]: the loops and the demand in SUMO's names, for
    /// SUMO's own net (`<name>.onto.det.add.xml`, `<name>.onto.rou.xml`).
    pub onto_detectors: Option<String>,
    pub onto_routes: Option<String>,
    pub connection_list: Vec<Connection>,
    pub programs: Vec<Program>,
    pub route_sets: Vec<RouteSet>,
    /// What was not exported or was simplified, for the user.
    pub notes: Vec<String>,
}

impl SumoFiles {
    /// File names (in the output folder) and contents.
    pub fn files(&self) -> Vec<(String, &str)> {
        let n = &self.name;
        let mut v = vec![
            (format!("{n}.nod.xml"), self.nodes.as_str()),
            (format!("{n}.edg.xml"), self.edges.as_str()),
            (format!("{n}.con.xml"), self.connections.as_str()),
            (format!("{n}.tll.xml"), self.tll.as_str()),
            (format!("{n}.tls.add.xml"), self.tls_additional.as_str()),
            (format!("{n}.det.add.xml"), self.detectors.as_str()),
        ];
        if let Some(r) = &self.routes {
            v.push((format!("{n}.rou.xml"), r.as_str()));
        }
        if let Some(d) = &self.onto_detectors {
            v.push((format!("{n}.onto.det.add.xml"), d.as_str()));
        }
        if let Some(r) = &self.onto_routes {
            v.push((format!("{n}.onto.rou.xml"), r.as_str()));
        }
        v
    }
}

/// Escape text for an XML attribute value.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

/// Seconds with at most three decimals, as SUMO reads them.
pub(crate) fn secs(t: Ms) -> String {
    let s = format!("{:.3}", t.as_secs_f64());
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// A number with a fixed number of decimals.
fn num(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}")
}

const HEADER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

fn banner(net: &Network, what: &str) -> String {
    format!(
        "{HEADER}<!-- {what} of Greenwave network \"{}\", written by `greenwave sumo export` -->\n",
        esc(&net.name).replace("--", "- -")
    )
}

/// Export a network, the plans to run (the first given for an intersection wins; the others
/// run the plan their schedule puts in force at `opts.start_of_day`) and optionally a demand.
pub fn export(
    net: &Network,
    plans: &[(IntersectionIdx, Plan)],
    demand: Option<&Demand>,
    opts: &ExportOptions,
) -> Result<SumoFiles, ExportError> {
    for n in &net.nodes {
        reserved("node", &n.id)?;
    }
    for ix in &net.intersections {
        reserved("intersection", &ix.id)?;
    }
    for l in &net.links {
        reserved("link", &l.id)?;
    }
    let problems = opts.operation.problems("operation");
    if !problems.is_empty() {
        return Err(ExportError::Operation { problems });
    }
    let actuated = opts.operation.actuated_params();
    let mut notes = Vec::new();
    let connection_list = connections(net);
    let mut programs = Vec::new();
    for (i, ix) in net.intersections.iter().enumerate() {
        if ix.control != ControlKind::Signal {
            continue;
        }
        let ixi = IntersectionIdx(i);
        let plan = match plans.iter().find(|(k, _)| *k == ixi) {
            Some((_, p)) => p,
            None => ix
                .scheduled_plan(opts.start_of_day)
                .ok_or_else(|| ExportError::NoPlan {
                    intersection: ix.id.clone(),
                    at: opts.start_of_day,
                })?,
        };
        if ix.schedule.len() > 1 && !plans.iter().any(|(k, _)| *k == ixi) {
            notes.push(format!(
                "intersection {:?}: only plan {:?} (in force at the start) is exported; its time-of-day schedule is not",
                ix.id, plan.id
            ));
        }
        let peds = ix
            .groups
            .iter()
            .filter(|g| g.kind == GroupKind::Pedestrian)
            .count();
        if peds > 0 && !opts.crossings {
            notes.push(format!(
                "intersection {:?}: {peds} pedestrian signal groups are not exported to the plain network (it has no crossings unless `--crossings`; `--onto` shows them on the crossings of the SUMO network a network was imported from)",
                ix.id
            ));
        }
        let own: Vec<&Connection> = connection_list
            .iter()
            .filter(|c| c.intersection == ixi)
            .collect();
        let mut p = program(net, ixi, plan, &own);
        if let Some(params) = &actuated {
            if let Some(note) = actuate(net, &mut p, plan, params, &own, opts.skip_stages) {
                notes.push(note);
            }
        }
        programs.push(p);
    }
    // The programs of the plain network: with crossings, each pedestrian group's walk after
    // the vehicle links, and the turns of permissive groups yielding.
    let walked_programs: Vec<Program>;
    let plain_programs: &[Program] = if opts.crossings {
        walked_programs = programs
            .iter()
            .map(|p| {
                let own: Vec<&Connection> = connection_list
                    .iter()
                    .filter(|c| c.intersection == p.intersection)
                    .collect();
                let (q, note) = with_crossings(net, p, &own);
                notes.extend(note);
                q
            })
            .collect();
        &walked_programs
    } else {
        &programs
    };
    // The plain network's lanes: from 1 when every edge has a sidewalk.
    let plain_names = SumoNames {
        lane_offset: u32::from(opts.crossings),
        ..SumoNames::default()
    };
    let route_sets = match demand {
        Some(_) if opts.vehicles_of_seed.is_some() => Vec::new(),
        Some(d) => d
            .entries
            .iter()
            .map(|e| routes(net, d, e.link, opts))
            .collect(),
        None => Vec::new(),
    };
    for rs in &route_sets {
        if rs.simplified > 0.001 {
            notes.push(format!(
                "entry {:?}: {:.1}% of its vehicles take a route whose tail follows the most likely turns (route cap {} per entry)",
                net.links[rs.entry.0].id,
                rs.simplified * 100.0,
                opts.max_routes_per_entry
            ));
        }
    }
    // The demand (the seed's vehicles sampled once), in the given names.
    let vehicles = match (demand, opts.vehicles_of_seed) {
        (Some(d), Some(seed)) => Some(sample_vehicles(net, d, seed)),
        _ => None,
    };
    let demand_xml = |names: &SumoNames| {
        demand.map(|d| match &vehicles {
            Some(vs) => vehicles_xml(net, vs, &opts.vehicle, names),
            None => routes_xml(net, d, &route_sets, &opts.vehicle, names),
        })
    };
    Ok(SumoFiles {
        name: net.name.clone(),
        nodes: nodes_xml(net),
        edges: edges_xml(net, opts.crossings),
        connections: connections_xml(
            net,
            &connection_list,
            opts.crossings.then_some(&programs[..]),
            &plain_names,
        ),
        tll: tll_xml(net, plain_programs, &connection_list, &plain_names),
        tls_additional: additional_xml(net, plain_programs, &opts.program_id, &plain_names),
        detectors: detectors_xml(net, opts.detector_period_s, &plain_names),
        routes: demand_xml(&SumoNames::default()),
        onto_detectors: opts
            .onto_names
            .as_ref()
            .map(|n| detectors_xml(net, opts.detector_period_s, n)),
        onto_routes: opts.onto_names.as_ref().and_then(demand_xml),
        connection_list,
        programs,
        route_sets,
        notes,
    })
}

fn reserved(what: &'static str, id: &str) -> Result<(), ExportError> {
    if id.starts_with(':') {
        Err(ExportError::ReservedId {
            what,
            id: id.into(),
        })
    } else {
        Ok(())
    }
}

/// Every lane of every movement as a connection, linkIndex numbered per signalised
/// intersection.
pub fn connections(net: &Network) -> Vec<Connection> {
    let mut out = Vec::new();
    for (i, ix) in net.intersections.iter().enumerate() {
        let signal = ix.control == ControlKind::Signal;
        let mut next_index = 0;
        for (k, m) in ix.movements.iter().enumerate() {
            let mut lanes = m.lanes.clone();
            lanes.sort_unstable();
            lanes.dedup();
            let n = lanes.len() as u32;
            let exit_lanes = net.links[m.to.0].lanes;
            for (r, &from_lane) in lanes.iter().enumerate() {
                let r = r as u32;
                let to_lane = match m.turn {
                    Turn::Left | Turn::Uturn => (exit_lanes + r).saturating_sub(n),
                    Turn::Right | Turn::Through => r,
                }
                .min(exit_lanes - 1);
                let link_index = signal.then(|| {
                    next_index += 1;
                    next_index - 1
                });
                out.push(Connection {
                    intersection: IntersectionIdx(i),
                    movement: k,
                    from: m.from,
                    to: m.to,
                    from_lane,
                    to_lane,
                    link_index,
                });
            }
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Colour {
    Red,
    RedYellow,
    Green,
    Yellow,
}

/// Is `t` in `[start, end)` taken modulo `cycle`?
fn in_cyclic(t: Ms, start: Ms, end: Ms, cycle: Ms) -> bool {
    end > start && (t - start).rem_euclid(cycle) < end - start
}

fn colour_at(spans: &[Span], red_yellow: Ms, t: Ms, cycle: Ms) -> Colour {
    for s in spans {
        if s.always || in_cyclic(t, s.open, s.green_end, cycle) {
            return Colour::Green;
        }
        if in_cyclic(t, s.green_end, s.clear_end, cycle) {
            return Colour::Yellow;
        }
        if red_yellow > Ms::ZERO && in_cyclic(t, s.open - red_yellow, s.open, cycle) {
            return Colour::RedYellow;
        }
    }
    Colour::Red
}

/// A checked plan as a SUMO program over the intersection's connections (`conns`, in linkIndex
/// order).
pub fn program(net: &Network, ixi: IntersectionIdx, plan: &Plan, conns: &[&Connection]) -> Program {
    let ix = &net.intersections[ixi.0];
    let cycle = plan.cycle;
    let mut cuts = vec![Ms::ZERO];
    for (g, spans) in ix.groups.iter().zip(&plan.spans) {
        if g.kind != GroupKind::Vehicle {
            continue;
        }
        for s in spans.iter().filter(|s| !s.always) {
            cuts.extend([s.open, s.green_end, s.clear_end]);
            if g.red_yellow > Ms::ZERO {
                cuts.push(s.open - g.red_yellow);
            }
        }
    }
    let mut cuts: Vec<Ms> = cuts.into_iter().map(|c| c.rem_euclid(cycle)).collect();
    cuts.sort();
    cuts.dedup();
    let mut phases: Vec<(Ms, Phase)> = Vec::new();
    for (k, &start) in cuts.iter().enumerate() {
        let end = cuts.get(k + 1).copied().unwrap_or(cycle);
        let state: String = conns
            .iter()
            .map(|c| {
                let m = &ix.movements[c.movement];
                let Some(g) = m.group else { return 'O' };
                let group = &ix.groups[g.0];
                match colour_at(&plan.spans[g.0], group.red_yellow, start, cycle) {
                    Colour::Red => 'r',
                    Colour::RedYellow => 'u',
                    Colour::Yellow => 'y',
                    Colour::Green
                        if group.protection == Protection::Permissive
                            && matches!(m.turn, Turn::Left | Turn::Uturn) =>
                    {
                        'g'
                    }
                    Colour::Green => 'G',
                }
            })
            .collect();
        match phases.last_mut() {
            Some((_, p)) if p.state == state => p.duration += end - start,
            _ => phases.push((
                start,
                Phase {
                    duration: end - start,
                    state,
                    stage: None,
                    bounds: None,
                    next: None,
                },
            )),
        }
    }
    // The phases that are exactly one stage's green.
    let starts = plan.stage_starts();
    let phases = phases
        .into_iter()
        .map(|(start, mut p)| {
            p.stage = (0..plan.stages.len())
                .find(|&k| starts[k] == start && plan.stages[k].green == p.duration);
            p
        })
        .collect();
    let walks = ix
        .groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.kind == GroupKind::Pedestrian)
        .map(|(g, _)| {
            let mut iv = Vec::new();
            for s in &plan.spans[g] {
                if s.always {
                    iv.push((Ms::ZERO, cycle));
                    continue;
                }
                let a = s.open.rem_euclid(cycle);
                let b = a + (s.green_end - s.open);
                if b <= cycle {
                    iv.push((a, b));
                } else {
                    iv.push((a, cycle));
                    iv.push((Ms::ZERO, b - cycle));
                }
            }
            (GroupIdx(g), iv)
        })
        .collect();
    Program {
        intersection: ixi,
        plan_id: plan.id.clone(),
        cycle,
        offset: plan.offset,
        phases,
        actuation: None,
        walks,
    }
}

/// Turn a static program from [`program`] into Greenwave's isolated actuated operation of
/// `plan` (see the module documentation): bounds on the phases that are a stage's green, `max-gap`
/// and one loop per approach lane. Returns a note when it cannot: when the plan with every
/// stage at its minimum would break a safety rule (an intergreen between stages that are not
/// neighbours), the program stays static.
pub fn actuate(
    net: &Network,
    p: &mut Program,
    plan: &Plan,
    params: &ActuatedParams,
    conns: &[&Connection],
    skip_stages: bool,
) -> Option<String> {
    let ix = &net.intersections[p.intersection.0];
    let mins: Vec<Ms> = plan
        .stages
        .iter()
        .map(|s| ix.stage_min_green(s.stage))
        .collect();
    if let Err(problems) = shortest_cycle_check(net, p.intersection, plan, &mins) {
        return Some(format!(
            "intersection {:?}: exported static, not actuated: with every stage at its minimum green plan {:?} would break a safety rule ({})",
            ix.id,
            plan.id,
            problems.join("; ")
        ));
    }
    let maxes = params.max_greens(ix, plan);
    for ph in &mut p.phases {
        if let Some(k) = ph.stage {
            ph.duration = ph.duration.max(mins[k]);
            ph.bounds = Some((mins[k], maxes[k]));
        }
    }
    p.actuation = Some(Actuation {
        passage: params.passage,
        lane_loops: lane_loops(net, p.intersection),
    });
    if !skip_stages {
        return None;
    }
    skipping(net, p, plan, &mins, conns).err()
}

/// Stage skipping for an actuated program of `plan` with three stages or more: each stage's
/// green gets SUMO's `next` list, the first phase of its transition to every other stage in
/// the plan's order from the one after it (the first is SUMO's default when no loop calls,
/// so with no traffic the program runs the plan's sequence). The transitions to stages that
/// are not the next one are appended after the plan's phases: each is the interstage of the
/// two-stage plan (this stage, that stage) at their minimum greens with the shortest
/// interstage the intergreens allow, through the plan validator, so a skip clears exactly as
/// Greenwave's machine clears it; each phase of it names the one after, the last the green of
/// the stage it leads to. SUMO chooses among the stages whose loops call (the one whose loops
/// have waited longest, past its 180 s threshold, else the one with the most calling loops);
/// Greenwave takes the next calling stage in the plan's order. An `Err` is a note: the program
/// then serves every stage in order, as before.
fn skipping(
    net: &Network,
    p: &mut Program,
    plan: &Plan,
    mins: &[Ms],
    conns: &[&Connection],
) -> Result<(), String> {
    let n = plan.stages.len();
    if n < 3 {
        return Ok(());
    }
    let ix = &net.intersections[p.intersection.0];
    let green_of = |phases: &[Phase], k: usize| phases.iter().position(|ph| ph.stage == Some(k));
    let greens: Vec<usize> = (0..n)
        .map(|k| green_of(&p.phases, k))
        .collect::<Option<_>>()
        .ok_or_else(|| {
            format!(
                "intersection {:?}: plan {:?} exported actuated without stage skipping: a stage's green shares its phase with a neighbour",
                ix.id, plan.id
            )
        })?;
    let mut safety = net.safety.clone();
    safety.cycle_min = Ms::ZERO;
    safety.cycle_max = Ms(i64::MAX);
    let mut appended: Vec<Phase> = Vec::new();
    let base = p.phases.len();
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); n];
    for a in 0..n {
        // The plan's own transition to the next stage: the phases after a's green.
        next[a].push((greens[a] + 1) % base);
        for j in 2..n {
            let b = (a + j) % n;
            if plan.stages[b].stage == plan.stages[a].stage {
                continue; // a stage the plan runs twice: not a transition
            }
            let two = PlanSpec {
                id: format!("{}-skip-{a}-{b}", plan.id),
                cycle_s: 0.0,
                offset_s: 0.0,
                stages: [a, b]
                    .iter()
                    .map(|&k| StageTimeSpec {
                        stage: ix.stages[plan.stages[k].stage].id.clone(),
                        green_s: mins[k].as_secs_f64(),
                        interstage_s: None,
                    })
                    .collect(),
            };
            // The cycle: the two greens and the shortest interstages between them.
            let (sa, sb) = (plan.stages[a].stage, plan.stages[b].stage);
            let cycle = mins[a]
                + mins[b]
                + intersections::plan::required_interstage(ix, sa, sb)
                + intersections::plan::required_interstage(ix, sb, sa);
            let spec = PlanSpec {
                cycle_s: cycle.as_secs_f64(),
                ..two
            };
            let pair = intersections::plan::validate_part(ix, &safety, &spec, &FieldPath::root())
                .map_err(|ps| {
                    format!(
                        "intersection {:?}: plan {:?} exported actuated without stage skipping: no safe transition from stage {:?} to {:?} ({})",
                        ix.id,
                        plan.id,
                        spec.stages[0].stage,
                        spec.stages[1].stage,
                        ps.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("; ")
                    )
                })?;
            let prog = program(net, p.intersection, &pair, conns);
            let (Some(ga), Some(gb)) = (green_of(&prog.phases, 0), green_of(&prog.phases, 1))
            else {
                return Err(format!(
                    "intersection {:?}: plan {:?} exported actuated without stage skipping: stages {:?} and {:?} show the same vehicle signals",
                    ix.id, plan.id, spec.stages[0].stage, spec.stages[1].stage
                ));
            };
            let chain: Vec<Phase> = prog.phases[ga + 1..gb].to_vec();
            if chain.is_empty() {
                next[a].push(greens[b]);
                continue;
            }
            let start = base + appended.len();
            next[a].push(start);
            let last = chain.len() - 1;
            for (i, mut ph) in chain.into_iter().enumerate() {
                ph.stage = None;
                ph.bounds = None;
                ph.next = Some(vec![if i == last { greens[b] } else { start + i + 1 }]);
                appended.push(ph);
            }
        }
    }
    for (a, list) in next.into_iter().enumerate() {
        p.phases[greens[a]].next = Some(list);
    }
    // The plan's last phase goes round to the first, not on into the appended transitions.
    if !appended.is_empty() && p.phases[base - 1].next.is_none() {
        p.phases[base - 1].next = Some(vec![0]);
    }
    p.phases.extend(appended);
    Ok(())
}

/// The plan with every stage at its minimum green and the plan's interstages, through the
/// plan validator (whatever its cycle: actuated operation has none). Greens only lengthen
/// from there, which only lengthens the time between the end of one group's green and the
/// start of another's, so what holds here holds for every green SUMO gives between the bounds.
fn shortest_cycle_check(
    net: &Network,
    ixi: IntersectionIdx,
    plan: &Plan,
    mins: &[Ms],
) -> Result<(), Vec<String>> {
    let ix = &net.intersections[ixi.0];
    let cycle = plan
        .stages
        .iter()
        .zip(mins)
        .fold(Ms::ZERO, |a, (s, m)| a + *m + s.interstage);
    let spec = PlanSpec {
        id: plan.id.clone(),
        cycle_s: cycle.as_secs_f64(),
        offset_s: 0.0,
        stages: plan
            .stages
            .iter()
            .zip(mins)
            .map(|(s, m)| StageTimeSpec {
                stage: ix.stages[s.stage].id.clone(),
                green_s: m.as_secs_f64(),
                interstage_s: Some(s.interstage.as_secs_f64()),
            })
            .collect(),
    };
    let mut safety = net.safety.clone();
    safety.cycle_min = Ms::ZERO;
    safety.cycle_max = Ms(i64::MAX);
    intersections::plan::validate(ix, &safety, &spec, &FieldPath::root())
        .map(|_| ())
        .map_err(|ps| ps.iter().map(|p| p.to_string()).collect())
}

/// Id of a detector's E1 loop in [`SumoFiles::detectors`].
pub fn loop_id(ix: &intersections::Intersection, d: &intersections::model::Detector) -> String {
    format!("{}.{}", ix.id, d.id)
}

/// Each approach lane of a signalised intersection's movements with the loop an actuated
/// program gaps out on: the lane's stop-line detector, else its advance detector (SUMO takes
/// one loop per lane).
fn lane_loops(net: &Network, ixi: IntersectionIdx) -> Vec<(LinkIdx, u32, Option<String>)> {
    let ix = &net.intersections[ixi.0];
    let mut lanes: Vec<(LinkIdx, u32)> = ix
        .movements
        .iter()
        .filter(|m| m.group.is_some())
        .flat_map(|m| m.lanes.iter().map(move |&l| (m.from, l)))
        .collect();
    lanes.sort_unstable_by_key(|&(l, k)| (l.0, k));
    lanes.dedup();
    lanes
        .into_iter()
        .map(|(link, lane)| {
            let on_lane = |kind: DetectorKind| {
                ix.detectors
                    .iter()
                    .find(|d| d.link == link && d.lane == lane && d.kind == kind)
            };
            let d = on_lane(DetectorKind::StopLine).or_else(|| on_lane(DetectorKind::Advance));
            (link, lane, d.map(|d| loop_id(ix, d)))
        })
        .collect()
}

/// The links after `link` with their normalised shares, as our simulator draws them.
fn next_links(net: &Network, d: &Demand, link: LinkIdx) -> Vec<(LinkIdx, f64)> {
    let Endpoint::Intersection(ixi) = net.links[link.0].to else {
        return Vec::new();
    };
    let ix = &net.intersections[ixi.0];
    let Some(shares) = d.turning.get(&(ixi, link)) else {
        return Vec::new();
    };
    let ok: Vec<(LinkIdx, f64)> = shares
        .iter()
        .filter(|(to, s)| *s > 0.0 && ix.movements.iter().any(|m| m.from == link && m.to == *to))
        .copied()
        .collect();
    let total: f64 = ok.iter().map(|s| s.1).sum();
    if total <= 0.0 {
        return Vec::new();
    }
    ok.into_iter().map(|(l, s)| (l, s / total)).collect()
}

/// An open branch of the route tree, ordered by probability (then first come first).
struct Branch {
    p: f64,
    seq: u64,
    path: Vec<LinkIdx>,
}
impl PartialEq for Branch {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == std::cmp::Ordering::Equal
    }
}
impl Eq for Branch {}
impl PartialOrd for Branch {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Branch {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.p.total_cmp(&o.p).then(o.seq.cmp(&self.seq))
    }
}

/// The routes of one entry (see the module documentation).
pub fn routes(net: &Network, d: &Demand, entry: LinkIdx, opts: &ExportOptions) -> RouteSet {
    let budget = opts.max_routes_per_entry.max(1);
    let max_len = opts.max_route_links.max(1);
    let mut done: Vec<(Vec<LinkIdx>, f64)> = Vec::new();
    let mut simplified = 0.0;
    let mut heap = BinaryHeap::new();
    let mut seq = 0u64;
    heap.push(Branch {
        p: 1.0,
        seq,
        path: vec![entry],
    });
    while let Some(b) = heap.pop() {
        let last = *b.path.last().unwrap_or(&entry);
        let next = if b.path.len() >= max_len {
            Vec::new()
        } else {
            next_links(net, d, last)
        };
        if next.is_empty() {
            done.push((b.path, b.p));
            continue;
        }
        if done.len() + heap.len() + next.len() + 1 > budget {
            // Out of budget: the branch keeps its probability and its most likely turns.
            let mut path = b.path;
            loop {
                let last = *path.last().unwrap_or(&entry);
                if path.len() >= max_len {
                    break;
                }
                let Some(best) = next_links(net, d, last)
                    .into_iter()
                    .max_by(|x, y| x.1.total_cmp(&y.1))
                else {
                    break;
                };
                path.push(best.0);
            }
            simplified += b.p;
            done.push((path, b.p));
            continue;
        }
        for (l, s) in next {
            let mut path = b.path.clone();
            path.push(l);
            seq += 1;
            heap.push(Branch {
                p: b.p * s,
                seq,
                path,
            });
        }
    }
    let total: f64 = done.iter().map(|r| r.1).sum();
    if total > 0.0 {
        for r in &mut done {
            r.1 /= total;
        }
    }
    RouteSet {
        entry,
        routes: done,
        simplified,
    }
}

fn nodes_xml(net: &Network) -> String {
    let mut s = banner(net, "Nodes");
    s.push_str("<nodes>\n");
    for n in &net.nodes {
        let _ = writeln!(
            s,
            "    <node id=\"{}\" x=\"{}\" y=\"{}\"/>",
            esc(&n.id),
            num(n.x_m, 2),
            num(n.y_m, 2)
        );
    }
    for ix in &net.intersections {
        let kind = match ix.control {
            ControlKind::Signal => format!("type=\"traffic_light\" tl=\"{}\"", esc(&ix.id)),
            ControlKind::Priority => "type=\"priority\"".into(),
        };
        let _ = writeln!(
            s,
            "    <node id=\"{}\" x=\"{}\" y=\"{}\" {kind}/>",
            esc(&ix.id),
            num(ix.x_m, 2),
            num(ix.y_m, 2)
        );
    }
    s.push_str("</nodes>\n");
    s
}

fn edges_xml(net: &Network, sidewalks: bool) -> String {
    let mut s = banner(net, "Edges");
    s.push_str("<edges>\n");
    let width = net.safety.spec.lane_width_m;
    for l in &net.links {
        let _ = writeln!(
            s,
            "    <edge id=\"{}\" from=\"{}\" to=\"{}\" numLanes=\"{}\" speed=\"{}\" length=\"{}\" width=\"{}\"{}/>",
            esc(&l.id),
            esc(net.endpoint_id(l.from)),
            esc(net.endpoint_id(l.to)),
            l.lanes,
            num(l.speed_mps, 4),
            num(l.length_m, 2),
            num(width, 2),
            if sidewalks {
                format!(" sidewalkWidth=\"{}\"", num(SIDEWALK_WIDTH_M, 2))
            } else {
                String::new()
            }
        );
    }
    s.push_str("</edges>\n");
    s
}

fn conn_attrs(net: &Network, c: &Connection, names: &SumoNames) -> String {
    let (from, to) = (&net.links[c.from.0].id, &net.links[c.to.0].id);
    format!(
        "from=\"{}\" to=\"{}\" fromLane=\"{}\" toLane=\"{}\"",
        esc(names.edge(from)),
        esc(names.edge(to)),
        names.lane(from, c.from_lane),
        names.lane(to, c.to_lane)
    )
}

/// Width of the sidewalks of a plain network with crossings ([`ExportOptions::crossings`]).
pub const SIDEWALK_WIDTH_M: f64 = 2.0;

/// The pedestrian groups of an intersection with a program (`p` as [`program`] made it, its
/// states over the vehicle links only): (group, its `linkIndex` after the vehicle links, the
/// links of its leg at the intersection).
fn crossings_of(net: &Network, p: &Program) -> Vec<(GroupIdx, usize, Vec<LinkIdx>)> {
    let width = p.phases.first().map_or(0, |ph| ph.state.chars().count());
    let me = Endpoint::Intersection(p.intersection);
    p.walks
        .iter()
        .enumerate()
        .filter_map(|(w, (g, _))| {
            let l = net.intersections[p.intersection.0].groups[g.0].crossing?;
            // The other end of the leg, and the link back along it, if there is one.
            let far = net.far_end(l, p.intersection)?;
            let mut leg = vec![l];
            leg.extend((0..net.links.len()).map(LinkIdx).filter(|k| {
                *k != l
                    && ((net.links[k.0].from == me && net.links[k.0].to == far)
                        || (net.links[k.0].to == me && net.links[k.0].from == far))
            }));
            Some((*g, width + w, leg))
        })
        .collect()
}

/// `p` for a plain network with crossings: its crossings' walk after the vehicle links
/// ([`walked`]) and the turns of permissive groups as `g`. A
/// note when the crossings cannot be timed in an actuated program (they stay red).
fn with_crossings(net: &Network, p: &Program, conns: &[&Connection]) -> (Program, Option<String>) {
    let ix = &net.intersections[p.intersection.0];
    let mut note = None;
    let mut q = if p.walks.is_empty() {
        p.clone()
    } else {
        walked(net, p).unwrap_or_else(|| {
            note = Some(format!(
                "intersection {:?}: its crossings stay red in its actuated program (a walk over several stages, or stage skipping)",
                ix.id
            ));
            let mut q = p.clone();
            for ph in &mut q.phases {
                ph.state.push_str(&"r".repeat(p.walks.len()));
            }
            q
        })
    };
    yield_turns(net, &mut q, conns);
    (q, note)
}

/// The turns of permissive groups as `g` in `p`'s states (the positions of `conns`, the
/// intersection's connections in program order): in Greenwave such a turn yields to the
/// pedestrians crossing its way, which SUMO's vehicles on `G` would not.
pub(crate) fn yield_turns(net: &Network, p: &mut Program, conns: &[&Connection]) {
    let ix = &net.intersections[p.intersection.0];
    let yields: Vec<bool> = conns
        .iter()
        .map(|c| {
            let m = &ix.movements[c.movement];
            m.turn != Turn::Through
                && m.group
                    .is_some_and(|g| ix.groups[g.0].protection == Protection::Permissive)
        })
        .collect();
    for ph in &mut p.phases {
        ph.state = ph
            .state
            .chars()
            .enumerate()
            .map(|(k, ch)| match (ch, yields.get(k)) {
                ('G', Some(true)) => 'g',
                _ => ch,
            })
            .collect();
    }
}

/// The lane-to-lane connections, and with `crossings` (the programs as [`program`] made them)
/// a `<crossing>` per pedestrian group of each.
fn connections_xml(
    net: &Network,
    conns: &[Connection],
    crossings: Option<&[Program]>,
    names: &SumoNames,
) -> String {
    let mut s = banner(net, "Lane-to-lane connections");
    s.push_str("<connections>\n");
    let mut last = None;
    for c in conns {
        let ix = &net.intersections[c.intersection.0];
        if last != Some((c.intersection, c.movement)) {
            let _ = writeln!(
                s,
                "    <!-- {} movement {} -->",
                esc(&ix.id).replace("--", "- -"),
                esc(&ix.movements[c.movement].id).replace("--", "- -")
            );
            last = Some((c.intersection, c.movement));
        }
        let _ = writeln!(s, "    <connection {}/>", conn_attrs(net, c, names));
    }
    if let Some(programs) = crossings {
        for p in programs {
            let ix = &net.intersections[p.intersection.0];
            for (g, k, leg) in crossings_of(net, p) {
                let edges: Vec<String> = leg.iter().map(|l| esc(&net.links[l.0].id)).collect();
                let _ = writeln!(
                    s,
                    "    <crossing node=\"{}\" edges=\"{}\" linkIndex=\"{k}\"/>  <!-- {} -->",
                    esc(&ix.id),
                    edges.join(" "),
                    esc(&ix.groups[g.0].id).replace("--", "- -")
                );
            }
        }
    }
    s.push_str("</connections>\n");
    s
}

/// `p` with one character per pedestrian group of `p.walks` after the vehicle links, showing
/// its walk: [`with_walks`] for a static program, [`with_walks_actuated`] (each group's walk
/// its minimum green) for an actuated one, `None` where that one cannot be written.
pub(crate) fn walked(net: &Network, p: &Program) -> Option<Program> {
    if p.actuation.is_none() {
        return Some(with_walks(p));
    }
    let ix = &net.intersections[p.intersection.0];
    let walk: Vec<Ms> = p
        .walks
        .iter()
        .map(|(g, _)| ix.groups[g.0].min_green)
        .collect();
    with_walks_actuated(p, &walk)
}

/// `p` with its phases cut where a pedestrian group's walk starts or ends, and one character
/// per group of `p.walks` appended to every state (`G` in walk, else `r`).
fn with_walks(p: &Program) -> Program {
    let mut cuts: Vec<Ms> = Vec::new();
    let mut t = Ms::ZERO;
    for ph in &p.phases {
        cuts.push(t);
        t += ph.duration;
    }
    let starts = cuts.clone();
    for (_, iv) in &p.walks {
        for (a, b) in iv {
            cuts.extend([*a, *b]);
        }
    }
    cuts.retain(|c| *c < p.cycle);
    cuts.sort();
    cuts.dedup();
    let mut phases: Vec<Phase> = Vec::new();
    for (k, &a) in cuts.iter().enumerate() {
        let b = cuts.get(k + 1).copied().unwrap_or(p.cycle);
        let i = starts.iter().rposition(|s| *s <= a).unwrap_or(0);
        let mut state = p.phases[i].state.clone();
        for (_, iv) in &p.walks {
            let walk = iv.iter().any(|(s, e)| *s <= a && b <= *e);
            state.push(if walk { 'G' } else { 'r' });
        }
        match phases.last_mut() {
            Some(last) if last.state == state => last.duration += b - a,
            _ => phases.push(Phase {
                duration: b - a,
                state,
                stage: None,
                bounds: None,
                next: None,
            }),
        }
    }
    Program {
        phases,
        ..p.clone()
    }
}

/// An actuated `p` with its crossings, timed as an actuated controller times pedestrians: in
/// a stage's green the crossings walk first, each for its group's walk (`walk[w]`, the
/// jurisdiction's minimum unless the network sets more), in fixed phases; then the vehicles'
/// green goes on as the actuated phase, its `minDur` and `maxDur` less the longest walk, with
/// the crossings red (their clearance runs inside that minimum, which holds walk + clearance of
/// every group). Vehicle actuation is never held back by a crossing, and a gap-out never
/// shortens a clearance. `None` where that cannot be written: a walk that does not end inside
/// one stage's green (a crossing walking over several stages) or lies outside the stages'
/// greens, or a program whose stages are skipped (`next` lists name phases by index).
fn with_walks_actuated(p: &Program, walk: &[Ms]) -> Option<Program> {
    if p.phases.iter().any(|ph| ph.next.is_some()) {
        return None;
    }
    let mut phases: Vec<Phase> = Vec::new();
    let mut t = Ms::ZERO;
    for ph in &p.phases {
        let (a, b) = (t, t + ph.duration);
        t = b;
        // Per group: whether a walk of the static program covers this phase's start.
        let walking: Vec<bool> = p
            .walks
            .iter()
            .map(|(_, iv)| iv.iter().any(|(s, e)| *s <= a && a < *e))
            .collect();
        if !walking.contains(&true) {
            // No walk may start inside the phase either.
            if p.walks
                .iter()
                .any(|(_, iv)| iv.iter().any(|(s, _)| a < *s && *s < b))
            {
                return None;
            }
            let mut q = ph.clone();
            q.state.push_str(&"r".repeat(p.walks.len()));
            phases.push(q);
            continue;
        }
        let (Some(_), Some((mn, mx))) = (ph.stage, ph.bounds) else {
            return None;
        };
        // Each walk must end inside this stage's green.
        let inside = p
            .walks
            .iter()
            .zip(&walking)
            .all(|((_, iv), w)| !*w || iv.iter().any(|(s, e)| *s <= a && a < *e && *e <= b));
        if !inside {
            return None;
        }
        let mut ends: Vec<Ms> = walking
            .iter()
            .zip(walk)
            .filter(|(w, _)| **w)
            .map(|(_, l)| *l)
            .collect();
        ends.sort();
        ends.dedup();
        let longest = *ends.last()?;
        if mn <= longest || ph.duration <= longest {
            return None;
        }
        let mut from = Ms::ZERO;
        for &e in &ends {
            let crossings: String = walking
                .iter()
                .zip(walk)
                .map(|(w, l)| if *w && *l > from { 'G' } else { 'r' })
                .collect();
            phases.push(Phase {
                duration: e - from,
                state: format!("{}{crossings}", ph.state),
                stage: None,
                bounds: None,
                next: None,
            });
            from = e;
        }
        phases.push(Phase {
            duration: ph.duration - longest,
            state: format!("{}{}", ph.state, "r".repeat(p.walks.len())),
            stage: ph.stage,
            bounds: Some((mn - longest, mx - longest)),
            next: None,
        });
    }
    Some(Program {
        phases,
        ..p.clone()
    })
}

/// One `<tlLogic>` of program `p` under traffic light `tl_id`: static, or, with `lanes`
/// (SUMO lane id and loop id, `None` for [`NO_DETECTOR`]), actuated with the phases' bounds.
/// `state` gives a phase's state string in the traffic light's linkIndex order. The one
/// writer of programs, for our nets and (`crate::onto`) for SUMO's own.
pub(crate) fn write_tl_logic(
    s: &mut String,
    tl_id: &str,
    p: &Program,
    program_id: &str,
    lanes: Option<&[(String, Option<String>)]>,
    state: impl Fn(&Phase) -> String,
) {
    let plan = esc(&p.plan_id).replace("--", "- -");
    let (kind, offset) = match (&p.actuation, lanes) {
        (Some(a), Some(_)) => {
            let _ = writeln!(
                s,
                "    <!-- plan {plan}, isolated actuated: each stage from its minimum to its maximum green, gap-out after {} s -->",
                secs(a.passage)
            );
            ("actuated", Ms::ZERO)
        }
        _ => {
            let _ = writeln!(s, "    <!-- plan {plan}: cycle {} s -->", secs(p.cycle));
            ("static", p.offset)
        }
    };
    let _ = writeln!(
        s,
        "    <tlLogic id=\"{}\" type=\"{kind}\" programID=\"{}\" offset=\"{}\">",
        esc(tl_id),
        esc(program_id),
        secs(offset)
    );
    let actuated = match (&p.actuation, lanes) {
        (Some(a), Some(lanes)) => {
            let _ = writeln!(
                s,
                "        <param key=\"max-gap\" value=\"{}\"/>",
                secs(a.passage)
            );
            for (lane, det) in lanes {
                let _ = writeln!(
                    s,
                    "        <param key=\"{}\" value=\"{}\"/>",
                    esc(lane),
                    esc(det.as_deref().unwrap_or(NO_DETECTOR))
                );
            }
            true
        }
        _ => false,
    };
    for ph in &p.phases {
        let d = secs(ph.duration);
        let bounds = match (actuated, ph.bounds) {
            (false, _) => String::new(),
            (true, Some((min, max))) => {
                format!(" minDur=\"{}\" maxDur=\"{}\"", secs(min), secs(max))
            }
            (true, None) => format!(" minDur=\"{d}\" maxDur=\"{d}\""),
        };
        let next = match &ph.next {
            Some(n) if actuated => format!(
                " next=\"{}\"",
                n.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "        <phase duration=\"{d}\"{bounds} state=\"{}\"{next}/>",
            state(ph)
        );
    }
    s.push_str("    </tlLogic>\n");
}

/// A program on the net built from our plain files: lanes are `<link>_<lane>`.
fn tl_logic(
    s: &mut String,
    net: &Network,
    p: &Program,
    program_id: &str,
    actuated: bool,
    names: &SumoNames,
) {
    let lanes: Option<Vec<(String, Option<String>)>> = match &p.actuation {
        Some(a) if actuated => Some(
            a.lane_loops
                .iter()
                .map(|(link, lane, det)| {
                    let id = &net.links[link.0].id;
                    (
                        format!("{}_{}", names.edge(id), names.lane(id, *lane)),
                        det.clone(),
                    )
                })
                .collect(),
        ),
        _ => None,
    };
    write_tl_logic(
        s,
        &net.intersections[p.intersection.0].id,
        p,
        program_id,
        lanes.as_deref(),
        |ph| ph.state.clone(),
    );
}

fn tll_xml(net: &Network, programs: &[Program], conns: &[Connection], names: &SumoNames) -> String {
    let mut s = banner(net, "Signal programs and controlled connections");
    s.push_str("<tlLogics>\n");
    for p in programs {
        tl_logic(&mut s, net, p, "0", false, names);
    }
    for c in conns {
        if let Some(k) = c.link_index {
            let _ = writeln!(
                s,
                "    <connection {} tl=\"{}\" linkIndex=\"{k}\"/>",
                conn_attrs(net, c, names),
                esc(&net.intersections[c.intersection.0].id)
            );
        }
    }
    s.push_str("</tlLogics>\n");
    s
}

fn additional_xml(
    net: &Network,
    programs: &[Program],
    program_id: &str,
    names: &SumoNames,
) -> String {
    let what = if programs.iter().any(|p| p.actuation.is_some()) {
        "Signal programs, isolated actuated on the E1 loops of the detectors file (load with sumo -a DETECTORS,THIS; the program loaded last runs)"
    } else {
        "Signal programs (load with sumo -a; the program loaded last runs)"
    };
    let mut s = banner(net, what);
    s.push_str("<additional>\n");
    for p in programs {
        tl_logic(&mut s, net, p, program_id, true, names);
    }
    s.push_str("</additional>\n");
    s
}

/// Where a detector's loop sits on its SUMO lane: SUMO's E1 is a point, placed at the middle
/// of Greenwave's loop (which runs `length_m` from `distance_m`): approach detectors
/// (`stop-line`, `advance`) `distance_m + length_m / 2` before the stop line, exit detectors
/// that far after the junction, as the import reads them back (a 2 m loop centred on `pos`).
/// Not the loop's downstream end (as until 2026-12-07): SUMO 1.28 stops the first vehicle of
/// a queue with its front 1 m short of the lane's end (seen on the shipped networks), exactly
/// on a point 1 m before the stop line, which then never sees a standing queue. The lane is
/// `<link>_<lane>`: SUMO numbers lanes from the right, as Greenwave does.
pub fn detector_pos(net: &Network, d: &intersections::model::Detector) -> f64 {
    let len = net.links[d.link.0].length_m;
    let centre = d.distance_m + d.length_m / 2.0;
    match d.kind {
        intersections::spec::DetectorKind::Exit => centre.min(len),
        _ => (len - centre).max(0.0),
    }
}

fn detectors_xml(net: &Network, period_s: u32, names: &SumoNames) -> String {
    let mut s = banner(
        net,
        "E1 loops at the network's detectors (load with sumo -a; read the output with greenwave sumo counts)",
    );
    s.push_str("<additional>\n");
    let out = format!("{}.e1.out.xml", net.name);
    for ix in &net.intersections {
        for d in &ix.detectors {
            let _ = writeln!(
                s,
                "    <inductionLoop id=\"{}\" lane=\"{}_{}\" pos=\"{}\" period=\"{}\" file=\"{}\" friendlyPos=\"true\"/>",
                esc(&loop_id(ix, d)),
                esc(names.edge(&net.links[d.link.0].id)),
                names.lane(&net.links[d.link.0].id, d.lane),
                num(detector_pos(net, d), 2),
                period_s.max(1),
                esc(&out)
            );
        }
    }
    s.push_str("</additional>\n");
    s
}

fn routes_xml(
    net: &Network,
    d: &Demand,
    sets: &[RouteSet],
    v: &VehicleType,
    names: &SumoNames,
) -> String {
    let mut s = banner(net, "Demand");
    s.push_str("<routes>\n");
    let _ = writeln!(
        s,
        "    <vType id=\"greenwave\" carFollowModel=\"Krauss\" accel=\"{}\" decel=\"{}\" tau=\"{}\" length=\"{}\" minGap=\"{}\" sigma=\"{}\" speedFactor=\"1\" speedDev=\"{}\"/>",
        v.accel_mps2, v.decel_mps2, v.tau_s, v.length_m, v.min_gap_m, v.sigma, v.speed_dev
    );
    for rs in sets {
        let eid = &net.links[rs.entry.0].id;
        let _ = writeln!(s, "    <routeDistribution id=\"rd_{}\">", esc(eid));
        for (k, (path, p)) in rs.routes.iter().enumerate() {
            let edges: Vec<String> = path
                .iter()
                .map(|l| esc(names.edge(&net.links[l.0].id)))
                .collect();
            let _ = writeln!(
                s,
                "        <route id=\"r_{}_{k}\" edges=\"{}\" probability=\"{p:.9}\"/>",
                esc(eid),
                edges.join(" ")
            );
        }
        s.push_str("    </routeDistribution>\n");
    }
    // Flows in order of their begin time (SUMO reads route files in departure order).
    for k in 0..d.slices {
        let begin = Ms(d.slice.0 * k as i64);
        let end = begin + d.slice;
        for e in &d.entries {
            let q = e.flows_veh_h.get(k).copied().unwrap_or(0.0);
            if q <= 0.0 {
                continue;
            }
            let eid = esc(&net.links[e.link.0].id);
            let _ = writeln!(
                s,
                "    <flow id=\"f_{eid}_{k}\" type=\"greenwave\" route=\"rd_{eid}\" begin=\"{}\" end=\"{}\" period=\"exp({:.9})\" departLane=\"best\" departSpeed=\"max\"/>",
                secs(begin),
                secs(end),
                q / 3600.0
            );
        }
    }
    s.push_str("</routes>\n");
    s
}

/// One vehicle of the demand: when it arrives at its entry, and its route (links).
#[derive(Clone, Debug, PartialEq)]
pub struct SampledVehicle {
    pub arrival_s: f64,
    /// Index into the demand's entries.
    pub entry: usize,
    pub route: Vec<LinkIdx>,
}

/// RNG stream family of the simulator's arrivals (`simulator::sim::STREAM_ARRIVALS`).
const STREAM_ARRIVALS: u64 = 1 << 32;
/// The simulator's longest route, in movements (`simulator::sim::MAX_ROUTE`).
const MAX_ROUTE: usize = 512;

fn uniform(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The vehicles Greenwave's simulator generates for `seed`: per entry a ChaCha8 stream of the
/// seed (`STREAM_ARRIVALS | entry`), from which each vehicle draws its arrival (exponential
/// headway at the slice's rate, carried across slices) and then its route (one uniform per
/// junction against the cumulative turning shares), in the simulator's order. This mirrors
/// `simulator::sim` (`draw_arrival`, `new_vehicle`); a test in this crate checks that the two
/// agree. Sorted by arrival time.
pub fn sample_vehicles(net: &Network, d: &Demand, seed: u64) -> Vec<SampledVehicle> {
    // Cumulative next-link tables: the demand's, as the simulator uses them.
    let turns: Vec<Vec<(f64, LinkIdx)>> = d
        .turn_tables(net)
        .into_iter()
        .map(|t| t.into_iter().map(|(cum, _, to)| (cum, to)).collect())
        .collect();
    let slice_s = d.slice.as_secs_f64();
    let mut out = Vec::new();
    for (e, entry) in d.entries.iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(STREAM_ARRIVALS | e as u64);
        let mut from_s = 0.0;
        loop {
            // The next arrival after `from_s` (simulator::sim::Simulation::draw_arrival).
            let u = 1.0 - uniform(&mut rng);
            let mut budget = -u.ln();
            let mut t = from_s;
            let mut k = (t / slice_s).floor() as usize;
            let arrival = loop {
                let Some(q) = entry.flows_veh_h.get(k) else {
                    break None;
                };
                let rate = q / 3600.0;
                let end = (k + 1) as f64 * slice_s;
                if rate > 0.0 && t + budget / rate <= end {
                    break Some(t + budget / rate);
                }
                budget -= rate * (end - t);
                t = end;
                k += 1;
            };
            let Some(arrival) = arrival else { break };
            // Its route (simulator::sim::Simulation::new_vehicle).
            let mut route = vec![entry.link];
            let mut link = entry.link;
            while route.len() <= MAX_ROUTE {
                let tt = &turns[link.0];
                if tt.is_empty() {
                    break;
                }
                let u = uniform(&mut rng);
                let j = tt.partition_point(|(c, _)| *c <= u).min(tt.len() - 1);
                link = tt[j].1;
                route.push(link);
            }
            out.push(SampledVehicle {
                arrival_s: arrival,
                entry: e,
                route,
            });
            from_s = arrival;
        }
    }
    out.sort_by(|a, b| {
        a.arrival_s
            .total_cmp(&b.arrival_s)
            .then(a.entry.cmp(&b.entry))
    });
    out
}

fn vehicles_xml(
    net: &Network,
    vs: &[SampledVehicle],
    v: &VehicleType,
    names: &SumoNames,
) -> String {
    let mut s = banner(net, "Demand (explicit vehicles)");
    s.push_str("<routes>\n");
    let _ = writeln!(
        s,
        "    <vType id=\"greenwave\" carFollowModel=\"Krauss\" accel=\"{}\" decel=\"{}\" tau=\"{}\" length=\"{}\" minGap=\"{}\" sigma=\"{}\" speedFactor=\"1\" speedDev=\"{}\"/>",
        v.accel_mps2, v.decel_mps2, v.tau_s, v.length_m, v.min_gap_m, v.sigma, v.speed_dev
    );
    for (k, veh) in vs.iter().enumerate() {
        let edges: Vec<String> = veh
            .route
            .iter()
            .map(|l| esc(names.edge(&net.links[l.0].id)))
            .collect();
        let _ = writeln!(
            s,
            "    <vehicle id=\"v{k}\" type=\"greenwave\" depart=\"{:.3}\" departLane=\"best\" departSpeed=\"max\"><route edges=\"{}\"/></vehicle>",
            veh.arrival_s,
            edges.join(" ")
        );
    }
    s.push_str("</routes>\n");
    s
}
