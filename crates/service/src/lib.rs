//! The proxy's service layer: everything between an HTTP handler and the stores.
//!
//! [`ProxyService`] answers the GOPROXY requests (`list`, `@latest`, `.info`, `.mod`, `.zip`)
//! from storage first and, in online mode, from the upstream chain on a miss. It owns the caching
//! policy: what is immutable and stored forever, what has a TTL, what is passed through and never
//! stored; it validates every upstream answer (a zip is checked and hashed before it is stored) and
//! makes concurrent misses for one artifact share a single upstream fetch.
//!
//! HTTP status codes are not chosen here: [`ServiceError`] says what went wrong, and the server
//! maps it to a status in one place.
//!
//! Design decisions:
//! - Storage is the single source of what is served: an upstream answer is validated, stored,
//!   and then read back from storage, so every client sees exactly what is cached and a failed
//!   store is reported as such (503) instead of being papered over.
//! - Each artifact is fetched on its own: a `.mod` request never downloads a zip.
//! - Zips are received into an unnamed spool file, size-capped while streaming, checked with
//!   [`gomod::zipfile::check_zip`] (which also yields the `h1:` hash), and only then stored. The
//!   hash is stored beside the zip (`ArtifactKind::ZipHash`) and is the zip's ETag.
//! - The upstream chain follows GOPROXY rules (see `upstream.rs`); an answer that fails
//!   validation is an error of the entry that sent it, so `a|b` falls through to `b`.
//! - `list` and `@latest` are stored with their fetch time and refreshed after `list_ttl`; when
//!   upstream fails (but does not say "not found") the stale copy is served.
//! - Offline mode builds no HTTP client at all and answers from storage only.

#![deny(missing_docs)]

pub mod coordination;
mod dedup;
mod fetch;
mod offline;
mod online;
pub mod prewarm;
pub mod progress;
mod sumdb;
mod ttl_cache;
mod upstream;
pub mod validate;
mod versions;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use gomod::{ModulePath, Version};
use gomodproxy_storage::{
    ArtifactKind, ByteStream, Key, ObjectMeta, Storage, StorageError, StorageExt,
};
use sha2::{Digest, Sha256};

use crate::dedup::Dedup;
use crate::fetch::Upstreams;
use crate::fetch::limits::{FetchLimits, LimitSettings, SpoolBudget};
use crate::ttl_cache::TtlCache;

pub use crate::fetch::limits::FetchLimitStats;
pub use crate::sumdb::{SumdbSpec, SumdbSpecError};
pub use crate::upstream::{
    ModulePatterns, PatternError, Route, RouteError, Routes, UpstreamChain, UpstreamError,
};
pub use gomodproxy_vcs::{DirectConfig, DirectStats};

/// Whether the proxy may use the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Storage first, then upstream.
    #[default]
    Online,
    /// Never open a network connection; serve what is stored.
    Offline,
}

