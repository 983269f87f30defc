//! `--config` read again while the forecaster runs: on SIGHUP and when the
//! file changes. Workloads added start, removed ones stop and leave the API
//! and metrics, changed ones start afresh; the others keep their state. A
//! file that does not parse or validate is refused whole.

use std::time::Duration;

use crate::forecaster::{forecaster_on, workload_table};
use crate::services::{Prometheus, Redis, eventually, get};

fn workloads_listed(body: &serde_json::Value) -> Vec<String> {
    body["workloads"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|w| w["workload"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_configuration_adds_removes_and_changes_workloads_and_keeps_the_rest() {
    let prometheus = Prometheus::with_trace(5_000).await;
    let table = |name: &str, extra: &str| workload_table(name, "nasa_requests", "baseline", extra);
    let before = [
        table("kept", ""),
        table("dropped", ""),
        table("resized", "target-per-pod = 0.05"),
    ]
    .concat()
    .replace(
        "target-per-pod = 0.5\nmodel = 'baseline'\ntarget-per-pod = 0.05",
        "target-per-pod = 0.05\nmodel = 'baseline'",
    );
    let (forecaster, dir) = forecaster_on(&prometheus, &before, &[]).await;
    let path = dir.path().join("workloads.toml");
    let resized = forecaster.forecast("resized").await;
    let replicas_before = resized["desiredReplicas"][0].as_u64().unwrap();
    forecaster.forecast("dropped").await;
    // `kept` has judged forecasts at its lead time: its state.
    let kept_url = forecaster.url("/forecast/current?workload=kept");
    let judged = eventually("kept's live error", Duration::from_secs(30), || async {
        let (_, body) = get(&kept_url).await?;
        let n = body["liveError"]["comparisons"].as_u64()?;
        (n >= 3).then_some(n)
    })
    .await;

    let after = [table("kept", ""), table("resized", ""), table("added", "")].concat();
    std::fs::write(&path, &after).unwrap();
    forecaster.hang_up();
    let added = forecaster.forecast("added").await;
    assert_eq!(added["workload"], "added");
    let workloads_url = forecaster.url("/workloads");
    eventually(
        "dropped gone and resized resized",
        Duration::from_secs(30),
        || async {
            let (_, body) = get(&workloads_url).await?;
            let names = workloads_listed(&body);
            let (_, resized) = get(&forecaster.url("/forecast/current?workload=resized")).await?;
            let replicas = resized["desiredReplicas"][0].as_u64()?;
            (!names.contains(&"dropped".to_owned()) && replicas < replicas_before).then_some(())
        },
    )
    .await;
    let (status, _) = get(&forecaster.url("/forecast/current?workload=dropped"))
        .await
        .unwrap();
    assert_eq!(status, 404);
    let (_, metrics) = get(&forecaster.url("/metrics")).await.unwrap();
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(
        !metrics.contains("workload=\"dropped\""),
        "dropped's series left /metrics"
    );
    assert!(metrics.contains("workload=\"added\""));
    let (_, kept) = get(&kept_url).await.unwrap();
    assert!(
        kept["liveError"]["comparisons"].as_u64().unwrap() >= judged,
        "kept's state survived: {kept}"
    );
    assert!(forecaster.log().contains("configuration reloaded"));
    // The file's change may be read first; the hang-up is read too, and
    // does not stop the process.
    eventually("the hang-up read", Duration::from_secs(30), || async {
        forecaster.log().contains("SIGHUP").then_some(())
    })
    .await;

    // Broken files are refused whole, and the running configuration stays.
    for broken in [
        "[[workload]]\nname = \"half\"\n".to_owned(),
        format!(
            "{after}{}",
            table("typo", "").replace("'baseline'", "'basline'")
        ),
    ] {
        let refused_before = forecaster
            .metric("kedastral_config_reloads_total{result=\"refused\"}")
            .await
            .unwrap();
        std::fs::write(&path, &broken).unwrap();
        eventually(
            "the broken file refused",
            Duration::from_secs(30),
            || async {
                let n = forecaster
                    .metric("kedastral_config_reloads_total{result=\"refused\"}")
                    .await?;
                (n > refused_before).then_some(())
            },
        )
        .await;
        let (_, body) = get(&workloads_url).await.unwrap();
        let mut names = workloads_listed(&body);
        names.sort();
        assert_eq!(names, ["added", "kept", "resized"]);
    }
    let log = forecaster.log();
    assert!(log.contains("configuration refused"), "{log}");
    assert!(
        log.contains("basline"),
        "the start-up message names the model: {log}"
    );
    let kept = forecaster.forecast("kept").await;
    assert_eq!(kept["stale"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_removed_by_a_reload_gives_its_redis_lease_up() {
    let prometheus = Prometheus::with_trace(5_000).await;
    let redis = Redis::start().await;
    let addr = redis.addr();
    let table = |name: &str| workload_table(name, "nasa_requests", "baseline", "");
    let (forecaster, dir) = forecaster_on(
        &prometheus,
        &[table("stays"), table("goes")].concat(),
        &[
            "--storage",
            "redis",
            "--redis-addr",
            &addr,
            "--replica-id",
            "only",
        ],
    )
    .await;
    forecaster.forecast("goes").await;
    assert_eq!(
        redis.get("kedastral:lease:goes").await.as_deref(),
        Some("only")
    );
    std::fs::write(dir.path().join("workloads.toml"), table("stays")).unwrap();
    forecaster.hang_up();
    eventually("goes' lease given up", Duration::from_secs(30), || async {
        redis
            .get("kedastral:lease:goes")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(
        redis.get("kedastral:lease:stays").await.as_deref(),
        Some("only")
    );
    let stays = forecaster.forecast("stays").await;
    assert_eq!(stays["stale"], false);
}
