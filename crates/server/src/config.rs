//! The server's configuration: one typed struct, loaded from built-in defaults, then a TOML file,
//! then `GOMODPROXY_*` environment variables.
//!
//! Precedence is field by field: an environment variable overrides the same key from the file,
//! and a key set nowhere keeps its default. Environment names map to keys by dropping the
//! `GOMODPROXY_` prefix, lower-casing, and reading `__` as the nesting separator
//! (`GOMODPROXY_STORAGE__FS__ROOT` → `storage.fs.root`), so every key is lower snake_case.
//!
//! Every struct denies unknown fields: a misspelt key in the file or in a `GOMODPROXY_*`
//! variable is an error that names the key and where it came from, never a silently ignored
//! setting. The service-layer defaults (timeouts, sizes, TTL) come from
//! [`ServiceConfig::default`], so the two layers cannot disagree.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gomodproxy_service::{
    DirectConfig, Mode as ServiceMode, ModulePatterns, Routes, ServiceConfig, SumdbSpec,
    UpstreamChain,
};
use gomodproxy_storage::cache::MemoryCacheOptions;
use serde::{Deserialize, Serialize};

/// Prefix of the environment variables that set configuration keys.
pub const ENV_PREFIX: &str = "GOMODPROXY_";

/// Separator of nested keys in environment variable names.
const ENV_SEPARATOR: &str = "__";

/// The whole configuration of `gomodproxy serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`IP:PORT`; port 0 picks a free port).
    pub listen: SocketAddr,
    /// `online` (storage, then upstream) or `offline` (storage only, never the network).
    pub mode: Mode,
    /// Upstream chain in GOPROXY syntax (`https://a,https://b|file:///dir`, `…,direct`),
    /// parsed when the configuration is loaded.
    pub upstream: UpstreamChain,
    /// Module patterns with chains of their own (`[[routes]]`, or from the environment
    /// `PATTERNS=CHAIN;…`).
    pub routes: Routes,
    /// How long a cached `list` / `@latest` is served before upstream is asked again; also the
    /// `max-age` of those responses.
    #[serde(with = "humantime_serde")]
    pub list_ttl: Duration,
    /// Where zips are spooled for validation before they are stored (default: the OS temp dir).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spool_dir: Option<PathBuf>,
    /// On SIGTERM/SIGINT, how long in-flight requests may run before they are cut.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// HTTP worker threads; 0 means one per CPU.
    pub workers: usize,
    /// Client connections held at once; 0 means what the open-file limit allows after the
    /// descriptors upstream fetches need (the server raises its soft limit to the hard one).
    pub max_connections: usize,
    /// Module path patterns (GOPRIVATE syntax) never verified against, or looked up in, a
    /// checksum database. From the environment: comma-separated.
    pub private: ModulePatterns,
    /// Where artifacts are stored.
    pub storage: StorageConfig,
    /// The in-memory cache of small objects.
    pub cache: CacheConfig,
    /// Replicas sharing one store.
    pub coordination: CoordinationConfig,
    /// How upstream is fetched.
    pub fetch: FetchConfig,
    /// The checksum database: proxying and verification.
    pub sumdb: SumdbConfig,
    /// The version-control source of chains with `direct`.
    pub direct: DirectConfig,
    /// What to fetch ahead of time (`gomodproxy prewarm`, and in the background at `serve`).
    pub prewarm: PrewarmConfig,
    /// Logging.
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        let service = ServiceConfig::default();
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            mode: Mode::from(service.mode),
            upstream: service.upstream,
            routes: service.routes,
            list_ttl: service.list_ttl,
            spool_dir: service.spool_dir,
            shutdown_timeout: Duration::from_secs(30),
            workers: 0,
            max_connections: 0,
            private: service.private,
            direct: service.direct,
            storage: StorageConfig::default(),
            cache: CacheConfig::default(),
            coordination: CoordinationConfig::default(),
            fetch: FetchConfig::default(),
            sumdb: SumdbConfig::default(),
            prewarm: PrewarmConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// Whether the proxy may use the network (`mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Mode {
    /// Storage first, then upstream.
    Online,
    /// Storage only.
    Offline,
}

impl From<ServiceMode> for Mode {
    fn from(mode: ServiceMode) -> Self {
        match mode {
            ServiceMode::Online => Mode::Online,
            ServiceMode::Offline => Mode::Offline,
        }
    }
}

