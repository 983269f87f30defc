//! `kedastral forecaster`: the forecasting service, its flags and start-up.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use super::{RuntimeArgs, parse_duration, parse_level, parse_param};
use crate::clock::Clock;
use crate::collect::prometheus::MultipleSeries;
use crate::collect::{PrometheusClient, PrometheusConfig, Source};
use crate::config::{self, WorkloadConfig, WorkloadFile};
use crate::forecaster::{Forecaster, ForecasterParts};
use crate::model::catalog::ModelsDir;
use crate::service::{self, async_runtime, bind, shutdown_on_signals};
use crate::store::lease::LeaseStore;
use crate::store::redis::{RedisConfig, RedisStore};

#[derive(Debug, Args)]
pub struct ForecasterArgs {
    /// TOML file of workloads (`[[workload]]` tables, see docs/operators.md), for
    /// many workloads in one process; instead of the workload flags.
    #[arg(long, env = "KEDASTRAL_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub workload: WorkloadArgs,

    #[command(flatten)]
    pub prometheus: PrometheusArgs,

    #[command(flatten)]
    pub storage: StorageArgs,

    /// HTTP address for the API, health and metrics (`:8081` is every
    /// interface).
    #[arg(long, env = "KEDASTRAL_LISTEN", default_value = ":8081")]
    pub listen: String,

    /// Model calls that may run at once [default: the number of cores].
    #[arg(long, env = "KEDASTRAL_MODEL_SLOTS")]
    pub model_slots: Option<usize>,

    /// Folder of model components: every `.wasm` in it is loaded at
    /// start-up and a workload names one by the name its `describe` gives
    /// (`model = "my-model"`), beside the built-ins.
    #[arg(long, env = "KEDASTRAL_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,

    /// Check the configuration (workloads, models and their parameters,
    /// Prometheus and Redis settings) and exit without starting.
    #[arg(long)]
    pub check: bool,

