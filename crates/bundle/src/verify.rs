//! `verify`: re-checks what the store holds.
//!
//! - every cached checksum-database tree head opens with its database's key; every cached tile
//!   is what that tree commits to; every cached lookup is well-formed, signed, and its record
//!   provable in the cached tree with cached tiles (what an offline client will need); every
//!   recorded tree head (`tree/<N>`) is a prefix of the cached tree provable with cached tiles,
//!   so the stored trees form one log and a client that remembers any of them verifies;
//! - every stored zip is read back (spooled to a temporary file), re-validated with
//!   `check_zip`, and its `h1:` compared with the stored `.ziphash` and the cached record;
//! - every `.mod` parses, and its go.mod hash is compared with the cached record;
//! - every `.info`, `list` and `@latest` is well-formed.
//!
//! A run has three phases — [`Run::list`] the store, [`Run::checksum_database`],
//! [`Run::artifacts`] — and every problem any of them finds goes through [`Run::problem`], which
//! records it in the report and tells the progress sink.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use gomod::dirhash::hash_go_mod;
use gomod::sumdb::note::Verifier;
use gomod::sumdb::tlog::Tree;
use gomod::sumdb::{Lookup, Record, SumdbName, SumdbPath};
use gomod::zipfile::ZipLimits;
use gomod::{ModulePath, Version};
use gomodproxy_service::validate::{self, Invalid};
use gomodproxy_storage::{
    ArtifactKind, Key, ListEntry, ListPrefix, Storage, StorageError, StorageExt,
};
use tokio::io::AsyncWriteExt;

use crate::error::BundleError;
use crate::order::order_key;
use crate::sumdb::{MAX_TILE, Tiles, Verifiers, check_lookup, check_tree, open_tree};
use crate::verdict::Verdict;
use crate::{MAX_MOD, MAX_SMALL, Problem, Progress};

/// What to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Only these modules (GOPRIVATE-style patterns); empty: the whole store, tiles included.
    pub modules: Vec<String>,
    /// The checksum databases' keys.
    pub sumdbs: Verifiers,
    /// Where zips are spooled (default: the OS temp dir).
    pub spool_dir: Option<PathBuf>,
    /// Module zip limits.
    pub zip_limits: ZipLimits,
}

/// What verify found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Zips re-validated.
    pub zips: u64,
    /// Their bytes.
    pub zip_bytes: u64,
    /// `.mod` files checked.
    pub mods: u64,
    /// `.info`, `list`, `@latest` checked.
    pub others: u64,
    /// Lookup records checked.
    pub records: u64,
    /// Tiles checked.
    pub tiles: u64,
    /// Recorded tree heads checked (each a prefix of the cached tree head: one log).
    pub trees: u64,
    /// Everything wrong.
    pub problems: Vec<Problem>,
    /// How long it took.
    pub elapsed: std::time::Duration,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the store (or the selected modules of it).
pub async fn verify(
    storage: &dyn Storage,
    options: &VerifyOptions,
    progress: &dyn Progress<str>,
) -> Result<VerifyReport, BundleError> {
    let started = Instant::now();
    let mut run = Run {
        storage,
        options,
        progress,
        report: VerifyReport::default(),
    };
    let entries = run.list().await?;
    // Bundle order puts every checksum-database object first.
    let split = entries
        .iter()
        .position(|e| !matches!(e.key, Key::Sumdb { .. }))
        .unwrap_or(entries.len());
    let (sumdb, artifacts) = entries.split_at(split);
    let records = run.checksum_database(sumdb).await?;
    run.artifacts(artifacts, &records).await?;
    let mut report = run.report;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The cached checksum-database records of each module version, by database.
type Records = HashMap<(ModulePath, Version), Vec<(SumdbName, Record)>>;

/// Which hash of a module version is compared with its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hashed {
    GoMod,
    Zip,
}

/// One verify run: what it reads, where progress goes, and what it found so far.
struct Run<'a> {
    storage: &'a dyn Storage,
    options: &'a VerifyOptions,
    progress: &'a dyn Progress<str>,
    report: VerifyReport,
}

/// What the checksum-database phase keeps per database.
#[derive(Default)]
struct SumdbState<'a> {
    /// Each database's cached tree head, when it verifies (checked once).
    anchors: HashMap<SumdbName, Option<Tree>>,
    /// Each database's tiles (cached between proofs).
    tiles: HashMap<SumdbName, Tiles<'a>>,
    /// The records of the lookups read, for the artifacts phase.
    records: Records,
}

