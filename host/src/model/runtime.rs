//! The wasmtime side of models.
//!
//! One [`ModelRuntime`] per process owns the `Engine` (wasmtime's compiled-code
//! and configuration context), the `Linker` and an epoch ticker thread. It
//! turns a [`ModelSource`] into a [`LoadedModel`]: compiled (or loaded
//! precompiled), checked against the world, and described.
//!
//! **Every call runs in a fresh instance**: a new `Store` instantiated from
//! the component's `InstancePre`, dropped when the call returns. Nothing a
//! model keeps in memory outlives a call, so no workload ever sees another's
//! data, and a trap never poisons the next call. Against reusing an instance
//! it costs tens of microseconds a call, within noise on long histories
//! (BENCHMARKS.md, "With a fresh instance per call"); an instance per workload
//! would hold a thousand workloads' guest memory, and the pooling allocator
//! measured slower than allocating on demand.
//!
//! Every call runs
//! - under a CPU deadline: an epoch ticker increments the engine's epoch every
//!   [`EPOCH_TICK`]; a call gets `timeout / EPOCH_TICK` ticks and traps with
//!   `Interrupt` past them (epochs cost far less than fuel; the deadline is
//!   wall-clock time on the calling thread, which is what a forecaster loop
//!   cares about);
//! - under a memory cap, enforced by a `ResourceLimiter` that remembers it
//!   refused growth, so running out of memory is told apart from other traps;
//! - with WASI that grants nothing: no preopened directories, no environment,
//!   no network addresses, frozen clocks, a fixed random stream (guests' hash
//!   maps need one), stdout discarded and stderr captured (a panic message ends
//!   up in the trap error). Sleeping is refused: a guest could otherwise block
//!   the calling thread inside the host, where no deadline reaches.
//!
//! Every string a guest returns (error messages, stderr, what `describe`
//! says) is bounded as it leaves here ([`text`](super::text)).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use kedastral_model_sdk::{
    Forecast, ForecastRequest, ModelError, ModelInfo, ParamSpec, QuantileBand,
};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{
    Deterministic, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView,
    WasiView,
};

use super::cache::{CompileOutcome, ComponentCache};
use super::error::{ModelCallError, ModelLoadError};
use super::source::{BUILTINS, ModelSource};
use super::text::{self, GUEST_NAME_LIMIT, GUEST_PARAMS_LIMIT, GUEST_TEXT_LIMIT};
use super::validate;

mod bindings {
    wasmtime::component::bindgen!({
        world: "forecast-model",
        path: "../wit/forecast-0.1.0",
    });
}

use bindings::exports::kedastral::forecast::model as wit;
use bindings::{ForecastModel, ForecastModelPre};

/// The world every model implements, and the interface it exports.
pub const WORLD: &str = "kedastral:forecast/forecast-model@0.1.0";
pub const MODEL_INTERFACE: &str = "kedastral:forecast/model@0.1.0";

/// How often the epoch advances: the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// A guest's stderr is kept up to this size per call; only its tail ever
/// reaches an error message.
const STDERR_CAPACITY: usize = 64 * 1024;

/// The WASI version wasmtime-wasi 48 links; the clock functions that could
/// block the host are shadowed under this name.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Limits every model call runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeLimits {
    /// Largest linear memory a guest may grow to, in bytes.
    pub memory_bytes: usize,
    /// Longest a single call (or instantiation) may run.
    pub timeout: Duration,
}

impl Default for RuntimeLimits {
    /// 128 MiB and 2 s: ten times what the built-in models need on a week of
    /// minute data (a few MiB, a few ms), and room for a model written in a
    /// language with a bigger runtime.
    fn default() -> Self {
        Self {
            memory_bytes: 128 * 1024 * 1024,
            timeout: Duration::from_secs(2),
        }
    }
}