    /// Longest wait, after SIGTERM or SIGINT, for ticks in flight and HTTP
    /// requests to finish.
    #[arg(long, env = "KEDASTRAL_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// One workload from flags. Defaults are the config file's.
#[derive(Debug, Args)]
pub struct WorkloadArgs {
    /// Workload name (letters, digits, - _ . /); required without --config.
    #[arg(long, env = "KEDASTRAL_WORKLOAD")]
    pub workload: Option<String>,
    /// Metric name shown in the API [default: the workload name].
    #[arg(long, env = "KEDASTRAL_METRIC")]
    pub metric: Option<String>,
    /// PromQL giving the workload's load as one series, e.g.
    /// `sum(rate(http_requests_total{app="checkout"}[1m]))`; required without --config.
    #[arg(long, env = "KEDASTRAL_PROM_QUERY")]
    pub prom_query: Option<String>,
    /// Step of the history and the forecast [default: 1m].
    #[arg(long, env = "KEDASTRAL_STEP")]
    pub step: Option<String>,
    /// History kept and given to the model [default: 7d].
    #[arg(long, env = "KEDASTRAL_WINDOW")]
    pub window: Option<String>,
    /// How far ahead to forecast [default: 30m].
    #[arg(long, env = "KEDASTRAL_HORIZON")]
    pub horizon: Option<String>,
    /// How often to collect and forecast [default: 1m].
    #[arg(long, env = "KEDASTRAL_INTERVAL")]
    pub interval: Option<String>,
    /// Built-in model (`baseline`, `arima`, `mstl`, `fracast`, `seasonal-naive`), `auto`
    /// (every built-in in shadow, combined by their recent errors)
    /// or path to a .wasm component
    /// [default: baseline].
    #[arg(long, env = "KEDASTRAL_MODEL")]
    pub model: Option<String>,
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
    /// How often the model forecasts anew (e.g. `5m`); between, the last
    /// forecast is served from the newest point on, while collection,
    /// planning and the live error run every tick. `0s`: every tick
    /// [default: half the horizon for `fracast` and `auto`, else 0s].
    #[arg(long, env = "KEDASTRAL_REFRESH")]
    pub refresh: Option<String>,
    /// Calibrate the quantile bands on the recent forecast errors (`false`:
    /// the model's own bands) [default: true].
    #[arg(long, env = "KEDASTRAL_CALIBRATE")]
    pub calibrate: Option<bool>,
    /// Model parameter `key=value`; repeat for several.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Refuse, as implausible, a forecast above this multiple of the
    /// window's largest observation (or negative for a series never
    /// negative) and keep serving the last good one [default: 10].
    #[arg(long, env = "KEDASTRAL_MAX_FORECAST_RATIO")]
    pub max_forecast_ratio: Option<f64>,
    /// Load one replica serves (e.g. requests per second per pod); required
    /// without --config.
    #[arg(long, env = "KEDASTRAL_TARGET_PER_POD")]
    pub target_per_pod: Option<f64>,
    /// Share of time ready capacity may fall below the load (`2%` or
    /// `0.02`): the workload sizes on the lowest calibrated quantile band its
    /// own recent forecasts say meets it [default: 3%].
    #[arg(long, env = "KEDASTRAL_TARGET_SHORTFALL", value_parser = crate::sizing::parse_share)]
    pub target_shortfall: Option<f64>,
    /// Size on the point forecast times this (>= 1) instead of an objective.
    #[arg(long, env = "KEDASTRAL_HEADROOM")]
    pub headroom: Option<f64>,
    /// Size on this forecast quantile (e.g. 0.9) instead of an objective.
    #[arg(long, env = "KEDASTRAL_QUANTILE_LEVEL", value_parser = parse_level)]
    pub quantile_level: Option<f64>,
    /// Time from asking for pods to their serving load: replicas for a time
    /// are asked for this long before it [default: 3m].
    #[arg(long, env = "KEDASTRAL_POD_START_DELAY")]
    pub pod_start_delay: Option<String>,
    /// How long capacity is kept after the last plan that wanted it before
    /// scaling in, like the HPA's scale-down stabilisation [default: 5m].
    #[arg(long, env = "KEDASTRAL_SCALE_DOWN_STABILIZATION")]
    pub scale_down_stabilization: Option<String>,
    /// Tell KEDA at least the replicas the last observed value needs
    /// [default: true].
    #[arg(long, env = "KEDASTRAL_REACTIVE_FLOOR", action = clap::ArgAction::Set)]
    pub reactive_floor: Option<bool>,
    /// Fewest replicas [default: 1].
    #[arg(long, env = "KEDASTRAL_MIN")]
    pub min: Option<u32>,
    /// Most replicas; 0 for no bound of your own, which plans at most
    /// 10 000 [default: 0].
    #[arg(long, env = "KEDASTRAL_MAX")]
    pub max: Option<u32>,
    /// Largest growth from one step to the next, as a factor [default: 2].
    #[arg(long, env = "KEDASTRAL_UP_MAX_FACTOR")]
    pub up_max_factor: Option<f64>,
    /// Largest shrink from one step to the next, in percent [default: 50].
    #[arg(long, env = "KEDASTRAL_DOWN_MAX_PERCENT")]
    pub down_max_percent: Option<f64>,
    /// Plan each step for the largest load this far ahead [default: 0s].
    #[arg(long, env = "KEDASTRAL_PREWARM_WINDOW")]
    pub prewarm_window: Option<String>,
    /// A forecast whose origin is older than this is stale; at least an
    /// interval plus a step [default: 5 intervals, or 5 steps if longer].
    #[arg(long, env = "KEDASTRAL_STALE_AFTER")]
    pub stale_after: Option<String>,
    /// How far ahead live forecast error is measured, and the scaler's
    /// window for this workload unless it sets its own [default: the pod
    /// start delay in whole steps, at least one, at most the horizon].
    #[arg(long, env = "KEDASTRAL_LEAD_TIME")]
    pub lead_time: Option<String>,
}

impl WorkloadArgs {
    /// Flags that were given, by name, to refuse mixing them with --config.
    fn given(&self) -> Vec<&'static str> {
        let flags = [
            ("--workload", self.workload.is_some()),
            ("--metric", self.metric.is_some()),
            ("--prom-query", self.prom_query.is_some()),
            ("--step", self.step.is_some()),
            ("--window", self.window.is_some()),
            ("--horizon", self.horizon.is_some()),
            ("--interval", self.interval.is_some()),
            ("--model", self.model.is_some()),
            ("--refresh", self.refresh.is_some()),
            ("--candidate", !self.candidates.is_empty()),
            ("--calibrate", self.calibrate.is_some()),
            ("--param", !self.params.is_empty()),
            ("--max-forecast-ratio", self.max_forecast_ratio.is_some()),
            ("--target-per-pod", self.target_per_pod.is_some()),
            ("--target-shortfall", self.target_shortfall.is_some()),
            ("--headroom", self.headroom.is_some()),
            ("--pod-start-delay", self.pod_start_delay.is_some()),
            (
                "--scale-down-stabilization",
                self.scale_down_stabilization.is_some(),
            ),
            ("--reactive-floor", self.reactive_floor.is_some()),
            ("--quantile-level", self.quantile_level.is_some()),
            ("--min", self.min.is_some()),
            ("--max", self.max.is_some()),
            ("--up-max-factor", self.up_max_factor.is_some()),
            ("--down-max-percent", self.down_max_percent.is_some()),
            ("--prewarm-window", self.prewarm_window.is_some()),
            ("--stale-after", self.stale_after.is_some()),
            ("--lead-time", self.lead_time.is_some()),
        ];
        flags
            .into_iter()
            .filter(|(_, given)| *given)
            .map(|(name, _)| name)
            .collect()
    }

