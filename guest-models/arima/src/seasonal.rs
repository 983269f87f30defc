//! A daily seasonal profile keyed by clock time, for seasonal adjustment
//! before the ARIMA fit (the idea of R's `stlf`: forecast the adjusted series,
//! add the season back).
//!
//! Points are bucketed by time of day, `(t mod 86400) / step`, so any step
//! works and a history that starts mid-day lines up with the clock. The
//! estimate is a classical decomposition made robust:
//!
//! 1. the trend is a centred one-day moving average (the 2 x m average when a
//!    day holds an even number of steps), skipping missing points;
//! 2. each bucket's offset is the median of its detrended values, so a burst
//!    on one day does not become part of every day;
//! 3. offsets are smoothed by a circular moving average 45 minutes either
//!    side (1/32 of a day; the medians of a few days are noisy from one step
//!    to the next, and on the bundled traces +-45 min beat +-15 min and
//!    +-5 min) and centred on zero, so the adjusted series keeps the level.
//!
//! A profile that explains less than [`MIN_STRENGTH`] of the detrended
//! variance is dropped: subtracting it would only add noise.

const DAY: i64 = 86_400;
/// Share of detrended variance a profile must explain to be used
/// (seasonal strength in the sense of Wang, Smith and Hyndman 2006).
pub const MIN_STRENGTH: f64 = 0.1;

/// Additive offsets by time of day.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyProfile {
    step: i64,
    offsets: Vec<f64>,
    strength: f64,
}

impl DailyProfile {
    /// Estimates the profile from `values[i]` observed at `start + i * step`
    /// (NaN = missing). `None` when the history spans less than two days,
    /// the step leaves fewer than four buckets a day, or the profile is too
    /// weak to be worth removing.
    pub fn estimate(start: i64, step: u32, values: &[f64]) -> Option<Self> {
        let step = i64::from(step);
        let n = values.len();
        if step <= 0 || step > DAY / 4 || (n as i64) * step < 2 * DAY {
            return None;
        }
        let buckets = ((DAY + step - 1) / step) as usize;
        let trend = centred_daily_mean(values, (DAY as f64 / step as f64).round() as usize);
        let bucket_of = |i: usize| ((start + i as i64 * step).rem_euclid(DAY) / step) as usize;

        // Detrended values grouped by bucket (counting sort: O(n)).
        let mut counts = vec![0usize; buckets + 1];
        let usable = |i: usize| !values[i].is_nan() && !trend[i].is_nan();
        for i in (0..n).filter(|&i| usable(i)) {
            counts[bucket_of(i) + 1] += 1;
        }
        for b in 0..buckets {
            counts[b + 1] += counts[b];
        }
        let mut grouped = vec![0.0; counts[buckets]];
        let mut fill = counts.clone();
        for i in (0..n).filter(|&i| usable(i)) {
            let b = bucket_of(i);
            grouped[fill[b]] = values[i] - trend[i];
            fill[b] += 1;
        }
        let mut raw: Vec<f64> = (0..buckets)
            .map(|b| median(&mut grouped[counts[b]..counts[b + 1]]))
            .collect();
        if raw.iter().all(|v| v.is_nan()) {
            return None;
        }
        fill_circular_gaps(&mut raw);
        let mut offsets = smooth_circular(&raw, buckets / 32);
        let centre = offsets.iter().sum::<f64>() / buckets as f64;
        for v in &mut offsets {
            *v -= centre;
        }

        // Seasonal strength: 1 - var(remainder) / var(detrended).
        let (mut var_detrended, mut var_remainder, mut count) = (0.0, 0.0, 0.0);
        let mean_detrended = grouped.iter().sum::<f64>() / grouped.len().max(1) as f64;
        for i in (0..n).filter(|&i| usable(i)) {
            let detrended = values[i] - trend[i];
            var_detrended += (detrended - mean_detrended).powi(2);
            var_remainder += (detrended - mean_detrended - offsets[bucket_of(i)]).powi(2);
            count += 1.0;
        }
        if count < 2.0 || var_detrended <= 0.0 || var_detrended.is_nan() {
            return None;
        }
        let strength = (1.0 - var_remainder / var_detrended).max(0.0);
        (strength >= MIN_STRENGTH).then_some(Self {
            step,
            offsets,
            strength,
        })
    }

    /// The offset for unix time `t`.
    pub fn at(&self, t: i64) -> f64 {
        self.offsets[(t.rem_euclid(DAY) / self.step) as usize]
    }

    /// Share of the detrended variance the profile explains, in [0, 1].
    pub fn strength(&self) -> f64 {
        self.strength
    }
}