impl RuntimeLimits {
    fn deadline_ticks(&self) -> u64 {
        // +1: the next tick may come at once, so a budget of n ticks can be
        // cut short by up to one tick.
        (self.timeout.as_nanos() / EPOCH_TICK.as_nanos()) as u64 + 1
    }
}

/// How instances get their memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    /// wasmtime's pooling allocator: memory slots reserved once and reused,
    /// reset (never shared) between instances. Kept to measure against: for
    /// these models it is slower than [`Allocator::OnDemand`], as resetting
    /// a slot's resident pages costs more than mapping fresh ones.
    Pooling,
    /// A fresh mapping per instance, unmapped when it ends: the runtime's.
    OnDemand,
}

/// Instances that may be alive at once with the pooling allocator: calls
/// running (one per model slot, one per model on probation) and loads. A
/// call that finds every slot taken fails as `instantiate`.
const POOL_INSTANCES: u32 = 128;

/// Memory kept resident in a reused slot and zeroed rather than unmapped
/// when its instance ends: the pages a model touches on most calls, so a
/// fresh instance does not fault them in again.
const POOL_KEEP_RESIDENT: usize = 1 << 20;

/// Used slots kept warm beyond those in use (each keeps up to
/// [`POOL_KEEP_RESIDENT`] resident).
const POOL_WARM_SLOTS: u32 = 8;

/// The process-wide model runtime: one engine, one linker, one cache.
#[derive(Clone)]
pub struct ModelRuntime {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    cache: ComponentCache,
    limits: RuntimeLimits,
}

impl ModelRuntime {
    /// A runtime whose instances are allocated on demand: measured faster
    /// than the pooling allocator for a fresh instance per call
    /// (BENCHMARKS.md, "With a fresh instance per call").
    pub fn new(limits: RuntimeLimits, cache: ComponentCache) -> anyhow::Result<Self> {
        Self::with_allocator(limits, cache, Allocator::OnDemand)
    }

