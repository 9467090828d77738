//! optimizer: see ../shared/DESIGN.md. Built by its own issue.

pub mod deploy;
pub mod ingest;
pub mod serve;
pub mod timeseries;
