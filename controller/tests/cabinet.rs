//! The cabinet logic without a network: plan acceptance, rejection with reasons, fault
//! injection, loss of the centre. Time is driven by the test.

use std::path::Path;

use controller::cabinet::{Cabinet, DetectorLimits, Outgoing, Persisted, Settings};
use intersections::load::load_network;
use intersections::messages::{
    Command, CommandAction, Mode, Operation, PlanDeployment, WIRE_VERSION,
};
use intersections::model::Network;
use intersections::signing::{Signer25519, Verifier25519};
use intersections::{Colour, Ms};

const T0: Ms = Ms(1_780_000_000_000);

fn net() -> Network {
    load_network(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks/single.toml"),
    )
    .unwrap()
}

fn centre() -> Signer25519 {
    Signer25519::from_seed("centre-1", [1; 32])
}

fn cabinet(now: Ms) -> Cabinet {
    let s = Settings {
        region: "r1".into(),
        intersection: "C".into(),
        report_interval: Some(Ms::from_s(60)),
        backup_time: Ms::from_s(300),
        utc_offset: Ms::ZERO,
        detector_limits: DetectorLimits::default(),
        state_file: None,
    };
    let v = Verifier25519::from_base64("centre-1", &centre().public_base64()).unwrap();
    Cabinet::new(s, net(), v, Persisted::default(), now).unwrap()
}

fn deployment(version: u64, now: Ms, plan: &str, offset_s: f64) -> PlanDeployment {
    let n = net();
    let mut spec = n.intersections[0]
        .plan(plan)
        .unwrap()
        .to_spec(&n.intersections[0]);
    spec.id = format!("{plan}-v{version}");
    spec.offset_s = offset_s;
    let mut d = PlanDeployment {
        version: WIRE_VERSION,
        region: "r1".into(),
        intersection: "C".into(),
        plan_version: version,
        issued_at_ms: now.0,
        expires_at_ms: now.0 + 3_600_000,
        not_before_ms: now.0,
        plan: spec,
        operation: None,
        key_id: String::new(),
        signature: String::new(),
    };
    centre().sign(&mut d);
    d
}

/// A deployment that runs isolated actuated, re-signed.
fn actuated_deployment(
    version: u64,
    now: Ms,
    plan: &str,
    max_green_factor: f64,
    passage_s: f64,
) -> PlanDeployment {
    let mut d = deployment(version, now, plan, 0.0);
    d.operation = Some(Operation::Actuated {
        max_green_factor,
        passage_s,
    });
    centre().sign(&mut d);
    d
}

/// Run the cabinet from `from` to `to` in 100 ms ticks; returns everything it sent.
fn run(c: &mut Cabinet, from: Ms, to: Ms) -> Vec<Outgoing> {
    let mut out = Vec::new();
    let mut t = from;
    let dets = vec![false; c.intersection().detectors.len()];
    while t < to {
        t += Ms(100);
        out.extend(c.tick(t, &dets).1);
    }
    out
}

#[test]
fn signed_plan_is_applied_at_the_next_cycle_boundary() {
    let mut c = cabinet(T0);
    run(&mut c, T0, T0 + Ms::from_s(200));
    assert_eq!(c.mode(), Mode::LocalSchedule);
    let now = T0 + Ms::from_s(200);
    let d = deployment(1, now, "peak", 17.0);
    let ack = c.on_plan(now, &serde_json::to_vec(&d).unwrap()).unwrap();
    assert!(ack.accepted, "{:?}", ack.reasons);
    // The running plan keeps running until its cycle boundary.
    assert_eq!(
        c.plan_id(),
        Some("peak-v1"),
        "the plan in force is the new one"
    );
    let sent = run(&mut c, now, now + Ms::from_s(250));
    assert_eq!(c.mode(), Mode::CoordinatedActuated);
    let changes = sent
        .iter()
        .any(|o| matches!(o, Outgoing::Status(s) if s.plan_id.as_deref() == Some("peak-v1")));
    assert!(changes);
    // A retained re-delivery is not acked again; the same version re-signed is stale.
    assert!(c.on_plan(now, &serde_json::to_vec(&d).unwrap()).is_none());
    let again = deployment(1, now, "offpeak", 0.0);
    let ack = c
        .on_plan(now, &serde_json::to_vec(&again).unwrap())
        .unwrap();
    assert!(!ack.accepted);
    assert!(
        ack.reasons.iter().any(|r| r.contains("stale")),
        "{:?}",
        ack.reasons
    );
}

