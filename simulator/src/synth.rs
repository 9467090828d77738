//! Generated networks and demands for tests and benchmarks: NxN grids and an isolated
//! crossing of two one-way streets. They go through the same checks as a file
//! ([`Network::from_spec`], [`Demand::from_spec`]).

use std::collections::BTreeMap;

use intersections::demand::Demand;
use intersections::spec::{
    DemandSpec, DetectorKind, DetectorSpec, EntryFlowSpec, GroupKind, IntersectionSpec, LinkSpec,
    MovementSpec, NetworkSpec, NodeSpec, PlanSpec, Protection, SafetySpec, SignalGroupSpec,
    StageSpec, StageTimeSpec, TurningSpec,
};
use intersections::{Ms, Network};

use crate::SimError;

fn problems(what: &str, p: Vec<intersections::diag::Problem>) -> SimError {
    SimError::Config(format!(
        "generated {what} does not check: {}",
        p.iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join("; ")
    ))
}

fn link(id: String, from: &str, to: &str, lanes: u32, kmh: f64, len: Option<f64>) -> LinkSpec {
    LinkSpec {
        id,
        from: from.into(),
        to: to.into(),
        lanes,
        speed_limit_kmh: kmh,
        length_m: len,
        grade_pct: 0.0,
    }
}

fn intersection(id: String, x: f64, y: f64) -> IntersectionSpec {
    IntersectionSpec {
        id,
        name: None,
        x_m: x,
        y_m: y,
        lat: None,
        lon: None,
        control: Default::default(),
        movements: Vec::new(),
        signal_groups: Vec::new(),
        stages: Vec::new(),
        conflicts: Vec::new(),
        intergreens: Vec::new(),
        detectors: Vec::new(),
        plans: Vec::new(),
        schedule: Vec::new(),
    }
}

fn group(id: &str, movements: Vec<String>, protection: Protection) -> SignalGroupSpec {
    SignalGroupSpec {
        id: id.into(),
        kind: GroupKind::Vehicle,
        movements,
        protection,
        crossing: None,
        crossing_length_m: None,
        min_green_s: None,
    }
}

fn stage_time(stage: &str, green: f64, inter: f64) -> StageTimeSpec {
    StageTimeSpec {
        stage: stage.into(),
        green_s: green,
        interstage_s: Some(inter),
    }
}

/// An isolated crossing of two one-way, one-lane streets: `W_C` (west to east) and `S_C`
/// (south to north), each `approach_m` long at 50 km/h, with a stop-line detector per approach,
/// run by a two-stage plan (`ew` then `ns`, interstage `inter_s` each). Demand: `q_ew` and
/// `q_ns` veh/h for `hours`.
pub fn crossing(
    approach_m: f64,
    green_ew_s: f64,
    green_ns_s: f64,
    inter_s: f64,
    q_ew: f64,
    q_ns: f64,
    hours: usize,
) -> Result<(Network, Demand), SimError> {
    let mut ix = intersection("C".into(), 0.0, 0.0);
    for (id, from, to) in [("ew", "W_C", "C_E"), ("ns", "S_C", "C_N")] {
        ix.movements.push(MovementSpec {
            id: id.into(),
            from: from.into(),
            to: to.into(),
            turn: None,
            lanes: vec![0],
            saturation_flow_veh_h: None,
        });
        ix.signal_groups
            .push(group(id, vec![id.into()], Protection::Protected));
        ix.stages.push(StageSpec {
            id: id.into(),
            groups: vec![id.into()],
        });
        ix.detectors.push(DetectorSpec {
            id: format!("{id}_stop"),
            link: from.into(),
            lane: 0,
            distance_m: 1.0,
            kind: DetectorKind::StopLine,
            length_m: None,
        });
    }
    ix.plans.push(PlanSpec {
        id: "p".into(),
        cycle_s: green_ew_s + green_ns_s + 2.0 * inter_s,
        offset_s: 0.0,
        stages: vec![
            stage_time("ew", green_ew_s, inter_s),
            stage_time("ns", green_ns_s, inter_s),
        ],
    });
    let a = approach_m;
    let spec = NetworkSpec {
        kind: "network".into(),
        version: 1,
        name: "crossing".into(),
        description: None,
        safety: SafetySpec::default(),
        nodes: vec![
            node("W", -a, 0.0),
            node("E", 200.0, 0.0),
            node("S", 0.0, -a),
            node("N", 0.0, 200.0),
        ],
        intersections: vec![ix],
        links: vec![
            link("W_C".into(), "W", "C", 1, 50.0, None),
            link("C_E".into(), "C", "E", 1, 50.0, None),
            link("S_C".into(), "S", "C", 1, 50.0, None),
            link("C_N".into(), "C", "N", 1, 50.0, None),
        ],
        coordination_groups: Vec::new(),
    };
    let net = Network::from_spec(&spec).map_err(|p| problems("crossing", p))?;
    let d = DemandSpec {
        kind: "demand".into(),
        version: 1,
        network: String::new(),
        description: None,
        slice_s: 3600.0,
        entries: vec![
            EntryFlowSpec {
                link: "W_C".into(),
                flows_veh_h: vec![q_ew; hours],
            },
            EntryFlowSpec {
                link: "S_C".into(),
                flows_veh_h: vec![q_ns; hours],
            },
        ],
        turning: Vec::new(),
    };
    let demand = Demand::from_spec(&net, &d).map_err(|p| problems("crossing demand", p))?;
    Ok((net, demand))
}

