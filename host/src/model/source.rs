//! What `--model` names: a built-in model or a `.wasm` component on disk.

use std::fmt;
use std::path::PathBuf;

/// The built-in models, built from `guest-models/` by `build.rs` and
/// embedded in the binary.
pub const BUILTINS: &[(&str, &[u8])] = &[
    (
        "baseline",
        include_bytes!(concat!(env!("OUT_DIR"), "/baseline.wasm")),
    ),
    (
        "arima",
        include_bytes!(concat!(env!("OUT_DIR"), "/arima.wasm")),
    ),
    (
        "mstl",
        include_bytes!(concat!(env!("OUT_DIR"), "/mstl.wasm")),
    ),
    (
        "fracast",
        include_bytes!(concat!(env!("OUT_DIR"), "/fracast.wasm")),
    ),
    (
        "seasonal-naive",
        include_bytes!(concat!(env!("OUT_DIR"), "/seasonal-naive.wasm")),
    ),
];

/// `--model auto`: the built-ins in shadow, their combination served.
pub const AUTO: &str = "auto";

/// The built-ins `auto` combines. The first, forecast at every shadow
/// origin, is the one the others' errors are measured against.
pub const AUTO_MEMBERS: [&str; 5] = ["baseline", "arima", "mstl", "fracast", "seasonal-naive"];

/// How often a workload on `model` has it forecast anew when its
/// configuration does not say: every tick (zero) for every model but
/// `fracast`, whose call costs tens of milliseconds where the others' cost
/// microseconds to a few milliseconds, and `auto`, which calls all its
/// candidates (fracast among them). These forecast every half horizon in
/// whole steps (15 minutes at the default 30): the spacing of the shadow
/// evaluation's origins, so each of them takes the forecast served then
/// and a workload costs one call (per candidate) per half horizon. That
/// keeps a forecaster of a hundred workloads on fracast well within a second
/// of CPU per 1-minute tick (BENCHMARKS.md), while collection, planning and
/// the live error run on every tick.
pub fn default_refresh(
    model: &str,
    horizon: std::time::Duration,
    step: std::time::Duration,
) -> std::time::Duration {
    if model != "fracast" && model != AUTO {
        return std::time::Duration::ZERO;
    }
    let step = step.as_secs().max(1);
    let steps = horizon.as_secs().div_ceil(step) / 2;
    std::time::Duration::from_secs(steps.max(1) * step)
}

/// What a `--model` value runs: the named model, or for [`AUTO`] every
/// member of [`AUTO_MEMBERS`], in order of preference.
pub fn candidates(value: &str) -> Vec<ModelSource> {
    if value == AUTO {
        AUTO_MEMBERS
            .iter()
            .map(|name| ModelSource::parse(name))
            .collect()
    } else {
        vec![ModelSource::parse(value)]
    }
}

/// Where a model's component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    Builtin(&'static str),
    File(PathBuf),
}

impl ModelSource {
    /// Reads a `--model` value: a built-in name, or anything that looks like
    /// a path (has a `/` or ends in `.wasm`). A bare word that is not a
    /// built-in is refused by [`crate::model::ModelRuntime::load`] with the
    /// list of built-ins, rather than being looked up as a file.
    pub fn parse(value: &str) -> Self {
        if let Some((name, _)) = BUILTINS.iter().find(|(name, _)| *name == value) {
            return Self::Builtin(name);
        }
        Self::File(PathBuf::from(value))
    }

    pub fn builtin_names() -> String {
        BUILTINS
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn looks_like_path(&self) -> bool {
        match self {
            Self::Builtin(_) => false,
            Self::File(p) => {
                p.components().count() > 1 || p.extension().is_some_and(|e| e == "wasm")
            }
        }
    }
}

impl fmt::Display for ModelSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Builtin(name) => write!(f, "built-in model `{name}`"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_and_paths_are_told_apart() {
        assert_eq!(
            ModelSource::parse("baseline"),
            ModelSource::Builtin("baseline")
        );
        assert_eq!(ModelSource::parse("arima"), ModelSource::Builtin("arima"));
        assert!(ModelSource::parse("./m.wasm").looks_like_path());
        assert!(ModelSource::parse("m.wasm").looks_like_path());
        assert!(!ModelSource::parse("prophet").looks_like_path());
    }
}
