//! What sizing to an objective adds to a forecaster tick: 200 workloads,
//! each with 12 hours of 1-minute history and the baseline model, ticked
//! once a minute. One forecaster sizes every workload to the default
//! objective (the shadow evaluation replays every sizing level and a level
//! is chosen each tick); the baseline in the same run is the same
//! forecaster sizing on the point forecast x 1.2, which replays nothing.
//! Both are warmed up until the objective has chosen a level everywhere.
//! The one measured second costs about a tenth more whatever it is (see
//! BENCHMARKS.md): swap the two to see the order's share.
//!
//! `cargo bench -p kedastral --bench sizing`; figures in BENCHMARKS.md.

use std::time::Duration;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use kedastral::config::{WorkloadConfig, WorkloadFile};
use kedastral::sizing::SizingRule;

mod support;
use support::{cpu_time, model_runtime, replay_forecaster, replay_workloads, tokio_runtime, trace};

const WORKLOADS: usize = 200;
const HISTORY_POINTS: usize = 720;
/// Ticks before measuring: the shadow evaluation takes four origins a tick
/// and needs twelve judged before a level is chosen.
const WARM_TICKS: usize = 30;

fn workloads(headroom: Option<f64>) -> Vec<WorkloadConfig> {
    replay_workloads(
        WORKLOADS,
        "w",
        WorkloadFile {
            target_per_pod: 0.2,
            window: Some("12h".into()),
            horizon: Some("30m".into()),
            headroom,
            ..WorkloadFile::default()
        },
    )
}

fn ticks(c: &mut Criterion) {
    let trace = trace();
    let runtime = model_runtime();
    let tokio = tokio_runtime();
    let start: DateTime<Utc> = DateTime::from_timestamp(trace.time_of(HISTORY_POINTS), 0).unwrap();
    let mut group = c.benchmark_group("sizing");
    // Ticks vary with the shadow origins' grid (a refit every 15): long
    // runs average over several.
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(30));
    for (name, headroom, rule) in [
        (
            "tick/200-workloads/headroom/cpu",
            Some(1.2),
            SizingRule::Headroom,
        ),
        (
            "tick/200-workloads/objective/cpu",
            None,
            SizingRule::Objective,
        ),
    ] {
        let mut forecaster = replay_forecaster(&runtime, workloads(headroom), &trace);
        let mut now = start;
        for _ in 0..WARM_TICKS {
            tokio.block_on(forecaster.tick_all(now));
            now += chrono::Duration::minutes(1);
        }
        let sized = forecaster
            .board()
            .snapshots()
            .iter()
            .filter(|s| s.sizing.as_ref().is_some_and(|z| z.rule == rule))
            .count();
        assert_eq!(sized, WORKLOADS, "every workload sizes by {rule:?}");
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    now += chrono::Duration::minutes(1);
                    let before = cpu_time();
                    tokio.block_on(forecaster.tick_all(now));
                    spent += cpu_time() - before;
                }
                spent
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ticks);
criterion_main!(benches);
