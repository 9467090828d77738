//! The checked network: what a [`NetworkSpec`] becomes once every reference resolves and every
//! safety rule holds. Ids become indices; geometry becomes conflict and intergreen matrices.
//! Build it with [`Network::from_spec`], which lists every problem, never just the first.

use std::collections::BTreeMap;

use crate::diag::{FieldPath, Problem};
use crate::geometry::{self, Interaction};
use crate::plan::{self, Plan};
use crate::spec::{
    ControlKind, DetectorKind, GroupKind, NetworkSpec, Protection, SafetySpec, Turn,
};
use crate::time::Ms;

/// Index of a link in [`Network::links`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkIdx(pub usize);
/// Index of an intersection in [`Network::intersections`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IntersectionIdx(pub usize);
/// Index of a signal group in [`Intersection::groups`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupIdx(pub usize);

/// The checked safety parameters, as durations.
#[derive(Clone, Debug, PartialEq)]
pub struct Safety {
    pub spec: SafetySpec,
    pub min_green: Ms,
    pub ped_walk_min: Ms,
    pub ped_buffer: Ms,
    pub cycle_min: Ms,
    pub cycle_max: Ms,
    pub red_yellow: Ms,
}

/// Hard bounds on the jurisdiction values: configuration may move a rule, never switch it off.
const SAFETY_BOUNDS: &[(&str, f64, f64)] = &[
    ("min_green_s", 3.0, 60.0),
    ("ped_walk_min_s", 4.0, 60.0),
    ("ped_speed_mps", 0.5, 1.5),
    ("ped_buffer_s", 0.0, 10.0),
    ("cycle_min_s", 20.0, 300.0),
    ("cycle_max_s", 20.0, 300.0),
    ("reaction_time_s", 0.5, 3.0),
    ("deceleration_mps2", 1.5, 5.0),
    ("yellow_min_s", 2.7, 10.0),
    ("yellow_max_s", 2.7, 10.0),
    ("all_red_max_s", 0.0, 10.0),
    ("red_yellow_s", 0.0, 3.0),
    ("vehicle_length_m", 3.0, 25.0),
    ("lane_width_m", 2.5, 5.0),
];

impl Safety {
    pub fn from_spec(spec: &SafetySpec, path: &FieldPath, problems: &mut Vec<Problem>) -> Safety {
        let values = [
            spec.min_green_s,
            spec.ped_walk_min_s,
            spec.ped_speed_mps,
            spec.ped_buffer_s,
            spec.cycle_min_s,
            spec.cycle_max_s,
            spec.reaction_time_s,
            spec.deceleration_mps2,
            spec.yellow_min_s,
            spec.yellow_max_s,
            spec.all_red_max_s,
            spec.red_yellow_s,
            spec.vehicle_length_m,
            spec.lane_width_m,
        ];
        let mut spec = spec.clone();
        let mut bad = false;
        for ((name, lo, hi), v) in SAFETY_BOUNDS.iter().zip(values) {
            if !(v.is_finite() && v >= *lo && v <= *hi) {
                problems.push(Problem::new(
                    path.key(name),
                    format!("{v} is outside the allowed range {lo} to {hi}"),
                ));
                bad = true;
            }
        }
        if spec.cycle_min_s > spec.cycle_max_s {
            problems.push(Problem::new(
                path.key("cycle_min_s"),
                "cycle_min_s is above cycle_max_s",
            ));
            bad = true;
        }
        if spec.yellow_min_s > spec.yellow_max_s {
            problems.push(Problem::new(
                path.key("yellow_min_s"),
                "yellow_min_s is above yellow_max_s",
            ));
            bad = true;
        }
        if bad {
            // Keep checking the rest of the file against the defaults.
            spec = SafetySpec::default();
        }
        let ms = |s: f64| Ms::from_secs_f64(s).unwrap_or(Ms::ZERO);
        Safety {
            min_green: ms(spec.min_green_s),
            ped_walk_min: ms(spec.ped_walk_min_s),
            ped_buffer: ms(spec.ped_buffer_s),
            cycle_min: ms(spec.cycle_min_s),
            cycle_max: ms(spec.cycle_max_s),
            red_yellow: ms(spec.red_yellow_s),
            spec,
        }
    }
}

impl Default for Safety {
    fn default() -> Self {
        Safety::from_spec(&SafetySpec::default(), &FieldPath::root(), &mut Vec::new())
    }
}

