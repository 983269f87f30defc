//! A workload's refresh: the model forecasts anew only when it is due, and
//! in between the forecaster serves the last forecast from the newest
//! point on, while it still collects and plans every tick. Driven through
//! the forecaster's own ticks on a replay of the bundled trace.

use chrono::{DateTime, Utc};
use kedastral::clock::Clock;
use kedastral::collect::{ReplaySource, Source};
use kedastral::config::{self, WorkloadFile};
use kedastral::forecaster::{Forecaster, ForecasterParts};
use kedastral::model::{ForecastRequest, ModelSource};

use crate::support;

/// The forecaster, the trace and the workload's phase (the offset of its
/// refreshes from multiples of the refresh, in seconds).
fn forecaster(refresh: Option<&str>) -> (Forecaster, kedastral::model::Series, i64) {
    forecaster_of(WorkloadFile {
        window: Some("3h".into()),
        refresh: refresh.map(str::to_owned),
        ..nasa()
    })
}

/// The workload `nasa` on the replay, a horizon of 30 minutes.
fn nasa() -> WorkloadFile {
    WorkloadFile {
        name: "nasa".into(),
        prom_query: "replay".into(),
        target_per_pod: 5.0,
        horizon: Some("30m".into()),
        ..WorkloadFile::default()
    }
}

/// [`forecaster`] for any workload `nasa` on the bundled trace.
fn forecaster_of(file: WorkloadFile) -> (Forecaster, kedastral::model::Series, i64) {
    let trace = kedastral::history::load_csv(
        &support::workspace().join("examples/data/nasa_http_1m.csv"),
        None,
    )
    .unwrap();
    let workload = config::check(file).unwrap();
    let phase = workload.phase_seconds();
    let forecaster = Forecaster::new(
        &support::runtime(),
        ForecasterParts {
            workloads: vec![workload],
            source: Source::Replay(ReplaySource::new("nasa", trace.clone())),
            shared: None,
            model_slots: 1,
            clock: Clock::wall(),
            models_dir: None,
        },
    )
    .unwrap();
    (forecaster, trace, phase)
}

