//! Where a board that a process does not write itself is filled from: a
//! forecaster's HTTP API (`GET /forecasts`) or Redis (every
//! `kedastral:snapshot:*` key).

use std::time::Duration;

use url::Url;

use super::Snapshot;
use super::redis::{RedisStore, StoreError};

/// Where a [`super::Board`] is filled from.
#[derive(Debug, Clone)]
pub enum Upstream {
    Http { client: reqwest::Client, url: Url },
    Redis(RedisStore),
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("forecaster at {url}: {message}")]
    Http { url: String, message: String },
    #[error("forecaster at {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("forecaster at {url} answered something that is not a list of forecasts: {message}")]
    Malformed { url: String, message: String },
    #[error(transparent)]
    Redis(#[from] StoreError),
}

impl FetchError {
    /// Every label [`Self::metric_label`] gives besides a Redis error's ([`StoreError::METRIC_LABELS`]).
    pub const METRIC_LABELS: &'static [&'static str] = &["unreachable", "http_status", "malformed"];

    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Http { .. } => "unreachable",
            Self::Status { .. } => "http_status",
            Self::Malformed { .. } => "malformed",
            Self::Redis(e) => e.metric_label(),
        }
    }
}

impl Upstream {
    /// A forecaster's base URL (a path prefix is kept).
    pub fn http(base: &Url, timeout: Duration) -> Result<Self, String> {
        let url = crate::collect::endpoint_under(base, "forecasts")?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self::Http { client, url })
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Http { url, .. } => format!("forecaster at {url}"),
            Self::Redis(store) => format!("Redis (as {})", store.replica()),
        }
    }

    pub async fn fetch(&self) -> Result<Vec<Snapshot>, FetchError> {
        match self {
            Self::Http { client, url } => {
                let shown = || url.to_string();
                let response =
                    client
                        .get(url.clone())
                        .send()
                        .await
                        .map_err(|e| FetchError::Http {
                            url: shown(),
                            message: e.to_string(),
                        })?;
                let status = response.status();
                if !status.is_success() {
                    return Err(FetchError::Status {
                        url: shown(),
                        status: status.as_u16(),
                    });
                }
                let body = response.bytes().await.map_err(|e| FetchError::Http {
                    url: shown(),
                    message: e.to_string(),
                })?;
                #[derive(serde::Deserialize)]
                struct Answer {
                    forecasts: Vec<Snapshot>,
                }
                let answer: Answer =
                    serde_json::from_slice(&body).map_err(|e| FetchError::Malformed {
                        url: shown(),
                        message: e.to_string(),
                    })?;
                Ok(answer.forecasts)
            }
            Self::Redis(store) => Ok(store.all_snapshots().await?),
        }
    }
}