#[test]
fn forged_stale_unsafe_and_misaddressed_plans_change_nothing() {
    let now = T0 + Ms::from_s(100);
    let mut c = cabinet(T0);
    run(&mut c, T0, now);
    let good = deployment(5, now, "peak", 0.0);
    assert!(
        c.on_plan(now, &serde_json::to_vec(&good).unwrap())
            .unwrap()
            .accepted
    );

    let mut forged = deployment(6, now, "offpeak", 0.0);
    Signer25519::from_seed("centre-1", [2; 32]).sign(&mut forged);
    let mut tampered = deployment(7, now, "offpeak", 0.0);
    tampered.plan.cycle_s = 90.0;
    let stale = deployment(4, now, "offpeak", 0.0);
    let mut expired = deployment(8, now - Ms::from_s(7200), "offpeak", 0.0);
    expired.expires_at_ms = now.0 - 1;
    centre().sign(&mut expired);
    let mut unsafe_plan = deployment(9, now, "offpeak", 0.0);
    unsafe_plan.plan.stages[1].green_s = 2.0;
    unsafe_plan.plan.stages[0].green_s += 11.0;
    unsafe_plan.plan.stages[0].interstage_s = Some(1.0);
    unsafe_plan.plan.stages[1].interstage_s = Some(6.0);
    centre().sign(&mut unsafe_plan);
    let mut elsewhere = deployment(10, now, "offpeak", 0.0);
    elsewhere.intersection = "D".into();
    centre().sign(&mut elsewhere);
    // The operation is signed: changed after signing, or added to a plan signed without one.
    let mut tampered_operation = actuated_deployment(11, now, "offpeak", 2.0, 3.0);
    tampered_operation.operation = Some(Operation::Actuated {
        max_green_factor: 3.0,
        passage_s: 3.0,
    });
    let mut added_operation = deployment(12, now, "offpeak", 0.0);
    added_operation.operation = Some(Operation::Actuated {
        max_green_factor: 2.0,
        passage_s: 3.0,
    });
    let big_factor = actuated_deployment(13, now, "offpeak", 5.0, 3.0);
    let short_passage = actuated_deployment(14, now, "offpeak", 2.0, 0.5);

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("forged", serde_json::to_vec(&forged).unwrap(), "signature"),
        (
            "tampered",
            serde_json::to_vec(&tampered).unwrap(),
            "signature",
        ),
        ("stale", serde_json::to_vec(&stale).unwrap(), "stale"),
        ("expired", serde_json::to_vec(&expired).unwrap(), "expired"),
        (
            "unsafe",
            serde_json::to_vec(&unsafe_plan).unwrap(),
            "unsafe plan",
        ),
        (
            "misaddressed",
            serde_json::to_vec(&elsewhere).unwrap(),
            "addressed",
        ),
        ("garbage", b"{not json".to_vec(), "not a valid plan"),
        (
            "tampered operation",
            serde_json::to_vec(&tampered_operation).unwrap(),
            "signature",
        ),
        (
            "added operation",
            serde_json::to_vec(&added_operation).unwrap(),
            "signature",
        ),
        (
            "factor out of range",
            serde_json::to_vec(&big_factor).unwrap(),
            "operation.max_green_factor: 5 is outside 1 to 3",
        ),
        (
            "passage out of range",
            serde_json::to_vec(&short_passage).unwrap(),
            "operation.passage_s: 0.5 s is outside 1 to 10 s",
        ),
        (
            "unknown mode",
            {
                let mut v = serde_json::to_value(deployment(15, now, "offpeak", 0.0)).unwrap();
                v["operation"] = serde_json::json!({"mode": "adaptive"});
                serde_json::to_vec(&v).unwrap()
            },
            "not a valid plan",
        ),
    ];
    for (name, payload, why) in cases {
        let ack = c.on_plan(now, &payload).unwrap();
        assert!(!ack.accepted, "{name} accepted");
        assert!(
            ack.reasons.iter().any(|r| r.contains(why)),
            "{name}: {:?}",
            ack.reasons
        );
        assert_eq!(
            c.persisted().plan_version,
            5,
            "{name} changed the plan version"
        );
        assert_eq!(c.plan_id(), Some("peak-v5"), "{name} changed the plan");
    }
    // The unsafe plan lists every problem.
    let ack = c
        .on_plan(now, &serde_json::to_vec(&unsafe_plan).unwrap())
        .unwrap();
    assert!(ack.reasons.len() >= 2, "{:?}", ack.reasons);
}

