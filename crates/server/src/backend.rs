//! Turns `[storage]` into a store: the one factory of storage backends.
//!
//! Adding a backend is a [`StorageKind`] variant with its config section, an arm here, and
//! [`StorageKind::is_built`] saying yes.

use std::sync::Arc;

use gomodproxy_storage::{Storage, StorageError};
use gomodproxy_storage_fs::FsStorage;

use crate::config::{StorageConfig, StorageKind};

/// Why the store could not be opened or failed its startup probe.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// `type` names a backend this binary does not contain.
    #[error("invalid `storage.type`: storage type {0} is not built into this binary yet")]
    NotBuilt(StorageKind),
    /// The backend could not be opened.
    #[error("cannot open storage ({key} = {value}): {cause}")]
    Open {
        /// The config key that locates the store.
        key: &'static str,
        /// Its value.
        value: String,
        /// What the backend reported (in the message, so not also a `source()`).
        cause: StorageError,
    },
    /// The backend opened but its read/write probe failed.
    #[error("storage check failed ({key} = {value}): {cause}")]
    Check {
        /// The config key that locates the store.
        key: &'static str,
        /// Its value.
        value: String,
        /// What the backend reported (in the message, so not also a `source()`).
        cause: StorageError,
    },
}

/// A short description of the configured store for the startup log line.
pub fn describe(config: &StorageConfig) -> String {
    match config.kind {
        StorageKind::Fs => format!("fs:{}", config.fs.root.display()),
        other => other.to_string(),
    }
}

/// Opens the configured store and runs its read/write probe, so that a broken store stops the
/// server at startup rather than failing requests.
pub async fn open(config: &StorageConfig) -> Result<Arc<dyn Storage>, BackendError> {
    let (storage, key, value): (Arc<dyn Storage>, _, _) = match config.kind {
        StorageKind::Fs => {
            let value = config.fs.root.display().to_string();
            let root = config.fs.root.clone();
            // Opening creates directories and sweeps stale temporary files: blocking work.
            let opened = tokio::task::spawn_blocking(move || FsStorage::open(root))
                .await
                .unwrap_or_else(|e| Err(StorageError::backend("fs", e)));
            let store = opened.map_err(|cause| BackendError::Open {
                key: "storage.fs.root",
                value: value.clone(),
                cause,
            })?;
            (Arc::new(store), "storage.fs.root", value)
        }
        other => return Err(BackendError::NotBuilt(other)),
    };
    storage
        .check()
        .await
        .map_err(|cause| BackendError::Check { key, value, cause })?;
    Ok(storage)
}
