//! A model that describes itself at absurd length: a 64 MiB description and
//! a 1 MiB parameter description, with a terminal escape in each. The host
//! must cut both before they reach a terminal, a log or the API. Its
//! forecasts are flat and harmless.

use kedastral_model_sdk::{Forecast, ForecastRequest, Model, ModelError, ModelInfo};

pub struct Loud;

impl Model for Loud {
    fn info() -> ModelInfo {
        let description = format!("\u{1b}[31m{}", "loud ".repeat((64 << 20) / 5));
        let param = format!("\u{1b}[2J{}", "p".repeat(1 << 20));
        ModelInfo::new("loud", "0.0.1", &description, 1).param("level", "1", &param)
    }

    fn forecast(request: &ForecastRequest) -> Result<Forecast, ModelError> {
        Ok(Forecast::flat(1.0, request))
    }
}

kedastral_model_sdk::export_model!(Loud);
