//! Deployment against the real cabinet logic: a coordination group gets signed plans (with
//! how to run them) and acks them; a refusal or a silent member rolls the whole group back.

use std::path::Path;

use controller::cabinet::{Cabinet, DetectorLimits, Persisted, Settings};
use intersections::load::load_network;
use intersections::messages::{Mode, Operation, PlanDeployment};
use intersections::model::Network;
use intersections::signing::{Signer25519, Verifier25519};
use intersections::Ms;
use optimizer::deploy::{Deployer, Outcome, Publish, ACK_TIMEOUT, MAX_SENDS};

const T0: Ms = Ms(1_780_000_000_000);

fn arterial() -> Network {
    load_network(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks/arterial.toml"),
    )
    .unwrap()
}

fn cabinets(net: &Network) -> Vec<Cabinet> {
    let key = Signer25519::from_seed("centre-1", [4; 32]).public_base64();
    net.intersections
        .iter()
        .filter(|ix| !ix.plans.is_empty())
        .map(|ix| {
            let s = Settings {
                region: "r".into(),
                intersection: ix.id.clone(),
                report_interval: None,
                backup_time: Ms::from_s(3600),
                utc_offset: Ms::ZERO,
                detector_limits: DetectorLimits::default(),
                state_file: None,
            };
            let v = Verifier25519::from_base64("centre-1", &key).unwrap();
            Cabinet::new(s, net.clone(), v, Persisted::default(), T0).unwrap()
        })
        .collect()
}

/// Deliver published messages to the cabinets; returns the acks they publish.
fn deliver(
    now: Ms,
    cabs: &mut [Cabinet],
    msgs: &[Publish],
    drop_for: Option<&str>,
) -> Vec<Vec<u8>> {
    let mut acks = Vec::new();
    for m in msgs {
        let parts: Vec<&str> = m.topic.split('/').collect();
        let (ix, leaf) = (parts[3], parts[4..].join("/"));
        if Some(ix) == drop_for {
            continue;
        }
        let Some(c) = cabs.iter_mut().find(|c| c.intersection().id == ix) else {
            continue;
        };
        match leaf.as_str() {
            "plan" => {
                if let Some(a) = c.on_plan(now, &m.payload) {
                    acks.push(serde_json::to_vec(&a).unwrap());
                }
            }
            "command" => c.on_command(now, &m.payload).unwrap(),
            _ => {}
        }
    }
    acks
}

/// Run every cabinet from `from` to `to` without traffic.
fn run(cabs: &mut [Cabinet], from: Ms, to: Ms) {
    for c in cabs.iter_mut() {
        let none = vec![false; c.intersection().detectors.len()];
        let mut t = from;
        while t < to {
            t += Ms(100);
            c.tick(t, &none);
        }
    }
}

/// The operation every plan deployment among `msgs` carries.
fn operations(msgs: &[Publish]) -> Vec<Option<Operation>> {
    msgs.iter()
        .filter(|m| m.topic.ends_with("/plan"))
        .map(|m| {
            serde_json::from_slice::<PlanDeployment>(&m.payload)
                .unwrap()
                .operation
        })
        .collect()
}

fn group_plans(net: &Network, plan: &str) -> Vec<(String, intersections::spec::PlanSpec)> {
    net.intersections
        .iter()
        .filter(|ix| !ix.plans.is_empty())
        .map(|ix| (ix.id.clone(), ix.plan(plan).unwrap().to_spec(ix)))
        .collect()
}

