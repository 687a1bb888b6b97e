//! The checksum database through the proxy: `/sumdb/<name>/{supported,latest,lookup/…,tile/…}`
//! for the configured databases, verified before anything is cached, and the lookups that check
//! upstream artifacts before they are stored.
//!
//! Trust: each database has a verifier key. The proxy keeps one *trusted tree* per database —
//! the latest signed tree head it fetched, checked with the key, stored as `sumdb/<name>/latest`
//! with its fetch time. A newer head replaces it only if it is consistent with it (the old root
//! is rebuilt from hashes authenticated in the new tree), so an upstream cannot fork the log
//! under the proxy. Everything else is authenticated against the trusted tree:
//! - a tile: its hashes must be those the trusted tree commits to (a narrower `.p/W` tile must
//!   be a prefix of the tree's tile at that position), with every tile of the proof path checked;
//! - a lookup: its note must be signed; its tree must be consistent with the trusted one; its
//!   record's hash must be at its index in the trusted tree.
//!
//! What is stored: verified tiles (full ones and each partial width, forever), verified lookup
//! answers (forever; the record never changes), and the trusted head (refreshed after
//! `sumdb_latest_ttl` or when a request needs a bigger tree). A lookup is served with the
//! *trusted* tree's note attached rather than the one it came with (any signed tree containing
//! the record is valid): then every answer of the proxy refers to one tree, and the tiles that
//! tree needs are exactly those the proxy verified and stored — which is what lets an offline
//! proxy serve a go client that verifies everything.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use gomod::sumdb::note::Verifier;
use gomod::sumdb::tlog::{
    SUMDB_TILE_HEIGHT, TilePlan, Tree, record_hash, stored_hash_index, sub_tree_index,
};
use gomod::sumdb::{Lookup, SumdbName, SumdbPath};
use gomod::{ModulePath, Version};
use gomodproxy_storage::{Key, StorageExt};
use tokio::sync::Mutex as AsyncMutex;
use tracing::{info, warn};

mod history;
mod serve;
mod spec;
mod tiles;

pub(crate) use serve::{Verified, is_private, serve, verify_hash};

pub use history::{KnownTree, KnownTreeError, SealReport};
pub use spec::{SumdbSpec, SumdbSpecError};

use crate::fetch::limits::FetchLimits;
use crate::fetch::{FetchError, Fetcher, Want};
use crate::upstream::Chain;
use crate::{Inner, ServiceConfig, ServiceError};

/// Largest lookup answer or tree head accepted (they are a few hundred bytes).
const MAX_NOTE_SIZE: u64 = 64 * 1024;

/// The shortest time between two fetches of a tree head that a request for a bigger tree can
/// cause.
const MIN_REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// A tile of height 8 holds at most 256 hashes of 32 bytes.
const MAX_TILE_SIZE: u64 = 256 * 32;

/// One configured checksum database.
#[derive(Debug)]
pub(crate) struct Database {
    pub(crate) name: SumdbName,
    verifier: Verifier,
    /// Where its objects come from; `None` in offline mode.
    source: Option<DbSource>,
    /// The trusted tree head, once loaded or fetched: the tree and its signed note.
    trusted: std::sync::RwLock<Option<Trusted>>,
    /// Serializes refreshes of the trusted tree.
    refresh: AsyncMutex<()>,
    /// Sizes of the trees this process knows are recorded in the store (`tree/<N>`), so that
    /// each is written once.
    recorded: std::sync::Mutex<std::collections::HashSet<i64>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Trusted {
    tree: Tree,
    note: Bytes,
    /// When it was fetched from upstream (for a head loaded from the store: when it was stored).
    fetched: SystemTime,
    /// When this process read or fetched it (an offline proxy re-reads the store's head after
    /// [`OFFLINE_RELOAD`], so that an import while it serves is seen).
    loaded: std::time::Instant,
}

/// How long an offline proxy serves the tree head it read before reading the store's again.
const OFFLINE_RELOAD: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug)]
enum DbSource {
    /// The database's own URL (`<url>/lookup/…`), with a fetcher of its own.
    Direct(Box<Fetcher>),
    /// Through the upstream chain: `<proxy>/sumdb/<name>/…`.
    Chain,
}

