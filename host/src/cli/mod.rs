//! The `kedastral` command line: flags (every one with an environment
//! variable) and the commands that run on them. The services' commands live
//! in their own modules: [`forecaster`], [`scaler`] and [`run`] (both in
//! one process).

pub mod forecaster;
pub mod run;
pub mod scaler;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::backtest::report::{self, Plan};
use crate::candidates::{CandidateError, Candidates};
use crate::history;
use crate::model::cache::ComponentCache;
use crate::model::{
    ForecastRequest, Guard, LoadedModel, ModelRuntime, ModelSource, Retry, RuntimeLimits, Series,
};
use crate::output;
use crate::shadow::ShadowConfig;
use crate::sizing::{self, Replay, Sizing};

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
        language: crate::template::Language,
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
    /// Built-in model (`baseline`, `arima`, `mstl`, `fracast`, `seasonal-naive`), `auto`
    /// (every built-in in shadow, combined by their recent errors)
    /// or path to a .wasm component.
    #[arg(long, env = "KEDASTRAL_MODEL", default_value = "baseline")]
    pub model: String,

    /// With `--model auto`, one more candidate beside its built-ins: a
    /// built-in name or a .wasm component's path, or `-NAME` to leave a
    /// built-in out (`--candidate=-fracast`); repeat for several.
    #[arg(
        long = "candidate",
        allow_hyphen_values = true,
        value_name = "MODEL",
        env = "KEDASTRAL_CANDIDATES",
        value_delimiter = ','
    )]
    pub candidates: Vec<String>,

    /// History as `timestamp,value` CSV (RFC 3339, zone-less as UTC, or Unix seconds), or for
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

/// How pods are sized: shared by `forecast` and `backtest`, with the
/// forecaster's meanings and defaults.
#[derive(Debug, Args)]
pub struct SizingArgs {
    /// Share of time ready capacity may fall below the load (`2%` or
    /// `0.02`): each history sizes on the lowest calibrated quantile band its
    /// own recent forecasts say meets it. --quantile-level or --headroom
    /// override it.
    #[arg(long, env = "KEDASTRAL_TARGET_SHORTFALL", default_value = DEFAULT_TARGET_SHORTFALL, value_parser = sizing::parse_share)]
    pub target_shortfall: f64,

    /// Size pods on this forecast quantile (e.g. 0.9) instead of an
    /// objective.
    #[arg(long, env = "KEDASTRAL_QUANTILE_LEVEL", value_parser = parse_level)]
    pub quantile_level: Option<f64>,

    /// Size pods on the point forecast times this (>= 1) instead of an
    /// objective.
    #[arg(long, env = "KEDASTRAL_HEADROOM", value_parser = parse_headroom)]
    pub headroom: Option<f64>,

    /// Time between asking for pods and their serving load: replicas for a
    /// time are asked for this long before it (rounded up to whole steps).
    #[arg(long, env = "KEDASTRAL_POD_START_DELAY", default_value = crate::config::defaults::POD_START_DELAY, value_parser = humantime::parse_duration)]
    pub pod_start_delay: Duration,

    /// How long capacity is kept after the last decision that wanted it
    /// before scaling in, like the HPA's scale-down stabilisation window.
    #[arg(long, env = "KEDASTRAL_SCALE_DOWN_STABILIZATION", default_value = crate::config::defaults::SCALE_DOWN_STABILIZATION, value_parser = humantime::parse_duration)]
    pub scale_down_stabilization: Duration,

    /// Ask for at least the replicas the last observed value needs.
    #[arg(long, env = "KEDASTRAL_REACTIVE_FLOOR", default_value_t = true, action = clap::ArgAction::Set)]
    pub reactive_floor: bool,
}

/// [`sizing::DEFAULT_TARGET_SHORTFALL`] as the flag writes it.
const DEFAULT_TARGET_SHORTFALL: &str = "3%";

