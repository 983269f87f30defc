//! What stands between one user of a model (a workload, a command) and the
//! model's answers: a breaker that stops calling a model whose calls fault,
//! and a plausibility check on every answer.
//!
//! - **Breaker.** A fault of the sandbox (a timeout, a trap, running out of
//!   memory) costs up to a whole deadline, so after one the model is not
//!   called again for a while: in a command, not at all; in the forecaster,
//!   for a delay that starts at one interval and doubles with every fault in
//!   a row up to a cap, and a call that gets through resets it. A model that
//!   faults on every call so costs at most one deadline per workload per
//!   tick, and far fewer once backed off. Each user has breakers of its own:
//!   a model may fault on one workload's data and not on another's.
//! - **Plausibility.** A forecast far outside anything the history has shown
//!   (above [`max-forecast-ratio`](DEFAULT_MAX_FORECAST_RATIO) times its
//!   largest observation, or below zero by more than a tenth of it for a
//!   series that was never negative) is refused as `implausible`, so a model
//!   answering 1e300 cannot ask for billions of replicas. For such a series,
//!   values a little below zero (a model's spread around a load at its floor)
//!   are raised to zero.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use chrono::{DateTime, Utc};

use super::{Forecast, ForecastRequest, ModelCallError, Series};

/// A forecast above this multiple of the largest observation in its history
/// is implausible. Ten: over the fifteen public traces in `shared/data`, the
/// largest value in the next 30 steps exceeded the largest of the week (or
/// third of the trace) before by at most 7.7 times on fourteen of them and
/// by under 1.5 times in 99 % of windows on most; one surge went to 58 times
/// (`nab_ec2_network_in`), which no model can know from the history before
/// it, and which the reactive floor and the next forecast follow. A model
/// that forecasts ten times anything it was shown is broken, not bold.
pub const DEFAULT_MAX_FORECAST_RATIO: f64 = 10.0;

/// Checks a `max-forecast-ratio`: a finite number of at least 1.
pub fn check_max_forecast_ratio(ratio: f64) -> Result<f64, String> {
    if ratio.is_finite() && ratio >= 1.0 {
        Ok(ratio)
    } else {
        Err(format!(
            "must be a number >= 1 (10 refuses forecasts above ten times the window's largest observation), got {ratio}"
        ))
    }
}

/// How a breaker lets calls through again after a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Never: a command that must end within a deadline of the fault.
    Never,
    /// After `first`, doubling per fault in a row, at most `cap`.
    Backoff { first: Duration, cap: Duration },
}

impl Retry {
    /// The forecaster's: the first retry on the next tick, at most
    /// [`BACKOFF_CAP_INTERVALS`] intervals apart.
    pub fn for_interval(interval: Duration) -> Self {
        Self::Backoff {
            first: interval,
            cap: interval * BACKOFF_CAP_INTERVALS,
        }
    }
}

/// The longest a failing model is left alone, in intervals: 16 (16 minutes
/// at the default interval), short enough that a model that recovers with
/// new data serves again soon.
pub const BACKOFF_CAP_INTERVALS: u32 = 16;

/// One user's guarded calls to one model.
pub struct Guard {
    /// The model, as errors name it.
    model: String,
    retry: Retry,
    max_ratio: f64,
    /// Faults in a row.
    faults: u32,
    delays: Option<ExponentialBackoff>,
    open: Option<Open>,
}

struct Open {
    cause: ModelCallError,
    /// `None`: never again.
    until: Option<DateTime<Utc>>,
}

impl Guard {
    pub fn new(model: &str, retry: Retry, max_ratio: f64) -> Self {
        Self {
            model: model.to_owned(),
            retry,
            max_ratio,
            faults: 0,
            delays: None,
            open: None,
        }
    }

    /// Calls `run` on `request` unless the breaker is open at `now`; checks
    /// the answer's plausibility against the request's history.
    pub fn call(
        &mut self,
        now: DateTime<Utc>,
        request: &ForecastRequest,
        run: impl FnOnce(&ForecastRequest) -> Result<Forecast, ModelCallError>,
    ) -> Result<Forecast, ModelCallError> {
        if let Some(open) = self.open_at(now) {
            return Err(ModelCallError::Suspended {
                model: self.model.clone(),
                cause: open.cause.to_string(),
                faults: self.faults,
                until: open.until,
            });
        }
        match run(request) {
            Err(error) if error.is_fault() => {
                self.trip(now, &error);
                Err(error)
            }
            // Refused or held back before the model ran: nothing learnt.
            Err(error) if !error.model_ran() => Err(error),
            answer => {
                // The model ran and answered (even with an error of its
                // own): it is not stuck.
                self.faults = 0;
                self.delays = None;
                self.open = None;
                let mut forecast = answer?;
                settle_plausible(&request.history, &mut forecast, self.max_ratio).map_err(
                    |reason| ModelCallError::Implausible {
                        model: self.model.clone(),
                        reason,
                    },
                )?;
                Ok(forecast)
            }
        }
    }

