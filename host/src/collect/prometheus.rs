//! The Prometheus HTTP API's `query_range`: which requests to make, how to
//! read what comes back, and a [`PrometheusClient`] that does both over HTTP
//! with auth, TLS options, timeouts and retries.
//!
//! Prometheus refuses a range query that would return more than 11 000
//! points per series, so a long window is split into consecutive ranges.
//! Each range covers `[start, end]` inclusive on the step grid, and the next
//! one starts a step later, so no point is fetched twice.
//!
//! An answer is a `matrix` of series, each with `[unix_seconds, "value"]`
//! pairs. Values are strings and may be `NaN` or `±Inf`; those are dropped.
//! When the query returns several series (a missing `sum`), they are added
//! per timestamp, or refused, as configured.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use serde::Deserialize;
use url::Url;

/// Prometheus's own limit on points per series in one `query_range` answer.
pub const MAX_POINTS_PER_QUERY: u64 = 11_000;

/// One `query_range` request: `start` and `end` in Unix seconds, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryRange {
    pub start: i64,
    pub end: i64,
    pub step_seconds: u32,
}

/// Splits `[start, end]` into ranges of at most `max_points` points each.
/// `start` and `end` should lie on the step grid; an empty list when
/// `end < start`.
pub fn split_range(start: i64, end: i64, step_seconds: u32, max_points: u64) -> Vec<QueryRange> {
    let step = i64::from(step_seconds.max(1));
    let span = i64::try_from(max_points.max(1)).unwrap_or(i64::MAX / step) * step;
    let mut ranges = Vec::new();
    let mut from = start;
    while from <= end {
        let to = (from + span - step).min(end);
        ranges.push(QueryRange {
            start: from,
            end: to,
            step_seconds,
        });
        from = to + step;
    }
    ranges
}

/// What to do when a query returns more than one series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultipleSeries {
    /// Add them per timestamp (what `sum(...)` would have done).
    #[default]
    Sum,
    /// Refuse the answer: the query should aggregate.
    Refuse,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AnswerError {
    #[error("Prometheus answered an error ({error_type}): {message}")]
    Prometheus { error_type: String, message: String },
    #[error("Prometheus's answer is not a query_range result: {0}")]
    Malformed(String),
    #[error("expected a matrix result, got `{0}`")]
    NotAMatrix(String),
    #[error("the query returned {0} series; aggregate it (for example with sum) or allow summing")]
    SeveralSeries(usize),
}

/// Finite samples of an answer, one value per timestamp (Unix seconds,
/// ascending), several series added per timestamp.
pub fn parse_answer(body: &[u8], multiple: MultipleSeries) -> Result<Vec<(i64, f64)>, AnswerError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Envelope {
        status: String,
        data: Option<Data>,
        error_type: Option<String>,
        error: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        result_type: String,
        result: Vec<Series>,
    }
    #[derive(Deserialize)]
    struct Series {
        values: Vec<(f64, String)>,
    }

    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| AnswerError::Malformed(e.to_string()))?;
    if envelope.status != "success" {
        return Err(AnswerError::Prometheus {
            error_type: envelope.error_type.unwrap_or_else(|| "unknown".into()),
            message: envelope.error.unwrap_or_default(),
        });
    }
    let data = envelope
        .data
        .ok_or_else(|| AnswerError::Malformed("no `data` in a success answer".into()))?;
    if data.result_type != "matrix" {
        return Err(AnswerError::NotAMatrix(data.result_type));
    }
    if data.result.len() > 1 && multiple == MultipleSeries::Refuse {
        return Err(AnswerError::SeveralSeries(data.result.len()));
    }
    let mut sums: BTreeMap<i64, f64> = BTreeMap::new();
    for series in data.result {
        for (time, raw) in series.values {
            let value: f64 = raw.parse().map_err(|_| {
                AnswerError::Malformed(format!("sample value `{raw}` is not a number"))
            })?;
            if !value.is_finite() || !time.is_finite() {
                continue;
            }
            // Prometheus timestamps on a range query are whole seconds on
            // the step grid; rounding absorbs the float's last digits.
            *sums.entry(time.round() as i64).or_insert(0.0) += value;
        }
    }
    Ok(sums.into_iter().collect())
}

