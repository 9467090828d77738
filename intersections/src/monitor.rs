//! The safety monitor: the role of a conflict monitor (NEMA TS2 MMU / ATC CMU) in software.
//!
//! It is independent of the logic that decides what to show: it knows only the intersection's
//! conflict matrix, intergreens, minimum greens and clearances, and checks every proposed
//! output change before it is applied. On a violation it trips: the intersection goes to
//! flashing yellow (pedestrian heads dark) and stays there, latched, until a reset command.
//! A trip is reported at once by the runtime.
//!
//! Checked on every change:
//! - conflicting groups are never open (green, yellow, walk, clearance) together;
//! - a group starts green only after every conflicting group's intergreen since its last
//!   green ended (flashing counts as open, so start-up all-red holds the intergreens);
//! - a vehicle green ends in yellow, held for its full clearance, then red; a walk ends in
//!   pedestrian clearance, held in full, then red;
//! - a green (walk) lasts at least its minimum;
//! - leaving flash goes to red first.
//!
//! Going to flash is always allowed: it is the safe state.

use crate::model::Intersection;
use crate::spec::GroupKind;
use crate::{Colour, Ms};

/// Why the monitor tripped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("conflicting signal groups {a} and {b} open together")]
    Conflict { a: String, b: String },
    #[error("intergreen from {from} to {to} would be {actual}, needs {required}")]
    Intergreen {
        from: String,
        to: String,
        actual: Ms,
        required: Ms,
    },
    #[error("signal group {group}: {what}")]
    Sequence { group: String, what: String },
    #[error("signal group {group}: green of {actual} is shorter than its minimum {required}")]
    ShortGreen {
        group: String,
        actual: Ms,
        required: Ms,
    },
    #[error("signal group {group}: clearance of {actual} is shorter than {required}")]
    ShortClearance {
        group: String,
        actual: Ms,
        required: Ms,
    },
    #[error("output has {actual} signal groups, the intersection has {expected}")]
    Shape { actual: usize, expected: usize },
    #[error("{0}")]
    Logic(String),
}

#[derive(Clone, Debug)]
struct GroupState {
    colour: Colour,
    since: Ms,
    /// When its last green (or walk, or flash) ended.
    last_green_end: Option<Ms>,
}

/// The monitor for one intersection.
#[derive(Clone, Debug)]
pub struct Monitor {
    ids: Vec<String>,
    kinds: Vec<GroupKind>,
    conflicts: Vec<Vec<bool>>,
    intergreen: Vec<Vec<Ms>>,
    min_green: Vec<Ms>,
    clearance: Vec<Ms>,
    state: Vec<GroupState>,
    tripped: Option<(Ms, Fault)>,
}

/// The flash output: vehicle heads flashing yellow, pedestrian heads dark.
pub fn flash_output(kinds: &[GroupKind]) -> Vec<Colour> {
    kinds
        .iter()
        .map(|k| match k {
            GroupKind::Vehicle => Colour::FlashingYellow,
            GroupKind::Pedestrian => Colour::Dark,
        })
        .collect()
}

fn is_flash(c: Colour) -> bool {
    matches!(c, Colour::FlashingYellow | Colour::Dark)
}

impl Monitor {
    /// A monitor that starts in flash at `now` (the start-up state of a cabinet).
    pub fn new(ix: &Intersection, now: Ms) -> Self {
        let kinds: Vec<GroupKind> = ix.groups.iter().map(|g| g.kind).collect();
        let state = flash_output(&kinds)
            .into_iter()
            .map(|c| GroupState {
                colour: c,
                since: now,
                last_green_end: None,
            })
            .collect();
        Monitor {
            ids: ix.groups.iter().map(|g| g.id.clone()).collect(),
            conflicts: ix.conflicts.clone(),
            intergreen: ix.intergreen.clone(),
            min_green: ix.groups.iter().map(|g| g.min_green).collect(),
            clearance: ix.groups.iter().map(|g| g.clearance).collect(),
            kinds,
            state,
            tripped: None,
        }
    }

    /// The fault that tripped the monitor, with its time, if it has.
    pub fn tripped(&self) -> Option<&(Ms, Fault)> {
        self.tripped.as_ref()
    }

