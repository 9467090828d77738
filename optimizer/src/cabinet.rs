//! The cabinets of a simulated street: each signalised intersection's [`SignalMachine`] (the
//! state machine the roadside controller runs) drives the simulator's signals through the
//! `Field` interface. The adaptive loop ([`crate::adaptive`]) and the check before deployment
//! ([`crate::decide`]) both run plans this way, so what they measure includes what the
//! cabinet does: power-up, the move to a new plan at a cycle boundary through transition
//! cycles, the switch between coordinated and isolated actuated operation.
//!
//! Every cabinet's output also goes through the cabinet's safety monitor
//! ([`intersections::monitor`], the one the controller runs): a plan or a transition whose
//! colours would trip it on the street trips it here, the intersection shows the monitor's
//! flash as the street would, and the trip is kept ([`Cabinets::trips`]) so that the check
//! refuses the candidate.

use intersections::field::{Field, Measurements, SignalLogic};
use intersections::machine::SignalMachine;
use intersections::monitor::{Fault, Monitor};
use intersections::spec::ControlKind as IxControl;
use intersections::{Colour, IntersectionIdx, Ms, Plan};
use simulator::{SimError, Simulation};

use crate::decide::Operation;
use intersections::control::ActuatedParams;

/// The cabinet's [`SignalMachine`] as signal logic for a field: the plan in force run
/// coordinated in fixed time or isolated actuated, plan changes at cycle boundaries through
/// transitions.
#[derive(Clone, Debug)]
pub struct CabinetLogic {
    pub machine: SignalMachine,
    colours: Vec<Colour>,
    /// Pass the detectors: the machine runs its plans actuated.
    pub actuate: bool,
    failed: Vec<bool>,
}

impl CabinetLogic {
    pub fn new(machine: SignalMachine) -> Self {
        CabinetLogic {
            machine,
            colours: Vec::new(),
            actuate: false,
            failed: Vec::new(),
        }
    }

    /// Put `plan` in force, run coordinated (`actuated` `None`) or isolated actuated.
    pub fn deploy(&mut self, plan: &Plan, actuated: Option<&ActuatedParams>) {
        self.machine.set_plan(plan.clone());
        self.machine.set_isolated(actuated.is_some());
        if let Some(a) = actuated {
            self.machine.set_passage(a.passage);
            self.machine.set_max_green_factor(a.max_green_factor);
        }
        self.actuate = actuated.is_some();
    }
}

impl SignalLogic for CabinetLogic {
    fn step(&mut self, now: Ms, m: &Measurements<'_>) -> Ms {
        let out = if self.actuate {
            self.failed.resize(m.detectors.len(), false);
            self.machine.step_with(
                now,
                &intersections::machine::Detectors {
                    states: m.detectors,
                    failed: &self.failed,
                },
            )
        } else {
            self.machine.step(now)
        };
        self.colours = out.colours;
        out.next_wake
    }
    fn colours(&self) -> &[Colour] {
        &self.colours
    }
}

/// One cabinet per signalised intersection of a network, driving a simulation made with
/// `ControlKind::External`.
#[derive(Clone, Debug)]
pub struct Cabinets {
    cabinets: Vec<Option<Cabinet>>,
    trips: Vec<Trip>,
}

/// One simulated cabinet: its logic, its safety monitor, and when it runs.
#[derive(Clone, Debug)]
struct Cabinet {
    logic: CabinetLogic,
    monitor: Monitor,
    /// When the logic asked to run next.
    wake: Ms,
    /// When it last ran.
    last: Ms,
}

impl Cabinet {
    /// Run the logic at `t` and pass its output through the monitor: the fault if the
    /// monitor tripped now (a latched monitor's later refusals are not new trips).
    fn run(&mut self, t: Ms, meas: &Measurements<'_>) -> Option<Fault> {
        self.wake = self.logic.step(t, meas);
        self.last = t;
        let was_tripped = self.monitor.tripped().is_some();
        let checked = self.monitor.check(t, self.logic.colours());
        checked.err().filter(|_| !was_tripped)
    }
}

/// A cabinet's safety monitor tripped: the intersection went to flash.
#[derive(Clone, Debug, PartialEq)]
pub struct Trip {
    pub intersection: IntersectionIdx,
    /// The intersection's id.
    pub id: String,
    pub time: Ms,
    pub fault: Fault,
}

impl Cabinets {
    /// Cabinets that power up at `sim`'s time (flashing yellow, all red, then the plan)
    /// running `op`; a signalised intersection `op` has no plan for runs the network's plan
    /// scheduled at `sim`'s time of day ([`intersections::Network::plan_in_force`]), and one
    /// without either is an error.
    pub fn new(sim: &Simulation, op: &Operation) -> Result<Self, SimError> {
        let (net, now) = (sim.network(), sim.now());
        let mut cabinets: Vec<Option<Cabinet>> = vec![None; net.intersections.len()];
        for (i, ix) in net.intersections.iter().enumerate() {
            if ix.control == IxControl::Priority {
                continue;
            }
            let ii = IntersectionIdx(i);
            let plan = net
                .plan_in_force(ii, &op.plans, sim.time_of_day())
                .ok_or_else(|| SimError::NoPlan {
                    intersection: ix.id.clone(),
                })?;
            let mut l =
                CabinetLogic::new(SignalMachine::new(ix, &net.safety, Some(plan.clone()), now));
            if let Some(a) = op.actuated_at(ii) {
                l.deploy(plan, Some(a));
            }
            cabinets[i] = Some(Cabinet {
                logic: l,
                monitor: Monitor::new(ix, now),
                wake: now,
                last: Ms(i64::MIN),
            });
        }
        Ok(Cabinets {
            cabinets,
            trips: Vec::new(),
        })
    }

