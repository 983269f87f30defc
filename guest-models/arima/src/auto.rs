//! Automatic order selection, after Hyndman and Khandakar's `auto.arima`
//! (R package `forecast`, non-seasonal part):
//!
//! 1. `d` from repeated KPSS level-stationarity tests at 5% ([`ndiffs`]);
//! 2. a stepwise walk over (p, q, constant) from ARIMA(2,d,2), moving to the
//!    first neighbour that lowers the information criterion until none does
//!    (or an exhaustive grid when `stepwise` is off);
//! 3. on long series (more than 150 differenced points) the walk compares CSS
//!    fits, as `auto.arima(approximation = TRUE)` does, and only the winner is
//!    refitted by the requested method.
//!
//! Fits with an AR or MA root within 1.01 of the unit circle are skipped,
//! like `auto.arima`: they are the over-differenced or explosive corners
//! whose intervals cannot be trusted.

use std::collections::HashMap;

use crate::diff::difference;
use crate::fit::{ArimaSpec, FitError, FittedArima, InfoCriterion, Method, fit, fit_conditioned};

/// What [`auto_fit`] searches over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoOptions {
    pub max_p: usize,
    pub max_q: usize,
    pub max_d: usize,
    pub ic: InfoCriterion,
    /// `Some` forces a constant (mean/drift) in or out; `None` lets the
    /// criterion decide, where `d <= 1` allows one.
    pub constant: Option<bool>,
    pub stepwise: bool,
    pub method: Method,
}

impl Default for AutoOptions {
    fn default() -> Self {
        Self {
            max_p: 3,
            max_q: 3,
            max_d: 2,
            ic: InfoCriterion::Aicc,
            constant: None,
            stepwise: true,
            method: Method::CssMl,
        }
    }
}

/// Below this many points the KPSS test means little; a random walk (d = 1)
/// is the cautious choice for a level that cannot yet be told from noise.
const MIN_KPSS_POINTS: usize = 10;
/// KPSS 5% critical value for level stationarity (Kwiatkowski et al. 1992,
/// table 1), the level `ndiffs` tests at by default.
const KPSS_CRITICAL_5PCT: f64 = 0.463;
/// Most models a stepwise search fits (R's `nmodels`).
const MAX_MODELS: usize = 94;
/// Differenced length above which the search ranks CSS fits (R's rule).
const APPROXIMATION_ABOVE: usize = 150;
/// Largest `p + q` tried (R's `max.order`): the orders above it are rarely
/// chosen and the slowest to fit, being near-redundant AR/MA pairs.
const MAX_ORDER: usize = 5;
/// Roots closer to the unit circle than this disqualify a fit.
const ROOT_MARGIN: f64 = 1.01;

/// The KPSS statistic for level stationarity, with Bartlett-weighted
/// long-run variance over `trunc(4 (n/100)^(1/4))` lags (`urca::ur.kpss`,
/// `type = "mu"`, `lags = "short"`, what `forecast::ndiffs` calls).
pub fn kpss_level(y: &[f64]) -> f64 {
    let n = y.len();
    let nf = n as f64;
    let mean = y.iter().sum::<f64>() / nf;
    let e: Vec<f64> = y.iter().map(|v| v - mean).collect();
    let lags = (4.0 * (nf / 100.0).powf(0.25)) as usize;
    let mut s2 = e.iter().map(|v| v * v).sum::<f64>() / nf;
    for s in 1..=lags.min(n.saturating_sub(1)) {
        let cov: f64 = (s..n).map(|t| e[t] * e[t - s]).sum();
        s2 += 2.0 * (1.0 - s as f64 / (lags as f64 + 1.0)) * cov / nf;
    }
    let mut partial = 0.0;
    let mut eta = 0.0;
    for v in &e {
        partial += v;
        eta += partial * partial;
    }
    eta / (nf * nf * s2)
}

/// Differences needed before the KPSS test stops rejecting level
/// stationarity at 5%, at most `max_d`.
pub fn ndiffs(y: &[f64], max_d: usize) -> usize {
    let mut x = y.to_vec();
    let mut d = 0;
    while d < max_d {
        if is_constant(&x) {
            break;
        }
        if x.len() < MIN_KPSS_POINTS {
            // Too short to test: difference once, never more.
            if d == 0 {
                d = 1;
            }
            break;
        }
        if kpss_level(&x) <= KPSS_CRITICAL_5PCT {
            break;
        }
        x = difference(&x, 1);
        d += 1;
    }
    d
}

fn is_constant(x: &[f64]) -> bool {
    x.windows(2).all(|w| w[0] == w[1])
}

