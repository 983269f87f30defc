//! The forecaster's sharing rules, in process: two replicas on one
//! in-memory lease store, driven tick by tick on paused tokio time (the
//! leases' clock). Handover, follow, a holder that dies, a holder that
//! cannot compute, an outage of the store, and no forecast going stale on
//! the way. The same rules on a real Redis are in `forecaster`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kedastral::clock::Clock;
use kedastral::collect::{PrometheusClient, PrometheusConfig, ReplaySource, Source};
use kedastral::forecaster::{Forecaster, ForecasterParts};
use kedastral::store::lease::{LeaseStore, MemoryLeases};
use kedastral::store::{Stage, WorkloadView};
use tokio_util::sync::CancellationToken;

use crate::support;

const WORKLOAD: &str = "checkout";
const INTERVAL: Duration = Duration::from_secs(60);
/// The default: five intervals.
const STALE_AFTER: Duration = Duration::from_secs(300);

fn replica(store: &MemoryLeases, source: Source) -> Forecaster {
    let text = format!(
        "[[workload]]\nname = \"{WORKLOAD}\"\nprom-query = \"q\"\ntarget-per-pod = 0.5\n\
         window = \"6h\"\nhorizon = \"10m\"\ninterval = \"1m\"\n"
    );
    Forecaster::new(
        &support::runtime(),
        ForecasterParts {
            workloads: kedastral::config::parse_file(&text).unwrap(),
            source,
            shared: Some(Arc::new(store.clone()) as Arc<dyn LeaseStore>),
            model_slots: 1,
            clock: Clock::wall(),
            models_dir: None,
        },
    )
    .unwrap()
}

/// Replica `a` on `a_source` and replica `b` on the replay, sharing one
/// store.
fn pair(a_source: Source) -> (MemoryLeases, Forecaster, Forecaster) {
    let store = MemoryLeases::new("a");
    let a = replica(&store, a_source);
    let b = replica(&store.replica("b"), replay());
    (store, a, b)
}

fn replay() -> Source {
    Source::Replay(ReplaySource::new("nasa", support::nasa_tail(2_000)))
}

/// Prometheus on a port nothing listens on: every collection fails.
fn unreachable() -> Source {
    let mut config = PrometheusConfig::new("http://127.0.0.1:9/".parse().unwrap());
    config.retries = 0;
    Source::Prometheus(Box::new(PrometheusClient::new(config).unwrap()))
}

fn view(f: &Forecaster) -> WorkloadView {
    f.board().view(WORKLOAD).unwrap()
}

fn origin(f: &Forecaster) -> DateTime<Utc> {
    view(f).snapshot.expect("a snapshot").generated_at
}

/// Both the tokio clock (leases) and the forecast clock one interval on.
async fn next(now: &mut DateTime<Utc>) {
    tokio::time::advance(INTERVAL).await;
    *now += INTERVAL;
}

fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_040, 0).unwrap()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_holder_computes_the_other_follows_and_takes_over_when_it_leaves() {
    let (store, mut a, mut b) = pair(replay());
    let mut now = start();

    a.tick_all(now).await;
    assert_eq!(store.holder(WORKLOAD).as_deref(), Some("a"));
    assert!(view(&a).status.computing);
    b.tick_all(now).await;
    assert!(!view(&b).status.computing, "b follows a");
    assert_eq!(origin(&b), origin(&a));
    assert!(view(&b).status.last_error.is_none());

    // A newer forecast of the holder reaches the follower.
    next(&mut now).await;
    a.tick_all(now).await;
    b.tick_all(now).await;
    assert!(origin(&a) > start());
    assert_eq!(origin(&b), origin(&a));

    // The holder shuts down: it gives its lease up at once, and the
    // follower computes from its next tick, without waiting for expiry.
    let stop = CancellationToken::new();
    stop.cancel();
    a.run(stop).await;
    assert_eq!(store.holder(WORKLOAD), None);
    let before = origin(&b);
    next(&mut now).await;
    b.tick_all(now).await;
    assert_eq!(store.holder(WORKLOAD).as_deref(), Some("b"));
    let b_view = view(&b);
    assert!(b_view.status.computing);
    assert!(origin(&b) > before, "b computed a forecast of its own");
    assert!(b_view.is_fresh(now));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_dead_holder_is_replaced_when_its_lease_expires_before_anything_goes_stale() {
    let (store, mut a, mut b) = pair(replay());
    let mut now = start();
    a.tick_all(now).await;
    b.tick_all(now).await;
    let last_of_a = origin(&a);

    // `a` stops without a word (its pod is gone). Its lease lasts two
    // intervals: one more tick of `b` follows the last forecast of `a`,
    // the next takes over.
    next(&mut now).await;
    b.tick_all(now).await;
    assert!(!view(&b).status.computing);
    assert_eq!(origin(&b), last_of_a);
    assert!(view(&b).is_fresh(now));
    next(&mut now).await;
    b.tick_all(now).await;
    assert_eq!(store.holder(WORKLOAD).as_deref(), Some("b"));
    assert!(view(&b).status.computing);
    assert!(origin(&b) > last_of_a);
    // The takeover came well within the forecast's age limit.
    assert!(now - last_of_a < chrono::Duration::from_std(STALE_AFTER / 2).unwrap());
    assert!(view(&b).is_fresh(now));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_holder_that_cannot_compute_gives_its_lease_up() {
    let (store, mut a, mut b) = pair(unreachable());
    let now = start();

    a.tick_all(now).await;
    let a_view = view(&a);
    let failure = a_view.status.last_error.expect("collection failed");
    assert_eq!(failure.component, Stage::Collect);
    assert!(a_view.snapshot.is_none());
    assert_eq!(
        store.holder(WORKLOAD),
        None,
        "a gave its lease up for a replica that can reach the data"
    );
    b.tick_all(now).await;
    assert_eq!(store.holder(WORKLOAD).as_deref(), Some("b"));
    assert!(view(&b).is_fresh(now));
    // `a` now follows what `b` computes.
    a.tick_all(now).await;
    assert!(!view(&a).status.computing);
    assert_eq!(origin(&a), origin(&b));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn without_the_store_every_replica_computes_and_sharing_resumes_after() {
    let (store, mut a, mut b) = pair(replay());
    let mut now = start();
    a.tick_all(now).await;
    b.tick_all(now).await;

    store.set_reachable(false);
    next(&mut now).await;
    a.tick_all(now).await;
    b.tick_all(now).await;
    for f in [&a, &b] {
        let v = view(f);
        assert!(v.status.computing, "each replica computes for itself");
        assert!(v.is_fresh(now));
        let failure = v.status.last_error.expect("the store failed");
        assert_eq!(failure.component, Stage::Store);
        assert_eq!(failure.reason, "unavailable");
    }
    assert_eq!(origin(&a), origin(&b));

    store.set_reachable(true);
    next(&mut now).await;
    a.tick_all(now).await;
    b.tick_all(now).await;
    // The lease of `a` ran out during the outage; `a` ticks first and takes
    // it again, and `b` follows again.
    assert_eq!(store.holder(WORKLOAD).as_deref(), Some("a"));
    assert!(view(&a).status.computing);
    assert!(!view(&b).status.computing);
    assert!(view(&b).status.last_error.is_none());
    assert_eq!(origin(&b), origin(&a));
}
