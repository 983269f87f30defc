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
//! - capacity, as KEDA and the HPA would run it ([`sim`]): every step a
//!   policy asks for replicas, the HPA keeps the most asked for over the
//!   scale-down stabilisation window, and pods asked for are ready
//!   `pod_start_delay` steps later. The predictive policy decides from the
//!   forecast of the latest origin: the most its sizing load asks for over
//!   the lead window (from now to when the pods will be ready), and with
//!   the reactive floor at least what the last observed value needs. The
//!   reactive policy asks for the last observed value's pods, through the
//!   same HPA. Pods are `max(1, ceil(load / target_per_pod))`; a step is
//!   under-provisioned when its actual load needs more pods than were
//!   ready, and pod-time is compared with an oracle that runs exactly the
//!   pods each step needs. The trade-off curves replay the same forecasts
//!   at other objectives and fixed levels.

pub mod report;
pub mod sim;

use kedastral_model_sdk::{Forecast, ForecastRequest, Series};
use serde::Serialize;

pub use self::sim::CapacityOutcome;
use self::sim::HpaSim;
use crate::sizing::{self, Chooser, Curve, Sizing};

/// Objectives the trade-off curve replays.
pub const TRADEOFF_OBJECTIVES: [f64; 7] = [0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2];
/// Fixed levels the trade-off curve replays.
pub const TRADEOFF_LEVELS: [f64; 6] = [0.5, 0.75, 0.9, 0.95, 0.98, 0.99];

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
    pub sizing: Sizing,
    /// Steps between asking for pods and their being ready.
    pub pod_start_delay: usize,
    /// Steps the HPA keeps the most replicas asked for before scaling in.
    pub stabilization_steps: usize,
    /// The predictive policy asks for at least the last observed value's pods.
    pub reactive_floor: bool,
    pub params: Vec<(String, String)>,
}

/// A forecast at one origin and, when the shadow evaluation has enough
/// recent errors, the evidence for sizing to an objective.
pub struct Answer {
    pub forecast: Forecast,
    pub sizing: Option<SizingEvidence>,
}

impl From<Forecast> for Answer {
    fn from(forecast: Forecast) -> Self {
        Self {
            forecast,
            sizing: None,
        }
    }
}

/// The recent shortfall of every level of [`sizing::LEVELS`], and each
/// level's band for this forecast.
pub struct SizingEvidence {
    pub curve: Curve,
    pub bands: Vec<Vec<f64>>,
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
pub struct CapacityReport {
    pub target_per_pod: f64,
    pub sizing: SizingReport,
    pub pod_start_delay_steps: usize,
    pub stabilization_steps: usize,
    pub reactive_floor: bool,
    pub steps: usize,
    pub predictive: CapacityOutcome,
    pub reactive: CapacityOutcome,
    /// The same forecasts sized to other objectives, then on fixed levels.
    pub tradeoff: Vec<TradeoffPoint>,
}

/// How the predictive policy sized pods over the run.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SizingReport {
    pub rule: sizing::SizingRule,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_shortfall: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headroom: Option<f64>,
    /// For an objective: the origins sized on each level, and those sized
    /// on the warm-up headroom before there was evidence.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub levels_used: Vec<LevelUse>,
    pub warming_up_origins: usize,
    pub level_changes: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LevelUse {
    pub level: f64,
    pub origins: usize,
}

/// One point of the trade-off curve.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TradeoffPoint {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_shortfall: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<f64>,
    pub under_provisioned_share: f64,
    pub pod_time_over_oracle: f64,
    pub unserved_load_share: f64,
    pub scaling_changes_per_day: f64,
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
    /// Step by step, for the HTML report; not in the JSON.
    #[serde(skip)]
    pub trace: Trace,
}

