//! Whole runs: conservation, determinism, safety of the control logics, spillback, gridlock.

mod common;

use intersections::audit::Audit;
use intersections::field::Field;
use intersections::{Colour, IntersectionIdx, Ms};
use simulator::{synth, Control, ControlKind, GridlockRule, Scenario, SimConfig, Simulation};

const KINDS: [ControlKind; 3] = [
    ControlKind::Fixed,
    ControlKind::Actuated,
    ControlKind::MaxPressure,
];

fn grid3() -> Scenario {
    let (net, demand) = synth::grid(3, 500.0, 1).unwrap();
    Scenario::new(net, demand, SimConfig::default()).unwrap()
}

#[test]
fn every_vehicle_is_accounted_for() {
    let (net, demand) = common::shipped("single");
    let single = Scenario::new(net, demand, SimConfig::default()).unwrap();
    for sc in [grid3(), single] {
        for kind in KINDS {
            let m = sc
                .run(&Control::of_kind(kind.clone()), 3, Ms::from_s(1200))
                .unwrap();
            assert!(m.completed > 100, "{kind:?}: {} completed", m.completed);
            assert_eq!(m.entered, m.completed + m.in_network, "{kind:?}");
            assert_eq!(m.generated, m.entered + m.waiting_to_enter, "{kind:?}");
            assert_eq!(m.unfinished, m.in_network + m.waiting_to_enter, "{kind:?}");
            assert!(m.gridlock.is_none());
            assert!(m.mean_delay_s >= 0.0 && m.travel_time_index >= 1.0);
            let crossed: u64 = m.intersections.iter().map(|i| i.throughput_veh).sum();
            assert!(
                crossed >= m.completed,
                "every completed vehicle crossed a junction"
            );
        }
    }
}

#[test]
fn same_seed_same_json_different_seed_differs() {
    let sc = grid3();
    for kind in KINDS {
        let c = Control::of_kind(kind);
        let run =
            |seed| serde_json::to_string(&sc.run(&c, seed, Ms::from_s(600)).unwrap()).unwrap();
        let a = run(11);
        assert_eq!(a, run(11));
        assert_ne!(a, run(12));
    }
    // Parallel runs come back in seed order, equal to the sequential ones.
    let c = Control::fixed();
    let par = sc.run_seeds(&c, &[5, 6, 7], Ms::from_s(300)).unwrap();
    for (m, seed) in par.iter().zip([5, 6, 7]) {
        assert_eq!(*m, sc.run(&c, seed, Ms::from_s(300)).unwrap());
    }
}

#[test]
fn a_saved_state_continues_identically() {
    let sc = grid3();
    let mut a = sc.simulation(&Control::fixed(), 9).unwrap();
    a.run_until(Ms::from_s(300));
    let mut b = a.clone();
    a.run_until(Ms::from_s(600));
    b.run_until(Ms::from_s(600));
    assert_eq!(a.metrics(), b.metrics());
    // From the saved state under another control.
    let mut c = b.clone();
    c.set_control(&Control::of_kind(ControlKind::MaxPressure))
        .unwrap();
    c.run_until(Ms::from_s(900));
    assert_eq!(c.metrics().control, "max-pressure");
}

/// Every logic keeps every conflict, intergreen, minimum green and yellow, seen from outside
/// every half second (the logics decide at step times, so this sees every change).
#[test]
fn controls_keep_minimum_greens_and_intergreens() {
    let (net, demand) = common::shipped("single");
    let cfg = SimConfig {
        step: Ms(500),
        ..SimConfig::default()
    };
    let single = Scenario::new(net, demand, cfg.clone()).unwrap();
    let (gnet, gdemand) = synth::grid(3, 600.0, 1).unwrap();
    let grid = Scenario::new(gnet, gdemand, cfg).unwrap();
    for sc in [single, grid] {
        for kind in KINDS {
            let mut sim = sc.simulation(&Control::of_kind(kind.clone()), 4).unwrap();
            let n = sim.intersection_count();
            let ixs = &sc.network().intersections;
            let mut obs: Vec<Audit> = ixs
                .iter()
                .enumerate()
                .map(|(i, ix)| Audit::new(ix, sim.colours(IntersectionIdx(i)), sim.now()))
                .collect();
            while sim.now() < Ms::from_s(1800) {
                for (i, o) in obs.iter_mut().enumerate().take(n) {
                    let r = o.see(sim.now(), sim.colours(IntersectionIdx(i)));
                    assert!(r.is_ok(), "{kind:?}: {}", r.unwrap_err());
                }
                sim.step();
            }
            for o in &obs {
                assert!(
                    o.changes > 20,
                    "{kind:?}: the signals changed only {} times",
                    o.changes
                );
            }
        }
    }
}

