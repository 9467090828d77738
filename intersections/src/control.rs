//! Signal control policies as pure signal logic: fixed time, actuated (gap-out / max-out per
//! stage) and max-pressure (Varaiya 2013, stage-based). Each implements
//! [`crate::field::SignalLogic`]: it takes `now` and the field's measurements and returns the
//! colours and its next wake-up. The simulator drives them; a cabinet can run them too.
//!
//! Actuated and max-pressure share one [`StageEngine`], which moves between stages the way a
//! checked plan does and never breaks a safety rule:
//! - a stage runs at least its minimum: the longest minimum green of its vehicle groups, and
//!   walk plus clearance of its pedestrian groups;
//! - pedestrian groups that end show their clearance inside the stage, vehicle groups that end
//!   show their full yellow after it;
//! - the next stage starts after [`crate::plan::required_interstage`] (the interstage the
//!   validator accepts) and, in addition, never before every intergreen from the last end of
//!   green of every conflicting group has passed (`Intersection::intergreen`), so even a short
//!   stage between two others keeps every intergreen;
//! - red-yellow, where the jurisdiction uses it, is shown at the end of the interstage.

use crate::field::{Measurements, SignalLogic};
use crate::model::{GroupIdx, Intersection};
use crate::plan::{required_interstage, Plan};
use crate::runner::{Colour, FixedTimeRunner};
use crate::spec::{DetectorKind, GroupKind};
use crate::time::Ms;

/// "Never": the wake-up of logic that has nothing scheduled.
pub const NEVER: Ms = Ms(i64::MAX);

/// A fixed-time plan as [`SignalLogic`] (detectors are ignored).
#[derive(Clone, Debug)]
pub struct FixedTime {
    runner: FixedTimeRunner,
    colours: Vec<Colour>,
}

impl FixedTime {
    pub fn new(ix: &Intersection, plan: &Plan) -> Self {
        let runner = FixedTimeRunner::new(ix, plan);
        let colours = runner.state_at(Ms::ZERO).colours;
        FixedTime { runner, colours }
    }
}