    pub fn with_allocator(
        limits: RuntimeLimits,
        cache: ComponentCache,
        allocator: Allocator,
    ) -> anyhow::Result<Self> {
        let mut config = Config::new();
        if allocator == Allocator::Pooling {
            let mut pool = wasmtime::PoolingAllocationConfig::new();
            pool.total_component_instances(POOL_INSTANCES)
                .total_core_instances(POOL_INSTANCES * 8)
                .total_memories(POOL_INSTANCES * 2)
                .total_tables(POOL_INSTANCES * 4)
                .max_memories_per_module(2)
                .max_tables_per_module(4)
                .max_memory_size(limits.memory_bytes)
                .linear_memory_keep_resident(POOL_KEEP_RESIDENT)
                .max_unused_warm_slots(POOL_WARM_SLOTS);
            config.allocation_strategy(pool);
        }
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // For profiling models with `perf`: names the JIT-compiled functions.
        if std::env::var_os("KEDASTRAL_WASM_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        spawn_epoch_ticker(&engine);

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        linker.allow_shadowing(true);
        let mut clock = linker.instance(MONOTONIC_CLOCK)?;
        for name in ["subscribe-instant", "subscribe-duration"] {
            clock.func_new(name, |_, _, _, _| {
                Err(wasmtime::format_err!(
                    "models may not sleep or wait on a clock (called monotonic-clock subscribe)"
                ))
            })?;
        }
        linker.allow_shadowing(false);

        Ok(Self {
            engine,
            linker: Arc::new(linker),
            cache,
            limits,
        })
    }

    pub fn limits(&self) -> RuntimeLimits {
        self.limits
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads the model `--model` names.
    pub fn load(&self, source: &ModelSource) -> Result<LoadedModel, ModelLoadError> {
        let (label, bytes): (String, Cow<'static, [u8]>) = match source {
            ModelSource::Builtin(name) => {
                let (_, bytes) = BUILTINS
                    .iter()
                    .find(|(n, _)| n == name)
                    .expect("ModelSource::Builtin only holds built-in names");
                ((*name).to_owned(), Cow::Borrowed(bytes))
            }
            ModelSource::File(path) => {
                if !path.exists() && !source.looks_like_path() {
                    return Err(ModelLoadError::UnknownBuiltin {
                        name: path.display().to_string(),
                        available: ModelSource::builtin_names(),
                    });
                }
                let bytes = std::fs::read(path).map_err(|e| ModelLoadError::Read {
                    path: path.clone(),
                    source: e,
                })?;
                (path.display().to_string(), Cow::Owned(bytes))
            }
        };
        self.load_bytes(&label, &bytes)
    }

    /// Loads a component from its bytes; `label` names it in errors and logs.
    pub fn load_bytes(&self, label: &str, bytes: &[u8]) -> Result<LoadedModel, ModelLoadError> {
        check_header(label, bytes)?;
        let (component, compile) =
            self.cache
                .load_or_compile(&self.engine, bytes)
                .map_err(|e| ModelLoadError::Compile {
                    model: label.to_owned(),
                    message: text::message(&format!("{e:#}")),
                })?;
        check_world(&self.engine, label, &component)?;
        let instance_pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|e| ModelLoadError::Link {
                    model: label.to_owned(),
                    message: format!(
                        "{} (models may import only WASI interfaces, and get no capabilities from them)",
                        text::message(&format!("{e:#}"))
                    ),
                })?;
        let pre = ForecastModelPre::new(instance_pre).map_err(|e| ModelLoadError::WrongWorld {
            model: label.to_owned(),
            world: WORLD,
            missing: text::message(&format!("{e:#}")),
            exports: export_names(&self.engine, &component),
        })?;
        let mut model = LoadedModel {
            inner: Arc::new(Loaded {
                label: label.to_owned(),
                info: ModelInfo::new(label, "", "", 0),
                pre,
                engine: self.engine.clone(),
                limits: self.limits,
                compile,
                content_hash: content_hash(bytes),
            }),
        };
        let info = model.describe().map_err(|e| ModelLoadError::Describe {
            model: label.to_owned(),
            source: Box::new(e),
        })?;
        check_info(&info).map_err(|message| ModelLoadError::BadInfo {
            model: label.to_owned(),
            message,
        })?;
        Arc::get_mut(&mut model.inner)
            .expect("no call outlives describe")
            .info = from_wit_info(info);
        Ok(model)
    }
}

/// A compiled, checked model. Cheap to clone and shareable between threads;
/// each call runs in an instance of its own.
#[derive(Clone)]
pub struct LoadedModel {
    inner: Arc<Loaded>,
}

struct Loaded {
    label: String,
    info: ModelInfo,
    pre: ForecastModelPre<HostState>,
    engine: Engine,
    limits: RuntimeLimits,
    compile: CompileOutcome,
    /// `sha256:` and the hex digest of the component's bytes.
    content_hash: String,
}

/// `sha256:` and the hex digest of `bytes`: what tells two versions of a
/// file apart.
pub fn content_hash(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

impl LoadedModel {
    /// What the model says about itself.
    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    /// Where the model came from (built-in name or path).
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// Whether loading compiled the component or found it precompiled.
    pub fn compile_outcome(&self) -> CompileOutcome {
        self.inner.compile
    }

    /// The digest of the component's bytes (see [`content_hash`]).
    pub fn content_hash(&self) -> &str {
        &self.inner.content_hash
    }

    /// Asks the model to describe itself, as it says it.
    fn describe(&self) -> Result<wit::ModelInfo, ModelCallError> {
        self.call(|bindings, store| bindings.kedastral_forecast_model().call_describe(store))
    }

    /// Runs one forecast in a fresh instance. The request is checked first
    /// and the answer after: only a valid forecast comes back as `Ok`.
    /// Blocks for the call's length: call it off the async threads.
    pub fn forecast(&self, request: &ForecastRequest) -> Result<Forecast, ModelCallError> {
        let model = || self.inner.label.clone();
        validate::check_request(request).map_err(|reason| ModelCallError::InvalidRequest {
            model: model(),
            reason,
        })?;
        let wit_request = to_wit_request(request);
        let answer = self.call(|bindings, store| {
            bindings
                .kedastral_forecast_model()
                .call_forecast(store, &wit_request)
        })?;
        let forecast = answer.map_err(|e| ModelCallError::Model {
            model: model(),
            error: from_wit_error(e),
        })?;
        let forecast = from_wit_forecast(forecast);
        validate::check_forecast(request, &forecast).map_err(|reason| {
            ModelCallError::InvalidOutput {
                model: model(),
                reason,
            }
        })?;
        Ok(forecast)
    }

    /// Instantiates the model in a new store, runs `f` on it and drops the
    /// store, whatever happened.
    fn call<R>(
        &self,
        f: impl FnOnce(&ForecastModel, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, ModelCallError> {
        let inner = &self.inner;
        let Live {
            mut store,
            bindings,
        } = instantiate(inner)?;
        store.set_epoch_deadline(inner.limits.deadline_ticks());
        f(&bindings, &mut store).map_err(|e| classify(inner, e, store.data()))
    }
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("label", &self.inner.label)
            .field("info", &self.inner.info)
            .finish_non_exhaustive()
    }
}

/// One call's instance.
struct Live {
    store: Store<HostState>,
    bindings: ForecastModel,
}

fn instantiate(model: &Loaded) -> Result<Live, ModelCallError> {
    let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
    let wasi = WasiCtxBuilder::new()
        .stderr(stderr.clone())
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock)
        .secure_random(Deterministic::new(FIXED_RANDOM.to_vec()))
        .insecure_random(Deterministic::new(FIXED_RANDOM.to_vec()))
        .insecure_random_seed(0)
        .build();
    let state = HostState {
        wasi,
        table: ResourceTable::new(),
        limiter: MemoryCap {
            limit_bytes: model.limits.memory_bytes,
            refused: false,
        },
        stderr,
    };
    let mut store = Store::new(&model.engine, state);
    store.limiter(|s| &mut s.limiter);
    store.epoch_deadline_trap();
    store.set_epoch_deadline(model.limits.deadline_ticks());
    match model.pre.instantiate(&mut store) {
        Ok(bindings) => Ok(Live { store, bindings }),
        Err(e) => Err(match classify(model, e, store.data()) {
            ModelCallError::Trap { model, message } => {
                ModelCallError::Instantiate { model, message }
            }
            other => other,
        }),
    }
}

fn classify(model: &Loaded, error: wasmtime::Error, state: &HostState) -> ModelCallError {
    let label = model.label.clone();
    if state.limiter.refused {
        return ModelCallError::OutOfMemory {
            model: label,
            limit_bytes: model.limits.memory_bytes,
        };
    }
    if let Some(Trap::Interrupt) = error.downcast_ref::<Trap>() {
        return ModelCallError::Timeout {
            model: label,
            limit: model.limits.timeout,
        };
    }
    let mut message = text::message(&match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    });
    let stderr = state.stderr.contents();
    let stderr = String::from_utf8_lossy(&stderr);
    let stderr = stderr.trim();
    if !stderr.is_empty() {
        // The guest's last words (a Rust panic prints its message there).
        let tail: String = stderr
            .chars()
            .rev()
            .take(STDERR_TAIL_CHARS)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        message.push_str(&format!("; guest stderr: {}", text::message(&tail)));
    }
    ModelCallError::Trap {
        model: label,
        message,
    }
}

/// Characters of a guest's stderr kept in a trap's message: its last words.
const STDERR_TAIL_CHARS: usize = 500;

/// A fixed byte stream for the guest's random interfaces: guests get what a
/// hash map needs, and the same answer on every run.
const FIXED_RANDOM: [u8; 32] = *b"kedastral-deterministic-entropy!";

struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryCap,
    stderr: MemoryOutputPipe,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Refuses memory growth past the cap and remembers that it did.
struct MemoryCap {
    limit_bytes: usize,
    refused: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit_bytes {
            self.refused = true;
            // Trap at once rather than hand the guest a failed grow: a Rust
            // guest would abort anyway, and others might spin on retries.
            wasmtime::bail!(
                "memory cap of {} bytes reached (wanted {desired})",
                self.limit_bytes
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a forecast model needs a few
        // thousand at most.
        Ok(desired <= 100_000)
    }
}

/// Clocks that always read zero: a model knows time only from its request.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`]. The thread holds only a
/// weak reference, so it ends once the last user of the engine is gone.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("kedastral-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .expect("spawning the epoch ticker thread");
}

fn check_header(label: &str, bytes: &[u8]) -> Result<(), ModelLoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(ModelLoadError::NotWasm {
            model: label.to_owned(),
        });
    }
    // Bytes 6..8 are the layer: 0 for a core module, 1 for a component.
    if bytes[6..8] == [0, 0] {
        return Err(ModelLoadError::CoreModule {
            model: label.to_owned(),
        });
    }
    Ok(())
}

