//! Where forecaster replicas share their workloads: each workload's lease
//! (the one replica that computes it) and its latest snapshot.
//!
//! [`LeaseStore`] is what a forecaster runs on; [`super::redis::RedisStore`]
//! is the one deployments use, and [`MemoryLeases`] keeps the same rules in
//! one process, on tokio's clock, so the forecaster's handover, give-up and
//! follow can be driven on paused time.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::Snapshot;
use super::redis::{RedisStore, StoreError};

/// What a [`LeaseStore`] call hands back.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Leases and snapshots shared by forecaster replicas.
pub trait LeaseStore: Send + Sync + std::fmt::Debug {
    /// This replica's lease token.
    fn replica(&self) -> &str;

    /// Takes the workload's lease if it is free, renews it if this replica
    /// holds it, for `ttl`; true when this replica holds it afterwards.
    fn acquire_lease<'a>(&'a self, workload: &'a str, ttl: Duration) -> StoreFuture<'a, bool>;

    /// Gives the lease up if this replica holds it.
    fn release_lease<'a>(&'a self, workload: &'a str) -> StoreFuture<'a, ()>;

    /// Writes the snapshot unless another replica holds the workload's
    /// lease; true when written.
    fn put<'a>(&'a self, snapshot: &'a Snapshot) -> StoreFuture<'a, bool>;

    /// The workload's latest snapshot.
    fn get<'a>(&'a self, workload: &'a str) -> StoreFuture<'a, Option<Snapshot>>;
}

impl LeaseStore for RedisStore {
    fn replica(&self) -> &str {
        RedisStore::replica(self)
    }

    fn acquire_lease<'a>(&'a self, workload: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(RedisStore::acquire_lease(self, workload, ttl))
    }

    fn release_lease<'a>(&'a self, workload: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(RedisStore::release_lease(self, workload))
    }

    fn put<'a>(&'a self, snapshot: &'a Snapshot) -> StoreFuture<'a, bool> {
        Box::pin(RedisStore::put(self, snapshot))
    }

    fn get<'a>(&'a self, workload: &'a str) -> StoreFuture<'a, Option<Snapshot>> {
        Box::pin(RedisStore::get(self, workload))
    }
}

#[derive(Debug, Default)]
struct Space {
    /// Workload to (holder, expiry).
    leases: HashMap<String, (String, Instant)>,
    snapshots: HashMap<String, Snapshot>,
}

/// The rules of the Redis store, held in memory and timed by tokio's clock:
/// replicas made with [`MemoryLeases::replica`] share one space, as
/// forecasters share one Redis.
#[derive(Debug, Clone)]
pub struct MemoryLeases {
    space: Arc<Mutex<Space>>,
    reachable: Arc<AtomicBool>,
    replica: String,
}

impl MemoryLeases {
    /// A new, empty space, seen as replica `replica`.
    pub fn new(replica: &str) -> Self {
        Self {
            space: Arc::default(),
            reachable: Arc::new(AtomicBool::new(true)),
            replica: replica.to_owned(),
        }
    }

    /// Another replica on the same space.
    pub fn replica(&self, replica: &str) -> Self {
        Self {
            replica: replica.to_owned(),
            ..self.clone()
        }
    }

    /// Cuts every replica off the space (or brings them back): each call
    /// fails as an unreachable Redis does.
    pub fn set_reachable(&self, reachable: bool) {
        self.reachable.store(reachable, Ordering::Relaxed);
    }

    /// Who holds `workload`'s lease now, if anyone.
    pub fn holder(&self, workload: &str) -> Option<String> {
        let space = self.space.lock().expect("space lock");
        space
            .leases
            .get(workload)
            .filter(|(_, expiry)| *expiry > Instant::now())
            .map(|(holder, _)| holder.clone())
    }

    /// The space, or the error an unreachable Redis gives.
    fn with<T>(&self, f: impl FnOnce(&mut Space) -> T) -> Result<T, StoreError> {
        if !self.reachable.load(Ordering::Relaxed) {
            return Err(StoreError::Redis(redis::RedisError::from((
                redis::ErrorKind::Io,
                "the in-memory store is cut off",
            ))));
        }
        let mut space = self.space.lock().expect("space lock");
        let now = Instant::now();
        space.leases.retain(|_, (_, expiry)| *expiry > now);
        Ok(f(&mut space))
    }
}

impl LeaseStore for MemoryLeases {
    fn replica(&self) -> &str {
        &self.replica
    }

    fn acquire_lease<'a>(&'a self, workload: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        let held = self.with(|space| match space.leases.get_mut(workload) {
            Some((holder, expiry)) if *holder == self.replica => {
                *expiry = Instant::now() + ttl;
                true
            }
            Some(_) => false,
            None => {
                let lease = (self.replica.clone(), Instant::now() + ttl);
                space.leases.insert(workload.to_owned(), lease);
                true
            }
        });
        Box::pin(std::future::ready(held))
    }

    fn release_lease<'a>(&'a self, workload: &'a str) -> StoreFuture<'a, ()> {
        let released = self.with(|space| {
            if space
                .leases
                .get(workload)
                .is_some_and(|(holder, _)| *holder == self.replica)
            {
                space.leases.remove(workload);
            }
        });
        Box::pin(std::future::ready(released))
    }

    fn put<'a>(&'a self, snapshot: &'a Snapshot) -> StoreFuture<'a, bool> {
        let written = self.with(|space| {
            let other = space
                .leases
                .get(&snapshot.workload)
                .is_some_and(|(holder, _)| *holder != self.replica);
            if !other {
                space
                    .snapshots
                    .insert(snapshot.workload.clone(), snapshot.clone());
            }
            !other
        });
        Box::pin(std::future::ready(written))
    }

    fn get<'a>(&'a self, workload: &'a str) -> StoreFuture<'a, Option<Snapshot>> {
        let snapshot = self.with(|space| space.snapshots.get(workload).cloned());
        Box::pin(std::future::ready(snapshot))
    }
}
