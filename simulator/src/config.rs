//! Run configuration: step, driver parameters, the control to use, and the rules of the road
//! that are not in the network file.

use intersections::control::{ActuatedParams, MaxPressureParams};
use intersections::{IntersectionIdx, Ms, Plan};

/// Krauss car-following parameters, one vehicle class: SUMO's passenger-car defaults except
/// `sigma` (0) and `tau` (1.4 s instead of 1 s, so that a standing queue discharges at about
/// 1,800 veh/h/lane instead of about 2,350; see the crate documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct DriverParams {
    /// Maximum acceleration, m/s².
    pub accel_mps2: f64,
    /// Deceleration the safe speed assumes (Krauss `b`), m/s².
    pub decel_mps2: f64,
    /// Comfortable deceleration for the dilemma-zone rule at yellow, m/s².
    pub comfortable_decel_mps2: f64,
    /// Driver reaction time (Krauss `tau`), seconds.
    pub tau_s: f64,
    /// Vehicle length, metres.
    pub length_m: f64,
    /// Gap kept to the leader at standstill, metres.
    pub min_gap_m: f64,
    /// Dawdling (Krauss `sigma`, 0..1): random deceleration by `sigma * accel` each step.
    /// 0 by default: the only randomness is in the demand (see the crate documentation).
    pub sigma: f64,
}

impl Default for DriverParams {
    fn default() -> Self {
        DriverParams {
            accel_mps2: 2.6,
            decel_mps2: 4.5,
            comfortable_decel_mps2: 3.0,
            tau_s: 1.4,
            length_m: 5.0,
            min_gap_m: 2.5,
            sigma: 0.0,
        }
    }
}

/// How the signals are driven.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum ControlKind {
    /// The fixed-time plans (a plan file's, else each intersection's scheduled plan).
    #[default]
    Fixed,
    /// Actuated: gap-out / max-out over the plan's stage sequence.
    Actuated,
    /// Max-pressure (Varaiya 2013), stage-based.
    MaxPressure,
    /// Nothing inside the simulator: the caller sets the colours through
    /// [`intersections::field::Field`] (a controller crate, a test).
    External,
}

impl ControlKind {
    pub fn name(&self) -> &'static str {
        match self {
            ControlKind::Fixed => "fixed",
            ControlKind::Actuated => "actuated",
            ControlKind::MaxPressure => "max-pressure",
            ControlKind::External => "external",
        }
    }
}

/// The control of a run.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Control {
    pub kind: ControlKind,
    /// Plans that replace the network's scheduled plan at their intersections (a plan file,
    /// or the optimizer's candidate). Fixed control runs them; actuated control takes its
    /// stage sequence and maximum greens from them; max-pressure its first stage.
    pub plans: Vec<(IntersectionIdx, Plan)>,
    /// Kinds that replace `kind` at their intersections (a network whose coordinated
    /// arterials run fixed time and whose other signals run actuated, say).
    pub kinds: Vec<(IntersectionIdx, ControlKind)>,
    pub actuated: ActuatedParams,
    pub max_pressure: MaxPressureParams,
}

impl Control {
    pub fn fixed() -> Self {
        Control::default()
    }
    pub fn of_kind(kind: ControlKind) -> Self {
        Control {
            kind,
            ..Control::default()
        }
    }
    /// Fixed control with these plans.
    pub fn with_plans(plans: Vec<(IntersectionIdx, Plan)>) -> Self {
        Control {
            plans,
            ..Control::default()
        }
    }
}

/// Configuration of a run (everything but the network, the demand, the control and the seed).
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Simulation step.
    pub step: Ms,
    /// Time of day at simulation time 0, for the intersections' plan schedules.
    pub start_of_day: Ms,
    pub driver: DriverParams,
    /// Length of the path through a junction (the crossing takes this at the outgoing link's
    /// speed), metres.
    pub junction_length_m: f64,
    /// Critical gap of a permissive turn or a minor-road vehicle: it goes only if no
    /// priority vehicle will reach the conflict within this time, seconds.
    pub critical_gap_s: f64,
    /// Follow-up: a yielding vehicle also waits this long after a priority vehicle crossed.
    pub follow_up_s: f64,
    /// Gridlock, the standstill rule: the run stops and reports a gridlock when no vehicle
    /// moved (and none entered) for this long while vehicles are in the network. Also the
    /// window of the low-throughput rule.
    pub gridlock_after: Ms,
    /// Gridlock, the low-throughput rule (a jam that keeps creeping): the run also stops and
    /// reports a gridlock when, over the last `gridlock_after`, fewer vehicles left a link
    /// (crossed a stop line into the next link, or left the network) than this fraction of
    /// the vehicles in the network. By Little's law the rule fires when a vehicle needs on
    /// average more than `gridlock_after / gridlock_exit_fraction` to get off a link: with
    /// the defaults, 20 min, over six of the longest cycles allowed (180 s). Flowing runs of
    /// the shipped networks, even oversaturated ones, stay above 2 link exits per vehicle in
    /// the network per 5 min (docs/benchmarks.md). 0 switches the rule off; lower it for
    /// networks of links far longer than urban blocks.
    pub gridlock_exit_fraction: f64,
    /// The low-throughput rule looks only at a network holding at least this many vehicles.
    pub gridlock_min_vehicles: u64,
    /// Lane changes along a link (on by default): a vehicle held behind a stopped front
    /// vehicle of another movement (a permissive left turner waiting for a gap, say) moves to
    /// an adjacent lane that serves its own movement when that lane has a safe gap beside it.
    /// Off, a vehicle keeps the lane it chose on entering the link (the model before
    /// 2026-11-29).
    pub lane_changes: bool,
    /// Speed limits of turning vehicles through a junction (`None`, the default: turners
    /// cross at the links' speed). A turner slows so that it reaches the stop line no faster
    /// than its limit (braking at the driver's `decel_mps2`, as a SUMO vehicle anticipates the
    /// speed of a junction's internal lane), and its free-flow time through the junction is
    /// taken at that speed. With them every agreement figure against SUMO came closer, but the
    /// adaptive loop then loses to the priced fixed plans on district, which is why they are
    /// not the default yet (docs/benchmarks.md, "Turn speeds").
    pub turn_speeds: Option<TurnSpeeds>,
    /// Keep a record per completed vehicle (off by default: aggregates only).
    pub record_vehicles: bool,
    /// Keep every detector on/off event (off by default).
    pub record_detector_events: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            step: Ms(1000),
            start_of_day: Ms::ZERO,
            driver: DriverParams::default(),
            junction_length_m: 12.0,
            critical_gap_s: 4.5,
            follow_up_s: 2.0,
            gridlock_after: Ms::from_s(300),
            gridlock_exit_fraction: 0.25,
            gridlock_min_vehicles: 20,
            lane_changes: true,
            turn_speeds: None,
            record_vehicles: false,
            record_detector_events: false,
        }
    }
}

/// Speed limits of turning vehicles through a junction, m/s. SUMO's netconvert limits the
/// speed of a junction's internal lanes by their radius (`junctions.limit-turn-speed`, a
/// lateral acceleration of 5.5 m/s²); on the shipped networks exported to SUMO that gives
/// 9.6 m/s for left turns and 6.6 to 7.5 m/s for right turns (docs/benchmarks.md, "A heavier
/// demand level"), the defaults here. A U-turn takes the right turn's limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TurnSpeeds {
    pub left_mps: f64,
    pub right_mps: f64,
}

impl Default for TurnSpeeds {
    fn default() -> Self {
        TurnSpeeds {
            left_mps: 9.6,
            right_mps: 7.0,
        }
    }
}
