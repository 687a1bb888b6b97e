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
//!
//! May depend on `gomod`, `gomodproxy-storage` (the trait, never a backend), `gomodproxy-vcs`
//! (the `direct` source) and `gomodproxy-redact`; never on the server or a backend crate. The
//! server and `gomodproxy-bundle` depend on it.

#![deny(missing_docs)]

mod config;
pub mod coordination;
mod dedup;
mod error;
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

use std::sync::Arc;
use std::time::SystemTime;

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

pub use crate::config::{Mode, Outbound, PrivateNames, SUM_GOLANG_ORG_KEY, ServiceConfig};
pub use crate::error::{ServiceError, ServiceInitError, io_words, storage_words};
pub use crate::fetch::limits::FetchLimitStats;
pub use crate::sumdb::{KnownTree, KnownTreeError, SealReport, SumdbSpec, SumdbSpecError};
pub use crate::upstream::{
    CredentialEntry, CredentialError, ModulePatterns, PatternError, Route, RouteError, Routes,
    UpstreamChain, UpstreamCredentials, UpstreamError,
};
pub use gomodproxy_vcs::{DirectConfig, DirectStats};

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
            max_queued_per_host: config.max_queued_fetches_per_host,
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

    /// `/@v/list` asked of upstream now, whatever the age of the stored one, and stored (what
    /// `prewarm --refresh` does); offline, the stored versions.
    pub async fn refresh_list(&self, module: &ModulePath) -> Result<Answer, ServiceError> {
        match &self.inner.upstreams {
            None => offline::list(&self.inner, module).await,
            Some(_) => online::refresh_list(&self.inner, module).await,
        }
    }

    /// `/@latest` asked of upstream now, and stored; offline, the best stored version.
    pub async fn refresh_latest(&self, module: &ModulePath) -> Result<Answer, ServiceError> {
        match &self.inner.upstreams {
            None => offline::latest(&self.inner, module).await,
            Some(_) => online::refresh_latest(&self.inner, module).await,
        }
    }

    /// Every stored artifact (module, version, kind), in no particular order: what a refresh
    /// starts from. Holds the list in memory (three fields per stored artifact).
    pub async fn stored_artifacts(
        &self,
    ) -> Result<Vec<(ModulePath, Version, ArtifactKind)>, ServiceError> {
        use futures::StreamExt;
        let mut out = Vec::new();
        let mut listing = self
            .inner
            .storage
            .list(&gomodproxy_storage::ListPrefix::All);
        while let Some(entry) = listing.next().await {
            match entry {
                Ok(entry) => {
                    if let Key::Artifact {
                        module,
                        version,
                        kind,
                    } = entry.key
                    {
                        out.push((module, version, kind));
                    }
                }
                Err(e @ StorageError::InvalidKey { .. }) => {
                    tracing::warn!(error = %e, "skipping an invalid stored key");
                }
                Err(e) => return Err(ServiceError::storage_doing("listing the store", e)),
            }
        }
        Ok(out)
    }

    /// `/@v/<version>.info`.
    pub async fn info(
        &self,
        module: &ModulePath,
        query: &VersionQuery,
    ) -> Result<Answer, ServiceError> {
        match query {
            // A version that cannot be one of this module's (`v2.0.0` of a path without `/v2`)
            // is still a query the go command sends: upstream resolves it, as the go command's
            // direct mode and proxy.golang.org do (`v2.0.0` → `v2.0.0+incompatible`). Never
            // stored under the name asked.
            VersionQuery::Canonical(version)
                if self.inner.upstreams.is_some()
                    && check_pair(module, version).is_err()
                    && may_resolve_to_incompatible(module, version) =>
            {
                online::query_info(&self.inner, module, version.as_str()).await
            }
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

    /// After fetching for offline use, seals the checksum-database cache: online, each
    /// database's trusted tree moves to upstream's newest; then every tree the store has
    /// recorded (trusted, handed out, imported) and every `known` tree is proven a prefix of it,
    /// and every stored record proven in it, with stored tiles — fetching the ones that are
    /// missing. A client that remembers any of those trees then verifies the store offline,
    /// and keeps doing so after later seals: the history then keeps only the sealed tree,
    /// whose re-proof at each seal stores what the forgotten ones need. See
    /// [`ProxyService::open_known_tree`] for the known trees.
    pub async fn seal_sumdb(&self, known: &[KnownTree]) -> Result<SealReport, ServiceError> {
        let mut by_db: Vec<(&std::sync::Arc<sumdb::Database>, Vec<_>)> =
            self.inner.sumdbs.all().map(|db| (db, Vec::new())).collect();
        for k in known {
            let (name, tree) = self
                .open_known_tree(k)
                .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
            if let Some((_, trees)) = by_db.iter_mut().find(|(db, _)| db.name == name) {
                trees.push((tree, k.clone()));
            }
        }
        let mut report = SealReport::default();
        for (db, trees) in by_db {
            report.add(db.seal(&self.inner, &trees).await?);
        }
        Ok(report)
    }

    /// Checks a known tree (a go command `latest` note): it must be signed by the key of a
    /// configured checksum database. Returns that database and the tree.
    pub fn open_known_tree(
        &self,
        known: &KnownTree,
    ) -> Result<(gomod::sumdb::SumdbName, gomod::sumdb::tlog::Tree), KnownTreeError> {
        let mut why = Vec::new();
        for db in self.inner.sumdbs.all() {
            match db.open_known(known) {
                Ok(tree) => return Ok((db.name.clone(), tree)),
                Err(e) => why.push(format!("{}: {e}", db.name)),
            }
        }
        why.sort();
        Err(KnownTreeError {
            origin: known.origin.clone(),
            reason: if why.is_empty() {
                "no checksum database is configured (sumdb.databases)".to_string()
            } else {
                format!(
                    "not a tree head signed by a configured checksum database's key ({})",
                    why.join("; ")
                )
            },
        })
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

/// Whether upstream may answer `version` of `module` with another, valid version: `v2.0.0` of a
/// path without a major suffix can be `v2.0.0+incompatible`. Nothing else that fails
/// [`check_pair`] can (`v1.0.0+incompatible`, `v1.0.0` of a `/v2` path), so those stay a 404
/// without an upstream request.
fn may_resolve_to_incompatible(module: &ModulePath, version: &Version) -> bool {
    let (_, suffix) = module.split_major();
    suffix.is_empty()
        && !module.as_str().starts_with("gopkg.in/")
        && !version.is_incompatible()
        && !matches!(version.major(), "v0" | "v1")
}

/// Rejects a version that cannot belong to the module (`example.com/m@v2.0.0`, `…/v2@v1.0.0`):
/// nothing may be fetched or stored under it. "Not found" as proxy.golang.org answers, so that a
/// client's `,` chain behaves as it would there. (An `.info` of one that
/// [`may_resolve_to_incompatible`] is asked of upstream as a query instead.)
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
