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
    /// Increases by one per report; lets the receiver drop duplicates and spot gaps.
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
    /// Id of the centre key that signed it.
    pub key_id: String,
    /// Ed25519 signature over the message with `signature` empty, base64.
    pub signature: String,
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
