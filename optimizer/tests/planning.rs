//! The planning core on the shipped networks: counts in, flows out, plans that pass the one
//! validator, and a simulation check that records its numbers.

use std::path::{Path, PathBuf};

use intersections::load;
use intersections::messages::DetectorReport;
use intersections::Ms;
use optimizer::adaptive::{
    choose_actuated, commission, run_control, simulated_counts, webster_plans, AdaptiveParams,
    BenchControl,
};
use optimizer::counts::{parse_counts, records_from_reports, to_csv};
use optimizer::decide::{
    check_demand, validate_candidate, validate_operations, Operation, Twin, TwinStep,
    ValidateParams,
};
use optimizer::estimate::{demand_flows, demand_from_flows, estimate, EstimateParams};
use optimizer::webster::{plan_network, GapAcceptance, PlanParams};
use simulator::{Control, Scenario, SimConfig};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks")
}

fn scenario(name: &str) -> Scenario {
    let net = load::load_network(&dir().join(format!("{name}.toml"))).unwrap();
    let d = load::load_demand_for(&dir().join(format!("{name}.demand.toml")), &net).unwrap();
    Scenario::new(net, d, SimConfig::default()).unwrap()
}

/// Plans per intersection, as the planner gives them.
type Plans = Vec<(intersections::IntersectionIdx, intersections::Plan)>;

/// A network's flows of its third demand slice, the plans for them (good on that demand) and
/// the plans for three times them (the longest cycle, much worse on that demand).
fn good_and_tripled(net: &intersections::Network, sc: &Scenario) -> (Vec<Vec<f64>>, Plans, Plans) {
    let flows = demand_flows(net, sc.demand(), Some(2));
    let tripled: Vec<Vec<f64>> = flows
        .iter()
        .map(|f| f.iter().map(|x| x * 3.0).collect())
        .collect();
    let plans = |f: &[Vec<f64>]| plan_network(net, f, &PlanParams::default()).unwrap().plans;
    let (good, bad) = (plans(&flows), plans(&tripled));
    (flows, good, bad)
}

/// Every shipped network: plans from the demand's mean flows and from each slice pass the
/// validator (plan_network returns only checked plans) and survive a round trip through a
/// plan file.
#[test]
fn plans_for_every_shipped_network_pass_the_validator() {
    for name in ["single", "arterial", "grid4", "district"] {
        let sc = scenario(name);
        let net = sc.network();
        for slice in [None, Some(0), Some(3), Some(7)] {
            let flows = demand_flows(net, sc.demand(), slice);
            let planned = plan_network(net, &flows, &PlanParams::default())
                .unwrap_or_else(|e| panic!("{name} {slice:?}: {e}"));
            let signals = net
                .intersections
                .iter()
                .filter(|i| !i.stages.is_empty())
                .count();
            assert_eq!(planned.plans.len(), signals, "{name}");
            for (i, p) in &planned.plans {
                assert!(p.cycle >= net.safety.cycle_min && p.cycle <= net.safety.cycle_max);
                let rep = planned
                    .intersections
                    .iter()
                    .find(|r| r.intersection == net.intersections[i.0].id)
                    .unwrap();
                assert_eq!(rep.cycle_s, p.cycle.as_secs_f64());
            }
            // One cycle per coordination group.
            for g in &net.coordination_groups {
                let cycles: Vec<Ms> = planned
                    .plans
                    .iter()
                    .filter(|(i, _)| g.intersections.contains(i))
                    .map(|(_, p)| p.cycle)
                    .collect();
                assert!(cycles.windows(2).all(|w| w[0] == w[1]), "{name} {}", g.id);
            }
            let text = toml::to_string(&planned.to_file(net, "x.toml")).unwrap();
            let back = load::plans_for(net, "plans.toml", &text).unwrap();
            assert_eq!(back.len(), planned.plans.len());
        }
    }
}

/// A plan file whose coordination group's members run different cycles is refused, at the
/// member's `cycle_s`, though each plan alone passes the validator (as a group's schedules
/// in a network file are).
#[test]
fn a_plan_file_keeps_a_group_on_one_cycle() {
    let sc = scenario("arterial");
    let net = sc.network();
    let flows = demand_flows(net, sc.demand(), None);
    let heavy: Vec<Vec<f64>> = flows
        .iter()
        .map(|v| v.iter().map(|f| f * 1.6).collect())
        .collect();
    let light = plan_network(net, &flows, &PlanParams::default()).unwrap();
    let dense = plan_network(net, &heavy, &PlanParams::default()).unwrap();
    let g = &net.coordination_groups[0];
    let member = g.intersections[1];
    let cycle = |p: &optimizer::webster::NetworkPlan| {
        p.plans.iter().find(|(i, _)| *i == member).unwrap().1.cycle
    };
    assert_ne!(cycle(&light), cycle(&dense), "the test needs two cycles");
    let mut file = light.to_file(net, "x.toml");
    let k = light.plans.iter().position(|(i, _)| *i == member).unwrap();
    file.plans[k] = dense.to_file(net, "x.toml").plans[k].clone();
    let text = toml::to_string(&file).unwrap();
    let e = load::plans_for(net, "plans.toml", &text)
        .unwrap_err()
        .to_string();
    let id = &net.intersections[member.0].id;
    assert!(
        e.contains(&format!(
            "plans[{k}].cycle_s: plan \"greenwave\" of \"{id}\" runs a"
        )) && e.contains(&format!("coordination group \"{}\"", g.id)),
        "{e}"
    );
    // Intact, it loads.
    let text = toml::to_string(&light.to_file(net, "x.toml")).unwrap();
    assert!(load::plans_for(net, "plans.toml", &text).is_ok());
}

