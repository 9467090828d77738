//! Saturation flow emerges from the car following: a standing queue discharging on a long
//! green gives 1,700-2,000 veh/h/lane after the first few vehicles.

mod common;

use intersections::Ms;

#[test]
fn standing_queue_discharges_at_saturation_flow() {
    for step in [Ms(1000), Ms(500)] {
        let times = common::discharge(step);
        assert!(times.len() >= 24, "only {} vehicles crossed", times.len());
        let s = common::saturation_flow(&times);
        eprintln!("step {step}: saturation flow {s:.0} veh/h/lane");
        assert!(
            (1700.0..=2000.0).contains(&s),
            "saturation flow {s:.0} veh/h at step {step}"
        );
        // Start-up: the first vehicles take longer than the saturation headway.
        let first4 = (times[4] - Ms::from_s(150)).as_secs_f64();
        assert!(
            first4 > 4.0 * 3600.0 / s,
            "start-up lost time shows ({first4} s for the first vehicles)"
        );
    }
}