#[test]
fn monitor_trips_within_one_tick_and_latches_until_reset() {
    let mut c = cabinet(T0);
    let now = T0 + Ms::from_s(120);
    run(&mut c, T0, now);
    let ix = c.intersection().clone();
    // A logic bug: every vehicle group green at once.
    let bad: Vec<Colour> = ix
        .groups
        .iter()
        .map(|g| {
            if g.kind == intersections::spec::GroupKind::Vehicle {
                Colour::Green
            } else {
                Colour::Red
            }
        })
        .collect();
    assert!(c.inject_output(now, &bad).is_err());
    let dets = vec![false; ix.detectors.len()];
    let (colours, out) = c.tick(now + Ms(100), &dets);
    assert!(colours
        .iter()
        .all(|c| matches!(c, Colour::FlashingYellow | Colour::Dark)));
    assert_eq!(c.mode(), Mode::Fault);
    assert!(out
        .iter()
        .any(|o| matches!(o, Outgoing::Status(s) if s.fault.is_some())));
    // Still flashing much later.
    run(&mut c, now, now + Ms::from_s(600));
    assert_eq!(c.mode(), Mode::Fault);
    // A signed reset brings it back through start-up.
    let t = now + Ms::from_s(600);
    let mut cmd = Command {
        version: WIRE_VERSION,
        region: "r1".into(),
        intersection: "C".into(),
        seq: 1,
        issued_at_ms: t.0,
        expires_at_ms: t.0 + 60_000,
        operator: "test".into(),
        action: CommandAction::ResetFault,
        key_id: String::new(),
        signature: String::new(),
    };
    centre().sign(&mut cmd);
    c.on_command(t, &serde_json::to_vec(&cmd).unwrap()).unwrap();
    // Replaying the same command is refused.
    assert!(c.on_command(t, &serde_json::to_vec(&cmd).unwrap()).is_err());
    run(&mut c, t, t + Ms::from_s(120));
    assert_eq!(c.mode(), Mode::LocalSchedule);
}

#[test]
fn loss_of_the_centre_falls_back_to_local_plans() {
    let mut c = cabinet(T0);
    let now = T0 + Ms::from_s(60);
    run(&mut c, T0, now);
    let d = deployment(1, now, "peak", 3.0);
    assert!(
        c.on_plan(now, &serde_json::to_vec(&d).unwrap())
            .unwrap()
            .accepted
    );
    run(&mut c, now, now + Ms::from_s(290));
    // Its transition cycles run in fixed time, then the plan coordinated actuated.
    assert!(
        matches!(c.mode(), Mode::Coordinated | Mode::CoordinatedActuated),
        "the last good plan runs within the backup time: {:?}",
        c.mode()
    );
    run(&mut c, now + Ms::from_s(290), now + Ms::from_s(600));
    assert_eq!(c.mode(), Mode::LocalSchedule);
}

#[test]
fn detectors_are_counted_and_reported() {
    let mut c = cabinet(T0);
    let n = c.intersection().detectors.len();
    let mut t = T0;
    let mut reports = Vec::new();
    for k in 0..1200 {
        t += Ms(100);
        let mut occ = vec![false; n];
        // Detector 0 sees a vehicle for 0.5 s every 5 s.
        occ[0] = k % 50 < 5;
        for o in c.tick(t, &occ).1 {
            if let Outgoing::Report(r) = o {
                reports.push(r);
            }
        }
    }
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].detectors[0].count, 12);
    assert!(
        (reports[0].detectors[0].occupancy - 0.1).abs() < 0.01,
        "{}",
        reports[0].detectors[0].occupancy
    );
    assert_eq!(reports[1].seq, 2);
    assert_eq!(reports[1].interval_start_ms, reports[0].interval_end_ms);
}