/// The databases, by name, and which one verifies upstream artifacts.
#[derive(Debug, Default)]
pub(crate) struct Databases {
    by_name: HashMap<SumdbName, Arc<Database>>,
    /// The database upstream `.mod`/`.zip` files are checked against, when `verify` is on.
    verifying: Option<Arc<Database>>,
}

impl Databases {
    /// The configured databases (`config.sumdbs`), each with its source when online.
    pub(crate) fn new(
        config: &ServiceConfig,
        online: bool,
        limits: &Arc<FetchLimits>,
    ) -> Result<Databases, String> {
        let mut dbs = Databases::default();
        for spec in &config.sumdbs {
            let verifier = Verifier::parse(spec.verifier_key())
                .map_err(|e| format!("checksum database {spec:?}: {e}"))?;
            let name = spec.name().clone();
            let source = match (online, spec.url()) {
                (false, _) => None,
                (true, None) => Some(DbSource::Chain),
                (true, Some(url)) => Some(DbSource::Direct(Box::new(Fetcher::new(
                    Chain {
                        entries: url.entries.clone(),
                    },
                    config,
                    limits.clone(),
                    None,
                )?))),
            };
            let db = Arc::new(Database {
                name: name.clone(),
                verifier,
                source,
                trusted: std::sync::RwLock::new(None),
                refresh: AsyncMutex::new(()),
                recorded: std::sync::Mutex::new(std::collections::HashSet::new()),
            });
            if dbs.by_name.insert(name.clone(), db.clone()).is_some() {
                return Err(format!("checksum database {name} is configured twice"));
            }
            if dbs.verifying.is_none() {
                dbs.verifying = Some(db);
            }
        }
        if config.verify && dbs.verifying.is_none() {
            return Err(
                "verify is on but no checksum database is configured (set sumdb.databases or turn verify off)"
                    .to_string(),
            );
        }
        Ok(dbs)
    }

    pub(crate) fn get(&self, name: &SumdbName) -> Option<&Arc<Database>> {
        self.by_name.get(name)
    }

