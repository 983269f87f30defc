//! Exact maximum likelihood, written as least squares so that
//! [`crate::lm`] can take Gauss-Newton steps.
//!
//! With `sigma2` concentrated out, `-2 log L = n ln(S/n) + sum ln F_t + const`
//! where `S = sum v_t^2 / F_t` ([`crate::kalman`]). That is monotone in
//! `sum u_t^2` with `u_t = v_t / sqrt(F_t) * (prod F_t)^(1/2n)`, so maximising
//! the likelihood is minimising the squares of the `u_t` (the same device as
//! Ansley's 1979 exact-likelihood algorithm). The Jacobian is taken by forward
//! differences: `k` extra filter passes per step, a handful of steps from
//! the CSS estimates.

use crate::kalman::filter_into;
use crate::lm::{self, LeastSquares, Stop, gram};

/// Converged when a step improves `-2 log L` by less than 1e-7: tight
/// enough that coefficients agree with statsmodels to ~1e-5 (`golden`).
/// The iteration cap only bites on near-redundant AR/MA pairs, whose
/// likelihood is a flat ridge where further steps change nothing a forecast
/// would show.
const STOP_GAIN: f64 = 1e-7;
const MAX_ITER: usize = 30;
/// Forward-difference step for coefficients (O(1) quantities): near
/// sqrt(machine epsilon), where truncation and rounding errors balance.
const H_COEF: f64 = 1e-7;

struct Problem<'a> {
    w: &'a [f64],
    p: usize,
    q: usize,
    constant: bool,
    /// Forward-difference step for the mean, in the series' units.
    h_mean: f64,
    centred: Vec<f64>,
    u: Vec<f64>,
    cols: Vec<Vec<f64>>,
}

impl Problem<'_> {
    fn split<'b>(&self, beta: &'b [f64]) -> (&'b [f64], &'b [f64], f64) {
        crate::css::split(beta, self.p, self.q, self.constant)
    }

    fn admissible(&self, beta: &[f64]) -> bool {
        crate::css::admissible(beta, self.p, self.q, self.constant)
    }

    /// Writes the scaled innovations `u_t` at `beta` into `out`.
    fn residuals(&mut self, beta: &[f64], out: &mut [f64]) -> bool {
        let (phi, theta, mean) = self.split(beta);
        for (c, v) in self.centred.iter_mut().zip(self.w) {
            *c = v - mean;
        }
        let Some(run) = filter_into(&self.centred, phi, theta, Some(out)) else {
            return false;
        };
        let scale = (run.sumlog / (2.0 * run.nu as f64)).exp();
        for v in out.iter_mut() {
            *v *= scale;
        }
        out.iter().all(|v| v.is_finite())
    }
}

impl LeastSquares for Problem<'_> {
    fn ssq(&mut self, beta: &[f64]) -> f64 {
        if !self.admissible(beta) {
            return f64::INFINITY;
        }
        let mut u = std::mem::take(&mut self.u);
        let ok = self.residuals(beta, &mut u);
        let ssq = if ok {
            u.iter().map(|v| v * v).sum()
        } else {
            f64::INFINITY
        };
        self.u = u;
        ssq
    }

    fn normal_equations(&mut self, beta: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
        let mut u = std::mem::take(&mut self.u);
        let mut cols = std::mem::take(&mut self.cols);
        let ssq = if self.residuals(beta, &mut u) {
            u.iter().map(|v| v * v).sum()
        } else {
            f64::INFINITY
        };
        let mut probe = beta.to_vec();
        for (m, col) in cols.iter_mut().enumerate() {
            let h = if self.constant && m == self.p + self.q {
                self.h_mean
            } else {
                H_COEF
            };
            // Step away from the boundary when the forward point is outside.
            probe[m] = beta[m] + h;
            let h = if self.admissible(&probe) { h } else { -h };
            probe[m] = beta[m] + h;
            if self.residuals(&probe, col) {
                for (c, base) in col.iter_mut().zip(&u) {
                    *c = (*c - base) / h;
                }
            } else {
                col.fill(0.0);
            }
            probe[m] = beta[m];
        }
        let (jtj, jtr) = gram(&cols, &u);
        self.u = u;
        self.cols = cols;
        (ssq, jtj, jtr)
    }
}

/// Maximises the exact likelihood of ARMA(p, q) (plus a mean when
/// `constant`) for `w`, from `start = [phi.., theta.., mean]`, which must be
/// admissible. Returns the maximising `[phi.., theta.., mean]`.
pub(crate) fn fit_ml(w: &[f64], p: usize, q: usize, constant: bool, start: &[f64]) -> Vec<f64> {
    let n = w.len();
    let k = p + q + usize::from(constant);
    let mean = w.iter().sum::<f64>() / n as f64;
    let spread = (w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    let mut problem = Problem {
        w,
        p,
        q,
        constant,
        h_mean: 1e-6 * spread.max(mean.abs()).max(1e-12),
        centred: vec![0.0; n],
        u: vec![0.0; n],
        cols: vec![vec![0.0; n]; k],
    };
    let mut beta = start.to_vec();
    if problem.admissible(&beta) {
        lm::minimize(
            &mut problem,
            &mut beta,
            Stop::likelihood_gain(STOP_GAIN, n, MAX_ITER),
        );
    }
    beta
}