fn export_names(engine: &Engine, component: &Component) -> String {
    let names: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| format!("`{name}`"))
        .collect();
    if names.is_empty() {
        "nothing".into()
    } else {
        // Names are the component's own: a hostile one may have many.
        text::message(&names.join(", "))
    }
}

/// Names what is missing when a component does not export the model
/// interface or its functions, before wasmtime's type check (whose message
/// would say less).
fn check_world(engine: &Engine, label: &str, component: &Component) -> Result<(), ModelLoadError> {
    let wrong = |missing: String| ModelLoadError::WrongWorld {
        model: label.to_owned(),
        world: WORLD,
        missing,
        exports: export_names(engine, component),
    };
    let ty = component.component_type();
    let Some(export) = ty.get_export(engine, MODEL_INTERFACE) else {
        return Err(wrong(format!("it has no `{MODEL_INTERFACE}` export")));
    };
    let ComponentItem::ComponentInstance(interface) = export.ty else {
        return Err(wrong(format!(
            "its `{MODEL_INTERFACE}` export is not an interface"
        )));
    };
    for func in ["describe", "forecast"] {
        match interface.get_export(engine, func).map(|e| e.ty) {
            Some(ComponentItem::ComponentFunc(_)) => {}
            _ => {
                return Err(wrong(format!(
                    "its `{MODEL_INTERFACE}` export has no function `{func}`"
                )));
            }
        }
    }
    Ok(())
}

