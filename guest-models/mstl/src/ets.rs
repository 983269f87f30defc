//! ETS(A,Ad,N): additive errors, a damped additive trend, no season (the
//! seasons are taken out before), in error-correction form:
//!
//! ```text
//! forecast  f_t = l_{t-1} + phi * b_{t-1}
//! level     l_t = l_{t-1} + phi * b_{t-1} + alpha * e_t
//! trend     b_t = phi * b_{t-1} + beta * e_t
//! ```
//!
//! with `e_t = y_t - f_t` clipped at `clip` robust standard deviations
//! when the states are updated.

/// The grid the parameters are chosen on. `beta = 0` is simple exponential
/// smoothing (no trend).
const ALPHAS: [f64; 8] = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9];
const BETAS: [f64; 4] = [0.0, 0.005, 0.02, 0.1];
const PHIS: [f64; 3] = [0.8, 0.9, 0.98];

/// Points at the start of the fit window that warm the states up and are
/// not scored.
const BURN_IN: usize = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub alpha: f64,
    pub beta: f64,
    pub phi: f64,
    pub level: f64,
    pub trend: f64,
    /// Robust standard deviation of the one-step errors.
    pub sigma: f64,
}

impl Fitted {
    /// The forecast `h >= 1` steps after the last point.
    pub fn predict(&self, h: usize) -> f64 {
        self.level + self.trend * damped_sum(self.phi, h)
    }

    /// Standard deviation of the `h`-step error:
    /// `sigma * sqrt(1 + sum_{j=1}^{h-1} (alpha + beta * (phi + .. + phi^j))^2)`.
    pub fn sd(&self, h: usize) -> f64 {
        let var: f64 = (1..h)
            .map(|j| {
                let c = self.alpha + self.beta * damped_sum(self.phi, j);
                c * c
            })
            .sum();
        self.sigma * (1.0 + var).sqrt()
    }
}

/// `phi + phi^2 + .. + phi^h`.
fn damped_sum(phi: f64, h: usize) -> f64 {
    if (phi - 1.0).abs() < 1e-12 {
        return h as f64;
    }
    phi * (1.0 - phi.powi(h as i32)) / (1.0 - phi)
}

/// Chooses the parameters by the clipped one-step squared errors over
/// `y[from..]` (states warmed up from `from` on; the points before only set
/// the starting level), then runs the chosen smoother to the end.
pub fn fit(y: &[f64], from: usize, clip: f64) -> Fitted {
    let window = &y[from..];
    // Robust scale of the one-step differences: what clipping is judged by.
    let mut diffs: Vec<f64> = window.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    let scale = if diffs.is_empty() {
        0.0
    } else {
        let m = diffs.len() / 2;
        *diffs.select_nth_unstable_by(m, f64::total_cmp).1 * 1.4826 / std::f64::consts::SQRT_2
    };
    let bound = if clip > 0.0 && scale > 0.0 {
        clip * scale
    } else {
        f64::INFINITY
    };
    let mut best: Option<(f64, [f64; 3])> = None;
    for alpha in ALPHAS {
        for beta in BETAS.iter().copied().filter(|&b| b <= alpha) {
            let phis: &[f64] = if beta == 0.0 { &[1.0] } else { &PHIS };
            for &phi in phis {
                let run = smooth(window, alpha, beta, phi, bound);
                if best.as_ref().is_none_or(|b| run.sse < b.0) {
                    best = Some((run.sse, [alpha, beta, phi]));
                }
            }
        }
    }
    let [alpha, beta, phi] = best.map_or([0.5, 0.0, 1.0], |b| b.1);
    let run = smooth(window, alpha, beta, phi, bound);
    Fitted {
        alpha,
        beta,
        phi,
        level: run.level,
        trend: run.trend,
        sigma: run.sigma,
    }
}

struct Run {
    sse: f64,
    level: f64,
    trend: f64,
    sigma: f64,
}

fn smooth(y: &[f64], alpha: f64, beta: f64, phi: f64, bound: f64) -> Run {
    let mut level = y[0];
    let mut trend = 0.0;
    let mut sse = 0.0;
    let mut abs_errors = Vec::with_capacity(y.len().saturating_sub(BURN_IN));
    for (t, &v) in y.iter().enumerate().skip(1) {
        let forecast = level + phi * trend;
        let error = v - forecast;
        let clipped = error.clamp(-bound, bound);
        if t >= BURN_IN.min(y.len() / 2) {
            sse += clipped * clipped;
            abs_errors.push(error.abs());
        }
        level = forecast + alpha * clipped;
        trend = phi * trend + beta * clipped;
    }
    let sigma = if abs_errors.is_empty() {
        0.0
    } else {
        // The median absolute error of a normal is 0.6745 sigma.
        let m = abs_errors.len() / 2;
        *abs_errors.select_nth_unstable_by(m, f64::total_cmp).1 / 0.6745
    };
    Run {
        sse,
        level,
        trend,
        sigma,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_straight_line_is_followed_with_its_slope() {
        let y: Vec<f64> = (0..200).map(|i| 10.0 + 0.5 * i as f64).collect();
        let fit = fit(&y, 0, 4.0);
        // The last point is 109.5; a damped trend still rises.
        assert!(fit.predict(1) > 109.6 && fit.predict(1) < 110.2, "{fit:?}");
        assert!(fit.predict(10) > fit.predict(1));
    }

    #[test]
    fn a_spike_does_not_move_the_level_but_a_new_level_is_followed() {
        let mut y = vec![100.0; 300];
        for (i, v) in y.iter_mut().enumerate() {
            *v += if i % 2 == 0 { 1.0 } else { -1.0 };
        }
        y[290] = 1000.0;
        let fit_spike = fit(&y, 0, 4.0);
        assert!((fit_spike.predict(1) - 100.0).abs() < 3.0, "{fit_spike:?}");
        let mut shifted = y.clone();
        for v in &mut shifted[250..] {
            *v += 50.0;
        }
        shifted[290] = 1000.0;
        let fit_shift = fit(&shifted, 0, 4.0);
        assert!((fit_shift.predict(1) - 150.0).abs() < 5.0, "{fit_shift:?}");
    }

    #[test]
    fn bands_widen_with_the_lead() {
        let y: Vec<f64> = (0..500).map(|i| 50.0 + ((i * 7919) % 13) as f64).collect();
        let fit = fit(&y, 0, 4.0);
        assert!(fit.sigma > 0.0);
        assert!(fit.sd(1) <= fit.sd(10) && fit.sd(10) <= fit.sd(30));
    }
}
