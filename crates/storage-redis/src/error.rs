//! The errors of this backend: a failed Redis command, a failure that is not a Redis error, and
//! which failures are worth a retry.

use redis::{ErrorKind, RedisError, ServerErrorKind};

/// The `store` name in [`StorageError::Backend`].
pub(crate) const STORE: &str = "redis";

/// A failed Redis operation, with what was being done and on which server.
#[derive(Debug, thiserror::Error)]
#[error("{op} (redis at {url}): {source}")]
pub(crate) struct RedisOpError {
    pub(crate) op: String,
    pub(crate) url: String,
    pub(crate) source: RedisError,
}

/// A failure of this backend that is not a Redis error (bad data, expired staging, bad options).
#[derive(Debug, thiserror::Error)]
#[error("{message} (redis at {url})")]
pub(crate) struct StoreError {
    pub(crate) message: String,
    pub(crate) url: String,
}

/// The body-stream error of a chunk that vanished or a body that does not match its manifest.
pub(crate) fn body_error(message: String) -> std::io::Error {
    std::io::Error::other(message)
}

/// Whether a failed command may be sent again: the connection was dropped or refused (the
/// connection manager is reconnecting), or the server is still loading its data. Every command
/// and script of this store is idempotent, so a retry cannot apply anything twice.
pub(crate) fn is_transient(e: &RedisError) -> bool {
    e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.kind() == ErrorKind::Server(ServerErrorKind::BusyLoading)
}
