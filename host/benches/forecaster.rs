//! One forecaster tick over 1 000 workloads, each with 3 hours of 1-minute
//! history and the baseline model: CPU time (user + system, every thread of
//! the process) and resident memory.
//!
//! Workloads all read one replay of the bundled trace (in memory), so
//! the tick is collect, forecast, plan and publish with no network in the
//! way. The baseline in the same run is the bare cost of the work that
//! cannot be avoided: 1 000 baseline forecasts on the same histories, called
//! one after another on the loaded model (each in a fresh instance, as in
//! the forecaster).
//!
//! `cargo bench -p kedastral --bench forecaster`; figures in BENCHMARKS.md.
//! `KEDASTRAL_BENCH_MODEL=auto` (or another model) runs the workloads on that
//! model instead; the bare calls stay the baseline's, as the yardstick.
//!
//! `fracast-fleet` is a forecaster of 100 workloads on `fracast` with its
//! default refresh (every half horizon: 15 minutes), ticked a minute at a
//! time: the CPU per tick, averaged over whole 15-tick cycles once the
//! shadow evaluation has filled, beside 100 bare `fracast` calls spread
//! over the same 15 ticks. Its window is 2 hours so the shadow evaluation
//! fills in a few cycles; the network reads 2 048 points whatever the
//! history (a shorter one is padded), so a call costs the same.
//!
//! `auto-fleet` (with `KEDASTRAL_BENCH_AUTO=1`) is 1 000 workloads on
//! `auto`, each tick timed on its own, while the shadow evaluation fills,
//! after, and once its window holds only origins made since the fill; over
//! the last of those ticks, the error of the forecasts served against the
//! trace, beside the last observed value's.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use kedastral::config::{WorkloadConfig, WorkloadFile};
use kedastral::model::{ForecastRequest, ModelSource, Series};
use kedastral::store::Snapshot;
use kedastral::telemetry::Metrics;
use prometheus::core::Collector;

mod support;
use support::{cpu_time, model_runtime, replay_forecaster, replay_workloads, tokio_runtime, trace};

const WORKLOADS: usize = 1_000;
const HISTORY_POINTS: usize = 180;

fn workloads() -> Vec<WorkloadConfig> {
    replay_workloads(
        WORKLOADS,
        "w",
        WorkloadFile {
            target_per_pod: 5.0,
            window: Some("3h".into()),
            horizon: Some("30m".into()),
            model: std::env::var("KEDASTRAL_BENCH_MODEL").ok(),
            ..WorkloadFile::default()
        },
    )
}

/// A line of /proc/self/status, in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Whether to run the auto fleet, and only it: its resident memory is then
/// its own, not the other benches' too.
fn auto_alone() -> bool {
    std::env::var("KEDASTRAL_BENCH_AUTO").as_deref() == Ok("1")
}