    fn to_file(&self) -> anyhow::Result<WorkloadFile> {
        self.to_file_or(None)
    }

    /// The workload from the flags; `fallback` fills what the flags leave
    /// out (the replay in `kedastral run`), else those flags are required.
    pub(crate) fn to_file_or(
        &self,
        fallback: Option<&WorkloadFile>,
    ) -> anyhow::Result<WorkloadFile> {
        let required = |value: Option<String>, flag: &str| {
            value.with_context(|| format!("{flag} is required (or give workloads with --config)"))
        };
        Ok(WorkloadFile {
            name: required(
                self.workload.clone().or(fallback.map(|f| f.name.clone())),
                "--workload",
            )?,
            prom_query: required(
                self.prom_query
                    .clone()
                    .or(fallback.map(|f| f.prom_query.clone())),
                "--prom-query",
            )?,
            target_per_pod: self
                .target_per_pod
                .or(fallback.map(|f| f.target_per_pod))
                .context("--target-per-pod is required (or give workloads with --config)")?,
            metric: self.metric.clone(),
            step: self.step.clone().or(fallback.and_then(|f| f.step.clone())),
            window: self.window.clone(),
            horizon: self.horizon.clone(),
            interval: self.interval.clone(),
            model: self.model.clone(),
            refresh: self.refresh.clone(),
            candidates: (!self.candidates.is_empty()).then(|| self.candidates.clone()),
            calibrate: self.calibrate,
            max_forecast_ratio: self.max_forecast_ratio,
            params: self.params.iter().cloned().collect(),
            target_shortfall: self.target_shortfall.map(crate::config::Share::Number),
            headroom: self.headroom,
            quantile_level: self.quantile_level,
            pod_start_delay: self.pod_start_delay.clone(),
            scale_down_stabilization: self.scale_down_stabilization.clone(),
            reactive_floor: self.reactive_floor,
            min: self.min,
            max: self.max,
            up_max_factor: self.up_max_factor,
            down_max_percent: self.down_max_percent,
            prewarm_window: self.prewarm_window.clone(),
            stale_after: self.stale_after.clone(),
            lead_time: self.lead_time.clone(),
        })
    }
}

