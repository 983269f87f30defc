//! Running the services: listeners, signals, the servers of `forecaster`,
//! `scaler` and `run` (both in one process), and a shutdown that drains
//! them within a deadline. The command line only reads flags into what
//! these take.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Server, ServerTlsConfig};

use crate::api::ApiState;
use crate::clock::Clock;
use crate::forecaster::Forecaster;
use crate::scaler::metrics::ScalerMetrics;
use crate::scaler::proto::external_scaler_server::ExternalScalerServer;
use crate::scaler::source::refresh;
use crate::scaler::{Scaler, ScalerSettings};
use crate::store::Board;
use crate::store::upstream::Upstream;

/// `:8081` means every interface, as in Go and Prometheus flags.
pub fn listen_address(listen: &str) -> String {
    match listen.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => listen.to_owned(),
    }
}

pub async fn bind(flag: &str, listen: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen_address(listen))
        .await
        .with_context(|| format!("{flag} `{listen}`: cannot listen"))
}

/// A token cancelled on SIGTERM or SIGINT.
pub fn shutdown_on_signals() -> anyhow::Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};
    let token = CancellationToken::new();
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let cancel = token.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down");
        cancel.cancel();
    });
    Ok(token)
}

/// A multi-threaded async runtime for a service.
pub fn async_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The forecaster and its HTTP API, until `shutdown`.
pub async fn forecaster(
    forecaster: Forecaster,
    listener: TcpListener,
    shutdown: CancellationToken,
    deadline: Duration,
) -> anyhow::Result<()> {
    let mut servers = tokio::task::JoinSet::new();
    spawn_api(&mut servers, listener, &forecaster, &shutdown);
    let work = tokio::spawn(forecaster.run(shutdown.clone()));
    serve_until_shutdown(servers, vec![work], shutdown, deadline).await
}

/// How a scaler on its own answers.
pub struct ScalerPlan {
    pub upstream: Upstream,
    pub refresh_every: Duration,
    pub settings: ScalerSettings,
    pub tls: Option<ServerTlsConfig>,
}

/// The scaler on its own: gRPC on `grpc`, health and metrics on `http`, its
/// board refreshed from the upstream, until `shutdown`.
pub async fn scaler(
    plan: ScalerPlan,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: CancellationToken,
    deadline: Duration,
) -> anyhow::Result<()> {
    let registry = crate::telemetry::NamedRegistry::default();
    let metrics = ScalerMetrics::register(&registry);
    let board = Arc::new(Board::default());
    tracing::info!(
        grpc = %grpc.local_addr()?,
        http = %http.local_addr()?,
        tls = plan.tls.is_some(),
        upstream = %plan.upstream.describe(),
        "scaler started"
    );
    let refresher = tokio::spawn(refresh(
        plan.upstream,
        board.clone(),
        metrics.clone(),
        plan.refresh_every,
        shutdown.clone(),
    ));
    let router = crate::scaler::http_router(registry, board.clone());
    let scaler = Scaler::new(
        board,
        plan.settings,
        metrics,
        Clock::wall(),
        shutdown.clone(),
    );
    let mut servers = tokio::task::JoinSet::new();
    servers.spawn(serve_grpc(grpc, scaler, plan.tls, shutdown.clone()));
    let stop = shutdown.clone();
    servers.spawn(async move {
        axum::serve(http, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .context("the HTTP server stopped")
    });
    serve_until_shutdown(servers, vec![refresher], shutdown, deadline).await
}

/// The forecaster and the scaler in one process, sharing one board.
pub struct Together {
    pub forecaster: Forecaster,
    pub settings: ScalerSettings,
    pub tls: Option<ServerTlsConfig>,
    /// How often to log every workload's decision (zero: never).
    pub report_every: Duration,
    /// Said in the start-up line: where the data comes from.
    pub source: String,
}

/// `kedastral run`: forecaster, HTTP API and scaler until `shutdown`.
pub async fn together(
    run: Together,
    http: TcpListener,
    grpc: TcpListener,
    shutdown: CancellationToken,
    deadline: Duration,
) -> anyhow::Result<()> {
    let Together {
        forecaster,
        settings,
        tls,
        report_every,
        source,
    } = run;
    let board = forecaster.board();
    let clock = forecaster.clock();
    let metrics = ScalerMetrics::register(forecaster.metrics().registry());
    let views = board.views();
    for view in &views {
        metrics.show_workload(&view.status.config.name);
    }
    tracing::info!(
        http = %http.local_addr()?,
        grpc = %grpc.local_addr()?,
        tls = tls.is_some(),
        workloads = views.len(),
        source = %source,
        "kedastral running: forecaster and scaler"
    );
    tracing::info!(
        "try: curl 'http://{}/forecast/current?workload=NAME' (and /workloads, /metrics); \
         KEDA's scalerAddress is {}",
        http.local_addr()?,
        grpc.local_addr()?
    );
    let scaler = Scaler::new(board.clone(), settings, metrics, clock, shutdown.clone());
    let mut servers = tokio::task::JoinSet::new();
    servers.spawn(serve_grpc(grpc, scaler.clone(), tls, shutdown.clone()));
    spawn_api(&mut servers, http, &forecaster, &shutdown);
    let mut background = vec![tokio::spawn(forecaster.run(shutdown.clone()))];
    if !report_every.is_zero() {
        background.push(tokio::spawn(report(
            board,
            clock,
            scaler,
            report_every,
            shutdown.clone(),
        )));
    }
    serve_until_shutdown(servers, background, shutdown, deadline).await
}

/// The forecaster's HTTP API on `listener`, among `servers`.
fn spawn_api(
    servers: &mut tokio::task::JoinSet<anyhow::Result<()>>,
    listener: TcpListener,
    forecaster: &Forecaster,
    shutdown: &CancellationToken,
) {
    let state = Arc::new(ApiState {
        board: forecaster.board(),
        metrics: forecaster.metrics(),
        clock: forecaster.clock(),
        models: Some(forecaster.models()),
    });
    let api = crate::api::serve(listener, state, shutdown.clone());
    servers.spawn(async move { api.await.context("the HTTP server stopped") });
}

/// Serves the External Scaler and the gRPC health service on `listener`
/// until `shutdown`.
pub async fn serve_grpc(
    listener: TcpListener,
    scaler: Scaler,
    tls: Option<ServerTlsConfig>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<ExternalScalerServer<Scaler>>().await;
    // Keepalives find connections whose peer vanished (a KEDA pod lost with
    // its node), so their streams end instead of lingering.
    let mut server = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .tcp_keepalive(Some(Duration::from_secs(60)));
    if let Some(tls) = tls {
        server = server
            .tls_config(tls)
            .context("--tls-cert / --tls-key / --tls-client-ca")?;
    }
    server
        .add_service(health)
        .add_service(scaler.into_service())
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.cancelled_owned())
        .await
        .context("the gRPC server stopped")
}