fn node(id: &str, x: f64, y: f64) -> NodeSpec {
    NodeSpec {
        id: id.into(),
        x_m: x,
        y_m: y,
    }
}

/// An `n` x `n` grid, 250 m blocks, two lanes per direction at 50 km/h (lane 0 right and
/// through, lane 1 through and left), two-stage signals with permissive turns (60 s cycle,
/// offsets for a green wave eastbound), stop-line detectors on every lane, and `flow_veh_h`
/// entering at every boundary for `hours`, turning 10% right, 80% through, 10% left.
pub fn grid(n: usize, flow_veh_h: f64, hours: usize) -> Result<(Network, Demand), SimError> {
    let sp = 250.0;
    let iid = |i: usize, j: usize| format!("I{i}_{j}");
    let mut nodes = Vec::new();
    let mut links: Vec<LinkSpec> = Vec::new();
    let mut ixs = Vec::new();
    let end = (n as f64) * sp;
    for k in 0..n {
        let c = k as f64 * sp;
        nodes.push(node(&format!("W{k}"), -sp, c));
        nodes.push(node(&format!("E{k}"), end, c));
        nodes.push(node(&format!("S{k}"), c, -sp));
        nodes.push(node(&format!("N{k}"), c, end));
    }
    // Neighbour of intersection (i, j) in a direction, as an endpoint id.
    let neighbour = |i: usize, j: usize, d: usize| -> String {
        match d {
            0 if i + 1 < n => iid(i + 1, j),
            0 => format!("E{j}"),
            1 if j + 1 < n => iid(i, j + 1),
            1 => format!("N{i}"),
            2 if i > 0 => iid(i - 1, j),
            2 => format!("W{j}"),
            3 if j > 0 => iid(i, j - 1),
            _ => format!("S{i}"),
        }
    };
    let mut entries = Vec::new();
    let mut turning = Vec::new();
    for j in 0..n {
        for i in 0..n {
            let me = iid(i, j);
            let mut ix = intersection(me.clone(), i as f64 * sp, j as f64 * sp);
            // Outgoing links from here in every direction; incoming from boundaries.
            for d in 0..4 {
                let other = neighbour(i, j, d);
                links.push(link(format!("{me}-{other}"), &me, &other, 2, 50.0, None));
                if !other.starts_with('I') {
                    links.push(link(format!("{other}-{me}"), &other, &me, 2, 50.0, None));
                    entries.push(EntryFlowSpec {
                        link: format!("{other}-{me}"),
                        flows_veh_h: vec![flow_veh_h; hours],
                    });
                }
            }
            // Approaches from each direction d (coming from neighbour d).
            let mut groups: [Vec<String>; 2] = [Vec::new(), Vec::new()];
            for d in 0..4 {
                let from = format!("{}-{me}", neighbour(i, j, d));
                let right = format!("{me}-{}", neighbour(i, j, (d + 1) % 4));
                let through = format!("{me}-{}", neighbour(i, j, (d + 2) % 4));
                let left = format!("{me}-{}", neighbour(i, j, (d + 3) % 4));
                let mut ratios = BTreeMap::new();
                for (k, (to, lanes, share)) in [
                    (right, vec![0], 0.1),
                    (through, vec![0, 1], 0.8),
                    (left, vec![1], 0.1),
                ]
                .into_iter()
                .enumerate()
                {
                    let id = format!("m{d}{k}");
                    ix.movements.push(MovementSpec {
                        id: id.clone(),
                        from: from.clone(),
                        to: to.clone(),
                        turn: None,
                        lanes,
                        saturation_flow_veh_h: None,
                    });
                    groups[d % 2].push(id);
                    ratios.insert(to, share);
                }
                for lane in 0..2 {
                    ix.detectors.push(DetectorSpec {
                        id: format!("d{d}{lane}"),
                        link: from.clone(),
                        lane,
                        distance_m: 1.0,
                        kind: DetectorKind::StopLine,
                        length_m: None,
                    });
                }
                turning.push(TurningSpec {
                    intersection: me.clone(),
                    from,
                    ratios,
                });
            }
            let [ew, ns] = groups;
            ix.signal_groups
                .push(group("EW", ew, Protection::Permissive));
            ix.signal_groups
                .push(group("NS", ns, Protection::Permissive));
            ix.stages.push(StageSpec {
                id: "ew".into(),
                groups: vec!["EW".into()],
            });
            ix.stages.push(StageSpec {
                id: "ns".into(),
                groups: vec!["NS".into()],
            });
            let offset = ((i as f64 * sp / (50.0 / 3.6)).round()) % 60.0;
            ix.plans.push(PlanSpec {
                id: "p".into(),
                cycle_s: 60.0,
                offset_s: offset,
                stages: vec![stage_time("ew", 24.0, 6.0), stage_time("ns", 24.0, 6.0)],
            });
            ixs.push(ix);
        }
    }
    let spec = NetworkSpec {
        kind: "network".into(),
        version: 1,
        name: format!("grid{n}x{n}"),
        description: None,
        safety: SafetySpec::default(),
        nodes,
        intersections: ixs,
        links,
        coordination_groups: Vec::new(),
    };
    let net = Network::from_spec(&spec).map_err(|p| problems("grid", p))?;
    let d = DemandSpec {
        kind: "demand".into(),
        version: 1,
        network: String::new(),
        description: None,
        slice_s: 3600.0,
        entries,
        turning,
    };
    let demand = Demand::from_spec(&net, &d).map_err(|p| problems("grid demand", p))?;
    Ok((net, demand))
}

