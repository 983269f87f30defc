//! Quantile bands from the replayed errors.
//!
//! At each lead where errors were collected, the band offset for a level is
//! the empirical quantile of those errors; leads in between are interpolated,
//! leads past the last collected one grow like sqrt(lead) (a guess, stated as
//! such: the replay cannot see that far). Offsets below the median only fall
//! and offsets above it only rise with lead, so bands never narrow as the
//! forecast looks further ahead, and levels stay ordered. With too few errors
//! to trust, bands fall back to a normal spread of the running error scale.

use kedastral_model_sdk::stats::{larger, smaller};
use std::cmp::Ordering;

use kedastral_model_sdk::stats::normal_quantile;

/// Fewer errors than this at a lead and its quantiles are not used.
pub const MIN_ERRORS: usize = 20;

/// `offsets[l][h - 1]`: what to add to the point forecast at lead `h` for
/// `levels[l]`.
pub fn offsets(
    errors: &mut [Vec<f64>],
    leads: &[usize],
    levels: &[f64],
    horizon: usize,
    fallback_scale: f64,
) -> Vec<Vec<f64>> {
    let mut known: Vec<(usize, Vec<f64>)> = Vec::with_capacity(leads.len());
    for (errs, &h) in errors.iter_mut().zip(leads) {
        if errs.len() >= MIN_ERRORS {
            known.push((h, quantiles_unsorted(errs, levels)));
        }
    }

    let mut out: Vec<Vec<f64>> = vec![Vec::with_capacity(horizon); levels.len()];
    if known.is_empty() {
        // A median absolute error is 0.674 of a normal standard deviation.
        let sigma = 1.4826 * fallback_scale;
        for (l, &p) in levels.iter().enumerate() {
            let z = normal_quantile(p);
            out[l].extend((1..=horizon).map(|h| z * sigma * (h as f64).sqrt()));
        }
        return out;
    }

    let mut k = 0; // `known[k]` is the first known lead >= h
    for h in 1..=horizon {
        while k < known.len() && known[k].0 < h {
            k += 1;
        }
        for (l, row) in out.iter_mut().enumerate() {
            let v = if k == known.len() {
                let (last, q) = &known[k - 1];
                q[l] * (h as f64 / *last as f64).sqrt()
            } else if known[k].0 == h || k == 0 {
                known[k].1[l]
            } else {
                let (h0, q0) = &known[k - 1];
                let (h1, q1) = &known[k];
                let w = (h - h0) as f64 / (h1 - h0) as f64;
                q0[l] + w * (q1[l] - q0[l])
            };
            row.push(v);
        }
    }

    for (row, &p) in out.iter_mut().zip(levels) {
        if p < 0.5 {
            for h in 1..row.len() {
                row[h] = smaller(row[h], row[h - 1]);
            }
        } else if p > 0.5 {
            for h in 1..row.len() {
                row[h] = larger(row[h], row[h - 1]);
            }
        }
    }
    out
}

/// The SDK's `quantile_sorted` (type 7, numpy's default) for ascending
/// `levels`, by selection rather than a full sort: each level needs one
/// selection in what is left above the previous one and one scan for the next
/// order statistic, several times cheaper than sorting a few hundred errors.
fn quantiles_unsorted(values: &mut [f64], levels: &[f64]) -> Vec<f64> {
    let n = values.len();
    let cmp = |a: &f64, b: &f64| -> Ordering { a.total_cmp(b) };
    let mut placed = 0; // values[..placed] <= values[placed] <= values[placed + 1..]
    let mut selected = false;
    levels
        .iter()
        .map(|&p| {
            let h = (n - 1) as f64 * p.clamp(0.0, 1.0);
            let lo = (h.floor() as usize).min(n - 1);
            if !selected || lo > placed {
                values[placed..].select_nth_unstable_by(lo - placed, cmp);
                placed = lo;
                selected = true;
            }
            let v_lo = values[lo];
            if lo + 1 < n {
                let v_hi = values[lo + 1..]
                    .iter()
                    .copied()
                    .fold(f64::INFINITY, smaller);
                v_lo + (h - lo as f64) * (v_hi - v_lo)
            } else {
                v_lo
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use kedastral_model_sdk::stats::{quantile_sorted, sort_finite};

    #[test]
    fn selection_quantiles_match_sorted_ones() {
        // A fixed scramble of 0..97 with repeats, so selection has work to do.
        let mut v: Vec<f64> = (0..97).map(|i| f64::from((i * 37) % 97 / 3)).collect();
        let levels = [0.05, 0.1, 0.1 + 1e-9, 0.5, 0.9, 0.95, 0.999];
        let mut sorted = v.clone();
        sort_finite(&mut sorted);
        let got = quantiles_unsorted(&mut v, &levels);
        for (g, &p) in got.iter().zip(&levels) {
            assert!(
                (g - quantile_sorted(&sorted, p).unwrap()).abs() < 1e-12,
                "p={p}"
            );
        }
        assert_eq!(quantiles_unsorted(&mut [3.0], &[0.1, 0.9]), vec![3.0, 3.0]);
    }

    use super::*;

    #[test]
    fn quantiles_per_lead_interpolated_and_never_narrowing() {
        // Lead 1: errors -10..=10; lead 4: -40..=40 (so lead 2 and 3 interpolate).
        let mut errors = vec![
            (-10..=10).map(f64::from).collect::<Vec<_>>(),
            (-20..=20).map(|v| f64::from(v) * 2.0).collect(),
        ];
        let o = offsets(&mut errors, &[1, 4], &[0.1, 0.5, 0.9], 6, 0.0);
        assert_eq!(o[1][0], 0.0);
        assert!((o[2][0] - 8.0).abs() < 1e-9);
        assert!((o[2][3] - 32.0).abs() < 1e-9);
        assert!((o[2][1] - (8.0 + 8.0)).abs() < 1e-9);
        // Past the last lead: sqrt growth.
        assert!((o[2][5] - 32.0 * (6.0f64 / 4.0).sqrt()).abs() < 1e-9);
        for h in 1..6 {
            assert!(o[0][h] <= o[0][h - 1] && o[2][h] >= o[2][h - 1]);
            assert!(o[0][h] <= o[1][h] && o[1][h] <= o[2][h]);
        }
    }

    #[test]
    fn too_few_errors_fall_back_to_normal() {
        let mut errors = vec![vec![1.0; 3]];
        let o = offsets(&mut errors, &[1], &[0.5, 0.9], 4, 2.0);
        assert_eq!(o[0], vec![0.0; 4]);
        assert!((o[1][3] - 1.281_551_566 * 1.4826 * 2.0 * 2.0).abs() < 1e-6);
    }
}
