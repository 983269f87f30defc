//! Rolling-origin evaluation: how good a model's forecasts would have been
//! on a history, and what they would have done to capacity.
//!
//! Origins are spaced `stride` steps apart and end `horizon` steps before
//! the end of the series. At each origin the model sees at most
//! `max_history` points before it and forecasts `horizon` steps, which are
//! scored against what happened:
//!
//! - accuracy over every (origin, lead) pair with an observed actual: MAE,
//!   RMSE and MASE (MAE over the mean absolute seasonal difference of the
//!   history before the first origin, Hyndman & Koehler 2006), for the model
//!   and for seasonal naive (the last value one season earlier) on the same
//!   pairs; the season is a day when the step divides it and the history
//!   before the first origin covers two days, else one step (plain naive);
//! - interval coverage: the share of actuals inside each central interval;
//! - capacity: at each origin both policies decide the pods for `stride`
//!   steps, with the same information; with a pod-start delay of `d` steps
//!   those are the steps from `d` on (pods asked for now are ready then), so
//!   a policy must see `d` steps ahead to be on time. The predictive policy sizes
//!   each step on its forecast (the point forecast, or a quantile such as
//!   p90), the reactive policy on the last observed value. Pods are `max(1, ceil(load / target_per_pod))`. A step is
//!   under-provisioned when its actual load needs more pods than it got;
//!   over-provisioned pod-steps add up the pods beyond what was needed.

pub mod report;

use kedastral_model_sdk::{Forecast, ForecastRequest, Series};
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct BacktestConfig {
    pub horizon: u32,
    /// Most origins to evaluate (fewer when the history is short).
    pub origins: usize,
    /// Steps between origins, and how long each capacity decision holds.
    pub stride: usize,
    /// Most history points handed to the model at each origin.
    pub max_history: usize,
    /// Central interval levels to check coverage of, e.g. 0.8 and 0.9.
    pub intervals: Vec<f64>,
    /// Load one pod serves.
    pub target_per_pod: f64,
    /// Size pods on this forecast quantile instead of the point forecast.
    pub sizing_quantile: Option<f64>,
    /// Steps between asking for pods and their being ready.
    pub pod_start_delay: usize,
    pub params: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BacktestError {
    #[error("{0}")]
    Config(String),
    #[error(
        "history too short: {points} points leave no origin with {needed} points of history before it and {horizon} after"
    )]
    TooShort {
        points: usize,
        needed: usize,
        horizon: u32,
    },
    #[error("the model failed at every origin; first error: {0}")]
    AllFailed(String),
    #[error("stopped at origin {origin}: {message}")]
    Stopped { origin: usize, message: String },
}

/// Why an origin has no forecast.
#[derive(Debug, Clone, PartialEq)]
pub enum OriginFailure {
    /// This origin failed; go on with the next.
    Skip(String),
    /// No later origin can succeed (the model is held back after a fault):
    /// end the evaluation with this error.
    Stop(String),
}