/// The benchmark cases, one definition for every bench: the shipped networks (over their
/// demand) and generated NxN grids ([`grid`] at [`BENCH_GRID_FLOW_VEH_H`], one hour).
pub const BENCH_SHIPPED: [&str; 4] = ["single", "arterial", "grid4", "district"];
pub const BENCH_GRIDS: [usize; 4] = [4, 8, 16, 32];
/// Entry flow of the generated bench grids, veh/h per entry.
pub const BENCH_GRID_FLOW_VEH_H: f64 = 400.0;

/// Names of the bench cases: `single`, ..., `grid8x8`, ...
pub fn bench_case_names() -> Vec<String> {
    BENCH_SHIPPED
        .iter()
        .map(|s| s.to_string())
        .chain(BENCH_GRIDS.iter().map(|n| format!("grid{n}x{n}")))
        .collect()
}

/// The grid size of a generated case name (`grid8x8` -> 8).
pub fn bench_grid_size(name: &str) -> Option<usize> {
    name.strip_prefix("grid")
        .and_then(|r| r.split_once('x'))
        .and_then(|(a, _)| a.parse().ok())
}

/// Network, demand and natural duration of a bench case; shipped networks are read from
/// `networks_dir`.
pub fn bench_case(
    name: &str,
    networks_dir: &std::path::Path,
) -> Result<(Network, Demand, Ms), String> {
    if let Some(n) = bench_grid_size(name) {
        let (net, demand) = grid(n, BENCH_GRID_FLOW_VEH_H, 1).map_err(|e| e.to_string())?;
        return Ok((net, demand, Ms::from_s(3600)));
    }
    let net = intersections::load::load_network(&networks_dir.join(format!("{name}.toml")))
        .map_err(|e| format!("{name}: {e}"))?;
    let demand = intersections::load::load_demand_for(
        &networks_dir.join(format!("{name}.demand.toml")),
        &net,
    )
    .map_err(|e| format!("{name}: {e}"))?;
    let d = demand.duration();
    Ok((net, demand, d))
}
