//! Cluster-wide fetch locks in Redis, for gomodproxy replicas that share one store.
//!
//! [`RedisFetchLock`] implements the service layer's [`FetchLock`]: the replica that takes an
//! artifact's lock fetches it from upstream and stores it; the others wait, then find it stored.
//!
//! - Taking: `SET <prefix>lock:<key path> <random token> NX PX <ttl>`. Waiters poll with a
//!   backoff from 20 ms to 500 ms, for at most `max_wait` (then the caller fetches without the
//!   lock: a duplicate fetch is better than a stuck request).
//! - Holding: while the guard lives, a task renews the expiry every `ttl / 3`, but only while the
//!   key still holds this guard's token (compare-and-`PEXPIRE` in one script). A replica that
//!   dies stops renewing, so its lock lapses after at most `ttl` and never blocks the others
//!   longer than that.
//! - Releasing: compare-and-`DEL` in one script, so a guard whose lock expired and was taken by
//!   another replica never deletes that replica's lock.
//!
//! Single-node Redis locks are advisory across a Redis failover (see the redis crate's notes);
//! the cost of a lost lock here is one duplicate upstream fetch of an artifact whose every save
//! is atomic, never a wrong answer.
//!
//! # Dependencies
//! Of gomodproxy's crates: `gomodproxy-service` (only its `coordination` traits, which this
//! implements) and `gomodproxy-redact` (URLs in errors and `Debug`). Nothing depends on it but
//! the server, which connects it when `[coordination] redis_url` is set.

#![deny(missing_docs)]

use std::time::{Duration, Instant};

use async_trait::async_trait;
use gomodproxy_service::coordination::{FetchLock, LockGuard};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, RedisError, Script};
use tokio::sync::oneshot;

mod error;
mod options;

pub use error::{ConnectError, LockError};
pub use options::{MIN_LOCK_TTL, RedisLockOptions, RedisLockOptionsError};

/// Extends the expiry only if the key still holds our token.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0";

/// Deletes the key only if it still holds our token.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Cluster-wide fetch locks in one Redis; see the crate docs.
#[derive(Clone)]
pub struct RedisFetchLock {
    conn: ConnectionManager,
    options: RedisLockOptions,
}

impl std::fmt::Debug for RedisFetchLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFetchLock")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RedisFetchLock {
    /// Connects; fails (naming the URL, password hidden) if the options are invalid or the
    /// server does not answer.
    pub async fn connect(options: RedisLockOptions) -> Result<RedisFetchLock, ConnectError> {
        if options.url.is_empty() {
            return Err(ConnectError::NoUrl);
        }
        options.validate()?;
        let url = gomodproxy_redact::url(&options.url);
        let client = match redis::Client::open(options.url.as_str()) {
            Ok(client) => client,
            Err(source) => return Err(ConnectError::InvalidUrl { url, source }),
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout))
            .set_number_of_retries(1);
        let after = options.timeout * 2;
        let connected =
            tokio::time::timeout(after, ConnectionManager::new_with_config(client, config)).await;
        let mut conn = match connected {
            Ok(Ok(conn)) => conn,
            Ok(Err(source)) => return Err(ConnectError::Connect { url, source }),
            Err(_) => return Err(ConnectError::Timeout { url, after }),
        };
        let pong: Result<String, RedisError> = redis::cmd("PING").query_async(&mut conn).await;
        if let Err(source) = pong {
            return Err(ConnectError::Ping { url, source });
        }
        Ok(RedisFetchLock { conn, options })
    }

    fn lock_key(&self, key: &str) -> String {
        format!("{}lock:{key}", self.options.key_prefix)
    }
}

#[async_trait]
impl FetchLock for RedisFetchLock {
    async fn lock(&self, key: &str) -> Result<Box<dyn LockGuard>, String> {
        let lock_key = self.lock_key(key);
        let token = format!("{:032x}", rand::random::<u128>());
        let ttl_ms = self.options.ttl.as_millis() as u64;
        let started = Instant::now();
        let mut delay = Duration::from_millis(20);
        let mut conn = self.conn.clone();
        loop {
            let taken: Option<String> = redis::cmd("SET")
                .arg(&lock_key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms)
                .query_async(&mut conn)
                .await
                .map_err(|e| format!("taking lock {lock_key}: {e}"))?;
            if taken.is_some() {
                return Ok(Box::new(Guard::hold(
                    self.conn.clone(),
                    lock_key,
                    token,
                    self.options.ttl,
                )));
            }
            if started.elapsed() >= self.options.max_wait {
                return Err(format!(
                    "lock {lock_key} still held by another replica after {:?}",
                    self.options.max_wait
                ));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }
}

/// A held lock and the task renewing it.
struct Guard {
    conn: ConnectionManager,
    key: String,
    token: String,
    stop: Option<oneshot::Sender<()>>,
    renewal: tokio::task::JoinHandle<()>,
}

impl Guard {
    fn hold(conn: ConnectionManager, key: String, token: String, ttl: Duration) -> Guard {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let renewal = {
            let (mut conn, key, token) = (conn.clone(), key.clone(), token.clone());
            tokio::spawn(async move {
                let script = Script::new(RENEW);
                let every = ttl / 3;
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        _ = tokio::time::sleep(every) => {}
                    }
                    let renewed: Result<i64, _> = script
                        .key(&key)
                        .arg(&token)
                        .arg(ttl.as_millis() as u64)
                        .invoke_async(&mut conn)
                        .await;
                    match renewed {
                        Ok(1) => {}
                        Ok(_) => {
                            tracing::warn!(lock = %key, "fetch lock lapsed before it was released");
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(lock = %key, error = %e, "cannot renew fetch lock")
                        }
                    }
                }
            })
        };
        Guard {
            conn,
            key,
            token,
            stop: Some(stop),
            renewal,
        }
    }
}

#[async_trait]
impl LockGuard for Guard {
    async fn release(mut self: Box<Self>) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let released: Result<i64, _> = Script::new(RELEASE)
            .key(&self.key)
            .arg(&self.token)
            .invoke_async(&mut self.conn)
            .await;
        if let Err(e) = released {
            // It expires on its own after the ttl.
            tracing::warn!(lock = %self.key, error = %e, "cannot release fetch lock");
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Not released (a cancelled fetch): stop renewing so it expires after the ttl.
        self.renewal.abort();
    }
}

/// Whether `key` is locked now (for tests and diagnostics).
pub async fn is_locked(lock: &RedisFetchLock, key: &str) -> Result<bool, LockError> {
    let mut conn = lock.conn.clone();
    conn.exists(lock.lock_key(key))
        .await
        .map_err(|source| LockError::Query {
            key: key.to_string(),
            source,
        })
}