/// Refuses what a model says of itself if it cannot serve as identifiers:
/// names and versions become metric labels and configuration keys, so they
/// must be short and printable (a long one is refused, not cut: two names
/// cut to one prefix would collide). Descriptions are cut instead, later.
fn check_info(info: &wit::ModelInfo) -> Result<(), String> {
    let identifier = |what: &str, value: &str| -> Result<(), String> {
        if value.trim().is_empty() {
            return Err(format!("empty {what}"));
        }
        if value.len() > GUEST_NAME_LIMIT {
            return Err(format!(
                "its {what} is {} bytes long, at most {GUEST_NAME_LIMIT} ({})",
                value.len(),
                text::bounded(value, 40, false)
            ));
        }
        if value.chars().any(text::unsafe_char) {
            return Err(format!(
                "its {what} `{}` has control characters",
                text::message(value)
            ));
        }
        Ok(())
    };
    identifier("name", &info.name)?;
    identifier("version", &info.version)?;
    if info.params.len() > GUEST_PARAMS_LIMIT {
        return Err(format!(
            "it declares {} parameters, at most {GUEST_PARAMS_LIMIT}",
            info.params.len()
        ));
    }
    for (i, p) in info.params.iter().enumerate() {
        identifier("parameter name", &p.name)?;
        if p.default_value.len() > GUEST_TEXT_LIMIT {
            return Err(format!(
                "the default of parameter `{}` is {} bytes long, at most {GUEST_TEXT_LIMIT}",
                p.name,
                p.default_value.len()
            ));
        }
        if p.default_value.chars().any(text::unsafe_char) {
            return Err(format!(
                "the default of parameter `{}` has control characters",
                p.name
            ));
        }
        if info.params[..i].iter().any(|q| q.name == p.name) {
            return Err(format!("parameter `{}` is declared twice", p.name));
        }
    }
    Ok(())
}

