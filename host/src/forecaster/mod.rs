//! The forecaster: for every workload, every interval, collect what is new,
//! forecast, plan replicas, and publish the result.
//!
//! - [`Forecaster`] owns one [`runner`] per workload and runs each on its own
//!   task, so a slow or failing workload never holds up another;
//! - the [`Board`] it writes is what the HTTP API, metrics and the scaler
//!   read: each workload's latest snapshot and status;
//! - [`window`] keeps a workload's history on its step grid;
//! - [`pool`] shares a model between workloads (its code, never its state)
//!   and runs its calls in the shared lane or on probation.
//!
//! With Redis, each workload is computed by the one replica holding its
//! lease; the others read its snapshots from Redis and serve them. When
//! Redis cannot be reached, every replica computes its workloads itself and
//! serves from memory: duplicated work, but forecasts never stop.

pub mod models;
pub(crate) mod pool;
pub(crate) mod runner;
pub mod watch;
pub mod window;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::candidates::{CandidateError, Candidates};
use crate::clock::Clock;
use crate::collect::Source;
use crate::config::WorkloadConfig;
use crate::model::catalog::ModelsDir;
use crate::model::{LoadedModel, ModelLoadError, ModelRuntime, ModelSource};
use crate::store::lease::LeaseStore;
use crate::store::{Board, Status};
use crate::telemetry::Metrics;
use models::{ModelBoard, ModelEntry, ModelListing, Origin, RefusedFile};

use pool::ModelPool;
use runner::Runner;

/// Quantile bands every forecast carries, besides the one a policy sizes on.
pub const DEFAULT_LEVELS: &[f64] = &[0.1, 0.5, 0.9];

/// Forecasts kept in the live-error window (an hour at one-minute steps).
pub const LIVE_ERROR_WINDOW: usize = 60;

/// How long a replica holds a workload's lease without renewing it, in
/// intervals: long enough to survive a slow tick, short enough that another
/// replica takes over (at its next tick, with a cold start) well before the
/// last forecast goes stale (by default after 5 intervals).
pub const LEASE_INTERVALS: u32 = 2;

/// Collections that may run at once, so thousands of workloads starting
/// together do not all query Prometheus in the same instant.
pub const COLLECT_SLOTS: usize = 32;

/// What the runners share: where they publish, and what they count.
pub(crate) struct Shared {
    pub board: Arc<Board>,
    pub metrics: Metrics,
    pub clock: Clock,
}

/// A workload whose models cannot run as configured.
#[derive(Debug, thiserror::Error)]
#[error("workload `{workload}`: {error}")]
pub struct StartError {
    pub workload: String,
    pub error: CandidateError,
}

/// Everything a forecaster runs on.
pub struct ForecasterParts {
    pub workloads: Vec<WorkloadConfig>,
    pub source: Source,
    /// Where replicas share leases and snapshots (Redis); `None` for a
    /// forecaster on its own.
    pub shared: Option<Arc<dyn LeaseStore>>,
    /// Model calls that may run at once (the cores to give them).
    pub model_slots: usize,
    pub clock: Clock,
    /// `--models-dir`, scanned: models a workload names by their own name.
    pub models_dir: Option<ModelsDir>,
}

pub struct Forecaster {
    shared: Arc<Shared>,
    runners: Vec<Runner>,
    models: Arc<ModelBoard>,
    /// Watches `--models-dir`, when one is given.
    watch: Option<watch::DirWatch>,
}

/// Loads what `source` names: a bare name not built in is looked up in the
/// models directory, with every name there in the error when it is not.
fn resolve(
    runtime: &ModelRuntime,
    dir: Option<&ModelsDir>,
    source: &ModelSource,
) -> Result<(LoadedModel, Origin, Option<String>), ModelLoadError> {
    match source {
        ModelSource::Builtin(_) => Ok((runtime.load(source)?, Origin::BuiltIn, None)),
        ModelSource::File(path) if !source.looks_like_path() => {
            let name = path.display().to_string();
            match dir {
                Some(dir) => match dir.get(&name) {
                    Some(found) => Ok((
                        found.model.clone(),
                        Origin::Directory,
                        Some(found.path.display().to_string()),
                    )),
                    None => Err(ModelLoadError::UnknownBuiltin {
                        name,
                        available: format!(
                            "{}; in --models-dir {}: {}",
                            ModelSource::builtin_names(),
                            dir.dir.display(),
                            dir.names()
                        ),
                    }),
                },
                None => Err(runtime.load(source).err().unwrap_or_else(|| {
                    ModelLoadError::UnknownBuiltin {
                        name,
                        available: ModelSource::builtin_names(),
                    }
                })),
            }
        }
        ModelSource::File(path) => Ok((
            runtime.load(source)?,
            Origin::Path,
            Some(path.display().to_string()),
        )),
    }
}

