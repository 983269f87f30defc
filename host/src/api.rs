//! The forecaster's HTTP API.
//!
//! - `GET /forecast/current?workload=W`: the workload's latest forecast and
//!   plan, with `stale`, the latest failure and the live forecast error;
//! - `GET /workloads`: every workload, in brief;
//! - `GET /models`: the models loaded, their sources and content hashes;
//! - `GET /forecasts`: every current snapshot, for scalers;
//! - `GET /healthz`: the process is up;
//! - `GET /readyz`: every workload has a fresh forecast (503 and the ones
//!   that do not, otherwise);
//! - `GET /metrics`: Prometheus text format;
//! - `GET /` and `GET /workload?name=W`: the web view ([`crate::web`]).
//!
//! Errors are JSON `{"error": "..."}`: 400 for a missing or malformed
//! workload, 404 for an unknown one, 503 for one without a forecast yet.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::valid_workload_name;
use crate::forecaster::models::ModelBoard;
use crate::store::{Board, Failure, ModelRef, Snapshot, WorkloadView};
use crate::telemetry::Metrics;

/// What the API reads: the board, the metrics it exports, the clock that
/// judges staleness.
pub struct ApiState {
    pub board: Arc<Board>,
    pub metrics: Metrics,
    pub clock: Clock,
    /// The models loaded, where this process forecasts.
    pub models: Option<Arc<ModelBoard>>,
}

pub fn router(shared: Arc<ApiState>) -> Router {
    Router::new()
        .route("/", get(overview_page))
        .route("/workload", get(workload_page))
        .route("/forecast/current", get(current))
        .route("/workloads", get(workloads))
        .route("/models", get(models))
        .route("/forecasts", get(forecasts))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(shared)
}

/// Serves until `shutdown` is cancelled, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<ApiState>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LiveError {
    lead_seconds: u64,
    comparisons: usize,
    mean_absolute_error: Option<f64>,
    mean_absolute_percentage_error: Option<f64>,
    under_forecast_share: Option<f64>,
}

impl LiveError {
    fn of(view: &WorkloadView) -> Self {
        let s = view.status.live_error;
        Self {
            lead_seconds: view.config().lead_time.as_secs(),
            comparisons: s.comparisons,
            mean_absolute_error: s.mean_absolute_error,
            mean_absolute_percentage_error: s.mean_absolute_percentage_error,
            under_forecast_share: s.under_forecast_share,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CurrentForecast<'a> {
    #[serde(flatten)]
    snapshot: &'a Snapshot,
    stale: bool,
    age_seconds: f64,
    stale_after_seconds: u64,
    computed_here: bool,
    last_error: Option<&'a Failure>,
    live_error: LiveError,
}

async fn current(State(shared): State<Arc<ApiState>>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let mut names = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "workload")
        .map(|(_, v)| v.into_owned());
    let Some(name) = names.next() else {
        return error(
            StatusCode::BAD_REQUEST,
            "missing query parameter `workload` (GET /forecast/current?workload=NAME)",
        );
    };
    if names.next().is_some() {
        return error(StatusCode::BAD_REQUEST, "give `workload` once");
    }
    if !valid_workload_name(&name) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`{name}` is not a workload name (letters, digits and - _ . / only)"),
        );
    }
    let Some(view) = shared.board.view(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no workload `{name}`"));
    };
    let Some(snapshot) = &view.snapshot else {
        let reason = view.status.last_error.as_ref().map_or_else(
            || "the first tick has not finished".to_owned(),
            |f| f.message.clone(),
        );
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("workload `{name}` has no forecast yet: {reason}"),
        );
    };
    let now = shared.clock.now();
    axum::Json(CurrentForecast {
        snapshot,
        stale: !view.is_fresh(now),
        age_seconds: snapshot.age_seconds(now),
        stale_after_seconds: view.config().stale_after.as_secs(),
        computed_here: view.status.computing,
        last_error: view.status.last_error.as_ref(),
        live_error: LiveError::of(&view),
    })
    .into_response()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WorkloadBrief<'a> {
    workload: &'a str,
    metric: &'a str,
    model: &'a ModelRef,
    step_seconds: u32,
    generated_at: Option<DateTime<Utc>>,
    stale: bool,
    next_desired_replicas: Option<u32>,
    /// How pods are sized: the rule, the level chosen for the objective and
    /// the shortfall it would have left lately.
    sizing: Option<&'a crate::sizing::SizingChoice>,
    computed_here: bool,
    last_error: Option<&'a Failure>,
    live_error: LiveError,
}

