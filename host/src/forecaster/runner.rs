//! One workload's loop: take or renew the lease, collect what is new,
//! forecast, plan, publish.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use prometheus::{Counter, HistogramVec, IntCounter};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::pool::{Lane, ModelPool};
use super::window::HistoryWindow;
use super::{DEFAULT_LEVELS, LIVE_ERROR_WINDOW, Shared, Slots, lease_ttl};
use crate::collect::Source;
use crate::collect::prometheus::CollectError;
use crate::config::WorkloadConfig;
use crate::live_error::LiveErrorTracker;
use crate::model::{ForecastRequest, Guard, ModelCallError, Retry};
use crate::shadow::{Selection, Shadow, ShadowConfig};
use crate::sizing::{Chooser, Sizing, SizingChoice, SizingRule};
use crate::store::lease::LeaseStore;
use crate::store::redis::StoreError;
use crate::store::{Band, Failure, ModelRef, Snapshot, Stage, Status};
use crate::telemetry::Metrics;
use crate::trail::{LeadForecast, OriginPlan, SharedTrail, Trail};

/// What a workload keeps of its calls to its models: the shadow evaluation
/// and, per candidate, the breaker and plausibility check.
struct Calls {
    shadow: Shadow,
    guards: Vec<Guard>,
    /// Per candidate: its calls and the seconds they took, as metrics.
    meters: Vec<(IntCounter, Counter)>,
}

impl Calls {
    fn new(config: &WorkloadConfig, pools: &[Arc<ModelPool>], metrics: &Metrics) -> Self {
        let mut shadow = ShadowConfig::for_horizon(config.horizon_steps(), config.window_points());
        shadow.calibrate = config.calibrate;
        shadow.phase = config.phase_seconds();
        shadow.stagger = config.stagger();
        shadow.hold_costly = true;
        shadow.spare_costly = true;
        shadow.warm_widths = false;
        // Only an objective needs the replay of every sizing level.
        if matches!(config.policy.sizing, Sizing::Objective(_)) {
            shadow.sizing = Some(config.replay());
        }
        let names: Vec<String> = pools
            .iter()
            .map(|p| p.model().info().name.clone())
            .collect();
        let meters = names
            .iter()
            .map(|name| {
                let labels = [config.name.as_str(), name.as_str()];
                (
                    metrics.model_calls_total.with_label_values(&labels),
                    metrics.model_call_seconds_total.with_label_values(&labels),
                )
            })
            .collect();
        let guards = pools
            .iter()
            .map(|p| {
                Guard::new(
                    p.model().label(),
                    Retry::for_interval(config.interval),
                    config.max_forecast_ratio,
                )
            })
            .collect();
        Self {
            shadow: Shadow::new(names, shadow),
            guards,
            meters,
        }
    }
}

/// Failure reasons of the runner's own, beside its errors' labels.
const NO_DATA: &str = "no_data";
const PANIC: &str = "panic";
const PLAN: &str = "plan";

/// Every (stage, reason) a tick can fail with: the label sets of
/// `kedastral_errors_total`, each at 0 from start-up, so that a rate or an
/// alert sees a workload's first failure.
fn failure_labels() -> Vec<(Stage, &'static str)> {
    let of = |stage: Stage, labels: &[&'static str]| {
        labels.iter().map(move |&l| (stage, l)).collect::<Vec<_>>()
    };
    [
        of(Stage::Collect, CollectError::METRIC_LABELS),
        of(Stage::Collect, &[NO_DATA]),
        of(Stage::Model, ModelCallError::METRIC_LABELS),
        of(Stage::Model, &[PANIC]),
        of(Stage::Capacity, &[PLAN]),
        of(Stage::Store, StoreError::METRIC_LABELS),
    ]
    .concat()
}

/// Most new shadow origins each candidate forecasts per tick, so a warm
/// start costs a few model calls per workload rather than a scoring
/// window's worth; the evaluation fills up over the first ticks. Until the
/// origins the bands are calibrated on are judged, up to as many again.
const SHADOW_BUDGET: usize = 4;

/// The same on a workload's first tick, when every workload of a starting
/// forecaster forecasts at once: one origin, so the warm start costs about
/// a forecast per candidate and workload.
const FIRST_SHADOW_BUDGET: usize = 1;

