//! The SUMO export checked without SUMO: the XML is well formed, every movement lane has a
//! connection, linkIndex and state strings agree, phases add up to the cycle, colours follow
//! the plan (yellow after green, no conflicting greens), routes follow movements.

use std::path::Path;

use intersections::demand::Demand;
use intersections::model::Endpoint;
use intersections::spec::{ControlKind, GroupKind, Turn};
use intersections::{IntersectionIdx, Ms, Network};
use sumo::export::{esc, Connection, ExportOptions, SumoFiles};

const SHIPPED: [&str; 4] = ["single", "arterial", "grid4", "district"];

fn shipped(name: &str) -> (Network, Demand) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    let net = intersections::load::load_network(&dir.join(format!("{name}.toml")))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let d = intersections::load::load_demand_for(&dir.join(format!("{name}.demand.toml")), &net)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (net, d)
}

fn cases() -> Vec<(String, Network, Demand)> {
    let mut v: Vec<(String, Network, Demand)> = SHIPPED
        .iter()
        .map(|n| {
            let (a, b) = shipped(n);
            (n.to_string(), a, b)
        })
        .collect();
    let (net, d) = simulator::synth::grid(6, 400.0, 1).expect("grid");
    v.push(("grid6x6".into(), net, d));
    v
}

/// A small well-formedness check: tags nest and close, attribute values are quoted and hold no
/// raw `<` or unescaped `&`, comments close. Returns the root element's name.
fn well_formed(xml: &str) -> Result<String, String> {
    let mut stack: Vec<String> = Vec::new();
    let mut root = None;
    let mut rest = xml;
    while let Some(i) = rest.find('<') {
        let text = &rest[..i];
        if !stack.is_empty() && (text.contains('>') || bad_amp(text)) {
            return Err(format!("bad text {text:?}"));
        }
        rest = &rest[i..];
        if let Some(r) = rest.strip_prefix("<!--") {
            let end = r.find("-->").ok_or("unclosed comment")?;
            if r[..end].contains("--") {
                return Err("'--' inside a comment".into());
            }
            rest = &r[end + 3..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("<?") {
            let end = r.find("?>").ok_or("unclosed declaration")?;
            rest = &r[end + 2..];
            continue;
        }
        // A tag: find its end outside quotes.
        let mut in_q = false;
        let mut end = None;
        for (k, c) in rest.char_indices().skip(1) {
            match c {
                '"' => in_q = !in_q,
                '<' if in_q => {
                    return Err(format!("raw '<' in an attribute near {:?}", &rest[..k]))
                }
                '<' => return Err("'<' inside a tag".into()),
                '>' if !in_q => {
                    end = Some(k);
                    break;
                }
                _ => {}
            }
        }
        let end = end.ok_or("unclosed tag")?;
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
            if open != name.trim() {
                return Err(format!("</{name}> closes <{open}>"));
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name = body
            .split_whitespace()
            .next()
            .ok_or("empty tag")?
            .to_string();
        check_attrs(&body[name.len()..])?;
        if stack.is_empty() {
            if root.is_some() {
                return Err("two root elements".into());
            }
            root = Some(name.clone());
        }
        if !self_closing {
            stack.push(name);
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed {stack:?}"));
    }
    root.ok_or("no root element".into())
}

fn bad_amp(s: &str) -> bool {
    s.match_indices('&').any(|(i, _)| {
        let r = &s[i..];
        !["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
            .iter()
            .any(|e| r.starts_with(e))
    })
}

fn check_attrs(mut s: &str) -> Result<(), String> {
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Ok(());
        }
        let eq = s
            .find('=')
            .ok_or(format!("attribute without value: {s:?}"))?;
        let name = s[..eq].trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("bad attribute name {name:?}"));
        }
        let v = s[eq + 1..]
            .strip_prefix('"')
            .ok_or(format!("unquoted value of {name}"))?;
        let close = v.find('"').ok_or("unclosed value")?;
        if bad_amp(&v[..close]) {
            return Err(format!("unescaped '&' in {name}"));
        }
        s = &v[close + 1..];
    }
}

/// Attribute `key` of every element `<elem ...>` in `xml`.
fn attrs<'a>(xml: &'a str, elem: &str) -> Vec<Vec<(&'a str, &'a str)>> {
    let open = format!("<{elem} ");
    xml.match_indices(&open)
        .map(|(i, _)| {
            let tag = &xml[i + open.len()..];
            let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            let mut out = Vec::new();
            let mut s = tag;
            while let Some(eq) = s.find("=\"") {
                let name = s[..eq].trim();
                let v = &s[eq + 2..];
                let close = v.find('"').unwrap_or(v.len());
                out.push((name, &v[..close]));
                s = &v[(close + 1).min(v.len())..];
            }
            out
        })
        .collect()
}