impl SignalLogic for FixedTime {
    fn step(&mut self, now: Ms, _m: &Measurements<'_>) -> Ms {
        let s = self.runner.state_at(now);
        self.colours = s.colours;
        s.next_change
    }
    fn colours(&self) -> &[Colour] {
        &self.colours
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum EngineState {
    /// Stage `stage` is green since `since`.
    Green { stage: usize, since: Ms },
    /// Stage `from` is ending: its ending pedestrian groups show clearance until `until`, when
    /// its ending vehicle groups end their green. `to` starts no earlier than `not_before`.
    Closing {
        from: usize,
        to: usize,
        until: Ms,
        not_before: Option<Ms>,
    },
    /// Interstage from `from` (green ended at `ended`) to `to`, which starts at `until`.
    Inter {
        from: usize,
        to: usize,
        ended: Ms,
        until: Ms,
    },
}

/// Safe stage-to-stage sequencing (see the module documentation).
#[derive(Clone, Debug)]
pub struct StageEngine {
    ix: Intersection,
    state: EngineState,
    colours: Vec<Colour>,
    /// Per group: the start of its current (or last) green (walk for pedestrians).
    green_start: Vec<Option<Ms>>,
    /// Per group: the last end of its green (walk for pedestrians).
    green_end: Vec<Option<Ms>>,
    /// Per stage: its minimum duration.
    stage_min: Vec<Ms>,
}

impl StageEngine {
    /// Starts with `first` green at `now`, all other groups red and no earlier greens.
    pub fn new(ix: &Intersection, first: usize, now: Ms) -> Self {
        let n = ix.groups.len();
        Self::resume(ix, first, now, &vec![None; n], &vec![None; n], now)
    }

    /// Takes over an intersection on which stage `stage` is green since `since` and every
    /// other group is red or in its yellow: `green_start` and `green_end` say, per group, when
    /// its current green began and when its last green ended (`None`: unknown or long ago).
    /// The engine keeps every intergreen from those ends. The caller checks that
    /// [`StageEngine::colours`] equal what the street shows before it hands over.
    pub fn resume(
        ix: &Intersection,
        stage: usize,
        since: Ms,
        green_start: &[Option<Ms>],
        green_end: &[Option<Ms>],
        now: Ms,
    ) -> Self {
        let n = ix.groups.len();
        let stage_min = (0..ix.stages.len())
            .map(|s| ix.stage_min_green(s))
            .collect();
        let mut green_start: Vec<Option<Ms>> = (0..n)
            .map(|g| green_start.get(g).copied().flatten())
            .collect();
        for g in &ix.stages[stage].groups {
            if green_start[g.0].is_none_or(|t| t > since) {
                green_start[g.0] = Some(since);
            }
        }
        let mut e = StageEngine {
            ix: ix.clone(),
            state: EngineState::Green { stage, since },
            colours: vec![Colour::Red; n],
            green_start,
            green_end: (0..n)
                .map(|g| green_end.get(g).copied().flatten())
                .collect(),
            stage_min,
        };
        e.paint(now);
        e
    }

    pub fn intersection(&self) -> &Intersection {
        &self.ix
    }

    /// The stage that is green (including while its pedestrians clear), if any.
    pub fn green_stage(&self) -> Option<usize> {
        match self.state {
            EngineState::Green { stage, .. } => Some(stage),
            _ => None,
        }
    }

    /// Since when the green stage runs.
    pub fn green_since(&self) -> Option<Ms> {
        match self.state {
            EngineState::Green { since, .. } => Some(since),
            _ => None,
        }
    }

    /// The minimum duration of a stage.
    pub fn stage_min(&self, stage: usize) -> Ms {
        self.stage_min[stage]
    }

    /// Whether the green stage has run its minimum at `now`.
    pub fn min_done(&self, now: Ms) -> bool {
        match self.state {
            EngineState::Green { stage, since } => now - since >= self.stage_min[stage],
            _ => false,
        }
    }

    pub fn colours(&self) -> &[Colour] {
        &self.colours
    }

    fn in_stage(&self, stage: usize, g: usize) -> bool {
        self.ix.stages[stage].groups.contains(&GroupIdx(g))
    }

    /// How long stage `from` takes to close towards `to`: the longest clearance of its
    /// pedestrian groups that end (they clear inside the stage; its vehicle groups that end
    /// keep their green until then).
    pub fn closing_time(&self, from: usize, to: usize) -> Ms {
        self.ix.stages[from]
            .groups
            .iter()
            .filter(|g| !self.in_stage(to, g.0))
            .map(|g| &self.ix.groups[g.0])
            .filter(|g| g.kind == GroupKind::Pedestrian)
            .map(|g| g.clearance)
            .max()
            .unwrap_or(Ms::ZERO)
    }

    /// The longest [`StageEngine::closing_time`] of stage `from` towards any other stage: a
    /// policy that must end the stage by a time, before it knows which stage follows, asks
    /// this long before.
    pub fn closing_time_any(&self, from: usize) -> Ms {
        (0..self.ix.stages.len())
            .filter(|&to| to != from)
            .map(|to| self.closing_time(from, to))
            .max()
            .unwrap_or(Ms::ZERO)
    }

    /// The earliest time at which [`StageEngine::request`] to `to` succeeds: every group that
    /// ends has had its minimum (vehicles their minimum green up to the end of the stage,
    /// pedestrians their walk before their own clearance). `None` unless a stage is green.
    pub fn earliest_request(&self, to: usize) -> Option<Ms> {
        let EngineState::Green { stage, since } = self.state else {
            return None;
        };
        let close = self.closing_time(stage, to);
        let mut t = since;
        for g in &self.ix.stages[stage].groups {
            if self.in_stage(to, g.0) {
                continue;
            }
            let gg = &self.ix.groups[g.0];
            let start = self.green_start[g.0].unwrap_or(since);
            let end_after_request = match gg.kind {
                GroupKind::Vehicle => close,
                GroupKind::Pedestrian => close - gg.clearance,
            };
            t = t.max(start + gg.min_green - end_after_request);
        }
        Some(t)
    }

    /// Ask to move from the green stage to `to`. Ignored unless a stage is green, `to` is
    /// another stage, and every group that ends has had its minimum (see
    /// [`StageEngine::earliest_request`]; the policies also hold each stage its
    /// [`StageEngine::stage_min`]). Returns whether the change started.
    pub fn request(&mut self, now: Ms, to: usize) -> bool {
        self.request_not_before(now, to, None)
    }

    /// [`StageEngine::request`], with `to` starting no earlier than `not_before` (a
    /// coordinated stage that must start on its schedule).
    pub fn request_not_before(&mut self, now: Ms, to: usize, not_before: Option<Ms>) -> bool {
        let EngineState::Green { stage, .. } = self.state else {
            return false;
        };
        if to == stage || to >= self.ix.stages.len() {
            return false;
        }
        if self.earliest_request(to).is_none_or(|t| now < t) {
            return false;
        }
        // Pedestrian groups that end clear inside the stage, each its own clearance before
        // the stage ends.
        let until = now + self.closing_time(stage, to);
        for g in &self.ix.stages[stage].groups {
            let gg = &self.ix.groups[g.0];
            if gg.kind == GroupKind::Pedestrian && !self.in_stage(to, g.0) {
                self.green_end[g.0] = Some(until - gg.clearance);
            }
        }
        self.state = EngineState::Closing {
            from: stage,
            to,
            until,
            not_before,
        };
        self.advance(now);
        true
    }

    /// Move the timers on to `now` and repaint the colours.
    pub fn advance(&mut self, now: Ms) {
        loop {
            match self.state {
                EngineState::Closing {
                    from,
                    to,
                    until,
                    not_before,
                } if now >= until => {
                    // The stage ends: vehicle groups that end start their yellow.
                    for g in 0..self.ix.groups.len() {
                        if self.in_stage(from, g)
                            && !self.in_stage(to, g)
                            && self.ix.groups[g].kind == GroupKind::Vehicle
                        {
                            self.green_end[g] = Some(until);
                        }
                    }
                    let mut start = until + required_interstage(&self.ix, from, to);
                    if let Some(nb) = not_before {
                        start = start.max(nb);
                    }
                    // Every intergreen from the last end of green of every conflicting group.
                    for s in &self.ix.stages[to].groups {
                        if self.in_stage(from, s.0) {
                            continue;
                        }
                        for (e, end) in self.green_end.iter().enumerate() {
                            if let Some(end) = end {
                                if self.ix.conflicts[e][s.0] {
                                    start = start.max(*end + self.ix.intergreen[e][s.0]);
                                }
                            }
                        }
                    }
                    self.state = EngineState::Inter {
                        from,
                        to,
                        ended: until,
                        until: start,
                    };
                }
                EngineState::Inter {
                    from, to, until, ..
                } if now >= until => {
                    for s in &self.ix.stages[to].groups {
                        if !self.in_stage(from, s.0) {
                            self.green_start[s.0] = Some(until);
                        }
                    }
                    self.state = EngineState::Green {
                        stage: to,
                        since: until,
                    };
                }
                _ => break,
            }
        }
        self.paint(now);
    }

    fn paint(&mut self, now: Ms) {
        for g in 0..self.ix.groups.len() {
            let gg = &self.ix.groups[g];
            let ped = gg.kind == GroupKind::Pedestrian;
            let open = if ped { Colour::Walk } else { Colour::Green };
            let ended = |s: &Self| -> Colour {
                match s.green_end[g] {
                    Some(end) if !ped && now < end + gg.clearance => Colour::Yellow,
                    _ => Colour::Red,
                }
            };
            self.colours[g] = match self.state {
                EngineState::Green { stage, .. } => {
                    if self.in_stage(stage, g) {
                        open
                    } else {
                        ended(self)
                    }
                }
                EngineState::Closing {
                    from, to, until, ..
                } => {
                    if self.in_stage(from, g) {
                        if ped && !self.in_stage(to, g) {
                            if self.green_end[g].is_some_and(|e| now < e) {
                                Colour::Walk
                            } else if now < until {
                                Colour::PedClearance
                            } else {
                                Colour::Red
                            }
                        } else {
                            open
                        }
                    } else {
                        ended(self)
                    }
                }
                EngineState::Inter {
                    from, to, until, ..
                } => {
                    if self.in_stage(from, g) && self.in_stage(to, g) {
                        open
                    } else if self.in_stage(to, g)
                        && !ped
                        && gg.red_yellow > Ms::ZERO
                        && now >= until - gg.red_yellow
                    {
                        Colour::RedYellow
                    } else {
                        ended(self)
                    }
                }
            };
        }
    }

    /// The next time a colour changes by the engine's own timers.
    pub fn next_change(&self, now: Ms) -> Ms {
        let mut t = NEVER;
        let mut consider = |x: Ms| {
            if x > now {
                t = t.min(x);
            }
        };
        for (g, end) in self.green_end.iter().enumerate() {
            if let Some(end) = end {
                // A pedestrian's walk may end in the future (its stage is closing).
                consider(*end);
                consider(*end + self.ix.groups[g].clearance);
            }
        }
        match self.state {
            EngineState::Green { .. } => {}
            EngineState::Closing { until, .. } => consider(until),
            EngineState::Inter { to, until, .. } => {
                consider(until);
                for s in &self.ix.stages[to].groups {
                    let ry = self.ix.groups[s.0].red_yellow;
                    if ry > Ms::ZERO {
                        consider(until - ry);
                    }
                }
            }
        }
        t
    }

    /// The stage the engine is moving to, during a change.
    pub fn target(&self) -> Option<usize> {
        match self.state {
            EngineState::Closing { to, .. } | EngineState::Inter { to, .. } => Some(to),
            EngineState::Green { .. } => None,
        }
    }

    /// When the last green stage ended (during an interstage).
    pub fn ended_at(&self) -> Option<Ms> {
        match self.state {
            EngineState::Inter { ended, .. } => Some(ended),
            _ => None,
        }
    }
}

/// Which stages a detector calls: those with a vehicle group whose movement leaves from the
/// detector's link on its lane (stop-line and advance detectors only).
fn stage_detectors(ix: &Intersection) -> Vec<Vec<usize>> {
    ix.stages
        .iter()
        .map(|s| {
            ix.detectors
                .iter()
                .enumerate()
                .filter(|(_, d)| d.kind != DetectorKind::Exit)
                .filter(|(_, d)| {
                    s.groups.iter().any(|g| {
                        ix.groups[g.0].movements.iter().any(|&m| {
                            let mv = &ix.movements[m];
                            mv.from == d.link && mv.lanes.contains(&d.lane)
                        })
                    })
                })
                .map(|(i, _)| i)
                .collect()
        })
        .collect()
}

/// What the actuated policies share about detectors: which detectors call which stage, the
/// calls placed on stages that are not green, failed detectors (their stages are on recall),
/// and the gap test (passage time, or unit extension).
#[derive(Clone, Debug)]
struct Detection {
    detectors: Vec<Vec<usize>>,
    calls: Vec<bool>,
    last_counts: Vec<u64>,
    failed: Vec<bool>,
    passage: Ms,
}

/// The gap test of the green stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gap {
    /// No vehicle for the passage time.
    Out,
    /// Extended: gaps out at this time unless a vehicle comes (`NEVER` while one is over a
    /// detector).
    Until(Ms),
    /// No working detector decides: the stage is on recall.
    Recall,
}

impl Detection {
    fn new(ix: &Intersection, passage: Ms) -> Self {
        Detection {
            detectors: stage_detectors(ix),
            calls: vec![false; ix.stages.len()],
            last_counts: vec![0; ix.detectors.len()],
            failed: vec![false; ix.detectors.len()],
            passage,
        }
    }

