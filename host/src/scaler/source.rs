//! Where the scaler's forecasts come from, kept in memory so no RPC waits on
//! the network:
//!
//! - in the same process as the forecaster (`kedastral run`): its board,
//!   read directly;
//! - a forecaster's HTTP API (`GET /forecasts`) or Redis (every
//!   `kedastral:snapshot:*` key), fetched into a [`ForecastCache`] by a
//!   background task every refresh interval.
//!
//! A failed fetch keeps what was fetched before: the snapshots' own age
//! decides when they are too old to serve, and the next fetch that works
//! brings the scaler back without anyone restarting it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::metrics::ScalerMetrics;
use crate::forecaster::Shared;
use crate::store::Snapshot;
use crate::store::redis::RedisStore;

/// Snapshots as the scaler reads them.
#[derive(Clone)]
pub enum Forecasts {
    /// The forecaster's own board, in this process.
    Board(Arc<Shared>),
    Cache(Arc<ForecastCache>),
}

impl Forecasts {
    pub fn get(&self, workload: &str) -> Option<Arc<Snapshot>> {
        match self {
            Self::Board(shared) => shared.board.snapshot(workload),
            Self::Cache(cache) => cache.get(workload),
        }
    }

    /// Sees a new value whenever any snapshot changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        match self {
            Self::Board(shared) => shared.board.subscribe(),
            Self::Cache(cache) => cache.changes.subscribe(),
        }
    }
}

/// Snapshots fetched from elsewhere.
pub struct ForecastCache {
    /// A std lock: held only to swap entries in or clone one out.
    snapshots: RwLock<HashMap<String, Arc<Snapshot>>>,
    changes: watch::Sender<u64>,
    /// A fetch has succeeded since start-up.
    filled: AtomicBool,
}

impl Default for ForecastCache {
    fn default() -> Self {
        Self {
            snapshots: RwLock::default(),
            changes: watch::Sender::new(0),
            filled: AtomicBool::new(false),
        }
    }
}

impl ForecastCache {
    /// Whether a fetch has succeeded since start-up: before that, every
    /// answer would be UNAVAILABLE.
    pub fn is_filled(&self) -> bool {
        self.filled.load(Ordering::Relaxed)
    }

    pub fn get(&self, workload: &str) -> Option<Arc<Snapshot>> {
        self.snapshots
            .read()
            .expect("cache lock")
            .get(workload)
            .cloned()
    }

    /// Takes in a fetch: new and changed snapshots replace the old ones;
    /// workloads missing from the fetch are kept (they age out by
    /// themselves), so a partial answer never loses a forecast.
    pub fn absorb(&self, fetched: Vec<Snapshot>) {
        let mut changed = false;
        {
            let mut map = self.snapshots.write().expect("cache lock");
            for snapshot in fetched {
                // Only newer: behind a Service of several forecasters, or
                // with one lagging, an older snapshot must not win.
                let newer = map.get(&snapshot.workload).is_none_or(|old| {
                    (snapshot.generated_at, snapshot.computed_at)
                        > (old.generated_at, old.computed_at)
                });
                if newer {
                    map.insert(snapshot.workload.clone(), Arc::new(snapshot));
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

/// Where a [`ForecastCache`] is filled from.
#[derive(Debug, Clone)]
pub enum Upstream {
    Http { client: reqwest::Client, url: Url },
    Redis(RedisStore),
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("forecaster at {url}: {message}")]
    Http { url: String, message: String },
    #[error("forecaster at {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("forecaster at {url} answered something that is not a list of forecasts: {message}")]
    Malformed { url: String, message: String },
    #[error(transparent)]
    Redis(#[from] crate::store::redis::StoreError),
}

impl FetchError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Http { .. } => "unreachable",
            Self::Status { .. } => "http_status",
            Self::Malformed { .. } => "malformed",
            Self::Redis(e) => e.metric_label(),
        }
    }
}

impl Upstream {
    /// A forecaster's base URL (a path prefix is kept).
    pub fn http(base: &Url, timeout: Duration) -> Result<Self, String> {
        let url = crate::collect::endpoint_under(base, "forecasts")?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self::Http { client, url })
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Http { url, .. } => format!("forecaster at {url}"),
            Self::Redis(store) => format!("Redis (as {})", store.replica()),
        }
    }

