//! Wire messages: every message type, every event kind and every command action survives
//! JSON and back unchanged, and the examples in `docs/messages.md` are exactly what these
//! example values serialize to (golden). After a deliberate change of the messages, regenerate
//! the examples with `GREENWAVE_BLESS=1 cargo test -p intersections --test messages`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use intersections::messages::{
    Command, CommandAction, ControllerStatus, DetectorCount, DetectorHealth, DetectorReport, Event,
    EventBatch, EventKind, Mode, Operation, PlanAck, PlanDeployment, WIRE_VERSION,
};
use intersections::signing::{Signer25519, Verifier25519};
use intersections::spec::{PlanSpec, StageTimeSpec};
use intersections::Colour;
use serde::de::DeserializeOwned;
use serde::Serialize;

const REGION: &str = "shanghai-huangpu";
const IX: &str = "C";
/// 2025-03-04 07:30:00 UTC, in Unix milliseconds.
const T0: i64 = 1_741_073_400_000;

/// The centre's example key (a fixed seed: Ed25519 signatures are deterministic).
fn centre() -> Signer25519 {
    Signer25519::from_seed("centre-2025-01", [7u8; 32])
}

fn detector_report() -> DetectorReport {
    DetectorReport {
        version: WIRE_VERSION,
        region: REGION.into(),
        intersection: IX.into(),
        seq: 4711,
        interval_start_ms: T0,
        interval_end_ms: T0 + 60_000,
        detectors: vec![
            DetectorCount {
                detector: "E_stop_0".into(),
                count: 14,
                occupancy: 0.31,
                health: DetectorHealth::Ok,
            },
            DetectorCount {
                detector: "N_stop".into(),
                count: 0,
                occupancy: 1.0,
                health: DetectorHealth::MaxPresence,
            },
        ],
    }
}

fn controller_status() -> ControllerStatus {
    let groups = [
        ("EW_left", Colour::Red),
        ("EW_through", Colour::Green),
        ("NS", Colour::Red),
        ("P_east", Colour::Red),
        ("P_north", Colour::Walk),
        ("P_south", Colour::Walk),
        ("P_west", Colour::Red),
    ];
    ControllerStatus {
        version: WIRE_VERSION,
        region: REGION.into(),
        intersection: IX.into(),
        time_ms: T0 + 12_300,
        online: true,
        mode: Mode::Coordinated,
        plan_id: Some("peak".into()),
        plan_version: Some(42),
        cycle_time_ms: Some(12_300),
        stage: Some("arterial".into()),
        signal_groups: groups
            .iter()
            .map(|(g, c)| (g.to_string(), *c))
            .collect::<BTreeMap<_, _>>(),
        failed_detectors: vec!["N_stop".into()],
        fault: None,
    }
}

/// One event of every kind.
fn every_event_kind() -> Vec<EventKind> {
    let all = vec![
        EventKind::SignalGroup {
            group: "EW_through".into(),
            colour: Colour::Yellow,
        },
        EventKind::DetectorOn {
            detector: "E_stop_0".into(),
        },
        EventKind::DetectorOff {
            detector: "E_stop_0".into(),
        },
        EventKind::StageStart {
            stage: "arterial_left".into(),
        },
        EventKind::ModeChange {
            mode: Mode::LocalSchedule,
        },
        EventKind::PlanChange {
            plan_id: "peak".into(),
            plan_version: 42,
        },
        EventKind::Fault {
            reason: "monitor: conflicting greens NS and EW_through".into(),
        },
    ];
    // A new kind must be added here: this match has no wildcard.
    for k in &all {
        match k {
            EventKind::SignalGroup { .. }
            | EventKind::DetectorOn { .. }
            | EventKind::DetectorOff { .. }
            | EventKind::StageStart { .. }
            | EventKind::ModeChange { .. }
            | EventKind::PlanChange { .. }
            | EventKind::Fault { .. } => {}
        }
    }
    all
}

fn event_batch() -> EventBatch {
    EventBatch {
        version: WIRE_VERSION,
        region: REGION.into(),
        intersection: IX.into(),
        seq: 977,
        events: every_event_kind()
            .into_iter()
            .enumerate()
            .map(|(i, kind)| Event {
                time_ms: T0 + 48_000 + 100 * i as i64,
                kind,
            })
            .collect(),
    }
}

fn plan_deployment() -> PlanDeployment {
    let mut m = PlanDeployment {
        version: WIRE_VERSION,
        region: REGION.into(),
        intersection: IX.into(),
        plan_version: 43,
        issued_at_ms: T0,
        expires_at_ms: T0 + 600_000,
        not_before_ms: T0 + 30_000,
        plan: PlanSpec {
            id: "peak".into(),
            cycle_s: 110.0,
            offset_s: 17.0,
            stages: vec![
                StageTimeSpec {
                    stage: "arterial".into(),
                    green_s: 48.0,
                    interstage_s: Some(6.0),
                },
                StageTimeSpec {
                    stage: "arterial_left".into(),
                    green_s: 12.0,
                    interstage_s: Some(6.0),
                },
                StageTimeSpec {
                    stage: "collector".into(),
                    green_s: 32.0,
                    interstage_s: Some(6.0),
                },
            ],
        },
        operation: Some(Operation::Actuated {
            max_green_factor: 2.0,
            passage_s: 3.0,
        }),
        key_id: String::new(),
        signature: String::new(),
    };
    centre().sign(&mut m);
    m
}

