//! Forecast latency per model, natively and as a WebAssembly component, on
//! 60, 1 440 and 10 080 points of the bundled 1-minute trace at horizon 30;
//! and the cost of compiling a component against loading it precompiled.
//!
//! `cargo bench -p kedastral --bench forecast`; figures in BENCHMARKS.md.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kedastral::model::cache::ComponentCache;
use kedastral::model::runtime::Allocator;
use kedastral::model::{
    Forecast, ForecastRequest, ModelError, ModelRuntime, ModelSource, RuntimeLimits, Series,
};
use kedastral_model_sdk::Model;

mod support;
use support::trace;

const SIZES: [usize; 3] = [60, 1_440, 10_080];
const HORIZON: u32 = 30;

/// The last `points` of the trace; models run with their defaults (ARIMA's
/// default order is `auto`).
fn request(trace: &Series, points: usize) -> ForecastRequest {
    ForecastRequest::new(trace.tail(points), HORIZON).with_quantiles(vec![0.1, 0.5, 0.9])
}

fn native(model: &str) -> fn(&ForecastRequest) -> Result<Forecast, ModelError> {
    match model {
        "baseline" => kedastral_baseline::Baseline::forecast,
        "arima" => kedastral_arima::Arima::forecast,
        "mstl" => kedastral_mstl::Mstl::forecast,
        other => unreachable!("no native build of {other}"),
    }
}

fn forecast_latency(c: &mut Criterion) {
    let trace = trace();
    let runtime = ModelRuntime::new(RuntimeLimits::default(), ComponentCache::disabled()).unwrap();
    for model in ["baseline", "arima", "mstl"] {
        let loaded = runtime.load(&ModelSource::parse(model)).unwrap();
        let instance = &loaded;
        let native = native(model);
        let mut group = c.benchmark_group(format!("forecast/{model}"));
        for points in SIZES {
            let request = request(&trace, points);
            group.bench_with_input(BenchmarkId::new("native", points), &request, |b, r| {
                b.iter(|| native(black_box(r)).unwrap())
            });
            group.bench_with_input(BenchmarkId::new("wasm", points), &request, |b, r| {
                b.iter(|| instance.forecast(black_box(r)).unwrap())
            });
        }
        group.finish();
    }
}

/// A fresh instance per call (what isolates workloads) allocated on demand,
/// as the runtime does, against wasmtime's pooling allocator.
fn instance_allocation(c: &mut Criterion) {
    let trace = trace();
    for model in ["baseline", "mstl"] {
        let mut group = c.benchmark_group(format!("allocation/{model}"));
        for allocator in [Allocator::Pooling, Allocator::OnDemand] {
            let runtime = ModelRuntime::with_allocator(
                RuntimeLimits::default(),
                ComponentCache::disabled(),
                allocator,
            )
            .unwrap();
            let loaded = runtime.load(&ModelSource::parse(model)).unwrap();
            for points in [180, 10_080] {
                let request = request(&trace, points);
                let id = BenchmarkId::new(format!("{allocator:?}"), points);
                group.bench_with_input(id, &request, |b, r| {
                    b.iter(|| loaded.forecast(black_box(r)).unwrap())
                });
            }
        }
        group.finish();
    }
}

fn compile_vs_precompiled(c: &mut Criterion) {
    let cache = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("load");
    group.sample_size(20);
    for model in ["baseline", "arima", "mstl"] {
        let source = ModelSource::parse(model);
        let uncached =
            ModelRuntime::new(RuntimeLimits::default(), ComponentCache::disabled()).unwrap();
        group.bench_function(BenchmarkId::new("compile", model), |b| {
            b.iter(|| uncached.load(&source).unwrap())
        });
        let cached = ModelRuntime::new(
            RuntimeLimits::default(),
            ComponentCache::new(Some(cache.path().to_path_buf())),
        )
        .unwrap();
        cached.load(&source).unwrap();
        group.bench_function(BenchmarkId::new("precompiled", model), |b| {
            b.iter(|| cached.load(&source).unwrap())
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    forecast_latency,
    instance_allocation,
    compile_vs_precompiled
);
criterion_main!(benches);
