//! # controller — Greenwave's roadside runtime
//!
//! The cabinet binary's parts around the pure signal logic of `intersections`: the safety
//! [`monitor`], the [`config`] file, and (with the Controller issue) the real-time loop, field
//! I/O, fallback and the MQTT client.

pub mod cabinet;
pub mod config;
pub mod monitor;
pub mod run;
