//! The wire messages of DESIGN.md, defined once. Every payload on
//! `greenwave/v1/{region}/{intersection}/...` is one of these, as JSON, with a `version` field.
//! Times are milliseconds since the Unix epoch (the controller maps its clock to model time).
//! `docs/messages.md` shows one example of each, checked by a test.

use serde::{Deserialize, Serialize};

use crate::runner::Colour;
use crate::spec::PlanSpec;

/// The version every message of this build carries.
pub const WIRE_VERSION: u32 = 1;

/// Topic for a message kind: `greenwave/v1/{region}/{intersection}/{leaf}`.
pub fn topic(region: &str, intersection: &str, leaf: &str) -> String {
    format!("greenwave/v1/{region}/{intersection}/{leaf}")
}

/// `detectors`: counts and occupancy per detector over one interval (controller -> optimizer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorReport {
    pub version: u32,
    pub region: String,
    pub intersection: String,
    /// Increases by one per report; with the interval, lets the receiver drop duplicates (a
    /// restarted cabinet may send new intervals under old numbers).
    pub seq: u64,
    pub interval_start_ms: i64,
    pub interval_end_ms: i64,
    pub detectors: Vec<DetectorCount>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorCount {
    pub detector: String,
    /// Vehicles counted (rising edges).
    pub count: u32,
    /// Share of the interval the loop was occupied, 0 to 1.
    pub occupancy: f64,
    /// The controller's diagnosis of the detector.
    pub health: DetectorHealth,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DetectorHealth {
    Ok,
    /// No activity for longer than the configured time (stuck off).
    NoActivity,
    /// Occupied for longer than the configured time (stuck on).
    MaxPresence,
    /// More actuations per minute than plausible (chattering).
    Erratic,
}

/// Operating mode of a controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Start-up sequence: flashing yellow, then all-red.
    StartUp,
    /// Coordinated fixed time from a plan of the centre.
    Coordinated,
    /// Actuated within a coordinated plan.
    CoordinatedActuated,
    /// Isolated actuated (no plan in force).
    Actuated,
    /// Local time-of-day plan (centre lost).
    LocalSchedule,
    /// Manual hold of a stage.
    ManualHold,
    AllRed,
    FlashingYellow,
    /// Monitor trip: flashing until reset by a command.
    Fault,
}

/// `status` (retained; the last will says `online: false`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerStatus {
    pub version: u32,
    pub region: String,
    pub intersection: String,
    pub time_ms: i64,
    pub online: bool,
    pub mode: Mode,
    /// Plan in force, with the version it was deployed as (none in flash or all-red).
    pub plan_id: Option<String>,
    pub plan_version: Option<u64>,
    pub cycle_time_ms: Option<i64>,
    pub stage: Option<String>,
    /// Colour of every signal group, by group id.
    pub signal_groups: std::collections::BTreeMap<String, Colour>,
    /// Detectors currently marked failed.
    pub failed_detectors: Vec<String>,
    /// The active fault, when in `fault` mode.
    pub fault: Option<String>,
}

/// `events`: signal-group and detector changes, timestamped, for performance measures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    pub version: u32,
    pub region: String,
    pub intersection: String,
    pub seq: u64,
    pub events: Vec<Event>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub time_ms: i64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventKind {
    SignalGroup { group: String, colour: Colour },
    DetectorOn { detector: String },
    DetectorOff { detector: String },
    StageStart { stage: String },
    ModeChange { mode: Mode },
    PlanChange { plan_id: String, plan_version: u64 },
    Fault { reason: String },
}

/// `plan` (optimizer -> controller, retained, QoS 1, signed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanDeployment {
    pub version: u32,
    pub region: String,
    pub intersection: String,
    /// Monotonic per intersection: a controller refuses a version not above the one it runs.
    pub plan_version: u64,
    pub issued_at_ms: i64,
    /// The controller refuses the deployment after this time.
    pub expires_at_ms: i64,
    /// Wall-clock time (Unix ms) from which the plan may start; it starts at the next cycle
    /// boundary after it.
    pub not_before_ms: i64,
    pub plan: PlanSpec,
    /// How the cabinet runs the plan; absent: coordinated (see [`Operation`]). Absent is sent
    /// as absent, so the signed bytes of a deployment without it are what they were before
    /// the field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    /// Id of the centre key that signed it.
    pub key_id: String,
    /// Ed25519 signature over the message with `signature` empty, base64.
    pub signature: String,
}