/// Webster's formula on a hand-checked case: the single crossing's cycle grows with its load.
#[test]
fn webster_cycle_grows_with_flow() {
    let sc = scenario("single");
    let net = sc.network();
    let base = demand_flows(net, sc.demand(), None);
    let scaled = |k: f64| -> Vec<Vec<f64>> {
        base.iter()
            .map(|v| v.iter().map(|f| f * k).collect())
            .collect()
    };
    let c = |k: f64| {
        let p = plan_network(net, &scaled(k), &PlanParams::default()).unwrap();
        (
            p.intersections[0].flow_ratio,
            p.intersections[0].lost_time_s,
            p.plans[0].1.cycle,
        )
    };
    let (y1, l, c1) = c(0.5);
    let (_, _, c2) = c(1.0);
    let (_, _, c3) = c(1.4);
    assert!(c1 <= c2 && c2 <= c3, "{c1} {c2} {c3}");
    // The reported optimum is Webster's formula on the reported Y and L within the safety
    // bounds, and the cycle run is never below it.
    for k in [0.5, 1.0, 1.4] {
        let p = plan_network(net, &scaled(k), &PlanParams::default()).unwrap();
        let r = &p.intersections[0];
        let formula = ((1.5 * r.lost_time_s + 5.0) / (1.0 - r.flow_ratio)).clamp(
            net.safety.cycle_min.as_secs_f64(),
            net.safety.cycle_max.as_secs_f64(),
        );
        assert!((r.webster_cycle_s - formula).abs() < 1e-9, "x{k}: {r:?}");
        assert!(r.cycle_s >= r.webster_cycle_s, "x{k}: {r:?}");
    }
    // Flows of the wrong shape, or not numbers, are an error naming the intersection.
    let mut bad = base.clone();
    bad[0].pop();
    let e = plan_network(net, &bad, &PlanParams::default()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("intersection C: 11 flows for 12 movements"),
        "{e}"
    );
    let mut bad = base.clone();
    bad[0][3] = f64::NAN;
    assert!(plan_network(net, &bad, &PlanParams::default()).is_err());
    let webster = ((1.5 * l + 5.0) / (1.0 - y1)).ceil();
    let want = webster.max(net.safety.cycle_min.as_secs_f64());
    // The cycle is Webster's unless the minimum greens need more.
    assert!(c1.as_secs_f64() >= want - 0.5, "{c1} vs {want}");
}

/// The price of a permissive left turn: Siegloch's capacity falls as the opposing stream
/// grows (1,800 veh/h against none with a 2 s follow-up; about 1,000 against 600 veh/h), and
/// the planner that prices it gives grid4's avenues (whose left lane carries through and
/// permissive left traffic) a larger share of the cycle, with a flow ratio at least as high
/// everywhere, and every plan still passes the validator.
#[test]
fn permissive_left_turners_are_priced_by_gap_acceptance() {
    let ga = GapAcceptance::default();
    assert!((ga.saturation_flow_veh_h(0.0) - 1800.0).abs() < 1e-6);
    let s600 = ga.saturation_flow_veh_h(600.0);
    assert!((900.0..1100.0).contains(&s600), "{s600}");
    let mut last = f64::INFINITY;
    for q in [0.0, 200.0, 600.0, 1200.0, 2400.0] {
        let s = ga.saturation_flow_veh_h(q);
        assert!(s < last && s > 0.0, "{q}: {s}");
        last = s;
    }

    let sc = scenario("grid4");
    let net = sc.network();
    let flows = demand_flows(net, sc.demand(), None);
    let plain = plan_network(net, &flows, &PlanParams::default()).unwrap();
    let priced = plan_network(
        net,
        &flows,
        &PlanParams {
            permissive_left: Some(GapAcceptance::default()),
            ..PlanParams::default()
        },
    )
    .unwrap();
    for (a, b) in plain.intersections.iter().zip(&priced.intersections) {
        assert!(b.flow_ratio >= a.flow_ratio - 1e-12, "{a:?} {b:?}");
    }
    // G11: two stages, avenue first, with permissive turns on shared lanes.
    let g11 = net
        .intersections
        .iter()
        .position(|i| i.id == "G11")
        .unwrap();
    let share = |p: &optimizer::webster::NetworkPlan| {
        let plan = &p.plans.iter().find(|(i, _)| i.0 == g11).unwrap().1;
        plan.stages[0].green.as_secs_f64() / plan.cycle.as_secs_f64()
    };
    assert!(
        share(&priced) > share(&plain) + 0.05,
        "avenue share {} priced, {} plain",
        share(&priced),
        share(&plain)
    );
}

/// Counts simulated on a network give back flows close to the demand that made them, through
/// the CSV form as a user would write it.
#[test]
fn estimated_flows_match_the_demand_that_made_the_counts() {
    let sc = scenario("arterial");
    let net = sc.network();
    let hour = Ms::from_s(3600);
    let recs = simulated_counts(&sc, &Control::fixed(), 7, hour, Ms::from_s(900)).unwrap();
    let csv = to_csv(net, &recs);
    let back = parse_counts(net, "counts.csv", &csv).unwrap();
    assert_eq!(back.len(), recs.len());
    let est = estimate(net, &back, Some(sc.demand()), EstimateParams::default());
    // Total flow into the network against the demand of the last slice of the hour (the
    // filter tracks the latest intervals).
    let truth = demand_flows(net, sc.demand(), Some(3));
    let tot = |f: &[Vec<f64>]| -> f64 { f.iter().flatten().sum() };
    let est_tot: f64 = est
        .intersections
        .iter()
        .flat_map(|i| i.movements.iter().map(|m| m.flow_veh_h))
        .sum();
    let rel = (est_tot - tot(&truth)).abs() / tot(&truth);
    assert!(
        rel < 0.15,
        "estimated {est_tot:.0} veh/h vs demand {:.0}",
        tot(&truth)
    );
    assert!(est
        .intersections
        .iter()
        .all(|i| i.movements.iter().all(|m| m.measured)));
}

#[test]
fn bad_counts_are_located() {
    let sc = scenario("arterial");
    let net = sc.network();
    let csv = "detector,interval_start_s,interval_end_s,count\nW_stop_0,0,900,100\nnope,0,900,3\nW_stop_1,900,900,3\nW_stop_2,0,900,x\n";
    let e = parse_counts(net, "c.csv", csv).unwrap_err().to_string();
    assert!(e.contains("c.csv:3: detector: no detector \"nope\""), "{e}");
    assert!(e.contains("c.csv:4: interval_end_s:"), "{e}");
    assert!(e.contains("c.csv:5: count: \"x\" is not a number"), "{e}");
    let json = "[\n{\"version\":1,\"region\":\"r\",\"intersection\":\"I1\",\"seq\":1,\"interval_start_ms\":0,\"interval_end_ms\":900000,\"detectors\":[]},\n{\"version\":1,\"region\":\"r\",\"intersection\":\"I9\",\"seq\":2,\"interval_start_ms\":0,\"interval_end_ms\":900000,\"detectors\":[]}\n]\n";
    let e = parse_counts(net, "c.json", json).unwrap_err().to_string();
    assert!(
        e.contains("c.json:3: [1].intersection: unknown intersection \"I9\""),
        "{e}"
    );
    let jsonl = "{\"version\":1,\"region\":\"r\",\"intersection\":\"I1\",\"seq\":1,\"interval_start_ms\":0,\"interval_end_ms\":900000,\"detectors\":[{\"detector\":\"W_stop_0\",\"count\":\"many\",\"occupancy\":0.1,\"health\":\"ok\"}]}\n";
    let e = parse_counts(net, "c.jsonl", jsonl).unwrap_err().to_string();
    assert!(
        e.contains("c.jsonl:1: detectors[0].count: not a detector report"),
        "{e}"
    );
}

