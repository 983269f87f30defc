//! The KEDA External Scaler, called by an independent Python gRPC client,
//! against `kedastral run` and against a forecaster and a scaler as separate
//! processes on a real Prometheus.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::services::{
    ClientTls, Kedastral, Prometheus, Redis, WebSecurity, eventually, get, keda,
};

/// The replicas the capacity plan implies for a lead window at `now`,
/// worked out here from the forecast as served over HTTP.
fn expected_replicas(forecast: &Value, now: DateTime<Utc>, lead_seconds: f64) -> u64 {
    let origin = DateTime::parse_from_rfc3339(forecast["generatedAt"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let step = forecast["stepSeconds"].as_f64().unwrap();
    let desired: Vec<u64> = forecast["desiredReplicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let age = (now - origin).as_seconds_f64().max(0.0);
    // Index k is for origin + (k + 1) * step; the window is [now, now + lead].
    let first = ((age / step).ceil() as usize).saturating_sub(1);
    let last = (((age + lead_seconds) / step + 1e-9).floor() as usize)
        .saturating_sub(1)
        .max(first)
        .min(desired.len() - 1);
    desired[first..=last].iter().copied().max().unwrap()
}

fn code(answer: &Value) -> &str {
    answer["code"].as_str().unwrap_or("OK")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kedastral_run_answers_keda_from_the_bundled_replay() {
    let run = Kedastral::start_on("run", 0, &["--replay-speed", "1"]).await;
    let forecast = run.forecast("nasa").await;
    let answers = keda(
        run.grpc_port,
        &ClientTls::default(),
        &[("workload", "nasa")],
        &["health", "spec", "metrics", "active"],
    )
    .await;
    assert_eq!(answers[0]["serving"], true, "{answers:?}");
    assert_eq!(
        answers[1]["specs"],
        serde_json::json!([{"metricName": "kedastral-nasa", "targetSize": 1, "targetSizeFloat": 1.0}])
    );
    let values = answers[2]["values"]
        .as_array()
        .expect("GetMetrics answered");
    assert_eq!(values.len(), 1, "exactly one value: the HPA adds them up");
    let value = &values[0];
    assert_eq!(value["metricName"], "kedastral-nasa");
    assert_eq!(
        value["metricValueFloat"].as_f64(),
        value["metricValue"].as_i64().map(|v| v as f64),
        "both fields carry the value"
    );
    // At replay speed 1 the forecast is a minute old at most: the 5-minute
    // lead window is steps 0..=4, or 0..=5 once a minute has passed.
    let desired: Vec<i64> = serde_json::from_value(forecast["desiredReplicas"].clone()).unwrap();
    let got = value["metricValue"].as_i64().unwrap();
    let window_max = |last: usize| *desired[..=last].iter().max().unwrap();
    assert!(
        got == window_max(4) || got == window_max(5),
        "{got} for {desired:?}"
    );
    assert_eq!(answers[3]["result"], true, "the NASA load is above zero");

    let (_, metrics) = get(&run.url("/metrics")).await.unwrap();
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains(&format!(
            r#"kedastral_scaler_desired_replicas_returned{{workload="nasa"}} {got}"#
        )),
        "{text}"
    );
    assert!(text.contains(
        r#"kedastral_scaler_grpc_request_duration_seconds_count{method="GetMetrics"} 1"#
    ));
    assert!(
        text.contains("kedastral_predicted_value"),
        "one /metrics for both halves"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_workloads_and_bad_metadata_are_told_apart() {
    let run = Kedastral::start_on("run", 0, &["--replay-speed", "1"]).await;
    run.forecast("nasa").await;
    let tls = ClientTls::default();
    let unknown = keda(
        run.grpc_port,
        &tls,
        &[("workload", "nope")],
        &["spec", "metrics", "active", "stream:1:2"],
    )
    .await;
    // A spec never fails for want of a forecast; the rest are UNAVAILABLE,
    // never "inactive".
    assert_eq!(unknown[0]["specs"][0]["metricName"], "kedastral-nope");
    assert_eq!(code(&unknown[1]), "UNAVAILABLE", "{unknown:?}");
    assert_eq!(code(&unknown[2]), "UNAVAILABLE");
    assert_eq!(unknown[3]["messages"], serde_json::json!([]));
    assert_eq!(unknown[3]["end"]["code"], "UNAVAILABLE", "{unknown:?}");
    let bad = keda(
        run.grpc_port,
        &tls,
        &[("workload", "nasa"), ("leadTime", "soon")],
        &["metrics"],
    )
    .await;
    assert_eq!(code(&bad[0]), "INVALID_ARGUMENT", "{bad:?}");
    assert!(bad[0]["details"].as_str().unwrap().contains("leadTime"));
    let bad = keda(run.grpc_port, &tls, &[("workload", "a b")], &["spec"]).await;
    assert_eq!(code(&bad[0]), "INVALID_ARGUMENT");
    // A threshold above every forecast: inactive, and still a replica count.
    let quiet = keda(
        run.grpc_port,
        &tls,
        &[("workload", "nasa"), ("activationThreshold", "1e9")],
        &["active", "metrics"],
    )
    .await;
    assert_eq!(quiet[0]["result"], false);
    assert_eq!(quiet[1]["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mutual_tls_on_the_grpc_listener() {
    let web = WebSecurity::new();
    let (cert, key) = web.server_cert();
    let (client_cert, client_key) = web.client_cert();
    let ca = web.ca();
    let (cert_s, key_s, ca_s) = (
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        ca.to_str().unwrap(),
    );
    let meta = [("workload", "nasa")];

    let tls_only = Kedastral::start_on(
        "run",
        0,
        &[
            "--replay-speed",
            "1",
            "--tls-cert",
            cert_s,
            "--tls-key",
            key_s,
        ],
    )
    .await;
    tls_only.forecast("nasa").await;
    let trusted = ClientTls {
        ca: Some(ca.clone()),
        cert: None,
    };
    let ok = keda(tls_only.grpc_port, &trusted, &meta, &["spec", "metrics"]).await;
    assert_eq!(
        (ok[0]["ok"].clone(), ok[1]["ok"].clone()),
        (Value::Bool(true), Value::Bool(true)),
        "{ok:?}"
    );
    let plain = keda(tls_only.grpc_port, &ClientTls::default(), &meta, &["spec"]).await;
    assert_eq!(
        code(&plain[0]),
        "UNAVAILABLE",
        "a plaintext client gets nowhere: {plain:?}"
    );

    let mutual = Kedastral::start_on(
        "run",
        0,
        &[
            "--replay-speed",
            "1",
            "--tls-cert",
            cert_s,
            "--tls-key",
            key_s,
            "--tls-client-ca",
            ca_s,
        ],
    )
    .await;
    mutual.forecast("nasa").await;
    let with_cert = ClientTls {
        ca: Some(ca.clone()),
        cert: Some((client_cert, client_key)),
    };
    let ok = keda(
        mutual.grpc_port,
        &with_cert,
        &meta,
        &["spec", "metrics", "health"],
    )
    .await;
    assert!(ok.iter().all(|a| a["ok"] == true), "{ok:?}");
    let without = keda(mutual.grpc_port, &trusted, &meta, &["spec"]).await;
    assert_eq!(
        without[0]["ok"], false,
        "no client certificate, no answer: {without:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_to_forecaster_to_scaler_end_to_end() {
    let mut prometheus = Prometheus::with_trace(5_000).await;
    let url = prometheus.url();
    let forecaster_args = [
        "--workload",
        "nasa",
        "--prom-url",
        &url,
        "--prom-query",
        "nasa_requests",
        "--step",
        "1s",
        "--window",
        "1h",
        "--horizon",
        "30s",
        "--interval",
        "1s",
        "--target-per-pod",
        "0.3",
        "--lead-time",
        "10s",
        "--stale-after",
        "4s",
        "--prom-retries",
        "0",
    ];
    let mut forecaster = Kedastral::start_on("forecaster", 0, &forecaster_args).await;
    // The restart below comes back on the same port, as a pod behind a
    // Service does.
    let forecaster_port = forecaster.port;
    forecaster.forecast("nasa").await;
    let forecaster_url = format!("http://127.0.0.1:{forecaster_port}");
    let scaler = Kedastral::start_on(
        "scaler",
        0,
        &[
            "--forecaster-url",
            &forecaster_url,
            "--refresh-interval",
            "200ms",
        ],
    )
    .await;
    let tls = ClientTls::default();
    let meta = [("workload", "nasa")];

    // What the scaler answers is the policy's replicas for the lead window
    // of the forecast it holds. The forecast moves every second, so read it
    // around the call and accept the answer for either.
    let matched = eventually(
        "an answer matching the forecast",
        Duration::from_secs(20),
        || async {
            let before = get(&forecaster.url("/forecast/current?workload=nasa"))
                .await?
                .1;
            let asked = Utc::now();
            let answer = keda(scaler.grpc_port, &tls, &meta, &["metrics"]).await;
            let answered = Utc::now();
            let after = get(&forecaster.url("/forecast/current?workload=nasa"))
                .await?
                .1;
            let got = answer[0]["values"][0]["metricValue"].as_u64()?;
            let candidates = [
                expected_replicas(&before, asked, 10.0),
                expected_replicas(&before, answered, 10.0),
                expected_replicas(&after, asked, 10.0),
                expected_replicas(&after, answered, 10.0),
            ];
            candidates.contains(&got).then_some(got)
        },
    )
    .await;
    assert!(matched >= 1);

    // The forecaster dies: once its last forecast is stale the scaler says
    // UNAVAILABLE; a new forecaster on the same address, and the scaler
    // recovers by itself.
    forecaster.kill();
    eventually(
        "UNAVAILABLE without a forecaster",
        Duration::from_secs(20),
        || async {
            let answer = keda(scaler.grpc_port, &tls, &meta, &["metrics"]).await;
            (code(&answer[0]) == "UNAVAILABLE").then_some(())
        },
    )
    .await;
    forecaster = Kedastral::start_on("forecaster", forecaster_port, &forecaster_args).await;
    forecaster.forecast("nasa").await;
    eventually("the scaler to recover", Duration::from_secs(15), || async {
        let answer = keda(scaler.grpc_port, &tls, &meta, &["metrics"]).await;
        (answer[0]["ok"] == true).then_some(())
    })
    .await;
    let errors = scaler
        .metric(r#"kedastral_scaler_forecast_fetch_errors_total{reason="unreachable"}"#)
        .await;
    assert!(errors.is_some_and(|n| n >= 1.0), "{errors:?}");

    // Prometheus gone: the forecast goes stale and the scaler says so with
    // UNAVAILABLE, never "inactive".
    prometheus.stop();
    let stale = eventually(
        "UNAVAILABLE on a stale forecast",
        Duration::from_secs(20),
        || async {
            let answers = keda(scaler.grpc_port, &tls, &meta, &["metrics", "active"]).await;
            (code(&answers[0]) == "UNAVAILABLE").then_some(answers)
        },
    )
    .await;
    assert_eq!(code(&stale[1]), "UNAVAILABLE", "{stale:?}");
    assert!(
        stale[0]["details"].as_str().unwrap().contains("stale"),
        "{stale:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_is_active_delivers_a_change() {
    // Zero load until 25 s from now, then a surge: inactive, then active.
    // ARIMA follows a level shift within a few points; the baseline's
    // robust level takes minutes to believe one.
    let points = 1_200;
    let surge_at = points - 1 - 600 + 25;
    let values: Vec<f64> = (0..points)
        .map(|i| if i < surge_at { 0.0 } else { 100.0 })
        .collect();
    let prometheus = Prometheus::with_values(values).await;
    let url = prometheus.url();
    let run = Kedastral::start_on(
        "run",
        0,
        &[
            "--source",
            "prometheus",
            "--workload",
            "surge",
            "--prom-url",
            &url,
            "--prom-query",
            "nasa_requests",
            "--step",
            "1s",
            "--window",
            "10m",
            "--horizon",
            "30s",
            "--interval",
            "1s",
            "--target-per-pod",
            "10",
            "--lead-time",
            "10s",
            "--min",
            "0",
            "--model",
            "arima",
        ],
    )
    .await;
    let first = run.forecast("surge").await;
    assert_eq!(first["lastObserved"].as_f64(), Some(0.0), "{first}");
    let answers = keda(
        run.grpc_port,
        &ClientTls::default(),
        &[("workload", "surge"), ("activationThreshold", "1")],
        &["stream:2:60"],
    )
    .await;
    let (_, last) = get(&run.url("/forecast/current?workload=surge"))
        .await
        .unwrap();
    assert_eq!(
        answers[0]["messages"],
        serde_json::json!([false, true]),
        "{answers:?}\n{last}\n{}",
        run.log()
    );
    assert_eq!(answers[0]["end"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scaler_reads_forecasts_from_redis() {
    let prometheus = Prometheus::with_trace(5_000).await;
    let redis = Redis::start().await;
    let (url, addr) = (prometheus.url(), redis.addr());
    let forecaster = Kedastral::start(&[
        "--workload",
        "nasa",
        "--prom-url",
        &url,
        "--prom-query",
        "nasa_requests",
        "--step",
        "1s",
        "--window",
        "1h",
        "--horizon",
        "30s",
        "--interval",
        "1s",
        "--target-per-pod",
        "0.3",
        "--lead-time",
        "10s",
        "--storage",
        "redis",
        "--redis-addr",
        &addr,
    ])
    .await;
    forecaster.forecast("nasa").await;
    let scaler = Kedastral::start_on(
        "scaler",
        0,
        &[
            "--source",
            "redis",
            "--redis-addr",
            &addr,
            "--refresh-interval",
            "200ms",
        ],
    )
    .await;
    let answers = eventually("an answer from Redis", Duration::from_secs(15), || async {
        let answers = keda(
            scaler.grpc_port,
            &ClientTls::default(),
            &[("workload", "nasa")],
            &["metrics", "active"],
        )
        .await;
        (answers[0]["ok"] == true).then_some(answers)
    })
    .await;
    assert!(answers[0]["values"][0]["metricValue"].as_i64().unwrap() >= 1);
    assert_eq!(answers[1]["result"], true);
}