impl PlanDeployment {
    /// How the plan runs: the operation it carries, coordinated when it carries none.
    pub fn operation(&self) -> Operation {
        self.operation.clone().unwrap_or_default()
    }
}

/// Least and greatest [`Operation::Actuated`] `max_green_factor`: a stage never runs shorter
/// than its planned green's maximum, nor more than three times it.
pub const MAX_GREEN_FACTOR_RANGE: std::ops::RangeInclusive<f64> = 1.0..=3.0;
/// Least and greatest [`Operation::Actuated`] `passage_s` (seconds).
pub const PASSAGE_S_RANGE: std::ops::RangeInclusive<f64> = 1.0..=10.0;

/// How a cabinet runs a centre plan.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Operation {
    /// Coordinated: the plan's cycle and offset (actuated within the coordination where the
    /// cabinet has detectors, status `coordinated` or `coordinated-actuated`).
    #[default]
    Coordinated,
    /// Isolated actuated (status `actuated`): the plan's stage sequence, each stage from its
    /// minimum up to its planned green times `max_green_factor`, ending when its detectors see
    /// no vehicle for `passage_s` (gap-out) or at its maximum; no cycle, no offset.
    Actuated {
        /// Within [`MAX_GREEN_FACTOR_RANGE`].
        max_green_factor: f64,
        /// Passage time (unit extension), seconds, within [`PASSAGE_S_RANGE`].
        passage_s: f64,
    },
}

impl Operation {
    /// `coordinated` or `actuated`, as on the wire.
    pub fn mode(&self) -> &'static str {
        match self {
            Operation::Coordinated => "coordinated",
            Operation::Actuated { .. } => "actuated",
        }
    }

    /// Every value outside its limits, each as `field: what` under `at` (for example
    /// `operation.max_green_factor: 5 is outside 1 to 3`).
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut p = Vec::new();
        if let Operation::Actuated {
            max_green_factor,
            passage_s,
        } = self
        {
            if !MAX_GREEN_FACTOR_RANGE.contains(max_green_factor) {
                p.push(format!(
                    "{at}.max_green_factor: {max_green_factor} is outside {} to {} (a stage's maximum green is its planned green times the factor)",
                    MAX_GREEN_FACTOR_RANGE.start(),
                    MAX_GREEN_FACTOR_RANGE.end()
                ));
            }
            if !PASSAGE_S_RANGE.contains(passage_s) {
                p.push(format!(
                    "{at}.passage_s: {passage_s} s is outside {} to {} s",
                    PASSAGE_S_RANGE.start(),
                    PASSAGE_S_RANGE.end()
                ));
            }
        }
        p
    }

    /// The actuated logic's parameters (`None`: coordinated). Assumes [`Operation::problems`]
    /// found none.
    pub fn actuated_params(&self) -> Option<crate::control::ActuatedParams> {
        match self {
            Operation::Coordinated => None,
            Operation::Actuated {
                max_green_factor,
                passage_s,
            } => {
                let d = crate::control::ActuatedParams::default();
                Some(crate::control::ActuatedParams {
                    passage: crate::Ms::from_secs_f64(*passage_s).unwrap_or(d.passage),
                    max_green: None,
                    max_green_factor: *max_green_factor,
                })
            }
        }
    }

    /// The operation that runs with these actuated parameters (`None`: coordinated).
    pub fn from_actuated(a: Option<&crate::control::ActuatedParams>) -> Self {
        match a {
            None => Operation::Coordinated,
            Some(a) => Operation::Actuated {
                max_green_factor: a.max_green_factor,
                passage_s: a.passage.as_secs_f64(),
            },
        }
    }
}

/// `plan/ack`: the controller's answer to a deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanAck {
    pub version: u32,
    pub region: String,
    pub intersection: String,
    pub plan_version: u64,
    pub time_ms: i64,
    pub accepted: bool,
    /// Why it was refused (every reason), empty when accepted.
    pub reasons: Vec<String>,
}

/// `command` (console -> controller, signed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    pub version: u32,
    pub region: String,
    pub intersection: String,
    /// Monotonic per issuer: replays are refused.
    pub seq: u64,
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
    /// Who asked for it (console user), for the audit log.
    pub operator: String,
    pub action: CommandAction,
    pub key_id: String,
    pub signature: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum CommandAction {
    /// Hold a stage (after its intergreens) until released.
    HoldStage {
        stage: String,
    },
    Release,
    FlashingYellow,
    AllRed,
    /// Clear a monitor fault (back through the start-up sequence).
    ResetFault,
    /// Go back to the previous plan.
    Rollback,
}