/// A record read twice (a re-delivery) counts once, in CSV, in JSON and from reports already
/// parsed; the same detector and interval with another count or occupancy, and an interval
/// overlapping another of the same detector, are errors located at the second one that name
/// the line of the first.
#[test]
fn repeated_counts_count_once_and_conflicting_ones_are_located() {
    let sc = scenario("arterial");
    let net = sc.network();

    // CSV: the same row twice is one record.
    let head = "detector,interval_start_s,interval_end_s,count,occupancy\n";
    let once = format!("{head}W_stop_0,0,900,100,0.2\nW_stop_1,0,900,50,0.1\n");
    let twice =
        format!("{head}W_stop_0,0,900,100,0.2\nW_stop_0,0,900,100,0.2\nW_stop_1,0,900,50,0.1\n");
    let want = parse_counts(net, "c.csv", &once).unwrap();
    assert_eq!(want.len(), 2);
    assert_eq!(parse_counts(net, "c.csv", &twice).unwrap(), want);

    // CSV: another count, another occupancy, overlaps from before and from after; adjacent
    // intervals are fine.
    let csv = format!(
        "{head}W_stop_0,0,900,10,0.2\n\
         W_stop_0,0,900,12,0.2\n\
         W_stop_0,0,900,10,0.3\n\
         W_stop_0,450,1350,10,0.2\n\
         W_stop_0,900,1800,10,0.2\n\
         W_stop_0,1700,1750,1,0.2\n\
         W_stop_1,300,600,5,0.1\n\
         W_stop_1,0,900,20,0.1\n"
    );
    let e = parse_counts(net, "c.csv", &csv).unwrap_err().to_string();
    for want in [
        "c.csv:3: count: 12 vehicles, but detector \"W_stop_0\" over 0 to 900 s was given at line 2 with count 10",
        "c.csv:4: occupancy: 0.3, but detector \"W_stop_0\" over 0 to 900 s was given at line 2 with occupancy 0.2",
        "c.csv:5: interval_start_s: interval 450 to 1350 s of detector \"W_stop_0\" overlaps 0 to 900 s given at line 2",
        "c.csv:7: interval_start_s: interval 1700 to 1750 s of detector \"W_stop_0\" overlaps 900 to 1800 s given at line 6",
        "c.csv:9: interval_start_s: interval 0 to 900 s of detector \"W_stop_1\" overlaps 300 to 600 s given at line 8",
    ] {
        assert!(e.contains(want), "{want}\nnot in\n{e}");
    }
    assert_eq!(e.lines().count(), 5, "{e}");

    // JSON: a report (one per line) with its count, occupancy and interval.
    let report = |seq: u32, start_s: i64, end_s: i64, count: u32, occ: f64| {
        format!(
            "{{\"version\":1,\"region\":\"r\",\"intersection\":\"I1\",\"seq\":{seq},\"interval_start_ms\":{},\"interval_end_ms\":{},\"detectors\":[{{\"detector\":\"W_stop_0\",\"count\":{count},\"occupancy\":{occ},\"health\":\"ok\"}}]}}",
            start_s * 1000,
            end_s * 1000
        )
    };
    let first = report(1, 0, 900, 10, 0.2);
    let again = report(2, 0, 900, 10, 0.2);
    let one = parse_counts(net, "c.jsonl", &format!("{first}\n")).unwrap();
    assert_eq!(one.len(), 1);
    let jsonl = format!("{first}\n{again}\n");
    assert_eq!(parse_counts(net, "c.jsonl", &jsonl).unwrap(), one);
    let array = format!("[\n{first},\n{again}\n]\n");
    assert_eq!(parse_counts(net, "c.json", &array).unwrap(), one);

    let lines = [
        first.clone(),
        report(2, 0, 900, 12, 0.2),
        report(3, 0, 900, 10, 0.3),
        report(4, 450, 1350, 10, 0.2),
    ];
    let e = parse_counts(net, "c.jsonl", &lines.join("\n"))
        .unwrap_err()
        .to_string();
    for want in [
        "c.jsonl:2: detectors[0].count: 12 vehicles, but detector \"W_stop_0\" over 0 to 900000 ms was given at line 1 with count 10",
        "c.jsonl:3: detectors[0].occupancy: 0.3, but detector \"W_stop_0\" over 0 to 900000 ms was given at line 1 with occupancy 0.2",
        "c.jsonl:4: interval_start_ms: interval 450000 to 1350000 ms of detector \"W_stop_0\" overlaps 0 to 900000 ms given at line 1",
    ] {
        assert!(e.contains(want), "{want}\nnot in\n{e}");
    }
    assert_eq!(e.lines().count(), 3, "{e}");
    let e = parse_counts(net, "c.json", &format!("[\n{}\n]\n", lines.join(",\n")))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("c.json:3: [1].detectors[0].count: 12 vehicles, but detector \"W_stop_0\" over 0 to 900000 ms was given at line 2 with count 10"),
        "{e}"
    );
    assert!(
        e.contains("c.json:5: [3].interval_start_ms: interval 450000 to 1350000 ms of detector \"W_stop_0\" overlaps 0 to 900000 ms given at line 2"),
        "{e}"
    );

    // Reports already parsed: their "line" is their place in the list.
    let parsed = |texts: &[String]| -> Vec<DetectorReport> {
        texts
            .iter()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect()
    };
    assert_eq!(
        records_from_reports(net, &parsed(&[first.clone(), again])).unwrap(),
        one
    );
    let e = records_from_reports(net, &parsed(&lines))
        .unwrap_err()
        .to_string();
    for want in [
        "reports:2: [1].detectors[0].count: 12 vehicles, but detector \"W_stop_0\" over 0 to 900000 ms was given at line 1 with count 10",
        "reports:3: [2].detectors[0].occupancy: 0.3, but",
        "reports:4: [3].interval_start_ms: interval 450000 to 1350000 ms of detector \"W_stop_0\" overlaps 0 to 900000 ms given at line 1",
    ] {
        assert!(e.contains(want), "{want}\nnot in\n{e}");
    }
}

