//! Forecasts held in memory: the [`Board`] every reader reads.
//!
//! One type for every place a process keeps forecasts: the forecaster
//! writes the workloads it runs (a snapshot and a [`Status`] each), and a
//! scaler on its own fills one from a forecaster's API or Redis
//! ([`super::upstream`]). The HTTP API and the scaler read a board and
//! nothing else, so neither knows which of the two filled it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::{ModelRef, Snapshot};
use crate::config::WorkloadConfig;
use crate::live_error::ErrorSummary;
use crate::trail::{SharedTrail, Trail};

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
    pub const ALL: [Self; 4] = [Self::Collect, Self::Model, Self::Capacity, Self::Store];

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

/// What the forecaster running a workload knows of it besides its snapshot.
#[derive(Debug, Clone)]
pub struct Status {
    pub config: Arc<WorkloadConfig>,
    pub model: ModelRef,
    /// The failures of the latest tick, if it had any.
    pub last_error: Option<Failure>,
    pub live_error: ErrorSummary,
    /// This replica computes the workload (rather than following another's
    /// snapshots from Redis).
    pub computing: bool,
    /// The latest tick that ended without a failure.
    pub last_success: Option<DateTime<Utc>>,
    /// The history and recent decisions, for the web view: shared with the
    /// runner, which writes it.
    pub trail: SharedTrail,
}

impl Status {
    /// A workload about to start: nothing computed, nothing failed.
    pub fn new(config: Arc<WorkloadConfig>, model: ModelRef, computing: bool) -> Self {
        Self {
            model,
            last_error: None,
            live_error: ErrorSummary::default(),
            computing,
            last_success: None,
            trail: Trail::new(config.step_seconds(), config.window_points()).shared(),
            config,
        }
    }
}

/// One workload a forecaster runs, as the API and metrics see it.
#[derive(Debug, Clone)]
pub struct WorkloadView {
    pub status: Status,
    pub snapshot: Option<Arc<Snapshot>>,
}

impl WorkloadView {
    pub fn config(&self) -> &WorkloadConfig {
        &self.status.config
    }

    /// Fresh: a snapshot whose origin is within `stale_after` of `now`.
    pub fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        self.snapshot
            .as_ref()
            .is_some_and(|s| !s.is_stale(now, self.status.config.stale_after))
    }
}

#[derive(Default)]
struct Entry {
    snapshot: Option<Arc<Snapshot>>,
    /// Only for a workload this process runs.
    status: Option<Status>,
}

/// Every workload's latest snapshot (and, for the workloads this process
/// runs, their status), shared between one writer and any readers.
pub struct Board {
    /// A std lock: held only to copy an entry in or out, never across an
    /// await.
    entries: RwLock<BTreeMap<String, Entry>>,
    /// Bumped whenever a snapshot changes, so readers can wait for news.
    changes: watch::Sender<u64>,
    /// A fetch has been taken in since start-up.
    filled: AtomicBool,
}

impl Default for Board {
    fn default() -> Self {
        Self {
            entries: RwLock::default(),
            changes: watch::Sender::new(0),
            filled: AtomicBool::new(false),
        }
    }
}

impl Board {
    /// The latest snapshot of `workload`.
    pub fn snapshot(&self, workload: &str) -> Option<Arc<Snapshot>> {
        self.entries
            .read()
            .expect("board lock")
            .get(workload)
            .and_then(|e| e.snapshot.clone())
    }

    /// Every snapshot there is, by workload name.
    pub fn snapshots(&self) -> Vec<Arc<Snapshot>> {
        self.entries
            .read()
            .expect("board lock")
            .values()
            .filter_map(|e| e.snapshot.clone())
            .collect()
    }

    /// A receiver that sees a new value whenever a snapshot changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Whether a fetch has been taken in since start-up: before that, a
    /// board filled from elsewhere has nothing to answer with.
    pub fn is_filled(&self) -> bool {
        self.filled.load(Ordering::Relaxed)
    }

    /// A workload this process runs.
    pub fn view(&self, workload: &str) -> Option<WorkloadView> {
        self.entries
            .read()
            .expect("board lock")
            .get(workload)
            .and_then(Self::view_of)
    }

    /// Every workload this process runs, by name.
    pub fn views(&self) -> Vec<WorkloadView> {
        self.entries
            .read()
            .expect("board lock")
            .values()
            .filter_map(Self::view_of)
            .collect()
    }

