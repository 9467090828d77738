//! The service's planner on counts that arrived as detector reports: the arterial's simulated
//! detectors report for an hour, the store ingests them (duplicates and all), and the planner
//! decides per coordination group, with the check's figures recorded. A region that names its
//! demand history keeps the modes chosen from it at start-up, per group.

use std::path::Path;

use intersections::load::{load_demand_for, load_network};
use intersections::messages::{
    DetectorCount, DetectorHealth, DetectorReport, Operation, WIRE_VERSION,
};
use intersections::model::Network;
use intersections::Ms;
use optimizer::adaptive::{
    choose_actuated, commission, simulated_counts, webster_plans, AdaptiveParams,
};
use optimizer::counts::CountRecord;
use optimizer::decide::ValidateParams;
use optimizer::ingest::CountStore;
use optimizer::serve::{load_config, optimizer_planner, OperationChoice, ServeConfig};
use optimizer::webster::PlanParams;
use simulator::{Control, Scenario, SimConfig};

/// The counts as the cabinets of region `region` would send them: one report per intersection
/// and interval, each delivered twice (at-least-once), ingested.
fn ingested(net: &Network, region: &str, records: &[CountRecord]) -> CountStore {
    let mut store = CountStore::new(Ms::from_s(4 * 3600));
    let mut keys: Vec<(usize, Ms, Ms)> = records
        .iter()
        .map(|r| (r.intersection.0, r.start, r.end))
        .collect();
    keys.sort();
    keys.dedup();
    for (seq, (i, start, end)) in (1u64..).zip(keys) {
        let ix = &net.intersections[i];
        let r = DetectorReport {
            version: WIRE_VERSION,
            region: region.into(),
            intersection: ix.id.clone(),
            seq,
            interval_start_ms: start.0,
            interval_end_ms: end.0,
            detectors: records
                .iter()
                .filter(|c| c.intersection.0 == i && c.start == start)
                .map(|c| DetectorCount {
                    detector: ix.detectors[c.detector].id.clone(),
                    count: c.count,
                    occupancy: c.occupancy.unwrap_or(0.0),
                    health: DetectorHealth::Ok,
                })
                .collect(),
        };
        store.ingest(&r).unwrap();
        store.ingest(&r).unwrap(); // at-least-once delivery
    }
    store
}

/// A shipped network and an hour of its simulated detectors' counts (its demand file, its
/// scheduled plans, seed 1, 5-min reports).
fn an_hour_of_counts(name: &str) -> (Network, Vec<CountRecord>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    let net = load_network(&dir.join(format!("{name}.toml"))).unwrap();
    let demand = load_demand_for(&dir.join(format!("{name}.demand.toml")), &net).unwrap();
    let sc = Scenario::new(net.clone(), demand, SimConfig::default()).unwrap();
    let records =
        simulated_counts(&sc, &Control::fixed(), 1, Ms::from_s(3600), Ms::from_s(300)).unwrap();
    (net, records)
}

#[test]
fn the_service_planner_decides_per_group_from_ingested_reports() {
    let (net, records) = an_hour_of_counts("arterial");
    let store = ingested(&net, "r", &records);
    let planner = optimizer_planner(
        Ms::from_s(3600),
        ValidateParams {
            seeds: vec![1, 2],
            horizon: Ms::from_s(1800),
            ..ValidateParams::default()
        },
        OperationChoice::default(),
    );
    let decisions = planner("r", &net, &store, &Default::default(), Ms::from_s(3600));
    assert!(!decisions.is_empty());
    // The estimated flows, for the time series: every movement of the region once over the
    // round's decisions, counted by the loops here, with what the round planned for.
    let flows: Vec<_> = decisions.iter().flat_map(|d| d.flows.iter()).collect();
    let movements: usize = net.intersections.iter().map(|ix| ix.movements.len()).sum();
    assert_eq!(flows.len(), movements);
    assert!(flows.iter().all(|f| f.estimate.measured
        && f.estimate.flow_veh_h.is_finite()
        && f.planned_veh_h >= 0.0));
    assert!(flows.iter().map(|f| f.planned_veh_h).sum::<f64>() > 1000.0);
    for d in &decisions {
        assert!(
            d.record["detail"]["before"]["mean_delay_s"].is_number(),
            "{}",
            d.record
        );
    }
    // Deployed or not, it is one decision per coordination group; a deployment carries a
    // checked plan for every member.
    if decisions.iter().any(|d| !d.plans.is_empty()) {
        let g = &net.coordination_groups[0];
        let d = decisions
            .iter()
            .find(|d| d.group == g.id)
            .expect("the corridor's decision");
        assert_eq!(d.plans.len(), g.intersections.len());
        // Its record carries the group's own figures beside the region's.
        let own = &d.record["detail"]["group"];
        assert!(
            own["approach_delay_before_s"].as_f64().unwrap() > 0.0
                && own["approach_delay_after_s"].as_f64().unwrap() > 0.0
                && own["improvement"].is_number(),
            "{}",
            d.record
        );
        // It carries the operation the check chose.
        assert_eq!(
            Some(d.operation.mode()),
            d.record["detail"]["mode"].as_str(),
            "{}",
            d.record
        );
        for (ix, p) in &d.plans {
            let i = net.intersection(ix).unwrap();
            intersections::plan::validate(
                &net.intersections[i.0],
                &net.safety,
                p,
                &intersections::diag::FieldPath::root(),
            )
            .unwrap();
        }
    }
}

