//! The forecaster: for every workload, every interval, collect what is new,
//! forecast, plan replicas, and publish the result.
//!
//! - [`Forecaster`] owns one [`runner`] per workload and runs each on its own
//!   task, so a slow or failing workload never holds up another;
//! - [`Board`] is what the HTTP API and metrics read: each workload's latest
//!   snapshot and status;
//! - [`window`] keeps a workload's history on its step grid;
//! - [`pool`] shares a model between workloads (its code, never its state)
//!   and runs its calls in the shared lane or on probation.
//!
//! With Redis, each workload is computed by the one replica holding its
//! lease; the others read its snapshots from Redis and serve them. When
//! Redis cannot be reached, every replica computes its workloads itself and
//! serves from memory: duplicated work, but forecasts never stop.

pub mod pool;
pub mod runner;
pub mod window;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::collect::Source;
use crate::config::WorkloadConfig;
use crate::live_error::ErrorSummary;
use crate::model::{ModelLoadError, ModelRuntime, ModelSource};
use crate::store::redis::RedisStore;
use crate::store::{ModelRef, Snapshot};
use crate::telemetry::Metrics;

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

/// The stage of a tick that failed: the `component` of a failure in the
/// API, the logs and `kedastral_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Collect,
    Model,
    Capacity,
    Store,
}

impl Stage {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Collect => "collect",
            Self::Model => "model",
            Self::Capacity => "capacity",
            Self::Store => "store",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// What went wrong, for the API.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Failure {
    pub component: Stage,
    pub reason: &'static str,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// One workload as the API and metrics see it.
#[derive(Debug, Clone)]
pub struct WorkloadView {
    pub config: Arc<WorkloadConfig>,
    pub model: ModelRef,
    pub snapshot: Option<Arc<Snapshot>>,
    /// The failures of the latest tick, if it had any.
    pub last_error: Option<Failure>,
    pub live_error: ErrorSummary,
    /// This replica computes the workload (rather than following another's
    /// snapshots from Redis).
    pub computing: bool,
    /// The latest tick that ended without a failure.
    pub last_success: Option<DateTime<Utc>>,
}

impl WorkloadView {
    /// Fresh: a snapshot whose origin is within `stale_after` of `now`.
    pub fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        self.snapshot
            .as_ref()
            .is_some_and(|s| !s.is_stale(now, self.config.stale_after))
    }
}

/// Every workload's latest state, shared between the runners (writers) and
/// the API and scaler (readers).
pub struct Board {
    /// A std lock: held only to copy a view in or out, never across an await.
    views: RwLock<BTreeMap<String, WorkloadView>>,
    /// Bumped whenever a snapshot changes, so readers can wait for news.
    changes: watch::Sender<u64>,
}

impl Default for Board {
    fn default() -> Self {
        Self {
            views: RwLock::default(),
            changes: watch::Sender::new(0),
        }
    }
}

impl Board {
    /// The latest snapshot of `workload`.
    pub fn snapshot(&self, workload: &str) -> Option<Arc<Snapshot>> {
        self.views
            .read()
            .expect("board lock")
            .get(workload)
            .and_then(|v| v.snapshot.clone())
    }

    /// Every snapshot there is.
    pub fn snapshots(&self) -> Vec<Arc<Snapshot>> {
        self.views
            .read()
            .expect("board lock")
            .values()
            .filter_map(|v| v.snapshot.clone())
            .collect()
    }

    /// A receiver that sees a new value whenever a snapshot changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn get(&self, workload: &str) -> Option<WorkloadView> {
        self.views
            .read()
            .expect("board lock")
            .get(workload)
            .cloned()
    }

    pub fn all(&self) -> Vec<WorkloadView> {
        self.views
            .read()
            .expect("board lock")
            .values()
            .cloned()
            .collect()
    }

    fn insert(&self, view: WorkloadView) {
        self.views
            .write()
            .expect("board lock")
            .insert(view.config.name.clone(), view);
    }

    fn update(&self, workload: &str, f: impl FnOnce(&mut WorkloadView)) {
        let changed = match self.views.write().expect("board lock").get_mut(workload) {
            Some(view) => {
                let before = view.snapshot.clone();
                f(view);
                match (&before, &view.snapshot) {
                    (Some(a), Some(b)) => !Arc::ptr_eq(a, b),
                    (None, None) => false,
                    _ => true,
                }
            }
            None => false,
        };
        if changed {
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// Sets the gauges that depend on the clock; called on every scrape.
    pub fn refresh_clock_metrics(&self, metrics: &Metrics, now: DateTime<Utc>) {
        for view in self.views.read().expect("board lock").values() {
            let labels = [view.config.name.as_str(), view.model.name.as_str()];
            match &view.snapshot {
                Some(s) => {
                    metrics
                        .forecast_age_seconds
                        .with_label_values(&labels)
                        .set(s.age_seconds(now));
                }
                None => {
                    let _ = metrics.forecast_age_seconds.remove_label_values(&labels);
                }
            }
            metrics
                .forecast_stale
                .with_label_values(&labels)
                .set(if view.is_fresh(now) { 0.0 } else { 1.0 });
        }
    }
}

/// What the API and the metrics endpoint share with the runners.
pub struct Shared {
    pub board: Board,
    pub metrics: Metrics,
    pub clock: Clock,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("workload `{workload}`: model `{model}`: {error}")]
    Model {
        workload: String,
        model: String,
        error: Box<ModelLoadError>,
    },
    #[error(
        "workload `{workload}`: param `{param}`: model `{model}` has no such parameter (it takes: {known})"
    )]
    UnknownParam {
        workload: String,
        model: String,
        param: String,
        known: String,
    },
    #[error(
        "workload `{workload}`: params are for one model; with model `auto` every candidate runs on its defaults"
    )]
    AutoParams { workload: String },
}