#[derive(Debug, Args)]
pub struct PrometheusArgs {
    /// Prometheus base URL; a path prefix is kept.
    #[arg(
        long,
        env = "KEDASTRAL_PROM_URL",
        default_value = "http://localhost:9090"
    )]
    pub prom_url: String,
    /// Bearer token sent to Prometheus.
    #[arg(long, env = "KEDASTRAL_PROM_BEARER_TOKEN", hide_env_values = true)]
    pub prom_bearer_token: Option<String>,
    /// File holding the bearer token (read at start-up), e.g. a mounted
    /// service-account token.
    #[arg(
        long,
        env = "KEDASTRAL_PROM_BEARER_TOKEN_FILE",
        conflicts_with = "prom_bearer_token"
    )]
    pub prom_bearer_token_file: Option<PathBuf>,
    /// User for HTTP basic auth.
    #[arg(long, env = "KEDASTRAL_PROM_USER", requires = "prom_password")]
    pub prom_user: Option<String>,
    /// Password for HTTP basic auth.
    #[arg(
        long,
        env = "KEDASTRAL_PROM_PASSWORD",
        hide_env_values = true,
        requires = "prom_user"
    )]
    pub prom_password: Option<String>,
    /// PEM file of CA certificates to trust for an https Prometheus.
    #[arg(long, env = "KEDASTRAL_PROM_CA_FILE")]
    pub prom_ca_file: Option<PathBuf>,
    /// Accept any TLS certificate from Prometheus (testing only).
    #[arg(long, env = "KEDASTRAL_PROM_INSECURE_SKIP_VERIFY")]
    pub prom_insecure_skip_verify: bool,
    /// Longest wait for one Prometheus request.
    #[arg(long, env = "KEDASTRAL_PROM_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub prom_timeout: Duration,
    /// Further attempts, with backoff, after a network error, timeout or 5xx.
    #[arg(long, env = "KEDASTRAL_PROM_RETRIES", default_value_t = 2)]
    pub prom_retries: usize,
    /// When a query returns several series: add them per timestamp, or refuse.
    #[arg(
        long,
        env = "KEDASTRAL_PROM_MULTIPLE_SERIES",
        value_enum,
        default_value = "sum"
    )]
    pub prom_multiple_series: MultipleSeriesArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MultipleSeriesArg {
    Sum,
    Refuse,
}

