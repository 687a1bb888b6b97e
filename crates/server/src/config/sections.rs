//! The sections of the configuration (`[storage]`, `[fetch]`, …) and its keyword values.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use gomodproxy_service::ServiceConfig;
use gomodproxy_storage::cache::MemoryCacheOptions;
use serde::{Deserialize, Serialize};

use super::Mode;

/// `[storage]`: which backend, and one section of settings per backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// The backend (`type = "fs"`).
    #[serde(rename = "type")]
    pub kind: StorageKind,
    /// `[storage.fs]`, used when `type = "fs"`.
    pub fs: FsConfig,
    /// `[storage.sled]`, used when `type = "sled"`.
    pub sled: SledConfig,
    /// `[storage.redis]`, used when `type = "redis"`.
    pub redis: RedisConfig,
    /// `[storage.s3]`, used when `type = "s3"`.
    pub s3: S3Config,
}

/// The storage backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum StorageKind {
    /// Files under a directory.
    #[default]
    Fs,
    /// An embedded sled database.
    Sled,
    /// A Redis server.
    Redis,
    /// An S3-compatible object store.
    S3,
}

impl fmt::Display for StorageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StorageKind::Fs => "fs",
            StorageKind::Sled => "sled",
            StorageKind::Redis => "redis",
            StorageKind::S3 => "s3",
        })
    }
}

/// `[storage.fs]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FsConfig {
    /// The directory holding the GOPROXY-layout tree.
    pub root: PathBuf,
    /// Record each object's length when it is saved and check it on every read, so a file
    /// truncated on disk is a 503 (online: refetched) instead of a 200 with wrong bytes.
    pub verify_size_on_read: bool,
}

impl Default for FsConfig {
    fn default() -> Self {
        FsConfig {
            root: PathBuf::from("./data"),
            verify_size_on_read: gomodproxy_storage_fs::FsOptions::default().verify_size_on_read,
        }
    }
}

/// `[storage.sled]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SledConfig {
    /// Directory of the store: the sled database and the body files beside it.
    pub path: PathBuf,
    /// Upper bound of sled's page cache (manifests and small bodies), in bytes.
    pub cache_capacity: u64,
    /// Interval of sled's background log flush in milliseconds; 0 turns it off (every save
    /// flushes before it returns either way).
    pub flush_every_ms: u64,
    /// Check a body file's size against its manifest on every read (see `storage.fs`).
    pub verify_size_on_read: bool,
}

impl Default for SledConfig {
    fn default() -> Self {
        let s = gomodproxy_storage_sled::SledOptions::default();
        SledConfig {
            path: s.path,
            cache_capacity: s.cache_capacity_bytes,
            flush_every_ms: s.flush_every_ms.unwrap_or(0),
            verify_size_on_read: s.verify_size_on_read,
        }
    }
}

/// `[storage.redis]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// Server URL (`redis://[:password@]host:port/db`, or `redis+unix:///path`).
    pub url: String,
    /// Prepended to every Redis key, so one Redis can be shared with other applications.
    pub key_prefix: String,
    /// Bodies are stored in chunks of this many bytes.
    pub chunk_size: usize,
    /// Timeout of one connection attempt.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Timeout of one command.
    #[serde(with = "humantime_serde")]
    pub response_timeout: Duration,
    /// Retries of a command after a dropped or refused connection.
    pub retries: u32,
    /// Expiry of the chunks of a save in progress (a crashed writer's chunks vanish after it).
    #[serde(with = "humantime_serde")]
    pub staging_ttl: Duration,
    /// How long replaced or deleted chunks stay readable for readers already streaming them.
    #[serde(with = "humantime_serde")]
    pub superseded_grace: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        let r = gomodproxy_storage_redis::RedisOptions::default();
        RedisConfig {
            url: r.url,
            key_prefix: r.key_prefix,
            chunk_size: r.chunk_size,
            connect_timeout: r.connect_timeout,
            response_timeout: r.response_timeout,
            retries: r.retries,
            staging_ttl: r.staging_ttl,
            superseded_grace: r.superseded_grace,
        }
    }
}

