//! Differencing, its inverse for forecasts, and cleaning the input: filling
//! missing values, clipping isolated spikes.

/// `(1 - B)^d y`: `d` rounds of first differences, `y.len() - d` values.
pub fn difference(y: &[f64], d: usize) -> Vec<f64> {
    let mut out = y.to_vec();
    for _ in 0..d {
        if out.len() < 2 {
            return Vec::new();
        }
        out = out.windows(2).map(|w| w[1] - w[0]).collect();
    }
    out
}

/// The last value of each differencing level `0..d` of `y`: what undoing the
/// differences of a forecast starts from.
pub fn last_levels(y: &[f64], d: usize) -> Vec<f64> {
    let mut level = y.to_vec();
    let mut lasts = Vec::with_capacity(d);
    for _ in 0..d {
        lasts.push(
            *level
                .last()
                .expect("series shorter than its differencing order"),
        );
        level = difference(&level, 1);
    }
    lasts
}

/// Undoes `d` rounds of differencing on the forecasts `w` of `(1 - B)^d y`,
/// given [`last_levels`] of the observed `y`.
pub fn integrate(w: &[f64], lasts: &[f64]) -> Vec<f64> {
    let mut lasts = lasts.to_vec();
    w.iter()
        .map(|&v| {
            let mut value = v;
            for last in lasts.iter_mut().rev() {
                *last += value;
                value = *last;
            }
            value
        })
        .collect()
}

/// Fills interior NaNs by linear interpolation between the observed
/// neighbours. Leading and trailing NaNs are the caller's business (they are
/// trimmed before this is called), and are left as they are.
pub fn interpolate_missing(values: &mut [f64]) {
    let mut prev: Option<usize> = None;
    let mut i = 0;
    while i < values.len() {
        if values[i].is_nan() {
            let gap_start = i;
            while i < values.len() && values[i].is_nan() {
                i += 1;
            }
            if let (Some(a), true) = (prev, i < values.len()) {
                let (va, vb) = (values[a], values[i]);
                let span = (i - a) as f64;
                for (k, slot) in values[gap_start..i].iter_mut().enumerate() {
                    let frac = (gap_start + k - a) as f64 / span;
                    *slot = va + frac * (vb - va);
                }
            }
        } else {
            prev = Some(i);
            i += 1;
        }
    }
}

/// Replaces isolated spikes by the local median (a Hampel filter): a point
/// more than `k` robust standard deviations (1.4826 MAD of the residuals
/// from a centred running median of `2 * half + 1` points) from that median
/// is set to it. The last `half` points, whose window is one-sided, are
/// left alone: they are the freshest evidence of a real change.
pub fn clip_spikes(values: &mut [f64], half: usize, k: f64) -> usize {
    let n = values.len();
    if n < 2 * half + 2 {
        return 0;
    }
    let mut window = Vec::with_capacity(2 * half + 1);
    let medians: Vec<f64> = (0..n)
        .map(|t| {
            window.clear();
            window.extend_from_slice(&values[t.saturating_sub(half)..(t + half + 1).min(n)]);
            window.sort_unstable_by(f64::total_cmp);
            window[window.len() / 2]
        })
        .collect();
    let mut dev: Vec<f64> = values
        .iter()
        .zip(&medians)
        .map(|(v, m)| (v - m).abs())
        .collect();
    let mid = n / 2;
    let (_, mad, _) = dev.select_nth_unstable_by(mid, f64::total_cmp);
    let scale = 1.4826 * *mad;
    if scale <= 0.0 || scale.is_nan() {
        return 0;
    }
    let mut replaced = 0;
    for t in 0..n - half {
        if (values[t] - medians[t]).abs() > k * scale {
            values[t] = medians[t];
            replaced += 1;
        }
    }
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differencing_round_trips_through_integration() {
        let full: Vec<f64> = (0..20)
            .map(|i| (i as f64 * 0.7).sin() * 5.0 + (i * i) as f64 * 0.1)
            .collect();
        for d in 0..=2 {
            let (past, future) = full.split_at(14);
            let w_full = difference(&full, d);
            let w_future = &w_full[w_full.len() - future.len()..];
            let back = integrate(w_future, &last_levels(past, d));
            for (a, b) in back.iter().zip(future) {
                assert!((a - b).abs() < 1e-9, "d={d}: {back:?} vs {future:?}");
            }
        }
    }

    #[test]
    fn differences_of_a_line_are_constant() {
        assert_eq!(difference(&[1.0, 3.0, 5.0, 7.0], 1), vec![2.0; 3]);
        assert_eq!(difference(&[1.0, 4.0, 9.0, 16.0], 2), vec![2.0; 2]);
        assert!(difference(&[1.0], 1).is_empty());
    }

    #[test]
    fn isolated_spikes_are_clipped_but_bursts_and_the_tail_kept() {
        let base: Vec<f64> = (0..60)
            .map(|i| 10.0 + (i % 5) as f64 * 0.3 + i as f64 * 0.1)
            .collect();
        let mut v = base.clone();
        v[20] += 100.0; // isolated spike
        for x in &mut v[40..45] {
            *x += 50.0; // a five-step burst moves the median: real
        }
        v[59] += 100.0; // freshest point: not judged
        let clipped = clip_spikes(&mut v, 3, 5.0);
        assert_eq!(clipped, 1);
        assert!((v[20] - base[20]).abs() < 1.0);
        assert!(v[42] > base[42] + 40.0 && v[59] > base[59] + 90.0);
        // A trend is not a spike.
        let mut line: Vec<f64> = (0..50).map(|i| i as f64 * i as f64).collect();
        assert_eq!(clip_spikes(&mut line, 3, 5.0), 0);
    }

    #[test]
    fn interior_gaps_are_interpolated_linearly() {
        let mut v = [1.0, f64::NAN, f64::NAN, 4.0, f64::NAN, 6.0];
        interpolate_missing(&mut v);
        assert_eq!(v, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }
}
