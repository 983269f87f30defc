//! Levenberg-Marquardt for the two least-squares problems ARIMA fitting is:
//! the conditional sum of squares ([`crate::css`], analytic Jacobian) and the
//! exact likelihood written as a sum of squares ([`crate::ml`], Jacobian by
//! forward differences).
//!
//! Gauss-Newton steps use the problems' structure, so a fit takes a handful
//! of passes over the data where BFGS or Nelder-Mead on the same objective
//! took hundreds: that is what keeps `order=auto` inside its time budget.
//! Constraints (stationarity, invertibility) are kept by refusing steps that
//! leave the admissible region; the damping then shortens the step.

/// A least-squares problem over `k` parameters.
pub(crate) trait LeastSquares {
    /// Sum of squares at `beta`, `+inf` when `beta` is not admissible.
    fn ssq(&mut self, beta: &[f64]) -> f64;

    /// Sum of squares, `J'J` (row-major `k x k`) and `J'r` at an admissible
    /// `beta`.
    fn normal_equations(&mut self, beta: &[f64]) -> (f64, Vec<f64>, Vec<f64>);
}

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stop {
    /// Relative decrease of the sum of squares that counts as converged.
    pub rel_tol: f64,
    pub max_iter: usize,
}

impl Stop {
    /// Converged when a step improves `-2 log L = n ln(ssq) + ...` by less
    /// than `gain`, i.e. the sum of squares by less than `gain / n`
    /// relatively. Stating it in likelihood units makes it mean the same on
    /// 100 points and on 10 000, and it is what ends the slow, linearly
    /// converging walks along the ridges of near-redundant AR/MA pairs, where
    /// steps keep improving the fit by amounts no forecast would show.
    pub fn likelihood_gain(gain: f64, n: usize, max_iter: usize) -> Self {
        Self {
            rel_tol: gain / n.max(1) as f64,
            max_iter,
        }
    }
}

/// Minimises from the admissible `beta`, in place; returns the final sum of
/// squares.
pub(crate) fn minimize(problem: &mut impl LeastSquares, beta: &mut [f64], stop: Stop) -> f64 {
    let k = beta.len();
    let (mut ssq, mut jtj, mut jtr) = problem.normal_equations(beta);
    if k == 0 || !ssq.is_finite() {
        return ssq;
    }
    // Small to start: near the optimum (CSS starts, or problems linear in
    // most parameters) a pure Gauss-Newton step is the right one.
    let mut lambda = 1e-6;
    // Nielsen's (1999) damping update: growing the rejection factor and
    // shrinking by the gain ratio avoids the accept/reject see-saw that a
    // plain x10 / /10 rule falls into on the ridges near-cancelling AR and
    // MA roots make.
    let mut nu = 2.0;
    let mut trial = vec![0.0; k];
    let mut a = vec![0.0; k * k];
    for _ in 0..stop.max_iter {
        a.copy_from_slice(&jtj);
        for i in 0..k {
            // Marquardt's scaling: damping proportional to each parameter's
            // curvature makes the step independent of parameter units.
            a[i * k + i] += lambda * jtj[i * k + i].max(1e-300);
        }
        let Some(step) = solve_spd(&a, &jtr, k) else {
            lambda *= nu;
            nu *= 2.0;
            if lambda > 1e12 {
                break;
            }
            continue;
        };
        let mut step_size: f64 = 0.0;
        for i in 0..k {
            trial[i] = beta[i] - step[i];
            step_size = step_size.max(step[i].abs() / (beta[i].abs() + 1e-8));
        }
        let trial_ssq = problem.ssq(&trial);
        // What the linearised model promised: delta' (J'r + lambda D delta).
        let predicted: f64 = (0..k)
            .map(|i| step[i] * (jtr[i] + lambda * jtj[i * k + i].max(1e-300) * step[i]))
            .sum();
        if trial_ssq < ssq {
            let rho = (ssq - trial_ssq) / predicted.max(f64::MIN_POSITIVE);
            let converged = ssq - trial_ssq <= stop.rel_tol * ssq || step_size < 1e-9;
            beta.copy_from_slice(&trial);
            ssq = trial_ssq;
            lambda = (lambda * (1.0 - (2.0 * rho - 1.0).powi(3)).max(1.0 / 3.0)).max(1e-12);
            nu = 2.0;
            if converged {
                break;
            }
            (ssq, jtj, jtr) = problem.normal_equations(beta);
        } else {
            if step_size < 1e-12 {
                break;
            }
            lambda *= nu;
            nu *= 2.0;
            if lambda > 1e12 {
                break;
            }
        }
    }
    ssq
}

