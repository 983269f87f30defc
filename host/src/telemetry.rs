//! The forecaster's Prometheus metrics.
//!
//! Labels stay bounded: `workload` and `model` come from the configuration,
//! `component` and `reason` from the errors' `metric_label()`s. Gauges that
//! depend on the clock (forecast age, staleness) are set when `/metrics` is
//! scraped, so they are never older than the scrape.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{
    CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry,
    TextEncoder,
};

use crate::store::Board;

/// A Prometheus registry that remembers every family registered in it:
/// `gather` leaves out vectors with no series yet, and a dashboard or an
/// alert may refer to any of them, so [`Self::encode`] writes their `HELP`
/// and `TYPE` lines from the first scrape.
#[derive(Clone, Default)]
pub struct NamedRegistry {
    registry: Registry,
    /// Every family as it was registered (no series).
    families: Arc<Mutex<Vec<MetricFamily>>>,
    /// Workloads removed by a configuration reload: their series are left
    /// out of the exposition (kept, so a workload added back under its name
    /// goes on counting where it was).
    retired: Arc<Mutex<std::collections::HashSet<String>>>,
}

impl NamedRegistry {
    /// Registers `collector`; a name registered twice is a programming error.
    pub fn register<C: Collector + Clone + 'static>(&self, collector: &C) {
        let mut families = self.families.lock().expect("families lock");
        families.extend(collector.collect().into_iter().map(|mut f| {
            f.take_metric();
            f
        }));
        self.registry
            .register(Box::new(collector.clone()))
            .expect("unique metric");
    }

    /// Every metric family registered, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .families
            .lock()
            .expect("families lock")
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        names.sort();
        names
    }

    /// The text exposition format: every family, those without a series
    /// yet as their `HELP` and `TYPE` lines alone.
    /// Leaves `workload`'s series out of the exposition.
    pub fn retire(&self, workload: &str) {
        self.retired
            .lock()
            .expect("retired lock")
            .insert(workload.to_owned());
    }

    /// Shows `workload`'s series again.
    pub fn revive(&self, workload: &str) {
        self.retired.lock().expect("retired lock").remove(workload);
    }

    pub fn encode(&self) -> String {
        let mut gathered = self.registry.gather();
        {
            let retired = self.retired.lock().expect("retired lock");
            if !retired.is_empty() {
                for family in &mut gathered {
                    family.mut_metric().retain(|m| {
                        !m.get_label()
                            .iter()
                            .any(|l| l.name() == "workload" && retired.contains(l.value()))
                    });
                }
                gathered.retain(|f| !f.get_metric().is_empty());
            }
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&gathered, &mut out)
            .expect("text encoding into a Vec cannot fail");
        let mut text = String::from_utf8(out).expect("the text format is UTF-8");
        for family in self.families.lock().expect("families lock").iter() {
            if !gathered.iter().any(|g| g.name() == family.name()) {
                // Our help texts hold no backslash or newline to escape.
                let kind = format!("{:?}", family.get_field_type()).to_lowercase();
                let name = family.name();
                text.push_str(&format!(
                    "# HELP {name} {}\n# TYPE {name} {kind}\n",
                    family.help()
                ));
            }
        }
        text
    }
}

/// Buckets for collection, model and planning times: 100 µs to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

