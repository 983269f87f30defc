//! The component side: bindings generated from `wit/forecast-0.1.0` and the
//! conversions between them and the SDK's plain types.

pub mod bindings {
    wit_bindgen::generate!({
        world: "forecast-model",
        path: "../../wit/forecast-0.1.0",
        pub_export_macro: true,
        export_macro_name: "__export_forecast_model",
        default_bindings_module: "kedastral_model_sdk::wasm::bindings",
    });
}

use bindings::exports::kedastral::forecast::model as wit;

use crate::{Forecast, ForecastRequest, Model, ModelError, ModelInfo, Series};

pub fn describe<M: Model>() -> wit::ModelInfo {
    let ModelInfo {
        name,
        version,
        description,
        min_history,
        params,
    } = M::info();
    wit::ModelInfo {
        name,
        version,
        description,
        min_history,
        params: params
            .into_iter()
            .map(|p| wit::ParamSpec {
                name: p.name,
                default_value: p.default_value,
                description: p.description,
            })
            .collect(),
    }
}

pub fn forecast<M: Model>(
    request: wit::ForecastRequest,
) -> Result<wit::ForecastResponse, wit::ModelError> {
    let request = ForecastRequest {
        history: Series {
            start_unix_seconds: request.history.start_unix_seconds,
            step_seconds: request.history.step_seconds,
            values: request.history.values,
        },
        horizon: request.horizon,
        quantiles: request.quantiles,
        params: request.params,
    };
    // No `request.validate()` here: the host checks every request before it
    // calls a model, and a second pass over the history in wasm is not free.
    match M::forecast(&request) {
        Ok(Forecast { values, quantiles }) => Ok(wit::ForecastResponse {
            values,
            quantiles: quantiles
                .into_iter()
                .map(|b| wit::QuantileBand {
                    level: b.level,
                    values: b.values,
                })
                .collect(),
        }),
        Err(ModelError::InvalidInput(m)) => Err(wit::ModelError::InvalidInput(m)),
        Err(ModelError::InsufficientHistory { needed, got }) => Err(
            wit::ModelError::InsufficientHistory(wit::InsufficientHistory { needed, got }),
        ),
        Err(ModelError::Internal(m)) => Err(wit::ModelError::Internal(m)),
    }
}
