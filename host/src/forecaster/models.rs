//! The models a forecaster has loaded, as `GET /models` shows them: where
//! each came from, its content hash, whether it was compiled or read from
//! the cache, the workloads on it, and the files of the models directory
//! that were refused.

use std::sync::RwLock;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::LoadedModel;
use crate::model::cache::CompileOutcome;
use crate::model::catalog::Refused;

/// Where a model was loaded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    BuiltIn,
    /// A path in the configuration.
    Path,
    /// A file of `--models-dir`, named by its `describe`.
    Directory,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelEntry {
    /// What workloads name it by (a built-in's name, a path, a directory
    /// model's name).
    #[serde(skip)]
    pub key: String,
    pub name: String,
    pub version: String,
    pub description: String,
    pub source: Origin,
    /// The file, for a path or a directory's model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub content_hash: String,
    /// `compiled` now, or `cache`: read precompiled.
    pub compiled: &'static str,
    pub loaded_at: DateTime<Utc>,
    /// Workloads forecasting with it (as their model or a candidate).
    pub workloads: Vec<String>,
    /// The last attempt to load a new version that failed, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_load_error: Option<String>,
}

impl ModelEntry {
    pub fn new(key: &str, model: &LoadedModel, source: Origin, path: Option<String>) -> Self {
        let info = model.info();
        Self {
            key: key.to_owned(),
            name: info.name.clone(),
            version: info.version.clone(),
            description: info.description.clone(),
            source,
            path,
            content_hash: model.content_hash().to_owned(),
            compiled: match model.compile_outcome() {
                CompileOutcome::CacheHit => "cache",
                CompileOutcome::CompiledAndCached | CompileOutcome::Compiled => "compiled",
            },
            loaded_at: Utc::now(),
            workloads: Vec::new(),
            last_load_error: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusedFile {
    pub path: String,
    pub error: String,
}

impl From<&Refused> for RefusedFile {
    fn from(r: &Refused) -> Self {
        Self {
            path: r.path.display().to_string(),
            error: r.error.clone(),
        }
    }
}

/// What `GET /models` answers.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelListing {
    /// `--models-dir`, if one is watched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models_dir: Option<String>,
    pub models: Vec<ModelEntry>,
    /// Files of the directory that did not load.
    pub refused: Vec<RefusedFile>,
}

/// The listing, shared with the API; a std lock held only to copy it.
#[derive(Default)]
pub struct ModelBoard {
    listing: RwLock<ModelListing>,
}

impl ModelBoard {
    pub fn new(listing: ModelListing) -> Self {
        Self {
            listing: RwLock::new(listing),
        }
    }

    pub fn listing(&self) -> ModelListing {
        self.listing.read().expect("model board lock").clone()
    }

    pub fn update(&self, change: impl FnOnce(&mut ModelListing)) {
        change(&mut self.listing.write().expect("model board lock"));
    }
}