pub struct Runner {
    config: Arc<WorkloadConfig>,
    model: ModelRef,
    /// The model, or for `auto` every candidate.
    pools: Vec<Arc<ModelPool>>,
    /// Scores the candidates, calibrates the bands and guards the calls.
    /// `None` while a forecast runs with it off the async threads.
    calls: Option<Calls>,
    source: Source,
    leases: Option<Arc<dyn LeaseStore>>,
    slots: Slots,
    shared: Arc<Shared>,
    /// The history window and what the web view draws: shared with the
    /// workload's status on the board.
    trail: SharedTrail,
    tracker: LiveErrorTracker,
    levels: Vec<f64>,
    /// The latest snapshot this runner computed or followed.
    snapshot: Option<Arc<Snapshot>>,
    /// The latest computed snapshot has not reached Redis yet.
    unsaved: bool,
    holds_lease: bool,
    /// Failures this tick; the last one is shown by the API.
    failures: Vec<Failure>,
    /// The previous tick's failures, as (component, reason): one that
    /// comes again is logged at debug only, so a log shows each change.
    failed_before: Vec<(Stage, &'static str)>,
    /// This tick found nothing new to forecast: it says nothing of whether
    /// the failures before it are over.
    idle: bool,
    /// The level for the workload's objective, if it sizes to one.
    chooser: Option<Chooser>,
    /// Replicas planned per step time, by the latest plan that covered it:
    /// the recent past's are kept for the scale-down stabilisation window.
    planned: Planned,
    /// (step time, replicas) planned for the time pods asked for then are
    /// ready, until its observation tells the chooser whether it was short.
    commitments: std::collections::VecDeque<(i64, u32)>,
    /// The model's last forecast, whole, while its refresh is not due.
    held: Option<Held>,
    /// Each pool's generation the evaluation judged: a new version of a
    /// model is judged afresh.
    generations: Vec<u64>,
}

/// A forecast the model made at `origin` (the last point it read), over
/// the horizon and the steps it is served for after.
struct Held {
    origin: i64,
    forecast: crate::model::Forecast,
    selection: Selection,
}

/// `len` steps of `forecast` from step `from`, bands included.
fn steps_of(forecast: &crate::model::Forecast, from: usize, len: usize) -> crate::model::Forecast {
    let cut = |values: &[f64]| values.iter().skip(from).take(len).copied().collect();
    crate::model::Forecast {
        values: cut(&forecast.values),
        quantiles: forecast
            .quantiles
            .iter()
            .map(|b| crate::model::QuantileBand {
                level: b.level,
                values: cut(&b.values),
            })
            .collect(),
    }
}

impl Runner {
    /// A runner for the workload of `status` (its config, model and trail).
    pub(super) fn new(
        status: &Status,
        pools: Vec<Arc<ModelPool>>,
        source: Source,
        leases: Option<Arc<dyn LeaseStore>>,
        slots: Slots,
        shared: Arc<Shared>,
    ) -> Self {
        let config = status.config.clone();
        let model = status.model.clone();
        let mut levels = DEFAULT_LEVELS.to_vec();
        if let Some(level) = config.policy.quantile_level() {
            levels.push(level);
        }
        levels.sort_by(f64::total_cmp);
        levels.dedup_by(|a, b| (*a - *b).abs() < 1e-12);
        let chooser = match config.policy.sizing {
            Sizing::Objective(target) => Some(Chooser::new(target)),
            _ => None,
        };
        let generations = pools.iter().map(|p| p.generation()).collect();
        let runner = Self {
            calls: Some(Calls::new(&config, &pools, &shared.metrics)),
            tracker: LiveErrorTracker::new(config.lead_steps(), LIVE_ERROR_WINDOW),
            trail: status.trail.clone(),
            config,
            model,
            pools,
            source,
            leases,
            slots,
            shared,
            levels,
            snapshot: None,
            unsaved: false,
            holds_lease: false,
            failures: Vec::new(),
            failed_before: Vec::new(),
            idle: false,
            chooser,
            planned: Planned::default(),
            commitments: std::collections::VecDeque::new(),
            held: None,
            generations,
        };
        runner.show_start();
        runner
    }

    /// Every series of the workload that has a true value before its first
    /// tick, so `/metrics` shows them from start-up: counters and histograms
    /// at zero, no forecast yet (stale), no live comparisons, no candidate
    /// served, bands not calibrated.
    fn show_start(&self) {
        let metrics = &self.shared.metrics;
        let labels = self.labels();
        for (stage, reason) in failure_labels() {
            metrics
                .errors_total
                .with_label_values(&[labels[0], labels[1], stage.label(), reason]);
        }
        metrics.model_switches_total.with_label_values(&[labels[0]]);
        for histogram in [
            &metrics.collect_seconds,
            &metrics.predict_seconds,
            &metrics.capacity_seconds,
            &metrics.tick_seconds,
        ] {
            histogram.with_label_values(&labels);
        }
        metrics.forecast_stale.with_label_values(&labels).set(1.0);
        metrics
            .lease_held
            .with_label_values(&labels)
            .set(if self.leases.is_none() { 1.0 } else { 0.0 });
        metrics
            .live_error_comparisons
            .with_label_values(&labels)
            .set(0.0);
        metrics
            .live_error_lead_seconds
            .with_label_values(&labels)
            .set(self.config.lead_time.as_secs_f64());
        metrics.bands_calibrated.with_label_values(&labels).set(0.0);
        let start = SizingChoice::new(
            self.config.policy.sizing,
            self.config.reactive_floor,
            self.config.pod_start_delay.as_secs(),
            None,
        );
        for rule in SizingRule::ALL {
            metrics
                .sizing_rule
                .with_label_values(&[labels[0], rule.label()])
                .set(f64::from(u8::from(rule == start.rule)));
        }
        if let Sizing::Objective(target) = self.config.policy.sizing {
            metrics
                .sizing_target_shortfall
                .with_label_values(&labels)
                .set(target);
        }
        for pool in &self.pools {
            metrics
                .candidate_served
                .with_label_values(&[labels[0], pool.model().info().name.as_str()])
                .set(0.0);
        }
        if self.pools.len() > 1 {
            metrics
                .candidate_served
                .with_label_values(&[labels[0], crate::shadow::COMBINED])
                .set(0.0);
        }
    }