/// One end of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A boundary node (index into [`Network::nodes`]).
    Boundary(usize),
    Intersection(IntersectionIdx),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub id: String,
    pub x_m: f64,
    pub y_m: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    pub id: String,
    pub from: Endpoint,
    pub to: Endpoint,
    pub lanes: u32,
    pub speed_mps: f64,
    pub length_m: f64,
    pub grade_pct: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Movement {
    pub id: String,
    pub from: LinkIdx,
    pub to: LinkIdx,
    pub turn: Turn,
    pub lanes: Vec<u32>,
    /// Saturation flow per lane.
    pub saturation_flow_veh_h: f64,
    /// The vehicle signal group that controls it (signalised intersections).
    pub group: Option<GroupIdx>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SignalGroup {
    pub id: String,
    pub kind: GroupKind,
    pub protection: Protection,
    /// Indices into [`Intersection::movements`] (vehicle groups).
    pub movements: Vec<usize>,
    /// The crossed leg (pedestrian groups).
    pub crossing: Option<LinkIdx>,
    pub crossing_length_m: f64,
    /// Minimum green (vehicles) or walk (pedestrians).
    pub min_green: Ms,
    /// Yellow (vehicles) or pedestrian clearance (flashing green / flashing don't walk).
    pub clearance: Ms,
    /// Red-yellow before green (vehicles, where the jurisdiction uses it).
    pub red_yellow: Ms,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub id: String,
    pub groups: Vec<GroupIdx>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Detector {
    pub id: String,
    pub link: LinkIdx,
    pub lane: u32,
    pub distance_m: f64,
    pub length_m: f64,
    pub kind: DetectorKind,
}

/// A time-of-day entry: from `from` (time of day) on, `plan` runs.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleEntry {
    pub from: Ms,
    pub plan: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Intersection {
    pub id: String,
    pub name: Option<String>,
    pub x_m: f64,
    pub y_m: f64,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub control: ControlKind,
    /// Incoming links.
    pub approaches: Vec<LinkIdx>,
    /// Outgoing links.
    pub exits: Vec<LinkIdx>,
    pub movements: Vec<Movement>,
    pub groups: Vec<SignalGroup>,
    /// `conflicts[a][b]`: groups a and b may never be green (or yellow) together.
    pub conflicts: Vec<Vec<bool>>,
    /// `intergreen[a][b]`: end of green of a to start of green of b, for conflicting pairs.
    pub intergreen: Vec<Vec<Ms>>,
    pub stages: Vec<Stage>,
    pub detectors: Vec<Detector>,
    pub plans: Vec<Plan>,
    pub schedule: Vec<ScheduleEntry>,
}

impl Intersection {
    pub fn group(&self, id: &str) -> Option<GroupIdx> {
        self.groups.iter().position(|g| g.id == id).map(GroupIdx)
    }
    pub fn stage(&self, id: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.id == id)
    }
    pub fn plan(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }
    /// The least green stage `stage` needs for its own groups: the longest minimum green of its
    /// vehicle groups and walk + clearance of its pedestrian groups.
    pub fn stage_min_green(&self, stage: usize) -> Ms {
        self.stages[stage]
            .groups
            .iter()
            .map(|g| {
                let g = &self.groups[g.0];
                match g.kind {
                    GroupKind::Vehicle => g.min_green,
                    GroupKind::Pedestrian => g.min_green + g.clearance,
                }
            })
            .max()
            .unwrap_or(Ms::ZERO)
    }

    pub fn conflict(&self, a: GroupIdx, b: GroupIdx) -> bool {
        self.conflicts[a.0][b.0]
    }
    /// The plan the schedule runs at `time_of_day` (milliseconds since local midnight).
    pub fn scheduled_plan(&self, time_of_day: Ms) -> Option<&Plan> {
        if self.schedule.is_empty() {
            return self.plans.first();
        }
        let t = time_of_day.rem_euclid(Ms::from_s(86_400));
        let entry = self
            .schedule
            .iter()
            .rev()
            .find(|e| e.from <= t)
            .or_else(|| self.schedule.last())?;
        self.plans.get(entry.plan)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CoordinationGroup {
    pub id: String,
    pub intersections: Vec<IntersectionIdx>,
}

/// A checked network.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    pub name: String,
    pub description: Option<String>,
    pub safety: Safety,
    pub nodes: Vec<Node>,
    pub intersections: Vec<Intersection>,
    pub links: Vec<Link>,
    pub coordination_groups: Vec<CoordinationGroup>,
    link_index: BTreeMap<String, LinkIdx>,
    intersection_index: BTreeMap<String, IntersectionIdx>,
    intersection_pos: Vec<(f64, f64)>,
}

impl Network {
    pub fn link(&self, id: &str) -> Option<LinkIdx> {
        self.link_index.get(id).copied()
    }
    pub fn intersection(&self, id: &str) -> Option<IntersectionIdx> {
        self.intersection_index.get(id).copied()
    }
    /// Links that start at a boundary node: where traffic enters.
    pub fn entries(&self) -> Vec<LinkIdx> {
        (0..self.links.len())
            .map(LinkIdx)
            .filter(|l| matches!(self.links[l.0].from, Endpoint::Boundary(_)))
            .collect()
    }
    /// Links that end at a boundary node: where traffic leaves.
    pub fn exits(&self) -> Vec<LinkIdx> {
        (0..self.links.len())
            .map(LinkIdx)
            .filter(|l| matches!(self.links[l.0].to, Endpoint::Boundary(_)))
            .collect()
    }
    /// Position of an endpoint, metres.
    pub fn position(&self, e: Endpoint) -> (f64, f64) {
        match e {
            Endpoint::Boundary(n) => (self.nodes[n].x_m, self.nodes[n].y_m),
            Endpoint::Intersection(i) => self.intersection_pos[i.0],
        }
    }

    /// The id of an endpoint: its boundary node's or its intersection's.
    pub fn endpoint_id(&self, e: Endpoint) -> &str {
        match e {
            Endpoint::Boundary(n) => &self.nodes[n].id,
            Endpoint::Intersection(i) => &self.intersections[i.0].id,
        }
    }

    /// The other end of `link` seen from intersection `at`: the far end of its leg there;
    /// `None` when the link does not touch `at`.
    pub fn far_end(&self, link: LinkIdx, at: IntersectionIdx) -> Option<Endpoint> {
        let (l, me) = (&self.links[link.0], Endpoint::Intersection(at));
        if l.to == me {
            Some(l.from)
        } else if l.from == me {
            Some(l.to)
        } else {
            None
        }
    }

    /// Bearing of a link's leg at intersection `at`: from the junction out along the road
    /// (towards the link's head when it does not touch `at`).
    pub fn leg_bearing(&self, link: LinkIdx, at: IntersectionIdx) -> f64 {
        let here = self.position(Endpoint::Intersection(at));
        let other = self.far_end(link, at).unwrap_or(self.links[link.0].to);
        let there = self.position(other);
        geometry::bearing_deg(here.0, here.1, there.0, there.1)
    }

    /// The plan intersection `i` runs: the one `overrides` (a plan file's, a candidate's)
    /// gives it, else the plan its schedule runs at `time_of_day` (milliseconds since local
    /// midnight). The one rule the simulator's controls and the cabinets in the simulator use.
    pub fn plan_in_force<'a>(
        &'a self,
        i: IntersectionIdx,
        overrides: &'a [(IntersectionIdx, crate::plan::Plan)],
        time_of_day: Ms,
    ) -> Option<&'a crate::plan::Plan> {
        overrides
            .iter()
            .find(|(j, _)| *j == i)
            .map(|(_, p)| p)
            .or_else(|| self.intersections[i.0].scheduled_plan(time_of_day))
    }

    /// The approach of intersection `me` opposite `approach`: the other approach whose leg
    /// points nearest the reverse of `approach`'s leg, within 45°. The stream a permissive
    /// left turn from `approach` yields to (the simulator) and is priced against (the planner).
    pub fn opposing_approach(&self, me: IntersectionIdx, approach: LinkIdx) -> Option<LinkIdx> {
        let b = self.leg_bearing(approach, me);
        self.intersections[me.0]
            .approaches
            .iter()
            .copied()
            .filter(|&o| o != approach)
            .map(|o| {
                (
                    geometry::angle_diff(self.leg_bearing(o, me), b + 180.0).abs(),
                    o,
                )
            })
            .filter(|(d, _)| *d <= 45.0)
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, o)| o)
    }

    /// Check a network file's contents. Returns every problem found.
    pub fn from_spec(spec: &NetworkSpec) -> Result<Network, Vec<Problem>> {
        let mut p = crate::diag::check_header(&spec.kind, spec.version, "network");
        let root = FieldPath::root();
        let safety = Safety::from_spec(&spec.safety, &root.key("safety"), &mut p);

        // Nodes and intersections share one id space (links name either).
        let mut endpoint_ids: BTreeMap<String, Endpoint> = BTreeMap::new();
        let mut nodes = Vec::new();
        for (i, n) in spec.nodes.iter().enumerate() {
            let path = root.key("nodes").index(i);
            check_id(&n.id, &path.key("id"), &mut p);
            check_finite(&[n.x_m, n.y_m], &path, &mut p);
            if endpoint_ids
                .insert(n.id.clone(), Endpoint::Boundary(i))
                .is_some()
            {
                p.push(Problem::new(
                    path.key("id"),
                    format!("id {:?} is used twice", n.id),
                ));
            }
            nodes.push(Node {
                id: n.id.clone(),
                x_m: n.x_m,
                y_m: n.y_m,
            });
        }
        let mut intersection_index = BTreeMap::new();
        for (i, ix) in spec.intersections.iter().enumerate() {
            let path = root.key("intersections").index(i);
            check_id(&ix.id, &path.key("id"), &mut p);
            check_finite(&[ix.x_m, ix.y_m], &path, &mut p);
            if let Some(lat) = ix.lat {
                if !(-90.0..=90.0).contains(&lat) {
                    p.push(Problem::new(
                        path.key("lat"),
                        format!("latitude {lat} is outside -90 to 90"),
                    ));
                }
            }
            if let Some(lon) = ix.lon {
                if !(-180.0..=180.0).contains(&lon) {
                    p.push(Problem::new(
                        path.key("lon"),
                        format!("longitude {lon} is outside -180 to 180"),
                    ));
                }
            }
            if endpoint_ids
                .insert(ix.id.clone(), Endpoint::Intersection(IntersectionIdx(i)))
                .is_some()
            {
                p.push(Problem::new(
                    path.key("id"),
                    format!("id {:?} is used twice", ix.id),
                ));
            }
            intersection_index.insert(ix.id.clone(), IntersectionIdx(i));
        }

        // Links.
        let mut links = Vec::new();
        let mut link_index = BTreeMap::new();
        for (i, l) in spec.links.iter().enumerate() {
            let path = root.key("links").index(i);
            check_id(&l.id, &path.key("id"), &mut p);
            if link_index.insert(l.id.clone(), LinkIdx(i)).is_some() {
                p.push(Problem::new(
                    path.key("id"),
                    format!("link id {:?} is used twice", l.id),
                ));
            }
            let mut end = |id: &str, field: &str| match endpoint_ids.get(id) {
                Some(e) => Some(*e),
                None => {
                    p.push(Problem::new(
                        path.key(field),
                        format!("unknown node or intersection {id:?}"),
                    ));
                    None
                }
            };
            let from = end(&l.from, "from");
            let to = end(&l.to, "to");
            if l.from == l.to {
                p.push(Problem::new(
                    path.key("to"),
                    "a link cannot start and end at the same place",
                ));
            }
            if let (Some(Endpoint::Boundary(_)), Some(Endpoint::Boundary(_))) = (from, to) {
                p.push(Problem::new(
                    path.clone(),
                    "a link must touch at least one intersection",
                ));
            }
            if l.lanes == 0 || l.lanes > 8 {
                p.push(Problem::new(
                    path.key("lanes"),
                    format!("{} lanes: a link has 1 to 8", l.lanes),
                ));
            }
            if !(l.speed_limit_kmh.is_finite() && (5.0..=130.0).contains(&l.speed_limit_kmh)) {
                p.push(Problem::new(
                    path.key("speed_limit_kmh"),
                    format!("{} km/h is outside 5 to 130", l.speed_limit_kmh),
                ));
            }
            if !(l.grade_pct.is_finite() && (-15.0..=15.0).contains(&l.grade_pct)) {
                p.push(Problem::new(
                    path.key("grade_pct"),
                    format!("grade {}% is outside -15 to 15", l.grade_pct),
                ));
            }
            links.push((from, to));
        }
        let position = |e: Endpoint| match e {
            Endpoint::Boundary(n) => (spec.nodes[n].x_m, spec.nodes[n].y_m),
            Endpoint::Intersection(i) => (spec.intersections[i.0].x_m, spec.intersections[i.0].y_m),
        };
        let mut checked_links = Vec::new();
        for (i, (l, ends)) in spec.links.iter().zip(&links).enumerate() {
            let path = root.key("links").index(i);
            let straight = match ends {
                (Some(a), Some(b)) => {
                    let (pa, pb) = (position(*a), position(*b));
                    ((pa.0 - pb.0).powi(2) + (pa.1 - pb.1).powi(2)).sqrt()
                }
                _ => 100.0,
            };
            let length_m = l.length_m.unwrap_or(straight);
            if !(length_m.is_finite() && length_m >= 10.0) {
                p.push(Problem::new(
                    path.key("length_m"),
                    format!("length {length_m:.1} m: a link is at least 10 m long"),
                ));
            }
            checked_links.push(Link {
                id: l.id.clone(),
                from: ends.0.unwrap_or(Endpoint::Boundary(usize::MAX)),
                to: ends.1.unwrap_or(Endpoint::Boundary(usize::MAX)),
                lanes: l.lanes.max(1),
                speed_mps: l.speed_limit_kmh / 3.6,
                length_m,
                grade_pct: l.grade_pct,
            });
        }
        if !p.is_empty() {
            // Intersections refer to links; stop before misleading follow-up errors.
            return Err(p);
        }
        // The links touching each node and each intersection, in link order, from one pass over
        // the links (looking at every link for each of them was quadratic in network size).
        let mut node_touched = vec![false; nodes.len()];
        let mut touching: Vec<Vec<LinkIdx>> = vec![Vec::new(); spec.intersections.len()];
        for (li, l) in checked_links.iter().enumerate() {
            for e in [l.from, l.to] {
                match e {
                    Endpoint::Boundary(n) => node_touched[n] = true,
                    Endpoint::Intersection(x) => touching[x.0].push(LinkIdx(li)),
                }
            }
        }
        for (i, n) in nodes.iter().enumerate() {
            if !node_touched[i] {
                p.push(Problem::new(
                    root.key("nodes").index(i),
                    format!("boundary node {:?} has no link", n.id),
                ));
            }
        }

        let mut net = Network {
            name: spec.name.clone(),
            description: spec.description.clone(),
            safety,
            nodes,
            intersections: Vec::new(),
            links: checked_links,
            coordination_groups: Vec::new(),
            link_index,
            intersection_index,
            intersection_pos: spec.intersections.iter().map(|i| (i.x_m, i.y_m)).collect(),
        };
        for (i, ix) in spec.intersections.iter().enumerate() {
            let path = root.key("intersections").index(i);
            let built =
                build_intersection(&net, IntersectionIdx(i), &touching[i], ix, &path, &mut p);
            net.intersections.push(built);
        }

        for (i, g) in spec.coordination_groups.iter().enumerate() {
            let path = root.key("coordination_groups").index(i);
            check_id(&g.id, &path.key("id"), &mut p);
            let mut members = Vec::new();
            for (j, id) in g.intersections.iter().enumerate() {
                match net.intersection(id) {
                    Some(ix) if members.contains(&ix) => p.push(Problem::new(
                        path.key("intersections").index(j),
                        format!("{id:?} is listed twice"),
                    )),
                    Some(ix) => members.push(ix),
                    None => p.push(Problem::new(
                        path.key("intersections").index(j),
                        format!("unknown intersection {id:?}"),
                    )),
                }
            }
            if let Some(other) = net
                .coordination_groups
                .iter()
                .find(|o: &&CoordinationGroup| o.intersections.iter().any(|m| members.contains(m)))
            {
                p.push(Problem::new(path.key("intersections"), format!("an intersection can be in one coordination group only; it is already in {:?}", other.id)));
            }
            let group = CoordinationGroup {
                id: g.id.clone(),
                intersections: members,
            };
            check_common_cycle(&net, &group, &path, &mut p);
            net.coordination_groups.push(group);
        }
        if p.is_empty() {
            Ok(net)
        } else {
            Err(p)
        }
    }
}