fn get<'a>(a: &[(&'a str, &'a str)], k: &str) -> Option<&'a str> {
    a.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
}

fn export(net: &Network, d: &Demand) -> SumoFiles {
    sumo::export(net, &[], Some(d), &ExportOptions::default()).expect("export")
}

#[test]
fn every_file_is_well_formed_xml() {
    for (name, net, d) in cases() {
        let f = export(&net, &d);
        let roots = [
            "nodes",
            "edges",
            "connections",
            "tlLogics",
            "additional",
            "additional",
            "routes",
        ];
        let files = f.files();
        assert_eq!(files.len(), 7, "{name}");
        for ((file, text), root) in files.iter().zip(roots) {
            assert_eq!(
                well_formed(text).unwrap_or_else(|e| panic!("{name}: {file}: {e}")),
                root,
                "{name}: {file}"
            );
        }
    }
}

#[test]
fn the_checker_catches_broken_xml() {
    assert!(well_formed("<a><b></a></b>").is_err());
    assert!(well_formed("<a x=\"1\"><b/>").is_err());
    assert!(well_formed("<a x=1/>").is_err());
    assert!(well_formed("<a x=\"a&b\"/>").is_err());
    assert!(well_formed("<a x=\"a&amp;b\"/>").is_ok());
    assert_eq!(esc("a<\"&'>"), "a&lt;&quot;&amp;&apos;&gt;");
}

#[test]
fn every_movement_lane_has_one_connection_and_link_indices_are_dense() {
    for (name, net, d) in cases() {
        let f = export(&net, &d);
        let xml_conns = attrs(&f.connections, "connection");
        assert_eq!(xml_conns.len(), f.connection_list.len(), "{name}");
        for (i, ix) in net.intersections.iter().enumerate() {
            let own: Vec<&Connection> = f
                .connection_list
                .iter()
                .filter(|c| c.intersection == IntersectionIdx(i))
                .collect();
            for (k, m) in ix.movements.iter().enumerate() {
                let mut lanes: Vec<u32> = own
                    .iter()
                    .filter(|c| c.movement == k)
                    .map(|c| c.from_lane)
                    .collect();
                lanes.sort_unstable();
                let mut want = m.lanes.clone();
                want.sort_unstable();
                assert_eq!(lanes, want, "{name}: {} movement {}", ix.id, m.id);
                for c in own.iter().filter(|c| c.movement == k) {
                    assert!(c.to_lane < net.links[m.to.0].lanes, "{name}: {}", m.id);
                    assert!(c.from_lane < net.links[m.from.0].lanes, "{name}: {}", m.id);
                }
            }
            let idx: Vec<usize> = own.iter().filter_map(|c| c.link_index).collect();
            if ix.control == ControlKind::Signal {
                assert_eq!(idx, (0..own.len()).collect::<Vec<_>>(), "{name}: {}", ix.id);
            } else {
                assert!(idx.is_empty(), "{name}: {} has no traffic light", ix.id);
            }
        }
        // The tll file gives each signalised connection its traffic light and linkIndex.
        let tll = attrs(&f.tll, "connection");
        let signalised: Vec<&Connection> = f
            .connection_list
            .iter()
            .filter(|c| c.link_index.is_some())
            .collect();
        assert_eq!(tll.len(), signalised.len(), "{name}");
        for (a, c) in tll.iter().zip(signalised) {
            assert_eq!(get(a, "from"), Some(net.links[c.from.0].id.as_str()));
            assert_eq!(get(a, "to"), Some(net.links[c.to.0].id.as_str()));
            assert_eq!(
                get(a, "tl"),
                Some(net.intersections[c.intersection.0].id.as_str())
            );
            assert_eq!(
                get(a, "linkIndex").and_then(|v| v.parse().ok()),
                c.link_index
            );
        }
    }
}

