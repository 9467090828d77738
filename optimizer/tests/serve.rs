//! The central service end to end with real parts: a Mosquitto broker, a victoria-metrics
//! server (InfluxDB v2 write API), and a real cabinet runtime (the controller crate) at 10x.
//! Counts come in, are stored and written as series; the planner's plan goes out signed with
//! its operation (isolated actuated), is accepted by the cabinet and runs there as it says.

#[path = "../../testsupport/services.rs"]
mod services;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use controller::cabinet::{Cabinet, Persisted, Settings};
use controller::config::{BrokerConfig, CabinetConfig, CentreConfig};
use controller::run::{run, Clock, FieldIo, Stats};
use intersections::load::load_network;
use intersections::messages::{ControllerStatus, Mode, Operation, PlanDeployment};
use intersections::signing::{Signer25519, Verifier25519};
use intersections::{Colour, Ms};
use optimizer::serve::{
    serve, Broker as BrokerCfg, GroupDecision, Influx, Planner, Region, ServeConfig, ServeStats,
    Signing,
};
use services::{Broker, Tsdb};
use tokio::sync::watch;

const SEED_B64: &str = "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=";

struct Traffic(usize);
impl FieldIo for Traffic {
    fn detectors(&mut self, now: Ms) -> Vec<bool> {
        // Every detector sees a vehicle for 0.5 s every 4 s.
        vec![now.0.rem_euclid(4000) < 500; self.0]
    }
    fn drive(&mut self, _now: Ms, _colours: &[Colour]) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_in_signed_plans_out_series_stored() {
    let broker = Broker::start("serve");
    let tsdb = Tsdb::start("serve");
    let dir = std::env::temp_dir().join(format!("gw-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("centre.key"), SEED_B64).unwrap();
    std::fs::write(dir.join("token"), "unused").unwrap();
    let network = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../intersections/networks/single.toml");
    let signer = Signer25519::from_base64("centre-1", SEED_B64).unwrap();

    // The cabinet, at 10x real time from now.
    let net = load_network(&network).unwrap();
    let clock = Clock::starting_at(optimizer::serve::unix_now(), 10.0);
    let cab_cfg = CabinetConfig {
        region: "r".into(),
        intersection: "C".into(),
        network: network.clone(),
        data_dir: dir.join("cabinet"),
        report_interval_s: Some(10.0),
        backup_time_s: 100_000.0,
        utc_offset_min: 0,
        buffer_max_reports: 1000,
        local_mode: Default::default(),
        broker: BrokerConfig {
            keep_alive_s: 5,
            ..BrokerConfig::plain("127.0.0.1", broker.port, Some("cab-serve".into()))
        },
        centre: CentreConfig {
            key_id: "centre-1".into(),
            public_key: signer.public_base64(),
        },
    };
    let settings = Settings::from_config(&cab_cfg, None);
    let v = Verifier25519::from_base64("centre-1", &signer.public_base64()).unwrap();
    let cab = Cabinet::new(settings, net.clone(), v, Persisted::default(), clock.now()).unwrap();
    let n = cab.intersection().detectors.len();
    let (cab_stop, cab_shutdown) = watch::channel(false);
    let cab_stats = Arc::new(Mutex::new(Stats::default()));
    let cab_task = tokio::spawn(run(
        cab_cfg,
        cab,
        Box::new(Traffic(n)),
        clock,
        cab_shutdown,
        cab_stats,
    ));

    // The service, with a planner that deploys the peak plan (renamed), to run actuated, once
    // counts arrived (once: a new plan every round would keep the machine from going isolated
    // at a cycle boundary).
    let sent = std::sync::atomic::AtomicBool::new(false);
    let planner: Planner = Arc::new(move |_region, net, store, _in_force, _now| {
        let ix = &net.intersections[0];
        let counted = ix
            .detectors
            .iter()
            .filter_map(|d| store.samples("r", &ix.id, &d.id).last())
            .count();
        if counted == 0 || sent.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Vec::new();
        }
        let mut p = ix.plan("peak").unwrap().to_spec(ix);
        p.id = "from-the-centre".into();
        vec![GroupDecision {
            group: ix.id.clone(),
            plans: vec![(ix.id.clone(), p)],
            operation: actuated(),
            record: serde_json::json!({"detectors_counted": counted}),
            flows: Vec::new(),
        }]
    });
    let cfg = ServeConfig {
        data_dir: dir.join("centre"),
        replan_interval_s: 1.5,
        offer_actuated: true,
        actuated_max_green_factor: 2.0,
        offer_left_price: true,
        check_horizon_s: None,
        check_early_reject: true,
        check_threshold_pct: None,
        check_seeds: None,
        broker: BrokerCfg {
            host: "127.0.0.1".into(),
            port: broker.port,
            client_id: Some("centre".into()),
        },
        signing: Signing {
            key_id: "centre-1".into(),
            secret_key_file: dir.join("centre.key"),
        },
        influx: Some(Influx {
            url: tsdb.url(),
            org: "greenwave".into(),
            bucket: "greenwave".into(),
            token_file: dir.join("token"),
        }),
        regions: vec![Region {
            id: "r".into(),
            network: network.clone(),
            approve: Default::default(),
            history: None,
        }],
        console: None,
    };
    let seen = watch_intersection(broker.port);
    let (stop, shutdown) = watch::channel(false);
    let stats = Arc::new(Mutex::new(ServeStats::default()));
    let service = tokio::spawn(serve(cfg, planner, shutdown, stats.clone()));

    // Wait for counts, a deployment, and the cabinet running the plan.
    let mut ok = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let s = stats.lock().unwrap().clone();
        if s.reports >= 2 && s.deployed >= 1 {
            ok = true;
            break;
        }
    }
    let s = stats.lock().unwrap().clone();
    assert!(
        ok,
        "reports {}, deployments {}, acknowledged {}, rounds {}",
        s.reports, s.deployments, s.deployed, s.rounds
    );
    assert_eq!(s.rolled_back, 0);
    // The series reached the database.
    let mut stored = 0;
    for _ in 0..50 {
        stored = tsdb.samples("detector_counts_count");
        if stored >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(stored >= n, "{stored} detector count samples stored");
    // So did the intersection's measured performance, the decision, and (once the cabinet's
    // status arrives) the controller's state.
    let mut got = (0, 0, 0);
    for _ in 0..50 {
        got = (
            tsdb.samples("measured_performance_volume_veh_h"),
            tsdb.samples("plan_decision_deploy"),
            tsdb.samples("controller_status_online"),
        );
        if got.0 >= 1 && got.1 >= 1 && got.2 >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        got.0 >= 1 && got.1 >= 1 && got.2 >= 1,
        "measured performance, decision and status samples: {got:?}"
    );

    // The deployment carried the operation, and the cabinet runs it: its status says
    // actuated, with the centre's plan (the machine goes isolated at the plan's first cycle
    // boundary: up to 110 s of model time, 11 s here).
    let mut running = None;
    for _ in 0..150 {
        running = seen
            .lock()
            .unwrap()
            .status
            .clone()
            .filter(|s| s.mode == Mode::Actuated);
        if running.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let plan = seen.lock().unwrap().plan.clone().expect("a retained plan");
    assert_eq!(plan.operation, Some(actuated()));
    let st = running.unwrap_or_else(|| {
        panic!(
            "the cabinet never said actuated: {:?}",
            seen.lock().unwrap().status
        )
    });
    assert_eq!(st.plan_id.as_deref(), Some("from-the-centre"));
    assert_eq!(st.plan_version, Some(plan.plan_version));
    assert_eq!(stats.lock().unwrap().deployed, 1);

    let _ = stop.send(true);
    let _ = service.await;
    let _ = cab_stop.send(true);
    let _ = cab_task.await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn actuated() -> Operation {
    Operation::Actuated {
        max_green_factor: 2.0,
        passage_s: 3.0,
    }
}

/// The last plan and status of intersection `C` as the broker forwards them.
#[derive(Default)]
struct Seen {
    plan: Option<PlanDeployment>,
    status: Option<ControllerStatus>,
}

fn watch_intersection(port: u16) -> Arc<Mutex<Seen>> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let seen = Arc::new(Mutex::new(Seen::default()));
    let out = seen.clone();
    let mut o = MqttOptions::new("probe-c", "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut ev) = AsyncClient::new(o, 16);
    tokio::spawn(async move {
        for leaf in ["plan", "status"] {
            let _ = client
                .subscribe(format!("greenwave/v1/r/C/{leaf}"), QoS::AtLeastOnce)
                .await;
        }
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let mut s = seen.lock().unwrap();
                    if p.topic.ends_with("/plan") {
                        if let Ok(d) = serde_json::from_slice(&p.payload) {
                            s.plan = Some(d);
                        }
                    } else if let Ok(st) = serde_json::from_slice(&p.payload) {
                        s.status = Some(st);
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    out
}

/// The service keeps a persistent session at the broker under its client id: reports that
/// arrive while it is down are handed over when it is back, and a report that does not match
/// its topic is refused, not stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_sent_while_the_service_is_down_arrive_when_it_is_back() {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let broker = Broker::start("serve-down");
    let dir = std::env::temp_dir().join(format!("gw-serve-down-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("centre.key"), SEED_B64).unwrap();
    let network = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../intersections/networks/single.toml");
    let net = load_network(&network).unwrap();
    let dets: Vec<String> = net.intersections[0]
        .detectors
        .iter()
        .map(|d| d.id.clone())
        .collect();
    let report = |region: &str, seq: i64| {
        serde_json::json!({
            "version": 1, "region": region, "intersection": "C", "seq": seq,
            "interval_start_ms": seq * 60_000, "interval_end_ms": (seq + 1) * 60_000,
            "detectors": dets.iter().map(|d| serde_json::json!({
                "detector": d, "count": 5, "occupancy": 0.1, "health": "ok"
            })).collect::<Vec<_>>(),
        })
        .to_string()
    };
    let cfg = ServeConfig {
        data_dir: dir.join("centre"),
        replan_interval_s: 3600.0,
        offer_actuated: false,
        actuated_max_green_factor: 2.0,
        offer_left_price: false,
        check_horizon_s: None,
        check_early_reject: true,
        check_threshold_pct: None,
        check_seeds: None,
        broker: BrokerCfg {
            host: "127.0.0.1".into(),
            port: broker.port,
            client_id: Some("centre-down".into()),
        },
        signing: Signing {
            key_id: "centre-1".into(),
            secret_key_file: dir.join("centre.key"),
        },
        influx: None,
        regions: vec![Region {
            id: "r".into(),
            network: network.clone(),
            approve: Default::default(),
            history: None,
        }],
        console: None,
    };
    let planner: Planner = Arc::new(|_, _, _, _, _| Vec::new());

    // A cabinet's side: publishes at QoS 1 and counts the broker's acknowledgements.
    let acked = Arc::new(AtomicUsize::new(0));
    let mut o = MqttOptions::new("cab-down", "127.0.0.1", broker.port);
    o.set_keep_alive(Duration::from_secs(5));
    let (cab, mut ev) = AsyncClient::new(o, 64);
    let acks = acked.clone();
    tokio::spawn(async move {
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    acks.fetch_add(1, Ordering::SeqCst);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    let topic = "greenwave/v1/r/C/detectors";

    // First run: the service subscribes; the first report reaches it.
    let (stop, shutdown) = watch::channel(false);
    let stats = Arc::new(Mutex::new(ServeStats::default()));
    let service = tokio::spawn(serve(cfg.clone(), planner.clone(), shutdown, stats.clone()));
    let mut got = false;
    for _ in 0..50 {
        cab.publish(topic, QoS::AtLeastOnce, false, report("r", 1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stats.lock().unwrap().reports >= 1 {
            got = true;
            break;
        }
    }
    assert!(got, "the service never took the first report");
    let _ = stop.send(true);
    let _ = service.await;

    // While it is down: three reports and one whose region is not its topic's.
    let before = acked.load(Ordering::SeqCst);
    for seq in 2..5 {
        cab.publish(topic, QoS::AtLeastOnce, false, report("r", seq))
            .await
            .unwrap();
    }
    cab.publish(topic, QoS::AtLeastOnce, false, report("other", 5))
        .await
        .unwrap();
    for _ in 0..50 {
        if acked.load(Ordering::SeqCst) >= before + 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        acked.load(Ordering::SeqCst) >= before + 4,
        "the broker took them"
    );

    // Back under the same id: the broker hands them over.
    let (stop, shutdown) = watch::channel(false);
    let stats = Arc::new(Mutex::new(ServeStats::default()));
    let service = tokio::spawn(serve(cfg, planner, shutdown, stats.clone()));
    for _ in 0..50 {
        let s = stats.lock().unwrap().clone();
        if s.reports >= 3 && s.refused >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let s = stats.lock().unwrap().clone();
    let _ = stop.send(true);
    let _ = service.await;
    // (at least the three: a first report the broker delivered twice would be new to the
    // restarted service's empty store)
    assert!(
        s.reports >= 3 && s.refused == 1,
        "after the restart: {} reports taken, {} refused",
        s.reports,
        s.refused
    );
    let _ = std::fs::remove_dir_all(&dir);
}