/// A stored `.ziphash` waiting for its `.zip` (which follows it in bundle order).
struct PendingHash {
    module: ModulePath,
    version: Version,
    path: String,
    /// The stored hash (or why it is not one), `None` if it could not be read.
    hash: Option<String>,
}

impl<'a> Run<'a> {
    /// The one reporting path: every problem is recorded in the report and told to the
    /// progress sink as it is found.
    fn problem(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        let problem = Problem::new(path, reason);
        self.progress.problem(&problem);
        self.report.problems.push(problem);
    }

    /// Reports `result`'s refusal, if any, as a problem of `path`.
    fn check<T>(&mut self, path: &str, result: Result<T, Invalid>) {
        if let Err(why) = result {
            self.problem(path, why);
        }
    }

    /// Whether `module` is selected.
    fn in_scope(&self, module: &ModulePath) -> bool {
        let patterns = &self.options.modules;
        patterns.is_empty()
            || patterns
                .iter()
                .any(|p| gomod::glob::match_prefix_patterns(p, module.as_str()))
    }

    /// Phase 1: the store's listing (keys and sizes), the selected part of it, in bundle order.
    async fn list(&self) -> Result<Vec<ListEntry>, BundleError> {
        self.progress.phase("listing the store", None, None);
        let mut entries: Vec<ListEntry> = Vec::new();
        let mut listing = self.storage.list(&ListPrefix::All);
        while let Some(entry) = listing.next().await {
            let entry = entry?;
            let keep = match &entry.key {
                Key::Sumdb {
                    path: SumdbPath::Lookup { module, .. },
                    ..
                } => self.in_scope(module),
                // Tree heads and tiles serve every module: only a whole-store run checks them.
                Key::Sumdb { .. } => self.options.modules.is_empty(),
                other => other.module().is_some_and(|m| self.in_scope(m)),
            };
            if keep {
                entries.push(entry);
            }
        }
        entries.sort_by_cached_key(|e| order_key(&e.key.path()));
        self.progress.phase(
            "verifying",
            Some(entries.len() as u64),
            Some(entries.iter().map(|e| e.meta.size).sum()),
        );
        Ok(entries)
    }

    /// Phase 2: tree heads, tiles and lookups; returns the records of the lookups read.
    async fn checksum_database(&mut self, entries: &[ListEntry]) -> Result<Records, BundleError> {
        let mut state = SumdbState::default();
        for entry in entries {
            if let Key::Sumdb { db, path } = &entry.key {
                self.sumdb_object(&mut state, &entry.key, db, path).await?;
            }
            self.progress.step(&entry.key.path(), entry.meta.size);
        }
        Ok(state.records)
    }

    /// One checksum-database object.
    async fn sumdb_object(
        &mut self,
        state: &mut SumdbState<'a>,
        key: &Key,
        db: &SumdbName,
        path: &SumdbPath,
    ) -> Result<(), BundleError> {
        let Some(verifier) = self.options.sumdbs.get(db) else {
            self.problem(
                key.path(),
                format!(
                    "no verifier key for checksum database {db} is configured (sumdb.databases)"
                ),
            );
            return Ok(());
        };
        let anchor = match state.anchors.get(db) {
            Some(anchor) => *anchor,
            None => {
                let anchor = self.tree_head(db, verifier).await?;
                state.anchors.insert(db.clone(), anchor);
                anchor
            }
        };
        let storage = self.storage;
        let tiles = state
            .tiles
            .entry(db.clone())
            .or_insert_with(|| Tiles::new(storage, db, None));
        match path {
            SumdbPath::Latest | SumdbPath::Supported => {}
            SumdbPath::Tree(n) => {
                let Some(note) = self.read_sumdb(key, MAX_SMALL).await? else {
                    return Ok(());
                };
                let verdict = match anchor {
                    Some(anchor) => check_tree(tiles, verifier, anchor, *n, &note).await?,
                    None => Verdict::Refused(format!(
                        "no valid cached tree head of {db} to check it against"
                    )),
                };
                if let Verdict::Refused(why) = verdict {
                    self.problem(key.path(), why);
                }
                self.report.trees += 1;
            }
            SumdbPath::Tile(tile) => {
                let Some(data) = self.read_sumdb(key, MAX_TILE).await? else {
                    return Ok(());
                };
                let verdict = match anchor {
                    Some(anchor) => tiles.prove_tile(anchor, tile, &data).await?,
                    None => Verdict::Refused(format!(
                        "no valid cached tree head of {db} to check it against"
                    )),
                };
                if let Verdict::Refused(why) = verdict {
                    self.problem(key.path(), why);
                }
                self.report.tiles += 1;
            }
            SumdbPath::Lookup { module, version } => {
                let Some(body) = self.read_sumdb(key, MAX_SMALL).await? else {
                    return Ok(());
                };
                if let Ok(lookup) = Lookup::parse(&body) {
                    state
                        .records
                        .entry((module.clone(), version.clone()))
                        .or_default()
                        .push((db.clone(), lookup.record(module.as_str(), version.as_str())));
                }
                let verdict = match anchor {
                    Some(anchor) => {
                        match check_lookup(tiles, verifier, anchor, module, version, &body).await? {
                            Verdict::Refused(why) => {
                                Verdict::Refused(format!("record not provable offline: {why}"))
                            }
                            accepted => accepted,
                        }
                    }
                    None => Verdict::Refused(format!(
                        "no valid cached tree head of {db} to prove the record in"
                    )),
                };
                if let Verdict::Refused(why) = verdict {
                    self.problem(key.path(), why);
                }
                self.report.records += 1;
            }
        }
        Ok(())
    }

