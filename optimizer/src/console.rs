//! The engineer console: what the centre knows and did, served over HTTP (JSON API and a web
//! page, [`http`]), and the engineers' actions on it, each written to a durable audit log
//! before it is carried out.
//!
//! This module is the console's state and logic, synchronous and clock-free like the rest of
//! the centre: every call takes `now`. [`Centre`] holds the region deployers (shared with the
//! service loop), the live state of every intersection as last heard, every decision of the
//! planner with its before/after figures and what became of it, every deployment outcome and
//! every command. The service loop feeds it MQTT messages and planning rounds; the HTTP layer
//! reads it and calls its actions.
//!
//! "Never lies": every value carries when it was measured (the controller's `time_ms`, a
//! report's interval) and when the centre received it, and the state of an intersection is
//! `online` only while its last status is fresh; an intersection whose last will said
//! offline is `offline`, one not heard from for `stale_after_s` is `stale`, one never heard
//! from `unknown`. A command is `sent` until the controller's status shows its effect
//! (`confirmed`); the wire has no command acknowledgement, so one whose effect does not show
//! within [`CONFIRM_WITHIN`] is marked `unconfirmed`, never assumed done.
//!
//! Glossary:
//! - **decision**: one planner answer for a coordination group (or `*`, the whole region),
//!   deployed or not, with the figures behind it;
//! - **approval mode**: per region, `auto` deploys a candidate that passed the simulation
//!   check at once, `manual` holds it `pending` until an operator approves or rejects it;
//! - **operator**: a console user, known by the bearer token the operators file gives them.

pub mod http;
pub mod journal;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use intersections::messages::{CommandAction, ControllerStatus, DetectorReport, Mode, Operation};
use intersections::model::Network;
use intersections::spec::PlanSpec;
use intersections::Ms;
use serde::{Deserialize, Serialize};

use crate::deploy::{Deployer, Outcome, Publish};
use crate::ingest::Alarm;
use crate::serve::GroupDecision;
use journal::Journal;

/// How long the console waits for a controller's status to show a command's effect.
pub const CONFIRM_WITHIN: Ms = Ms(240_000);
/// Decisions, deployments and commands kept in memory (the journal keeps every decision).
pub const KEEP: usize = 2_000;

/// The `[console]` table of the service's configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Address and port of the HTTP server, e.g. `127.0.0.1:8080` (port 0: any free port).
    pub listen: String,
    /// File of operators, one `name token` per line (`#` starts a comment). Tokens are at least
    /// 16 characters; keep the file readable by the service only.
    pub operators_file: PathBuf,
    /// Seconds after which a status or report is shown stale (controllers send their status
    /// at least every 60 s).
    #[serde(default = "default_stale")]
    pub stale_after_s: f64,
    /// Seconds an operator's command stays valid: a controller that gets it later (it was
    /// away) refuses it rather than carry it out late (default 60).
    #[serde(default = "default_command_validity")]
    pub command_validity_s: f64,
}

fn default_stale() -> f64 {
    90.0
}

fn default_command_validity() -> f64 {
    60.0
}

/// Whether a region's candidates are deployed at once or wait for an operator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Approval {
    #[default]
    Auto,
    Manual,
}

/// A console user.
#[derive(Clone, Debug)]
pub struct Operator {
    pub name: String,
    token: String,
}

/// Read the operators file: one `name token` per line; errors say `file:line: what`.
pub fn load_operators(path: &Path) -> Result<Vec<Operator>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut ops: Vec<Operator> = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = format!("{}:{}", path.display(), n + 1);
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [name, token] = parts[..] else {
            problems.push(format!("{at}: expected `name token`"));
            continue;
        };
        if token.len() < 16 {
            problems.push(format!(
                "{at}: the token of {name} is shorter than 16 characters"
            ));
        } else if ops.iter().any(|o| o.name == name) {
            problems.push(format!("{at}: operator {name} is listed twice"));
        } else if ops.iter().any(|o| o.token == token) {
            problems.push(format!("{at}: the token of {name} is another operator's"));
        } else {
            ops.push(Operator {
                name: name.into(),
                token: token.into(),
            });
        }
    }
    if ops.is_empty() && problems.is_empty() {
        problems.push(format!("{}: no operators", path.display()));
    }
    if problems.is_empty() {
        Ok(ops)
    } else {
        Err(problems.join("\n"))
    }
}

/// The operator a bearer token belongs to. Every token is compared in full, whatever
/// matches, so the time taken says nothing about how close a guess was.
pub fn operator_for<'a>(ops: &'a [Operator], token: &str) -> Option<&'a Operator> {
    let mut found = None;
    for o in ops {
        let (a, b) = (o.token.as_bytes(), token.as_bytes());
        let mut diff = (a.len() != b.len()) as u8;
        for i in 0..a.len() {
            diff |= a[i] ^ b.get(i).copied().unwrap_or(0);
        }
        if diff == 0 {
            found = Some(o);
        }
    }
    found
}

/// A value with when the centre received it.
#[derive(Clone, Debug, Serialize)]
pub struct Heard<T> {
    pub received_ms: i64,
    #[serde(flatten)]
    pub value: T,
}

/// What a decision came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionState {
    /// No plans: what runs stays (the reason is in the record).
    Kept,
    /// Manual approval: waiting for an operator.
    Pending,
    /// An operator rejected it: what runs stays.
    Rejected,
    /// A newer decision for the same group came before anyone approved it.
    Superseded,
    /// Sent, waiting for every member's ack.
    Deploying,
    /// Every member acknowledged.
    Deployed,
    /// A member refused or stayed silent, or an operator rolled the group back.
    RolledBack,
    /// Could not be sent (a deployment of the group still under way).
    NotSent,
    /// Pending or deploying when the service stopped; its outcome is unknown.
    Interrupted,
}

