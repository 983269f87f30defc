//! Instances of one model, shared by every workload that uses it.
//!
//! Models are stateless (one forecast per call), so a workload does not
//! need an instance of its own: a call takes an idle instance or makes one,
//! and gives it back. At most as many instances exist as calls ever ran at
//! once, which the forecaster bounds by the number of cores, so a thousand
//! workloads cost a few instances' memory rather than a thousand.

use std::sync::Mutex;

use crate::model::{Forecast, ForecastRequest, LoadedModel, ModelCallError, ModelInstance};

pub struct ModelPool {
    model: LoadedModel,
    /// Held only to push or pop, never during a call.
    idle: Mutex<Vec<ModelInstance>>,
}

impl ModelPool {
    pub fn new(model: LoadedModel) -> Self {
        Self {
            model,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn model(&self) -> &LoadedModel {
        &self.model
    }

    /// Runs one forecast on an idle instance. Blocks for the call's length:
    /// call it off the async threads.
    pub fn forecast(&self, request: &ForecastRequest) -> Result<Forecast, ModelCallError> {
        let taken = self.idle.lock().expect("pool lock").pop();
        let mut instance = taken.unwrap_or_else(|| self.model.instance());
        let answer = instance.forecast(request);
        // A trapped instance has already dropped its store and will
        // instantiate afresh on its next call, so it is safe to reuse.
        self.idle.lock().expect("pool lock").push(instance);
        answer
    }
}
