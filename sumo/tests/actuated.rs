//! Greenwave's isolated actuated operation as SUMO `type="actuated"` programs
//! (`ExportOptions::operation`, `greenwave sumo export --actuated`), checked without SUMO: the
//! programs are the static programs' phases with bounds on each stage's green (its minimum from
//! the signal groups, its maximum the plan's green times the factor), every other phase fixed,
//! `max-gap` the passage time, one loop per approach lane from the detectors file; the XML
//! parses; a factor outside the cabinet's limits is an error that names the field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use intersections::messages::Operation;
use intersections::spec::{ControlKind, GroupKind};
use intersections::{Intersection, Ms, Network, Plan};
use sumo::export::{ExportError, ExportOptions, SumoFiles};
use sumo::{ImportOptions, Source};

const SHIPPED: [&str; 4] = ["single", "arterial", "grid4", "district"];

fn networks() -> Vec<(String, Network)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    let mut v: Vec<(String, Network)> = SHIPPED
        .iter()
        .map(|n| {
            let net = intersections::load::load_network(&dir.join(format!("{n}.toml")))
                .unwrap_or_else(|e| panic!("{n}: {e}"));
            (n.to_string(), net)
        })
        .collect();
    let (net, _) = simulator::synth::grid(6, 400.0, 1).expect("grid");
    v.push(("grid6x6".into(), net));
    v
}

fn actuated(factor: f64, passage_s: f64) -> ExportOptions {
    ExportOptions {
        operation: Operation::Actuated {
            max_green_factor: factor,
            passage_s,
        },
        ..ExportOptions::default()
    }
}

fn export(net: &Network, opts: &ExportOptions) -> SumoFiles {
    sumo::export(net, &[], None, opts).unwrap_or_else(|e| panic!("{}: {e}", net.name))
}

/// A stage's minimum, from its signal groups as docs/messages.md states it: the longest
/// vehicle minimum green, or pedestrian walk + clearance.
fn stage_minimum(ix: &Intersection, stage: usize) -> Ms {
    ix.stages[stage]
        .groups
        .iter()
        .map(|g| {
            let g = &ix.groups[g.0];
            match g.kind {
                GroupKind::Vehicle => g.min_green,
                GroupKind::Pedestrian => g.min_green + g.clearance,
            }
        })
        .max()
        .unwrap_or(Ms::ZERO)
}

fn secs(v: &str) -> Ms {
    Ms::from_secs_f64(v.parse().expect("a number")).expect("a time")
}

/// A parsed `<tlLogic>`: type, offset, params, and per phase (duration, minDur, maxDur, state).
struct TlLogic {
    kind: String,
    offset: Ms,
    params: BTreeMap<String, String>,
    phases: Vec<(Ms, Option<Ms>, Option<Ms>, String)>,
}

fn tl_logics(xml: &str) -> BTreeMap<String, TlLogic> {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("not XML: {e}"));
    doc.descendants()
        .filter(|n| n.has_tag_name("tlLogic"))
        .map(|n| {
            let params = n
                .children()
                .filter(|c| c.has_tag_name("param"))
                .map(|c| {
                    (
                        c.attribute("key").unwrap().to_string(),
                        c.attribute("value").unwrap().to_string(),
                    )
                })
                .collect();
            let phases = n
                .children()
                .filter(|c| c.has_tag_name("phase"))
                .map(|c| {
                    (
                        secs(c.attribute("duration").unwrap()),
                        c.attribute("minDur").map(secs),
                        c.attribute("maxDur").map(secs),
                        c.attribute("state").unwrap().to_string(),
                    )
                })
                .collect();
            (
                n.attribute("id").unwrap().to_string(),
                TlLogic {
                    kind: n.attribute("type").unwrap().to_string(),
                    offset: secs(n.attribute("offset").unwrap()),
                    params,
                    phases,
                },
            )
        })
        .collect()
}