/// What the evaluation saw and did, step by step: what `--report` draws.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    /// Every step decided, in order.
    pub steps: Vec<TraceStep>,
    /// Every origin whose forecast came.
    pub forecasts: Vec<OriginForecast>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceStep {
    /// Index into the series.
    pub index: usize,
    pub actual: f64,
    /// Pods ready under each policy.
    pub predictive: f64,
    pub reactive: f64,
    /// Before this the step only warmed the simulation up.
    pub counted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OriginForecast {
    /// Index of the first forecast step in the series.
    pub origin: usize,
    pub values: Vec<f64>,
    /// The widest central interval asked for: (level, lower, upper).
    pub band: Option<(f64, Vec<f64>, Vec<f64>)>,
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
    mut forecast: impl FnMut(&ForecastRequest) -> Result<Answer, OriginFailure>,
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

    let sizing_quantile = match config.sizing {
        Sizing::Quantile(q) => Some(q),
        _ => None,
    };
    let levels = quantile_levels(&config.intervals, sizing_quantile);
    let sizing_band = sizing_quantile.map(|q| {
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
    let delay = config.pod_start_delay;
    let hpa = || {
        HpaSim::new(
            config.target_per_pod,
            delay,
            config.stabilization_steps,
            step_minutes,
        )
    };
    let mut predictive = Policy::new(config.sizing, hpa());
    let mut reactive = hpa();
    let mut tradeoff: Vec<Policy> = TRADEOFF_OBJECTIVES
        .iter()
        .map(|&t| Sizing::Objective(t))
        .chain(TRADEOFF_LEVELS.iter().map(|&q| Sizing::Quantile(q)))
        .map(|sizing| Policy::new(sizing, hpa()))
        .collect();
    // Steps before this only warm the HPA's windows up.
    let counted_from = first + delay + config.stabilization_steps;
    let mut failed = 0usize;
    let mut first_failure = None;
    let mut trace = Trace::default();

    for &origin in &origins {
        let from = origin.saturating_sub(config.max_history);
        let request = ForecastRequest {
            history: series.slice(from, origin),
            horizon: config.horizon,
            quantiles: levels.clone(),
            params: config.params.clone(),
        };
        let answer = match forecast(&request) {
            Ok(a) => Some(a),
            Err(OriginFailure::Stop(message)) => {
                return Err(BacktestError::Stopped { origin, message });
            }
            Err(OriginFailure::Skip(e)) => {
                failed += 1;
                first_failure.get_or_insert(format!("origin {origin}: {e}"));
                None
            }
        };
        // Each policy's load per lead from this origin; `None`: the forecast
        // failed, and the policy falls back on the reactive decision, as
        // the service keeps serving its last good answer.
        let served_band = |a: &Answer| sizing_band.map(|b| a.forecast.quantiles[b].values.clone());
        let main_loads = answer.as_ref().map(|a| predictive.loads(a, served_band(a)));
        let other_loads: Vec<Option<Vec<f64>>> = tradeoff
            .iter_mut()
            .map(|p| answer.as_ref().map(|a| p.loads(a, None)))
            .collect();
        // Capacity: a decision every step until the next origin.
        for k0 in 0..config.stride {
            let t = origin + k0;
            let last_observed = y[..t].iter().rev().copied().find(|v| !v.is_nan());
            let actual = y[t];
            let counted = t >= counted_from;
            let reactive_load = last_observed.unwrap_or(0.0);
            let floor = last_observed.filter(|_| config.reactive_floor);
            let target = config.target_per_pod;
            let ask = |loads: &Option<Vec<f64>>| {
                let planned = loads.as_ref().map_or(reactive_load, |l| {
                    l[k0..=k0 + delay]
                        .iter()
                        .copied()
                        .fold(f64::NEG_INFINITY, f64::max)
                        .max(floor.unwrap_or(f64::NEG_INFINITY))
                });
                pods_for(planned, target)
            };
            predictive.step(ask(&main_loads), actual, counted);
            for (policy, loads) in tradeoff.iter_mut().zip(&other_loads) {
                policy.step(ask(loads), actual, counted);
            }
            reactive.step(pods_for(reactive_load, target), actual, counted);
            trace.steps.push(TraceStep {
                index: t,
                actual,
                predictive: predictive.sim.ready(),
                reactive: reactive.ready(),
                counted,
            });
        }
        let Some(f) = answer.as_ref().map(|a| &a.forecast) else {
            continue;
        };
        let widest = config
            .intervals
            .iter()
            .copied()
            .fold(None, |w: Option<f64>, l| Some(w.map_or(l, |w| w.max(l))));
        trace.forecasts.push(OriginForecast {
            origin,
            values: f.values.clone(),
            band: widest.map(|level| {
                let (lo, hi) = band_pair(f, &levels, level);
                (level, lo.to_vec(), hi.to_vec())
            }),
        });
        for lead in 0..h {
            let t = origin + lead;
            let actual = y[t];
            if actual.is_nan() {
                continue;
            }
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
            sizing: predictive.report(),
            pod_start_delay_steps: delay,
            stabilization_steps: config.stabilization_steps,
            reactive_floor: config.reactive_floor,
            steps: predictive.sim.steps(),
            predictive: predictive.sim.outcome(),
            reactive: reactive.outcome(),
            tradeoff: tradeoff.iter().map(Policy::tradeoff_point).collect(),
        },
        selection: None,
        trace,
    })
}

/// One way of sizing, replayed through its own HPA.
struct Policy {
    sizing: Sizing,
    chooser: Option<Chooser>,
    sim: HpaSim,
    /// Origins sized on each of [`sizing::LEVELS`] (objectives only).
    used: Vec<usize>,
    warming_up: usize,
}

impl Policy {
    fn new(sizing: Sizing, sim: HpaSim) -> Self {
        Self {
            chooser: match sizing {
                Sizing::Objective(t) => Some(Chooser::new(t)),
                _ => None,
            },
            sizing,
            sim,
            used: vec![0; sizing::LEVELS.len()],
            warming_up: 0,
        }
    }

    /// One step through the HPA; an objective learns whether it fell short.
    fn step(&mut self, pods: f64, actual: f64, counted: bool) {
        let short = self.sim.step(pods, actual, counted);
        if let (Some(chooser), Some(short)) = (self.chooser.as_mut(), short) {
            chooser.observe(short);
        }
    }

    /// The load to size on at each lead of `answer`. `served` is the
    /// served forecast's own band at a quantile level, when one is asked
    /// for; otherwise a level's band comes from the sizing evidence (or the
    /// point forecast times the warm-up headroom without it).
    fn loads(&mut self, answer: &Answer, served: Option<Vec<f64>>) -> Vec<f64> {
        let point = &answer.forecast.values;
        let times = |h: f64| point.iter().map(|v| v * h).collect();
        let level = match self.sizing {
            Sizing::Headroom(h) => return times(h),
            Sizing::Quantile(q) => {
                if let Some(band) = served {
                    return band;
                }
                sizing::LEVELS.iter().position(|&l| (l - q).abs() < 1e-9)
            }
            Sizing::Objective(_) => {
                let chooser = self.chooser.as_mut().expect("objective");
                answer.sizing.as_ref().map(|e| chooser.choose(&e.curve))
            }
        };
        match (level, &answer.sizing) {
            (Some(l), Some(evidence)) => {
                self.used[l] += 1;
                evidence.bands[l].clone()
            }
            _ => {
                self.warming_up += 1;
                times(sizing::WARM_UP_HEADROOM)
            }
        }
    }

    fn report(&self) -> SizingReport {
        let (rule, target_shortfall, level, headroom) = match self.sizing {
            Sizing::Objective(t) => (
                sizing::SizingRule::Objective,
                Some(t),
                self.chooser.as_ref().and_then(Chooser::level),
                None,
            ),
            Sizing::Quantile(q) => (sizing::SizingRule::QuantileLevel, None, Some(q), None),
            Sizing::Headroom(h) => (sizing::SizingRule::Headroom, None, None, Some(h)),
        };
        SizingReport {
            rule,
            target_shortfall,
            level,
            headroom,
            levels_used: match self.sizing {
                Sizing::Objective(_) => sizing::LEVELS
                    .iter()
                    .zip(&self.used)
                    .filter(|(_, n)| **n > 0)
                    .map(|(&level, &origins)| LevelUse { level, origins })
                    .collect(),
                _ => Vec::new(),
            },
            warming_up_origins: self.warming_up,
            level_changes: self.chooser.as_ref().map_or(0, Chooser::changes),
        }
    }

    fn tradeoff_point(&self) -> TradeoffPoint {
        let o = self.sim.outcome();
        let (target_shortfall, level) = match self.sizing {
            Sizing::Objective(t) => (Some(t), None),
            Sizing::Quantile(q) => (None, Some(q)),
            Sizing::Headroom(_) => (None, None),
        };
        TradeoffPoint {
            target_shortfall,
            level,
            under_provisioned_share: o.under_provisioned_share,
            pod_time_over_oracle: o.pod_time_over_oracle,
            unserved_load_share: o.unserved_load_share,
            scaling_changes_per_day: o.scaling_changes_per_day,
        }
    }
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
    match config.sizing {
        Sizing::Quantile(q) if !(q > 0.0 && q < 1.0) => {
            return bad("the sizing quantile level must be strictly between 0 and 1");
        }
        Sizing::Objective(t) if !(t > 0.0 && t < 0.5) => {
            return bad("the target shortfall must be above 0 and below 50 %");
        }
        Sizing::Headroom(h) if !(h.is_finite() && h >= 1.0) => {
            return bad("headroom must be a number >= 1");
        }
        _ => {}
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
            sizing: Sizing::Headroom(1.0),
            pod_start_delay: 0,
            stabilization_steps: 0,
            reactive_floor: false,
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
    fn oracle(values: Vec<f64>) -> impl FnMut(&ForecastRequest) -> Result<Answer, OriginFailure> {
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
            }
            .into())
        }
    }

    #[test]
    fn the_scale_down_window_holds_a_peak_and_the_trade_off_replays_every_objective() {
        // One spike in a flat series: the oracle asks for it, and with a
        // 3-step stabilisation window the pods stay three steps after it.
        let mut values = vec![10.0; 60];
        values[30] = 50.0;
        let series = Series::new(0, 60, values.clone());
        let mut held = config();
        held.horizon = 4;
        held.stride = 1;
        held.stabilization_steps = 3;
        let report = run(&series, &held, 2, oracle(values.clone())).unwrap();
        let c = &report.capacity;
        assert_eq!(c.predictive.under_provisioned_share, 0.0);
        assert_eq!(c.predictive.over_provisioned_pod_steps, 12.0);
        assert_eq!(c.stabilization_steps, 3);
        // Without sizing evidence every objective warms up on the point x
        // 1.2, and each fixed level falls back the same way.
        assert_eq!(
            c.tradeoff.len(),
            TRADEOFF_OBJECTIVES.len() + TRADEOFF_LEVELS.len()
        );
        assert!(c.tradeoff.iter().all(|p| p.under_provisioned_share == 0.0));
        // The reactive floor keeps the last value's pods: one step of 5
        // pods after the spike, beyond what the window holds.
        held.reactive_floor = true;
        let floored = run(&series, &held, 2, oracle(values)).unwrap();
        assert_eq!(
            floored.capacity.predictive.over_provisioned_pod_steps,
            12.0 + 4.0
        );
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
        assert_eq!(report.capacity.predictive.pod_time_over_oracle, 0.0);
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
