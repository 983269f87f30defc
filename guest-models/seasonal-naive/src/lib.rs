//! Seasonal naive: each step forecast as the value one season before it
//! ("the same time yesterday"): the rule users judge a forecaster against,
//! as a model of its own.
//!
//! The season is a day of the history's step (`season=day`), a week
//! (`week`), or none (`none`: the last observed value). With `auto`, a day
//! from two days of history, else none: the seasonal naive of `kedastral
//! backtest`'s reports. A
//! missing value a season back is looked for one more season back, and so
//! on, then the last observed value stands in. Bands come from the
//! history's own seasonal differences (how far each value was from the one
//! a season before it), widened with the square root of the seasons a lead
//! reaches back.

use kedastral_model_sdk::stats::{all_non_negative, normal_quantile, quantile_sorted, sort_finite};
use kedastral_model_sdk::{
    Forecast, ForecastRequest, Model, ModelError, ModelInfo, Params, QuantileBand,
};

pub struct SeasonalNaive;

kedastral_model_sdk::export_model!(SeasonalNaive);

/// Most seasonal differences the bands read: the latest ones.
const MAX_DIFFERENCES: usize = 4_032;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Season {
    Auto,
    Day,
    Week,
    None,
}

impl Model for SeasonalNaive {
    fn info() -> ModelInfo {
        ModelInfo::new(
            "seasonal-naive",
            env!("CARGO_PKG_VERSION"),
            "Seasonal naive: each step is the value one season (a day, or a week) before it",
            1,
        )
        .param(
            "season",
            "auto",
            "day, week, none (the last value), or auto: a day from two days of history, else none",
        )
    }

    fn forecast(request: &ForecastRequest) -> Result<Forecast, ModelError> {
        request.validate()?;
        let info = Self::info();
        let params = Params::new(&request.params, &info.params)?;
        let season = params.choice(
            "season",
            &[
                ("auto", Season::Auto),
                ("day", Season::Day),
                ("week", Season::Week),
                ("none", Season::None),
            ],
        )?;
        let history = &request.history;
        let Some(last) = history.last_observed() else {
            return Err(ModelError::insufficient(1, 0));
        };
        let period = period(season, history.step_seconds, history.len());
        let y = &history.values;
        let n = y.len();
        let horizon = request.horizon as usize;
        let values: Vec<f64> = (0..horizon)
            .map(|lead| {
                if period == 0 {
                    return last;
                }
                // The same phase, one season back, then further while missing.
                let mut back = (lead / period + 1) * period;
                while back <= n + lead {
                    let v = y[n + lead - back];
                    if !v.is_nan() {
                        return v;
                    }
                    back += period;
                }
                last
            })
            .collect();
        let spread = differences(y, period.max(1));
        let floor = all_non_negative(y).then_some(0.0);
        let quantiles = request
            .quantiles
            .iter()
            .map(|&level| QuantileBand {
                level,
                values: values
                    .iter()
                    .enumerate()
                    .map(|(lead, &v)| {
                        let reach = (lead / period.max(1) + 1) as f64;
                        let offset = match &spread {
                            Some(sorted) => quantile_sorted(sorted, level).unwrap_or(0.0),
                            None => 0.0,
                        };
                        let value = v + offset * reach.sqrt();
                        floor.map_or(value, |f: f64| value.max(f))
                    })
                    .collect(),
            })
            .collect();
        Forecast { values, quantiles }.ordered_and_finite()
    }
}

/// Steps in a season of `season` for a history of `len` steps of `step`
/// seconds; 0 for none.
fn period(season: Season, step: u32, len: usize) -> usize {
    let per = |seconds: u64| (seconds as f64 / f64::from(step.max(1))).round() as usize;
    let (day, week) = (per(86_400), per(7 * 86_400));
    let fits = |p: usize| p >= 2 && len >= 2 * p;
    match season {
        Season::Day => day.max(1),
        Season::Week => week.max(1),
        Season::None => 0,
        Season::Auto if fits(day) => day,
        Season::Auto => 0,
    }
}

