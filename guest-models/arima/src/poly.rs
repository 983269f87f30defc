//! Lag polynomials: stationarity and invertibility checks without root
//! finding, and the psi-weights that give interval widths.
//!
//! Conventions, as in R's `arima` and statsmodels: the AR polynomial is
//! `1 - phi_1 B - ... - phi_p B^p`, the MA polynomial `1 + theta_1 B + ...`.

/// The partial autocorrelations of a stationary AR polynomial, by running
/// the Durbin-Levinson recursion backwards (R's `invpartrans`); `None` when
/// it is not stationary, i.e. some partial autocorrelation reaches +-1
/// (Barndorff-Nielsen and Schou 1973: stationary iff all lie in (-1, 1)).
#[cfg(test)]
pub(crate) fn ar_to_pacf(phi: &[f64]) -> Option<Vec<f64>> {
    let mut cur = phi.to_vec();
    let mut work = phi.to_vec();
    pacf_in_place(&mut cur, &mut work).then_some(cur)
}

/// [`ar_to_pacf`] in place: `cur` holds the AR coefficients and ends with
/// the partial autocorrelations; `work` (as long) is scratch. False when
/// not stationary.
fn pacf_in_place(cur: &mut [f64], work: &mut [f64]) -> bool {
    let p = cur.len();
    for j in (1..p).rev() {
        let a = cur[j];
        if a.abs() >= 1.0 || a.is_nan() {
            return false;
        }
        let denom = 1.0 - a * a;
        for k in 0..j {
            work[k] = (cur[k] + a * cur[j - k - 1]) / denom;
        }
        cur[..j].copy_from_slice(&work[..j]);
    }
    !(p > 0 && (cur[0].abs() >= 1.0 || cur[0].is_nan()))
}

/// True when every root of `1 - sum phi_i z^i` lies outside the circle of
/// radius `radius` (>= 1). Scaling `phi_i` by `radius^i` moves that circle
/// onto the unit circle, so the partial-autocorrelation test decides it.
pub fn is_stationary(phi: &[f64], radius: f64) -> bool {
    scaled_is_stationary(phi, 1.0, radius)
}

/// True when every root of `1 + sum theta_j z^j` lies outside the circle of
/// radius `radius`.
pub fn is_invertible(theta: &[f64], radius: f64) -> bool {
    scaled_is_stationary(theta, -1.0, radius)
}

/// Whether `sign * c` is stationary within `radius`. The fits check this
/// at every trial point, so short polynomials (all the default search
/// visits) are worked on the stack rather than in fresh allocations.
fn scaled_is_stationary(c: &[f64], sign: f64, radius: f64) -> bool {
    const ON_STACK: usize = 8;
    if c.is_empty() {
        return true;
    }
    let mut scale = 1.0;
    let mut scaled = c.iter().map(|&c| {
        scale *= radius;
        (sign * c) * scale
    });
    if c.len() <= ON_STACK {
        let mut cur = [0.0; ON_STACK];
        let mut work = [0.0; ON_STACK];
        for slot in &mut cur[..c.len()] {
            *slot = scaled.next().expect("one per coefficient");
        }
        pacf_in_place(&mut cur[..c.len()], &mut work[..c.len()])
    } else {
        let mut cur: Vec<f64> = scaled.collect();
        let mut work = cur.clone();
        pacf_in_place(&mut cur, &mut work)
    }
}

/// The AR coefficients of `phi(B) (1 - B)^d`, the integrated model's
/// autoregressive side, in the same `1 - sum c_i B^i` convention.
pub fn integrated_ar(phi: &[f64], d: usize) -> Vec<f64> {
    // Work with the full polynomial 1 - sum phi_i B^i, multiply by (1 - B) d
    // times, then read the coefficients back with the sign flipped.
    let mut poly: Vec<f64> = std::iter::once(1.0).chain(phi.iter().map(|c| -c)).collect();
    for _ in 0..d {
        let mut next = vec![0.0; poly.len() + 1];
        for (i, &c) in poly.iter().enumerate() {
            next[i] += c;
            next[i + 1] -= c;
        }
        poly = next;
    }
    poly[1..].iter().map(|c| -c).collect()
}

