//! Kedastral's default model: a seasonal baseline that follows the level.
//!
//! What is where:
//! - this file: [`Baseline`] (the [`Model`] implementation), its parameters,
//!   the choice of seasonality for a history, and assembling the forecast;
//! - `clock`: daily and weekly profiles keyed by clock time, for any step;
//! - `smoother`: the single O(n) pass, a robust Holt-Winters smoother in which
//!   three level models compete (seasonal level, seasonal level with damped
//!   trend, plain level), each replaying its own forecasts to be scored;
//! - `bands`: quantile bands from the winner's replayed, out-of-sample errors.
//!
//! The forecast at lead `h` is `level + damped trend + daily profile +
//! weekly correction` at the clock time of the `h`-th step after the history
//! (the profiles left out if the plain level won the replay). Seasonality
//! needs history: with `season=auto`, a daily profile from 2 days of observed
//! span, a weekly correction from 2 weeks. With less, the model is a smoothed
//! level with a damped trend; one observed point is enough to answer.

mod bands;
mod clock;
mod smoother;

use kedastral_model_sdk::stats::{all_non_negative, larger};
use kedastral_model_sdk::{
    Forecast, ForecastRequest, Model, ModelError, ModelInfo, Params, QuantileBand,
};

use clock::{DAY, Profile, WEEK};
use smoother::Settings;

pub struct Baseline;

kedastral_model_sdk::export_model!(Baseline);

/// The replay scores the last day: recent enough that a pattern that changed
/// a few days ago no longer counts, long enough to hold a full cycle (with
/// at least `MIN_REPLAY_POINTS` points for coarse steps and at most
/// `MAX_REPLAY_POINTS` for fine ones). About `REPLAY_SAMPLES` evenly spaced
/// points of it are scored: enough errors per lead for 5% and 95% quantiles,
/// few enough to select from quickly.
const MIN_REPLAY_POINTS: usize = 256;
const MAX_REPLAY_POINTS: usize = 4_096;
const REPLAY_SAMPLES: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Season {
    Auto,
    Daily,
    None,
}

struct Config {
    season: Season,
    /// `None`: clamp when the history is non-negative.
    non_negative: Option<bool>,
    alpha: f64,
    beta: f64,
    phi: f64,
    day_gain: f64,
    clip: f64,
    shift_points: usize,
    profile_seconds: i64,
}

impl Config {
    fn from_request(request: &ForecastRequest, info: &ModelInfo) -> Result<Self, ModelError> {
        let p = Params::new(&request.params, &info.params)?;
        let profile_seconds: i64 = p.get("profile-step-seconds")?;
        if !(1..=DAY).contains(&profile_seconds) {
            return Err(ModelError::InvalidInput(format!(
                "parameter `profile-step-seconds` = {profile_seconds} is outside [1, {DAY}]"
            )));
        }
        Ok(Self {
            season: p.choice(
                "season",
                &[
                    ("auto", Season::Auto),
                    ("daily", Season::Daily),
                    ("none", Season::None),
                ],
            )?,
            non_negative: p.switch("non-negative")?,
            alpha: p.in_range("alpha", 0.0..=1.0)?,
            beta: p.in_range("beta", 0.0..=1.0)?,
            phi: p.in_range("phi", 0.0..=1.0)?,
            day_gain: p.in_range("day-gain", 0.0..=1.0)?,
            clip: {
                let c: f64 = p.get("clip")?;
                if c.is_nan() || c <= 0.0 {
                    return Err(ModelError::InvalidInput(format!(
                        "parameter `clip` = {c} must be > 0"
                    )));
                }
                c
            },
            shift_points: p.get("shift-points")?,
            profile_seconds,
        })
    }
}

/// Replay leads, about 30% apart, up to the furthest lead the replay can
/// score (less than a day with a daily profile): errors at neighbouring leads
/// are nearly the same, and each scored lead costs a sort.
fn replay_leads(horizon: usize, limit: usize) -> Vec<usize> {
    let last = horizon.min(limit).max(1);
    let mut leads = Vec::new();
    let mut h = 1;
    while h < last {
        leads.push(h);
        h = (h + 1).max(h * 13 / 10);
    }
    leads.push(last);
    leads
}

