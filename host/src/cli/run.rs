//! `kedastral run`: forecaster and scaler in one process, sharing memory.
//! By default the data is a replay of a recorded trace, played faster than
//! real time, so it needs neither Prometheus nor Redis.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::DateTime;
use clap::{Args, ValueEnum};

use super::default_target_per_pod;
use super::forecaster::{
    ForecasterArgs, async_runtime, bind, serve_until_shutdown, shutdown_on_signals,
};
use super::scaler::{GrpcArgs, serve_grpc};
use crate::clock::Clock;
use crate::collect::{ReplaySource, Source};
use crate::config::{self, WorkloadFile};
use crate::forecaster::Shared;
use crate::history;
use crate::scaler::Scaler;
use crate::scaler::metrics::ScalerMetrics;
use crate::scaler::source::Forecasts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunSource {
    /// A recorded trace played back (--replay-trace, --replay-speed).
    Replay,
    /// Prometheus (--prom-url and the workloads' queries).
    Prometheus,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub forecaster: ForecasterArgs,

    #[command(flatten)]
    pub grpc: GrpcArgs,

    /// Where the metric history comes from.
    #[arg(long, env = "KEDASTRAL_SOURCE", value_enum, default_value = "replay")]
    pub source: RunSource,

    /// Trace to replay, as `timestamp,value` CSV [default: the bundled NASA
    /// trace]. Every workload replays it (their queries are not used).
    #[arg(long, env = "KEDASTRAL_REPLAY_TRACE")]
    pub replay_trace: Option<PathBuf>,

    /// Replay this many times faster than real time: at 60, a minute of the
    /// trace passes each second, so a 1-minute interval ticks every second.
    #[arg(long, env = "KEDASTRAL_REPLAY_SPEED", default_value_t = 60.0)]
    pub replay_speed: f64,

    /// How often the current decisions are logged (wall time; 0s for never).
    #[arg(long, env = "KEDASTRAL_REPORT_EVERY", default_value = "2s", value_parser = humantime::parse_duration)]
    pub report_every: Duration,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let tokio = async_runtime()?;
    let _runtime = tokio.enter();
    let f = &args.forecaster;
    let (workloads, source, clock) = match args.source {
        RunSource::Prometheus => (f.workloads()?, f.prometheus_source()?, Clock::wall()),
        RunSource::Replay => {
            if !(args.replay_speed.is_finite() && args.replay_speed > 0.0) {
                bail!(
                    "--replay-speed must be a positive number, got {}",
                    args.replay_speed
                );
            }
            let (name, trace) = match &args.replay_trace {
                Some(path) => (
                    path.file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or("replay")
                        .to_owned(),
                    history::load_csv(path, None)?,
                ),
                None => (
                    "nasa".to_owned(),
                    history::parse_csv(history::BUNDLED_TRACE, history::BUNDLED_TRACE_NAME, None)?,
                ),
            };
            let fallback = WorkloadFile {
                name: name
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                    .collect(),
                prom_query: "replay".into(),
                target_per_pod: default_target_per_pod(&trace),
                step: Some(format!("{}s", trace.step_seconds)),
                ..WorkloadFile::default()
            };
            let workloads = match &f.config {
                Some(_) => f.workloads()?,
                None => vec![config::check(f.workload.to_file_or(Some(&fallback))?)?],
            };
            // Start a window into the trace, so the first tick has a full
            // history to load (the replay wraps around at its end).
            let window = workloads.iter().map(|w| w.window).max().unwrap_or_default();
            let span = trace.step_seconds as i64 * trace.values.len() as i64;
            let offset = (window.as_secs() as i64).min(span / 2);
            let origin = DateTime::from_timestamp(trace.start_unix_seconds + offset, 0)
                .context("the trace's times are out of range")?;
            let source = Source::Replay(ReplaySource::new(name, trace));
            (workloads, source, Clock::replay(origin, args.replay_speed))
        }
    };
    let settings = args.grpc.settings(None, None)?;
    let tls = args.grpc.tls()?;
    let description = source.describe();
    let count = workloads.len();
    let forecaster = f.build(workloads, source, clock)?;
    tokio.block_on(async move {
        let http = bind("--listen", &args.forecaster.listen).await?;
        let grpc = bind("--grpc-listen", &args.grpc.grpc_listen).await?;
        let shutdown = shutdown_on_signals()?;
        let shared = forecaster.shared();
        let metrics = ScalerMetrics::register(shared.metrics.registry());
        tracing::info!(
            http = %http.local_addr()?,
            grpc = %grpc.local_addr()?,
            tls = tls.is_some(),
            workloads = count,
            source = %description,
            "kedastral running: forecaster and scaler"
        );
        tracing::info!(
            "try: curl 'http://{}/forecast/current?workload=NAME' (and /workloads, /metrics); \
             KEDA's scalerAddress is {}",
            http.local_addr()?,
            grpc.local_addr()?
        );
        let scaler = Scaler::new(
            Forecasts::Board(shared.clone()),
            settings,
            metrics,
            clock,
            shutdown.clone(),
        );
        let mut servers = tokio::task::JoinSet::new();
        servers.spawn(serve_grpc(grpc, scaler.clone(), tls, shutdown.clone()));
        let api = crate::api::serve(http, shared.clone(), shutdown.clone());
        servers.spawn(async move { api.await.context("the HTTP server stopped") });
        let mut background = vec![tokio::spawn(forecaster.run(shutdown.clone()))];
        if !args.report_every.is_zero() {
            background.push(tokio::spawn(report(
                shared,
                scaler,
                args.report_every,
                shutdown.clone(),
            )));
        }
        serve_until_shutdown(
            servers,
            background,
            shutdown,
            args.forecaster.shutdown_timeout,
        )
        .await
    })
}

/// Logs, for every workload, what was seen, what is forecast and what the
/// scaler would answer KEDA now: the replica decisions, as they happen.
async fn report(
    shared: std::sync::Arc<Shared>,
    scaler: Scaler,
    every: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    // The first report after a second: by then the first forecast is in.
    let first = tokio::time::Instant::now() + Duration::from_secs(1);
    let mut ticker = tokio::time::interval_at(first, every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = shared.clock.now();
        for view in shared.board.all() {
            let Some(snapshot) = &view.snapshot else {
                continue;
            };
            let next = snapshot.values.first().copied().unwrap_or(f64::NAN);
            let peak = snapshot.values.iter().copied().fold(f64::NAN, f64::max);
            match scaler.decide_now(snapshot) {
                Ok(d) => tracing::info!(
                    workload = %view.config.name,
                    at = %now.format("%Y-%m-%d %H:%M"),
                    observed = snapshot.last_observed.unwrap_or(f64::NAN),
                    forecast_next = format!("{next:.3}"),
                    forecast_peak = format!("{peak:.3}"),
                    replicas_for_keda = d.replicas,
                    lead_minutes = snapshot.lead_time_seconds / 60,
                    active = d.active,
                    "decision"
                ),
                Err(e) => tracing::warn!(workload = %view.config.name, reason = %e, "no decision"),
            }
        }
    }
}
