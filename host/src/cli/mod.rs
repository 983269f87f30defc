//! The `kedastral` command line: flags (every one with an environment
//! variable) and the commands that run on them. The services' commands live
//! in their own modules: [`forecaster`], [`scaler`] and [`run`] (both in
//! one process).

pub mod forecaster;
pub mod run;
pub mod scaler;
pub mod template;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::backtest::{self, BacktestConfig, BacktestReport, OriginFailure};
use crate::history;
use crate::model::cache::ComponentCache;
use crate::model::{
    Forecast, ForecastRequest, Guard, LoadedModel, ModelInfo, ModelRuntime, ModelSource, Retry,
    RuntimeLimits, Series,
};
use crate::shadow::{Selection, Shadow, ShadowConfig};

#[derive(Debug, Parser)]
#[command(
    name = "kedastral",
    version,
    about = "Predictive autoscaling for Kubernetes: forecasts from sandboxed WebAssembly models"
)]
pub struct Cli {
    /// Log level or filter (`error`, `warn`, `info`, `debug`, or a tracing
    /// filter) [default: `info` for services, `warn` for other commands].
    #[arg(long, env = "KEDASTRAL_LOG_LEVEL", global = true)]
    pub log_level: Option<String>,

    /// Log lines as text or as JSON objects (one per line).
    #[arg(
        long,
        env = "KEDASTRAL_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Cli {
    /// The log filter: the flag, else `info` for services and `warn` for
    /// one-shot commands.
    pub fn log_filter(&self) -> &str {
        match (&self.log_level, &self.command) {
            (Some(level), _) => level,
            (None, Command::Forecaster(_) | Command::Scaler(_) | Command::Run(_)) => "info",
            (None, _) => "warn",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the forecasting service: collect from Prometheus, forecast, plan
    /// replicas, serve them over HTTP.
    Forecaster(Box<forecaster::ForecasterArgs>),
    /// Run the KEDA External Scaler (gRPC), reading forecasts from a
    /// forecaster or Redis.
    Scaler(Box<scaler::ScalerArgs>),
    /// Forecaster and scaler in one process; by default on a replay of the
    /// bundled trace, needing neither Prometheus nor Redis.
    Run(Box<run::RunArgs>),
    /// Forecast a history read from CSV and print the forecast.
    Forecast(ForecastArgs),
    /// Evaluate a model on a history by rolling origins: accuracy against
    /// seasonal naive, interval coverage, and capacity against a reactive policy.
    Backtest(BacktestArgs),
    /// Work with model components.
    #[command(subcommand)]
    Model(ModelCommand),
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Start a model project (Rust or Python) that builds into a component
    /// as it is.
    New {
        /// Directory to create.
        dir: PathBuf,
        #[arg(
            long,
            env = "KEDASTRAL_MODEL_LANGUAGE",
            value_enum,
            default_value = "rust"
        )]
        language: template::Language,
        /// Model name [default: the directory's name].
        #[arg(long, env = "KEDASTRAL_MODEL_NAME")]
        name: Option<String>,
    },
    /// Print what a model component says about itself.
    Inspect {
        /// A built-in model name or a path to a .wasm component.
        model: String,
        #[arg(long, env = "KEDASTRAL_FORMAT", value_enum, default_value = "text")]
        format: ReportFormat,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
}

/// How models run: shared by every command that runs one.
#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// Longest one model call may run before it is stopped.
    #[arg(long, env = "KEDASTRAL_MODEL_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub model_timeout: Duration,

    /// Most memory one model instance may use (e.g. `128MiB`, `1GiB`).
    #[arg(long, env = "KEDASTRAL_MODEL_MEMORY", default_value = "128MiB", value_parser = parse_bytes)]
    pub model_memory: usize,

    /// Where precompiled models are kept [default: $XDG_CACHE_HOME/kedastral/models
    /// or ~/.cache/kedastral/models].
    #[arg(long, env = "KEDASTRAL_MODEL_CACHE_DIR")]
    pub model_cache_dir: Option<PathBuf>,

    /// Compile models at every start instead of caching them.
    #[arg(long, env = "KEDASTRAL_NO_MODEL_CACHE")]
    pub no_model_cache: bool,
}

