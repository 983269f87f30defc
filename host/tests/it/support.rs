//! What the integration tests share: building guest fixtures from source,
//! a runtime, and histories.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kedastral::model::cache::ComponentCache;
use kedastral::model::{ModelRuntime, RuntimeLimits, Series};

#[path = "../../build_support/guest_build.rs"]
#[allow(dead_code, reason = "shared with build.rs, which uses other parts")]
mod guest_build;

/// The guest crates the tests load as `.wasm` files.
const FIXTURES: [&str; 4] = [
    "kedastral-example-window",
    "kedastral-test-hostile",
    "kedastral-test-loud",
    "kedastral-test-wrong-world",
];

pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is in the workspace")
}

/// The component built from `package` (one of [`FIXTURES`]), built once per
/// test run by a real `cargo build --target wasm32-wasip2`.
pub fn fixture(package: &str) -> PathBuf {
    static BUILT: OnceLock<Vec<PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        guest_build::GuestBuilder::for_workspace(workspace())
            .build(&FIXTURES)
            .unwrap_or_else(|e| panic!("building test guests: {e}"))
    });
    let index = FIXTURES
        .iter()
        .position(|p| *p == package)
        .unwrap_or_else(|| panic!("{package} is not a test fixture"));
    built[index].clone()
}

/// Precompiled artefacts shared by the tests (a cache, as in production), so
/// each test does not pay for Cranelift again.
pub fn cache_dir() -> PathBuf {
    workspace().join("target").join("test-model-cache")
}

/// Compiles every built-in model into [`cache_dir`] once per test run,
/// before a test starts a `kedastral` process that loads them: on a clean
/// checkout the cache is empty, and a process compiling `fracast` (most of a
/// minute of CPU, alongside the other tests) would spend its test's time on
/// Cranelift rather than on what the test checks.
pub fn warm_model_cache() {
    static WARM: OnceLock<()> = OnceLock::new();
    WARM.get_or_init(|| {
        let runtime = runtime();
        for (name, _) in kedastral::model::source::BUILTINS {
            runtime
                .load(&kedastral::model::ModelSource::parse(name))
                .unwrap_or_else(|e| panic!("compiling the built-in {name}: {e}"));
        }
    });
}

pub fn runtime() -> ModelRuntime {
    runtime_with(RuntimeLimits::default())
}

pub fn runtime_with(limits: RuntimeLimits) -> ModelRuntime {
    ModelRuntime::new(limits, ComponentCache::new(Some(cache_dir()))).expect("runtime")
}

/// A small deterministic generator (SplitMix64) for synthetic noise.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `days` of a daily cycle with noise at `step` seconds, starting at midnight UTC.
pub fn daily_series(days: usize, step: u32, seed: u64) -> Series {
    let mut rng = Rng::new(seed);
    let n = days * 86_400 / step as usize;
    let values = (0..n)
        .map(|i| {
            let t = (i as f64 * f64::from(step)) / 86_400.0;
            100.0 + 40.0 * (2.0 * std::f64::consts::PI * t).sin() + 5.0 * (rng.uniform() - 0.5)
        })
        .collect();
    Series::new(1_767_225_600, step, values)
}

/// The last `points` minutes of the bundled NASA trace.
pub fn nasa_tail(points: usize) -> Series {
    let series =
        kedastral::history::load_csv(&workspace().join("examples/data/nasa_http_1m.csv"), None)
            .expect("bundled trace");
    series.tail(points)
}

/// Running a child process to its end with a time limit: a test whose
/// child hangs fails, naming it, instead of hanging the suite.
pub trait RunWithin {
    /// Like [`std::process::Command::output`], killing the child and
    /// panicking once `limit` has passed.
    fn run_within(&mut self, limit: std::time::Duration) -> std::io::Result<std::process::Output>;
}

impl RunWithin for std::process::Command {
    fn run_within(&mut self, limit: std::time::Duration) -> std::io::Result<std::process::Output> {
        use std::io::Read;
        use std::process::Stdio;
        let mut child = self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                bytes
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("piped")));
        let stderr = drain(Box::new(child.stderr.take().expect("piped")));
        let deadline = std::time::Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{:?} did not finish within {limit:?}: {}",
                    self.get_program(),
                    String::from_utf8_lossy(&stderr.join().unwrap_or_default())
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        Ok(std::process::Output {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        })
    }
}