/// Solves `a x = b` for symmetric positive definite `a` by Cholesky; `None`
/// when `a` is not numerically positive definite.
pub(crate) fn solve_spd(a: &[f64], b: &[f64], k: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..=i {
            let mut s = a[i * k + j];
            for m in 0..j {
                s -= l[i * k + m] * l[j * k + m];
            }
            if i == j {
                if s <= 0.0 || s.is_nan() {
                    return None;
                }
                l[i * k + i] = s.sqrt();
            } else {
                l[i * k + j] = s / l[j * k + j];
            }
        }
    }
    let mut y = vec![0.0; k];
    for i in 0..k {
        let s: f64 = (0..i).map(|m| l[i * k + m] * y[m]).sum();
        y[i] = (b[i] - s) / l[i * k + i];
    }
    let mut x = vec![0.0; k];
    for i in (0..k).rev() {
        let s: f64 = (i + 1..k).map(|m| l[m * k + i] * x[m]).sum();
        x[i] = (y[i] - s) / l[i * k + i];
    }
    Some(x)
}

/// `J'J` and `J'r` from residual columns: `jac[m]` holds `d r / d beta_m`.
pub(crate) fn gram(jac: &[Vec<f64>], r: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let k = jac.len();
    let mut jtj = vec![0.0; k * k];
    let mut jtr = vec![0.0; k];
    for a in 0..k {
        jtr[a] = dot(&jac[a], r);
        for b in 0..=a {
            let v = dot(&jac[a], &jac[b]);
            jtj[a * k + b] = v;
            jtj[b * k + a] = v;
        }
    }
    (jtj, jtr)
}

/// `a . b`, summed in order, exactly as `zip().map().sum()` would.
///
/// Sixteen products per loop iteration for wasm: wasmtime checks the epoch
/// at every loop iteration, and the check's cold call makes Cranelift keep
/// the running sum on the stack; unrolled, that store and reload come once
/// per sixteen additions instead of with each.
#[inline(never)]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a16, a_rest) = a[..n].as_chunks::<16>();
    let (b16, b_rest) = b[..n].as_chunks::<16>();
    let mut sum = -0.0;
    for (x, y) in a16.iter().zip(b16) {
        for k in 0..16 {
            sum += x[k] * y[k];
        }
    }
    for (x, y) in a_rest.iter().zip(b_rest) {
        sum += x * y;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fits `y = a exp(b x)`: a classic small nonlinear least-squares case.
    struct Exponential {
        x: Vec<f64>,
        y: Vec<f64>,
    }

    impl LeastSquares for Exponential {
        fn ssq(&mut self, beta: &[f64]) -> f64 {
            self.x
                .iter()
                .zip(&self.y)
                .map(|(x, y)| (y - beta[0] * (beta[1] * x).exp()).powi(2))
                .sum()
        }
        fn normal_equations(&mut self, beta: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
            let r: Vec<f64> = self
                .x
                .iter()
                .zip(&self.y)
                .map(|(x, y)| y - beta[0] * (beta[1] * x).exp())
                .collect();
            let jac = vec![
                self.x.iter().map(|x| -(beta[1] * x).exp()).collect(),
                self.x
                    .iter()
                    .map(|x| -beta[0] * x * (beta[1] * x).exp())
                    .collect(),
            ];
            let (jtj, jtr) = gram(&jac, &r);
            (r.iter().map(|v| v * v).sum(), jtj, jtr)
        }
    }

    #[test]
    fn fits_an_exponential() {
        let x: Vec<f64> = (0..20).map(|i| i as f64 / 10.0).collect();
        let y = x.iter().map(|x| 3.0 * (-0.7 * x).exp()).collect();
        let mut problem = Exponential { x, y };
        let mut beta = [1.0, 0.0];
        let ssq = minimize(
            &mut problem,
            &mut beta,
            Stop {
                rel_tol: 1e-14,
                max_iter: 100,
            },
        );
        assert!(ssq < 1e-16, "{ssq}");
        assert!(
            (beta[0] - 3.0).abs() < 1e-6 && (beta[1] + 0.7).abs() < 1e-6,
            "{beta:?}"
        );
    }
}
