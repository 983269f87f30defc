//! The KEDA External Scaler: gRPC answers from forecasts kept in memory.
//!
//! - [`decision`]: the rules (lead window, staleness, activation, hybrid);
//! - [`source`]: keeping a board of forecasts fresh from elsewhere;
//! - [`metrics`]: the scaler's Prometheus metrics;
//! - this module: the `externalscaler.ExternalScaler` service itself.
//!
//! Per ScaledObject, the trigger's metadata names the workload
//! (`workload`, else `<namespace>/<name>`) and may override `leadTime`,
//! `staleAfter`, `activationThreshold` and `hybrid`. A missing or stale
//! forecast is `UNAVAILABLE` from `GetMetrics`, `IsActive` and
//! `StreamIsActive`, never "inactive": KEDA then holds or applies the
//! ScaledObject's fallback, and does not scale a workload to zero on bad
//! data.

pub mod decision;
pub mod metrics;
pub mod source;

/// Code generated from `proto/externalscaler.proto`.
#[allow(clippy::all, clippy::pedantic, reason = "generated code")]
pub mod proto {
    tonic::include_proto!("externalscaler");
}

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::clock::Clock;
use crate::config::valid_workload_name;
use crate::store::{Board, Snapshot};
use decision::{Decision, Reading, Unavailable, decide};
use metrics::ScalerMetrics;
use proto::external_scaler_server::ExternalScaler;
use proto::{
    GetMetricSpecResponse, GetMetricsRequest, GetMetricsResponse, IsActiveResponse, MetricSpec,
    MetricValue, ScaledObjectRef,
};

/// Process-wide defaults; trigger metadata overrides them per ScaledObject.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalerSettings {
    /// `None`: the workload's own lead time, from its forecast.
    pub lead_time: Option<Duration>,
    /// `None`: the workload's own limit, from its forecast.
    pub stale_after: Option<Duration>,
    pub activation_threshold: f64,
    /// Answer at least the replicas the last observed value needs; `None`:
    /// as each workload's own `reactive-floor` says (in its forecast).
    pub reactive_floor: Option<bool>,
    /// How often an open `StreamIsActive` re-checks when no new forecast
    /// arrives (the lead window moves with the clock).
    pub stream_recheck: Duration,
}

impl Default for ScalerSettings {
    fn default() -> Self {
        Self {
            lead_time: None,
            stale_after: None,
            activation_threshold: 0.0,
            reactive_floor: None,
            stream_recheck: Duration::from_secs(1),
        }
    }
}

/// The metadata keys a trigger may set.
pub mod keys {
    pub const WORKLOAD: &str = "workload";
    pub const LEAD_TIME: &str = "leadTime";
    pub const STALE_AFTER: &str = "staleAfter";
    pub const ACTIVATION_THRESHOLD: &str = "activationThreshold";
    pub const REACTIVE_FLOOR: &str = "reactiveFloor";
    /// The older name of [`REACTIVE_FLOOR`], still read.
    pub const HYBRID: &str = "hybrid";
}

#[derive(Clone)]
pub struct Scaler {
    forecasts: Arc<Board>,
    settings: ScalerSettings,
    metrics: ScalerMetrics,
    clock: Clock,
    shutdown: CancellationToken,
}

/// One ScaledObject's request, read.
#[derive(Default)]
struct Target {
    workload: String,
    lead_time: Option<Duration>,
    stale_after: Option<Duration>,
    activation_threshold: Option<f64>,
    hybrid: Option<bool>,
}

