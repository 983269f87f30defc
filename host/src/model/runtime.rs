//! The wasmtime side of models.
//!
//! One [`ModelRuntime`] per process owns the `Engine` (wasmtime's compiled-code
//! and configuration context), the `Linker` and an epoch ticker thread. It
//! turns a [`ModelSource`] into a [`LoadedModel`]: compiled (or loaded
//! precompiled), checked against the world, and described. Each user of a
//! model (one workload, one backtest) owns a [`ModelInstance`], whose `Store`
//! lives on across calls while the guest behaves and is thrown away after a
//! trap, so one bad call never poisons the next.
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

/// A guest's stderr is kept up to this size; past half of it the instance is
/// recycled, so a chatty model never fills it and fails on a write.
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

/// The process-wide model runtime: one engine, one linker, one cache.
pub struct ModelRuntime {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    cache: ComponentCache,
    limits: RuntimeLimits,
}

impl ModelRuntime {
    pub fn new(limits: RuntimeLimits, cache: ComponentCache) -> anyhow::Result<Self> {
        let mut config = Config::new();
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
                    message: format!("{e:#}"),
                })?;
        check_world(&self.engine, label, &component)?;
        let instance_pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|e| ModelLoadError::Link {
                    model: label.to_owned(),
                    message: format!(
                        "{e:#} (models may import only WASI interfaces, and get no capabilities from them)"
                    ),
                })?;
        let pre = ForecastModelPre::new(instance_pre).map_err(|e| ModelLoadError::WrongWorld {
            model: label.to_owned(),
            world: WORLD,
            missing: format!("{e:#}"),
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
            }),
        };
        let info = model
            .instance()
            .describe()
            .map_err(|e| ModelLoadError::Describe {
                model: label.to_owned(),
                source: Box::new(e),
            })?;
        check_info(label, &info)?;
        Arc::get_mut(&mut model.inner)
            .expect("no instance outlives describe")
            .info = info;
        Ok(model)
    }
}

/// A compiled, checked model. Cheap to clone and shareable between threads;
/// calls go through a [`ModelInstance`] owned by one caller.
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

    /// A fresh instance; it is instantiated on its first call.
    pub fn instance(&self) -> ModelInstance {
        ModelInstance {
            model: self.clone(),
            live: None,
        }
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

/// One caller's instance of a model.
pub struct ModelInstance {
    model: LoadedModel,
    live: Option<Live>,
}

struct Live {
    store: Store<HostState>,
    bindings: ForecastModel,
}

impl ModelInstance {
    pub fn model(&self) -> &LoadedModel {
        &self.model
    }

    /// Asks the model to describe itself.
    pub fn describe(&mut self) -> Result<ModelInfo, ModelCallError> {
        let info =
            self.call(|bindings, store| bindings.kedastral_forecast_model().call_describe(store))?;
        Ok(from_wit_info(info))
    }

    /// Runs one forecast. The request is checked first and the answer after:
    /// only a valid forecast comes back as `Ok`.
    pub fn forecast(&mut self, request: &ForecastRequest) -> Result<Forecast, ModelCallError> {
        let model = || self.model.inner.label.clone();
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
            model: self.model.inner.label.clone(),
            error: from_wit_error(e),
        })?;
        let forecast = from_wit_forecast(forecast);
        validate::check_forecast(request, &forecast).map_err(|reason| {
            ModelCallError::InvalidOutput {
                model: self.model.inner.label.clone(),
                reason,
            }
        })?;
        Ok(forecast)
    }

    fn call<R>(
        &mut self,
        f: impl FnOnce(&ForecastModel, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, ModelCallError> {
        let inner = &self.model.inner;
        let live = match &mut self.live {
            Some(live) => live,
            empty => empty.insert(instantiate(inner)?),
        };
        live.store.set_epoch_deadline(inner.limits.deadline_ticks());
        match f(&live.bindings, &mut live.store) {
            Ok(r) => {
                if live.store.data().stderr.contents().len() > STDERR_CAPACITY / 2 {
                    self.live = None;
                }
                Ok(r)
            }
            Err(e) => {
                let error = classify(inner, e, live.store.data());
                // A trapped instance may be in any state: never call it again.
                self.live = None;
                Err(error)
            }
        }
    }
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
    let mut message = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    let stderr = state.stderr.contents();
    let stderr = String::from_utf8_lossy(&stderr);
    let stderr = stderr.trim();
    if !stderr.is_empty() {
        // The guest's last words (a Rust panic prints its message there).
        let tail: String = stderr
            .chars()
            .rev()
            .take(500)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        message.push_str(&format!("; guest stderr: {tail}"));
    }
    ModelCallError::Trap {
        model: label,
        message,
    }
}

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
        names.join(", ")
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

fn check_info(label: &str, info: &ModelInfo) -> Result<(), ModelLoadError> {
    let bad = |message: String| ModelLoadError::BadInfo {
        model: label.to_owned(),
        message,
    };
    if info.name.trim().is_empty() {
        return Err(bad("empty name".into()));
    }
    if info.version.trim().is_empty() {
        return Err(bad("empty version".into()));
    }
    for (i, p) in info.params.iter().enumerate() {
        if info.params[..i].iter().any(|q| q.name == p.name) {
            return Err(bad(format!("parameter `{}` is declared twice", p.name)));
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
        wit::ModelError::InvalidInput(m) => ModelError::InvalidInput(m),
        wit::ModelError::InsufficientHistory(h) => ModelError::InsufficientHistory {
            needed: h.needed,
            got: h.got,
        },
        wit::ModelError::Internal(m) => ModelError::Internal(m),
    }
}

fn from_wit_info(info: wit::ModelInfo) -> ModelInfo {
    ModelInfo {
        name: info.name,
        version: info.version,
        description: info.description,
        min_history: info.min_history,
        params: info
            .params
            .into_iter()
            .map(|p| ParamSpec {
                name: p.name,
                default_value: p.default_value,
                description: p.description,
            })
            .collect(),
    }
}