impl PrometheusArgs {
    fn config(&self) -> anyhow::Result<PrometheusConfig> {
        let url = url::Url::parse(&self.prom_url)
            .with_context(|| format!("--prom-url `{}`", self.prom_url))?;
        let bearer_token = match &self.prom_bearer_token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("--prom-bearer-token-file {}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => self.prom_bearer_token.clone(),
        };
        Ok(PrometheusConfig {
            url,
            bearer_token,
            basic_auth: self.prom_user.clone().zip(self.prom_password.clone()),
            ca_file: self.prom_ca_file.clone(),
            insecure_skip_verify: self.prom_insecure_skip_verify,
            timeout: self.prom_timeout,
            retries: self.prom_retries,
            multiple_series: match self.prom_multiple_series {
                MultipleSeriesArg::Sum => MultipleSeries::Sum,
                MultipleSeriesArg::Refuse => MultipleSeries::Refuse,
            },
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StorageKind {
    /// In this process only.
    Memory,
    /// Shared in Redis, for several replicas.
    Redis,
}

#[derive(Debug, Args)]
pub struct StorageArgs {
    /// Where snapshots are kept.
    #[arg(long, env = "KEDASTRAL_STORAGE", value_enum, default_value = "memory")]
    pub storage: StorageKind,
    #[command(flatten)]
    pub redis: RedisArgs,
}

/// How to reach Redis: shared by the forecaster and the scaler.
#[derive(Debug, Args)]
pub struct RedisArgs {
    /// Redis `host:port`, or a `redis://` or `rediss://` (TLS) URL.
    #[arg(long, env = "KEDASTRAL_REDIS_ADDR", default_value = "localhost:6379")]
    pub redis_addr: String,
    /// Redis ACL user [default: Redis's `default` user].
    #[arg(long, env = "KEDASTRAL_REDIS_USER")]
    pub redis_user: Option<String>,
    /// Redis password.
    #[arg(long, env = "KEDASTRAL_REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,
    /// Redis database number.
    #[arg(long, env = "KEDASTRAL_REDIS_DB", default_value_t = 0)]
    pub redis_db: i64,
    /// How long a snapshot stays in Redis after its last write.
    #[arg(long, env = "KEDASTRAL_REDIS_TTL", default_value = "24h", value_parser = parse_duration)]
    pub redis_ttl: Duration,
    /// Longest wait for one Redis command.
    #[arg(long, env = "KEDASTRAL_REDIS_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub redis_timeout: Duration,
    /// This replica's name in Redis leases [default: host name and process id].
    #[arg(long, env = "KEDASTRAL_REPLICA_ID")]
    pub replica_id: Option<String>,
}

impl StorageArgs {
    fn redis(&self) -> anyhow::Result<Option<RedisStore>> {
        if self.storage == StorageKind::Memory {
            return Ok(None);
        }
        Ok(Some(self.redis.store()?))
    }
}

impl RedisArgs {
    pub fn store(&self) -> anyhow::Result<RedisStore> {
        let replica = self.replica_id.clone().unwrap_or_else(default_replica_id);
        RedisStore::new(
            &RedisConfig {
                addr: self.redis_addr.clone(),
                username: self.redis_user.clone(),
                password: self.redis_password.clone(),
                db: self.redis_db,
                ttl: self.redis_ttl,
                timeout: self.redis_timeout,
            },
            replica,
        )
        .context("--redis-addr")
    }
}

fn default_replica_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "kedastral".into());
    format!("{host}-{}", std::process::id())
}

impl ForecasterArgs {
    /// The workloads, from the file or the flags, checked.
    pub fn workloads(&self) -> anyhow::Result<Vec<WorkloadConfig>> {
        match &self.config {
            Some(path) => {
                let given = self.workload.given();
                if !given.is_empty() {
                    bail!(
                        "workloads come from --config {}; remove {} (or drop --config)",
                        path.display(),
                        given.join(", ")
                    );
                }
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("--config {}", path.display()))?;
                config::parse_file(&text).with_context(|| format!("--config {}", path.display()))
            }
            None => Ok(vec![config::check(self.workload.to_file()?)?]),
        }
    }
}

impl ForecasterArgs {
    /// Checks everything and builds the forecaster on `source` (call it
    /// inside the async runtime: the Redis client starts a task).
    pub fn build(
        &self,
        workloads: Vec<WorkloadConfig>,
        source: Source,
        clock: Clock,
    ) -> anyhow::Result<Forecaster> {
        let redis = self.storage.redis()?;
        let model_runtime = self.runtime.runtime()?;
        let slots = self.model_slots.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        });
        if slots == 0 {
            bail!("--model-slots must be at least 1");
        }
        let models_dir = self
            .models_dir
            .as_deref()
            .map(|dir| ModelsDir::scan(&model_runtime, dir))
            .transpose()?;
        Ok(Forecaster::new(
            &model_runtime,
            ForecasterParts {
                workloads,
                source,
                shared: redis.map(|r| Arc::new(r) as Arc<dyn LeaseStore>),
                model_slots: slots,
                clock,
                models_dir,
            },
        )?)
    }

    /// The Prometheus source the flags describe.
    pub fn prometheus_source(&self) -> anyhow::Result<Source> {
        let client = PrometheusClient::new(self.prometheus.config()?).context("--prom-url")?;
        Ok(Source::Prometheus(Box::new(client)))
    }
}

pub fn run(args: ForecasterArgs) -> anyhow::Result<()> {
    let tokio = async_runtime()?;
    let _runtime = tokio.enter();
    let workloads = args.workloads()?;
    let source = args.prometheus_source()?;
    let description = source.describe();
    let count = workloads.len();
    let mut forecaster = args.build(workloads, source, Clock::wall())?;
    if let Some(path) = &args.config {
        forecaster = forecaster.reload_from(path.clone());
    }
    if args.check {
        println!("configuration is valid: {count} workload(s), source {description}");
        return Ok(());
    }
    tokio.block_on(async move {
        let listener = bind("--listen", &args.listen).await?;
        let shutdown = shutdown_on_signals()?;
        tracing::info!(
            listen = %listener.local_addr()?,
            workloads = count,
            source = %description,
            storage = ?args.storage.storage,
            "forecaster started"
        );
        service::forecaster(forecaster, listener, shutdown, args.shutdown_timeout).await
    })
}
