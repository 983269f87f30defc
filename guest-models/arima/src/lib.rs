//! ARIMA(p, d, q) for Kedastral: a real Box-Jenkins model (conditional sum
//! of squares, then exact maximum likelihood on windows up to
//! [`ML_MAX_POINTS`]), with automatic order selection and daily seasonal
//! adjustment for load traces.
//!
//! What is where:
//! - this file: [`Arima`] (the [`Model`] implementation), its parameters,
//!   preparing the history (missing values, seasonal adjustment, fit window)
//!   and assembling the forecast;
//! - [`fit`]: [`ArimaSpec`], [`fit()`] for one order (CSS starting values, then
//!   exact ML), [`FittedArima`] with its forecasts and intervals;
//! - [`auto`]: [`auto_fit`], `auto.arima`-style order search (KPSS for `d`,
//!   stepwise AICc walk over `p`, `q` and the constant);
//! - [`seasonal`]: the daily profile keyed by clock time;
//! - `css`, `kalman`, `ml`, `lm`: the conditional sum of squares, the exact
//!   likelihood by Kalman filter and as a sum of squares, and the
//!   Levenberg-Marquardt solver both are minimised with;
//! - [`poly`], [`diff`]: lag polynomials (stationarity, psi-weights) and
//!   differencing.
//!
//! How a request is answered:
//! 1. leading missing values are dropped; trailing ones are forecast over
//!    (the model forecasts from the last observation and the answer starts
//!    where the history ends);
//! 2. with `seasonal=auto` and at least two days of history, a daily profile
//!    is removed ([`seasonal`]), then interior gaps are filled by linear
//!    interpolation of the adjusted series, so a gap keeps the daily shape;
//! 3. isolated spikes in the last `max-fit-points` adjusted points are
//!    replaced by their running median ([`diff::clip_spikes`], like R's
//!    `tsclean`): a one-step spike cannot be forecast, and left in it drags
//!    the mean and inflates sigma (on the bundled EC2 trace it tripled the
//!    MASE); ARIMA is fitted on those points (the profile uses the whole
//!    history), forecasts and intervals come from it,
//!    `sd_h = sigma * sqrt(sum_{j<h} psi_j^2)`, band = point + z * sd_h;
//! 4. the profile is added back at the clock times forecast, and with
//!    `non-negative` everything is clamped at zero.

pub mod auto;
mod css;
pub mod diff;
pub mod fit;
mod kalman;
mod lm;
mod ml;
pub mod poly;
pub mod seasonal;

use kedastral_model_sdk::stats::all_non_negative;
use kedastral_model_sdk::{
    Forecast, ForecastRequest, Model, ModelError, ModelInfo, Params, QuantileBand,
};

pub use auto::{AutoOptions, auto_fit, kpss_level, ndiffs};
pub use fit::{ArimaForecast, ArimaSpec, FitError, FittedArima, InfoCriterion, Method, fit};
pub use seasonal::DailyProfile;

pub struct Arima;

kedastral_model_sdk::export_model!(Arima);

/// Fewest observed points the model answers from: two give one difference,
/// enough for a random walk and its variance.
pub const MIN_HISTORY: usize = 2;

/// Default fit window. `order=auto` on this many 1-minute points stays
/// within a few milliseconds natively; more rarely changes a 30-step
/// forecast, because the daily shape (learnt from the whole history) is
/// already removed and what is left is short-memory.
pub const DEFAULT_MAX_FIT_POINTS: usize = 2_000;

/// With `method=auto`, fit windows up to this long get exact maximum
/// likelihood, longer ones CSS alone. CSS differs from ML only through the
/// first few dozen points (after them the Kalman filter runs the same
/// recursion), an O(1/n) effect that is far inside the estimates' O(1/sqrt n)
/// error at this length, while ML polishing would double the fit time. On
/// the bundled traces both methods give the same MASE to 0.01.
pub const ML_MAX_POINTS: usize = 1_000;