/// A red that never ends downstream fills the link between two junctions and then backs up
/// through the upstream junction, whose green is of no use; nothing overlaps. (Red for ever
/// on all but one movement is a gridlock by the low-throughput rule, which would stop the run
/// after 5 min: it is off here, to watch the queue back up.)
#[test]
fn full_links_block_the_junction_upstream() {
    let (net, demand) = synth::grid(2, 900.0, 1).unwrap();
    let middle = net.link("I0_0-I1_0").unwrap();
    let storage = 2.0 * net.links[middle.0].length_m / 7.5;
    let cfg = SimConfig {
        gridlock_exit_fraction: 0.0,
        ..SimConfig::default()
    };
    let sc = Scenario::new(net, demand, cfg).unwrap();
    let mut sim = sc
        .simulation(&Control::of_kind(ControlKind::External), 2)
        .unwrap();
    // I0_0 (south-west) green east-west for ever; I1_0 (south-east) all red.
    sim.set_colours(IntersectionIdx(0), &[Colour::Green, Colour::Red]);
    sim.set_colours(IntersectionIdx(1), &[Colour::Red, Colour::Red]);
    sim.run_until(Ms::from_s(900));
    let m = sim.metrics();
    let down = m.approach("I1_0", "I0_0-I1_0").unwrap();
    assert!(
        (down.max_queue_veh as f64) <= storage + 4.0,
        "{} halted on a link that stores {storage:.0}",
        down.max_queue_veh
    );
    assert!(
        down.max_queue_veh as f64 >= storage * 0.8,
        "the link filled"
    );
    let up = m.approach("I0_0", "W0-I0_0").unwrap();
    assert!(
        up.max_queue_veh > 20,
        "queue behind the full link: {}",
        up.max_queue_veh
    );
}

#[test]
fn gridlock_is_reported_not_hung() {
    let (net, demand) = synth::crossing(300.0, 30.0, 30.0, 6.0, 800.0, 800.0, 3).unwrap();
    let sc = Scenario::new(net, demand, SimConfig::default()).unwrap();
    let mut sim = sc
        .simulation(&Control::of_kind(ControlKind::External), 1)
        .unwrap();
    sim.set_colours(IntersectionIdx(0), &[Colour::Red, Colour::Red]);
    assert!(!sim.run_until(Ms::from_s(3 * 3600)), "the run stops");
    let g = sim.gridlock().expect("gridlock reported").clone();
    assert!(g.vehicles > 50);
    assert!(sim.now() < Ms::from_s(3600));
    let m = sim.metrics();
    assert_eq!(m.gridlock, Some(g.clone()));
    assert!(m.waiting_to_enter > 0);
    // All red: nothing leaves a link, so the low-throughput rule fires with its first full
    // window, before the standstill rule (the queues crept up until about 200 s).
    assert_eq!(g.rule, GridlockRule::LowThroughput);
    assert_eq!((g.at_s, g.link_exits), (300.0, 0));
}

/// With the low-throughput rule off, a network where nothing moves is still caught, by the
/// standstill rule, and the record says so.
#[test]
fn standstill_is_reported_as_such() {
    let (net, demand) = synth::crossing(300.0, 30.0, 30.0, 6.0, 800.0, 800.0, 3).unwrap();
    let cfg = SimConfig {
        gridlock_exit_fraction: 0.0,
        ..SimConfig::default()
    };
    let sc = Scenario::new(net, demand, cfg).unwrap();
    let mut sim = sc
        .simulation(&Control::of_kind(ControlKind::External), 1)
        .unwrap();
    sim.set_colours(IntersectionIdx(0), &[Colour::Red, Colour::Red]);
    assert!(!sim.run_until(Ms::from_s(3 * 3600)), "the run stops");
    let g = sim.gridlock().unwrap();
    assert_eq!(g.rule, GridlockRule::Standstill);
    assert_eq!((g.link_exits, g.network_exits), (0, 0));
    assert_eq!(g.window_s, 300.0);
    assert!(g.vehicles > 50 && g.waiting_to_enter > 0, "{g:?}");
}