/// Every operation a deployment can carry.
fn every_operation() -> Vec<Operation> {
    let all = vec![
        Operation::Coordinated,
        Operation::Actuated {
            max_green_factor: 2.0,
            passage_s: 3.0,
        },
    ];
    for o in &all {
        match o {
            Operation::Coordinated | Operation::Actuated { .. } => {}
        }
    }
    all
}

fn plan_ack() -> PlanAck {
    PlanAck {
        version: WIRE_VERSION,
        region: REGION.into(),
        intersection: IX.into(),
        plan_version: 43,
        time_ms: T0 + 250,
        accepted: false,
        reasons: vec![
            "intersections[0].plans[0].stages[1].green_s: signal group EW_left gets 3 s of green, its minimum is 5 s".into(),
        ],
    }
}

/// Every command action.
fn every_action() -> Vec<CommandAction> {
    let all = vec![
        CommandAction::HoldStage {
            stage: "collector".into(),
        },
        CommandAction::Release,
        CommandAction::FlashingYellow,
        CommandAction::AllRed,
        CommandAction::ResetFault,
        CommandAction::Rollback,
    ];
    for a in &all {
        match a {
            CommandAction::HoldStage { .. }
            | CommandAction::Release
            | CommandAction::FlashingYellow
            | CommandAction::AllRed
            | CommandAction::ResetFault
            | CommandAction::Rollback => {}
        }
    }
    all
}

fn command(action: CommandAction) -> Command {
    let mut m = Command {
        version: WIRE_VERSION,
        region: REGION.into(),
        intersection: IX.into(),
        seq: 12,
        issued_at_ms: T0 + 5_000,
        expires_at_ms: T0 + 65_000,
        operator: "engineer.li".into(),
        action,
        key_id: String::new(),
        signature: String::new(),
    };
    centre().sign(&mut m);
    m
}

fn roundtrip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
    let compact = serde_json::to_string(v).unwrap();
    let back: T = serde_json::from_str(&compact).unwrap();
    assert_eq!(&back, v, "{compact}");
    let pretty = serde_json::to_string_pretty(v).unwrap();
    let back: T = serde_json::from_str(&pretty).unwrap();
    assert_eq!(&back, v);
    // And the value JSON is stable (re-serializing gives the same text).
    assert_eq!(serde_json::to_string(&back).unwrap(), compact);
}

#[test]
fn every_message_survives_json() {
    roundtrip(&detector_report());
    roundtrip(&controller_status());
    let mut offline = controller_status();
    offline.online = false;
    offline.mode = Mode::Fault;
    offline.fault = Some("monitor trip".into());
    offline.plan_id = None;
    offline.plan_version = None;
    offline.cycle_time_ms = None;
    offline.stage = None;
    roundtrip(&offline);
    roundtrip(&event_batch());
    for k in every_event_kind() {
        roundtrip(&Event {
            time_ms: T0,
            kind: k,
        });
    }
    roundtrip(&plan_deployment());
    for o in every_operation() {
        roundtrip(&o);
        let mut d = plan_deployment();
        d.operation = Some(o);
        roundtrip(&d);
    }
    let mut d = plan_deployment();
    d.operation = None;
    roundtrip(&d);
    roundtrip(&plan_ack());
    for a in every_action() {
        roundtrip(&command(a));
    }
    // Every colour, mode and health value.
    for c in [
        Colour::Red,
        Colour::RedYellow,
        Colour::Green,
        Colour::Yellow,
        Colour::Walk,
        Colour::PedClearance,
        Colour::FlashingYellow,
        Colour::Dark,
    ] {
        roundtrip(&c);
    }
    for m in [
        Mode::StartUp,
        Mode::Coordinated,
        Mode::CoordinatedActuated,
        Mode::Actuated,
        Mode::LocalSchedule,
        Mode::ManualHold,
        Mode::AllRed,
        Mode::FlashingYellow,
        Mode::Fault,
    ] {
        roundtrip(&m);
    }
    for h in [
        DetectorHealth::Ok,
        DetectorHealth::NoActivity,
        DetectorHealth::MaxPresence,
        DetectorHealth::Erratic,
    ] {
        roundtrip(&h);
    }
}