#[test]
fn a_corrupted_plan_that_slipped_past_validation_trips_the_monitor() {
    // Check a plan against a doctored copy of the intersection in which the arterial left
    // turns do not conflict with the collector, then run it on the real one.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks/single.toml"),
    )
    .unwrap();
    let doctored = text.replace("groups = [\"EW_left\"]", "groups = [\"EW_left\"]\n[[intersections.stages]]\nid = \"bad\"\ngroups = [\"EW_left\", \"NS\"]");
    let bad_net = intersections::load::network_from_str("doctored.toml", &doctored);
    // The doctored network is itself refused by the validator...
    assert!(bad_net.is_err());
    // ...so corrupt a checked plan by hand: the collector stage now also shows the lefts.
    let n = net();
    let ix = &n.intersections[0];
    let mut plan = ix.plan("offpeak").unwrap().clone();
    let left = ix.group("EW_left").unwrap().0;
    let coll = plan.spans[ix.group("NS").unwrap().0][0];
    plan.spans[left].push(coll);
    // The cabinet runs plans coordinated actuated: its stage engine times the stages from
    // the intersection's stage definitions, not from the plan's spans, so the corruption never
    // reaches the street (and the monitor has nothing to trip on).
    let mut c = cabinet(T0);
    run(&mut c, T0, T0 + Ms::from_s(30));
    c.install_unchecked_plan(plan.clone());
    let dets = vec![false; ix.detectors.len()];
    let mut t = T0 + Ms::from_s(30);
    for _ in 0..3000 {
        t += Ms(100);
        let (colours, _) = c.tick(t, &dets);
        let g = |id: &str| colours[ix.group(id).unwrap().0];
        assert!(!(g("EW_left").is_open() && g("NS").is_open()));
    }
    // In fixed time (a machine without detectors) the runner shows the spans: the monitor
    // trips on the first conflicting output and flashes.
    let mut m = intersections::machine::SignalMachine::new(ix, &n.safety, Some(plan), T0);
    let mut monitor = controller::monitor::Monitor::new(ix, T0);
    let mut t = T0;
    let mut tripped = false;
    for _ in 0..3000 {
        t += Ms(100);
        let out = m.step(t);
        if monitor.check(t, &out.colours).is_err() {
            tripped = true;
            break;
        }
        let shown = monitor.output();
        let g = |id: &str| shown[ix.group(id).unwrap().0];
        assert!(!(g("EW_left").is_open() && g("NS").is_open()));
    }
    assert!(tripped, "the monitor never tripped");
    assert!(monitor
        .output()
        .iter()
        .all(|c| matches!(c, Colour::FlashingYellow | Colour::Dark)));
}

#[test]
fn local_mode_actuated_runs_isolated_and_a_centre_plan_takes_over() {
    use controller::cabinet::LocalMode;
    let mut c = cabinet(T0);
    c.set_local_mode(LocalMode::Actuated);
    let ix = c.intersection().clone();
    let north = ix.detectors.iter().position(|d| d.id == "N_stop").unwrap();
    let mut t = T0;
    let mut left_green = false;
    let mut audit: Option<intersections::audit::Audit> = None;
    for k in 0..4000 {
        t += Ms(100);
        let mut occ = vec![false; ix.detectors.len()];
        occ[north] = k % 200 < 5; // a vehicle on the collector every 20 s
        let (colours, _) = c.tick(t, &occ);
        match &mut audit {
            None => audit = Some(intersections::audit::Audit::new(&ix, &colours, t)),
            Some(a) => a.see(t, &colours).unwrap(),
        }
        if t > T0 + Ms::from_s(60) {
            left_green |= colours[ix.group("EW_left").unwrap().0].is_green();
        }
    }
    assert_eq!(c.mode(), Mode::Actuated);
    assert!(!left_green, "the left turn without demand is skipped");
    // A centre plan ends isolated operation (through all red) and runs coordinated.
    let d = deployment(1, t, "peak", 0.0);
    assert!(
        c.on_plan(t, &serde_json::to_vec(&d).unwrap())
            .unwrap()
            .accepted
    );
    for _ in 0..3000 {
        t += Ms(100);
        let (colours, _) = c.tick(t, &vec![false; ix.detectors.len()]);
        audit.as_mut().unwrap().see(t, &colours).unwrap();
    }
    assert_eq!(c.mode(), Mode::CoordinatedActuated);
    assert_eq!(c.status(t, true).plan_id.as_deref(), Some("peak-v1"));
}

/// Colours of every tick, checked by the audit (conflicts, intergreens, minimum greens).
struct Watch<'a> {
    audit: Option<intersections::audit::Audit<'a>>,
}

impl<'a> Watch<'a> {
    fn see(&mut self, ix: &'a intersections::model::Intersection, t: Ms, colours: &[Colour]) {
        match &mut self.audit {
            None => self.audit = Some(intersections::audit::Audit::new(ix, colours, t)),
            Some(a) => a.see(t, colours).unwrap(),
        }
    }
}

