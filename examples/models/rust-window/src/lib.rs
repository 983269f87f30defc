//! An example of a custom Kedastral model: forecast the recent load's
//! quantiles. Over the last `window` observed points it takes the
//! `level`-quantile as the point forecast and the requested quantiles as the
//! bands, flat over the horizon. It suits bursty workloads where holding a
//! high recent percentile beats chasing each spike.
//!
//! Build it as a component and run it:
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2 -p kedastral-example-window
//! cargo run -- forecast --model target/wasm32-wasip2/release/kedastral_example_window.wasm \
//!     --input examples/data/nasa_http_1m.csv --horizon 30 --param level=0.9
//! ```

use kedastral_model_sdk::stats::{quantile_sorted, sort_finite};
use kedastral_model_sdk::{
    Forecast, ForecastRequest, Model, ModelError, ModelInfo, Params, QuantileBand,
};

pub struct RecentWindow;

impl Model for RecentWindow {
    fn info() -> ModelInfo {
        ModelInfo::new(
            "recent-window",
            env!("CARGO_PKG_VERSION"),
            "Quantiles of the most recent observations, held flat",
            1,
        )
        .param("window", "60", "how many recent observed points to look at")
        .param(
            "level",
            "0.5",
            "quantile of the window used as the point forecast",
        )
    }

    fn forecast(request: &ForecastRequest) -> Result<Forecast, ModelError> {
        let specs = Self::info().params;
        let params = Params::new(&request.params, &specs)?;
        let window: usize = params.get("window")?;
        let level: f64 = params.get("level")?;
        if window == 0 {
            return Err(ModelError::InvalidInput("window must be at least 1".into()));
        }
        if !(0.0..=1.0).contains(&level) {
            return Err(ModelError::InvalidInput(format!(
                "level {level} is not in [0, 1]"
            )));
        }

        let mut recent: Vec<f64> = request
            .history
            .values
            .iter()
            .rev()
            .copied()
            .filter(|v| !v.is_nan())
            .take(window)
            .collect();
        if recent.is_empty() {
            return Err(ModelError::insufficient(1, 0));
        }
        sort_finite(&mut recent);
        let horizon = request.horizon as usize;
        let at = |p: f64| quantile_sorted(&recent, p).expect("window is not empty");
        Ok(Forecast {
            values: vec![at(level); horizon],
            quantiles: request
                .quantiles
                .iter()
                .map(|&q| QuantileBand {
                    level: q,
                    values: vec![at(q); horizon],
                })
                .collect(),
        })
    }
}

kedastral_model_sdk::export_model!(RecentWindow);

#[cfg(test)]
mod tests {
    use kedastral_model_sdk::Series;

    use super::*;

    #[test]
    fn forecasts_the_window_quantile() {
        let history = Series::new(0, 60, vec![100.0, 1.0, 2.0, f64::NAN, 3.0, 4.0]);
        let request = ForecastRequest::new(history, 3)
            .with_quantiles(vec![0.0, 1.0])
            .with_param("window", "4");
        let f = RecentWindow::forecast(&request).unwrap();
        assert_eq!(f.values, vec![2.5; 3]);
        assert_eq!(f.quantiles[0].values, vec![1.0; 3]);
        assert_eq!(f.quantiles[1].values, vec![4.0; 3]);
    }

    #[test]
    fn refuses_bad_parameters() {
        let request =
            ForecastRequest::new(Series::new(0, 60, vec![1.0]), 1).with_param("window", "0");
        assert!(matches!(
            RecentWindow::forecast(&request),
            Err(ModelError::InvalidInput(_))
        ));
        let request =
            ForecastRequest::new(Series::new(0, 60, vec![1.0]), 1).with_param("windw", "3");
        assert!(matches!(
            RecentWindow::forecast(&request),
            Err(ModelError::InvalidInput(_))
        ));
    }
}