    /// A stage with a failed detector runs as in fixed time.
    fn recalled(&self, stage: usize) -> bool {
        self.detectors[stage]
            .iter()
            .any(|&d| self.failed.get(d).copied().unwrap_or(false))
    }

    fn set_failed(&mut self, failed: &[bool]) {
        for (d, f) in self.failed.iter_mut().enumerate() {
            *f = failed.get(d).copied().unwrap_or(false);
        }
    }

    /// Calls: any actuation on a detector of a stage that is not green.
    fn update_calls(&mut self, green: Option<usize>, m: &Measurements<'_>) {
        for (s, dets) in self.detectors.iter().enumerate() {
            if Some(s) == green {
                continue;
            }
            for &d in dets {
                if let Some(st) = m.detectors.get(d) {
                    if st.occupied || st.count != self.last_counts[d] {
                        self.calls[s] = true;
                    }
                }
            }
        }
        for (d, st) in m.detectors.iter().enumerate().take(self.last_counts.len()) {
            self.last_counts[d] = st.count;
        }
        if let Some(g) = green {
            self.calls[g] = false;
        }
    }

    /// Whether a stage wants the green: a call, or on recall (failed detector, or none).
    fn called(&self, stage: usize) -> bool {
        self.detectors[stage].is_empty() || self.recalled(stage) || self.calls[stage]
    }

