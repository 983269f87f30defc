//! Fitting one ARIMA(p, d, q) and forecasting from it.
//!
//! Estimation follows R's `arima(method = "CSS-ML")`: the conditional sum of
//! squares (`css`) gives starting values, then the exact Gaussian likelihood
//! of the differenced series (`kalman`, `ml`) is maximised, both by
//! Levenberg-Marquardt (`lm`) restricted to stationary AR and invertible MA
//! parts. [`Method::Css`] stops after the first stage.
//!
//! The constant is R's `include.mean` (d = 0, the series mean) or
//! `include.drift` (d = 1, the mean of the differences, i.e. a linear trend
//! in the forecast); with d >= 2 there is none, as in R.

use crate::diff::{difference, integrate, last_levels};
use crate::poly::{is_invertible, is_stationary, psi_weights};
use crate::{css, kalman, ml};

/// The order of an ARIMA model and whether it has a constant (mean or drift).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArimaSpec {
    pub p: usize,
    pub d: usize,
    pub q: usize,
    /// Mean when `d == 0`, drift when `d == 1`; must be false when `d >= 2`.
    pub constant: bool,
}

impl ArimaSpec {
    pub const fn new(p: usize, d: usize, q: usize, constant: bool) -> Self {
        Self { p, d, q, constant }
    }

    /// Estimated coefficients, `sigma2` included (R's `npar + 1`).
    pub fn n_params(&self) -> usize {
        self.p + self.q + usize::from(self.constant) + 1
    }

    /// Observations a fit needs: the `d + p` it conditions on, then one per
    /// estimated quantity, so the variance keeps a degree of freedom.
    pub fn min_points(&self) -> usize {
        self.d + self.p + self.n_params()
    }
}

impl std::fmt::Display for ArimaSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ARIMA({},{},{})", self.p, self.d, self.q)?;
        match (self.constant, self.d) {
            (true, 0) => write!(f, " with mean"),
            (true, _) => write!(f, " with drift"),
            _ => Ok(()),
        }
    }
}

/// How coefficients are estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Conditional sum of squares, then exact maximum likelihood (R's default).
    CssMl,
    /// Conditional sum of squares only: faster, slightly biased on short series.
    Css,
}

/// Why a fit failed.
#[derive(Debug, Clone, PartialEq)]
pub enum FitError {
    /// Fewer points than the model has parameters.
    TooShort { needed: usize, got: usize },
    /// The input or the specification makes no sense.
    Invalid(String),
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooShort { needed, got } => write!(f, "needs {needed} points, got {got}"),
            Self::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for FitError {}

/// Information criteria a search can rank models by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoCriterion {
    Aic,
    Aicc,
    Bic,
}

/// A fitted model, ready to forecast the series it was fitted to.
#[derive(Debug, Clone)]
pub struct FittedArima {
    spec: ArimaSpec,
    method: Method,
    phi: Vec<f64>,
    theta: Vec<f64>,
    /// Mean of the differenced series (0 without a constant).
    mean: f64,
    sigma2: f64,
    loglik: f64,
    /// Length of the differenced series the likelihood is over.
    nobs: usize,
    /// Predicted ARMA state after the last observation (Kalman filter).
    state: Vec<f64>,
    /// Last value of each differencing level, to undo differences.
    lasts: Vec<f64>,
}

/// Point forecasts, their standard errors and quantile bands.
#[derive(Debug, Clone, PartialEq)]
pub struct ArimaForecast {
    pub mean: Vec<f64>,
    /// Standard deviation of the h-step forecast error.
    pub sd: Vec<f64>,
    /// `(level, values)` for each requested level, in the requested order.
    pub bands: Vec<(f64, Vec<f64>)>,
}

/// Fits `spec` to the (finite, gap-free) series `y`.
pub fn fit(y: &[f64], spec: ArimaSpec, method: Method) -> Result<FittedArima, FitError> {
    fit_conditioned(y, spec, method, 0, None)
}

