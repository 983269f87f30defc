//! Conditional sum of squares (CSS) for ARMA(p, q) plus an optional mean,
//! minimised by Levenberg-Marquardt.
//!
//! Conditioning on the first `p` values and on zero pre-sample innovations
//! (as R's `arima(method = "CSS")`), the residuals are
//!
//! ```text
//! e_t = x_t - sum_i phi_i x_{t-i} - sum_j theta_j e_{t-j},   x_t = w_t - mu,   t >= p
//! ```
//!
//! Its Jacobian follows the same recursion, so [`crate::lm`] gets exact
//! Gauss-Newton steps for the price of one more pass.

use crate::lm::{self, LeastSquares, Stop};
use crate::poly::{is_invertible, is_stationary};

/// A CSS fit: coefficients, the mean (0 without one) and the sum of squares.
#[derive(Debug, Clone)]
pub(crate) struct CssFit {
    pub phi: Vec<f64>,
    pub theta: Vec<f64>,
    pub mean: f64,
    pub ssq: f64,
    /// Residuals summed: `w.len() - cond`.
    pub n_res: usize,
}

/// Stop once a step gains less than 1e-4 in `-2 log L`: a thousand times
/// below any difference an information criterion acts on, and ML polishes
/// the winner anyway.
const STOP_GAIN: f64 = 1e-4;
const MAX_ITER: usize = 50;

/// `a . b`, with four running sums so the additions overlap, sixteen
/// products per iteration (see [`four_at_a_time`] for why so many).
#[inline(never)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut sums = [0.0; 4];
    let (a16, a_rest) = a.as_chunks::<16>();
    let (b16, b_rest) = b.as_chunks::<16>();
    for (x, y) in a16.iter().zip(b16) {
        for k in 0..16 {
            sums[k % 4] += x[k] * y[k];
        }
    }
    let tail: f64 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    (sums[0] + sums[1]) + (sums[2] + sums[3]) + tail
}

/// Runs `step` for every `t` in `range`, four steps per loop iteration.
///
/// In wasm, wasmtime checks the epoch (the CPU deadline) at every loop
/// iteration, and the check's cold call makes Cranelift keep the loop's
/// running values on the stack rather than in registers. Four steps per
/// iteration pay that toll once instead of four times; natively it is an
/// ordinary unrolled loop.
#[inline(always)]
fn four_at_a_time(range: std::ops::Range<usize>, mut step: impl FnMut(usize)) {
    let mut t = range.start;
    while t + 4 <= range.end {
        step(t);
        step(t + 1);
        step(t + 2);
        step(t + 3);
        t += 4;
    }
    while t < range.end {
        step(t);
        t += 1;
    }
}

/// The optimisers' parameter vector is `[phi_1..p, theta_1..q, mean?]`:
/// its AR part, MA part and mean (0 without a constant).
pub(crate) fn split(beta: &[f64], p: usize, q: usize, constant: bool) -> (&[f64], &[f64], f64) {
    let mean = if constant { beta[p + q] } else { 0.0 };
    (&beta[..p], &beta[p..p + q], mean)
}

/// Whether `beta` is a stationary, invertible model with a finite mean.
pub(crate) fn admissible(beta: &[f64], p: usize, q: usize, constant: bool) -> bool {
    let (phi, theta, mean) = split(beta, p, q, constant);
    mean.is_finite() && is_stationary(phi, 1.0 + 1e-9) && is_invertible(theta, 1.0 + 1e-9)
}

struct Problem<'a> {
    w: &'a [f64],
    /// Scratch: residuals and the Jacobian's rows, `k` per time step.
    e: Vec<f64>,
    jac: Vec<f64>,
    p: usize,
    q: usize,
    constant: bool,
    /// First residual summed (>= p).
    start: usize,
}

