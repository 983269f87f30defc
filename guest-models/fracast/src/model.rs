//! Fracast-0 as a Kedastral model: the median as the point forecast, and
//! every requested quantile level read off the nine the network forecasts.

use kedastral_model_sdk::stats::normal_quantile;
use kedastral_model_sdk::{
    Forecast, ForecastRequest, Model, ModelError, ModelInfo, Params, QuantileBand,
};

use crate::{ForecastError, Fracast, MIN_OBSERVED};

pub struct FracastModel;

impl Model for FracastModel {
    fn info() -> ModelInfo {
        ModelInfo::new(
            "fracast",
            env!("CARGO_PKG_VERSION"),
            "Fracast-0, a pretrained neural forecaster (85 001 parameters) used zero-shot: the last 2 048 points, 48 steps a pass, nine quantiles",
            MIN_OBSERVED as u32,
        )
    }

    fn forecast(request: &ForecastRequest) -> Result<Forecast, ModelError> {
        request.validate()?;
        let info = Self::info();
        Params::new(&request.params, &info.params)?;
        let observed = request.history.observed_count();
        if observed < MIN_OBSERVED {
            return Err(ModelError::insufficient(MIN_OBSERVED, observed));
        }
        let model = Fracast::new().map_err(|e| ModelError::Internal(e.to_string()))?;
        let steps = model
            .forecast(&request.history.values, request.horizon as usize)
            .map_err(|e| match e {
                ForecastError::TooFewObserved(got) => ModelError::insufficient(MIN_OBSERVED, got),
                other => ModelError::Internal(other.to_string()),
            })?;
        Forecast {
            values: steps.iter().map(|q| q[4]).collect(),
            quantiles: request
                .quantiles
                .iter()
                .map(|&level| QuantileBand {
                    level,
                    values: steps.iter().map(|q| at_level(q, level)).collect(),
                })
                .collect(),
        }
        .ordered_and_finite()
    }
}

/// The value at `level` of a step's nine quantiles (levels 0.1 to 0.9):
/// linear between the two neighbouring levels on the normal scale (their
/// standard normal quantiles), and beyond 0.1 or 0.9 the outermost pair's
/// slope on that scale carried on, so p95 sits as far past p90 as a normal
/// spread of the same width would put it. Sorted first, so a crossing of
/// the network's quantiles never makes bands cross.
pub fn at_level(quantiles: &[f64; 9], level: f64) -> f64 {
    let mut q = *quantiles;
    q.sort_by(f64::total_cmp);
    let levels = crate::Fracast::levels();
    let z = normal_quantile(level);
    let zs: Vec<f64> = levels.iter().map(|&l| normal_quantile(l)).collect();
    let i = match zs.iter().position(|&zi| zi >= z) {
        Some(0) => 0,
        Some(i) => i - 1,
        None => zs.len() - 2,
    };
    let (z0, z1) = (zs[i], zs[i + 1]);
    q[i] + (q[i + 1] - q[i]) * (z - z0) / (z1 - z0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_between_and_beyond_the_nine_follow_the_normal_scale() {
        // Quantiles of a normal with mean 10 and sd 2.
        let q: [f64; 9] =
            std::array::from_fn(|i| 10.0 + 2.0 * normal_quantile(0.1 * (i + 1) as f64));
        assert!((at_level(&q, 0.5) - 10.0).abs() < 1e-12);
        for level in [0.05, 0.15, 0.25, 0.75, 0.95, 0.99] {
            let want = 10.0 + 2.0 * normal_quantile(level);
            let got = at_level(&q, level);
            // Exact outside (the slope is the normal's); between, linear on
            // the normal scale is exact too.
            assert!((got - want).abs() < 1e-9, "{level}: {got} against {want}");
        }
        // Crossed quantiles are sorted first: bands stay in order.
        let mut crossed = q;
        crossed.swap(6, 7);
        assert!(at_level(&crossed, 0.72) <= at_level(&crossed, 0.78));
    }
}
