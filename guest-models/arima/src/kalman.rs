//! The exact Gaussian likelihood of a stationary ARMA(p, q) by the Kalman
//! filter, in the state-space form R's `arima` uses (Harvey 1989, with
//! `r = max(p, q + 1)` states):
//!
//! ```text
//! x_t     = Z a_t,                Z = (1, 0, ..., 0)
//! a_{t+1} = T a_t + R e_{t+1},    T = [phi | I; 0],  R = (1, theta_1, ..., theta_{r-1})'
//! ```
//!
//! The variance `sigma2` is concentrated out, so the filter runs with unit
//! innovation variance. Once the state covariance stops changing (it always
//! does for an invertible MA part) the gain is frozen and each step costs
//! O(r), about what the conditional sum of squares costs.

use kedastral_model_sdk::stats::larger;

/// What one pass of the filter gives.
#[derive(Debug, Clone)]
pub(crate) struct FilterOutput {
    /// Sum of squared standardised innovations `v_t^2 / F_t`.
    pub ssq: f64,
    /// Sum of `ln F_t`.
    pub sumlog: f64,
    /// Observations used.
    pub nu: usize,
    /// Predicted state for the step after the last observation.
    pub state: Vec<f64>,
}

impl FilterOutput {
    /// `sigma2` at its maximum-likelihood value.
    pub fn sigma2(&self) -> f64 {
        self.ssq / self.nu as f64
    }

    /// The objective R's `arima` minimises: `0.5 * (ln sigma2 + sumlog / n)`.
    /// Scale-free and O(1) whatever the length, so tolerances mean the same
    /// on short and long series.
    pub fn objective(&self) -> f64 {
        let n = self.nu as f64;
        0.5 * (self.sigma2().max(f64::MIN_POSITIVE).ln() + self.sumlog / n)
    }

    /// The maximised Gaussian log-likelihood.
    pub fn loglik(&self) -> f64 {
        let n = self.nu as f64;
        -0.5 * (2.0 * n * self.objective() + n + n * (2.0 * std::f64::consts::PI).ln())
    }
}

/// Largest change in the predicted covariance below which it counts as
/// converged. Tight because the objective is differentiated numerically: a
/// looser freeze point would show up as noise in the gradient.
const STEADY_TOL: f64 = 1e-12;

/// Runs the filter over the demeaned series `x`. `None` when the AR part is
/// not stationary (no stationary initial covariance exists).
pub(crate) fn filter(x: &[f64], phi: &[f64], theta: &[f64]) -> Option<FilterOutput> {
    filter_into(x, phi, theta, None)
}

/// [`filter`], also writing the standardised innovations `v_t / sqrt(F_t)`
/// into `standardised` (as long as `x`).
pub(crate) fn filter_into(
    x: &[f64],
    phi: &[f64],
    theta: &[f64],
    standardised: Option<&mut [f64]>,
) -> Option<FilterOutput> {
    let r = phi.len().max(theta.len() + 1);
    // Orders up to (3, 3), the default search space, get a kernel with the
    // state dimension fixed at compile time.
    match r {
        1 => filter_fixed::<1>(x, phi, theta, standardised),
        2 => filter_fixed::<2>(x, phi, theta, standardised),
        3 => filter_fixed::<3>(x, phi, theta, standardised),
        4 => filter_fixed::<4>(x, phi, theta, standardised),
        _ => {
            let (phi_r, rvec) = padded(phi, theta, vec![0.0; r], vec![0.0; r]);
            let pm = stationary_covariance(phi, &rvec)?;
            filter_any(x, &phi_r, &rvec, pm, standardised)
        }
    }
}

/// `phi` padded with zeros to the state dimension (so the loops need no
/// branches), and `R = (1, theta..)`, likewise padded, written into the
/// zeroed `phi_r` and `rvec`.
fn padded<V: AsMut<[f64]>>(phi: &[f64], theta: &[f64], mut phi_r: V, mut rvec: V) -> (V, V) {
    phi_r.as_mut()[..phi.len()].copy_from_slice(phi);
    rvec.as_mut()[0] = 1.0;
    rvec.as_mut()[1..=theta.len()].copy_from_slice(theta);
    (phi_r, rvec)
}

