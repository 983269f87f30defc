//! How wrong the forecasts turned out: each forecast made for a lead time is
//! compared with the value that actually arrived, so users can see, per
//! workload, whether to trust the forecast.
//!
//! A [`LiveErrorTracker`] keeps, for one workload and one lead time `L`
//! steps, the forecast made for `generated_at + L * step` until an
//! observation for that time arrives; the pair then joins a rolling window
//! of recent comparisons, summarised as mean absolute error, mean absolute
//! percentage error (over actuals above zero) and the share of
//! under-forecasts (actual above forecast: the costly direction for an
//! autoscaler).

use std::collections::VecDeque;

/// One forecast judged against what happened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub time: i64,
    pub forecast: f64,
    pub actual: f64,
}

/// The rolling window's summary; `None` fields when it is empty.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ErrorSummary {
    pub comparisons: usize,
    pub mean_absolute_error: Option<f64>,
    /// Over comparisons whose actual is above zero.
    pub mean_absolute_percentage_error: Option<f64>,
    pub under_forecast_share: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct LiveErrorTracker {
    lead_steps: usize,
    window: usize,
    /// Forecasts waiting for their actual: (target time, value), by time.
    pending: VecDeque<(i64, f64)>,
    recent: VecDeque<Comparison>,
}

impl LiveErrorTracker {
    /// Judges forecasts `lead_steps` ahead (at least 1), over the last
    /// `window` comparisons (at least 1).
    pub fn new(lead_steps: usize, window: usize) -> Self {
        Self {
            lead_steps: lead_steps.max(1),
            window: window.max(1),
            pending: VecDeque::new(),
            recent: VecDeque::new(),
        }
    }

    /// Notes a forecast: `values[k]` is for `generated_at + (k + 1) * step`.
    /// A forecast shorter than the lead time is not judged. A newer forecast
    /// for the same target time replaces the older one.
    pub fn record_forecast(&mut self, generated_at: i64, step_seconds: u32, values: &[f64]) {
        let Some(&value) = values.get(self.lead_steps - 1) else {
            return;
        };
        let target = generated_at + self.lead_steps as i64 * i64::from(step_seconds);
        while self.pending.back().is_some_and(|&(t, _)| t >= target) {
            self.pending.pop_back();
        }
        self.pending.push_back((target, value));
    }

    /// Notes an observation; a pending forecast for a time within half a step
    /// of it is judged. Forecasts for times already passed without an
    /// observation (a gap in the data) are dropped.
    pub fn observe(&mut self, time: i64, value: f64, step_seconds: u32) {
        if !value.is_finite() {
            return;
        }
        let tolerance = i64::from(step_seconds) / 2;
        while let Some(&(target, forecast)) = self.pending.front() {
            if target < time - tolerance {
                self.pending.pop_front();
            } else if target <= time + tolerance {
                self.pending.pop_front();
                self.recent.push_back(Comparison {
                    time,
                    forecast,
                    actual: value,
                });
                if self.recent.len() > self.window {
                    self.recent.pop_front();
                }
            } else {
                break;
            }
        }
    }

    pub fn recent(&self) -> impl Iterator<Item = &Comparison> {
        self.recent.iter()
    }

    pub fn summary(&self) -> ErrorSummary {
        let n = self.recent.len();
        if n == 0 {
            return ErrorSummary::default();
        }
        let abs: f64 = self
            .recent
            .iter()
            .map(|c| (c.forecast - c.actual).abs())
            .sum();
        let (pct_sum, pct_n) = self
            .recent
            .iter()
            .filter(|c| c.actual > 0.0)
            .fold((0.0, 0usize), |(s, k), c| {
                (s + (c.forecast - c.actual).abs() / c.actual, k + 1)
            });
        let under = self.recent.iter().filter(|c| c.actual > c.forecast).count();
        ErrorSummary {
            comparisons: n,
            mean_absolute_error: Some(abs / n as f64),
            mean_absolute_percentage_error: (pct_n > 0).then(|| pct_sum / pct_n as f64),
            under_forecast_share: Some(under as f64 / n as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forecasts_meet_their_actuals_at_the_lead_time() {
        // Lead 2 steps of 60 s: the forecast made at t=0 is for t=120.
        let mut t = LiveErrorTracker::new(2, 10);
        t.record_forecast(0, 60, &[5.0, 10.0, 99.0]);
        t.record_forecast(60, 60, &[5.0, 20.0]);
        t.observe(60, 7.0, 60); // nothing was forecast for 60 at lead 2
        assert_eq!(t.summary().comparisons, 0);
        t.observe(121, 8.0, 60); // a second late: still the 120 step
        t.observe(180, 25.0, 60);
        let got: Vec<Comparison> = t.recent().copied().collect();
        assert_eq!(
            got,
            vec![
                Comparison {
                    time: 121,
                    forecast: 10.0,
                    actual: 8.0
                },
                Comparison {
                    time: 180,
                    forecast: 20.0,
                    actual: 25.0
                },
            ]
        );
        let s = t.summary();
        assert_eq!(s.mean_absolute_error, Some(3.5));
        // |10-8|/8 = 0.25, |20-25|/25 = 0.2.
        assert!((s.mean_absolute_percentage_error.unwrap() - 0.225).abs() < 1e-12);
        assert_eq!(s.under_forecast_share, Some(0.5));
    }

    #[test]
    fn gaps_drop_forecasts_and_the_window_rolls() {
        let mut t = LiveErrorTracker::new(1, 2);
        for k in 0..5 {
            t.record_forecast(k * 60, 60, &[k as f64]);
        }
        // No observation for 60 or 120: those forecasts are dropped.
        t.observe(180, 2.0, 60);
        t.observe(240, 3.0, 60);
        t.observe(300, 10.0, 60);
        let times: Vec<i64> = t.recent().map(|c| c.time).collect();
        assert_eq!(times, vec![240, 300], "the window keeps the last two");
        assert_eq!(t.summary().under_forecast_share, Some(0.5));
    }

    #[test]
    fn a_newer_forecast_replaces_the_older_for_the_same_time() {
        let mut t = LiveErrorTracker::new(1, 5);
        t.record_forecast(0, 60, &[1.0]);
        t.record_forecast(0, 60, &[2.0]);
        t.observe(60, 2.0, 60);
        assert_eq!(t.summary().mean_absolute_error, Some(0.0));
    }

    #[test]
    fn zero_actuals_have_no_percentage_error() {
        let mut t = LiveErrorTracker::new(1, 5);
        t.record_forecast(0, 60, &[1.0]);
        t.observe(60, 0.0, 60);
        let s = t.summary();
        assert_eq!(s.comparisons, 1);
        assert_eq!(s.mean_absolute_percentage_error, None);
        assert_eq!(s.under_forecast_share, Some(0.0));
    }
}
