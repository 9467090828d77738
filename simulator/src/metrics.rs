//! What a run measured: per vehicle, per approach, per intersection and per run.

use serde::Serialize;

/// One completed vehicle.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VehicleRecord {
    /// Order of generation in the run (0, 1, ...).
    pub id: u64,
    /// Entry link id.
    pub entry: String,
    pub arrival_s: f64,
    pub depart_s: f64,
    pub arrive_s: f64,
    pub travel_time_s: f64,
    pub free_flow_s: f64,
    pub delay_s: f64,
    pub stops: u32,
    pub distance_m: f64,
}

/// One approach (incoming link) of an intersection.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApproachMetrics {
    pub link: String,
    /// Vehicles that crossed the stop line.
    pub vehicles: u64,
    /// Mean of (time on the link and through the junction before it) minus its free-flow time.
    pub mean_delay_s: f64,
    pub mean_stops: f64,
    /// Halted vehicles (speed below 0.1 m/s) on the link, sampled every step.
    pub mean_queue_veh: f64,
    pub max_queue_veh: u32,
}

/// One intersection.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IntersectionMetrics {
    pub id: String,
    /// `fixed`, `actuated`, `max-pressure`, `external` or `priority`.
    pub control: String,
    /// Vehicles that crossed a stop line of it.
    pub throughput_veh: u64,
    pub throughput_veh_h: f64,
    /// Mean approach delay over the vehicles that crossed.
    pub mean_delay_s: f64,
    pub mean_stops: f64,
    /// Halted vehicles on all its approaches together, sampled every step.
    pub mean_queue_veh: f64,
    pub max_queue_veh: u32,
    pub approaches: Vec<ApproachMetrics>,
}

/// Which rule found a gridlock (see [`crate::SimConfig`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GridlockRule {
    /// No vehicle moved, and none entered, for `gridlock_after`.
    Standstill,
    /// Over the last `gridlock_after` fewer vehicles left a link than
    /// `gridlock_exit_fraction` of the vehicles in the network: a jam that keeps creeping.
    LowThroughput,
}

impl GridlockRule {
    pub fn name(&self) -> &'static str {
        match self {
            GridlockRule::Standstill => "standstill",
            GridlockRule::LowThroughput => "low-throughput",
        }
    }
}

/// A gridlock: the run stopped at `at_s` because a rule found the network jammed. The counts
/// are over the window `[at_s - window_s, at_s]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Gridlock {
    pub rule: GridlockRule,
    pub at_s: f64,
    /// Vehicles in the network at `at_s`.
    pub vehicles: u64,
    /// Vehicles that arrived but had not fitted onto their entry link at `at_s`.
    pub waiting_to_enter: u64,
    /// The window the counts cover (`gridlock_after`), seconds.
    pub window_s: f64,
    /// Vehicles that left a link in the window: crossed a stop line into the next link, or
    /// left the network.
    pub link_exits: u64,
    /// Of those, the vehicles that left the network.
    pub network_exits: u64,
}

/// The result of a run. Means are over completed vehicles.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunMetrics {
    pub network: String,
    pub control: String,
    pub seed: u64,
    pub duration_s: f64,
    pub step_s: f64,
    /// Vehicles the demand generated (arrived at an entry).
    pub generated: u64,
    /// Vehicles that entered the network.
    pub entered: u64,
    /// Vehicles that left the network.
    pub completed: u64,
    /// Still in the network plus still waiting to enter.
    pub unfinished: u64,
    pub in_network: u64,
    pub waiting_to_enter: u64,
    pub peak_in_network: u64,
    pub mean_travel_time_s: f64,
    pub mean_free_flow_s: f64,
    /// Travel time minus free-flow travel time.
    pub mean_delay_s: f64,
    pub mean_stops: f64,
    /// Distance over travel time, summed over vehicles.
    pub mean_speed_mps: f64,
    /// Total travel time over total free-flow travel time.
    pub travel_time_index: f64,
    /// Completed vehicles per hour of simulated time.
    pub throughput_veh_h: f64,
    /// Mean wait at the entry before a vehicle fits onto its entry link.
    pub mean_entry_wait_s: f64,
    /// Mean delay of every vehicle that arrived: completed ones their delay, those still in
    /// the network their delay so far, those waiting to enter their wait, each plus its wait
    /// at the entry. Unlike `mean_delay_s` (completed vehicles only) it does not flatter a
    /// control that leaves vehicles stuck at the end of the run.
    pub mean_delay_all_s: f64,
    /// Vehicle updates done (vehicles in the network summed over steps).
    pub vehicle_steps: u64,
    pub gridlock: Option<Gridlock>,
    pub intersections: Vec<IntersectionMetrics>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vehicles: Vec<VehicleRecord>,
}

impl RunMetrics {
    /// The approach metrics of link `link` at intersection `ix`, by ids.
    pub fn approach(&self, ix: &str, link: &str) -> Option<&ApproachMetrics> {
        self.intersections
            .iter()
            .find(|i| i.id == ix)?
            .approaches
            .iter()
            .find(|a| a.link == link)
    }
}

/// Means over several runs (several seeds), each run weighted equally.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeedSummary {
    pub seeds: Vec<u64>,
    pub mean_delay_s: f64,
    /// See [`RunMetrics::mean_delay_all_s`].
    pub mean_delay_all_s: f64,
    pub mean_stops: f64,
    pub mean_speed_mps: f64,
    pub travel_time_index: f64,
    pub mean_travel_time_s: f64,
    pub throughput_veh_h: f64,
    pub completed: f64,
    pub unfinished: f64,
    pub gridlocks: usize,
}

impl SeedSummary {
    pub fn of(runs: &[RunMetrics]) -> SeedSummary {
        let n = runs.len().max(1) as f64;
        let mean = |f: &dyn Fn(&RunMetrics) -> f64| runs.iter().map(f).sum::<f64>() / n;
        SeedSummary {
            seeds: runs.iter().map(|r| r.seed).collect(),
            mean_delay_s: mean(&|r| r.mean_delay_s),
            mean_delay_all_s: mean(&|r| r.mean_delay_all_s),
            mean_stops: mean(&|r| r.mean_stops),
            mean_speed_mps: mean(&|r| r.mean_speed_mps),
            travel_time_index: mean(&|r| r.travel_time_index),
            mean_travel_time_s: mean(&|r| r.mean_travel_time_s),
            throughput_veh_h: mean(&|r| r.throughput_veh_h),
            completed: mean(&|r| r.completed as f64),
            unfinished: mean(&|r| r.unfinished as f64),
            gridlocks: runs.iter().filter(|r| r.gridlock.is_some()).count(),
        }
    }
}
