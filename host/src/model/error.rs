//! Errors of loading and calling a model. A guest's own error, a trap, a
//! timeout and running out of memory stay distinct all the way to logs and
//! metrics ([`ModelCallError::metric_label`]).

use std::path::PathBuf;
use std::time::Duration;

use kedastral_model_sdk::ModelError;

/// Why a model could not be loaded. Each names the model source.
#[derive(Debug, thiserror::Error)]
pub enum ModelLoadError {
    #[error(
        "unknown built-in model `{name}`; built-in models are: {available}; or give a path to a .wasm component"
    )]
    UnknownBuiltin { name: String, available: String },

    #[error("cannot read model file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{model}: not a WebAssembly file (it does not start with the `\\0asm` magic bytes)")]
    NotWasm { model: String },

    #[error(
        "{model}: a core WebAssembly module, not a component; build it with \
         `cargo build --target wasm32-wasip2` (or `cargo component build`)"
    )]
    CoreModule { model: String },

    #[error("{model}: does not compile: {message}")]
    Compile { model: String, message: String },

    #[error(
        "{model}: does not implement the `{world}` world: {missing}; \
         the component exports {exports}"
    )]
    WrongWorld {
        model: String,
        world: &'static str,
        missing: String,
        exports: String,
    },

    #[error("{model}: cannot be linked: {message}")]
    Link { model: String, message: String },

    #[error("{model}: `describe` failed: {source}")]
    Describe {
        model: String,
        #[source]
        source: Box<ModelCallError>,
    },

    #[error("{model}: describes itself badly: {message}")]
    BadInfo { model: String, message: String },
}

/// Why one call to a model gave no forecast. The host and every other model
/// are unaffected; a trapped instance is replaced before its next call.
#[derive(Debug, thiserror::Error)]
pub enum ModelCallError {
    /// The model answered with an error of its own.
    #[error("model `{model}` refused: {error}")]
    Model { model: String, error: ModelError },

    /// The guest trapped (panic, unreachable, out-of-bounds access...).
    #[error("model `{model}` trapped: {message}")]
    Trap { model: String, message: String },

    /// The call ran past its CPU deadline and was interrupted.
    #[error("model `{model}` ran past its deadline of {limit:?} and was stopped")]
    Timeout { model: String, limit: Duration },

    /// The guest tried to grow its memory past the cap.
    #[error(
        "model `{model}` tried to use more than its memory cap of {limit_bytes} bytes and was stopped"
    )]
    OutOfMemory { model: String, limit_bytes: usize },

    /// The model answered, but the answer is not a valid forecast.
    #[error("model `{model}` returned an invalid forecast: {reason}")]
    InvalidOutput { model: String, reason: String },

    /// The request was refused by the host before reaching the model.
    #[error("invalid request for model `{model}`: {reason}")]
    InvalidRequest { model: String, reason: String },

    /// A fresh instance could not be created.
    #[error("model `{model}` could not be instantiated: {message}")]
    Instantiate { model: String, message: String },
}

impl ModelCallError {
    /// A short, bounded label for metrics (`reason` in
    /// `kedastral_errors_total{component="model",reason=...}`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Model { error, .. } => match error {
                ModelError::InvalidInput(_) => "model_invalid_input",
                ModelError::InsufficientHistory { .. } => "model_insufficient_history",
                ModelError::Internal(_) => "model_internal",
            },
            Self::Trap { .. } => "trap",
            Self::Timeout { .. } => "timeout",
            Self::OutOfMemory { .. } => "out_of_memory",
            Self::InvalidOutput { .. } => "invalid_output",
            Self::InvalidRequest { .. } => "invalid_request",
            Self::Instantiate { .. } => "instantiate",
        }
    }
}