    /// Hand `op`'s plans to their cabinets at `now`: each moves to its plan at its next
    /// cycle boundary through transition cycles, in `op`'s mode.
    pub fn deploy(&mut self, op: &Operation, now: Ms) {
        for (i, p) in &op.plans {
            if let Some(c) = self.cabinets.get_mut(i.0).and_then(Option::as_mut) {
                c.logic.deploy(p, op.actuated_at(*i));
                // Run at `now` at the latest, and first at any wake-up missed before it.
                c.wake = c.wake.min(now);
            }
        }
    }

    /// Step the cabinets that are due (every step for an actuated one) and show their
    /// colours in `sim`.
    pub fn drive(&mut self, sim: &mut Simulation) {
        let now = sim.now();
        for (i, slot) in self.cabinets.iter_mut().enumerate() {
            let Some(c) = slot.as_mut() else { continue };
            if now < c.wake && !c.logic.actuate {
                continue;
            }
            let ix = IntersectionIdx(i);
            let meas = sim.measurements(ix);
            // The simulator samples in steps, later than a cabinet may have asked: as the
            // roadside cabinet does (`controller::cabinet::Cabinet::tick`), run first at each
            // wake-up missed since the last run, so that the monitor sees every change at its
            // own time and no interval looks shorter than it ran.
            let mut tripped = Vec::new();
            for _ in 0..1_000 {
                let due = c.wake;
                if due >= now || due <= c.last {
                    break;
                }
                tripped.extend(c.run(due, &meas).map(|f| (due, f)));
            }
            tripped.extend(c.run(now, &meas).map(|f| (now, f)));
            self.trips
                .extend(tripped.into_iter().map(|(time, fault)| Trip {
                    intersection: ix,
                    id: sim.network().intersections[i].id.clone(),
                    time,
                    fault,
                }));
            // A tripped monitor shows its flash, as on the street.
            if c.monitor.tripped().is_some() {
                sim.set_colours(ix, &c.monitor.output());
            } else {
                sim.set_colours(ix, c.logic.colours());
            }
        }
    }

    /// The monitors that tripped, in order (each intersection once: a monitor stays latched).
    pub fn trips(&self) -> &[Trip] {
        &self.trips
    }

    /// Run `sim` to `end` under the cabinets; `false` if it stopped on a gridlock.
    pub fn run_until(&mut self, sim: &mut Simulation, end: Ms) -> bool {
        while sim.now() < end {
            if sim.gridlock().is_some() {
                return false;
            }
            self.drive(sim);
            sim.step();
        }
        sim.gridlock().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simulator::{Control, ControlKind, Scenario, SimConfig};

    /// The cabinets power up on the plan the schedule runs at the simulation's time of day
    /// (`start_of_day` + simulated time), as the simulator's own controls do, unless the
    /// operation gives one.
    #[test]
    fn cabinets_start_on_the_plan_scheduled_at_the_time_of_day() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../intersections/networks");
        let net = intersections::load::load_network(&dir.join("grid4.toml")).unwrap();
        let demand =
            intersections::load::load_demand_for(&dir.join("grid4.demand.toml"), &net).unwrap();
        let ids = |start_of_day: Ms, op: &Operation| -> Vec<String> {
            let cfg = SimConfig {
                start_of_day,
                ..SimConfig::default()
            };
            let sc = Scenario::new(net.clone(), demand.clone(), cfg).unwrap();
            let sim = sc
                .simulation(&Control::of_kind(ControlKind::External), 1)
                .unwrap();
            let cab = Cabinets::new(&sim, op).unwrap();
            cab.cabinets
                .iter()
                .flatten()
                .map(|c| c.logic.machine.plan().unwrap().id.clone())
                .collect()
        };
        let none = Operation::coordinated(Vec::new());
        assert!(ids(Ms::ZERO, &none).iter().all(|p| p == "offpeak"));
        // grid4 runs am_peak from 07:00.
        let morning = ids(Ms::from_s(7 * 3600 + 1800), &none);
        assert!(morning.iter().all(|p| p == "am_peak"), "{morning:?}");
        // A plan of the operation wins over the schedule.
        let g11 = net.intersection("G11").unwrap();
        let mut own = net.intersections[g11.0].plans[2].clone();
        own.id = "mine".into();
        let op = Operation::coordinated(vec![(g11, own)]);
        let with = ids(Ms::from_s(7 * 3600 + 1800), &op);
        assert_eq!(with[0], "mine");
        assert!(with[1..].iter().all(|p| p == "am_peak"));
    }
}