/// The first `n` psi-weights (`psi_0 = 1`) of the MA(infinity) form of
/// ARIMA(phi, d, theta): the h-step forecast error variance is
/// `sigma2 * sum_{j<h} psi_j^2`.
pub fn psi_weights(phi: &[f64], d: usize, theta: &[f64], n: usize) -> Vec<f64> {
    let ar = integrated_ar(phi, d);
    let mut psi = vec![0.0; n];
    for j in 0..n {
        let mut v = if j == 0 {
            1.0
        } else if j <= theta.len() {
            theta[j - 1]
        } else {
            0.0
        };
        for (i, &c) in ar.iter().enumerate().take(j) {
            v += c * psi[j - i - 1];
        }
        psi[j] = v;
    }
    psi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_autocorrelations_of_an_ar2() {
        // AR(2) with phi = (0.5, 0.3): r2 = phi2, r1 = phi1 / (1 - phi2).
        let pacf = ar_to_pacf(&[0.5, 0.3]).unwrap();
        assert!((pacf[0] - 0.5 / 0.7).abs() < 1e-12 && (pacf[1] - 0.3).abs() < 1e-12);
    }

    #[test]
    fn stationarity_matches_known_polynomials() {
        assert!(is_stationary(&[0.5], 1.0));
        assert!(!is_stationary(&[1.0], 1.0));
        assert!(!is_stationary(&[1.2], 1.0));
        // AR(2) triangle: phi2 + phi1 < 1, phi2 - phi1 < 1, |phi2| < 1.
        assert!(is_stationary(&[1.2, -0.5], 1.0));
        assert!(!is_stationary(&[0.6, 0.5], 1.0));
        // Root at 1/0.995 is outside the unit circle but inside radius 1.01.
        assert!(is_stationary(&[0.995], 1.0));
        assert!(!is_stationary(&[0.995], 1.01));
        assert!(is_invertible(&[-0.8], 1.0));
        assert!(!is_invertible(&[-1.0], 1.0));
    }

    #[test]
    fn psi_weights_of_known_models() {
        // AR(1): psi_j = phi^j.
        let psi = psi_weights(&[0.6], 0, &[], 5);
        for (j, v) in psi.iter().enumerate() {
            assert!((v - 0.6f64.powi(j as i32)).abs() < 1e-12);
        }
        // MA(1): 1, theta, 0, 0.
        assert_eq!(psi_weights(&[], 0, &[0.4], 4), vec![1.0, 0.4, 0.0, 0.0]);
        // Random walk: all ones.
        assert_eq!(psi_weights(&[], 1, &[], 4), vec![1.0; 4]);
        // ARIMA(0,1,1) = simple exponential smoothing: psi_j = 1 + theta.
        let psi = psi_weights(&[], 1, &[-0.3], 4);
        for v in &psi[1..] {
            assert!((v - 0.7).abs() < 1e-12);
        }
        // ARIMA(0,2,0): psi_j = j + 1.
        assert_eq!(psi_weights(&[], 2, &[], 4), vec![1.0, 2.0, 3.0, 4.0]);
        // ARIMA(1,1,0): psi_j = (1 - phi^(j+1)) / (1 - phi).
        let phi = 0.5f64;
        let psi = psi_weights(&[phi], 1, &[], 6);
        for (j, v) in psi.iter().enumerate() {
            let want = (1.0 - phi.powi(j as i32 + 1)) / (1.0 - phi);
            assert!((v - want).abs() < 1e-12);
        }
    }

    #[test]
    fn integrated_ar_expands_differences() {
        assert_eq!(integrated_ar(&[], 1), vec![1.0]);
        assert_eq!(integrated_ar(&[], 2), vec![2.0, -1.0]);
        // (1 - 0.5B)(1 - B) = 1 - 1.5B + 0.5B^2.
        assert_eq!(integrated_ar(&[0.5], 1), vec![1.5, -0.5]);
    }
}
