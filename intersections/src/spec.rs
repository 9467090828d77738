//! The file formats as written by people: serde types that mirror the TOML files one to one,
//! with `deny_unknown_fields` everywhere. They are checked into the types of [`crate::model`]
//! by [`crate::load`]; nothing else reads them. `docs/formats.md` documents every field.

use serde::{Deserialize, Serialize};

/// A network file (`kind = "network"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Always `"network"`.
    pub kind: String,
    /// Format version; this code reads version 1.
    pub version: u32,
    /// Short name, used by demand and plan files to refer to the network.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Jurisdiction values of the safety rules; every field has a default.
    #[serde(default)]
    pub safety: SafetySpec,
    /// Boundary nodes where traffic enters or leaves the network.
    #[serde(default)]
    pub nodes: Vec<NodeSpec>,
    pub intersections: Vec<IntersectionSpec>,
    pub links: Vec<LinkSpec>,
    #[serde(default)]
    pub coordination_groups: Vec<CoordinationGroupSpec>,
}

/// Safety parameters (DESIGN.md, safety rules). Values may be made stricter or looser within
/// hard bounds, but no rule can be switched off.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafetySpec {
    /// Minimum green of a vehicle signal group, seconds (default 5, at least 3).
    pub min_green_s: f64,
    /// Minimum pedestrian walk, seconds (default 7, at least 4).
    pub ped_walk_min_s: f64,
    /// Pedestrian walking speed for the clearance interval, m/s (default 1.1).
    pub ped_speed_mps: f64,
    /// Time after a pedestrian clearance before a conflicting group may start, seconds (default 3).
    pub ped_buffer_s: f64,
    /// Shortest allowed cycle, seconds (default 30).
    pub cycle_min_s: f64,
    /// Longest allowed cycle, seconds (default 180).
    pub cycle_max_s: f64,
    /// ITE yellow formula: perception-reaction time, seconds (default 1.0).
    pub reaction_time_s: f64,
    /// ITE yellow formula: comfortable deceleration, m/s² (default 3.0).
    pub deceleration_mps2: f64,
    /// Yellow clamp, seconds (default 3 to 6).
    pub yellow_min_s: f64,
    pub yellow_max_s: f64,
    /// Upper clamp of the computed all-red, seconds (default 6).
    pub all_red_max_s: f64,
    /// Red-yellow shown before green, seconds; 0 where the jurisdiction has none (default 0;
    /// Germany 1, UK 2).
    pub red_yellow_s: f64,
    /// Design vehicle length for clearing distances, metres (default 6).
    pub vehicle_length_m: f64,
    /// Lane width used where the geometry gives no other, metres (default 3.5).
    pub lane_width_m: f64,
}

impl Default for SafetySpec {
    fn default() -> Self {
        SafetySpec {
            min_green_s: 5.0,
            ped_walk_min_s: 7.0,
            ped_speed_mps: 1.1,
            ped_buffer_s: 3.0,
            cycle_min_s: 30.0,
            cycle_max_s: 180.0,
            reaction_time_s: 1.0,
            deceleration_mps2: 3.0,
            yellow_min_s: 3.0,
            yellow_max_s: 6.0,
            all_red_max_s: 6.0,
            red_yellow_s: 0.0,
            vehicle_length_m: 6.0,
            lane_width_m: 3.5,
        }
    }
}

/// A boundary node: an origin and/or destination of traffic at the edge of the network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub id: String,
    pub x_m: f64,
    pub y_m: f64,
}

/// A directed road between two nodes or intersections.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    pub id: String,
    pub from: String,
    pub to: String,
    /// Number of lanes (lane 0 is the rightmost).
    pub lanes: u32,
    pub speed_limit_kmh: f64,
    /// Length in metres; defaults to the straight-line distance between the ends.
    #[serde(default)]
    pub length_m: Option<f64>,
    /// Grade of the approach in percent (positive uphill), for the yellow formula.
    #[serde(default)]
    pub grade_pct: f64,
}

/// How an intersection is controlled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControlKind {
    /// Traffic signals (the default).
    #[default]
    Signal,
    /// No signals: a priority junction (major road first, others yield).
    Priority,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntersectionSpec {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub x_m: f64,
    pub y_m: f64,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
    #[serde(default)]
    pub control: ControlKind,
    #[serde(default)]
    pub movements: Vec<MovementSpec>,
    #[serde(default)]
    pub signal_groups: Vec<SignalGroupSpec>,
    #[serde(default)]
    pub stages: Vec<StageSpec>,
    /// Extra conflicts beyond those computed from geometry.
    #[serde(default)]
    pub conflicts: Vec<ConflictSpec>,
    /// Intergreen overrides for ordered pairs of conflicting groups.
    #[serde(default)]
    pub intergreens: Vec<IntergreenSpec>,
    #[serde(default)]
    pub detectors: Vec<DetectorSpec>,
    #[serde(default)]
    pub plans: Vec<PlanSpec>,
    /// Time-of-day schedule: which plan runs from when. Empty: the first plan all day.
    #[serde(default)]
    pub schedule: Vec<ScheduleSpec>,
}