fn check_id(id: &str, path: &FieldPath, p: &mut Vec<Problem>) {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if !ok {
        p.push(Problem::new(
            path.clone(),
            format!("id {id:?} must be 1-64 characters of letters, digits, '_', '-', '.', ':'"),
        ));
    }
}

fn check_finite(vals: &[f64], path: &FieldPath, p: &mut Vec<Problem>) {
    if vals.iter().any(|v| !v.is_finite()) {
        p.push(Problem::new(
            path.clone(),
            "coordinates must be finite numbers",
        ));
    }
}

fn secs(v: f64, path: &FieldPath, what: &str, p: &mut Vec<Problem>) -> Option<Ms> {
    match Ms::from_secs_f64(v) {
        Some(ms) if ms >= Ms::ZERO => Some(ms),
        _ => {
            p.push(Problem::new(
                path.clone(),
                format!("{what} must be a non-negative number of seconds, found {v}"),
            ));
            None
        }
    }
}

fn parse_time_of_day(s: &str) -> Option<Ms> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: i64 = h.parse().ok()?;
    let m: i64 = m.parse().ok()?;
    (h < 24 && m < 60).then(|| Ms::from_s(h * 3600 + m * 60))
}

/// `touching`: the links that start or end at `me`, in link order.
fn build_intersection(
    net: &Network,
    me: IntersectionIdx,
    touching: &[LinkIdx],
    spec: &crate::spec::IntersectionSpec,
    path: &FieldPath,
    p: &mut Vec<Problem>,
) -> Intersection {
    let safety = &net.safety;
    let here = Endpoint::Intersection(me);
    let approaches: Vec<LinkIdx> = touching
        .iter()
        .copied()
        .filter(|l| net.links[l.0].to == here)
        .collect();
    let exits: Vec<LinkIdx> = touching
        .iter()
        .copied()
        .filter(|l| net.links[l.0].from == here)
        .collect();
    if approaches.is_empty() {
        p.push(Problem::new(
            path.clone(),
            format!("intersection {:?} has no incoming link", spec.id),
        ));
    }
    if exits.is_empty() {
        p.push(Problem::new(
            path.clone(),
            format!("intersection {:?} has no outgoing link", spec.id),
        ));
    }

    // Movements.
    let mut movements: Vec<Movement> = Vec::new();
    for (i, m) in spec.movements.iter().enumerate() {
        let mp = path.key("movements").index(i);
        check_id(&m.id, &mp.key("id"), p);
        if movements.iter().any(|o| o.id == m.id) {
            p.push(Problem::new(
                mp.key("id"),
                format!("movement id {:?} is used twice", m.id),
            ));
        }
        let from = net.link(&m.from);
        let to = net.link(&m.to);
        match from {
            None => p.push(Problem::new(
                mp.key("from"),
                format!("unknown link {:?}", m.from),
            )),
            Some(l) if !approaches.contains(&l) => p.push(Problem::new(
                mp.key("from"),
                format!(
                    "link {:?} does not enter intersection {:?}",
                    m.from, spec.id
                ),
            )),
            _ => {}
        }
        match to {
            None => p.push(Problem::new(
                mp.key("to"),
                format!("unknown link {:?}", m.to),
            )),
            Some(l) if !exits.contains(&l) => p.push(Problem::new(
                mp.key("to"),
                format!("link {:?} does not leave intersection {:?}", m.to, spec.id),
            )),
            _ => {}
        }
        let (Some(from), Some(to)) = (from, to) else {
            continue;
        };
        if !approaches.contains(&from) || !exits.contains(&to) {
            continue;
        }
        let geo_turn = geometry::classify_turn(net.leg_bearing(from, me), net.leg_bearing(to, me));
        let turn = m.turn.unwrap_or(geo_turn);
        let lanes_on = net.links[from.0].lanes;
        if m.lanes.is_empty() {
            p.push(Problem::new(
                mp.key("lanes"),
                "a movement needs at least one lane",
            ));
        }
        for (j, lane) in m.lanes.iter().enumerate() {
            if *lane >= lanes_on {
                p.push(Problem::new(mp.key("lanes").index(j), format!("lane {lane} does not exist: link {:?} has {lanes_on} lanes (0 is the rightmost)", m.from)));
            }
        }
        let sat = m.saturation_flow_veh_h.unwrap_or(match turn {
            Turn::Through => 1800.0,
            Turn::Left => 1700.0,
            Turn::Right => 1600.0,
            Turn::Uturn => 1000.0,
        });
        if !(sat.is_finite() && (300.0..=2600.0).contains(&sat)) {
            p.push(Problem::new(
                mp.key("saturation_flow_veh_h"),
                format!("{sat} veh/h per lane is outside 300 to 2600"),
            ));
        }
        if movements.iter().any(|o| o.from == from && o.to == to) {
            p.push(Problem::new(
                mp.clone(),
                format!(
                    "another movement already goes from {:?} to {:?}",
                    m.from, m.to
                ),
            ));
        }
        movements.push(Movement {
            id: m.id.clone(),
            from,
            to,
            turn,
            lanes: m.lanes.clone(),
            saturation_flow_veh_h: sat,
            group: None,
        });
    }
    // Every lane of every approach serves a movement.
    for &a in &approaches {
        for lane in 0..net.links[a.0].lanes {
            if !movements
                .iter()
                .any(|m| m.from == a && m.lanes.contains(&lane))
                && spec.movements.len() == movements.len()
            {
                p.push(Problem::new(
                    path.key("movements"),
                    format!(
                        "lane {lane} of incoming link {:?} serves no movement",
                        net.links[a.0].id
                    ),
                ));
            }
        }
    }

    // Signal groups.
    let signalised = spec.control == ControlKind::Signal;
    let has_signal_config =
        !spec.signal_groups.is_empty() || !spec.stages.is_empty() || !spec.plans.is_empty();
    if !signalised && has_signal_config {
        p.push(Problem::new(
            path.key("control"),
            "a priority junction has no signal groups, stages or plans",
        ));
    }
    let mut groups: Vec<SignalGroup> = Vec::new();
    for (i, g) in spec.signal_groups.iter().enumerate() {
        let gp = path.key("signal_groups").index(i);
        check_id(&g.id, &gp.key("id"), p);
        if groups.iter().any(|o| o.id == g.id) {
            p.push(Problem::new(
                gp.key("id"),
                format!("signal group id {:?} is used twice", g.id),
            ));
        }
        let mut mv = Vec::new();
        let mut crossing = None;
        let mut crossing_length_m = 0.0;
        let min_green_default = match g.kind {
            GroupKind::Vehicle => safety.min_green,
            GroupKind::Pedestrian => safety.ped_walk_min,
        };
        let min_green = match g.min_green_s {
            None => min_green_default,
            Some(v) => match secs(v, &gp.key("min_green_s"), "min_green_s", p) {
                Some(ms) if ms < min_green_default => {
                    p.push(Problem::new(gp.key("min_green_s"), format!("{ms} is below the jurisdiction's minimum of {min_green_default}; it may only be raised")));
                    min_green_default
                }
                Some(ms) => ms,
                None => min_green_default,
            },
        };
        let mut clearance = Ms::ZERO;
        let mut red_yellow = Ms::ZERO;
        match g.kind {
            GroupKind::Vehicle => {
                if g.crossing.is_some() || g.crossing_length_m.is_some() {
                    p.push(Problem::new(
                        gp.key("crossing"),
                        "only pedestrian groups have a crossing",
                    ));
                }
                if g.movements.is_empty() {
                    p.push(Problem::new(
                        gp.key("movements"),
                        "a vehicle group controls at least one movement",
                    ));
                }
                for (j, mid) in g.movements.iter().enumerate() {
                    match movements.iter().position(|m| &m.id == mid) {
                        None => p.push(Problem::new(
                            gp.key("movements").index(j),
                            format!("unknown movement {mid:?}"),
                        )),
                        Some(k) => {
                            if let Some(other) = movements[k].group {
                                // `other` is this group (not pushed yet) when listed twice.
                                let msg = match groups.get(other.0) {
                                    Some(o) => format!("movement {mid:?} is already controlled by signal group {:?}", o.id),
                                    None => format!("movement {mid:?} is listed twice"),
                                };
                                p.push(Problem::new(gp.key("movements").index(j), msg));
                            } else {
                                movements[k].group = Some(GroupIdx(groups.len()));
                                mv.push(k);
                            }
                        }
                    }
                }
                // Yellow from the fastest, steepest-down approach among its movements.
                for &k in &mv {
                    let l = &net.links[movements[k].from.0];
                    clearance =
                        clearance.max(geometry::ite_yellow(&safety.spec, l.speed_mps, l.grade_pct));
                }
                if mv.is_empty() {
                    clearance =
                        Ms::from_secs_f64(safety.spec.yellow_min_s).unwrap_or(Ms::from_s(3));
                }
                red_yellow = safety.red_yellow;
            }
            GroupKind::Pedestrian => {
                if !g.movements.is_empty() {
                    p.push(Problem::new(
                        gp.key("movements"),
                        "a pedestrian group has a crossing, not movements",
                    ));
                }
                if g.protection != Protection::Protected {
                    p.push(Problem::new(
                        gp.key("protection"),
                        "pedestrian groups are always protected",
                    ));
                }
                match &g.crossing {
                    None => p.push(Problem::new(
                        gp.clone(),
                        "a pedestrian group needs `crossing`: the link whose leg it crosses",
                    )),
                    Some(c) => match net.link(c) {
                        Some(l) if approaches.contains(&l) || exits.contains(&l) => {
                            crossing = Some(l);
                            crossing_length_m =
                                leg_width(net, me, touching, net.leg_bearing(l, me), &safety.spec);
                        }
                        Some(_) => p.push(Problem::new(
                            gp.key("crossing"),
                            format!("link {c:?} does not touch intersection {:?}", spec.id),
                        )),
                        None => p.push(Problem::new(
                            gp.key("crossing"),
                            format!("unknown link {c:?}"),
                        )),
                    },
                }
                if let Some(len) = g.crossing_length_m {
                    if !(len.is_finite() && (2.0..=80.0).contains(&len)) {
                        p.push(Problem::new(
                            gp.key("crossing_length_m"),
                            format!("{len} m is outside 2 to 80"),
                        ));
                    } else {
                        crossing_length_m = len;
                    }
                }
                let c = crossing_length_m / safety.spec.ped_speed_mps;
                clearance = Ms::from_secs_f64(c)
                    .unwrap_or(Ms::ZERO)
                    .ceil_to(Ms(1000))
                    .max(Ms::from_s(3));
            }
        }
        groups.push(SignalGroup {
            id: g.id.clone(),
            kind: g.kind,
            protection: g.protection,
            movements: mv,
            crossing,
            crossing_length_m,
            min_green,
            clearance,
            red_yellow,
        });
    }
    if signalised {
        for (k, m) in movements.iter().enumerate() {
            if m.group.is_none() {
                p.push(Problem::new(
                    path.key("movements").index(k),
                    format!("movement {:?} is in no signal group", m.id),
                ));
            }
        }
    }

    // Conflict matrix from geometry, then declared extra conflicts.
    let n = groups.len();
    let mut conflicts = vec![vec![false; n]; n];
    for a in 0..n {
        for b in (a + 1)..n {
            let c = groups_conflict(net, me, &approaches, &movements, &groups[a], &groups[b]);
            conflicts[a][b] = c;
            conflicts[b][a] = c;
        }
    }
    for (i, c) in spec.conflicts.iter().enumerate() {
        let cp = path.key("conflicts").index(i).key("groups");
        let a = groups.iter().position(|g| g.id == c.groups[0]);
        let b = groups.iter().position(|g| g.id == c.groups[1]);
        match (a, b) {
            (Some(a), Some(b)) if a != b => {
                conflicts[a][b] = true;
                conflicts[b][a] = true;
            }
            (Some(_), Some(_)) => p.push(Problem::new(cp, "a group cannot conflict with itself")),
            _ => p.push(Problem::new(
                cp,
                format!("unknown signal group in {:?}", c.groups),
            )),
        }
    }

    // Intergreens: clearance of the ending group plus all-red (vehicles) or buffer (pedestrians).
    let mut intergreen = vec![vec![Ms::ZERO; n]; n];
    for a in 0..n {
        let ga = &groups[a];
        let after = match ga.kind {
            GroupKind::Vehicle => ga
                .movements
                .iter()
                .map(|&k| {
                    let m = &movements[k];
                    let v = geometry::crossing_speed(m.turn, net.links[m.from.0].speed_mps);
                    let w = crossed_width(net, me, touching, m.from, &safety.spec)
                        * geometry::path_factor(m.turn);
                    geometry::all_red(&safety.spec, w, v)
                })
                .max()
                .unwrap_or(Ms::from_s(2)),
            GroupKind::Pedestrian => safety.ped_buffer,
        };
        for b in 0..n {
            if conflicts[a][b] {
                intergreen[a][b] = ga.clearance + after;
            }
        }
    }
    for (i, o) in spec.intergreens.iter().enumerate() {
        let ip = path.key("intergreens").index(i);
        let a = groups.iter().position(|g| g.id == o.from);
        let b = groups.iter().position(|g| g.id == o.to);
        let (Some(a), Some(b)) = (a, b) else {
            p.push(Problem::new(
                ip,
                format!("unknown signal group in {:?} -> {:?}", o.from, o.to),
            ));
            continue;
        };
        if !conflicts[a][b] {
            p.push(Problem::new(ip, format!("signal groups {:?} and {:?} do not conflict; an intergreen applies to conflicting groups only", o.from, o.to)));
            continue;
        }
        let Some(v) = secs(o.intergreen_s, &ip.key("intergreen_s"), "intergreen_s", p) else {
            continue;
        };
        if v < groups[a].clearance {
            p.push(Problem::new(ip.key("intergreen_s"), format!("{v} is shorter than the clearance of {:?} ({}); the yellow or pedestrian clearance must fit inside the intergreen", o.from, groups[a].clearance)));
            continue;
        }
        if v > Ms::from_s(30) {
            p.push(Problem::new(
                ip.key("intergreen_s"),
                format!("{v} is longer than 30 s"),
            ));
            continue;
        }
        intergreen[a][b] = v;
    }

    // Stages.
    let mut stages: Vec<Stage> = Vec::new();
    for (i, s) in spec.stages.iter().enumerate() {
        let sp = path.key("stages").index(i);
        check_id(&s.id, &sp.key("id"), p);
        if stages.iter().any(|o| o.id == s.id) {
            p.push(Problem::new(
                sp.key("id"),
                format!("stage id {:?} is used twice", s.id),
            ));
        }
        let mut gs: Vec<GroupIdx> = Vec::new();
        for (j, gid) in s.groups.iter().enumerate() {
            match groups.iter().position(|g| &g.id == gid) {
                None => p.push(Problem::new(
                    sp.key("groups").index(j),
                    format!("unknown signal group {gid:?}"),
                )),
                Some(k) if gs.contains(&GroupIdx(k)) => p.push(Problem::new(
                    sp.key("groups").index(j),
                    format!("signal group {gid:?} is listed twice"),
                )),
                Some(k) => gs.push(GroupIdx(k)),
            }
        }
        for (x, a) in gs.iter().enumerate() {
            for b in &gs[x + 1..] {
                if conflicts[a.0][b.0] {
                    p.push(Problem::new(
                        sp.clone(),
                        format!(
                            "signal groups {} and {} conflict",
                            groups[a.0].id, groups[b.0].id
                        ),
                    ));
                }
            }
        }
        if gs.is_empty() && s.groups.is_empty() {
            p.push(Problem::new(
                sp.key("groups"),
                "a stage has at least one signal group",
            ));
        }
        stages.push(Stage {
            id: s.id.clone(),
            groups: gs,
        });
    }

    // Detectors.
    let mut detectors: Vec<Detector> = Vec::new();
    for (i, d) in spec.detectors.iter().enumerate() {
        let dp = path.key("detectors").index(i);
        check_id(&d.id, &dp.key("id"), p);
        if detectors.iter().any(|o| o.id == d.id) {
            p.push(Problem::new(
                dp.key("id"),
                format!("detector id {:?} is used twice", d.id),
            ));
        }
        let Some(link) = net.link(&d.link) else {
            p.push(Problem::new(
                dp.key("link"),
                format!("unknown link {:?}", d.link),
            ));
            continue;
        };
        let ok_link = match d.kind {
            DetectorKind::StopLine | DetectorKind::Advance => approaches.contains(&link),
            DetectorKind::Exit => exits.contains(&link),
        };
        if !ok_link {
            let dir = if d.kind == DetectorKind::Exit {
                "leave"
            } else {
                "enter"
            };
            p.push(Problem::new(
                dp.key("link"),
                format!(
                    "link {:?} does not {dir} intersection {:?}",
                    d.link, spec.id
                ),
            ));
        }
        let l = &net.links[link.0];
        if d.lane >= l.lanes {
            p.push(Problem::new(
                dp.key("lane"),
                format!(
                    "lane {} does not exist: link {:?} has {} lanes",
                    d.lane, d.link, l.lanes
                ),
            ));
        }
        let length_m = d.length_m.unwrap_or(2.0);
        if !(length_m.is_finite() && (0.5..=30.0).contains(&length_m)) {
            p.push(Problem::new(
                dp.key("length_m"),
                format!("{length_m} m is outside 0.5 to 30"),
            ));
        }
        if !(d.distance_m.is_finite()
            && d.distance_m >= 0.0
            && d.distance_m + length_m <= l.length_m)
        {
            p.push(Problem::new(
                dp.key("distance_m"),
                format!(
                    "{} m does not fit on link {:?} ({:.1} m long)",
                    d.distance_m, d.link, l.length_m
                ),
            ));
        }
        detectors.push(Detector {
            id: d.id.clone(),
            link,
            lane: d.lane,
            distance_m: d.distance_m,
            length_m,
            kind: d.kind,
        });
    }

    let mut ix = Intersection {
        id: spec.id.clone(),
        name: spec.name.clone(),
        x_m: spec.x_m,
        y_m: spec.y_m,
        lat: spec.lat,
        lon: spec.lon,
        control: spec.control,
        approaches,
        exits,
        movements,
        groups,
        conflicts,
        intergreen,
        stages,
        detectors,
        plans: Vec::new(),
        schedule: Vec::new(),
    };

    // Plans and schedule.
    if signalised && spec.plans.is_empty() {
        p.push(Problem::new(
            path.key("plans"),
            format!(
                "signalised intersection {:?} needs at least one plan",
                spec.id
            ),
        ));
    }
    if signalised && spec.stages.is_empty() {
        p.push(Problem::new(
            path.key("stages"),
            format!(
                "signalised intersection {:?} needs at least one stage",
                spec.id
            ),
        ));
    }
    let mut plans = Vec::new();
    for (i, ps) in spec.plans.iter().enumerate() {
        let pp = path.key("plans").index(i);
        if plans.iter().any(|o: &Plan| o.id == ps.id) {
            p.push(Problem::new(
                pp.key("id"),
                format!("plan id {:?} is used twice", ps.id),
            ));
        }
        match plan::validate(&ix, &net.safety, ps, &pp) {
            Ok(pl) => plans.push(pl),
            Err(errs) => p.extend(errs),
        }
    }
    ix.plans = plans;
    let mut schedule: Vec<ScheduleEntry> = Vec::new();
    for (i, s) in spec.schedule.iter().enumerate() {
        let sp = path.key("schedule").index(i);
        let Some(from) = parse_time_of_day(&s.from) else {
            p.push(Problem::new(
                sp.key("from"),
                format!("{:?} is not a time of day HH:MM", s.from),
            ));
            continue;
        };
        if let Some(last) = schedule.last() {
            if from <= last.from {
                p.push(Problem::new(
                    sp.key("from"),
                    format!(
                        "{} is not after the previous entry; list the schedule in time order",
                        s.from
                    ),
                ));
            }
        }
        match spec.plans.iter().position(|pl| pl.id == s.plan) {
            Some(k) => match ix.plans.iter().position(|pl| pl.id == s.plan) {
                Some(checked) => schedule.push(ScheduleEntry {
                    from,
                    plan: checked,
                }),
                None => {
                    let _ = k; // the plan itself has errors, reported above
                }
            },
            None => p.push(Problem::new(
                sp.key("plan"),
                format!("unknown plan {:?}", s.plan),
            )),
        }
    }
    ix.schedule = schedule;
    ix
}

