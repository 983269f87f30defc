//! Hand-checked behaviour of the whole model, through `Baseline::forecast`.

use std::f64::consts::TAU;

use super::*;
use kedastral_model_sdk::Series;

/// Monday 2024-01-01 00:00 UTC, so weekdays are easy to place.
const MONDAY: i64 = 1_704_067_200;

/// Deterministic noise in [-1, 1] (xorshift), so tests need no dependency.
fn noise(seed: &mut u64) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

fn daily_sine(t: i64) -> f64 {
    100.0 + 40.0 * (TAU * t.rem_euclid(DAY) as f64 / DAY as f64).sin()
}

fn series(start: i64, step: u32, n: usize, f: impl Fn(i64) -> f64) -> Series {
    let values = (0..n)
        .map(|i| f(start + i as i64 * i64::from(step)))
        .collect();
    Series::new(start, step, values)
}

/// The contract every answer must keep.
fn checked(request: &ForecastRequest) -> Forecast {
    let f = Baseline::forecast(request).expect("forecast");
    assert_eq!(f.values.len(), request.horizon as usize);
    assert!(f.values.iter().all(|v| v.is_finite()));
    assert_eq!(f.quantiles.len(), request.quantiles.len());
    for (band, &level) in f.quantiles.iter().zip(&request.quantiles) {
        assert_eq!(band.level, level);
        assert_eq!(band.values.len(), request.horizon as usize);
        assert!(band.values.iter().all(|v| v.is_finite()));
    }
    for pair in f.quantiles.windows(2) {
        for (lo, hi) in pair[0].values.iter().zip(&pair[1].values) {
            assert!(lo <= hi, "bands out of order: {lo} > {hi}");
        }
    }
    f
}

fn max_error(f: &Forecast, history: &Series, truth: impl Fn(i64) -> f64) -> f64 {
    let n = history.len();
    f.values
        .iter()
        .enumerate()
        .map(|(h, v)| (v - truth(history.time_of(n + h))).abs())
        .fold(0.0, f64::max)
}

#[test]
fn daily_sine_with_5_minute_step_is_forecast_nearly_exactly() {
    let history = series(MONDAY + 123, 300, 4 * 288 + 17, daily_sine);
    let f = checked(&ForecastRequest::new(history.clone(), 60).with_quantiles(vec![0.1, 0.9]));
    // 40 of amplitude; a flat or lagging forecast would be off by tens.
    assert!(max_error(&f, &history, daily_sine) < 0.5);
}

#[test]
fn daily_sine_with_7_minute_step_is_forecast_nearly_exactly() {
    // 205.7 steps a day: every day's points fall at other clock times.
    let history = series(MONDAY, 420, 5 * 206, daily_sine);
    let f = checked(&ForecastRequest::new(history.clone(), 60));
    assert!(max_error(&f, &history, daily_sine) < 0.5);
}

/// Weekdays follow the daily sine; Saturday and Sunday run 30 lower.
fn weekly(t: i64) -> f64 {
    let weekday = (t - MONDAY).rem_euclid(WEEK) / DAY;
    daily_sine(t) - if weekday >= 5 { 30.0 } else { 0.0 }
}

#[test]
fn weekly_pattern_is_used_with_two_weeks_and_ignored_with_less() {
    let step = 1800u32;
    let per_day = (DAY / i64::from(step)) as usize;
    // Histories end on a Friday at 22:00; the forecast runs into Saturday.
    let friday_22h = MONDAY + 2 * WEEK + 4 * DAY + 22 * 3600;
    let long_n = ((friday_22h - MONDAY) / i64::from(step)) as usize;
    let long = series(MONDAY, step, long_n, weekly);
    let short_start = friday_22h - 10 * DAY;
    let short = series(short_start, step, 10 * per_day, weekly);
    let saturday_noon = 14 * 3600 / i64::from(step) as usize; // lead from 22:00 Friday

    let f = checked(&ForecastRequest::new(long.clone(), 20));
    // The weekly correction has hourly buckets, so the midnight step is
    // smeared over the hour either side; from 01:00 Saturday it is exact.
    let from_1am = 3 * 3600 / i64::from(step) as usize;
    for h in from_1am..20 {
        let truth = weekly(long.time_of(long.len() + h));
        assert!(
            (f.values[h] - truth).abs() < 3.0,
            "lead {}: {:?}",
            h + 1,
            f.values
        );
    }

    // 10 days hold one weekend; `auto` does not trust one, so Saturday is
    // forecast like a weekday.
    let f = checked(&ForecastRequest::new(short.clone(), 30));
    let t = short.time_of(short.len() - 1 + saturday_noon);
    assert!((f.values[saturday_noon - 1] - daily_sine(t)).abs() < 6.0);
}

#[test]
fn linear_trend_is_followed() {
    let history = series(MONDAY, 60, 300, |t| 10.0 + 0.5 * ((t - MONDAY) / 60) as f64);
    let f = checked(&ForecastRequest::new(history.clone(), 30));
    let last = *history.values.last().unwrap();
    for (h, v) in f.values.iter().enumerate() {
        let truth = last + 0.5 * (h + 1) as f64;
        // A flat forecast would be off by 0.5 * lead; the trend keeps most of it.
        assert!(
            (v - truth).abs() < 0.2 * 0.5 * (h + 1) as f64 + 0.5,
            "lead {}: {v} vs {truth}",
            h + 1
        );
        assert!(*v > last);
    }
}