impl Forecaster {
    /// Loads each distinct model once and checks every workload's params
    /// against its model, so a typo stops start-up instead of failing every
    /// tick.
    pub fn new(runtime: &ModelRuntime, parts: ForecasterParts) -> Result<Self, StartError> {
        let shared = Arc::new(Shared {
            board: Arc::new(Board::default()),
            metrics: Metrics::new(),
            clock: parts.clock,
        });
        let slots = Arc::new(Semaphore::new(parts.model_slots.max(1)));
        let collect_slots = Arc::new(Semaphore::new(COLLECT_SLOTS));
        // Each distinct model is loaded once and shared by its workloads.
        let mut pools: HashMap<String, Arc<ModelPool>> = HashMap::new();
        // By pool key: the listing's entry, workloads filled in below.
        let mut entries: BTreeMap<String, ModelEntry> = BTreeMap::new();
        let mut runners = Vec::with_capacity(parts.workloads.len());
        let dir = parts.models_dir.as_ref();
        for config in parts.workloads {
            let candidates = Candidates::load(
                &config.model,
                &config.candidates,
                &config.params,
                |key, source| match pools.get(key) {
                    Some(pool) => Ok(pool.model().clone()),
                    None => {
                        let (model, origin, path) = resolve(runtime, dir, source)?;
                        entries
                            .entry(key.to_owned())
                            .or_insert_with(|| ModelEntry::new(&model, origin, path));
                        Ok(model)
                    }
                },
            )
            .and_then(|c| c.check_params(&config.params).map(|()| c))
            .map_err(|error| StartError {
                workload: config.name.clone(),
                error,
            })?;
            let model = candidates.model_ref();
            let candidates: Vec<Arc<ModelPool>> = candidates
                .members
                .into_iter()
                .map(|c| {
                    if let Some(entry) = entries.get_mut(&c.key)
                        && !entry.workloads.contains(&config.name)
                    {
                        entry.workloads.push(config.name.clone());
                    }
                    pools
                        .entry(c.key)
                        .or_insert_with(|| Arc::new(ModelPool::new(c.model)))
                        .clone()
                })
                .collect();
            let config = Arc::new(config);
            let status = Status::new(config, model, parts.shared.is_none());
            runners.push(Runner::new(
                &status,
                candidates,
                parts.source.clone(),
                parts.shared.clone(),
                Slots {
                    model: slots.clone(),
                    collect: collect_slots.clone(),
                },
                shared.clone(),
            ));
            shared.board.register(status);
        }
        // The pools of the directory's models, for the watcher to swap.
        let dir_pools: HashMap<String, Arc<ModelPool>> = entries
            .iter()
            .filter(|(_, e)| e.source == Origin::Directory)
            .filter_map(|(key, e)| Some((e.name.clone(), pools.get(key)?.clone())))
            .collect();
        let listing = ModelListing {
            models_dir: dir.map(|d| d.dir.display().to_string()),
            models: entries.into_values().collect(),
            refused: dir.map_or_else(Vec::new, |d| {
                d.refused.iter().map(RefusedFile::from).collect()
            }),
        };
        let models = Arc::new(ModelBoard::new(listing));
        let watch = dir.map(|d| {
            watch::DirWatch::new(
                d,
                runtime.clone(),
                dir_pools,
                models.clone(),
                shared.metrics.clone(),
            )
        });
        Ok(Self {
            shared,
            runners,
            models,
            watch,
        })
    }

    /// Where the forecasts are published, for readers.
    pub fn board(&self) -> Arc<Board> {
        self.shared.board.clone()
    }

    /// The clock its workloads tick on (a replay's runs faster than the
    /// wall's): what readers judge staleness by.
    pub fn clock(&self) -> Clock {
        self.shared.clock
    }

    /// The models loaded, for `GET /models`.
    pub fn models(&self) -> Arc<ModelBoard> {
        self.models.clone()
    }

    /// The forecaster's metrics, which readers in the same process join.
    pub fn metrics(&self) -> Metrics {
        self.shared.metrics.clone()
    }

    /// Runs every workload until `shutdown` is cancelled, then gives up the
    /// leases this replica holds.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(watch) = self.watch {
            tasks.spawn(watch.run(shutdown.clone()));
        }
        for runner in self.runners {
            tasks.spawn(runner.run(shutdown.clone()));
        }
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "a workload task ended abnormally");
            }
        }
    }

    /// One tick of every workload at once, at `now`: what a benchmark or a
    /// test drives instead of the clock.
    pub async fn tick_all(&mut self, now: DateTime<Utc>) {
        let mut tasks = tokio::task::JoinSet::new();
        for mut runner in self.runners.drain(..) {
            tasks.spawn(async move {
                runner.tick(now).await;
                runner
            });
        }
        while let Some(done) = tasks.join_next().await {
            self.runners.push(done.expect("a tick does not panic"));
        }
    }
}

/// Limits shared by every workload.
#[derive(Clone)]
pub(crate) struct Slots {
    pub model: Arc<Semaphore>,
    pub collect: Arc<Semaphore>,
}

/// A workload's lease lasts this long without renewal.
pub fn lease_ttl(config: &WorkloadConfig) -> Duration {
    config.interval * LEASE_INTERVALS
}