impl Scaler {
    pub fn new(
        forecasts: Arc<Board>,
        settings: ScalerSettings,
        metrics: ScalerMetrics,
        clock: Clock,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            forecasts,
            settings,
            metrics,
            clock,
            shutdown,
        }
    }

    pub fn into_service(self) -> proto::external_scaler_server::ExternalScalerServer<Self> {
        proto::external_scaler_server::ExternalScalerServer::new(self)
    }

    /// The HPA metric name for `workload`: stable, and only characters a
    /// metric name may hold.
    pub fn metric_name(workload: &str) -> String {
        let cleaned: String = workload
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        format!("kedastral-{cleaned}")
    }

    fn target(reference: &ScaledObjectRef) -> Result<Target, Status> {
        let meta: &HashMap<String, String> = &reference.scaler_metadata;
        let workload = match meta.get(keys::WORKLOAD).map(|w| w.trim()) {
            Some(w) if !w.is_empty() => w.to_owned(),
            _ if reference.namespace.is_empty() => reference.name.clone(),
            _ => format!("{}/{}", reference.namespace, reference.name),
        };
        if !valid_workload_name(&workload) {
            return Err(Status::invalid_argument(format!(
                "workload `{workload}` is not a workload name: set scalerMetadata.workload \
                 (letters, digits and - _ . /)"
            )));
        }
        let duration = |key: &str| -> Result<Option<Duration>, Status> {
            meta.get(key)
                .map(|raw| {
                    humantime::parse_duration(raw.trim()).map_err(|e| {
                        Status::invalid_argument(format!("metadata {key} `{raw}`: {e}"))
                    })
                })
                .transpose()
        };
        let activation_threshold = meta
            .get(keys::ACTIVATION_THRESHOLD)
            .map(|raw| {
                raw.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        Status::invalid_argument(format!(
                            "metadata {} `{raw}` is not a number",
                            keys::ACTIVATION_THRESHOLD
                        ))
                    })
            })
            .transpose()?;
        let (key, raw) = match meta.get(keys::REACTIVE_FLOOR) {
            Some(raw) => (keys::REACTIVE_FLOOR, Some(raw)),
            None => (keys::HYBRID, meta.get(keys::HYBRID)),
        };
        let hybrid = raw
            .map(|raw| match raw.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(Status::invalid_argument(format!(
                    "metadata {key} `{raw}` is not true or false"
                ))),
            })
            .transpose()?;
        Ok(Target {
            lead_time: duration(keys::LEAD_TIME)?,
            stale_after: duration(keys::STALE_AFTER)?,
            workload,
            activation_threshold,
            hybrid,
        })
    }

    /// The decision for one ScaledObject now, or the status to answer.
    fn evaluate(&self, reference: &ScaledObjectRef) -> Result<(String, Decision), Status> {
        let target = Self::target(reference)?;
        let unavailable = |u: Unavailable| {
            self.metrics
                .unavailable
                .with_label_values(&[target.workload.as_str(), u.metric_label()])
                .inc();
            Status::unavailable(u.to_string())
        };
        let snapshot = self
            .forecasts
            .snapshot(&target.workload)
            .ok_or_else(|| unavailable(Unavailable::Missing(target.workload.clone())))?;
        let reading = self.reading(&target, &snapshot);
        let decision = decide(&snapshot, self.clock.now(), &reading).map_err(unavailable)?;
        self.metrics
            .age_seen_seconds
            .with_label_values(&[target.workload.as_str()])
            .set(decision.age_seconds);
        Ok((target.workload, decision))
    }

    /// Each setting from the trigger, else the scaler's flags, else the
    /// workload's own (carried in its snapshot).
    fn reading(&self, target: &Target, snapshot: &Snapshot) -> Reading {
        Reading {
            lead_time: target
                .lead_time
                .or(self.settings.lead_time)
                .unwrap_or(Duration::from_secs(snapshot.lead_time_seconds)),
            stale_after: target
                .stale_after
                .or(self.settings.stale_after)
                .unwrap_or(Duration::from_secs(snapshot.stale_after_seconds)),
            activation_threshold: target
                .activation_threshold
                .unwrap_or(self.settings.activation_threshold),
            hybrid: target
                .hybrid
                .or(self.settings.reactive_floor)
                .unwrap_or(snapshot.reactive_floor),
        }
    }

    /// What a trigger that overrides nothing would be answered now, without
    /// counting it as a call.
    pub fn decide_now(&self, snapshot: &Snapshot) -> Result<Decision, Unavailable> {
        let reading = self.reading(&Target::default(), snapshot);
        decide(snapshot, self.clock.now(), &reading)
    }

    fn timed(&self, method: &str, started: Instant) {
        self.metrics
            .rpc_seconds
            .with_label_values(&[method])
            .observe(started.elapsed().as_secs_f64());
    }
}

type ActiveStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<IsActiveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ExternalScaler for Scaler {
    async fn is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<IsActiveResponse>, Status> {
        let started = Instant::now();
        let answer = self.evaluate(request.get_ref());
        self.timed("IsActive", started);
        let (_, decision) = answer?;
        Ok(Response::new(IsActiveResponse {
            result: decision.active,
        }))
    }

    type StreamIsActiveStream = ActiveStream;

    async fn stream_is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<ActiveStream>, Status> {
        let reference = request.into_inner();
        let (workload, first) = self.evaluate(&reference)?;
        // Room for the first answer and a change; a slow reader makes the
        // sender wait rather than pile answers up.
        let (tx, rx) = mpsc::channel(4);
        tx.send(Ok(IsActiveResponse {
            result: first.active,
        }))
        .await
        .map_err(|_| Status::cancelled("the stream closed"))?;
        let scaler = self.clone();
        let mut changes = self.forecasts.subscribe();
        tokio::spawn(async move {
            let mut last = first.active;
            let mut recheck = tokio::time::interval(scaler.settings.stream_recheck);
            recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = scaler.shutdown.cancelled() => break,
                    _ = tx.closed() => break,
                    changed = changes.changed() => if changed.is_err() { break },
                    _ = recheck.tick() => {}
                }
                let message = match scaler.evaluate(&reference) {
                    Ok((_, d)) if d.active != last => {
                        last = d.active;
                        tracing::debug!(%workload, active = last, "activity changed");
                        Ok(IsActiveResponse { result: last })
                    }
                    Ok(_) => continue,
                    // KEDA reopens a stream that ends; the error says why.
                    Err(status) => Err(status),
                };
                let ends = message.is_err();
                // A reader that stopped reading must not hold up shutdown.
                tokio::select! {
                    _ = scaler.shutdown.cancelled() => break,
                    sent = tx.send(message) => if sent.is_err() || ends { break },
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_metric_spec(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<GetMetricSpecResponse>, Status> {
        let started = Instant::now();
        // Only the workload's name matters here: a spec never waits for,
        // or fails on, a forecast.
        let target = Self::target(request.get_ref());
        self.timed("GetMetricSpec", started);
        let target = target?;
        Ok(Response::new(GetMetricSpecResponse {
            metric_specs: vec![MetricSpec {
                metric_name: Self::metric_name(&target.workload),
                target_size: 1,
                target_size_float: 1.0,
            }],
        }))
    }

    async fn get_metrics(
        &self,
        request: Request<GetMetricsRequest>,
    ) -> Result<Response<GetMetricsResponse>, Status> {
        let started = Instant::now();
        let answer = match &request.get_ref().scaled_object_ref {
            Some(reference) => self.evaluate(reference),
            None => Err(Status::invalid_argument(
                "GetMetrics without scaledObjectRef",
            )),
        };
        self.timed("GetMetrics", started);
        let (workload, decision) = answer?;
        self.metrics
            .replicas_returned
            .with_label_values(&[workload.as_str()])
            .set(f64::from(decision.replicas));
        Ok(Response::new(GetMetricsResponse {
            metric_values: vec![MetricValue {
                metric_name: Self::metric_name(&workload),
                metric_value: i64::from(decision.replicas),
                metric_value_float: f64::from(decision.replicas),
            }],
        }))
    }
}

/// `/healthz`, `/readyz` (a fetch of forecasts has succeeded) and
/// `/metrics` for a scaler on its own.
pub fn http_router(registry: crate::telemetry::NamedRegistry, cache: Arc<Board>) -> axum::Router {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::get;
    let registry = Arc::new(registry);
    axum::Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .route(
            "/readyz",
            get(move || {
                let filled = cache.is_filled();
                async move {
                    if filled {
                        axum::Json(serde_json::json!({ "ready": true })).into_response()
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            axum::Json(serde_json::json!({
                                "ready": false,
                                "reason": "no forecasts fetched yet"
                            })),
                        )
                            .into_response()
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        registry.encode(),
                    )
                }
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(meta: &[(&str, &str)]) -> ScaledObjectRef {
        ScaledObjectRef {
            name: "checkout".into(),
            namespace: "shop".into(),
            scaler_metadata: meta
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn the_workload_comes_from_metadata_or_the_scaled_object() {
        let t = Scaler::target(&reference(&[("workload", "api")])).unwrap();
        assert_eq!(t.workload, "api");
        let t = Scaler::target(&reference(&[])).unwrap();
        assert_eq!(t.workload, "shop/checkout");
        assert_eq!(
            Scaler::metric_name("shop/Check_out"),
            "kedastral-shop-check-out"
        );
    }

    #[test]
    fn bad_metadata_is_an_invalid_argument() {
        for meta in [
            [("workload", "a b")],
            [("leadTime", "soon")],
            [("activationThreshold", "lots")],
            [("hybrid", "maybe")],
            [("staleAfter", "-1s")],
        ] {
            let status = Scaler::target(&reference(&meta)).err().unwrap();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{meta:?}");
        }
        let t = Scaler::target(&reference(&[
            ("leadTime", "10m"),
            ("activationThreshold", "2.5"),
            ("hybrid", "TRUE"),
        ]))
        .unwrap();
        assert_eq!(t.lead_time, Some(Duration::from_secs(600)));
        assert_eq!(t.activation_threshold, Some(2.5));
        assert_eq!(t.hybrid, Some(true));
    }
}
