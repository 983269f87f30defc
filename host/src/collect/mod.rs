//! Collecting a workload's metric history.
//!
//! - [`prometheus`]: `query_range` against a Prometheus server, split within
//!   its points-per-series limit, with auth, TLS options and retries;
//! - [`replay`]: a recorded trace played back as if it were live, for trying
//!   Kedastral without Prometheus and for benchmarks.
//!
//! [`Source`] is what the forecaster collects from: one of the two.

pub mod prometheus;
pub mod replay;

pub use prometheus::{CollectError, PrometheusClient, PrometheusConfig};
pub use replay::ReplaySource;

/// `path` under an http(s) `base` URL, keeping the base's own path: the
/// prefix a Prometheus or a forecaster is served under behind a proxy.
pub fn endpoint_under(base: &url::Url, path: &str) -> Result<url::Url, String> {
    if !matches!(base.scheme(), "http" | "https") {
        return Err(format!("URL `{base}` is not http or https"));
    }
    // `join` replaces the last path segment unless the path ends in a
    // slash: add it so a prefix such as `/prometheus` is kept.
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        let with_slash = format!("{}/", base.path());
        base.set_path(&with_slash);
    }
    base.join(path).map_err(|e| e.to_string())
}

/// Where workloads' samples come from.
#[derive(Debug, Clone)]
pub enum Source {
    Prometheus(Box<PrometheusClient>),
    Replay(ReplaySource),
}

impl Source {
    /// Finite samples of `query` at `start, start + step, ..., end`
    /// (inclusive, Unix seconds), ascending.
    pub async fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step_seconds: u32,
    ) -> Result<Vec<(i64, f64)>, CollectError> {
        match self {
            Self::Prometheus(client) => client.query_range(query, start, end, step_seconds).await,
            Self::Replay(replay) => Ok(replay.range(start, end, step_seconds)),
        }
    }

    /// Says what the source is, for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Prometheus(client) => format!("Prometheus at {}", client.endpoint()),
            Self::Replay(replay) => format!("replay of {}", replay.name()),
        }
    }
}