/// Whether two signal groups may not show green together, from the geometry of their
/// movements and crossings. A permissive group's turning movements yield to opposing traffic and
/// to pedestrians, so those encounters are not signal conflicts.
fn groups_conflict(
    net: &Network,
    me: IntersectionIdx,
    approaches: &[LinkIdx],
    movements: &[Movement],
    a: &SignalGroup,
    b: &SignalGroup,
) -> bool {
    let legs = |m: &Movement| (net.leg_bearing(m.from, me), net.leg_bearing(m.to, me));
    let yields = |g: &SignalGroup, m: &Movement, other_entry: Option<f64>| -> bool {
        if g.protection != Protection::Permissive || m.turn == Turn::Through {
            return false;
        }
        match other_entry {
            None => true, // a pedestrian
            Some(e) => {
                let mine = net.leg_bearing(m.from, me);
                angle_opposite(net, me, approaches, mine) == Some(e)
            }
        }
    };
    match (a.kind, b.kind) {
        (GroupKind::Pedestrian, GroupKind::Pedestrian) => false,
        (GroupKind::Vehicle, GroupKind::Vehicle) => {
            for &i in &a.movements {
                for &j in &b.movements {
                    let (mi, mj) = (&movements[i], &movements[j]);
                    if geometry::vehicle_interaction(legs(mi), legs(mj)) == Interaction::None {
                        continue;
                    }
                    let ei = net.leg_bearing(mi.from, me);
                    let ej = net.leg_bearing(mj.from, me);
                    if yields(a, mi, Some(ej)) || yields(b, mj, Some(ei)) {
                        continue;
                    }
                    return true;
                }
            }
            false
        }
        (GroupKind::Pedestrian, GroupKind::Vehicle)
        | (GroupKind::Vehicle, GroupKind::Pedestrian) => {
            let (ped, veh) = if a.kind == GroupKind::Pedestrian {
                (a, b)
            } else {
                (b, a)
            };
            let Some(c) = ped.crossing else { return false };
            let leg = net.leg_bearing(c, me);
            veh.movements.iter().any(|&k| {
                let m = &movements[k];
                let (f, t) = legs(m);
                // Vehicles cross the crosswalk of their entry leg before they turn, so they
                // never yield there: only a permissive turn yields, to the crosswalk of the
                // leg it leaves by.
                let on_entry = geometry::angle_diff(f, leg).abs() < 1.0;
                let on_exit = geometry::angle_diff(t, leg).abs() < 1.0;
                on_entry || (on_exit && !yields(veh, m, None))
            })
        }
    }
}