/// A queue over the advance loop flags the count as a lower bound.
#[test]
fn saturated_counts_are_lower_bounds() {
    let sc = scenario("arterial");
    let net = sc.network();
    let csv = "intersection,detector,interval_start_s,interval_end_s,count,occupancy\n\
               I1,W_stop_2,0,900,40,0.9\nI1,W_adv_2,0,900,40,0.8\n\
               I1,W_stop_0,0,900,150,0.3\nI1,W_stop_1,0,900,160,0.3\nI1,W_adv_0,0,900,150,0.1\nI1,W_adv_1,0,900,160,0.1\n";
    let recs = parse_counts(net, "c.csv", csv).unwrap();
    let est = estimate(net, &recs, Some(sc.demand()), EstimateParams::default());
    let i1 = &est.intersections[0];
    let m = |id: &str| i1.movements.iter().find(|m| m.movement == id).unwrap();
    assert!(m("W_left").lower_bound);
    assert!((m("W_left").flow_veh_h - 160.0).abs() < 1.0);
    assert!(!m("W_through").lower_bound);
    // Lanes 0 and 1 carry through and right together: 310 per 15 min.
    let tr = m("W_through").flow_veh_h + m("W_right").flow_veh_h;
    assert!((tr - 1240.0).abs() < 5.0, "{tr}");
}

/// The simulation check records its before/after numbers, and the candidate from estimated
/// flows beats the shipped off-peak plans on the arterial's peak.
#[test]
fn candidate_is_checked_in_the_simulator() {
    let sc = scenario("arterial");
    let net = sc.network();
    let flows = demand_flows(net, sc.demand(), Some(2));
    let planned = plan_network(net, &flows, &PlanParams::default()).unwrap();
    let vp = ValidateParams {
        seeds: vec![1, 2],
        horizon: Ms::from_s(900),
        warmup: Ms::from_s(300),
        ..ValidateParams::default()
    };
    let d = demand_from_flows(net, &flows, vp.warmup + vp.horizon).unwrap();
    let in_force: Vec<_> = net
        .intersections
        .iter()
        .enumerate()
        .map(|(i, ix)| (intersections::IntersectionIdx(i), ix.plans[0].clone()))
        .collect();
    let dec = validate_candidate(net, &d, &in_force, &planned.plans, &vp).unwrap();
    assert!(dec.before.mean_delay_s > 0.0 && dec.after.mean_delay_s > 0.0);
    assert_eq!(dec.accepted, dec.improvement > 0.03);
    let json = serde_json::to_value(&dec).unwrap();
    assert!(json["before"]["mean_delay_s"].is_number() && json["accepted"].is_boolean());
    // Each intersection's approach delay both ways, for each group's own figures.
    let ids: Vec<&str> = net.intersections.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        dec.intersection_delays.keys().collect::<Vec<_>>().len(),
        ids.len()
    );
    let (b, a, imp) = optimizer::decide::ApproachDelays::of_group(&dec.intersection_delays, &ids)
        .expect("vehicles crossed");
    assert!(b > 0.0 && a > 0.0 && ((b - a) / b - imp).abs() < 1e-12);
    let one =
        optimizer::decide::ApproachDelays::of_group(&dec.intersection_delays, &ids[..1]).unwrap();
    let first = dec.intersection_delays[ids[0]];
    assert!((one.0 - first.before_delay_veh_s / first.before_veh as f64).abs() < 1e-9);
    assert!(optimizer::decide::ApproachDelays::of_group(&dec.intersection_delays, &[]).is_none());
    assert!(
        json.get("intersection_delays").is_none(),
        "not in the record"
    );
    // The same plans against themselves: no improvement, never accepted.
    let same = validate_candidate(net, &d, &in_force, &in_force, &vp).unwrap();
    assert!(!same.accepted && same.improvement.abs() < 1e-9);
}

/// The check runs every cabinet's safety monitor (the controller's): a candidate whose
/// colours would trip it on the street (here a plan altered after validation to cut one
/// stage's yellow short, as a corrupted plan or a bug in the signal logic would) is refused
/// whatever its delay, with the trip in the record; the same plan intact passes the monitor.
#[test]
fn a_candidate_that_trips_the_safety_monitor_is_refused() {
    let sc = scenario("arterial");
    let net = sc.network();
    let flows = demand_flows(net, sc.demand(), Some(2));
    let planned = plan_network(net, &flows, &PlanParams::default()).unwrap();
    let vp = ValidateParams {
        seeds: vec![1, 2],
        horizon: Ms::from_s(900),
        warmup: Ms::from_s(300),
        threshold: 0.0,
        ..ValidateParams::default()
    };
    let d = demand_from_flows(net, &flows, vp.warmup + vp.horizon).unwrap();
    let in_force: Vec<_> = net
        .intersections
        .iter()
        .enumerate()
        .map(|(i, ix)| (intersections::IntersectionIdx(i), ix.plans[0].clone()))
        .collect();
    let intact = validate_candidate(net, &d, &in_force, &planned.plans, &vp).unwrap();
    assert!(
        intact.monitor_trips.is_empty(),
        "{:?}",
        intact.monitor_trips
    );
    // The first vehicle group of the second signal: its yellow a second short.
    let mut cut = planned.plans.clone();
    let (i, plan) = &mut cut[1];
    let g = net.intersections[i.0]
        .groups
        .iter()
        .position(|g| g.kind == intersections::spec::GroupKind::Vehicle)
        .unwrap();
    let id = net.intersections[i.0].id.clone();
    let group = net.intersections[i.0].groups[g].id.clone();
    for span in plan.spans[g].iter_mut().filter(|s| !s.always) {
        span.clear_end = span.clear_end - Ms(1000);
    }
    let dec = validate_candidate(net, &d, &in_force, &cut, &vp).unwrap();
    assert!(!dec.accepted, "{}", dec.reason);
    assert!(!dec.monitor_trips.is_empty(), "{}", dec.reason);
    let trip = &dec.monitor_trips[0];
    assert!(
        trip.starts_with(&format!("{id} at "))
            && trip.contains(&group)
            && trip.contains("clearance"),
        "{trip}"
    );
    assert!(dec.reason.contains("safety monitor"), "{}", dec.reason);
    let json = serde_json::to_value(&dec).unwrap();
    assert_eq!(json["monitor_trips"][0], trip.as_str());
}