impl Problem<'_> {
    fn k(&self) -> usize {
        self.p + self.q + usize::from(self.constant)
    }

    fn split<'b>(&self, beta: &'b [f64]) -> (&'b [f64], &'b [f64], f64) {
        split(beta, self.p, self.q, self.constant)
    }

    fn admissible(&self, beta: &[f64]) -> bool {
        admissible(beta, self.p, self.q, self.constant)
    }

    /// The conditional sum of squares (residuals into `self.e`).
    fn sum_of_squares(&mut self, beta: &[f64]) -> f64 {
        // Orders up to (3, 3), the default search space, get a kernel with
        // both fixed, whose lagged values live in registers.
        match (self.p, self.q) {
            (0, 0) => self.sum_of_squares_fixed::<0, 0>(beta),
            (0, 1) => self.sum_of_squares_fixed::<0, 1>(beta),
            (0, 2) => self.sum_of_squares_fixed::<0, 2>(beta),
            (0, 3) => self.sum_of_squares_fixed::<0, 3>(beta),
            (1, 0) => self.sum_of_squares_fixed::<1, 0>(beta),
            (1, 1) => self.sum_of_squares_fixed::<1, 1>(beta),
            (1, 2) => self.sum_of_squares_fixed::<1, 2>(beta),
            (1, 3) => self.sum_of_squares_fixed::<1, 3>(beta),
            (2, 0) => self.sum_of_squares_fixed::<2, 0>(beta),
            (2, 1) => self.sum_of_squares_fixed::<2, 1>(beta),
            (2, 2) => self.sum_of_squares_fixed::<2, 2>(beta),
            (2, 3) => self.sum_of_squares_fixed::<2, 3>(beta),
            (3, 0) => self.sum_of_squares_fixed::<3, 0>(beta),
            (3, 1) => self.sum_of_squares_fixed::<3, 1>(beta),
            (3, 2) => self.sum_of_squares_fixed::<3, 2>(beta),
            (3, 3) => self.sum_of_squares_fixed::<3, 3>(beta),
            _ => self.sum_of_squares_any(beta),
        }
    }

    // Not inlined, for the reason given at `equations_fixed`.
    #[inline(never)]
    fn sum_of_squares_fixed<const P: usize, const Q: usize>(&mut self, beta: &[f64]) -> f64 {
        let (phi, theta, mean) = self.split(beta);
        let phi: [f64; P] = phi.try_into().expect("p coefficients");
        let theta: [f64; Q] = theta.try_into().expect("q coefficients");
        let (w, t0) = (self.w, self.start);
        let e = &mut self.e;
        e[..t0].fill(0.0);
        if t0 >= w.len() {
            return 0.0;
        }
        // past_w[i] = w[t - i - 1] - mean; past_e[j] = e[t - j - 1], and the
        // residuals before `t0` are zero, as in the general kernel.
        let mut past_w = [0.0; P];
        for (i, slot) in past_w.iter_mut().enumerate() {
            *slot = w[t0 - i - 1] - mean;
        }
        let mut past_e = [0.0; Q];
        let mut ssq = 0.0;
        four_at_a_time(t0..w.len(), |t| {
            let centred = w[t] - mean;
            let mut v = centred;
            for i in 0..P {
                v -= phi[i] * past_w[i];
            }
            for j in 0..Q {
                v -= theta[j] * past_e[j];
            }
            e[t] = v;
            ssq += v * v;
            if P > 0 {
                past_w.copy_within(0..P - 1, 1);
                past_w[0] = centred;
            }
            if Q > 0 {
                past_e.copy_within(0..Q - 1, 1);
                past_e[0] = v;
            }
        });
        ssq
    }

    fn sum_of_squares_any(&mut self, beta: &[f64]) -> f64 {
        let (phi, theta, mean) = self.split(beta);
        let e = &mut self.e;
        let (p, q, w, t0) = (self.p, self.q, self.w, self.start);
        let mut ssq = 0.0;
        e[..t0].fill(0.0);
        for t in t0..w.len() {
            let mut v = w[t] - mean;
            for i in 0..p {
                v -= phi[i] * (w[t - i - 1] - mean);
            }
            for j in 0..q.min(t - t0) {
                v -= theta[j] * e[t - j - 1];
            }
            e[t] = v;
            ssq += v * v;
        }
        ssq
    }

    /// The sum of squares, `J'J` (row-major `k x k`) and `J'e`.
    fn equations(&mut self, beta: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
        // The orders auto selection visits (p + q <= 5, a constant) get a
        // kernel with the parameter count fixed at compile time, so `J'J`
        // accumulates in registers instead of memory; this is the model's
        // hottest loop, natively and (more so) in wasm.
        match self.k() {
            1 => self.equations_fixed::<1>(beta),
            2 => self.equations_fixed::<2>(beta),
            3 => self.equations_fixed::<3>(beta),
            4 => self.equations_fixed::<4>(beta),
            5 => self.equations_fixed::<5>(beta),
            6 => self.equations_fixed::<6>(beta),
            7 => self.equations_fixed::<7>(beta),
            _ => self.equations_any(beta),
        }
    }

    // Not inlined: seven copies in one function leave Cranelift (in wasm)
    // with more live values than registers, and each loop's epoch check
    // then spills them all; a small function per size keeps them in
    // registers.
    #[inline(never)]
    fn equations_fixed<const K: usize>(&mut self, beta: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
        let (phi, theta, mean) = self.split(beta);
        let (p, q, w, t0) = (self.p, self.q, self.w, self.start);
        debug_assert_eq!(p + q + usize::from(self.constant), K);
        let n = w.len();
        let e = &mut self.e;
        // Column-major here: `jac[m * n + t]` is d e_t / d beta_m. The
        // recursion below then carries little state from one step to the
        // next, and `J'J` is built from dot products of whole columns. In
        // wasm this matters twice over: every loop iteration passes an epoch
        // check whose (cold) call would otherwise force the many running
        // sums of `J'J` out of registers.
        let jac = &mut self.jac[..n * K];
        let mu_slope = -(1.0 - phi.iter().sum::<f64>());
        let mut ssq = 0.0;
        e[..t0].fill(0.0);
        for column in jac.chunks_exact_mut(n) {
            column[..t0].fill(0.0);
        }
        for t in t0..n {
            let lags = q.min(t - t0);
            let mut v = w[t] - mean;
            // Loops bounded by the constant K (p, q and lags never exceed
            // it) unroll completely: no loop, so no epoch check, per lag.
            for i in 0..K {
                if i == p {
                    break;
                }
                v -= phi[i] * (w[t - i - 1] - mean);
            }
            for j in 0..K {
                if j == lags {
                    break;
                }
                v -= theta[j] * e[t - j - 1];
            }
            e[t] = v;
            ssq += v * v;
            let mut row = [0.0; K];
            for i in 0..K {
                if i == p {
                    break;
                }
                row[i] = -(w[t - i - 1] - mean);
            }
            for j in 0..K {
                if j == lags {
                    break;
                }
                row[p + j] = -e[t - j - 1];
            }
            if self.constant {
                row[K - 1] = mu_slope;
            }
            for j in 0..K {
                if j == lags {
                    break;
                }
                for (m, r) in row.iter_mut().enumerate() {
                    *r -= theta[j] * jac[m * n + t - j - 1];
                }
            }
            for (m, r) in row.into_iter().enumerate() {
                jac[m * n + t] = r;
            }
        }
        let column = |m: usize| &jac[m * n + t0..(m + 1) * n];
        let residuals = &e[t0..n];
        let mut jtj = vec![0.0; K * K];
        let mut jte = vec![0.0; K];
        for a in 0..K {
            jte[a] = dot(column(a), residuals);
            for b in 0..=a {
                let d = dot(column(a), column(b));
                jtj[a * K + b] = d;
                jtj[b * K + a] = d;
            }
        }
        (ssq, jtj, jte)
    }

    fn equations_any(&mut self, beta: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
        let (phi, theta, mean) = self.split(beta);
        let (p, q, w, k, t0) = (self.p, self.q, self.w, self.k(), self.start);
        let (e, jac) = (&mut self.e, &mut self.jac);
        let mu_slope = -(1.0 - phi.iter().sum::<f64>());
        let mut jtj = vec![0.0; k * k];
        let mut jte = vec![0.0; k];
        let mut ssq = 0.0;
        e[..t0].fill(0.0);
        jac[..t0 * k].fill(0.0);
        for t in t0..w.len() {
            let lags = q.min(t - t0);
            let mut v = w[t] - mean;
            for i in 0..p {
                v -= phi[i] * (w[t - i - 1] - mean);
            }
            for j in 0..lags {
                v -= theta[j] * e[t - j - 1];
            }
            e[t] = v;
            ssq += v * v;
            // d e_t / d beta_m = direct term - sum_j theta_j d e_{t-j} / d beta_m,
            // written straight into the Jacobian's row t (a scratch row
            // copied in cost a memcpy call per point, the hottest thing here).
            let (done, rest) = jac.split_at_mut(t * k);
            let row = &mut rest[..k];
            for i in 0..p {
                row[i] = -(w[t - i - 1] - mean);
            }
            for j in 0..q {
                row[p + j] = if j < lags { -e[t - j - 1] } else { 0.0 };
            }
            if self.constant {
                row[k - 1] = mu_slope;
            }
            for j in 0..lags {
                let prev = &done[(t - j - 1) * k..(t - j) * k];
                for m in 0..k {
                    row[m] -= theta[j] * prev[m];
                }
            }
            for a in 0..k {
                jte[a] += row[a] * v;
                for b in 0..=a {
                    jtj[a * k + b] += row[a] * row[b];
                }
            }
        }
        for a in 0..k {
            for b in 0..a {
                jtj[b * k + a] = jtj[a * k + b];
            }
        }
        (ssq, jtj, jte)
    }
}

