//! Kedastral: a predictive autoscaler for Kubernetes.
//!
//! Data flows one way: a history ([`history`]) goes into a forecast model
//! ([`model`], WebAssembly components run by wasmtime), and forecasts are
//! judged against what happened ([`backtest`]).

pub mod backtest;
pub mod cli;
pub mod history;
pub mod model;