/// One planner decision and what became of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DecisionEntry {
    pub id: u64,
    pub region: String,
    pub group: String,
    /// When the planner decided (centre clock).
    pub time_ms: i64,
    pub state: DecisionState,
    /// The candidate's plans per member intersection (empty: keep what runs).
    pub plans: Vec<MemberPlan>,
    /// How the members are to run them (journals from before the field: coordinated).
    #[serde(default)]
    pub operation: Operation,
    /// The planner's record: the figures behind the decision.
    pub record: serde_json::Value,
    /// Before/after figures and reason, taken from the record where the planner gave them.
    pub summary: Option<Summary>,
    /// The operator who approved or rejected it, and when.
    pub by: Option<String>,
    pub by_ms: Option<i64>,
    /// The deployment's outcome (acked, rolled back and why), and when.
    pub outcome: Option<serde_json::Value>,
    pub outcome_ms: Option<i64>,
    /// Why it was not sent.
    pub note: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberPlan {
    pub intersection: String,
    pub plan: PlanSpec,
}

/// The figures of a simulation check ([`crate::decide::Decision`]), as the console shows them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub accepted: Option<bool>,
    pub improvement: Option<f64>,
    pub threshold: Option<f64>,
    pub before: Option<Figures>,
    pub after: Option<Figures>,
    pub reason: Option<String>,
    pub what: Option<String>,
    /// How the candidate checked runs: `coordinated` or `actuated`.
    pub mode: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Figures {
    pub mean_delay_s: Option<f64>,
    pub mean_stops: Option<f64>,
    pub travel_time_index: Option<f64>,
    pub mean_speed_mps: Option<f64>,
}

impl Summary {
    /// From a record of `optimizer_planner` (`{what, detail: Decision}`) or a bare decision.
    pub fn of(record: &serde_json::Value) -> Option<Summary> {
        let d = if record.get("detail").is_some_and(|d| d.is_object()) {
            &record["detail"]
        } else {
            record
        };
        let f = |v: &serde_json::Value| {
            v.is_object().then(|| Figures {
                mean_delay_s: v["mean_delay_s"].as_f64(),
                mean_stops: v["mean_stops"].as_f64(),
                travel_time_index: v["travel_time_index"].as_f64(),
                mean_speed_mps: v["mean_speed_mps"].as_f64(),
            })
        };
        let s = Summary {
            accepted: d["accepted"].as_bool(),
            improvement: d["improvement"].as_f64(),
            threshold: d["threshold"].as_f64(),
            before: f(&d["before"]),
            after: f(&d["after"]),
            reason: d["reason"]
                .as_str()
                .map(String::from)
                .or_else(|| record["detail"].as_str().map(String::from)),
            what: record["what"].as_str().map(String::from),
            mode: d["mode"].as_str().map(String::from),
        };
        (s.before.is_some() || s.reason.is_some() || s.what.is_some()).then_some(s)
    }
}

/// A finished group deployment.
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentEntry {
    pub region: String,
    pub group: String,
    pub time_ms: i64,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// What the console knows of a command it sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandState {
    /// Published; the controller's status does not show its effect yet.
    Sent,
    /// A status received after it shows its effect.
    Confirmed,
    /// No status showed its effect within [`CONFIRM_WITHIN`]: refused, lost, or not reached.
    Unconfirmed,
}

#[derive(Clone, Debug, Serialize)]
pub struct CommandEntry {
    pub region: String,
    pub intersection: String,
    pub seq: u64,
    pub operator: String,
    pub action: CommandAction,
    pub sent_ms: i64,
    pub state: CommandState,
    /// When the status that confirmed it was received.
    pub confirmed_ms: Option<i64>,
}

impl CommandEntry {
    /// Whether a status shows the command's effect.
    fn shown_by(&self, s: &ControllerStatus) -> bool {
        if !s.online {
            return false;
        }
        match &self.action {
            CommandAction::HoldStage { stage } => {
                s.mode == Mode::ManualHold && s.stage.as_deref() == Some(stage)
            }
            CommandAction::AllRed => s.mode == Mode::AllRed,
            CommandAction::FlashingYellow => s.mode == Mode::FlashingYellow,
            CommandAction::Release => !matches!(
                s.mode,
                Mode::ManualHold | Mode::AllRed | Mode::FlashingYellow
            ),
            CommandAction::ResetFault => s.mode != Mode::Fault,
            CommandAction::Rollback => {
                matches!(s.mode, Mode::LocalSchedule | Mode::Actuated) || s.plan_version.is_none()
            }
        }
    }
}

/// The last detector report of an intersection.
#[derive(Clone, Debug, Serialize)]
pub struct ReportSeen {
    pub seq: u64,
    pub interval_start_ms: i64,
    pub interval_end_ms: i64,
    pub detectors: Vec<intersections::messages::DetectorCount>,
}

#[derive(Clone, Debug, Default)]
struct IxLive {
    status: Option<Heard<ControllerStatus>>,
    report: Option<Heard<ReportSeen>>,
}

struct RegionState {
    approve: Approval,
    network: Network,
    live: BTreeMap<String, IxLive>,
    alarms: Vec<Alarm>,
    /// How many of the deployer's finished deployments were taken in.
    finished_seen: usize,
}

/// Why an action could not be done; the HTTP layer maps it to a status code.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ActionError {
    #[error("{what} not found")]
    NotFound { field: String, what: String },
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
}