/// A deployment of before the `operation` field (none in its JSON) still parses, runs
/// coordinated, and its signature still verifies: the field is left out when absent, so the
/// signed bytes are what the old sender signed.
#[test]
fn a_deployment_without_operation_is_coordinated_and_verifies() {
    let v = Verifier25519::from_base64("centre-2025-01", &centre().public_base64()).unwrap();
    let mut old = plan_deployment();
    old.operation = None;
    centre().sign(&mut old);
    let json = serde_json::to_string(&old).unwrap();
    assert!(!json.contains("operation"), "{json}");
    let back: PlanDeployment = serde_json::from_str(&json).unwrap();
    assert_eq!(back.operation(), Operation::Coordinated);
    v.verify(&back).unwrap();
    // An operation added, changed or removed after signing fails the signature.
    let mut added = back.clone();
    added.operation = Some(every_operation()[1].clone());
    assert!(v.verify(&added).is_err());
    let mut changed = plan_deployment();
    changed.operation = Some(Operation::Actuated {
        max_green_factor: 3.0,
        passage_s: 3.0,
    });
    assert!(v.verify(&changed).is_err());
    let mut removed = plan_deployment();
    removed.operation = None;
    assert!(v.verify(&removed).is_err());
    // Unknown fields and modes are refused.
    for bad in [
        r#"{"mode":"actuated","max_green_factor":2.0,"passage_s":3.0,"x":1}"#,
        r#"{"mode":"adaptive"}"#,
        r#"{"mode":"actuated","max_green_factor":2.0}"#,
    ] {
        assert!(serde_json::from_str::<Operation>(bad).is_err(), "{bad}");
    }
    // Limits, each problem located.
    let p = Operation::Actuated {
        max_green_factor: 5.0,
        passage_s: 0.5,
    }
    .problems("operation");
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p[0].starts_with("operation.max_green_factor: 5 is outside 1 to 3"),
        "{p:?}"
    );
    assert!(
        p[1].starts_with("operation.passage_s: 0.5 s is outside 1 to 10 s"),
        "{p:?}"
    );
    assert!(every_operation()
        .iter()
        .all(|o| o.problems("operation").is_empty()));
}

#[test]
fn example_signatures_verify() {
    let v = Verifier25519::from_base64("centre-2025-01", &centre().public_base64()).unwrap();
    v.verify(&plan_deployment()).unwrap();
    for a in every_action() {
        v.verify(&command(a)).unwrap();
    }
}

/// The examples of `docs/messages.md`, by the name of their marker.
fn examples() -> Vec<(&'static str, String)> {
    fn pretty<T: Serialize>(v: &T) -> String {
        serde_json::to_string_pretty(v).unwrap()
    }
    vec![
        ("detectors", pretty(&detector_report())),
        ("status", pretty(&controller_status())),
        ("events", pretty(&event_batch())),
        ("plan", pretty(&plan_deployment())),
        ("plan/ack", pretty(&plan_ack())),
        (
            "command",
            pretty(&command(CommandAction::HoldStage {
                stage: "collector".into(),
            })),
        ),
        (
            "plan operations",
            every_operation()
                .iter()
                .map(|o| serde_json::to_string(o).unwrap())
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        (
            "command actions",
            every_action()
                .iter()
                .map(|a| serde_json::to_string(a).unwrap())
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    ]
}

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/messages.md")
}

const MARK: &str = "<!-- example: ";

/// Replace the block after each marker with the example; the text in between stays.
fn with_examples(doc: &str, examples: &[(&str, String)]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = doc;
    let mut seen = Vec::new();
    while let Some(at) = rest.find(MARK) {
        let after = &rest[at + MARK.len()..];
        let end = after.find(" -->").ok_or("unterminated example marker")?;
        let name = &after[..end];
        let body_start = after[end..]
            .find("```json\n")
            .ok_or(format!("no ```json block after {name}"))?
            + end
            + "```json\n".len();
        // The block ends at the next fence (JSON never holds one).
        let body_end = after[body_start..]
            .find("```")
            .ok_or(format!("unterminated block of {name}"))?
            + body_start;
        let (_, json) = examples.iter().find(|(n, _)| *n == name).ok_or(format!(
            "docs/messages.md has an example {name:?} the test does not know"
        ))?;
        out.push_str(&rest[..at + MARK.len()]);
        out.push_str(&after[..body_start]);
        out.push_str(json);
        out.push('\n');
        rest = &after[body_end..];
        seen.push(name.to_string());
    }
    out.push_str(rest);
    for (n, _) in examples {
        if !seen.iter().any(|s| s == n) {
            return Err(format!("docs/messages.md lacks the example {n:?}"));
        }
    }
    Ok(out)
}

#[test]
fn docs_examples_are_exactly_the_serialized_messages() {
    let path = doc_path();
    let doc = std::fs::read_to_string(&path).expect("docs/messages.md exists");
    let want = with_examples(&doc, &examples()).unwrap_or_else(|e| panic!("{e}"));
    if std::env::var_os("GREENWAVE_BLESS").is_some_and(|v| v == "1") {
        if want != doc {
            std::fs::write(&path, &want).unwrap();
        }
        return;
    }
    if want != doc {
        let diff: Vec<String> = doc
            .lines()
            .zip(want.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(5)
            .map(|(i, (a, b))| format!("line {}:\n  doc:  {a}\n  want: {b}", i + 1))
            .collect();
        panic!(
            "docs/messages.md examples are stale (regenerate with GREENWAVE_BLESS=1):\n{}",
            diff.join("\n")
        );
    }
    // The examples parse back into the values they show.
    let parsed: DetectorReport = serde_json::from_str(&examples()[0].1).unwrap();
    assert_eq!(parsed, detector_report());
}