    fn trip(&mut self, now: DateTime<Utc>, error: &ModelCallError) {
        self.faults += 1;
        let until = match self.retry {
            Retry::Never => None,
            Retry::Backoff { first, cap } => {
                let delays = self.delays.get_or_insert_with(|| {
                    ExponentialBuilder::default()
                        .with_min_delay(first)
                        .with_max_delay(cap)
                        .with_factor(2.0)
                        .without_max_times()
                        .build()
                });
                let delay = delays.next().unwrap_or(cap);
                let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                Some(
                    now.checked_add_signed(delay)
                        .unwrap_or(DateTime::<Utc>::MAX_UTC),
                )
            }
        };
        self.open = Some(Open {
            cause: error.clone(),
            until,
        });
    }

    /// Whether the last call that ran faulted: the breaker is open, or
    /// half open once its delay is over.
    pub fn tripped(&self) -> bool {
        self.faults > 0
    }

    /// The fault that keeps the breaker open at `now`, if it is.
    pub fn suspended(&self, now: DateTime<Utc>) -> Option<&ModelCallError> {
        self.open_at(now).map(|open| &open.cause)
    }

    /// The breaker's state if it holds calls back at `now`.
    fn open_at(&self, now: DateTime<Utc>) -> Option<&Open> {
        self.open
            .as_ref()
            .filter(|open| open.until.is_none_or(|until| now < until))
    }
}

/// Below zero by more than this share of the largest observation, a point
/// forecast of a history never negative is implausible; less, it is a
/// model's spread around a load at zero (Fracast-0's median dips to -0.1 %
/// of the largest value on an idle auto-scaling group's CPU) and is raised
/// to zero.
pub const NEGATIVE_TOLERANCE: f64 = 0.1;

/// Whether `forecast` stays within what `history` makes plausible: no value
/// above `max_ratio` times the largest absolute observation (or `max_ratio`
/// itself for a history of zeros), and, for a history never negative, no
/// point value below zero by more than [`NEGATIVE_TOLERANCE`] of it. For
/// such a history, the values below zero that pass (point and bands) are
/// raised to zero.
pub fn settle_plausible(
    history: &Series,
    forecast: &mut Forecast,
    max_ratio: f64,
) -> Result<(), String> {
    let observed = history.values.iter().copied().filter(|v| v.is_finite());
    let (largest, lowest) = observed.fold((0.0f64, f64::INFINITY), |(hi, lo), v| {
        (hi.max(v.abs()), lo.min(v))
    });
    if lowest == f64::INFINITY {
        return Ok(());
    }
    let scale = if largest > 0.0 { largest } else { 1.0 };
    let bound = max_ratio * scale;
    let rows = std::iter::once(("point value", None, &forecast.values)).chain(
        forecast
            .quantiles
            .iter()
            .map(|b| ("band", Some(b.level), &b.values)),
    );
    for (what, level, values) in rows {
        if let Some(i) = values.iter().position(|v| v.abs() > bound) {
            // Named only when it is wrong: formatting a level on every
            // call showed in a fleet's profile.
            let what = match level {
                Some(level) => format!("{what} {level} value"),
                None => what.to_owned(),
            };
            return Err(format!(
                "{what} {i} is {}, beyond {max_ratio} times the largest observation in the history ({})",
                show(values[i]),
                show(largest)
            ));
        }
    }
    if lowest >= 0.0 {
        if let Some(i) = forecast
            .values
            .iter()
            .position(|&v| v < -NEGATIVE_TOLERANCE * scale)
        {
            return Err(format!(
                "point value {i} is {}, far below zero for a history that never was negative",
                show(forecast.values[i])
            ));
        }
        let bands = forecast.quantiles.iter_mut().map(|b| &mut b.values);
        for v in std::iter::once(&mut forecast.values).chain(bands).flatten() {
            *v = v.max(0.0);
        }
    }
    Ok(())
}

/// A number as a person reads it: 1e300 rather than its 301 digits.
fn show(v: f64) -> String {
    if v != 0.0 && !(1e-6..1e15).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kedastral_model_sdk::QuantileBand;

    fn forecast(values: Vec<f64>, low: Vec<f64>) -> Forecast {
        Forecast {
            values,
            quantiles: vec![QuantileBand {
                level: 0.1,
                values: low,
            }],
        }
    }

    #[test]
    fn a_little_below_zero_is_raised_to_it_and_far_below_refused() {
        let history = Series::new(0, 60, vec![0.0, 40.0, 100.0, 3.0]);
        let mut near = forecast(vec![-0.5, 2.0], vec![-4.0, -1.0]);
        settle_plausible(&history, &mut near, 10.0).unwrap();
        assert_eq!(near.values, vec![0.0, 2.0]);
        assert_eq!(near.quantiles[0].values, vec![0.0, 0.0]);

        let mut far = forecast(vec![5.0, -20.0], vec![0.0, -30.0]);
        let reason = settle_plausible(&history, &mut far, 10.0).unwrap_err();
        assert!(reason.contains("point value 1 is -20"), "{reason}");

        // A history that went below zero keeps its negative forecasts.
        let signed = Series::new(0, 60, vec![-3.0, 40.0, 100.0]);
        let mut kept = forecast(vec![-20.0, 2.0], vec![-30.0, 1.0]);
        settle_plausible(&signed, &mut kept, 10.0).unwrap();
        assert_eq!(kept.values, vec![-20.0, 2.0]);
    }
}
