//! Integration tests against a real Mosquitto broker (installed by `.ci/run`), started here
//! on a loopback port of its own so the test can stop and restart it. The cabinet runs at 100x
//! real time, with the same code as in the field.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use controller::cabinet::{Cabinet, Persisted, Settings};
use controller::config::{BrokerConfig, CabinetConfig, CentreConfig};
use controller::run::{run, Clock, FieldIo, Stats};
use intersections::load::load_network;
use intersections::messages::{
    ControllerStatus, DetectorReport, Mode, PlanAck, PlanDeployment, WIRE_VERSION,
};
use intersections::signing::{Signer25519, Verifier25519};
use intersections::{Colour, Ms};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, watch};

#[path = "../../testsupport/services.rs"]
mod services;
use services::Broker;

const SPEED: f64 = 100.0;
const T0: Ms = Ms(1_780_000_000_000);

fn centre() -> Signer25519 {
    Signer25519::from_seed("centre-1", [1; 32])
}

fn network_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks/single.toml")
}

struct Cab {
    stop: watch::Sender<bool>,
    stats: Arc<Mutex<Stats>>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

struct Quiet(usize);
impl FieldIo for Quiet {
    fn detectors(&mut self, now: Ms) -> Vec<bool> {
        // A vehicle over detector 0 for 0.4 s every 3 s.
        let mut v = vec![false; self.0];
        v[0] = now.0.rem_euclid(3000) < 400;
        v
    }
    fn drive(&mut self, _now: Ms, _colours: &[Colour]) {}
}

fn start_cabinet(port: u16, name: &str, backup_s: f64, report_s: f64) -> Cab {
    let data = std::env::temp_dir().join(format!("gw-cab-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let cfg = CabinetConfig {
        region: "r1".into(),
        intersection: "C".into(),
        network: network_path(),
        data_dir: data,
        report_interval_s: Some(report_s),
        backup_time_s: backup_s,
        utc_offset_min: 0,
        buffer_max_reports: 10_000,
        local_mode: Default::default(),
        broker: BrokerConfig {
            keep_alive_s: 5,
            ..BrokerConfig::plain("127.0.0.1", port, Some(format!("cab-{name}")))
        },
        centre: CentreConfig {
            key_id: "centre-1".into(),
            public_key: centre().public_base64(),
        },
    };
    let net = load_network(&network_path()).unwrap();
    let settings = Settings::from_config(&cfg, None);
    let v = Verifier25519::from_base64("centre-1", &centre().public_base64()).unwrap();
    let clock = Clock::starting_at(T0, SPEED);
    let cab = Cabinet::new(settings, net, v, Persisted::default(), clock.now()).unwrap();
    let n = cab.intersection().detectors.len();
    let (stop, shutdown) = watch::channel(false);
    let stats = Arc::new(Mutex::new(Stats::default()));
    let handle = tokio::spawn(run(
        cfg,
        cab,
        Box::new(Quiet(n)),
        clock,
        shutdown,
        stats.clone(),
    ));
    Cab {
        stop,
        stats,
        handle,
    }
}

/// A test client on the wire: everything under greenwave/v1/r1/C/ arrives on the channel.
async fn observer(
    port: u16,
    id: &str,
    persistent: bool,
) -> (AsyncClient, mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    o.set_clean_session(!persistent);
    let (client, mut el) = AsyncClient::new(o, 100);
    let (tx, rx) = mpsc::unbounded_channel();
    let c2 = client.clone();
    tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = c2.subscribe("greenwave/v1/r1/C/#", QoS::AtLeastOnce).await;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send((p.topic.clone(), p.payload.to_vec())).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    (client, rx)
}

async fn wait_for<T>(
    rx: &mut mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    secs: u64,
    mut f: impl FnMut(&str, &[u8]) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some((t, p))) => {
                if std::env::var("GW_TEST_DEBUG").is_ok() {
                    eprintln!(
                        "{t}: {}",
                        String::from_utf8_lossy(&p)
                            .chars()
                            .take(300)
                            .collect::<String>()
                    );
                }
                if let Some(v) = f(&t, &p) {
                    return v;
                }
            }
            _ => panic!("timed out waiting"),
        }
    }
}