/// Turn of a movement, seen by the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Turn {
    Left,
    Through,
    Right,
    Uturn,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MovementSpec {
    pub id: String,
    /// Incoming link.
    pub from: String,
    /// Outgoing link.
    pub to: String,
    /// Computed from the geometry when absent.
    #[serde(default)]
    pub turn: Option<Turn>,
    /// Lanes of the incoming link that serve this movement (0 = rightmost).
    pub lanes: Vec<u32>,
    /// Saturation flow per lane, veh/h; defaults by turn (through 1800, left 1700, right 1600,
    /// U-turn 1000).
    #[serde(default)]
    pub saturation_flow_veh_h: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupKind {
    Vehicle,
    Pedestrian,
}

/// Whether the turning movements of a vehicle group yield to opposing traffic and crossing
/// pedestrians (permissive) or have the right of way (protected).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protection {
    #[default]
    Protected,
    Permissive,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalGroupSpec {
    pub id: String,
    pub kind: GroupKind,
    /// Vehicle groups: the movements it controls.
    #[serde(default)]
    pub movements: Vec<String>,
    #[serde(default)]
    pub protection: Protection,
    /// Pedestrian groups: the link (either direction) whose leg the crossing spans.
    #[serde(default)]
    pub crossing: Option<String>,
    /// Pedestrian groups: length of the crossing; defaults to the width of the leg.
    #[serde(default)]
    pub crossing_length_m: Option<f64>,
    /// Minimum green (vehicles) or walk (pedestrians); defaults from `[safety]`. It may only be
    /// raised above the jurisdiction's value.
    #[serde(default)]
    pub min_green_s: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub id: String,
    pub groups: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConflictSpec {
    pub groups: [String; 2],
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntergreenSpec {
    /// The group whose green ends.
    pub from: String,
    /// The conflicting group whose green starts.
    pub to: String,
    /// End of green of `from` to start of green of `to`, seconds.
    pub intergreen_s: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DetectorKind {
    StopLine,
    Advance,
    Exit,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSpec {
    pub id: String,
    /// Incoming link (stop-line, advance) or outgoing link (exit).
    pub link: String,
    pub lane: u32,
    /// Distance from the stop line upstream (stop-line, advance) or from the intersection
    /// downstream (exit), metres.
    pub distance_m: f64,
    pub kind: DetectorKind,
    /// Loop length in metres (default 2).
    #[serde(default)]
    pub length_m: Option<f64>,
}

/// A timing plan for one intersection: cycle, offset, stage sequence and green times.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    pub id: String,
    pub cycle_s: f64,
    /// Start of the first stage's green after the shared reference time, seconds.
    #[serde(default)]
    pub offset_s: f64,
    pub stages: Vec<StageTimeSpec>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageTimeSpec {
    pub stage: String,
    pub green_s: f64,
    /// Interstage from this stage to the next; defaults to the shortest the intergreens allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interstage_s: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Local time of day `HH:MM`.
    pub from: String,
    pub plan: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinationGroupSpec {
    pub id: String,
    pub intersections: Vec<String>,
}

/// A plan file (`kind = "plans"`): plans for intersections of one network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFileSpec {
    pub kind: String,
    pub version: u32,
    /// Path of the network file, relative to this file.
    pub network: String,
    pub plans: Vec<IntersectionPlanSpec>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntersectionPlanSpec {
    pub intersection: String,
    pub id: String,
    pub cycle_s: f64,
    #[serde(default)]
    pub offset_s: f64,
    pub stages: Vec<StageTimeSpec>,
}

impl IntersectionPlanSpec {
    /// The plan part, as it would stand in a network file.
    pub fn plan(&self) -> PlanSpec {
        PlanSpec {
            id: self.id.clone(),
            cycle_s: self.cycle_s,
            offset_s: self.offset_s,
            stages: self.stages.clone(),
        }
    }
}

/// A demand file (`kind = "demand"`): flows per entry per time slice and turning ratios.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemandSpec {
    pub kind: String,
    pub version: u32,
    /// Path of the network file, relative to this file.
    pub network: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Length of one time slice, seconds.
    pub slice_s: f64,
    pub entries: Vec<EntryFlowSpec>,
    #[serde(default)]
    pub turning: Vec<TurningSpec>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryFlowSpec {
    /// A link that starts at a boundary node.
    pub link: String,
    /// Flow per slice, veh/h; all entries have the same number of slices.
    pub flows_veh_h: Vec<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurningSpec {
    pub intersection: String,
    /// The incoming link.
    pub from: String,
    /// Share of the traffic per outgoing link; shares sum to 1.
    pub ratios: std::collections::BTreeMap<String, f64>,
}