/// How to reach Prometheus.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    /// Base URL; a path prefix (`http://host/prometheus/`) is kept.
    pub url: Url,
    pub bearer_token: Option<String>,
    /// User and password for HTTP basic auth.
    pub basic_auth: Option<(String, String)>,
    /// PEM file of extra CA certificates to trust.
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate (testing only).
    pub insecure_skip_verify: bool,
    /// Per request, connection included.
    pub timeout: Duration,
    /// Further attempts after a failure that may pass (network, timeout,
    /// 5xx, 429), with exponential backoff.
    pub retries: usize,
    pub multiple_series: MultipleSeries,
}

impl PrometheusConfig {
    pub fn new(url: Url) -> Self {
        Self {
            url,
            bearer_token: None,
            basic_auth: None,
            ca_file: None,
            insecure_skip_verify: false,
            timeout: Duration::from_secs(10),
            retries: 2,
            multiple_series: MultipleSeries::Sum,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("cannot reach Prometheus at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("Prometheus at {url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("Prometheus answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error(transparent)]
    Answer(#[from] AnswerError),
    #[error("Prometheus client setup: {0}")]
    Setup(String),
}

impl CollectError {
    /// Every label [`Self::metric_label`] gives.
    pub const METRIC_LABELS: &'static [&'static str] = &[
        "unreachable",
        "timeout",
        "http_status",
        "query_error",
        "several_series",
        "malformed_answer",
        "setup",
    ];

    /// A bounded label for `kedastral_errors_total{reason}`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "unreachable",
            Self::Timeout { .. } => "timeout",
            Self::Status { .. } => "http_status",
            Self::Answer(AnswerError::Prometheus { .. }) => "query_error",
            Self::Answer(AnswerError::SeveralSeries(_)) => "several_series",
            Self::Answer(_) => "malformed_answer",
            Self::Setup(_) => "setup",
        }
    }

    /// Worth another attempt: the network, a timeout, an overloaded or
    /// restarting server. A bad query or a garbled answer is not.
    fn is_retryable(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Timeout { .. } => true,
            Self::Status { status, .. } => *status >= 500 || *status == 429,
            Self::Answer(_) | Self::Setup(_) => false,
        }
    }
}

/// Longest error body kept in a message: enough to read Prometheus's reason,
/// not a whole HTML error page.
const ERROR_BODY_CHARS: usize = 300;

/// Runs `query_range` against one Prometheus.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    http: reqwest::Client,
    endpoint: Url,
    config: PrometheusConfig,
}

impl PrometheusClient {
    pub fn new(config: PrometheusConfig) -> Result<Self, CollectError> {
        let endpoint = super::endpoint_under(&config.url, "api/v1/query_range")
            .map_err(CollectError::Setup)?;
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(concat!("kedastral/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| CollectError::Setup(format!("CA file {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| CollectError::Setup(format!("CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(CollectError::Setup(format!(
                    "CA file {} holds no PEM certificate",
                    path.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if config.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| CollectError::Setup(e.to_string()))?;
        Ok(Self {
            http,
            endpoint,
            config,
        })
    }

    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Samples of `query` on the grid `start, start + step, ..., end`
    /// (inclusive), fetched in as many requests as the points-per-series
    /// limit needs.
    pub async fn query_range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step_seconds: u32,
    ) -> Result<Vec<(i64, f64)>, CollectError> {
        let mut samples = Vec::new();
        for range in split_range(start, end, step_seconds, MAX_POINTS_PER_QUERY) {
            let part = (|| self.fetch(query, range))
                .retry(
                    ExponentialBuilder::default()
                        .with_min_delay(Duration::from_millis(200))
                        .with_max_delay(Duration::from_secs(5))
                        .with_max_times(self.config.retries)
                        .with_jitter(),
                )
                .when(CollectError::is_retryable)
                .notify(|e, wait| {
                    tracing::debug!(error = %e, ?wait, "Prometheus request failed; retrying");
                })
                .await?;
            samples.extend(part);
        }
        Ok(samples)
    }

    async fn fetch(&self, query: &str, range: QueryRange) -> Result<Vec<(i64, f64)>, CollectError> {
        let url = || self.endpoint.to_string();
        let mut request = self.http.get(self.endpoint.clone()).query(&[
            ("query", query.to_owned()),
            ("start", range.start.to_string()),
            ("end", range.end.to_string()),
            ("step", format!("{}s", range.step_seconds)),
        ]);
        if let Some(token) = &self.config.bearer_token {
            request = request.bearer_auth(token);
        }
        if let Some((user, password)) = &self.config.basic_auth {
            request = request.basic_auth(user, Some(password));
        }
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                CollectError::Timeout {
                    url: url(),
                    timeout: self.config.timeout,
                }
            } else {
                CollectError::Unreachable {
                    url: url(),
                    message: error_chain(&e),
                }
            }
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport)?;
        // Prometheus answers a bad query with 400 and 422 and a JSON body
        // saying why; that body is the better message.
        if !status.is_success() {
            let parsed = parse_answer(&body, self.config.multiple_series);
            if let Err(e @ AnswerError::Prometheus { .. }) = parsed {
                return Err(e.into());
            }
            let text: String = String::from_utf8_lossy(&body)
                .chars()
                .take(ERROR_BODY_CHARS)
                .collect();
            return Err(CollectError::Status {
                status: status.as_u16(),
                body: text,
            });
        }
        Ok(parse_answer(&body, self.config.multiple_series)?)
    }
}

/// `reqwest`'s own message is often only "error sending request"; the
/// sources say what happened (connection refused, certificate unknown).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_week_of_minutes_takes_one_request_and_a_month_four() {
        let week = split_range(0, 7 * 86_400 - 60, 60, MAX_POINTS_PER_QUERY);
        assert_eq!(week.len(), 1);
        let month = split_range(0, 30 * 86_400 - 60, 60, MAX_POINTS_PER_QUERY);
        assert_eq!(month.len(), 4);
        // Contiguous, no overlap, none over the limit, the whole span covered.
        assert_eq!(month[0].start, 0);
        assert_eq!(month.last().unwrap().end, 30 * 86_400 - 60);
        for pair in month.windows(2) {
            assert_eq!(pair[1].start, pair[0].end + 60);
        }
        for r in &month {
            let points = (r.end - r.start) / 60 + 1;
            assert!(points <= MAX_POINTS_PER_QUERY as i64, "{r:?}");
        }
        assert!(split_range(100, 99, 60, 10).is_empty());
        assert_eq!(
            split_range(0, 0, 60, 10),
            vec![QueryRange {
                start: 0,
                end: 0,
                step_seconds: 60
            }]
        );
    }