fn deployment(version: u64, plan: &str, offset_s: f64, now: Ms) -> PlanDeployment {
    let net = load_network(&network_path()).unwrap();
    let ix = &net.intersections[0];
    let mut spec = ix.plan(plan).unwrap().to_spec(ix);
    spec.id = format!("{plan}-v{version}");
    spec.offset_s = offset_s;
    let mut d = PlanDeployment {
        version: WIRE_VERSION,
        region: "r1".into(),
        intersection: "C".into(),
        plan_version: version,
        issued_at_ms: now.0,
        expires_at_ms: now.0 + 24 * 3_600_000,
        not_before_ms: now.0,
        plan: spec,
        operation: None,
        key_id: String::new(),
        signature: String::new(),
    };
    centre().sign(&mut d);
    d
}

fn model_now(start: tokio::time::Instant) -> Ms {
    T0 + Ms((start.elapsed().as_secs_f64() * 1000.0 * SPEED) as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_are_applied_or_rejected_with_reasons() {
    let broker = Broker::start("plans");
    let started = tokio::time::Instant::now();
    let (client, mut rx) = observer(broker.port, "obs-plans", false).await;
    let cab = start_cabinet(broker.port, "plans", 100_000.0, 60.0);

    // Reports arrive.
    let r: DetectorReport = wait_for(&mut rx, 10, |t, p| {
        (t.ends_with("/detectors")).then(|| serde_json::from_slice(p).unwrap())
    })
    .await;
    assert_eq!(r.intersection, "C");
    assert!(r.detectors[0].count > 0);
    // The status is retained and says online.
    let s: ControllerStatus = wait_for(&mut rx, 10, |t, p| {
        (t.ends_with("/status")).then(|| serde_json::from_slice(p).unwrap())
    })
    .await;
    assert!(s.online);

    // A signed plan is accepted and then runs, in phase with its offset.
    let d = deployment(1, "peak", 37.0, model_now(started));
    client
        .publish(
            "greenwave/v1/r1/C/plan",
            QoS::AtLeastOnce,
            true,
            serde_json::to_vec(&d).unwrap(),
        )
        .await
        .unwrap();
    let ack: PlanAck = wait_for(&mut rx, 10, |t, p| {
        t.ends_with("/plan/ack")
            .then(|| serde_json::from_slice(p).unwrap())
    })
    .await;
    assert!(ack.accepted, "{:?}", ack.reasons);
    let ack_time = Ms(ack.time_ms);
    let s: ControllerStatus = wait_for(&mut rx, 20, |t, p| {
        if !t.ends_with("/status") {
            return None;
        }
        let s: ControllerStatus = serde_json::from_slice(p).unwrap();
        // After the transition cycles, the cycle timer is (t - offset) mod cycle.
        (s.plan_id.as_deref() == Some("peak-v1")
            && s.mode == Mode::CoordinatedActuated
            && Ms(s.time_ms) > ack_time + Ms::from_s(4 * 110))
        .then_some(s)
    })
    .await;
    let ct = s.cycle_time_ms.unwrap();
    assert_eq!(
        ct,
        (s.time_ms - 37_000).rem_euclid(110_000),
        "cycle timer not in phase"
    );

    // Forged, stale and unsafe plans are refused with a reason; nothing changes.
    let now = model_now(started);
    let mut forged = deployment(2, "offpeak", 0.0, now);
    Signer25519::from_seed("centre-1", [9; 32]).sign(&mut forged);
    let stale = deployment(1, "offpeak", 0.0, now);
    let mut unsafe_plan = deployment(3, "offpeak", 0.0, now);
    unsafe_plan.plan.stages[1].green_s = 2.0;
    unsafe_plan.plan.stages[0].green_s += 6.0;
    centre().sign(&mut unsafe_plan);
    for (d, why) in [
        (forged, "signature"),
        (stale, "stale"),
        (unsafe_plan, "unsafe plan"),
    ] {
        client
            .publish(
                "greenwave/v1/r1/C/plan",
                QoS::AtLeastOnce,
                false,
                serde_json::to_vec(&d).unwrap(),
            )
            .await
            .unwrap();
        let ack: PlanAck = wait_for(&mut rx, 10, |t, p| {
            t.ends_with("/plan/ack")
                .then(|| serde_json::from_slice(p).unwrap())
        })
        .await;
        assert!(!ack.accepted);
        assert_eq!(ack.plan_version, d.plan_version);
        assert!(
            ack.reasons.iter().any(|r| r.contains(why)),
            "{why}: {:?}",
            ack.reasons
        );
    }
    let s: ControllerStatus = wait_for(&mut rx, 10, |t, p| {
        t.ends_with("/status")
            .then(|| serde_json::from_slice(p).unwrap())
    })
    .await;
    assert_eq!(s.plan_id.as_deref(), Some("peak-v1"));
    assert_eq!(s.plan_version, Some(1));

    let _ = cab.stop.send(true);
    let _ = cab.handle.await;
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_loses_no_report() {
    let mut broker = Broker::start("restart");
    // A persistent observer session, so the broker keeps its subscription over the restart.
    let (_client, mut rx) = observer(broker.port, "obs-restart", true).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cab = start_cabinet(broker.port, "restart", 100_000.0, 10.0);
    let mut seqs = Vec::new();
    // Reports every 10 s model time = every 0.1 s.
    while seqs.len() < 10 {
        let r: DetectorReport = wait_for(&mut rx, 10, |t, p| {
            t.ends_with("/detectors")
                .then(|| serde_json::from_slice(p).unwrap())
        })
        .await;
        seqs.push(r.seq);
    }
    broker.stop();
    // About 20 reports are made while the broker is down.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(!cab.stats.lock().unwrap().connected);
    broker.spawn();
    let target = seqs.last().unwrap() + 30;
    while *seqs.last().unwrap() < target {
        let r: DetectorReport = wait_for(&mut rx, 20, |t, p| {
            t.ends_with("/detectors")
                .then(|| serde_json::from_slice(p).unwrap())
        })
        .await;
        seqs.push(r.seq);
    }
    seqs.sort();
    seqs.dedup();
    let first = seqs[0];
    let missing: Vec<u64> = (first..=*seqs.last().unwrap())
        .filter(|s| !seqs.contains(s))
        .collect();
    assert!(
        missing.is_empty(),
        "reports lost across the restart: {missing:?}"
    );
    assert!(seqs.len() >= 35, "{} reports", seqs.len());
    let _ = cab.stop.send(true);
    let _ = cab.handle.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_of_the_centre_falls_back_to_local_plans() {
    let broker = Broker::start("fallback");
    let started = tokio::time::Instant::now();
    let (client, mut rx) = observer(broker.port, "obs-fallback", false).await;
    // Backup time 600 s model = 6 s wall.
    let cab = start_cabinet(broker.port, "fallback", 600.0, 60.0);
    let d = deployment(1, "peak", 0.0, model_now(started));
    client
        .publish(
            "greenwave/v1/r1/C/plan",
            QoS::AtLeastOnce,
            true,
            serde_json::to_vec(&d).unwrap(),
        )
        .await
        .unwrap();
    let _: ControllerStatus = wait_for(&mut rx, 10, |t, p| {
        let s: ControllerStatus = t
            .ends_with("/status")
            .then(|| serde_json::from_slice(p).ok())
            .flatten()?;
        (s.mode == Mode::CoordinatedActuated && s.plan_id.as_deref() == Some("peak-v1"))
            .then_some(s)
    })
    .await;
    // The centre goes quiet: after the backup time the local schedule runs.
    let s: ControllerStatus = wait_for(&mut rx, 20, |t, p| {
        let s: ControllerStatus = t
            .ends_with("/status")
            .then(|| serde_json::from_slice(p).ok())
            .flatten()?;
        (s.mode == Mode::LocalSchedule).then_some(s)
    })
    .await;
    assert!(s.plan_version.is_none());
    let _ = cab.stop.send(true);
    let _ = cab.handle.await;
}