    /// The gap test of `stage`, green since `since`, at `now`.
    fn gap(&self, stage: usize, since: Ms, now: Ms, m: &Measurements<'_>) -> Gap {
        let dets = &self.detectors[stage];
        if dets.is_empty() || self.recalled(stage) {
            return Gap::Recall;
        }
        let mut last_active: Option<Ms> = None;
        let mut occupied = false;
        for &d in dets {
            match m.detectors.get(d) {
                Some(st) => {
                    occupied |= st.occupied;
                    last_active = last_active.max(st.last_off.max(st.last_on));
                }
                // A detector the field does not report is as good as failed.
                None => return Gap::Recall,
            }
        }
        if occupied {
            return Gap::Until(NEVER);
        }
        let gap_end = last_active.map_or(since, |t| t.max(since)) + self.passage;
        if now >= gap_end {
            Gap::Out
        } else {
            Gap::Until(gap_end)
        }
    }
}

/// Parameters of actuated control.
#[derive(Clone, Debug, PartialEq)]
pub struct ActuatedParams {
    /// Passage time (unit extension): a stage gaps out when no detector of it has been
    /// occupied for this long.
    pub passage: Ms,
    /// Maximum green per stage, by plan position; `None` takes the plan's greens.
    pub max_green: Option<Vec<Ms>>,
    /// With `max_green` `None`: the maximum is the plan's green times this factor (whole
    /// milliseconds), so that a stage can take more than its planned share when demand is
    /// above the plan's estimate (1.0: the plan's greens).
    pub max_green_factor: f64,
}

impl ActuatedParams {
    /// The maximum green of each plan position: `max_green` when it has one per position,
    /// else the plan's green times [`ActuatedParams::max_green_factor`] (whole milliseconds);
    /// never below the stage's minimum ([`Intersection::stage_min_green`]).
    pub fn max_greens(&self, ix: &Intersection, plan: &Plan) -> Vec<Ms> {
        let from_params = match &self.max_green {
            Some(m) if m.len() == plan.stages.len() => m.clone(),
            _ => plan
                .stages
                .iter()
                .map(|s| Ms((s.green.0 as f64 * self.max_green_factor.max(0.0)).round() as i64))
                .collect(),
        };
        from_params
            .iter()
            .zip(&plan.stages)
            .map(|(m, s)| (*m).max(ix.stage_min_green(s.stage)))
            .collect()
    }
}

impl Default for ActuatedParams {
    fn default() -> Self {
        ActuatedParams {
            passage: Ms::from_s(3),
            max_green: None,
            max_green_factor: 1.0,
        }
    }
}

/// Fully actuated stage control: the plan's stage sequence, each stage from its minimum up to
/// its maximum green (the plan's green by default), ending on gap-out or max-out when another
/// stage has a call. Stages without detectors gap out at their minimum and are always called;
/// stages with a failed detector (see [`Actuated::set_failed`]) are on recall: always called,
/// and they run to their maximum. With no call elsewhere, the green rests where it is.
#[derive(Clone, Debug)]
pub struct Actuated {
    engine: StageEngine,
    sequence: Vec<usize>,
    pos: usize,
    max_green: Vec<Ms>,
    detection: Detection,
}

impl Actuated {
    /// Actuated control over the stage sequence of `plan`, starting its first stage at `now`.
    pub fn new(ix: &Intersection, plan: &Plan, params: &ActuatedParams, now: Ms) -> Self {
        let engine = StageEngine::new(ix, plan.stages[0].stage, now);
        Self::with_engine(engine, plan, params, 0)
    }