/// Everything a forecaster runs on.
pub struct ForecasterParts {
    pub workloads: Vec<WorkloadConfig>,
    pub source: Source,
    pub redis: Option<RedisStore>,
    /// Model calls that may run at once (the cores to give them).
    pub model_slots: usize,
    pub clock: Clock,
}

pub struct Forecaster {
    shared: Arc<Shared>,
    runners: Vec<Runner>,
}

impl Forecaster {
    /// Loads each distinct model once and checks every workload's params
    /// against its model, so a typo stops start-up instead of failing every
    /// tick.
    pub fn new(runtime: &ModelRuntime, parts: ForecasterParts) -> Result<Self, StartError> {
        let shared = Arc::new(Shared {
            board: Board::default(),
            metrics: Metrics::new(),
            clock: parts.clock,
        });
        let slots = Arc::new(Semaphore::new(parts.model_slots.max(1)));
        let collect_slots = Arc::new(Semaphore::new(COLLECT_SLOTS));
        let mut pools: HashMap<String, Arc<ModelPool>> = HashMap::new();
        let mut runners = Vec::with_capacity(parts.workloads.len());
        for config in parts.workloads {
            let sources = crate::model::source::candidates(&config.model);
            if sources.len() > 1 && !config.params.is_empty() {
                return Err(StartError::AutoParams {
                    workload: config.name.clone(),
                });
            }
            let mut candidates = Vec::with_capacity(sources.len());
            for source in sources {
                let key = match &source {
                    ModelSource::Builtin(name) => (*name).to_owned(),
                    ModelSource::File(_) => config.model.clone(),
                };
                let pool = match pools.get(&key) {
                    Some(pool) => pool.clone(),
                    None => {
                        let loaded = runtime.load(&source).map_err(|error| StartError::Model {
                            workload: config.name.clone(),
                            model: key.clone(),
                            error: Box::new(error),
                        })?;
                        let pool = Arc::new(ModelPool::new(loaded));
                        pools.insert(key, pool.clone());
                        pool
                    }
                };
                candidates.push(pool);
            }
            let info = candidates[0].model().info();
            for (key, _) in &config.params {
                if !info.params.iter().any(|p| &p.name == key) {
                    let known: Vec<&str> = info.params.iter().map(|p| p.name.as_str()).collect();
                    return Err(StartError::UnknownParam {
                        workload: config.name.clone(),
                        model: config.model.clone(),
                        param: key.clone(),
                        known: if known.is_empty() {
                            "no parameters".into()
                        } else {
                            known.join(", ")
                        },
                    });
                }
            }
            let model = if candidates.len() > 1 {
                ModelRef {
                    name: crate::model::source::AUTO.to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                }
            } else {
                ModelRef {
                    name: info.name.clone(),
                    version: info.version.clone(),
                }
            };
            let config = Arc::new(config);
            shared.board.insert(WorkloadView {
                config: config.clone(),
                model: model.clone(),
                snapshot: None,
                last_error: None,
                live_error: ErrorSummary::default(),
                computing: parts.redis.is_none(),
                last_success: None,
            });
            runners.push(Runner::new(
                config,
                model,
                candidates,
                parts.source.clone(),
                parts.redis.clone(),
                Slots {
                    model: slots.clone(),
                    collect: collect_slots.clone(),
                },
                shared.clone(),
            ));
        }
        Ok(Self { shared, runners })
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Runs every workload until `shutdown` is cancelled, then gives up the
    /// leases this replica holds.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
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
