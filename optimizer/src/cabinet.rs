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
    logics: Vec<Option<CabinetLogic>>,
    monitors: Vec<Option<Monitor>>,
    wake: Vec<Ms>,
    /// When each cabinet last ran.
    last: Vec<Ms>,
    trips: Vec<Trip>,
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
        let n = net.intersections.len();
        let mut logics: Vec<Option<CabinetLogic>> = vec![None; n];
        let mut monitors: Vec<Option<Monitor>> = vec![None; n];
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
            logics[i] = Some(l);
            monitors[i] = Some(Monitor::new(ix, now));
        }
        Ok(Cabinets {
            logics,
            monitors,
            wake: vec![now; n],
            last: vec![Ms(i64::MIN); n],
            trips: Vec::new(),
        })
    }

    /// Hand `op`'s plans to their cabinets at `now`: each moves to its plan at its next
    /// cycle boundary through transition cycles, in `op`'s mode.
    pub fn deploy(&mut self, op: &Operation, now: Ms) {
        for (i, p) in &op.plans {
            if let Some(l) = self.logics.get_mut(i.0).and_then(Option::as_mut) {
                l.deploy(p, op.actuated_at(*i));
                // Run at `now` at the latest, and first at any wake-up missed before it.
                self.wake[i.0] = self.wake[i.0].min(now);
            }
        }
    }

    /// Step the cabinets that are due (every step for an actuated one) and show their
    /// colours in `sim`.
    pub fn drive(&mut self, sim: &mut Simulation) {
        let now = sim.now();
        for (i, slot) in self.logics.iter_mut().enumerate() {
            let Some(l) = slot.as_mut() else { continue };
            if now < self.wake[i] && !l.actuate {
                continue;
            }
            let ix = IntersectionIdx(i);
            let meas = sim.measurements(ix);
            // The simulator samples in steps, later than a cabinet may have asked: as the
            // roadside cabinet does (`controller::cabinet::Cabinet::tick`), run first at each
            // wake-up missed since the last run, so that the monitor sees every change at its
            // own time and no interval looks shorter than it ran.
            if let Some(m) = self.monitors[i].as_mut() {
                for _ in 0..1_000 {
                    let due = self.wake[i];
                    if due >= now || due <= self.last[i] {
                        break;
                    }
                    self.wake[i] = l.step(due, &meas);
                    self.last[i] = due;
                    if let Err(fault) = m.check(due, l.colours()) {
                        if self.trips.iter().all(|t| t.intersection != ix) {
                            self.trips.push(Trip {
                                intersection: ix,
                                id: sim.network().intersections[i].id.clone(),
                                time: due,
                                fault,
                            });
                        }
                    }
                }
            }
            self.wake[i] = l.step(now, &meas);
            self.last[i] = now;
            match self.monitors[i].as_mut() {
                Some(m) => match m.check(now, l.colours()) {
                    Ok(()) => sim.set_colours(ix, l.colours()),
                    Err(fault) => {
                        if self.trips.iter().all(|t| t.intersection != ix) {
                            self.trips.push(Trip {
                                intersection: ix,
                                id: sim.network().intersections[i].id.clone(),
                                time: now,
                                fault,
                            });
                        }
                        sim.set_colours(ix, &m.output());
                    }
                },
                None => sim.set_colours(ix, l.colours()),
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
            cab.logics
                .iter()
                .flatten()
                .map(|l| l.machine.plan().unwrap().id.clone())
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