    /// What the heads show now.
    pub fn output(&self) -> Vec<Colour> {
        self.state.iter().map(|s| s.colour).collect()
    }

    pub fn flash(&self) -> Vec<Colour> {
        flash_output(&self.kinds)
    }

    /// Trip on a fault found elsewhere (an invariant broken in the logic).
    pub fn trip(&mut self, now: Ms, fault: Fault) {
        if self.tripped.is_none() {
            self.tripped = Some((now, fault));
        }
        self.apply(now, &self.flash());
    }

    /// Clear a trip (a reset command). The heads stay in flash; the logic must run the
    /// start-up sequence (all-red first) to leave it.
    pub fn reset(&mut self) {
        self.tripped = None;
    }

    fn apply(&mut self, now: Ms, out: &[Colour]) {
        for (s, &c) in self.state.iter_mut().zip(out) {
            if s.colour != c {
                let was_green =
                    matches!(s.colour, Colour::Green | Colour::Walk) || is_flash(s.colour);
                let is_green = matches!(c, Colour::Green | Colour::Walk) || is_flash(c);
                if was_green && !is_green {
                    s.last_green_end = Some(now);
                }
                if is_flash(s.colour) && !is_flash(c) {
                    s.last_green_end = Some(now);
                }
                s.colour = c;
                s.since = now;
            }
        }
    }

    /// Check a proposed output at `now`. If it is safe it is applied and returned; otherwise the
    /// monitor trips and returns the fault, and the heads go to flash.
    pub fn check(&mut self, now: Ms, proposed: &[Colour]) -> Result<(), Fault> {
        if self.tripped.is_some() {
            // Latched: nothing but flash until reset.
            let flash = self.flash();
            if proposed == flash.as_slice() {
                return Ok(());
            }
            return Err(self
                .tripped
                .as_ref()
                .map(|t| t.1.clone())
                .unwrap_or(Fault::Logic("latched".into())));
        }
        match self.verify(now, proposed) {
            Ok(()) => {
                self.apply(now, proposed);
                Ok(())
            }
            Err(f) => {
                self.trip(now, f.clone());
                Err(f)
            }
        }
    }

