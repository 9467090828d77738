//! Time series against a real server that speaks the InfluxDB v2 write API: Debian's
//! `victoria-metrics` (installed by `.ci/run`), started here on a loopback port of its own so
//! the test can stop and restart it. Points written while it is down wait on disk; none is
//! lost.

// The test needs real timestamps near now: the server refuses points outside its retention.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

#[path = "../../testsupport/services.rs"]
mod services;
use services::Tsdb;

use intersections::Ms;
use optimizer::timeseries::{Point, SeriesTarget, SeriesWriter, Value};

fn points(from: i64, n: i64, now: i64) -> Vec<Point> {
    (from..from + n)
        .map(|i| {
            Point::new("gwtest", Ms(now - 600_000 + i * 10))
                .tag("intersection", &format!("I{}", i % 7))
                .field("count", Value::Int(i))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_survive_a_database_restart() {
    let mut vm = Tsdb::start("restart");
    let data = std::env::temp_dir().join(format!("gw-vm-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let target = SeriesTarget::Influx {
        url: vm.url(),
        org: "greenwave".into(),
        bucket: "greenwave".into(),
        token: "unused".into(),
    };
    let mut w = SeriesWriter::open(target, &data, 1000).unwrap();
    w.add(&points(0, 7_000, now)).unwrap();
    let f = w.flush().await.unwrap();
    assert_eq!((f.batches, f.lines), (2, 7_000));
    let mut seen = 0;
    for _ in 0..50 {
        seen = vm.samples("gwtest_.*");
        if seen == 7_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(seen, 7_000, "points read back");

    // The database goes away: writes fail, points wait on disk.
    vm.stop();
    w.add(&points(7_000, 3_000, now)).unwrap();
    assert!(w.flush().await.is_err());
    assert_eq!(w.waiting(), 1);
    // Even a restart of the optimizer keeps them.
    drop(w);
    vm.spawn();
    let target = SeriesTarget::Influx {
        url: vm.url(),
        org: "greenwave".into(),
        bucket: "greenwave".into(),
        token: "unused".into(),
    };
    let mut w = SeriesWriter::open(target, &data, 1000).unwrap();
    assert_eq!(w.waiting(), 1);
    let f = w.flush().await.unwrap();
    assert_eq!(f.lines, 3_000);
    for _ in 0..50 {
        seen = vm.samples("gwtest_.*");
        if seen == 10_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(seen, 10_000, "no point lost across the restart");
    let _ = std::fs::remove_dir_all(&data);
}
