//! Fracast-0 natively and as a WebAssembly component, call by call in turn
//! on the same window, so that the machine's drift moves every build alike:
//! prints the fastest and the median of each and their ratio to native.
//!
//!     cargo run --release -p kedastral --example fracast_interleaved [CALLS] [HORIZON]
//!
//! The window is the last 2 048 points of the bundled 1-minute trace, as in
//! `cargo bench -p kedastral --bench fracast`; figures in BENCHMARKS.md.
//! `KEDASTRAL_FRACAST_WASM=a.wasm,b.wasm` times those components in place of
//! the built-in one, each in turn with the others (changes to the guest,
//! tried side by side without rebuilding the host).
//! `KEDASTRAL_FRACAST_POOLING=1` also times each under wasmtime's pooling
//! allocator (memory slots reused, their first pages kept resident) beside
//! the runtime's allocation on demand.

use std::path::Path;
use std::time::{Duration, Instant};

use kedastral::model::cache::ComponentCache;
use kedastral::model::runtime::Allocator;
use kedastral::model::{ForecastRequest, ModelRuntime, ModelSource, RuntimeLimits};
use kedastral_model_sdk::Model;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let calls: usize = args.next().map_or(Ok(40), |a| a.parse())?;
    let horizon: u32 = args.next().map_or(Ok(48), |a| a.parse())?;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data/nasa_http_1m.csv");
    let trace = kedastral::history::load_csv(&path, None)?;
    let request =
        ForecastRequest::new(trace.tail(2_048), horizon).with_quantiles(vec![0.1, 0.5, 0.9]);
    let mut runtimes = vec![(
        "",
        ModelRuntime::new(RuntimeLimits::default(), ComponentCache::disabled())?,
    )];
    if std::env::var("KEDASTRAL_FRACAST_POOLING").as_deref() == Ok("1") {
        runtimes.push((
            " (pooling)",
            ModelRuntime::with_allocator(
                RuntimeLimits::default(),
                ComponentCache::disabled(),
                Allocator::Pooling,
            )?,
        ));
    }
    let sources = std::env::var("KEDASTRAL_FRACAST_WASM").unwrap_or_else(|_| "fracast".into());
    let mut models = Vec::new();
    for source in sources.split(',') {
        for (suffix, runtime) in &runtimes {
            let loaded = runtime.load(&ModelSource::parse(source))?;
            // One call first: page faults and lazy set-up stay out.
            loaded.forecast(&request)?;
            models.push((format!("{source}{suffix}"), loaded, Vec::new()));
        }
    }
    let native_call = || kedastral_fracast::model::FracastModel::forecast(&request);
    native_call()?;
    let mut native = Vec::new();
    for _ in 0..calls {
        let start = Instant::now();
        std::hint::black_box(native_call()?);
        native.push(start.elapsed());
        for (_, loaded, times) in &mut models {
            let start = Instant::now();
            std::hint::black_box(loaded.forecast(std::hint::black_box(&request))?);
            times.push(start.elapsed());
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (native_min, native_median) = summary(&mut native);
    println!(
        "horizon {horizon}, {calls} calls each: native fastest {:.1} ms, median {:.1} ms",
        ms(native_min),
        ms(native_median)
    );
    for (source, _, times) in &mut models {
        let (min, median) = summary(times);
        println!(
            "{source}: fastest {:.1} ms, median {:.1} ms; / native {:.2} (fastest), {:.2} (median)",
            ms(min),
            ms(median),
            ms(min) / ms(native_min),
            ms(median) / ms(native_median),
        );
    }
    Ok(())
}

fn summary(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    (times[0], times[times.len() / 2])
}
