//! The signal state machine a cabinet runs (and the simulator, when it plays a cabinet):
//! modes, plan changes with bounded transitions, manual commands, start-up and fault flash.
//! Pure and synchronous: every call takes `now`; [`SignalMachine::step`] returns the colours
//! and when it next needs to run.
//!
//! Modes (see `messages::Mode`): start-up (flashing yellow, then all-red, then the first
//! stage), coordinated fixed time (the [`FixedTimeRunner`] of the plan in force; cycle timer =
//! (reference time - offset) mod cycle, so controllers with synchronised clocks form green
//! waves), coordinated actuated (the same plan with gap-outs and force-offs, by
//! [`CoordinatedActuated`]), isolated actuated (gap-out / max-out over the plan's stage
//! sequence, by [`Actuated`], when [`SignalMachine::set_isolated`] asks for it), manual hold
//! of a stage, all-red, flashing yellow, and fault (flash, latched until a reset command). A
//! new plan starts at a cycle boundary of the one running, through the transition cycles of
//! [`crate::transition`], which run in fixed time.
//!
//! Actuation needs detectors: [`SignalMachine::step_with`] passes their states and which are
//! failed. A machine stepped with [`SignalMachine::step`] alone runs its plans in fixed time.
//! Fixed time hands over to actuation at a cycle boundary, when the coordinated (first) stage
//! starts, and only if the colours agree; the actuated logic takes the machine's history of
//! greens (the [`StageEngine`] keeps every intergreen from it). Coordinated actuation hands a
//! new plan over at a boundary where its coordinated stage started on time, as fixed time
//! does; isolated actuation is left by clearing to all red.
//!
//! Wherever the machine leaves a plan's timeline (all-red, a hold of a stage the plan does not
//! run, start-up) it clears the intersection itself: greens run their minimum, then yellow
//! (walks their clearance) for the full clearance, then red, and nothing starts again until
//! every intergreen from the last green has passed.

use std::collections::VecDeque;

use crate::control::{Actuated, ActuatedParams, CoordinatedActuated, StageEngine};
use crate::field::{DetectorState, Measurements, SignalLogic};
use crate::messages::Mode;
use crate::model::{Intersection, Safety};
use crate::plan::Plan;
use crate::runner::{Colour, FixedTimeRunner};
use crate::spec::GroupKind;
use crate::time::Ms;
use crate::transition::{plan_transition, rotate};

/// Flashing yellow at start-up, before the all-red.
pub const STARTUP_FLASH: Ms = Ms(5_000);

/// Detector inputs of one step, indexed like [`Intersection::detectors`].
#[derive(Clone, Copy, Debug)]
pub struct Detectors<'a> {
    pub states: &'a [DetectorState],
    /// Detectors diagnosed as failed: their stages are on recall (fixed green).
    pub failed: &'a [bool],
}

/// What the machine shows and when it wants to run again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub colours: Vec<Colour>,
    pub mode: Mode,
    /// Id of the stage that is green, if one is.
    pub stage: Option<String>,
    /// Id of the plan in force (the target of a running transition).
    pub plan: Option<String>,
    /// Cycle time of the plan segment running.
    pub cycle_time: Option<Ms>,
    pub next_wake: Ms,
}

/// Manual commands (the signed `command` topic maps onto these).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Manual {
    HoldStage(usize),
    Release,
    AllRed,
    Flash,
    ResetFault,
}

#[derive(Clone, Debug)]
struct Segment {
    from: Ms,
    plan: Plan,
    runner: FixedTimeRunner,
    /// Last segment: runs until replaced.
    open_ended: bool,
}

/// What to do once the intersection is all red.
#[derive(Clone, Debug, PartialEq)]
enum Then {
    StartPlan,
    Hold(usize),
    Stay,
}

#[derive(Clone, Debug)]
enum State {
    StartUpFlash {
        until: Ms,
    },
    Clearing {
        then: Then,
    },
    /// A plan in fixed time (and its transition cycles).
    Running {
        segments: VecDeque<Segment>,
    },
    /// The plan in force, coordinated actuated; `runner` gives its cycle timer.
    Actuated {
        runner: FixedTimeRunner,
        logic: Box<CoordinatedActuated>,
    },
    /// Isolated actuated over the stage sequence of `plan`.
    Isolated {
        plan: Plan,
        logic: Box<Actuated>,
    },
    Hold {
        stage: usize,
    },
    AllRed,
    Flash,
    Fault {
        reason: String,
    },
}

