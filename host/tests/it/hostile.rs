//! Hostile models: each misdeed is stopped with its own error, the host
//! lives on, and a good model (and the same model, asked nicely) keeps
//! working in the same process.

use std::time::{Duration, Instant};

use kedastral::model::{
    ForecastRequest, LoadedModel, ModelCallError, ModelError, ModelLoadError, ModelSource,
    RuntimeLimits,
};

use crate::support::{self, daily_series};

const LIMITS: RuntimeLimits = RuntimeLimits {
    memory_bytes: 32 * 1024 * 1024,
    timeout: Duration::from_millis(300),
};

/// Whether an error is the one a misbehaviour should get.
type ErrorCheck = fn(&ModelCallError) -> bool;

fn hostile_model() -> LoadedModel {
    support::runtime_with(LIMITS)
        .load(&ModelSource::File(support::fixture(
            "kedastral-test-hostile",
        )))
        .expect("the hostile fixture implements the world")
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
    let hostile = hostile_model();
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
    let hostile = hostile_model();
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
        first.forecast(&request).unwrap(),
        second.forecast(&request).unwrap()
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

/// `history` as a flat series around `level`.
fn level_series(level: f64) -> kedastral::model::Series {
    let mut series = daily_series(1, 300, 3);
    for v in &mut series.values {
        *v *= level / 100.0;
    }
    series
}

#[test]
fn a_model_that_remembers_never_carries_one_callers_data_to_another() {
    let model = hostile_model();
    let remember = |level: f64| {
        ForecastRequest::new(level_series(level), 5).with_param("behaviour", "remember")
    };
    let small = remember(1.0);
    let small_max = small.history.values.iter().copied().fold(0.0, f64::max);
    let alone = model.forecast(&small).unwrap();
    assert_eq!(alone.values, vec![small_max; 5]);
    // A large workload's history goes through the same loaded model ...
    let large = model.forecast(&remember(6_000.0)).unwrap();
    assert!(large.values[0] > 1_000.0, "{:?}", large.values);
    // ... and the small one is served what its own history says, as before.
    assert_eq!(model.forecast(&small).unwrap(), alone);
    // Clones share compiled code only.
    assert_eq!(model.clone().forecast(&small).unwrap(), alone);
}

#[test]
fn a_guest_error_of_tens_of_megabytes_is_cut_to_a_few_kilobytes() {
    let model = support::runtime_with(RuntimeLimits {
        memory_bytes: 128 << 20,
        ..LIMITS
    })
    .load(&ModelSource::File(support::fixture(
        "kedastral-test-hostile",
    )))
    .unwrap();
    let started = Instant::now();
    let err = model.forecast(&request("loud-error")).unwrap_err();
    let message = err.to_string();
    assert!(
        message.len() < 5 * 1024,
        "{} bytes: {}",
        message.len(),
        &message[..200]
    );
    assert!(
        message.contains("[cut: "),
        "{}",
        &message[message.len() - 100..]
    );
    assert!(!message.contains('\u{1b}'), "escape characters pass");
    assert_eq!(err.metric_label(), "model_internal");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn an_absurdly_long_description_is_cut_at_load() {
    // Writing 64 MiB takes a while on a loaded machine: the point here is
    // the cut, not the deadline.
    let model = support::runtime_with(RuntimeLimits {
        memory_bytes: 256 << 20,
        timeout: Duration::from_secs(30),
    })
    .load(&ModelSource::File(support::fixture("kedastral-test-loud")))
    .expect("a long description is cut, not refused");
    let info = model.info();
    assert_eq!(info.name, "loud");
    let limit = kedastral::model::text::GUEST_TEXT_LIMIT;
    for text in [&info.description, &info.params[0].description] {
        assert!(text.len() < limit + 64, "{} bytes", text.len());
        assert!(text.contains("[cut: "), "{}", &text[text.len() - 60..]);
        assert!(!text.contains('\u{1b}'), "escape characters pass");
    }
}

#[test]
fn a_guard_refuses_absurd_and_negative_answers_as_implausible() {
    use kedastral::model::{Guard, Retry};
    let model = hostile_model();
    let mut guard = Guard::new("hostile", Retry::Never, 10.0);
    let now = chrono::Utc::now();
    for behaviour in ["absurd", "negative"] {
        // The sandbox takes it: finite, ordered, the right length.
        model.forecast(&request(behaviour)).unwrap();
        let err = guard
            .call(now, &request(behaviour), |r| model.forecast(r))
            .unwrap_err();
        assert_eq!(err.metric_label(), "implausible", "{behaviour}: {err}");
    }
    // Implausible is not a fault: the model is still called.
    guard
        .call(now, &request("ok"), |r| model.forecast(r))
        .unwrap();
}

#[test]
fn a_guard_stops_calling_a_model_after_a_fault() {
    use kedastral::model::{Guard, Retry};
    let model = hostile_model();
    let now = chrono::Utc::now();
    let mut never = Guard::new("hostile", Retry::Never, 10.0);
    let err = never
        .call(now, &request("spin"), |r| model.forecast(r))
        .unwrap_err();
    assert_eq!(err.metric_label(), "timeout");
    // Held back, even for a request that would work, and at once.
    let started = Instant::now();
    let mut calls = 0;
    for _ in 0..100 {
        let err = never
            .call(now, &request("ok"), |r| {
                calls += 1;
                model.forecast(r)
            })
            .unwrap_err();
        assert_eq!(err.metric_label(), "suspended");
        assert!(err.to_string().contains("ran past its deadline"), "{err}");
    }
    assert_eq!(calls, 0);
    assert!(started.elapsed() < LIMITS.timeout);

    // Backing off: held back until the delay is over, then called again;
    // a success resets it.
    let second = Duration::from_secs(1);
    let mut backoff = Guard::new(
        "hostile",
        Retry::Backoff {
            first: second,
            cap: second * 4,
        },
        10.0,
    );
    let at = |s: i64| now + chrono::Duration::seconds(s);
    let spin = |g: &mut Guard, t| g.call(t, &request("spin"), |r| model.forecast(r));
    assert_eq!(
        spin(&mut backoff, at(0)).unwrap_err().metric_label(),
        "timeout"
    );
    assert_eq!(
        spin(&mut backoff, at(0)).unwrap_err().metric_label(),
        "suspended"
    );
    assert_eq!(
        spin(&mut backoff, at(1)).unwrap_err().metric_label(),
        "timeout"
    );
    // Two faults in a row: two seconds.
    assert_eq!(
        spin(&mut backoff, at(2)).unwrap_err().metric_label(),
        "suspended"
    );
    assert!(backoff.suspended(at(2)).is_some());
    assert!(backoff.suspended(at(3)).is_none());
    backoff
        .call(at(3), &request("ok"), |r| model.forecast(r))
        .unwrap();
    assert_eq!(
        spin(&mut backoff, at(3)).unwrap_err().metric_label(),
        "timeout"
    );
    assert!(
        backoff.suspended(at(4)).is_none(),
        "the success reset the delay"
    );
}
