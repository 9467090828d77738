//! optimizer: see ../shared/DESIGN.md. Built by its own issue.

pub mod adaptive;
pub mod counts;
pub mod decide;
pub mod deploy;
pub mod estimate;
pub mod ingest;
pub mod serve;
pub mod timeseries;
pub mod webster;