    /// Actuated control over the stage sequence of `plan` that takes over a running `engine`
    /// whose green (or target) stage is at plan position `pos`.
    pub fn with_engine(
        engine: StageEngine,
        plan: &Plan,
        params: &ActuatedParams,
        pos: usize,
    ) -> Self {
        let sequence: Vec<usize> = plan.stages.iter().map(|s| s.stage).collect();
        let max_green = params.max_greens(engine.intersection(), plan);
        Actuated {
            detection: Detection::new(engine.intersection(), params.passage),
            engine,
            pos: pos.min(sequence.len() - 1),
            sequence,
            max_green,
        }
    }

    pub fn engine(&self) -> &StageEngine {
        &self.engine
    }

    /// Give the engine back (to hand the intersection to other logic).
    pub fn into_engine(self) -> StageEngine {
        self.engine
    }

    /// Plan position of the green (or next) stage.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Mark detectors failed (indexed like the intersection's detectors): their stages go on
    /// recall.
    pub fn set_failed(&mut self, failed: &[bool]) {
        self.detection.set_failed(failed);
    }
}

impl SignalLogic for Actuated {
    fn step(&mut self, now: Ms, m: &Measurements<'_>) -> Ms {
        self.engine.advance(now);
        let green = self.engine.green_stage();
        self.detection.update_calls(green, m);
        let mut wake = self.engine.next_change(now);
        if let (Some(stage), Some(since)) = (green, self.engine.green_since()) {
            // The stage's minimum and maximum count its crosswalks' clearance, which runs
            // after the request: ask that long before.
            let close = self.engine.closing_time_any(stage);
            let min_end = (since + self.engine.stage_min(stage) - close).max(since);
            let max_end = (since + self.max_green[self.pos] - close).max(min_end);
            if now < min_end {
                return wake.min(min_end);
            }
            let gap = self.detection.gap(stage, since, now, m);
            let gapped_out = match gap {
                Gap::Out => true,
                Gap::Recall => self.detection.detectors[stage].is_empty(),
                Gap::Until(_) => false,
            };
            let maxed_out = now >= max_end;
            if gapped_out || maxed_out {
                let n = self.sequence.len();
                let next = (1..n).map(|k| (self.pos + k) % n).find(|&p| {
                    self.sequence[p] != stage && self.detection.called(self.sequence[p])
                });
                if let Some(p) = next {
                    if self.engine.request(now, self.sequence[p]) {
                        self.pos = p;
                        return self.engine.next_change(now);
                    }
                }
                // Rest in green; look again at the next step of the field.
            } else {
                wake = wake.min(max_end);
                if let Gap::Until(t) = gap {
                    wake = wake.min(t);
                }
            }
        }
        wake
    }
    fn colours(&self) -> &[Colour] {
        self.engine.colours()
    }
}

/// Actuated control inside a coordinated plan (NEMA's coordinated-actuated operation with
/// fixed force-offs). The plan's first stage is the coordinated stage: it starts exactly at
/// cycle time 0, `(t - offset) mod cycle`, and ends at its scheduled end. Every other stage
/// runs at least its minimum ([`StageEngine::stage_min`]) and gaps out when its detectors
/// have seen no vehicle for the passage time; the next stage then starts early, after its
/// interstage. Each non-coordinated stage is forced off at its scheduled end in the plan at
/// the latest, so every stage starts no later than in fixed time. The last stage before the
/// coordinated one does not gap out: the time it would leave cannot go to the coordinated
/// stage without moving its start, so it rests in green until its force-off. A stage with a
/// failed detector, or none, is on recall: it runs to its force-off as in fixed time.
///
/// With demand everywhere (or every detector failed) it shows the plan's fixed-time colours.
#[derive(Clone, Debug)]
pub struct CoordinatedActuated {
    engine: StageEngine,
    plan: Plan,
    starts: Vec<Ms>,
    /// Plan position of the green (or next) stage.
    pos: usize,
    /// Start of the cycle whose schedule stage `pos` follows.
    cycle_start: Ms,
    detection: Detection,
}

impl CoordinatedActuated {
    /// Takes over `engine`, whose green stage is the plan's first (coordinated) stage, which
    /// started the cycle at `cycle_start`. `plan` must be checked.
    pub fn with_engine(engine: StageEngine, plan: &Plan, passage: Ms, cycle_start: Ms) -> Self {
        CoordinatedActuated {
            detection: Detection::new(engine.intersection(), passage),
            engine,
            starts: plan.stage_starts(),
            plan: plan.clone(),
            pos: 0,
            cycle_start,
        }
    }