    fn name(&self) -> &str {
        &self.config.name
    }

    pub(super) fn config(&self) -> &Arc<WorkloadConfig> {
        &self.config
    }

    /// Reads the history window.
    fn history<T>(&self, read: impl FnOnce(&HistoryWindow) -> T) -> T {
        read(&self.trail.read().expect("trail lock").history)
    }

    fn note(&self, write: impl FnOnce(&mut Trail)) {
        write(&mut self.trail.write().expect("trail lock"));
    }

    fn labels(&self) -> [&str; 2] {
        [self.config.name.as_str(), self.model.name.as_str()]
    }

    /// Records the time since `started` in one of the stage histograms.
    fn timed(&self, histogram: impl FnOnce(&Metrics) -> &HistogramVec, started: Instant) {
        histogram(&self.shared.metrics)
            .with_label_values(&self.labels())
            .observe(started.elapsed().as_secs_f64());
    }

    /// Ticks at once (the warm start), then every interval, until
    /// `shutdown`; then gives up the lease.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let clock = self.shared.clock;
        let period = clock.wall_duration(self.config.interval);
        // Later ticks are spread over the interval by the workload's name,
        // so a thousand workloads do not all query at the same instant.
        let phase = period.mul_f64(phase_of(&self.config.name));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
        // After a tick longer than the interval, wait a whole interval
        // rather than catch up with a burst of ticks.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut first = true;
        loop {
            if !first {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ticker.tick() => {}
                }
            }
            first = false;
            // Shutdown cuts a tick short (a slow Prometheus, a queue for a
            // model slot), so the lease is given up within the deadline.
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.tick(clock.now()) => {}
            }
        }
        // Given up even if the last renewal looked failed: Redis checks
        // that this replica is the holder.
        if let Some(store) = &self.leases
            && let Err(e) = store.release_lease(&self.config.name).await
        {
            tracing::warn!(workload = %self.config.name, error = %e, "could not release the lease");
        }
    }

    /// One round at `now`.
    pub async fn tick(&mut self, now: DateTime<Utc>) {
        let started = Instant::now();
        self.failures.clear();
        self.idle = false;
        let computing = self.take_lease().await;
        if computing {
            self.compute(now).await;
            self.save().await;
            self.give_up_if_failing(now).await;
        } else {
            // Only a computing replica writes; what it followed is already
            // in Redis.
            self.unsaved = false;
            self.follow().await;
        }
        self.finish_tick(now, computing);
        self.timed(|m| &m.tick_seconds, started);
    }

    /// A holder that failed to compute and has nothing fresh gives its lease
    /// up, so a replica that can reach the data takes the workload over
    /// instead of everyone serving a stale forecast.
    async fn give_up_if_failing(&mut self, now: DateTime<Utc>) {
        let Some(store) = &self.leases else { return };
        let computed = !self
            .failures
            .iter()
            .any(|f| matches!(f.component, Stage::Collect | Stage::Model | Stage::Capacity));
        let half = self.config.stale_after / 2;
        let fresh = self
            .snapshot
            .as_ref()
            .is_some_and(|s| !s.is_stale(now, half));
        if computed || fresh || !self.holds_lease {
            return;
        }
        match store.release_lease(&self.config.name).await {
            Ok(()) => {
                tracing::warn!(workload = %self.config.name, "cannot compute a fresh forecast; lease given up for another replica");
                self.holds_lease = false;
            }
            Err(e) => self.fail(Stage::Store, e.metric_label(), e.to_string()),
        }
    }

    /// Whether this replica computes the workload this tick.
    async fn take_lease(&mut self) -> bool {
        let Some(store) = self.leases.clone() else {
            return true;
        };
        match store
            .acquire_lease(&self.config.name, lease_ttl(&self.config))
            .await
        {
            Ok(held) => {
                if held != self.holds_lease {
                    tracing::info!(
                        workload = %self.config.name,
                        replica = store.replica(),
                        held,
                        "lease {}",
                        if held { "taken" } else { "held by another replica" }
                    );
                }
                self.holds_lease = held;
                held
            }
            Err(e) => {
                // Without Redis there is no one to share with: compute and
                // serve from memory until it is back.
                self.fail(Stage::Store, e.metric_label(), e.to_string());
                self.holds_lease = false;
                true
            }
        }
    }

    /// Serves what the lease holder wrote.
    async fn follow(&mut self) {
        let Some(store) = &self.leases else { return };
        match store.get(&self.config.name).await {
            Ok(Some(snapshot)) => {
                let newer = self
                    .snapshot
                    .as_ref()
                    .is_none_or(|s| s.computed_at != snapshot.computed_at);
                if newer {
                    self.publish(Arc::new(snapshot));
                }
            }
            Ok(None) => {}
            Err(e) => self.fail(Stage::Store, e.metric_label(), e.to_string()),
        }
    }

    async fn compute(&mut self, now: DateTime<Utc>) {
        let Some(new_data) = self.collect(now).await else {
            return;
        };
        if self.history(HistoryWindow::is_empty) || !(new_data || self.snapshot.is_none()) {
            self.idle = true;
            return;
        }
        let origin = self
            .history(HistoryWindow::last_time)
            .expect("checked above");
        let Some((forecast, selection, refreshed)) = self.fresh_or_held(now, origin).await else {
            return;
        };
        let started = Instant::now();
        let bands: Vec<(f64, &[f64])> = forecast
            .quantiles
            .iter()
            .map(|b| (b.level, b.values.as_slice()))
            .collect();
        let (sizing, chosen) = self.size(&forecast.values);
        let policy = &self.config.policy;
        let loads = match policy.loads(&forecast.values, &bands, chosen.as_deref()) {
            Ok(loads) => loads,
            Err(e) => {
                self.timed(|m| &m.capacity_seconds, started);
                self.fail(Stage::Capacity, PLAN, e.to_string());
                return;
            }
        };
        let last_observed = self.history(HistoryWindow::last_observed);
        let reactive_replicas = last_observed.map(|v| policy.replicas_now(v));
        let step = i64::from(self.config.step_seconds());
        let first_step = origin + step;
        let planned = policy.plan(&loads, None);
        let floor = reactive_replicas.filter(|_| self.config.reactive_floor);
        let desired = self.planned.hold(
            first_step,
            step,
            &planned,
            floor,
            self.config.scale_down_stabilization.as_secs() as i64,
        );
        self.timed(|m| &m.capacity_seconds, started);
        self.show_sizing(&sizing);
        self.commit(first_step, step, &desired);
        let snapshot = Snapshot {
            workload: self.config.name.clone(),
            metric: self.config.metric.clone(),
            model: self.model_ref(),
            generated_at: DateTime::from_timestamp(origin, 0).unwrap_or(now),
            computed_at: now,
            step_seconds: self.config.step_seconds(),
            horizon: self.config.horizon_steps(),
            values: forecast.values,
            quantiles: forecast
                .quantiles
                .into_iter()
                .map(|b| Band {
                    level: b.level,
                    values: b.values,
                })
                .collect(),
            desired_replicas: desired,
            last_observed,
            reactive_replicas,
            stale_after_seconds: self.config.stale_after.as_secs(),
            lead_time_seconds: self.config.lead_time.as_secs(),
            selection: Some(selection),
            sizing: Some(sizing),
            sizing_loads: loads,
            reactive_floor: self.config.reactive_floor,
            refreshed_at: DateTime::from_timestamp(refreshed, 0),
        };
        self.tracker
            .record_forecast(origin, snapshot.step_seconds, &snapshot.values);
        self.note_plan(&snapshot, origin);
        self.unsaved = self.leases.is_some();
        self.publish(Arc::new(snapshot));
    }

    /// Fetches what is new: the whole window the first time (or after a gap
    /// longer than the window), else the points after the newest one held.
    /// `None` on failure, else whether new points arrived.
    async fn collect(&mut self, now: DateTime<Utc>) -> Option<bool> {
        let step = i64::from(self.config.step_seconds());
        let end = now.timestamp().div_euclid(step) * step;
        let span = (self.config.window_points() as i64 - 1) * step;
        // The newest point held is asked for again: Prometheus may have
        // answered it from a partial scrape or an old evaluation last time.
        let last = self.history(HistoryWindow::last_time);
        let start = match last {
            Some(last) if last >= end - span => last,
            _ => end - span,
        };
        if start > end {
            return Some(false);
        }
        let slot = self
            .slots
            .collect
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let started = Instant::now();
        let fetched = self
            .source
            .range(
                &self.config.prom_query,
                start,
                end,
                self.config.step_seconds(),
            )
            .await;
        drop(slot);
        self.timed(|m| &m.collect_seconds, started);
        let samples = match fetched {
            Ok(s) => s,
            Err(e) => {
                self.fail(Stage::Collect, e.metric_label(), e.to_string());
                return None;
            }
        };
        if samples.is_empty() && last.is_none() {
            self.fail(
                Stage::Collect,
                NO_DATA,
                format!(
                    "the query returned no samples from {} to {}",
                    show_time(start),
                    show_time(end)
                ),
            );
            return None;
        }
        let newest = {
            let mut trail = self.trail.write().expect("trail lock");
            trail.history.merge(&samples);
            trail.history.last_time()
        };
        if let Some(last) = newest
            && last < end - 2 * step
        {
            // Not fatal (the last forecast stands until stale), but say why
            // it is ageing: a query that returns nothing, as a rate over
            // series that vanished when the workload scaled to zero does.
            self.fail(
                Stage::Collect,
                NO_DATA,
                format!(
                    "no sample since {}; the query returns nothing for later times \
                     (append `or vector(0)` to keep a series when there is no load)",
                    show_time(last)
                ),
            );
        }
        for &(time, value) in &samples {
            self.tracker
                .observe(time, value, self.config.step_seconds());
            self.judge(time, value);
        }
        if let Some(&(_, value)) = samples.last() {
            self.shared
                .metrics
                .observed_value
                .with_label_values(&self.labels())
                .set(value);
        }
        Some(newest != last)
    }

    /// The forecast from `origin` on: the held one shifted, while the
    /// workload's refresh is not due since it was made, else a new one.
    /// With the origin the model forecast from.
    async fn fresh_or_held(
        &mut self,
        now: DateTime<Utc>,
        origin: i64,
    ) -> Option<(crate::model::Forecast, Selection, i64)> {
        self.judge_new_versions();
        let step = i64::from(self.config.step_seconds()).max(1);
        let horizon = self.config.horizon_steps() as usize;
        let refresh = self.config.refresh.as_secs() as i64;
        // Due at every multiple of the refresh (in Unix time, so that with
        // a refresh dividing the shadow evaluation's spacing, a shadow
        // origin takes the forecast served from the same history rather
        // than calling the model again): held while both origins fall in
        // one period, hence never longer than a refresh.
        let phase = self.config.phase_seconds();
        let period = |t: i64| (t + step - phase).div_euclid(refresh.max(1));
        if let Some(held) = &self.held
            && origin >= held.origin
            && period(origin) == period(held.origin)
        {
            let shift = ((origin - held.origin) / step) as usize;
            let forecast = steps_of(&held.forecast, shift, horizon);
            return Some((forecast, held.selection.clone(), held.origin));
        }
        let (forecast, selection) = self.forecast(now).await?;
        if refresh == 0 {
            // Asked for the horizon alone: served as it came.
            self.held = None;
            return Some((forecast, selection, origin));
        }
        let served = steps_of(&forecast, 0, horizon);
        self.held = Some(Held {
            origin,
            forecast,
            selection: selection.clone(),
        });
        Some((served, selection, origin))
    }

    /// After a model was swapped for a new version, its old errors no
    /// longer describe it: the shadow evaluation, the calibration and the
    /// breakers start afresh, and a forecast held from the old version is
    /// dropped.
    fn judge_new_versions(&mut self) {
        let now: Vec<u64> = self.pools.iter().map(|p| p.generation()).collect();
        if now == self.generations {
            return;
        }
        let swapped: Vec<String> = self
            .pools
            .iter()
            .zip(&self.generations)
            .filter(|(p, g)| p.generation() != **g)
            .map(|(p, _)| p.model().info().name.clone())
            .collect();
        tracing::info!(workload = %self.config.name, models = ?swapped,
            "a new version of a model is served; its evaluation starts afresh");
        self.generations = now;
        self.calls = Some(Calls::new(&self.config, &self.pools, &self.shared.metrics));
        self.held = None;
    }

    /// The name, version and hash forecasts are published under: the
    /// model's own as loaded now, or `auto`'s.
    fn model_ref(&self) -> ModelRef {
        match &self.pools[..] {
            [only] => {
                let model = only.model();
                ModelRef {
                    name: model.info().name.clone(),
                    version: model.info().version.clone(),
                    content_hash: Some(model.content_hash().to_owned()),
                }
            }
            _ => self.model.clone(),
        }
    }

    /// The served forecast and the shadow evaluation behind it.
    async fn forecast(
        &mut self,
        now: DateTime<Utc>,
    ) -> Option<(crate::model::Forecast, Selection)> {
        let request = ForecastRequest {
            history: self.history(HistoryWindow::series),
            horizon: self.config.model_horizon_steps(),
            quantiles: self.levels.clone(),
            params: self.config.params.clone(),
        };
        let started = Instant::now();
        let pools = self.pools.clone();
        // Missing only if an earlier forecast was dropped mid-call (a tick
        // cut short): start the evaluation afresh rather than fail.
        let mut calls = self
            .calls
            .take()
            .unwrap_or_else(|| Calls::new(&self.config, &self.pools, &self.shared.metrics));
        let (only, suspect) = match &pools[..] {
            [pool] => (Some(pool.as_ref()), calls.guards[0].tripped()),
            _ => (None, false),
        };
        let mut lane = if calls.guards.iter().all(|g| g.suspended(now).is_some()) {
            Lane::idle(self.slots.model.clone())
        } else {
            Lane::take(self.slots.model.clone(), only, suspect).await
        };
        let answer = tokio::task::spawn_blocking(move || {
            let Calls {
                shadow,
                guards,
                meters,
            } = &mut calls;
            // The first fault of each candidate this tick: if it opened the
            // breaker on a shadow origin, the served call is only held back,
            // and the fault is what the tick failed of.
            let mut faults: Vec<Option<ModelCallError>> = vec![None; guards.len()];
            // After the first, a call forecasts twice as many while the
            // bands and the objective wait for judged origins: with a
            // refresh every half horizon (auto's default), four a call left
            // a workload uncalibrated until its fifth refresh; all twelve
            // at once made the worst tick of a starting fleet half as
            // costly again (BENCHMARKS.md).
            let budget = if shadow.is_empty() {
                FIRST_SHADOW_BUDGET
            } else {
                SHADOW_BUDGET + shadow.judged_short().min(SHADOW_BUDGET)
            };
            let answer = shadow.forecast(&request, Some(budget), &mut |i, r| {
                let suspect = guards[i].tripped();
                let answer = guards[i].call(now, r, |r| {
                    let mut ran = None;
                    let answer = pools[i].forecast(r, &mut lane, suspect, &mut ran);
                    if let Some(took) = ran {
                        meters[i].0.inc();
                        meters[i].1.inc_by(took.as_secs_f64());
                    }
                    answer
                });
                if let Err(e) = &answer
                    && e.is_fault()
                {
                    faults[i].get_or_insert_with(|| e.clone());
                }
                answer
            });
            let answer = answer.map_err(|e| match e {
                ModelCallError::Suspended { .. } => faults
                    .into_iter()
                    .flatten()
                    .find(|f| f.model() == e.model())
                    .unwrap_or(e),
                other => other,
            });
            (calls, answer)
        })
        .await;
        self.timed(|m| &m.predict_seconds, started);
        match answer {
            Ok((calls, answer)) => {
                let selection = calls.shadow.selection();
                if self.pools.len() > 1
                    && let Some(origin) = self.history(HistoryWindow::last_time)
                {
                    let weights: Vec<(String, Option<f64>)> = selection
                        .candidates
                        .iter()
                        .filter(|c| c.name != crate::shadow::COMBINED)
                        .map(|c| (c.name.clone(), c.weight))
                        .collect();
                    self.note(|t| t.note_weights(origin, &weights, selection.leader.as_deref()));
                }
                self.calls = Some(calls);
                self.show_selection(&selection);
                match answer {
                    Ok(forecast) => Some((forecast, selection)),
                    Err(e) => {
                        self.fail(Stage::Model, e.metric_label(), e.to_string());
                        None
                    }
                }
            }
            Err(e) => {
                // Only a panic in the host's own code lands here; start
                // the evaluation afresh.
                self.calls = Some(Calls::new(&self.config, &self.pools, &self.shared.metrics));
                self.fail(Stage::Model, PANIC, e.to_string());
                None
            }
        }
    }

    /// How this forecast is sized, and for an objective the chosen level's
    /// band around `point` (`None` while warming up).
    fn size(&mut self, point: &[f64]) -> (SizingChoice, Option<Vec<f64>>) {
        let Some(calls) = self.calls.as_ref() else {
            let config = &self.config;
            let choice = SizingChoice::new(
                config.policy.sizing,
                config.reactive_floor,
                config.pod_start_delay.as_secs(),
                None,
            );
            return (choice, None);
        };
        let before = self.chooser.as_ref().and_then(Chooser::level);
        // The first choice starts where serving the history would have
        // left the objective's target.
        if let Some(chooser) = self.chooser.as_mut().filter(|c| c.level().is_none())
            && calls.shadow.sizing_curve().is_some()
        {
            let history = self.trail.read().expect("trail lock").history.series();
            calls.shadow.warm_chooser(chooser, &history);
            chooser.forget_changes();
        }
        let sized = calls.shadow.size(
            self.config.policy.sizing,
            self.chooser.as_mut(),
            self.config.reactive_floor,
            self.config.pod_start_delay.as_secs(),
            point,
        );
        let after = sized.0.level;
        if before.is_some() && before != after {
            tracing::info!(workload = %self.config.name, from = before, to = after,
                recent_shortfall = sized.0.recent_shortfall,
                "sizing on another quantile level to meet the objective");
        }
        sized
    }

    /// Keeps what this plan asks for at the step its new pods serve first,
    /// for an objective to learn whether that was enough.
    fn commit(&mut self, first: i64, step: i64, desired: &[u32]) {
        if self.chooser.is_none() || desired.is_empty() {
            return;
        }
        let k = self.config.replay().delay_steps.min(desired.len() - 1);
        let time = first + k as i64 * step;
        while self.commitments.back().is_some_and(|&(t, _)| t >= time) {
            self.commitments.pop_back();
        }
        self.commitments.push_back((time, desired[k]));
    }

    /// An observation judges the commitment for its time: short when the
    /// load needed more pods than were planned for it.
    fn judge(&mut self, time: i64, value: f64) {
        let Some(chooser) = self.chooser.as_mut() else {
            return;
        };
        let half = i64::from(self.config.step_seconds()) / 2;
        while let Some(&(t, replicas)) = self.commitments.front() {
            if t < time - half {
                self.commitments.pop_front();
            } else if t <= time + half {
                self.commitments.pop_front();
                if value.is_finite() {
                    let target = self.config.policy.target_per_pod;
                    let needed = crate::capacity::replicas_for_load(value, target).max(1.0);
                    chooser.observe(f64::from(replicas) < needed);
                }
            } else {
                break;
            }
        }
    }

    /// The sizing, as metrics.
    fn show_sizing(&self, sizing: &SizingChoice) {
        let metrics = &self.shared.metrics;
        let labels = self.labels();
        for rule in SizingRule::ALL {
            metrics
                .sizing_rule
                .with_label_values(&[labels[0], rule.label()])
                .set(f64::from(u8::from(rule == sizing.rule)));
        }
        if let Some(level) = sizing.level {
            metrics.sizing_level.with_label_values(&labels).set(level);
        }
        if let Some(share) = sizing.recent_shortfall {
            metrics
                .sizing_recent_shortfall
                .with_label_values(&labels)
                .set(share);
        }
    }

    /// Notes for the web view what this origin's forecast said at the lead
    /// time and what its plan asked for.
    fn note_plan(&self, snapshot: &Snapshot, origin: i64) {
        let lead = self.config.lead_steps();
        let at_lead = |level: fn(f64, f64) -> bool| {
            let band = snapshot
                .quantiles
                .iter()
                .reduce(|a, b| if level(b.level, a.level) { b } else { a })?;
            band.values.get(lead - 1).copied()
        };
        let reading = crate::scaler::decision::Reading {
            lead_time: self.config.lead_time,
            stale_after: self.config.stale_after,
            activation_threshold: 0.0,
            hybrid: self.config.reactive_floor,
        };
        let told = crate::scaler::decision::decide(snapshot, snapshot.generated_at, &reading)
            .ok()
            .map(|d| d.replicas);
        let step = i64::from(snapshot.step_seconds);
        let single = |v: Option<f64>| v.map_or(f32::NAN, |v| v as f32);
        let lead_forecast = snapshot.values.get(lead - 1).map(|&value| LeadForecast {
            time: origin + lead as i64 * step,
            value: value as f32,
            low: single(at_lead(|a, b| a < b)),
            high: single(at_lead(|a, b| a > b)),
        });
        let plan = snapshot
            .desired_replicas
            .first()
            .map(|&desired| OriginPlan {
                origin,
                desired,
                reactive: snapshot.reactive_replicas,
                told,
            });
        self.note(|t| {
            if let Some(f) = lead_forecast {
                t.note_lead(f);
            }
            if let Some(p) = plan {
                t.note_plan(p);
            }
        });
    }

    /// The shadow evaluation's scores and choice, as metrics; a change of
    /// the candidate served is logged.
    fn show_selection(&self, selection: &Selection) {
        let metrics = &self.shared.metrics;
        let name = self.config.name.as_str();
        for candidate in &selection.candidates {
            let labels = [name, candidate.name.as_str()];
            if let Some(mae) = candidate.mae {
                metrics.candidate_mae.with_label_values(&labels).set(mae);
            }
            metrics
                .candidate_served
                .with_label_values(&labels)
                .set(f64::from(u8::from(candidate.name == selection.chosen)));
            if let Some(weight) = candidate.weight {
                metrics
                    .candidate_weight
                    .with_label_values(&labels)
                    .set(weight);
            }
            if let Some(mae) = candidate.recent_mae {
                metrics
                    .candidate_recent_mae
                    .with_label_values(&labels)
                    .set(mae);
            }
        }
        let switches = metrics.model_switches_total.with_label_values(&[name]);
        if selection.switches > switches.get() {
            tracing::info!(workload = name, leader = ?selection.leader, "another candidate weighs most in the combination: its recent error is lowest");
            switches.inc_by(selection.switches - switches.get());
        }
        metrics
            .bands_calibrated
            .with_label_values(&self.labels())
            .set(f64::from(u8::from(selection.calibrated)));
    }

    /// Writes the computed snapshot to Redis, again on later ticks until it
    /// gets through.
    async fn save(&mut self) {
        if !self.unsaved {
            return;
        }
        let (Some(redis), Some(snapshot)) = (&self.leases, &self.snapshot) else {
            return;
        };
        match redis.put(snapshot).await {
            Ok(false) => {
                tracing::debug!(workload = %self.config.name, "another replica holds the lease; snapshot not written");
                self.unsaved = false;
            }
            Ok(true) => {
                if self.failed_before.iter().any(|(c, _)| *c == Stage::Store) {
                    tracing::info!(workload = %self.config.name, "snapshot written to Redis again");
                }
                self.unsaved = false;
            }
            Err(e) => self.fail(Stage::Store, e.metric_label(), e.to_string()),
        }
    }

    fn publish(&mut self, snapshot: Arc<Snapshot>) {
        let labels = self.labels();
        let metrics = &self.shared.metrics;
        if let Some(&v) = snapshot.values.first() {
            metrics.predicted_value.with_label_values(&labels).set(v);
        }
        for band in &snapshot.quantiles {
            if let Some(&v) = band.values.first() {
                metrics
                    .predicted_quantile
                    .with_label_values(&[labels[0], labels[1], &band.level.to_string()])
                    .set(v);
            }
        }
        if let Some(&r) = snapshot.desired_replicas.first() {
            metrics
                .desired_replicas
                .with_label_values(&labels)
                .set(f64::from(r));
        }
        let most = snapshot.desired_replicas.iter().copied().max().unwrap_or(0);
        metrics
            .desired_replicas_max
            .with_label_values(&labels)
            .set(f64::from(most));
        if self.snapshot.is_none() {
            tracing::info!(
                workload = %self.config.name,
                origin = %snapshot.generated_at,
                replicas = ?snapshot.desired_replicas.first(),
                "first forecast"
            );
        }
        self.snapshot = Some(snapshot);
    }

    fn fail(&mut self, component: Stage, reason: &'static str, message: String) {
        self.shared
            .metrics
            .error(self.name(), &self.model.name, component.label(), reason);
        let again = self
            .failed_before
            .iter()
            .any(|&(c, r)| c == component && same_trouble(r, reason));
        if again {
            tracing::debug!(workload = %self.config.name, component = component.label(), reason, %message, "failed again");
        } else {
            tracing::warn!(workload = %self.config.name, component = component.label(), reason, %message, "failed");
        }
        let failure = Failure {
            component,
            reason,
            message,
            at: Utc::now(),
        };
        self.note(|t| t.note_failure(failure.clone()));
        self.failures.push(failure);
    }

    fn finish_tick(&mut self, now: DateTime<Utc>, computing: bool) {
        let ok = self.failures.is_empty();
        if !(ok && self.idle) {
            if ok && !self.failed_before.is_empty() {
                tracing::info!(workload = %self.config.name, "recovered");
            }
            self.failed_before = self
                .failures
                .iter()
                .map(|f| (f.component, f.reason))
                .collect();
        }
        let summary = self.tracker.summary();
        let labels = self.labels();
        let metrics = &self.shared.metrics;
        metrics
            .lease_held
            .with_label_values(&labels)
            .set(if computing { 1.0 } else { 0.0 });
        metrics
            .live_error_lead_seconds
            .with_label_values(&labels)
            .set(self.config.lead_time.as_secs_f64());
        metrics
            .live_error_comparisons
            .with_label_values(&labels)
            .set(summary.comparisons as f64);
        let gauges = [
            (&metrics.live_error_mae, summary.mean_absolute_error),
            (
                &metrics.live_error_mape,
                summary.mean_absolute_percentage_error,
            ),
            (
                &metrics.live_under_forecast_ratio,
                summary.under_forecast_share,
            ),
        ];
        for (gauge, value) in gauges {
            if let Some(v) = value {
                gauge.with_label_values(&labels).set(v);
            }
        }
        let snapshot = self.snapshot.clone();
        let last_error = self.failures.last().cloned();
        let idle = ok && self.idle;
        self.shared
            .board
            .record(&self.config.name, snapshot.clone(), |status| {
                // A new version of a model swapped in shows as it is served.
                if let Some(s) = &snapshot {
                    status.model = s.model.clone();
                }
                status.live_error = summary;
                status.computing = computing;
                if !idle {
                    status.last_error = last_error;
                    if ok {
                        status.last_success = Some(now);
                    }
                }
            });
    }
}