#[test]
fn turns_go_to_the_lanes_on_their_side() {
    let (net, d) = shipped("single");
    let f = export(&net, &d);
    let ix = &net.intersections[0];
    for c in &f.connection_list {
        let m = &ix.movements[c.movement];
        let exit = net.links[m.to.0].lanes;
        match m.turn {
            Turn::Right => assert_eq!(c.to_lane, 0, "{}", m.id),
            Turn::Left if m.lanes.len() == 1 => assert_eq!(c.to_lane, exit - 1, "{}", m.id),
            _ => {}
        }
    }
}

#[test]
fn programs_follow_the_plans() {
    for (name, net, d) in cases() {
        let f = export(&net, &d);
        let tl = attrs(&f.tll, "tlLogic");
        assert_eq!(tl.len(), f.programs.len(), "{name}");
        for p in &f.programs {
            let ix = &net.intersections[p.intersection.0];
            let plan = ix.scheduled_plan(Ms::ZERO).expect("plan");
            let n = f
                .connection_list
                .iter()
                .filter(|c| c.intersection == p.intersection)
                .count();
            let total = p.phases.iter().fold(Ms::ZERO, |a, ph| a + ph.duration);
            assert_eq!(
                total, plan.cycle,
                "{name}: {}: phases add up to the cycle",
                ix.id
            );
            assert_eq!(p.offset, plan.offset, "{name}: {}", ix.id);
            for ph in &p.phases {
                assert_eq!(
                    ph.state.len(),
                    n,
                    "{name}: {}: one character per link",
                    ix.id
                );
                assert!(ph.duration > Ms::ZERO);
            }
            // Phase 0 is the first stage's green: its groups show green.
            let first = &ix.stages[plan.stages[0].stage];
            let conns: Vec<&Connection> = f
                .connection_list
                .iter()
                .filter(|c| c.intersection == p.intersection)
                .collect();
            for c in &conns {
                let g = ix.movements[c.movement].group.expect("grouped");
                let ch = p.phases[0].state.as_bytes()[c.link_index.expect("index")];
                if first.groups.contains(&g) {
                    assert!(ch == b'G' || ch == b'g', "{name}: {}: phase 0", ix.id);
                }
            }
            // Colours: green is followed by yellow (never straight to red), and links of
            // conflicting groups are never open together.
            let k = p.phases.len();
            for (i, ph) in p.phases.iter().enumerate() {
                let next = p.phases[(i + 1) % k].state.as_bytes();
                let s = ph.state.as_bytes();
                for c in &conns {
                    let li = c.link_index.expect("index");
                    if matches!(s[li], b'G' | b'g') {
                        assert!(
                            matches!(next[li], b'G' | b'g' | b'y'),
                            "{name}: {}: link {li} goes from green to {}",
                            ix.id,
                            next[li] as char
                        );
                    }
                    for o in &conns {
                        let (ga, gb) = (
                            ix.movements[c.movement].group.expect("grouped"),
                            ix.movements[o.movement].group.expect("grouped"),
                        );
                        let open = |ch: u8| matches!(ch, b'G' | b'g' | b'y');
                        if ix.conflict(ga, gb) {
                            assert!(
                                !(open(s[li]) && open(s[o.link_index.expect("index")])),
                                "{name}: {}: conflicting links open together in phase {i}",
                                ix.id
                            );
                        }
                    }
                }
            }
            // Each vehicle group is green in the program exactly as long as in the plan.
            let step = Ms(100);
            for (gi, g) in ix.groups.iter().enumerate() {
                if g.kind != GroupKind::Vehicle {
                    continue;
                }
                let Some(c) = conns
                    .iter()
                    .find(|c| ix.movements[c.movement].group.map(|x| x.0) == Some(gi))
                else {
                    continue;
                };
                let li = c.link_index.expect("index");
                let green: Ms = p
                    .phases
                    .iter()
                    .filter(|ph| matches!(ph.state.as_bytes()[li], b'G' | b'g'))
                    .fold(Ms::ZERO, |a, ph| a + ph.duration);
                let want = plan.spans[gi]
                    .iter()
                    .fold(Ms::ZERO, |a, s| a + (s.green_end - s.open));
                assert_eq!(green, want, "{name}: {} group {}", ix.id, g.id);
                let _ = step;
            }
        }
        // The additional file holds the same programs under our programID.
        let add = attrs(&f.tls_additional, "tlLogic");
        assert_eq!(add.len(), f.programs.len());
        assert!(add.iter().all(|a| get(a, "programID") == Some("greenwave")));
    }
}