/// Model calls so far: the predict stage's count.
fn model_calls(forecaster: &Forecaster) -> u64 {
    forecaster
        .metrics()
        .predict_seconds
        .with_label_values(&["nasa", "baseline"])
        .get_sample_count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn between_refreshes_the_last_forecast_is_served_from_the_newest_point() {
    let (mut forecaster, trace, phase) = forecaster(Some("5m"));
    let start = trace.time_of(600);
    let at = |minutes: i64| DateTime::<Utc>::from_timestamp(start + 60 * minutes, 0).unwrap();
    forecaster.tick_all(at(0)).await;
    let first = forecaster.board().snapshot("nasa").unwrap();
    assert_eq!(model_calls(&forecaster), 1);
    assert_eq!(first.values.len(), 30);
    assert_eq!(first.refreshed_at, Some(first.generated_at));

    // The model was asked for the horizon and the four steps the forecast
    // is served for after it: exactly its forecast on the history read.
    let origin = first.generated_at.timestamp();
    let index = ((origin - trace.start_unix_seconds) / 60) as usize + 1;
    let model = support::runtime()
        .load(&ModelSource::parse("baseline"))
        .unwrap();
    let whole = model
        .forecast(&ForecastRequest::new(trace.slice(index - 180, index), 34))
        .unwrap();
    assert_eq!(first.values, whole.values[..30]);

    // Refreshes fall on multiples of five minutes (of the time after the
    // last point read, offset by the workload's phase), so the first comes
    // at the first such multiple.
    let due = (1..=5)
        .find(|m| (origin + 60 * m + 60 - phase).rem_euclid(300) == 0)
        .unwrap();
    for minute in 1..due {
        forecaster.tick_all(at(minute)).await;
        let served = forecaster.board().snapshot("nasa").unwrap();
        assert_eq!(model_calls(&forecaster), 1, "minute {minute}: not due yet");
        assert_eq!(
            served.generated_at.timestamp(),
            origin + 60 * minute,
            "the origin moves on with the data"
        );
        assert_eq!(served.refreshed_at, first.refreshed_at);
        let shift = minute as usize;
        assert_eq!(
            served.values,
            whole.values[shift..shift + 30],
            "minute {minute}"
        );
        for band in &served.quantiles {
            assert_eq!(band.values.len(), 30);
        }
        assert_eq!(served.desired_replicas.len(), 30);
        assert_eq!(served.last_observed, Some(trace.values[index - 1 + shift]));
    }
    forecaster.tick_all(at(due)).await;
    let refreshed = forecaster.board().snapshot("nasa").unwrap();
    assert_eq!(model_calls(&forecaster), 2, "due at minute {due}");
    assert_eq!(refreshed.refreshed_at, Some(refreshed.generated_at));

    // From then on, every five minutes.
    for minute in due + 1..due + 5 {
        forecaster.tick_all(at(minute)).await;
        assert_eq!(model_calls(&forecaster), 2, "minute {minute}");
    }
    forecaster.tick_all(at(due + 5)).await;
    assert_eq!(model_calls(&forecaster), 3);
    let refreshed = forecaster.board().snapshot("nasa").unwrap();
    assert_eq!(refreshed.generated_at.timestamp(), origin + 60 * (due + 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_refresh_every_tick_forecasts() {
    let (mut forecaster, trace, _) = forecaster(None);
    let start = trace.time_of(600);
    for minute in 0..3 {
        forecaster
            .tick_all(DateTime::from_timestamp(start + 60 * minute, 0).unwrap())
            .await;
    }
    assert_eq!(model_calls(&forecaster), 3);
    let served = forecaster.board().snapshot("nasa").unwrap();
    assert_eq!(served.refreshed_at, Some(served.generated_at));
}

#[test]
fn fracast_refreshes_every_half_horizon_unless_told_and_a_refresh_fits_the_horizon() {
    let with_horizon = |model: &str, refresh: Option<&str>, horizon: &str| {
        config::check(WorkloadFile {
            name: "w".into(),
            prom_query: "q".into(),
            target_per_pod: 1.0,
            model: Some(model.into()),
            refresh: refresh.map(str::to_owned),
            horizon: Some(horizon.into()),
            ..WorkloadFile::default()
        })
    };
    let check = |model: &str, refresh: Option<&str>| with_horizon(model, refresh, "30m");
    let secs = |model, refresh| check(model, refresh).unwrap().refresh.as_secs();
    assert_eq!(secs("fracast", None), 900);
    // Half of 25 one-minute steps, in whole steps; at least a step.
    let refresh = |horizon| {
        with_horizon("fracast", None, horizon)
            .unwrap()
            .refresh
            .as_secs()
    };
    assert_eq!(refresh("25m"), 720);
    assert_eq!(refresh("1m"), 60);
    assert_eq!(secs("baseline", None), 0);
    assert_eq!(secs("fracast", Some("0s")), 0);
    assert_eq!(secs("baseline", Some("2m")), 120);
    let error = check("baseline", Some("1h")).unwrap_err().to_string();
    assert!(
        error.contains("refresh") && error.contains("horizon"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_calibrates_its_bands_by_its_third_refresh() {
    let file = WorkloadFile {
        window: Some("1d".into()),
        model: Some("auto".into()),
        candidates: Some(vec!["-arima".into(), "-mstl".into(), "-fracast".into()]),
        ..nasa()
    };
    // Auto's default refresh: every half horizon, 15 minutes.
    assert_eq!(config::check(file.clone()).unwrap().refresh.as_secs(), 900);
    let (mut forecaster, trace, _) = forecaster_of(file);
    let start = trace.time_of(2_000);
    let mut refreshes = Vec::new();
    for minute in 0..=45 {
        let now = DateTime::<Utc>::from_timestamp(start + 60 * minute, 0).unwrap();
        forecaster.tick_all(now).await;
        let served = forecaster.board().snapshot("nasa").unwrap();
        if served.refreshed_at == Some(served.generated_at) {
            let selection = served.selection.as_ref().expect("auto shows its selection");
            refreshes.push((selection.judged_origins, selection.calibrated));
        }
    }
    // The first refresh, a warm start, forecasts one shadow origin; the
    // next two eight each, and by the third the twelve the bands are
    // calibrated on are judged.
    assert!(refreshes.len() >= 3, "{refreshes:?}");
    assert!(!refreshes[0].1 && !refreshes[1].1, "{refreshes:?}");
    assert!(refreshes[2].0 >= 12 && refreshes[2].1, "{refreshes:?}");
}