/// The state machine of one intersection.
#[derive(Clone, Debug)]
pub struct SignalMachine {
    ix: Intersection,
    safety: Safety,
    state: State,
    /// The plan in force (centre or local), started at the next boundary when it changes.
    plan: Option<Plan>,
    pending: Option<Plan>,
    hold_request: Option<usize>,
    colours: Vec<Colour>,
    since: Vec<Ms>,
    last_green_end: Vec<Option<Ms>>,
    max_intergreen: Ms,
    /// Time of the previous step, to notice a cycle boundary passed between two steps.
    last_step: Option<Ms>,
    /// Run the plan in force as isolated actuated.
    isolated: bool,
    actuated: ActuatedParams,
    /// Detector inputs of the running step (`None`: no detectors, fixed time).
    detectors: Option<(Vec<DetectorState>, Vec<bool>)>,
}

fn open_or_flash(c: Colour) -> bool {
    c.is_green() || matches!(c, Colour::FlashingYellow | Colour::Dark)
}

impl SignalMachine {
    /// A machine that powers up at `now`: flashing yellow, then all-red, then `plan` (if any).
    pub fn new(ix: &Intersection, safety: &Safety, plan: Option<Plan>, now: Ms) -> Self {
        let n = ix.groups.len();
        let max_intergreen = ix
            .intergreen
            .iter()
            .flatten()
            .copied()
            .max()
            .unwrap_or(Ms::ZERO)
            .max(Ms::from_s(3));
        let mut m = SignalMachine {
            ix: ix.clone(),
            safety: safety.clone(),
            state: State::StartUpFlash {
                until: now + STARTUP_FLASH,
            },
            plan,
            pending: None,
            hold_request: None,
            colours: Vec::new(),
            since: vec![now; n],
            last_green_end: vec![None; n],
            max_intergreen,
            last_step: None,
            isolated: false,
            actuated: ActuatedParams::default(),
            detectors: None,
        };
        m.colours = m.flash_colours();
        m
    }

    pub fn intersection(&self) -> &Intersection {
        &self.ix
    }

    fn flash_colours(&self) -> Vec<Colour> {
        self.ix
            .groups
            .iter()
            .map(|g| match g.kind {
                GroupKind::Vehicle => Colour::FlashingYellow,
                GroupKind::Pedestrian => Colour::Dark,
            })
            .collect()
    }

    /// The plan in force, if any.
    pub fn plan(&self) -> Option<&Plan> {
        self.plan.as_ref()
    }

    /// Put a (checked) plan in force. It starts at the next cycle boundary of the plan running,
    /// through transition cycles; outside a plan, it starts when the machine next starts one.
    pub fn set_plan(&mut self, plan: Plan) {
        if matches!(
            self.state,
            State::Running { .. } | State::Actuated { .. } | State::Isolated { .. }
        ) {
            self.pending = Some(plan.clone());
        }
        self.plan = Some(plan);
    }

    /// Run the plan in force as isolated actuated (`true`: gap-out / max-out over its stage
    /// sequence, its greens as maximums, no cycle or offset) or coordinated (`false`, the
    /// default). Coordinated fixed time becomes isolated at its next cycle boundary,
    /// coordinated actuated at once (the same stage engine goes on); isolated actuated
    /// becomes coordinated by clearing to all red and starting the plan.
    pub fn set_isolated(&mut self, on: bool) {
        self.isolated = on;
    }

    pub fn isolated(&self) -> bool {
        self.isolated
    }

    /// Isolated actuation runs each stage up to its planned green times `factor` (default 1).
    pub fn set_max_green_factor(&mut self, factor: f64) {
        self.actuated.max_green_factor = factor;
    }

    /// The passage time (unit extension) of actuated operation (default 3 s).
    pub fn set_passage(&mut self, passage: Ms) {
        self.actuated.passage = passage;
    }