impl RuntimeArgs {
    pub fn runtime(&self) -> anyhow::Result<ModelRuntime> {
        let cache = if self.no_model_cache {
            ComponentCache::disabled()
        } else {
            ComponentCache::new(
                self.model_cache_dir
                    .clone()
                    .or_else(ComponentCache::default_dir),
            )
        };
        ModelRuntime::new(
            RuntimeLimits {
                memory_bytes: self.model_memory,
                timeout: self.model_timeout,
            },
            cache,
        )
    }
}

/// The model and its input: shared by `forecast` and `backtest`.
#[derive(Debug, Args)]
pub struct ModelInputArgs {
    /// Built-in model (`baseline`, `arima`), `auto` (every built-in in
    /// shadow, the best one lately served) or path to a .wasm component.
    #[arg(long, env = "KEDASTRAL_MODEL", default_value = "baseline")]
    pub model: String,

    /// History as `timestamp,value` CSV (RFC 3339 or Unix seconds), or for
    /// `backtest` a folder of them (each judged, then all together)
    /// [default: the bundled trace, NASA web server requests per second per
    /// minute, July 1995].
    #[arg(long, env = "KEDASTRAL_INPUT")]
    pub input: Option<PathBuf>,

    /// Steps to forecast (a count; the forecaster's `--horizon` is a
    /// duration, hence another variable).
    #[arg(long, env = "KEDASTRAL_HORIZON_STEPS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub horizon: u32,

    /// Step of the history (e.g. `1m`) instead of the median spacing of the file.
    #[arg(long, env = "KEDASTRAL_STEP", value_parser = parse_duration)]
    pub step: Option<Duration>,

    /// Model parameter `key=value`; repeat for several.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,

    /// Most history points handed to the model (the most recent ones).
    #[arg(long, env = "KEDASTRAL_MAX_HISTORY", default_value_t = 10_080)]
    pub max_history: usize,

    /// Keep the model's own quantile bands instead of calibrating them on
    /// its errors over the recent history.
    #[arg(long, env = "KEDASTRAL_NO_CALIBRATION")]
    pub no_calibration: bool,

    /// Refuse, as implausible, a forecast above this multiple of the
    /// history's largest observation (or negative for a history never
    /// negative).
    #[arg(long, env = "KEDASTRAL_MAX_FORECAST_RATIO", default_value_t = crate::model::guard::DEFAULT_MAX_FORECAST_RATIO, value_parser = parse_ratio)]
    pub max_forecast_ratio: f64,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct ForecastArgs {
    #[command(flatten)]
    pub input: ModelInputArgs,

    /// Quantile levels for the bands, comma-separated, each in (0, 1).
    #[arg(long, env = "KEDASTRAL_QUANTILES", default_value = "0.1,0.5,0.9", value_parser = parse_levels)]
    pub quantiles: Levels,

    #[arg(long, env = "KEDASTRAL_FORMAT", value_enum, default_value = "json")]
    pub format: ForecastFormat,
}

#[derive(Debug, Args)]
pub struct BacktestArgs {
    #[command(flatten)]
    pub input: ModelInputArgs,

    /// Load one pod serves [default: a tenth of the history's 95th
    /// percentile, so busy hours need about 10 pods].
    #[arg(long, env = "KEDASTRAL_TARGET_PER_POD")]
    pub target_per_pod: Option<f64>,

    /// Size pods on this forecast quantile (e.g. 0.9) instead of the point
    /// forecast.
    #[arg(long, env = "KEDASTRAL_QUANTILE_LEVEL", value_parser = parse_level)]
    pub quantile_level: Option<f64>,

    /// Most rolling origins to evaluate.
    #[arg(long, env = "KEDASTRAL_ORIGINS", default_value_t = 1_000)]
    pub origins: usize,

    /// Time between asking for pods and their serving load: each capacity
    /// decision covers the stride that starts this long after it (`0s`
    /// rounds up to none; otherwise to whole steps).
    #[arg(long, env = "KEDASTRAL_POD_START_DELAY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub pod_start_delay: Duration,

    /// Steps between origins, which is also how long each capacity decision
    /// holds [default: the steps in 5 minutes, at least 1].
    #[arg(long, env = "KEDASTRAL_STRIDE")]
    pub stride: Option<usize>,

    /// Central interval levels whose coverage is checked.
    #[arg(long, env = "KEDASTRAL_INTERVALS", default_value = "0.8,0.9", value_parser = parse_levels)]
    pub intervals: Levels,