/// Every current snapshot in one answer: what a scaler reading this
/// forecaster fetches each refresh.
async fn forecasts(State(shared): State<Arc<ApiState>>) -> Response {
    let snapshots = shared.board.snapshots();
    let list: Vec<&Snapshot> = snapshots.iter().map(|s| s.as_ref()).collect();
    axum::Json(json!({ "forecasts": list })).into_response()
}

async fn workloads(State(shared): State<Arc<ApiState>>) -> Response {
    let now = shared.clock.now();
    let views = shared.board.views();
    let briefs: Vec<WorkloadBrief<'_>> = views
        .iter()
        .map(|v| WorkloadBrief {
            workload: &v.config().name,
            metric: &v.config().metric,
            model: &v.status.model,
            step_seconds: v.config().step_seconds(),
            generated_at: v.snapshot.as_ref().map(|s| s.generated_at),
            stale: !v.is_fresh(now),
            next_desired_replicas: v
                .snapshot
                .as_ref()
                .and_then(|s| s.desired_replicas.first().copied()),
            sizing: v.snapshot.as_ref().and_then(|s| s.sizing.as_ref()),
            computed_here: v.status.computing,
            last_error: v.status.last_error.as_ref(),
            live_error: LiveError::of(v),
        })
        .collect();
    axum::Json(json!({ "workloads": briefs })).into_response()
}

async fn models(State(shared): State<Arc<ApiState>>) -> Response {
    match &shared.models {
        Some(models) => axum::Json(models.listing()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "this process loads no models: it serves forecasts another forecaster computes",
        ),
    }
}

async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

async fn readyz(State(shared): State<Arc<ApiState>>) -> Response {
    let now = shared.clock.now();
    let not_ready: Vec<_> = shared
        .board
        .views()
        .into_iter()
        .filter(|v| !v.is_fresh(now))
        .map(|v| {
            let reason = match (&v.snapshot, &v.status.last_error) {
                (None, None) => "no forecast yet".to_owned(),
                (None, Some(f)) => format!("no forecast yet: {}", f.message),
                (Some(s), _) => format!(
                    "forecast is stale: {:.0} s old, limit {} s",
                    s.age_seconds(now),
                    v.config().stale_after.as_secs()
                ),
            };
            json!({ "workload": v.config().name, "reason": reason })
        })
        .collect();
    if not_ready.is_empty() {
        axum::Json(json!({ "ready": true })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "ready": false, "notReady": not_ready })),
        )
            .into_response()
    }
}

async fn metrics(State(shared): State<Arc<ApiState>>) -> Response {
    shared
        .metrics
        .refresh_clock(&shared.board, shared.clock.now());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared.metrics.encode(),
    )
        .into_response()
}

/// A page, with the headers that keep it inert and uncached.
fn page(status: StatusCode, markup: maud::Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                crate::web::CONTENT_SECURITY_POLICY,
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// How often pages reload: the shortest workload interval on the wall's
/// clock, between 5 s and a minute.
fn refresh_seconds(shared: &ApiState, views: &[WorkloadView]) -> u64 {
    views
        .iter()
        .map(|v| shared.clock.wall_duration(v.config().interval).as_secs())
        .min()
        .unwrap_or(15)
        .clamp(5, 60)
}

async fn overview_page(State(shared): State<Arc<ApiState>>) -> Response {
    let views = shared.board.views();
    let now = shared.clock.now();
    let refresh = refresh_seconds(&shared, &views);
    page(StatusCode::OK, crate::web::overview(&views, now, refresh))
}

async fn workload_page(State(shared): State<Arc<ApiState>>, RawQuery(query): RawQuery) -> Response {
    let now = shared.clock.now();
    let query = query.unwrap_or_default();
    let name = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.into_owned());
    let Some(name) = name else {
        return page(
            StatusCode::BAD_REQUEST,
            crate::web::not_found("Give the workload: /workload?name=NAME.", now),
        );
    };
    let Some(view) = shared.board.view(&name) else {
        return page(
            StatusCode::NOT_FOUND,
            crate::web::not_found(&format!("No workload `{name}` runs here."), now),
        );
    };
    let refresh = refresh_seconds(&shared, std::slice::from_ref(&view));
    // Rendering a week of history takes milliseconds: off the async
    // threads all the same, so a slow page never delays a scrape.
    let rendered =
        tokio::task::spawn_blocking(move || crate::web::workload(&view, now, refresh)).await;
    match rendered {
        Ok(markup) => page(StatusCode::OK, markup),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering failed: {e}"),
        ),
    }
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such endpoint; try / (the web view), /forecast/current?workload=NAME, /workloads, /models, /healthz, /readyz or /metrics",
    )
}
