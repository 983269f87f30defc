//! Running forecast models: WebAssembly components behind the
//! `kedastral:forecast/forecast-model@0.1.0` world, sandboxed by wasmtime.
//!
//! - [`runtime`]: the process-wide [`ModelRuntime`] (one wasmtime `Engine`),
//!   loading a component into a [`LoadedModel`] and calling it, each call in
//!   a fresh instance, under a memory cap and a CPU deadline;
//! - [`guard`]: one user's breaker on a model that faults, and the
//!   plausibility check on every answer;
//! - [`text`]: the bounds on every string a guest returns;
//! - [`source`]: what `--model` names, a built-in or a `.wasm` path;
//! - [`cache`]: precompiled components on disk, so a restart skips Cranelift;
//! - [`validate`]: the checks every answer passes before it counts as a forecast;
//! - [`error`]: load and call errors, each kind distinct down to metrics.
//!
//! The request and answer types are the guest SDK's ([`kedastral_model_sdk`]),
//! so native models and components are called with the same values.

pub mod cache;
pub mod catalog;
pub mod error;
pub mod guard;
pub mod runtime;
pub mod source;
pub mod text;
pub mod validate;

pub use error::{ModelCallError, ModelLoadError};
pub use guard::{Guard, Retry};
pub use kedastral_model_sdk::{
    Forecast, ForecastRequest, ModelError, ModelInfo, ParamSpec, QuantileBand, Series,
};
pub use runtime::{LoadedModel, ModelRuntime, RuntimeLimits};
pub use source::ModelSource;
