//! The model through its [`Model`] interface.

use kedastral_model_sdk::{ForecastRequest, Model, ModelError, Series};

use crate::Mstl;

const MINUTE: u32 = 60;
/// 2023-11-14 22:13:20 UTC: not midnight, so the clock keying is exercised.
const START: i64 = 1_700_000_000;

/// A daily wave keyed by clock time, a weekend dip, and a little noise.
fn load(n: usize, step: u32) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let t = START + i as i64 * i64::from(step);
            let day = t.rem_euclid(86_400) as f64 / 86_400.0;
            // 1970-01-01 was a Thursday: days 2 and 3 of each week from it
            // are Saturday and Sunday.
            let weekend = matches!((t / 86_400).rem_euclid(7), 2 | 3);
            let noise = ((i * 7919) % 11) as f64 - 5.0;
            100.0 + 40.0 * (std::f64::consts::TAU * day).sin() - if weekend { 30.0 } else { 0.0 }
                + noise
        })
        .collect()
}

fn truth(t: i64) -> f64 {
    let day = t.rem_euclid(86_400) as f64 / 86_400.0;
    let weekend = matches!((t / 86_400).rem_euclid(7), 2 | 3);
    100.0 + 40.0 * (std::f64::consts::TAU * day).sin() - if weekend { 30.0 } else { 0.0 }
}

fn request(values: Vec<f64>, step: u32, horizon: u32) -> ForecastRequest {
    ForecastRequest::new(Series::new(START, step, values), horizon)
        .with_quantiles(vec![0.1, 0.5, 0.9])
}

#[test]
fn daily_and_weekly_shapes_are_forecast_at_the_right_clock_times() {
    let step = 15 * MINUTE;
    let n = 4 * 7 * 96;
    let req = request(load(n, step), step, 192);
    let f = Mstl::forecast(&req).unwrap();
    assert_eq!(f.values.len(), 192);
    let mut worst: f64 = 0.0;
    for (k, v) in f.values.iter().enumerate() {
        let t = req.history.time_of(n + k);
        worst = worst.max((v - truth(t)).abs());
    }
    // The noise is within 5; the weekend edges are the hardest part.
    assert!(worst < 12.0, "worst error {worst}");
    for (lo, hi) in f.quantiles[0].values.iter().zip(&f.quantiles[2].values) {
        assert!(lo < hi);
    }
}

#[test]
fn gaps_and_trailing_missing_points_are_forecast_over() {
    let mut values = load(3 * 1440, MINUTE);
    for v in &mut values[2000..2100] {
        *v = f64::NAN;
    }
    let n = values.len();
    for v in &mut values[n - 5..] {
        *v = f64::NAN;
    }
    let req = request(values, MINUTE, 30);
    let f = Mstl::forecast(&req).unwrap();
    assert_eq!(f.values.len(), 30);
    for (k, v) in f.values.iter().enumerate() {
        let t = req.history.time_of(n + k);
        assert!((v - truth(t)).abs() < 10.0, "lead {k}: {v} vs {}", truth(t));
    }
}

#[test]
fn short_histories_still_answer_and_one_point_is_too_few() {
    let f = Mstl::forecast(&request(vec![3.0, 5.0], MINUTE, 4)).unwrap();
    assert!(f.values.iter().all(|v| v.is_finite()));
    let err = Mstl::forecast(&request(vec![3.0, f64::NAN], MINUTE, 4)).unwrap_err();
    assert_eq!(err, ModelError::insufficient(2, 1));
}

#[test]
fn parameters_are_checked() {
    let req = request(load(100, MINUTE), MINUTE, 5).with_param("seasons", "hourly");
    assert!(matches!(
        Mstl::forecast(&req),
        Err(ModelError::InvalidInput(_))
    ));
    let req = request(load(100, MINUTE), MINUTE, 5).with_param("clip", "0.5");
    assert!(matches!(
        Mstl::forecast(&req),
        Err(ModelError::InvalidInput(_))
    ));
    let req = request(load(100, MINUTE), MINUTE, 5).with_param("nope", "1");
    assert!(Mstl::forecast(&req).is_err());
}

#[test]
fn a_non_negative_history_gets_a_non_negative_forecast() {
    let values: Vec<f64> = (0..500)
        .map(|i| {
            if i < 480 {
                5.0
            } else {
                5.0 - 0.25 * (i - 480) as f64
            }
        })
        .collect();
    let f = Mstl::forecast(&request(values, MINUTE, 60)).unwrap();
    assert!(f.values.iter().all(|&v| v >= 0.0));
    assert!(
        f.quantiles
            .iter()
            .all(|b| b.values.iter().all(|&v| v >= 0.0))
    );
}