/// A starved junction: each approach gets one step of green every two minutes, so a vehicle
/// or so crosses, its queue shuffles up and the entry lets another in. Something moves every
/// minute, so the standstill rule never fires (with the low-throughput rule off the run goes
/// its three hours), but nothing really gets through: the low-throughput rule reports it
/// after its first full window.
#[test]
fn a_creeping_jam_is_reported() {
    let (net, demand) = synth::crossing(300.0, 30.0, 30.0, 6.0, 1500.0, 1500.0, 3).unwrap();
    let ix = IntersectionIdx(0);
    let starve = |sim: &mut Simulation, end: Ms| {
        while sim.now() < end && sim.gridlock().is_none() {
            let colours = match sim.now().0 / 1000 % 120 {
                0 => [Colour::Green, Colour::Red],
                60 => [Colour::Red, Colour::Green],
                _ => [Colour::Red, Colour::Red],
            };
            sim.set_colours(ix, &colours);
            sim.step();
        }
    };
    let start = |cfg: SimConfig| {
        Scenario::new(net.clone(), demand.clone(), cfg)
            .unwrap()
            .simulation(&Control::of_kind(ControlKind::External), 1)
            .unwrap()
    };

    // The old rule alone: three hours, no gridlock, yet vehicles cross to the end.
    let mut sim = start(SimConfig {
        gridlock_exit_fraction: 0.0,
        ..SimConfig::default()
    });
    let end = Ms::from_s(3 * 3600);
    starve(&mut sim, end - Ms::from_s(300));
    let crossed = sim.metrics().intersections[0].throughput_veh;
    starve(&mut sim, end);
    assert_eq!(sim.now(), end, "the standstill rule stays silent");
    let m = sim.metrics();
    assert!(m.gridlock.is_none());
    let last = m.intersections[0].throughput_veh - crossed;
    assert!(
        (1..=10).contains(&last),
        "it creeps: {last} crossed in the last 5 min"
    );
    assert!(
        m.in_network >= 60 && m.waiting_to_enter > 8_000,
        "nothing gets through: {} in the network, {} waiting",
        m.in_network,
        m.waiting_to_enter
    );

    // With the low-throughput rule.
    let mut sim = start(SimConfig::default());
    starve(&mut sim, end);
    let g = sim
        .gridlock()
        .expect("the creeping jam is reported")
        .clone();
    assert_eq!(g.rule, GridlockRule::LowThroughput);
    assert_eq!(g.window_s, 300.0);
    assert!(
        g.at_s <= 400.0,
        "reported after its first full window: {g:?}"
    );
    assert!(g.link_exits > 0, "it creeps: {g:?}");
    assert!(g.network_exits <= g.link_exits);
    assert!((g.link_exits as f64) < 0.25 * g.vehicles as f64, "{g:?}");
    assert!(g.vehicles >= 60 && g.waiting_to_enter > 0, "{g:?}");
    assert_eq!(sim.metrics().gridlock, Some(g));
}

/// Oversaturated but flowing: 1,000 veh/h on each approach of a crossing whose fixed plan
/// serves about 750, for two hours. The links stay full and the entry queues grow without
/// end, but vehicles leave at capacity, so neither rule reports a gridlock.
#[test]
fn heavy_flowing_traffic_is_not_a_gridlock() {
    let (net, demand) = synth::crossing(300.0, 30.0, 30.0, 6.0, 1000.0, 1000.0, 2).unwrap();
    let sc = Scenario::new(net, demand, SimConfig::default()).unwrap();
    let m = sc.run(&Control::fixed(), 2, Ms::from_s(7200)).unwrap();
    assert!(m.gridlock.is_none(), "{:?}", m.gridlock);
    assert_eq!(m.duration_s, 7200.0);
    assert!(m.waiting_to_enter > 500, "oversaturated: {m:?}");
    assert!(m.in_network >= 60, "the links are full: {}", m.in_network);
    assert!(
        m.throughput_veh_h > 1300.0,
        "flowing at about capacity: {:.0} veh/h",
        m.throughput_veh_h
    );
}