/// How many `F_t` the transient phase collects before taking their logs.
const LOG_BATCH: usize = 16;

/// [`filter_into`] for state dimension `R`.
///
/// Shaped for wasm: with `R` fixed every loop over the state unrolls
/// completely (in wasm each loop iteration passes wasmtime's epoch check,
/// whose cold call makes Cranelift keep the running values on the stack),
/// and the `ln F_t` calls are batched outside the per-step loop so the step
/// itself makes no call that would spill the covariance.
#[inline(never)]
fn filter_fixed<const R: usize>(
    x: &[f64],
    phi: &[f64],
    theta: &[f64],
    mut standardised: Option<&mut [f64]>,
) -> Option<FilterOutput> {
    let (phi_r, rvec) = padded(phi, theta, [0.0; R], [0.0; R]);
    let mut pm = stationary_covariance_fixed(&phi_r, &rvec)?;
    let mut a = [0.0; R];
    let (mut ssq, mut sumlog) = (0.0, 0.0);
    let mut fs = [0.0; LOG_BATCH];
    let mut n_fs = 0;

    // Transient phase: full covariance recursion until it settles.
    let mut t = 0;
    let mut settled = false;
    while t < x.len() && !settled {
        let v = x[t] - a[0];
        let f = pm[0][0];
        if f <= 0.0 || !f.is_finite() {
            return None;
        }
        ssq += v * v / f;
        // Logs summed in the same order as one by one, just later.
        fs[n_fs] = f;
        n_fs += 1;
        if n_fs == LOG_BATCH {
            sumlog = add_logs(sumlog, &fs);
            n_fs = 0;
        }
        if let Some(out) = standardised.as_deref_mut() {
            out[t] = v / f.sqrt();
        }
        let mut a_upd = [0.0; R];
        for i in 0..R {
            a_upd[i] = a[i] + pm[0][i] / f * v;
        }
        let mut p_upd = [[0.0; R]; R];
        for i in 0..R {
            for j in 0..R {
                p_upd[i][j] = pm[i][j] - pm[0][i] * pm[0][j] / f;
            }
        }
        // T P T' + R R', as in `filter_any`.
        let mut change: f64 = 0.0;
        for i in 0..R {
            for j in 0..R {
                let mut v = rvec[i] * rvec[j] + phi_r[i] * phi_r[j] * p_upd[0][0];
                if i + 1 < R && j + 1 < R {
                    v += p_upd[i + 1][j + 1];
                }
                if j + 1 < R {
                    v += phi_r[i] * p_upd[0][j + 1];
                }
                if i + 1 < R {
                    v += phi_r[j] * p_upd[i + 1][0];
                }
                change = larger(change, (v - pm[i][j]).abs());
                pm[i][j] = v;
            }
        }
        for i in 0..R {
            a[i] = phi_r[i] * a_upd[0] + if i + 1 < R { a_upd[i + 1] } else { 0.0 };
        }
        settled = change < STEADY_TOL;
        t += 1;
    }
    sumlog = add_logs(sumlog, &fs[..n_fs]);

    // Steady phase, as in `filter_any`.
    if t < x.len() {
        let f = pm[0][0];
        if f <= 0.0 || !f.is_finite() {
            return None;
        }
        let gain: [f64; R] = std::array::from_fn(|i| pm[0][i] / f);
        let inv_sd = 1.0 / f.sqrt();
        let mut raw_ssq = 0.0;
        for (k, &obs) in x[t..].iter().enumerate() {
            let v = obs - a[0];
            raw_ssq += v * v;
            if let Some(out) = standardised.as_deref_mut() {
                out[t + k] = v * inv_sd;
            }
            let a0 = a[0] + gain[0] * v;
            for i in 0..R - 1 {
                a[i] = phi_r[i] * a0 + a[i + 1] + gain[i + 1] * v;
            }
            a[R - 1] = phi_r[R - 1] * a0;
        }
        ssq += raw_ssq / f;
        sumlog += (x.len() - t) as f64 * f.ln();
    }
    Some(FilterOutput {
        ssq,
        sumlog,
        nu: x.len(),
        state: a.to_vec(),
    })
}

