//! # sumo — Greenwave and Eclipse SUMO
//!
//! Both directions between Greenwave and Eclipse SUMO (1.28), issue 5:
//! - [`export`]: a checked Greenwave network, its timing plans and its demand as the files SUMO
//!   reads, so that it can be built with `netconvert` and run in `sumo` on the same plans and
//!   demand as Greenwave's own simulator;
//! - [`import`]: a SUMO `.net.xml` (with routes and E1 loops) as a Greenwave network with
//!   default plans and a demand, everything that cannot be mapped reported;
//! - [`counts`]: SUMO's E1 detector output as Greenwave detector reports for the planner.
//!
//! The mapping is pure (texts and checked types in, texts and specs out; [`xml`] locates every
//! problem as `file:line: element/attribute: what`); running SUMO's programs lives apart in
//! [`tools`]. Depends on `intersections` only, so neither the controller nor the simulator
//! links it. `docs/sumo.md` documents the import and the counts.
//!
//! ## Glossary (SUMO's words)
//! - **node / edge / lane**: SUMO's junction, directed road, and lane (`<edge>_<index>`,
//!   index 0 the rightmost, as ours).
//! - **connection**: one lane-to-lane movement through a junction. Each lane of one of our
//!   movements becomes one connection.
//! - **linkIndex**: position of a connection's character in the phase state strings of the
//!   traffic light that controls it.
//! - **tlLogic / phase / state**: a signal program, its phases (duration and state string:
//!   `G` green with priority, `g` green that yields, `y` yellow, `u` red-yellow, `r` red,
//!   `O` no signal).
//! - **routeDistribution**: routes with probabilities; each vehicle of a flow that names it
//!   draws one.
//! - **plain XML**: the `.nod.xml`, `.edg.xml`, `.con.xml` and `.tll.xml` inputs from which
//!   `netconvert` builds a `.net.xml`.
//! - **E1 / induction loop**: a point detector on a lane (`<inductionLoop>`); its output has one
//!   `<interval>` per period with `nVehContrib` (the count) and `occupancy` (percent).
//!
//! Reference: `/work/shared/reference/sumo-formats.md` and SUMO's documentation
//! (<https://sumo.dlr.de/docs/Networks/PlainXML.html>,
//! <https://sumo.dlr.de/docs/Simulation/Traffic_Lights.html>,
//! <https://sumo.dlr.de/docs/Definition_of_Vehicles%2C_Vehicle_Types%2C_and_Routes.html>).

pub mod counts;
mod detectors;
pub mod export;
pub mod import;
pub mod onto;
mod routes;
pub mod tools;
pub mod xml;

pub use counts::{counts, counts_json};
pub use export::{export, ExportError, ExportOptions, SumoFiles, SumoNames, VehicleType};
pub use import::{import, ImportOptions, Imported, SignalImport};
pub use onto::{programs_onto, sumo_names, Onto};
pub use xml::{greenwave_id, Source, SumoError};