/// Settings of the service layer (the server builds this from its config).
///
/// `Debug` redacts the credentials the upstream chain and checksum-database URLs may carry.
#[derive(Clone)]
pub struct ServiceConfig {
    /// Online or offline.
    pub mode: Mode,
    /// The default upstream chain (`https://a,https://b|file:///dir`, `…,direct`).
    pub upstream: UpstreamChain,
    /// Module patterns with chains of their own (a private route keeps its modules away from
    /// checksum databases too).
    pub routes: Routes,
    /// The version-control source, used by chains with `direct`.
    pub direct: DirectConfig,
    /// How long a cached `list` / `@latest` is served before upstream is asked again.
    pub list_ttl: Duration,
    /// Connect timeout for upstream requests.
    pub connect_timeout: Duration,
    /// Longest wait for upstream response headers, and longest silence while reading a body.
    pub read_timeout: Duration,
    /// Retries of an idempotent upstream GET after a connection error, timeout or 5xx.
    pub retries: u32,
    /// First retry delay; doubles each time.
    pub retry_backoff: Duration,
    /// Largest zip accepted from upstream (bytes).
    pub max_zip_size: u64,
    /// Largest `.mod` accepted from upstream (bytes).
    pub max_mod_size: u64,
    /// Largest `.info` / `list` / `@latest` accepted from upstream (bytes).
    pub max_info_size: u64,
    /// Where zips are spooled for validation before they are stored (default: the OS temp dir).
    pub spool_dir: Option<PathBuf>,
    /// Checksum databases, in `GOSUMDB` syntax: `<verifier key>` (fetched through the upstream
    /// chain's `/sumdb/<name>/`) or `<verifier key> <url>` (fetched from the database itself).
    /// The first one is the one upstream artifacts are verified against.
    pub sumdbs: Vec<SumdbSpec>,
    /// Serve `/sumdb/<name>/…` for the configured databases.
    pub serve_sumdb: bool,
    /// Store an upstream `.mod` or `.zip` only if its `h1:` hash matches the first checksum
    /// database (modules matching `private` are exempt).
    pub verify: bool,
    /// Module path patterns (GOPRIVATE syntax) of modules that are never verified against, or
    /// looked up in, a checksum database.
    pub private: ModulePatterns,
    /// How long a fetched checksum-database tree head is used before upstream is asked for a
    /// newer one.
    pub sumdb_latest_ttl: Duration,
    /// A cluster-wide lock per artifact, when several replicas share the store.
    pub fetch_lock: Option<Arc<dyn coordination::FetchLock>>,
    /// Base deadline of one upstream request (retries included); it grows by one second per
    /// `min_transfer_rate` bytes received.
    pub fetch_deadline: Duration,
    /// Slowest average transfer (bytes per second) an upstream may keep up past the deadline.
    pub min_transfer_rate: u64,
    /// Upstream requests in flight at once, in all.
    pub max_concurrent_fetches: usize,
    /// Upstream requests in flight at once to one upstream host.
    pub max_concurrent_fetches_per_host: usize,
    /// Requests that may wait for an upstream slot; more are refused (503) at once.
    pub max_queued_fetches: usize,
    /// Longest wait for an upstream slot before a 503 with `Retry-After`.
    pub queue_timeout: Duration,
    /// Disk that zips being received (spooled, not yet stored) may take at once, in bytes.
    pub spool_budget: u64,
    /// Zip checks (structure and hash, CPU and I/O bound) running at once.
    pub max_concurrent_zip_checks: usize,
    /// How long a "not found" from every upstream is remembered per path (0: off).
    pub negative_ttl: Duration,
    /// Most paths the negative cache holds.
    pub negative_cache_entries: usize,
    /// How long the answer to a non-canonical query (`@v/master.info`) is reused (0: off).
    pub query_ttl: Duration,
    /// Hosts (`cdn.example.com`, `*.example.com`) an https upstream may redirect to; redirects
    /// within the same scheme, host and port are always followed, others refused.
    pub redirect_hosts: Vec<String>,
}

impl fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("mode", &self.mode)
            .field("upstream", &self.upstream)
            .field("routes", &self.routes)
            .field("direct", &self.direct)
            .field("list_ttl", &self.list_ttl)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("retries", &self.retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("max_zip_size", &self.max_zip_size)
            .field("max_mod_size", &self.max_mod_size)
            .field("max_info_size", &self.max_info_size)
            .field("spool_dir", &self.spool_dir)
            .field("sumdbs", &self.sumdbs)
            .field("serve_sumdb", &self.serve_sumdb)
            .field("verify", &self.verify)
            .field("private", &self.private)
            .field("sumdb_latest_ttl", &self.sumdb_latest_ttl)
            .field("fetch_lock", &self.fetch_lock.is_some())
            .field("fetch_deadline", &self.fetch_deadline)
            .field("min_transfer_rate", &self.min_transfer_rate)
            .field("max_concurrent_fetches", &self.max_concurrent_fetches)
            .field(
                "max_concurrent_fetches_per_host",
                &self.max_concurrent_fetches_per_host,
            )
            .field("max_queued_fetches", &self.max_queued_fetches)
            .field("queue_timeout", &self.queue_timeout)
            .field("spool_budget", &self.spool_budget)
            .field("max_concurrent_zip_checks", &self.max_concurrent_zip_checks)
            .field("negative_ttl", &self.negative_ttl)
            .field("negative_cache_entries", &self.negative_cache_entries)
            .field("query_ttl", &self.query_ttl)
            .field("redirect_hosts", &self.redirect_hosts)
            .finish()
    }
}

