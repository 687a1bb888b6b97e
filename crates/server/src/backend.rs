//! Turns `[storage]` and `[cache]` into a store: the one factory of storage backends, and the
//! only code that names a backend crate.
//!
//! Adding a backend is a [`StorageKind`] variant with its config section and an arm in
//! [`open_backend`] (and in [`describe`] and `locator`).

use std::sync::Arc;

use gomodproxy_redact::url as redact_url;
use gomodproxy_storage::cache::{CacheStats, MemoryCache, MemoryCacheOptions};
use gomodproxy_storage::{Storage, StorageError};
use gomodproxy_storage_fs::{FsOptions, FsStorage};
use gomodproxy_storage_redis::{RedisOptions, RedisStorage};
use gomodproxy_storage_s3::{S3Options, S3Storage};
use gomodproxy_storage_sled::{SledOptions, SledStorage};

use gomodproxy_coordination_redis::{RedisFetchLock, RedisLockOptions};
use gomodproxy_service::coordination::FetchLock;

use crate::config::{CacheConfig, CoordinationConfig, StorageConfig, StorageKind};

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
            if config.s3.endpoint.is_empty() {
                "aws".to_string()
            } else {
                redact_url(&config.s3.endpoint)
            },
            config.s3.bucket,
            if config.s3.key_prefix.is_empty() {
                String::new()
            } else {
                format!(" prefix {:?}", config.s3.key_prefix)
            }
        ),
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
            format!(
                "{} at {}",
                config.s3.bucket,
                if config.s3.endpoint.is_empty() {
                    "AWS".to_string()
                } else {
                    redact_url(&config.s3.endpoint)
                }
            ),
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
            let root = config.fs.root.clone();
            let options = FsOptions {
                verify_size_on_read: config.fs.verify_size_on_read,
            };
            // Opening creates directories and sweeps stale temporary files: blocking work.
            let store = tokio::task::spawn_blocking(move || FsStorage::open_with(root, options))
                .await
                .unwrap_or_else(|e| Err(blocking_failed(e)))
                .map_err(open_error)?;
            Ok(Arc::new(store))
        }
        StorageKind::Sled => {
            let options = SledOptions {
                path: config.sled.path.clone(),
                cache_capacity_bytes: config.sled.cache_capacity,
                flush_every_ms: (config.sled.flush_every_ms > 0)
                    .then_some(config.sled.flush_every_ms),
                verify_size_on_read: config.sled.verify_size_on_read,
            };
            let store = tokio::task::spawn_blocking(move || SledStorage::open(options))
                .await
                .unwrap_or_else(|e| Err(blocking_failed(e)))
                .map_err(open_error)?;
            Ok(Arc::new(store))
        }
        StorageKind::Redis => {
            let r = &config.redis;
            let options = RedisOptions {
                url: r.url.clone(),
                key_prefix: r.key_prefix.clone(),
                chunk_size: r.chunk_size,
                connect_timeout: r.connect_timeout,
                response_timeout: r.response_timeout,
                retries: r.retries,
                staging_ttl: r.staging_ttl,
                superseded_grace: r.superseded_grace,
                ..RedisOptions::default()
            };
            let store = RedisStorage::open(options).await.map_err(open_error)?;
            Ok(Arc::new(store))
        }
        StorageKind::S3 => {
            let s = &config.s3;
            let non_empty = |v: &String| (!v.is_empty()).then(|| v.clone());
            let options = S3Options {
                bucket: s.bucket.clone(),
                endpoint: non_empty(&s.endpoint),
                region: non_empty(&s.region),
                access_key_id: non_empty(&s.access_key_id),
                secret_access_key: non_empty(&s.secret_access_key),
                session_token: non_empty(&s.session_token),
                allow_http: s.allow_http,
                virtual_hosted_style: s.virtual_hosted_style,
                key_prefix: s.key_prefix.clone(),
                connect_timeout: s.connect_timeout,
                request_timeout: s.request_timeout,
                max_retries: s.max_retries,
                part_size: s.part_size,
                upload_concurrency: s.upload_concurrency,
                ..S3Options::default()
            };
            let store = S3Storage::open(options).await.map_err(open_error)?;
            Ok(Arc::new(store))
        }
    }
}

/// Connects the cluster-wide fetch lock when `[coordination] redis_url` is set; an unreachable
/// Redis is a startup error naming the key and the address.
pub async fn fetch_lock(config: &CoordinationConfig) -> anyhow::Result<Option<Arc<dyn FetchLock>>> {
    if config.redis_url.is_empty() {
        return Ok(None);
    }
    let lock = RedisFetchLock::connect(RedisLockOptions {
        url: config.redis_url.clone(),
        key_prefix: config.key_prefix.clone(),
        ttl: config.lock_ttl,
        max_wait: config.max_wait,
        ..RedisLockOptions::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("`coordination.redis_url`: {e}"))?;
    Ok(Some(Arc::new(lock)))
}

/// Opens the configured store, runs its read/write probe (so that a broken store stops the
/// server at startup rather than failing requests), and puts the memory cache in front.
pub async fn open(storage: &StorageConfig, cache: &CacheConfig) -> Result<Store, BackendError> {
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
    let cached = Arc::new(MemoryCache::new(
        backend,
        MemoryCacheOptions {
            capacity_bytes: cache.memory_bytes,
            max_object_bytes: cache.max_object_bytes,
            mutable_max_age: cache.mutable_max_age,
        },
    ));
    Ok(Store {
        storage: cached.clone(),
        cache: Some(cached),
    })
}