    /// Stop running any plan: clear to all red and stay there (no plan in force).
    pub fn clear_plan(&mut self) {
        self.plan = None;
        self.pending = None;
    }

    /// The monitor tripped or the logic found an invariant broken: flash until reset.
    pub fn fault(&mut self, now: Ms, reason: impl Into<String>) {
        self.state = State::Fault {
            reason: reason.into(),
        };
        let flash = self.flash_colours();
        self.apply(now, flash);
    }

    /// A manual command. Returns an error (and changes nothing) when it does not apply.
    pub fn command(&mut self, now: Ms, cmd: Manual) -> Result<(), String> {
        match (&self.state, cmd) {
            (State::Fault { .. }, Manual::ResetFault) => {
                self.state = State::StartUpFlash {
                    until: now + STARTUP_FLASH,
                };
                Ok(())
            }
            (State::Fault { reason }, _) => {
                Err(format!("in fault ({reason}): only a reset is accepted"))
            }
            (_, Manual::ResetFault) => Err("there is no fault to reset".into()),
            (_, Manual::Flash) => {
                self.state = State::Flash;
                let flash = self.flash_colours();
                self.apply(now, flash);
                Ok(())
            }
            (State::Flash, Manual::Release) => {
                self.state = State::StartUpFlash { until: now };
                Ok(())
            }
            (_, Manual::AllRed) => {
                self.state = State::Clearing { then: Then::Stay };
                Ok(())
            }
            (_, Manual::HoldStage(s)) if s >= self.ix.stages.len() => Err(format!("no stage {s}")),
            (State::Isolated { logic, .. }, Manual::HoldStage(s)) => {
                if logic.engine().green_stage() == Some(s) {
                    self.hold_request = Some(s);
                } else {
                    self.state = State::Clearing {
                        then: Then::Hold(s),
                    };
                }
                Ok(())
            }
            (State::Running { .. } | State::Actuated { .. }, Manual::HoldStage(s)) => {
                let in_plan = match &self.state {
                    State::Running { segments } => segments
                        .front()
                        .is_some_and(|seg| seg.plan.stages.iter().any(|st| st.stage == s)),
                    State::Actuated { logic, .. } => {
                        logic.plan().stages.iter().any(|st| st.stage == s)
                    }
                    _ => false,
                };
                if in_plan {
                    self.hold_request = Some(s);
                } else {
                    self.state = State::Clearing {
                        then: Then::Hold(s),
                    };
                }
                Ok(())
            }
            (_, Manual::HoldStage(s)) => {
                self.state = State::Clearing {
                    then: Then::Hold(s),
                };
                Ok(())
            }
            (State::Hold { stage }, Manual::Release) => {
                let stage = *stage;
                if self.isolated {
                    self.resume_isolated(now, stage, false);
                    return Ok(());
                }
                match self.plan.clone() {
                    Some(p) => match p.stages.iter().position(|st| st.stage == stage) {
                        Some(pos) => {
                            let rotated = rotate(&self.ix, &self.safety, &p, pos);
                            self.start_plan(now, &rotated, p.cycle, p);
                        }
                        None => {
                            self.state = State::Clearing {
                                then: Then::StartPlan,
                            }
                        }
                    },
                    None => self.state = State::Clearing { then: Then::Stay },
                }
                Ok(())
            }
            (State::AllRed, Manual::Release) => {
                self.state = State::Clearing {
                    then: Then::StartPlan,
                };
                Ok(())
            }
            (
                State::Running { .. } | State::Actuated { .. } | State::Isolated { .. },
                Manual::Release,
            ) => {
                self.hold_request = None;
                Ok(())
            }
            (_, Manual::Release) => Err("nothing to release".into()),
        }
    }

