//! The models a forecast comes from: the one a `--model` flag or a
//! workload's `model` names, or for `auto` every built-in, judged in
//! shadow and combined by their recent errors.
//!
//! `forecast`, `backtest` and the forecaster build their candidates here, so
//! all three load models and refuse params for `auto` alike. [`Offline`] runs the shadow evaluation
//! and the served forecast for the commands that replay a history, as the
//! forecaster does each tick.

use chrono::Utc;

use crate::backtest::OriginFailure;
use crate::model::source::{AUTO, candidates as sources};
use crate::model::{
    Forecast, ForecastRequest, Guard, LoadedModel, ModelCallError, ModelInfo, ModelLoadError,
    ModelSource, Retry,
};
use crate::shadow::{Shadow, ShadowConfig};
use crate::store::ModelRef;

#[derive(Debug, thiserror::Error)]
pub enum CandidateError {
    #[error("model `{model}`: {error}")]
    Load {
        model: String,
        error: Box<ModelLoadError>,
    },
    #[error("param `{param}`: model `{model}` has no such parameter (it takes: {known})")]
    UnknownParam {
        model: String,
        param: String,
        known: String,
    },
    #[error("params are for one model; with model `auto` every candidate runs on its defaults")]
    AutoParams,
    #[error("candidates are added to model `auto` only, not to `{0}`")]
    CandidatesWithoutAuto(String),
    #[error("candidate `{0}` is given twice (or is already one of auto's built-ins)")]
    DuplicateCandidate(String),
    #[error("`-{0}` leaves out a built-in candidate, but auto's are {1}")]
    NotACandidate(String, String),
    #[error("every candidate is left out: auto needs at least one")]
    NoCandidates,
}

/// One model a forecast may come from.
#[derive(Clone)]
pub struct Candidate {
    /// What loads it: a built-in's name, or the path as given. Workloads
    /// naming the same key share one compiled model.
    pub key: String,
    pub model: LoadedModel,
}

/// What a model name runs.
pub struct Candidates {
    /// The name and version forecasts are published under: the model's
    /// own, or for `auto` the host's.
    pub info: ModelInfo,
    pub members: Vec<Candidate>,
}

impl Candidates {
    /// The candidates `model` names with `params`, and for `auto` the
    /// `extra` ones (built-in names or component paths) after its own, each
    /// loaded by `load` (which may hand back a model it loaded before).
    pub fn load(
        model: &str,
        extra: &[String],
        params: &[(String, String)],
        mut load: impl FnMut(&str, &ModelSource) -> Result<LoadedModel, ModelLoadError>,
    ) -> Result<Self, CandidateError> {
        let mut sources: Vec<(String, ModelSource)> = sources(model)
            .into_iter()
            .map(|source| match source {
                ModelSource::Builtin(name) => (name.to_owned(), source),
                ModelSource::File(_) => (model.to_owned(), source),
            })
            .collect();
        if !extra.is_empty() && model != AUTO {
            return Err(CandidateError::CandidatesWithoutAuto(model.to_owned()));
        }
        for given in extra {
            if let Some(name) = given.strip_prefix('-') {
                let before = sources.len();
                sources.retain(|(key, source)| {
                    !(key == name && matches!(source, ModelSource::Builtin(_)))
                });
                if sources.len() == before {
                    let names: Vec<&str> = sources
                        .iter()
                        .filter(|(_, s)| matches!(s, ModelSource::Builtin(_)))
                        .map(|(key, _)| key.as_str())
                        .collect();
                    return Err(CandidateError::NotACandidate(
                        name.to_owned(),
                        names.join(", "),
                    ));
                }
                continue;
            }
            let source = ModelSource::parse(given);
            if sources.iter().any(|(_, s)| *s == source) {
                return Err(CandidateError::DuplicateCandidate(given.clone()));
            }
            sources.push((given.clone(), source));
        }
        if sources.is_empty() {
            return Err(CandidateError::NoCandidates);
        }
        if sources.len() > 1 && !params.is_empty() {
            return Err(CandidateError::AutoParams);
        }
        let mut members = Vec::with_capacity(sources.len());
        for (key, source) in &sources {
            let key = key.clone();
            let loaded = load(&key, source).map_err(|error| CandidateError::Load {
                model: key.clone(),
                error: Box::new(error),
            })?;
            members.push(Candidate { key, model: loaded });
        }
        let info = if let [only] = &members[..] {
            only.model.info().clone()
        } else {
            let names: Vec<&str> = members
                .iter()
                .map(|m| m.model.info().name.as_str())
                .collect();
            ModelInfo::new(
                AUTO,
                env!("CARGO_PKG_VERSION"),
                &format!(
                    "combines {}, weighted by their recent errors at each lead",
                    names.join(", ")
                ),
                members
                    .iter()
                    .map(|m| m.model.info().min_history)
                    .min()
                    .unwrap_or(1),
            )
        };
        Ok(Self { info, members })
    }

