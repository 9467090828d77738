//! # simulator — Greenwave's microscopic traffic simulator
//!
//! The street in demos and CI, and the validator of every candidate plan: every vehicle on a
//! lane, following the vehicle ahead, choosing its lane by its next turn, stopping for red and
//! for yellow when it comfortably can, yielding where it must, and queueing back through the
//! network when links fill. Signals are driven through the [`intersections::field::Field`]
//! interface, by fixed-time plans, actuated or max-pressure logic from `intersections::control`,
//! or by anything outside (the controller crate). Pure and deterministic: time is an integer
//! [`Ms`] step count, randomness comes from one seed, and the same inputs give bit-identical
//! results. No clock is read here (`clippy::disallowed_methods`).
//!
//! ## Glossary
//! - **scenario**: network + demand + configuration compiled once into flat arrays
//!   ([`Scenario`]); many runs share it.
//! - **simulation**: one run's state ([`Simulation`]); cloneable, so a run can go on from a
//!   saved state under another control.
//! - **step**: the fixed time step (default 1 s, as SUMO's default; 0.5 s and others allowed).
//! - **vehicle-step**: one vehicle updated in one step, the unit of the benchmark.
//! - **free-flow time**: a route's length over the speed limits (links and junction crossings).
//! - **delay**: travel time minus free-flow time. **Travel time index**: total travel time over
//!   total free-flow time.
//! - **halted**: slower than 0.1 m/s; **queue**: the halted vehicles on an approach. A **stop**
//!   is counted when a vehicle halts, and ends once it is faster than 5 m/s again (so creeping
//!   up in a queue is one stop).
//! - **entry queue**: vehicles that arrived but do not fit onto their entry link yet; they count
//!   as unfinished and their wait is reported (`mean_entry_wait_s`), not as travel time.
//!
//! ## Model
//! **Car following: Krauss** (S. Krauß, *Microscopic modeling of traffic flow: investigation
//! of collision free vehicle dynamics*, DLR 1998), as SUMO uses it: each step a vehicle takes
//! `v = min(v_max, v + a·dt, v_safe)` with the safe speed
//! `v_safe = -b·τ + sqrt((b·τ)² + v_leader² + 2·b·gap)`, which lets it stop behind a leader that
//! brakes at `b` after a reaction time `τ`. Chosen over IDM (M. Treiber, A. Hennecke,
//! D. Helbing, *Congested traffic states in empirical observations and microscopic
//! simulations*, Phys. Rev. E 62, 2000) because it is collision-free by construction at the
//! step sizes we run (1 s, `τ >= step`), needs no special handling of negative speeds, costs one
//! square root per vehicle-step, and is what SUMO runs, so comparisons with SUMO compare like
//! with like. Departures from SUMO: dawdling (`sigma`) is 0 by default, so free flow runs at the
//! speed limit and the only randomness is in the demand (set [`DriverParams::sigma`] for
//! SUMO's 0.5); a reaction time `τ` of 1.4 s rather than SUMO's 1 s, because with `τ = 1 s`
//! and no dawdling a standing queue discharges at about 2,350 veh/h/lane, far above the
//! 1,700-2,000 observed (HCM's base is 1,900), while 1.4 s gives about 1,800 at both 1 s and
//! 0.5 s steps; one vehicle class (SUMO's passenger car: 5 m, 2.5 m minimum gap, 2.6 m/s²,
//! 4.5 m/s²).
//!
//! **Junctions** have no internal lanes: a vehicle that passes the stop line is put on its next
//! link `junction_length_m` before its start (a negative position) and crosses at that link's
//! speed. It passes only if its signal group shows green, or yellow and it cannot stop at the
//! comfortable deceleration (the dilemma-zone rule); if a yielding movement (a permissive left
//! or U-turn at a signal; a minor approach, or a major left, at a priority junction) finds a
//! gap in the conflicting priority stream (no priority vehicle within `critical_gap_s` of the
//! stop line, none crossed within `follow_up_s`); and if its exit lane has room or is flowing
//! (it does not block the junction). Flashing yellow or dark signals turn a junction into an
//! all-way yield.
//!
//! **Lanes**: a vehicle picks, on entering a link, the lane with most room among those of its
//! next movement. Along the link it changes lane only to get past a front vehicle halted for
//! another movement (a permissive left turner waiting for a gap in a shared lane, say): when
//! its own movement's signal lets it go, it moves to an adjacent lane that serves its movement
//! and is not held the same way, if the gap there is safe (the minimum gap ahead; the minimum
//! gap plus the follower's speed times `tau` behind). No other lane changes (no overtaking
//! for speed, no cooperative merging). `SimConfig::lane_changes` switches this off; without
//! it grid4's delay was 28% above SUMO's on the same vehicles, with it 9% below
//! (docs/benchmarks.md). Saturation flow and start-up
//! lost time emerge from the car following: a standing queue discharges at about 1,900
//! veh/h/lane (tested).
//!
//! **Turns** cross at the link's speed by default. With `SimConfig::turn_speeds` a turner
//! reaches the stop line no faster than its turn's limit (SUMO's internal-lane speeds on our
//! exports), braking for it stepwise; that brings every agreement figure against SUMO closer,
//! and is not the default yet only because the adaptive loop then loses on one benchmark
//! (docs/benchmarks.md, "Turn speeds"). [`Simulation::set_demand`] lets a run go on with
//! another demand (a simulated twin following a street's estimates).
//!
//! **Storage** is finite: a full exit lane stops the vehicles behind the stop line (spillback),
//! a full entry link keeps arrivals in the entry queue, and a jammed run stops and reports a
//! [`Gridlock`] (which rule fired, when, the vehicles in the network and the exits in the
//! window) by either of two rules:
//! - **standstill**: nothing moved, and nothing entered, for `gridlock_after` (5 min) while
//!   vehicles are in the network;
//! - **low throughput**: over the last `gridlock_after`, fewer vehicles left a link (crossed a
//!   stop line, or left the network) than `gridlock_exit_fraction` (25%) of the vehicles in
//!   the network, with at least `gridlock_min_vehicles` (20) in it. This catches a jam that
//!   keeps creeping, where a few vehicles shuffle up their queues (so something always moves)
//!   but nothing really gets through. Link exits rather than network exits, so that the rule
//!   does not depend on the size of the network (in a 32x32 grid few vehicles leave the network
//!   in 5 min while it fills, but every vehicle crosses several links); by Little's law it
//!   fires when a vehicle needs on average more than 20 min to get off a link. Flowing runs of
//!   every shipped network under every control stay above 2 link exits per vehicle per 5 min;
//!   jammed ones fall below 0.1 (figures in docs/benchmarks.md).
//!
//! **Demand**: per entry, Poisson arrivals (exponential headways) at the rate of each time slice
//! of the demand file; each vehicle's whole route (a movement at each junction, drawn from the
//! turning ratios) is drawn at its arrival from its entry's generator. Generators are ChaCha8
//! streams of the run seed: one per entry, one for driver dawdling, so the same seed gives
//! every candidate plan the same vehicles with the same routes (common random numbers).
//!
//! **Detectors** are inductive loops on their lane: a count per front bumper crossing the loop
//! start, the occupied time from the overlap of the vehicle with the loop during the step, and
//! on/off changes at step ends ([`intersections::field::DetectorState`]).
//!
//! Validation against theory: the tests compare approach delays at an isolated fixed-time
//! crossing with Webster's formula (F. V. Webster, *Traffic signal settings*, Road Research
//! Technical Paper 39, HMSO 1958). Max-pressure control follows P. Varaiya, *Max pressure
//! control of a network of signalized intersections*, Transp. Res. C 36 (2013).
//!
//! ## Use
//! ```no_run
//! # use simulator::{Scenario, SimConfig, Control};
//! # fn f(net: intersections::Network, demand: intersections::demand::Demand) -> Result<(), simulator::SimError> {
//! let scenario = Scenario::new(net, demand, SimConfig::default())?;
//! let metrics = scenario.run(&Control::fixed(), 42, intersections::Ms::from_s(3600))?;
//! let by_seed = scenario.run_seeds(&Control::fixed(), &[1, 2, 3, 4], intersections::Ms::from_s(900))?;
//! # Ok(()) }
//! ```

pub mod config;
pub mod metrics;
pub mod sim;
pub mod synth;

pub use config::{Control, ControlKind, DriverParams, SimConfig, TurnSpeeds};
pub use intersections::Ms;
pub use metrics::{
    ApproachMetrics, Gridlock, GridlockRule, IntersectionMetrics, RunMetrics, SeedSummary,
    VehicleRecord,
};
pub use sim::{guard, par_seeds, DetectorEvent, Scenario, Simulation};

/// What can stop a run from starting.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SimError {
    #[error(
        "intersection {intersection:?} has no plan to run (fixed and actuated control need one)"
    )]
    NoPlan { intersection: String },
    #[error("invalid simulation setup: {0}")]
    Config(String),
    /// A run on a worker thread panicked (a bug, not bad input): what ran, and the panic's
    /// message. See [`guard`].
    #[error("{what} panicked: {message}")]
    Panicked { what: String, message: String },
}
