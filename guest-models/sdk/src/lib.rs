//! Write a Kedastral forecast model: implement [`Model`], call [`export_model!`].
//!
//! ```ignore
//! use kedastral_model_sdk::{export_model, Forecast, ForecastRequest, Model, ModelError, ModelInfo};
//!
//! pub struct LastValue;
//!
//! impl Model for LastValue {
//!     fn info() -> ModelInfo {
//!         ModelInfo::new("last-value", "0.1.0", "Repeats the last observation", 1)
//!     }
//!     fn forecast(request: &ForecastRequest) -> Result<Forecast, ModelError> {
//!         let last = request.history.last_observed().ok_or(ModelError::insufficient(1, 0))?;
//!         Ok(Forecast::flat(last, request))
//!     }
//! }
//!
//! export_model!(LastValue);
//! ```
//!
//! Built with `cargo build --release --target wasm32-wasip2`, the crate (with
//! `crate-type = ["cdylib"]`) becomes a component that implements the
//! `kedastral:forecast/forecast-model@0.1.0` world from `wit/`. Natively, the
//! same crate is a plain Rust library: the macro expands to nothing there, so a
//! model can be unit-tested and benchmarked without wasm.
//!
//! What is where:
//! - this file: the request/answer types, the [`Model`] trait, the macro;
//! - [`params`]: reading `key=value` parameters, refusing unknown keys;
//! - [`stats`]: quantile helpers models share;
//! - `wasm` (wasm32 only): the generated bindings and the conversions to them.

pub mod params;
pub mod stats;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod wasm;

pub use params::Params;

/// The WIT package this SDK implements.
pub const WIT_PACKAGE: &str = "kedastral:forecast@0.1.0";

/// A regularly spaced history. `values[i]` was observed at
/// `start_unix_seconds + i * step_seconds`; a missing observation is NaN.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub start_unix_seconds: i64,
    pub step_seconds: u32,
    pub values: Vec<f64>,
}

impl Series {
    pub fn new(start_unix_seconds: i64, step_seconds: u32, values: Vec<f64>) -> Self {
        Self {
            start_unix_seconds,
            step_seconds,
            values,
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Unix time of point `i` (which may lie past the end, for forecasts).
    pub fn time_of(&self, i: usize) -> i64 {
        self.start_unix_seconds + i as i64 * i64::from(self.step_seconds)
    }

    /// Points `from..to` as a series of their own, with its start time.
    pub fn slice(&self, from: usize, to: usize) -> Series {
        Series::new(
            self.time_of(from),
            self.step_seconds,
            self.values[from..to].to_vec(),
        )
    }

    /// The last `n` points (all of them when there are fewer).
    pub fn tail(&self, n: usize) -> Series {
        self.slice(self.len().saturating_sub(n), self.len())
    }

    /// Number of points that are not missing.
    pub fn observed_count(&self) -> usize {
        self.values.iter().filter(|v| !v.is_nan()).count()
    }

    /// The most recent observed value.
    pub fn last_observed(&self) -> Option<f64> {
        self.values.iter().rev().copied().find(|v| !v.is_nan())
    }
}

/// What the host asks of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastRequest {
    pub history: Series,
    /// Steps to forecast, at least 1.
    pub horizon: u32,
    /// Quantile levels in (0, 1), ascending, without repeats.
    pub quantiles: Vec<f64>,
    /// `key = value` parameters as the user gave them.
    pub params: Vec<(String, String)>,
}

impl ForecastRequest {
    pub fn new(history: Series, horizon: u32) -> Self {
        Self {
            history,
            horizon,
            quantiles: Vec::new(),
            params: Vec::new(),
        }
    }

    pub fn with_quantiles(mut self, quantiles: Vec<f64>) -> Self {
        self.quantiles = quantiles;
        self
    }

    pub fn with_param(mut self, key: &str, value: &str) -> Self {
        self.params.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Checks what every model relies on: a step, a horizon, quantile levels
    /// in (0, 1) in ascending order, finite-or-missing values. The host checks
    /// the same before calling; models run it too so they hold natively.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.history.step_seconds == 0 {
            return Err(ModelError::InvalidInput("step-seconds must be > 0".into()));
        }
        if self.horizon == 0 {
            return Err(ModelError::InvalidInput("horizon must be >= 1".into()));
        }
        if let Some(v) = self.history.values.iter().find(|v| v.is_infinite()) {
            return Err(ModelError::InvalidInput(format!(
                "history holds an infinite value ({v}); only finite values or NaN (missing) are allowed"
            )));
        }
        for (i, &q) in self.quantiles.iter().enumerate() {
            if !(q > 0.0 && q < 1.0) {
                return Err(ModelError::InvalidInput(format!(
                    "quantile level {q} is not strictly between 0 and 1"
                )));
            }
            if i > 0 && q <= self.quantiles[i - 1] {
                return Err(ModelError::InvalidInput(
                    "quantile levels must be ascending without repeats".into(),
                ));
            }
        }
        Ok(())
    }
}