    pub async fn fetch(&self) -> Result<Vec<Snapshot>, FetchError> {
        match self {
            Self::Http { client, url } => {
                let shown = || url.to_string();
                let response =
                    client
                        .get(url.clone())
                        .send()
                        .await
                        .map_err(|e| FetchError::Http {
                            url: shown(),
                            message: e.to_string(),
                        })?;
                let status = response.status();
                if !status.is_success() {
                    return Err(FetchError::Status {
                        url: shown(),
                        status: status.as_u16(),
                    });
                }
                let body = response.bytes().await.map_err(|e| FetchError::Http {
                    url: shown(),
                    message: e.to_string(),
                })?;
                #[derive(serde::Deserialize)]
                struct Answer {
                    forecasts: Vec<Snapshot>,
                }
                let answer: Answer =
                    serde_json::from_slice(&body).map_err(|e| FetchError::Malformed {
                        url: shown(),
                        message: e.to_string(),
                    })?;
                Ok(answer.forecasts)
            }
            Self::Redis(store) => Ok(store.all_snapshots().await?),
        }
    }
}

/// Fills `cache` from `upstream` every `every` until `shutdown`.
pub async fn refresh(
    upstream: Upstream,
    cache: Arc<ForecastCache>,
    metrics: ScalerMetrics,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let started = Instant::now();
        let fetched = upstream.fetch().await;
        metrics
            .fetch_seconds
            .observe(started.elapsed().as_secs_f64());
        match fetched {
            Ok(snapshots) => {
                if failing {
                    tracing::info!(upstream = %upstream.describe(), "forecasts fetched again");
                }
                failing = false;
                cache.absorb(snapshots);
            }
            Err(e) => {
                metrics
                    .fetch_errors
                    .with_label_values(&[e.metric_label()])
                    .inc();
                if failing {
                    tracing::debug!(error = %e, "fetching forecasts failed again");
                } else {
                    tracing::warn!(error = %e, "fetching forecasts failed; serving what was fetched before");
                }
                failing = true;
            }
        }
    }
}

impl RedisStore {
    /// Every snapshot in Redis, found by scanning `kedastral:snapshot:*`.
    /// One that does not decode is skipped with a warning rather than
    /// failing the others.
    pub async fn all_snapshots(&self) -> Result<Vec<Snapshot>, crate::store::redis::StoreError> {
        let mut c = self.connection();
        let mut keys: Vec<String> = Vec::new();
        let pattern = format!("{}*", RedisStore::snapshot_key(""));
        // A thousand keys per SCAN: a shared Redis with millions of other
        // keys still takes few round trips.
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1_000)
                .query_async(&mut c)
                .await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut out = Vec::with_capacity(keys.len());
        // MGET in batches: one round trip per thousand workloads.
        for batch in keys.chunks(1_000) {
            let texts: Vec<Option<String>> = c.mget(batch).await?;
            for (key, text) in batch.iter().zip(texts) {
                let Some(text) = text else { continue };
                match Snapshot::from_stored_json(&text) {
                    Ok(s) => out.push(s),
                    Err(e) => tracing::warn!(%key, error = %e, "skipping a snapshot"),
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ModelRef;
    use chrono::DateTime;

    fn snapshot(workload: &str, origin: i64) -> Snapshot {
        let at = DateTime::from_timestamp(origin, 0).unwrap();
        Snapshot {
            workload: workload.into(),
            metric: workload.into(),
            model: ModelRef {
                name: "m".into(),
                version: "1".into(),
            },
            generated_at: at,
            computed_at: at,
            step_seconds: 60,
            horizon: 1,
            values: vec![1.0],
            quantiles: vec![],
            desired_replicas: vec![1],
            last_observed: None,
            reactive_replicas: None,
            stale_after_seconds: 300,
            lead_time_seconds: 60,
            selection: None,
        }
    }

    #[test]
    fn only_newer_snapshots_replace_and_absent_ones_are_kept() {
        let cache = ForecastCache::default();
        assert!(!cache.is_filled());
        let changes = cache.changes.subscribe();
        cache.absorb(vec![snapshot("a", 1_000), snapshot("b", 1_000)]);
        assert!(cache.is_filled());
        assert!(changes.has_changed().unwrap());
        // An older answer (a lagging replica behind the same Service) loses.
        cache.absorb(vec![snapshot("a", 940)]);
        assert_eq!(cache.get("a").unwrap().generated_at.timestamp(), 1_000);
        cache.absorb(vec![snapshot("a", 1_060)]);
        assert_eq!(cache.get("a").unwrap().generated_at.timestamp(), 1_060);
        // A fetch without `b` does not forget it: it ages out by itself.
        assert!(cache.get("b").is_some());
    }
}
