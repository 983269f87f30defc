//! Precompiled components on disk.
//!
//! Compiling a component with Cranelift takes tens of milliseconds (seconds
//! for large guests); loading the precompiled artefact takes microseconds. The
//! cache key is a SHA-256 of the component bytes, a cache format tag and the
//! engine's compatibility hash (target, tunables such as epoch interruption),
//! so a changed model, a new wasmtime or a different `Config` never loads a
//! stale artefact. The directory holds only what this host wrote: loading a
//! precompiled artefact is `unsafe` because it is trusted native code.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// How a component came to be ready, reported so callers (and tests) can tell
/// whether Cranelift ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileOutcome {
    /// Loaded from a precompiled artefact in the cache.
    CacheHit,
    /// Compiled now and written to the cache.
    CompiledAndCached,
    /// Compiled now; no cache (disabled or not writable).
    Compiled,
}

#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
}

impl ComponentCache {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    pub fn disabled() -> Self {
        Self { dir: None }
    }

    /// `$XDG_CACHE_HOME/kedastral/models`, else `$HOME/.cache/kedastral/models`.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("kedastral").join("models"))
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Returns the compiled component for `bytes`, from the cache when a valid
    /// artefact is there, else by compiling (and caching when possible).
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CompileOutcome)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, bytes)?, CompileOutcome::Compiled));
        };
        let path = dir.join(format!("{}.cwasm", cache_key(engine, bytes)));
        // Read into memory rather than `deserialize_file`: a mapped file that
        // someone truncates or rewrites under a running process would kill it
        // with SIGBUS; a copy costs a fraction of a millisecond.
        if let Ok(artefact) = std::fs::read(&path) {
            // SAFETY: files in the cache directory are written only by
            // `store` below from `Engine::precompile_component` output, under
            // a name that binds them to these exact bytes and this engine's
            // configuration; wasmtime also checks its version and config
            // before accepting the artefact.
            match unsafe { Component::deserialize(engine, &artefact) } {
                Ok(component) => return Ok((component, CompileOutcome::CacheHit)),
                Err(e) => tracing::warn!(path = %path.display(), error = %e,
                    "ignoring unusable precompiled model; recompiling"),
            }
        }
        let artefact = engine.precompile_component(bytes)?;
        // SAFETY: `artefact` was produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &artefact)? };
        match store(dir, &path, &artefact) {
            Ok(()) => Ok((component, CompileOutcome::CompiledAndCached)),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e,
                    "cannot write the model cache; models will be compiled at every start");
                Ok((component, CompileOutcome::Compiled))
            }
        }
    }
}

/// Bumped when the way artefacts are produced changes (wasmtime itself also
/// refuses artefacts from another version, and those are then recompiled).
const CACHE_FORMAT: &str = "kedastral-cwasm-1/wasmtime-48";

fn cache_key(engine: &Engine, bytes: &[u8]) -> String {
    // The compatibility hash is only exposed through `Hash`; a fixed-key
    // SipHash turns it into bytes that are stable for one build of the host.
    let mut compat = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    let mut sha = Sha256::new();
    sha.update(CACHE_FORMAT.as_bytes());
    sha.update(compat.finish().to_le_bytes());
    sha.update(bytes);
    sha.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes atomically (temporary file, then rename), so a concurrent start or
/// a crash never leaves a half-written artefact under the final name.
fn store(dir: &Path, path: &Path, artefact: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, artefact)?;
    std::fs::rename(&tmp, path)
}
