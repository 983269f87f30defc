//! Seasonal decomposition: one profile per season, keyed by phase.

/// Fills interior NaNs by linear interpolation between their neighbours.
/// The ends must be observed.
pub fn fill_gaps(y: &mut [f64]) {
    let mut i = 0;
    while i < y.len() {
        if !y[i].is_nan() {
            i += 1;
            continue;
        }
        let before = i - 1;
        let after = (i..y.len())
            .find(|&j| !y[j].is_nan())
            .expect("last is observed");
        let (a, b) = (y[before], y[after]);
        let span = (after - before) as f64;
        for (k, v) in y[i..after].iter_mut().enumerate() {
            *v = a + (b - a) * (k + 1) as f64 / span;
        }
        i = after;
    }
}

/// Cycles per phase the profile takes the median of: the latest ones, so
/// a pattern that changed weeks ago no longer counts.
const CYCLES: usize = 5;

/// One profile per period (ascending), each `period` long, where `y[i]` has
/// phase `(phase0(period) + i) % period`. Two rounds over the seasons, each
/// estimated on the series less the others.
pub fn profiles(y: &[f64], periods: &[usize], phase0: impl Fn(usize) -> usize) -> Vec<Vec<f64>> {
    let mut profiles: Vec<Vec<f64>> = periods.iter().map(|&p| vec![0.0; p]).collect();
    let rounds = if periods.len() > 1 { 2 } else { 1 };
    let mut rest = vec![0.0; y.len()];
    for _ in 0..rounds {
        for k in 0..periods.len() {
            for (i, r) in rest.iter_mut().enumerate() {
                *r = y[i]
                    - periods
                        .iter()
                        .zip(&profiles)
                        .enumerate()
                        .filter(|&(j, _)| j != k)
                        .map(|(j, (&p, profile))| profile[(phase0(periods[j]) + i) % p])
                        .sum::<f64>();
            }
            profiles[k] = profile(&rest, periods[k], phase0(periods[k]));
        }
    }
    profiles
}

/// The seasonal profile of `x` for one period: detrended by a centred
/// moving average a period long, the median of each phase's last cycles,
/// smoothed along the phases (circularly), centred on zero.
fn profile(x: &[f64], period: usize, phase0: usize) -> Vec<f64> {
    let trend = moving_average(x, period);
    let mut by_phase: Vec<Vec<f64>> = vec![Vec::with_capacity(CYCLES); period];
    for i in (0..x.len()).rev() {
        let phase = (phase0 + i) % period;
        if by_phase[phase].len() < CYCLES {
            by_phase[phase].push(x[i] - trend[i]);
        }
    }
    let raw: Vec<f64> = by_phase.iter_mut().map(|v| median(v)).collect();
    // A window of about a hundredth of the season: 15 minutes of a day.
    let half = period / 200;
    let mut smooth: Vec<f64> = (0..period)
        .map(|ph| {
            let sum: f64 = (0..=2 * half)
                .map(|k| raw[(ph + period + k - half) % period])
                .sum();
            sum / (2 * half + 1) as f64
        })
        .collect();
    let mean = smooth.iter().sum::<f64>() / period as f64;
    for v in &mut smooth {
        *v -= mean;
    }
    smooth
}

/// Centred moving average `width` long (2 x width for an even width). Near
/// the ends the window stays a whole `width` long and shifts inwards, so it
/// still spans every phase once and the season averages out of the trend.
fn moving_average(x: &[f64], width: usize) -> Vec<f64> {
    let n = x.len();
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0.0);
    for v in x {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + v);
    }
    if n <= width {
        let mean = prefix[n] / n.max(1) as f64;
        return vec![mean; n];
    }
    let half = width / 2;
    let mean = |from: usize| (prefix[from + width] - prefix[from]) / width as f64;
    (0..n)
        .map(|i| {
            let centred = i.checked_sub(half).filter(|&f| f + width < n);
            match centred {
                // Even width: the two windows around i, averaged.
                Some(from) if width.is_multiple_of(2) => (mean(from) + mean(from + 1)) / 2.0,
                Some(from) => mean(from),
                None => mean(i.saturating_sub(half).min(n - width)),
            }
        })
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_filled_on_the_line_between_neighbours() {
        let mut y = [1.0, f64::NAN, f64::NAN, 4.0, f64::NAN, 6.0];
        fill_gaps(&mut y);
        assert_eq!(y, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn a_pure_season_comes_back_whole() {
        let shape = [3.0, -1.0, -4.0, 2.0, 0.0, 0.0, 1.0, -1.0];
        let y: Vec<f64> = (0..80).map(|i| 50.0 + shape[(i + 3) % 8]).collect();
        let p = profiles(&y, &[8], |_| 3);
        for (got, want) in p[0].iter().zip(shape) {
            assert!((got - want).abs() < 1e-9, "{:?}", p[0]);
        }
    }

    #[test]
    fn two_seasons_are_told_apart() {
        let day = |i: usize| 10.0 * (i as f64 * std::f64::consts::TAU / 24.0).sin();
        let week = |i: usize| {
            if (i / 24) % 7 >= 5 {
                -6.0
            } else {
                6.0 * 2.0 / 5.0
            }
        };
        let y: Vec<f64> = (0..24 * 7 * 4).map(|i| 100.0 + day(i) + week(i)).collect();
        let p = profiles(&y, &[24, 168], |_| 0);
        // Everything is explained: the two profiles add up to the series.
        for (i, v) in y.iter().enumerate() {
            let fit = 100.0 + p[0][i % 24] + p[1][i % 168];
            assert!((fit - v).abs() < 0.5, "at {i}: {fit} vs {v}");
        }
    }
}
