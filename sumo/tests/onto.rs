//! Greenwave's plans as programs of the SUMO network a network was imported from
//! (`sumo::programs_onto`, `greenwave sumo export --onto`), checked against the netgenerate
//! fixtures and the OpenStreetMap one, read independently: every traffic light Greenwave
//! signalises gets a program of SUMO's size, every imported connection is green somewhere in
//! the cycle, links of one movement show the same colours, turnarounds show their lane's left
//! turn as yielding (red where there is none), crossings walk, and no two links are green
//! together that SUMO's own program never shows green together (the stages come from SUMO's
//! phases). The lights imported without signals keep SUMO's program.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use intersections::messages::Operation;
use intersections::spec::ControlKind;
use sumo::{ExportOptions, ImportOptions, Source};

fn text(f: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(f);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{f}: {e}"))
}

struct Link {
    from: String,
    to: String,
    from_lane: String,
    dir: String,
    uturn: bool,
    /// A walking area onto a pedestrian crossing.
    crossing: bool,
}

/// Per traffic light: its links by linkIndex, and the state strings of its (first) program.
fn sumo_lights(net: &str) -> BTreeMap<String, (BTreeMap<usize, Link>, Vec<String>)> {
    let doc = roxmltree::Document::parse(net).expect("xml");
    let mut out: BTreeMap<String, (BTreeMap<usize, Link>, Vec<String>)> = BTreeMap::new();
    for n in doc.root_element().children().filter(|n| n.is_element()) {
        match n.tag_name().name() {
            "tlLogic" => {
                let id = n.attribute("id").unwrap().to_string();
                let e = out.entry(id).or_default();
                if e.1.is_empty() {
                    e.1 = n
                        .children()
                        .filter(|c| c.has_tag_name("phase"))
                        .map(|c| c.attribute("state").unwrap().to_string())
                        .collect();
                }
            }
            "connection" => {
                if let (Some(tl), Some(k)) = (n.attribute("tl"), n.attribute("linkIndex")) {
                    out.entry(tl.to_string()).or_default().0.insert(
                        k.parse().unwrap(),
                        Link {
                            from: n.attribute("from").unwrap().into(),
                            to: n.attribute("to").unwrap().into(),
                            from_lane: n.attribute("fromLane").unwrap_or("").into(),
                            dir: n.attribute("dir").unwrap_or("").into(),
                            uturn: n.attribute("dir") == Some("t"),
                            crossing: n.attribute("from").unwrap().starts_with(':'),
                        },
                    );
                }
            }
            _ => {}
        }
    }
    out
}

fn green(c: char) -> bool {
    matches!(c, 'G' | 'g' | 's')
}

/// The programs of an `.add.xml`: id -> (phase durations, states).
fn programs(add: &str) -> BTreeMap<String, (Vec<f64>, Vec<String>)> {
    let doc = roxmltree::Document::parse(add).expect("onto xml");
    doc.descendants()
        .filter(|n| n.has_tag_name("tlLogic"))
        .map(|n| {
            let ph: Vec<_> = n.children().filter(|c| c.has_tag_name("phase")).collect();
            (
                n.attribute("id").unwrap().to_string(),
                (
                    ph.iter()
                        .map(|p| p.attribute("duration").unwrap().parse().unwrap())
                        .collect(),
                    ph.iter()
                        .map(|p| p.attribute("state").unwrap().to_string())
                        .collect(),
                ),
            )
        })
        .collect()
}