    /// Start `target` (through transition cycles built from `first`, which begins with its
    /// first stage) at `at`.
    fn start_plan(&mut self, at: Ms, first: &Plan, previous_cycle: Ms, target: Plan) {
        let tr = plan_transition(&self.ix, &self.safety, previous_cycle, first, at);
        let mut segments = VecDeque::new();
        let mut t = at;
        for p in tr.cycles {
            let runner = FixedTimeRunner::new(&self.ix, &p);
            let len = p.cycle;
            segments.push_back(Segment {
                from: t,
                plan: p,
                runner,
                open_ended: false,
            });
            t += len;
        }
        // After the transition, `first` runs in phase; it is `target` rotated, so `target`'s
        // own runner gives the same colours from there on.
        let runner = FixedTimeRunner::new(&self.ix, &target);
        segments.push_back(Segment {
            from: t,
            plan: target,
            runner,
            open_ended: true,
        });
        self.state = State::Running { segments };
    }

    /// Per group, the start of its green if it is green now, and the last end of its green.
    fn history(&self) -> (Vec<Option<Ms>>, Vec<Option<Ms>>) {
        let start = self
            .colours
            .iter()
            .zip(&self.since)
            .map(|(c, s)| c.is_green().then_some(*s))
            .collect();
        (start, self.last_green_end.clone())
    }

    /// A stage engine that takes over with `stage` green since `since`, if its colours are
    /// the ones shown (or, `from_red`, if the intersection is all red and every intergreen
    /// has passed: the engine then starts `stage`).
    fn take_over(&self, now: Ms, stage: usize, since: Ms, from_red: bool) -> Option<StageEngine> {
        let (start, end) = self.history();
        let e = StageEngine::resume(&self.ix, stage, since, &start, &end, now);
        (from_red || e.colours() == self.colours.as_slice()).then_some(e)
    }

    /// Isolated actuated from `stage`, green now (or started now from all red, `from_red`);
    /// clears to all red if the plan in force does not run that stage or the hand-over is
    /// not seamless.
    fn resume_isolated(&mut self, now: Ms, stage: usize, from_red: bool) {
        let plan = self.plan.clone();
        let pos = plan
            .as_ref()
            .and_then(|p| p.stages.iter().position(|st| st.stage == stage));
        match (plan, pos, self.take_over(now, stage, now, from_red)) {
            (Some(plan), Some(pos), Some(engine)) => {
                self.pending = None;
                let logic = Actuated::with_engine(engine, &plan, &self.actuated, pos);
                self.state = State::Isolated {
                    plan,
                    logic: Box::new(logic),
                };
            }
            _ => {
                self.state = State::Clearing {
                    then: Then::StartPlan,
                }
            }
        }
    }

    /// A hold request is met when its stage is green in full and nothing else is open.
    fn hold_met(&self, green_stage: Option<usize>) -> Option<usize> {
        let h = self.hold_request?;
        let clean = self
            .colours
            .iter()
            .all(|c| matches!(c, Colour::Green | Colour::Walk | Colour::Red));
        (green_stage == Some(h) && clean).then_some(h)
    }

    fn apply(&mut self, now: Ms, colours: Vec<Colour>) {
        if self.colours.len() != colours.len() {
            self.colours = colours;
            return;
        }
        for (g, &c) in colours.iter().enumerate() {
            let old = self.colours[g];
            if old != c {
                if open_or_flash(old) && !open_or_flash(c) {
                    self.last_green_end[g] = Some(now);
                }
                self.since[g] = now;
            }
        }
        self.colours = colours;
    }

    /// One step of clearing to all red. Returns `None` when all red and every intergreen since
    /// the last green has passed (ready to start anything), else the next wake-up.
    fn clear_step(&mut self, now: Ms) -> Option<Ms> {
        let mut next = Ms(i64::MAX);
        let mut out = self.colours.clone();
        for (g, c) in out.iter_mut().enumerate() {
            let grp = &self.ix.groups[g];
            let held = now - self.since[g];
            match *c {
                Colour::Green | Colour::Walk => {
                    if held >= grp.min_green {
                        *c = if *c == Colour::Green {
                            Colour::Yellow
                        } else {
                            Colour::PedClearance
                        };
                        next = next.min(now + grp.clearance);
                    } else {
                        next = next.min(self.since[g] + grp.min_green);
                    }
                }
                Colour::Yellow | Colour::PedClearance => {
                    if held >= grp.clearance {
                        *c = Colour::Red;
                    } else {
                        next = next.min(self.since[g] + grp.clearance);
                    }
                }
                Colour::RedYellow | Colour::FlashingYellow | Colour::Dark => *c = Colour::Red,
                Colour::Red => {}
            }
        }
        self.apply(now, out);
        if next != Ms(i64::MAX) {
            return Some(next);
        }
        let ready = self
            .last_green_end
            .iter()
            .flatten()
            .map(|&e| e + self.max_intergreen)
            .max()
            .unwrap_or(now);
        if ready > now {
            Some(ready)
        } else {
            None
        }
    }