/// Logs, for every workload, what was seen, what is forecast and what the
/// scaler would answer KEDA now: the replica decisions, as they happen.
async fn report(
    board: Arc<Board>,
    clock: Clock,
    scaler: Scaler,
    every: Duration,
    shutdown: CancellationToken,
) {
    // The first report after a second: by then the first forecast is in.
    let first = tokio::time::Instant::now() + Duration::from_secs(1);
    let mut ticker = tokio::time::interval_at(first, every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = clock.now();
        for view in board.views() {
            let Some(snapshot) = &view.snapshot else {
                continue;
            };
            let next = snapshot.values.first().copied().unwrap_or(f64::NAN);
            let peak = snapshot.values.iter().copied().fold(f64::NAN, f64::max);
            match scaler.decide_now(snapshot) {
                Ok(d) => tracing::info!(
                    workload = %view.status.config.name,
                    at = %now.format("%Y-%m-%d %H:%M"),
                    observed = snapshot.last_observed.unwrap_or(f64::NAN),
                    forecast_next = format!("{next:.3}"),
                    forecast_peak = format!("{peak:.3}"),
                    replicas_for_keda = d.replicas,
                    lead_minutes = snapshot.lead_time_seconds / 60,
                    active = d.active,
                    "decision"
                ),
                Err(e) => {
                    tracing::warn!(workload = %view.status.config.name, reason = %e, "no decision")
                }
            }
        }
    }
}

/// Waits for shutdown (or for a server to fail), then for every task to
/// end within `deadline`.
async fn serve_until_shutdown(
    mut servers: tokio::task::JoinSet<anyhow::Result<()>>,
    background: Vec<tokio::task::JoinHandle<()>>,
    shutdown: CancellationToken,
    deadline: Duration,
) -> anyhow::Result<()> {
    let early = tokio::select! {
        _ = shutdown.cancelled() => None,
        ended = servers.join_next() => ended,
    };
    shutdown.cancel();
    // A server that failed is reported after the others have drained (and
    // the forecaster has given its leases up).
    let failure = match early {
        Some(Ok(Ok(()))) | None => None,
        Some(Ok(Err(e))) => Some(e),
        Some(Err(e)) => Some(anyhow::Error::new(e).context("a server task failed")),
    };
    let drained = tokio::time::timeout(deadline, async {
        for task in background {
            let _ = task.await;
        }
        while let Some(ended) = servers.join_next().await {
            if let Ok(Err(e)) = ended {
                tracing::warn!(error = %e, "while stopping");
            }
        }
    })
    .await;
    match drained {
        Ok(()) => tracing::info!("stopped"),
        Err(_) => tracing::warn!(?deadline, "shutdown deadline passed; exiting anyway"),
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