/// [`fit`], with the CSS residuals summed from `css_cond` (at least `p`) on
/// (see [`css::fit_css`] for why a search wants that), and CSS started from
/// a neighbouring model's coefficients when `warm` is given: a search's
/// neighbours differ by one term, so that start is usually a few steps from
/// the optimum where zeros are a few dozen.
pub(crate) fn fit_conditioned(
    y: &[f64],
    spec: ArimaSpec,
    method: Method,
    css_cond: usize,
    warm: Option<&FittedArima>,
) -> Result<FittedArima, FitError> {
    if let Some(v) = y.iter().find(|v| !v.is_finite()) {
        return Err(FitError::Invalid(format!(
            "series holds a non-finite value ({v})"
        )));
    }
    if spec.constant && spec.d >= 2 {
        return Err(FitError::Invalid(format!(
            "{spec}: a constant with d = {} would be a polynomial trend; not supported",
            spec.d
        )));
    }
    if y.len() < spec.min_points() {
        return Err(FitError::TooShort {
            needed: spec.min_points(),
            got: y.len(),
        });
    }
    let w = difference(y, spec.d);
    let start = warm.filter(|f| f.spec.d == spec.d).map(|f| {
        let resized = |c: &[f64], n: usize| -> Vec<f64> {
            (0..n).map(|i| c.get(i).copied().unwrap_or(0.0)).collect()
        };
        let mut start = resized(&f.phi, spec.p);
        start.extend(resized(&f.theta, spec.q));
        if spec.constant {
            start.push(if f.spec.constant {
                f.mean
            } else {
                w.iter().sum::<f64>() / w.len() as f64
            });
        }
        start
    });
    let css_fit = css::fit_css(
        &w,
        spec.p,
        spec.q,
        spec.constant,
        css_cond,
        start.as_deref(),
    );
    let (phi, theta, mean) = match method {
        Method::Css => (css_fit.phi.clone(), css_fit.theta.clone(), css_fit.mean),
        Method::CssMl => maximise_likelihood(&w, spec, &css_fit),
    };
    let x: Vec<f64> = w.iter().map(|v| v - mean).collect();
    let out = kalman::filter(&x, &phi, &theta)
        .ok_or_else(|| FitError::Invalid(format!("{spec}: fitted AR part is not stationary")))?;
    let (sigma2, loglik) = match method {
        Method::CssMl => (out.sigma2(), out.loglik()),
        Method::Css => css_loglik(&css_fit, w.len()),
    };
    if !sigma2.is_finite() || loglik.is_nan() {
        return Err(FitError::Invalid(format!("{spec}: fit diverged")));
    }
    Ok(FittedArima {
        spec,
        method,
        phi,
        theta,
        mean,
        sigma2,
        loglik,
        nobs: w.len(),
        state: out.state,
        lasts: last_levels(y, spec.d),
    })
}

/// R's CSS "log-likelihood": `sigma2` is the mean squared residual, the
/// count is the whole differenced length (conditioning points included).
fn css_loglik(fit: &css::CssFit, n_used: usize) -> (f64, f64) {
    let sigma2 = fit.ssq / fit.n_res.max(1) as f64;
    let n = n_used as f64;
    let loglik =
        -0.5 * (n * sigma2.max(f64::MIN_POSITIVE).ln() + n + n * (2.0 * std::f64::consts::PI).ln());
    (sigma2, loglik)
}

/// Maximises the exact likelihood from the CSS estimates (or from zero
/// coefficients and the sample mean when CSS ended outside the admissible
/// region, which its damping makes rare).
fn maximise_likelihood(
    w: &[f64],
    spec: ArimaSpec,
    css_fit: &css::CssFit,
) -> (Vec<f64>, Vec<f64>, f64) {
    let (p, q) = (spec.p, spec.q);
    let mut start: Vec<f64> = css_fit.phi.iter().chain(&css_fit.theta).copied().collect();
    if !(is_stationary(&css_fit.phi, 1.0 + 1e-6) && is_invertible(&css_fit.theta, 1.0 + 1e-6)) {
        start.fill(0.0);
    }
    if spec.constant {
        start.push(css_fit.mean);
    }
    let beta = ml::fit_ml(w, p, q, spec.constant, &start);
    let mean = if spec.constant { beta[p + q] } else { 0.0 };
    (beta[..p].to_vec(), beta[p..p + q].to_vec(), mean)
}

impl FittedArima {
    pub fn spec(&self) -> ArimaSpec {
        self.spec
    }
    pub fn method(&self) -> Method {
        self.method
    }
    /// AR coefficients `phi_1..phi_p`.
    pub fn ar(&self) -> &[f64] {
        &self.phi
    }
    /// MA coefficients `theta_1..theta_q` (R's sign: `1 + theta_1 B + ...`).
    pub fn ma(&self) -> &[f64] {
        &self.theta
    }
    /// The mean (d = 0) or drift (d = 1), when the model has one.
    pub fn constant(&self) -> Option<f64> {
        self.spec.constant.then_some(self.mean)
    }
    /// Innovation variance.
    pub fn sigma2(&self) -> f64 {
        self.sigma2
    }
    pub fn loglik(&self) -> f64 {
        self.loglik
    }
    /// Length of the differenced series the fit used.
    pub fn nobs(&self) -> usize {
        self.nobs
    }
    pub fn aic(&self) -> f64 {
        -2.0 * self.loglik + 2.0 * self.spec.n_params() as f64
    }
    /// AIC with the small-sample correction; infinite when there are no
    /// degrees of freedom left for it.
    pub fn aicc(&self) -> f64 {
        let k = self.spec.n_params() as f64;
        let n = self.nobs as f64;
        if n - k - 1.0 <= 0.0 {
            return f64::INFINITY;
        }
        self.aic() + 2.0 * k * (k + 1.0) / (n - k - 1.0)
    }
    pub fn bic(&self) -> f64 {
        self.aic() + ((self.nobs as f64).ln() - 2.0) * self.spec.n_params() as f64
    }
    pub fn ic(&self, ic: InfoCriterion) -> f64 {
        match ic {
            InfoCriterion::Aic => self.aic(),
            InfoCriterion::Aicc => self.aicc(),
            InfoCriterion::Bic => self.bic(),
        }
    }

