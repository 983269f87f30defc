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
use crate::lm::{self, LeastSquares, Stop, dot, gram};

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
        centre(&mut self.centred, self.w, mean);
        let Some(run) = filter_into(&self.centred, phi, theta, Some(out)) else {
            return false;
        };
        let scale = (run.sumlog / (2.0 * run.nu as f64)).exp();
        scale_finite(out, scale)
    }
}

// The element-wise passes below are small out-of-line kernels, eight
// elements per loop iteration: in wasm each loop iteration passes wasmtime's
// epoch check, whose cold call makes Cranelift spill whatever a function
// holds in registers around it. Natively LLVM vectorises them either way.

/// `out = w - mean`.
#[inline(never)]
fn centre(out: &mut [f64], w: &[f64], mean: f64) {
    let n = out.len().min(w.len());
    let (out8, out_rest) = out[..n].as_chunks_mut::<8>();
    let (w8, w_rest) = w[..n].as_chunks::<8>();
    for (c, v) in out8.iter_mut().zip(w8) {
        for k in 0..8 {
            c[k] = v[k] - mean;
        }
    }
    for (c, v) in out_rest.iter_mut().zip(w_rest) {
        *c = v - mean;
    }
}

/// `out *= scale`; whether every result is finite.
#[inline(never)]
fn scale_finite(out: &mut [f64], scale: f64) -> bool {
    let mut finite = true;
    let (out8, out_rest) = out.as_chunks_mut::<8>();
    for c in out8 {
        for v in c.iter_mut() {
            *v *= scale;
            finite &= v.is_finite();
        }
    }
    for v in out_rest {
        *v *= scale;
        finite &= v.is_finite();
    }
    finite
}

/// `col = (col - base) / h`: a forward difference.
#[inline(never)]
fn difference(col: &mut [f64], base: &[f64], h: f64) {
    let n = col.len().min(base.len());
    let (col8, col_rest) = col[..n].as_chunks_mut::<8>();
    let (base8, base_rest) = base[..n].as_chunks::<8>();
    for (c, b) in col8.iter_mut().zip(base8) {
        for k in 0..8 {
            c[k] = (c[k] - b[k]) / h;
        }
    }
    for (c, b) in col_rest.iter_mut().zip(base_rest) {
        *c = (*c - b) / h;
    }
}

impl LeastSquares for Problem<'_> {
    fn ssq(&mut self, beta: &[f64]) -> f64 {
        if !self.admissible(beta) {
            return f64::INFINITY;
        }
        let mut u = std::mem::take(&mut self.u);
        let ok = self.residuals(beta, &mut u);
        let ssq = if ok { dot(&u, &u) } else { f64::INFINITY };
        self.u = u;
        ssq
    }

    fn normal_equations(&mut self, beta: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
        let mut u = std::mem::take(&mut self.u);
        let mut cols = std::mem::take(&mut self.cols);
        let ssq = if self.residuals(beta, &mut u) {
            dot(&u, &u)
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
                difference(col, &u, h);
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