fn loop_ids(detectors: &str) -> BTreeSet<String> {
    let doc = roxmltree::Document::parse(detectors).expect("detectors XML");
    doc.descendants()
        .filter(|n| n.has_tag_name("inductionLoop"))
        .map(|n| n.attribute("id").unwrap().to_string())
        .collect()
}

fn plan_of(ix: &Intersection) -> &Plan {
    ix.scheduled_plan(Ms::ZERO).expect("a plan in force")
}

fn fixed(ph: &(Ms, Option<Ms>, Option<Ms>, String)) -> bool {
    ph.1 == Some(ph.0) && ph.2 == Some(ph.0)
}

#[test]
fn stage_greens_carry_their_minimum_and_maximum_and_clearances_stay_fixed() {
    for (name, net) in networks() {
        let stat = export(&net, &ExportOptions::default());
        let act = export(&net, &actuated(2.0, 3.0));
        assert!(
            !act.notes.iter().any(|n| n.contains("not actuated")),
            "{name}: {:?}",
            act.notes
        );
        assert_eq!(stat.programs.len(), act.programs.len(), "{name}");
        for (s, a) in stat.programs.iter().zip(&act.programs) {
            let ix = &net.intersections[a.intersection.0];
            let plan = plan_of(ix);
            // The same phases: states and (the stage greens aside) durations; no `next`
            // lists (stage skipping is `skip_stages`, tested below).
            assert_eq!(s.phases.len(), a.phases.len(), "{name} {}", ix.id);
            assert!(
                a.phases.iter().all(|p| p.next.is_none()),
                "{name} {}",
                ix.id
            );
            for (ps, pa) in s.phases.iter().zip(&a.phases) {
                assert_eq!(ps.state, pa.state, "{name} {}", ix.id);
                assert_eq!(ps.stage, pa.stage, "{name} {}", ix.id);
                assert_eq!(ps.bounds, None);
            }
            // Every stage of these plans is one phase of its own.
            let tagged: Vec<usize> = a.phases.iter().filter_map(|p| p.stage).collect();
            assert_eq!(
                tagged,
                (0..plan.stages.len()).collect::<Vec<_>>(),
                "{name} {}: one green phase per stage, in the plan's order",
                ix.id
            );
            for p in &a.phases {
                match p.stage {
                    Some(k) => {
                        let st = &plan.stages[k];
                        let min = stage_minimum(ix, st.stage);
                        let max = Ms((st.green.0 as f64 * 2.0).round() as i64).max(min);
                        assert_eq!(p.bounds, Some((min, max)), "{name} {} stage {k}", ix.id);
                        assert_eq!(p.duration, st.green.max(min), "{name} {}", ix.id);
                        assert!(min <= p.duration && p.duration <= max);
                        // It is the stage's green: the stage's vehicle groups show green.
                        for c in act
                            .connection_list
                            .iter()
                            .filter(|c| c.intersection == a.intersection)
                        {
                            let g = ix.movements[c.movement].group.expect("grouped");
                            if ix.stages[st.stage].groups.contains(&g) {
                                let ch = p.state.as_bytes()[c.link_index.expect("index")];
                                assert!(ch == b'G' || ch == b'g', "{name} {}", ix.id);
                            }
                        }
                    }
                    None => assert_eq!(p.bounds, None, "{name} {}", ix.id),
                }
            }
            let a_act = a.actuation.as_ref().expect("actuated");
            assert_eq!(a_act.passage, Ms::from_s(3));
            // The plan's offset stays in the program (the net's static one uses it); the
            // actuated tlLogic is written with none (isolated operation has no cycle).
            assert_eq!(a.offset, plan.offset);
        }
    }
}