    pub fn engine(&self) -> &StageEngine {
        &self.engine
    }

    /// Give the engine back (to hand the intersection to other logic).
    pub fn into_engine(self) -> StageEngine {
        self.engine
    }

    /// Plan position of the green (or next) stage.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Start of the cycle the running stage belongs to.
    pub fn cycle_start(&self) -> Ms {
        self.cycle_start
    }

    /// Whether the coordinated stage is green and started exactly on its schedule (a plan
    /// change or a hand-over to fixed time can take over seamlessly).
    pub fn coordinated_on_time(&self) -> bool {
        self.pos == 0
            && self.engine.green_stage() == Some(self.plan.stages[0].stage)
            && self.engine.green_since() == Some(self.cycle_start)
    }

    /// Mark detectors failed (indexed like the intersection's detectors): their stages go on
    /// recall.
    pub fn set_failed(&mut self, failed: &[bool]) {
        self.detection.set_failed(failed);
    }
}

impl SignalLogic for CoordinatedActuated {
    fn step(&mut self, now: Ms, m: &Measurements<'_>) -> Ms {
        // Bounded: each pass moves to the next plan position.
        for _ in 0..=self.plan.stages.len() {
            self.engine.advance(now);
            let (Some(stage), Some(since)) = (self.engine.green_stage(), self.engine.green_since())
            else {
                return self.engine.next_change(now);
            };
            let n = self.plan.stages.len();
            let pos = self.pos;
            let next = (pos + 1) % n;
            let next_cycle = if next == 0 {
                self.cycle_start + self.plan.cycle
            } else {
                self.cycle_start
            };
            let to = self.plan.stages[next].stage;
            let end = self.cycle_start + self.starts[pos] + self.plan.stages[pos].green;
            if to == stage {
                // A one-stage plan: nothing ever ends.
                if now >= end {
                    self.pos = next;
                    self.cycle_start = next_cycle;
                    continue;
                }
                return self.engine.next_change(now).min(end);
            }
            let force_at = end - self.engine.closing_time(stage, to);
            let may_gap = pos != 0 && next != 0;
            let gap = if may_gap && now >= since + self.engine.stage_min(stage) {
                Some(self.detection.gap(stage, since, now, m))
            } else {
                None
            };
            let forced = now >= force_at;
            if forced || gap == Some(Gap::Out) {
                // On a force-off the next stage keeps its schedule; after a gap-out it starts
                // as soon as its interstage allows.
                let not_before = forced.then_some(next_cycle + self.starts[next]);
                if self.engine.request_not_before(now, to, not_before) {
                    self.pos = next;
                    self.cycle_start = next_cycle;
                    return self.engine.next_change(now);
                }
                // Running late (a minimum not yet reached): end as soon as allowed.
                let at = self
                    .engine
                    .earliest_request(to)
                    .unwrap_or(now)
                    .max(now + Ms(1));
                return self.engine.next_change(now).min(at);
            }
            let mut wake = self.engine.next_change(now).min(force_at);
            match gap {
                Some(Gap::Until(t)) => wake = wake.min(t),
                None if may_gap => wake = wake.min(since + self.engine.stage_min(stage)),
                _ => {}
            }
            return wake;
        }
        self.engine.next_change(now)
    }
    fn colours(&self) -> &[Colour] {
        self.engine.colours()
    }
}

/// Parameters of max-pressure control.
#[derive(Clone, Debug, PartialEq)]
pub struct MaxPressureParams {
    /// How often the pressures are compared once a stage has run its minimum.
    pub period: Ms,
    /// A stage that has run this long gives way to the stage of highest pressure among the
    /// others, if that pressure is positive (keeps a tie from starving anyone).
    pub max_green: Ms,
}

impl Default for MaxPressureParams {
    fn default() -> Self {
        MaxPressureParams {
            period: Ms::from_s(5),
            max_green: Ms::from_s(90),
        }
    }
}

/// Max-pressure control (Varaiya 2013, "Max pressure control of a network of signalized
/// intersections", Transp. Res. C 36), stage-based: at each decision point the stage with the
/// largest pressure `sum over its movements of c(m) * (x(m) - x(out(m)))` gets the green, where
/// `c` is the movement's saturation flow times lanes, `x(m)` the vehicles on its incoming link
/// bound for it, and `x(out(m))` the vehicles on its outgoing link (Varaiya's
/// `sum_p r(m,p) x(m,p)` with the turning ratios summing to one). Departs from the paper in
/// that decisions happen every `period` after the minimum, not at fixed slot boundaries, and
/// each switch pays the real interstage.
#[derive(Clone, Debug)]
pub struct MaxPressure {
    engine: StageEngine,
    params: MaxPressureParams,
    next_decision: Ms,
    /// Per stage: (movement index, capacity veh/h) of its vehicle groups.
    stage_movements: Vec<Vec<(usize, f64)>>,
}

impl MaxPressure {
    /// Starts with `first` stage green at `now`.
    pub fn new(ix: &Intersection, first: usize, params: &MaxPressureParams, now: Ms) -> Self {
        let stage_movements = ix
            .stages
            .iter()
            .map(|s| {
                let mut v = Vec::new();
                for g in &s.groups {
                    for &m in &ix.groups[g.0].movements {
                        let mv = &ix.movements[m];
                        v.push((m, mv.saturation_flow_veh_h * mv.lanes.len() as f64));
                    }
                }
                v
            })
            .collect();
        MaxPressure {
            engine: StageEngine::new(ix, first, now),
            params: params.clone(),
            next_decision: now,
            stage_movements,
        }
    }