#[test]
fn plans_map_onto_the_sumo_networks_own_traffic_lights() {
    // town: the OpenStreetMap network, whose lights each span a junction cluster that
    // netconvert joined (both carriageways of a dual carriageway). town and grid2ped have
    // pedestrian crossings, imported as pedestrian groups: their programs are checked static
    // and actuated.
    for (name, actuated) in [
        ("grid3", false),
        ("spider", false),
        ("rand", false),
        ("town", false),
        ("grid2ped", false),
        ("town", true),
        ("grid2ped", true),
    ] {
        let netf = format!("{name}.net.xml");
        let nt = text(&netf);
        let imp = sumo::import(
            Source {
                file: &netf,
                text: &nt,
            },
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
        let opts = ExportOptions {
            operation: if actuated {
                Operation::Actuated {
                    max_green_factor: 2.0,
                    passage_s: 3.0,
                }
            } else {
                Operation::Coordinated
            },
            ..ExportOptions::default()
        };
        let files = sumo::export(&net, &[], None, &opts).unwrap();
        let onto = sumo::programs_onto(
            Source {
                file: &netf,
                text: &nt,
            },
            &net,
            &files.programs,
            &files.connection_list,
            "greenwave",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let ours = programs(&onto.additional);
        let lights = sumo_lights(&nt);
        assert!(
            onto.notes.is_empty(),
            "{name}: every crossing walks: {:?}",
            onto.notes
        );
        if actuated {
            // The crossings walk in fixed phases at the start of their stage's green; then the
            // stage's actuated phase runs with them red, and before any vehicle's colour
            // changes at least as much minimum time passes as the crossing's clearance in
            // the static program of the same plan (from its walk's end to its stage's end).
            let static_files = sumo::export(&net, &[], None, &ExportOptions::default()).unwrap();
            let static_onto = sumo::programs_onto(
                Source {
                    file: &netf,
                    text: &nt,
                },
                &net,
                &static_files.programs,
                &static_files.connection_list,
                "greenwave",
            )
            .unwrap();
            let statics = programs(&static_onto.additional);
            let doc = roxmltree::Document::parse(&onto.additional).unwrap();
            for tl in doc.descendants().filter(|n| n.has_tag_name("tlLogic")) {
                let id = tl.attribute("id").unwrap();
                let (links, _) = &lights[id];
                let vehicles = |st: &str| -> String {
                    links
                        .iter()
                        .filter(|(_, l)| !l.crossing)
                        .map(|(&k, _)| st.chars().nth(k).unwrap())
                        .collect()
                };
                // The static program: each crossing's clearance.
                let (sd, ss) = &statics[id];
                let mut clearance: BTreeMap<usize, f64> = BTreeMap::new();
                for i in 0..ss.len() {
                    for (&k, _) in links.iter().filter(|(_, l)| l.crossing) {
                        let next = (i + 1) % ss.len();
                        if ss[i].chars().nth(k) == Some('G') && ss[next].chars().nth(k) == Some('r')
                        {
                            let mut c = 0.0;
                            let mut j = next;
                            while vehicles(&ss[j]) == vehicles(&ss[i]) {
                                c += sd[j];
                                j = (j + 1) % ss.len();
                            }
                            clearance.insert(k, c);
                        }
                    }
                }
                let ph: Vec<(String, f64, f64)> = tl
                    .children()
                    .filter(|c| c.has_tag_name("phase"))
                    .map(|c| {
                        (
                            c.attribute("state").unwrap().to_string(),
                            c.attribute("minDur").unwrap().parse().unwrap(),
                            c.attribute("maxDur").unwrap().parse().unwrap(),
                        )
                    })
                    .collect();
                let mut stops = 0;
                for i in 0..ph.len() {
                    let next = (i + 1) % ph.len();
                    for (&k, l) in links.iter().filter(|(_, l)| l.crossing) {
                        let walks = ph[i].0.chars().nth(k) == Some('G');
                        if !walks {
                            continue;
                        }
                        // A walking phase is fixed, and vehicles are green in it.
                        assert_eq!(
                            ph[i].1, ph[i].2,
                            "{name} {id}: crossing {k} walks in an actuated phase"
                        );
                        if ph[next].0.chars().nth(k) != Some('r') {
                            continue;
                        }
                        stops += 1;
                        let mut min = 0.0;
                        let mut j = next;
                        while vehicles(&ph[j].0) == vehicles(&ph[i].0) {
                            min += ph[j].1;
                            j = (j + 1) % ph.len();
                        }
                        let want = clearance[&k];
                        assert!(
                            min >= want - 1e-9,
                            "{name} {id}: crossing {k} ({}) stops walking {min} s of minimum before the vehicles change, its clearance is {want} s",
                            l.to
                        );
                    }
                }
                assert!(stops > 0, "{name} {id}: no crossing walks");
            }
        }
        let signalised: BTreeSet<&str> = net
            .intersections
            .iter()
            .filter(|ix| ix.control == ControlKind::Signal)
            .map(|ix| ix.id.as_str())
            .collect();
        assert_eq!(
            ours.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            signalised,
            "{name}: exactly the signalised intersections get Greenwave's program"
        );
        assert_eq!(onto.mapped.len(), ours.len());
        assert_eq!(onto.kept.len(), lights.len() - ours.len(), "{name}");
        for (id, (durations, states)) in &ours {
            let (links, sumo_states) = &lights[id];
            let size = sumo_states[0].len();
            let ch = |s: &str, k: usize| s.chars().nth(k).unwrap();
            assert!(states.iter().all(|s| s.len() == size), "{name} {id}");
            let cycle: f64 = durations.iter().sum();
            let plan = net.intersections.iter().find(|ix| ix.id == *id).unwrap();
            let want = plan.scheduled_plan(intersections::Ms::ZERO).unwrap().cycle;
            assert!((cycle - want.as_secs_f64()).abs() < 1e-6, "{name} {id}");
            let mut by_movement: BTreeMap<(&str, &str), String> = BTreeMap::new();
            let column = |k: usize| -> String { states.iter().map(|s| ch(s, k)).collect() };
            for (&k, l) in links {
                let column = column(k);
                if l.crossing {
                    // A crossing walks with the stages SUMO walks it with (checked below),
                    // and only in full: `G` or red.
                    assert!(
                        column.chars().all(|c| c == 'G' || c == 'r'),
                        "{name} {id} crossing {k}: {column}"
                    );
                    assert!(
                        column.contains('G'),
                        "{name} {id}: crossing {k} ({}) never walks",
                        l.to
                    );
                    continue;
                }
                if l.uturn {
                    // The left turn's colour from its lane, yielding; red where none.
                    let left = links.iter().find(|(_, o)| {
                        !o.uturn
                            && !o.crossing
                            && o.from == l.from
                            && o.from_lane == l.from_lane
                            && o.dir.eq_ignore_ascii_case("l")
                    });
                    let want: String = match left {
                        Some((&j, _)) => states
                            .iter()
                            .map(|s| match ch(s, j) {
                                'G' => 'g',
                                c => c,
                            })
                            .collect(),
                        None => "r".repeat(states.len()),
                    };
                    assert_eq!(column, want, "{name} {id} U-turn {k}");
                    continue;
                }
                assert!(
                    column.chars().any(green),
                    "{name} {id}: link {k} ({} -> {}) never green",
                    l.from,
                    l.to
                );
                let prev = by_movement
                    .entry((&l.from, &l.to))
                    .or_insert(column.clone());
                assert_eq!(*prev, column, "{name} {id}: lanes of one movement differ");
            }
            for (&a, la) in links.iter().filter(|(_, l)| !l.uturn) {
                for (&b, lb) in links.iter().filter(|(_, l)| !l.uturn) {
                    if la.crossing && lb.crossing {
                        continue; // crossings never conflict with each other
                    }
                    let ours_together = states.iter().any(|s| green(ch(s, a)) && green(ch(s, b)));
                    let sumo_together = sumo_states
                        .iter()
                        .any(|s| green(ch(s, a)) && green(ch(s, b)));
                    assert!(
                        !ours_together || sumo_together,
                        "{name} {id}: links {a} ({}->{}) and {b} ({}->{}) green together, never in SUMO's program",
                        la.from,
                        la.to,
                        lb.from,
                        lb.to
                    );
                }
            }
        }
    }
}

#[test]
fn loops_and_vehicles_onto_an_openstreetmap_network_name_its_own_edges_and_lanes() {
    // town.net.xml renames ids (OSM's '#') and has sidewalks as lane 0: the export's own
    // files name Greenwave's links and lanes, the onto files SUMO's.
    let nt = text("town.net.xml");
    let rt = text("town.rou.xml");
    let src = Source {
        file: "town.net.xml",
        text: &nt,
    };
    let imp = sumo::import(
        src,
        &[Source {
            file: "town.rou.xml",
            text: &rt,
        }],
        &[],
        &ImportOptions {
            name: "town".into(),
            slice_s: 900.0,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let toml = sumo::import::network_toml(&imp.network).unwrap();
    let net = intersections::load::network_from_str("town.toml", &toml).unwrap();
    let dt = sumo::import::demand_toml(imp.demand.as_ref().unwrap()).unwrap();
    let spec: intersections::spec::DemandSpec = toml::from_str(&dt).unwrap();
    let demand = intersections::demand::Demand::from_spec(&net, &spec).unwrap();
    let opts = ExportOptions {
        vehicles_of_seed: Some(1),
        onto_names: Some(sumo::sumo_names(src).unwrap()),
        ..ExportOptions::default()
    };
    let files = sumo::export(&net, &[], Some(&demand), &opts).unwrap();
    // SUMO's net, read here: car lanes and the edge pairs its connections join.
    let doc = roxmltree::Document::parse(&nt).unwrap();
    let mut car_lanes = BTreeSet::new();
    let mut joined = BTreeSet::new();
    for n in doc.root_element().children().filter(|n| n.is_element()) {
        if n.has_tag_name("edge") && n.attribute("function").is_none() {
            for l in n.children().filter(|c| c.has_tag_name("lane")) {
                let cars = l.attribute("allow").is_none_or(|a| a.contains("passenger"))
                    && !l
                        .attribute("disallow")
                        .is_some_and(|d| d.contains("passenger"));
                if cars {
                    car_lanes.insert(l.attribute("id").unwrap().to_string());
                }
            }
        }
        if n.has_tag_name("connection") {
            joined.insert((
                n.attribute("from").unwrap().to_string(),
                n.attribute("to").unwrap().to_string(),
            ));
        }
    }
    let lanes_of = |det: &str| -> Vec<String> {
        roxmltree::Document::parse(det)
            .unwrap()
            .descendants()
            .filter(|n| n.has_tag_name("inductionLoop"))
            .map(|n| n.attribute("lane").unwrap().to_string())
            .collect()
    };
    let onto_lanes = lanes_of(files.onto_detectors.as_deref().unwrap());
    assert_eq!(onto_lanes.len(), 24);
    for l in &onto_lanes {
        assert!(
            car_lanes.contains(l),
            "loop on {l}, not a car lane of SUMO's net"
        );
    }
    assert!(
        lanes_of(&files.detectors)
            .iter()
            .any(|l| !car_lanes.contains(l)),
        "the fixture is meant to have names that differ"
    );
    let routes = roxmltree::Document::parse(files.onto_routes.as_deref().unwrap()).unwrap();
    let mut vehicles = 0;
    for r in routes.descendants().filter(|n| n.has_tag_name("route")) {
        let edges: Vec<&str> = r.attribute("edges").unwrap().split(' ').collect();
        for w in edges.windows(2) {
            assert!(
                joined.contains(&(w[0].to_string(), w[1].to_string())),
                "{} -> {}: no connection in SUMO's net",
                w[0],
                w[1]
            );
        }
        vehicles += 1;
    }
    assert!(vehicles > 300, "{vehicles}");
}