impl LeastSquares for Problem<'_> {
    /// The cheap pass that judges a step: residuals only.
    fn ssq(&mut self, beta: &[f64]) -> f64 {
        if self.admissible(beta) {
            self.sum_of_squares(beta)
        } else {
            f64::INFINITY
        }
    }

    fn normal_equations(&mut self, beta: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
        self.equations(beta)
    }
}

/// Fits ARMA(p, q) (plus a mean when `constant`) to `w` by CSS, summing
/// residuals from `cond.max(p)` on, starting from `start` (`[phi.., theta..,
/// mean]`) or from zeros and the sample mean. `w.len()` must exceed `p`.
///
/// A search comparing several `p` passes the largest as `cond`, so every
/// candidate's sum of squares covers the same points; conditioning each on
/// its own `p` would favour large `p` just for dropping the early residuals.
pub(crate) fn fit_css(
    w: &[f64],
    p: usize,
    q: usize,
    constant: bool,
    cond: usize,
    start: Option<&[f64]>,
) -> CssFit {
    let t0 = cond.max(p).min(w.len());
    let n = w.len();
    let k = p + q + usize::from(constant);
    let mut problem = Problem {
        w,
        e: vec![0.0; n],
        jac: vec![0.0; n * k],
        p,
        q,
        constant,
        start: t0,
    };
    let mut beta = match start {
        Some(s) if problem.admissible(s) => s.to_vec(),
        _ => {
            let mut b = vec![0.0; k];
            if constant {
                b[k - 1] = w.iter().sum::<f64>() / n as f64;
            }
            b
        }
    };
    let ssq = lm::minimize(
        &mut problem,
        &mut beta,
        Stop::likelihood_gain(STOP_GAIN, n - t0, MAX_ITER),
    );
    let (phi, theta, mean) = problem.split(&beta);
    CssFit {
        phi: phi.to_vec(),
        theta: theta.to_vec(),
        mean,
        ssq,
        n_res: n - t0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_order_residual_kernels_match_the_general_one() {
        let w: Vec<f64> = (0..120)
            .map(|i| ((i * 29) % 13) as f64 * 0.5 + (i as f64 * 0.3).cos())
            .collect();
        for p in 0..=4 {
            for q in 0..=4 {
                let k = p + q + 1;
                let mut problem = Problem {
                    w: &w,
                    e: vec![0.0; w.len()],
                    jac: vec![0.0; w.len() * k],
                    p,
                    q,
                    constant: true,
                    start: p.max(2),
                };
                let beta: Vec<f64> = (0..k).map(|i| 0.05 * (i as f64 + 1.0) - 0.12).collect();
                let general = problem.sum_of_squares_any(&beta);
                let e_general = problem.e.clone();
                let fixed = problem.sum_of_squares(&beta);
                assert!((fixed - general).abs() <= 1e-9 * general, "({p},{q})");
                assert_eq!(problem.e.len(), e_general.len());
                for (a, b) in problem.e.iter().zip(&e_general) {
                    assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "({p},{q})");
                }
            }
        }
    }

    #[test]
    fn fixed_size_kernels_match_the_general_one() {
        let w: Vec<f64> = (0..200)
            .map(|i| ((i * 37) % 17) as f64 * 0.3 + (i as f64 * 0.4).sin())
            .collect();
        for (p, q, constant) in [
            (1, 0, false),
            (0, 1, true),
            (2, 2, true),
            (3, 3, true),
            (3, 2, false),
        ] {
            let k = p + q + usize::from(constant);
            let mut problem = Problem {
                w: &w,
                e: vec![0.0; w.len()],
                jac: vec![0.0; w.len() * k],
                p,
                q,
                constant,
                start: 3,
            };
            let beta: Vec<f64> = (0..k).map(|i| 0.1 * (i as f64 + 1.0) - 0.25).collect();
            let (ssq_any, jtj_any, jte_any) = problem.equations_any(&beta);
            let (ssq, jtj, jte) = problem.equations(&beta);
            assert!(
                (ssq - ssq_any).abs() <= 1e-9 * ssq_any,
                "({p},{q},{constant})"
            );
            for (a, b) in jtj.iter().zip(&jtj_any).chain(jte.iter().zip(&jte_any)) {
                assert!(
                    (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                    "({p},{q},{constant}): {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn jacobian_matches_finite_differences() {
        let w: Vec<f64> = (0..60)
            .map(|i| ((i * 37) % 17) as f64 * 0.3 + (i as f64 * 0.4).sin())
            .collect();
        let mut problem = Problem {
            w: &w,
            e: vec![0.0; w.len()],
            jac: vec![0.0; w.len() * 5],
            p: 2,
            q: 2,
            constant: true,
            start: 2,
        };
        let beta = [0.3, -0.2, 0.4, 0.1, 2.0];
        let (_, _, jte) = problem.normal_equations(&beta);
        // J'e = 0.5 * d ssq / d beta.
        for m in 0..5 {
            let h = 1e-6;
            let (mut up, mut down) = (beta, beta);
            up[m] += h;
            down[m] -= h;
            let num = (problem.ssq(&up) - problem.ssq(&down)) / (4.0 * h);
            assert!(
                (num - jte[m]).abs() < 1e-5 * (1.0 + num.abs()),
                "param {m}: {num} vs {}",
                jte[m]
            );
        }
    }

    #[test]
    fn ar1_css_is_least_squares() {
        let mut w = vec![0.0; 200];
        let mut s = 1u64;
        for t in 1..200 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5;
            w[t] = 0.7 * w[t - 1] + noise;
        }
        let fit = fit_css(&w, 1, 0, false, 0, None);
        let num: f64 = (1..200).map(|t| w[t] * w[t - 1]).sum();
        let den: f64 = (1..200).map(|t| w[t - 1] * w[t - 1]).sum();
        assert!((fit.phi[0] - num / den).abs() < 1e-8);
    }
}