    pub(crate) fn verifying(&self) -> Option<&Arc<Database>> {
        self.verifying.as_ref()
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<Database>> {
        self.by_name.values()
    }
}

/// Security refusals in this process (all services), for metrics.
static SECURITY_REFUSALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(crate) fn security_refusals() -> u64 {
    SECURITY_REFUSALS.load(std::sync::atomic::Ordering::Relaxed)
}

/// A security refusal: logged as such, counted, reported as a bad upstream answer (nothing
/// stored).
fn security(db: &SumdbName, what: String) -> ServiceError {
    SECURITY_REFUSALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    warn!(target: "gomodproxy::security", sumdb = %db, "SECURITY: {what}");
    ServiceError::BadUpstream(format!("SECURITY: {what}"))
}

/// No tree of `needed` records exists upstream: "not found" for a client's request beyond the
/// log; a bad upstream when a signed note promised such a tree.
fn too_small(db: &SumdbName, needed: i64, latest: i64, signed_need: bool) -> ServiceError {
    let msg =
        format!("checksum database {db} has no tree of {needed} records (its latest has {latest})");
    if signed_need {
        ServiceError::BadUpstream(msg)
    } else {
        ServiceError::NotFound(msg)
    }
}

fn upstream_error(err: FetchError) -> ServiceError {
    err.into()
}

impl Database {
    /// A database with sum.golang.org's key, offline, for unit tests.
    #[cfg(test)]
    pub(crate) fn for_test(name: &str) -> Database {
        Database {
            name: SumdbName::parse(name).expect("test name"),
            verifier: Verifier::parse(crate::SUM_GOLANG_ORG_KEY).expect("the built-in key"),
            source: None,
            trusted: std::sync::RwLock::new(None),
            refresh: AsyncMutex::new(()),
            recorded: std::sync::Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// Fetches `path` (`lookup/…`, `tile/…`, `latest`) from upstream, unverified.
    async fn fetch(&self, inner: &Inner, path: &str, limit: u64) -> Result<Bytes, ServiceError> {
        match &self.source {
            None => Err(ServiceError::NotFound(format!(
                "offline mode: sumdb/{}/{path} is not in the cache",
                self.name
            ))),
            Some(DbSource::Direct(fetcher)) => fetcher
                .walk(Want::Path(path), |source| async move {
                    fetcher.get_bytes(&source, Want::Path(path), limit).await
                })
                .await
                .map_err(upstream_error),
            Some(DbSource::Chain) => {
                let fetcher = inner
                    .upstreams
                    .as_ref()
                    .map(|u| u.default())
                    .ok_or_else(|| {
                        ServiceError::NotFound("offline mode: upstream is not used".to_string())
                    })?;
                let rel = format!("sumdb/{}/{path}", self.name);
                fetcher
                    .walk(Want::Path(&rel), |source| {
                        let rel = &rel;
                        async move { fetcher.get_bytes(&source, Want::Path(rel), limit).await }
                    })
                    .await
                    .map_err(upstream_error)
            }
        }
    }

    fn key(&self, path: SumdbPath) -> Key {
        Key::Sumdb {
            db: self.name.clone(),
            path,
        }
    }

    /// Checks a signed tree note with this database's key.
    fn open_tree(&self, note: &[u8]) -> Result<Tree, ServiceError> {
        let text = self.verifier.open(note).map_err(|e| {
            security(
                &self.name,
                format!("tree head of {} does not verify: {e}", self.name),
            )
        })?;
        Tree::parse(text).map_err(|e| {
            security(
                &self.name,
                format!("tree head of {} is malformed: {e}", self.name),
            )
        })
    }

    fn current(&self) -> Option<Trusted> {
        self.trusted
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The trusted tree, loaded from storage on first use (offline: re-read every
    /// [`OFFLINE_RELOAD`], as only an import changes it). Online, the first tree loaded is
    /// recorded in the tree history if it is not yet (a store from before the history).
    async fn trusted(&self, inner: &Inner) -> Result<Option<Trusted>, ServiceError> {
        if let Some(t) = self.current()
            && (self.source.is_some() || t.loaded.elapsed() < OFFLINE_RELOAD)
        {
            return Ok(Some(t));
        }
        let key = self.key(SumdbPath::Latest);
        match inner.storage.get_bytes(&key, MAX_NOTE_SIZE).await {
            Ok((meta, note)) => {
                let tree = self.open_tree(&note)?;
                let t = Trusted {
                    tree,
                    note,
                    fetched: meta.modified,
                    loaded: std::time::Instant::now(),
                };
                let first = self.current().is_none();
                let trusted = {
                    let mut slot = self.trusted.write().unwrap_or_else(|p| p.into_inner());
                    // Another request may have fetched a newer one meanwhile.
                    if slot.as_ref().is_none_or(|s| s.tree.n <= t.tree.n) {
                        *slot = Some(t.clone());
                    }
                    slot.clone()
                };
                if first && self.source.is_some() {
                    self.record_tree(inner, &t.tree, &t.note).await?;
                }
                Ok(trusted)
            }
            Err(e) if e.is_not_found() => Ok(self.current()),
            Err(e) => Err(ServiceError::storage(&key, e)),
        }
    }

    /// A trusted tree of at least `min_n` records, refreshed from upstream when the current
    /// one is smaller or older than the TTL (offline: whatever is stored). `signed_need` says
    /// that `min_n` comes from a signed tree head, so a refresh is certainly worth it; an
    /// unauthenticated need (a client's tile request) refreshes at most once per
    /// [`MIN_REFRESH_INTERVAL`].
    async fn tree_at_least(
        &self,
        inner: &Inner,
        min_n: i64,
        signed_need: bool,
    ) -> Result<Trusted, ServiceError> {
        let fresh_enough = |t: &Trusted| {
            t.tree.n >= min_n
                && SystemTime::now()
                    .duration_since(t.fetched)
                    .map_or(true, |age| age < inner.config.sumdb_latest_ttl)
        };
        if let Some(t) = self.trusted(inner).await?
            && (fresh_enough(&t) || (self.source.is_none() && t.tree.n >= min_n))
        {
            return Ok(t);
        }
        if self.source.is_none() {
            return Err(ServiceError::NotFound(format!(
                "offline mode: no cached tree head of {} covers {min_n} records",
                self.name
            )));
        }
        let _guard = self.refresh.lock().await;
        if let Some(t) = self.current() {
            if fresh_enough(&t) {
                return Ok(t);
            }
            // A request for a tree beyond the newest one just fetched must not make every such
            // request another upstream fetch.
            let age = SystemTime::now()
                .duration_since(t.fetched)
                .unwrap_or_default();
            if !signed_need && t.tree.n < min_n && age < MIN_REFRESH_INTERVAL {
                return Err(too_small(&self.name, min_n, t.tree.n, signed_need));
            }
        }
        self.advance(inner, min_n, signed_need).await
    }

    /// Fetches upstream's tree head now (online only), whatever the age of the trusted one,
    /// and moves the trusted tree to it if it is newer and consistent: what sealing does, so
    /// that a bundle carries the newest tree. Fails if no tree of `min_n` records results.
    pub(super) async fn refresh_now(
        &self,
        inner: &Inner,
        min_n: i64,
    ) -> Result<Trusted, ServiceError> {
        self.trusted(inner).await?;
        let _guard = self.refresh.lock().await;
        self.advance(inner, min_n, true).await
    }

    /// The fetch of [`Database::tree_at_least`] and [`Database::refresh_now`]: upstream's tree
    /// head, checked against the trusted one; the caller holds the refresh lock.
    async fn advance(
        &self,
        inner: &Inner,
        min_n: i64,
        signed_need: bool,
    ) -> Result<Trusted, ServiceError> {
        let note = self.fetch(inner, "latest", MAX_NOTE_SIZE).await?;
        let tree = self.open_tree(&note)?;
        let old = self.current();
        if let Some(old) = &old
            && old.tree.n > tree.n
        {
            // Upstream is behind us (a cache): keep ours, and check the two agree.
            self.check_consistent(inner, &old.tree, &tree).await?;
            if old.tree.n < min_n {
                return Err(too_small(&self.name, min_n, old.tree.n, signed_need));
            }
            return Ok(old.clone());
        }
        if let Some(old) = &old {
            self.check_consistent(inner, &tree, &old.tree).await?;
        }
        if tree.n < min_n {
            return Err(too_small(&self.name, min_n, tree.n, signed_need));
        }
        let key = self.key(SumdbPath::Latest);
        inner
            .storage
            .put_bytes(&key, note.clone())
            .await
            .map_err(|e| ServiceError::storage(&key, e))?;
        let t = Trusted {
            tree,
            note,
            fetched: SystemTime::now(),
            loaded: std::time::Instant::now(),
        };
        self.record_tree(inner, &t.tree, &t.note).await?;
        if let Some(old) = &old
            && old.tree.n < tree.n
        {
            // Proven a prefix of the new tree above, with its proof tiles stored.
            self.forget_trees(inner, &tree, &[old.tree.n]).await?;
        }
        info!(sumdb = %self.name, size = tree.n, "trusted checksum database tree advanced");
        *self.trusted.write().unwrap_or_else(|p| p.into_inner()) = Some(t.clone());
        Ok(t)
    }

    /// Checks that `older` is a prefix of `newer` (its root rebuilt from hashes authenticated in
    /// `newer`). Equal sizes must have equal roots.
    async fn check_consistent(
        &self,
        inner: &Inner,
        newer: &Tree,
        older: &Tree,
    ) -> Result<(), ServiceError> {
        if older.n == newer.n {
            if older.hash != newer.hash {
                return Err(security(
                    &self.name,
                    format!(
                        "{} signed two different trees of {} records",
                        self.name, older.n
                    ),
                ));
            }
            return Ok(());
        }
        if older.n == 0 {
            return Ok(());
        }
        let indexes = sub_tree_index(0, older.n);
        let hashes = self.authenticated_hashes(inner, *newer, &indexes).await?;
        let root = gomod::sumdb::tlog::tree_hash_from_subtrees(&hashes).unwrap_or_default();
        if root != older.hash {
            return Err(security(
                &self.name,
                format!(
                    "{} tree of {} records is not a prefix of its tree of {} records",
                    self.name, older.n, newer.n
                ),
            ));
        }
        Ok(())
    }

    /// Reads stored hashes through tiles authenticated against `tree`, storing the tiles.
    async fn authenticated_hashes(
        &self,
        inner: &Inner,
        tree: Tree,
        indexes: &[i64],
    ) -> Result<Vec<gomod::sumdb::tlog::Hash>, ServiceError> {
        let plan = TilePlan::new(tree, SUMDB_TILE_HEIGHT, indexes)
            .map_err(|e| ServiceError::BadUpstream(format!("{}: {e}", self.name)))?;
        let data = self.plan_data(inner, &plan).await?;
        let hashes = self.verify_plan(&plan, &data)?;
        self.store_tiles(inner, &plan, &data).await?;
        Ok(hashes)
    }

    /// The verified record for `module@version`: from storage, else fetched, verified, stored.
    pub(crate) async fn lookup(
        &self,
        inner: &Arc<Inner>,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Lookup, ServiceError> {
        if is_private(inner, module) {
            return Err(ServiceError::NotFound(format!(
                "{module} is private on this proxy: its name is never sent to a checksum database; \
                 set GONOSUMDB (or GOPRIVATE) for it on the client"
            )));
        }
        let key = self.key(SumdbPath::Lookup {
            module: module.clone(),
            version: version.clone(),
        });
        if let Some(l) = self.stored_lookup(inner, &key).await? {
            return Ok(l);
        }
        if self.source.is_none() {
            return Err(ServiceError::NotFound(format!(
                "offline mode: the checksum database record of {module}@{version} ({}) is not in the cache",
                self.name
            )));
        }
        let db = inner.sumdbs.get(&self.name).cloned().ok_or_else(|| {
            ServiceError::local(format!("checksum database {} is not configured", self.name))
        })?;
        let (task_inner, task_key) = (inner.clone(), key.clone());
        let (m, v) = (module.clone(), version.clone());
        inner
            .dedup
            .run(&key.path(), move || async move {
                db.fetch_lookup(&task_inner, &task_key, &m, &v).await
            })
            .await?;
        self.stored_lookup(inner, &key)
            .await?
            .ok_or_else(|| crate::vanished(&key))
    }

    async fn stored_lookup(
        &self,
        inner: &Inner,
        key: &Key,
    ) -> Result<Option<Lookup>, ServiceError> {
        match inner.storage.get_bytes(key, MAX_NOTE_SIZE).await {
            Ok((_, body)) => Lookup::parse(&body).map(Some).map_err(|e| {
                ServiceError::local(format!(
                    "stored {key} is corrupt: {e} (run gomodproxy verify)"
                ))
            }),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(ServiceError::storage(key, e)),
        }
    }

    async fn fetch_lookup(
        &self,
        inner: &Inner,
        key: &Key,
        module: &ModulePath,
        version: &Version,
    ) -> Result<(), ServiceError> {
        if inner.stored_meta(key).await?.is_some() {
            return Ok(());
        }
        let path = SumdbPath::Lookup {
            module: module.clone(),
            version: version.clone(),
        }
        .render();
        let body = self
            .fetch(inner, &path, MAX_NOTE_SIZE)
            .await
            .map_err(|e| match e {
                ServiceError::NotFound(m) => ServiceError::NotFound(format!(
                    "checksum database {} has no record of {module}@{version}: {m}",
                    self.name
                )),
                other => other,
            })?;
        let lookup = Lookup::parse(&body).map_err(|e| {
            ServiceError::BadUpstream(format!("{}: lookup of {module}@{version}: {e}", self.name))
        })?;
        let record = lookup.record(module.as_str(), version.as_str());
        if record.go_mod.is_none() {
            return Err(security(
                &self.name,
                format!(
                    "{} answered the lookup of {module}@{version} with a record for something else",
                    self.name
                ),
            ));
        }
        let their_tree = self.open_tree(&lookup.note)?;
        if their_tree.n <= lookup.id {
            return Err(security(
                &self.name,
                format!(
                    "{}: record {} is not in the tree of {} records it came with",
                    self.name, lookup.id, their_tree.n
                ),
            ));
        }
        let trusted = self.tree_at_least(inner, their_tree.n, true).await?;
        self.check_consistent(inner, &trusted.tree, &their_tree)
            .await?;
        let proven = self
            .authenticated_hashes(inner, trusted.tree, &[stored_hash_index(0, lookup.id)])
            .await?;
        if proven.first() != Some(&record_hash(lookup.text.as_bytes())) {
            return Err(security(
                &self.name,
                format!(
                    "{}: the record of {module}@{version} is not the one the log holds at {}",
                    self.name, lookup.id
                ),
            ));
        }
        inner.store_fetched(key, body).await
    }
}