    /// True when no AR or MA root lies within `radius` of the origin:
    /// `order=auto` refuses fits with roots inside 1.01, as `auto.arima` does,
    /// because their forecasts and intervals are unreliable.
    pub fn roots_outside(&self, radius: f64) -> bool {
        is_stationary(&self.phi, radius) && is_invertible(&self.theta, radius)
    }

    /// The first `n` psi-weights of the integrated model.
    pub fn psi_weights(&self, n: usize) -> Vec<f64> {
        psi_weights(&self.phi, self.spec.d, &self.theta, n)
    }

    /// Forecasts `h` steps with a band for each level in `levels` (each in
    /// (0, 1)): `mean + z_level * sd_h`, `sd_h = sigma * sqrt(sum_{j<h} psi_j^2)`.
    pub fn forecast(&self, h: usize, levels: &[f64]) -> ArimaForecast {
        let r = self.state.len();
        let mut a = self.state.clone();
        let mut w = Vec::with_capacity(h);
        for _ in 0..h {
            w.push(self.mean + a[0]);
            let a0 = a[0];
            for i in 0..r {
                a[i] = self.phi.get(i).copied().unwrap_or(0.0) * a0
                    + if i + 1 < r { a[i + 1] } else { 0.0 };
            }
        }
        let mean = integrate(&w, &self.lasts);
        let sigma = self.sigma2.max(0.0).sqrt();
        let mut acc = 0.0;
        let sd: Vec<f64> = self
            .psi_weights(h)
            .iter()
            .map(|psi| {
                acc += psi * psi;
                sigma * acc.sqrt()
            })
            .collect();
        let bands = levels
            .iter()
            .map(|&level| {
                let z = kedastral_model_sdk::stats::normal_quantile(level);
                (
                    level,
                    mean.iter().zip(&sd).map(|(m, s)| m + z * s).collect(),
                )
            })
            .collect();
        ArimaForecast { mean, sd, bands }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_noise_with_mean_is_the_sample_mean() {
        let y = [3.0, 5.0, 4.0, 6.0, 2.0, 4.0];
        let fit = fit(&y, ArimaSpec::new(0, 0, 0, true), Method::CssMl).unwrap();
        assert!((fit.constant().unwrap() - 4.0).abs() < 1e-9);
        assert!((fit.sigma2() - 10.0 / 6.0).abs() < 1e-9);
        let fc = fit.forecast(3, &[0.5]);
        assert!(fc.mean.iter().all(|v| (v - 4.0).abs() < 1e-9));
        assert!(
            fc.sd.windows(2).all(|s| (s[0] - s[1]).abs() < 1e-12),
            "constant width for white noise"
        );
    }

    #[test]
    fn random_walk_with_and_without_drift() {
        let y = [10.0, 12.0, 11.0, 14.0, 15.0, 17.0];
        let rw = fit(&y, ArimaSpec::new(0, 1, 0, false), Method::CssMl).unwrap();
        let fc = rw.forecast(4, &[]);
        assert_eq!(fc.mean, vec![17.0; 4]);
        let msq = [4.0, 1.0, 9.0, 1.0, 4.0].iter().sum::<f64>() / 5.0;
        assert!((rw.sigma2() - msq).abs() < 1e-9);
        for (h, s) in fc.sd.iter().enumerate() {
            assert!((s - (msq * (h + 1) as f64).sqrt()).abs() < 1e-9);
        }
        let drift = fit(&y, ArimaSpec::new(0, 1, 0, true), Method::CssMl).unwrap();
        assert!((drift.constant().unwrap() - 1.4).abs() < 1e-9);
        let fc = drift.forecast(2, &[]);
        assert!((fc.mean[0] - 18.4).abs() < 1e-9 && (fc.mean[1] - 19.8).abs() < 1e-9);
    }

    #[test]
    fn too_short_and_bad_specs_are_refused() {
        assert_eq!(
            fit(&[1.0, 2.0], ArimaSpec::new(1, 0, 0, true), Method::CssMl).unwrap_err(),
            FitError::TooShort { needed: 4, got: 2 }
        );
        assert!(matches!(
            fit(&[1.0; 10], ArimaSpec::new(0, 2, 0, true), Method::CssMl),
            Err(FitError::Invalid(_))
        ));
        assert!(matches!(
            fit(
                &[1.0, f64::NAN, 2.0, 3.0],
                ArimaSpec::new(0, 1, 0, false),
                Method::CssMl
            ),
            Err(FitError::Invalid(_))
        ));
    }
}