impl std::fmt::Display for OriginFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Skip(m) | Self::Stop(m) => f.write_str(m),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Accuracy {
    pub mae: f64,
    pub rmse: f64,
    /// `None` when the history before the first origin has no seasonal
    /// variation to scale by.
    pub mase: Option<f64>,
    /// Symmetric MAPE, `2|F - A| / (|F| + |A|)` averaged over the points
    /// where forecast and actual are not both zero; `None` without such.
    pub smape: Option<f64>,
    pub points: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    /// Central interval level, e.g. 0.8 for the 10 %..90 % band.
    pub level: f64,
    /// Share of actuals inside it.
    pub coverage: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CapacityOutcome {
    /// Share of steps with fewer pods than the actual load needed.
    pub under_provisioned_share: f64,
    /// Pods beyond what the actual load needed, summed over steps.
    pub over_provisioned_pod_steps: f64,
    /// The same in pod-minutes.
    pub over_provisioned_pod_minutes: f64,
    /// All pods summed over steps.
    pub pod_steps: f64,
    /// Share of the load above what the pods could serve.
    pub unserved_load_share: f64,
    /// Times the pod count changed.
    pub scaling_changes: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CapacityReport {
    pub target_per_pod: f64,
    /// The forecast quantile pods were sized on; `None`: the point forecast.
    pub sizing_quantile: Option<f64>,
    pub pod_start_delay_steps: usize,
    pub steps: usize,
    pub predictive: CapacityOutcome,
    pub reactive: CapacityOutcome,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BacktestReport {
    pub horizon: u32,
    pub step_seconds: u32,
    pub origins: usize,
    pub failed_origins: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<String>,
    pub stride: usize,
    pub season_steps: usize,
    /// The model's accuracy (`model` names the model in reports).
    #[serde(rename = "accuracy")]
    pub model: Accuracy,
    pub seasonal_naive: Accuracy,
    pub coverage: Vec<Coverage>,
    pub capacity: CapacityReport,
    /// The shadow evaluation at the last origin: which candidate served
    /// and how each scored. Set by callers that run one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection: Option<crate::shadow::Selection>,
}

/// Pods needed for `load`: at least one, and a load a rounding error past a
/// multiple of the target (3.0000000000000004 pods) needs the lower count.
pub fn pods_for(load: f64, target_per_pod: f64) -> f64 {
    crate::capacity::replicas_for_load(load, target_per_pod).max(1.0)
}

/// Runs the evaluation. `forecast` is the model: a component instance or a
/// native model, called once per origin.
pub fn run(
    series: &Series,
    config: &BacktestConfig,
    min_history: usize,
    mut forecast: impl FnMut(&ForecastRequest) -> Result<Forecast, OriginFailure>,
) -> Result<BacktestReport, BacktestError> {
    check_config(config)?;
    let y = &series.values;
    let n = y.len();
    let h = config.horizon as usize;
    let day = (86_400.0 / f64::from(series.step_seconds)).round() as usize;

    let needed = min_history.max(2);
    let last_origin = n
        .checked_sub(h)
        .filter(|&o| o >= needed)
        .ok_or(BacktestError::TooShort {
            points: n,
            needed,
            horizon: config.horizon,
        })?;
    let mut origins: Vec<usize> = (0..config.origins)
        .map_while(|k| last_origin.checked_sub(k * config.stride))
        .filter(|&o| o >= needed)
        .collect();
    origins.reverse();
    let first = origins[0];
    let season = if day >= 2 && first >= 2 * day { day } else { 1 };
    let scale = seasonal_scale(&y[..first], season);

    let levels = quantile_levels(&config.intervals, config.sizing_quantile);
    let sizing_band = config.sizing_quantile.map(|q| {
        levels
            .iter()
            .position(|&l| l == round_level(q))
            .expect("requested")
    });
    let mut model_err = ErrorSums::default();
    let mut naive_err = ErrorSums::default();
    let mut inside = vec![0usize; config.intervals.len()];
    let mut covered_points = 0usize;
    let step_minutes = f64::from(series.step_seconds) / 60.0;
    let mut predictive = PolicySim::new(config.target_per_pod, step_minutes);
    let mut reactive = PolicySim::new(config.target_per_pod, step_minutes);
    let delay = config.pod_start_delay;
    let mut failed = 0usize;
    let mut first_failure = None;

    for &origin in &origins {
        let from = origin.saturating_sub(config.max_history);
        let request = ForecastRequest {
            history: series.slice(from, origin),
            horizon: config.horizon,
            quantiles: levels.clone(),
            params: config.params.clone(),
        };
        let last_observed = y[..origin].iter().rev().copied().find(|v| !v.is_nan());
        let answer = match forecast(&request) {
            Ok(f) => Some(f),
            Err(OriginFailure::Stop(message)) => {
                return Err(BacktestError::Stopped { origin, message });
            }
            Err(OriginFailure::Skip(e)) => {
                failed += 1;
                first_failure.get_or_insert(format!("origin {origin}: {e}"));
                None
            }
        };
        for lead in 0..h {
            let t = origin + lead;
            let actual = y[t];
            if actual.is_nan() {
                continue;
            }
            // Capacity decisions hold for `stride` steps, from when the pods
            // they ask for are ready.
            if (delay..delay + config.stride).contains(&lead) {
                let reactive_load = last_observed.unwrap_or(actual);
                // A failed forecast falls back on the reactive decision, as
                // the service keeps serving its last good answer.
                let predicted_load = answer
                    .as_ref()
                    .map_or(reactive_load, |f| match sizing_band {
                        Some(b) => f.quantiles[b].values[lead],
                        None => f.values[lead],
                    });
                predictive.step(predicted_load, actual);
                reactive.step(reactive_load, actual);
            }
            let Some(f) = &answer else { continue };
            let naive = seasonal_naive(y, origin, lead, season);
            if naive.is_nan() {
                continue;
            }
            model_err.add(f.values[lead], actual);
            naive_err.add(naive, actual);
            covered_points += 1;
            for (i, &level) in config.intervals.iter().enumerate() {
                let (lo, hi) = band_pair(f, &levels, level);
                if (lo[lead]..=hi[lead]).contains(&actual) {
                    inside[i] += 1;
                }
            }
        }
    }
    if failed == origins.len() {
        return Err(BacktestError::AllFailed(first_failure.unwrap_or_default()));
    }
    let steps = predictive.steps;
    Ok(BacktestReport {
        horizon: config.horizon,
        step_seconds: series.step_seconds,
        origins: origins.len(),
        failed_origins: failed,
        first_failure,
        stride: config.stride,
        season_steps: season,
        model: model_err.accuracy(scale),
        seasonal_naive: naive_err.accuracy(scale),
        coverage: config
            .intervals
            .iter()
            .zip(inside)
            .map(|(&level, n)| Coverage {
                level,
                coverage: n as f64 / covered_points.max(1) as f64,
            })
            .collect(),
        capacity: CapacityReport {
            target_per_pod: config.target_per_pod,
            sizing_quantile: config.sizing_quantile,
            pod_start_delay_steps: delay,
            steps,
            predictive: predictive.outcome(),
            reactive: reactive.outcome(),
        },
        selection: None,
    })
}

fn check_config(config: &BacktestConfig) -> Result<(), BacktestError> {
    let bad = |m: &str| Err(BacktestError::Config(m.to_owned()));
    if config.horizon == 0 {
        return bad("horizon must be at least 1");
    }
    if config.origins == 0 {
        return bad("origins must be at least 1");
    }
    if config.stride == 0 {
        return bad("stride must be at least 1");
    }
    if config.stride + config.pod_start_delay > config.horizon as usize {
        return bad(
            "stride plus the pod-start delay must fit in the horizon: a decision covers the \
             steps from the delay to the delay plus the stride",
        );
    }
    if config.max_history < 2 {
        return bad("max-history must be at least 2");
    }
    if !(config.target_per_pod.is_finite() && config.target_per_pod > 0.0) {
        return bad("target-per-pod must be a positive number");
    }
    if config.intervals.iter().any(|&l| !(l > 0.0 && l < 1.0)) {
        return bad("interval levels must be strictly between 0 and 1");
    }
    if config
        .sizing_quantile
        .is_some_and(|q| !(q > 0.0 && q < 1.0))
    {
        return bad("the sizing quantile level must be strictly between 0 and 1");
    }
    Ok(())
}

/// The quantile levels bounding each central interval, and the sizing
/// level if any: ascending, unique.
fn quantile_levels(intervals: &[f64], sizing: Option<f64>) -> Vec<f64> {
    let mut levels: Vec<f64> = intervals
        .iter()
        .flat_map(|&l| [round_level((1.0 - l) / 2.0), round_level((1.0 + l) / 2.0)])
        .chain(sizing.map(round_level))
        .collect();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    levels
}

/// Keeps levels such as 0.1 exactly 0.1 rather than 0.09999999999999998.
fn round_level(level: f64) -> f64 {
    (level * 1e9).round() / 1e9
}

fn band_pair<'a>(forecast: &'a Forecast, levels: &[f64], interval: f64) -> (&'a [f64], &'a [f64]) {
    let find = |level: f64| {
        let i = levels
            .iter()
            .position(|&l| l == round_level(level))
            .expect("every interval's levels were requested");
        forecast.quantiles[i].values.as_slice()
    };
    (find((1.0 - interval) / 2.0), find((1.0 + interval) / 2.0))
}

/// Seasonal naive forecast for `origin + lead` made at `origin`: the value
/// one (or more) whole seasons back that was known at the origin.
fn seasonal_naive(y: &[f64], origin: usize, lead: usize, season: usize) -> f64 {
    let seasons_back = lead / season + 1;
    (origin + lead)
        .checked_sub(seasons_back * season)
        .map_or(f64::NAN, |i| y[i])
}

/// Mean absolute seasonal difference: MASE's denominator.
fn seasonal_scale(train: &[f64], season: usize) -> Option<f64> {
    let (sum, count) = train
        .iter()
        .zip(train.iter().skip(season))
        .map(|(a, b)| (b - a).abs())
        .filter(|d| !d.is_nan())
        .fold((0.0, 0usize), |(s, c), d| (s + d, c + 1));
    (count > 0 && sum > 0.0).then(|| sum / count as f64)
}

#[derive(Default)]
struct ErrorSums {
    abs: f64,
    sq: f64,
    count: usize,
    smape: f64,
    smape_count: usize,
}

impl ErrorSums {
    fn add(&mut self, forecast: f64, actual: f64) {
        let error = forecast - actual;
        self.abs += error.abs();
        self.sq += error * error;
        self.count += 1;
        let size = forecast.abs() + actual.abs();
        if size > 0.0 {
            self.smape += 2.0 * error.abs() / size;
            self.smape_count += 1;
        }
    }

    fn accuracy(&self, scale: Option<f64>) -> Accuracy {
        let n = self.count.max(1) as f64;
        let mae = self.abs / n;
        Accuracy {
            mae,
            rmse: (self.sq / n).sqrt(),
            mase: scale.map(|s| mae / s),
            smape: (self.smape_count > 0).then(|| self.smape / self.smape_count as f64),
            points: self.count,
        }
    }
}

struct PolicySim {
    target: f64,
    step_minutes: f64,
    steps: usize,
    under: usize,
    over_pods: f64,
    pods_total: f64,
    unserved: f64,
    load_total: f64,
    changes: usize,
    last_pods: Option<f64>,
}

impl PolicySim {
    fn new(target: f64, step_minutes: f64) -> Self {
        Self {
            target,
            step_minutes,
            steps: 0,
            under: 0,
            over_pods: 0.0,
            pods_total: 0.0,
            unserved: 0.0,
            load_total: 0.0,
            changes: 0,
            last_pods: None,
        }
    }

    fn step(&mut self, planned_load: f64, actual: f64) {
        let pods = pods_for(planned_load, self.target);
        let needed = pods_for(actual, self.target);
        self.steps += 1;
        if pods < needed {
            self.under += 1;
        }
        self.over_pods += (pods - needed).max(0.0);
        self.pods_total += pods;
        self.unserved += (actual - pods * self.target).max(0.0);
        self.load_total += actual.max(0.0);
        if self.last_pods.is_some_and(|p| p != pods) {
            self.changes += 1;
        }
        self.last_pods = Some(pods);
    }

    fn outcome(&self) -> CapacityOutcome {
        CapacityOutcome {
            under_provisioned_share: self.under as f64 / self.steps.max(1) as f64,
            over_provisioned_pod_steps: self.over_pods,
            over_provisioned_pod_minutes: self.over_pods * self.step_minutes,
            pod_steps: self.pods_total,
            unserved_load_share: if self.load_total > 0.0 {
                self.unserved / self.load_total
            } else {
                0.0
            },
            scaling_changes: self.changes,
        }
    }
}

#[cfg(test)]
mod tests {
    use kedastral_model_sdk::QuantileBand;

    use super::*;

    fn config() -> BacktestConfig {
        BacktestConfig {
            horizon: 2,
            origins: 100,
            stride: 2,
            max_history: 1000,
            intervals: vec![0.8],
            target_per_pod: 10.0,
            sizing_quantile: None,
            pod_start_delay: 0,
            params: vec![],
        }
    }

    #[test]
    fn a_pod_start_delay_makes_reacting_late_and_forecasting_pay() {
        // A ramp: the oracle sees the steps its pods will serve, `delay`
        // steps ahead; reacting on the last value is always behind.
        let values: Vec<f64> = (0..300).map(|i| 10.0 * i as f64).collect();
        let series = Series::new(0, 60, values.clone());
        let mut delayed = config();
        delayed.horizon = 5;
        delayed.pod_start_delay = 3;
        let report = run(&series, &delayed, 2, oracle(values.clone())).unwrap();
        let c = &report.capacity;
        assert_eq!(c.pod_start_delay_steps, 3);
        assert_eq!(c.predictive.under_provisioned_share, 0.0);
        assert!(c.reactive.under_provisioned_share > 0.99);
        // Pod-minutes at one-minute steps equal pod-steps.
        assert_eq!(
            c.reactive.over_provisioned_pod_minutes,
            c.reactive.over_provisioned_pod_steps
        );
        // The oracle's sMAPE is 0; a decision window past the horizon is refused.
        assert_eq!(report.model.smape, Some(0.0));
        delayed.pod_start_delay = 4;
        assert!(matches!(
            run(&series, &delayed, 2, oracle(values)),
            Err(BacktestError::Config(m)) if m.contains("pod-start delay")
        ));
    }

    /// A model that knows the future: perfect accuracy, full coverage.
    fn oracle(values: Vec<f64>) -> impl FnMut(&ForecastRequest) -> Result<Forecast, OriginFailure> {
        move |r: &ForecastRequest| {
            let o = r.history.values.len() + ((r.history.start_unix_seconds) / 60) as usize;
            let v = values[o..o + r.horizon as usize].to_vec();
            Ok(Forecast {
                quantiles: r
                    .quantiles
                    .iter()
                    .map(|&level| QuantileBand {
                        level,
                        values: v.clone(),
                    })
                    .collect(),
                values: v,
            })
        }
    }

    #[test]
    fn pods_round_safely_at_boundaries() {
        assert_eq!(pods_for(30.000000000000004, 10.0), 3.0);
        assert_eq!(pods_for(30.1, 10.0), 4.0);
        assert_eq!(pods_for(0.0, 10.0), 1.0);
    }

    #[test]
    fn an_oracle_is_perfect_and_beats_reactive() {
        // A ramp: reactive lags one decision behind and under-provisions.
        let values: Vec<f64> = (0..40).map(|i| 10.0 * i as f64).collect();
        let series = Series::new(0, 60, values.clone());
        let report = run(&series, &config(), 2, oracle(values)).unwrap();
        assert_eq!(report.model.mae, 0.0);
        assert_eq!(report.coverage[0].coverage, 1.0);
        assert_eq!(report.capacity.predictive.under_provisioned_share, 0.0);
        assert_eq!(report.capacity.predictive.over_provisioned_pod_steps, 0.0);
        assert!(report.capacity.reactive.under_provisioned_share > 0.9);
        // Naive (no daily season in 40 minutes): the value one step back.
        assert_eq!(report.season_steps, 1);
        assert!(
            (report.seasonal_naive.mae - 15.0).abs() < 1e-9,
            "{:?}",
            report.seasonal_naive
        );
    }

    #[test]
    fn origins_end_a_horizon_before_the_end_and_respect_min_history() {
        let values: Vec<f64> = (0..20).map(f64::from).collect();
        let series = Series::new(0, 60, values.clone());
        let mut seen = vec![];
        let report = run(&series, &config(), 10, |r| {
            seen.push(r.history.values.len());
            oracle(values.clone())(r)
        })
        .unwrap();
        assert_eq!(seen, vec![10, 12, 14, 16, 18]);
        assert_eq!(report.origins, 5);
    }

    #[test]
    fn failures_are_counted_and_total_failure_is_an_error() {
        let series = Series::new(0, 60, (0..20).map(f64::from).collect());
        let err = run(&series, &config(), 2, |_| {
            Err(OriginFailure::Skip("boom".into()))
        })
        .unwrap_err();
        assert!(matches!(err, BacktestError::AllFailed(m) if m.contains("boom")));
        let err = run(&series, &config(), 30, |_| {
            Err(OriginFailure::Skip("never called".into()))
        })
        .unwrap_err();
        assert!(matches!(err, BacktestError::TooShort { .. }));
    }

    #[test]
    fn a_stop_ends_the_evaluation_at_once() {
        let series = Series::new(0, 60, (0..20).map(f64::from).collect());
        let values: Vec<f64> = (0..20).map(f64::from).collect();
        let mut calls = 0;
        let mut good = oracle(values);
        let err = run(&series, &config(), 2, |r| {
            calls += 1;
            if calls < 3 {
                good(r)
            } else {
                Err(OriginFailure::Stop("model `m` timed out".into()))
            }
        })
        .unwrap_err();
        assert_eq!(calls, 3);
        assert!(
            matches!(&err, BacktestError::Stopped { message, .. } if message == "model `m` timed out"),
            "{err}"
        );
    }

    #[test]
    fn quantile_levels_are_exact_and_unique() {
        assert_eq!(
            quantile_levels(&[0.8, 0.9], None),
            vec![0.05, 0.1, 0.9, 0.95]
        );
        assert_eq!(quantile_levels(&[0.8], Some(0.9)), vec![0.1, 0.9]);
        assert_eq!(quantile_levels(&[0.8], Some(0.75)), vec![0.1, 0.75, 0.9]);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::pods_for;

    proptest! {
        /// Pods are at least one, enough for the load (up to rounding noise),
        /// never a whole pod more than needed, and monotone in the load.
        #[test]
        fn pods_cover_the_load_and_grow_with_it(
            load in 0.0f64..1e7,
            more in 0.0f64..1e6,
            target in 0.001f64..1e5,
        ) {
            let pods = pods_for(load, target);
            prop_assert!(pods >= 1.0);
            prop_assert!(pods * target >= load * (1.0 - 1e-9));
            prop_assert!(pods == 1.0 || (pods - 1.0) * target < load);
            prop_assert!(pods_for(load + more, target) >= pods);
        }
    }
}
