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
pub mod reload;
pub(crate) mod runner;
pub mod watch;
pub mod window;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
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
    /// What a workload added later is built from.
    parts: Building,
    /// `--config`, read again on SIGHUP or a change.
    reload: Option<PathBuf>,
}

/// A workload's task, and what stops it alone.
struct Running {
    config: Arc<WorkloadConfig>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// What the forecaster keeps to build runners after start-up, for a
/// configuration reloaded.
struct Building {
    runtime: ModelRuntime,
    source: Source,
    leases: Option<Arc<dyn LeaseStore>>,
    slots: Slots,
    models_dir: Option<ModelsDir>,
    /// Each distinct model, loaded once and shared by its workloads, by
    /// the key workloads name it with.
    pools: HashMap<String, Arc<ModelPool>>,
    /// The directory's models in use, by name: shared with the watcher,
    /// which swaps their versions.
    dir_pools: watch::DirPools,
    /// The pool keys each workload runs on.
    uses: BTreeMap<String, Vec<String>>,
}

/// One workload ready to run: its status (config, model, trail) and pools.
struct Prepared {
    status: Status,
    pools: Vec<Arc<ModelPool>>,
    keys: Vec<String>,
}

/// Loads what `source` names: a bare name not built in is looked up in the
/// models directory, with every name there in the error when it is not.
fn resolve(
    runtime: &ModelRuntime,
    dir: Option<&ModelsDir>,
    source: &ModelSource,
) -> Result<(LoadedModel, Origin, Option<String>), ModelLoadError> {
    match (source, dir) {
        (ModelSource::Builtin(_), _) => Ok((runtime.load(source)?, Origin::BuiltIn, None)),
        (ModelSource::File(path), Some(dir)) if !source.looks_like_path() => {
            let name = path.display().to_string();
            match dir.get(&name) {
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
            }
        }
        // Without a directory the runtime resolves it as before: a file by
        // that name, or an unknown built-in.
        (ModelSource::File(path), _) => Ok((
            runtime.load(source)?,
            Origin::Path,
            Some(path.display().to_string()),
        )),
    }
}

impl Building {
    /// Loads `config`'s models (each distinct one once) and checks its
    /// params, so a typo is refused before the workload runs. New models'
    /// entries go into `entries`.
    fn prepare(
        &mut self,
        config: WorkloadConfig,
        computing: bool,
        entries: &mut BTreeMap<String, ModelEntry>,
    ) -> Result<Prepared, StartError> {
        let (runtime, dir, pools) = (&self.runtime, self.models_dir.as_ref(), &self.pools);
        let candidates = Candidates::load(
            &config.model,
            &config.candidates,
            &config.params,
            |key, source| match pools.get(key) {
                Some(pool) => Ok(pool.model()),
                None => {
                    let (model, origin, path) = resolve(runtime, dir, source)?;
                    entries
                        .entry(key.to_owned())
                        .or_insert_with(|| ModelEntry::new(key, &model, origin, path));
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
        let mut keys = Vec::new();
        let members: Vec<Arc<ModelPool>> = candidates
            .members
            .into_iter()
            .map(|c| {
                keys.push(c.key.clone());
                let pool = self
                    .pools
                    .entry(c.key.clone())
                    .or_insert_with(|| Arc::new(ModelPool::new(c.model)))
                    .clone();
                if let Some(entry) = entries.get(&c.key)
                    && entry.source == Origin::Directory
                {
                    self.dir_pools
                        .lock()
                        .expect("dir pools lock")
                        .insert(entry.name.clone(), pool.clone());
                }
                pool
            })
            .collect();
        Ok(Prepared {
            status: Status::new(Arc::new(config), model, computing),
            pools: members,
            keys,
        })
    }

    /// Sets each listed model's workloads from what runs now.
    fn list_workloads(&self, models: &ModelBoard) {
        models.update(|l| {
            for e in &mut l.models {
                e.workloads = self
                    .uses
                    .iter()
                    .filter(|(_, keys)| keys.contains(&e.key))
                    .map(|(name, _)| name.clone())
                    .collect();
            }
        });
    }

    fn runner(&mut self, prepared: Prepared, shared: &Arc<Shared>) -> Runner {
        self.uses
            .insert(prepared.status.config.name.clone(), prepared.keys);
        let runner = Runner::new(
            &prepared.status,
            prepared.pools,
            self.source.clone(),
            self.leases.clone(),
            self.slots.clone(),
            shared.clone(),
        );
        shared.board.register(prepared.status);
        runner
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
        let mut building = Building {
            runtime: runtime.clone(),
            source: parts.source,
            leases: parts.shared,
            slots: Slots {
                model: Arc::new(Semaphore::new(parts.model_slots.max(1))),
                collect: Arc::new(Semaphore::new(COLLECT_SLOTS)),
            },
            models_dir: parts.models_dir,
            pools: HashMap::new(),
            dir_pools: watch::DirPools::default(),
            uses: BTreeMap::new(),
        };
        // By pool key.
        let mut entries: BTreeMap<String, ModelEntry> = BTreeMap::new();
        let mut runners = Vec::with_capacity(parts.workloads.len());
        let computing = building.leases.is_none();
        for config in parts.workloads {
            let prepared = building.prepare(config, computing, &mut entries)?;
            runners.push(building.runner(prepared, &shared));
        }
        let dir = building.models_dir.as_ref();
        // The directory's models no workload names yet are listed too.
        if let Some(d) = dir {
            for (name, m) in &d.models {
                if !entries
                    .values()
                    .any(|e| e.source == Origin::Directory && e.name == *name)
                {
                    entries.insert(
                        name.clone(),
                        ModelEntry::new(
                            name,
                            &m.model,
                            Origin::Directory,
                            Some(m.path.display().to_string()),
                        ),
                    );
                }
            }
        }
        let listing = ModelListing {
            models_dir: dir.map(|d| d.dir.display().to_string()),
            models: entries.into_values().collect(),
            refused: dir.map_or_else(Vec::new, |d| {
                d.refused.iter().map(RefusedFile::from).collect()
            }),
        };
        let models = Arc::new(ModelBoard::new(listing));
        building.list_workloads(&models);
        let watch = dir.map(|d| {
            watch::DirWatch::new(
                d,
                runtime.clone(),
                building.dir_pools.clone(),
                models.clone(),
                shared.metrics.clone(),
            )
        });
        Ok(Self {
            shared,
            runners,
            models,
            watch,
            parts: building,
            reload: None,
        })
    }

    /// Reads `path` again on SIGHUP and whenever it changes, while running:
    /// workloads added start, workloads removed stop, workloads changed
    /// start afresh, and the others keep their state. A file that does not
    /// parse or validate is refused whole and the running configuration
    /// stays.
    pub fn reload_from(mut self, path: PathBuf) -> Self {
        self.reload = Some(path);
        self
    }

    fn start(
        &self,
        runner: Runner,
        shutdown: &CancellationToken,
        running: &mut BTreeMap<String, Running>,
    ) {
        let stop = shutdown.child_token();
        let config = runner.config().clone();
        let task = tokio::spawn(runner.run(stop.clone()));
        running.insert(config.name.clone(), Running { config, stop, task });
    }

    /// Applies a configuration's text read again, or refuses it whole.
    async fn apply(
        &mut self,
        text: &str,
        running: &mut BTreeMap<String, Running>,
        shutdown: &CancellationToken,
    ) {
        let path = self.reload.clone().unwrap_or_default();
        let refuse = |shared: &Shared, error: String| {
            tracing::error!(path = %path.display(), %error,
                "configuration refused; the running one stays");
            shared
                .metrics
                .config_reloads_total
                .with_label_values(&["refused"])
                .inc();
        };
        let configs = match crate::config::parse_file(text) {
            Ok(c) => c,
            Err(e) => return refuse(&self.shared, format!("--config {}: {e}", path.display())),
        };
        // Models dropped into the directory since are named as at start-up.
        if let Some(dir) = self.parts.models_dir.as_ref().map(|d| d.dir.clone()) {
            let runtime = self.parts.runtime.clone();
            match tokio::task::spawn_blocking(move || ModelsDir::scan(&runtime, &dir)).await {
                Ok(Ok(found)) => self.parts.models_dir = Some(found),
                Ok(Err(e)) => return refuse(&self.shared, e.to_string()),
                Err(e) => return refuse(&self.shared, e.to_string()),
            }
        }
        let computing = self.parts.leases.is_none();
        let mut entries = BTreeMap::new();
        let mut prepared = Vec::new();
        // Each workload new or changed is checked before anything changes.
        for config in &configs {
            if running
                .get(&config.name)
                .is_some_and(|r| *r.config == *config)
            {
                continue;
            }
            match self.parts.prepare(config.clone(), computing, &mut entries) {
                Ok(p) => prepared.push(p),
                Err(e) => return refuse(&self.shared, e.to_string()),
            }
        }
        let names: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
        let removed: Vec<String> = running
            .keys()
            .filter(|n| !names.contains(&n.as_str()))
            .cloned()
            .collect();
        let changed: Vec<String> = prepared
            .iter()
            .map(|p| p.status.config.name.clone())
            .filter(|n| running.contains_key(n))
            .collect();
        for name in removed.iter().chain(&changed) {
            if let Some(r) = running.remove(name) {
                // The runner gives its lease up as it stops.
                r.stop.cancel();
                if let Err(e) = r.task.await {
                    tracing::error!(workload = %name, error = %e, "a workload task ended abnormally");
                }
            }
            self.shared.board.unregister(name);
            self.parts.uses.remove(name);
        }
        for name in &removed {
            self.shared.metrics.retire(name);
        }
        let added: Vec<String> = prepared
            .iter()
            .map(|p| p.status.config.name.clone())
            .filter(|n| !changed.contains(n))
            .collect();
        for p in prepared {
            self.shared.metrics.revive(&p.status.config.name);
            let runner = self.parts.runner(p, &self.shared);
            self.start(runner, shutdown, running);
        }
        self.models.update(|l| {
            for (_, entry) in entries {
                if !l.models.iter().any(|e| e.key == entry.key) {
                    l.models.push(entry);
                }
            }
        });
        self.parts.list_workloads(&self.models);
        self.shared
            .metrics
            .config_reloads_total
            .with_label_values(&["applied"])
            .inc();
        tracing::info!(path = %path.display(), ?added, ?removed, ?changed,
            unchanged = running.len() - added.len() - changed.len(),
            "configuration reloaded");
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
    pub async fn run(mut self, shutdown: CancellationToken) {
        let watch = self
            .watch
            .take()
            .map(|w| tokio::spawn(w.run(shutdown.clone())));
        let mut running = BTreeMap::new();
        for runner in std::mem::take(&mut self.runners) {
            self.start(runner, &shutdown, &mut running);
        }
        let mut config = self.reload.clone().and_then(|path| {
            let text = std::fs::read_to_string(&path).ok();
            reload::ConfigWatch::new(path, text)
                .inspect_err(|e| tracing::warn!(error = %e, "cannot watch for SIGHUP; --config is not reloaded"))
                .ok()
        });
        loop {
            let Some(watch) = config.as_mut() else {
                shutdown.cancelled().await;
                break;
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                (trigger, text) = watch.next() => {
                    tracing::info!(path = %watch.path().display(), trigger = trigger.label(), "reading the configuration again");
                    match text {
                        Ok(text) => self.apply(&text, &mut running, &shutdown).await,
                        Err(error) => {
                            tracing::error!(%error, "configuration refused; the running one stays");
                            self.shared.metrics.config_reloads_total.with_label_values(&["refused"]).inc();
                        }
                    }
                }
            }
        }
        for (name, r) in running {
            if let Err(e) = r.task.await {
                tracing::error!(workload = %name, error = %e, "a workload task ended abnormally");
            }
        }
        if let Some(w) = watch {
            let _ = w.await;
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