/// Width of the road at the leg with bearing `leg`: every lane of both directions.
/// `touching`: the links that start or end at `me`.
fn leg_width(
    net: &Network,
    me: IntersectionIdx,
    touching: &[LinkIdx],
    leg: f64,
    safety: &SafetySpec,
) -> f64 {
    let lanes: u32 = touching
        .iter()
        .filter(|l| geometry::angle_diff(net.leg_bearing(**l, me), leg).abs() < 1.0)
        .map(|l| net.links[l.0].lanes)
        .sum();
    lanes as f64 * safety.lane_width_m
}

/// Width of the junction a vehicle entering by `from` has to cross: the widest road whose leg
/// lies across its path (45 to 135 degrees from its entry leg), else the widest leg.
fn crossed_width(
    net: &Network,
    me: IntersectionIdx,
    touching: &[LinkIdx],
    from: LinkIdx,
    safety: &SafetySpec,
) -> f64 {
    let entry = net.leg_bearing(from, me);
    let legs: Vec<f64> = touching.iter().map(|l| net.leg_bearing(*l, me)).collect();
    let across = legs
        .iter()
        .filter(|b| (45.0..=135.0).contains(&geometry::angle_diff(**b, entry).abs()))
        .map(|b| leg_width(net, me, touching, *b, safety))
        .fold(0.0, f64::max);
    if across > 0.0 {
        across
    } else {
        legs.iter()
            .map(|b| leg_width(net, me, touching, *b, safety))
            .fold(0.0, f64::max)
    }
}