#[test]
fn a_group_deploys_then_rolls_back_when_a_member_refuses() {
    let net = arterial();
    let mut cabs = cabinets(&net);
    let mut d = Deployer::new("r", Signer25519::from_seed("centre-1", [4; 32]), 1000);
    // Everyone accepts the am_peak plans, to run isolated actuated, and runs them so.
    let actuated = Operation::Actuated {
        max_green_factor: 2.0,
        passage_s: 3.0,
    };
    let msgs = d
        .deploy_operation(T0, "corridor", group_plans(&net, "am_peak"), &actuated)
        .unwrap();
    assert_eq!(msgs.len(), 5);
    assert!(operations(&msgs)
        .iter()
        .all(|o| o == &Some(actuated.clone())));
    for a in deliver(T0, &mut cabs, &msgs, None) {
        assert!(d.on_ack(T0, &a).is_empty());
    }
    assert_eq!(d.finished.last().unwrap().2, Outcome::Deployed);
    assert!(cabs.iter().all(|c| c.plan_id() == Some("am_peak")));
    assert_eq!(d.deployments_in_force().len(), 5);
    assert!(d
        .deployments_in_force()
        .values()
        .all(|dep| dep.operation() == actuated));
    run(&mut cabs, T0, T0 + Ms::from_s(590));
    assert!(
        cabs.iter().all(|c| c.mode() == Mode::Actuated),
        "{:?}",
        cabs.iter().map(|c| c.mode()).collect::<Vec<_>>()
    );
    // An operation outside the cabinets' limits is not sent at all.
    let too_long = Operation::Actuated {
        max_green_factor: 2.0,
        passage_s: 12.0,
    };
    let e = d
        .deploy_operation(T0, "other", group_plans(&net, "am_peak"), &too_long)
        .unwrap_err();
    assert!(e.contains("operation.passage_s: 12 s is outside"), "{e}");

    // Next, pm_peak, but one member's plan is unsafe (its green below the minimum): it nacks,
    // and the group goes back to am_peak everywhere.
    let mut plans = group_plans(&net, "pm_peak");
    plans[2].1.stages[1].green_s = 1.0;
    plans[2].1.stages[0].green_s += plans[2].1.stages[1].green_s.max(0.0);
    let t = T0 + Ms::from_s(600);
    let msgs = d.deploy(t, "corridor", plans).unwrap();
    let mut back = Vec::new();
    for a in deliver(t, &mut cabs, &msgs, None) {
        back.extend(d.on_ack(t, &a));
    }
    match &d.finished.last().unwrap().2 {
        Outcome::RolledBack {
            intersection,
            reasons,
        } => {
            assert_eq!(
                intersection,
                &net.intersections
                    .iter()
                    .filter(|ix| !ix.plans.is_empty())
                    .nth(2)
                    .unwrap()
                    .id
            );
            assert!(
                reasons.iter().any(|r| r.contains("unsafe plan")),
                "{reasons:?}"
            );
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(back.len(), 5);
    // Back to what ran: am_peak, actuated (pm_peak went out coordinated).
    assert!(operations(&msgs).iter().all(Option::is_none));
    assert!(operations(&back)
        .iter()
        .all(|o| o == &Some(actuated.clone())));
    // The plans sent back are tracked until acknowledged: unanswered, they would be re-sent.
    let finished = d.finished.len();
    let pending = d.rollbacks_waiting();
    assert_eq!(pending, 5);
    for a in deliver(t, &mut cabs, &back, None) {
        let ack: intersections::messages::PlanAck = serde_json::from_slice(&a).unwrap();
        assert!(ack.accepted, "{:?}", ack.reasons);
        assert!(d.on_ack(t, &a).is_empty());
    }
    assert_eq!(d.rollbacks_waiting(), 0, "every rollback acknowledged");
    assert!(
        d.tick(t + Ms::from_s(120)).is_empty(),
        "nothing left to re-send"
    );
    assert_eq!(d.finished.len(), finished);
    assert!(
        cabs.iter().all(|c| c.plan_id() == Some("am_peak")),
        "every member back on am_peak"
    );
    run(&mut cabs, t, t + Ms::from_s(600));
    assert!(
        cabs.iter().all(|c| c.mode() == Mode::Actuated),
        "{:?}",
        cabs.iter().map(|c| c.mode()).collect::<Vec<_>>()
    );
}

#[test]
fn a_silent_member_is_retried_then_the_group_rolls_back_to_local_plans() {
    let net = arterial();
    let mut cabs = cabinets(&net);
    let silent = net.intersections[0].id.clone();
    let mut d = Deployer::new("r", Signer25519::from_seed("centre-1", [4; 32]), 1000);
    let msgs = d
        .deploy(T0, "corridor", group_plans(&net, "pm_peak"))
        .unwrap();
    for a in deliver(T0, &mut cabs, &msgs, Some(&silent)) {
        d.on_ack(T0, &a);
    }
    assert!(d.busy("corridor"));
    let mut t = T0;
    let mut resent = 0;
    let mut last = Vec::new();
    for _ in 0..10 {
        t += Ms::from_s(31);
        let m = d.tick(t);
        if !d.busy("corridor") {
            last = m;
            break;
        }
        resent += m.len();
    }
    assert_eq!(resent as u32, MAX_SENDS - 1);
    assert!(matches!(
        d.finished.last().unwrap().2,
        Outcome::RolledBack { .. }
    ));
    // No member had a centre plan before: the retained plan is cleared and each gets a signed
    // rollback command back to its local time-of-day plans.
    assert!(last.iter().any(|m| m.topic.ends_with("/command")));
    deliver(t, &mut cabs, &last, None);
    assert!(
        cabs.iter().all(|c| c.plan_id() == Some("offpeak")),
        "{:?}",
        cabs.iter().map(|c| c.plan_id()).collect::<Vec<_>>()
    );
}

/// A rollback is not fire-and-forget: the plan it sends back is re-sent until its member
/// acknowledges it; a member that refuses it, or stays silent through every send, gives the
/// group an outcome of its own (`RollbackUnconfirmed`) for the console and the audit log.
#[test]
fn a_rollback_is_confirmed_or_reported() {
    let net = arterial();
    let mut cabs = cabinets(&net);
    let mut d = Deployer::new("r", Signer25519::from_seed("centre-1", [4; 32]), 1000);
    let msgs = d
        .deploy(T0, "corridor", group_plans(&net, "am_peak"))
        .unwrap();
    for a in deliver(T0, &mut cabs, &msgs, None) {
        d.on_ack(T0, &a);
    }
    assert_eq!(d.finished.last().unwrap().2, Outcome::Deployed);
    // pm_peak goes out; one member refuses it; the group is sent back to am_peak.
    let t = T0 + Ms::from_s(600);
    let msgs = d
        .deploy(t, "corridor", group_plans(&net, "pm_peak"))
        .unwrap();
    let first = net.intersections[0].id.clone();
    let version = |msgs: &[Publish], ix: &str| -> u64 {
        let m = msgs
            .iter()
            .find(|m| m.topic.ends_with(&format!("/{ix}/plan")))
            .unwrap();
        serde_json::from_slice::<intersections::messages::PlanDeployment>(&m.payload)
            .unwrap()
            .plan_version
    };
    let ack = |ix: &str, v: u64, accepted: bool, reasons: Vec<String>| {
        serde_json::to_vec(&intersections::messages::PlanAck {
            version: intersections::messages::WIRE_VERSION,
            region: "r".into(),
            intersection: ix.into(),
            plan_version: v,
            time_ms: t.0,
            accepted,
            reasons,
        })
        .unwrap()
    };
    let back = d.on_ack(
        t,
        &ack(&first, version(&msgs, &first), false, vec!["no".into()]),
    );
    assert_eq!(back.len(), 5);
    assert!(matches!(
        d.finished.last().unwrap().2,
        Outcome::RolledBack { .. }
    ));
    // Four members take the plan sent back; the first refuses it.
    let members: Vec<String> = net.coordination_groups[0]
        .intersections
        .iter()
        .map(|i| net.intersections[i.0].id.clone())
        .collect();
    for ix in members.iter().filter(|ix| **ix != first) {
        assert!(d
            .on_ack(t, &ack(ix, version(&back, ix), true, vec![]))
            .is_empty());
    }
    d.on_ack(
        t,
        &ack(&first, version(&back, &first), false, vec!["clock".into()]),
    );
    assert_eq!(
        d.finished.last().unwrap().2,
        Outcome::RollbackUnconfirmed {
            intersection: first.clone(),
            reasons: vec!["clock".into()]
        }
    );
    // Again, and this time the first member stays silent: its plan is re-sent (retained)
    // after each timeout, then the rollback is reported unconfirmed.
    let t = t + Ms::from_s(600);
    let msgs = d
        .deploy(t, "corridor", group_plans(&net, "pm_peak"))
        .unwrap();
    let back = d.on_ack(
        t,
        &ack(&first, version(&msgs, &first), false, vec!["no".into()]),
    );
    for ix in members.iter().filter(|ix| **ix != first) {
        d.on_ack(t, &ack(ix, version(&back, ix), true, vec![]));
    }
    let n = d.finished.len();
    let mut resent = 0;
    for k in 1..=4 {
        for p in d.tick(t + Ms(ACK_TIMEOUT.0 * k)) {
            assert!(p.topic.ends_with(&format!("/{first}/plan")) && p.retain);
            resent += 1;
        }
    }
    assert_eq!(resent, MAX_SENDS as usize - 1);
    assert_eq!(d.finished.len(), n + 1);
    match &d.finished.last().unwrap().2 {
        Outcome::RollbackUnconfirmed {
            intersection,
            reasons,
        } => {
            assert_eq!(intersection, &first);
            assert!(reasons[0].contains("no ack after 3 sends"), "{reasons:?}");
        }
        o => panic!("{o:?}"),
    }
}
