//! optimizer: see ../shared/DESIGN.md. Built by its own issue.

pub mod timeseries;
