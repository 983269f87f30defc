//! What ships beside the binary agrees with it: the Grafana dashboard and
//! the alerting rules ask only for metrics the code exports.

use std::collections::BTreeSet;

use kedastral::scaler::metrics::ScalerMetrics;
use kedastral::telemetry::Metrics;
use serde_json::Value;

use crate::support;

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
    let metrics = Metrics::new();
    ScalerMetrics::register(metrics.registry());
    let exported: BTreeSet<String> = metrics.registry().names().into_iter().collect();

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
        "kedastral_model_switches_total",
        "kedastral_bands_calibrated",
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
    let metrics = Metrics::new();
    ScalerMetrics::register(metrics.registry());
    let exported: BTreeSet<String> = metrics.registry().names().into_iter().collect();
    let used = metric_names(&rules);
    assert!(used.len() >= 7, "{used:?}");
    for name in used {
        assert!(
            exported.contains(&name),
            "an alert uses `{name}`, which Kedastral does not export"
        );
    }
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