    #[arg(long, env = "KEDASTRAL_FORMAT", value_enum, default_value = "text")]
    pub format: ReportFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ForecastFormat {
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

/// Ascending, unique levels in (0, 1).
#[derive(Debug, Clone)]
pub struct Levels(pub Vec<f64>);

fn parse_levels(s: &str) -> Result<Levels, String> {
    let mut levels = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        levels.push(parse_level(part)?);
    }
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    Ok(Levels(levels))
}

pub(crate) fn parse_level(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(format!("{v} is not strictly between 0 and 1"))
    }
}

pub(crate) fn parse_param(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("`{s}` has an empty key"));
    }
    Ok((k.to_owned(), v.trim().to_owned()))
}

/// Durations with units: `500ms`, `30s`, `5m`, `1h`, `1d`, `1w`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| format!("`{s}`: {e}"))?;
    if d.is_zero() {
        return Err(format!("`{s}` is zero"));
    }
    Ok(d)
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let ratio = s.parse::<f64>().map_err(|e| format!("`{s}`: {e}"))?;
    crate::model::guard::check_max_forecast_ratio(ratio)
}

fn parse_bytes(s: &str) -> Result<usize, String> {
    let size: bytesize::ByteSize = s.trim().parse().map_err(|e| format!("`{s}`: {e}"))?;
    let bytes = usize::try_from(size.as_u64()).map_err(|_| format!("`{s}` is too large"))?;
    if bytes < 1024 * 1024 {
        return Err(format!("`{s}` is below 1MiB, too little for any model"));
    }
    Ok(bytes)
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Forecaster(args) => forecaster::run(*args),
        Command::Scaler(args) => scaler::run(*args),
        Command::Run(args) => run::run(*args),
        Command::Forecast(args) => forecast(args),
        Command::Backtest(args) => run_backtest(args),
        Command::Model(ModelCommand::New {
            dir,
            language,
            name,
        }) => {
            let files = template::new_model(&dir, language, name.as_deref())?;
            for f in &files {
                println!("wrote {}", f.display());
            }
            println!("next: see {}", dir.join("README.md").display());
            Ok(())
        }
        Command::Model(ModelCommand::Inspect {
            model,
            format,
            runtime,
        }) => inspect(&model, format, &runtime),
    }
}

fn load_model(runtime: &ModelRuntime, source: &ModelSource) -> anyhow::Result<LoadedModel> {
    let model = runtime.load(source)?;
    tracing::info!(model = model.label(), name = %model.info().name,
        version = %model.info().version, compile = ?model.compile_outcome(), "model loaded");
    Ok(model)
}

/// What `--model` names: one model, or for `auto` every built-in in
/// shadow with the best one served.
struct Models {
    info: ModelInfo,
    models: Vec<LoadedModel>,
}

impl Models {
    fn load(runtime: &ModelRuntime, args: &ModelInputArgs) -> anyhow::Result<Self> {
        let sources = crate::model::source::candidates(&args.model);
        if sources.len() > 1 && !args.params.is_empty() {
            bail!(
                "--param is for one model; with --model auto every candidate runs on its defaults"
            );
        }
        let models = sources
            .iter()
            .map(|source| load_model(runtime, source))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let info = if models.len() == 1 {
            models[0].info().clone()
        } else {
            let names: Vec<&str> = models.iter().map(|m| m.info().name.as_str()).collect();
            ModelInfo::new(
                crate::model::source::AUTO,
                env!("CARGO_PKG_VERSION"),
                &format!(
                    "serves whichever of {} or their mean forecast best lately",
                    names.join(", ")
                ),
                models
                    .iter()
                    .map(|m| m.info().min_history)
                    .min()
                    .unwrap_or(1),
            )
        };
        Ok(Self { info, models })
    }

    /// Forecasts `request` as the service would: the shadow evaluation on
    /// the history (choice and calibration), then the served forecast.
    /// `breakers` outlive it, so a folder's traces share them.
    fn forecaster<'a>(
        &'a self,
        args: &ModelInputArgs,
        breakers: &'a mut Breakers,
    ) -> ShadowRunner<'a> {
        let mut config = ShadowConfig::for_horizon(args.horizon, args.max_history);
        config.calibrate = !args.no_calibration;
        let names = self.models.iter().map(|m| m.info().name.clone()).collect();
        ShadowRunner {
            shadow: Shadow::new(names, config),
            models: &self.models,
            breakers,
        }
    }

    /// A breaker per candidate that never lets a call through again after a
    /// fault: a command ends within about one deadline of a model that
    /// hangs, rather than waiting one per shadow origin (or per trace).
    fn breakers(&self, args: &ModelInputArgs) -> Breakers {
        Breakers {
            guards: self
                .models
                .iter()
                .map(|m| Guard::new(m.label(), Retry::Never, args.max_forecast_ratio))
                .collect(),
        }
    }
}