/// A candidate that is worse on the first two seeds beyond doubt is rejected on them: the
/// other seeds are not run, the decision says so and quotes the first two seeds' figures,
/// which are those of a check on those two seeds alone. Run whole, the check rejects it too
/// and marks it as one its first seeds settle. A better candidate takes every seed.
#[test]
fn a_clear_rejection_stops_the_check_after_two_seeds() {
    let sc = scenario("arterial");
    let net = sc.network();
    let (flows, good, bad) = good_and_tripled(net, &sc);
    let vp = ValidateParams {
        seeds: vec![1, 2, 3],
        horizon: Ms::from_s(900),
        warmup: Ms::from_s(300),
        ..ValidateParams::default()
    };
    assert!(vp.early_reject, "on by default");
    let d = demand_from_flows(net, &flows, vp.warmup + vp.horizon).unwrap();
    let early = validate_candidate(net, &d, &good, &bad, &vp).unwrap();
    assert!(!early.accepted && early.stopped_early, "{early:?}");
    assert_eq!(early.seeds, vec![1, 2]);
    assert_eq!(early.after.seeds, vec![1, 2]);
    assert!(
        early.reason.contains("on the first 2 of 3 seeds"),
        "{}",
        early.reason
    );
    let two = ValidateParams {
        seeds: vec![1, 2],
        ..vp.clone()
    };
    let on_two = validate_candidate(net, &d, &good, &bad, &two).unwrap();
    assert_eq!(
        (&early.before, &early.after, early.improvement),
        (&on_two.before, &on_two.after, on_two.improvement)
    );
    assert!(!on_two.stopped_early);
    let whole = ValidateParams {
        early_reject: false,
        ..vp.clone()
    };
    let all = validate_candidate(net, &d, &good, &bad, &whole).unwrap();
    assert!(!all.accepted && !all.stopped_early && all.clear_on_first_seeds);
    assert_eq!(all.seeds, vec![1, 2, 3]);
    // The other way round the candidate is the better: every seed runs.
    let win = validate_candidate(net, &d, &bad, &good, &vp).unwrap();
    assert!(
        win.improvement > 0.0 && !win.stopped_early,
        "{}",
        win.reason
    );
    assert_eq!(win.seeds, vec![1, 2, 3]);
    let json = serde_json::to_value(&early).unwrap();
    assert_eq!(json["stopped_early"], true);
    assert!(json.get("clear_on_first_seeds").is_none());
}

/// Several candidate operations: the check picks the one with the lowest simulated delay,
/// whatever the order they come in, and says how it runs.
#[test]
fn the_check_picks_the_best_of_several_operations() {
    let sc = scenario("single");
    let net = sc.network();
    let (flows, good, bad) = good_and_tripled(net, &sc);
    assert_ne!(bad, good);
    let vp = ValidateParams {
        seeds: vec![1, 2],
        horizon: Ms::from_s(900),
        warmup: Ms::from_s(300),
        ..ValidateParams::default()
    };
    let d = demand_from_flows(net, &flows, vp.warmup + vp.horizon).unwrap();
    let in_force = Operation::coordinated(bad.clone());
    let ops = [
        Operation::coordinated(bad.clone()),
        Operation::actuated(good.clone(), 2.0),
        Operation::coordinated(good.clone()),
    ];
    let (dec, k) = validate_operations(net, &d, &in_force, &ops, &vp).unwrap();
    assert!(k != 0, "the plans in force again is not the best: {dec:?}");
    assert_eq!(dec.mode, ops[k].mode());
    // Each candidate alone gives the figures the decision quotes for the one it chose.
    let (alone, _) = validate_operations(net, &d, &in_force, &ops[k..=k], &vp).unwrap();
    assert_eq!(alone.after, dec.after);
    for (j, op) in ops.iter().enumerate() {
        let (other, _) =
            validate_operations(net, &d, &in_force, std::slice::from_ref(op), &vp).unwrap();
        assert!(
            other.after.mean_delay_s >= dec.after.mean_delay_s,
            "candidate {j} ({}) beats the chosen one: {} < {}",
            op.mode(),
            other.after.mean_delay_s,
            dec.after.mean_delay_s
        );
    }
    // Reversed, the same operation wins.
    let rev: Vec<Operation> = ops.iter().rev().cloned().collect();
    let (dec2, k2) = validate_operations(net, &d, &in_force, &rev, &vp).unwrap();
    assert_eq!(rev[k2], ops[k]);
    assert_eq!(dec2.after, dec.after);
    assert!(dec.accepted, "{}", dec.reason);
}

/// A mixed operation runs actuated exactly where it says, coordinated elsewhere.
#[test]
fn a_mixed_operation_runs_actuated_where_it_says() {
    let sc = scenario("arterial");
    let plans = webster_plans(&sc, &PlanParams::default()).unwrap();
    let at = vec![plans[1].0, plans[3].0];
    let op = Operation::mixed(plans.clone(), at.clone(), 2.0);
    assert_eq!(op.mode(), "mixed");
    let c = op.control();
    let kinds: Vec<_> = c.kinds.iter().map(|(i, _)| *i).collect();
    assert_eq!(kinds, at);
    assert!(c
        .kinds
        .iter()
        .all(|(_, k)| *k == simulator::ControlKind::Actuated));
    assert_eq!(c.actuated.max_green_factor, 2.0);
    for (i, _) in &plans {
        assert_eq!(op.actuated_at(*i).is_some(), at.contains(i), "{i:?}");
    }
    assert_eq!(
        Operation::mixed(plans.clone(), vec![], 2.0).mode(),
        "coordinated"
    );
    let all: Vec<_> = plans.iter().map(|(i, _)| *i).collect();
    assert_eq!(Operation::mixed(plans.clone(), all, 2.0).mode(), "actuated");
    // It runs, and differently from all-coordinated.
    let a = sc.run(&c, 1, Ms::from_s(1200)).unwrap();
    let b = sc
        .run(
            &Operation::coordinated(plans).control(),
            1,
            Ms::from_s(1200),
        )
        .unwrap();
    assert!(a.completed > 100);
    assert_ne!(a.mean_delay_s, b.mean_delay_s);
}

