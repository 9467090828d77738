//! # intersections — Greenwave's shared language and pure signal logic
//!
//! Every part of Greenwave (controller, optimizer, simulator, console) speaks about the things
//! defined here, once: networks, intersections, signal groups, stages, intergreens, detectors,
//! timing plans, the wire messages, and the file formats engineers write by hand. The one
//! safety validator for plans lives in [`plan::validate`]; the signal logic that runs a plan
//! ([`runner`]) is synchronous and deterministic: no async runtime, no clock, no I/O besides
//! the file loaders in [`load`].
//!
//! ## Glossary
//! - **signal group**: movements (or one pedestrian crossing) that always show the same colour.
//! - **stage**: a set of mutually non-conflicting signal groups green at the same time.
//! - **intergreen**: minimum time from the end of green of one group to the start of green of a
//!   conflicting group (yellow + all-red clearance), per ordered pair.
//! - **interstage**: the time between two consecutive stages of a plan, long enough for every
//!   intergreen between the groups that end and those that start.
//! - **timing plan**: cycle length, offset against the shared reference time, stage sequence
//!   and green times.
//! - **coordination group**: intersections sharing one cycle so that greens form a green wave.
//! - **detector report**: counts and occupancy per detector over an interval.
//!
//! ## Flow
//! TOML text → [`spec`] (serde mirror of the file) → [`model::Network`] / [`demand::Demand`] /
//! [`plan::Plan`] (checked, every problem listed with file, line and field) → [`runner`].

pub mod audit;
pub mod control;
pub mod demand;
pub mod diag;
pub mod field;
pub mod geometry;
pub mod load;
pub mod machine;
pub mod messages;
pub mod model;
pub mod monitor;
pub mod plan;
pub mod queue;
pub mod runner;
pub mod signing;
pub mod spec;
pub mod time;
pub mod transition;

pub use diag::{Diagnostic, Diagnostics};
pub use model::{GroupIdx, Intersection, IntersectionIdx, LinkIdx, Network};
pub use plan::Plan;
pub use runner::{Colour, FixedTimeRunner, SignalState};
pub use time::Ms;