fn tick(c: &mut Criterion) {
    if auto_alone() {
        return;
    }
    let trace = trace();
    let runtime = model_runtime();
    let tokio = tokio_runtime();
    let rss_before = status_kib("VmRSS:");
    let mut forecaster = replay_forecaster(&runtime, workloads(), &trace);
    let mut now: DateTime<Utc> =
        DateTime::from_timestamp(trace.time_of(HISTORY_POINTS), 0).unwrap();
    // The first tick loads every window (the warm start).
    let started = cpu_time();
    tokio.block_on(forecaster.tick_all(now));
    let warm_start = cpu_time() - started;
    let fresh = forecaster
        .board()
        .views()
        .iter()
        .filter(|v| v.is_fresh(now))
        .count();
    assert_eq!(
        fresh, WORKLOADS,
        "every workload forecast on the first tick"
    );

    let mut group = c.benchmark_group("forecaster");
    group.sample_size(10);
    // Each later tick is a minute on: one new point per workload, then a
    // forecast of its 180 points.
    group.bench_function("tick/1000-workloads/cpu", |b| {
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

    let model = runtime.load(&ModelSource::parse("baseline")).unwrap();
    let instance = &model;
    let requests: Vec<ForecastRequest> = (0..WORKLOADS)
        .map(|i| {
            let end = HISTORY_POINTS + i % 1_000;
            ForecastRequest::new(trace.slice(end - HISTORY_POINTS, end), 30)
                .with_quantiles(vec![0.1, 0.5, 0.9])
        })
        .collect();
    group.bench_function("bare-model-calls/1000/cpu", |b| {
        b.iter_custom(|iters| {
            let before = cpu_time();
            for _ in 0..iters {
                for r in &requests {
                    instance.forecast(r).unwrap();
                }
            }
            cpu_time() - before
        })
    });
    group.finish();

    println!(
        "forecaster: warm-start tick {:.0} ms CPU; resident memory {} MiB \
         (peak {} MiB, {} MiB before the forecaster was built)",
        warm_start.as_secs_f64() * 1e3,
        status_kib("VmRSS:") / 1024,
        status_kib("VmHWM:") / 1024,
        rss_before / 1024,
    );
}

const FLEET: usize = 100;
/// Ticks between refreshes at the default horizon of 30 minutes.
const CYCLE: u32 = 15;

fn fracast_fleet(c: &mut Criterion) {
    if auto_alone() {
        return;
    }
    let trace = trace();
    let runtime = model_runtime();
    let tokio = tokio_runtime();
    let workloads = replay_workloads(
        FLEET,
        "f",
        WorkloadFile {
            target_per_pod: 5.0,
            window: Some("2h".into()),
            horizon: Some("30m".into()),
            model: Some("fracast".into()),
            ..WorkloadFile::default()
        },
    );
    let mut forecaster = replay_forecaster(&runtime, workloads, &trace);
    let mut now: DateTime<Utc> = DateTime::from_timestamp(trace.time_of(3_000), 0).unwrap();
    // Four cycles fill the shadow evaluation (8 origins, 4 a refresh).
    for _ in 0..4 * CYCLE {
        tokio.block_on(forecaster.tick_all(now));
        now += chrono::Duration::minutes(1);
    }
    let mut group = c.benchmark_group("forecaster");
    group.sample_size(10);
    group.bench_function("fracast-fleet/100-workloads/cpu-per-tick", |b| {
        b.iter_custom(|cycles| {
            let before = cpu_time();
            for _ in 0..cycles * u64::from(CYCLE) {
                tokio.block_on(forecaster.tick_all(now));
                now += chrono::Duration::minutes(1);
            }
            (cpu_time() - before) / CYCLE
        })
    });
    let model = runtime.load(&ModelSource::parse("fracast")).unwrap();
    let requests: Vec<ForecastRequest> = (0..FLEET)
        .map(|i| {
            let end = 3_000 + i;
            ForecastRequest::new(trace.slice(end - 120, end), 44)
                .with_quantiles(vec![0.1, 0.5, 0.9])
        })
        .collect();
    group.bench_function("fracast-fleet/100-bare-calls/cpu-per-tick", |b| {
        b.iter_custom(|cycles| {
            let before = cpu_time();
            for _ in 0..cycles {
                for r in &requests {
                    model.forecast(r).unwrap();
                }
            }
            (cpu_time() - before) / CYCLE
        })
    });
    group.finish();
}

/// Forecast calls and their seconds per model, summed over workloads.
fn calls_by_model(metrics: &Metrics) -> BTreeMap<String, (f64, f64)> {
    let seconds = sum_by_model(metrics.model_call_seconds_total.collect());
    sum_by_model(metrics.model_calls_total.collect())
        .into_iter()
        .map(|(model, calls)| {
            let spent = seconds.get(&model).copied().unwrap_or_default();
            (model, (calls, spent))
        })
        .collect()
}

/// A counter's series summed by their `model` label.
fn sum_by_model(families: Vec<prometheus::proto::MetricFamily>) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for metric in families.iter().flat_map(|f| f.get_metric()) {
        let model = metric
            .get_label()
            .iter()
            .find(|l| l.name() == "model")
            .map_or("", |l| l.value());
        *out.entry(model.to_owned()).or_default() += metric.get_counter().get_value();
    }
    out
}

/// Ticks of the auto fleet measured one by one once the shadow evaluation
/// has filled and turned over: two refresh cycles.
const AUTO_TICKS: usize = 2 * CYCLE as usize;
/// Ticks while it fills: five refresh cycles.
const FILL_TICKS: usize = 5 * CYCLE as usize;
/// Ticks after the fill until every origin of the 3-hour window is one made
/// since: the filled origins came several a refresh (the first without
/// the costly candidates), so what the costly ones are judged on, and how
/// often they are called, settles only once these have left the window.
const TURNOVER_TICKS: usize = 12 * CYCLE as usize;

/// 1 000 workloads on `auto` (`KEDASTRAL_BENCH_CANDIDATES`, comma-separated,
/// passes `candidates`: `-fracast` for auto without it), ticked a minute at
/// a time with the default refresh (every half horizon): the warm start, then
/// each tick's CPU time, printed as median, mean and worst, separately for
/// the ticks while the shadow evaluation fills and after; each model's calls
/// per tick and the time in them (`kedastral_model_calls_total`,
/// `kedastral_model_call_seconds_total`) after; and the resident memory. Ticks are timed one by one since a refresh tick costs far more than
/// the others: criterion's means over several would hide both figures. Runs
/// only with `KEDASTRAL_BENCH_AUTO=1` (minutes with fracast).
fn auto_fleet(_: &mut Criterion) {
    if !auto_alone() {
        return;
    }
    let candidates: Vec<String> = std::env::var("KEDASTRAL_BENCH_CANDIDATES")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let trace = trace();
    let runtime = model_runtime();
    let tokio = tokio_runtime();
    let workloads = replay_workloads(
        WORKLOADS,
        "a",
        WorkloadFile {
            target_per_pod: 5.0,
            window: Some("3h".into()),
            horizon: Some("30m".into()),
            model: Some("auto".into()),
            candidates: Some(candidates.clone()),
            ..WorkloadFile::default()
        },
    );
    let rss_before = status_kib("VmRSS:");
    let mut forecaster = replay_forecaster(&runtime, workloads, &trace);
    let mut now: DateTime<Utc> = DateTime::from_timestamp(trace.time_of(3_000), 0).unwrap();
    let started = cpu_time();
    tokio.block_on(forecaster.tick_all(now));
    let warm_start = cpu_time() - started;
    let metrics = forecaster.metrics();
    let mut tick = |now: &mut DateTime<Utc>| {
        *now += chrono::Duration::minutes(1);
        let before = cpu_time();
        tokio.block_on(forecaster.tick_all(*now));
        (cpu_time() - before).as_secs_f64()
    };
    // The shadow evaluation fills over the first refreshes (one origin on
    // the first, then as many as the twelve the bands wait for, then up to
    // four a refresh): those ticks are reported on their own.
    let filling: Vec<f64> = (0..FILL_TICKS).map(|_| tick(&mut now)).collect();
    let turning: Vec<f64> = (0..TURNOVER_TICKS).map(|_| tick(&mut now)).collect();
    let calls_before = calls_by_model(&metrics);
    let mut ticks = Vec::with_capacity(AUTO_TICKS);
    let mut served = Served::default();
    for _ in 0..AUTO_TICKS {
        now += chrono::Duration::minutes(1);
        let before = cpu_time();
        tokio.block_on(forecaster.tick_all(now));
        ticks.push((cpu_time() - before).as_secs_f64());
        for view in forecaster.board().views() {
            if let Some(snapshot) = &view.snapshot {
                served.score(snapshot, &trace);
            }
        }
    }
    println!(
        "auto fleet ({WORKLOADS} workloads, candidates {candidates:?}): warm start {:.2} s CPU",
        warm_start.as_secs_f64()
    );
    println!("  filling, ticks 1-{FILL_TICKS}: {}", summary(filling));
    println!(
        "  filled, ticks {}-{}: {}",
        FILL_TICKS + 1,
        FILL_TICKS + TURNOVER_TICKS,
        summary(turning)
    );
    let first = FILL_TICKS + TURNOVER_TICKS + 1;
    println!(
        "  window turned over, ticks {first}-{}: {}",
        first + AUTO_TICKS - 1,
        summary(ticks)
    );
    println!(
        "  served forecasts, leads 1-30, every workload at every tick: MAE {:.3}, \
         the last observed value's {:.3} (ratio {:.3}; {} pairs)",
        served.forecast / served.pairs as f64,
        served.last / served.pairs as f64,
        served.forecast / served.last,
        served.pairs
    );
    for (model, (calls, seconds)) in calls_by_model(&metrics) {
        let (calls_then, seconds_then) = calls_before.get(&model).copied().unwrap_or_default();
        println!(
            "    {model}: {:.1} calls a tick, {:.3} s in them",
            (calls - calls_then) / AUTO_TICKS as f64,
            (seconds - seconds_then) / AUTO_TICKS as f64,
        );
    }
    let mut spared: BTreeMap<String, usize> = BTreeMap::new();
    for view in forecaster.board().views() {
        let candidates = view
            .snapshot
            .as_ref()
            .and_then(|s| s.selection.as_ref())
            .map(|s| s.candidates.clone())
            .unwrap_or_default();
        for c in candidates.into_iter().filter(|c| c.spared) {
            *spared.entry(c.name).or_default() += 1;
        }
    }
    println!("  workloads serving without a candidate (spared) at the end: {spared:?}");
    println!(
        "  resident memory {} MiB (peak {} MiB, {} MiB before the forecaster was built)",
        status_kib("VmRSS:") / 1024,
        status_kib("VmHWM:") / 1024,
        rss_before / 1024,
    );
}

/// Absolute errors of the forecasts workloads serve, as the scaler reads
/// them, against the trace they replay; beside those of the last observed
/// value held flat (what reactive scaling sizes on).
#[derive(Default)]
struct Served {
    forecast: f64,
    last: f64,
    pairs: usize,
}

impl Served {
    /// The first 30 steps of `snapshot` (the horizon; the rest is for the
    /// ticks until the next refresh), where the trace has an actual.
    fn score(&mut self, snapshot: &Snapshot, trace: &Series) {
        let Some(last) = snapshot.last_observed else {
            return;
        };
        let step = i64::from(snapshot.step_seconds.max(1));
        let origin = snapshot.generated_at.timestamp();
        for (lead, value) in snapshot.values.iter().take(30).enumerate() {
            let at = (origin + step * (lead as i64 + 1) - trace.start_unix_seconds) / step;
            let Some(&actual) = usize::try_from(at).ok().and_then(|i| trace.values.get(i)) else {
                continue;
            };
            if actual.is_nan() {
                continue;
            }
            self.forecast += (value - actual).abs();
            self.last += (last - actual).abs();
            self.pairs += 1;
        }
    }
}

/// Median, mean and worst of CPU seconds per tick.
fn summary(mut ticks: Vec<f64>) -> String {
    ticks.sort_by(f64::total_cmp);
    let mean = ticks.iter().sum::<f64>() / ticks.len() as f64;
    format!(
        "median {:.3} s, mean {:.3} s, worst {:.3} s CPU a tick",
        ticks[ticks.len() / 2],
        mean,
        ticks[ticks.len() - 1]
    )
}

criterion_group!(benches, tick, fracast_fleet, auto_fleet);
criterion_main!(benches);