/// The centre's state as the console sees it, and the actions on it.
pub struct Centre {
    pub deployers: BTreeMap<String, Deployer>,
    regions: BTreeMap<String, RegionState>,
    decisions: Vec<DecisionEntry>,
    next_decision: u64,
    deployments: Vec<DeploymentEntry>,
    commands: Vec<CommandEntry>,
    journal: Option<Journal>,
    stale_after: Ms,
    command_validity: Ms,
    /// Group deployments sent.
    pub sent: u64,
    /// Where each region's plans in force and deployment history are kept
    /// (`data_dir/plans/{region}.json`), and what was written last.
    plans_dir: Option<PathBuf>,
    saved: BTreeMap<String, Vec<u8>>,
}

impl Centre {
    /// `regions`: id, network, approval mode and deployer of each region owned. With a data
    /// directory, the decisions history is kept in `decisions.jsonl` there, and each region's
    /// plans in force and deployment history in `plans/{region}.json`; both are read back.
    pub fn new(
        regions: Vec<(String, Network, Approval, Deployer)>,
        data_dir: Option<&Path>,
        stale_after: Ms,
        command_validity: Ms,
    ) -> std::io::Result<Centre> {
        let mut deployers = BTreeMap::new();
        let mut states = BTreeMap::new();
        let plans_dir = data_dir.map(|d| d.join("plans"));
        let mut saved = BTreeMap::new();
        for (id, network, approve, mut dep) in regions {
            if let Some(dir) = &plans_dir {
                let file = dir.join(format!("{id}.json"));
                match std::fs::read(&file) {
                    Ok(bytes) => {
                        let durable = serde_json::from_slice(&bytes).map_err(|e| {
                            std::io::Error::other(format!("{}: {e}", file.display()))
                        })?;
                        dep.resume(durable);
                        saved.insert(id.clone(), bytes);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(std::io::Error::other(format!("{}: {e}", file.display())))
                    }
                }
            }
            deployers.insert(id.clone(), dep);
            let live = network
                .intersections
                .iter()
                .map(|ix| (ix.id.clone(), IxLive::default()))
                .collect();
            states.insert(
                id,
                RegionState {
                    approve,
                    network,
                    live,
                    alarms: Vec::new(),
                    finished_seen: 0,
                },
            );
        }
        let (journal, mut decisions) = match data_dir {
            Some(d) => {
                let (j, lines) = Journal::open::<DecisionEntry>(&d.join("decisions.jsonl"))?;
                // The last line of each decision is its latest state.
                let mut by_id: BTreeMap<u64, DecisionEntry> = BTreeMap::new();
                for e in lines {
                    by_id.insert(e.id, e);
                }
                (Some(j), by_id.into_values().collect::<Vec<_>>())
            }
            None => (None, Vec::new()),
        };
        let next_decision = decisions.last().map_or(1, |d| d.id + 1);
        let mut centre = Centre {
            deployers,
            regions: states,
            decisions: Vec::new(),
            next_decision,
            deployments: Vec::new(),
            commands: Vec::new(),
            journal,
            stale_after,
            command_validity,
            sent: 0,
            plans_dir,
            saved,
        };
        if decisions.len() > KEEP {
            decisions.drain(..decisions.len() - KEEP);
        }
        for mut d in decisions {
            if matches!(d.state, DecisionState::Pending | DecisionState::Deploying) {
                d.state = DecisionState::Interrupted;
                d.note = Some("the service stopped before its outcome was known".into());
                centre.record(&d);
            }
            centre.decisions.push(d);
        }
        Ok(centre)
    }

    /// Write each region's plans in force and deployment history if they changed (to a new
    /// file, flushed, then renamed over the old one: a crash leaves the old or the new).
    fn save_plans(&mut self) {
        let Some(dir) = &self.plans_dir else {
            return;
        };
        for (region, dep) in &self.deployers {
            let Ok(bytes) = serde_json::to_vec_pretty(&dep.durable()) else {
                continue;
            };
            if self.saved.get(region) == Some(&bytes) {
                continue;
            }
            let file = dir.join(format!("{region}.json"));
            let tmp = dir.join(format!("{region}.json.new"));
            let written = std::fs::create_dir_all(dir)
                .and_then(|_| {
                    use std::io::Write;
                    let mut f = std::fs::File::create(&tmp)?;
                    f.write_all(&bytes)?;
                    f.sync_all()
                })
                .and_then(|_| std::fs::rename(&tmp, &file));
            match written {
                Ok(()) => {
                    self.saved.insert(region.clone(), bytes);
                }
                Err(e) => {
                    tracing::error!(file = %file.display(), error = %e, "plans in force not written")
                }
            }
        }
    }

    fn record(&mut self, d: &DecisionEntry) {
        if let Some(j) = self.journal.as_mut() {
            if let Err(e) = j.append(d) {
                tracing::error!(file = %j.path().display(), error = %e, "decision history not written");
            }
        }
    }

    fn push_decision(&mut self, d: DecisionEntry) {
        self.record(&d);
        self.decisions.push(d);
        if self.decisions.len() > KEEP {
            self.decisions.remove(0);
        }
    }

    /// A retained `status` payload.
    pub fn on_status(&mut self, now: Ms, region: &str, payload: &[u8]) {
        let Ok(s) = serde_json::from_slice::<ControllerStatus>(payload) else {
            if !payload.is_empty() {
                tracing::warn!(region, "status: not a controller status; ignored");
            }
            return;
        };
        let Some(r) = self.regions.get_mut(region) else {
            return;
        };
        let Some(live) = r.live.get_mut(&s.intersection) else {
            return; // not an intersection of this region's network
        };
        for c in self.commands.iter_mut().filter(|c| {
            c.region == region
                && c.intersection == s.intersection
                && c.state != CommandState::Confirmed
        }) {
            if now.0 >= c.sent_ms && c.shown_by(&s) {
                c.state = CommandState::Confirmed;
                c.confirmed_ms = Some(now.0);
            }
        }
        live.status = Some(Heard {
            received_ms: now.0,
            value: s,
        });
    }