/// Whether two failure reasons of one component are the same trouble for
/// the log: the same reason, or a model fault and the calls it holds back,
/// which alternate while a model backs off.
fn same_trouble(a: &str, b: &str) -> bool {
    a == b || (ModelCallError::is_fault_label(a) && ModelCallError::is_fault_label(b))
}

/// Where in the interval a workload's ticks fall, in [0, 1): a hash of its
/// name, so the spread is the same at every start.
fn phase_of(name: &str) -> f64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut hasher);
    (hasher.finish() % 10_000) as f64 / 10_000.0
}

fn show_time(t: i64) -> String {
    DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.to_rfc3339())
}

/// Replicas planned per step time, newest plan first: a scale-in is held
/// until no plan over the stabilisation window before a step wanted more,
/// as the HPA's scale-down stabilisation does with what it is told.
#[derive(Default)]
struct Planned {
    /// (step time, replicas), by time.
    steps: std::collections::VecDeque<(i64, u32)>,
}

impl Planned {
    /// Records `plan` (step `k` is for `first + k * step`), with the floor
    /// at the first step, and gives each step the most planned over the
    /// `window` seconds up to it.
    fn hold(
        &mut self,
        first: i64,
        step: i64,
        plan: &[u32],
        floor: Option<u32>,
        window: i64,
    ) -> Vec<u32> {
        while self.steps.back().is_some_and(|&(t, _)| t >= first) {
            self.steps.pop_back();
        }
        while self.steps.front().is_some_and(|&(t, _)| t < first - window) {
            self.steps.pop_front();
        }
        for (k, &replicas) in plan.iter().enumerate() {
            let replicas = if k == 0 {
                replicas.max(floor.unwrap_or(0))
            } else {
                replicas
            };
            self.steps.push_back((first + k as i64 * step, replicas));
        }
        (0..plan.len())
            .map(|k| {
                let t = first + k as i64 * step;
                self.steps
                    .iter()
                    .skip_while(|&&(s, _)| s < t - window)
                    .take_while(|&&(s, _)| s <= t)
                    .map(|&(_, r)| r)
                    .max()
                    .unwrap_or(plan[k])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Planned;

    #[test]
    fn a_scale_in_waits_out_the_stabilisation_window() {
        let mut planned = Planned::default();
        // At t=0 the plan wants 8 for the first step, then 2.
        assert_eq!(planned.hold(60, 60, &[8, 2, 2, 2], None, 120), [8, 8, 8, 2]);
        // A minute later the new plan wants 2 throughout: the 8 planned for
        // t=60 still holds t=120 and t=180.
        assert_eq!(
            planned.hold(120, 60, &[2, 2, 2, 2], None, 120),
            [8, 8, 2, 2]
        );
        // The floor counts as planned for the first step.
        assert_eq!(planned.hold(180, 60, &[2, 2, 2], Some(5), 0), [5, 2, 2]);
        // Without a window, the plan as it is.
        let mut fresh = Planned::default();
        assert_eq!(fresh.hold(60, 60, &[8, 2, 3], None, 0), [8, 2, 3]);
    }
}
