//! `GetMetrics` over a real loopback socket: 1 000 workloads, 64 calls in
//! flight at all times (8 HTTP/2 connections with 8 callers each), the
//! client in the same process and on the same two cores as the server.
//!
//! The baseline of the same run is the gRPC health service's `Check` on the
//! same server and connections: the cost of a call that does no work, so
//! the ratio is what the scaler's own answer adds.
//!
//! `cargo bench -p kedastral --bench scaler`; figures in BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kedastral::clock::Clock;
use kedastral::scaler::metrics::ScalerMetrics;
use kedastral::scaler::proto::external_scaler_client::ExternalScalerClient;
use kedastral::scaler::proto::{GetMetricsRequest, ScaledObjectRef};
use kedastral::scaler::{Scaler, ScalerSettings};
use kedastral::store::Board;
use kedastral::store::{Band, ModelRef, Snapshot};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const WORKLOADS: usize = 1_000;
const CONNECTIONS: usize = 8;
const CALLERS_PER_CONNECTION: usize = 8;
const IN_FLIGHT: usize = CONNECTIONS * CALLERS_PER_CONNECTION;
/// Calls per measured batch: five hundred per caller.
const BATCH: usize = IN_FLIGHT * 500;

fn snapshot(i: usize) -> Snapshot {
    let now = Utc::now();
    let values: Vec<f64> = (0..30).map(|k| 100.0 + (i + k) as f64).collect();
    Snapshot {
        workload: format!("w{i:04}"),
        metric: "rps".into(),
        model: ModelRef {
            name: "baseline".into(),
            version: "0.1.0".into(),
            content_hash: None,
        },
        generated_at: now,
        computed_at: now,
        step_seconds: 60,
        horizon: 30,
        desired_replicas: values.iter().map(|v| (v / 10.0).ceil() as u32).collect(),
        quantiles: vec![Band {
            level: 0.9,
            values: values.iter().map(|v| v * 1.2).collect(),
        }],
        values,
        last_observed: Some(100.0),
        reactive_replicas: Some(10),
        // Fresh for the whole run.
        stale_after_seconds: 86_400,
        lead_time_seconds: 300,
        selection: None,
        sizing: None,
        sizing_loads: Vec::new(),
        reactive_floor: false,
        refreshed_at: None,
    }
}

fn request(i: usize) -> GetMetricsRequest {
    GetMetricsRequest {
        scaled_object_ref: Some(ScaledObjectRef {
            name: "app".into(),
            namespace: "default".into(),
            scaler_metadata: [("workload".to_owned(), format!("w{:04}", i % WORKLOADS))]
                .into_iter()
                .collect(),
        }),
        metric_name: "kedastral".into(),
    }
}

#[derive(Clone, Copy)]
enum Call {
    GetMetrics,
    HealthCheck,
}

/// Runs `total` calls with [`IN_FLIGHT`] callers; returns each call's
/// latency and the wall time of the whole batch.
async fn batch(channels: &[Channel], call: Call, total: usize) -> (Vec<Duration>, Duration) {
    let per_caller = total / IN_FLIGHT;
    let started = Instant::now();
    let mut callers = tokio::task::JoinSet::new();
    for c in 0..IN_FLIGHT {
        let channel = channels[c % CONNECTIONS].clone();
        callers.spawn(async move {
            let mut scaler = ExternalScalerClient::new(channel.clone());
            let mut health = HealthClient::new(channel);
            let mut latencies = Vec::with_capacity(per_caller);
            for n in 0..per_caller {
                let t = Instant::now();
                match call {
                    Call::GetMetrics => {
                        let answer = scaler.get_metrics(request(c * per_caller + n)).await;
                        assert!(answer.is_ok(), "{answer:?}");
                    }
                    Call::HealthCheck => {
                        let answer = health.check(HealthCheckRequest::default()).await;
                        assert!(answer.is_ok(), "{answer:?}");
                    }
                }
                latencies.push(t.elapsed());
            }
            latencies
        });
    }
    let mut all = Vec::with_capacity(total);
    while let Some(done) = callers.join_next().await {
        all.extend(done.unwrap());
    }
    (all, started.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn get_metrics(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = Arc::new(Board::default());
    cache.absorb((0..WORKLOADS).map(snapshot).collect());
    let registry = kedastral::telemetry::NamedRegistry::default();
    let scaler = Scaler::new(
        cache,
        ScalerSettings::default(),
        ScalerMetrics::register(&registry),
        Clock::wall(),
        CancellationToken::new(),
    );
    let listener = tokio
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio.spawn(kedastral::service::serve_grpc(
        listener,
        scaler,
        None,
        shutdown.clone(),
    ));
    let channels: Vec<Channel> = tokio.block_on(async {
        let mut channels = Vec::new();
        for _ in 0..CONNECTIONS {
            let endpoint = Channel::from_shared(format!("http://{address}")).unwrap();
            channels.push(endpoint.connect().await.unwrap());
        }
        channels
    });

    let mut group = c.benchmark_group("scaler");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(10);
    for (name, call) in [
        ("GetMetrics/1000-workloads/64-in-flight", Call::GetMetrics),
        ("health-Check/64-in-flight", Call::HealthCheck),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    spent += tokio.block_on(batch(&channels, call, BATCH)).1;
                }
                spent
            })
        });
    }
    group.finish();

    // Latency percentiles over one long run of each.
    for (name, call) in [
        ("GetMetrics", Call::GetMetrics),
        ("health Check", Call::HealthCheck),
    ] {
        let total = IN_FLIGHT * 2_000;
        let (mut latencies, wall) = tokio.block_on(batch(&channels, call, total));
        latencies.sort();
        println!(
            "scaler {name}: {total} calls, {:.0} calls/s, p50 {:.0} µs, p99 {:.0} µs, max {:.1} ms",
            total as f64 / wall.as_secs_f64(),
            percentile(&latencies, 0.50).as_secs_f64() * 1e6,
            percentile(&latencies, 0.99).as_secs_f64() * 1e6,
            latencies.last().unwrap().as_secs_f64() * 1e3,
        );
    }
    shutdown.cancel();
}

criterion_group!(benches, get_metrics);
criterion_main!(benches);
