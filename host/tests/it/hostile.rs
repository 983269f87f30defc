//! Hostile models: each misdeed is stopped with its own error, the host
//! lives on, and a good model (and the same model, asked nicely) keeps
//! working in the same process.

use std::time::{Duration, Instant};

use kedastral::model::{
    ForecastRequest, ModelCallError, ModelError, ModelInstance, ModelLoadError, ModelSource,
    RuntimeLimits,
};

use crate::support::{self, daily_series};

const LIMITS: RuntimeLimits = RuntimeLimits {
    memory_bytes: 32 * 1024 * 1024,
    timeout: Duration::from_millis(300),
};

/// Whether an error is the one a misbehaviour should get.
type ErrorCheck = fn(&ModelCallError) -> bool;

fn hostile_instance() -> ModelInstance {
    support::runtime_with(LIMITS)
        .load(&ModelSource::File(support::fixture(
            "kedastral-test-hostile",
        )))
        .expect("the hostile fixture implements the world")
        .instance()
}

fn request(behaviour: &str) -> ForecastRequest {
    ForecastRequest::new(daily_series(1, 300, 9), 5)
        .with_quantiles(vec![0.1, 0.9])
        .with_param("behaviour", behaviour)
}

#[test]
fn each_misbehaviour_gets_its_own_error_and_nothing_else_breaks() {
    // One runtime, one engine: the good model shares the process with the bad.
    let runtime = support::runtime_with(LIMITS);
    let hostile = runtime
        .load(&ModelSource::File(support::fixture(
            "kedastral-test-hostile",
        )))
        .expect("the hostile fixture implements the world");
    let good = runtime.load(&ModelSource::parse("baseline")).unwrap();
    let mut hostile = hostile.instance();
    let mut good = good.instance();
    let nice = ForecastRequest::new(daily_series(1, 300, 9), 5);

    let cases: [(&str, ErrorCheck); 9] = [
        ("spin", |e| matches!(e, ModelCallError::Timeout { .. })),
        (
            "recurse",
            |e| matches!(e, ModelCallError::Trap { message, .. } if message.contains("stack")),
        ),
        (
            "grow",
            |e| matches!(e, ModelCallError::OutOfMemory { limit_bytes, .. } if *limit_bytes == 32 << 20),
        ),
        (
            "panic",
            |e| matches!(e, ModelCallError::Trap { message, .. } if message.contains("hostile model panics on purpose")),
        ),
        (
            "sleep",
            |e| matches!(e, ModelCallError::Trap { message, .. } if message.contains("may not sleep")),
        ),
        (
            "nan",
            |e| matches!(e, ModelCallError::InvalidOutput { reason, .. } if reason.contains("NaN")),
        ),
        (
            "short",
            |e| matches!(e, ModelCallError::InvalidOutput { reason, .. } if reason.contains("horizon")),
        ),
        (
            "unordered",
            |e| matches!(e, ModelCallError::InvalidOutput { reason, .. } if reason.contains("out of order")),
        ),
        ("error", |e| {
            matches!(
                e,
                ModelCallError::Model {
                    error: ModelError::Internal(_),
                    ..
                }
            )
        }),
    ];
    for (behaviour, expected) in cases {
        let started = Instant::now();
        let err = hostile.forecast(&request(behaviour)).unwrap_err();
        assert!(expected(&err), "{behaviour}: unexpected error {err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{behaviour}: the call was not stopped"
        );
        // The same process still serves a good model ...
        good.forecast(&nice)
            .unwrap_or_else(|e| panic!("after {behaviour}: {e}"));
        // ... and the hostile model itself, once it behaves.
        let ok = hostile
            .forecast(&request("ok"))
            .unwrap_or_else(|e| panic!("after {behaviour}: {e}"));
        assert_eq!(ok.values, vec![1.0; 5]);
    }
}

#[test]
fn error_kinds_have_distinct_metric_labels() {
    let mut hostile = hostile_instance();
    let labels: Vec<&str> = ["spin", "grow", "panic", "nan", "error"]
        .iter()
        .map(|b| hostile.forecast(&request(b)).unwrap_err().metric_label())
        .collect();
    assert_eq!(
        labels,
        [
            "timeout",
            "out_of_memory",
            "trap",
            "invalid_output",
            "model_internal"
        ]
    );
}

#[test]
fn the_sandbox_grants_no_files_environment_clock_or_network() {
    let mut hostile = hostile_instance();
    // The host process has environment variables (PATH at least), files and a clock.
    let forecast = hostile
        .forecast(&request("escape"))
        .expect("escape attempts fail quietly");
    assert_eq!(
        forecast.values,
        vec![0.0; 5],
        "[file, dir, env, clock, tcp]: 1 means the model got out"
    );
}

#[test]
fn a_component_of_another_world_is_refused_naming_what_is_missing() {
    let runtime = support::runtime();
    let err = runtime
        .load(&ModelSource::File(support::fixture(
            "kedastral-test-wrong-world",
        )))
        .unwrap_err();
    assert!(matches!(err, ModelLoadError::WrongWorld { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("has no function `forecast`"), "{message}");
    assert!(
        message.contains("kedastral:forecast/forecast-model@0.1.0"),
        "{message}"
    );
}

#[test]
fn files_that_are_not_components_are_refused_clearly() {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().unwrap();

    let text = dir.path().join("model.wasm");
    std::fs::write(&text, "not wasm at all").unwrap();
    let err = runtime.load(&ModelSource::File(text)).unwrap_err();
    assert!(matches!(err, ModelLoadError::NotWasm { .. }), "{err}");

    // The smallest valid core module: magic and version 1, no sections.
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let err = runtime.load(&ModelSource::File(core)).unwrap_err();
    assert!(
        err.to_string()
            .contains("core WebAssembly module, not a component"),
        "{err}"
    );

    let err = runtime.load(&ModelSource::parse("prophet")).unwrap_err();
    assert!(
        err.to_string().contains("unknown built-in model `prophet`"),
        "{err}"
    );
    assert!(err.to_string().contains("baseline, arima"), "{err}");

    let err = runtime
        .load(&ModelSource::parse("./missing.wasm"))
        .unwrap_err();
    assert!(matches!(err, ModelLoadError::Read { .. }), "{err}");
}

#[test]
fn a_second_load_uses_the_precompiled_artefact() {
    use kedastral::model::cache::{CompileOutcome, ComponentCache};
    let dir = tempfile::tempdir().unwrap();
    let runtime = |d: &std::path::Path| {
        kedastral::model::ModelRuntime::new(LIMITS, ComponentCache::new(Some(d.to_path_buf())))
            .unwrap()
    };
    let first = runtime(dir.path())
        .load(&ModelSource::parse("baseline"))
        .unwrap();
    assert_eq!(first.compile_outcome(), CompileOutcome::CompiledAndCached);
    // A new runtime, as after a restart.
    let second = runtime(dir.path())
        .load(&ModelSource::parse("baseline"))
        .unwrap();
    assert_eq!(second.compile_outcome(), CompileOutcome::CacheHit);
    let request = ForecastRequest::new(daily_series(2, 300, 4), 12);
    assert_eq!(
        first.instance().forecast(&request).unwrap(),
        second.instance().forecast(&request).unwrap()
    );

    // A corrupt artefact is recompiled, not trusted.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let third = runtime(dir.path())
        .load(&ModelSource::parse("baseline"))
        .unwrap();
    assert_eq!(third.compile_outcome(), CompileOutcome::CompiledAndCached);
}
