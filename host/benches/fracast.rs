//! Fracast-0's forecast latency, natively and as the built-in WebAssembly
//! component, on the last 2 048 points of the bundled 1-minute trace at
//! horizons 30 and 48 (one pass of the network each), with the nine
//! quantiles read at 0.1, 0.5 and 0.9.
//!
//! `cargo bench -p kedastral --bench fracast`; figures in BENCHMARKS.md.
//! `scripts/fracast_reference_bench.py` times the reference package in
//! PyTorch on one core on the same windows.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kedastral::model::cache::ComponentCache;
use kedastral::model::{ForecastRequest, ModelRuntime, ModelSource, RuntimeLimits};
use kedastral_model_sdk::Model;

mod support;
use support::trace;

const POINTS: usize = 2_048;

fn latency(c: &mut Criterion) {
    let trace = trace();
    let runtime = ModelRuntime::new(RuntimeLimits::default(), ComponentCache::disabled()).unwrap();
    let loaded = runtime.load(&ModelSource::parse("fracast")).unwrap();
    let mut group = c.benchmark_group("fracast");
    group.sample_size(20);
    for horizon in [30u32, 48] {
        let request =
            ForecastRequest::new(trace.tail(POINTS), horizon).with_quantiles(vec![0.1, 0.5, 0.9]);
        group.bench_with_input(BenchmarkId::new("native", horizon), &request, |b, r| {
            b.iter(|| kedastral_fracast::model::FracastModel::forecast(black_box(r)).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("wasm", horizon), &request, |b, r| {
            b.iter(|| loaded.forecast(black_box(r)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