/// One command's breakers, a guard per candidate.
struct Breakers {
    guards: Vec<Guard>,
}

/// The shadow evaluation and the served forecast, as the forecaster runs
/// them, through the command's breakers.
struct ShadowRunner<'a> {
    shadow: Shadow,
    models: &'a [LoadedModel],
    breakers: &'a mut Breakers,
}

impl ShadowRunner<'_> {
    fn forecast(&mut self, request: &ForecastRequest) -> Result<Forecast, OriginFailure> {
        let now = chrono::Utc::now();
        let models = self.models;
        let guards = &mut self.breakers.guards;
        let tripped_before: Vec<bool> = guards.iter().map(Guard::tripped).collect();
        let answer = self.shadow.forecast(request, None, &mut |i, r| {
            guards[i].call(now, r, |r| models[i].forecast(r))
        });
        // With `Retry::Never`, a tripped guard stays open: a candidate that
        // tripped in this call is left out from now on.
        for (i, guard) in guards.iter().enumerate() {
            if let Some(fault) = guard.suspended(now)
                && !tripped_before[i]
                && models.len() > 1
            {
                tracing::warn!(candidate = %models[i].info().name, error = %fault,
                    "candidate left out for the rest of the run after a fault");
            }
        }
        answer.map_err(|e| {
            // Once every candidate is held back, no later origin can be
            // forecast: stop with the fault that did it.
            if guards.iter().all(Guard::tripped) {
                OriginFailure::Stop(e.to_string())
            } else {
                OriginFailure::Skip(e.to_string())
            }
        })
    }
}

fn load_history(args: &ModelInputArgs) -> anyhow::Result<Series> {
    let step = step_seconds(args)?;
    Ok(match &args.input {
        Some(path) => history::load_csv(path, step)?,
        None => history::parse_csv(history::BUNDLED_TRACE, history::BUNDLED_TRACE_NAME, step)?,
    })
}

/// `--step` in whole seconds, if given.
fn step_seconds(args: &ModelInputArgs) -> anyhow::Result<Option<u32>> {
    Ok(match args.step {
        Some(d) => Some(
            u32::try_from(d.as_secs())
                .ok()
                .filter(|&s| s > 0)
                .with_context(|| {
                    format!("--step {d:?} must be a whole number of seconds, at least 1s")
                })?,
        ),
        None => None,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ForecastOutput<'a> {
    model: ModelRef<'a>,
    /// Time of `values[0]`: one step after the last input point.
    start: String,
    step_seconds: u32,
    horizon: u32,
    values: &'a [f64],
    quantiles: Vec<BandOutput<'a>>,
    /// The candidates' recent errors, which one served, and whether the
    /// bands are calibrated.
    selection: Selection,
}

#[derive(Serialize)]
struct ModelRef<'a> {
    name: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
struct BandOutput<'a> {
    level: f64,
    values: &'a [f64],
}

fn forecast(args: ForecastArgs) -> anyhow::Result<()> {
    let series = load_history(&args.input)?;
    let runtime = args.input.runtime.runtime()?;
    let models = Models::load(&runtime, &args.input)?;
    let history = series.tail(args.input.max_history.max(1));
    let request = ForecastRequest {
        horizon: args.input.horizon,
        quantiles: args.quantiles.0.clone(),
        params: args.input.params.clone(),
        history,
    };
    // The shadow origins come from the same history the forecast is made
    // from, so the choice and the bands use nothing the user did not give.
    let mut breakers = models.breakers(&args.input);
    let mut runner = models.forecaster(&args.input, &mut breakers);
    let forecast = runner
        .forecast(&request)
        .map_err(|e| anyhow::Error::msg(e.to_string()))?;
    let selection = runner.shadow.selection();
    let first_time = request.history.time_of(request.history.len());
    let mut out = std::io::stdout().lock();
    match args.format {
        ForecastFormat::Json => {
            let output = forecast_output(&models.info, &request, &forecast, first_time, selection);
            serde_json::to_writer_pretty(&mut out, &output)?;
            writeln!(out)?;
        }
        ForecastFormat::Csv => {
            write!(out, "timestamp,value")?;
            for band in &forecast.quantiles {
                write!(out, ",q{}", band.level)?;
            }
            writeln!(out)?;
            for (i, v) in forecast.values.iter().enumerate() {
                let t = first_time + i as i64 * i64::from(request.history.step_seconds);
                write!(out, "{},{v}", rfc3339(t))?;
                for band in &forecast.quantiles {
                    write!(out, ",{}", band.values[i])?;
                }
                writeln!(out)?;
            }
        }
    }
    Ok(())
}

fn forecast_output<'a>(
    info: &'a ModelInfo,
    request: &ForecastRequest,
    forecast: &'a Forecast,
    first_time: i64,
    selection: Selection,
) -> ForecastOutput<'a> {
    ForecastOutput {
        model: ModelRef {
            name: &info.name,
            version: &info.version,
        },
        start: rfc3339(first_time),
        step_seconds: request.history.step_seconds,
        horizon: request.horizon,
        values: &forecast.values,
        quantiles: forecast
            .quantiles
            .iter()
            .map(|b| BandOutput {
                level: b.level,
                values: &b.values,
            })
            .collect(),
        selection,
    }
}

