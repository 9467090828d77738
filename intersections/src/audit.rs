//! An independent safety audit of signal outputs: an observer that watches the colours a
//! controller (or anything) shows over time and reports the first broken rule. It shares no
//! code with the validator, the runner, the machine or the controller's monitor, so tests use
//! it as a second opinion on all of them (and on the simulator's control policies).
//!
//! Rules (what a conflict monitor checks):
//! - conflicting groups are never open (green, yellow, walk, clearance) together;
//! - a group starts green (walk) only after every conflicting group's intergreen since its
//!   last green (walk, or flash) ended;
//! - a green (walk) lasts its minimum and ends through its full yellow (pedestrian clearance);
//! - only legal changes: red to green, walk or red-yellow; red-yellow to green (or back to
//!   red); green to yellow; yellow to red; walk to clearance; clearance to red; flash to red;
//!   and the whole intersection to flash at any time.
//!
//! What was shown before the audit began is unknown: the first interval of each group is not
//! held to its minimum.

use crate::model::Intersection;
use crate::runner::Colour;
use crate::time::Ms;

fn is_open(c: Colour) -> bool {
    matches!(
        c,
        Colour::Green | Colour::Yellow | Colour::Walk | Colour::PedClearance
    )
}
fn is_flash(c: Colour) -> bool {
    matches!(c, Colour::FlashingYellow | Colour::Dark)
}
fn is_go(c: Colour) -> bool {
    matches!(c, Colour::Green | Colour::Walk)
}

/// Watches one intersection's outputs.
#[derive(Clone, Debug)]
pub struct Audit<'a> {
    ix: &'a Intersection,
    colours: Vec<Colour>,
    /// When the current colour began (`None`: before the audit started).
    since: Vec<Option<Ms>>,
    go_end: Vec<Option<Ms>>,
    /// Colour changes seen so far.
    pub changes: usize,
    /// Intergreens measured so far (both ends seen).
    pub intergreens: usize,
}

impl<'a> Audit<'a> {
    /// Start watching with the outputs shown at `now`.
    pub fn new(ix: &'a Intersection, first: &[Colour], _now: Ms) -> Self {
        Audit {
            ix,
            colours: first.to_vec(),
            since: vec![None; first.len()],
            go_end: vec![None; first.len()],
            changes: 0,
            intergreens: 0,
        }
    }

    /// The outputs shown from `now` on. Times must not go backwards.
    pub fn see(&mut self, now: Ms, out: &[Colour]) -> Result<(), String> {
        let ix = self.ix;
        let n = out.len();
        if n != self.colours.len() {
            return Err(format!(
                "{now}: {n} outputs for {} signal groups",
                self.colours.len()
            ));
        }
        let all_flash = out.iter().all(|c| is_flash(*c));
        for a in 0..n {
            for b in (a + 1)..n {
                if ix.conflicts[a][b] && is_open(out[a]) && is_open(out[b]) {
                    return Err(format!(
                        "{now}: conflicting {} and {} open together",
                        ix.groups[a].id, ix.groups[b].id
                    ));
                }
            }
        }
        for g in 0..n {
            let (old, new) = (self.colours[g], out[g]);
            if old == new {
                continue;
            }
            self.changes += 1;
            let held = self.since[g].map(|s| now - s);
            let grp = &ix.groups[g];
            if !all_flash {
                use Colour::*;
                match (old, new) {
                    (o, Red) if is_flash(o) => {}
                    (o, n) if is_flash(o) => {
                        return Err(format!("{now}: {} left flash to {n:?}", grp.id))
                    }
                    (Green, Yellow) | (Walk, PedClearance) => {
                        if let Some(h) = held.filter(|h| *h < grp.min_green) {
                            return Err(format!(
                                "{now}: {} green {h} shorter than {}",
                                grp.id, grp.min_green
                            ));
                        }
                    }
                    (Yellow, Red) | (PedClearance, Red) => {
                        if let Some(h) = held.filter(|h| *h < grp.clearance) {
                            return Err(format!(
                                "{now}: {} clearance {h} shorter than {}",
                                grp.id, grp.clearance
                            ));
                        }
                    }
                    (Red, Green)
                    | (Red, Walk)
                    | (Red, RedYellow)
                    | (RedYellow, Green)
                    | (RedYellow, Red) => {}
                    (Green, Red) | (Walk, Red) => {
                        return Err(format!("{now}: {} skipped its clearance", grp.id))
                    }
                    (o, n) => return Err(format!("{now}: {} went from {o:?} to {n:?}", grp.id)),
                }
                if is_go(new) && !is_go(old) {
                    for e in 0..n {
                        if e == g || !ix.conflicts[e][g] {
                            continue;
                        }
                        if let Some(end) = self.go_end[e] {
                            self.intergreens += 1;
                            if now - end < ix.intergreen[e][g] {
                                return Err(format!(
                                    "{now}: intergreen {} -> {} is {}, needs {}",
                                    ix.groups[e].id,
                                    grp.id,
                                    now - end,
                                    ix.intergreen[e][g]
                                ));
                            }
                        }
                    }
                }
            }
            if (is_go(old) || is_flash(old)) && !(is_go(new) || is_flash(new)) {
                self.go_end[g] = Some(now);
            }
            self.colours[g] = new;
            self.since[g] = Some(now);
        }
        Ok(())
    }
}
