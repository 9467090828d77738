//! The signal state machine a cabinet runs (and the simulator, when it plays a cabinet):
//! modes, plan changes with bounded transitions, manual commands, start-up and fault flash.
//! Pure and synchronous: every call takes `now`; [`SignalMachine::step`] returns the colours
//! and when it next needs to run.
//!
//! Modes (see `messages::Mode`): start-up (flashing yellow, then all-red, then the first
//! stage), coordinated fixed time (the [`FixedTimeRunner`] of the plan in force; cycle timer =
//! (reference time - offset) mod cycle, so controllers with synchronised clocks form green
//! waves), manual hold of a stage, all-red, flashing yellow, and fault (flash, latched until a
//! reset command). A new plan starts at a cycle boundary of the one running, through the
//! transition cycles of [`crate::transition`].
//!
//! Wherever the machine leaves a plan's timeline (all-red, a hold of a stage the plan does not
//! run, start-up) it clears the intersection itself: greens run their minimum, then yellow
//! (walks their clearance) for the full clearance, then red, and nothing starts again until
//! every intergreen from the last green has passed.

use std::collections::VecDeque;

use crate::messages::Mode;
use crate::model::{Intersection, Safety};
use crate::plan::Plan;
use crate::runner::{Colour, FixedTimeRunner};
use crate::spec::GroupKind;
use crate::time::Ms;
use crate::transition::{plan_transition, rotate};

/// Flashing yellow at start-up, before the all-red.
pub const STARTUP_FLASH: Ms = Ms(5_000);

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
    StartUpFlash { until: Ms },
    Clearing { then: Then },
    Running { segments: VecDeque<Segment> },
    Hold { stage: usize },
    AllRed,
    Flash,
    Fault { reason: String },
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
        if matches!(self.state, State::Running { .. }) {
            self.pending = Some(plan.clone());
        }
        self.plan = Some(plan);
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
            (State::Running { segments }, Manual::HoldStage(s)) => {
                let in_plan = segments
                    .front()
                    .is_some_and(|seg| seg.plan.stages.iter().any(|st| st.stage == s));
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
            (State::Running { .. }, Manual::Release) => {
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

    /// Run the machine at `now`: returns the colours to show and when to run next.
    pub fn step(&mut self, now: Ms) -> Output {
        let out = self.step_inner(now);
        self.last_step = Some(now);
        out
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
                    let mut wake = st.next_change;
                    if segments.len() > 1 {
                        wake = wake.min(segments[1].from);
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