#[test]
fn missing_points_are_tolerated() {
    let mut history = series(MONDAY, 300, 4 * 288, daily_sine);
    for (i, v) in history.values.iter_mut().enumerate() {
        if i % 7 == 3 || (500..560).contains(&i) {
            *v = f64::NAN;
        }
    }
    // The last point missing too: the clock keeps running through it.
    history.values.push(f64::NAN);
    let f = checked(&ForecastRequest::new(history.clone(), 30).with_quantiles(vec![0.5]));
    let e = max_error(&f, &history, daily_sine);
    assert!(e < 1.0, "{e}: {:?}", f.values);
}

#[test]
fn outliers_barely_move_the_forecast() {
    let mut history = series(MONDAY, 300, 4 * 288, daily_sine);
    let n = history.len();
    for i in [n - 40, n - 25, n - 10, n - 3] {
        history.values[i] = 10_000.0;
    }
    let f = checked(&ForecastRequest::new(history.clone(), 30));
    assert!(max_error(&f, &history, daily_sine) < 5.0);
}

#[test]
fn one_and_two_points_answer_sensibly() {
    let one = Series::new(MONDAY, 60, vec![7.0]);
    let f = checked(&ForecastRequest::new(one, 5).with_quantiles(vec![0.1, 0.9]));
    assert_eq!(f.values, vec![7.0; 5]);
    assert_eq!(f.quantiles[0].values, vec![7.0; 5]);

    let two = Series::new(MONDAY, 60, vec![f64::NAN, 10.0, 12.0]);
    let f = checked(&ForecastRequest::new(two, 5).with_quantiles(vec![0.1, 0.9]));
    for v in &f.values {
        assert!((10.0..=14.0).contains(v), "{v}");
    }
    // Some spread from the one change seen.
    assert!(f.quantiles[1].values[4] > f.quantiles[0].values[4]);
}

#[test]
fn no_observed_point_is_insufficient_history() {
    for values in [vec![], vec![f64::NAN; 3]] {
        let request = ForecastRequest::new(Series::new(MONDAY, 60, values), 5);
        assert_eq!(
            Baseline::forecast(&request),
            Err(ModelError::InsufficientHistory { needed: 1, got: 0 })
        );
    }
    assert_eq!(Baseline::info().min_history, 1);
}

#[test]
fn bands_are_ordered_and_do_not_narrow_with_lead() {
    let mut seed = 42;
    let mut history = series(MONDAY, 300, 6 * 288, daily_sine);
    for v in &mut history.values {
        *v += 8.0 * noise(&mut seed);
    }
    let levels = vec![0.05, 0.1, 0.5, 0.9, 0.95];
    let f = checked(&ForecastRequest::new(history, 48).with_quantiles(levels));
    let width = |h: usize| f.quantiles[4].values[h] - f.quantiles[0].values[h];
    assert!(width(0) > 0.0);
    for h in 1..48 {
        // Width may lose a hair where the point forecast's own shape bends,
        // never more.
        assert!(width(h) >= width(h - 1) - 1e-9, "lead {h}");
    }
    // Noise of +-8 (uniform): a 90% band a few units either side.
    assert!(width(0) > 8.0 && width(0) < 40.0, "{}", width(0));
}

#[test]
fn intervals_cover_about_their_level_on_noise() {
    let mut seed = 7;
    let n = 8 * 288;
    let noisy: Vec<f64> = (0..n + 30)
        .map(|i| daily_sine(MONDAY + i as i64 * 300) + 10.0 * noise(&mut seed))
        .collect();
    let (mut inside, mut total) = (0, 0);
    for origin in (6 * 288..n).step_by(37) {
        let history = Series::new(MONDAY, 300, noisy[..origin].to_vec());
        let f = checked(&ForecastRequest::new(history, 30).with_quantiles(vec![0.1, 0.9]));
        for h in 0..30 {
            let y = noisy[origin + h];
            inside += usize::from(f.quantiles[0].values[h] <= y && y <= f.quantiles[1].values[h]);
            total += 1;
        }
    }
    let coverage = inside as f64 / total as f64;
    assert!(
        (0.7..=0.92).contains(&coverage),
        "80% band covered {coverage}"
    );
}

#[test]
fn non_negative_auto_clamps_only_non_negative_histories() {
    // A series falling towards zero: a trend would take it below.
    let falling = series(MONDAY, 60, 100, |t| {
        (50.0 - ((t - MONDAY) / 60) as f64 * 0.5).max(0.0)
    });
    let f = checked(&ForecastRequest::new(falling.clone(), 30).with_quantiles(vec![0.1]));
    assert!(
        f.values
            .iter()
            .chain(&f.quantiles[0].values)
            .all(|&v| v >= 0.0)
    );

    let f = checked(
        &ForecastRequest::new(falling, 30)
            .with_quantiles(vec![0.1])
            .with_param("non-negative", "false"),
    );
    assert!(f.quantiles[0].values.iter().any(|&v| v < 0.0));

    let shifted = series(MONDAY, 60, 100, |t| {
        -1.0 + 0.001 * ((t - MONDAY) / 60) as f64
    });
    let f = checked(&ForecastRequest::new(shifted, 5).with_quantiles(vec![0.1]));
    assert!(f.values.iter().all(|&v| v < 0.0));
}

