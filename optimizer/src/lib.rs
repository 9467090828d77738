//! optimizer: see ../shared/DESIGN.md. Built by its own issue.

pub mod ingest;
pub mod timeseries;
