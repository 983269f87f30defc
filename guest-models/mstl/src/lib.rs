//! MSTL for Kedastral: the history is split into daily and weekly seasonal
//! components and what is left, which a damped-trend exponential smoother
//! (ETS(A,Ad,N)) forecasts; the seasonal components are added back at the
//! times forecast.
//!
//! How a request is answered:
//! 1. leading missing values are dropped, interior ones filled by linear
//!    interpolation; the forecast starts from the last observation, so
//!    trailing gaps are forecast over;
//! 2. the seasons: a day when the step divides it and the history spans two
//!    days, a week too when it spans two weeks (`seasons` can narrow that);
//! 3. decomposition ([`decompose`]), twice round the seasons, shortest
//!    first: the series less the other seasons is detrended by a centred
//!    moving average one season long, and each phase of the season (keyed
//!    by clock time) gets the median of its last cycles, smoothed along the
//!    phases and centred on zero;
//! 4. the seasonally adjusted series is forecast by ETS(A,Ad,N) ([`ets`]),
//!    its smoothing and damping chosen on a grid by the one-step errors of
//!    the last `max-fit-points` points. Errors beyond `clip` robust
//!    standard deviations update the states as if they were at that bound,
//!    so a spike neither moves the level nor widens the bands much, while a
//!    lasting change of level is followed within a few steps;
//! 5. bands: `point + z * sigma * sqrt(1 + sum_{j<h} c_j^2)` with the
//!    model's own `c_j`, and with `non-negative` everything is clamped at 0.

pub mod decompose;
pub mod ets;

use kedastral_model_sdk::stats::{all_non_negative, larger, normal_quantile};
use kedastral_model_sdk::{
    Forecast, ForecastRequest, Model, ModelError, ModelInfo, Params, QuantileBand,
};

pub struct Mstl;

kedastral_model_sdk::export_model!(Mstl);

pub const MIN_HISTORY: usize = 2;
const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Seasons {
    Auto,
    Daily,
    None,
}

struct Config {
    seasons: Seasons,
    max_fit_points: usize,
    clip: f64,
    non_negative: Option<bool>,
}

impl Config {
    fn from_request(request: &ForecastRequest, info: &ModelInfo) -> Result<Self, ModelError> {
        let p = Params::new(&request.params, &info.params)?;
        let clip: f64 = p.get("clip")?;
        if !(clip == 0.0 || (clip.is_finite() && clip >= 1.0)) {
            return Err(ModelError::InvalidInput(format!(
                "parameter `clip` = {clip}: use 0 (off) or a threshold >= 1"
            )));
        }
        Ok(Self {
            seasons: p.choice(
                "seasons",
                &[
                    ("auto", Seasons::Auto),
                    ("daily", Seasons::Daily),
                    ("none", Seasons::None),
                ],
            )?,
            max_fit_points: p.in_range("max-fit-points", 10..=1_000_000)?,
            clip,
            non_negative: p.switch("non-negative")?,
        })
    }
}

impl Model for Mstl {
    fn info() -> ModelInfo {
        ModelInfo::new(
            "mstl",
            env!("CARGO_PKG_VERSION"),
            "daily and weekly seasonal decomposition (MSTL) with a robust damped-trend exponential smoother on the rest",
            MIN_HISTORY as u32,
        )
        .param("seasons", "auto", "auto (daily from 2 days of history, weekly from 2 weeks), daily, or none")
        .param("max-fit-points", "2880", "the smoother's parameters are chosen on this many of the latest points")
        .param("clip", "4", "robust standard deviations beyond which an error is clipped when updating; 0 turns clipping off")
        .param("non-negative", "auto", "clamp the forecast at zero: auto (when the history is), true or false")
    }

    fn forecast(request: &ForecastRequest) -> Result<Forecast, ModelError> {
        request.validate()?;
        let config = Config::from_request(request, &Self::info())?;
        let history = &request.history;
        let observed = history.observed_count();
        if observed < MIN_HISTORY {
            return Err(ModelError::insufficient(MIN_HISTORY, observed));
        }
        let first = history
            .values
            .iter()
            .position(|v| !v.is_nan())
            .expect("observed");
        let last = history
            .values
            .iter()
            .rposition(|v| !v.is_nan())
            .expect("observed");
        let mut y = history.values[first..=last].to_vec();
        decompose::fill_gaps(&mut y);
        let step = i64::from(history.step_seconds);
        let start = history.time_of(first);
        // Steps from the last observation to the end of the history.
        let behind = history.len() - 1 - last;
        let horizon = request.horizon as usize;

        let span = y.len() as i64 * step;
        let mut periods = Vec::new();
        if config.seasons != Seasons::None && DAY % step == 0 && DAY / step >= 4 {
            if span >= 2 * DAY {
                periods.push((DAY / step) as usize);
            }
            if config.seasons == Seasons::Auto && span >= 2 * WEEK {
                periods.push((WEEK / step) as usize);
            }
        }
        // Phase 0 of every season is midnight UTC (a Monday for the week).
        let phase0 = |period: usize| {
            let season = period as i64 * step;
            // 1970-01-01 was a Thursday: Mondays are 4 days later.
            let anchor = if season == WEEK { 4 * DAY } else { 0 };
            ((start - anchor).rem_euclid(season) / step) as usize
        };
        let profiles: Vec<(usize, usize, Vec<f64>)> = decompose::profiles(&y, &periods, phase0)
            .into_iter()
            .zip(&periods)
            .map(|(profile, &p)| (p, phase0(p), profile))
            .collect();
        let seasonal_at = |i: usize| -> f64 {
            profiles
                .iter()
                .map(|(p, offset, profile)| profile[(offset + i) % p])
                .sum()
        };
        let adjusted: Vec<f64> = y
            .iter()
            .enumerate()
            .map(|(i, v)| v - seasonal_at(i))
            .collect();
        let fit_from = adjusted.len().saturating_sub(config.max_fit_points);
        let fit = ets::fit(&adjusted, fit_from, config.clip);

        let n = y.len();
        let steps = behind + horizon;
        let mut point: Vec<f64> = (1..=steps)
            .skip(behind)
            .map(|h| fit.predict(h) + seasonal_at(n - 1 + h))
            .collect();
        let clamp = config.non_negative.unwrap_or_else(|| all_non_negative(&y));
        let floor = if clamp { 0.0 } else { f64::NEG_INFINITY };
        let quantiles: Vec<QuantileBand> = request
            .quantiles
            .iter()
            .map(|&level| {
                let z = normal_quantile(level);
                QuantileBand {
                    level,
                    values: point
                        .iter()
                        .enumerate()
                        .map(|(k, p)| larger(p + z * fit.sd(behind + k + 1), floor))
                        .collect(),
                }
            })
            .collect();
        for v in &mut point {
            *v = larger(*v, floor);
        }
        Forecast {
            values: point,
            quantiles,
        }
        .ordered_and_finite()
    }
}

#[cfg(test)]
mod tests;