/// A `serve.toml` in a fresh folder `name-PID` under the temporary directory, with `top`
/// (settings of its own, each line ending in a newline) and one region per shipped network in
/// `regions`, each naming its demand file as its `history`; the folder and the configuration.
fn with_histories(name: &str, top: &str, regions: &[&str]) -> (std::path::PathBuf, ServeConfig) {
    let networks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    let tmp = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let mut text = format!(
        "data_dir = \"centre\"\n{top}\
         [broker]\nhost = \"127.0.0.1\"\nport = 1883\n\
         [signing]\nkey_id = \"c\"\nsecret_key_file = \"key\"\n"
    );
    for name in regions {
        text += &format!(
            "[[regions]]\nid = \"{name}\"\nnetwork = \"{n}/{name}.toml\"\nhistory = \"{n}/{name}.demand.toml\"\n",
            n = networks.display()
        );
    }
    std::fs::write(tmp.join("serve.toml"), text).unwrap();
    let cfg = load_config(&tmp.join("serve.toml")).unwrap();
    (tmp, cfg)
}

/// Regions that name their demand history (the shipped grid4, arterial and single, with their
/// demand files): at start-up each gets, per coordination group, the mode the benchmark's
/// adaptive loop chooses from that history (`choose_actuated`, called here for the
/// expectation), and a record of it for the decision log. Each round then checks one
/// candidate, the new plans in those modes, and each group's deployment carries the operation
/// of its own group. Without the history, the same round checks the region both ways as a
/// whole, as before.
#[test]
fn a_region_with_a_history_keeps_the_modes_chosen_from_it_per_group() {
    let networks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    // The left-turn price not offered: this test is about the modes (grid4's history prices
    // every group and runs them all coordinated when it is; the next test).
    let (tmp, cfg) = with_histories(
        "gw-planner-hist",
        "offer_left_price = false\n",
        &["grid4", "arterial", "single"],
    );
    let ops = cfg.operations_from_history().unwrap();
    let factor = cfg.actuated_max_green_factor;
    let actuated = Operation::Actuated {
        max_green_factor: factor,
        passage_s: 3.0,
    };

    // The start-up choice is the adaptive loop's, on the same history.
    let mut nets = std::collections::BTreeMap::new();
    for r in &cfg.regions {
        let net = load_network(&r.network).unwrap();
        let history = load_demand_for(r.history.as_ref().unwrap(), &net).unwrap();
        let duration = history.duration();
        let sc = Scenario::new(net.clone(), history, SimConfig::default()).unwrap();
        let plans = webster_plans(&sc, &PlanParams::default()).unwrap();
        let seeds = AdaptiveParams::default().commissioning_seeds;
        let want = choose_actuated(&sc, &plans, factor, &seeds, duration).unwrap();
        let m = &ops.from_history[&r.id];
        assert_eq!(m.actuated_at, want, "{}", r.id);
        // The base plans the check is offered beside each re-plan.
        assert_eq!(m.plans, plans, "{}", r.id);
        // Whole groups.
        for g in &m.groups {
            let n = g
                .intersections
                .iter()
                .filter(|i| m.actuated_ids.contains(i))
                .count();
            // Actuated with the service's parameters, or coordinated.
            let want = if n == g.intersections.len() {
                actuated.clone()
            } else {
                Operation::Coordinated
            };
            assert_eq!(g.operation, want, "{g:?}");
            assert!(n == 0 || n == g.intersections.len(), "{g:?}");
        }
        nets.insert(r.id.clone(), net);
    }
    // On the shipped networks: two of grid4's avenues run actuated, two coordinated (with
    // lane changes in the simulator, 2026-11-29; all four ran actuated before); the
    // arterial's corridor and the single intersection stay coordinated.
    let modes = |region: &str| {
        let m = &ops.from_history[region];
        let a = m
            .groups
            .iter()
            .filter(|g| g.operation != Operation::Coordinated)
            .count();
        (a, m.groups.len() - a)
    };
    assert_eq!(modes("grid4"), (2, 2));
    assert_eq!(modes("arterial"), (0, 1));
    assert_eq!(modes("single"), (0, 1));

    // The start-up records, one per region, region-wide, for the decision log.
    let start = ops.start_up_decisions(Ms::from_s(5));
    assert_eq!(start.len(), 3);
    for (region, d) in &start {
        let m = &ops.from_history[region];
        assert_eq!(d.group, "*");
        assert!(d.plans.is_empty());
        let r = &d.record;
        assert_eq!(r["region"], region.as_str());
        assert_eq!(r["what"], "modes from history");
        assert_eq!(r["modes_from"], "history");
        assert_eq!(r["actuated"], serde_json::json!(m.actuated_ids));
        assert_eq!(
            r["detail"]["groups"].as_array().unwrap().len(),
            m.groups.len()
        );
        let want = if region == "grid4" {
            "mixed"
        } else {
            "coordinated"
        };
        assert_eq!(r["detail"]["mode"], want, "{r}");
    }

    // Rounds on grid4 from an hour of its reports. Any candidate that does not gridlock
    // passes (threshold -inf), so the groups' deployments are built.
    let net = &nets["grid4"];
    let history = load_demand_for(&networks.join("grid4.demand.toml"), net).unwrap();
    let sc = Scenario::new(net.clone(), history, SimConfig::default()).unwrap();
    let records =
        simulated_counts(&sc, &Control::fixed(), 1, Ms::from_s(3600), Ms::from_s(300)).unwrap();
    let store = ingested(net, "grid4", &records);
    let params = ValidateParams {
        threshold: f64::NEG_INFINITY,
        seeds: vec![1],
        horizon: Ms::from_s(900),
        warmup: Ms::from_s(300),
        ..ValidateParams::default()
    };
    // With the modes from the history, and with them as if the history had also kept
    // avenues 2 and 4 coordinated: another mixed region.
    let mut mixed = ops.clone();
    {
        let m = mixed.from_history.get_mut("grid4").unwrap();
        for g in &mut m.groups {
            if g.group == "avenue_2" || g.group == "avenue_4" {
                g.operation = Operation::Coordinated;
            }
        }
        m.actuated_ids
            .retain(|id| !id.starts_with("G2") && !id.starts_with("G4"));
        m.actuated_at = m
            .actuated_ids
            .iter()
            .map(|id| net.intersection(id).unwrap())
            .collect();
    }
    // The history's own modes are mixed on grid4 since lane changes (see above).
    for (ops, want_mode) in [(&ops, "mixed"), (&mixed, "mixed")] {
        let m = &ops.from_history["grid4"];
        let planner = optimizer_planner(Ms::from_s(3600), params.clone(), ops.clone());
        let decisions = planner("grid4", net, &store, &Default::default(), Ms::from_s(3600));
        // Two candidates in the history's modes, the re-plan and the history's base plans:
        // the check's mode is theirs, and the record says which one its figures are about.
        for d in &decisions {
            assert_eq!(d.record["modes_from"], "history", "{}", d.record);
            let which = d.record["detail"]["candidate"].as_str().unwrap_or_default();
            assert!(which == "re-plan" || which == "history", "{}", d.record);
            if which == "history" {
                let reason = d.record["detail"]["reason"].as_str().unwrap_or_default();
                assert!(reason.ends_with("(the history's base plans)"), "{reason}");
                for (ix, p) in &d.plans {
                    let i = net.intersection(ix).unwrap();
                    let base = &m.plans.iter().find(|(j, _)| *j == i).unwrap().1;
                    assert_eq!(p, &base.to_spec(&net.intersections[i.0]), "{ix}");
                }
            }
            assert_eq!(d.record["actuated"], serde_json::json!(m.actuated_ids));
            assert_eq!(d.record["detail"]["mode"], want_mode, "{}", d.record);
        }
        // Every group deployed, each with its own group's operation.
        assert_eq!(decisions.len(), m.groups.len(), "{decisions:?}");
        for g in &m.groups {
            let d = decisions
                .iter()
                .find(|d| d.group == g.group)
                .unwrap_or_else(|| panic!("no decision for {}", g.group));
            let members: Vec<&String> = d.plans.iter().map(|(ix, _)| ix).collect();
            assert_eq!(members, g.intersections.iter().collect::<Vec<_>>());
            assert_eq!(d.operation, g.operation, "{want_mode}: {}", g.group);
        }
    }
    // Without the history, as before: both modes checked for the region as a whole, one
    // operation for every group, no `modes_from`.
    let plain = optimizer_planner(Ms::from_s(3600), params, cfg.operations());
    let decisions = plain("grid4", net, &store, &Default::default(), Ms::from_s(3600));
    assert_eq!(decisions.len(), 4);
    for d in &decisions {
        assert!(d.record.get("modes_from").is_none(), "{}", d.record);
        assert_ne!(d.record["detail"]["mode"], "mixed", "{}", d.record);
        assert_eq!(d.operation, decisions[0].operation);
        assert_eq!(
            Some(d.operation.mode()),
            d.record["detail"]["mode"].as_str()
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// With the left-turn price offered (the default), a region's start-up choice is the adaptive
/// loop's commissioning on its history (`commission`): the planner it re-plans with prices
/// permissive left turns in the groups where that served the history better (on grid4, whose
/// avenues share lanes between through and permissive left traffic, some; on the arterial
/// none), its base plans are that planner's, and the start-up record names the priced
/// signals.
#[test]
fn a_region_with_a_history_prices_permissive_lefts_where_it_pays() {
    let (tmp, cfg) = with_histories("gw-planner-price", "", &["grid4", "arterial"]);
    assert!(cfg.offer_left_price);
    let ops = cfg.operations_from_history().unwrap();
    let start = ops.start_up_decisions(Ms::from_s(5));
    for r in &cfg.regions {
        let net = load_network(&r.network).unwrap();
        let history = load_demand_for(r.history.as_ref().unwrap(), &net).unwrap();
        let sc = Scenario::new(net.clone(), history, SimConfig::default()).unwrap();
        let params = AdaptiveParams {
            actuated_max_green_factor: Some(cfg.actuated_max_green_factor),
            ..AdaptiveParams::default()
        };
        let want = commission(&sc, &params).unwrap();
        let m = &ops.from_history[&r.id];
        assert_eq!(m.planner, want.plan, "{}", r.id);
        assert_eq!(m.actuated_at, want.actuated_at, "{}", r.id);
        assert_eq!(m.plans, webster_plans(&sc, &want.plan).unwrap(), "{}", r.id);
        let priced: Vec<String> = want
            .priced_at(&net)
            .iter()
            .map(|i| net.intersections[i.0].id.clone())
            .collect();
        assert_eq!(m.priced_ids, priced, "{}", r.id);
        if r.id == "grid4" {
            assert!(!priced.is_empty());
            assert_ne!(m.plans, webster_plans(&sc, &PlanParams::default()).unwrap());
        } else {
            assert!(priced.is_empty(), "{priced:?}");
        }
        let (_, d) = start.iter().find(|(region, _)| *region == r.id).unwrap();
        let detail = &d.record["detail"];
        assert_eq!(
            detail["permissive_lefts_priced_at"],
            serde_json::json!(priced),
            "{}",
            d.record
        );
        let reason = detail["reason"].as_str().unwrap();
        assert!(
            reason.contains("permissive left turns priced at"),
            "{reason}"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The service's check replays the windows it has reports for, as the benchmark's loop does
/// (`decide::check_demand`): with 10-min windows and an hour of reports its warm-up is the
/// hour; with 20 min of reports, those 20 min.
#[test]
fn the_service_check_replays_the_windows_it_has() {
    let (net, records) = an_hour_of_counts("single");
    let check = ValidateParams {
        seeds: vec![1],
        horizon: Ms::from_s(600),
        ..AdaptiveParams::default().validate.unwrap()
    };
    assert_eq!(check.warmup, Ms::from_s(3600));
    for (from_s, want_s) in [(0, 3600.0), (2400, 1200.0)] {
        let kept: Vec<CountRecord> = records
            .iter()
            .filter(|r| r.start >= Ms::from_s(from_s))
            .cloned()
            .collect();
        let store = ingested(&net, "r", &kept);
        let planner = optimizer_planner(Ms::from_s(600), check.clone(), OperationChoice::default());
        let decisions = planner("r", &net, &store, &Default::default(), Ms::from_s(3600));
        assert!(!decisions.is_empty());
        for d in &decisions {
            assert_eq!(
                d.record["detail"]["warmup_s"].as_f64(),
                Some(want_s),
                "{}",
                d.record
            );
        }
    }
}

/// A region's history is the estimator's prior whatever the operations offered: with
/// `offer_actuated = false` no modes are chosen from it, but it is read at start-up all the
/// same (so that a movement whose detectors are in fault falls back to it:
/// tests/estimate_fallback.rs).
#[test]
fn the_history_is_the_prior_without_actuation_too() {
    let (tmp, cfg) = with_histories(
        "gw-planner-prior",
        "offer_actuated = false\n",
        &["single", "arterial"],
    );
    let ops = cfg.operations_from_history().unwrap();
    assert!(ops.from_history.is_empty() && ops.actuated.is_none());
    assert_eq!(
        ops.priors.keys().collect::<Vec<_>>(),
        vec!["arterial", "single"]
    );
    let networks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
    let net = load_network(&networks.join("single.toml")).unwrap();
    let want = load_demand_for(&networks.join("single.demand.toml"), &net).unwrap();
    assert_eq!(ops.priors["single"], want);
    let _ = std::fs::remove_dir_all(&tmp);
}