impl From<Mode> for ServiceMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Online => ServiceMode::Online,
            Mode::Offline => ServiceMode::Offline,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Online => "online",
            Mode::Offline => "offline",
        })
    }
}

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
    #[serde(deserialize_with = "non_empty_specs")]
    pub databases: Vec<SumdbSpec>,
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

/// Where a bad setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The TOML file.
    File(PathBuf),
    /// One environment variable.
    EnvVar(String),
    /// The `GOMODPROXY_*` variables, when the culprit could not be singled out.
    Env,
    /// A combination of settings.
    Settings,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::EnvVar(name) => write!(f, "environment variable {name}"),
            Origin::Env => write!(f, "environment ({ENV_PREFIX}*)"),
            Origin::Settings => write!(f, "configuration"),
        }
    }
}

/// Why the configuration could not be loaded. `Display` names the key and its origin.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key no struct has.
    #[error("{origin}: unknown key `{key}`{expected}")]
    UnknownKey {
        /// Where it was set.
        origin: Origin,
        /// The full dotted key.
        key: String,
        /// `" (expected one of …)"`, or empty.
        expected: String,
    },
    /// The file could not be read or parsed, or a value has the wrong type or form (the
    /// message of the `config` crate names the key).
    #[error("{origin}: {error}")]
    Source {
        /// Where it was set.
        origin: Origin,
        /// What the `config` crate reported (shown in this error's message, hence not its
        /// `source()`, so that a printed cause chain does not repeat it).
        error: Box<config::ConfigError>,
    },
    /// A value parsed but is not acceptable.
    #[error("{origin}: invalid `{key}`: {reason}")]
    Invalid {
        /// Where it was set (the file, the variable, or [`Origin::Settings`]).
        origin: Origin,
        /// The dotted key.
        key: String,
        /// Why.
        reason: String,
    },
    /// An environment variable of ours whose name or value is not Unicode.
    #[error("environment variable {name}: value is not valid Unicode")]
    NotUnicode {
        /// The variable's name (lossily decoded).
        name: String,
    },
}

impl Config {
    /// Loads defaults, then `file` (TOML) if given, then the `GOMODPROXY_*` entries of `env`,
    /// and validates the result.
    ///
    /// `env` is passed in rather than read here so that tests need not touch the process
    /// environment; the binary passes [`std::env::vars_os`] through [`env_vars`].
    pub fn load<I>(file: Option<&Path>, env: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let env: BTreeMap<String, String> =
            env.into_iter().filter(|(name, _)| is_ours(name)).collect();

        // The file alone first, so that an error in it is blamed on it and not on the
        // environment merged on top.
        let file_source = file.map(|path| {
            config::File::from(path)
                .format(config::FileFormat::Toml)
                .required(true)
        });
        if let Some(source) = &file_source {
            let path = file.map(Path::to_path_buf).unwrap_or_default();
            config::Config::builder()
                .add_source(source.clone())
                .build()
                .and_then(|c| c.try_deserialize::<Config>())
                .map_err(|e| classify(e, Origin::File(path), &BTreeMap::new()))?;
        }

        let mut builder = config::Config::builder();
        if let Some(source) = file_source {
            builder = builder.add_source(source);
        }
        let environment = config::Environment::with_prefix(ENV_PREFIX.trim_end_matches('_'))
            .prefix_separator("_")
            .separator(ENV_SEPARATOR)
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("private")
            .with_list_parse_key("sumdb.databases")
            .with_list_parse_key("prewarm.items")
            .with_list_parse_key("fetch.redirect_hosts")
            .with_list_parse_key("direct.allowed_protocols")
            .with_list_parse_key("direct.insecure")
            .source(Some(env.clone().into_iter().collect()));
        let config: Config = builder
            .add_source(environment)
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| classify(e, Origin::Env, &env))?;

