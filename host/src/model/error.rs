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
/// are unaffected: every call runs in a fresh instance.
#[derive(Debug, Clone, thiserror::Error)]
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

    /// A valid forecast, but far outside anything the history has shown.
    #[error("model `{model}` returned an implausible forecast: {reason}")]
    Implausible { model: String, reason: String },

    /// Not called: the model's last call faulted (timed out, trapped or ran
    /// out of memory), and the breaker holds further calls back.
    #[error("{cause}; not called again {}", match until {
        Some(t) => format!("until {} ({faults} faults in a row)", t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        None => "in this run".to_owned(),
    })]
    Suspended {
        model: String,
        /// The fault that opened the breaker, as it was reported.
        cause: String,
        faults: u32,
        /// When a call may go through again; `None`: never.
        until: Option<chrono::DateTime<chrono::Utc>>,
    },

    /// Not called: the model's file left the models directory.
    #[error("model `{model}` is no longer loaded: {reason}")]
    Removed { model: String, reason: String },
}

impl ModelCallError {
    /// Every label [`Self::metric_label`] gives.
    pub const METRIC_LABELS: &'static [&'static str] = &[
        "model_invalid_input",
        "model_insufficient_history",
        "model_internal",
        "trap",
        "timeout",
        "out_of_memory",
        "invalid_output",
        "invalid_request",
        "instantiate",
        "implausible",
        "suspended",
        "removed",
    ];

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
            Self::Implausible { .. } => "implausible",
            Self::Suspended { .. } => "suspended",
            Self::Removed { .. } => "removed",
        }
    }

    /// Whether the model ran to produce this error: false for what the host
    /// refused or held back before calling it.
    pub fn model_ran(&self) -> bool {
        !matches!(
            self,
            Self::InvalidRequest { .. } | Self::Suspended { .. } | Self::Removed { .. }
        )
    }

    /// A fault of the sandbox: the call cost up to a deadline (or a memory
    /// cap's worth of work) and its instance was thrown away. These open a
    /// model's breaker; a model's own error or a bad answer is cheap and
    /// does not.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            Self::Trap { .. }
                | Self::Timeout { .. }
                | Self::OutOfMemory { .. }
                | Self::Instantiate { .. }
        )
    }

    /// Whether `label` (a [`metric_label`](Self::metric_label)) is a
    /// fault's, or that of a call a fault holds back.
    pub fn is_fault_label(label: &str) -> bool {
        matches!(
            label,
            "trap" | "timeout" | "out_of_memory" | "instantiate" | "suspended"
        )
    }

    /// The model the error is about.
    pub fn model(&self) -> &str {
        match self {
            Self::Model { model, .. }
            | Self::Trap { model, .. }
            | Self::Timeout { model, .. }
            | Self::OutOfMemory { model, .. }
            | Self::InvalidOutput { model, .. }
            | Self::InvalidRequest { model, .. }
            | Self::Instantiate { model, .. }
            | Self::Implausible { model, .. }
            | Self::Suspended { model, .. }
            | Self::Removed { model, .. } => model,
        }
    }
}
