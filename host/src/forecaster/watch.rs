//! Watching `--models-dir`: a file added, replaced or removed (the symlink
//! swap of a Kubernetes ConfigMap volume included) is noticed within a
//! second or two, and each changed file is compiled and checked *before*
//! it is used.
//!
//! - A new version of a model (same `describe` name, other bytes) is
//!   swapped into its pool for later calls; its workloads judge it afresh
//!   (their shadow evaluation restarts, see the runner).
//! - A file that does not load, that takes a built-in's name or the name of
//!   another file, is refused: a warning, `kedastral_model_reloads_total
//!   {result="refused"}`, `lastLoadError` and `refused` in `GET /models`;
//!   the version before keeps serving.
//! - A file removed stops its model: its workloads keep their last forecast
//!   (until it is stale) and say why in `lastError`.
//! - A new name is listed in `GET /models`, ready for a workload that
//!   names it.
//!
//! inotify (through `notify`) tells of changes; where it cannot be set up
//! the directory is polled every [`POLL_INTERVAL`]. Events are gathered for
//! [`SETTLE`] before a rescan, so a file written in pieces is read whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::Watcher;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::models::{ModelBoard, ModelEntry, ModelListing, Origin, RefusedFile};
use super::pool::ModelPool;
use crate::model::ModelRuntime;
use crate::model::catalog::{ModelsDir, load_read, reserved, wasm_files};
use crate::telemetry::Metrics;

/// How often the directory is polled when inotify is not available.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Quiet time after an event before the directory is read again.
pub const SETTLE: Duration = Duration::from_millis(300);

/// What a file of the directory held when last read.
#[derive(Debug, Clone, PartialEq)]
enum FileState {
    Loaded { hash: String, name: String },
    Refused { hash: Option<String> },
}

impl FileState {
    fn hash(&self) -> Option<&str> {
        match self {
            Self::Loaded { hash, .. } => Some(hash),
            Self::Refused { hash } => hash.as_deref(),
        }
    }
}

/// The pools of the directory's models that workloads use, by name:
/// shared by the forecaster, which adds them as workloads start, and the
/// watcher, which swaps their versions. A std lock, held to look one up.
pub type DirPools = Arc<Mutex<HashMap<String, Arc<ModelPool>>>>;

pub struct DirWatch {
    dir: PathBuf,
    runtime: ModelRuntime,
    pools: DirPools,
    files: HashMap<PathBuf, FileState>,
    models: Arc<ModelBoard>,
    metrics: Metrics,
}

impl DirWatch {
    pub fn new(
        found: &ModelsDir,
        runtime: ModelRuntime,
        pools: DirPools,
        models: Arc<ModelBoard>,
        metrics: Metrics,
    ) -> Self {
        let mut files = HashMap::new();
        for (name, m) in &found.models {
            files.insert(
                m.path.clone(),
                FileState::Loaded {
                    hash: m.model.content_hash().to_owned(),
                    name: name.clone(),
                },
            );
        }
        for r in &found.refused {
            files.insert(
                r.path.clone(),
                FileState::Refused {
                    hash: r.hash.clone(),
                },
            );
        }
        Self {
            dir: found.dir.clone(),
            runtime,
            pools,
            files,
            models,
            metrics,
        }
    }

