//! One model as the forecaster shares it between workloads, and the lanes
//! its calls run in.
//!
//! Sharing a model shares its compiled code, never its state: every call runs
//! in a fresh instance (see [`crate::model::runtime`]).
//!
//! Calls run in one of two lanes:
//! - **shared**: the forecaster's model slots (one per core), taken by calls
//!   of a *trusted* model, one whose last forecast ended without a fault;
//! - **probation**: a lane of the model's own, one call at a time, for a model
//!   not trusted (it has not forecast yet, or its last call timed out,
//!   trapped or ran out of memory), and for every call of a workload whose
//!   own breaker has tripped on the model (a model may hang on one
//!   workload's data and not on another's). Such a call holds no shared
//!   slot, so a model that hangs keeps at most one core busy, and calls of
//!   other models never queue behind it.
//!
//! A workload of one model takes its lane before its tick's calls start,
//! waiting asynchronously (no thread is held while it waits); a call that
//! then finds the model's standing changed moves lanes. A model's first
//! forecast is so a probe: the calls queued behind it see it trusted and take
//! the shared slots.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::model::{Forecast, ForecastRequest, LoadedModel, ModelCallError};

pub struct ModelPool {
    /// Swapped when a new version of a models directory's file loads: a
    /// call in flight keeps the version it started with.
    model: RwLock<LoadedModel>,
    /// Bumped at each swap, so a workload knows to judge it afresh.
    generation: AtomicU64,
    /// Why the model is gone, once its file left the models directory.
    removed: RwLock<Option<String>>,
    /// The last forecast that ran ended without a fault.
    trusted: AtomicBool,
    /// One permit: held for the length of a probation call.
    probation: Arc<Semaphore>,
}

/// A blocking task's place in a lane: what it holds between its calls.
pub struct Lane {
    shared: Arc<Semaphore>,
    held: Held,
    runtime: tokio::runtime::Handle,
}

/// Permits are held for their drop, which gives them back.
enum Held {
    Nothing,
    Shared {
        _permit: OwnedSemaphorePermit,
    },
    /// A model's probation permit, and that model's semaphore.
    Probation {
        lane: Arc<Semaphore>,
        _permit: OwnedSemaphorePermit,
    },
}

impl Lane {
    /// Takes the lane for a tick of calls to `pool` alone (`suspect`: the
    /// workload's breaker has tripped on it), waiting asynchronously; with
    /// `pool` `None` (several candidates), a shared slot. Must be awaited on
    /// the tokio runtime.
    pub async fn take(shared: Arc<Semaphore>, pool: Option<&ModelPool>, suspect: bool) -> Self {
        let runtime = tokio::runtime::Handle::current();
        if let Some(pool) = pool
            && (suspect || !pool.is_trusted())
        {
            let permit = pool
                .probation
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            // The probe ahead of this one may have shown the model sound.
            if suspect || !pool.is_trusted() {
                return Self {
                    shared,
                    held: Held::Probation {
                        lane: pool.probation.clone(),
                        _permit: permit,
                    },
                    runtime,
                };
            }
        }
        let permit = shared
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        Self {
            shared,
            held: Held::Shared { _permit: permit },
            runtime,
        }
    }

    /// A lane holding nothing yet, for a tick whose calls are all held back
    /// by their breakers; a call that does run takes its lane then.
    pub fn idle(shared: Arc<Semaphore>) -> Self {
        Self {
            shared,
            held: Held::Nothing,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// Blocks until a shared slot is held. Call it off the async threads.
    fn hold_shared(&mut self) {
        if !matches!(self.held, Held::Shared { .. }) {
            self.held = Held::Nothing;
            let permit = self
                .runtime
                .block_on(self.shared.clone().acquire_owned())
                .expect("the semaphore is never closed");
            self.held = Held::Shared { _permit: permit };
        }
    }

    /// Blocks until `probation`'s permit is held, giving up what else is.
    fn hold_probation(&mut self, probation: &Arc<Semaphore>) {
        if !matches!(&self.held, Held::Probation { lane, .. } if Arc::ptr_eq(lane, probation)) {
            self.held = Held::Nothing;
            let permit = self
                .runtime
                .block_on(probation.clone().acquire_owned())
                .expect("the semaphore is never closed");
            self.held = Held::Probation {
                lane: probation.clone(),
                _permit: permit,
            };
        }
    }
}

impl ModelPool {
    pub fn new(model: LoadedModel) -> Self {
        Self {
            model: RwLock::new(model),
            generation: AtomicU64::new(0),
            removed: RwLock::new(None),
            trusted: AtomicBool::new(false),
            probation: Arc::new(Semaphore::new(1)),
        }
    }

    /// The version in use (a cheap clone).
    pub fn model(&self) -> LoadedModel {
        self.model.read().expect("pool lock").clone()
    }

    /// Serves `model` for later calls; a new version starts untrusted, on
    /// probation until its first forecast ends without a fault.
    pub fn swap(&self, model: LoadedModel) {
        *self.model.write().expect("pool lock") = model;
        *self.removed.write().expect("pool lock") = None;
        self.trusted.store(false, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Stops calls, which then fail with `reason`.
    pub fn remove(&self, reason: String) {
        *self.removed.write().expect("pool lock") = Some(reason);
    }

    /// Bumped by each [`Self::swap`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether the model's last forecast that ran ended without a fault.
    pub fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    /// Runs one forecast in the lane the model's standing calls for; on
    /// probation if `suspect` (the caller's breaker has tripped on this
    /// model). Blocks for the call's length: call it off the async threads.
    /// `ran` gets the time the model ran, without the wait for its lane,
    /// if it did.
    pub fn forecast(
        &self,
        request: &ForecastRequest,
        lane: &mut Lane,
        suspect: bool,
        ran: &mut Option<std::time::Duration>,
    ) -> Result<Forecast, ModelCallError> {
        if !suspect && self.is_trusted() {
            lane.hold_shared();
        }
        if suspect || !self.is_trusted() {
            lane.hold_probation(&self.probation);
        }
        let model = self.model();
        if let Some(reason) = self.removed.read().expect("pool lock").clone() {
            return Err(ModelCallError::Removed {
                model: model.info().name.clone(),
                reason,
            });
        }
        let started = std::time::Instant::now();
        let answer = model.forecast(request);
        *ran = Some(started.elapsed());
        match &answer {
            Err(e) if e.is_fault() => self.trusted.store(false, Ordering::Release),
            Err(e) if !e.model_ran() => {}
            _ => self.trusted.store(true, Ordering::Release),
        }
        answer
    }
}