/// `[storage.s3]`: an S3 bucket (AWS, MinIO or another S3-compatible server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// The bucket (required with `type = "s3"`; it must exist).
    pub bucket: String,
    /// The endpoint URL for MinIO and other S3-compatible servers (`http://minio:9000`); empty
    /// means AWS (or `AWS_ENDPOINT_URL`).
    pub endpoint: String,
    /// The region; empty means `AWS_REGION`, else `us-east-1`.
    pub region: String,
    /// Access key; empty means `AWS_ACCESS_KEY_ID` (with `AWS_SECRET_ACCESS_KEY` and
    /// `AWS_SESSION_TOKEN`), else instance or container credentials.
    pub access_key_id: String,
    /// Secret key (with `access_key_id`).
    pub secret_access_key: String,
    /// Session token (with `access_key_id`), for temporary credentials.
    pub session_token: String,
    /// Allow `http://` endpoints (MinIO on a private network).
    pub allow_http: bool,
    /// `true`: `bucket.host` URLs; `false`: `host/bucket`; unset: virtual-hosted for AWS,
    /// path-style when an endpoint is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_hosted_style: Option<bool>,
    /// Prefix of every object name (`gomodproxy/`), to share a bucket.
    pub key_prefix: String,
    /// Timeout of opening a connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest silence while a request or a body streams.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Retries of a failed request.
    pub max_retries: usize,
    /// Part size of multipart uploads, in bytes (5 MiB to 5 GiB).
    pub part_size: usize,
    /// Parts uploaded at once.
    pub upload_concurrency: usize,
}

impl Default for S3Config {
    fn default() -> Self {
        let s = gomodproxy_storage_s3::S3Options::default();
        S3Config {
            bucket: String::new(),
            endpoint: String::new(),
            region: String::new(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            session_token: String::new(),
            allow_http: s.allow_http,
            virtual_hosted_style: None,
            key_prefix: s.key_prefix,
            connect_timeout: s.connect_timeout,
            request_timeout: s.request_timeout,
            max_retries: s.max_retries,
            part_size: s.part_size,
            upload_concurrency: s.upload_concurrency,
        }
    }
}

/// `[coordination]`: replicas sharing one store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoordinationConfig {
    /// A Redis that replicas use for cluster-wide fetch locks, so concurrent misses for one
    /// artifact on several replicas make one upstream fetch. Empty: no coordination.
    pub redis_url: String,
    /// Prefix of the lock keys.
    pub key_prefix: String,
    /// Expiry of a lock no one renews: how long a dead replica can hold others up.
    #[serde(with = "humantime_serde")]
    pub lock_ttl: Duration,
    /// Longest wait for another replica's fetch before fetching anyway.
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
}

impl Default for CoordinationConfig {
    fn default() -> Self {
        let o = gomodproxy_coordination_redis::RedisLockOptions::default();
        CoordinationConfig {
            redis_url: String::new(),
            key_prefix: o.key_prefix,
            lock_ttl: o.ttl,
            max_wait: o.max_wait,
        }
    }
}

/// `[cache]`: the in-memory cache of small objects in front of the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Budget in bytes; 0 turns the cache off.
    pub memory_bytes: u64,
    /// Largest object held.
    pub max_object_bytes: u64,
    /// Longest time a `list`, `@latest` or tree head is served from memory (other replicas
    /// sharing the store may have replaced it).
    #[serde(with = "humantime_serde")]
    pub mutable_max_age: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        let c = MemoryCacheOptions::default();
        CacheConfig {
            memory_bytes: c.capacity_bytes,
            max_object_bytes: c.max_object_bytes,
            mutable_max_age: c.mutable_max_age,
        }
    }
}

/// `[fetch]`: how upstream is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    /// Connect timeout of an upstream request.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait for response headers, and longest silence while reading a body.
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Retries of an upstream GET after a connection error, timeout or 5xx.
    pub retries: u32,
    /// First retry delay; doubles each time.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// Largest zip accepted from upstream, in bytes.
    pub max_zip_size: u64,
    /// Largest `.mod` accepted from upstream, in bytes.
    pub max_mod_size: u64,
    /// Largest `.info` / `list` / `@latest` accepted from upstream, in bytes.
    pub max_info_size: u64,
    /// Base deadline of one upstream request, retries included; it grows by one second per
    /// `min_transfer_rate` bytes received, so a large zip at a fair rate always finishes and a
    /// trickle does not.
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
    /// Slowest average transfer, in bytes per second, an upstream may keep up past `deadline`.
    pub min_transfer_rate: u64,
    /// Upstream requests in flight at once, in all.
    pub max_concurrent: usize,
    /// Upstream requests in flight at once to one upstream host (`host:port`).
    pub max_concurrent_per_host: usize,
    /// Requests that may wait for an upstream slot; one more gets a 503 at once.
    pub max_queued: usize,
    /// Longest wait for an upstream slot before a 503 with `Retry-After`.
    #[serde(with = "humantime_serde")]
    pub queue_timeout: Duration,
    /// Disk, in bytes, that zips being received (spooled before they are checked and stored)
    /// may take at once; a fetch that would exceed it gets a 503.
    pub spool_budget: u64,
    /// Zip checks (structure and `h1:` hash) running at once.
    pub max_concurrent_zip_checks: usize,
    /// How long a "not found" from every upstream is remembered per path; 0 turns the negative
    /// cache off.
    #[serde(with = "humantime_serde")]
    pub negative_ttl: Duration,
    /// Most paths the negative cache holds.
    pub negative_cache_entries: usize,
    /// How long the answer to a non-canonical query (`@v/master.info`) is reused; 0 turns the
    /// query cache off (identical queries at once still share one request).
    #[serde(with = "humantime_serde")]
    pub query_ttl: Duration,
    /// Hosts (`cdn.example.com`, `*.example.com`) an https upstream may redirect to. Redirects
    /// within the same scheme, host and port are always followed; every other one is refused.
    /// From the environment: comma-separated.
    pub redirect_hosts: Vec<String>,
}

