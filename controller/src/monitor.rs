//! The safety monitor, the role of a conflict monitor (NEMA TS2 MMU / ATC CMU) in software:
//! [`intersections::monitor`], one definition shared with the centre's check (which runs the
//! same monitor over every simulated cabinet, so that a plan or transition that would trip it
//! on the street is refused before it is deployed).

pub use intersections::monitor::*;