        let mut config = config;
        // An empty variable is an empty list, not a list of one empty entry.
        config.prewarm.items.retain(|s| !s.trim().is_empty());
        config.fetch.redirect_hosts.retain(|s| !s.trim().is_empty());
        config.validate(file, &env)?;
        Ok(config)
    }

    /// Checks what serde cannot: values that parse but make no sense here.
    fn validate(
        &self,
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            origin: origin_of(key, file, env),
            key: key.to_string(),
            reason,
        };
        if self.storage.kind == StorageKind::S3 {
            let s3 = &self.storage.s3;
            if s3.bucket.is_empty() {
                return Err(invalid(
                    "storage.s3.bucket",
                    "is required with storage.type = \"s3\"".to_string(),
                ));
            }
            if !s3.endpoint.is_empty()
                && !s3.endpoint.starts_with("http://")
                && !s3.endpoint.starts_with("https://")
            {
                return Err(invalid(
                    "storage.s3.endpoint",
                    "want an http:// or https:// URL".to_string(),
                ));
            }
            if s3.endpoint.starts_with("http://") && !s3.allow_http {
                return Err(invalid(
                    "storage.s3.allow_http",
                    format!("must be true for the http:// endpoint {}", s3.endpoint),
                ));
            }
            if s3.part_size < gomodproxy_storage_s3::MIN_PART_SIZE {
                return Err(invalid(
                    "storage.s3.part_size",
                    format!(
                        "must be at least {} bytes",
                        gomodproxy_storage_s3::MIN_PART_SIZE
                    ),
                ));
            }
        }
        if !self.coordination.redis_url.is_empty()
            && !self.coordination.redis_url.starts_with("redis://")
        {
            return Err(invalid(
                "coordination.redis_url",
                "want redis://host:port/db".to_string(),
            ));
        }
        if self.storage.kind == StorageKind::Fs && self.storage.fs.root.as_os_str().is_empty() {
            return Err(invalid("storage.fs.root", "must not be empty".to_string()));
        }
        if self.storage.kind == StorageKind::Redis {
            let url = &self.storage.redis.url;
            if !["redis://", "redis+unix://", "unix://"]
                .iter()
                .any(|s| url.starts_with(s))
            {
                return Err(invalid(
                    "storage.redis.url",
                    "want redis://host:port/db or redis+unix:///path".to_string(),
                ));
            }
        }
        if self.storage.kind == StorageKind::Sled {
            if self.storage.sled.path.as_os_str().is_empty() {
                return Err(invalid(
                    "storage.sled.path",
                    "must not be empty".to_string(),
                ));
            }
            if self.storage.sled.cache_capacity == 0 {
                return Err(invalid(
                    "storage.sled.cache_capacity",
                    "must be greater than 0".to_string(),
                ));
            }
        }
        if let Some(dir) = &self.spool_dir
            && !dir.is_dir()
        {
            return Err(invalid(
                "spool_dir",
                format!("{} is not a directory", dir.display()),
            ));
        }
        if self.sumdb.verify && self.sumdb.databases.is_empty() {
            return Err(invalid(
                "sumdb.verify",
                "is on, but sumdb.databases is empty (list a database or set verify = false)"
                    .to_string(),
            ));
        }
        let platform = gomodproxy_service::prewarm::host_platform();
        for item in &self.prewarm.items {
            gomodproxy_service::prewarm::Item::parse(item, &platform)
                .map_err(|e| invalid("prewarm.items", e.to_string()))?;
        }
        if self.prewarm.concurrency == 0 {
            return Err(invalid(
                "prewarm.concurrency",
                "must be at least 1".to_string(),
            ));
        }
        if self.mode == Mode::Online && self.upstream.is_empty() {
            return Err(invalid(
                "upstream",
                "online mode needs at least one upstream (set upstream, or use offline mode)"
                    .to_string(),
            ));
        }
        for route in &self.routes.0 {
            if route.upstream.is_empty() {
                return Err(invalid(
                    "routes",
                    format!("the route for {} has an empty upstream", route.modules),
                ));
            }
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(invalid("log.level", e.to_string()));
        }
        for (key, value) in [
            ("fetch.max_zip_size", self.fetch.max_zip_size),
            ("fetch.min_transfer_rate", self.fetch.min_transfer_rate),
            ("fetch.max_concurrent", self.fetch.max_concurrent as u64),
            (
                "fetch.max_concurrent_per_host",
                self.fetch.max_concurrent_per_host as u64,
            ),
            (
                "fetch.max_concurrent_zip_checks",
                self.fetch.max_concurrent_zip_checks as u64,
            ),
            ("fetch.spool_budget", self.fetch.spool_budget),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be greater than 0".to_string()));
            }
        }
        if self.fetch.spool_budget < self.fetch.max_zip_size {
            return Err(invalid(
                "fetch.spool_budget",
                format!(
                    "is {} bytes, less than fetch.max_zip_size ({}): the largest zip could never be received",
                    self.fetch.spool_budget, self.fetch.max_zip_size
                ),
            ));
        }
        for host in &self.fetch.redirect_hosts {
            let bare = host.strip_prefix("*.").unwrap_or(host);
            if bare.is_empty() || bare.contains(['/', ':', '*', ' ']) {
                return Err(invalid(
                    "fetch.redirect_hosts",
                    format!("{host:?} is not a host name or a `*.domain` pattern"),
                ));
            }
        }
        Ok(())
    }

    /// The service-layer settings this configuration describes.
    pub fn service_config(&self) -> ServiceConfig {
        // Settings the service gains later keep their defaults until the config exposes them.
        #[allow(clippy::needless_update)]
        ServiceConfig {
            mode: self.mode.into(),
            upstream: self.upstream.clone(),
            routes: self.routes.clone(),
            direct: self.direct.clone(),
            list_ttl: self.list_ttl,
            connect_timeout: self.fetch.connect_timeout,
            read_timeout: self.fetch.read_timeout,
            retries: self.fetch.retries,
            retry_backoff: self.fetch.retry_backoff,
            max_zip_size: self.fetch.max_zip_size,
            max_mod_size: self.fetch.max_mod_size,
            max_info_size: self.fetch.max_info_size,
            spool_dir: self.spool_dir.clone(),
            sumdbs: self.sumdb.databases.clone(),
            serve_sumdb: self.sumdb.enabled,
            verify: self.sumdb.verify,
            private: self.private.clone(),
            sumdb_latest_ttl: self.sumdb.latest_ttl,
            fetch_deadline: self.fetch.deadline,
            min_transfer_rate: self.fetch.min_transfer_rate,
            max_concurrent_fetches: self.fetch.max_concurrent,
            max_concurrent_fetches_per_host: self.fetch.max_concurrent_per_host,
            max_queued_fetches: self.fetch.max_queued,
            queue_timeout: self.fetch.queue_timeout,
            spool_budget: self.fetch.spool_budget,
            max_concurrent_zip_checks: self.fetch.max_concurrent_zip_checks,
            negative_ttl: self.fetch.negative_ttl,
            negative_cache_entries: self.fetch.negative_cache_entries,
            query_ttl: self.fetch.query_ttl,
            redirect_hosts: self.fetch.redirect_hosts.clone(),
            ..ServiceConfig::default()
        }
    }

    /// The configuration as TOML; loading it back gives the same configuration.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// The configuration as `config check` prints it: [`Config::to_toml`] with every secret
    /// replaced — the values of secret keys (S3 keys, tokens, passwords) by `<redacted>`, and
    /// the credentials of every URL in any value (upstream, routes, checksum databases, Redis)
    /// by `***` ([`gomodproxy_redact`]). It walks every value, so a key added later is covered
    /// without being listed here.
    pub fn to_toml_redacted(&self) -> Result<String, toml::ser::Error> {
        let mut value = toml::Value::try_from(self)?;
        redact_value(&mut value, None);
        toml::to_string(&value)
    }
}