    /// Run the machine at `now` without detectors: plans run in fixed time (actuated logic
    /// already running keeps every stage on recall). Returns the colours to show and when to
    /// run next.
    pub fn step(&mut self, now: Ms) -> Output {
        self.detectors = None;
        let out = self.step_inner(now);
        self.last_step = Some(now);
        out
    }

    /// Run the machine at `now` with the detectors' states: plans run coordinated actuated
    /// (or isolated actuated, see [`SignalMachine::set_isolated`]).
    pub fn step_with(&mut self, now: Ms, d: &Detectors<'_>) -> Output {
        let (mut states, mut failed) = self.detectors.take().unwrap_or_default();
        states.clear();
        states.extend_from_slice(d.states);
        failed.clear();
        failed.extend_from_slice(d.failed);
        self.detectors = Some((states, failed));
        let out = self.step_inner(now);
        self.last_step = Some(now);
        out
    }

    /// The measurements and failed flags of this step's detector inputs.
    fn inputs(d: &Option<(Vec<DetectorState>, Vec<bool>)>) -> (Measurements<'_>, &[bool]) {
        let (states, failed): (&[DetectorState], &[bool]) = match d {
            Some((s, f)) => (s, f),
            None => (&[], &[]),
        };
        let m = Measurements {
            detectors: states,
            movement_queue_veh: &[],
            movement_downstream_veh: &[],
        };
        (m, failed)
    }