#[test]
fn unknown_or_malformed_params_are_refused() {
    let history = Series::new(MONDAY, 60, vec![1.0, 2.0]);
    for (k, v) in [
        ("seasons", "auto"),
        ("season", "hourly"),
        ("alpha", "1.5"),
        ("non-negative", "maybe"),
        ("clip", "0"),
    ] {
        let request = ForecastRequest::new(history.clone(), 3).with_param(k, v);
        assert!(
            matches!(
                Baseline::forecast(&request),
                Err(ModelError::InvalidInput(_))
            ),
            "{k}={v}"
        );
    }
    let request = ForecastRequest::new(history, 3).with_param("season", "none");
    assert!(Baseline::forecast(&request).is_ok());
}

#[test]
fn forecasts_are_deterministic() {
    let mut seed = 3;
    let mut history = series(MONDAY, 300, 3 * 288, daily_sine);
    for v in &mut history.values {
        *v += noise(&mut seed);
    }
    let request = ForecastRequest::new(history, 30).with_quantiles(vec![0.1, 0.5, 0.9]);
    assert_eq!(Baseline::forecast(&request), Baseline::forecast(&request));
}

#[test]
fn season_none_ignores_the_cycle() {
    let history = series(MONDAY, 300, 4 * 288, daily_sine);
    let f = checked(&ForecastRequest::new(history.clone(), 144).with_param("season", "none"));
    // Without a profile the forecast cannot turn with the sine over 12 hours.
    assert!(max_error(&f, &history, daily_sine) > 10.0);
}

/// Latency at a few history lengths; run with
/// `cargo test --release -p kedastral-baseline -- --ignored --nocapture`.
#[test]
#[ignore = "timing, not a check; run in release"]
fn latency() {
    let mut seed = 1;
    // The last case has a 5-minute step: 35 days, so the weekly correction too.
    for (n, step) in [(60, 60), (1_440, 60), (10_080, 60), (10_080, 300)] {
        let mut history = series(MONDAY, step, n, daily_sine);
        for v in &mut history.values {
            *v += 5.0 * noise(&mut seed);
        }
        let request = ForecastRequest::new(history, 30).with_quantiles(vec![0.1, 0.5, 0.9]);
        let runs = 2_000;
        let start = std::time::Instant::now();
        for _ in 0..runs {
            std::hint::black_box(Baseline::forecast(std::hint::black_box(&request)).unwrap());
        }
        let per_call = start.elapsed() / runs;
        println!("{n:>6} points of {step} s, horizon 30: {per_call:?} per forecast");
    }
}

#[test]
fn a_change_of_level_is_followed_within_a_few_points() {
    // Ten hours of a noisy level near 10, then the load jumps to 100 and
    // stays: a surge the autoscaler must follow, not a spike to ignore.
    let seed = 7;
    let before = 600;
    let shifted = |after: usize| {
        let mut s = seed;
        let values: Vec<f64> = (0..before + after)
            .map(|i| if i < before { 10.0 } else { 100.0 } + noise(&mut s))
            .collect();
        Series::new(MONDAY, 60, values)
    };
    for after in [3, 5] {
        let f = checked(&ForecastRequest::new(shifted(after), 5).with_quantiles(vec![0.5]));
        assert!(
            f.values[0] < 60.0,
            "{after} points are still a spike: {}",
            f.values[0]
        );
    }
    let f = checked(&ForecastRequest::new(shifted(8), 5).with_quantiles(vec![0.5]));
    assert!(
        (f.values[0] - 100.0).abs() < 5.0,
        "after 8 points the level is 100: {}",
        f.values[0]
    );
    // With the rule off, the slowly growing error scale is all that lets
    // the shift through.
    let off = ForecastRequest::new(shifted(8), 5)
        .with_quantiles(vec![0.5])
        .with_param("shift-points", "0");
    assert!(checked(&off).values[0] < 60.0);
}

#[test]
fn a_burst_that_breaks_up_is_not_held_at_its_peak() {
    // Ten hours near 10, six points of a burst at 1 000 (a change of level
    // by the rule), then it falls away: 600, 300.
    let mut s = 11;
    let mut values: Vec<f64> = (0..600).map(|_| 10.0 + noise(&mut s)).collect();
    values.extend([1000.0; 6]);
    values.extend([600.0, 300.0]);
    let f = checked(
        &ForecastRequest::new(Series::new(MONDAY, 60, values), 5).with_quantiles(vec![0.5]),
    );
    assert!(
        (f.values[0] - 300.0).abs() < 50.0,
        "the level follows the fall: {}",
        f.values[0]
    );
}
