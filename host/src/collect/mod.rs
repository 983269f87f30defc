//! Collecting a workload's metric history.
//!
//! - [`prometheus`]: planning `query_range` requests within Prometheus's
//!   points-per-series limit, and turning its answers into one series.
pub mod prometheus;