#[derive(Clone)]
pub struct Metrics {
    registry: NamedRegistry,
    /// The point forecast for the next step.
    pub predicted_value: GaugeVec,
    /// Each quantile band for the next step.
    pub predicted_quantile: GaugeVec,
    /// The latest value collected.
    pub observed_value: GaugeVec,
    /// Desired replicas for the next step.
    pub desired_replicas: GaugeVec,
    /// Desired replicas, highest over the whole horizon.
    pub desired_replicas_max: GaugeVec,
    pub forecast_age_seconds: GaugeVec,
    pub forecast_stale: GaugeVec,
    pub collect_seconds: HistogramVec,
    pub predict_seconds: HistogramVec,
    pub capacity_seconds: HistogramVec,
    /// A whole tick, from its start to the snapshot published.
    pub tick_seconds: HistogramVec,
    pub errors_total: IntCounterVec,
    pub lease_held: GaugeVec,
    pub live_error_mae: GaugeVec,
    pub live_error_mape: GaugeVec,
    pub live_under_forecast_ratio: GaugeVec,
    pub live_error_comparisons: GaugeVec,
    pub live_error_lead_seconds: GaugeVec,
    pub candidate_mae: GaugeVec,
    pub candidate_served: GaugeVec,
    pub candidate_weight: GaugeVec,
    pub candidate_recent_mae: GaugeVec,
    pub model_switches_total: IntCounterVec,
    /// Forecast calls of each model (for `auto`, each candidate), served
    /// and shadow alike, and the time they took.
    pub model_calls_total: IntCounterVec,
    pub model_call_seconds_total: CounterVec,
    /// Files of the models directory loaded, refused or removed since
    /// start-up, by `result`.
    pub model_reloads_total: IntCounterVec,
    /// Readings of `--config` after start-up, by `result`.
    pub config_reloads_total: IntCounterVec,
    pub bands_calibrated: GaugeVec,
    /// 1 for the sizing rule in force, 0 for the others.
    pub sizing_rule: GaugeVec,
    pub sizing_level: GaugeVec,
    pub sizing_recent_shortfall: GaugeVec,
    pub sizing_target_shortfall: GaugeVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = NamedRegistry::default();
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(&g);
            g
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(SECONDS_BUCKETS.to_vec()),
                labels,
            )
            .expect("valid metric");
            registry.register(&h);
            h
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(&c);
            c
        };
        let wm = &["workload", "model"];
        let errors_total = counter(
            "kedastral_errors_total",
            "Failures by workload, model, component (collect, model, capacity, store) and reason.",
            &["workload", "model", "component", "reason"],
        );
        let model_switches_total = counter(
            "kedastral_model_switches_total",
            "Times the candidate with the largest weight in auto's combination changed.",
            &["workload"],
        );
        let model_calls_total = counter(
            "kedastral_model_calls_total",
            "Forecast calls by workload and model (each candidate of auto), for the forecast served and the shadow evaluation alike.",
            wm,
        );
        let model_call_seconds_total = CounterVec::new(
            Opts::new(
                "kedastral_model_call_seconds_total",
                "Time models ran in forecast calls (not counting the wait for a slot), by workload and model: what each candidate of auto costs.",
            ),
            wm,
        )
        .expect("valid metric");
        registry.register(&model_call_seconds_total);
        let model_reloads_total = counter(
            "kedastral_model_reloads_total",
            "Files of --models-dir taken in after start-up, by result: loaded (a new model or version), refused (it did not load; the version before keeps serving) or removed.",
            &["result"],
        );
        for result in ["loaded", "refused", "removed"] {
            model_reloads_total.with_label_values(&[result]);
        }
        let config_reloads_total = counter(
            "kedastral_config_reloads_total",
            "Readings of --config after start-up (SIGHUP or a change of the file), by result: applied, or refused (it did not parse or validate; the running configuration stays).",
            &["result"],
        );
        for result in ["applied", "refused"] {
            config_reloads_total.with_label_values(&[result]);
        }
        Self {
            predicted_value: gauge(
                "kedastral_predicted_value",
                "Point forecast of the metric for the next step.",
                wm,
            ),
            predicted_quantile: gauge(
                "kedastral_predicted_quantile",
                "Forecast quantile band of the metric for the next step.",
                &["workload", "model", "level"],
            ),
            observed_value: gauge(
                "kedastral_observed_value",
                "Latest collected value of the metric.",
                wm,
            ),
            desired_replicas: gauge(
                "kedastral_desired_replicas",
                "Replicas the capacity plan wants for the next step.",
                wm,
            ),
            desired_replicas_max: gauge(
                "kedastral_desired_replicas_max",
                "Most replicas the capacity plan wants over the forecast horizon.",
                wm,
            ),
            forecast_age_seconds: gauge(
                "kedastral_forecast_age_seconds",
                "Seconds since the origin of the latest forecast, at scrape time.",
                wm,
            ),
            forecast_stale: gauge(
                "kedastral_forecast_stale",
                "1 when the latest forecast is older than its stale-after limit, or missing.",
                wm,
            ),
            collect_seconds: histogram(
                "kedastral_adapter_collect_seconds",
                "Time to collect new history from the data source.",
                wm,
            ),
            predict_seconds: histogram(
                "kedastral_model_predict_seconds",
                "Time of one model forecast call, waiting for a free model slot included.",
                wm,
            ),
            capacity_seconds: histogram(
                "kedastral_capacity_compute_seconds",
                "Time to turn one forecast into desired replicas.",
                wm,
            ),
            tick_seconds: histogram(
                "kedastral_tick_seconds",
                "Time of one tick of a workload, from its start to its forecast published (or its failure).",
                wm,
            ),
            errors_total,
            lease_held: gauge(
                "kedastral_lease_held",
                "1 when this replica computes the workload (holds its Redis lease, or runs alone).",
                wm,
            ),
            live_error_mae: gauge(
                "kedastral_live_error_mae",
                "Mean absolute error of recent forecasts at the lead time, against what arrived.",
                wm,
            ),
            live_error_mape: gauge(
                "kedastral_live_error_mape_ratio",
                "Mean absolute percentage error (as a ratio) of recent forecasts at the lead time.",
                wm,
            ),
            live_under_forecast_ratio: gauge(
                "kedastral_live_under_forecast_ratio",
                "Share of recent forecasts at the lead time that were below what arrived.",
                wm,
            ),
            live_error_comparisons: gauge(
                "kedastral_live_error_comparisons",
                "Forecasts in the live-error window.",
                wm,
            ),
            live_error_lead_seconds: gauge(
                "kedastral_live_error_lead_seconds",
                "Lead time at which live error is measured.",
                wm,
            ),
            candidate_mae: gauge(
                "kedastral_candidate_mae",
                "Mean absolute error of each candidate over the recent shadow origins.",
                &["workload", "candidate"],
            ),
            candidate_served: gauge(
                "kedastral_candidate_served",
                "1 for what is served (the model, or auto's combination `combined`), 0 for the others.",
                &["workload", "candidate"],
            ),
            candidate_weight: gauge(
                "kedastral_candidate_weight",
                "Share of each candidate in auto's combination, averaged over the leads.",
                &["workload", "candidate"],
            ),
            candidate_recent_mae: gauge(
                "kedastral_candidate_recent_mae",
                "Mean absolute error of each candidate of auto, recent shadow origins counting more: what its weight follows.",
                &["workload", "candidate"],
            ),
            model_switches_total,
            model_calls_total,
            model_call_seconds_total,
            model_reloads_total,
            config_reloads_total,
            bands_calibrated: gauge(
                "kedastral_bands_calibrated",
                "1 when the served bands come from the recent forecast errors.",
                wm,
            ),
            sizing_rule: gauge(
                "kedastral_sizing_rule",
                "1 for how pods are sized now (objective, warming-up, quantile-level, headroom), 0 for the others.",
                &["workload", "rule"],
            ),
            sizing_level: gauge(
                "kedastral_sizing_quantile_level",
                "The forecast quantile level pods are sized on.",
                wm,
            ),
            sizing_recent_shortfall: gauge(
                "kedastral_sizing_recent_shortfall_ratio",
                "Share of recent times the sizing would have left capacity short, replayed on the workload's own recent forecasts.",
                wm,
            ),
            sizing_target_shortfall: gauge(
                "kedastral_sizing_target_shortfall_ratio",
                "The share of time capacity may fall short (target-shortfall).",
                wm,
            ),
            registry,
        }
    }

    /// The registry, for other parts of the process (the scaler in
    /// `kedastral run`) to add their metrics to.
    pub fn registry(&self) -> &NamedRegistry {
        &self.registry
    }

    /// Counts one failure.
    pub fn error(&self, workload: &str, model: &str, component: &str, reason: &str) {
        self.errors_total
            .with_label_values(&[workload, model, component, reason])
            .inc();
    }

    /// Sets the gauges that depend on the clock from `board`'s workloads;
    /// called on every scrape.
    pub fn refresh_clock(&self, board: &Board, now: DateTime<Utc>) {
        for view in board.views() {
            let labels = [
                view.status.config.name.as_str(),
                view.status.model.name.as_str(),
            ];
            match &view.snapshot {
                Some(s) => {
                    self.forecast_age_seconds
                        .with_label_values(&labels)
                        .set(s.age_seconds(now));
                }
                None => {
                    let _ = self.forecast_age_seconds.remove_label_values(&labels);
                }
            }
            self.forecast_stale
                .with_label_values(&labels)
                .set(if view.is_fresh(now) { 0.0 } else { 1.0 });
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        self.registry.encode()
    }

    /// A workload removed: its series leave `/metrics`.
    pub fn retire(&self, workload: &str) {
        self.registry.retire(workload);
    }

    /// A workload (back) in the configuration.
    pub fn revive(&self, workload: &str) {
        self.registry.revive(workload);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