/// Chooses and fits an ARIMA model for `y` (finite, gap-free). Needs two
/// points; when no candidate can be fitted (very short series) it falls
/// back to a random walk, or to the mean of a constant series.
pub fn auto_fit(y: &[f64], opts: &AutoOptions) -> Result<FittedArima, FitError> {
    if y.len() < 2 {
        return Err(FitError::TooShort {
            needed: 2,
            got: y.len(),
        });
    }
    let d = ndiffs(y, opts.max_d);
    let constant_choices: &[bool] = match (opts.constant, d) {
        (_, 2..) | (Some(false), _) => &[false],
        (Some(true), _) => &[true],
        (None, _) => &[true, false],
    };
    let approximate = opts.method == Method::CssMl && y.len() - d > APPROXIMATION_ABOVE;
    let search_method = if approximate {
        Method::Css
    } else {
        opts.method
    };

    let mut search = Search {
        y,
        d,
        ic: opts.ic,
        method: search_method,
        css_cond: opts.max_p,
        incumbent: None,
        fits: HashMap::new(),
    };
    if opts.stepwise {
        stepwise(&mut search, opts, constant_choices);
    } else {
        for p in 0..=opts.max_p {
            for q in 0..=opts.max_q {
                for &c in constant_choices {
                    search.score(p, q, c);
                }
            }
        }
    }

    let mut ranked: Vec<(f64, ArimaSpec)> = search
        .fits
        .iter()
        .filter_map(|(spec, fit)| fit.as_ref().map(|(ic, _)| (*ic, *spec)))
        .collect();
    ranked.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then_with(|| complexity(&a.1).cmp(&complexity(&b.1)))
    });
    for (_, spec) in &ranked {
        let candidate = if approximate {
            match fit(y, *spec, opts.method) {
                Ok(f) if f.roots_outside(ROOT_MARGIN) || spec.p + spec.q == 0 => f,
                _ => continue,
            }
        } else {
            search.fits[spec]
                .as_ref()
                .expect("ranked fits exist")
                .1
                .clone()
        };
        return Ok(candidate);
    }
    fallback(y, d)
}

/// Simpler models win ties (a constant series fits every order perfectly).
fn complexity(spec: &ArimaSpec) -> usize {
    spec.p + spec.q + usize::from(spec.constant)
}

/// What is left when no candidate could be ranked: too few points for any
/// criterion to have degrees of freedom.
fn fallback(y: &[f64], d: usize) -> Result<FittedArima, FitError> {
    let spec = if d == 0 {
        ArimaSpec::new(0, 0, 0, true)
    } else {
        ArimaSpec::new(0, 1, 0, false)
    };
    fit(y, spec, Method::CssMl).or_else(|_| fit(y, ArimaSpec::new(0, 1, 0, false), Method::CssMl))
}

struct Search<'a> {
    y: &'a [f64],
    d: usize,
    ic: InfoCriterion,
    method: Method,
    /// Common CSS conditioning point, so sums of squares are comparable.
    css_cond: usize,
    /// The best spec so far, whose coefficients start the next fits.
    incumbent: Option<ArimaSpec>,
    /// Every spec tried, with its criterion and fit when it qualified.
    fits: HashMap<ArimaSpec, Option<(f64, FittedArima)>>,
}

impl Search<'_> {
    /// Fits `(p, d, q)` once and returns its criterion (infinite when it
    /// cannot be fitted or does not qualify).
    fn score(&mut self, p: usize, q: usize, constant: bool) -> f64 {
        let spec = ArimaSpec::new(p, self.d, q, constant);
        if p + q > MAX_ORDER {
            return f64::INFINITY;
        }
        if let Some(known) = self.fits.get(&spec) {
            return known.as_ref().map_or(f64::INFINITY, |(ic, _)| *ic);
        }
        let warm = self
            .incumbent
            .and_then(|s| self.fits.get(&s))
            .and_then(|f| f.as_ref())
            .map(|(_, f)| f);
        let scored = fit_conditioned(self.y, spec, self.method, self.css_cond, warm)
            .ok()
            .filter(|f| p + q == 0 || f.roots_outside(ROOT_MARGIN))
            .map(|f| (f.ic(self.ic), f))
            .filter(|(ic, _)| ic.is_finite());
        let ic = scored.as_ref().map_or(f64::INFINITY, |(ic, _)| *ic);
        self.fits.insert(spec, scored);
        ic
    }
}

