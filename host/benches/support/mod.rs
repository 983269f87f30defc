//! What several benches share: the bundled trace, a forecaster replaying it,
//! the runtimes and the process's CPU time. Each bench uses what it needs of
//! it.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use kedastral::clock::Clock;
use kedastral::collect::{ReplaySource, Source};
use kedastral::config::{self, WorkloadConfig, WorkloadFile};
use kedastral::forecaster::{Forecaster, ForecasterParts};
use kedastral::model::cache::ComponentCache;
use kedastral::model::{ModelRuntime, RuntimeLimits, Series};

/// The bundled 1-minute NASA trace.
pub fn trace() -> Series {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data/nasa_http_1m.csv");
    kedastral::history::load_csv(&path, None).expect("bundled trace")
}

/// CPU time of this process so far, every thread included.
pub fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given and touches nothing else.
    let usage = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()), 0);
        usage.assume_init()
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// The model runtime with default limits and no component cache, so every
/// bench compiles what it runs.
pub fn model_runtime() -> ModelRuntime {
    ModelRuntime::new(RuntimeLimits::default(), ComponentCache::disabled()).unwrap()
}

/// A multi-threaded Tokio runtime for driving ticks.
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `count` workloads like `template`, named `{prefix}0000` on, each reading
/// the replay (see [`replay_forecaster`]).
pub fn replay_workloads(count: usize, prefix: &str, template: WorkloadFile) -> Vec<WorkloadConfig> {
    (0..count)
        .map(|i| {
            config::check(WorkloadFile {
                name: format!("{prefix}{i:04}"),
                prom_query: "replay".into(),
                ..template.clone()
            })
            .expect("a valid workload")
        })
        .collect()
}

/// A forecaster of `workloads`, all reading one in-memory replay of
/// `trace`, with a model slot per core.
pub fn replay_forecaster(
    runtime: &ModelRuntime,
    workloads: Vec<WorkloadConfig>,
    trace: &Series,
) -> Forecaster {
    Forecaster::new(
        runtime,
        ForecasterParts {
            workloads,
            source: Source::Replay(ReplaySource::new("nasa", trace.clone())),
            shared: None,
            model_slots: std::thread::available_parallelism().map_or(2, |n| n.get()),
            clock: Clock::wall(),
            models_dir: None,
        },
    )
    .unwrap()
}