/// The verifier key of sum.golang.org, the go command's default checksum database.
pub const SUM_GOLANG_ORG_KEY: &str =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            mode: Mode::Online,
            upstream: UpstreamChain::proxy_golang_org(),
            routes: Routes::default(),
            direct: DirectConfig::default(),
            list_ttl: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            retries: 2,
            retry_backoff: Duration::from_millis(200),
            max_zip_size: 500 << 20,
            max_mod_size: 16 << 20,
            max_info_size: 1 << 20,
            spool_dir: None,
            sumdbs: vec![SumdbSpec::sum_golang_org()],
            serve_sumdb: true,
            verify: true,
            private: ModulePatterns::default(),
            sumdb_latest_ttl: Duration::from_secs(600),
            fetch_lock: None,
            fetch_deadline: Duration::from_secs(60),
            min_transfer_rate: 64 * 1024,
            max_concurrent_fetches: 64,
            max_concurrent_fetches_per_host: 16,
            max_queued_fetches: 256,
            queue_timeout: Duration::from_secs(10),
            spool_budget: 2 << 30,
            max_concurrent_zip_checks: 2,
            negative_ttl: Duration::from_secs(60),
            negative_cache_entries: 10_000,
            query_ttl: Duration::from_secs(10),
            redirect_hosts: Vec::new(),
        }
    }
}

/// A non-canonical `.info` request (`master`, `v1.2`, a commit prefix) or a canonical version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionQuery {
    /// A canonical version: the answer is immutable and stored.
    Canonical(Version),
    /// Anything else: passed to upstream and never stored.
    Query(String),
}

/// The body of an answer.
pub enum Body {
    /// Small bodies, in memory.
    Bytes(Bytes),
    /// Zips, streamed from storage.
    Stream(ByteStream),
}

/// What the service hands to the HTTP layer.
pub struct Answer {
    /// The body.
    pub body: Body,
    /// Its exact length.
    pub size: u64,
    /// A strong validator for ETag (content hash), when known, without the surrounding quotes:
    /// the zip's `h1:` hash, or the hex SHA-256 of a small body.
    pub etag: Option<String>,
    /// True for versioned artifacts (cache forever), false for list/@latest/queries.
    pub immutable: bool,
    /// When it was stored or fetched.
    pub modified: Option<SystemTime>,
    /// Whether answering it took an upstream fetch (a cache miss), or it came from storage.
    pub fetched: bool,
}

/// What went wrong, in terms the HTTP layer maps to a status.
///
/// Every message is one line naming what was asked and what failed, fit to be shown to a client.
/// A store failure keeps the store's error as its `source` (for logs), while its message says
/// what failed in words only.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    /// The request itself is invalid (→ 400).
    #[error("{0}")]
    BadRequest(String),
    /// Upstream says it does not exist, or it is not stored in offline mode (→ 404).
    #[error("{0}")]
    NotFound(String),
    /// Upstream failed or sent something invalid; nothing was stored (→ 502).
    #[error("{0}")]
    BadUpstream(String),
    /// Upstream did not answer in time (→ 504).
    #[error("{0}")]
    UpstreamTimeout(String),
    /// The store, or the local disk the service spools to, failed (→ 503). The message says what
    /// failed in words; details such as server paths are in `source` and the log only.
    #[error("{message}")]
    Storage {
        /// What failed, in words: `storage failed for <key>: no space left on device (ENOSPC)`.
        message: String,
        /// The store's own error, when a store failed.
        #[source]
        source: Option<Arc<StorageError>>,
    },
    /// A bound on upstream work was reached: too many fetches waiting, or the spool budget in
    /// use (→ 503 with `Retry-After`).
    #[error("{0}")]
    Overloaded(String),
}

impl ServiceError {
    /// A store failure as clients see it: what failed, in words. The full error (with server
    /// paths) is logged here, once, and kept as the source.
    pub fn storage(key: &Key, err: StorageError) -> Self {
        ServiceError::storage_doing(&format!("for {key}"), err)
    }

    /// Like [`ServiceError::storage`], for a failure that names no single key (`what` follows
    /// "storage failed": `listing example.com/m`).
    pub fn storage_doing(what: &str, err: StorageError) -> Self {
        ServiceError::Storage {
            message: format!("storage failed {what}: {}", storage_words(&err)),
            source: Some(Arc::new(err)),
        }
    }

