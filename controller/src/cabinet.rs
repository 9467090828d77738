//! The cabinet's logic around the signal machine, still synchronous and clock-free: every call
//! takes `now` (model time, Unix milliseconds in the field). The async shell ([`crate::run`])
//! feeds it messages, detector states and ticks, and sends what it returns.
//!
//! - Plans from the centre are accepted only if signed by the centre's key, addressed to this
//!   intersection, newer than the plan running (no replay), not expired, and valid by the one
//!   validator. Any failure is a nack with every reason, and changes nothing.
//! - Commands likewise: signed, addressed, not expired, sequence above the last accepted.
//! - Every output change passes the independent [`Monitor`] before it is applied; a trip puts
//!   the machine in fault (flash, latched until a reset command) and is reported at once.
//! - Loss of the centre: the last good plan keeps running; after `backup_time` without a
//!   fresh signed message from the centre, the local time-of-day plans take over.
//! - Detectors are counted (rising edges), their occupancy integrated, and diagnosed (no
//!   activity, stuck on, chattering), and reported every interval. Their states and failures
//!   go to the machine every tick: plans run coordinated actuated, a failed detector's stage
//!   on recall; a centre plan whose deployment says `operation: actuated` runs isolated
//!   actuated with the deployment's maximum green factor and passage time; with no centre
//!   plan in force and `local_mode = "actuated"`, the local plan runs isolated actuated.

use std::collections::BTreeMap;
use std::path::PathBuf;

use intersections::control::ActuatedParams;
use intersections::diag::FieldPath;
use intersections::field::DetectorState as FieldDetector;
use intersections::machine::{Detectors, Manual, Output, SignalMachine};
use intersections::messages::{
    Command, CommandAction, ControllerStatus, DetectorCount, DetectorHealth, DetectorReport, Event,
    EventBatch, EventKind, Mode, Operation, PlanAck, PlanDeployment, WIRE_VERSION,
};
use intersections::model::{Intersection, Network};
use intersections::plan::{validate, Plan};
use intersections::signing::Verifier25519;
use intersections::{Colour, Ms};
use serde::{Deserialize, Serialize};

use crate::monitor::Monitor;

/// Tolerated clock difference between centre and cabinet for `issued_at`.
pub const CLOCK_SKEW: Ms = Ms(60_000);

/// Detector diagnostics (NTCIP 1202 style), in model time.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectorLimits {
    /// No actuation for this long: stuck off.
    pub no_activity: Ms,
    /// Occupied without a break for this long: stuck on.
    pub max_presence: Ms,
    /// More actuations than this in one minute: chattering.
    pub erratic_per_min: u32,
}

impl Default for DetectorLimits {
    fn default() -> Self {
        DetectorLimits {
            no_activity: Ms::from_s(30 * 60),
            max_presence: Ms::from_s(5 * 60),
            erratic_per_min: 70,
        }
    }
}

/// What the cabinet remembers across restarts (in `data_dir/state.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Persisted {
    /// The last plan accepted from the centre, and its version.
    pub plan: Option<PlanDeployment>,
    pub plan_version: u64,
    /// Highest command sequence accepted.
    pub command_seq: u64,
}

/// Messages the cabinet wants sent.
#[derive(Clone, Debug, PartialEq)]
pub enum Outgoing {
    Report(DetectorReport),
    Status(ControllerStatus),
    Events(EventBatch),
    Ack(PlanAck),
}

/// How the cabinet runs when no centre plan is in force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LocalMode {
    /// The local time-of-day plans, coordinated (actuated within each plan).
    #[default]
    Schedule,
    /// Isolated actuated: gap-out / max-out over the stage sequence of the scheduled local
    /// plan, its greens as maximums.
    Actuated,
}

#[derive(Clone, Debug, Default)]
struct DetectorState {
    occupied: bool,
    since: Ms,
    count: u32,
    /// Rising edges since power-up (the machine's gap logic).
    total_count: u64,
    last_off: Option<Ms>,
    occupied_ms: i64,
    last_on: Option<Ms>,
    minute_start: Ms,
    minute_count: u32,
    health: Option<DetectorHealth>,
}