    /// Watches until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let _watcher = match watch_folder(&self.dir, tx) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e,
                    "cannot watch --models-dir; its files are not reloaded");
                return;
            }
        };
        tracing::info!(dir = %self.dir.display(), "watching --models-dir");
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                event = rx.recv() => if event.is_none() { return },
            }
            // Let a burst of events (a copy, a symlink swap) settle.
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(SETTLE) => break,
                    _ = rx.recv() => {}
                }
            }
            let watch = self;
            self = tokio::task::spawn_blocking(move || {
                let mut watch = watch;
                watch.rescan();
                watch
            })
            .await
            .expect("a rescan does not panic");
        }
    }

    /// Reads the directory again and takes in what changed. Blocks while
    /// new files compile: call it off the async threads.
    pub fn rescan(&mut self) {
        let present = match wasm_files(&self.dir) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read --models-dir; its models are kept as they are");
                return;
            }
        };
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| !present.contains(p))
            .cloned()
            .collect();
        for path in gone {
            self.take_out(&path);
        }
        for path in present {
            self.take_in(&path);
        }
    }

    fn pool(&self, name: &str) -> Option<Arc<ModelPool>> {
        self.pools
            .lock()
            .expect("dir pools lock")
            .get(name)
            .cloned()
    }

    fn count(&self, result: &str) {
        self.metrics
            .model_reloads_total
            .with_label_values(&[result])
            .inc();
    }

    fn take_out(&mut self, path: &Path) {
        let Some(state) = self.files.remove(path) else {
            return;
        };
        let shown = path.display().to_string();
        self.models
            .update(|l| l.refused.retain(|r| r.path != shown));
        if let FileState::Loaded { name, .. } = state {
            let reason = format!("its file {shown} was removed from --models-dir");
            tracing::warn!(model = %name, path = %shown, "model removed: its workloads keep their last forecast");
            if let Some(pool) = self.pool(&name) {
                pool.remove(reason.clone());
            }
            self.models.update(|l| {
                if let Some(e) = dir_entry(l, &name) {
                    e.last_load_error = Some(reason);
                }
            });
            self.count("removed");
        }
    }

    fn take_in(&mut self, path: &Path) {
        let before = self.files.get(path).cloned();
        // Unchanged bytes: nothing to do. A file that cannot be read is
        // tried at the next event.
        let Ok(bytes) = std::fs::read(path) else {
            return;
        };
        let hash = crate::model::runtime::content_hash(&bytes);
        if before.as_ref().and_then(FileState::hash) == Some(hash.as_str()) {
            return;
        }
        let shown = path.display().to_string();
        let loaded = load_read(&self.runtime, path, &bytes);
        drop(bytes);
        let refusal = match loaded {
            Err(error) => Err(error),
            Ok(model) => {
                let name = model.info().name.clone();
                let holder = self.files.iter().find_map(|(p, s)| match s {
                    FileState::Loaded { name: n, .. } if *n == name && p != path => Some(p.clone()),
                    _ => None,
                });
                let was = match &before {
                    Some(FileState::Loaded { name: n, .. }) => Some(n.clone()),
                    _ => None,
                };
                if reserved(&name) {
                    Err(format!(
                        "{shown} describes itself as model `{name}`, the name of a built-in"
                    ))
                } else if let Some(other) = holder {
                    Err(format!(
                        "{shown} describes itself as model `{name}`, as {} does",
                        other.display()
                    ))
                } else if was.as_ref().is_some_and(|w| *w != name) {
                    Err(format!(
                        "{shown} held model `{}` and now describes itself as `{name}`: \
                         a new name is a new file",
                        was.unwrap_or_default()
                    ))
                } else {
                    Ok(model)
                }
            }
        };
        match refusal {
            Ok(model) => {
                let name = model.info().name.clone();
                tracing::info!(model = %name, version = %model.info().version, path = %shown,
                    hash = model.content_hash(), "model loaded from --models-dir");
                if let Some(pool) = self.pool(&name) {
                    pool.swap(model.clone());
                }
                self.models.update(|l| {
                    l.refused.retain(|r| r.path != shown);
                    let mut entry =
                        ModelEntry::new(&name, &model, Origin::Directory, Some(shown.clone()));
                    match dir_entry(l, &name) {
                        Some(e) => {
                            entry.workloads = std::mem::take(&mut e.workloads);
                            *e = entry;
                        }
                        None => l.models.push(entry),
                    }
                });
                self.files.insert(
                    path.to_owned(),
                    FileState::Loaded {
                        hash: model.content_hash().to_owned(),
                        name,
                    },
                );
                self.count("loaded");
            }
            Err(error) => {
                tracing::warn!(path = %shown, %error, "model in --models-dir refused; the version before keeps serving");
                let name = match &before {
                    Some(FileState::Loaded { name, .. }) => Some(name.clone()),
                    _ => None,
                };
                self.models.update(|l| {
                    l.refused.retain(|r| r.path != shown);
                    l.refused.push(RefusedFile {
                        path: shown.clone(),
                        error: error.clone(),
                    });
                    if let Some(e) = name.as_deref().and_then(|n| dir_entry(l, n)) {
                        e.last_load_error = Some(error.clone());
                    }
                });
                // A refused version does not replace the state of the one
                // serving: its hash is remembered so it is not tried again.
                match before {
                    Some(FileState::Loaded { name, .. }) => {
                        self.files
                            .insert(path.to_owned(), FileState::Loaded { hash, name });
                    }
                    _ => {
                        self.files
                            .insert(path.to_owned(), FileState::Refused { hash: Some(hash) });
                    }
                }
                self.count("refused");
            }
        }
    }
}

/// The listing's entry of the directory's model `name`.
fn dir_entry<'a>(listing: &'a mut ModelListing, name: &str) -> Option<&'a mut ModelEntry> {
    listing
        .models
        .iter_mut()
        .find(|e| e.source == Origin::Directory && e.name == name)
}

/// inotify on `dir` (not its subfolders), or polling it every
/// [`POLL_INTERVAL`] where that fails; each event sends a unit on `tx`.
pub(super) fn watch_folder(
    dir: &Path,
    tx: mpsc::UnboundedSender<()>,
) -> notify::Result<Box<dyn Watcher + Send>> {
    let send = move |tx: &mpsc::UnboundedSender<()>| {
        let tx = tx.clone();
        move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                let _ = tx.send(());
            }
        }
    };
    match notify::recommended_watcher(send(&tx)) {
        Ok(mut w) => match w.watch(dir, notify::RecursiveMode::NonRecursive) {
            Ok(()) => return Ok(Box::new(w)),
            Err(e) => {
                tracing::warn!(folder = %dir.display(), error = %e, "inotify not available; polling the folder")
            }
        },
        Err(e) => {
            tracing::warn!(folder = %dir.display(), error = %e, "inotify not available; polling the folder")
        }
    }
    let config = notify::Config::default()
        .with_poll_interval(POLL_INTERVAL)
        .with_compare_contents(true);
    let mut poll = notify::PollWatcher::new(send(&tx), config)?;
    poll.watch(dir, notify::RecursiveMode::NonRecursive)?;
    Ok(Box::new(poll))
}
