//! The fixed-time runner: the first piece of the pure signal logic. Given a checked plan and
//! the time, it returns every signal group's colour and when the next change is due
//! (STYLE.md §3: a step returns when it next needs to run). No clock, no I/O.

use serde::{Deserialize, Serialize};

use crate::model::Intersection;
use crate::plan::Plan;
use crate::spec::GroupKind;
use crate::time::Ms;

/// What a signal group shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Colour {
    Red,
    /// Red and yellow together before green, where the jurisdiction uses it.
    RedYellow,
    Green,
    Yellow,
    /// Pedestrian walk.
    Walk,
    /// Pedestrian clearance (flashing green / flashing don't walk).
    PedClearance,
    /// Flashing yellow: start-up and fault mode.
    FlashingYellow,
    /// No indication.
    Dark,
}

impl Colour {
    /// Green, yellow, walk or clearance: what conflicting groups may never show together.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Colour::Green | Colour::Yellow | Colour::Walk | Colour::PedClearance
        )
    }
    /// Green or walk: the start of an intergreen is the end of this.
    pub fn is_green(self) -> bool {
        matches!(self, Colour::Green | Colour::Walk)
    }
}

/// The colours of every signal group at one moment, and when they next change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalState {
    /// One colour per signal group, indexed like [`Intersection::groups`].
    pub colours: Vec<Colour>,
    /// The index into the plan's stage sequence whose green is running, or `None` in an
    /// interstage.
    pub stage: Option<usize>,
    /// Cycle time (`(now - offset) mod cycle`).
    pub cycle_time: Ms,
    /// The next time at which any colour changes.
    pub next_change: Ms,
}

/// Runs a checked fixed-time plan. Precomputes the colour of every group between consecutive
/// change points of the cycle, so a lookup is a binary search.
#[derive(Clone, Debug)]
pub struct FixedTimeRunner {
    cycle: Ms,
    offset: Ms,
    /// Change points in `[0, cycle)`, ascending; each with the colours from there on.
    segments: Vec<(Ms, Vec<Colour>)>,
    /// Stage green windows `[start, end)` in cycle time, by plan position.
    stage_windows: Vec<(Ms, Ms)>,
}

fn colour_at(ix: &Intersection, plan: &Plan, g: usize, t: Ms) -> Colour {
    let group = &ix.groups[g];
    let c = plan.cycle;
    let inside =
        |start: Ms, end: Ms| -> bool { end > start && (t - start).rem_euclid(c) < end - start };
    for s in &plan.spans[g] {
        if s.always {
            return match group.kind {
                GroupKind::Vehicle => Colour::Green,
                GroupKind::Pedestrian => Colour::Walk,
            };
        }
        if inside(s.open, s.green_end) {
            return match group.kind {
                GroupKind::Vehicle => Colour::Green,
                GroupKind::Pedestrian => Colour::Walk,
            };
        }
        if inside(s.green_end, s.clear_end) {
            return match group.kind {
                GroupKind::Vehicle => Colour::Yellow,
                GroupKind::Pedestrian => Colour::PedClearance,
            };
        }
        if group.kind == GroupKind::Vehicle && inside(s.open - group.red_yellow, s.open) {
            return Colour::RedYellow;
        }
    }
    Colour::Red
}

impl FixedTimeRunner {
    /// A runner for `plan`, which must have been checked against `ix` (by [`crate::plan::validate`]).
    pub fn new(ix: &Intersection, plan: &Plan) -> Self {
        let c = plan.cycle;
        let mut points = vec![Ms::ZERO];
        for (g, spans) in plan.spans.iter().enumerate() {
            for s in spans.iter().filter(|s| !s.always) {
                points.push(s.open);
                points.push(s.green_end);
                points.push(s.clear_end);
                points.push(s.open - ix.groups[g].red_yellow);
            }
        }
        let starts = plan.stage_starts();
        let stage_windows: Vec<(Ms, Ms)> = plan
            .stages
            .iter()
            .zip(&starts)
            .map(|(s, &st)| (st, st + s.green))
            .collect();
        for &(a, b) in &stage_windows {
            points.push(a);
            points.push(b);
        }
        let mut points: Vec<Ms> = points.into_iter().map(|p| p.rem_euclid(c)).collect();
        points.sort();
        points.dedup();
        let segments = points
            .into_iter()
            .map(|p| {
                (
                    p,
                    (0..ix.groups.len())
                        .map(|g| colour_at(ix, plan, g, p))
                        .collect(),
                )
            })
            .collect();
        FixedTimeRunner {
            cycle: c,
            offset: plan.offset,
            segments,
            stage_windows,
        }
    }

    pub fn cycle(&self) -> Ms {
        self.cycle
    }

    /// Cycle time at `now`: `(now - offset) mod cycle`.
    pub fn cycle_time(&self, now: Ms) -> Ms {
        (now - self.offset).rem_euclid(self.cycle)
    }

    /// The colours at `now` and the time of the next change.
    pub fn state_at(&self, now: Ms) -> SignalState {
        let ct = self.cycle_time(now);
        let i = self.segments.partition_point(|(p, _)| *p <= ct) - 1;
        let next_point = match self.segments.get(i + 1) {
            Some((p, _)) => *p,
            None => self.cycle + self.segments[0].0,
        };
        let stage = self
            .stage_windows
            .iter()
            .position(|&(a, b)| ct >= a && ct < b);
        SignalState {
            colours: self.segments[i].1.clone(),
            stage,
            cycle_time: ct,
            next_change: now + (next_point - ct),
        }
    }
}
