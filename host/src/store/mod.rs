//! Where forecasts live.
//!
//! A [`Snapshot`] is one workload's latest forecast and the replicas it
//! implies. Every process keeps the snapshots it serves in memory, on a
//! [`Board`] ([`board`]): the one thing the HTTP API and the scaler read.
//! The forecaster writes the board of the workloads it runs; with
//! `--storage=redis` it also writes them to Redis ([`redis`]), one key per
//! workload, as schema-versioned JSON, so several forecaster replicas (and
//! the scaler) serve the same answers. A scaler on its own fills its board
//! from a forecaster's API or from Redis ([`upstream`]).

pub mod board;
pub mod lease;
pub mod redis;
pub mod upstream;

pub use board::{Board, Failure, Stage, Status, WorkloadView};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the stored JSON. A reader refuses another version rather
/// than guess at fields it does not know.
pub const SCHEMA_VERSION: u32 = 1;

/// One workload's forecast and plan.
///
/// `values[k]`, every band's `values[k]` and `desired_replicas[k]` are for
/// `generated_at + (k + 1) * step_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub workload: String,
    pub metric: String,
    pub model: ModelRef,
    /// The forecast origin: the time of the last history point it saw.
    pub generated_at: DateTime<Utc>,
    /// When the forecaster computed it (wall clock).
    pub computed_at: DateTime<Utc>,
    pub step_seconds: u32,
    /// Forecast steps.
    pub horizon: u32,
    pub values: Vec<f64>,
    pub quantiles: Vec<Band>,
    pub desired_replicas: Vec<u32>,
    /// The last observed value of the metric, at or before `generated_at`.
    pub last_observed: Option<f64>,
    /// Replicas for `last_observed` under the same policy: what a reactive
    /// autoscaler would run now (the scaler's hybrid mode takes the larger).
    pub reactive_replicas: Option<u32>,
    /// The workload's limit on forecast age, for readers elsewhere (the
    /// scaler) to judge staleness as the forecaster does.
    pub stale_after_seconds: u64,
    /// The workload's lead time: the scaler's default window.
    pub lead_time_seconds: u64,
    /// The shadow evaluation: the candidates' recent errors, the one
    /// served, and whether the bands are calibrated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<crate::shadow::Selection>,
    /// How pods are sized: the rule, the level chosen for the objective
    /// and the shortfall it would have left on recent history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizing: Option<crate::sizing::SizingChoice>,
    /// The load each step's replicas are sized on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sizing_loads: Vec<f64>,
    /// The scaler answers at least `reactive_replicas`, unless its own
    /// setting or the ScaledObject's says otherwise.
    #[serde(default)]
    pub reactive_floor: bool,
    /// The last point the model read for this forecast: before
    /// `generated_at` when a forecast made earlier is served from the
    /// newest point on until the workload's refresh is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelRef {
    pub name: String,
    pub version: String,
    /// The component's digest (`sha256:...`), for one model; `auto`'s
    /// candidates have theirs in `GET /models`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub level: f64,
    pub values: Vec<f64>,
}

impl Snapshot {
    /// Seconds since the forecast origin, at `now`.
    pub fn age_seconds(&self, now: DateTime<Utc>) -> f64 {
        (now - self.generated_at).as_seconds_f64()
    }

    /// Older than `stale_after` at `now`: its origin is too far in the past
    /// to scale on.
    pub fn is_stale(&self, now: DateTime<Utc>, stale_after: std::time::Duration) -> bool {
        self.age_seconds(now) > stale_after.as_secs_f64()
    }

    /// JSON for storage, with the schema version.
    pub fn to_stored_json(&self) -> String {
        serde_json::to_string(&Stored {
            schema: SCHEMA_VERSION,
            snapshot: self.clone(),
        })
        .expect("a snapshot always serialises")
    }

    /// Reads what [`Snapshot::to_stored_json`] wrote.
    pub fn from_stored_json(text: &str) -> Result<Self, SnapshotDecodeError> {
        #[derive(Deserialize)]
        struct Version {
            schema: u32,
        }
        let version: Version = serde_json::from_str(text)
            .map_err(|e| SnapshotDecodeError::Malformed(e.to_string()))?;
        if version.schema != SCHEMA_VERSION {
            return Err(SnapshotDecodeError::Schema(version.schema));
        }
        let stored: Stored = serde_json::from_str(text)
            .map_err(|e| SnapshotDecodeError::Malformed(e.to_string()))?;
        Ok(stored.snapshot)
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    schema: u32,
    #[serde(flatten)]
    snapshot: Snapshot,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SnapshotDecodeError {
    #[error("stored snapshot has schema version {0}; this build reads version {SCHEMA_VERSION}")]
    Schema(u32),
    #[error("stored snapshot is not valid JSON for schema {SCHEMA_VERSION}: {0}")]
    Malformed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Snapshot {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        Snapshot {
            workload: "checkout".into(),
            metric: "rps".into(),
            model: ModelRef {
                name: "baseline".into(),
                version: "0.1.0".into(),
                content_hash: None,
            },
            generated_at: at,
            computed_at: at + chrono::Duration::seconds(3),
            step_seconds: 60,
            horizon: 2,
            values: vec![10.0, 12.5],
            quantiles: vec![Band {
                level: 0.9,
                values: vec![11.0, 14.0],
            }],
            desired_replicas: vec![1, 2],
            last_observed: Some(9.5),
            reactive_replicas: Some(1),
            stale_after_seconds: 180,
            lead_time_seconds: 300,
            selection: None,
            sizing: None,
            sizing_loads: Vec::new(),
            reactive_floor: false,
            refreshed_at: None,
        }
    }

    #[test]
    fn stored_json_round_trips_and_names_its_schema() {
        let s = sample();
        let json = s.to_stored_json();
        assert!(
            json.starts_with(r#"{"schema":1,"workload":"checkout""#),
            "{json}"
        );
        assert!(
            json.contains(r#""generatedAt":"2023-11-14T22:13:20Z""#),
            "{json}"
        );
        assert_eq!(Snapshot::from_stored_json(&json), Ok(s));
    }

    #[test]
    fn another_schema_or_garbage_is_refused() {
        let json = sample()
            .to_stored_json()
            .replace(r#""schema":1"#, r#""schema":2"#);
        assert_eq!(
            Snapshot::from_stored_json(&json),
            Err(SnapshotDecodeError::Schema(2))
        );
        assert!(matches!(
            Snapshot::from_stored_json("{\"schema\":1}"),
            Err(SnapshotDecodeError::Malformed(_))
        ));
        assert!(matches!(
            Snapshot::from_stored_json("nope"),
            Err(SnapshotDecodeError::Malformed(_))
        ));
    }

    #[test]
    fn staleness_is_measured_from_the_origin() {
        let s = sample();
        let now = s.generated_at + chrono::Duration::seconds(181);
        assert_eq!(s.age_seconds(now), 181.0);
        assert!(s.is_stale(now, std::time::Duration::from_secs(180)));
        assert!(!s.is_stale(now, std::time::Duration::from_secs(181)));
    }
}
