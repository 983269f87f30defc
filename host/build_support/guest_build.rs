//! Builds guest crates of this workspace as WebAssembly components with a
//! nested `cargo build --target wasm32-wasip2`. Shared by `build.rs` (the
//! built-in models) and the integration tests (example and hostile guests).

use std::path::{Path, PathBuf};
use std::process::Command;

pub const GUEST_TARGET: &str = "wasm32-wasip2";
pub const GUEST_PROFILE: &str = "guest";

/// Variables the outer cargo (or clippy, or a coverage tool) sets that must
/// not leak into the nested build: they carry host-only flags, a wrapper that
/// would lint the guests, or a target dir that would make the two builds
/// wait on one lock.
const SCRUBBED_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CLIPPY_ARGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTDOCFLAGS",
    "CARGO_LLVM_COV",
    "LLVM_PROFILE_FILE",
];

pub struct GuestBuilder {
    workspace: PathBuf,
    target_dir: PathBuf,
    cargo: PathBuf,
}

impl GuestBuilder {
    pub fn for_workspace(workspace: &Path) -> Self {
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join("target"))
            .join("guest-build");
        let cargo = std::env::var_os("CARGO")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("cargo"));
        Self {
            workspace: workspace.to_path_buf(),
            target_dir,
            cargo,
        }
    }

    /// Builds `packages` and returns the path of each one's component, in order.
    pub fn build(&self, packages: &[&str]) -> Result<Vec<PathBuf>, String> {
        ensure_guest_target()?;
        let mut cmd = Command::new(&self.cargo);
        cmd.arg("build")
            .arg("--manifest-path")
            .arg(self.workspace.join("Cargo.toml"))
            .args(["--profile", GUEST_PROFILE, "--target", GUEST_TARGET])
            .arg("--target-dir")
            .arg(&self.target_dir);
        for package in packages {
            cmd.args(["-p", package]);
        }
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        // WebAssembly SIMD (which wasmtime runs) lets LLVM vectorise the
        // models' loops as it does with SSE natively.
        cmd.env(
            "CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS",
            "-C target-feature=+simd128,+relaxed-simd",
        );
        let output = cmd
            .output()
            .map_err(|e| format!("could not run {}: {e}", self.cargo.display()))?;
        if !output.status.success() {
            return Err(format!(
                "`cargo build --target {GUEST_TARGET}` of {packages:?} failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(packages
            .iter()
            .map(|p| {
                self.target_dir
                    .join(GUEST_TARGET)
                    .join(GUEST_PROFILE)
                    .join(format!("{}.wasm", p.replace('-', "_")))
            })
            .collect())
    }
}

/// Makes sure the standard library for `wasm32-wasip2` is installed, adding it
/// with rustup when it is not, so a fresh machine with Rust needs no extra step.
fn ensure_guest_target() -> Result<(), String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("could not run rustc: {e}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(GUEST_TARGET).exists() {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", GUEST_TARGET])
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        _ => Err(format!(
            "the Rust target {GUEST_TARGET} is not installed and `rustup target add {GUEST_TARGET}` \
             failed; install it by hand (it is needed to build the forecast models)"
        )),
    }
}