#[test]
fn an_offset_and_a_plan_file_plan_are_exported() {
    let (net, d) = shipped("arterial");
    let ixi = IntersectionIdx(1);
    let ix = &net.intersections[ixi.0];
    let mut spec = ix.plans[0].to_spec(ix);
    spec.id = "shifted".into();
    spec.offset_s = 17.0;
    let plan = intersections::plan::validate(
        ix,
        &net.safety,
        &spec,
        &intersections::diag::FieldPath::root(),
    )
    .expect("valid");
    let f = sumo::export(&net, &[(ixi, plan)], Some(&d), &ExportOptions::default()).unwrap();
    let p = f.programs.iter().find(|p| p.intersection == ixi).unwrap();
    assert_eq!(p.plan_id, "shifted");
    assert_eq!(p.offset, Ms::from_s(17));
    assert!(f.tll.contains(&format!(
        "id=\"{}\" type=\"static\" programID=\"0\" offset=\"17\"",
        ix.id
    )));
}

#[test]
fn routes_follow_movements_and_the_turning_ratios() {
    for (name, net, d) in cases() {
        let f = export(&net, &d);
        assert_eq!(f.route_sets.len(), d.entries.len());
        for rs in &f.route_sets {
            let sum: f64 = rs.routes.iter().map(|r| r.1).sum();
            assert!(
                (sum - 1.0).abs() < 1e-9,
                "{name}: probabilities add up to {sum}"
            );
            assert!(rs.routes.len() <= ExportOptions::default().max_routes_per_entry);
            for (path, _) in &rs.routes {
                assert_eq!(path[0], rs.entry);
                for w in path.windows(2) {
                    let Endpoint::Intersection(ixi) = net.links[w[0].0].to else {
                        panic!("{name}: a route goes on from a boundary");
                    };
                    assert!(
                        net.intersections[ixi.0]
                            .movements
                            .iter()
                            .any(|m| m.from == w[0] && m.to == w[1]),
                        "{name}: no movement from {} to {}",
                        net.links[w[0].0].id,
                        net.links[w[1].0].id
                    );
                }
            }
        }
        // One flow per entry and non-empty slice, in order of begin time.
        let flows = attrs(f.routes.as_deref().unwrap(), "flow");
        let want: usize = d
            .entries
            .iter()
            .map(|e| e.flows_veh_h.iter().filter(|q| **q > 0.0).count())
            .sum();
        assert_eq!(flows.len(), want, "{name}");
        let begins: Vec<f64> = flows
            .iter()
            .map(|a| get(a, "begin").unwrap().parse().unwrap())
            .collect();
        assert!(
            begins.windows(2).all(|w| w[0] <= w[1]),
            "{name}: flows sorted"
        );
    }
    // On the single crossing the routes are exactly the turning ratios.
    let (net, d) = shipped("single");
    let f = export(&net, &d);
    for rs in &f.route_sets {
        assert_eq!(rs.simplified, 0.0);
        let ixi = match net.links[rs.entry.0].to {
            Endpoint::Intersection(i) => i,
            _ => unreachable!(),
        };
        for (to, share) in &d.turning[&(ixi, rs.entry)] {
            let p: f64 = rs
                .routes
                .iter()
                .filter(|r| r.0[1] == *to)
                .map(|r| r.1)
                .sum();
            assert!((p - share).abs() < 1e-9);
        }
    }
}

