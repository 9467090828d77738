//! An independent safety audit of signal outputs: an observer that watches the colours a
//! controller (or anything) shows over time and reports the first broken rule. It shares no
//! code with the validator, the runner, the machine or the controller's monitor, so tests use
//! it as a second opinion on all of them, and the simulator can audit what it is told to show.
//!
//! Rules: conflicting groups never open (green, yellow, walk, clearance) together; a group
//! starts green (walk) only after every conflicting group's intergreen since its last green
//! (walk, or flash) ended; a green (walk) lasts its minimum and ends through its full yellow
//! (pedestrian clearance); flash is left through red. A change to flash for the whole
//! intersection is always allowed.

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
    since: Vec<Ms>,
    go_end: Vec<Option<Ms>>,
    /// Changes seen so far.
    pub changes: usize,
}

impl<'a> Audit<'a> {
    /// Start watching with the outputs shown at `now`.
    pub fn new(ix: &'a Intersection, first: &[Colour], now: Ms) -> Self {
        Audit {
            ix,
            colours: first.to_vec(),
            since: vec![now; first.len()],
            go_end: vec![None; first.len()],
            changes: 0,
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
            let held = now - self.since[g];
            let grp = &ix.groups[g];
            if !all_flash {
                match (old, new) {
                    (o, n) if is_flash(o) && n != Colour::Red => {
                        return Err(format!("{now}: {} left flash to {n:?}", grp.id))
                    }
                    (Colour::Green, Colour::Red) | (Colour::Walk, Colour::Red) => {
                        return Err(format!("{now}: {} skipped its clearance", grp.id))
                    }
                    (Colour::Green, Colour::Yellow) | (Colour::Walk, Colour::PedClearance)
                        if held < grp.min_green =>
                    {
                        return Err(format!(
                            "{now}: {} green {held} shorter than {}",
                            grp.id, grp.min_green
                        ))
                    }
                    (Colour::Yellow, Colour::Red) | (Colour::PedClearance, Colour::Red)
                        if held < grp.clearance =>
                    {
                        return Err(format!(
                            "{now}: {} clearance {held} shorter than {}",
                            grp.id, grp.clearance
                        ))
                    }
                    _ => {}
                }
                if is_go(new) && !is_go(old) {
                    for e in 0..n {
                        if e == g || !ix.conflicts[e][g] {
                            continue;
                        }
                        if let Some(end) = self.go_end[e] {
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
            self.since[g] = now;
        }
        Ok(())
    }
}