/// `sumdb.databases`, skipping empty entries: an empty environment variable is an empty list,
/// not a list of one empty entry.
fn non_empty_specs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SumdbSpec>, D::Error> {
    let items = Vec::<String>::deserialize(d)?;
    items
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| SumdbSpec::parse(s).map_err(serde::de::Error::custom))
        .collect()
}

/// Keys whose whole value is a secret.
const SECRET_KEYS: &[&str] = &["secret_access_key", "session_token", "token", "password"];

/// Redacts every string under `value` (see [`Config::to_toml_redacted`]); `key` is the name of
/// the table entry `value` is.
fn redact_value(value: &mut toml::Value, key: Option<&str>) {
    match value {
        toml::Value::String(text) => {
            if key.is_some_and(|k| SECRET_KEYS.contains(&k)) && !text.is_empty() {
                *text = "<redacted>".to_string();
            } else {
                *text = gomodproxy_redact::text(text);
            }
        }
        toml::Value::Array(items) => {
            for item in items {
                redact_value(item, key);
            }
        }
        toml::Value::Table(table) => {
            for (k, v) in table.iter_mut() {
                redact_value(v, Some(k));
            }
        }
        _ => {}
    }
}

/// The `GOMODPROXY_*` variables of an OS environment, as `(name, value)` strings; a variable of
/// ours that is not Unicode is an error rather than silently skipped.
pub fn env_vars<I>(vars: I) -> Result<Vec<(String, String)>, ConfigError>
where
    I: IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
{
    let mut out = Vec::new();
    for (name, value) in vars {
        let lossy = name.to_string_lossy();
        if !is_ours(&lossy) {
            continue;
        }
        match (name.into_string(), value.into_string()) {
            (Ok(name), Ok(value)) => out.push((name, value)),
            (name, _) => {
                let name = name.unwrap_or_else(|n| n.to_string_lossy().into_owned());
                return Err(ConfigError::NotUnicode { name });
            }
        }
    }
    Ok(out)
}

