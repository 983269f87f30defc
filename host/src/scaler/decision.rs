//! What the scaler answers for one snapshot at one moment: the replicas to
//! report and whether the workload is active. Pure, so every rule is tested
//! here with hand-computed cases.
//!
//! The forecast's value at index `k` is for `generated_at + (k + 1) * step`.
//! The lead window is `[now, now + lead]`: it starts at the first forecast
//! step at or after now (so a forecast already a few steps old is read from
//! the right place, not from its start) and covers every step up to
//! `now + lead`, at least one. The lead time is applied here and only here.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::store::Snapshot;

/// How to read a snapshot, after per-ScaledObject overrides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub lead_time: Duration,
    pub stale_after: Duration,
    /// Active when predicted load in the window is above this.
    pub activation_threshold: f64,
    /// Report at least the replicas for the last observed value.
    pub hybrid: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub replicas: u32,
    pub active: bool,
    pub age_seconds: f64,
    /// Forecast indices read, inclusive.
    pub window: (usize, usize),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unavailable {
    #[error("no forecast for workload `{0}` yet")]
    Missing(String),
    #[error("the forecast for `{workload}` is stale: {age:.0} s old, limit {limit} s")]
    Stale {
        workload: String,
        age: f64,
        limit: u64,
    },
    #[error("the forecast for `{0}` does not reach the present: its horizon has passed")]
    HorizonPassed(String),
    #[error("the forecast for `{0}` is empty")]
    Empty(String),
}

impl Unavailable {
    /// Every label [`Self::metric_label`] gives.
    pub const METRIC_LABELS: &'static [&'static str] =
        &["missing", "stale", "horizon_passed", "empty"];

    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Missing(_) => "missing",
            Self::Stale { .. } => "stale",
            Self::HorizonPassed(_) => "horizon_passed",
            Self::Empty(_) => "empty",
        }
    }
}