    /// A detector report the store accepted, and the store's alarms after it.
    pub fn on_report(&mut self, now: Ms, report: &DetectorReport, alarms: Vec<Alarm>) {
        let Some(r) = self.regions.get_mut(&report.region) else {
            return;
        };
        r.alarms = alarms
            .into_iter()
            .filter(|a| a.region == report.region)
            .collect();
        let Some(live) = r.live.get_mut(&report.intersection) else {
            return;
        };
        if live
            .report
            .as_ref()
            .is_some_and(|h| h.value.interval_end_ms > report.interval_end_ms)
        {
            return; // a late report: the newer one stays the last
        }
        live.report = Some(Heard {
            received_ms: now.0,
            value: ReportSeen {
                seq: report.seq,
                interval_start_ms: report.interval_start_ms,
                interval_end_ms: report.interval_end_ms,
                detectors: report.detectors.clone(),
            },
        });
    }

    /// A planning round's decisions for a region: recorded; in `auto` mode a candidate is
    /// deployed at once, in `manual` mode it waits. Returns what to publish.
    pub fn on_decisions(
        &mut self,
        now: Ms,
        region: &str,
        decisions: Vec<GroupDecision>,
    ) -> Vec<Publish> {
        let Some(approve) = self.regions.get(region).map(|r| r.approve) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for gd in decisions {
            // A newer decision for a group supersedes one still waiting.
            let stale: Vec<usize> = (0..self.decisions.len())
                .filter(|&i| {
                    let d = &self.decisions[i];
                    d.region == region
                        && d.state == DecisionState::Pending
                        && (d.group == gd.group || d.group == "*" || gd.group == "*")
                })
                .collect();
            for i in stale {
                self.decisions[i].state = DecisionState::Superseded;
                self.decisions[i].note = Some(format!("superseded at {}", now.0));
                let d = self.decisions[i].clone();
                self.record(&d);
            }
            let mut d = DecisionEntry {
                id: self.next_decision,
                region: region.into(),
                group: gd.group.clone(),
                time_ms: now.0,
                state: DecisionState::Kept,
                plans: gd
                    .plans
                    .iter()
                    .map(|(ix, p)| MemberPlan {
                        intersection: ix.clone(),
                        plan: p.clone(),
                    })
                    .collect(),
                operation: gd.operation,
                summary: Summary::of(&gd.record),
                record: gd.record,
                by: None,
                by_ms: None,
                outcome: None,
                outcome_ms: None,
                note: None,
            };
            self.next_decision += 1;
            if !gd.plans.is_empty() {
                match approve {
                    Approval::Manual => d.state = DecisionState::Pending,
                    Approval::Auto => out.extend(self.send(now, &mut d)),
                }
            }
            self.push_decision(d);
        }
        out
    }

    fn send(&mut self, now: Ms, d: &mut DecisionEntry) -> Vec<Publish> {
        let Some(dep) = self.deployers.get_mut(&d.region) else {
            return Vec::new();
        };
        let plans = d
            .plans
            .iter()
            .map(|m| (m.intersection.clone(), m.plan.clone()))
            .collect();
        match dep.deploy_operation(now, &d.group, plans, &d.operation) {
            Ok(out) => {
                d.state = DecisionState::Deploying;
                self.sent += 1;
                out
            }
            Err(e) => {
                tracing::info!(group = %d.group, reason = %e, "not deployed");
                d.state = DecisionState::NotSent;
                d.note = Some(e);
                Vec::new()
            }
        }
    }

    /// A `plan/ack` payload.
    pub fn on_ack(&mut self, now: Ms, region: &str, payload: &[u8]) -> Vec<Publish> {
        let out = match self.deployers.get_mut(region) {
            Some(d) => d.on_ack(now, payload),
            None => return Vec::new(),
        };
        self.take_finished(region);
        out
    }

    /// Resend, time out, and mark commands whose effect never showed.
    pub fn tick(&mut self, now: Ms) -> Vec<Publish> {
        let mut out = Vec::new();
        let regions: Vec<String> = self.deployers.keys().cloned().collect();
        for r in regions {
            if let Some(d) = self.deployers.get_mut(&r) {
                out.extend(d.tick(now));
            }
            self.take_finished(&r);
        }
        for c in self
            .commands
            .iter_mut()
            .filter(|c| c.state == CommandState::Sent && now.0 - c.sent_ms > CONFIRM_WITHIN.0)
        {
            c.state = CommandState::Unconfirmed;
        }
        out
    }

    /// Take in the deployer's finished deployments: the outcome goes to the deployments list
    /// and to the decision that started it.
    fn take_finished(&mut self, region: &str) {
        let (Some(dep), Some(r)) = (self.deployers.get(region), self.regions.get_mut(region))
        else {
            return;
        };
        let new: Vec<(String, Ms, Outcome)> = dep.finished[r.finished_seen..].to_vec();
        r.finished_seen = dep.finished.len();
        for (group, at, outcome) in new {
            tracing::info!(region, group = %group, ?outcome, "deployment finished");
            let states: &[DecisionState] = match outcome {
                Outcome::Reverted { .. } => &[DecisionState::Deploying, DecisionState::Deployed],
                _ => &[DecisionState::Deploying],
            };
            if let Some(i) = self
                .decisions
                .iter()
                .rposition(|d| d.region == region && d.group == group && states.contains(&d.state))
            {
                let d = &mut self.decisions[i];
                d.state = match outcome {
                    Outcome::Deployed => DecisionState::Deployed,
                    _ => DecisionState::RolledBack,
                };
                d.outcome = serde_json::to_value(&outcome).ok();
                d.outcome_ms = Some(at.0);
                let d = d.clone();
                self.record(&d);
            }
            self.deployments.push(DeploymentEntry {
                region: region.into(),
                group,
                time_ms: at.0,
                outcome,
            });
            if self.deployments.len() > KEEP {
                self.deployments.remove(0);
            }
        }
        self.save_plans();
    }