impl Model for Baseline {
    fn info() -> ModelInfo {
        ModelInfo::new(
            "baseline",
            env!("CARGO_PKG_VERSION"),
            "Seasonal baseline: robust smoothed level with damped trend plus daily \
             and weekly clock-time profiles; quantiles from replayed forecast errors",
            1,
        )
        .param(
            "season",
            "auto",
            "auto (daily profile from 2 days of history, weekly correction from 2 weeks), \
             daily (daily profile from 1 day, never weekly) or none",
        )
        .param(
            "non-negative",
            "auto",
            "clamp forecast and bands at 0: true, false, or auto (when all history is >= 0)",
        )
        .param("alpha", "0.1", "level smoothing per step, in [0, 1]")
        .param(
            "beta",
            "0.02",
            "trend smoothing per step of the trended level model, in [0, 1]",
        )
        .param("phi", "0.99", "trend damping per step, in [0, 1]")
        .param(
            "day-gain",
            "0.2",
            "daily profile smoothing per observation, in [0, 1]",
        )
        .param(
            "clip",
            "3",
            "errors beyond this many median absolute errors are clipped",
        )
        .param(
            "shift-points",
            "6",
            "this many errors in a row beyond the clip, on one side, are a change of level \
             that the level follows at once (0: never)",
        )
        .param(
            "profile-step-seconds",
            "300",
            "finest resolution of the daily profile, in seconds",
        )
    }

    fn forecast(request: &ForecastRequest) -> Result<Forecast, ModelError> {
        request.validate()?;
        let config = Config::from_request(request, &Self::info())?;
        let history = &request.history;
        let values = &history.values;
        let step = i64::from(history.step_seconds);
        let horizon = request.horizon as usize;

        let first = values.iter().position(|v| !v.is_nan());
        let last = values.iter().rposition(|v| !v.is_nan());
        let (Some(first), Some(last)) = (first, last) else {
            return Err(ModelError::insufficient(1, 0));
        };
        let span = (last - first) as i64 * step;

        // A profile needs a few points per cycle to mean anything.
        let day_ok = step * 4 <= DAY;
        let (min_day, min_week) = match config.season {
            Season::Auto => (Some(2 * DAY), Some(2 * WEEK)),
            Season::Daily => (Some(DAY), None),
            Season::None => (None, None),
        };
        let daily = day_ok && min_day.is_some_and(|m| span >= m);
        let weekly = daily && min_week.is_some_and(|m| span >= m);

        let day_buckets =
            daily.then(|| Profile::buckets_for(DAY, step, (DAY / config.profile_seconds) as usize));
        // The weekly correction only carries what differs between days; an
        // hour resolves that, and each hour bucket then learns from many points.
        let week_buckets = weekly.then(|| Profile::buckets_for(WEEK, step, 7 * 24));

        let lead_limit = match day_buckets {
            // A replayed lead must not reach a daily bucket updated since its
            // origin, a day less the two buckets a point touches.
            Some(buckets) => {
                let per_day = (DAY / step) as usize;
                per_day
                    .saturating_sub(2 * per_day.div_ceil(buckets) + 1)
                    .max(1)
            }
            None => usize::MAX,
        };
        let settings = Settings {
            alpha: config.alpha,
            beta: config.beta,
            phi: config.phi,
            day_buckets,
            week_buckets,
            day_gain: config.day_gain,
            clip: config.clip,
            scale_gain: 0.05,
            shift_points: config.shift_points,
            leads: replay_leads(horizon, lead_limit),
            replay_points: ((DAY / step) as usize).clamp(MIN_REPLAY_POINTS, MAX_REPLAY_POINTS),
            replay_samples: REPLAY_SAMPLES,
        };
        let mut fit = smoother::fit(values, history.start_unix_seconds, step, &settings);

        let n = values.len();
        let mut point: Vec<f64> = (1..=horizon)
            .map(|h| fit.predict(h, history.time_of(n - 1 + h)))
            .collect();
        let offsets = bands::offsets(
            &mut fit.errors,
            &fit.leads,
            &request.quantiles,
            horizon,
            fit.scale,
        );

        let clamp_at_zero = config
            .non_negative
            .unwrap_or_else(|| all_non_negative(values));
        let floor = if clamp_at_zero {
            0.0
        } else {
            f64::NEG_INFINITY
        };
        let quantiles: Vec<QuantileBand> = request
            .quantiles
            .iter()
            .zip(&offsets)
            .map(|(&level, off)| QuantileBand {
                level,
                values: point
                    .iter()
                    .zip(off)
                    .map(|(p, o)| larger(p + o, floor))
                    .collect(),
            })
            .collect();
        for v in &mut point {
            *v = larger(*v, floor);
        }
        // Bands from one sorted sample are ordered already; ordering guards
        // against rounding in the interpolation between leads.
        Forecast {
            values: point,
            quantiles,
        }
        .ordered_and_finite()
    }
}

#[cfg(test)]
mod tests;
