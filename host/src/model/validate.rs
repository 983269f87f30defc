//! Checks on both sides of a model call: the host never sends a request a
//! model cannot make sense of, and never takes an answer that is not a
//! forecast (wrong length, NaN or infinite values, bands out of order).

use kedastral_model_sdk::{Forecast, ForecastRequest};

/// Checks a request before it is sent; the message says what is wrong.
pub fn check_request(request: &ForecastRequest) -> Result<(), String> {
    request.validate().map_err(|e| match e {
        kedastral_model_sdk::ModelError::InvalidInput(m) => m,
        other => other.to_string(),
    })
}

/// Checks a model's answer against the request it answers.
pub fn check_forecast(request: &ForecastRequest, forecast: &Forecast) -> Result<(), String> {
    let horizon = request.horizon as usize;
    if forecast.values.len() != horizon {
        return Err(format!(
            "{} point values for a horizon of {horizon}",
            forecast.values.len()
        ));
    }
    if let Some(i) = forecast.values.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "point value {i} is {} (values must be finite)",
            forecast.values[i]
        ));
    }
    if forecast.quantiles.len() != request.quantiles.len() {
        return Err(format!(
            "{} quantile bands for {} requested levels",
            forecast.quantiles.len(),
            request.quantiles.len()
        ));
    }
    for (band, &level) in forecast.quantiles.iter().zip(&request.quantiles) {
        if band.level != level {
            return Err(format!(
                "band for level {} where level {level} was requested (bands must follow the requested order)",
                band.level
            ));
        }
        if band.values.len() != horizon {
            return Err(format!(
                "band {level} has {} values for a horizon of {horizon}",
                band.values.len()
            ));
        }
        if let Some(i) = band.values.iter().position(|v| !v.is_finite()) {
            return Err(format!(
                "band {level} value {i} is {} (values must be finite)",
                band.values[i]
            ));
        }
    }
    for pair in forecast.quantiles.windows(2) {
        let (lower, upper) = (&pair[0], &pair[1]);
        for (i, (&lo, &hi)) in lower.values.iter().zip(&upper.values).enumerate() {
            // Allow rounding noise of a few ulps, nothing more.
            if hi < lo - 1e-9 * lo.abs().max(1.0) {
                return Err(format!(
                    "quantile bands out of order at step {i}: level {} is {lo} but level {} is {hi}",
                    lower.level, upper.level
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kedastral_model_sdk::{QuantileBand, Series};

    use super::*;

    fn request() -> ForecastRequest {
        ForecastRequest::new(Series::new(0, 60, vec![1.0, 2.0]), 2).with_quantiles(vec![0.1, 0.9])
    }

    fn good() -> Forecast {
        Forecast {
            values: vec![1.0, 2.0],
            quantiles: vec![
                QuantileBand {
                    level: 0.1,
                    values: vec![0.5, 1.5],
                },
                QuantileBand {
                    level: 0.9,
                    values: vec![1.5, 2.5],
                },
            ],
        }
    }

    #[test]
    fn a_good_forecast_passes() {
        assert_eq!(check_forecast(&request(), &good()), Ok(()));
    }

    #[test]
    fn wrong_length_nan_and_disorder_are_refused() {
        let mut f = good();
        f.values.pop();
        assert!(
            check_forecast(&request(), &f)
                .unwrap_err()
                .contains("horizon of 2")
        );

        let mut f = good();
        f.values[1] = f64::NAN;
        assert!(check_forecast(&request(), &f).unwrap_err().contains("NaN"));

        let mut f = good();
        f.quantiles[1].values[0] = f64::INFINITY;
        assert!(check_forecast(&request(), &f).unwrap_err().contains("inf"));

        let mut f = good();
        f.quantiles[0].values[1] = 3.0;
        assert!(
            check_forecast(&request(), &f)
                .unwrap_err()
                .contains("out of order at step 1")
        );

        let mut f = good();
        f.quantiles.swap(0, 1);
        assert!(
            check_forecast(&request(), &f)
                .unwrap_err()
                .contains("requested order")
        );

        let mut f = good();
        f.quantiles.pop();
        assert!(
            check_forecast(&request(), &f)
                .unwrap_err()
                .contains("1 quantile bands for 2")
        );
    }
}

#[cfg(test)]
mod properties {
    use kedastral_model_sdk::{QuantileBand, Series};
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Bands sorted level by level at every step pass; pushing any one
        /// value of a lower band clearly above the band over it fails.
        #[test]
        fn ordered_bands_pass_and_any_inversion_fails(
            steps in prop::collection::vec(prop::collection::vec(-1e6f64..1e6, 3), 1..40),
            pick in any::<prop::sample::Index>(),
        ) {
            let horizon = steps.len();
            let levels = vec![0.1, 0.5, 0.9];
            let mut bands = vec![vec![0.0; horizon]; 3];
            for (i, step) in steps.iter().enumerate() {
                let mut sorted = step.clone();
                sorted.sort_by(f64::total_cmp);
                for (b, v) in sorted.into_iter().enumerate() {
                    bands[b][i] = v;
                }
            }
            let request = ForecastRequest::new(Series::new(0, 60, vec![1.0]), horizon as u32)
                .with_quantiles(levels.clone());
            let mut forecast = Forecast {
                values: bands[1].clone(),
                quantiles: levels
                    .iter()
                    .zip(&bands)
                    .map(|(&level, values)| QuantileBand { level, values: values.clone() })
                    .collect(),
            };
            prop_assert_eq!(check_forecast(&request, &forecast), Ok(()));

            let i = pick.index(horizon);
            forecast.quantiles[0].values[i] = forecast.quantiles[1].values[i] + 1.0;
            prop_assert!(check_forecast(&request, &forecast).is_err());
        }
    }
}