/// The latest seasonal differences `y[t] - y[t - period]`, sorted; `None`
/// when the history has none, or they do not vary, in which case the
/// bands are the point. Their spread is centred on zero by a normal's
/// quantiles when there are fewer than twenty.
fn differences(y: &[f64], period: usize) -> Option<Vec<f64>> {
    let mut d: Vec<f64> = (period..y.len())
        .rev()
        .map(|t| y[t] - y[t - period])
        .filter(|v| v.is_finite())
        .take(MAX_DIFFERENCES)
        .collect();
    if d.is_empty() {
        return None;
    }
    if d.len() < 20 {
        // Too few for their quantiles: a normal of their spread.
        let sd = (d.iter().map(|v| v * v).sum::<f64>() / d.len() as f64).sqrt();
        d = (1..100)
            .map(|i| sd * normal_quantile(f64::from(i) / 100.0))
            .collect();
    }
    sort_finite(&mut d);
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kedastral_model_sdk::Series;

    /// Five-minute steps: a day is 288.
    fn daily(days: usize) -> Vec<f64> {
        (0..days * 288)
            .map(|i| 100.0 + 50.0 * (i as f64 * std::f64::consts::TAU / 288.0).sin())
            .collect()
    }

    fn forecast(values: Vec<f64>, horizon: u32, season: &str) -> Forecast {
        let request = ForecastRequest::new(Series::new(0, 300, values), horizon)
            .with_quantiles(vec![0.1, 0.9])
            .with_param("season", season);
        SeasonalNaive::forecast(&request).unwrap()
    }

    #[test]
    fn each_step_is_the_value_a_day_before_it() {
        let y = daily(3);
        let f = forecast(y.clone(), 300, "auto");
        let n = y.len();
        for (lead, v) in f.values.iter().enumerate() {
            // Beyond a day the lead reaches two days back.
            let back = (lead / 288 + 1) * 288;
            assert_eq!(*v, y[n + lead - back], "lead {lead}");
        }
    }

    #[test]
    fn a_missing_value_is_looked_for_a_season_further_back() {
        let mut y = daily(3);
        let n = y.len();
        y[n - 288] = f64::NAN;
        let f = forecast(y.clone(), 2, "day");
        assert_eq!(f.values[0], y[n - 2 * 288]);
        assert_eq!(f.values[1], y[n - 287]);
    }

    #[test]
    fn a_short_history_forecasts_its_last_value() {
        let f = forecast(vec![3.0, 5.0, f64::NAN], 4, "auto");
        assert_eq!(f.values, vec![5.0; 4]);
        assert_eq!(period(Season::Auto, 300, 575), 0);
        assert_eq!(period(Season::Auto, 300, 576), 288);
        assert_eq!(period(Season::Auto, 60, 20_160), 1_440);
        assert_eq!(period(Season::Week, 60, 100), 10_080);
    }

    #[test]
    fn bands_follow_the_seasonal_differences_and_stay_at_zero_or_above() {
        let mut y = daily(4);
        // A noisy last day: its differences from the day before spread.
        for (i, v) in y.iter_mut().enumerate().skip(3 * 288) {
            *v += if i % 2 == 0 { 30.0 } else { -30.0 };
        }
        let f = forecast(y, 10, "day");
        let (lo, hi) = (&f.quantiles[0].values, &f.quantiles[1].values);
        for lead in 0..10 {
            assert!(lo[lead] < f.values[lead] && f.values[lead] < hi[lead]);
            assert!(lo[lead] >= 0.0);
        }
    }

    #[test]
    fn an_unknown_season_is_refused() {
        let request =
            ForecastRequest::new(Series::new(0, 300, daily(1)), 3).with_param("season", "month");
        let err = SeasonalNaive::forecast(&request).unwrap_err();
        assert!(err.to_string().contains("season"), "{err}");
    }
}