fn rfc3339(unix_seconds: i64) -> String {
    chrono::DateTime::from_timestamp(unix_seconds, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| unix_seconds.to_string())
}

/// A tenth of the history's 95th percentile, so busy hours need about 10
/// pods: a sensible scale for a trace whose real pod capacity is unknown.
pub(crate) fn default_target_per_pod(series: &Series) -> f64 {
    let mut observed: Vec<f64> = series
        .values
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .collect();
    kedastral_model_sdk::stats::sort_finite(&mut observed);
    match kedastral_model_sdk::stats::quantile_sorted(&observed, 0.95) {
        Some(p95) if p95 > 0.0 => p95 / 10.0,
        _ => 1.0,
    }
}

fn run_backtest(args: BacktestArgs) -> anyhow::Result<()> {
    let runtime = args.input.runtime.runtime()?;
    let models = Models::load(&runtime, &args.input)?;
    if let Some(dir) = args.input.input.as_ref().filter(|p| p.is_dir()) {
        return run_backtest_folder(&args, &models, dir);
    }
    let series = load_history(&args.input)?;
    let mut breakers = models.breakers(&args.input);
    let report = backtest_one(&args, &models, &series, &mut breakers)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        ReportFormat::Json => {
            #[derive(Serialize)]
            struct Output<'a> {
                model: ModelRef<'a>,
                #[serde(flatten)]
                report: &'a BacktestReport,
            }
            let info = &models.info;
            serde_json::to_writer_pretty(
                &mut out,
                &Output {
                    model: ModelRef {
                        name: &info.name,
                        version: &info.version,
                    },
                    report: &report,
                },
            )?;
            writeln!(out)?;
        }
        ReportFormat::Text => write_backtest_text(&mut out, &models.info, &report)?,
    }
    Ok(())
}

/// One history's backtest with the flags' settings; the target per pod and
/// the stride default per history, so traces of any scale and step compare.
fn backtest_one(
    args: &BacktestArgs,
    models: &Models,
    series: &Series,
    breakers: &mut Breakers,
) -> anyhow::Result<BacktestReport> {
    let target_per_pod = match args.target_per_pod {
        Some(t) if t.is_finite() && t > 0.0 => t,
        Some(t) => bail!("--target-per-pod {t} must be a positive number"),
        None => default_target_per_pod(series),
    };
    let stride = args
        .stride
        .unwrap_or_else(|| (300 / series.step_seconds.max(1)).max(1) as usize);
    let config = BacktestConfig {
        horizon: args.input.horizon,
        origins: args.origins,
        stride,
        max_history: args.input.max_history,
        intervals: args.intervals.0.clone(),
        target_per_pod,
        sizing_quantile: args.quantile_level,
        pod_start_delay: args
            .pod_start_delay
            .as_secs()
            .div_ceil(u64::from(series.step_seconds.max(1))) as usize,
        params: args.input.params.clone(),
    };
    let mut runner = models.forecaster(&args.input, breakers);
    let mut report = backtest::run(series, &config, models.info.min_history as usize, |r| {
        runner.forecast(r)
    })?;
    report.selection = Some(runner.shadow.selection());
    Ok(report)
}