/// Half-width of the running median spikes are judged against: a burst
/// lasting more than this many steps moves the median and is kept as real.
const SPIKE_HALF_WINDOW: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Order {
    Auto,
    Fixed { p: usize, d: usize, q: usize },
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Config {
    order: Order,
    /// `None`: exact ML up to [`ML_MAX_POINTS`], CSS beyond.
    method: Option<Method>,
    auto: AutoOptions,
    seasonal: bool,
    max_fit_points: usize,
    /// Robust standard deviations beyond which an isolated point is a spike;
    /// 0 turns clipping off.
    clip_spikes: f64,
    /// `None`: clamp when the history is non-negative.
    non_negative: Option<bool>,
}

/// Largest AR or MA order accepted: the state dimension grows with it and
/// the likelihood's cost with its square.
const MAX_ORDER: usize = 10;

fn parse_order(raw: &str) -> Result<Order, ModelError> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("auto") {
        return Ok(Order::Auto);
    }
    let bad = || {
        ModelError::InvalidInput(format!(
            "parameter `order`: `{raw}` is neither `auto` nor `p,d,q` (e.g. `1,1,1`)"
        ))
    };
    let parts: Vec<usize> = raw
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(|s| s.trim().parse::<usize>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [p, d, q] = parts[..] else {
        return Err(bad());
    };
    if p > MAX_ORDER || q > MAX_ORDER || d > 2 {
        return Err(ModelError::InvalidInput(format!(
            "parameter `order` = {raw}: p and q must be <= {MAX_ORDER}, d <= 2"
        )));
    }
    Ok(Order::Fixed { p, d, q })
}

impl Config {
    fn from_request(request: &ForecastRequest, info: &ModelInfo) -> Result<Self, ModelError> {
        let p = Params::new(&request.params, &info.params)?;
        let auto = AutoOptions {
            max_p: p.in_range("max-p", 0..=MAX_ORDER)?,
            max_q: p.in_range("max-q", 0..=MAX_ORDER)?,
            max_d: p.in_range("max-d", 0..=2)?,
            ic: p.choice(
                "ic",
                &[
                    ("aicc", InfoCriterion::Aicc),
                    ("aic", InfoCriterion::Aic),
                    ("bic", InfoCriterion::Bic),
                ],
            )?,
            constant: p.choice(
                "constant",
                &[("auto", None), ("true", Some(true)), ("false", Some(false))],
            )?,
            stepwise: p.choice("stepwise", &[("true", true), ("false", false)])?,
            // Replaced per request once the fit window is known (`method`).
            method: Method::CssMl,
        };
        Ok(Self {
            method: p.choice(
                "method",
                &[
                    ("auto", None),
                    ("css-ml", Some(Method::CssMl)),
                    ("css", Some(Method::Css)),
                ],
            )?,
            order: parse_order(p.raw("order"))?,
            auto,
            seasonal: p.choice("seasonal", &[("auto", true), ("none", false)])?,
            max_fit_points: p.in_range("max-fit-points", 10..=1_000_000)?,
            clip_spikes: {
                let k: f64 = p.get("clip-spikes")?;
                if !(k == 0.0 || (k.is_finite() && k >= 1.0)) {
                    return Err(ModelError::InvalidInput(format!(
                        "parameter `clip-spikes` = {k}: use 0 (off) or a threshold >= 1"
                    )));
                }
                k
            },
            non_negative: p.switch("non-negative")?,
        })
    }
}

impl Model for Arima {
    fn info() -> ModelInfo {
        ModelInfo::new(
            "arima",
            env!("CARGO_PKG_VERSION"),
            "ARIMA(p,d,q) by CSS / exact maximum likelihood, auto.arima-style order search, daily seasonal adjustment",
            MIN_HISTORY as u32,
        )
        .param("order", "auto", "`auto` (KPSS for d, stepwise search for p, q) or a fixed `p,d,q`")
        .param("ic", "aicc", "criterion order=auto minimises: aicc, aic or bic")
        .param("max-p", "3", "largest AR order order=auto tries")
        .param("max-q", "3", "largest MA order order=auto tries")
        .param("max-d", "2", "most differences order=auto takes")
        .param("stepwise", "true", "order=auto walks stepwise (true) or tries every p, q (false)")
        .param("constant", "auto", "mean (d=0) or drift (d=1): auto (searched; fixed orders: mean only), true, false")
        .param("method", "auto", "estimation: css-ml (CSS start, exact ML), css, or auto (css-ml up to 1000 points, css beyond)")
        .param("seasonal", "auto", "auto removes a daily clock-time profile when history spans 2 days; none")
        .param("max-fit-points", "2000", "fit on at most this many most recent points (speed bound)")
        .param("clip-spikes", "5", "before fitting, replace isolated spikes beyond this many robust SDs of the local median; 0 = off")
        .param("non-negative", "auto", "clamp forecasts at 0: auto (when all history >= 0), true, false")
    }

    fn forecast(request: &ForecastRequest) -> Result<Forecast, ModelError> {
        request.validate()?;
        let config = Config::from_request(request, &Self::info())?;
        let observed = request.history.observed_count();
        if observed < MIN_HISTORY {
            return Err(ModelError::insufficient(MIN_HISTORY, observed));
        }
        answer(request, &config)
    }
}

fn answer(request: &ForecastRequest, config: &Config) -> Result<Forecast, ModelError> {
    let history = &request.history;
    let values = &history.values;
    let first = values
        .iter()
        .position(|v| !v.is_nan())
        .expect("observed points were counted");
    let last = values
        .iter()
        .rposition(|v| !v.is_nan())
        .expect("observed points were counted");
    let span = &values[first..=last];
    let start = history.time_of(first);
    let step = i64::from(history.step_seconds);
    let horizon = request.horizon as usize;
    // Steps from the last observation to the end of the answer.
    let ahead = values.len() - 1 - last + horizon;

    let profile = config
        .seasonal
        .then(|| DailyProfile::estimate(start, history.step_seconds, span))
        .flatten();
    let offset = |i: usize| {
        profile
            .as_ref()
            .map_or(0.0, |p| p.at(start + i as i64 * step))
    };
    let mut adjusted: Vec<f64> = span
        .iter()
        .enumerate()
        .map(|(i, v)| v - offset(i))
        .collect();
    diff::interpolate_missing(&mut adjusted);
    let from = adjusted.len().saturating_sub(config.max_fit_points);
    let window = &mut adjusted[from..];
    if config.clip_spikes > 0.0 {
        diff::clip_spikes(window, SPIKE_HALF_WINDOW, config.clip_spikes);
    }
    let window = &*window;
    let mut config = *config;
    config.auto.method = config.method.unwrap_or(if window.len() <= ML_MAX_POINTS {
        Method::CssMl
    } else {
        Method::Css
    });

    let fitted = fit_window(window, &config)
        .map_err(|e| ModelError::Internal(format!("ARIMA fit failed: {e}")))?;
    let fc = fitted.forecast(ahead, &request.quantiles);

    let non_negative = config
        .non_negative
        .unwrap_or_else(|| all_non_negative(span));
    let skip = ahead - horizon;
    let finish = |series: &[f64]| -> Vec<f64> {
        series[skip..]
            .iter()
            .enumerate()
            .map(|(k, v)| {
                let v = v + offset(span.len() + skip + k);
                if non_negative { v.max(0.0) } else { v }
            })
            .collect()
    };
    let forecast = Forecast {
        values: finish(&fc.mean),
        quantiles: fc
            .bands
            .iter()
            .map(|(level, band)| QuantileBand {
                level: *level,
                values: finish(band),
            })
            .collect(),
    };
    let all_finite = forecast
        .values
        .iter()
        .chain(forecast.quantiles.iter().flat_map(|b| &b.values))
        .all(|v| v.is_finite());
    if !all_finite {
        return Err(ModelError::Internal(format!(
            "{} produced a non-finite forecast",
            fitted.spec()
        )));
    }
    Ok(forecast)
}

/// Fits the configured order, falling back to simpler orders when the window
/// is too short for it (fewer AR/MA terms first, then no constant, then a
/// random walk) rather than refusing to forecast.
fn fit_window(y: &[f64], config: &Config) -> Result<FittedArima, FitError> {
    let Order::Fixed { p, d, q } = config.order else {
        return auto_fit(y, &config.auto);
    };
    let constant = config.auto.constant.unwrap_or(d == 0) && d < 2;
    let mut spec = ArimaSpec::new(p, d, q, constant);
    loop {
        if y.len() >= spec.min_points()
            && let Ok(f) = fit(y, spec, config.auto.method)
        {
            return Ok(f);
        }
        spec = match spec {
            ArimaSpec {
                p: 0,
                q: 0,
                constant: false,
                ..
            } => break,
            s if s.p + s.q == 0 => ArimaSpec {
                constant: false,
                ..s
            },
            s if s.p >= s.q => ArimaSpec { p: s.p - 1, ..s },
            s => ArimaSpec { q: s.q - 1, ..s },
        };
    }
    fit(y, ArimaSpec::new(0, 1, 0, false), config.auto.method)
}

#[cfg(test)]
mod golden;
#[cfg(test)]
mod tests;