#[test]
fn a_large_grid_keeps_the_route_cap_and_the_first_turns() {
    let (net, d) = simulator::synth::grid(16, 400.0, 1).expect("grid");
    let opts = ExportOptions::default();
    let f = sumo::export(&net, &[], Some(&d), &opts).expect("export");
    for rs in &f.route_sets {
        assert!(rs.routes.len() <= opts.max_routes_per_entry);
        assert!((0.0..=1.0).contains(&rs.simplified));
        // The first turn follows the ratios exactly.
        let ixi = match net.links[rs.entry.0].to {
            Endpoint::Intersection(i) => i,
            _ => unreachable!(),
        };
        for (to, share) in &d.turning[&(ixi, rs.entry)] {
            let p: f64 = rs
                .routes
                .iter()
                .filter(|r| r.0[1] == *to)
                .map(|r| r.1)
                .sum();
            assert!((p - share).abs() < 1e-9, "{p} vs {share}");
        }
        // Every route ends at a boundary.
        for (path, _) in &rs.routes {
            let last = path.last().unwrap();
            assert!(matches!(net.links[last.0].to, Endpoint::Boundary(_)));
        }
    }
}

#[test]
fn pedestrian_groups_and_schedules_are_reported_not_dropped_silently() {
    let (net, d) = shipped("single");
    let f = export(&net, &d);
    assert!(f.notes.iter().any(|n| n.contains("pedestrian")));
    assert!(f.notes.iter().any(|n| n.contains("schedule")));
}

#[test]
fn crossings_become_sidewalks_crossings_and_walks_with_the_turns_yielding() {
    for name in SHIPPED {
        let (net, d) = shipped(name);
        let opts = ExportOptions {
            crossings: true,
            ..ExportOptions::default()
        };
        let f = sumo::export(&net, &[], Some(&d), &opts).expect("export");
        let plain = export(&net, &d);
        assert!(f
            .notes
            .iter()
            .all(|n| !n.contains("pedestrian signal groups are not exported")));
        // Every edge has a sidewalk, and the connections and loops count lanes from 1.
        let edges = attrs(&f.edges, "edge");
        assert!(
            edges
                .iter()
                .all(|e| get(e, "sidewalkWidth").and_then(|w| w.parse::<f64>().ok()) == Some(2.0)),
            "{name}"
        );
        for (a, b) in attrs(&f.connections, "connection")
            .iter()
            .zip(attrs(&plain.connections, "connection"))
        {
            for k in ["fromLane", "toLane"] {
                let (x, y): (u32, u32) = (
                    get(a, k).unwrap().parse().unwrap(),
                    get(&b, k).unwrap().parse().unwrap(),
                );
                assert_eq!(x, y + 1, "{name}: {k}");
            }
        }
        for (a, b) in attrs(&f.detectors, "inductionLoop")
            .iter()
            .zip(attrs(&plain.detectors, "inductionLoop"))
        {
            let lane = |v: &str| -> (String, u32) {
                let (e, k) = v.rsplit_once('_').unwrap();
                (e.to_string(), k.parse().unwrap())
            };
            let (ea, ka) = lane(get(a, "lane").unwrap());
            let (eb, kb) = lane(get(&b, "lane").unwrap());
            assert_eq!((ea, ka), (eb, kb + 1), "{name}");
        }
        // One crossing per pedestrian group of each signalised intersection, over its leg, with
        // the linkIndex after the vehicle links; the programs walk it with its stages.
        let crossings = attrs(&f.connections, "crossing");
        let peds: usize = net
            .intersections
            .iter()
            .filter(|ix| ix.control == ControlKind::Signal)
            .map(|ix| {
                ix.groups
                    .iter()
                    .filter(|g| g.kind == GroupKind::Pedestrian)
                    .count()
            })
            .sum();
        assert_eq!(crossings.len(), peds, "{name}");
        let tll_phases = attrs(&f.tll, "phase");
        let plain_phases = attrs(&plain.tll, "phase");
        assert!(
            tll_phases.len() >= plain_phases.len(),
            "{name}: phases are cut at walks"
        );
        for c in &crossings {
            let node = get(c, "node").unwrap();
            let k: usize = get(c, "linkIndex").unwrap().parse().unwrap();
            let ixi = net
                .intersection(node)
                .expect("a crossing at an intersection");
            let vehicle_links = f
                .connection_list
                .iter()
                .filter(|x| x.intersection == ixi)
                .count();
            assert!(
                k >= vehicle_links,
                "{name} {node}: crossing {k} among the vehicle links"
            );
            // Its edges are the links of one leg at the intersection.
            for e in get(c, "edges").unwrap().split(' ') {
                let l = net.link(e).expect("a link");
                assert!(
                    net.far_end(l, ixi).is_some(),
                    "{name} {node}: crossing over {e}"
                );
            }
        }
        // The tll's programs: every state one character per vehicle link and crossing; a
        // crossing walks only while no vehicle link it conflicts with is green (the validated
        // plan), and at least once.
        let logic_states: Vec<Vec<String>> = f
            .tll
            .split("<tlLogic ")
            .skip(1)
            .map(|t| {
                attrs(t.split("</tlLogic>").next().unwrap(), "phase")
                    .iter()
                    .map(|p| get(p, "state").unwrap().to_string())
                    .collect()
            })
            .collect();
        let mut walked = 0;
        for (p, states) in f.programs.iter().zip(&logic_states) {
            let ix = &net.intersections[p.intersection.0];
            let own: Vec<&Connection> = f
                .connection_list
                .iter()
                .filter(|c| c.intersection == p.intersection)
                .collect();
            let np = ix
                .groups
                .iter()
                .filter(|g| g.kind == GroupKind::Pedestrian)
                .count();
            for st in states {
                assert_eq!(st.chars().count(), own.len() + np, "{name} {}", ix.id);
            }
            for (w, (g, _)) in p.walks.iter().enumerate() {
                for st in states {
                    let ch: Vec<char> = st.chars().collect();
                    if ch[own.len() + w] != 'G' {
                        continue;
                    }
                    walked += 1;
                    for (k, c) in own.iter().enumerate() {
                        let m = &ix.movements[c.movement];
                        let vg = m.group.expect("signalised");
                        if matches!(ch[k], 'G' | 'g') && ix.conflict(vg, *g) {
                            // Only a permissive turn may run with a crossing it yields to.
                            assert_eq!(
                                ch[k], 'g',
                                "{name} {}: {} with crossing {}",
                                ix.id, m.id, ix.groups[g.0].id
                            );
                            assert_ne!(m.turn, Turn::Through);
                        }
                    }
                }
            }
        }
        assert!(walked > 0, "{name}: no crossing walks");
    }
}