/// Whether an environment variable belongs to us; the `config` crate matches the prefix
/// case-insensitively, so this does too.
fn is_ours(name: &str) -> bool {
    name.len() > ENV_PREFIX.len()
        && name.is_char_boundary(ENV_PREFIX.len())
        && name[..ENV_PREFIX.len()].eq_ignore_ascii_case(ENV_PREFIX)
}

/// The dotted key an environment variable sets.
fn env_key(name: &str) -> String {
    name[ENV_PREFIX.len()..]
        .to_lowercase()
        .replace(ENV_SEPARATOR, ".")
}

/// The variable that sets `key`, if one does.
fn env_var_for(key: &str, env: &BTreeMap<String, String>) -> Option<String> {
    env.keys().find(|name| env_key(name) == key).cloned()
}

/// Where the effective value of `key` came from (for validation errors).
fn origin_of(key: &str, file: Option<&Path>, env: &BTreeMap<String, String>) -> Origin {
    if let Some(name) = env_var_for(key, env) {
        Origin::EnvVar(name)
    } else if let Some(path) = file {
        // The key may also be a default; naming the file is still the best lead.
        Origin::File(path.to_path_buf())
    } else {
        Origin::Settings
    }
}

/// Turns a `config` crate error into ours: unknown fields become [`ConfigError::UnknownKey`]
/// with the full dotted key, and an error in the environment names the variable when it can.
fn classify(
    error: config::ConfigError,
    origin: Origin,
    env: &BTreeMap<String, String>,
) -> ConfigError {
    let (key, message) = match &error {
        config::ConfigError::At {
            error: inner, key, ..
        } => (key.clone(), inner.to_string()),
        config::ConfigError::Type { key, .. } => (key.clone(), String::new()),
        config::ConfigError::NotFound(key) => (Some(key.clone()), String::new()),
        other => (None, other.to_string()),
    };
    let unknown = parse_unknown_field(&message);
    let full_key = match (&key, &unknown) {
        (Some(k), Some((field, _))) if !k.is_empty() => Some(format!("{k}.{field}")),
        (_, Some((field, _))) => Some(field.clone()),
        (k, None) => k.clone(),
    };
    let origin = match origin {
        Origin::Env => full_key
            .as_deref()
            .and_then(|k| {
                // A type error on a table names the table; the variable may set a key below it.
                env_var_for(k, env).or_else(|| {
                    let below: Vec<_> = env
                        .keys()
                        .filter(|n| env_key(n).starts_with(&format!("{k}.")))
                        .collect();
                    (below.len() == 1).then(|| below[0].clone())
                })
            })
            .map(Origin::EnvVar)
            .unwrap_or(Origin::Env),
        other => other,
    };
    match (unknown, full_key) {
        (Some((_, expected)), Some(key)) => ConfigError::UnknownKey {
            origin,
            key,
            expected,
        },
        _ => ConfigError::Source {
            origin,
            error: Box::new(error),
        },
    }
}

/// Parses serde's "unknown field `x`, expected …" message into the field and a suffix naming
/// the expected fields.
fn parse_unknown_field(message: &str) -> Option<(String, String)> {
    let rest = message.strip_prefix("unknown field `")?;
    let end = rest.find('`')?;
    let field = rest[..end].to_string();
    let tail = rest[end + 1..].trim_start_matches(',').trim();
    let expected = if tail.is_empty() {
        String::new()
    } else {
        format!(" ({tail})")
    };
    Some((field, expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_message_is_parsed() {
        assert_eq!(
            parse_unknown_field("unknown field `roott`, expected `root`"),
            Some(("roott".to_string(), " (expected `root`)".to_string()))
        );
        assert_eq!(parse_unknown_field("invalid type"), None);
    }

    #[test]
    fn env_names_map_to_keys() {
        assert_eq!(env_key("GOMODPROXY_STORAGE__FS__ROOT"), "storage.fs.root");
        assert_eq!(env_key("GOMODPROXY_LIST_TTL"), "list_ttl");
        assert!(is_ours("gomodproxy_listen"));
        assert!(!is_ours("GOMODPROXY_"));
        assert!(!is_ours("GOPROXY"));
    }
}