/// Per trace and over all of them: what a folder of histories says.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FolderReport<'a> {
    model: ModelRef<'a>,
    traces: Vec<TraceReport>,
    aggregate: Aggregate,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TraceReport {
    trace: String,
    #[serde(flatten)]
    report: BacktestReport,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Aggregate {
    traces: usize,
    /// Geometric mean over traces of the model's MASE.
    geometric_mean_mase: Option<f64>,
    /// Geometric mean over traces of MASE(model) / MASE(seasonal naive):
    /// below 1, the model beats seasonal naive on the typical trace.
    geometric_mean_mase_ratio: Option<f64>,
    /// Traces where the model's MASE is below seasonal naive's.
    beats_seasonal_naive: usize,
    /// Means over traces.
    mean_smape: Option<f64>,
    mean_coverage: Vec<backtest::Coverage>,
    predictive_under_provisioned_share: f64,
    reactive_under_provisioned_share: f64,
    predictive_over_provisioned_pod_minutes: f64,
    reactive_over_provisioned_pod_minutes: f64,
}

fn geometric_mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let logs: Option<Vec<f64>> = values
        .map(|v| v.filter(|x| *x > 0.0).map(f64::ln))
        .collect();
    let logs = logs?;
    (!logs.is_empty()).then(|| (logs.iter().sum::<f64>() / logs.len() as f64).exp())
}

fn aggregate(traces: &[TraceReport]) -> Aggregate {
    let n = traces.len().max(1) as f64;
    let reports = || traces.iter().map(|t| &t.report);
    let smapes: Option<Vec<f64>> = reports().map(|r| r.model.smape).collect();
    let coverage = traces.first().map_or_else(Vec::new, |t| {
        t.report
            .coverage
            .iter()
            .enumerate()
            .map(|(i, c)| backtest::Coverage {
                level: c.level,
                coverage: reports().map(|r| r.coverage[i].coverage).sum::<f64>() / n,
            })
            .collect()
    });
    Aggregate {
        traces: traces.len(),
        geometric_mean_mase: geometric_mean(reports().map(|r| r.model.mase)),
        geometric_mean_mase_ratio: geometric_mean(
            reports().map(|r| r.model.mase.zip(r.seasonal_naive.mase).map(|(m, s)| m / s)),
        ),
        beats_seasonal_naive: reports()
            .filter(|r| r.model.mae < r.seasonal_naive.mae)
            .count(),
        mean_smape: smapes.map(|s| s.iter().sum::<f64>() / n),
        mean_coverage: coverage,
        predictive_under_provisioned_share: reports()
            .map(|r| r.capacity.predictive.under_provisioned_share)
            .sum::<f64>()
            / n,
        reactive_under_provisioned_share: reports()
            .map(|r| r.capacity.reactive.under_provisioned_share)
            .sum::<f64>()
            / n,
        predictive_over_provisioned_pod_minutes: reports()
            .map(|r| r.capacity.predictive.over_provisioned_pod_minutes)
            .sum(),
        reactive_over_provisioned_pod_minutes: reports()
            .map(|r| r.capacity.reactive.over_provisioned_pod_minutes)
            .sum(),
    }
}

/// `backtest --input DIR`: every `*.csv` in it, a line each, and the
/// aggregate over them.
fn run_backtest_folder(
    args: &BacktestArgs,
    models: &Models,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("--input {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        bail!("--input {}: no .csv files in it", dir.display());
    }
    let step = step_seconds(&args.input)?;
    // One set of breakers for the folder: a model that hangs on one trace is
    // not called again on the next.
    let mut breakers = models.breakers(&args.input);
    let mut traces = Vec::with_capacity(paths.len());
    for path in &paths {
        let series = history::load_csv(path, step)?;
        let report = backtest_one(args, models, &series, &mut breakers)
            .with_context(|| format!("{}", path.display()))?;
        let trace = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        traces.push(TraceReport { trace, report });
    }
    let aggregate = aggregate(&traces);
    let info = &models.info;
    let mut out = std::io::stdout().lock();
    match args.format {
        ReportFormat::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &FolderReport {
                    model: ModelRef {
                        name: &info.name,
                        version: &info.version,
                    },
                    traces,
                    aggregate,
                },
            )?;
            writeln!(out)?;
        }
        ReportFormat::Text => write_folder_text(&mut out, info, &traces, &aggregate)?,
    }
    Ok(())
}