    /// A local failure that is not a store's error (the spool file, a body read): `message`
    /// must already be words without paths.
    pub fn local(message: impl Into<String>) -> Self {
        ServiceError::Storage {
            message: message.into(),
            source: None,
        }
    }
}

/// Why [`ProxyService::new`] cannot build the service: the configuration it was given is
/// inconsistent, or the HTTP client cannot be built. Never a per-request error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceInitError {
    /// The upstream chain does not parse.
    #[error("{0}")]
    Upstream(String),
    /// Online mode with an empty chain.
    #[error("online mode needs at least one upstream (set upstream, or use offline mode)")]
    NoUpstream,
    /// A checksum database entry is invalid, or `verify` is on without one.
    #[error("{0}")]
    Sumdb(String),
    /// `spool_dir` is set but not a directory.
    #[error("spool_dir {} is not a directory", .0.display())]
    SpoolDir(PathBuf),
    /// The HTTP client could not be built.
    #[error("{0}")]
    HttpClient(String),
    /// The version-control source (`direct`) could not be set up.
    #[error("{0}")]
    Direct(String),
}

/// What a storage error means, without paths or backend internals (those are logged).
pub fn storage_words(err: &StorageError) -> String {
    tracing::warn!(error = %gomodproxy_redact::text(&err.to_string()), "storage error");
    match err {
        StorageError::NotFound { .. } => "not found".to_string(),
        StorageError::LengthMismatch { .. } => "a save was cut short".to_string(),
        StorageError::Payload { source, .. } => format!("the body failed ({})", io_words(source)),
        StorageError::InvalidKey { .. } => "the store holds an invalid key".to_string(),
        StorageError::Corrupt { reason, .. } => format!("the stored copy is damaged: {reason}"),
        StorageError::Backend { store, source } => {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
            while let Some(e) = cause {
                if let Some(io) = e.downcast_ref::<std::io::Error>() {
                    return format!("{store} store: {}", io_words(io));
                }
                cause = e.source();
            }
            format!("{store} store: {}", without_paths(&source.to_string()))
        }
        _ => "the store failed (details in the server log)".to_string(),
    }
}