/// Where the plan in force comes from.
#[derive(Clone, Debug, PartialEq)]
enum Source {
    Centre { version: u64 },
    Local { plan: String },
    None,
}

/// Settings of the cabinet logic (from `cabinet.toml`).
#[derive(Clone, Debug)]
pub struct Settings {
    pub region: String,
    pub intersection: String,
    pub report_interval: Option<Ms>,
    pub backup_time: Ms,
    pub utc_offset: Ms,
    pub detector_limits: DetectorLimits,
    /// Where [`Persisted`] is kept; `None` keeps it in memory only.
    pub state_file: Option<PathBuf>,
}

impl Settings {
    /// The cabinet logic's settings from `cabinet.toml`; `state_file` is where to persist the
    /// accepted plan and sequence numbers (`None`: in memory only).
    pub fn from_config(
        cfg: &crate::config::CabinetConfig,
        state_file: Option<PathBuf>,
    ) -> Settings {
        Settings {
            region: cfg.region.clone(),
            intersection: cfg.intersection.clone(),
            report_interval: cfg.report_interval_s.and_then(Ms::from_secs_f64),
            backup_time: Ms::from_secs_f64(cfg.backup_time_s).unwrap_or(Ms::from_s(300)),
            utc_offset: Ms::from_s(cfg.utc_offset_min as i64 * 60),
            detector_limits: DetectorLimits::default(),
            state_file,
        }
    }
}

/// What makes a new status worth sending: mode, plan, stage, fault.
type StatusKey = (Mode, Option<String>, Option<String>, Option<String>);

pub struct Cabinet {
    s: Settings,
    ix: Intersection,
    net: Network,
    machine: SignalMachine,
    monitor: Monitor,
    verifier: Verifier25519,
    persisted: Persisted,
    source: Source,
    last_centre: Ms,
    detectors: Vec<DetectorState>,
    last_tick: Ms,
    local_mode: LocalMode,
    /// Detector inputs for the machine, refreshed every tick.
    field_detectors: Vec<FieldDetector>,
    failed: Vec<bool>,
    interval_start: Ms,
    report_seq: u64,
    event_seq: u64,
    events: Vec<Event>,
    colours: Vec<Colour>,
    last_status: Option<StatusKey>,
    last_status_at: Ms,
    /// The most recent output of the machine.
    pub output: Output,
    /// Messages made while running as [`intersections::field::SignalLogic`].
    outbox: Vec<Outgoing>,
}

#[derive(Debug, thiserror::Error)]
pub enum CabinetError {
    #[error("intersection {0:?} is not in the network")]
    UnknownIntersection(String),
    #[error("intersection {0:?} has no signals")]
    NotSignalised(String),
}

/// Run the machine's plan isolated actuated with `a` (`None`: coordinated). The parameters
/// are set in full either way, so a centre plan's factor never outlives it into a local plan.
fn set_actuated(machine: &mut SignalMachine, a: Option<ActuatedParams>) {
    let p = a.clone().unwrap_or_default();
    machine.set_passage(p.passage);
    machine.set_max_green_factor(p.max_green_factor);
    machine.set_isolated(a.is_some());
}

fn time_of_day(now: Ms, utc_offset: Ms) -> Ms {
    (now + utc_offset).rem_euclid(Ms::from_s(86_400))
}

