//! The central service end to end with real parts: a Mosquitto broker, a victoria-metrics
//! server (InfluxDB v2 write API), and a real cabinet runtime (the controller crate) at 10x.
//! Counts come in, are stored and written as series; the planner's plan goes out signed, is
//! accepted by the cabinet and runs there.

#[path = "../../testsupport/services.rs"]
mod services;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use controller::cabinet::{Cabinet, Persisted, Settings};
use controller::config::{BrokerConfig, CabinetConfig, CentreConfig};
use controller::run::{run, Clock, FieldIo, Stats};
use intersections::load::load_network;
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

    // The service, with a planner that deploys the peak plan (renamed) once counts arrived.
    let planner: Planner = Arc::new(|_region, net, store, _in_force, _now| {
        let ix = &net.intersections[0];
        let counted = ix
            .detectors
            .iter()
            .filter_map(|d| store.samples("r", &ix.id, &d.id).last())
            .count();
        if counted == 0 {
            return Vec::new();
        }
        let mut p = ix.plan("peak").unwrap().to_spec(ix);
        p.id = "from-the-centre".into();
        vec![GroupDecision {
            group: ix.id.clone(),
            plans: vec![(ix.id.clone(), p)],
            record: serde_json::json!({"detectors_counted": counted}),
        }]
    });
    let cfg = ServeConfig {
        data_dir: dir.join("centre"),
        replan_interval_s: 1.5,
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
        }],
        console: None,
    };
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

    let _ = stop.send(true);
    let _ = service.await;
    let _ = cab_stop.send(true);
    let _ = cab_task.await;
    let _ = std::fs::remove_dir_all(&dir);
}