/// One quantile level's forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantileBand {
    pub level: f64,
    pub values: Vec<f64>,
}

/// A model's answer: `values[i]` is for `i + 1` steps after the history's
/// last point; one band per requested level, in the requested order.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub values: Vec<f64>,
    pub quantiles: Vec<QuantileBand>,
}

impl Forecast {
    /// A constant forecast with every band equal to it: for the simplest
    /// models and for tests.
    pub fn flat(value: f64, request: &ForecastRequest) -> Self {
        let values = vec![value; request.horizon as usize];
        let quantiles = request
            .quantiles
            .iter()
            .map(|&level| QuantileBand {
                level,
                values: values.clone(),
            })
            .collect();
        Self { values, quantiles }
    }

    /// The last step of a model's answer: every band raised to at least the
    /// band below it (bands from one sample can still cross by rounding),
    /// then refused if any value is not finite.
    pub fn ordered_and_finite(mut self) -> Result<Self, ModelError> {
        for l in 1..self.quantiles.len() {
            let (below, above) = self.quantiles.split_at_mut(l);
            for (hi, lo) in above[0].values.iter_mut().zip(&below[l - 1].values) {
                *hi = stats::larger(*hi, *lo);
            }
        }
        let finite = self.values.iter().all(|v| v.is_finite())
            && self
                .quantiles
                .iter()
                .all(|b| b.values.iter().all(|v| v.is_finite()));
        if !finite {
            return Err(ModelError::Internal(
                "forecast is not finite (history values too large?)".into(),
            ));
        }
        Ok(self)
    }
}

/// Why a model could not forecast.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelError {
    /// The request makes no sense to this model.
    InvalidInput(String),
    /// Too few observed points: `needed`, `got`.
    InsufficientHistory { needed: u32, got: u32 },
    /// The model failed for a reason of its own.
    Internal(String),
}

impl ModelError {
    pub fn insufficient(needed: usize, got: usize) -> Self {
        Self::InsufficientHistory {
            needed: u32::try_from(needed).unwrap_or(u32::MAX),
            got: u32::try_from(got).unwrap_or(u32::MAX),
        }
    }
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Self::InsufficientHistory { needed, got } => write!(
                f,
                "insufficient history: needs {needed} observed points, got {got}"
            ),
            Self::Internal(m) => write!(f, "internal model error: {m}"),
        }
    }
}

impl std::error::Error for ModelError {}

/// A parameter a model accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: String,
    pub default_value: String,
    pub description: String,
}

impl ParamSpec {
    pub fn new(name: &str, default_value: &str, description: &str) -> Self {
        Self {
            name: name.to_owned(),
            default_value: default_value.to_owned(),
            description: description.to_owned(),
        }
    }
}

/// What a model says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub min_history: u32,
    pub params: Vec<ParamSpec>,
}

impl ModelInfo {
    pub fn new(name: &str, version: &str, description: &str, min_history: u32) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            description: description.to_owned(),
            min_history,
            params: Vec::new(),
        }
    }

    pub fn param(mut self, name: &str, default_value: &str, description: &str) -> Self {
        self.params
            .push(ParamSpec::new(name, default_value, description));
        self
    }
}

/// A forecast model. Both functions are plain Rust: the macro
/// [`export_model!`] turns an implementation into a component.
pub trait Model {
    /// What the model says about itself (`kedastral model inspect`).
    fn info() -> ModelInfo;

    /// Forecast `request.horizon` steps after the history.
    fn forecast(request: &ForecastRequest) -> Result<Forecast, ModelError>;
}

/// Exports a [`Model`] implementation as the component's `forecast-model`
/// world. Call it once, at the crate root, in a `cdylib` crate. Natively it
/// expands to nothing, so the crate still builds and tests as a library.
#[macro_export]
macro_rules! export_model {
    ($model:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::wasm::bindings::exports::kedastral::forecast::model as wit;

            struct KedastralExportedModel;

            impl wit::Guest for KedastralExportedModel {
                fn describe() -> wit::ModelInfo {
                    $crate::wasm::describe::<$model>()
                }

                fn forecast(
                    request: wit::ForecastRequest,
                ) -> ::core::result::Result<wit::ForecastResponse, wit::ModelError> {
                    $crate::wasm::forecast::<$model>(request)
                }
            }

            $crate::wasm::bindings::__export_forecast_model!(
                KedastralExportedModel with_types_in $crate::wasm::bindings
            );
        };
    };
}