/// Where to run actuated is chosen per coordination group from the history: on the
/// arterial, whose platoons a green wave serves, nowhere; on the congested grid, whole
/// avenues at a time.
#[test]
fn actuation_is_chosen_per_group_where_the_history_says_it_pays() {
    let art = scenario("arterial");
    let plans = webster_plans(&art, &PlanParams::default()).unwrap();
    let at = choose_actuated(&art, &plans, 2.0, &[101], Ms::from_s(3600)).unwrap();
    assert!(at.is_empty(), "{at:?}");
    let grid = scenario("grid4");
    let net = grid.network();
    let plans = webster_plans(&grid, &PlanParams::default()).unwrap();
    let at = choose_actuated(&grid, &plans, 2.0, &[101], Ms::from_s(3600)).unwrap();
    assert!(!at.is_empty());
    for g in &net.coordination_groups {
        let n = g.intersections.iter().filter(|i| at.contains(i)).count();
        assert!(n == 0 || n == g.intersections.len(), "{}: {n}", g.id);
    }
}

/// The price of permissive left turns can be limited to some intersections (whole
/// coordination groups, as the commissioning chooses it): those get the plans of the planner
/// that prices everywhere, the others those of the planner that prices nowhere.
#[test]
fn the_left_turn_price_applies_only_where_it_is_asked_for() {
    let sc = scenario("grid4");
    let net = sc.network();
    let flows = demand_flows(net, sc.demand(), None);
    let plain = plan_network(net, &flows, &PlanParams::default()).unwrap();
    let everywhere = PlanParams {
        permissive_left: Some(GapAcceptance::default()),
        ..PlanParams::default()
    };
    let priced = plan_network(net, &flows, &everywhere).unwrap();
    let group = &net.coordination_groups[0];
    let some = PlanParams {
        permissive_left_at: Some(group.intersections.clone()),
        ..everywhere.clone()
    };
    let mixed = plan_network(net, &flows, &some).unwrap();
    let mut differ = 0;
    for ((i, m), ((_, p), (_, q))) in mixed
        .plans
        .iter()
        .zip(priced.plans.iter().zip(&plain.plans))
    {
        let want = if group.intersections.contains(i) {
            p
        } else {
            q
        };
        assert_eq!(m, want, "{}", net.intersections[i.0].id);
        differ += usize::from(p != q);
        assert_eq!(
            some.permissive_left_of(*i).is_some(),
            group.intersections.contains(i)
        );
    }
    assert!(differ > 0, "the price changes some of grid4's plans");
    // Nowhere: the same as no price at all.
    let none = PlanParams {
        permissive_left_at: Some(Vec::new()),
        ..everywhere
    };
    assert_eq!(plan_network(net, &flows, &none).unwrap().plans, plain.plans);
}

/// The adaptive loop's commissioning chooses, per group, the planner that prices permissive
/// left turns where the history says it pays: on grid4 (shared lanes of through and
/// permissive left traffic on the avenues) somewhere, in whole groups; on the arterial,
/// where it lengthens the cycle for nothing, nowhere. Forcing the price, or not offering it,
/// leaves the planner as given.
#[test]
fn the_commissioning_prices_permissive_lefts_where_the_history_says_it_pays() {
    let params = AdaptiveParams {
        commissioning_seeds: vec![101],
        ..AdaptiveParams::default()
    };
    let art = scenario("arterial");
    let c = commission(&art, &params).unwrap();
    assert_eq!(
        c.plan,
        params.plan,
        "arterial: {:?}",
        c.priced_at(art.network())
    );
    let grid = scenario("grid4");
    let net = grid.network();
    let c = commission(&grid, &params).unwrap();
    let priced = c.priced_at(net);
    assert!(!priced.is_empty());
    for g in &net.coordination_groups {
        let n = g
            .intersections
            .iter()
            .filter(|i| priced.contains(i))
            .count();
        assert!(n == 0 || n == g.intersections.len(), "{}: {n}", g.id);
    }
    // Not offered: the planner as given.
    let c = commission(
        &grid,
        &AdaptiveParams {
            offer_left_price: false,
            ..params.clone()
        },
    )
    .unwrap();
    assert!(c.priced_at(net).is_empty());
    assert_eq!(c.plan, params.plan);
    // Forced everywhere: priced everywhere.
    let forced = AdaptiveParams {
        plan: PlanParams {
            permissive_left: Some(GapAcceptance::default()),
            ..PlanParams::default()
        },
        ..params
    };
    let c = commission(&grid, &forced).unwrap();
    assert_eq!(c.priced_at(net).len(), net.intersections.len());
}

/// The adaptive loop runs on the cabinet's machine, re-plans, and moves vehicles.
#[test]
fn greenwave_adaptive_loop_runs() {
    let sc = scenario("single");
    let (m, log) = run_control(
        &sc,
        BenchControl::Greenwave,
        1,
        Ms::from_s(1800),
        &AdaptiveParams::default(),
    )
    .unwrap();
    assert_eq!(log.replans, 2);
    assert!(m.completed > 500 && m.gridlock.is_none(), "{m:?}");
}

