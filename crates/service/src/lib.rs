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
mod graph;
mod offline;
mod online;
pub mod prewarm;
mod sumdb;
mod upstream;
mod validate;
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
use crate::fetch::Fetcher;
use crate::upstream::Chain;

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
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Online or offline.
    pub mode: Mode,
    /// Upstream chain in GOPROXY syntax (`https://a,https://b|file:///dir`).
    pub upstream: String,
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
    pub sumdbs: Vec<String>,
    /// Serve `/sumdb/<name>/…` for the configured databases.
    pub serve_sumdb: bool,
    /// Store an upstream `.mod` or `.zip` only if its `h1:` hash matches the first checksum
    /// database (modules matching `private` are exempt).
    pub verify: bool,
    /// Module path patterns (GOPRIVATE syntax, each entry may itself be a comma-separated list)
    /// of modules that are never verified against, or looked up in, a checksum database.
    pub private: Vec<String>,
    /// How long a fetched checksum-database tree head is used before upstream is asked for a
    /// newer one.
    pub sumdb_latest_ttl: Duration,
    /// A cluster-wide lock per artifact, when several replicas share the store.
    pub fetch_lock: Option<Arc<dyn coordination::FetchLock>>,
}

/// The verifier key of sum.golang.org, the go command's default checksum database.
pub const SUM_GOLANG_ORG_KEY: &str =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            mode: Mode::Online,
            upstream: "https://proxy.golang.org".to_string(),
            list_ttl: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            retries: 2,
            retry_backoff: Duration::from_millis(200),
            max_zip_size: 500 << 20,
            max_mod_size: 16 << 20,
            max_info_size: 1 << 20,
            spool_dir: None,
            sumdbs: vec![SUM_GOLANG_ORG_KEY.to_string()],
            serve_sumdb: true,
            verify: true,
            private: Vec::new(),
            sumdb_latest_ttl: Duration::from_secs(600),
            fetch_lock: None,
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
    /// The store failed (→ 503).
    #[error("{0}")]
    Storage(String),
    /// The configuration is invalid (only from [`ProxyService::new`], never from a request).
    #[error("{0}")]
    Config(String),
}

impl ServiceError {
    fn storage(key: &Key, err: StorageError) -> Self {
        ServiceError::Storage(format!("storage failed for {key}: {err}"))
    }
}

/// The GOPROXY service over one store and one upstream chain. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct ProxyService {
    inner: Arc<Inner>,
}

/// Counters of the service, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// Objects fetched from upstream and stored.
    pub upstream_fetches: u64,
    /// Their bytes.
    pub upstream_bytes: u64,
    /// Upstream answers refused by checksum-database verification (in this process).
    pub security_refusals: u64,
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
    /// `None` in offline mode: no HTTP client exists, so no request can be made.
    fetcher: Option<Fetcher>,
    dedup: Dedup,
    sumdbs: sumdb::Databases,
    counters: Counters,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyService")
            .field("storage", &self.storage)
            .field("config", &self.config)
            .field("fetcher", &self.fetcher)
            .finish_non_exhaustive()
    }
}

impl ProxyService {
    /// Builds the service; fails with [`ServiceError::Config`] on an invalid upstream chain
    /// (syntax, `direct`, an empty chain in online mode) or when the HTTP client cannot be built.
    pub fn new(storage: Arc<dyn Storage>, config: ServiceConfig) -> Result<Self, ServiceError> {
        let chain = Chain::parse(&config.upstream).map_err(ServiceError::Config)?;
        let fetcher = match config.mode {
            Mode::Offline => None,
            Mode::Online => {
                if chain.entries.is_empty() {
                    return Err(ServiceError::Config(
                        "online mode needs at least one upstream (set upstream, or use offline mode)".to_string(),
                    ));
                }
                Some(Fetcher::new(chain, &config).map_err(ServiceError::Config)?)
            }
        };
        if let Some(dir) = &config.spool_dir
            && !dir.is_dir()
        {
            return Err(ServiceError::Config(format!(
                "spool_dir {} is not a directory",
                dir.display()
            )));
        }
        let sumdbs =
            sumdb::Databases::new(&config, fetcher.is_some()).map_err(ServiceError::Config)?;
        for pattern in &config.private {
            for glob in pattern.split(',').filter(|g| !g.is_empty()) {
                if gomod::glob::path_match(glob, "").is_err() {
                    return Err(ServiceError::Config(format!(
                        "private pattern {glob:?} is malformed"
                    )));
                }
            }
        }
        let dedup = Dedup::new(config.fetch_lock.clone());
        Ok(ProxyService {
            inner: Arc::new(Inner {
                storage,
                config,
                fetcher,
                dedup,
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
        match &self.inner.fetcher {
            None => offline::list(&self.inner, module).await,
            Some(_) => online::list(&self.inner, module).await,
        }
    }

    /// `/@latest`.
    pub async fn latest(&self, module: &ModulePath) -> Result<Answer, ServiceError> {
        match &self.inner.fetcher {
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
                match &self.inner.fetcher {
                    None => Err(ServiceError::NotFound(format!(
                        "offline mode: cannot resolve {module}@{query}: it is not a canonical version and \
                         resolving it needs upstream"
                    ))),
                    Some(fetcher) => online::query_info(&self.inner, fetcher, module, query).await,
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
        if self.inner.fetcher.is_none() {
            return Err(offline::miss(module, version, ArtifactKind::Zip));
        }
        let inner = self.inner.clone();
        let (m, v) = (module.clone(), version.clone());
        self.inner
            .dedup
            .run(&key, move || online::fetch_zip(inner, m, v))
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
            .map_err(|e| ServiceError::Storage(format!("storage is not ready: {e}")))
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
        if self.inner.fetcher.is_none() {
            return Err(offline::miss(module, version, kind));
        }
        let inner = self.inner.clone();
        let (m, v) = (module.clone(), version.clone());
        self.inner
            .dedup
            .run(&key, move || {
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
    ServiceError::Storage(format!("storage lost {key} right after it was stored"))
}

/// A strong validator for a small body.
pub(crate) fn sha256_etag(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
