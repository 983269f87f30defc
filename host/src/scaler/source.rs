//! The scaler's forecasts, kept in a [`Board`] so no RPC waits on the
//! network: in the same process as the forecaster (`kedastral run`), the
//! forecaster's own board; on its own, one that [`refresh`] fills from an
//! [`Upstream`] every refresh interval.
//!
//! A failed fetch keeps what was fetched before: the snapshots' own age
//! decides when they are too old to serve, and the next fetch that works
//! brings the scaler back without anyone restarting it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::metrics::ScalerMetrics;
use crate::store::Board;
use crate::store::upstream::Upstream;

/// Fills `board` from `upstream` every `every` until `shutdown`.
pub async fn refresh(
    upstream: Upstream,
    board: Arc<Board>,
    metrics: ScalerMetrics,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut known: HashSet<String> = HashSet::new();
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
                for snapshot in &snapshots {
                    if !known.contains(&snapshot.workload) {
                        metrics.show_workload(&snapshot.workload);
                        known.insert(snapshot.workload.clone());
                    }
                }
                board.absorb(snapshots);
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