#[test]
fn an_id_reserved_by_sumo_is_an_error() {
    let (net, d) = shipped("single");
    let mut net = net;
    net.links[0].id = ":internal".into();
    let e = sumo::export(&net, &[], Some(&d), &ExportOptions::default()).unwrap_err();
    assert!(e.to_string().contains(":internal"), "{e}");
}

#[test]
fn explicit_vehicles_are_the_simulators_own() {
    use simulator::{Control, Scenario, SimConfig};
    for name in ["single", "district"] {
        let (net, d) = shipped(name);
        let seed = 7;
        let sampled = sumo::export::sample_vehicles(&net, &d, seed);
        let cfg = SimConfig {
            record_vehicles: true,
            ..SimConfig::default()
        };
        let sc = Scenario::new(net.clone(), d.clone(), cfg).expect("scenario");
        let m = sc.run(&Control::fixed(), seed, d.duration()).expect("run");
        // The run ends at the demand's end; arrivals in its last step are not generated.
        let before_end = sampled
            .iter()
            .filter(|v| v.arrival_s <= d.duration().as_secs_f64() - 1.0)
            .count();
        assert!(
            (before_end..=sampled.len()).contains(&(m.generated as usize)),
            "{name}: {} generated, {} replayed",
            m.generated,
            sampled.len()
        );
        let mut want: Vec<(String, u64)> = sampled
            .iter()
            .map(|v| {
                (
                    net.links[d.entries[v.entry].link.0].id.clone(),
                    (v.arrival_s * 1e6) as u64,
                )
            })
            .collect();
        want.sort();
        for r in &m.vehicles {
            let key = (r.entry.clone(), (r.arrival_s * 1e6) as u64);
            assert!(
                want.binary_search(&key).is_ok(),
                "{name}: vehicle {r:?} not in the replay"
            );
        }
        assert!(m.vehicles.len() > 1000);
        let f = sumo::export(
            &net,
            &[],
            Some(&d),
            &ExportOptions {
                vehicles_of_seed: Some(seed),
                ..ExportOptions::default()
            },
        )
        .expect("export");
        let routes = f.routes.expect("routes");
        assert_eq!(well_formed(&routes).unwrap(), "routes");
        assert_eq!(attrs(&routes, "vehicle").len(), sampled.len());
    }
}

