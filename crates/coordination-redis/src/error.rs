//! The errors of connecting ([`ConnectError`]) and of asking about a lock ([`LockError`]). The
//! URL in them has its password redacted; the Redis error is the `source()`.

use std::time::Duration;

use redis::RedisError;

use crate::options::RedisLockOptionsError;

/// Why [`RedisFetchLock::connect`](crate::RedisFetchLock::connect) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The options name no server.
    #[error("no Redis URL is configured")]
    NoUrl,
    /// The options failed [`RedisLockOptions::validate`](crate::RedisLockOptions::validate).
    #[error("invalid option `{key}`: {0}", key = .0.key())]
    Options(#[from] RedisLockOptionsError),
    /// redis-rs cannot use the URL.
    #[error("invalid Redis URL {url}")]
    InvalidUrl {
        /// The URL, redacted.
        url: String,
        /// What redis-rs reported.
        source: RedisError,
    },
    /// No connection within the time allowed.
    #[error("Redis at {url} did not answer within {after:?}")]
    Timeout {
        /// The URL, redacted.
        url: String,
        /// How long it was given.
        after: Duration,
    },
    /// The connection failed.
    #[error("cannot connect to Redis at {url}")]
    Connect {
        /// The URL, redacted.
        url: String,
        /// What redis-rs reported.
        source: RedisError,
    },
    /// Connected, but the server does not answer `PING`.
    #[error("Redis at {url} does not answer PING")]
    Ping {
        /// The URL, redacted.
        url: String,
        /// What redis-rs reported.
        source: RedisError,
    },
}

/// Why [`is_locked`](crate::is_locked) could not tell.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The `EXISTS` query of the lock key failed.
    #[error("checking lock {key}")]
    Query {
        /// The artifact key whose lock was asked about.
        key: String,
        /// What redis-rs reported.
        source: RedisError,
    },
}
