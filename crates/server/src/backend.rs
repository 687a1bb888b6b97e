//! Turns `[storage]` and `[cache]` into a store, and `[coordination]` into a fetch lock: the one
//! factory of storage backends, and the only code that opens one.
//!
//! Each section already is the backend's own options type (it deserializes itself, see
//! [`crate::config::StorageConfig`]), so this module only hands it over. Adding a backend is a
//! [`StorageKind`] variant with its options type in [`StorageConfig`], an arm in
//! [`open_backend`] (and in [`describe`] and `locator`), and a call of the options'
//! `validate()` in the config's validation. Adding a key to a backend touches only its options
//! type.

use std::sync::Arc;

use anyhow::Context;
use gomodproxy_coordination_redis::{RedisFetchLock, RedisLockOptions};
use gomodproxy_redact::url as redact_url;
use gomodproxy_service::coordination::FetchLock;
use gomodproxy_storage::cache::{CacheStats, MemoryCache, MemoryCacheOptions};
use gomodproxy_storage::{Storage, StorageError};
use gomodproxy_storage_fs::FsStorage;
use gomodproxy_storage_redis::RedisStorage;
use gomodproxy_storage_s3::S3Storage;
use gomodproxy_storage_sled::SledStorage;

use crate::config::{StorageConfig, StorageKind};

/// Why the store could not be opened or failed its startup probe.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
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

/// An opened store, with the memory cache's figures when there is one.
#[derive(Debug, Clone)]
pub struct Store {
    /// What the service uses.
    pub storage: Arc<dyn Storage>,
    cache: Option<Arc<MemoryCache<Arc<dyn Storage>>>>,
}

impl Store {
    /// The memory cache's figures, if it is on.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.cache.as_ref().map(|c| c.stats())
    }
}

/// A short description of the configured store for the startup log line.
pub fn describe(config: &StorageConfig) -> String {
    match config.kind {
        StorageKind::Fs => format!("fs:{}", config.fs.root.display()),
        StorageKind::Sled => format!("sled:{}", config.sled.path.display()),
        StorageKind::Redis => format!(
            "redis:{} prefix {:?}",
            redact_url(&config.redis.url),
            config.redis.key_prefix
        ),
        StorageKind::S3 => format!(
            "s3:{}/{}{}",
            s3_endpoint(config, "aws"),
            config.s3.bucket,
            if config.s3.key_prefix.is_empty() {
                String::new()
            } else {
                format!(" prefix {:?}", config.s3.key_prefix)
            }
        ),
    }
}

/// The S3 endpoint with its credentials redacted, or `aws` when none is configured.
fn s3_endpoint(config: &StorageConfig, aws: &str) -> String {
    match config.s3.endpoint.as_deref() {
        Some(endpoint) if !endpoint.is_empty() => redact_url(endpoint),
        _ => aws.to_string(),
    }
}

/// The config key that locates the store, and its value (for errors).
fn locator(config: &StorageConfig) -> (&'static str, String) {
    match config.kind {
        StorageKind::Fs => ("storage.fs.root", config.fs.root.display().to_string()),
        StorageKind::Sled => ("storage.sled.path", config.sled.path.display().to_string()),
        StorageKind::Redis => ("storage.redis.url", redact_url(&config.redis.url)),
        StorageKind::S3 => (
            "storage.s3.bucket",
            format!("{} at {}", config.s3.bucket, s3_endpoint(config, "AWS")),
        ),
    }
}

/// Opens the configured backend without probing it.
pub async fn open_backend(config: &StorageConfig) -> Result<Arc<dyn Storage>, BackendError> {
    let (key, value) = locator(config);
    let open_error = |cause| BackendError::Open {
        key,
        value: value.clone(),
        cause,
    };
    let blocking_failed = |e: tokio::task::JoinError| StorageError::backend("open", e);
    match config.kind {
        StorageKind::Fs => {
            let options = config.fs.clone();
            // Opening creates directories and sweeps stale temporary files: blocking work.
            let store = tokio::task::spawn_blocking(move || FsStorage::open_with(options))
                .await
                .unwrap_or_else(|e| Err(blocking_failed(e)))
                .map_err(open_error)?;
            Ok(Arc::new(store))
        }
        StorageKind::Sled => {
            let options = config.sled.clone();
            let store = tokio::task::spawn_blocking(move || SledStorage::open(options))
                .await
                .unwrap_or_else(|e| Err(blocking_failed(e)))
                .map_err(open_error)?;
            Ok(Arc::new(store))
        }
        StorageKind::Redis => {
            let store = RedisStorage::open(config.redis.clone())
                .await
                .map_err(open_error)?;
            Ok(Arc::new(store))
        }
        StorageKind::S3 => {
            let store = S3Storage::open(config.s3.clone())
                .await
                .map_err(open_error)?;
            Ok(Arc::new(store))
        }
    }
}

/// Connects the cluster-wide fetch lock when `[coordination] redis_url` is set; an unreachable
/// Redis is a startup error naming the key and the address.
pub async fn fetch_lock(config: &RedisLockOptions) -> anyhow::Result<Option<Arc<dyn FetchLock>>> {
    if config.url.is_empty() {
        return Ok(None);
    }
    let lock = RedisFetchLock::connect(config.clone())
        .await
        .context("`coordination.redis_url`")?;
    Ok(Some(Arc::new(lock)))
}

/// Opens the configured store, runs its read/write probe (so that a broken store stops the
/// server at startup rather than failing requests), and puts the memory cache in front.
pub async fn open(
    storage: &StorageConfig,
    cache: &MemoryCacheOptions,
) -> Result<Store, BackendError> {
    let backend = open_backend(storage).await?;
    let (key, value) = locator(storage);
    backend
        .check()
        .await
        .map_err(|cause| BackendError::Check { key, value, cause })?;
    if cache.memory_bytes == 0 {
        return Ok(Store {
            storage: backend,
            cache: None,
        });
    }
    let cached = Arc::new(MemoryCache::new(backend, cache.clone()));
    Ok(Store {
        storage: cached.clone(),
        cache: Some(cached),
    })
}
