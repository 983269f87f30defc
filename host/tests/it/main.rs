//! Integration tests, in one binary: real `.wasm` components built from
//! source, run through the real runtime and the real `kedastral` binary,
//! and the forecaster against real Prometheus and Redis servers.

mod cli;
mod contract;
mod deploy;
mod docs;
mod examples;
mod forecaster;
mod fracast;
mod hostile;
mod leases;
mod models_dir;
mod refresh;
mod reload;
mod scaler;
mod services;
mod support;
mod web;