fn stepwise(search: &mut Search<'_>, opts: &AutoOptions, constant_choices: &[bool]) {
    let c0 = constant_choices[0];
    let (mut p, mut q, mut c) = (opts.max_p.min(2), opts.max_q.min(2), c0);
    let mut best = search.score(p, q, c);
    search.incumbent = Some(ArimaSpec::new(p, search.d, q, c));
    let mut starts = vec![(0, 0, c0)];
    if opts.max_p >= 1 {
        starts.push((1, 0, c0));
    }
    if opts.max_q >= 1 {
        starts.push((0, 1, c0));
    }
    if constant_choices.len() > 1 {
        starts.push((0, 0, !c0));
    }
    for (sp, sq, sc) in starts {
        let ic = search.score(sp, sq, sc);
        if ic < best {
            (best, p, q, c) = (ic, sp, sq, sc);
            search.incumbent = Some(ArimaSpec::new(p, search.d, q, c));
        }
    }
    'walk: while search.fits.len() < MAX_MODELS {
        let mut neighbours: Vec<(usize, usize, bool)> = Vec::with_capacity(9);
        let (up_p, up_q) = (p < opts.max_p, q < opts.max_q);
        if p > 0 {
            neighbours.push((p - 1, q, c));
        }
        if up_p {
            neighbours.push((p + 1, q, c));
        }
        if q > 0 {
            neighbours.push((p, q - 1, c));
        }
        if up_q {
            neighbours.push((p, q + 1, c));
        }
        if p > 0 && q > 0 {
            neighbours.push((p - 1, q - 1, c));
        }
        if p > 0 && up_q {
            neighbours.push((p - 1, q + 1, c));
        }
        if up_p && q > 0 {
            neighbours.push((p + 1, q - 1, c));
        }
        if up_p && up_q {
            neighbours.push((p + 1, q + 1, c));
        }
        if constant_choices.len() > 1 {
            neighbours.push((p, q, !c));
        }
        for (np, nq, nc) in neighbours {
            let ic = search.score(np, nq, nc);
            if ic < best {
                (best, p, q, c) = (ic, np, nq, nc);
                search.incumbent = Some(ArimaSpec::new(p, search.d, q, c));
                continue 'walk;
            }
        }
        break;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic PRNG (SplitMix64) with Box-Muller normals, so
    /// simulated series are the same on every machine.
    struct Rng(u64);

    impl Rng {
        pub fn new(seed: u64) -> Self {
            Self(seed)
        }
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn uniform(&mut self) -> f64 {
            ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        pub fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    fn simulate(n: usize, phi: f64, theta: f64, mean: f64, seed: u64) -> Vec<f64> {
        let mut rng = Rng::new(seed);
        let (mut x, mut e_prev) = (0.0, 0.0);
        let mut out = Vec::with_capacity(n);
        for t in 0..n + 100 {
            let e = rng.normal();
            x = phi * x + e + theta * e_prev;
            e_prev = e;
            if t >= 100 {
                out.push(mean + x);
            }
        }
        out
    }

    #[test]
    fn picks_ar1_for_ar1_data() {
        let y = simulate(400, 0.7, 0.0, 10.0, 1);
        let fit = auto_fit(&y, &AutoOptions::default()).unwrap();
        assert_eq!(fit.spec(), ArimaSpec::new(1, 0, 0, true), "{}", fit.spec());
        assert!((fit.ar()[0] - 0.7).abs() < 0.1);
        assert!((fit.constant().unwrap() - 10.0).abs() < 0.5);
    }

    #[test]
    fn grid_search_and_other_criteria_agree_on_clear_data() {
        let y = simulate(400, 0.7, 0.0, 10.0, 1);
        for opts in [
            AutoOptions {
                stepwise: false,
                ..AutoOptions::default()
            },
            AutoOptions {
                ic: InfoCriterion::Bic,
                ..AutoOptions::default()
            },
            AutoOptions {
                method: Method::Css,
                ..AutoOptions::default()
            },
        ] {
            let fit = auto_fit(&y, &opts).unwrap();
            assert_eq!(fit.spec(), ArimaSpec::new(1, 0, 0, true), "{opts:?}");
        }
    }

    #[test]
    fn picks_ma1_for_ma1_data() {
        let y = simulate(400, 0.0, 0.6, 0.0, 2);
        let fit = auto_fit(&y, &AutoOptions::default()).unwrap();
        let spec = fit.spec();
        assert_eq!((spec.p, spec.d, spec.q), (0, 0, 1), "{spec}");
        assert!((fit.ma()[0] - 0.6).abs() < 0.1);
    }

    #[test]
    fn picks_a_random_walk_for_random_walk_data() {
        let mut rng = Rng::new(3);
        let mut level = 50.0;
        let y: Vec<f64> = (0..400)
            .map(|_| {
                level += rng.normal();
                level
            })
            .collect();
        let fit = auto_fit(&y, &AutoOptions::default()).unwrap();
        let spec = fit.spec();
        assert_eq!((spec.p, spec.d, spec.q), (0, 1, 0), "{spec}");
    }

    #[test]
    fn kpss_tells_stationary_from_integrated() {
        let noise = simulate(300, 0.0, 0.0, 0.0, 4);
        assert!(kpss_level(&noise) < KPSS_CRITICAL_5PCT);
        let walk: Vec<f64> = noise
            .iter()
            .scan(0.0, |s, v| {
                *s += v;
                Some(*s)
            })
            .collect();
        assert!(kpss_level(&walk) > KPSS_CRITICAL_5PCT);
        assert_eq!(ndiffs(&walk, 2), 1);
        assert_eq!(ndiffs(&noise, 2), 0);
        assert_eq!(ndiffs(&[3.0; 20], 2), 0);
    }

    #[test]
    fn tiny_series_still_fit() {
        for n in 2..8 {
            let y: Vec<f64> = (0..n).map(|i| 5.0 + (i % 3) as f64).collect();
            let fit = auto_fit(&y, &AutoOptions::default()).unwrap();
            let fc = fit.forecast(3, &[0.1, 0.9]);
            assert!(fc.mean.iter().chain(&fc.sd).all(|v| v.is_finite()), "n={n}");
        }
        assert_eq!(
            auto_fit(&[1.0], &AutoOptions::default()).unwrap_err(),
            FitError::TooShort { needed: 2, got: 1 }
        );
    }
}