#[test]
fn an_actuated_centre_plan_runs_isolated_actuated_with_its_factor() {
    // The centre stays in touch for the whole test (no fallback to local plans).
    let settings = || Settings {
        region: "r1".into(),
        intersection: "C".into(),
        report_interval: Some(Ms::from_s(60)),
        backup_time: Ms::from_s(3600),
        utc_offset: Ms::ZERO,
        detector_limits: DetectorLimits::default(),
        state_file: None,
    };
    let verifier = || Verifier25519::from_base64("centre-1", &centre().public_base64()).unwrap();
    let mut c = Cabinet::new(settings(), net(), verifier(), Persisted::default(), T0).unwrap();
    let ix = c.intersection().clone();
    let mut w = Watch { audit: None };
    let mut t = T0;
    let none = vec![false; ix.detectors.len()];
    for _ in 0..2000 {
        t += Ms(100);
        let (colours, _) = c.tick(t, &none);
        w.see(&ix, t, &colours);
    }
    let d = actuated_deployment(1, t, "peak", 2.0, 3.0);
    let ack = c.on_plan(t, &serde_json::to_vec(&d).unwrap()).unwrap();
    assert!(ack.accepted, "{:?}", ack.reasons);
    // Demand everywhere, never a gap as long as the passage time: every stage runs to its
    // maximum, the plan's green times 2 (the arterial's 48 s: 96 s).
    let through = ix.group("EW_through").unwrap().0;
    let (mut green_since, mut longest) = (None, Ms::ZERO);
    let mut statuses = Vec::new();
    for k in 0..6000 {
        t += Ms(100);
        let occ = vec![k % 20 < 15; ix.detectors.len()];
        let (colours, out) = c.tick(t, &occ);
        w.see(&ix, t, &colours);
        statuses.extend(out.into_iter().filter_map(|o| match o {
            Outgoing::Status(s) => Some(s),
            _ => None,
        }));
        match (colours[through].is_green(), green_since) {
            (true, None) => green_since = Some(t),
            (false, Some(s)) => {
                longest = longest.max(t - s);
                green_since = None;
            }
            _ => {}
        }
    }
    assert_eq!(c.mode(), Mode::Actuated);
    let s = c.status(t, true);
    assert_eq!(
        (s.mode, s.plan_id.as_deref(), s.plan_version),
        (Mode::Actuated, Some("peak-v1"), Some(1))
    );
    assert!(
        statuses.iter().any(|s| s.mode == Mode::Actuated),
        "the status sent says actuated"
    );
    assert!(
        longest >= Ms::from_s(90),
        "the arterial ran {longest:?} at most: the factor 2 did not reach the machine"
    );

    // After a restart the cabinet runs the kept deployment as it says: actuated.
    let persisted = c.persisted().clone();
    let mut again = Cabinet::new(settings(), net(), verifier(), persisted, t).unwrap();
    run(&mut again, t, t + Ms::from_s(120));
    assert_eq!(again.mode(), Mode::Actuated);

    // A refused operation changes nothing: the actuated plan keeps running.
    let bad = actuated_deployment(2, t, "offpeak", 3.5, 3.0);
    let ack = c.on_plan(t, &serde_json::to_vec(&bad).unwrap()).unwrap();
    assert!(!ack.accepted);
    assert!(
        ack.reasons
            .iter()
            .any(|r| r.starts_with("operation.max_green_factor: 3.5 is outside 1 to 3")),
        "{:?}",
        ack.reasons
    );
    for _ in 0..600 {
        t += Ms(100);
        let (colours, _) = c.tick(t, &none);
        w.see(&ix, t, &colours);
    }
    assert_eq!(c.mode(), Mode::Actuated);
    assert_eq!(c.plan_id(), Some("peak-v1"));

    // A coordinated plan from the centre ends isolated operation (through all red).
    let d = deployment(3, t, "offpeak", 0.0);
    assert!(
        c.on_plan(t, &serde_json::to_vec(&d).unwrap())
            .unwrap()
            .accepted
    );
    for _ in 0..3000 {
        t += Ms(100);
        let (colours, _) = c.tick(t, &none);
        w.see(&ix, t, &colours);
    }
    assert_eq!(c.mode(), Mode::CoordinatedActuated);
    assert_eq!(c.status(t, true).plan_id.as_deref(), Some("offpeak-v3"));
}
