//! `kedastral scaler`: the KEDA External Scaler on its own, reading
//! forecasts from a forecaster's HTTP API or from Redis.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use super::forecaster::RedisArgs;
use super::parse_duration;
use crate::scaler::ScalerSettings;
use crate::service::{self, ScalerPlan, async_runtime, bind, shutdown_on_signals};
use crate::store::upstream::Upstream;

/// The gRPC listener and how answers are read: shared by `scaler` and `run`.
#[derive(Debug, Args)]
pub struct GrpcArgs {
    /// gRPC address KEDA connects to (`:50051` is every interface).
    #[arg(long, env = "KEDASTRAL_GRPC_LISTEN", default_value = ":50051")]
    pub grpc_listen: String,
    /// PEM certificate (chain) for TLS on the gRPC listener; with --tls-key.
    #[arg(long, env = "KEDASTRAL_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "KEDASTRAL_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: clients must present a certificate signed by one
    /// (mutual TLS).
    #[arg(long, env = "KEDASTRAL_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// A workload is active when its predicted load in the lead window is
    /// above this (trigger metadata `activationThreshold` overrides it).
    #[arg(long, env = "KEDASTRAL_ACTIVATION_THRESHOLD", default_value_t = 0.0)]
    pub activation_threshold: f64,
}

impl GrpcArgs {
    /// TLS for the listener, if asked for. rustls speaks TLS 1.2 and 1.3
    /// only, so older clients are refused.
    pub fn tls(&self) -> anyhow::Result<Option<ServerTlsConfig>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let read = |flag: &str, path: &PathBuf| {
            std::fs::read(path).with_context(|| format!("{flag} {}", path.display()))
        };
        let identity = Identity::from_pem(read("--tls-cert", cert)?, read("--tls-key", key)?);
        let mut tls = ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.tls_client_ca {
            tls = tls.client_ca_root(Certificate::from_pem(read("--tls-client-ca", ca)?));
        }
        Ok(Some(tls))
    }

    pub fn settings(
        &self,
        lead_time: Option<Duration>,
        stale_after: Option<Duration>,
        reactive_floor: Option<bool>,
    ) -> anyhow::Result<ScalerSettings> {
        if !self.activation_threshold.is_finite() {
            anyhow::bail!("--activation-threshold must be a number");
        }
        Ok(ScalerSettings {
            lead_time,
            stale_after,
            activation_threshold: self.activation_threshold,
            reactive_floor,
            ..ScalerSettings::default()
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScalerSource {
    /// A forecaster's HTTP API (--forecaster-url).
    Forecaster,
    /// Redis, where forecasters with --storage=redis write.
    Redis,
}

#[derive(Debug, Args)]
pub struct ScalerArgs {
    #[command(flatten)]
    pub grpc: GrpcArgs,

    /// HTTP address for health and metrics.
    #[arg(long, env = "KEDASTRAL_LISTEN", default_value = ":8082")]
    pub listen: String,

    /// Where forecasts come from.
    #[arg(
        long,
        env = "KEDASTRAL_SCALER_SOURCE",
        value_enum,
        default_value = "forecaster"
    )]
    pub source: ScalerSource,

    /// The forecaster's base URL.
    #[arg(
        long,
        env = "KEDASTRAL_FORECASTER_URL",
        default_value = "http://localhost:8081"
    )]
    pub forecaster_url: String,

    #[command(flatten)]
    pub redis: RedisArgs,

    /// How often forecasts are fetched.
    #[arg(long, env = "KEDASTRAL_REFRESH_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub refresh_interval: Duration,

    /// Longest wait for one fetch from the forecaster.
    #[arg(long, env = "KEDASTRAL_FETCH_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub fetch_timeout: Duration,

    /// Window of the forecast answered: the most replicas over [now, now +
    /// lead time] [default: each workload's own lead time].
    #[arg(long, env = "KEDASTRAL_LEAD_TIME", value_parser = parse_duration)]
    pub lead_time: Option<Duration>,

    /// Answer at least the replicas the last observed value needs, for
    /// every workload (trigger metadata `reactiveFloor` overrides it)
    /// [default: each workload's own `reactive-floor`, true unless set].
    #[arg(long, env = "KEDASTRAL_REACTIVE_FLOOR", action = clap::ArgAction::Set)]
    pub reactive_floor: Option<bool>,

    /// A forecast older than this answers UNAVAILABLE [default: each
    /// workload's own stale-after].
    #[arg(long, env = "KEDASTRAL_STALE_AFTER", value_parser = parse_duration)]
    pub stale_after: Option<Duration>,

    /// Longest wait, after SIGTERM or SIGINT, for calls in flight.
    #[arg(long, env = "KEDASTRAL_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
}

pub fn run(args: ScalerArgs) -> anyhow::Result<()> {
    let tokio = async_runtime()?;
    let _runtime = tokio.enter();
    let settings = args
        .grpc
        .settings(args.lead_time, args.stale_after, args.reactive_floor)?;
    let tls = args.grpc.tls()?;
    let upstream = match args.source {
        ScalerSource::Forecaster => {
            let url = url::Url::parse(&args.forecaster_url)
                .with_context(|| format!("--forecaster-url `{}`", args.forecaster_url))?;
            Upstream::http(&url, args.fetch_timeout)
                .map_err(|e| anyhow::anyhow!("--forecaster-url: {e}"))?
        }
        ScalerSource::Redis => Upstream::Redis(args.redis.store()?),
    };
    let plan = ScalerPlan {
        upstream,
        refresh_every: args.refresh_interval,
        settings,
        tls,
    };
    tokio.block_on(async move {
        let grpc = bind("--grpc-listen", &args.grpc.grpc_listen).await?;
        let http = bind("--listen", &args.listen).await?;
        let shutdown = shutdown_on_signals()?;
        service::scaler(plan, grpc, http, shutdown, args.shutdown_timeout).await
    })
}