/// `sum + ln f_1 + ln f_2 + ...`, in that order.
#[inline(never)]
fn add_logs(mut sum: f64, fs: &[f64]) -> f64 {
    for f in fs {
        sum += f.ln();
    }
    sum
}

/// [`filter_into`] for any state dimension.
fn filter_any(
    x: &[f64],
    phi_r: &[f64],
    rvec: &[f64],
    mut pm: Vec<f64>,
    mut standardised: Option<&mut [f64]>,
) -> Option<FilterOutput> {
    let r = rvec.len();
    let mut a = vec![0.0; r];
    let mut a_upd = vec![0.0; r];
    let mut p_upd = vec![0.0; r * r];
    let mut p_next = vec![0.0; r * r];
    let (mut ssq, mut sumlog) = (0.0, 0.0);

    // Transient phase: full covariance recursion until it settles.
    let mut t = 0;
    let mut settled = false;
    while t < x.len() && !settled {
        let v = x[t] - a[0];
        let f = pm[0];
        if f <= 0.0 || !f.is_finite() {
            return None;
        }
        ssq += v * v / f;
        sumlog += f.ln();
        if let Some(out) = standardised.as_deref_mut() {
            out[t] = v / f.sqrt();
        }
        for i in 0..r {
            a_upd[i] = a[i] + pm[i] / f * v;
        }
        for i in 0..r {
            for j in 0..r {
                p_upd[i * r + j] = pm[i * r + j] - pm[i] * pm[j] / f;
            }
        }
        // T P T' + R R', spelled out: T is a companion matrix, so only its
        // first column and superdiagonal are non-zero.
        let mut change: f64 = 0.0;
        for i in 0..r {
            for j in 0..r {
                let mut v = rvec[i] * rvec[j] + phi_r[i] * phi_r[j] * p_upd[0];
                if i + 1 < r && j + 1 < r {
                    v += p_upd[(i + 1) * r + j + 1];
                }
                if j + 1 < r {
                    v += phi_r[i] * p_upd[j + 1];
                }
                if i + 1 < r {
                    v += phi_r[j] * p_upd[(i + 1) * r];
                }
                p_next[i * r + j] = v;
                change = larger(change, (v - pm[i * r + j]).abs());
            }
        }
        std::mem::swap(&mut pm, &mut p_next);
        predict(&mut a, &a_upd, phi_r);
        settled = change < STEADY_TOL;
        t += 1;
    }

    // Steady phase: the covariance no longer changes, so neither do F and
    // the gain; each step is O(r), about what a CSS residual costs.
    if t < x.len() {
        let f = pm[0];
        if f <= 0.0 || !f.is_finite() {
            return None;
        }
        let gain: Vec<f64> = (0..r).map(|i| pm[i] / f).collect();
        let inv_sd = 1.0 / f.sqrt();
        let mut raw_ssq = 0.0;
        for (k, &obs) in x[t..].iter().enumerate() {
            let v = obs - a[0];
            raw_ssq += v * v;
            if let Some(out) = standardised.as_deref_mut() {
                out[t + k] = v * inv_sd;
            }
            // a = T (a + gain v), in place.
            let a0 = a[0] + gain[0] * v;
            for i in 0..r - 1 {
                a[i] = phi_r[i] * a0 + a[i + 1] + gain[i + 1] * v;
            }
            a[r - 1] = phi_r[r - 1] * a0;
        }
        ssq += raw_ssq / f;
        sumlog += (x.len() - t) as f64 * f.ln();
    }
    Some(FilterOutput {
        ssq,
        sumlog,
        nu: x.len(),
        state: a,
    })
}