impl Cabinet {
    /// Power up at `now`: start-up flash, all-red, then the last good centre plan (if it is
    /// still valid) or the local time-of-day plan.
    pub fn new(
        s: Settings,
        net: Network,
        verifier: Verifier25519,
        persisted: Persisted,
        now: Ms,
    ) -> Result<Self, CabinetError> {
        let ixi = net
            .intersection(&s.intersection)
            .ok_or_else(|| CabinetError::UnknownIntersection(s.intersection.clone()))?;
        let ix = net.intersections[ixi.0].clone();
        if ix.plans.is_empty() {
            return Err(CabinetError::NotSignalised(s.intersection.clone()));
        }
        let mut source = Source::None;
        let mut plan = None;
        let mut operation = Operation::Coordinated;
        if let Some(dep) = &persisted.plan {
            if let (Ok(p), true) = (
                validate(&ix, &net.safety, &dep.plan, &FieldPath::root()),
                dep.operation().problems("operation").is_empty(),
            ) {
                source = Source::Centre {
                    version: dep.plan_version,
                };
                plan = Some(p);
                operation = dep.operation();
            }
        }
        if plan.is_none() {
            if let Some(p) = ix.scheduled_plan(time_of_day(now, s.utc_offset)) {
                source = Source::Local { plan: p.id.clone() };
                plan = Some(p.clone());
            }
        }
        let mut machine = SignalMachine::new(&ix, &net.safety, plan, now);
        if matches!(source, Source::Centre { .. }) {
            set_actuated(&mut machine, operation.actuated_params());
        }
        let output = machine.step(now);
        let monitor = Monitor::new(&ix, now);
        let detectors = vec![
            DetectorState {
                since: now,
                minute_start: now,
                ..Default::default()
            };
            ix.detectors.len()
        ];
        Ok(Cabinet {
            colours: output.colours.clone(),
            output,
            s,
            ix,
            net,
            machine,
            monitor,
            verifier,
            persisted,
            source,
            last_centre: now,
            field_detectors: vec![FieldDetector::default(); detectors.len()],
            failed: vec![false; detectors.len()],
            detectors,
            last_tick: now,
            local_mode: LocalMode::Schedule,
            interval_start: now,
            report_seq: 0,
            event_seq: 0,
            events: Vec::new(),
            last_status: None,
            last_status_at: now,
            outbox: Vec::new(),
        })
    }

    pub fn intersection(&self) -> &Intersection {
        &self.ix
    }

    /// How to run when no centre plan is in force (`cabinet.toml`'s `local_mode`).
    pub fn set_local_mode(&mut self, mode: LocalMode) {
        self.local_mode = mode;
        if matches!(self.source, Source::Local { .. }) {
            let a = self.local_actuated();
            set_actuated(&mut self.machine, a);
        }
    }

    /// Isolated actuation of a local plan: its greens as maximums, the default passage.
    fn local_actuated(&self) -> Option<ActuatedParams> {
        (self.local_mode == LocalMode::Actuated).then(ActuatedParams::default)
    }

    /// Put a plan in force from `source`: a centre plan runs as its deployment's `operation`
    /// says, a local plan isolated actuated when `local_mode` says so.
    fn put_in_force(&mut self, plan: Plan, source: Source, operation: &Operation) {
        let actuated = match source {
            Source::Centre { .. } => operation.actuated_params(),
            Source::Local { .. } => self.local_actuated(),
            Source::None => None,
        };
        self.source = source;
        self.machine.set_plan(plan);
        set_actuated(&mut self.machine, actuated);
    }

    /// Id of the plan in force (it may still wait for its cycle boundary).
    pub fn plan_id(&self) -> Option<&str> {
        self.machine.plan().map(|p| p.id.as_str())
    }

    pub fn persisted(&self) -> &Persisted {
        &self.persisted
    }