/// The check's demand replays the recent estimates as its warm-up (one slice per interval,
/// oldest first, as many whole intervals as fit in the warm-up and are known) and holds the
/// newest over the horizon; a warm-up shorter than an interval replays nothing. A heavy
/// recent past leaves its queues in the check: the plans in force show more delay than on
/// the newest estimate from empty.
#[test]
fn the_check_replays_the_recent_estimates() {
    let sc = scenario("single");
    let net = sc.network();
    let slice = |k| demand_flows(net, sc.demand(), Some(k));
    let heavy: Vec<Vec<f64>> = slice(3)
        .iter()
        .map(|f| f.iter().map(|x| x * 2.0).collect())
        .collect();
    let recent = vec![heavy.clone(), heavy.clone(), heavy, slice(0)];
    let interval = Ms::from_s(600);
    let p = ValidateParams {
        seeds: vec![1, 2],
        horizon: Ms::from_s(900),
        warmup: Ms::from_s(3600),
        ..ValidateParams::default()
    };
    let (d, q) = check_demand(net, &recent, interval, &p).unwrap();
    // Four intervals known (fewer than the hour's six): 40 min replayed, then 15 min in two
    // slices of the newest.
    assert_eq!(q.warmup, Ms::from_s(2400));
    assert_eq!((q.horizon, q.seeds.clone()), (p.horizon, p.seeds.clone()));
    assert_eq!((d.slice, d.slices), (interval, 6));
    for (k, flows) in recent.iter().chain([&recent[3], &recent[3]]).enumerate() {
        let one = demand_from_flows(net, flows, interval).unwrap();
        for (e, o) in d.entries.iter().zip(&one.entries) {
            assert_eq!(e.link, o.link);
            assert!(
                (e.flows_veh_h[k] - o.flows_veh_h[0]).abs() < 1e-9,
                "slice {k}"
            );
        }
    }
    assert_eq!(
        d.turning,
        demand_from_flows(net, &recent[3], interval)
            .unwrap()
            .turning
    );
    // Only the last two fit in 20 min.
    let short = ValidateParams {
        warmup: Ms::from_s(1200),
        ..p.clone()
    };
    let (d2, q2) = check_demand(net, &recent, interval, &short).unwrap();
    assert_eq!((q2.warmup, d2.slices), (Ms::from_s(1200), 4));
    // Less than an interval: the newest from empty, the settings as given.
    let none = ValidateParams {
        warmup: Ms::from_s(300),
        ..p.clone()
    };
    let (d0, q0) = check_demand(net, &recent, interval, &none).unwrap();
    assert_eq!(q0, none);
    assert_eq!(
        d0,
        demand_from_flows(net, &recent[3], none.warmup + none.horizon).unwrap()
    );
    // The heavy past shows: the plans in force against themselves, replayed and from empty.
    let plans = plan_network(net, &slice(0), &PlanParams::default())
        .unwrap()
        .plans;
    let op = Operation::coordinated(plans);
    let (replayed, _) = validate_operations(net, &d, &op, std::slice::from_ref(&op), &q).unwrap();
    let (empty, _) = validate_operations(net, &d0, &op, std::slice::from_ref(&op), &q0).unwrap();
    assert!(
        replayed.before.mean_delay_s > 2.0 * empty.before.mean_delay_s,
        "replayed {:.1} s, from empty {:.1} s",
        replayed.before.mean_delay_s,
        empty.before.mean_delay_s
    );
}

/// The check's twin (`decide::Twin`). One that is not persistent is the replay
/// (`check_demand` then `validate_operations`) to the last digit. A persistent one goes on
/// from check to check (its age grows by an interval each time), remembers the heavy past
/// that a replay of the last intervals has forgotten, takes a new operation in force, starts
/// again when a check comes late, and is reproducible.
#[test]
fn the_twin_goes_on_from_check_to_check() {
    let sc = scenario("single");
    let net = sc.network();
    let slice = |k| demand_flows(net, sc.demand(), Some(k));
    let scale = |f: &[Vec<f64>], x: f64| -> Vec<Vec<f64>> {
        f.iter()
            .map(|r| r.iter().map(|q| q * x).collect())
            .collect()
    };
    let interval = Ms::from_s(600);
    // Twenty minutes replayed (two intervals), 15 min checked.
    let p = ValidateParams {
        seeds: vec![1, 2],
        horizon: Ms::from_s(900),
        warmup: Ms::from_s(1200),
        ..ValidateParams::default()
    };
    let plans = plan_network(net, &slice(0), &PlanParams::default())
        .unwrap()
        .plans;
    let op = Operation::coordinated(plans.clone());
    let other = plan_network(net, &scale(&slice(3), 1.4), &PlanParams::default())
        .unwrap()
        .plans;
    let cand = [Operation::coordinated(other.clone())];
    // Heavy for three intervals, then light.
    let heavy = scale(&slice(3), 2.0);
    let seq = [heavy.clone(), heavy.clone(), heavy, slice(0), slice(0)];

    // Not persistent: the replay, check by check.
    let mut replay = Twin::new(interval, false);
    let mut recent = Vec::new();
    for (k, f) in seq.iter().enumerate() {
        let now = Ms(interval.0 * (k as i64 + 1));
        let (got, gk) = replay
            .check(net, TwinStep::held(now, f.clone(), &op), &cand, &p)
            .unwrap();
        recent.push(f.clone());
        let (d, q) = check_demand(net, &recent, interval, &p).unwrap();
        let (want, wk) = validate_operations(net, &d, &op, &cand, &q).unwrap();
        assert_eq!((got, gk), (want, wk), "check {k}");
        assert!(replay.age(now) <= p.warmup);
    }

    // Persistent: the same checks.
    let run = || {
        let mut twin = Twin::new(interval, true);
        let mut out = Vec::new();
        for (k, f) in seq.iter().enumerate() {
            let now = Ms(interval.0 * (k as i64 + 1));
            let (d, _) = twin
                .check(net, TwinStep::held(now, f.clone(), &op), &cand, &p)
                .unwrap();
            assert_eq!(twin.age(now), now, "check {k}: the twin has the whole past");
            out.push(d);
        }
        (twin, out)
    };
    let (mut twin, went_on) = run();
    assert_eq!(went_on, run().1, "reproducible");
    // At the last check the replay has only the two light intervals; the twin still carries
    // what the heavy hour left.
    let last_now = Ms(interval.0 * seq.len() as i64);
    let mut fresh = Twin::new(interval, false);
    fresh
        .check(
            net,
            TwinStep::held(last_now - interval, seq[3].clone(), &op),
            &cand,
            &p,
        )
        .unwrap();
    let (replayed, _) = fresh
        .check(
            net,
            TwinStep::held(last_now, seq[4].clone(), &op),
            &cand,
            &p,
        )
        .unwrap();
    let twin_last = went_on.last().unwrap();
    assert!(
        twin_last.before.mean_delay_s > replayed.before.mean_delay_s,
        "twin {:.1} s, replay {:.1} s",
        twin_last.before.mean_delay_s,
        replayed.before.mean_delay_s
    );
    // A new operation in force is taken as from the last check: the twin's "before" runs
    // it, so it checks the same as a candidate that is the operation in force.
    let now = last_now + interval;
    let mut same = twin.clone();
    let (moved, _) = twin
        .check(net, TwinStep::held(now, slice(0), &cand[0]), &cand, &p)
        .unwrap();
    assert!(moved.improvement.abs() < 1e-12, "{moved:?}");
    let (stayed, _) = same
        .check(net, TwinStep::held(now, slice(0), &op), &cand, &p)
        .unwrap();
    assert_ne!(moved.before, stayed.before);
    // A check that comes an interval late starts again from the replay.
    let late = now + interval + interval;
    twin.check(net, TwinStep::held(late, slice(0), &cand[0]), &cand, &p)
        .unwrap();
    assert_eq!(twin.age(late), p.warmup);
    // `advance` goes on without a check.
    twin.advance(net, TwinStep::held(late + interval, slice(0), &cand[0]), &p)
        .unwrap();
    assert_eq!(twin.age(late + interval), p.warmup + interval);
    // Flows ahead other than the interval's: the forks run on them (a heavier horizon is
    // slower under the same operation), the twin itself advances on the interval's as before.
    let at = late + interval + interval;
    let (mut a, mut b) = (twin.clone(), twin);
    let (held, _) = a
        .check(net, TwinStep::held(at, slice(0), &op), &cand, &p)
        .unwrap();
    let heavier = scale(&slice(0), 1.5);
    let (ahead, _) = b
        .check(
            net,
            TwinStep::held(at, slice(0), &op).ahead(&heavier),
            &cand,
            &p,
        )
        .unwrap();
    assert!(
        ahead.before.mean_delay_s > held.before.mean_delay_s,
        "ahead {:.1} s, held {:.1} s",
        ahead.before.mean_delay_s,
        held.before.mean_delay_s
    );
    assert_eq!(a.age(at), b.age(at));
}

