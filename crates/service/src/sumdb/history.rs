//! Continuity across seals: the tree heads a proxy has trusted, handed to clients, or been told
//! clients remember (*known trees*), and sealing, which makes every one of them provable
//! offline against the tree the store now serves.
//!
//! A go command remembers the last tree it trusted (`$GOPATH/pkg/sumdb/<name>/latest`) and,
//! before it trusts a proxy's tree, proves that the two are one log: it rebuilds its own tree's
//! root from the tiles on that tree's right edge, and the older tree's root from tiles
//! authenticated in the newer one. An offline store that holds only the tiles its own lookups
//! need fails every client that remembers another tree — after a second bundle, every client of
//! the first. So the store records each tree it trusts (`sumdb/<name>/tree/<N>`, the signed
//! note), and sealing stores, for each recorded tree, the tiles of the sealed tree that prove
//! it: the plan `TilePlan::new(sealed, sub_tree_index(0, N))`. The narrower right-edge tiles of
//! the recorded tree are then cut from those (see `tiles.rs`).
//!
//! The history stays small: a tree `N` proven a prefix of a recorded tree `M` — its proof tiles
//! stored — is forgotten (see [`Database::forget_trees`] for why every later seal still proves
//! it). An online advance forgets the tree it replaces, and a seal every tree below the sealed
//! one, so the history holds the trusted tree and, between seals, little else.

use std::collections::HashSet;
use std::path::Path;

use bytes::Bytes;
use futures::StreamExt;
use gomod::sumdb::SumdbPath;
use gomod::sumdb::tlog::{
    SUMDB_TILE_HEIGHT, Tile, TilePlan, Tree, record_hash, stored_hash_index, sub_tree_index,
};
use gomodproxy_storage::{ListPrefix, StorageExt};
use tracing::{info, warn};

use super::{Database, MAX_NOTE_SIZE, security};
use crate::{Inner, ServiceError};

/// A tree head that clients remember, given from outside (`prewarm --sumdb-known-tree FILE`):
/// the go command's `$GOPATH/pkg/sumdb/<name>/latest` of a machine that will use the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownTree {
    /// Where it came from, for messages (the file name).
    pub origin: String,
    /// The signed tree note, as the go command stores it.
    pub note: Bytes,
}

/// Why a known tree cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("known tree {origin}: {reason}")]
pub struct KnownTreeError {
    /// The file.
    pub origin: String,
    /// What is wrong with it.
    pub reason: String,
}

impl KnownTree {
    /// Reads a go command `latest` note from `path` (at most 64 KiB).
    pub fn read(path: &Path) -> Result<KnownTree, KnownTreeError> {
        let origin = path.display().to_string();
        let error = |reason: String| KnownTreeError {
            origin: origin.clone(),
            reason,
        };
        let note = std::fs::read(path).map_err(|e| error(format!("cannot read it: {e}")))?;
        if note.len() as u64 > MAX_NOTE_SIZE {
            return Err(error(format!(
                "{} bytes is not a tree note (at most {MAX_NOTE_SIZE})",
                note.len()
            )));
        }
        Ok(KnownTree {
            origin: origin.clone(),
            note: Bytes::from(note),
        })
    }
}

/// What sealing made provable offline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealReport {
    /// Lookup records proven in the sealed tree with stored tiles.
    pub records: usize,
    /// Recorded tree heads (known trees included) proven to be prefixes of the sealed tree with
    /// stored tiles: a client that remembers any of them verifies the sealed tree offline.
    pub trees: usize,
    /// Known trees given to this seal, now proven prefixes of the sealed tree.
    pub known: usize,
}

impl SealReport {
    pub(crate) fn add(&mut self, other: SealReport) {
        self.records += other.records;
        self.trees += other.trees;
        self.known += other.known;
    }
}

impl Database {
    /// Opens a known tree's note with this database's key.
    pub(crate) fn open_known(&self, known: &KnownTree) -> Result<Tree, String> {
        let text = self.verifier.open(&known.note).map_err(|e| e.to_string())?;
        Tree::parse(text).map_err(|e| e.to_string())
    }