    /// Messages made while running as signal logic, since the last call.
    pub fn take_outbox(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.outbox)
    }

    /// The mode reported on the wire.
    pub fn mode(&self) -> Mode {
        match (self.output.mode, &self.source) {
            (Mode::Coordinated | Mode::CoordinatedActuated, Source::Local { .. }) => {
                Mode::LocalSchedule
            }
            (m, _) => m,
        }
    }

    fn save(&self) {
        if let Some(f) = &self.s.state_file {
            let tmp = f.with_extension("json.tmp");
            let ok = serde_json::to_vec_pretty(&self.persisted)
                .ok()
                .map(|b| std::fs::write(&tmp, b).and_then(|_| std::fs::rename(&tmp, f)));
            if !matches!(ok, Some(Ok(()))) {
                tracing::error!(file = %f.display(), "cannot save the cabinet state");
            }
        }
    }

    fn ack(&self, now: Ms, version: u64, reasons: Vec<String>) -> PlanAck {
        PlanAck {
            version: WIRE_VERSION,
            region: self.s.region.clone(),
            intersection: self.s.intersection.clone(),
            plan_version: version,
            time_ms: now.0,
            accepted: reasons.is_empty(),
            reasons,
        }
    }

    /// A payload on the `plan` topic. Returns the ack to publish (accepted or not), or `None`
    /// for a re-delivery of the plan already running.
    pub fn on_plan(&mut self, now: Ms, payload: &[u8]) -> Option<PlanAck> {
        if payload.is_empty() {
            return None; // the centre cleared its retained plan; a rollback command follows
        }
        let dep: PlanDeployment = match serde_json::from_slice(payload) {
            Ok(d) => d,
            Err(e) => {
                return Some(self.ack(
                    now,
                    0,
                    vec![format!("plan: not a valid plan deployment: {e}")],
                ))
            }
        };
        let v = dep.plan_version;
        if self.persisted.plan.as_ref().is_some_and(|p| p == &dep) {
            return None; // retained copy of what runs
        }
        let mut reasons = Vec::new();
        if dep.version != WIRE_VERSION {
            reasons.push(format!(
                "version: {} is not supported (this cabinet speaks {WIRE_VERSION})",
                dep.version
            ));
        }
        if dep.region != self.s.region || dep.intersection != self.s.intersection {
            reasons.push(format!(
                "intersection: addressed to {}/{}, this is {}/{}",
                dep.region, dep.intersection, self.s.region, self.s.intersection
            ));
        }
        if let Err(e) = self.verifier.verify(&dep) {
            reasons.push(format!("signature: {e}"));
        }
        if v <= self.persisted.plan_version {
            reasons.push(format!(
                "plan_version: {v} is not newer than {} (stale or replayed)",
                self.persisted.plan_version
            ));
        }
        if now.0 > dep.expires_at_ms {
            reasons.push(format!(
                "expires_at_ms: expired {} ago",
                now - Ms(dep.expires_at_ms)
            ));
        }
        if Ms(dep.issued_at_ms) > now + CLOCK_SKEW {
            reasons.push("issued_at_ms: issued in the future (clock error or forgery)".to_string());
        }
        reasons.extend(dep.operation().problems("operation"));
        let checked = match validate(
            &self.ix,
            &self.net.safety,
            &dep.plan,
            &FieldPath::root().key("plan"),
        ) {
            Ok(p) => Some(p),
            Err(ps) => {
                reasons.extend(ps.into_iter().map(|p| format!("unsafe plan: {p}")));
                None
            }
        };
        if !reasons.is_empty() {
            tracing::warn!(plan_version = v, reasons = ?reasons, "plan rejected");
            self.push_event(
                now,
                EventKind::Fault {
                    reason: format!("plan {v} rejected: {}", reasons.join("; ")),
                },
            );
            return Some(self.ack(now, v, reasons));
        }
        let plan = checked.expect("checked above");
        let operation = dep.operation();
        tracing::info!(plan_version = v, plan = %plan.id, mode = operation.mode(), "plan accepted; starts at the next cycle boundary");
        self.last_centre = self.last_centre.max(Ms(dep.issued_at_ms)).max(now);
        self.put_in_force(plan.clone(), Source::Centre { version: v }, &operation);
        self.persisted.plan_version = v;
        self.persisted.plan = Some(dep);
        self.save();
        self.push_event(
            now,
            EventKind::PlanChange {
                plan_id: plan.id.clone(),
                plan_version: v,
            },
        );
        Some(self.ack(now, v, Vec::new()))
    }

    /// A payload on the `command` topic.
    pub fn on_command(&mut self, now: Ms, payload: &[u8]) -> Result<(), String> {
        let cmd: Command = serde_json::from_slice(payload)
            .map_err(|e| format!("command: not a valid command: {e}"))?;
        let mut reasons = Vec::new();
        if cmd.version != WIRE_VERSION {
            reasons.push(format!("version {} not supported", cmd.version));
        }
        if cmd.region != self.s.region || cmd.intersection != self.s.intersection {
            reasons.push(format!("addressed to {}/{}", cmd.region, cmd.intersection));
        }
        if let Err(e) = self.verifier.verify(&cmd) {
            reasons.push(format!("signature: {e}"));
        }
        if cmd.seq <= self.persisted.command_seq {
            reasons.push(format!(
                "seq {} is not above {} (replayed)",
                cmd.seq, self.persisted.command_seq
            ));
        }
        if now.0 > cmd.expires_at_ms {
            reasons.push("expired".into());
        }
        if !reasons.is_empty() {
            let r = reasons.join("; ");
            tracing::warn!(seq = cmd.seq, reasons = %r, "command rejected");
            return Err(r);
        }
        self.persisted.command_seq = cmd.seq;
        self.save();
        self.last_centre = now;
        let manual = match &cmd.action {
            CommandAction::HoldStage { stage } => Manual::HoldStage(
                self.ix
                    .stage(stage)
                    .ok_or_else(|| format!("unknown stage {stage:?}"))?,
            ),
            CommandAction::Release => Manual::Release,
            CommandAction::FlashingYellow => Manual::Flash,
            CommandAction::AllRed => Manual::AllRed,
            CommandAction::ResetFault => {
                self.monitor.reset();
                Manual::ResetFault
            }
            CommandAction::Rollback => return self.rollback(now),
        };
        tracing::info!(operator = %cmd.operator, action = ?cmd.action, "command accepted");
        self.machine.command(now, manual)
    }

    /// Back to the local time-of-day plan (the console's rollback of a centre plan).
    fn rollback(&mut self, now: Ms) -> Result<(), String> {
        let p = self
            .ix
            .scheduled_plan(time_of_day(now, self.s.utc_offset))
            .cloned()
            .ok_or("no local plan")?;
        self.put_in_force(
            p.clone(),
            Source::Local { plan: p.id },
            &Operation::Coordinated,
        );
        Ok(())
    }

    fn push_event(&mut self, now: Ms, kind: EventKind) {
        self.events.push(Event {
            time_ms: now.0,
            kind,
        });
    }

    fn local_plan(&self, now: Ms) -> Option<Plan> {
        self.ix
            .scheduled_plan(time_of_day(now, self.s.utc_offset))
            .cloned()
    }

    /// Run the cabinet at `now` with the detectors' states (occupied or not, indexed like the
    /// intersection's detectors). Returns the colours to drive and what to send.
    ///
    /// A field that samples coarsely (the simulator's step) may call later than the cabinet
    /// asked; the cabinet then first runs at each wake-up it missed, so its machine and monitor
    /// see every change at its scheduled time and no interval is cut by the sampling.
    pub fn tick(&mut self, now: Ms, occupied: &[bool]) -> (Vec<Colour>, Vec<Outgoing>) {
        let mut out = Vec::new();
        for _ in 0..100_000 {
            let due = self.output.next_wake;
            if due >= now || due <= self.last_tick {
                break;
            }
            out.extend(self.tick_once(due, occupied).1);
        }
        let (colours, more) = self.tick_once(now, occupied);
        out.extend(more);
        (colours, out)
    }

    fn tick_once(&mut self, now: Ms, occupied: &[bool]) -> (Vec<Colour>, Vec<Outgoing>) {
        let mut out = Vec::new();
        let dt = (now - self.last_tick).max(Ms::ZERO);
        self.last_tick = now;
        self.sample_detectors(now, dt, occupied);

        // Loss of the centre: after the backup time, the local schedule.
        let centre_quiet = now - self.last_centre > self.s.backup_time;
        match &self.source {
            Source::Centre { version } if centre_quiet => {
                tracing::warn!(
                    version,
                    "no word from the centre for the backup time: local time-of-day plans"
                );
                if let Some(p) = self.local_plan(now) {
                    let id = p.id.clone();
                    self.put_in_force(p, Source::Local { plan: id }, &Operation::Coordinated);
                }
            }
            Source::Local { plan } => {
                if let Some(p) = self.local_plan(now) {
                    if &p.id != plan {
                        let id = p.id.clone();
                        self.put_in_force(p, Source::Local { plan: id }, &Operation::Coordinated);
                    }
                }
            }
            Source::None => {
                if let Some(p) = self.local_plan(now) {
                    let id = p.id.clone();
                    self.put_in_force(p, Source::Local { plan: id }, &Operation::Coordinated);
                }
            }
            _ => {}
        }

        let o = self.machine.step_with(
            now,
            &Detectors {
                states: &self.field_detectors,
                failed: &self.failed,
            },
        );
        match self.monitor.check(now, &o.colours) {
            Ok(()) => self.output = o,
            Err(fault) => {
                let reason = format!("monitor: {fault}");
                tracing::error!(%reason, "safety monitor tripped: flashing until reset");
                self.machine.fault(now, reason.clone());
                self.push_event(now, EventKind::Fault { reason });
                self.output = self.machine.step(now);
                // The monitor put the heads in flash; the machine now agrees.
            }
        }
        let colours = self.monitor.output();
        for (g, (&old, &new)) in self.colours.iter().zip(&colours).enumerate() {
            if old != new {
                self.events.push(Event {
                    time_ms: now.0,
                    kind: EventKind::SignalGroup {
                        group: self.ix.groups[g].id.clone(),
                        colour: new,
                    },
                });
            }
        }
        self.colours = colours.clone();

        // Report every interval (default one cycle of the plan in force).
        let interval = self
            .s
            .report_interval
            .unwrap_or_else(|| self.machine.plan().map_or(Ms::from_s(90), |p| p.cycle));
        if now - self.interval_start >= interval {
            out.push(Outgoing::Report(self.report(now)));
        }
        if !self.events.is_empty() {
            self.event_seq += 1;
            out.push(Outgoing::Events(EventBatch {
                version: WIRE_VERSION,
                region: self.s.region.clone(),
                intersection: self.s.intersection.clone(),
                seq: self.event_seq,
                events: std::mem::take(&mut self.events),
            }));
        }
        let key = (
            self.mode(),
            self.output.plan.clone(),
            self.output.stage.clone(),
            self.machine.fault_reason().map(String::from),
        );
        if self.last_status.as_ref() != Some(&key) || now - self.last_status_at >= Ms::from_s(60) {
            self.last_status = Some(key);
            self.last_status_at = now;
            out.push(Outgoing::Status(self.status(now, true)));
        }
        (colours, out)
    }

    /// When the cabinet next needs to run (detectors are sampled at least every 100 ms).
    pub fn next_wake(&self, now: Ms) -> Ms {
        self.output.next_wake.min(now + Ms(100)).max(now + Ms(1))
    }

    fn sample_detectors(&mut self, now: Ms, dt: Ms, occupied: &[bool]) {
        let limits = self.s.detector_limits.clone();
        for (i, d) in self.detectors.iter_mut().enumerate() {
            let occ = occupied.get(i).copied().unwrap_or(false);
            if d.occupied {
                d.occupied_ms += dt.0;
            }
            if occ != d.occupied {
                d.occupied = occ;
                d.since = now;
                let id = self.ix.detectors[i].id.clone();
                if occ {
                    d.count += 1;
                    d.total_count += 1;
                    d.minute_count += 1;
                    d.last_on = Some(now);
                    self.events.push(Event {
                        time_ms: now.0,
                        kind: EventKind::DetectorOn { detector: id },
                    });
                } else {
                    d.last_off = Some(now);
                    self.events.push(Event {
                        time_ms: now.0,
                        kind: EventKind::DetectorOff { detector: id },
                    });
                }
            }
            if now - d.minute_start >= Ms::from_s(60) {
                if d.minute_count > limits.erratic_per_min {
                    d.health = Some(DetectorHealth::Erratic);
                }
                d.minute_start = now;
                d.minute_count = 0;
            }
            let quiet_since = d.last_on.unwrap_or(Ms(i64::MIN / 2)).max(d.since);
            if d.occupied && now - d.since > limits.max_presence {
                d.health = Some(DetectorHealth::MaxPresence);
            } else if !d.occupied && now - quiet_since > limits.no_activity {
                d.health = Some(DetectorHealth::NoActivity);
            } else if d.health != Some(DetectorHealth::Erratic) {
                d.health = None;
            }
            if let (Some(f), Some(failed)) =
                (self.field_detectors.get_mut(i), self.failed.get_mut(i))
            {
                *f = FieldDetector {
                    occupied: d.occupied,
                    count: d.total_count,
                    occupied_time: Ms::ZERO,
                    last_on: d.last_on,
                    last_off: d.last_off,
                };
                *failed = d.health.is_some();
            }
        }
    }

    fn report(&mut self, now: Ms) -> DetectorReport {
        let span = (now - self.interval_start).0.max(1) as f64;
        let detectors = self
            .detectors
            .iter_mut()
            .zip(&self.ix.detectors)
            .map(|(d, spec)| {
                let c = DetectorCount {
                    detector: spec.id.clone(),
                    count: d.count,
                    occupancy: (d.occupied_ms as f64 / span).clamp(0.0, 1.0),
                    health: d.health.unwrap_or(DetectorHealth::Ok),
                };
                d.count = 0;
                d.occupied_ms = 0;
                c
            })
            .collect();
        self.report_seq += 1;
        let r = DetectorReport {
            version: WIRE_VERSION,
            region: self.s.region.clone(),
            intersection: self.s.intersection.clone(),
            seq: self.report_seq,
            interval_start_ms: self.interval_start.0,
            interval_end_ms: now.0,
            detectors,
        };
        self.interval_start = now;
        r
    }

    /// The status message (`online: false` is the last will).
    pub fn status(&self, now: Ms, online: bool) -> ControllerStatus {
        let plan_version = match &self.source {
            Source::Centre { version } => Some(*version),
            _ => None,
        };
        ControllerStatus {
            version: WIRE_VERSION,
            region: self.s.region.clone(),
            intersection: self.s.intersection.clone(),
            time_ms: now.0,
            online,
            mode: self.mode(),
            plan_id: self.output.plan.clone(),
            plan_version,
            cycle_time_ms: self.output.cycle_time.map(|c| c.0),
            stage: self.output.stage.clone(),
            signal_groups: self
                .ix
                .groups
                .iter()
                .zip(&self.colours)
                .map(|(g, c)| (g.id.clone(), *c))
                .collect::<BTreeMap<_, _>>(),
            failed_detectors: self
                .detectors
                .iter()
                .zip(&self.ix.detectors)
                .filter(|(d, _)| d.health.is_some())
                .map(|(_, s)| s.id.clone())
                .collect(),
            fault: self.machine.fault_reason().map(String::from),
        }
    }

    /// Test hook: put a plan in force without any check, as a corrupted plan that slipped past
    /// validation would be. The monitor is what stands between it and the street.
    pub fn install_unchecked_plan(&mut self, plan: Plan) {
        self.machine.set_plan(plan);
    }

    /// Test hook: simulate a bug in the deciding logic by forcing an output through the
    /// monitor, as a corrupted state or a bad plan that slipped past validation would.
    pub fn inject_output(
        &mut self,
        now: Ms,
        colours: &[Colour],
    ) -> Result<(), crate::monitor::Fault> {
        let r = self.monitor.check(now, colours);
        if let Err(f) = &r {
            self.machine.fault(now, format!("monitor: {f}"));
            self.push_event(
                now,
                EventKind::Fault {
                    reason: format!("monitor: {f}"),
                },
            );
            self.output = self.machine.step(now);
        }
        self.colours = self.monitor.output();
        r
    }
}

/// The cabinet as signal logic for a [`intersections::field::Field`]: the simulator can run the
/// real controller (machine, monitor, fallback) in a closed loop. Messages it would send are
/// kept in [`Cabinet::take_outbox`].
impl intersections::field::SignalLogic for Cabinet {
    fn step(&mut self, now: Ms, m: &intersections::field::Measurements<'_>) -> Ms {
        let occupied: Vec<bool> = m.detectors.iter().map(|d| d.occupied).collect();
        let (_, out) = self.tick(now, &occupied);
        self.outbox.extend(out);
        self.next_wake(now)
    }
    fn colours(&self) -> &[Colour] {
        &self.colours
    }
}
