//! Kedastral: a predictive autoscaler for Kubernetes.
//!
//! Data flows one way: a history (read from CSV by [`history`], or from
//! Prometheus, see [`collect`]) goes into a forecast model
//! ([`model`], WebAssembly components run by wasmtime), forecasts become
//! replicas ([`capacity`]), and both are judged against what happened:
//! offline on a history ([`backtest`]) and live as actuals arrive
//! ([`live_error`]).
//!
//! The service: [`forecaster`] runs that flow for every workload of a
//! [`config`] each interval, keeps snapshots in memory or Redis ([`store`]),
//! and serves them over HTTP ([`api`]) with metrics ([`telemetry`]) and a
//! web view of why each workload scaled ([`web`], drawing each workload's
//! [`trail`]).

pub mod api;
pub mod backtest;
pub mod candidates;
pub mod capacity;
pub mod cli;
pub mod clock;
pub mod collect;
pub mod config;
pub mod forecaster;
pub mod history;
pub mod live_error;
pub mod model;
pub mod output;
pub mod scaler;
pub mod service;
pub mod shadow;
pub mod sizing;
pub mod store;
pub mod telemetry;
pub mod template;
pub mod trail;
pub mod web;