    pub fn engine(&self) -> &StageEngine {
        &self.engine
    }

    /// The pressure of every stage under these measurements.
    pub fn pressures(&self, m: &Measurements<'_>) -> Vec<f64> {
        self.stage_movements
            .iter()
            .map(|ms| {
                ms.iter()
                    .map(|&(k, c)| {
                        let q = m.movement_queue_veh.get(k).copied().unwrap_or(0) as f64;
                        let d = m.movement_downstream_veh.get(k).copied().unwrap_or(0) as f64;
                        c * (q - d)
                    })
                    .sum()
            })
            .collect()
    }
}

impl SignalLogic for MaxPressure {
    fn step(&mut self, now: Ms, m: &Measurements<'_>) -> Ms {
        self.engine.advance(now);
        let (Some(stage), Some(since)) = (self.engine.green_stage(), self.engine.green_since())
        else {
            return self.engine.next_change(now);
        };
        // As in actuated control, the minimum and maximum count the crosswalks' clearance
        // that follows a request.
        let close = self.engine.closing_time_any(stage);
        let min_end = (since + self.engine.stage_min(stage) - close).max(since);
        if now < min_end {
            self.next_decision = min_end;
            return self.engine.next_change(now).min(min_end);
        }
        if now < self.next_decision {
            return self.engine.next_change(now).min(self.next_decision);
        }
        let p = self.pressures(m);
        let maxed = now + close - since >= self.params.max_green;
        let mut best = stage;
        for (k, &pk) in p.iter().enumerate() {
            if k == stage {
                continue;
            }
            let beats = if maxed && best == stage {
                pk > 0.0
            } else {
                pk > p[best]
            };
            if beats {
                best = k;
            }
        }
        if best != stage && self.engine.request(now, best) {
            return self.engine.next_change(now);
        }
        // Look again after a period, and exactly when the stage reaches its maximum.
        let max_at = since + self.params.max_green - close;
        self.next_decision = if now < max_at {
            (now + self.params.period).min(max_at)
        } else {
            now + self.params.period
        };
        self.engine.next_change(now).min(self.next_decision)
    }
    fn colours(&self) -> &[Colour] {
        self.engine.colours()
    }
}