    /// Refuses a param the model does not declare, before any call: what
    /// the forecaster checks at start-up, so a typo stops it rather than
    /// failing every tick. (The offline commands leave it to the model,
    /// whose own message says the same.)
    pub fn check_params(&self, params: &[(String, String)]) -> Result<(), CandidateError> {
        let [only] = &self.members[..] else {
            return Ok(());
        };
        let info = only.model.info();
        let Some((param, _)) = params
            .iter()
            .find(|(key, _)| !info.params.iter().any(|p| &p.name == key))
        else {
            return Ok(());
        };
        let known: Vec<&str> = info.params.iter().map(|p| p.name.as_str()).collect();
        Err(CandidateError::UnknownParam {
            model: only.key.clone(),
            param: param.clone(),
            known: if known.is_empty() {
                "no parameters".into()
            } else {
                known.join(", ")
            },
        })
    }

    /// The name and version forecasts are published under.
    pub fn model_ref(&self) -> ModelRef {
        ModelRef {
            name: self.info.name.clone(),
            version: self.info.version.clone(),
            content_hash: match &self.members[..] {
                [only] => Some(only.model.content_hash().to_owned()),
                _ => None,
            },
        }
    }

    /// A shadow evaluation of these candidates.
    pub fn shadow(&self, config: ShadowConfig) -> Shadow {
        let names = self
            .members
            .iter()
            .map(|m| m.model.info().name.clone())
            .collect();
        Shadow::new(names, config)
    }

    /// A breaker and plausibility check per candidate.
    pub fn guards(&self, retry: Retry, max_forecast_ratio: f64) -> Vec<Guard> {
        self.members
            .iter()
            .map(|m| Guard::new(m.model.label(), retry, max_forecast_ratio))
            .collect()
    }

    /// For a command that replays a history: the shadow evaluation over
    /// `config` and the served forecast, through `guards` (which may
    /// outlive it, so a folder's traces share them).
    pub fn offline<'a>(&'a self, config: ShadowConfig, guards: &'a mut [Guard]) -> Offline<'a> {
        Offline {
            shadow: self.shadow(config),
            candidates: self,
            guards,
        }
    }
}

/// The shadow evaluation and the served forecast, as the forecaster runs
/// them, for a command that replays a history.
pub struct Offline<'a> {
    pub shadow: Shadow,
    candidates: &'a Candidates,
    guards: &'a mut [Guard],
}

impl Offline<'_> {
    /// Forecasts `request`. A fault trips the candidate's guard; with
    /// [`Retry::Never`] it is left out for the rest of the run, and once
    /// every candidate is left out the run stops.
    pub fn forecast(&mut self, request: &ForecastRequest) -> Result<Forecast, OriginFailure> {
        let now = Utc::now();
        let members = &self.candidates.members;
        let guards = &mut *self.guards;
        let tripped_before: Vec<bool> = guards.iter().map(Guard::tripped).collect();
        let answer = {
            let guards = std::cell::RefCell::new(&mut *guards);
            self.shadow.forecast_batched(
                request,
                None,
                &mut |i, r| guards.borrow_mut()[i].call(now, r, |r| members[i].model.forecast(r)),
                // The shadow origins' forecasts, each candidate's on a
                // thread of its own (oldest origin first, through its own
                // guard): a replay of a long history is mostly these, and
                // the candidates are independent of one another.
                &mut |requests, jobs| {
                    run_by_candidate(now, members, &mut guards.borrow_mut(), requests, jobs)
                },
            )
        };
        for (i, guard) in guards.iter().enumerate() {
            if let Some(fault) = guard.suspended(now)
                && !tripped_before[i]
                && members.len() > 1
            {
                tracing::warn!(candidate = %members[i].model.info().name, error = %fault,
                    "candidate left out for the rest of the run after a fault");
            }
        }
        answer.map_err(|e| {
            // Once every candidate is held back, no later origin can be
            // forecast: stop with the fault that did it.
            if guards.iter().all(Guard::tripped) {
                OriginFailure::Stop(e.to_string())
            } else {
                OriginFailure::Skip(e.to_string())
            }
        })
    }
}

/// Runs each `(origin, candidate)` job of a shadow update, the candidates
/// side by side on scoped threads (a candidate's own jobs in order, through
/// its guard), answering in the jobs' order.
fn run_by_candidate(
    now: chrono::DateTime<Utc>,
    members: &[Candidate],
    guards: &mut [Guard],
    requests: &[ForecastRequest],
    jobs: &[(usize, usize)],
) -> Vec<Result<Forecast, ModelCallError>> {
    let mut answers: Vec<Option<Result<Forecast, ModelCallError>>> = vec![None; jobs.len()];
    std::thread::scope(|scope| {
        let running: Vec<_> = guards
            .iter_mut()
            .zip(members)
            .enumerate()
            .filter_map(|(i, (guard, member))| {
                let mine: Vec<(usize, usize)> = jobs
                    .iter()
                    .enumerate()
                    .filter(|(_, job)| job.1 == i)
                    .map(|(k, job)| (k, job.0))
                    .collect();
                (!mine.is_empty()).then(|| {
                    scope.spawn(move || {
                        mine.into_iter()
                            .map(|(k, o)| {
                                let answer =
                                    guard.call(now, &requests[o], |r| member.model.forecast(r));
                                (k, answer)
                            })
                            .collect::<Vec<_>>()
                    })
                })
            })
            .collect();
        for thread in running {
            let done = thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            for (k, answer) in done {
                answers[k] = Some(answer);
            }
        }
    });
    answers
        .into_iter()
        .map(|a| a.expect("every job was run"))
        .collect()
}