impl SizingArgs {
    /// What pods are sized on: a quantile level or a headroom if given,
    /// else the objective.
    pub fn sizing(&self) -> Sizing {
        match (self.quantile_level, self.headroom) {
            (Some(q), _) => Sizing::Quantile(q),
            (None, Some(h)) => Sizing::Headroom(h),
            (None, None) => Sizing::Objective(self.target_shortfall),
        }
    }

    /// How the shadow evaluation replays sizing on `step` seconds.
    pub fn replay(&self, step: u32) -> Replay {
        let step = u64::from(step.max(1));
        Replay {
            delay_steps: self.pod_start_delay.as_secs().div_ceil(step) as usize,
            stabilization_steps: (self.scale_down_stabilization.as_secs() / step) as usize,
            reactive_floor: self.reactive_floor,
            target_per_pod: None,
        }
    }
}

fn parse_headroom(s: &str) -> Result<f64, String> {
    let h: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if h.is_finite() && h >= 1.0 {
        Ok(h)
    } else {
        Err(format!(
            "{h} must be a number >= 1 (1.2 plans for 20 % more)"
        ))
    }
}

#[derive(Debug, Args)]
pub struct ForecastArgs {
    #[command(flatten)]
    pub input: ModelInputArgs,

    #[command(flatten)]
    pub sizing: SizingArgs,

    /// Load one pod serves: the sizing level is chosen on whole pods, as
    /// the forecaster does [default: a tenth of the history's 95th
    /// percentile, so busy hours need about 10 pods].
    #[arg(long, env = "KEDASTRAL_TARGET_PER_POD")]
    pub target_per_pod: Option<f64>,

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

    #[command(flatten)]
    pub sizing: SizingArgs,

    /// Most rolling origins to evaluate.
    #[arg(long, env = "KEDASTRAL_ORIGINS", default_value_t = 1_000)]
    pub origins: usize,

    /// Steps between origins: each origin's forecast decides every step
    /// until the next [default: the steps in 5 minutes, at least 1].
    #[arg(long, env = "KEDASTRAL_STRIDE")]
    pub stride: Option<usize>,

    /// Central interval levels whose coverage is checked.
    #[arg(long, env = "KEDASTRAL_INTERVALS", default_value = "0.8,0.9", value_parser = parse_levels)]
    pub intervals: Levels,

    #[arg(long, env = "KEDASTRAL_FORMAT", value_enum, default_value = "text")]
    pub format: ReportFormat,