pub fn decide(
    snapshot: &Snapshot,
    now: DateTime<Utc>,
    reading: &Reading,
) -> Result<Decision, Unavailable> {
    let workload = || snapshot.workload.clone();
    let age = snapshot.age_seconds(now);
    if snapshot.is_stale(now, reading.stale_after) {
        return Err(Unavailable::Stale {
            workload: workload(),
            age,
            limit: reading.stale_after.as_secs(),
        });
    }
    let steps = snapshot.desired_replicas.len().min(snapshot.values.len());
    if steps == 0 {
        return Err(Unavailable::Empty(workload()));
    }
    let step = f64::from(snapshot.step_seconds.max(1));
    let since = age.max(0.0);
    // t_k = generated_at + (k + 1) * step; first k with t_k >= now.
    let first = ((since / step).ceil() as usize).saturating_sub(1);
    // Last k with t_k <= now + lead; at least `first`.
    let reach = since + reading.lead_time.as_secs_f64();
    let last = ((reach / step + 1e-9).floor() as usize)
        .saturating_sub(1)
        .max(first);
    if first >= steps {
        return Err(Unavailable::HorizonPassed(workload()));
    }
    let last = last.min(steps - 1);
    let window = first..=last;
    let mut replicas = snapshot.desired_replicas[window.clone()]
        .iter()
        .copied()
        .max()
        .expect("a non-empty window");
    let mut active = snapshot.values[window]
        .iter()
        .any(|&v| v > reading.activation_threshold);
    if reading.hybrid {
        if let Some(reactive) = snapshot.reactive_replicas {
            replicas = replicas.max(reactive);
        }
        if let Some(observed) = snapshot.last_observed {
            active |= observed > reading.activation_threshold;
        }
    }
    Ok(Decision {
        replicas,
        active,
        age_seconds: age,
        window: (first, last),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ModelRef;

    const T0: i64 = 1_800_000_000;

    fn snapshot(values: &[f64], replicas: &[u32]) -> Snapshot {
        let at = DateTime::from_timestamp(T0, 0).unwrap();
        Snapshot {
            workload: "w".into(),
            metric: "w".into(),
            model: ModelRef {
                name: "m".into(),
                version: "1".into(),
                content_hash: None,
            },
            generated_at: at,
            computed_at: at,
            step_seconds: 60,
            horizon: values.len() as u32,
            values: values.to_vec(),
            quantiles: vec![],
            desired_replicas: replicas.to_vec(),
            last_observed: Some(50.0),
            reactive_replicas: Some(4),
            stale_after_seconds: 300,
            lead_time_seconds: 120,
            selection: None,
            sizing: None,
            sizing_loads: Vec::new(),
            reactive_floor: false,
            refreshed_at: None,
        }
    }

    fn reading(lead: u64) -> Reading {
        Reading {
            lead_time: Duration::from_secs(lead),
            stale_after: Duration::from_secs(300),
            activation_threshold: 0.0,
            hybrid: false,
        }
    }

    fn at(seconds_after_origin: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(T0 + seconds_after_origin, 0).unwrap()
    }

    const VALUES: [f64; 6] = [10.0, 20.0, 30.0, 5.0, 5.0, 90.0];
    const REPLICAS: [u32; 6] = [1, 2, 3, 1, 1, 9];

    #[test]
    fn the_window_starts_at_the_present_step_and_spans_the_lead_time() {
        let s = snapshot(&VALUES, &REPLICAS);
        // Right at the origin, a 2-minute lead covers t0+60 and t0+120.
        let d = decide(&s, at(0), &reading(120)).unwrap();
        assert_eq!((d.window, d.replicas), ((0, 1), 2));
        // 90 s later the forecast is read from t0+120 (index 1) to
        // t0+210 -> index 2 (t0+180).
        let d = decide(&s, at(90), &reading(120)).unwrap();
        assert_eq!((d.window, d.replicas), ((1, 2), 3));
        // Exactly on a step, that step is the first.
        let d = decide(&s, at(180), &reading(0)).unwrap();
        assert_eq!((d.window, d.replicas), ((2, 2), 3));
        // A lead shorter than a step still reads the next step.
        let d = decide(&s, at(10), &reading(30)).unwrap();
        assert_eq!((d.window, d.replicas), ((0, 0), 1));
        // A lead past the horizon reads to its end.
        let d = decide(&s, at(0), &reading(3_600)).unwrap();
        assert_eq!((d.window, d.replicas), ((0, 5), 9));
    }

    #[test]
    fn stale_or_exhausted_forecasts_are_unavailable_never_inactive() {
        let s = snapshot(&VALUES, &REPLICAS);
        assert!(matches!(
            decide(&s, at(301), &reading(60)),
            Err(Unavailable::Stale { age, limit: 300, .. }) if age == 301.0
        ));
        let mut long_lived = reading(60);
        long_lived.stale_after = Duration::from_secs(10_000);
        assert_eq!(
            decide(&s, at(361), &long_lived),
            Err(Unavailable::HorizonPassed("w".into()))
        );
        assert!(decide(&s, at(360), &long_lived).is_ok());
        assert_eq!(
            decide(&snapshot(&[], &[]), at(0), &reading(60)),
            Err(Unavailable::Empty("w".into()))
        );
    }

    #[test]
    fn activation_looks_at_predicted_load_before_the_min_clamp() {
        // min replicas of 1 everywhere, but the load is zero: inactive.
        let s = snapshot(&[0.0, 0.0, 0.0], &[1, 1, 1]);
        let d = decide(&s, at(0), &reading(180)).unwrap();
        assert!(!d.active);
        assert_eq!(d.replicas, 1);
        let s = snapshot(&[0.0, 0.0, 7.0], &[1, 1, 1]);
        assert!(decide(&s, at(0), &reading(180)).unwrap().active);
        // Outside the window it does not count.
        assert!(!decide(&s, at(0), &reading(120)).unwrap().active);
        let mut high = reading(180);
        high.activation_threshold = 7.0;
        assert!(!decide(&s, at(0), &high).unwrap().active);
    }

    #[test]
    fn hybrid_mode_covers_what_is_happening_now() {
        let s = snapshot(&[0.0, 0.0], &[1, 2]);
        let mut hybrid = reading(120);
        hybrid.hybrid = true;
        let d = decide(&s, at(0), &hybrid).unwrap();
        assert_eq!(d.replicas, 4, "the reactive 4 beats the predicted 2");
        assert!(d.active, "50 observed is above a threshold of 0");
    }
}
