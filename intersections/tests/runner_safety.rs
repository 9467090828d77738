//! The fixed-time runner, watched from outside.
//!
//! Every plan of every shipped network (and of every shipped plan file) is run by
//! `FixedTimeRunner` and sampled every 100 ms over several whole cycles, from the plan's
//! offset and from a few arbitrary start times. The independent `intersections::audit::Audit`
//! (it shares no code with `plan.rs` or the runner) checks what a conflict monitor would: conflicting groups are
//! never open together, every intergreen holds (measured on the observed colours, from the end
//! of one group's green or walk to the start of a conflicting group's), every green and walk
//! lasts its minimum, yellows and pedestrian clearances are shown in full and never skipped,
//! and `next_change` is exactly when the colours next change.

mod common;

use intersections::audit::Audit;
use intersections::load::{self, FileKind};
use intersections::model::Intersection;
use intersections::{Colour, FixedTimeRunner, Ms, Plan};

const STEP: Ms = Ms(100);

/// Run `plan` from `start` for `cycles` whole cycles, sampling every 100 ms.
fn watch(ix: &Intersection, plan: &Plan, start: Ms, cycles: i64) -> Result<(usize, usize), String> {
    let runner = FixedTimeRunner::new(ix, plan);
    let cycle = plan.cycle;
    assert_eq!(runner.cycle(), cycle);
    let first = runner.state_at(start);
    let mut obs = Audit::new(ix, &first.colours, start);
    let mut expect = first.clone();
    let end = start + Ms(cycle.0 * cycles);
    let mut now = start;
    let mut next_changes = 0;
    while now < end {
        let st = runner.state_at(now);
        if st.cycle_time != (now - plan.offset).rem_euclid(cycle) {
            return Err(format!("{now}: cycle time {} is wrong", st.cycle_time));
        }
        // The colours hold until the promised change, and change there.
        if now < expect.next_change {
            if st.colours != expect.colours {
                return Err(format!(
                    "{now}: colours changed before next_change {}",
                    expect.next_change
                ));
            }
            if st.next_change != expect.next_change {
                return Err(format!(
                    "{now}: next_change moved from {} to {}",
                    expect.next_change, st.next_change
                ));
            }
        } else {
            expect = st.clone();
        }
        if st.next_change <= now || st.next_change > now + cycle {
            return Err(format!(
                "{now}: next_change {} is not within a cycle ahead",
                st.next_change
            ));
        }
        // Exactly at the promised time, and not a millisecond earlier.
        {
            let at = runner.state_at(st.next_change);
            let before = runner.state_at(st.next_change - Ms(1));
            if before.colours != st.colours {
                return Err(format!(
                    "{now}: colours change before next_change {}",
                    st.next_change
                ));
            }
            if at.colours == st.colours {
                return Err(format!(
                    "{now}: nothing changes at next_change {} (cycle time {})",
                    st.next_change, at.cycle_time
                ));
            }
            next_changes += 1;
        }
        // Periodic.
        if runner.state_at(now + cycle).colours != st.colours {
            return Err(format!("{now}: colours differ one cycle later"));
        }
        obs.see(now, &st.colours)?;
        now += STEP;
    }
    if obs.changes == 0 && plan.stages.len() > 1 {
        return Err("no colour changed".into());
    }
    Ok((next_changes, obs.intergreens))
}

fn plans_of_shipped() -> Vec<(String, Intersection, Vec<Plan>)> {
    let mut out = Vec::new();
    for (file, kind) in common::shipped_files() {
        match kind {
            FileKind::Network => {
                let net = load::load_network(&file).unwrap_or_else(|d| panic!("{d}"));
                for ix in net.intersections {
                    let plans = ix.plans.clone();
                    out.push((common::name(&file), ix, plans));
                }
            }
            FileKind::Plans => {
                let (net, set) = load::load_plans(&file).unwrap_or_else(|d| panic!("{d}"));
                for (ixi, p) in set.plans {
                    out.push((
                        common::name(&file),
                        net.intersections[ixi.0].clone(),
                        vec![p],
                    ));
                }
            }
            FileKind::Demand => {}
        }
    }
    out
}

#[test]
fn runner_is_safe_on_every_shipped_plan() {
    let mut plans = 0;
    let mut promises = 0;
    let mut intergreens = 0;
    for (file, ix, ps) in plans_of_shipped() {
        for p in &ps {
            let starts = [
                p.offset,
                p.offset + Ms(12_300),
                Ms(1_700_000_000_000),
                Ms(-987_600),
                Ms(86_399_900),
            ];
            for (i, &s) in starts.iter().enumerate() {
                // Two cycles from each start; three from the first.
                let cycles = if i == 0 { 3 } else { 2 };
                let (n, ig) = watch(&ix, p, s, cycles)
                    .unwrap_or_else(|e| panic!("{file} {} plan {} from {s}: {e}", ix.id, p.id));
                promises += n;
                intergreens += ig;
            }
            plans += 1;
        }
    }
    assert!(plans > 0);
    assert!(promises > 0);
    assert!(intergreens > 0, "the observer measured no intergreen");
}

/// The observer is not vacuous: it catches conflicting greens and a short intergreen.
#[test]
fn observer_catches_conflicts_and_short_intergreens() {
    let (_, ix, ps) = plans_of_shipped()
        .into_iter()
        .find(|(f, _, ps)| f == "single.toml" && !ps.is_empty())
        .expect("single.toml has plans");
    assert!(!ps.is_empty());
    let g = |id: &str| ix.group(id).unwrap().0;
    let (ns, ew) = (g("NS"), g("EW_through"));
    assert!(ix.conflicts[ns][ew]);
    let n = ix.groups.len();
    let mut cols = vec![Colour::Red; n];
    let mut obs = Audit::new(&ix, &cols, Ms(0));
    cols[ew] = Colour::Green;
    obs.see(Ms(0), &cols).unwrap();
    cols[ns] = Colour::Green;
    assert!(obs
        .see(Ms(100), &cols)
        .unwrap_err()
        .contains("open together"));

    let mut cols = vec![Colour::Red; n];
    let mut obs = Audit::new(&ix, &cols, Ms(0));
    cols[ew] = Colour::Green;
    obs.see(Ms(0), &cols).unwrap();
    cols[ew] = Colour::Yellow;
    obs.see(Ms(20_000), &cols).unwrap();
    cols[ew] = Colour::Red;
    obs.see(Ms(20_000) + ix.groups[ew].clearance, &cols)
        .unwrap();
    cols[ns] = Colour::Green;
    let err = obs
        .see(Ms(20_000) + ix.groups[ew].clearance + Ms(100), &cols)
        .unwrap_err();
    assert!(err.contains("intergreen"), "{err}");
}