/// `text` with credentials redacted and every absolute or `./` path replaced by `<path>`.
fn without_paths(text: &str) -> String {
    gomodproxy_redact::text(text)
        .split(' ')
        .map(|word| {
            let bare = word.trim_start_matches(['(', '"', '\'']);
            if bare.starts_with('/') || bare.starts_with("./") || bare.starts_with("../") {
                "<path>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// An I/O error in words, with the errno name where it has one that operators grep for
/// (`no space left on device (ENOSPC)`); never a path.
pub fn io_words(e: &std::io::Error) -> String {
    let named = match e.raw_os_error() {
        Some(libc::ENOSPC) => Some("no space left on device (ENOSPC)"),
        Some(libc::EDQUOT) => Some("disk quota exceeded (EDQUOT)"),
        Some(libc::EMFILE) => Some("too many open files (EMFILE)"),
        Some(libc::ENFILE) => Some("too many open files in the system (ENFILE)"),
        Some(libc::EACCES) | Some(libc::EPERM) => Some("permission denied"),
        Some(libc::EROFS) => Some("read-only file system (EROFS)"),
        Some(libc::EIO) => Some("input/output error (EIO)"),
        Some(libc::ENOMEM) => Some("out of memory (ENOMEM)"),
        _ => None,
    };
    match named {
        Some(words) => words.to_string(),
        None => match e.kind() {
            // `Other` kinds carry a message of their own (`probe file read back differently`).
            std::io::ErrorKind::Other => without_paths(&e.to_string()),
            kind => kind.to_string(),
        },
    }
}

/// The GOPROXY service over one store and one upstream chain. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct ProxyService {
    inner: Arc<Inner>,
}

/// Counters of the service, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// Objects fetched from upstream and stored.
    pub upstream_fetches: u64,
    /// Their bytes.
    pub upstream_bytes: u64,
    /// Upstream answers refused by checksum-database verification (in this process).
    pub security_refusals: u64,
    /// Upstream requests running, waiting, and refused as overloaded.
    pub fetch_limits: FetchLimitStats,
    /// Bytes of spooled zips (received, not yet stored) on disk now.
    pub spool_bytes: u64,
    /// The version-control source's counters, when a chain uses `direct`.
    pub direct: Option<DirectStats>,
}

#[derive(Debug, Default)]
struct Counters {
    upstream_fetches: std::sync::atomic::AtomicU64,
    upstream_bytes: std::sync::atomic::AtomicU64,
}

/// Shared state; the dedup map must be shared by every clone of the service.
struct Inner {
    storage: Arc<dyn Storage>,
    config: ServiceConfig,
    /// `None` in offline mode: no HTTP client and no git exist, so no request can be made.
    upstreams: Option<Upstreams>,
    /// Fetches of artifacts and mutable records (stored, so they yield nothing).
    dedup: Dedup<()>,
    /// Fetches of non-canonical queries (never stored: they yield the body).
    query_dedup: Dedup<Bytes>,
    /// Recent answers to non-canonical queries.
    query_cache: TtlCache<Bytes>,
    limits: Arc<FetchLimits>,
    spool_budget: Arc<SpoolBudget>,
    /// Zip checks running at once.
    zip_checks: Arc<tokio::sync::Semaphore>,
    sumdbs: sumdb::Databases,
    counters: Counters,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyService")
            .field("storage", &self.storage)
            .field("config", &self.config)
            .field("upstreams", &self.upstreams)
            .finish_non_exhaustive()
    }
}

impl ProxyService {
    /// Builds the service; fails on an invalid upstream chain (syntax, `direct`, an empty chain
    /// in online mode), checksum database or `private` pattern, a missing spool directory, or
    /// when the HTTP client cannot be built.
    pub fn new(storage: Arc<dyn Storage>, config: ServiceConfig) -> Result<Self, ServiceInitError> {
        let limits = FetchLimits::new(LimitSettings {
            max_concurrent: config.max_concurrent_fetches,
            max_concurrent_per_host: config.max_concurrent_fetches_per_host,
            max_queued: config.max_queued_fetches,
            queue_timeout: config.queue_timeout,
        });
        let upstreams = match config.mode {
            Mode::Offline => None,
            Mode::Online => {
                if config.upstream.is_empty() {
                    return Err(ServiceInitError::NoUpstream);
                }
                Some(Upstreams::new(&config, &limits)?)
            }
        };
        if let Some(dir) = &config.spool_dir
            && !dir.is_dir()
        {
            return Err(ServiceInitError::SpoolDir(dir.clone()));
        }
        let sumdbs = sumdb::Databases::new(&config, upstreams.is_some(), &limits)
            .map_err(ServiceInitError::Sumdb)?;
        let dedup = Dedup::new(config.fetch_lock.clone());
        let query_dedup = Dedup::new(None);
        // Query answers are small (an .info); the byte bound covers hostile upstreams.
        let query_cache = TtlCache::new(config.query_ttl, 10_000, 16 << 20);
        let spool_budget = SpoolBudget::new(config.spool_budget);
        let zip_checks = Arc::new(tokio::sync::Semaphore::new(
            config.max_concurrent_zip_checks.max(1),
        ));
        Ok(ProxyService {
            inner: Arc::new(Inner {
                storage,
                config,
                upstreams,
                dedup,
                query_dedup,
                query_cache,
                limits,
                spool_budget,
                zip_checks,
                sumdbs,
                counters: Counters::default(),
            }),
        })
    }

    /// The configuration the service runs with.
    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    /// `/@v/list`.
    pub async fn list(&self, module: &ModulePath) -> Result<Answer, ServiceError> {
        match &self.inner.upstreams {
            None => offline::list(&self.inner, module).await,
            Some(_) => online::list(&self.inner, module).await,
        }
    }

    /// `/@latest`.
    pub async fn latest(&self, module: &ModulePath) -> Result<Answer, ServiceError> {
        match &self.inner.upstreams {
            None => offline::latest(&self.inner, module).await,
            Some(_) => online::latest(&self.inner, module).await,
        }
    }

    /// `/@v/<version>.info`.
    pub async fn info(
        &self,
        module: &ModulePath,
        query: &VersionQuery,
    ) -> Result<Answer, ServiceError> {
        match query {
            VersionQuery::Canonical(version) => {
                self.small_artifact(module, version, ArtifactKind::Info)
                    .await
            }
            VersionQuery::Query(query) => {
                online::check_query(query)?;
                match &self.inner.upstreams {
                    None => Err(ServiceError::NotFound(format!(
                        "offline mode: cannot resolve {module}@{query}: it is not a canonical version and \
                         resolving it needs upstream"
                    ))),
                    Some(_) => online::query_info(&self.inner, module, query).await,
                }
            }
        }
    }

    /// `/@v/<version>.mod`.
    pub async fn go_mod(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Answer, ServiceError> {
        self.small_artifact(module, version, ArtifactKind::Mod)
            .await
    }

    /// `/@v/<version>.zip`.
    pub async fn zip(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Answer, ServiceError> {
        check_pair(module, version)?;
        let key = Key::artifact(module, version, ArtifactKind::Zip);
        if let Some(answer) = stored_zip(&self.inner, module, version).await? {
            return Ok(answer);
        }
        if self.inner.upstreams.is_none() {
            return Err(offline::miss(module, version, ArtifactKind::Zip));
        }
        let inner = self.inner.clone();
        let (m, v) = (module.clone(), version.clone());
        self.inner
            .dedup
            .run(&key.path(), move || online::fetch_zip(inner, m, v))
            .await?;
        let mut answer = stored_zip(&self.inner, module, version)
            .await?
            .ok_or_else(|| vanished(&key))?;
        answer.fetched = true;
        Ok(answer)
    }

    /// The service's counters.
    pub fn stats(&self) -> ServiceStats {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.inner.counters;
        ServiceStats {
            upstream_fetches: c.upstream_fetches.load(Relaxed),
            upstream_bytes: c.upstream_bytes.load(Relaxed),
            security_refusals: sumdb::security_refusals(),
            fetch_limits: self.inner.limits.stats(),
            direct: self
                .inner
                .upstreams
                .as_ref()
                .and_then(|u| u.direct())
                .map(|d| d.stats()),
            spool_bytes: self.inner.spool_budget.used(),
        }
    }

    /// `/sumdb/<name>/<path>`: the checksum database through the proxy, verified and cached.
    pub async fn sumdb(
        &self,
        name: &gomod::sumdb::SumdbName,
        path: &gomod::sumdb::SumdbPath,
    ) -> Result<Answer, ServiceError> {
        sumdb::serve(&self.inner, name, path).await
    }

    /// After fetching for offline use: makes sure every stored checksum-database record is
    /// provable in the stored tree head with stored tiles, fetching the tiles that are missing.
    /// Returns how many records were checked.
    pub async fn seal_sumdb(&self) -> Result<usize, ServiceError> {
        let mut checked = 0;
        for db in self.inner.sumdbs.all() {
            checked += db.seal(&self.inner).await?;
        }
        Ok(checked)
    }

    /// Readiness: the store answers its probe.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        self.inner
            .storage
            .check()
            .await
            .map_err(|e| ServiceError::Storage {
                message: format!("storage is not ready: {}", storage_words(&e)),
                source: Some(Arc::new(e)),
            })
    }

    async fn small_artifact(
        &self,
        module: &ModulePath,
        version: &Version,
        kind: ArtifactKind,
    ) -> Result<Answer, ServiceError> {
        check_pair(module, version)?;
        let key = Key::artifact(module, version, kind);
        let limit = self.inner.small_limit(kind);
        if let Some(answer) = stored_small(&self.inner, &key, limit, true).await? {
            return Ok(answer);
        }
        if self.inner.upstreams.is_none() {
            return Err(offline::miss(module, version, kind));
        }
        let inner = self.inner.clone();
        let (m, v) = (module.clone(), version.clone());
        self.inner
            .dedup
            .run(&key.path(), move || {
                online::fetch_small_artifact(inner, m, v, kind)
            })
            .await?;
        let mut answer = stored_small(&self.inner, &key, limit, true)
            .await?
            .ok_or_else(|| vanished(&key))?;
        answer.fetched = true;
        Ok(answer)
    }
}

impl Inner {
    /// The object's metadata if it is stored (a fetch that lost a race finds it here).
    async fn stored_meta(&self, key: &Key) -> Result<Option<ObjectMeta>, ServiceError> {
        self.storage
            .exists(key)
            .await
            .map_err(|e| ServiceError::storage(key, e))
    }

    /// Stores a small object fetched (and checked) from upstream, and counts it.
    async fn store_fetched(&self, key: &Key, body: Bytes) -> Result<(), ServiceError> {
        let len = body.len() as u64;
        self.storage
            .put_bytes(key, body)
            .await
            .map_err(|e| ServiceError::storage(key, e))?;
        self.count_fetch(len);
        Ok(())
    }

    /// Deletes a damaged stored object so that it is fetched again.
    async fn drop_damaged(&self, key: &Key, damage: &StorageError) -> Result<(), ServiceError> {
        tracing::error!(key = %key, error = %damage, "deleting a damaged stored object; it is fetched again");
        self.storage
            .delete(key)
            .await
            .map_err(|e| ServiceError::storage(key, e))
    }

    /// Counts an object fetched from upstream and stored.
    fn count_fetch(&self, bytes: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.counters.upstream_fetches.fetch_add(1, Relaxed);
        self.counters.upstream_bytes.fetch_add(bytes, Relaxed);
    }

    fn small_limit(&self, kind: ArtifactKind) -> u64 {
        match kind {
            ArtifactKind::Mod => self.config.max_mod_size,
            _ => self.config.max_info_size,
        }
    }
}

/// Reads a small stored object as an answer; `None` if it is not stored.
async fn stored_small(
    inner: &Inner,
    key: &Key,
    limit: u64,
    immutable: bool,
) -> Result<Option<Answer>, ServiceError> {
    match inner.storage.get_bytes(key, limit).await {
        Ok((meta, bytes)) => Ok(Some(Answer {
            size: bytes.len() as u64,
            etag: Some(sha256_etag(&bytes)),
            body: Body::Bytes(bytes),
            immutable,
            modified: Some(meta.modified),
            fetched: false,
        })),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e @ StorageError::Corrupt { .. }) if inner.upstreams.is_some() => {
            inner.drop_damaged(key, &e).await?;
            Ok(None)
        }
        Err(e) => Err(ServiceError::storage(key, e)),
    }
}

/// Opens a stored zip as a streamed answer, with its recorded `h1:` hash as the ETag.
async fn stored_zip(
    inner: &Inner,
    module: &ModulePath,
    version: &Version,
) -> Result<Option<Answer>, ServiceError> {
    let key = Key::artifact(module, version, ArtifactKind::Zip);
    let got = match inner.storage.get(&key).await {
        Ok(got) => got,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e @ StorageError::Corrupt { .. }) if inner.upstreams.is_some() => {
            // Online, a damaged copy is replaced rather than served or left to fail forever.
            inner.drop_damaged(&key, &e).await?;
            let hash_key = Key::artifact(module, version, ArtifactKind::ZipHash);
            inner.drop_damaged(&hash_key, &e).await?;
            return Ok(None);
        }
        Err(e) => return Err(ServiceError::storage(&key, e)),
    };
    let hash_key = Key::artifact(module, version, ArtifactKind::ZipHash);
    // A zip placed in storage by other means may have no hash: serve it without an ETag.
    let etag = match inner.storage.get_bytes(&hash_key, 1024).await {
        Ok((_, hash)) => std::str::from_utf8(&hash)
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty()),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(ServiceError::storage(&hash_key, e)),
    };
    Ok(Some(Answer {
        size: got.meta.size,
        body: Body::Stream(got.body),
        etag,
        immutable: true,
        modified: Some(got.meta.modified),
        fetched: false,
    }))
}

/// Rejects a version that cannot belong to the module (`example.com/m@v2.0.0`, `…/v2@v1.0.0`):
/// no upstream may be asked for it and nothing stored under it. "Not found" as proxy.golang.org
/// answers, so that a client's `,` chain behaves as it would there.
fn check_pair(module: &ModulePath, version: &Version) -> Result<(), ServiceError> {
    module
        .check_version(version)
        .map_err(|e| ServiceError::NotFound(format!("{module}@{version}: {e}")))
}

fn vanished(key: &Key) -> ServiceError {
    ServiceError::local(format!("storage lost {key} right after it was stored"))
}

/// A strong validator for a small body.
pub(crate) fn sha256_etag(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