    fn pending(&mut self, id: u64) -> Result<usize, ActionError> {
        let i = self
            .decisions
            .iter()
            .position(|d| d.id == id)
            .ok_or_else(|| ActionError::NotFound {
                field: "id".into(),
                what: format!("decision {id}"),
            })?;
        let d = &self.decisions[i];
        if d.state != DecisionState::Pending {
            return Err(ActionError::Conflict(format!(
                "decision {id} is {}, not pending",
                serde_json::to_value(d.state)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            )));
        }
        Ok(i)
    }

    /// Approve a pending decision: its plans are deployed now.
    pub fn approve(
        &mut self,
        now: Ms,
        id: u64,
        operator: &str,
    ) -> Result<Vec<Publish>, ActionError> {
        let i = self.pending(id)?;
        let mut d = self.decisions[i].clone();
        if self
            .deployers
            .get(&d.region)
            .is_some_and(|dep| dep.busy(&d.group))
        {
            return Err(ActionError::Conflict(format!(
                "group {} of {} is still deploying; approve again when it is done",
                d.group, d.region
            )));
        }
        d.by = Some(operator.into());
        d.by_ms = Some(now.0);
        let out = self.send(now, &mut d);
        let state = d.state;
        let note = d.note.clone();
        self.decisions[i] = d.clone();
        self.record(&d);
        if state == DecisionState::NotSent {
            return Err(ActionError::Conflict(note.unwrap_or_default()));
        }
        Ok(out)
    }

    /// Reject a pending decision: nothing is sent, what runs stays.
    pub fn reject(&mut self, now: Ms, id: u64, operator: &str) -> Result<(), ActionError> {
        let i = self.pending(id)?;
        let d = &mut self.decisions[i];
        d.state = DecisionState::Rejected;
        d.by = Some(operator.into());
        d.by_ms = Some(now.0);
        let d = d.clone();
        self.record(&d);
        Ok(())
    }

    /// Roll a coordination group back to what it ran before its last deployment.
    pub fn roll_back(
        &mut self,
        now: Ms,
        region: &str,
        group: &str,
        operator: &str,
    ) -> Result<Vec<Publish>, ActionError> {
        let r = self.region(region)?;
        let known = group_members(&r.network).iter().any(|(g, _)| g == group);
        if !known {
            return Err(ActionError::NotFound {
                field: "group".into(),
                what: format!("coordination group {group:?} in region {region:?}"),
            });
        }
        let dep = self
            .deployers
            .get_mut(region)
            .ok_or_else(|| ActionError::NotFound {
                field: "region".into(),
                what: format!("region {region:?}"),
            })?;
        let out = dep
            .roll_back_group(now, group, operator)
            .map_err(ActionError::Conflict)?;
        self.take_finished(region);
        Ok(out)
    }