/// A persistent twin whose checks stop early goes on for every seed as if they had not: at
/// each check that stops, its figures are those of a twin of the first two seeds alone, and
/// afterwards a whole check gives what it gives on a twin that never stopped.
#[test]
fn a_twin_that_stops_early_goes_on_for_every_seed() {
    let sc = scenario("arterial");
    let net = sc.network();
    let (flows, good, bad) = good_and_tripled(net, &sc);
    let op = Operation::coordinated(good);
    let cand = [Operation::coordinated(bad)];
    let interval = Ms::from_s(600);
    let three = ValidateParams {
        seeds: vec![1, 2, 3],
        horizon: Ms::from_s(900),
        warmup: Ms::from_s(1200),
        ..ValidateParams::default()
    };
    let two = ValidateParams {
        seeds: vec![1, 2],
        ..three.clone()
    };
    let whole = ValidateParams {
        early_reject: false,
        ..three.clone()
    };
    let twin = || Twin::new(interval, true);
    let (mut a, mut b, mut c) = (twin(), twin(), twin());
    let mut stopped = 0;
    for k in 1..=4 {
        let now = Ms(interval.0 * k);
        let step = || TwinStep::held(now, flows.clone(), &op);
        let (da, _) = a.check(net, step(), &cand, &three).unwrap();
        let (db, _) = b.check(net, step(), &cand, &two).unwrap();
        c.check(net, step(), &cand, &whole).unwrap();
        assert!(!da.accepted, "check {k}: {}", da.reason);
        if da.stopped_early {
            stopped += 1;
            assert_eq!(
                (&da.before, &da.after),
                (&db.before, &db.after),
                "check {k}"
            );
        } else {
            assert_eq!(da.seeds, vec![1, 2, 3]);
        }
        assert_eq!(a.age(now), now, "check {k}: every seed went on");
    }
    assert!(stopped > 0, "no check stopped early");
    // The third seed went on through the checks that stopped early as through whole ones.
    let now = Ms(interval.0 * 5);
    let step = || TwinStep::held(now, flows.clone(), &op);
    assert_eq!(
        a.check(net, step(), &cand, &whole).unwrap(),
        c.check(net, step(), &cand, &whole).unwrap()
    );
}

/// The forecast along the history's time-of-day profile (`Estimator::forecast`) is closer to
/// the demand of the interval to come than the estimate held still (the random walk): on
/// grid4 and single under their fixed plans, 10-min counts, the mean absolute error per
/// movement from the second interval on. With the trend off the forecast is the estimate.
#[test]
fn the_forecast_follows_the_history_profile() {
    use optimizer::adaptive::CountTaker;
    use optimizer::cabinet::Cabinets;
    use optimizer::estimate::Estimator;
    use simulator::ControlKind;
    for name in ["grid4", "single"] {
        let sc = scenario(name);
        let net = sc.network();
        let op = Operation::coordinated(webster_plans(&sc, &PlanParams::default()).unwrap());
        let mut sim = sc
            .simulation(&Control::of_kind(ControlKind::External), 1)
            .unwrap();
        let mut cab = Cabinets::new(&sim, &op).unwrap();
        let mut est = Estimator::new(net, Some(sc.demand()), EstimateParams::default());
        let off = EstimateParams {
            history_trend: false,
            ..EstimateParams::default()
        };
        let mut still = Estimator::new(net, Some(sc.demand()), off);
        let mut taker = CountTaker::new(&sim);
        let error = |e: &[Vec<f64>], truth: &[Vec<f64>]| {
            let (mut sum, mut n) = (0.0, 0);
            for (ei, ti) in e.iter().zip(truth) {
                for (a, b) in ei.iter().zip(ti) {
                    if *b >= 1.0 {
                        sum += (a - b).abs() / b;
                        n += 1;
                    }
                }
            }
            sum / n as f64
        };
        let (mut held, mut ahead) = (0.0, 0.0);
        for k in 1..12 {
            let t = Ms::from_s(600 * k);
            cab.run_until(&mut sim, t);
            let records = taker.take(&sim);
            est.push(&records);
            still.push(&records);
            let at = t + Ms::from_s(300);
            let slice = (at.0 / sc.demand().slice.0) as usize;
            let coming = demand_flows(net, sc.demand(), Some(slice));
            assert_eq!(still.forecast(at), still.estimate(), "{name}: trend off");
            if k > 1 {
                held += error(&still.estimate().planning_flows(1.0), &coming);
                ahead += error(&est.forecast(at).planning_flows(1.0), &coming);
            }
        }
        assert!(
            ahead < 0.9 * held,
            "{name}: forecast {:.3} against held {:.3}",
            ahead / 10.0,
            held / 10.0
        );
    }
}