    /// Also write the backtest to this file as a self-contained HTML page:
    /// forecast against actual at a few origins, the capacity each policy
    /// had ready against the load, the shortfall against extra pod-time
    /// (for one history, not a folder).
    #[arg(long, env = "KEDASTRAL_BACKTEST_REPORT")]
    pub report: Option<PathBuf>,
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
            let files = crate::template::new_model(&dir, language, name.as_deref())?;
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

/// The candidates `--model` names, each loaded with a log line.
fn load_candidates(args: &ModelInputArgs) -> anyhow::Result<Candidates> {
    let runtime = args.runtime.runtime()?;
    let candidates = Candidates::load(&args.model, &args.candidates, &args.params, |_, source| {
        let model = runtime.load(source)?;
        log_loaded(&model);
        Ok(model)
    })
    .map_err(|e| match e {
        CandidateError::AutoParams => anyhow::anyhow!(
            "--param is for one model; with --model auto every candidate runs on its defaults"
        ),
        other => other.into(),
    })?;
    Ok(candidates)
}

fn log_loaded(model: &LoadedModel) {
    tracing::info!(model = model.label(), name = %model.info().name,
        version = %model.info().version, compile = ?model.compile_outcome(), "model loaded");
}

/// A breaker per candidate that never lets a call through again after a
/// fault: a command ends within about one deadline of a model that hangs,
/// rather than waiting one per shadow origin (or per trace).
fn breakers(candidates: &Candidates, args: &ModelInputArgs) -> Vec<Guard> {
    candidates.guards(Retry::Never, args.max_forecast_ratio)
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

fn forecast(args: ForecastArgs) -> anyhow::Result<()> {
    let series = load_history(&args.input)?;
    let candidates = load_candidates(&args.input)?;
    let sizing = args.sizing.sizing();
    let mut quantiles = args.quantiles.0.clone();
    if let Sizing::Quantile(q) = sizing
        && !quantiles.iter().any(|&l| (l - q).abs() < 1e-12)
    {
        quantiles.push(q);
        quantiles.sort_by(f64::total_cmp);
    }
    let target_per_pod = target_per_pod(args.target_per_pod, &series)?;
    // A delay beyond a short horizon is judged at the last step.
    let replay = Replay {
        target_per_pod: Some(target_per_pod),
        ..args.sizing.replay(series.step_seconds)
    };
    let request = ForecastRequest {
        horizon: args.input.horizon,
        quantiles,
        params: args.input.params.clone(),
        history: series.tail(args.input.max_history.max(1)),
    };
    // The shadow origins come from the same history the forecast is made
    // from, so the choice and the bands use nothing the user did not give.
    let mut guards = breakers(&candidates, &args.input);
    let mut shadow = ShadowConfig::for_horizon(args.input.horizon, args.input.max_history);
    shadow.calibrate = !args.input.no_calibration;
    shadow.sizing = Some(replay);
    shadow.dense_tail = crate::shadow::REPLAY_DENSE_TAIL;
    let mut offline = candidates.offline(shadow, &mut guards);
    let forecast = offline
        .forecast(&request)
        .map_err(|e| anyhow::Error::msg(e.to_string()))?;
    let selection = offline.shadow.selection();
    let sized = size_forecast(
        &offline.shadow,
        &args.sizing,
        target_per_pod,
        &request,
        &forecast,
    )?;
    let mut out = std::io::stdout().lock();
    match args.format {
        ForecastFormat::Json => output::write_forecast_json(
            &mut out,
            &candidates.info,
            &request,
            &forecast,
            selection,
            sized,
        )?,
        ForecastFormat::Csv => output::write_forecast_csv(&mut out, &request, &forecast, &sized)?,
    }
    Ok(())
}

/// What the default policy sizes pods on at each step of `forecast`, as
/// the forecaster would: the chosen (or given) band or headroom, and with
/// the reactive floor at least the last observed value.
fn size_forecast(
    shadow: &crate::shadow::Shadow,
    args: &SizingArgs,
    target_per_pod: f64,
    request: &ForecastRequest,
    forecast: &crate::model::Forecast,
) -> anyhow::Result<output::Sized> {
    let sizing = args.sizing();
    let mut chooser = match sizing {
        Sizing::Objective(t) => Some(sizing::Chooser::new(t)),
        _ => None,
    };
    if let Some(chooser) = chooser.as_mut() {
        shadow.warm_chooser(chooser, &request.history);
    }
    let (choice, chosen) = shadow.size(
        sizing,
        chooser.as_mut(),
        args.reactive_floor,
        args.pod_start_delay.as_secs(),
        &forecast.values,
    );
    let bands: Vec<(f64, &[f64])> = forecast
        .quantiles
        .iter()
        .map(|b| (b.level, b.values.as_slice()))
        .collect();
    let policy = crate::capacity::CapacityPolicy {
        sizing,
        ..Default::default()
    };
    let mut loads = policy.loads(&forecast.values, &bands, chosen.as_deref())?;
    let last = request.history.values.iter().rev().find(|v| !v.is_nan());
    if let Some(&floor) = last.filter(|_| args.reactive_floor) {
        for load in &mut loads {
            *load = load.max(floor);
        }
    }
    Ok(output::Sized {
        choice,
        target_per_pod,
        loads,
    })
}

/// The load one pod serves: `given`, or a tenth of `series`' 95th
/// percentile, as `backtest` assumes.
fn target_per_pod(given: Option<f64>, series: &Series) -> anyhow::Result<f64> {
    match given {
        Some(t) if !(t.is_finite() && t > 0.0) => {
            bail!("--target-per-pod {t} must be a positive number")
        }
        Some(t) => Ok(t),
        None => Ok(crate::backtest::report::default_target_per_pod(series)),
    }
}

fn backtest_plan(args: &BacktestArgs) -> anyhow::Result<Plan> {
    if let Some(t) = args.target_per_pod
        && !(t.is_finite() && t > 0.0)
    {
        bail!("--target-per-pod {t} must be a positive number");
    }
    Ok(Plan {
        horizon: args.input.horizon,
        origins: args.origins,
        stride: args.stride,
        max_history: args.input.max_history,
        intervals: args.intervals.0.clone(),
        target_per_pod: args.target_per_pod,
        sizing: args.sizing.sizing(),
        pod_start_delay: args.sizing.pod_start_delay,
        stabilization: args.sizing.scale_down_stabilization,
        reactive_floor: args.sizing.reactive_floor,
        params: args.input.params.clone(),
        calibrate: !args.input.no_calibration,
    })
}

fn run_backtest(args: BacktestArgs) -> anyhow::Result<()> {
    let plan = backtest_plan(&args)?;
    let candidates = load_candidates(&args.input)?;
    let mut guards = breakers(&candidates, &args.input);
    let info = &candidates.info;
    let mut out = std::io::stdout().lock();
    if let Some(dir) = args.input.input.as_ref().filter(|p| p.is_dir()) {
        if args.report.is_some() {
            bail!(
                "--report draws one history: give --input a CSV file rather than the folder {}",
                dir.display()
            );
        }
        let step = step_seconds(&args.input)?;
        let traces = plan
            .run_folder(dir, step, &candidates, &mut guards)
            .context("--input")?;
        let aggregate = report::aggregate(&traces);
        match args.format {
            ReportFormat::Json => {
                let folder = report::FolderReport {
                    model: report::ModelRef::of(info),
                    traces,
                    aggregate,
                };
                serde_json::to_writer_pretty(&mut out, &folder)?;
                writeln!(out)?;
            }
            ReportFormat::Text => report::write_folder_text(&mut out, info, &traces, &aggregate)?,
        }
        return Ok(());
    }
    let series = load_history(&args.input)?;
    let report = plan.run(&series, &candidates, &mut guards)?;
    match args.format {
        ReportFormat::Json => {
            let output = report::Output {
                model: report::ModelRef::of(info),
                report: &report,
            };
            serde_json::to_writer_pretty(&mut out, &output)?;
            writeln!(out)?;
        }
        ReportFormat::Text => report::write_text(&mut out, info, &report)?,
    }
    if let Some(path) = &args.report {
        let trace = args
            .input
            .input
            .as_ref()
            .and_then(|p| p.file_name())
            .map_or_else(
                || "nasa_http_1m.csv (bundled)".to_owned(),
                |n| n.to_string_lossy().into_owned(),
            );
        let page = crate::web::report::backtest(&trace, info, &series, &report).into_string();
        std::fs::write(path, page)
            .with_context(|| format!("--report: writing {}", path.display()))?;
        tracing::info!(path = %path.display(), "backtest report written");
    }
    Ok(())
}

fn inspect(model: &str, format: ReportFormat, runtime: &RuntimeArgs) -> anyhow::Result<()> {
    let model = runtime.runtime()?.load(&ModelSource::parse(model))?;
    log_loaded(&model);
    let mut out = std::io::stdout().lock();
    match format {
        ReportFormat::Json => output::write_model_json(&mut out, model.info())?,
        ReportFormat::Text => output::write_model_text(&mut out, model.info())?,
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
