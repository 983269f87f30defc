//! `kedastral run`: forecaster and scaler in one process, sharing memory.
//! By default the data is a replay of a recorded trace, played faster than
//! real time, so it needs neither Prometheus nor Redis.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::DateTime;
use clap::{Args, ValueEnum};

use super::forecaster::ForecasterArgs;
use super::scaler::GrpcArgs;
use crate::backtest::report::default_target_per_pod;
use crate::clock::Clock;
use crate::collect::{ReplaySource, Source};
use crate::config::{self, WorkloadFile};
use crate::history;
use crate::service::{self, Together, async_runtime, bind, shutdown_on_signals};

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
    let settings = args.grpc.settings(None, None, None)?;
    let tls = args.grpc.tls()?;
    let description = source.describe();
    let mut forecaster = f.build(workloads, source, clock)?;
    if let Some(path) = &f.config {
        forecaster = forecaster.reload_from(path.clone());
    }
    let together = Together {
        forecaster,
        settings,
        tls,
        report_every: args.report_every,
        source: description,
    };
    tokio.block_on(async move {
        let http = bind("--listen", &args.forecaster.listen).await?;
        let grpc = bind("--grpc-listen", &args.grpc.grpc_listen).await?;
        let shutdown = shutdown_on_signals()?;
        service::together(
            together,
            http,
            grpc,
            shutdown,
            args.forecaster.shutdown_timeout,
        )
        .await
    })
}
