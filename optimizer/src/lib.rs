//! # optimizer — Greenwave's central planner and service
//!
//! Turns detector counts into coordinated timing plans, checks every candidate in the
//! simulator before it may go out, and (in [`serve`]) runs as the central service: MQTT in,
//! signed plans out, time series stored. This page covers the planning core; the service
//! modules document themselves.
//!
//! ## Glossary
//! - **movement flow**: vehicles per hour making one movement (approach to exit) at one
//!   intersection, the unit of the estimate.
//! - **lane cluster**: the lanes of an approach joined by movements that share them; its
//!   loops count the sum of its movements exactly.
//! - **flow ratio** `y`: flow over saturation flow of the lanes that carry it; **critical**:
//!   the largest of a stage. `Y` is the sum of the critical ratios over the stage sequence.
//! - **lost time** `L`: interstages plus start-up loss over a cycle.
//! - **degree of saturation** `x`: flow over capacity, `Y C / (C - L)` when splits are equal-x.
//! - **green wave**: offsets such that a platoon released by one signal's main stage meets the
//!   next signal's main stage green.
//! - **cyclic flow profile**: vehicles per 1 s step over one cycle at a stop line; **PI**
//!   (performance index): delay plus weighted stops over a coordination group's links, what
//!   the offset search minimises.
//! - **decision**: the before/after record of one simulation check ([`decide::Decision`]).
//!
//! ## Pipeline and algorithms
//! 1. [`counts`]: `DetectorReport` JSON or CSV, every problem located `file:line: field`.
//! 2. [`estimate`]: flows per movement — lane clusters; turning split by non-negative weighted
//!    least squares (nalgebra Cholesky, Lawson & Hanson 1974 active set) from approach against
//!    exit counts, the demand file's ratios (or lanes) as a weak prior; a scalar Kalman filter
//!    per movement (Kalman 1960; Okutani & Stephanedes 1984) with Poisson measurement noise;
//!    counts under a queue (high occupancy) flagged as lower bounds and censored in the filter.
//! 3. [`webster`]: cycle by Webster's optimum `C0 = (1.5 L + 5) / (1 - Y)` (Webster 1958,
//!    *Traffic signal settings*, Road Research Technical Paper 39), flow ratios by lane group
//!    as in HCM 2010 ch. 18 with a start-up loss of 2 s per stage; the common cycle of a
//!    coordination group from its critical intersection within `[cycle_min, cycle_max]`;
//!    equal-degree-of-saturation splits above minimum greens and pedestrian walk + clearance;
//!    offsets as a one-way green wave by travel time at the speed limit in the heavier
//!    direction of the group (the default, `OffsetChoice::GreenWave`, which the service and
//!    the adaptive loop use), or, on request (`--offsets transyt|auto`), moved by
//!    [`offsets`] (with `auto` only for a group no outside signal feeds): a TRANSYT-style
//!    hill-climb on a delay-and-stops index of cyclic flow
//!    profiles with Robertson's platoon dispersion (Robertson 1969, *TRANSYT*, RRL LR 253).
//!    Departures: no end gain for the yellow; a group green in `k` stages counts `y / k` in
//!    each; double cycling as an option (`PlanParams::double_cycling`, off by default);
//!    permissive left turners priced by gap acceptance as an option
//!    (`PlanParams::permissive_left`, off by default in the planner; the adaptive loop's
//!    commissioning chooses it per group from the history, [`adaptive::commission`]); no
//!    bandwidth maximisation; splits not
//!    searched. Every plan is checked by `intersections::plan::validate`.
//! 4. [`decide`]: candidate and plans in force simulated on the estimated demand, several
//!    seeds, common random numbers; accepted only if mean delay improves by more than the
//!    threshold (3%).
//! 5. [`adaptive`]: the closed loop in the simulator (re-plan every 10 min from simulated
//!    counts, check, hand accepted plans to each cabinet's `SignalMachine`, which moves to them
//!    at a cycle boundary through transition cycles) and the control benchmark of issue 6.
//!
//! Pure and deterministic like the rest of the core: time is an argument, randomness comes
//! from the simulator's seeds, iteration is over vectors and `BTreeMap`s.

pub mod adaptive;
pub mod cabinet;
pub mod console;
pub mod counts;
pub mod decide;
pub mod deploy;
pub mod estimate;
pub mod ingest;
pub mod offsets;
pub mod serve;
pub mod timeseries;
pub mod webster;