impl Default for FetchConfig {
    fn default() -> Self {
        let s = ServiceConfig::default();
        FetchConfig {
            connect_timeout: s.connect_timeout,
            read_timeout: s.read_timeout,
            retries: s.retries,
            retry_backoff: s.retry_backoff,
            max_zip_size: s.max_zip_size,
            max_mod_size: s.max_mod_size,
            max_info_size: s.max_info_size,
            deadline: s.fetch_deadline,
            min_transfer_rate: s.min_transfer_rate,
            max_concurrent: s.max_concurrent_fetches,
            max_concurrent_per_host: s.max_concurrent_fetches_per_host,
            max_queued: s.max_queued_fetches,
            queue_timeout: s.queue_timeout,
            spool_budget: s.spool_budget,
            max_concurrent_zip_checks: s.max_concurrent_zip_checks,
            negative_ttl: s.negative_ttl,
            negative_cache_entries: s.negative_cache_entries,
            query_ttl: s.query_ttl,
            redirect_hosts: s.redirect_hosts,
        }
    }
}

/// `[sumdb]`: checksum databases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SumdbConfig {
    /// Serve `/sumdb/<name>/…` for the configured databases (verified, cached).
    pub enabled: bool,
    /// Store an upstream `.mod`/`.zip` only if its hash matches the first database.
    pub verify: bool,
    /// Databases in `GOSUMDB` syntax: `"<verifier key>"` (fetched through the upstream
    /// proxies' `/sumdb/<name>/`) or `"<verifier key> <url>"` (fetched from the database
    /// itself). From the environment: comma-separated.
    pub databases: Vec<String>,
    /// How long a fetched tree head is used before a newer one is asked for.
    #[serde(with = "humantime_serde")]
    pub latest_ttl: Duration,
}

impl Default for SumdbConfig {
    fn default() -> Self {
        let s = ServiceConfig::default();
        SumdbConfig {
            enabled: s.serve_sumdb,
            verify: s.verify,
            databases: s.sumdbs,
            latest_ttl: s.sumdb_latest_ttl,
        }
    }
}

/// `[prewarm]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrewarmConfig {
    /// Items fetched in the background when `serve` starts, and by `prewarm` when given none:
    /// `module@version`, `module@latest`, `go.mod:PATH`, `go.sum:PATH`,
    /// `toolchain:go1.X.Y[@GOOS/GOARCH]`. From the environment: comma-separated.
    pub items: Vec<String>,
    /// Module versions fetched at once.
    pub concurrency: usize,
    /// Retries of a module version after a transient failure.
    pub retries: u32,
    /// First retry delay; doubles each time.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
}

impl Default for PrewarmConfig {
    fn default() -> Self {
        let p = gomodproxy_service::prewarm::PrewarmOptions::default();
        PrewarmConfig {
            items: Vec::new(),
            concurrency: p.concurrency,
            retries: p.retries,
            retry_backoff: p.retry_backoff,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `warn,gomodproxy=debug`); `RUST_LOG`, when set, wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_string(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Deserializes keyword enums from their lower-case names, with an error that lists the
/// accepted names (serde's own message through the `config` crate does not).
macro_rules! keywords {
    ($ty:ty { $($name:literal => $variant:expr),+ $(,)? }) => {
        impl TryFrom<String> for $ty {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                match value.as_str() {
                    $($name => Ok($variant),)+
                    _ => Err(format!(
                        "`{value}` is not one of: {}",
                        [$($name),+].join(", ")
                    )),
                }
            }
        }
    };
}

keywords!(Mode { "online" => Mode::Online, "offline" => Mode::Offline });
keywords!(StorageKind {
    "fs" => StorageKind::Fs,
    "sled" => StorageKind::Sled,
    "redis" => StorageKind::Redis,
    "s3" => StorageKind::S3,
});
keywords!(LogFormat { "text" => LogFormat::Text, "json" => LogFormat::Json });
