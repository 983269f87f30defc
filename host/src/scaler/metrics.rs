//! The scaler's Prometheus metrics. In `kedastral run` they join the
//! forecaster's registry, so one `/metrics` shows both.

use prometheus::{GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts};

use super::decision::Unavailable;
use crate::store::redis::StoreError;
use crate::store::upstream::FetchError;
use crate::telemetry::NamedRegistry;

/// The timed External Scaler methods: the `method` label of the call times
/// (a `StreamIsActive` stream lasts as long as KEDA keeps it open).
pub const RPC_METHODS: [&str; 3] = ["IsActive", "GetMetricSpec", "GetMetrics"];

/// gRPC answers are in-memory lookups: 10 µs to 1 s.
const RPC_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1, 1.0,
];

#[derive(Clone)]
pub struct ScalerMetrics {
    pub replicas_returned: GaugeVec,
    pub age_seen_seconds: GaugeVec,
    pub fetch_seconds: Histogram,
    pub fetch_errors: IntCounterVec,
    pub rpc_seconds: HistogramVec,
    pub unavailable: IntCounterVec,
}

impl ScalerMetrics {
    /// Registers the scaler's metrics in `registry`.
    pub fn register(registry: &NamedRegistry) -> Self {
        let replicas_returned = GaugeVec::new(
            Opts::new(
                "kedastral_scaler_desired_replicas_returned",
                "Replicas last answered to KEDA by GetMetrics.",
            ),
            &["workload"],
        )
        .expect("valid metric");
        let age_seen_seconds = GaugeVec::new(
            Opts::new(
                "kedastral_scaler_forecast_age_seen_seconds",
                "Age of the forecast the scaler last answered from.",
            ),
            &["workload"],
        )
        .expect("valid metric");
        let fetch_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "kedastral_scaler_forecast_fetch_duration_seconds",
                "Time to fetch every forecast from the forecaster or Redis.",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0]),
        )
        .expect("valid metric");
        let fetch_errors = IntCounterVec::new(
            Opts::new(
                "kedastral_scaler_forecast_fetch_errors_total",
                "Failed fetches of forecasts, by reason.",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let rpc_seconds = HistogramVec::new(
            HistogramOpts::new(
                "kedastral_scaler_grpc_request_duration_seconds",
                "Time to answer one External Scaler call, by method.",
            )
            .buckets(RPC_BUCKETS.to_vec()),
            &["method"],
        )
        .expect("valid metric");
        let unavailable = IntCounterVec::new(
            Opts::new(
                "kedastral_scaler_unavailable_total",
                "Calls answered UNAVAILABLE (no forecast, stale, horizon passed), by workload and reason.",
            ),
            &["workload", "reason"],
        )
        .expect("valid metric");
        registry.register(&replicas_returned);
        registry.register(&age_seen_seconds);
        registry.register(&fetch_seconds);
        registry.register(&fetch_errors);
        registry.register(&rpc_seconds);
        registry.register(&unavailable);
        // Series with a true value before the first call, so `/metrics`
        // shows them from start-up.
        for reason in FetchError::METRIC_LABELS
            .iter()
            .chain(StoreError::METRIC_LABELS)
        {
            fetch_errors.with_label_values(&[reason]);
        }
        for method in RPC_METHODS {
            rpc_seconds.with_label_values(&[method]);
        }
        Self {
            replicas_returned,
            age_seen_seconds,
            fetch_seconds,
            fetch_errors,
            rpc_seconds,
            unavailable,
        }
    }

    /// A workload's counters at 0, from the first time the scaler knows of
    /// it, so that a rate or an alert sees its first unavailable answer.
    pub fn show_workload(&self, workload: &str) {
        for reason in Unavailable::METRIC_LABELS {
            self.unavailable.with_label_values(&[workload, reason]);
        }
    }
}