#[test]
fn the_additional_file_parses_as_actuated_programs_on_the_detectors_loops() {
    for (name, net) in networks() {
        let f = export(&net, &actuated(1.5, 2.5));
        let loops = loop_ids(&f.detectors);
        let add = tl_logics(&f.tls_additional);
        let tll = tl_logics(&f.tll);
        let signalised = net
            .intersections
            .iter()
            .filter(|ix| ix.control == ControlKind::Signal)
            .count();
        assert_eq!(add.len(), signalised, "{name}");
        for p in &f.programs {
            let ix = &net.intersections[p.intersection.0];
            let plan = plan_of(ix);
            let t = &add[&ix.id];
            assert_eq!(t.kind, "actuated", "{name} {}", ix.id);
            assert_eq!(t.offset, Ms::ZERO);
            // The net's own program stays the static plan.
            assert_eq!(tll[&ix.id].kind, "static");
            assert_eq!(tll[&ix.id].offset, plan.offset);
            assert!(tll[&ix.id].phases.iter().all(|p| p.1.is_none()));
            assert_eq!(t.params.get("max-gap").map(String::as_str), Some("2.5"));
            // One param per approach lane of a signalised movement: its stop-line loop (else
            // advance), which exists in the detectors file, or NO_DETECTOR.
            let mut lanes = BTreeSet::new();
            for m in ix.movements.iter().filter(|m| m.group.is_some()) {
                for l in &m.lanes {
                    lanes.insert(format!("{}_{l}", net.links[m.from.0].id));
                }
            }
            let keys: BTreeSet<String> = t
                .params
                .keys()
                .filter(|k| *k != "max-gap")
                .cloned()
                .collect();
            assert_eq!(keys, lanes, "{name} {}", ix.id);
            for (lane, det) in t.params.iter().filter(|(k, _)| *k != "max-gap") {
                if det == "NO_DETECTOR" {
                    assert!(
                        !ix.detectors.iter().any(|d| {
                            format!("{}_{}", net.links[d.link.0].id, d.lane) == *lane
                                && d.kind != intersections::spec::DetectorKind::Exit
                        }),
                        "{name} {}: lane {lane} has a loop",
                        ix.id
                    );
                    continue;
                }
                assert!(loops.contains(det), "{name}: unknown loop {det}");
                let d = ix
                    .detectors
                    .iter()
                    .find(|d| format!("{}.{}", ix.id, d.id) == *det)
                    .expect("the intersection's own detector");
                assert_eq!(format!("{}_{}", net.links[d.link.0].id, d.lane), *lane);
                let has_stop = ix.detectors.iter().any(|o| {
                    o.link == d.link
                        && o.lane == d.lane
                        && o.kind == intersections::spec::DetectorKind::StopLine
                });
                let want = if has_stop {
                    intersections::spec::DetectorKind::StopLine
                } else {
                    intersections::spec::DetectorKind::Advance
                };
                assert_eq!(d.kind, want, "{name} {}: {lane}", ix.id);
            }
            // Phases as the program says; the stage greens bounded, everything else fixed,
            // and a phase with a yellow or red-yellow is never a stage's green.
            assert_eq!(t.phases.len(), p.phases.len());
            for (x, ph) in t.phases.iter().zip(&p.phases) {
                assert_eq!(x.0, ph.duration);
                assert_eq!(x.3, ph.state);
                let (min, max) = (x.1.expect("minDur"), x.2.expect("maxDur"));
                assert!(min <= x.0 && x.0 <= max, "{name} {}", ix.id);
                if x.3.contains(['y', 'u']) || !x.3.contains(['G', 'g']) {
                    assert!(fixed(x), "{name} {}: clearance {x:?} not fixed", ix.id);
                }
                if ph.stage.is_none() {
                    assert!(fixed(x), "{name} {}: {x:?}", ix.id);
                }
            }
        }
    }
}