/// The bearing of the approach leg opposite `leg` (within 45 degrees of straight across), if
/// any, among `approaches` (the links into `me`, in link order).
fn angle_opposite(
    net: &Network,
    me: IntersectionIdx,
    approaches: &[LinkIdx],
    leg: f64,
) -> Option<f64> {
    let ix_legs: Vec<f64> = approaches.iter().map(|l| net.leg_bearing(*l, me)).collect();
    let target = (leg + 180.0).rem_euclid(360.0);
    ix_legs
        .into_iter()
        .map(|b| (geometry::angle_diff(b, target).abs(), b))
        .filter(|(d, _)| *d <= 45.0)
        .min_by(|x, y| x.0.total_cmp(&y.0))
        .map(|(_, b)| b)
}

/// Whether a member's `cycle` keeps to its coordination group's `group` cycle: the same, or
/// half of it (double cycling). The one rule for networks' schedules and plan files.
pub(crate) fn keeps_group_cycle(cycle: Ms, group: Ms) -> bool {
    cycle == group || Ms(cycle.0 * 2) == group
}

/// In a coordination group every member runs the same cycle (or half of it: double cycling)
/// at every time of day.
fn check_common_cycle(
    net: &Network,
    g: &CoordinationGroup,
    path: &FieldPath,
    p: &mut Vec<Problem>,
) {
    let mut times: Vec<Ms> = vec![Ms::ZERO];
    for m in &g.intersections {
        times.extend(net.intersections[m.0].schedule.iter().map(|e| e.from));
    }
    times.sort();
    times.dedup();
    for t in times {
        let cycles: Vec<(String, Ms)> = g
            .intersections
            .iter()
            .filter_map(|m| {
                let ix = &net.intersections[m.0];
                ix.scheduled_plan(t).map(|pl| (ix.id.clone(), pl.cycle))
            })
            .collect();
        let Some(max) = cycles.iter().map(|c| c.1).max() else {
            continue;
        };
        for (id, c) in &cycles {
            if !keeps_group_cycle(*c, max) {
                let h = t.0 / 3_600_000;
                let mi = (t.0 / 60_000) % 60;
                p.push(Problem::new(
                    path.key("intersections"),
                    format!("at {h:02}:{mi:02} intersection {id:?} runs a {c} cycle, the group's is {max}; members share one cycle (or half of it)"),
                ));
            }
        }
    }
}