    fn step_inner(&mut self, now: Ms) -> Output {
        // Bounded: each pass either returns or moves to a later state.
        for _ in 0..8 {
            match &mut self.state {
                State::StartUpFlash { until } => {
                    if now < *until {
                        let until = *until;
                        let flash = self.flash_colours();
                        self.apply(now, flash);
                        return self.output(now, Mode::StartUp, until);
                    }
                    self.state = State::Clearing {
                        then: Then::StartPlan,
                    };
                    // Flash ends now: the intergreens count from here.
                    let n = self.colours.len();
                    for g in 0..n {
                        self.last_green_end[g] = Some(now);
                    }
                    self.apply(now, vec![Colour::Red; n]);
                }
                State::Clearing { then } => {
                    let then = then.clone();
                    if let Some(wake) = self.clear_step(now) {
                        let mode = if then == Then::StartPlan && self.plan.is_some() {
                            Mode::StartUp
                        } else {
                            Mode::AllRed
                        };
                        return self.output(now, mode, wake);
                    }
                    match then {
                        Then::Stay => self.state = State::AllRed,
                        Then::Hold(s) => {
                            let mut out = vec![Colour::Red; self.colours.len()];
                            for g in &self.ix.stages[s].groups {
                                out[g.0] = match self.ix.groups[g.0].kind {
                                    GroupKind::Vehicle => Colour::Green,
                                    GroupKind::Pedestrian => Colour::Walk,
                                };
                            }
                            self.apply(now, out);
                            self.state = State::Hold { stage: s };
                        }
                        Then::StartPlan => match self.plan.clone() {
                            Some(p) if self.isolated => {
                                self.resume_isolated(now, p.stages[0].stage, true);
                                if matches!(self.state, State::Clearing { .. }) {
                                    // Cannot happen from all red; fail safe.
                                    self.state = State::AllRed;
                                }
                            }
                            Some(p) => {
                                self.pending = None;
                                self.start_plan(now, &p, p.cycle, p.clone());
                            }
                            None => self.state = State::AllRed,
                        },
                    }
                }
                State::Running { segments } => {
                    while segments.len() > 1 && segments[1].from <= now {
                        segments.pop_front();
                    }
                    let seg = &segments[0];
                    let st = seg.runner.state_at(now);
                    let boundary = now - st.cycle_time; // start of this cycle
                    let next_boundary = boundary + seg.plan.cycle;
                    // A pending plan starts at a cycle boundary (this step's, or one passed since
                    // the previous step).
                    let crossed =
                        st.cycle_time == Ms::ZERO || self.last_step.is_some_and(|l| l < boundary);
                    if crossed && seg.open_ended && boundary >= seg.from {
                        if let Some(newp) = self.pending.take() {
                            let old_first = seg.plan.stages[0].stage;
                            let old_cycle = seg.plan.cycle;
                            match newp.stages.iter().position(|s| s.stage == old_first) {
                                Some(pos) => {
                                    let first = rotate(&self.ix, &self.safety, &newp, pos);
                                    self.start_plan(boundary, &first, old_cycle, newp);
                                }
                                None => {
                                    self.state = State::Clearing {
                                        then: Then::StartPlan,
                                    }
                                }
                            }
                            continue;
                        }
                    }
                    // A hold starts when the held stage's green has begun in full.
                    if let (Some(h), Some(pos)) = (self.hold_request, st.stage) {
                        let held = seg.plan.stages[pos].stage == h
                            && self.ix.stages[h]
                                .groups
                                .iter()
                                .all(|g| st.colours[g.0].is_green());
                        if held {
                            self.hold_request = None;
                            self.apply(now, st.colours.clone());
                            self.state = State::Hold { stage: h };
                            continue;
                        }
                    }
                    let n_segments = segments.len();
                    let next_from = segments.get(1).map(|s| s.from);
                    // Actuation takes over at a boundary of the plan in force.
                    let actuate = (self.detectors.is_some() || self.isolated)
                        && n_segments == 1
                        && seg.open_ended
                        && st.cycle_time == Ms::ZERO
                        && seg.plan.stages.len() >= 2
                        && self.pending.is_none()
                        && self.hold_request.is_none();
                    if actuate {
                        let plan = seg.plan.clone();
                        let runner = seg.runner.clone();
                        self.apply(now, st.colours.clone());
                        if let Some(engine) = self.take_over(now, plan.stages[0].stage, now, false)
                        {
                            self.state = if self.isolated {
                                let logic = Actuated::with_engine(engine, &plan, &self.actuated, 0);
                                State::Isolated {
                                    plan,
                                    logic: Box::new(logic),
                                }
                            } else {
                                let logic = CoordinatedActuated::with_engine(
                                    engine,
                                    &plan,
                                    self.actuated.passage,
                                    now,
                                );
                                State::Actuated {
                                    runner,
                                    logic: Box::new(logic),
                                }
                            };
                            continue;
                        }
                    }
                    let mut wake = st.next_change;
                    if let Some(from) = next_from {
                        wake = wake.min(from);
                    }
                    if self.pending.is_some() {
                        wake = wake.min(next_boundary);
                    }
                    let mode = Mode::Coordinated;
                    let cycle_time = st.cycle_time;
                    self.apply(now, st.colours);
                    let mut out = self.output(now, mode, wake);
                    out.cycle_time = Some(cycle_time);
                    return out;
                }
                State::Actuated { .. } if self.isolated => {
                    // The same engine goes on under isolated actuation.
                    if let State::Actuated { logic, .. } =
                        std::mem::replace(&mut self.state, State::AllRed)
                    {
                        let pos = logic.position();
                        let plan = logic.plan().clone();
                        let engine = logic.into_engine();
                        let logic = Actuated::with_engine(engine, &plan, &self.actuated, pos);
                        self.state = State::Isolated {
                            plan,
                            logic: Box::new(logic),
                        };
                    }
                }
                State::Actuated { runner, logic } => {
                    let (m, failed) = Self::inputs(&self.detectors);
                    logic.set_failed(failed);
                    let wake = logic.step(now, &m);
                    let colours = logic.colours().to_vec();
                    let green = logic.engine().green_stage();
                    let on_time = logic.coordinated_on_time();
                    let boundary = logic.cycle_start();
                    let cycle_time = runner.cycle_time(now);
                    let old_plan = logic.plan().clone();
                    self.apply(now, colours);
                    // A new plan starts where the coordinated stage started on time, as from
                    // fixed time; otherwise through all red.
                    if on_time {
                        if let Some(newp) = self.pending.take() {
                            let pos = newp
                                .stages
                                .iter()
                                .position(|s| s.stage == old_plan.stages[0].stage);
                            if let Some(pos) = pos {
                                let first = rotate(&self.ix, &self.safety, &newp, pos);
                                self.start_plan(boundary, &first, old_plan.cycle, newp);
                                if let State::Running { segments } = &self.state {
                                    if segments[0].runner.state_at(now).colours == self.colours {
                                        continue;
                                    }
                                }
                            }
                            self.state = State::Clearing {
                                then: Then::StartPlan,
                            };
                            continue;
                        }
                    }
                    if let Some(h) = self.hold_met(green) {
                        self.hold_request = None;
                        self.state = State::Hold { stage: h };
                        continue;
                    }
                    let mut out = self.output(now, Mode::CoordinatedActuated, wake);
                    out.cycle_time = Some(cycle_time);
                    return out;
                }
                State::Isolated { plan, logic } => {
                    if !self.isolated || self.plan.is_none() {
                        self.state = State::Clearing {
                            then: Then::StartPlan,
                        };
                        continue;
                    }
                    if let Some(newp) = self.pending.take() {
                        // Another plan: the same engine goes on with its sequence and greens.
                        let e = logic.engine();
                        let stage = e.green_stage().or(e.target());
                        match newp.stages.iter().position(|s| Some(s.stage) == stage) {
                            Some(pos) => {
                                if let State::Isolated { logic, .. } =
                                    std::mem::replace(&mut self.state, State::AllRed)
                                {
                                    let engine = logic.into_engine();
                                    let logic =
                                        Actuated::with_engine(engine, &newp, &self.actuated, pos);
                                    self.state = State::Isolated {
                                        plan: newp,
                                        logic: Box::new(logic),
                                    };
                                }
                            }
                            None => {
                                self.state = State::Clearing {
                                    then: Then::StartPlan,
                                }
                            }
                        }
                        continue;
                    }
                    let _ = plan;
                    let (m, failed) = Self::inputs(&self.detectors);
                    logic.set_failed(failed);
                    let wake = logic.step(now, &m);
                    let colours = logic.colours().to_vec();
                    let green = logic.engine().green_stage();
                    self.apply(now, colours);
                    if let Some(h) = self.hold_met(green) {
                        self.hold_request = None;
                        self.state = State::Hold { stage: h };
                        continue;
                    }
                    return self.output(now, Mode::Actuated, wake);
                }
                State::Hold { .. } => {
                    return self.output(now, Mode::ManualHold, now + Ms::from_s(3600))
                }
                State::AllRed => {
                    let n = self.colours.len();
                    self.apply(now, vec![Colour::Red; n]);
                    return self.output(now, Mode::AllRed, now + Ms::from_s(3600));
                }
                State::Flash => {
                    return self.output(now, Mode::FlashingYellow, now + Ms::from_s(3600))
                }
                State::Fault { .. } => {
                    return self.output(now, Mode::Fault, now + Ms::from_s(3600))
                }
            }
        }
        // Unreachable in practice; fail safe.
        self.fault(now, "signal machine did not settle");
        self.output(now, Mode::Fault, now + Ms::from_s(1))
    }

    fn output(&self, _now: Ms, mode: Mode, next_wake: Ms) -> Output {
        let stage = self
            .ix
            .stages
            .iter()
            .find(|s| !s.groups.is_empty() && s.groups.iter().all(|g| self.colours[g.0].is_green()))
            .map(|s| s.id.clone());
        Output {
            colours: self.colours.clone(),
            mode,
            stage,
            plan: self.plan.as_ref().map(|p| p.id.clone()),
            cycle_time: None,
            next_wake,
        }
    }

    /// The current fault's reason, in fault mode.
    pub fn fault_reason(&self) -> Option<&str> {
        match &self.state {
            State::Fault { reason } => Some(reason),
            _ => None,
        }
    }
}