fn write_folder_text(
    out: &mut impl Write,
    info: &ModelInfo,
    traces: &[TraceReport],
    a: &Aggregate,
) -> std::io::Result<()> {
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("n/a".to_owned(), |v| format!("{v:.digits$}"));
    let pct = |v: f64| format!("{:.1}%", v * 100.0);
    writeln!(
        out,
        "model {} {} on {} traces\n",
        info.name, info.version, a.traces
    )?;
    writeln!(
        out,
        "{:<28}{:>8}{:>8}{:>8}{:>8}  {:<14}{:>17}{:>21}  served",
        "trace",
        "MASE",
        "naive",
        "ratio",
        "sMAPE",
        "coverage",
        "under-prov p/r",
        "over pod-min p/r",
    )?;
    for t in traces {
        let r = &t.report;
        let ratio = r.model.mase.zip(r.seasonal_naive.mase).map(|(m, s)| m / s);
        let coverage: Vec<String> = r.coverage.iter().map(|c| pct(c.coverage)).collect();
        let c = &r.capacity;
        writeln!(
            out,
            "{:<28}{:>8}{:>8}{:>8}{:>8}  {:<14}{:>17}{:>21}  {}",
            t.trace,
            opt(r.model.mase, 3),
            opt(r.seasonal_naive.mase, 3),
            opt(ratio, 3),
            r.model.smape.map_or("n/a".to_owned(), pct),
            coverage.join(" "),
            format!(
                "{} / {}",
                pct(c.predictive.under_provisioned_share),
                pct(c.reactive.under_provisioned_share)
            ),
            format!(
                "{:.0} / {:.0}",
                c.predictive.over_provisioned_pod_minutes, c.reactive.over_provisioned_pod_minutes
            ),
            r.selection.as_ref().map_or("", |s| s.chosen.as_str()),
        )?;
    }
    let coverage: Vec<String> = a.mean_coverage.iter().map(|c| pct(c.coverage)).collect();
    writeln!(
        out,
        "\naggregate: geometric mean MASE {}, of MASE / seasonal naive's {}; beats seasonal naive \
         on {} of {}; mean sMAPE {}; mean coverage {}; under-provisioned {} predictive, {} reactive",
        opt(a.geometric_mean_mase, 3),
        opt(a.geometric_mean_mase_ratio, 3),
        a.beats_seasonal_naive,
        a.traces,
        a.mean_smape.map_or("n/a".to_owned(), pct),
        coverage.join(" / "),
        pct(a.predictive_under_provisioned_share),
        pct(a.reactive_under_provisioned_share),
    )?;
    Ok(())
}

