//! What ships beside the binary agrees with it: the Grafana dashboard and
//! the alerting rules ask only for metrics the code exports, and every one
//! of them is on `/metrics` from start-up (counters at 0), before a tick.

use std::collections::BTreeSet;

use kedastral::clock::Clock;
use kedastral::collect::{ReplaySource, Source};
use kedastral::forecaster::{Forecaster, ForecasterParts};
use kedastral::scaler::metrics::ScalerMetrics;
use serde_json::Value;

use crate::support;

/// The workload of [`exposition_at_start`].
const WORKLOAD: &str = "checkout";

/// What `/metrics` of `kedastral run` says before its first tick: the
/// forecaster's metrics and the scaler's, for one `auto` workload.
fn exposition_at_start() -> String {
    let text = format!(
        "[[workload]]\nname = \"{WORKLOAD}\"\nprom-query = \"q\"\ntarget-per-pod = 1\nmodel = \"auto\"\n"
    );
    let workloads = kedastral::config::parse_file(&text).unwrap();
    let forecaster = Forecaster::new(
        &support::runtime(),
        ForecasterParts {
            workloads,
            source: Source::Replay(ReplaySource::new("nasa", support::nasa_tail(100))),
            shared: None,
            model_slots: 1,
            clock: Clock::wall(),
            models_dir: None,
        },
    )
    .unwrap();
    let metrics = forecaster.metrics();
    ScalerMetrics::register(metrics.registry()).show_workload(WORKLOAD);
    metrics.encode()
}

/// Every family in an exposition, by its `# TYPE` line, with its type.
fn families(exposition: &str) -> Vec<(String, String)> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
        .collect()
}

/// The names exported from start-up.
fn exported() -> BTreeSet<String> {
    families(&exposition_at_start())
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// Every PromQL string in the dashboard: panel targets and template queries.
fn queries(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "definition" | "query", Value::String(q)) => out.push(q.clone()),
                    _ => queries(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| queries(i, out)),
        _ => {}
    }
}

fn metric_names(query: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = query;
    while let Some(at) = rest.find("kedastral_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn the_dashboard_uses_only_exported_metrics() {
    let path = support::workspace().join("deploy/grafana/kedastral.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let exported = exported();

    let mut all = Vec::new();
    queries(&dashboard, &mut all);
    let mut used = BTreeSet::new();
    for query in &all {
        for name in metric_names(query) {
            // A histogram's series carry suffixes its family does not.
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| exported.contains(*f)))
                .map_or(name.clone(), str::to_owned);
            assert!(
                exported.contains(&family),
                "the dashboard asks for `{name}`, which Kedastral does not export (in `{query}`)"
            );
            used.insert(family);
        }
    }
    // The panels the operator's guide promises are there.
    for needed in [
        "kedastral_observed_value",
        "kedastral_predicted_value",
        "kedastral_predicted_quantile",
        "kedastral_desired_replicas",
        "kedastral_scaler_desired_replicas_returned",
        "kedastral_forecast_age_seconds",
        "kedastral_live_error_mape_ratio",
        "kedastral_live_under_forecast_ratio",
        "kedastral_model_predict_seconds",
        "kedastral_errors_total",
        "kedastral_candidate_mae",
        "kedastral_candidate_served",
        "kedastral_candidate_weight",
        "kedastral_candidate_recent_mae",
        "kedastral_model_switches_total",
        "kedastral_bands_calibrated",
        "kedastral_model_calls_total",
        "kedastral_model_call_seconds_total",
    ] {
        assert!(used.contains(needed), "no panel shows {needed}");
    }
    let panels = dashboard["panels"].as_array().unwrap();
    for panel in panels {
        let targets = panel["targets"].as_array().map_or(0, Vec::len);
        assert!(targets > 0, "panel `{}` has no query", panel["title"]);
    }
}