    #[test]
    fn a_path_prefix_is_kept_and_other_schemes_refused() {
        let endpoint = |url: &str| {
            PrometheusClient::new(PrometheusConfig::new(Url::parse(url).unwrap()))
                .map(|c| c.endpoint().to_string())
        };
        for base in [
            "http://prom:9090/prometheus",
            "http://prom:9090/prometheus/",
        ] {
            assert_eq!(
                endpoint(base).unwrap(),
                "http://prom:9090/prometheus/api/v1/query_range"
            );
        }
        assert_eq!(
            endpoint("https://prom").unwrap(),
            "https://prom/api/v1/query_range"
        );
        assert!(matches!(
            endpoint("ftp://prom"),
            Err(CollectError::Setup(m)) if m.contains("not http or https")
        ));
    }

    #[test]
    fn several_series_are_summed_and_bad_samples_dropped() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"pod":"a"},"values":[[1700000000,"1.5"],[1700000060,"NaN"],[1700000120,"2"]]},
            {"metric":{"pod":"b"},"values":[[1700000000,"0.5"],[1700000060,"+Inf"],[1700000120,"1"]]}
        ]}}"#;
        let samples = parse_answer(body, MultipleSeries::Sum).unwrap();
        assert_eq!(samples, vec![(1_700_000_000, 2.0), (1_700_000_120, 3.0)]);
        assert_eq!(
            parse_answer(body, MultipleSeries::Refuse),
            Err(AnswerError::SeveralSeries(2))
        );
    }

    #[test]
    fn errors_and_garbage_are_told_apart() {
        let err = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 4"}"#;
        assert_eq!(
            parse_answer(err, MultipleSeries::Sum),
            Err(AnswerError::Prometheus {
                error_type: "bad_data".into(),
                message: "parse error at char 4".into()
            })
        );
        assert!(matches!(
            parse_answer(b"<html>502 Bad Gateway</html>", MultipleSeries::Sum),
            Err(AnswerError::Malformed(_))
        ));
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(
            parse_answer(vector, MultipleSeries::Sum),
            Err(AnswerError::NotAMatrix("vector".into()))
        );
        let empty = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert_eq!(parse_answer(empty, MultipleSeries::Sum), Ok(vec![]));
        let bad_value = br#"{"status":"success","data":{"resultType":"matrix","result":[{"values":[[1,"lots"]]}]}}"#;
        assert!(matches!(
            parse_answer(bad_value, MultipleSeries::Sum),
            Err(AnswerError::Malformed(m)) if m.contains("lots")
        ));
    }
}