/// `a = T a_upd` for the companion matrix `T`.
fn predict(a: &mut [f64], a_upd: &[f64], phi_r: &[f64]) {
    let r = a.len();
    for i in 0..r {
        a[i] = phi_r[i] * a_upd[0] + if i + 1 < r { a_upd[i + 1] } else { 0.0 };
    }
}

/// The stationary covariance of the state, `P = T P T' + R R'`, by the
/// doubling recursion `P <- P + A P A'`, `A <- A^2` (each round doubles the
/// number of terms of `sum_k T^k R R' T'^k` summed). `None` when it does not
/// converge, i.e. the AR part is not stationary.
fn stationary_covariance(phi: &[f64], rvec: &[f64]) -> Option<Vec<f64>> {
    let r = rvec.len();
    let mut pm = vec![0.0; r * r];
    for i in 0..r {
        for j in 0..r {
            pm[i * r + j] = rvec[i] * rvec[j];
        }
    }
    let mut a = vec![0.0; r * r];
    for i in 0..r {
        if i < phi.len() {
            a[i * r] = phi[i];
        }
        if i + 1 < r {
            a[i * r + i + 1] = 1.0;
        }
    }
    let mut tmp = vec![0.0; r * r];
    let mut apa = vec![0.0; r * r];
    for _ in 0..80 {
        // apa = A P A'
        matmul(&a, &pm, &mut tmp, r);
        matmul_bt(&tmp, &a, &mut apa, r);
        let mut size: f64 = 0.0;
        let mut inc: f64 = 0.0;
        for k in 0..r * r {
            pm[k] += apa[k];
            size = larger(size, pm[k].abs());
            inc = larger(inc, apa[k].abs());
        }
        if !size.is_finite() {
            return None;
        }
        if inc <= 1e-15 * size {
            return Some(pm);
        }
        matmul(&a, &a, &mut tmp, r);
        std::mem::swap(&mut a, &mut tmp);
    }
    None
}

/// [`stationary_covariance`] for state dimension `R` (`phi_r` padded to
/// `R`), the same sums in the same order; fixed size so that the matrix
/// products unroll completely (no wasm loops, so no epoch checks, inside).
#[inline(never)]
fn stationary_covariance_fixed<const R: usize>(
    phi_r: &[f64; R],
    rvec: &[f64; R],
) -> Option<[[f64; R]; R]> {
    let mut pm = [[0.0; R]; R];
    let mut a = [[0.0; R]; R];
    for i in 0..R {
        for j in 0..R {
            pm[i][j] = rvec[i] * rvec[j];
        }
        a[i][0] = phi_r[i];
        if i + 1 < R {
            a[i][i + 1] = 1.0;
        }
    }
    for _ in 0..80 {
        // apa = A P A'
        let tmp = matmul_fixed(&a, &pm);
        let mut apa = [[0.0; R]; R];
        for i in 0..R {
            for j in 0..R {
                let mut s = tmp[i][0] * a[j][0];
                for k in 1..R {
                    s += tmp[i][k] * a[j][k];
                }
                apa[i][j] = s;
            }
        }
        let mut size: f64 = 0.0;
        let mut inc: f64 = 0.0;
        for i in 0..R {
            for j in 0..R {
                pm[i][j] += apa[i][j];
                size = larger(size, pm[i][j].abs());
                inc = larger(inc, apa[i][j].abs());
            }
        }
        if !size.is_finite() {
            return None;
        }
        if inc <= 1e-15 * size {
            return Some(pm);
        }
        a = matmul_fixed(&a, &a);
    }
    None
}