/// The delay of every vehicle counts the ones that have not completed: behind a red that
/// never ends nobody completes, yet everyone has been delayed about as long as it waited.
#[test]
fn delay_of_all_vehicles_counts_the_unfinished() {
    let (net, demand) = synth::crossing(300.0, 30.0, 30.0, 6.0, 600.0, 600.0, 1).unwrap();
    let sc = Scenario::new(net, demand, SimConfig::default()).unwrap();
    let mut sim = sc
        .simulation(&Control::of_kind(ControlKind::External), 1)
        .unwrap();
    sim.set_colours(IntersectionIdx(0), &[Colour::Red, Colour::Red]);
    let t = 240.0;
    assert!(sim.run_until(Ms::from_s(240)));
    let m = sim.metrics();
    assert_eq!(m.completed, 0);
    assert_eq!(m.mean_delay_s, 0.0);
    let n = (m.in_network + m.waiting_to_enter) as f64;
    assert!(n > 40.0, "{n} vehicles");
    // Arrivals spread over [0, t]: on average t / 2 in the system, less at most the
    // approach's free-flow time (300 m at 50 km/h, 21.6 s) for the way covered.
    assert!(
        m.mean_delay_all_s > t / 2.0 - 22.0 - 20.0 && m.mean_delay_all_s < t / 2.0 + 20.0,
        "{} s against about {} s",
        m.mean_delay_all_s,
        t / 2.0 - 10.0
    );
}

/// When every vehicle has completed, the delay of all vehicles is the completed vehicles'
/// delay plus their wait at the entry.
#[test]
fn delay_of_all_vehicles_when_all_completed() {
    let (net, demand) = synth::crossing(300.0, 30.0, 30.0, 6.0, 500.0, 400.0, 1).unwrap();
    let sc = Scenario::new(net, demand, SimConfig::default()).unwrap();
    let m = sc.run(&Control::fixed(), 2, Ms::from_s(2 * 3600)).unwrap();
    assert_eq!(m.unfinished, 0);
    assert!(m.completed > 500);
    assert!(
        (m.mean_delay_all_s - (m.mean_delay_s + m.mean_entry_wait_s)).abs() < 1e-9,
        "{} against {} + {}",
        m.mean_delay_all_s,
        m.mean_delay_s,
        m.mean_entry_wait_s
    );
}

/// The audit sees a broken intergreen, a short yellow and two conflicting greens.
#[test]
fn the_audit_catches_violations() {
    let (net, _) = synth::crossing(300.0, 30.0, 30.0, 6.0, 100.0, 100.0, 1).unwrap();
    let ix = &net.intersections[0];
    let start = [Colour::Green, Colour::Red];
    let mut o = Audit::new(ix, &start, Ms(0));
    o.see(Ms(6000), &[Colour::Yellow, Colour::Red]).unwrap();
    let e = o.see(Ms(7000), &[Colour::Red, Colour::Red]).unwrap_err();
    assert!(e.contains("clearance"), "{e}");
    let mut o = Audit::new(ix, &start, Ms(0));
    o.see(Ms(6000), &[Colour::Yellow, Colour::Red]).unwrap();
    o.see(
        Ms(6000) + ix.groups[0].clearance,
        &[Colour::Red, Colour::Red],
    )
    .unwrap();
    let e = o
        .see(
            Ms(6000) + ix.groups[0].clearance + Ms(100),
            &[Colour::Red, Colour::Green],
        )
        .unwrap_err();
    assert!(e.contains("intergreen"), "{e}");
    let mut o = Audit::new(ix, &start, Ms(0));
    let e = o
        .see(Ms(20000), &[Colour::Green, Colour::Green])
        .unwrap_err();
    assert!(e.contains("open together"), "{e}");
}
