//! What the web view costs the server: the page of a workload on `auto`
//! with a week of one-minute history and a full trail
//! (`kedastral::web::sample`), and the overview of 100 such workloads.
//! The baseline in the same run is the JSON of the same workload's
//! snapshot, what `GET /forecast/current` serialises.
//!
//! `cargo bench -p kedastral --bench web`; figures in BENCHMARKS.md.

use std::hint::black_box;

use chrono::DateTime;
use criterion::{Criterion, criterion_group, criterion_main};
use kedastral::web;

fn pages(c: &mut Criterion) {
    let now = DateTime::from_timestamp(1_764_547_200, 0).expect("in range");
    let view = web::sample::week_of_minutes(now);
    let snapshot = view.snapshot.clone().expect("a snapshot");
    let page = web::workload(&view, now, 15).into_string();
    eprintln!("workload page: {} bytes", page.len());
    let fleet: Vec<_> = (0..100).map(|_| view.clone()).collect();
    let overview = web::overview(&fleet, now, 15).into_string();
    eprintln!("overview of 100: {} bytes", overview.len());

    let mut group = c.benchmark_group("web");
    group.bench_function("snapshot-json (baseline)", |b| {
        b.iter(|| serde_json::to_string(black_box(snapshot.as_ref())).expect("serialises"))
    });
    group.bench_function("workload-page-week-of-minutes", |b| {
        b.iter(|| web::workload(black_box(&view), now, 15).into_string())
    });
    group.bench_function("overview-100-workloads", |b| {
        b.iter(|| web::overview(black_box(&fleet), now, 15).into_string())
    });
    group.finish();
}

criterion_group!(benches, pages);
criterion_main!(benches);