fn to_wit_request(request: &ForecastRequest) -> wit::ForecastRequest {
    wit::ForecastRequest {
        history: wit::Series {
            start_unix_seconds: request.history.start_unix_seconds,
            step_seconds: request.history.step_seconds,
            values: request.history.values.clone(),
        },
        horizon: request.horizon,
        quantiles: request.quantiles.clone(),
        params: request.params.clone(),
    }
}

fn from_wit_forecast(forecast: wit::ForecastResponse) -> Forecast {
    Forecast {
        values: forecast.values,
        quantiles: forecast
            .quantiles
            .into_iter()
            .map(|b| QuantileBand {
                level: b.level,
                values: b.values,
            })
            .collect(),
    }
}

fn from_wit_error(error: wit::ModelError) -> ModelError {
    match error {
        wit::ModelError::InvalidInput(m) => ModelError::InvalidInput(text::message(&m)),
        wit::ModelError::InsufficientHistory(h) => ModelError::InsufficientHistory {
            needed: h.needed,
            got: h.got,
        },
        wit::ModelError::Internal(m) => ModelError::Internal(text::message(&m)),
    }
}

/// What `describe` said, once [`check_info`] passed it: descriptions cut to
/// [`GUEST_TEXT_LIMIT`].
fn from_wit_info(info: wit::ModelInfo) -> ModelInfo {
    let description = |d: &str| text::bounded(d, GUEST_TEXT_LIMIT, true);
    ModelInfo {
        description: description(&info.description),
        name: info.name,
        version: info.version,
        min_history: info.min_history,
        params: info
            .params
            .into_iter()
            .map(|p| ParamSpec {
                description: description(&p.description),
                name: p.name,
                default_value: p.default_value,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, param: &str) -> wit::ModelInfo {
        wit::ModelInfo {
            name: name.into(),
            version: "1.0.0".into(),
            description: "d\u{1b}[2J\n".repeat(2_000),
            min_history: 1,
            params: vec![wit::ParamSpec {
                name: param.into(),
                default_value: "1".into(),
                description: "p".into(),
            }],
        }
    }

    #[test]
    fn identifiers_that_are_too_long_or_unprintable_are_refused() {
        assert_eq!(check_info(&info("good", "alpha")), Ok(()));
        let long = "n".repeat(GUEST_NAME_LIMIT + 1);
        let err = check_info(&info(&long, "alpha")).unwrap_err();
        assert!(
            err.contains("its name is 65 bytes long, at most 64"),
            "{err}"
        );
        assert!(err.len() < 200, "{err}");
        let err = check_info(&info("good", "al\u{1b}pha")).unwrap_err();
        assert!(
            err.contains("parameter name") && err.contains("control"),
            "{err}"
        );
        assert!(!err.contains('\u{1b}'), "{err}");
        let err = check_info(&info(" ", "alpha")).unwrap_err();
        assert_eq!(err, "empty name");
    }

    #[test]
    fn descriptions_are_cut_and_keep_their_newlines_only() {
        let described = from_wit_info(info("good", "alpha"));
        assert!(described.description.len() < GUEST_TEXT_LIMIT + 40);
        assert!(described.description.contains("[cut: "));
        assert!(described.description.starts_with("d\u{FFFD}[2J\nd"));
    }
}
