//! `kedastral forecaster` against a real Prometheus and a real Redis.

use std::time::Duration;

use chrono::DateTime;
use kedastral::capacity::CapacityPolicy;
use kedastral::model::{ForecastRequest, ModelSource, Series};
use serde_json::Value;

use crate::services::{Forecaster, Prometheus, Redis, WebSecurity, eventually, get, write_file};
use crate::support;

fn unix(v: &Value) -> i64 {
    DateTime::parse_from_rfc3339(v.as_str().expect("a time string"))
        .expect("RFC 3339")
        .timestamp()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-9 * w.abs().max(1.0),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

/// Flags for the `nasa_requests` series, one-second steps, plus `extra`.
fn nasa_flags<'a>(prometheus: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut flags = vec![
        "--workload",
        "nasa",
        "--prom-url",
        prometheus,
        "--prom-query",
        "nasa_requests",
        "--step",
        "1s",
        "--horizon",
        "30s",
        "--target-per-pod",
        "0.5",
        "--lead-time",
        "5s",
        "--prom-retries",
        "0",
        "--prom-timeout",
        "2s",
    ];
    flags.extend_from_slice(extra);
    flags
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_start_forecasts_on_the_first_tick_from_the_right_points() {
    let prometheus = Prometheus::with_trace(20_000).await;
    let url = prometheus.url();
    // A 4-hour window of 1-second steps is 14 400 points: more than one
    // query_range may return. The interval is an hour, so only the first
    // tick runs during the test.
    let forecaster = Forecaster::start(&nasa_flags(
        &url,
        &["--window", "4h", "--interval", "1h", "--stale-after", "2h"],
    ))
    .await;
    let body = forecaster.forecast("nasa").await;
    let ticks = forecaster
        .metric(r#"kedastral_adapter_collect_seconds_count{model="baseline",workload="nasa"}"#)
        .await;
    assert_eq!(ticks, Some(1.0), "{}", forecaster.log());

    // The origin is the second the tick ran at, and the forecast is exactly
    // what the model gives on the trace's points up to that second.
    let origin = unix(&body["generatedAt"]);
    let computed = unix(&body["computedAt"]);
    assert!((0..=1).contains(&(computed - origin)), "{body}");
    let points = 14_400;
    let first = origin - (points - 1);
    let history = Series::new(
        first,
        1,
        (first..=origin).map(|t| prometheus.value_at(t)).collect(),
    );
    let model = support::runtime()
        .load(&ModelSource::parse("baseline"))
        .unwrap();
    let request = ForecastRequest {
        history,
        horizon: 30,
        quantiles: vec![0.1, 0.5, 0.9],
        params: vec![],
    };
    let expected = model.forecast(&request).unwrap();
    assert_close(&floats(&body["values"]), &expected.values, "values");
    let bands = body["quantiles"].as_array().unwrap();
    assert_eq!(bands.len(), 3);
    for (band, want) in bands.iter().zip(&expected.quantiles) {
        assert_eq!(band["level"].as_f64(), Some(want.level));
        assert_close(&floats(&band["values"]), &want.values, "band");
    }
    let policy = CapacityPolicy {
        target_per_pod: 0.5,
        ..CapacityPolicy::default()
    };
    // The first tick has no judged shadow origins: the objective warms up
    // on the point forecast x 1.2. The reactive floor holds the first step,
    // and the 5-minute scale-down window (300 one-second steps) holds every
    // step at the most planned before it.
    assert_eq!(body["sizing"]["rule"], "warming-up", "{body}");
    assert_eq!(body["sizing"]["targetShortfall"], 0.03);
    let loads = policy.loads(&expected.values, &[], None).unwrap();
    assert_close(&floats(&body["sizingLoads"]), &loads, "sizing loads");
    let mut planned = policy.plan(&loads, None);
    planned[0] = planned[0].max(policy.replicas_now(prometheus.value_at(origin)));
    let replicas: Vec<u32> = planned
        .iter()
        .scan(0, |most, &r| {
            *most = r.max(*most);
            Some(*most)
        })
        .collect();
    let got: Vec<u32> = serde_json::from_value(body["desiredReplicas"].clone()).unwrap();
    assert_eq!(got, replicas);
    assert_eq!(
        body["lastObserved"].as_f64(),
        Some(prometheus.value_at(origin))
    );
    assert_eq!(body["workload"], "nasa");
    assert_eq!(body["metric"], "nasa");
    assert_eq!(body["model"]["name"], "baseline");
    assert_eq!(body["stepSeconds"], 1);
    assert_eq!(body["horizon"], 30);
    assert_eq!(body["stale"], false);
    assert_eq!(body["lastError"], Value::Null);

    let (status, ready) = get(&forecaster.url("/readyz")).await.unwrap();
    assert_eq!((status, &ready["ready"]), (200, &Value::Bool(true)));
    let (status, list) = get(&forecaster.url("/workloads")).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(list["workloads"][0]["workload"], "nasa");
    assert_eq!(list["workloads"][0]["nextDesiredReplicas"], replicas[0]);
    let (status, _) = get(&forecaster.url("/healthz")).await.unwrap();
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_scores_the_candidates_in_shadow_and_shows_its_choice() {
    let prometheus = Prometheus::with_trace(20_000).await;
    let url = prometheus.url();
    let forecaster = Forecaster::start(&nasa_flags(
        &url,
        &[
            "--window",
            "1h",
            "--interval",
            "1s",
            "--model",
            "auto",
            "--refresh",
            "0s",
        ],
    ))
    .await;
    // Forecasting anew every tick (auto's default refresh, every half
    // horizon, would add origins only every 15 ticks), a few shadow origins
    // a tick: within a few ticks twelve are judged, and the bands are
    // calibrated from then on.
    let body = eventually("calibrated bands", Duration::from_secs(60), || async {
        let (status, body) = get(&forecaster.url("/forecast/current?workload=nasa")).await?;
        (status == 200 && body["selection"]["calibrated"] == true).then_some(body)
    })
    .await;
    assert_eq!(body["model"]["name"], "auto");
    let selection = &body["selection"];
    assert!(
        selection["judgedOrigins"].as_u64().unwrap() >= 12,
        "{selection}"
    );
    let names: Vec<&str> = selection["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "baseline",
            "arima",
            "mstl",
            "fracast",
            "seasonal-naive",
            "combined"
        ]
    );
    for candidate in selection["candidates"].as_array().unwrap() {
        assert!(candidate["mae"].as_f64().unwrap() > 0.0, "{selection}");
    }
    let chosen = selection["chosen"].as_str().unwrap();
    assert_eq!(chosen, "combined");
    // The weights: per bucket of leads, summing to one.
    let real = &selection["candidates"].as_array().unwrap()[..5];
    let buckets = selection["leadBuckets"].as_array().unwrap().len();
    for bucket in 0..buckets {
        let sum: f64 = real
            .iter()
            .map(|c| c["leadWeights"][bucket].as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-9, "{selection}");
    }
    let weight =
        |name: &str| format!(r#"kedastral_candidate_weight{{candidate="{name}",workload="nasa"}}"#);
    // Each is shown (ticks go on between scrapes, so they need not sum to
    // one across them).
    for (name, candidate) in names.iter().zip(real) {
        let shown = forecaster.metric(&weight(name)).await.unwrap();
        assert!((0.0..=1.0).contains(&shown), "{name}: {shown}");
        assert!(
            candidate["recentMae"].as_f64().unwrap() > 0.0,
            "{selection}"
        );
        // Its calls (it has an error, so it was called) and their time.
        let calls = forecaster
            .metric(&format!(
                r#"kedastral_model_calls_total{{model="{name}",workload="nasa"}}"#
            ))
            .await
            .unwrap();
        let seconds = forecaster
            .metric(&format!(
                r#"kedastral_model_call_seconds_total{{model="{name}",workload="nasa"}}"#
            ))
            .await
            .unwrap();
        assert!(
            calls >= 1.0 && seconds > 0.0,
            "{name}: {calls} calls, {seconds} s"
        );
    }
    // The bands are in order and around the point forecast.
    let bands = body["quantiles"].as_array().unwrap();
    let (low, high) = (floats(&bands[0]["values"]), floats(&bands[2]["values"]));
    for (lead, value) in floats(&body["values"]).iter().enumerate() {
        assert!(low[lead] <= *value && *value <= high[lead], "{body}");
    }

    let served = |candidate: &str| {
        format!(r#"kedastral_candidate_served{{candidate="{candidate}",workload="nasa"}}"#)
    };
    assert_eq!(forecaster.metric(&served(chosen)).await, Some(1.0));
    let mut total = 0.0;
    for name in &names {
        total += forecaster.metric(&served(name)).await.unwrap();
    }
    assert_eq!(total, 1.0, "one forecast is served");
    assert_eq!(
        forecaster
            .metric(r#"kedastral_bands_calibrated{model="auto",workload="nasa"}"#)
            .await,
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_sizes_on_the_level_its_objective_needs_and_shows_it() {
    let prometheus = Prometheus::with_trace(20_000).await;
    let url = prometheus.url();
    let forecaster = Forecaster::start(&nasa_flags(
        &url,
        &[
            "--window",
            "1h",
            "--interval",
            "1s",
            "--target-shortfall",
            "2%",
            "--pod-start-delay",
            "3s",
            "--scale-down-stabilization",
            "5s",
        ],
    ))
    .await;
    // Warming up until twelve shadow origins are judged, then a level.
    let body = eventually(
        "a level for the objective",
        Duration::from_secs(60),
        || async {
            let (status, body) = get(&forecaster.url("/forecast/current?workload=nasa")).await?;
            (status == 200 && body["sizing"]["rule"] == "objective").then_some(body)
        },
    )
    .await;
    let sizing = &body["sizing"];
    assert_eq!(sizing["targetShortfall"], 0.02);
    assert_eq!(sizing["podStartDelaySeconds"], 3);
    assert_eq!(sizing["reactiveFloor"], true);
    let level = sizing["level"].as_f64().unwrap();
    assert!(kedastral::sizing::LEVELS.contains(&level), "{sizing}");
    let recent = sizing["recentShortfall"].as_f64().unwrap();
    let effective = sizing["effectiveTarget"].as_f64().unwrap();
    assert!((0.004..=0.04).contains(&effective), "{sizing}");
    assert!(recent <= effective || level == 0.995, "{sizing}");
    assert!(sizing["points"].as_u64().unwrap() > 0);
    // Each step's replicas cover its sizing load; the floor and the
    // scale-in guard may only add.
    let loads = floats(&body["sizingLoads"]);
    let replicas: Vec<u32> = serde_json::from_value(body["desiredReplicas"].clone()).unwrap();
    assert_eq!(loads.len(), 30);
    for (load, r) in loads.iter().zip(&replicas) {
        assert!(f64::from(*r) * 0.5 >= load - 1e-9, "{loads:?} {replicas:?}");
    }
    let (_, list) = get(&forecaster.url("/workloads")).await.unwrap();
    assert_eq!(list["workloads"][0]["sizing"]["rule"], "objective");
    let metric = |name: &str| format!(r#"{name}{{model="baseline",workload="nasa"}}"#);
    assert_eq!(
        forecaster
            .metric(r#"kedastral_sizing_rule{rule="objective",workload="nasa"}"#)
            .await,
        Some(1.0)
    );
    assert_eq!(
        forecaster
            .metric(r#"kedastral_sizing_rule{rule="warming-up",workload="nasa"}"#)
            .await,
        Some(0.0)
    );
    assert_eq!(
        forecaster
            .metric(&metric("kedastral_sizing_target_shortfall_ratio"))
            .await,
        Some(0.02)
    );
    let shown = forecaster
        .metric(&metric("kedastral_sizing_quantile_level"))
        .await
        .unwrap();
    assert!(kedastral::sizing::LEVELS.contains(&shown));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors() {
    let prometheus = Prometheus::with_trace(5_000).await;
    let url = prometheus.url();
    let forecaster =
        Forecaster::start(&nasa_flags(&url, &["--window", "1h", "--interval", "1h"])).await;
    forecaster.forecast("nasa").await;
    let cases = [
        (
            "/forecast/current",
            400,
            "missing query parameter `workload`",
        ),
        ("/forecast/current?workload=", 400, "is not a workload name"),
        (
            "/forecast/current?workload=a%20b",
            400,
            "is not a workload name",
        ),
        ("/forecast/current?workload=a&workload=b", 400, "once"),
        (
            "/forecast/current?workload=checkout",
            404,
            "no workload `checkout`",
        ),
        ("/nothing-here", 404, "no such endpoint"),
    ];
    for (path, want_status, want_message) in cases {
        let (status, body) = get(&forecaster.url(path)).await.unwrap();
        assert_eq!(status, want_status, "{path}: {body}");
        let message = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: {body}"));
        assert!(message.contains(want_message), "{path}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_prometheus_leaves_the_last_forecast_until_it_is_stale() {
    let mut prometheus = Prometheus::with_trace(5_000).await;
    let url = prometheus.url();
    let forecaster = Forecaster::start(&nasa_flags(
        &url,
        &["--window", "1h", "--interval", "1s", "--stale-after", "4s"],
    ))
    .await;
    forecaster.forecast("nasa").await;
    prometheus.stop();
    let current = forecaster.url("/forecast/current?workload=nasa");
    let (status, last) = get(&current).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(last["stale"], false, "{last}");

    // The failure shows in the API while the last forecast is still served.
    let failing = eventually("the collect failure", Duration::from_secs(10), || async {
        let (_, body) = get(&current).await?;
        (body["lastError"]["component"] == "collect").then_some(body)
    })
    .await;
    assert_eq!(failing["lastError"]["reason"], "unreachable", "{failing}");
    assert_eq!(failing["generatedAt"], last["generatedAt"]);

    let stale = eventually(
        "the forecast to go stale",
        Duration::from_secs(15),
        || async {
            let (status, body) = get(&current).await?;
            (status == 200 && body["stale"] == true).then_some(body)
        },
    )
    .await;
    assert_eq!(stale["values"], last["values"], "the last forecast is kept");
    let (status, ready) = get(&forecaster.url("/readyz")).await.unwrap();
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["notReady"][0]["workload"], "nasa");
    let errors = forecaster
        .metric(r#"kedastral_errors_total{component="collect",model="baseline",reason="unreachable",workload="nasa"}"#)
        .await;
    assert!(errors.is_some_and(|n| n >= 1.0), "{errors:?}");
    let stale_gauge = forecaster
        .metric(r#"kedastral_forecast_stale{model="baseline",workload="nasa"}"#)
        .await;
    assert_eq!(stale_gauge, Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecasts_go_on_through_a_redis_outage_and_reach_redis_after_it() {
    let prometheus = Prometheus::with_trace(5_000).await;
    let mut redis = Redis::start().await;
    let (url, addr) = (prometheus.url(), redis.addr());
    let forecaster = Forecaster::start(&nasa_flags(
        &url,
        &[
            "--window",
            "1h",
            "--interval",
            "1s",
            "--storage",
            "redis",
            "--redis-addr",
            &addr,
            "--redis-timeout",
            "500ms",
        ],
    ))
    .await;
    let key = "kedastral:snapshot:nasa";
    let stored = eventually("the snapshot in Redis", Duration::from_secs(15), || {
        redis.get(key)
    })
    .await;
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["schema"], 1);
    assert_eq!(stored["workload"], "nasa");

    redis.stop();
    let before = forecaster.forecast("nasa").await["computedAt"].clone();
    let current = forecaster.url("/forecast/current?workload=nasa");
    let during = eventually(
        "new forecasts without Redis",
        Duration::from_secs(15),
        || async {
            let (_, body) = get(&current).await?;
            (body["computedAt"] != before && body["lastError"]["component"] == "store")
                .then_some(body)
        },
    )
    .await;
    assert_eq!(during["stale"], false);
    let errors = forecaster
        .metric(r#"kedastral_errors_total{component="store",model="baseline",reason="unavailable",workload="nasa"}"#)
        .await;
    assert!(
        errors.is_some_and(|n| n >= 1.0),
        "{errors:?}\n{}",
        forecaster.log()
    );

    redis.restart().await;
    let again = eventually(
        "the snapshot in Redis again",
        Duration::from_secs(15),
        || redis.get(key),
    )
    .await;
    let again: Value = serde_json::from_str(&again).unwrap();
    assert!(unix(&again["computedAt"]) >= unix(&during["computedAt"]));
    eventually("a clean tick", Duration::from_secs(10), || async {
        let (_, body) = get(&current).await?;
        body["lastError"].is_null().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_redis_split_the_work_and_take_over_from_a_dead_holder() {
    let prometheus = Prometheus::with_trace(5_000).await;
    let redis = Redis::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = String::new();
    for name in ["alpha", "beta"] {
        config.push_str(&format!(
            "[[workload]]\nname = \"{name}\"\nprom-query = \"nasa_requests\"\nstep = \"1s\"\n\
             window = \"1h\"\nhorizon = \"30s\"\ninterval = \"1s\"\nlead-time = \"5s\"\n\
             target-per-pod = 0.5\n\n"
        ));
    }
    let config = write_file(dir.path(), "workloads.toml", &config);
    let config = config.to_str().unwrap();
    let (url, addr) = (prometheus.url(), redis.addr());
    let replica = |id: &'static str| {
        let (url, addr) = (url.clone(), addr.clone());
        async move {
            Forecaster::start(&[
                "--config",
                config,
                "--prom-url",
                &url,
                "--storage",
                "redis",
                "--redis-addr",
                &addr,
                "--replica-id",
                id,
            ])
            .await
        }
    };
    let (a, b) = tokio::join!(replica("replica-a"), replica("replica-b"));
    let mut replicas = [("replica-a", Some(a)), ("replica-b", Some(b))];

    for workload in ["alpha", "beta"] {
        let lease = format!("kedastral:lease:{workload}");
        let holder = eventually("a lease holder", Duration::from_secs(15), || {
            redis.get(&lease)
        })
        .await;
        // Both replicas serve the workload; only the holder computes it.
        for (id, forecaster) in &replicas {
            let forecaster = forecaster.as_ref().unwrap();
            let body = forecaster.forecast(workload).await;
            assert_eq!(
                body["computedHere"],
                *id == holder,
                "{id} on {workload}: {body}"
            );
            let held = forecaster
                .metric(&format!(
                    r#"kedastral_lease_held{{model="baseline",workload="{workload}"}}"#
                ))
                .await;
            assert_eq!(held, Some(if *id == holder { 1.0 } else { 0.0 }), "{id}");
        }
        // The follower never collects: it only reads what the holder wrote.
        let (_, follower) = replicas.iter().find(|(id, _)| *id != holder).unwrap();
        let collects = follower
            .as_ref()
            .unwrap()
            .metric(&format!(
                r#"kedastral_adapter_collect_seconds_count{{model="baseline",workload="{workload}"}}"#
            ))
            .await;
        // Its series is there from start-up, at 0.
        assert_eq!(collects, Some(0.0), "the follower collected {workload}");
    }

    // Kill the holder of `alpha` without letting it release its lease: the
    // other replica takes over once the lease expires.
    let holder = redis.get("kedastral:lease:alpha").await.unwrap();
    let (_, dead) = replicas.iter_mut().find(|(id, _)| **id == *holder).unwrap();
    dead.take().unwrap().kill();
    let (survivor_id, survivor) = replicas.iter().find(|(_, f)| f.is_some()).unwrap();
    let survivor = survivor.as_ref().unwrap();
    eventually("the takeover", Duration::from_secs(15), || async {
        (redis.get("kedastral:lease:alpha").await.as_deref() == Some(*survivor_id)).then_some(())
    })
    .await;
    let current = survivor.url("/forecast/current?workload=alpha");
    let taken = eventually(
        "the survivor computing alpha",
        Duration::from_secs(15),
        || async {
            let (_, body) = get(&current).await?;
            (body["computedHere"] == true && body["stale"] == false).then_some(body)
        },
    )
    .await;
    let later = eventually("a newer forecast", Duration::from_secs(10), || async {
        let (_, body) = get(&current).await?;
        (body["computedAt"] != taken["computedAt"]).then_some(body)
    })
    .await;
    assert_eq!(later["workload"], "alpha");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_service_and_releases_its_leases() {
    let prometheus = Prometheus::with_trace(5_000).await;
    let redis = Redis::start().await;
    let (url, addr) = (prometheus.url(), redis.addr());
    let mut forecaster = Forecaster::start(&nasa_flags(
        &url,
        &[
            "--window",
            "1h",
            "--interval",
            "1s",
            "--storage",
            "redis",
            "--redis-addr",
            &addr,
            "--replica-id",
            "only",
        ],
    ))
    .await;
    forecaster.forecast("nasa").await;
    assert_eq!(
        redis.get("kedastral:lease:nasa").await.as_deref(),
        Some("only")
    );
    let status = forecaster.terminate();
    assert!(status.success(), "{status}: {}", forecaster.log());
    assert_eq!(redis.get("kedastral:lease:nasa").await, None);
    assert!(forecaster.log().contains("stopped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_behind_a_path_prefix_tls_and_basic_auth() {
    let web = WebSecurity::new();
    let prometheus = Prometheus::with_tls_and_auth(5_000, &web).await;
    let url = prometheus.url();
    assert!(url.ends_with("/prometheus"), "{url}");
    let ca = web.ca();
    let ca = ca.to_str().unwrap();
    let secured = |password: &'static str| {
        let url = url.clone();
        let user = web.user.clone();
        async move {
            Forecaster::start(&nasa_flags(
                &url,
                &[
                    "--window",
                    "1h",
                    "--interval",
                    "1s",
                    "--prom-ca-file",
                    ca,
                    "--prom-user",
                    &user,
                    "--prom-password",
                    password,
                ],
            ))
            .await
        }
    };
    let good = secured("s3cret pass").await;
    let body = good.forecast("nasa").await;
    let origin = unix(&body["generatedAt"]);
    assert_eq!(
        body["lastObserved"].as_f64(),
        Some(prometheus.value_at(origin))
    );

    // A wrong password is Prometheus's 401, shown as such.
    let bad = secured("wrong").await;
    // Waits for the failure itself: before the first tick ends, the
    // workload has no forecast and no error either.
    let (_, list) = eventually("the refusal", Duration::from_secs(10), || async {
        get(&bad.url("/workloads"))
            .await
            .filter(|(_, b)| b["workloads"][0]["lastError"].is_object())
    })
    .await;
    let error = &list["workloads"][0]["lastError"];
    assert_eq!(error["reason"], "http_status", "{list}");
    assert!(
        error["message"].as_str().unwrap().contains("401"),
        "{error}"
    );
    let (status, body) = get(&bad.url("/forecast/current?workload=nasa"))
        .await
        .unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("401"), "{body}");

    // Without the CA, the certificate is not trusted.
    let untrusted =
        Forecaster::start(&nasa_flags(&url, &["--window", "1h", "--interval", "1s"])).await;
    let (_, list) = eventually("the TLS failure", Duration::from_secs(10), || async {
        get(&untrusted.url("/workloads"))
            .await
            .filter(|(_, b)| b["workloads"][0]["lastError"].is_object())
    })
    .await;
    let message = list["workloads"][0]["lastError"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.to_lowercase().contains("certificate"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_model_is_stopped_while_other_workloads_are_served() {
    let prometheus = Prometheus::with_trace(5_000).await;
    let hostile = support::fixture("kedastral-test-hostile");
    let hostile = hostile.to_str().unwrap();
    let config = [
        workload_table(
            "spinning",
            "nasa_requests",
            hostile,
            "params = { behaviour = \"spin\" }",
        ),
        workload_table(
            "crashing",
            "nasa_requests",
            hostile,
            "params = { behaviour = \"panic\" }",
        ),
        workload_table("steady", "nasa_requests", "baseline", ""),
    ]
    .concat();
    let (forecaster, _config) =
        forecaster_on(&prometheus, &config, &["--model-timeout", "200ms"]).await;
    let steady = forecaster.forecast("steady").await;
    for (name, reason) in [("spinning", "timeout"), ("crashing", "trap")] {
        let series = format!(
            r#"kedastral_errors_total{{component="model",model="hostile",reason="{reason}",workload="{name}"}}"#
        );
        eventually(
            &format!("{name} to fail with {reason}"),
            Duration::from_secs(15),
            || {
                let f = &forecaster;
                let series = series.clone();
                async move { f.metric(&series).await.filter(|n| *n >= 2.0) }
            },
        )
        .await;
        let (status, body) = get(&forecaster.url(&format!("/forecast/current?workload={name}")))
            .await
            .unwrap();
        assert_eq!(status, 503, "{body}");
    }
    // Meanwhile the good workload kept its forecasts coming.
    let later = eventually(
        "a newer steady forecast",
        Duration::from_secs(10),
        || async {
            let (_, body) = get(&forecaster.url("/forecast/current?workload=steady")).await?;
            (body["computedAt"] != steady["computedAt"] && body["stale"] == false).then_some(body)
        },
    )
    .await;
    assert_eq!(later["lastError"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_cannot_reach_prometheus_hands_the_workload_over() {
    let prometheus = Prometheus::with_trace(5_000).await;
    let redis = Redis::start().await;
    let addr = redis.addr();
    let good_url = prometheus.url();
    // The blind replica's Prometheus closes every connection unanswered.
    let blind_url = format!("http://{}", crate::services::closing_listener().await);
    let replica = |url: String, id: &'static str| {
        let addr = addr.clone();
        async move {
            let mut flags = nasa_flags(&url, &["--window", "1h", "--interval", "1s"]);
            flags.extend([
                "--storage",
                "redis",
                "--redis-addr",
                &addr,
                "--replica-id",
                id,
            ]);
            Forecaster::start(&flags).await
        }
    };
    // The blind replica starts first: it takes the lease, cannot collect,
    // and gives the lease up again.
    let blind = replica(blind_url, "blind").await;
    eventually(
        "the blind replica to give up",
        Duration::from_secs(10),
        || async { blind.log().contains("lease given up").then_some(()) },
    )
    .await;
    let sighted = replica(good_url, "sighted").await;
    eventually(
        "the sighted replica to take over",
        Duration::from_secs(15),
        || async {
            (redis.get("kedastral:lease:nasa").await.as_deref() == Some("sighted")).then_some(())
        },
    )
    .await;
    // Both serve the sighted replica's fresh forecast.
    for forecaster in [&sighted, &blind] {
        let current = forecaster.url("/forecast/current?workload=nasa");
        eventually(
            "a fresh forecast on every replica",
            Duration::from_secs(15),
            || async {
                let (status, body) = get(&current).await?;
                (status == 200 && body["stale"] == false).then_some(())
            },
        )
        .await;
    }
    let (_, body) = get(&blind.url("/forecast/current?workload=nasa"))
        .await
        .unwrap();
    assert_eq!(body["computedHere"], false, "{body}");
}

/// `kedastral forecaster` on `tables` (a config file's text) and
/// `prometheus`, with `extra` flags; the file lives as long as the folder
/// returned.
pub(crate) async fn forecaster_on(
    prometheus: &Prometheus,
    tables: &str,
    extra: &[&str],
) -> (Forecaster, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(dir.path(), "workloads.toml", tables);
    let url = prometheus.url();
    let mut args = vec!["--config", config.to_str().unwrap(), "--prom-url", &url];
    args.extend_from_slice(extra);
    (Forecaster::start(&args).await, dir)
}

/// A `[[workload]]` table on the `nasa_requests` trace (1-second steps),
/// with `extra` lines, which may set the interval and stale-after too.
pub(crate) fn workload_table(name: &str, query: &str, model: &str, extra: &str) -> String {
    let mut table = format!(
        "[[workload]]\nname = \"{name}\"\nprom-query = \"{query}\"\nstep = \"1s\"\n\
         window = \"1h\"\nhorizon = \"30s\"\nlead-time = \"5s\"\n\
         target-per-pod = 0.5\nmodel = '{model}'\n{extra}\n"
    );
    for (key, default) in [("interval", "1s"), ("stale-after", "5s")] {
        if !extra.contains(key) {
            table.push_str(&format!("{key} = \"{default}\"\n"));
        }
    }
    table.push('\n');
    table
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_on_one_model_that_keeps_state_never_see_each_others_data() {
    let prometheus = Prometheus::with_trace(5_000).await;
    let hostile = support::fixture("kedastral-test-hostile");
    let hostile = hostile.to_str().unwrap();
    // The model forecasts the largest value it has ever seen. Around 1 and
    // around 6 000 per second; the ratio guard is opened wide so that a
    // leaked value would be served rather than refused.
    let remember =
        "params = { behaviour = \"remember\" }\ncalibrate = false\nmax-forecast-ratio = 1e9";
    let config = [
        workload_table("small", "nasa_requests", hostile, remember),
        workload_table("large", "nasa_requests * 6000", hostile, remember),
    ]
    .concat();
    let (forecaster, _config) = forecaster_on(&prometheus, &config, &[]).await;
    let largest = support::nasa_tail(5_000)
        .values
        .into_iter()
        .fold(0.0, f64::max);
    // Several ticks of each, interleaved on one loaded model.
    let mut seen = 0;
    let mut last = Value::Null;
    while seen < 5 {
        let small = forecaster.forecast("small").await;
        let large = forecaster.forecast("large").await;
        assert!(
            floats(&large["values"])[0] > 1_000.0,
            "the large workload forecasts its own level: {large}"
        );
        for v in floats(&small["values"]) {
            assert!(v <= largest, "the small workload was served {v}: {small}");
        }
        if small["computedAt"] != last["computedAt"] {
            seen += 1;
            last = small;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implausible_forecasts_are_refused_and_the_ceiling_bounds_the_rest() {
    let prometheus = Prometheus::with_trace(5_000).await;
    let hostile = support::fixture("kedastral-test-hostile");
    let hostile = hostile.to_str().unwrap();
    let config = [
        workload_table(
            "absurd",
            "nasa_requests",
            hostile,
            "params = { behaviour = \"absurd\" }",
        ),
        workload_table(
            "flaky",
            "nasa_requests",
            hostile,
            "params = { behaviour = \"sometimes-absurd\" }\nstale-after = \"1h\"",
        ),
        workload_table(
            "unbounded",
            "nasa_requests",
            hostile,
            "params = { behaviour = \"absurd\" }\nmax-forecast-ratio = 1e301",
        ),
        workload_table("steady", "nasa_requests", "baseline", ""),
    ]
    .concat();
    let (forecaster, _config) = forecaster_on(&prometheus, &config, &[]).await;

    // Always absurd: no forecast, the reason counted and shown.
    let series = r#"kedastral_errors_total{component="model",model="hostile",reason="implausible",workload="absurd"}"#;
    eventually("implausible counted", Duration::from_secs(15), || async {
        forecaster.metric(series).await.filter(|n| *n >= 2.0)
    })
    .await;
    let (status, body) = get(&forecaster.url("/forecast/current?workload=absurd"))
        .await
        .unwrap();
    assert_eq!(status, 503, "{body}");
    let (_, list) = get(&forecaster.url("/workloads")).await.unwrap();
    let absurd = list["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["workload"] == "absurd")
        .unwrap()
        .clone();
    assert_eq!(absurd["lastError"]["reason"], "implausible", "{absurd}");
    let message = absurd["lastError"]["message"].as_str().unwrap();
    assert!(
        message.contains("1e300") && message.contains("10 times"),
        "{message}"
    );
    // Logged once, not once per tick.
    let warnings = forecaster
        .log()
        .lines()
        .filter(|l| {
            l.contains("WARN") && l.contains("workload=absurd") && l.contains("implausible")
        })
        .count();
    assert_eq!(warnings, 1, "{}", forecaster.log());

    // Absurd on every other tick: the last good forecast is served.
    let flaky = eventually(
        "a flaky tick refused while serving",
        Duration::from_secs(15),
        || async {
            let (status, body) = get(&forecaster.url("/forecast/current?workload=flaky")).await?;
            (status == 200 && body["lastError"]["reason"] == "implausible").then_some(body)
        },
    )
    .await;
    assert_eq!(floats(&flaky["values"]), vec![1.0; 30], "{flaky}");
    assert_eq!(flaky["stale"], false);

    // With the guard opened wide, the plan stops at the ceiling.
    let unbounded = forecaster.forecast("unbounded").await;
    let replicas: Vec<u32> = serde_json::from_value(unbounded["desiredReplicas"].clone()).unwrap();
    assert_eq!(replicas, vec![kedastral::capacity::REPLICA_CEILING; 30]);

    let steady = forecaster.forecast("steady").await;
    assert_eq!(steady["lastError"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_that_time_out_back_off_and_never_hold_up_a_healthy_workload() {
    let prometheus = Prometheus::with_trace(5_000).await;
    let hostile = support::fixture("kedastral-test-hostile");
    let hostile = hostile.to_str().unwrap();
    let spinning = 12;
    let mut config: String = (0..spinning)
        .map(|i| {
            workload_table(
                &format!("spin{i}"),
                "nasa_requests",
                hostile,
                "params = { behaviour = \"spin\" }\ninterval = \"2s\"",
            )
        })
        .collect();
    config.push_str(&workload_table(
        "steady",
        "nasa_requests",
        "baseline",
        "interval = \"2s\"",
    ));
    let (forecaster, _config) =
        forecaster_on(&prometheus, &config, &["--model-timeout", "1s"]).await;
    // Every spinning workload has faulted, and the steady one ticked on.
    let timeouts = |i: usize| {
        format!(
            r#"kedastral_errors_total{{component="model",model="hostile",reason="timeout",workload="spin{i}"}}"#
        )
    };
    for i in 0..spinning {
        eventually(
            &format!("spin{i} to time out"),
            Duration::from_secs(60),
            || async { forecaster.metric(&timeouts(i)).await },
        )
        .await;
    }
    let count = r#"kedastral_tick_seconds_count{model="baseline",workload="steady"}"#;
    let ticks_before = forecaster.metric(count).await.unwrap();
    eventually(
        "four more steady ticks",
        Duration::from_secs(30),
        || async {
            forecaster
                .metric(count)
                .await
                .filter(|n| *n >= ticks_before + 4.0)
        },
    )
    .await;
    // No steady tick took a deadline: each ended within 0.5 s, the first
    // (when every spinning workload called its model for the first time)
    // included.
    let ticks = forecaster.metric(count).await.unwrap();
    let quick = forecaster
        .metric(r#"kedastral_tick_seconds_bucket{model="baseline",workload="steady",le="0.5"}"#)
        .await
        .unwrap();
    assert_eq!(
        quick,
        ticks,
        "steady ticks over 0.5 s: {}",
        forecaster.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_times_out_is_called_less_and_less_often() {
    let prometheus = Prometheus::with_trace(5_000).await;
    let hostile = support::fixture("kedastral-test-hostile");
    let config = workload_table(
        "spinning",
        "nasa_requests",
        hostile.to_str().unwrap(),
        "params = { behaviour = \"spin\" }",
    );
    let (forecaster, _config) =
        forecaster_on(&prometheus, &config, &["--model-timeout", "200ms"]).await;
    let count = r#"kedastral_tick_seconds_count{model="hostile",workload="spinning"}"#;
    let ticks = eventually("ten ticks", Duration::from_secs(30), || async {
        forecaster.metric(count).await.filter(|n| *n >= 10.0)
    })
    .await;
    let errors = |reason: &str| {
        let series = format!(
            r#"kedastral_errors_total{{component="model",model="hostile",reason="{reason}",workload="spinning"}}"#
        );
        let f = &forecaster;
        async move { f.metric(&series).await.unwrap_or(0.0) }
    };
    let (timeouts, suspended) = (errors("timeout").await, errors("suspended").await);
    // Backed off one interval, then two, four, eight: calls on ticks 1, 2,
    // 4 and 8 of the first ten (3 if a tick comes a little early), each a
    // single deadline; never called again would be 1, a constant delay of
    // two intervals 5.
    assert!(
        (3.0..=4.0).contains(&timeouts) && suspended >= 5.0,
        "{timeouts} timeouts and {suspended} held back over {ticks} ticks: {}",
        forecaster.log()
    );
    // One warning: the fault and the calls it held back are one trouble.
    let log = forecaster.log();
    let warnings = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("workload=spinning"))
        .count();
    assert_eq!(warnings, 1, "{log}");
    let (_, body) = get(&forecaster.url("/workloads")).await.unwrap();
    let message = body["workloads"][0]["lastError"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("ran past its deadline") || message.contains("not called again until"),
        "{message}"
    );
}