/// The E1 loops come back through `sumo import` (on the nets netconvert built from the shipped
/// exports) as the network's own detectors: same id, link, lane, kind and distance, so SUMO's
/// output of these loops maps to the network's detectors in `greenwave sumo counts`.
#[test]
fn detector_loops_are_the_networks_detectors() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/shipped");
    for name in SHIPPED {
        let (net, d) = shipped(name);
        let f = export(&net, &d);
        let loops = attrs(&f.detectors, "inductionLoop");
        let all: Vec<_> = net
            .intersections
            .iter()
            .flat_map(|i| {
                i.detectors
                    .iter()
                    .map(move |d| (format!("{}.{}", i.id, d.id), d))
            })
            .collect();
        assert_eq!(loops.len(), all.len(), "{name}");
        for (l, (id, det)) in loops.iter().zip(&all) {
            assert_eq!(get(l, "id"), Some(id.as_str()), "{name}");
            let lane = format!("{}_{}", net.links[det.link.0].id, det.lane);
            assert_eq!(get(l, "lane"), Some(lane.as_str()), "{name}: {}", det.id);
            assert_eq!(get(l, "period"), Some("300"), "{name}");
            assert_eq!(get(l, "file"), Some(format!("{name}.e1.out.xml").as_str()));
        }
        let net_xml = std::fs::read_to_string(data.join(format!("{name}.net.xml"))).expect("net");
        let imp = sumo::import(
            sumo::Source {
                file: "n.net.xml",
                text: &net_xml,
            },
            &[],
            &[sumo::Source {
                file: "d.add.xml",
                text: &f.detectors,
            }],
            &sumo::ImportOptions {
                name: name.to_string(),
                slice_s: 900.0,
            },
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let back: Vec<_> = imp
            .network
            .intersections
            .iter()
            .flat_map(|i| &i.detectors)
            .collect();
        assert_eq!(back.len(), all.len(), "{name}: {:#?}", imp.report);
        for (id, det) in &all {
            let b = back
                .iter()
                .find(|b| b.id == *id)
                .unwrap_or_else(|| panic!("{name}: detector {id} not imported"));
            assert_eq!(b.link, net.links[det.link.0].id, "{name}: {id}");
            assert_eq!(b.lane, det.lane, "{name}: {id}");
            assert_eq!(b.kind, det.kind, "{name}: {id}");
            assert!(
                (b.distance_m - det.distance_m).abs() < 0.6,
                "{name}: {id} at {} m, was {} m",
                b.distance_m,
                det.distance_m
            );
        }
        // SUMO's output of these loops maps to each intersection's own detectors.
        let mut e1 = String::from("<detector>\n");
        for (k, (id, _)) in all.iter().enumerate() {
            e1.push_str(&format!(
                "<interval begin=\"0\" end=\"300\" id=\"{id}\" nVehContrib=\"{k}\" occupancy=\"1\"/>\n"
            ));
        }
        e1.push_str("</detector>\n");
        let reports = sumo::counts(
            &net,
            sumo::Source {
                file: "e1.xml",
                text: &e1,
            },
            "sumo",
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        for (k, (_, det)) in all.iter().enumerate() {
            let ix = net
                .intersections
                .iter()
                .find(|i| i.detectors.iter().any(|d| std::ptr::eq(d, *det)))
                .expect("owner");
            let r = reports
                .iter()
                .find(|r| r.intersection == ix.id)
                .expect("report");
            let c = r
                .detectors
                .iter()
                .find(|c| c.detector == det.id)
                .expect("count");
            assert_eq!(c.count, k as u32, "{name}: {}.{}", ix.id, det.id);
        }
    }
}