    /// Database `db`'s cached tree head, if there is one and it opens with `verifier` (one that
    /// does not is a problem).
    async fn tree_head(
        &mut self,
        db: &SumdbName,
        verifier: &Verifier,
    ) -> Result<Option<Tree>, BundleError> {
        let latest = Key::Sumdb {
            db: db.clone(),
            path: SumdbPath::Latest,
        };
        match self.storage.get_bytes(&latest, MAX_SMALL).await {
            Ok((_, note)) => match open_tree(verifier, &note) {
                Ok(tree) => Ok(Some(tree)),
                Err(e) => {
                    self.problem(
                        latest.path(),
                        format!("tree head does not verify with {verifier}: {e}"),
                    );
                    Ok(None)
                }
            },
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A checksum-database object's body; `None` (and a problem) if it cannot be read, `None`
    /// alone if it was deleted meanwhile.
    async fn read_sumdb(&mut self, key: &Key, limit: u64) -> Result<Option<Bytes>, BundleError> {
        match self.storage.get_bytes(key, limit).await {
            Ok((_, body)) => Ok(Some(body)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => {
                self.problem(key.path(), format!("cannot read: {e}"));
                Ok(None)
            }
        }
    }

    /// Phase 3: the artifacts, in order (`.info`, `.mod`, `.ziphash`, `.zip` per version),
    /// lists and `@latest`.
    async fn artifacts(
        &mut self,
        entries: &[ListEntry],
        records: &Records,
    ) -> Result<(), BundleError> {
        let mut pending: Option<PendingHash> = None;
        for entry in entries {
            let path = entry.key.path();
            if let Key::Artifact {
                module, version, ..
            } = &entry.key
                && let Some(orphan) = pending.take_if(|p| {
                    &p.module != module || &p.version != version || !entry.key.is_zip()
                })
            {
                self.problem(orphan.path, "a .ziphash without its zip");
            }
            let key = &entry.key;
            match key {
                Key::Artifact {
                    module,
                    version,
                    kind,
                } => match kind {
                    ArtifactKind::Info => {
                        if let Some(body) = self.read(key, MAX_SMALL).await? {
                            self.check(&path, validate::info_for(version, &body));
                            self.report.others += 1;
                        }
                    }
                    ArtifactKind::Mod => {
                        if let Some(body) = self.read(key, MAX_MOD).await? {
                            self.check(&path, validate::go_mod(module, &body));
                            let h1 = hash_go_mod(&body);
                            self.compare(records, module, version, Hashed::GoMod, &h1, &path);
                            self.report.mods += 1;
                        }
                    }
                    ArtifactKind::ZipHash => {
                        let hash = self.read(key, MAX_SMALL).await?.map(|body| {
                            validate::ziphash(&body).unwrap_or_else(|e| format!("invalid ({e})"))
                        });
                        pending = Some(PendingHash {
                            module: module.clone(),
                            version: version.clone(),
                            path: path.clone(),
                            hash,
                        });
                    }
                    ArtifactKind::Zip => {
                        // Any other pending hash was reported above.
                        let stored = pending.take().and_then(|p| p.hash);
                        self.zip(key, module, version, entry.meta.size, stored, records)
                            .await?;
                    }
                },
                Key::List { module } => {
                    if let Some(body) = self.read(key, MAX_SMALL).await? {
                        self.check(&path, validate::check_list(module, &body));
                        self.report.others += 1;
                    }
                }
                Key::Latest { module } => {
                    if let Some(body) = self.read(key, MAX_SMALL).await? {
                        self.check(&path, validate::info_of(module, &body));
                        self.report.others += 1;
                    }
                }
                // Checksum-database objects were the previous phase's.
                _ => {}
            }
            self.progress.step(&path, entry.meta.size);
        }
        if let Some(orphan) = pending {
            self.problem(orphan.path, "a .ziphash without its zip");
        }
        Ok(())
    }

    /// A stored zip: re-validated, and its hash compared with the stored `.ziphash` and the
    /// records.
    async fn zip(
        &mut self,
        key: &Key,
        module: &ModulePath,
        version: &Version,
        size: u64,
        stored_hash: Option<String>,
        records: &Records,
    ) -> Result<(), BundleError> {
        let Some(summary) = self.check_stored_zip(key, module, version).await? else {
            return Ok(());
        };
        let path = key.path();
        self.report.zips += 1;
        self.report.zip_bytes += size;
        match stored_hash {
            None => self.problem(
                &path,
                format!("no .ziphash stored (the zip hashes to {})", summary.h1),
            ),
            Some(h) if h != summary.h1 => self.problem(
                &path,
                format!(
                    "the zip hashes to {}, but its .ziphash says {h}",
                    summary.h1
                ),
            ),
            Some(_) => {}
        }
        self.compare(records, module, version, Hashed::Zip, &summary.h1, &path);
        Ok(())
    }

    /// A small object's body; `None` (and a problem) if it cannot be read, `None` alone if it
    /// was deleted meanwhile.
    async fn read(&mut self, key: &Key, limit: u64) -> Result<Option<Bytes>, BundleError> {
        match self.storage.get_bytes(key, limit).await {
            Ok((_, b)) => Ok(Some(b)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(StorageError::Backend { source, .. }) if source.to_string().contains("limit") => {
                self.problem(key.path(), source.to_string());
                Ok(None)
            }
            Err(e @ StorageError::Corrupt { .. }) => {
                self.problem(key.path(), e.to_string());
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Compares a hash of `module@version` with its cached records.
    fn compare(
        &mut self,
        records: &Records,
        module: &ModulePath,
        version: &Version,
        hashed: Hashed,
        h1: &str,
        path: &str,
    ) {
        let Some(found) = records.get(&(module.clone(), version.clone())) else {
            return;
        };
        for (db, record) in found {
            let want = match hashed {
                Hashed::GoMod => &record.go_mod,
                Hashed::Zip => &record.zip,
            };
            if let Some(want) = want
                && want != h1
            {
                self.problem(
                    path,
                    format!("hashes to {h1}, but checksum database {db} has {want}"),
                );
            }
        }
    }

    /// Streams a stored zip to a temporary file and re-validates it; `None` (and a problem) if
    /// it cannot be read or is invalid.
    async fn check_stored_zip(
        &mut self,
        key: &Key,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Option<gomod::ZipSummary>, BundleError> {
        let path = key.path();
        let limits = self.options.zip_limits;
        let got = match self.storage.get(key).await {
            Ok(g) => g,
            Err(e) if e.is_not_found() => return Ok(None),
            // The store's own length check found it (a truncated or extended file).
            Err(e @ StorageError::Corrupt { .. }) => {
                self.problem(path, e.to_string());
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let announced = got.meta.size;
        if announced > limits.max_zip_size {
            self.problem(
                path,
                format!(
                    "{announced} bytes, over the {}-byte zip limit",
                    limits.max_zip_size
                ),
            );
            return Ok(None);
        }
        let spool = match &self.options.spool_dir {
            Some(d) => tempfile::tempfile_in(d),
            None => tempfile::tempfile(),
        }
        .map_err(|e| BundleError::io("cannot create a spool file", e))?;
        let mut file = tokio::fs::File::from_std(spool);
        let mut body = got.body;
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    self.problem(path, format!("cannot read: {e}"));
                    return Ok(None);
                }
            };
            size += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|e| BundleError::io("spooling a zip", e))?;
        }
        file.flush()
            .await
            .map_err(|e| BundleError::io("spooling a zip", e))?;
        if size != announced {
            self.problem(
                path,
                format!("the store announced {announced} bytes but sent {size}"),
            );
            return Ok(None);
        }
        let mut file = file.into_std().await;
        let (m, v) = (module.clone(), version.clone());
        let checked =
            tokio::task::spawn_blocking(move || gomod::check_zip(&mut file, &m, &v, &limits))
                .await
                .map_err(|e| BundleError::Internal(format!("zip check: {e}")))?;
        match checked {
            Ok(summary) => Ok(Some(summary)),
            Err(e) => {
                self.problem(path, format!("invalid module zip: {e}"));
                Ok(None)
            }
        }
    }
}