    fn view_of(entry: &Entry) -> Option<WorkloadView> {
        Some(WorkloadView {
            status: entry.status.clone()?,
            snapshot: entry.snapshot.clone(),
        })
    }

    /// Adds a workload this process runs (the writer, at start-up).
    pub fn register(&self, status: Status) {
        let name = status.config.name.clone();
        self.entries
            .write()
            .expect("board lock")
            .entry(name)
            .or_default()
            .status = Some(status);
    }

    /// Forgets a workload this process ran (removed from its
    /// configuration): it leaves the API, the web view and readiness.
    pub fn unregister(&self, workload: &str) {
        let removed = self
            .entries
            .write()
            .expect("board lock")
            .remove(workload)
            .is_some();
        if removed {
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// Publishes a workload's latest snapshot and updates its status (the
    /// writer, after each tick).
    pub fn record(
        &self,
        workload: &str,
        snapshot: Option<Arc<Snapshot>>,
        update: impl FnOnce(&mut Status),
    ) {
        let changed = {
            let mut entries = self.entries.write().expect("board lock");
            let entry = entries.entry(workload.to_owned()).or_default();
            if let Some(status) = &mut entry.status {
                update(status);
            }
            let changed = match (&entry.snapshot, &snapshot) {
                (Some(a), Some(b)) => !Arc::ptr_eq(a, b),
                (None, None) => false,
                _ => true,
            };
            entry.snapshot = snapshot;
            changed
        };
        if changed {
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// Takes in a fetch from elsewhere: new and changed snapshots replace
    /// the old ones; workloads missing from the fetch are kept (they age out
    /// by themselves), so a partial answer never loses a forecast.
    pub fn absorb(&self, fetched: Vec<Snapshot>) {
        let mut changed = false;
        {
            let mut entries = self.entries.write().expect("board lock");
            for snapshot in fetched {
                let entry = entries.entry(snapshot.workload.clone()).or_default();
                // Only newer: behind a Service of several forecasters, or
                // with one lagging, an older snapshot must not win.
                let newer = entry.snapshot.as_ref().is_none_or(|old| {
                    (snapshot.generated_at, snapshot.computed_at)
                        > (old.generated_at, old.computed_at)
                });
                if newer {
                    entry.snapshot = Some(Arc::new(snapshot));
                    changed = true;
                }
            }
        }
        self.filled.store(true, Ordering::Relaxed);
        if changed {
            self.changes.send_modify(|n| *n += 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(workload: &str, origin: i64) -> Snapshot {
        let mut s = super::super::tests::sample();
        s.workload = workload.into();
        s.generated_at = DateTime::from_timestamp(origin, 0).unwrap();
        s.computed_at = s.generated_at;
        s
    }

    #[test]
    fn only_newer_snapshots_replace_and_absent_ones_are_kept() {
        let board = Board::default();
        assert!(!board.is_filled());
        let changes = board.subscribe();
        board.absorb(vec![snapshot("a", 1_000), snapshot("b", 1_000)]);
        assert!(board.is_filled());
        assert!(changes.has_changed().unwrap());
        // An older answer (a lagging replica behind the same Service) loses.
        board.absorb(vec![snapshot("a", 940)]);
        assert_eq!(board.snapshot("a").unwrap().generated_at.timestamp(), 1_000);
        board.absorb(vec![snapshot("a", 1_060)]);
        assert_eq!(board.snapshot("a").unwrap().generated_at.timestamp(), 1_060);
        // A fetch without `b` does not forget it: it ages out by itself.
        assert!(board.snapshot("b").is_some());
        // Fetched workloads are not ones this process runs.
        assert!(board.views().is_empty());
    }

    #[test]
    fn a_recorded_snapshot_is_news_only_when_it_changes() {
        let board = Board::default();
        let text = "[[workload]]\nname = \"w\"\nprom-query = \"q\"\ntarget-per-pod = 1\n";
        let config = Arc::new(crate::config::parse_file(text).unwrap().remove(0));
        let model = ModelRef {
            name: "m".into(),
            version: "1".into(),
            content_hash: None,
        };
        board.register(Status::new(config, model, true));
        let mut changes = board.subscribe();
        let first = Arc::new(snapshot("w", 1_000));
        board.record("w", Some(first.clone()), |s| s.last_success = None);
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        board.record("w", Some(first), |s| s.computing = false);
        assert!(!changes.has_changed().unwrap());
        let view = board.view("w").unwrap();
        assert!(!view.status.computing);
        assert_eq!(view.snapshot.unwrap().generated_at.timestamp(), 1_000);
    }
}