    /// Records `tree` (its signed `note`, already verified) in the store's tree history, once.
    pub(super) async fn record_tree(
        &self,
        inner: &Inner,
        tree: &Tree,
        note: &Bytes,
    ) -> Result<(), ServiceError> {
        let recorded = |db: &Database| {
            db.recorded
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&tree.n)
        };
        if recorded(self) {
            return Ok(());
        }
        let key = self.key(SumdbPath::Tree(tree.n));
        if inner.stored_meta(&key).await?.is_none() {
            inner
                .storage
                .put_bytes(&key, note.clone())
                .await
                .map_err(|e| ServiceError::storage(&key, e))?;
        }
        self.recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tree.n);
        Ok(())
    }

    /// Forgets the recorded trees of these sizes, each smaller than `anchor` and each just
    /// proven a prefix of it with its proof tiles stored; `anchor` is recorded.
    ///
    /// Nothing a client needs is lost. A client that remembers `N` and is served a later tree
    /// `S` reads, for each tile level `L`, the tile `(L, K)` holding the right edge of `N`, at
    /// the width `S` gives it. If that tile ends at or below `anchor`, it is full and was stored
    /// by the proof against `anchor` (full tiles never change). Otherwise `anchor` lies inside
    /// the same tile, so its own right edge reads `(L, K)` at `S`'s width too — and `anchor`
    /// stays recorded, so the seal against `S` proves it and stores that tile. When `anchor`
    /// is forgotten in turn, the same holds for the tree that replaced it.
    pub(super) async fn forget_trees(
        &self,
        inner: &Inner,
        anchor: &Tree,
        sizes: &[i64],
    ) -> Result<(), ServiceError> {
        for &n in sizes {
            debug_assert!(n < anchor.n, "a tree is forgotten only below its anchor");
            if n >= anchor.n {
                continue;
            }
            let key = self.key(SumdbPath::Tree(n));
            inner
                .storage
                .delete(&key)
                .await
                .map_err(|e| ServiceError::storage(&key, e))?;
            self.recorded
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&n);
        }
        Ok(())
    }

    /// Every tree in the store's history, verified with the key, by size.
    async fn recorded_trees(&self, inner: &Inner) -> Result<Vec<Tree>, ServiceError> {
        let mut keys = Vec::new();
        let mut listing = inner
            .storage
            .list(&ListPrefix::SumdbTrees(self.name.clone()));
        while let Some(entry) = listing.next().await {
            let entry = entry.map_err(|e| {
                ServiceError::storage_doing(&format!("listing the trees of {}", self.name), e)
            })?;
            if let gomodproxy_storage::Key::Sumdb {
                path: SumdbPath::Tree(n),
                ..
            } = entry.key
            {
                keys.push((n, entry.key));
            }
        }
        let mut trees = Vec::with_capacity(keys.len());
        for (n, key) in keys {
            let note = match inner.storage.get_bytes(&key, MAX_NOTE_SIZE).await {
                Ok((_, note)) => note,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(ServiceError::storage(&key, e)),
            };
            let corrupt = |why: String| {
                ServiceError::local(format!(
                    "stored {key} is not a tree head of {}: {why} (run gomodproxy verify)",
                    self.name
                ))
            };
            let tree = self
                .verifier
                .open(&note)
                .map_err(|e| corrupt(e.to_string()))
                .and_then(|text| Tree::parse(text).map_err(|e| corrupt(e.to_string())))?;
            if tree.n != n {
                return Err(corrupt(format!("it is the tree of {} records", tree.n)));
            }
            trees.push(tree);
        }
        trees.sort_by_key(|t| t.n);
        Ok(trees)
    }

    /// Seals the store for offline clients (the end of a prewarm):
    ///
    /// 1. online, the trusted tree moves to upstream's newest (so that a bundle made now
    ///    carries it), at least as big as every known tree;
    /// 2. each known tree is proven a prefix of it and recorded;
    /// 3. every recorded tree is proven a prefix of it, with its proof tiles stored, and then
    ///    forgotten (see [`Database::forget_trees`]): the history keeps the sealed tree;
    /// 4. every stored lookup record is proven in it, with its tiles stored.
    pub(crate) async fn seal(
        &self,
        inner: &Inner,
        known: &[(Tree, KnownTree)],
    ) -> Result<SealReport, ServiceError> {
        let mut report = SealReport::default();
        let need = known.iter().map(|(t, _)| t.n).max().unwrap_or(0);
        let current = self.trusted(inner).await?;
        let trusted = if self.source.is_some() && (current.is_some() || !known.is_empty()) {
            match self.refresh_now(inner, need).await {
                Ok(t) => t,
                // A seal against the tree at hand is still a seal, unless a known tree needs a
                // bigger one.
                Err(e) => match current {
                    Some(t) if t.tree.n >= need => {
                        warn!(sumdb = %self.name, error = %e, "cannot fetch a newer tree head; sealing against the trusted one");
                        t
                    }
                    _ => return Err(e),
                },
            }
        } else {
            match current {
                Some(t) => t,
                None if known.is_empty() => return Ok(report),
                None => {
                    return Err(ServiceError::NotFound(format!(
                        "offline mode: no tree head of {} is stored to prove the known trees against",
                        self.name
                    )));
                }
            }
        };
        self.record_tree(inner, &trusted.tree, &trusted.note)
            .await?;

        for (tree, k) in known {
            if tree.n > trusted.tree.n {
                return Err(ServiceError::NotFound(format!(
                    "known tree {}: it has {} records, and {} has no tree that big to prove it in (the trusted one has {})",
                    k.origin, tree.n, self.name, trusted.tree.n
                )));
            }
            self.check_consistent(inner, &trusted.tree, tree)
                .await
                .map_err(|e| match e {
                    ServiceError::BadUpstream(m) => {
                        ServiceError::BadUpstream(format!("known tree {}: {m}", k.origin))
                    }
                    other => other,
                })?;
            self.record_tree(inner, tree, &k.note).await?;
            report.known += 1;
        }

        // Trees whose proofs need the same tiles are one proof: one tree of each is checked
        // (each was checked when it was recorded).
        let mut proven: HashSet<Vec<Tile>> = HashSet::new();
        let mut below = Vec::new();
        for tree in self.recorded_trees(inner).await? {
            if tree.n > trusted.tree.n {
                return Err(security(
                    &self.name,
                    format!(
                        "the store records a tree of {} records, newer than its trusted tree of {}",
                        tree.n, trusted.tree.n
                    ),
                ));
            }
            let tiles = if tree.n == 0 || tree.n == trusted.tree.n {
                Vec::new()
            } else {
                TilePlan::new(trusted.tree, SUMDB_TILE_HEIGHT, &sub_tree_index(0, tree.n))
                    .map_err(|e| ServiceError::BadUpstream(format!("{}: {e}", self.name)))?
                    .tiles()
                    .to_vec()
            };
            if tiles.is_empty() || proven.insert(tiles) {
                self.check_consistent(inner, &trusted.tree, &tree).await?;
            }
            if tree.n < trusted.tree.n {
                below.push(tree.n);
            }
            report.trees += 1;
        }
        self.forget_trees(inner, &trusted.tree, &below).await?;
        info!(sumdb = %self.name, size = trusted.tree.n, trees = report.trees, "sealed the tree history");
        report.records = self.seal_records(inner, trusted.tree).await?;
        Ok(report)
    }

    /// Proves every stored lookup in `tree` with stored tiles (fetching the missing ones);
    /// returns how many records were checked.
    async fn seal_records(&self, inner: &Inner, tree: Tree) -> Result<usize, ServiceError> {
        let mut ids = Vec::new();
        let mut listing = inner
            .storage
            .list(&ListPrefix::SumdbLookups(self.name.clone()));
        while let Some(entry) = listing.next().await {
            let entry = entry.map_err(|e| {
                ServiceError::storage_doing(&format!("listing the lookups of {}", self.name), e)
            })?;
            if let Some(l) = self.stored_lookup(inner, &entry.key).await?
                && l.id < tree.n
            {
                ids.push((l.id, record_hash(l.text.as_bytes()), entry.key));
            }
        }
        for chunk in ids.chunks(64) {
            let indexes: Vec<i64> = chunk
                .iter()
                .map(|(id, _, _)| stored_hash_index(0, *id))
                .collect();
            let hashes = self.authenticated_hashes(inner, tree, &indexes).await?;
            for ((_, want, key), got) in chunk.iter().zip(hashes) {
                if got != *want {
                    return Err(security(
                        &self.name,
                        format!("stored {key} is not in the trusted tree"),
                    ));
                }
            }
        }
        Ok(ids.len())
    }
}