#[test]
fn a_factor_or_passage_outside_the_cabinets_limits_is_an_error_naming_the_field() {
    let (_, net) = networks().remove(0);
    for (factor, passage, field) in [
        (5.0, 3.0, "operation.max_green_factor: 5 is outside 1 to 3"),
        (
            0.5,
            3.0,
            "operation.max_green_factor: 0.5 is outside 1 to 3",
        ),
        (2.0, 0.5, "operation.passage_s: 0.5 s is outside 1 to 10 s"),
    ] {
        let e = sumo::export(&net, &[], None, &actuated(factor, passage)).unwrap_err();
        assert!(matches!(e, ExportError::Operation { .. }), "{e:?}");
        assert!(e.to_string().starts_with(field), "{e}");
    }
    // The limits themselves are fine.
    for factor in [1.0, 3.0] {
        export(&net, &actuated(factor, 1.0));
    }
}

/// The actuated programs on the netgenerate fixtures' own traffic lights (`--onto`): SUMO's
/// lanes name the import's default loops (a stop-line loop on every signalised approach
/// lane), the bounds are the export's.
#[test]
fn actuated_programs_map_onto_sumos_own_lights_with_their_lanes() {
    for name in ["grid3", "spider", "rand"] {
        let netf = format!("{name}.net.xml");
        let nt = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data")
                .join(&netf),
        )
        .expect("fixture");
        let src = Source {
            file: &netf,
            text: &nt,
        };
        let imp = sumo::import(
            src,
            &[],
            &[],
            &ImportOptions {
                name: name.into(),
                slice_s: 900.0,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let toml = sumo::import::network_toml(&imp.network).unwrap();
        let net = intersections::load::network_from_str("n.toml", &toml).unwrap();
        let stat = export(&net, &ExportOptions::default());
        let f = export(&net, &actuated(2.0, 3.0));
        let onto = |files: &SumoFiles| {
            sumo::programs_onto(
                src,
                &net,
                &files.programs,
                &files.connection_list,
                "greenwave",
            )
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let (os, oa) = (onto(&stat), onto(&f));
        assert_eq!(os.mapped, oa.mapped, "{name}");
        let loops = loop_ids(&f.detectors);
        let (ts, ta) = (tl_logics(&os.additional), tl_logics(&oa.additional));
        // SUMO's controlled lanes per traffic light.
        let doc = roxmltree::Document::parse(&nt).unwrap();
        let mut controlled: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for c in doc.descendants().filter(|n| n.has_tag_name("connection")) {
            if let (Some(tl), Some(_)) = (c.attribute("tl"), c.attribute("linkIndex")) {
                let from = c.attribute("from").unwrap();
                if !from.starts_with(':') {
                    controlled
                        .entry(tl)
                        .or_default()
                        .insert(format!("{from}_{}", c.attribute("fromLane").unwrap()));
                }
            }
        }
        for id in &oa.mapped {
            let (s, a) = (&ts[id], &ta[id]);
            assert_eq!(s.kind, "static");
            assert_eq!(a.kind, "actuated", "{name} {id}");
            let states = |t: &TlLogic| t.phases.iter().map(|p| p.3.clone()).collect::<Vec<_>>();
            assert_eq!(states(s), states(a), "{name} {id}: the same phases");
            let lanes: BTreeSet<String> = a
                .params
                .keys()
                .filter(|k| *k != "max-gap")
                .cloned()
                .collect();
            assert_eq!(lanes, controlled[id.as_str()], "{name} {id}");
            let mut with_loop = 0;
            for (lane, det) in a.params.iter().filter(|(k, _)| *k != "max-gap") {
                if det != "NO_DETECTOR" {
                    assert!(loops.contains(det), "{name} {id}: {lane} -> unknown {det}");
                    assert!(det.contains("_stop_"), "{name} {id}: {det}");
                    with_loop += 1;
                }
            }
            assert!(with_loop > 0, "{name} {id}: no loop at all");
            let ix = net.intersections.iter().find(|ix| ix.id == *id).unwrap();
            let p = f
                .programs
                .iter()
                .find(|p| net.intersections[p.intersection.0].id == *id)
                .unwrap();
            for (x, ph) in a.phases.iter().zip(&p.phases) {
                match ph.bounds {
                    Some((min, max)) => {
                        assert_eq!((x.1, x.2), (Some(min), Some(max)), "{name} {id}")
                    }
                    None => assert!(fixed(x), "{name} {id}"),
                }
            }
            let stages_bounded = p.phases.iter().filter(|ph| ph.stage.is_some()).count();
            assert_eq!(stages_bounded, plan_of(ix).stages.len(), "{name} {id}");
        }
    }
}

/// Stage skipping tried against the safety rules: in every actuated program of three stages
/// or more, each stage's green lists a transition to every other stage (the plan's own next
/// first); following any of them reaches that stage's green through fixed phases only; along
/// the way no two conflicting vehicle groups are green together, a group whose green ends
/// shows yellow for at least its clearance, and from the end of its green to the start of any
/// conflicting group's the intergreen passes, however long the first green ran. The `next`
/// lists are in the XML as in the programs. (`ExportOptions::skip_stages`; off, the programs
/// are those without `next` lists, above.)
#[test]
fn stage_skipping_reaches_every_stage_through_full_clearances() {
    let mut skipping = 0;
    for (name, net) in networks() {
        let plain = export(&net, &actuated(2.0, 3.0));
        let f = export(
            &net,
            &ExportOptions {
                skip_stages: true,
                ..actuated(2.0, 3.0)
            },
        );
        assert!(
            !f.notes.iter().any(|n| n.contains("without stage skipping")),
            "{name}: {:?}",
            f.notes
        );
        let add = tl_logics(&f.tls_additional);
        let doc = roxmltree::Document::parse(&f.tls_additional).unwrap();
        for p in &f.programs {
            let ix = &net.intersections[p.intersection.0];
            let plan = plan_of(ix);
            let n = plan.stages.len();
            // The XML's next lists, phase by phase.
            let xml_next: Vec<Option<String>> = doc
                .descendants()
                .find(|t| t.has_tag_name("tlLogic") && t.attribute("id") == Some(ix.id.as_str()))
                .unwrap()
                .children()
                .filter(|c| c.has_tag_name("phase"))
                .map(|c| c.attribute("next").map(str::to_string))
                .collect();
            assert_eq!(xml_next.len(), add[&ix.id].phases.len());
            for (ph, x) in p.phases.iter().zip(&xml_next) {
                let want = ph.next.as_ref().map(|v| {
                    v.iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                });
                assert_eq!(&want, x, "{name} {}", ix.id);
            }
            let without = plain
                .programs
                .iter()
                .find(|q| q.intersection == p.intersection)
                .unwrap();
            if n < 3 {
                assert_eq!(p, without, "{name} {}: two stages, nothing to skip", ix.id);
                continue;
            }
            skipping += 1;
            // The program without skipping first, its greens now with `next` lists.
            for (q, w) in p.phases.iter().zip(&without.phases) {
                assert_eq!(
                    (&q.state, q.duration, q.bounds),
                    (&w.state, w.duration, w.bounds)
                );
            }
            // The vehicle group of each state column.
            let mut group_of = vec![None; p.phases[0].state.len()];
            for c in f
                .connection_list
                .iter()
                .filter(|c| c.intersection == p.intersection)
            {
                group_of[c.link_index.unwrap()] = ix.movements[c.movement].group;
            }
            let green = |state: &str, g: intersections::GroupIdx| {
                state
                    .bytes()
                    .zip(&group_of)
                    .any(|(ch, og)| *og == Some(g) && (ch == b'G' || ch == b'g'))
            };
            let yellow = |state: &str, g: intersections::GroupIdx| {
                state
                    .bytes()
                    .zip(&group_of)
                    .any(|(ch, og)| *og == Some(g) && ch == b'y')
            };
            let greens: Vec<usize> = (0..n)
                .map(|k| p.phases.iter().position(|ph| ph.stage == Some(k)).unwrap())
                .collect();
            for a in 0..n {
                let next = p.phases[greens[a]].next.as_ref().expect("a next list");
                assert_eq!(next.len(), n - 1, "{name} {} stage {a}", ix.id);
                assert_eq!(next[0], (greens[a] + 1) % p.phases.len());
                let mut reached = BTreeSet::new();
                for &start in next {
                    // Walk the chain: fixed phases until a stage's green.
                    let mut chain = Vec::new();
                    let mut at = start;
                    while p.phases[at].stage.is_none() {
                        let ph = &p.phases[at];
                        assert!(
                            ph.bounds.is_none(),
                            "{name} {}: a transition phase is fixed",
                            ix.id
                        );
                        chain.push(ph);
                        at = match &ph.next {
                            Some(v) => {
                                assert_eq!(v.len(), 1, "{name} {}", ix.id);
                                v[0]
                            }
                            None => (at + 1) % p.phases.len(),
                        };
                        assert!(
                            chain.len() < 20,
                            "{name} {}: a transition that never ends",
                            ix.id
                        );
                    }
                    let b = p.phases[at].stage.unwrap();
                    assert_ne!(b, a, "{name} {}", ix.id);
                    reached.insert(b);
                    let from = &p.phases[greens[a]].state;
                    let to = &p.phases[at].state;
                    // Along the chain: never two conflicting groups green together.
                    for ph in &chain {
                        for e in 0..ix.groups.len() {
                            for s2 in 0..ix.groups.len() {
                                if ix.conflicts[e][s2] {
                                    let (ge, gs) =
                                        (intersections::GroupIdx(e), intersections::GroupIdx(s2));
                                    assert!(
                                        !(green(&ph.state, ge) && green(&ph.state, gs)),
                                        "{name} {}: {} and {} green together",
                                        ix.id,
                                        ix.groups[e].id,
                                        ix.groups[s2].id
                                    );
                                }
                            }
                        }
                    }
                    let total = chain.iter().fold(Ms::ZERO, |t, ph| t + ph.duration);
                    for e in 0..ix.groups.len() {
                        let ge = intersections::GroupIdx(e);
                        if !green(from, ge) || green(to, ge) {
                            continue;
                        }
                        // e's green ends within the chain (or at its start).
                        let mut t = Ms::ZERO;
                        let mut end = None;
                        let mut shown_yellow = Ms::ZERO;
                        for ph in &chain {
                            if end.is_none() && !green(&ph.state, ge) {
                                end = Some(t);
                            }
                            if yellow(&ph.state, ge) {
                                shown_yellow += ph.duration;
                            }
                            t += ph.duration;
                        }
                        let end = end.unwrap_or(total);
                        assert!(
                            shown_yellow >= ix.groups[e].clearance,
                            "{name} {}: {} shows yellow {shown_yellow}, needs {}",
                            ix.id,
                            ix.groups[e].id,
                            ix.groups[e].clearance
                        );
                        for s2 in 0..ix.groups.len() {
                            let gs = intersections::GroupIdx(s2);
                            if ix.conflicts[e][s2] && green(to, gs) {
                                assert!(
                                    total - end >= ix.intergreen[e][s2],
                                    "{name} {}: {} -> {} after {}, intergreen {}",
                                    ix.id,
                                    ix.groups[e].id,
                                    ix.groups[s2].id,
                                    total - end,
                                    ix.intergreen[e][s2]
                                );
                            }
                        }
                    }
                }
                let others: BTreeSet<usize> = (0..n).filter(|&k| k != a).collect();
                assert_eq!(reached, others, "{name} {} from stage {a}", ix.id);
            }
        }
    }
    assert!(skipping >= 6, "programs with stage skipping: {skipping}");
}
