//! The bring-your-own-model examples, built as their READMEs say and run
//! through the `kedastral` binary as a user would.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;
use crate::support::RunWithin;

fn kedastral(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kedastral"))
        .args(args)
        .env("KEDASTRAL_MODEL_CACHE_DIR", support::cache_dir())
        .run_within(std::time::Duration::from_secs(600))
        .expect("running kedastral");
    assert!(
        out.status.success(),
        "kedastral {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn refused(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kedastral"))
        .args(args)
        .env("KEDASTRAL_MODEL_CACHE_DIR", support::cache_dir())
        .run_within(std::time::Duration::from_secs(600))
        .expect("running kedastral");
    assert!(!out.status.success(), "kedastral {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A forecast of `horizon` steps from `model`: every value finite.
fn check_forecast(model: &Path, horizon: usize, params: &[&str]) {
    let mut args = vec![
        "forecast",
        "--model",
        model.to_str().unwrap(),
        "--horizon",
        "12",
        "--format",
        "json",
    ];
    for p in params {
        args.extend(["--param", p]);
    }
    let out: serde_json::Value = serde_json::from_str(&kedastral(&args)).unwrap();
    let values = out["values"].as_array().unwrap();
    assert_eq!(values.len(), horizon);
    assert!(
        values
            .iter()
            .all(|v| v.as_f64().is_some_and(f64::is_finite)),
        "{out}"
    );
    assert_eq!(out["quantiles"].as_array().unwrap().len(), 3);
}

#[test]
fn the_rust_example_builds_and_forecasts() {
    let wasm = support::fixture("kedastral-example-window");
    let info = kedastral(&["model", "inspect", wasm.to_str().unwrap()]);
    assert!(info.contains("level"), "{info}");
    check_forecast(&wasm, 12, &["level=0.9"]);
}

/// componentize-py, from PyPI (`scripts/test` installs it).
fn componentize_py() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("componentize-py"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "componentize-py is not installed: run scripts/test, which installs it in target/venv"
        )
    })
}

#[test]
fn the_python_example_builds_and_forecasts() {
    let root = support::workspace();
    let out = tempfile::tempdir().unwrap();
    let wasm = out.path().join("python-holt.wasm");
    // The README's command.
    let status = Command::new(componentize_py())
        .current_dir(root)
        .args([
            "-d",
            "wit/forecast-0.1.0",
            "-w",
            "forecast-model",
            "componentize",
        ])
        .args(["-p", "examples/models/python-holt", "app", "-o"])
        .arg(&wasm)
        .run_within(std::time::Duration::from_secs(600))
        .unwrap()
        .status;
    assert!(status.success(), "componentize-py failed");
    let info = kedastral(&[
        "model",
        "inspect",
        wasm.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["name"], "python-holt", "{info}");
    assert_eq!(info["params"].as_array().unwrap().len(), 3);
    check_forecast(&wasm, 12, &["alpha=0.5"]);
    let error = refused(&[
        "forecast",
        "--model",
        wasm.to_str().unwrap(),
        "--param",
        "gamma=1",
    ]);
    assert!(error.contains("unknown parameter `gamma`"), "{error}");
    let error = refused(&[
        "forecast",
        "--model",
        wasm.to_str().unwrap(),
        "--param",
        "alpha=7",
    ]);
    assert!(error.contains("alpha: 7"), "{error}");
}

#[test]
fn model_new_starts_projects_that_build_and_forecast() {
    let dir = tempfile::tempdir().unwrap();

    let python = dir.path().join("py-model");
    kedastral(&[
        "model",
        "new",
        python.to_str().unwrap(),
        "--language",
        "python",
    ]);
    let status = Command::new(componentize_py())
        .current_dir(&python)
        .args([
            "-d",
            "wit",
            "-w",
            "forecast-model",
            "componentize",
            "app",
            "-o",
        ])
        .arg("py_model.wasm")
        .run_within(std::time::Duration::from_secs(600))
        .unwrap()
        .status;
    assert!(status.success(), "the Python template did not build");
    check_forecast(&python.join("py_model.wasm"), 12, &["window=600"]);

    let rust = dir.path().join("rs-model");
    kedastral(&["model", "new", rust.to_str().unwrap()]);
    // The template's README command, in a project of its own: the outer
    // build's flags and wrappers must not leak into it.
    let out = Command::new(env!("CARGO"))
        .current_dir(&rust)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_BUILD_RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .run_within(std::time::Duration::from_secs(600))
        .unwrap();
    assert!(
        out.status.success(),
        "the Rust template did not build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wasm = rust.join("target/wasm32-wasip2/release/rs_model.wasm");
    check_forecast(&wasm, 12, &["window=600"]);
    let error = refused(&[
        "forecast",
        "--model",
        wasm.to_str().unwrap(),
        "--param",
        "nope=1",
    ]);
    assert!(error.contains("unknown parameter `nope`"), "{error}");
}