    /// Sign and record a command for an intersection; the stage of a hold must exist there.
    pub fn command(
        &mut self,
        now: Ms,
        region: &str,
        intersection: &str,
        operator: &str,
        action: CommandAction,
    ) -> Result<(CommandEntry, Publish), ActionError> {
        let r = self.region(region)?;
        let ix = r
            .network
            .intersection(intersection)
            .map(|i| &r.network.intersections[i.0])
            .ok_or_else(|| ActionError::NotFound {
                field: "intersection".into(),
                what: format!("intersection {intersection:?} in region {region:?}"),
            })?;
        if let CommandAction::HoldStage { stage } = &action {
            if ix.stage(stage).is_none() {
                return Err(ActionError::Invalid {
                    field: "stage".into(),
                    message: format!(
                        "stage: {stage:?} is not a stage of {intersection} (its stages: {})",
                        ix.stages
                            .iter()
                            .map(|s| s.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
        let dep = self
            .deployers
            .get_mut(region)
            .ok_or_else(|| ActionError::NotFound {
                field: "region".into(),
                what: format!("region {region:?}"),
            })?;
        let (cmd, publish) =
            dep.command(now, intersection, operator, action, self.command_validity);
        let entry = CommandEntry {
            region: region.into(),
            intersection: intersection.into(),
            seq: cmd.seq,
            operator: operator.into(),
            action: cmd.action,
            sent_ms: now.0,
            state: CommandState::Sent,
            confirmed_ms: None,
        };
        self.commands.push(entry.clone());
        if self.commands.len() > KEEP {
            self.commands.remove(0);
        }
        Ok((entry, publish))
    }

    fn region(&self, region: &str) -> Result<&RegionState, ActionError> {
        self.regions
            .get(region)
            .ok_or_else(|| ActionError::NotFound {
                field: "region".into(),
                what: format!("region {region:?}"),
            })
    }

    /// Decisions, newest first, optionally of one region.
    pub fn decisions(&self, region: Option<&str>, limit: usize) -> Vec<DecisionEntry> {
        self.decisions
            .iter()
            .rev()
            .filter(|d| region.iter().all(|r| d.region == *r))
            .take(limit)
            .cloned()
            .collect()
    }

    pub fn decision(&self, id: u64) -> Option<&DecisionEntry> {
        self.decisions.iter().find(|d| d.id == id)
    }

    /// Finished deployments, newest first.
    pub fn deployments(&self, limit: usize) -> Vec<DeploymentEntry> {
        self.deployments.iter().rev().take(limit).cloned().collect()
    }

    /// Commands sent, newest first.
    pub fn commands(&self, limit: usize) -> Vec<CommandEntry> {
        self.commands.iter().rev().take(limit).cloned().collect()
    }

    /// The regions and their networks, enough to draw a schematic map.
    pub fn regions(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.regions
                .iter()
                .map(|(id, r)| region_view(id, r))
                .collect(),
        )
    }

    /// The live state of a region's intersections at `now`.
    pub fn live(&self, now: Ms, region: &str) -> Result<serde_json::Value, ActionError> {
        let r = self.region(region)?;
        let dep = self.deployers.get(region);
        let in_force = dep.map(|d| d.in_force()).unwrap_or_default();
        let deploying: Vec<&str> = dep.map(|d| d.deploying().collect()).unwrap_or_default();
        let groups = group_members(&r.network);
        let stale = self.stale_after.0;
        let ixs: Vec<serde_json::Value> = r
            .network
            .intersections
            .iter()
            .map(|ix| {
                let live = r.live.get(&ix.id).cloned().unwrap_or_default();
                // Age since the status was taken: the controller's time, unless it arrived
                // earlier than that says (a clock ahead). A retained status delivered now but
                // taken long ago is old, not fresh.
                let status_age = live
                    .status
                    .as_ref()
                    .map(|h| now.0 - h.received_ms.min(h.value.time_ms));
                let state = match (&live.status, status_age) {
                    (None, _) => "unknown",
                    (Some(h), _) if !h.value.online => "offline",
                    (Some(_), Some(a)) if a > stale => "stale",
                    _ => "online",
                };
                // Age of the counts since their interval ended (controller clock), and since
                // they arrived (centre clock): a buffered report arrives late but old.
                let report_age = live
                    .report
                    .as_ref()
                    .map(|h| now.0 - h.value.interval_end_ms);
                let report_received_age = live.report.as_ref().map(|h| now.0 - h.received_ms);
                let report_len = live
                    .report
                    .as_ref()
                    .map_or(0, |h| h.value.interval_end_ms - h.value.interval_start_ms);
                let group = groups
                    .iter()
                    .find(|(_, m)| m.contains(&ix.id))
                    .map(|(g, _)| g.clone());
                serde_json::json!({
                    "id": ix.id,
                    "state": state,
                    "status": live.status,
                    "status_age_ms": status_age,
                    "report": live.report,
                    "report_age_ms": report_age,
                    "report_received_age_ms": report_received_age,
                    "report_stale": report_age
                        .zip(report_received_age)
                        .map(|(a, r)| a.max(r) > stale.max(3 * report_len)),
                    "alarms": r.alarms.iter().filter(|a| a.intersection == ix.id).collect::<Vec<_>>(),
                    "centre_plan": in_force.get(&ix.id).map(|p| &p.id),
                    "group": group,
                    "deploying": group.as_deref().is_some_and(|g| deploying.contains(&g)),
                })
            })
            .collect();
        Ok(serde_json::json!({
            "region": region,
            "now_ms": now.0,
            "stale_after_ms": stale,
            "approve": r.approve,
            "intersections": ixs,
            "alarms": r.alarms,
            "can_roll_back": groups
                .iter()
                .filter(|(g, _)| dep.is_some_and(|d| d.can_roll_back(g)))
                .map(|(g, _)| g.clone())
                .collect::<Vec<_>>(),
        }))
    }
}

/// The deployment groups of a network: its coordination groups, and each intersection in none
/// as a group of its own (named after it), as the planner deploys them.
pub fn group_members(net: &Network) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = net
        .coordination_groups
        .iter()
        .map(|g| {
            (
                g.id.clone(),
                g.intersections
                    .iter()
                    .map(|i| net.intersections[i.0].id.clone())
                    .collect(),
            )
        })
        .collect();
    for ix in &net.intersections {
        if !out.iter().any(|(_, m)| m.contains(&ix.id)) {
            out.push((ix.id.clone(), vec![ix.id.clone()]));
        }
    }
    out
}

fn region_view(id: &str, r: &RegionState) -> serde_json::Value {
    use intersections::model::Endpoint;
    let net = &r.network;
    let end = |e: Endpoint| match e {
        Endpoint::Intersection(i) => Some(net.intersections[i.0].id.clone()),
        Endpoint::Boundary(_) => None,
    };
    serde_json::json!({
        "id": id,
        "network": net.name,
        "description": net.description,
        "approve": r.approve,
        "intersections": net.intersections.iter().map(|ix| serde_json::json!({
            "id": ix.id,
            "name": ix.name,
            "x_m": ix.x_m,
            "y_m": ix.y_m,
            "lat": ix.lat,
            "lon": ix.lon,
            "control": ix.control,
            "signal_groups": ix.groups.iter().map(|g| serde_json::json!({"id": g.id, "kind": g.kind})).collect::<Vec<_>>(),
            "stages": ix.stages.iter().map(|s| serde_json::json!({
                "id": s.id,
                "signal_groups": s.groups.iter().map(|g| &ix.groups[g.0].id).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "detectors": ix.detectors.iter().map(|d| serde_json::json!({"id": d.id, "kind": d.kind, "link": net.links[d.link.0].id, "lane": d.lane})).collect::<Vec<_>>(),
            "plans": ix.plans.iter().map(|p| &p.id).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "links": net.links.iter().map(|l| {
            let (fx, fy) = net.position(l.from);
            let (tx, ty) = net.position(l.to);
            serde_json::json!({
                "id": l.id,
                "from": [fx, fy],
                "to": [tx, ty],
                "from_intersection": end(l.from),
                "to_intersection": end(l.to),
                "lanes": l.lanes,
                "length_m": l.length_m,
                "speed_mps": l.speed_mps,
            })
        }).collect::<Vec<_>>(),
        "coordination_groups": net.coordination_groups.iter().map(|g| serde_json::json!({
            "id": g.id,
            "intersections": g.intersections.iter().map(|i| &net.intersections[i.0].id).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "deployment_groups": group_members(net).into_iter().map(|(g, m)| serde_json::json!({"id": g, "intersections": m})).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use intersections::messages::{PlanAck, PlanDeployment, WIRE_VERSION};
    use intersections::signing::Signer25519;

    const T0: Ms = Ms(1_790_000_000_000);

    fn net() -> Network {
        intersections::load::load_network(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks/single.toml"),
        )
        .unwrap()
    }

    fn centre(approve: Approval, dir: Option<&Path>) -> Centre {
        let dep = Deployer::new("r", Signer25519::from_seed("k", [3; 32]), 1000);
        Centre::new(
            vec![("r".into(), net(), approve, dep)],
            dir,
            Ms::from_s(90),
            Ms::from_s(60),
        )
        .unwrap()
    }

    fn candidate(name: &str) -> GroupDecision {
        let n = net();
        let ix = &n.intersections[0];
        let mut p = ix.plan("peak").unwrap().to_spec(ix);
        p.id = name.into();
        GroupDecision {
            group: "C".into(),
            plans: vec![("C".into(), p)],
            operation: Operation::Coordinated,
            record: serde_json::json!({"what": "deploy", "detail": {"reason": name}}),
            flows: Vec::new(),
        }
    }

    fn ack(p: &Publish, accepted: bool) -> Vec<u8> {
        let d: PlanDeployment = serde_json::from_slice(&p.payload).unwrap();
        serde_json::to_vec(&PlanAck {
            version: WIRE_VERSION,
            region: "r".into(),
            intersection: d.intersection,
            plan_version: d.plan_version,
            time_ms: T0.0,
            accepted,
            reasons: if accepted { vec![] } else { vec!["no".into()] },
        })
        .unwrap()
    }

    fn status(mode: Mode, stage: Option<&str>, online: bool) -> Vec<u8> {
        serde_json::to_vec(&ControllerStatus {
            version: WIRE_VERSION,
            region: "r".into(),
            intersection: "C".into(),
            time_ms: T0.0,
            online,
            mode,
            plan_id: None,
            plan_version: None,
            cycle_time_ms: None,
            stage: stage.map(String::from),
            signal_groups: Default::default(),
            failed_detectors: vec![],
            fault: None,
        })
        .unwrap()
    }

    #[test]
    fn manual_approval_waits_supersedes_deploys_and_rolls_back() {
        let mut c = centre(Approval::Manual, None);
        assert!(c.on_decisions(T0, "r", vec![candidate("a")]).is_empty());
        assert!(c.on_decisions(T0, "r", vec![candidate("b")]).is_empty());
        let states: Vec<_> = c.decisions(None, 10).iter().map(|d| d.state).collect();
        assert_eq!(states, [DecisionState::Pending, DecisionState::Superseded]);
        assert!(matches!(
            c.approve(T0, 1, "li"),
            Err(ActionError::Conflict(_))
        ));
        assert!(matches!(
            c.approve(T0, 9, "li"),
            Err(ActionError::NotFound { .. })
        ));
        let out = c.approve(T0, 2, "li").unwrap();
        assert_eq!(out.len(), 1);
        assert!(out[0].retain && out[0].topic.ends_with("/C/plan"));
        assert_eq!(c.decision(2).unwrap().state, DecisionState::Deploying);
        assert!(c.on_ack(T0, "r", &ack(&out[0], true)).is_empty());
        let d = c.decision(2).unwrap();
        assert_eq!(
            (d.state, d.by.as_deref()),
            (DecisionState::Deployed, Some("li"))
        );
        assert_eq!(d.summary.as_ref().unwrap().reason.as_deref(), Some("b"));
        // Rolled back to local plans (there was no centre plan before).
        let back = c.roll_back(T0, "r", "C", "zhang").unwrap();
        assert!(back.iter().any(|p| p.topic.ends_with("/C/command")));
        assert_eq!(c.decision(2).unwrap().state, DecisionState::RolledBack);
        assert_eq!(
            c.deployments(1)[0].outcome,
            Outcome::Reverted {
                operator: "zhang".into()
            }
        );
        assert!(matches!(
            c.roll_back(T0, "r", "C", "zhang"),
            Err(ActionError::Conflict(_))
        ));
        assert!(matches!(
            c.roll_back(T0, "r", "X", "zhang"),
            Err(ActionError::NotFound { .. })
        ));
        // A rejected candidate sends nothing.
        c.on_decisions(T0, "r", vec![candidate("c")]);
        c.reject(T0, 3, "li").unwrap();
        assert_eq!(c.decision(3).unwrap().state, DecisionState::Rejected);
        assert!(c.deployers["r"].in_force().is_empty());
    }

    #[test]
    fn auto_deploys_at_once_and_a_refusal_is_recorded() {
        let mut c = centre(Approval::Auto, None);
        let out = c.on_decisions(T0, "r", vec![candidate("a")]);
        assert_eq!(out.len(), 1);
        // A second candidate while the first still waits for acks is not sent.
        assert!(c.on_decisions(T0, "r", vec![candidate("b")]).is_empty());
        assert_eq!(c.decision(2).unwrap().state, DecisionState::NotSent);
        c.on_ack(T0, "r", &ack(&out[0], false));
        let d = c.decision(1).unwrap();
        assert_eq!(d.state, DecisionState::RolledBack);
        assert_eq!(d.outcome.as_ref().unwrap()["reasons"][0], "no");
    }

    #[test]
    fn decisions_come_back_after_a_restart_and_open_ones_as_interrupted() {
        let dir = std::env::temp_dir().join(format!("gw-console-centre-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut c = centre(Approval::Manual, Some(&dir));
        c.on_decisions(T0, "r", vec![candidate("a")]);
        c.on_decisions(
            T0,
            "r",
            vec![GroupDecision {
                plans: vec![],
                ..candidate("keep")
            }],
        );
        drop(c);
        let mut c = centre(Approval::Manual, Some(&dir));
        let states: Vec<_> = c.decisions(None, 10).iter().map(|d| d.state).collect();
        assert_eq!(states, [DecisionState::Kept, DecisionState::Superseded]);
        c.on_decisions(T0, "r", vec![candidate("b")]);
        drop(c);
        let mut c = centre(Approval::Manual, Some(&dir));
        let d = c.decision(3).unwrap();
        assert_eq!(d.state, DecisionState::Interrupted);
        // The plans in force and the group's history survive a restart: a rollback still knows
        // what ran before.
        c.on_decisions(T0, "r", vec![candidate("d")]);
        let out = c.approve(T0, 4, "li").unwrap();
        c.on_ack(T0, "r", &ack(&out[0], true));
        drop(c);
        let mut c = centre(Approval::Manual, Some(&dir));
        assert_eq!(c.deployers["r"].in_force()["C"].id, "d");
        assert!(c.roll_back(T0, "r", "C", "li").is_ok());
        drop(c);
        let c = centre(Approval::Manual, Some(&dir));
        assert!(c.deployers["r"].in_force().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn live_state_and_commands_are_only_what_the_status_shows() {
        let mut c = centre(Approval::Auto, None);
        let state =
            |c: &Centre, now: Ms| c.live(now, "r").unwrap()["intersections"][0]["state"].clone();
        assert_eq!(state(&c, T0), "unknown");
        // A status from before the command does not confirm it.
        c.on_status(T0, "r", &status(Mode::ManualHold, Some("collector"), true));
        let (e, p) = c
            .command(
                T0 + Ms(1),
                "r",
                "C",
                "li",
                CommandAction::HoldStage {
                    stage: "collector".into(),
                },
            )
            .unwrap();
        assert!(p.topic.ends_with("/C/command") && !p.retain);
        assert_eq!(e.state, CommandState::Sent);
        assert_eq!(state(&c, T0 + Ms(1)), "online");
        // A hold of another stage is not this one.
        c.on_status(
            T0 + Ms(2),
            "r",
            &status(Mode::ManualHold, Some("arterial"), true),
        );
        assert_eq!(c.commands(1)[0].state, CommandState::Sent);
        c.on_status(
            T0 + Ms(3),
            "r",
            &status(Mode::ManualHold, Some("collector"), true),
        );
        assert_eq!(c.commands(1)[0].state, CommandState::Confirmed);
        // A release that never shows is unconfirmed after the wait.
        c.command(T0 + Ms(4), "r", "C", "li", CommandAction::Release)
            .unwrap();
        c.tick(T0 + Ms(4) + CONFIRM_WITHIN + Ms(1));
        assert_eq!(c.commands(1)[0].state, CommandState::Unconfirmed);
        assert!(matches!(
            c.command(
                T0,
                "r",
                "C",
                "li",
                CommandAction::HoldStage {
                    stage: "nope".into()
                }
            ),
            Err(ActionError::Invalid { .. })
        ));
        // A status taken long before it arrived (a retained one) is stale at once.
        let mut c2 = centre(Approval::Auto, None);
        c2.on_status(
            T0 + Ms::from_s(600),
            "r",
            &status(Mode::Coordinated, None, true),
        );
        assert_eq!(state(&c2, T0 + Ms::from_s(600)), "stale");
        // Stale after 90 s without a status; offline when the last will says so.
        assert_eq!(state(&c, T0 + Ms::from_s(120)), "stale");
        c.on_status(
            T0 + Ms::from_s(120),
            "r",
            &status(Mode::Coordinated, None, false),
        );
        assert_eq!(state(&c, T0 + Ms::from_s(121)), "offline");
    }

    #[test]
    fn operators_file_errors_are_located_and_tokens_compared_in_full() {
        let dir = std::env::temp_dir().join(format!("gw-console-ops-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("operators");
        std::fs::write(
            &p,
            "# ops\nli 0123456789abcdef\nzh 0123456789abcdeX extra\nwu short\n",
        )
        .unwrap();
        let e = load_operators(&p).unwrap_err();
        assert!(e.contains("operators:3: expected `name token`"), "{e}");
        assert!(e.contains("operators:4: the token of wu is shorter"), "{e}");
        std::fs::write(&p, "li 0123456789abcdef\nzh fedcba9876543210\n").unwrap();
        let ops = load_operators(&p).unwrap();
        assert_eq!(operator_for(&ops, "fedcba9876543210").unwrap().name, "zh");
        assert!(operator_for(&ops, "fedcba987654321").is_none());
        assert!(operator_for(&ops, "fedcba98765432100").is_none());
        assert!(operator_for(&ops, "").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
