//! Snapshots and leases in Redis, shared by several forecaster replicas.
//!
//! Keys, one pair per workload:
//! - `kedastral:snapshot:{workload}`: the latest [`Snapshot`] as
//!   schema-versioned JSON, expiring after the configured TTL so a workload
//!   removed from every config does not linger;
//! - `kedastral:lease:{workload}`: the id of the replica that computes the
//!   workload, expiring unless that replica renews it. A replica that dies
//!   stops renewing, and another takes the workload over once the lease
//!   expires.
//!
//! The connection is made lazily and remade after a failure, so a Redis that
//! is down at start-up or goes away later costs errors, not the process.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Client, IntoConnectionInfo, Script};

use super::{Snapshot, SnapshotDecodeError};

const KEY_PREFIX: &str = "kedastral";

/// How to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `host:port`, or a `redis://` / `rediss://` (TLS) URL.
    pub addr: String,
    /// ACL user; with only a password, Redis's `default` user.
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
    /// How long a snapshot is kept after its last write.
    pub ttl: Duration,
    /// Longest wait for one command, connecting included.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Redis address `{addr}`: {message}")]
    Address { addr: String, message: String },
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("workload `{workload}`: {error}")]
    Decode {
        workload: String,
        error: SnapshotDecodeError,
    },
}

impl StoreError {
    /// Every label [`Self::metric_label`] gives.
    pub const METRIC_LABELS: &'static [&'static str] = &[
        "address",
        "timeout",
        "unavailable",
        "redis_error",
        "schema",
        "malformed_snapshot",
    ];

    /// A bounded label for `kedastral_errors_total{reason}`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Address { .. } => "address",
            Self::Redis(e) if e.is_timeout() => "timeout",
            Self::Redis(e) if e.is_io_error() || e.is_connection_dropped() => "unavailable",
            Self::Redis(_) => "redis_error",
            Self::Decode {
                error: SnapshotDecodeError::Schema(_),
                ..
            } => "schema",
            Self::Decode { .. } => "malformed_snapshot",
        }
    }
}

/// Takes the lease if it is free, renews it if this replica holds it;
/// answers 1 when this replica holds it afterwards.
const ACQUIRE: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
";

/// Writes a snapshot (KEYS[2], value ARGV[2], expiry ARGV[3] ms) only if
/// this replica (ARGV[1]) holds the lease (KEYS[1]) or nobody does (Redis
/// was away and every replica computed for itself); answers 1 if written.
/// A replica that lost its lease mid-tick cannot overwrite its successor.
const PUT: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
";

/// Deletes the lease only if this replica holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    ttl: Duration,
    /// This replica's lease token.
    replica: String,
    acquire: Script,
    release: Script,
    put: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Checks the address and prepares a connection, without connecting:
    /// a Redis that is down now is reported by the first command instead.
    pub fn new(config: &RedisConfig, replica: String) -> Result<Self, StoreError> {
        let address_error = |message: String| StoreError::Address {
            addr: config.addr.clone(),
            message,
        };
        let url = if config.addr.contains("://") {
            config.addr.clone()
        } else {
            format!("redis://{}", config.addr)
        };
        let info = url
            .as_str()
            .into_connection_info()
            .map_err(|e| address_error(e.to_string()))?;
        let mut settings = info.redis_settings().clone();
        if let Some(user) = &config.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &config.password {
            settings = settings.set_password(password);
        }
        if config.db != 0 {
            settings = settings.set_db(config.db);
        }
        let info = info.set_redis_settings(settings);
        let client = Client::open(info).map_err(|e| address_error(e.to_string()))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            // One quick reconnect attempt per command: the forecast loop
            // comes back every interval, so waiting longer here only delays
            // serving from memory.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let connection = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|e| address_error(e.to_string()))?;
        Ok(Self {
            connection,
            ttl: config.ttl,
            replica,
            acquire: Script::new(ACQUIRE),
            release: Script::new(RELEASE),
            put: Script::new(PUT),
        })
    }

    /// This replica's lease token.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub fn snapshot_key(workload: &str) -> String {
        format!("{KEY_PREFIX}:snapshot:{workload}")
    }

    pub fn lease_key(workload: &str) -> String {
        format!("{KEY_PREFIX}:lease:{workload}")
    }

    /// Writes the snapshot unless another replica holds the workload's
    /// lease; true when written.
    pub async fn put(&self, snapshot: &Snapshot) -> Result<bool, StoreError> {
        let mut c = self.connection.clone();
        let ttl_ms = u64::try_from(self.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let written: i64 = self
            .put
            .key(Self::lease_key(&snapshot.workload))
            .key(Self::snapshot_key(&snapshot.workload))
            .arg(&self.replica)
            .arg(snapshot.to_stored_json())
            .arg(ttl_ms)
            .invoke_async(&mut c)
            .await?;
        Ok(written == 1)
    }

    pub async fn get(&self, workload: &str) -> Result<Option<Snapshot>, StoreError> {
        let mut c = self.connection.clone();
        let text: Option<String> = c.get(Self::snapshot_key(workload)).await?;
        text.map(|t| {
            Snapshot::from_stored_json(&t).map_err(|error| StoreError::Decode {
                workload: workload.to_owned(),
                error,
            })
        })
        .transpose()
    }

    /// Takes or renews the workload's lease for `ttl`; true when this
    /// replica holds it.
    pub async fn acquire_lease(&self, workload: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut c = self.connection.clone();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let held: i64 = self
            .acquire
            .key(Self::lease_key(workload))
            .arg(&self.replica)
            .arg(ttl_ms)
            .invoke_async(&mut c)
            .await?;
        Ok(held == 1)
    }

    /// Gives the lease up if this replica holds it, so another replica need
    /// not wait for it to expire.
    pub async fn release_lease(&self, workload: &str) -> Result<(), StoreError> {
        let mut c = self.connection.clone();
        self.release
            .key(Self::lease_key(workload))
            .arg(&self.replica)
            .invoke_async::<i64>(&mut c)
            .await?;
        Ok(())
    }

    /// Every snapshot in Redis, found by scanning `kedastral:snapshot:*`.
    /// One that does not decode is skipped with a warning rather than
    /// failing the others.
    pub async fn all_snapshots(&self) -> Result<Vec<Snapshot>, StoreError> {
        let mut c = self.connection.clone();
        let mut keys: Vec<String> = Vec::new();
        let pattern = format!("{}*", RedisStore::snapshot_key(""));
        // A thousand keys per SCAN: a shared Redis with millions of other
        // keys still takes few round trips.
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1_000)
                .query_async(&mut c)
                .await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut out = Vec::with_capacity(keys.len());
        // MGET in batches: one round trip per thousand workloads.
        for batch in keys.chunks(1_000) {
            let texts: Vec<Option<String>> = c.mget(batch).await?;
            for (key, text) in batch.iter().zip(texts) {
                let Some(text) = text else { continue };
                match Snapshot::from_stored_json(&text) {
                    Ok(s) => out.push(s),
                    Err(e) => tracing::warn!(%key, error = %e, "skipping a snapshot"),
                }
            }
        }
        Ok(out)
    }
}
