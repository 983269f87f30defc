//! One model as the forecaster shares it between workloads, and the lanes
//! its calls run in.
//!
//! Sharing a model shares its compiled code, never its state: every call runs
//! in a fresh instance (see [`crate::model::runtime`]).
//!
//! Calls run in one of two lanes:
//! - **shared**: the forecaster's model slots (one per core), taken by calls
//!   of a *trusted* model, one whose last call ended without a fault;
//! - **probation**: a lane of the model's own, one call at a time, for a
//!   model not run yet or whose last call timed out, trapped or ran out of
//!   memory. Such a call holds no shared slot, so a model that hangs on every
//!   call keeps at most one core busy, and the calls of healthy models never
//!   queue behind it.
//!
//! A call that waits for one lane checks the model's standing again once it
//! has it, so a model's first success frees the calls queued behind it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::model::{Forecast, ForecastRequest, LoadedModel, ModelCallError};

pub struct ModelPool {
    model: LoadedModel,
    /// The last call ended without a fault.
    trusted: AtomicBool,
    /// Held for the length of a probation call.
    probation: Mutex<()>,
}

/// A blocking task's claim on the shared lane: a slot held between calls
/// and given up while a call runs on probation.
pub struct SharedSlot {
    lane: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
    runtime: tokio::runtime::Handle,
}

impl SharedSlot {
    /// Starts with `permit`, taken from `lane` by the async caller. Must be
    /// created on a thread of the tokio runtime.
    pub fn new(lane: Arc<Semaphore>, permit: OwnedSemaphorePermit) -> Self {
        Self {
            lane,
            permit: Some(permit),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// Blocks until a slot is held. Call it off the async threads.
    fn hold(&mut self) {
        if self.permit.is_none() {
            let lane = self.lane.clone();
            let permit = self
                .runtime
                .block_on(lane.acquire_owned())
                .expect("the semaphore is never closed");
            self.permit = Some(permit);
        }
    }

    fn release(&mut self) {
        self.permit = None;
    }
}

impl ModelPool {
    pub fn new(model: LoadedModel) -> Self {
        Self {
            model,
            trusted: AtomicBool::new(false),
            probation: Mutex::new(()),
        }
    }

    pub fn model(&self) -> &LoadedModel {
        &self.model
    }

    /// Whether the model's last call ended without a fault.
    pub fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    /// Runs one forecast in the lane the model's standing calls for. Blocks
    /// for the call's length: call it off the async threads.
    pub fn forecast(
        &self,
        request: &ForecastRequest,
        slot: &mut SharedSlot,
    ) -> Result<Forecast, ModelCallError> {
        loop {
            if self.is_trusted() {
                slot.hold();
                if self.is_trusted() {
                    return self.run(request);
                }
            } else {
                slot.release();
                let _lane = self
                    .probation
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if !self.is_trusted() {
                    return self.run(request);
                }
            }
        }
    }

    fn run(&self, request: &ForecastRequest) -> Result<Forecast, ModelCallError> {
        let answer = self.model.forecast(request);
        let fault = matches!(&answer, Err(e) if e.is_fault());
        self.trusted.store(!fault, Ordering::Release);
        answer
    }
}
