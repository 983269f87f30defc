//! Small statistics helpers models share.

/// The standard normal quantile function (inverse CDF) for `p` in (0, 1),
/// by Acklam's rational approximation (relative error below 1.2e-9), which
/// is far finer than any forecast interval needs.
pub fn normal_quantile(p: f64) -> f64 {
    assert!(
        p > 0.0 && p < 1.0,
        "normal_quantile: p = {p} is outside (0, 1)"
    );
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.024_25;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - P_LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// The `p`-quantile of already sorted, finite values, interpolating linearly
/// between order statistics (Hyndman and Fan's type 7, numpy's default).
/// `None` when `sorted` is empty.
pub fn quantile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    match sorted.len() {
        0 => None,
        1 => Some(sorted[0]),
        n => {
            let h = (n - 1) as f64 * p.clamp(0.0, 1.0);
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
        }
    }
}

/// Sorts finite values ascending (NaN is not expected; it sorts last).
pub fn sort_finite(values: &mut [f64]) {
    values.sort_unstable_by(|a, b| a.total_cmp(b));
}

/// The larger of two finite values. `f64::max` has to ignore NaN, which
/// WebAssembly's `f64.max` does not, so on wasm32 it becomes a call to libm's
/// `fmax`; in a model's inner loop that call costs more than the arithmetic.
/// This is a compare and a select on every target.
#[inline]
pub fn larger(a: f64, b: f64) -> f64 {
    if a >= b { a } else { b }
}

/// The smaller of two finite values; see [`larger`] for why not `f64::min`.
#[inline]
pub fn smaller(a: f64, b: f64) -> f64 {
    if a <= b { a } else { b }
}

/// Whether every observed (non-NaN) value is >= 0: a load metric, which a
/// forecast should not take below zero. Sixteen values per loop iteration:
/// in wasm every iteration also pays wasmtime's epoch check.
pub fn all_non_negative(values: &[f64]) -> bool {
    // `v < 0.0` is false for NaN, so a chunk passes when no value is < 0.
    let (chunks, rest) = values.as_chunks::<16>();
    chunks.iter().all(|chunk| {
        !chunk
            .iter()
            .fold(false, |negative, &v| negative | (v < 0.0))
    }) && rest.iter().all(|&v| v >= 0.0 || v.is_nan())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantile_matches_tables() {
        // Reference values: scipy.stats.norm.ppf, to 9 decimals.
        for (p, z) in [
            (0.5, 0.0),
            (0.9, 1.281_551_566),
            (0.975, 1.959_963_985),
            (0.1, -1.281_551_566),
            (0.001, -3.090_232_306),
            (0.999_99, 4.264_890_794),
        ] {
            assert!((normal_quantile(p) - z).abs() < 1e-8, "p={p}");
        }
    }

    #[test]
    fn non_negative_ignores_missing_values() {
        let mut v = vec![1.0; 40];
        v[7] = f64::NAN;
        assert!(all_non_negative(&v));
        assert!(all_non_negative(&[]));
        for i in [3, 20, 39] {
            let mut w = v.clone();
            w[i] = -0.5;
            assert!(!all_non_negative(&w), "negative at {i}");
        }
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.5), Some(2.5));
        assert_eq!(quantile_sorted(&v, 0.0), Some(1.0));
        assert_eq!(quantile_sorted(&v, 1.0), Some(4.0));
        assert!((quantile_sorted(&v, 0.9).unwrap() - 3.7).abs() < 1e-12);
        assert_eq!(quantile_sorted(&[], 0.5), None);
    }
}