#[test]
fn the_alerts_use_only_exported_metrics() {
    let path = support::workspace().join("deploy/prometheus/kedastral-alerts.yaml");
    let rules = std::fs::read_to_string(&path).unwrap();
    let exported = exported();
    let used = metric_names(&rules);
    assert!(used.len() >= 7, "{used:?}");
    for name in used {
        assert!(
            exported.contains(&name),
            "an alert uses `{name}`, which Kedastral does not export"
        );
    }
}

/// Every counter the dashboard or the alerts use has a series at 0 for the
/// workload from start-up, so a rate or an alert sees the first increment;
/// every histogram has its series too; and every metric registered is
/// there, at least by its `HELP` and `TYPE` lines.
#[test]
fn every_metric_is_on_the_first_scrape_and_counters_start_at_zero() {
    let exposition = exposition_at_start();
    let kinds = families(&exposition);
    let metrics = kedastral::telemetry::Metrics::new();
    ScalerMetrics::register(metrics.registry());
    for name in metrics.registry().names() {
        assert!(
            kinds.iter().any(|(n, _)| *n == name),
            "`{name}` is not on the first scrape"
        );
    }
    let dashboard =
        std::fs::read_to_string(support::workspace().join("deploy/grafana/kedastral.json"))
            .unwrap();
    let rules = std::fs::read_to_string(
        support::workspace().join("deploy/prometheus/kedastral-alerts.yaml"),
    )
    .unwrap();
    let used: BTreeSet<String> = metric_names(&dashboard)
        .into_iter()
        .chain(metric_names(&rules))
        .collect();
    let samples = |name: &str| -> Vec<&str> {
        exposition
            .lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .collect()
    };
    let mut counters = 0;
    for (name, kind) in &kinds {
        if kind == "counter" && used.contains(name) {
            counters += 1;
            let lines = samples(name);
            assert!(
                !lines.is_empty(),
                "counter `{name}` has no series at start-up"
            );
            for line in lines {
                assert!(line.ends_with(" 0"), "{line}");
            }
        }
    }
    assert!(counters >= 4, "{kinds:?}");
    // Every reason a tick can fail with, for the workload's model.
    let errors = samples("kedastral_errors_total");
    for (component, reason) in [
        ("collect", "unreachable"),
        ("collect", "no_data"),
        ("model", "timeout"),
        ("model", "suspended"),
        ("capacity", "plan"),
        ("store", "unavailable"),
    ] {
        let wanted = format!(
            "component=\"{component}\",model=\"auto\",reason=\"{reason}\",workload=\"{WORKLOAD}\""
        );
        assert!(
            errors.iter().any(|l| l.contains(&wanted)),
            "no {wanted} in {errors:#?}"
        );
    }
    for reason in ["missing", "stale", "horizon_passed", "empty"] {
        let wanted = format!(
            "kedastral_scaler_unavailable_total{{reason=\"{reason}\",workload=\"{WORKLOAD}\"}} 0"
        );
        assert!(exposition.contains(&wanted), "no {wanted}");
    }
    // Histograms' series exist with no observations yet.
    for name in [
        "kedastral_model_predict_seconds",
        "kedastral_adapter_collect_seconds",
        "kedastral_scaler_grpc_request_duration_seconds",
    ] {
        assert!(
            !samples(&format!("{name}_count")).is_empty(),
            "{name} has no series"
        );
    }
    // Missing forecasts are stale until the first one.
    assert!(
        exposition.contains(&format!(
            "kedastral_forecast_stale{{model=\"auto\",workload=\"{WORKLOAD}\"}} 1"
        )),
        "{exposition}"
    );
}

#[test]
fn metric_names_are_found_in_promql() {
    assert_eq!(
        metric_names(
            "histogram_quantile(0.99, sum by (le) (rate(kedastral_model_predict_seconds_bucket{a=\"b\"}[5m]))) / kedastral_x"
        ),
        vec!["kedastral_model_predict_seconds_bucket", "kedastral_x"]
    );
}
