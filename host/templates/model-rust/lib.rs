//! {{name}}: a Kedastral forecast model. It starts as a naive forecast (the
//! last observed value) with quantile bands from the history's own changes
//! over the same number of steps; replace `forecast` with your model.
//!
//! The interface is `wit/forecast.wit` (Kedastral's `forecast-model` world).

wit_bindgen::generate!({ path: "wit", world: "forecast-model" });

use exports::kedastral::forecast::model::{
    ForecastRequest, ForecastResponse, Guest, InsufficientHistory, ModelError, ModelInfo,
    ParamSpec, QuantileBand,
};

struct Model;

const WINDOW_DEFAULT: &str = "1440";

impl Guest for Model {
    fn describe() -> ModelInfo {
        ModelInfo {
            name: "{{name}}".into(),
            version: "0.1.0".into(),
            description: "Last value, with bands from the history's own changes".into(),
            min_history: 2,
            params: vec![ParamSpec {
                name: "window".into(),
                default_value: WINDOW_DEFAULT.into(),
                description: "most recent points used for the bands".into(),
            }],
        }
    }

    fn forecast(request: ForecastRequest) -> Result<ForecastResponse, ModelError> {
        let mut window = WINDOW_DEFAULT.parse::<usize>().expect("a number");
        for (key, value) in &request.params {
            match key.as_str() {
                "window" => {
                    window = value.parse().ok().filter(|w| *w >= 2).ok_or_else(|| {
                        ModelError::InvalidInput(format!("window: `{value}` is not a count >= 2"))
                    })?
                }
                other => {
                    return Err(ModelError::InvalidInput(format!(
                        "unknown parameter `{other}` (this model takes: window)"
                    )));
                }
            }
        }
        let values = &request.history.values;
        let recent = &values[values.len().saturating_sub(window)..];
        let observed: Vec<f64> = recent.iter().copied().filter(|v| !v.is_nan()).collect();
        let Some(&last) = observed.last() else {
            return Err(ModelError::InsufficientHistory(InsufficientHistory {
                needed: 2,
                got: 0,
            }));
        };
        if observed.len() < 2 {
            return Err(ModelError::InsufficientHistory(InsufficientHistory {
                needed: 2,
                got: observed.len() as u32,
            }));
        }
        let horizon = request.horizon as usize;
        let point = vec![last; horizon];
        // For each horizon h, the quantiles of the changes over h steps seen
        // in the window (the last h-step change when the window is short).
        let quantiles = request
            .quantiles
            .iter()
            .map(|&level| QuantileBand {
                level,
                values: (1..=horizon)
                    .map(|h| last + change_quantile(&observed, h, level))
                    .collect(),
            })
            .collect();
        Ok(ForecastResponse {
            values: point,
            quantiles,
        })
    }
}

/// The `level` quantile of `x[i + h] - x[i]` over the window.
fn change_quantile(x: &[f64], h: usize, level: f64) -> f64 {
    let h = h.min(x.len() - 1);
    let mut changes: Vec<f64> = x.windows(h + 1).map(|w| w[h] - w[0]).collect();
    changes.sort_by(f64::total_cmp);
    let position = level * (changes.len() - 1) as f64;
    let (low, high) = (position.floor() as usize, position.ceil() as usize);
    changes[low] + (changes[high] - changes[low]) * (position - low as f64)
}

export!(Model);