fn write_backtest_text(
    out: &mut impl Write,
    info: &ModelInfo,
    r: &BacktestReport,
) -> std::io::Result<()> {
    let mase = |m: Option<f64>| m.map_or("n/a".to_owned(), |v| format!("{v:.3}"));
    writeln!(
        out,
        "model {} {}: {} origins ({} failed), horizon {} x {}s, stride {}, season {} steps",
        info.name,
        info.version,
        r.origins,
        r.failed_origins,
        r.horizon,
        r.step_seconds,
        r.stride,
        r.season_steps
    )?;
    if let Some(f) = &r.first_failure {
        writeln!(out, "first failure: {f}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "accuracy ({} points)     MAE          RMSE         MASE     sMAPE",
        r.model.points
    )?;
    for (name, a) in [
        (info.name.as_str(), &r.model),
        ("seasonal naive", &r.seasonal_naive),
    ] {
        writeln!(
            out,
            "  {name:<22} {:<12.4} {:<12.4} {:<8} {}",
            a.mae,
            a.rmse,
            mase(a.mase),
            a.smape
                .map_or("n/a".to_owned(), |v| format!("{:.1}%", v * 100.0))
        )?;
    }
    writeln!(out)?;
    writeln!(out, "interval coverage")?;
    for c in &r.coverage {
        writeln!(
            out,
            "  {:>3.0}% interval          {:.1}%",
            c.level * 100.0,
            c.coverage * 100.0
        )?;
    }
    writeln!(out)?;
    let c = &r.capacity;
    let sized_on = c
        .sizing_quantile
        .map_or("the point forecast".to_owned(), |q| {
            format!("p{}", q * 100.0)
        });
    writeln!(
        out,
        "capacity: {} steps, {} per pod, pods sized on {sized_on}, ready {} steps after asking",
        c.steps, c.target_per_pod, c.pod_start_delay_steps
    )?;
    writeln!(
        out,
        "  {:<24}{:>18}{:>18}{:>12}{:>16}{:>17}",
        "",
        "under-provisioned",
        "over pod-minutes",
        "pod-steps",
        "unserved load",
        "scaling changes"
    )?;
    for (name, o) in [
        ("predictive", &c.predictive),
        ("reactive (last value)", &c.reactive),
    ] {
        writeln!(
            out,
            "  {name:<24}{:>17.1}%{:>18.0}{:>12.0}{:>15.2}%{:>17}",
            o.under_provisioned_share * 100.0,
            o.over_provisioned_pod_minutes,
            o.pod_steps,
            o.unserved_load_share * 100.0,
            o.scaling_changes
        )?;
    }
    if let Some(selection) = &r.selection {
        writeln!(out)?;
        write_selection(out, selection)?;
    }
    Ok(())
}

/// The shadow evaluation at the last origin: what served, what scored.
fn write_selection(out: &mut impl Write, s: &Selection) -> std::io::Result<()> {
    let scaling = match s.error_scaling {
        Some(0.0) => ", errors as they are",
        Some(1.0) => ", errors in proportion to the forecast",
        Some(_) => ", errors scaled by the forecast's square root",
        None => "",
    };
    writeln!(
        out,
        "at the last origin: serving {} ({} switches), bands {}{scaling}; mean absolute error over \
         {} shadow origins:",
        s.chosen,
        s.switches,
        if s.calibrated {
            "calibrated"
        } else {
            "the model's own"
        },
        s.judged_origins
    )?;
    for c in &s.candidates {
        let mae = c.mae.map_or("n/a".to_owned(), |m| format!("{m:.4}"));
        let failed = if c.failures > 0 {
            format!(" ({} failed)", c.failures)
        } else {
            String::new()
        };
        writeln!(out, "  {:<24}{mae}{failed}", c.name)?;
    }
    Ok(())
}

fn inspect(model: &str, format: ReportFormat, runtime: &RuntimeArgs) -> anyhow::Result<()> {
    let runtime = runtime.runtime()?;
    let model = load_model(&runtime, &ModelSource::parse(model))?;
    let info = model.info();
    let mut out = std::io::stdout().lock();
    match format {
        ReportFormat::Json => {
            #[derive(Serialize)]
            #[serde(rename_all = "camelCase")]
            struct Param<'a> {
                name: &'a str,
                default: &'a str,
                description: &'a str,
            }
            #[derive(Serialize)]
            #[serde(rename_all = "camelCase")]
            struct Info<'a> {
                name: &'a str,
                version: &'a str,
                description: &'a str,
                min_history: u32,
                params: Vec<Param<'a>>,
                world: &'static str,
            }
            let output = Info {
                name: &info.name,
                version: &info.version,
                description: &info.description,
                min_history: info.min_history,
                params: info
                    .params
                    .iter()
                    .map(|p| Param {
                        name: &p.name,
                        default: &p.default_value,
                        description: &p.description,
                    })
                    .collect(),
                world: crate::model::runtime::WORLD,
            };
            serde_json::to_writer_pretty(&mut out, &output)?;
            writeln!(out)?;
        }
        ReportFormat::Text => {
            writeln!(out, "name:        {}", info.name)?;
            writeln!(out, "version:     {}", info.version)?;
            writeln!(out, "description: {}", info.description)?;
            let plural = if info.min_history == 1 { "" } else { "s" };
            writeln!(
                out,
                "min history: {} observed point{plural}",
                info.min_history
            )?;
            writeln!(out, "world:       {}", crate::model::runtime::WORLD)?;
            if info.params.is_empty() {
                writeln!(out, "parameters:  none")?;
            } else {
                writeln!(out, "parameters:")?;
                for p in &info.params {
                    writeln!(
                        out,
                        "  {} (default `{}`): {}",
                        p.name, p.default_value, p.description
                    )?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_units_and_refuse_zero() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn levels_and_params_parse_strictly() {
        assert_eq!(parse_levels("0.9, 0.1,0.5").unwrap().0, vec![0.1, 0.5, 0.9]);
        assert!(parse_levels("0.1,1.0").is_err());
        assert_eq!(
            parse_param("order=1,1,1"),
            Ok(("order".into(), "1,1,1".into()))
        );
        assert!(parse_param("order").is_err());
        assert!(parse_param("=3").is_err());
    }

    #[test]
    fn memory_sizes_parse_with_units() {
        assert_eq!(parse_bytes("128MiB"), Ok(128 * 1024 * 1024));
        assert!(parse_bytes("12").is_err());
        assert!(parse_bytes("lots").is_err());
    }
}