    fn verify(&self, now: Ms, proposed: &[Colour]) -> Result<(), Fault> {
        let n = self.ids.len();
        if proposed.len() != n {
            return Err(Fault::Shape {
                actual: proposed.len(),
                expected: n,
            });
        }
        let all_flash = proposed.iter().zip(&self.kinds).all(|(c, _)| is_flash(*c));
        if all_flash {
            return Ok(()); // flash is the safe state
        }
        for a in 0..n {
            for b in (a + 1)..n {
                if self.conflicts[a][b]
                    && (proposed[a].is_open() || is_flash(proposed[a]))
                    && (proposed[b].is_open() || is_flash(proposed[b]))
                {
                    return Err(Fault::Conflict {
                        a: self.ids[a].clone(),
                        b: self.ids[b].clone(),
                    });
                }
            }
        }
        for (g, &new) in proposed.iter().enumerate() {
            let old = &self.state[g];
            if old.colour == new {
                continue;
            }
            let held = now - old.since;
            let id = || self.ids[g].clone();
            let seq = |what: &str| {
                Err(Fault::Sequence {
                    group: self.ids[g].clone(),
                    what: what.to_string(),
                })
            };
            match (self.kinds[g], old.colour, new) {
                // Leaving flash: to red only.
                (_, c, n) if is_flash(c) && n != Colour::Red => {
                    return seq("must go to red when leaving flash")
                }
                (_, c, Colour::Red) if is_flash(c) => {}
                (_, _, n) if is_flash(n) => {
                    return seq("cannot go to flash alone; flash is for the whole intersection")
                }
                (GroupKind::Vehicle, Colour::Green, Colour::Yellow)
                | (GroupKind::Pedestrian, Colour::Walk, Colour::PedClearance) => {
                    if held < self.min_green[g] {
                        return Err(Fault::ShortGreen {
                            group: id(),
                            actual: held,
                            required: self.min_green[g],
                        });
                    }
                }
                (GroupKind::Vehicle, Colour::Yellow, Colour::Red)
                | (GroupKind::Pedestrian, Colour::PedClearance, Colour::Red) => {
                    if held < self.clearance[g] {
                        return Err(Fault::ShortClearance {
                            group: id(),
                            actual: held,
                            required: self.clearance[g],
                        });
                    }
                }
                // Red-yellow announces a green; abandoning it (clearing to all red) is safe.
                (GroupKind::Vehicle, Colour::Red, Colour::RedYellow)
                | (GroupKind::Vehicle, Colour::RedYellow, Colour::Red) => {}
                (GroupKind::Vehicle, Colour::Red | Colour::RedYellow, Colour::Green)
                | (GroupKind::Pedestrian, Colour::Red, Colour::Walk) => {
                    for e in 0..n {
                        if e == g || !self.conflicts[e][g] {
                            continue;
                        }
                        if let Some(end) = self.state[e].last_green_end {
                            let gap = now - end;
                            if gap < self.intergreen[e][g] {
                                return Err(Fault::Intergreen {
                                    from: self.ids[e].clone(),
                                    to: id(),
                                    actual: gap,
                                    required: self.intergreen[e][g],
                                });
                            }
                        }
                    }
                }
                (_, from, to) => return seq(&format!("{from:?} to {to:?} is not a legal change")),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_network;
    use std::path::Path;

    fn single() -> Intersection {
        let net = load_network(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../intersections/networks/single.toml"
        )))
        .unwrap();
        net.intersections[0].clone()
    }

    fn idx(ix: &Intersection, id: &str) -> usize {
        ix.group(id).unwrap().0
    }

    #[test]
    fn startup_then_conflict_trips_within_one_check() {
        let ix = single();
        let mut m = Monitor::new(&ix, Ms(0));
        let red = vec![Colour::Red; ix.groups.len()];
        m.check(Ms(5000), &red).unwrap();
        let mut out = red.clone();
        out[idx(&ix, "NS")] = Colour::Green;
        m.check(Ms(15_000), &out).unwrap();
        // A logic bug puts a conflicting group green.
        let mut bad = out.clone();
        bad[idx(&ix, "EW_through")] = Colour::Green;
        let f = m.check(Ms(16_000), &bad).unwrap_err();
        assert!(matches!(f, Fault::Conflict { .. }), "{f}");
        assert_eq!(m.output(), m.flash());
        // Latched until reset, whatever the logic proposes.
        assert!(m.check(Ms(20_000), &red).is_err());
        m.reset();
        m.check(Ms(21_000), &red).unwrap();
    }

    #[test]
    fn short_yellow_short_green_and_intergreen_trip() {
        let ix = single();
        let ns = idx(&ix, "NS");
        let ew = idx(&ix, "EW_through");
        let red = vec![Colour::Red; ix.groups.len()];
        let mut m = Monitor::new(&ix, Ms(0));
        m.check(Ms(10_000), &red).unwrap();
        let mut g = red.clone();
        g[ns] = Colour::Green;
        m.check(Ms(20_000), &g).unwrap();
        // Green shorter than the minimum.
        let mut y = red.clone();
        y[ns] = Colour::Yellow;
        assert!(matches!(
            m.clone().check(Ms(22_000), &y),
            Err(Fault::ShortGreen { .. })
        ));
        // Green straight to red.
        assert!(matches!(
            m.clone().check(Ms(40_000), &red),
            Err(Fault::Sequence { .. })
        ));
        m.check(Ms(40_000), &y).unwrap();
        // Yellow cut short.
        assert!(matches!(
            m.clone().check(Ms(41_000), &red),
            Err(Fault::ShortClearance { .. })
        ));
        m.check(Ms(40_000) + ix.groups[ns].clearance, &red).unwrap();
        // Conflicting green before the intergreen has passed.
        let mut e = red.clone();
        e[ew] = Colour::Green;
        let early = Ms(40_000) + ix.intergreen[ns][ew] - Ms(100);
        assert!(matches!(
            m.clone().check(early, &e),
            Err(Fault::Intergreen { .. })
        ));
        m.check(Ms(40_000) + ix.intergreen[ns][ew], &e).unwrap();
        assert!(m.tripped().is_none());
    }
}