/// `a * b`, summed as [`matmul`] does.
#[inline(always)]
fn matmul_fixed<const R: usize>(a: &[[f64; R]; R], b: &[[f64; R]; R]) -> [[f64; R]; R] {
    let mut out = [[0.0; R]; R];
    for i in 0..R {
        for j in 0..R {
            let mut s = a[i][0] * b[0][j];
            for k in 1..R {
                s += a[i][k] * b[k][j];
            }
            out[i][j] = s;
        }
    }
    out
}

fn matmul(a: &[f64], b: &[f64], out: &mut [f64], r: usize) {
    for i in 0..r {
        for j in 0..r {
            out[i * r + j] = (0..r).map(|k| a[i * r + k] * b[k * r + j]).sum();
        }
    }
}

/// `a * b'`.
fn matmul_bt(a: &[f64], b: &[f64], out: &mut [f64], r: usize) {
    for i in 0..r {
        for j in 0..r {
            out[i * r + j] = (0..r).map(|k| a[i * r + k] * b[j * r + k]).sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ar1_initial_variance_is_the_stationary_one() {
        let pm = stationary_covariance(&[0.8], &[1.0]).unwrap();
        assert!((pm[0] - 1.0 / (1.0 - 0.64)).abs() < 1e-9);
        assert!(stationary_covariance(&[1.0], &[1.0]).is_none());
    }

    #[test]
    fn ar1_likelihood_matches_the_closed_form() {
        // Exact AR(1) likelihood: first point has variance 1/(1-phi^2), the
        // rest are one-step innovations with variance 1.
        let x = [0.5, -0.2, 1.1, 0.3, -0.7, 0.05];
        let phi = 0.6f64;
        let out = filter(&x, &[phi], &[]).unwrap();
        let mut ssq = x[0] * x[0] * (1.0 - phi * phi);
        for t in 1..x.len() {
            ssq += (x[t] - phi * x[t - 1]).powi(2);
        }
        assert!((out.ssq - ssq).abs() < 1e-12);
        assert!((out.sumlog - (1.0 / (1.0 - phi * phi)).ln()).abs() < 1e-12);
    }

    #[test]
    fn fixed_size_kernels_match_the_general_one() {
        let x: Vec<f64> = (0..150)
            .map(|i| ((i * 37) % 17) as f64 * 0.3 - 2.4 + (i as f64 * 0.4).sin())
            .collect();
        for (phi, theta) in [
            (&[0.5][..], &[][..]),
            (&[0.3, -0.2], &[0.4]),
            (&[], &[0.6, 0.2]),
            (&[0.2, 0.1, -0.3], &[0.5, -0.2, 0.1]),
        ] {
            let r = phi.len().max(theta.len() + 1);
            let mut phi_r = vec![0.0; r];
            phi_r[..phi.len()].copy_from_slice(phi);
            let mut rvec = vec![0.0; r];
            rvec[0] = 1.0;
            rvec[1..=theta.len()].copy_from_slice(theta);
            let pm = stationary_covariance(phi, &rvec).unwrap();
            let (mut u_fixed, mut u_any) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            let fixed = filter_into(&x, phi, theta, Some(&mut u_fixed)).unwrap();
            let any = filter_any(&x, &phi_r, &rvec, pm, Some(&mut u_any)).unwrap();
            assert_eq!(fixed.ssq, any.ssq, "{phi:?} {theta:?}");
            assert_eq!(fixed.sumlog, any.sumlog, "{phi:?} {theta:?}");
            assert_eq!(fixed.state, any.state, "{phi:?} {theta:?}");
            assert_eq!(u_fixed, u_any, "{phi:?} {theta:?}");
        }
    }

    #[test]
    fn ma1_gain_converges_and_freezing_changes_nothing() {
        let x: Vec<f64> = (0..400)
            .map(|i| ((i * 7919) % 101) as f64 / 50.0 - 1.0)
            .collect();
        let out = filter(&x, &[], &[0.5]).unwrap();
        assert!(out.ssq.is_finite() && out.sumlog > 0.0 && out.sumlog < 1.0);
    }
}