/// Centred moving average over one day of `m` steps, NaN where the window
/// does not fit or holds less than half a day of observations.
fn centred_daily_mean(values: &[f64], m: usize) -> Vec<f64> {
    let n = values.len();
    let half = m / 2;
    let mut trend = vec![f64::NAN; n];
    if m == 0 || n < 2 * half + 1 {
        return trend;
    }
    let mut sums = vec![0.0; n + 1];
    let mut counts = vec![0.0; n + 1];
    for (i, &v) in values.iter().enumerate() {
        let observed = !v.is_nan();
        sums[i + 1] = sums[i] + if observed { v } else { 0.0 };
        counts[i + 1] = counts[i] + if observed { 1.0 } else { 0.0 };
    }
    for (t, slot) in trend.iter_mut().enumerate().take(n - half).skip(half) {
        let (lo, hi) = (t - half, t + half);
        let mut s = sums[hi + 1] - sums[lo];
        let mut c = counts[hi + 1] - counts[lo];
        if m.is_multiple_of(2) {
            // 2 x m average: the two end points weigh a half each.
            for end in [lo, hi] {
                if !values[end].is_nan() {
                    s -= 0.5 * values[end];
                    c -= 0.5;
                }
            }
        }
        if c >= 0.5 * m as f64 {
            *slot = s / c;
        }
    }
    trend
}

fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    values.sort_unstable_by(f64::total_cmp);
    if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    }
}

/// Fills NaN buckets by linear interpolation around the day's circle.
fn fill_circular_gaps(v: &mut [f64]) {
    let n = v.len();
    let known: Vec<usize> = (0..n).filter(|&i| !v[i].is_nan()).collect();
    for (k, &a) in known.iter().enumerate() {
        let b = known[(k + 1) % known.len()];
        let gap = (b + n - a) % n;
        let gap = if gap == 0 { n } else { gap };
        for s in 1..gap {
            let frac = s as f64 / gap as f64;
            v[(a + s) % n] = v[a] + frac * (v[b] - v[a]);
        }
    }
}

/// Circular moving average of half-width `half`.
fn smooth_circular(v: &[f64], half: usize) -> Vec<f64> {
    let n = v.len();
    if half == 0 || n < 3 {
        return v.to_vec();
    }
    let half = half.min((n - 1) / 2);
    let width = (2 * half + 1) as f64;
    let mut window: f64 = (0..=2 * half).map(|k| v[(k + n - half) % n]).sum();
    let mut out = vec![0.0; n];
    for i in 0..n {
        out[i] = window / width;
        window += v[(i + half + 1) % n] - v[(i + n - half) % n];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily_wave(t: i64) -> f64 {
        10.0 * (2.0 * std::f64::consts::PI * t.rem_euclid(DAY) as f64 / DAY as f64).sin()
    }

    #[test]
    fn recovers_a_clock_keyed_cycle_for_any_step_and_start() {
        for (step, start) in [
            (60u32, 1_700_000_123i64),
            (300, 1_700_003_600),
            (420, 17),
            (3600, 0),
        ] {
            let n = (4 * DAY / i64::from(step)) as usize;
            let values: Vec<f64> = (0..n)
                .map(|i| {
                    let t = start + i as i64 * i64::from(step);
                    100.0 + 0.001 * i as f64 + daily_wave(t)
                })
                .collect();
            let profile = DailyProfile::estimate(start, step, &values).expect("a strong cycle");
            for k in 0..50 {
                let t = start + (n as i64 + k * 37) * i64::from(step);
                let err = (profile.at(t) - daily_wave(t)).abs();
                // Bucketing and smoothing blur the sine by at most a few %.
                assert!(err < 0.6, "step {step}: {err} at {t}");
            }
        }
    }

    #[test]
    fn needs_two_days_and_a_real_cycle() {
        let short = vec![1.0; 1000];
        assert!(DailyProfile::estimate(0, 60, &short).is_none());
        // Noise without a cycle: the profile is too weak to use.
        let noise: Vec<f64> = (0..3000u64)
            .map(|i| ((i.wrapping_mul(2_654_435_761) % 1000) as f64) / 100.0)
            .collect();
        assert!(DailyProfile::estimate(0, 60, &noise).is_none());
    }

    #[test]
    fn missing_points_are_skipped() {
        let step = 300u32;
        let n = (3 * DAY / i64::from(step)) as usize;
        let values: Vec<f64> = (0..n)
            .map(|i| {
                if i % 7 == 3 || (100..160).contains(&i) {
                    f64::NAN
                } else {
                    50.0 + daily_wave(i as i64 * i64::from(step))
                }
            })
            .collect();
        let profile = DailyProfile::estimate(0, step, &values).unwrap();
        assert!((profile.at(DAY / 4) - 10.0).abs() < 0.6);
    }
}
