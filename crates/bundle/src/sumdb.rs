//! Checksum-database objects: authenticating tiles and lookup records against a signed tree
//! head, for import (the source's objects) and verify (the store's).
//!
//! Every proof is a [`TilePlan`] over a trusted tree (the *anchor*): the plan names the tiles
//! that rebuild the tree's root and reach the wanted hash, and checks all of them at once. Tile
//! data comes from the store first (it was verified when it was stored), then from the import
//! source; a source tile that failed its own check is never used. Because the plan re-checks
//! every tile it uses against the anchor, using a not-yet-checked source tile is sound.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use gomod::sumdb::note::Verifier;
use gomod::sumdb::tlog::{
    HASH_SIZE, Hash, SUMDB_TILE_HEIGHT, Tile, TilePlan, Tree, record_hash, stored_hash_index,
    sub_tree_index, tree_hash_from_subtrees,
};
use gomod::sumdb::{Lookup, SumdbError, SumdbName, SumdbPath};
use gomodproxy_storage::{Key, Storage, StorageExt};

use crate::MAX_SMALL;
use crate::error::BundleError;
use crate::verdict::{Verdict, refuse};

/// Largest tile: 2^8 hashes.
pub(crate) const MAX_TILE: u64 = (1 << SUMDB_TILE_HEIGHT) * HASH_SIZE as u64;

/// Tiles kept in memory between proofs before the cache is emptied (32 MiB at most).
const TILE_CACHE: usize = 4096;

/// The configured databases' verifier keys, by name.
#[derive(Debug, Clone, Default)]
pub struct Verifiers {
    by_name: BTreeMap<SumdbName, Verifier>,
}

impl Verifiers {
    /// Parses databases in `GOSUMDB` syntax (`"<verifier key> [url]"`, the configuration's
    /// `sumdb.databases`); only the key is used.
    pub fn parse(specs: &[String]) -> Result<Verifiers, BundleError> {
        let mut by_name = BTreeMap::new();
        for spec in specs {
            let key = spec
                .split_whitespace()
                .next()
                .ok_or_else(|| BundleError::Options("empty checksum database entry".to_string()))?;
            let verifier = Verifier::parse(key)
                .map_err(|e| BundleError::Options(format!("checksum database {spec:?}: {e}")))?;
            let name = SumdbName::parse(verifier.name())
                .map_err(|e| BundleError::Options(format!("checksum database {spec:?}: {e}")))?;
            by_name.insert(name, verifier);
        }
        Ok(Verifiers { by_name })
    }

    /// The key of database `name`, if configured.
    pub fn get(&self, name: &SumdbName) -> Option<&Verifier> {
        self.by_name.get(name)
    }

    /// The configured names.
    pub fn names(&self) -> impl Iterator<Item = &SumdbName> {
        self.by_name.keys()
    }
}

/// Opens a signed tree note with `verifier`.
pub(crate) fn open_tree(verifier: &Verifier, note: &[u8]) -> Result<Tree, SumdbError> {
    Tree::parse(verifier.open(note)?)
}

/// The source's checksum-database objects of an import, kept in a temporary directory until
/// they are all there (they are checked together, before any artifact).
#[derive(Debug)]
pub(crate) struct Staging {
    dir: tempfile::TempDir,
    pub(crate) by_db: BTreeMap<SumdbName, Vec<SumdbPath>>,
    /// Bytes staged, by key path (for progress).
    pub(crate) sizes: HashMap<String, u64>,
}

impl Staging {
    pub(crate) fn new(spool_dir: Option<&Path>) -> Result<Staging, BundleError> {
        let dir = match spool_dir {
            Some(d) => tempfile::Builder::new()
                .prefix("gomodproxy-import-sumdb-")
                .tempdir_in(d),
            None => tempfile::Builder::new()
                .prefix("gomodproxy-import-sumdb-")
                .tempdir(),
        }
        .map_err(|e| BundleError::io("cannot create a staging directory", e))?;
        Ok(Staging {
            dir,
            by_db: BTreeMap::new(),
            sizes: HashMap::new(),
        })
    }

    fn file(&self, db: &SumdbName, path: &SumdbPath) -> PathBuf {
        // Key paths have no `.`/`..` elements and are relative: safe to join.
        self.dir.path().join(format!("{db}/{}", path.render()))
    }

    pub(crate) async fn add(
        &mut self,
        db: &SumdbName,
        path: &SumdbPath,
        body: &[u8],
    ) -> Result<bool, BundleError> {
        let file = self.file(db, path);
        if tokio::fs::try_exists(&file).await.unwrap_or(false) {
            return Ok(false);
        }
        if let Some(parent) = file.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| BundleError::io(format!("staging {}", parent.display()), e))?;
        }
        tokio::fs::write(&file, body)
            .await
            .map_err(|e| BundleError::io(format!("staging {}", file.display()), e))?;
        self.by_db.entry(db.clone()).or_default().push(path.clone());
        Ok(true)
    }

    pub(crate) async fn read(
        &self,
        db: &SumdbName,
        path: &SumdbPath,
    ) -> Result<Bytes, BundleError> {
        let file = self.file(db, path);
        tokio::fs::read(&file)
            .await
            .map(Bytes::from)
            .map_err(|e| BundleError::io(format!("reading staged {}", file.display()), e))
    }
}

/// Tile data for proofs: the store's, else the import source's.
pub(crate) struct Tiles<'a> {
    storage: &'a dyn Storage,
    db: SumdbName,
    staging: Option<&'a Staging>,
    staged: HashSet<Tile>,
    /// Source tiles that failed their check: never used.
    refused: HashSet<Tile>,
    cache: HashMap<Tile, Option<Bytes>>,
}

impl<'a> Tiles<'a> {
    pub(crate) fn new(
        storage: &'a dyn Storage,
        db: &SumdbName,
        staging: Option<&'a Staging>,
    ) -> Tiles<'a> {
        let staged = staging
            .and_then(|s| s.by_db.get(db))
            .map(|paths| {
                paths
                    .iter()
                    .filter_map(|p| match p {
                        SumdbPath::Tile(t) => Some(*t),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Tiles {
            storage,
            db: db.clone(),
            staging,
            staged,
            refused: HashSet::new(),
            cache: HashMap::new(),
        }
    }

    pub(crate) fn refuse(&mut self, tile: &Tile) {
        self.refused.insert(*tile);
        self.cache.remove(tile);
    }

    async fn get(&mut self, tile: &Tile) -> Result<Option<Bytes>, BundleError> {
        if let Some(hit) = self.cache.get(tile) {
            return Ok(hit.clone());
        }
        let key = Key::Sumdb {
            db: self.db.clone(),
            path: SumdbPath::Tile(*tile),
        };
        let found = match self.storage.get_bytes(&key, MAX_TILE).await {
            Ok((_, data)) => Some(data),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        let found = match (found, self.staging) {
            (Some(data), _) => Some(data),
            (None, Some(staging)) if self.staged.contains(tile) && !self.refused.contains(tile) => {
                Some(staging.read(&self.db, &SumdbPath::Tile(*tile)).await?)
            }
            _ => None,
        };
        if self.cache.len() >= TILE_CACHE {
            self.cache.clear();
        }
        self.cache.insert(*tile, found.clone());
        Ok(found)
    }

    /// The data of every tile of `plan`; `own` supplies one tile's data directly (the tile
    /// under test).
    async fn plan_data(
        &mut self,
        plan: &TilePlan,
        own: Option<(&Tile, &Bytes)>,
    ) -> Result<PlanData, BundleError> {
        let mut data = Vec::with_capacity(plan.tiles().len());
        for tile in plan.tiles() {
            if let Some((t, d)) = own
                && t == tile
            {
                data.push(d.clone());
                continue;
            }
            match self.get(tile).await? {
                Some(d) => data.push(d),
                None => return Ok(PlanData::Missing(*tile)),
            }
        }
        Ok(PlanData::Complete(data))
    }

    /// Proves that record `id` with `text` is in `anchor`.
    pub(crate) async fn prove_record(
        &mut self,
        anchor: Tree,
        id: i64,
        text: &str,
    ) -> Result<Verdict, BundleError> {
        if id >= anchor.n {
            refuse!(
                "record {id} is not in the signed tree of {} records",
                anchor.n
            );
        }
        let hashes = match self
            .authenticate(anchor, &[stored_hash_index(0, id)])
            .await?
        {
            Authenticated::Hashes(hashes) => hashes,
            Authenticated::Refused(why) => return Ok(Verdict::Refused(why)),
        };
        if hashes.first() != Some(&record_hash(text.as_bytes())) {
            refuse!(
                "the record is not the one the log holds at {id} (the signed tree of {} records says otherwise)",
                anchor.n
            );
        }
        Ok(Verdict::Accepted)
    }

    /// Proves that `tile` with `data` is what `anchor` commits to (a narrower tile: a prefix of
    /// the tree's tile at that position).
    pub(crate) async fn prove_tile(
        &mut self,
        anchor: Tree,
        tile: &Tile,
        data: &Bytes,
    ) -> Result<Verdict, BundleError> {
        if tile.is_data() {
            refuse!(
                "data tiles cannot be authenticated by hash tiles (and the go command never uses them)"
            );
        }
        if tile.h != SUMDB_TILE_HEIGHT {
            refuse!(
                "tile height {} is not the checksum database's {SUMDB_TILE_HEIGHT}",
                tile.h
            );
        }
        if data.len() != tile.w as usize * HASH_SIZE {
            refuse!(
                "{} bytes, want {} ({} hashes)",
                data.len(),
                tile.w as usize * HASH_SIZE,
                tile.w
            );
        }
        let plan = match TilePlan::for_tile(anchor, tile) {
            Ok(p) => p,
            Err(e) => refuse!("{e} (the signed tree it is checked against)"),
        };
        let exact = plan.tiles().contains(tile);
        let own = exact.then_some((tile, data));
        let all = match self.plan_data(&plan, own).await? {
            PlanData::Complete(d) => d,
            PlanData::Missing(missing) => refuse!("{}", PlanData::missing(&missing)),
        };
        if let Err(e) = plan.verify(&all) {
            refuse!(
                "does not match the signed tree of {} records: {e}",
                anchor.n
            );
        }
        if !exact {
            let wide = plan
                .tiles()
                .iter()
                .position(|t| t.l == tile.l && t.n == tile.n)
                .map(|i| &all[i]);
            if !wide.is_some_and(|w| w.starts_with(data)) {
                refuse!(
                    "is not a prefix of the tile the signed tree of {} records commits to",
                    anchor.n
                );
            }
        }
        Ok(Verdict::Accepted)
    }

    /// Proves that `small` is a prefix of `big` (its root rebuilt from hashes authenticated in
    /// `big`).
    pub(crate) async fn prove_prefix(
        &mut self,
        big: Tree,
        small: Tree,
    ) -> Result<Verdict, BundleError> {
        if small.n == 0 {
            return Ok(Verdict::Accepted);
        }
        let hashes = match self.authenticate(big, &sub_tree_index(0, small.n)).await? {
            Authenticated::Hashes(hashes) => hashes,
            Authenticated::Refused(why) => return Ok(Verdict::Refused(why)),
        };
        if tree_hash_from_subtrees(&hashes) != Some(small.hash) {
            refuse!(
                "SECURITY: the signed tree of {} records is not a prefix of the signed tree of {} records",
                small.n,
                big.n
            );
        }
        Ok(Verdict::Accepted)
    }

    /// The stored hashes at `indexes`, authenticated in `tree` with the tiles at hand.
    async fn authenticate(
        &mut self,
        tree: Tree,
        indexes: &[i64],
    ) -> Result<Authenticated, BundleError> {
        let refused = |why: String| Ok(Authenticated::Refused(why));
        let plan = match TilePlan::new(tree, SUMDB_TILE_HEIGHT, indexes) {
            Ok(p) => p,
            Err(e) => return refused(e.to_string()),
        };
        let data = match self.plan_data(&plan, None).await? {
            PlanData::Complete(d) => d,
            PlanData::Missing(tile) => return refused(PlanData::missing(&tile)),
        };
        match plan.verify(&data) {
            Ok(hashes) => Ok(Authenticated::Hashes(hashes)),
            Err(e) => refused(format!("the tiles that prove it fail: {e}")),
        }
    }
}

/// Hashes authenticated in a tree, or why they could not be.
enum Authenticated {
    Hashes(Vec<Hash>),
    Refused(String),
}

/// The tile data a proof needs, or the first tile nobody has.
enum PlanData {
    /// Every tile of the plan, in its order.
    Complete(Vec<Bytes>),
    /// A tile in neither the source nor the store.
    Missing(Tile),
}

impl PlanData {
    /// Why a proof fails without `tile`.
    fn missing(tile: &Tile) -> String {
        format!(
            "tile {} is needed for the proof but is in neither the source nor the store",
            tile.path()
        )
    }
}

/// What an import does with one checksum-database object of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Valid: store it (unless the store already has it).
    Import,
    /// A valid tree head, but the store keeps its own (the same tree, or a newer one).
    KeepStored(String),
    /// Invalid or unprovable: nothing is stored.
    Refused(String),
}

/// Checks every staged object of database `db` (see [`choose_anchor`] for the tree they are
/// proven in): tiles first (a refused tile is never used in a later proof), then lookups and
/// the tree head.
pub(crate) async fn check_db(
    storage: &dyn Storage,
    staging: &Staging,
    db: &SumdbName,
    verifier: Option<&Verifier>,
) -> Result<Vec<(SumdbPath, Decision)>, BundleError> {
    let paths = staging.by_db.get(db).cloned().unwrap_or_default();
    let Some(verifier) = verifier else {
        return Ok(refuse_all(
            &paths,
            format!("no verifier key for checksum database {db} is configured (sumdb.databases)"),
            None,
        ));
    };
    let mut tiles = Tiles::new(storage, db, Some(staging));
    let (anchor, latest) =
        match choose_anchor(storage, staging, db, verifier, &mut tiles, &paths).await? {
            Anchor::Tree { tree, latest } => (tree, latest),
            Anchor::None { why, latest_why } => return Ok(refuse_all(&paths, why, latest_why)),
        };

    let mut out = Vec::with_capacity(paths.len());
    for p in &paths {
        let SumdbPath::Tile(tile) = p else { continue };
        let data = staging.read(db, p).await?;
        match tiles.prove_tile(anchor, tile, &data).await? {
            Verdict::Accepted => out.push((p.clone(), Decision::Import)),
            Verdict::Refused(why) => {
                tiles.refuse(tile);
                out.push((p.clone(), Decision::Refused(why)));
            }
        }
    }
    for p in &paths {
        let decision = match p {
            SumdbPath::Tile(_) => continue,
            SumdbPath::Latest => latest.clone(),
            SumdbPath::Lookup { module, version } => {
                let body = staging.read(db, p).await?;
                match check_lookup(&mut tiles, verifier, anchor, module, version, &body).await? {
                    Verdict::Accepted => Decision::Import,
                    Verdict::Refused(why) => Decision::Refused(why),
                }
            }
            SumdbPath::Tree(n) => {
                let body = staging.read(db, p).await?;
                match check_tree(&mut tiles, verifier, anchor, *n, &body).await? {
                    Verdict::Accepted => Decision::Import,
                    Verdict::Refused(why) => Decision::Refused(why),
                }
            }
            SumdbPath::Supported => Decision::Refused("`supported` is not an object".to_string()),
        };
        out.push((p.clone(), decision));
    }
    Ok(out)
}

/// Every staged object refused for `why` (the tree head for `latest_why`, when given).
fn refuse_all(
    paths: &[SumdbPath],
    why: String,
    latest_why: Option<String>,
) -> Vec<(SumdbPath, Decision)> {
    paths
        .iter()
        .map(|p| {
            let why = match (p, &latest_why) {
                (SumdbPath::Latest, Some(l)) => l.clone(),
                _ => why.clone(),
            };
            (p.clone(), Decision::Refused(why))
        })
        .collect()
}

/// The tree a database's objects are proven in, or why there is none.
enum Anchor {
    /// Prove everything in `tree`; the source's tree head (if any) gets `latest`.
    Tree { tree: Tree, latest: Decision },
    /// Nothing of the database is imported.
    None {
        why: String,
        latest_why: Option<String>,
    },
}

/// The anchor, the tree everything is proven in: the source's `latest` (opened with the
/// database's key); without one, the store's `latest`; without either (a `$GOMODCACHE`, which
/// keeps tree heads elsewhere), the largest signed tree among the source's lookups. When both
/// the source and the store have a tree head, the smaller must be proven a prefix of the bigger
/// with the tiles at hand — or nothing of the database is imported (an unprovable or forked log
/// must not mix with the stored one).
async fn choose_anchor(
    storage: &dyn Storage,
    staging: &Staging,
    db: &SumdbName,
    verifier: &Verifier,
    tiles: &mut Tiles<'_>,
    paths: &[SumdbPath],
) -> Result<Anchor, BundleError> {
    let refuse = |why: String| Anchor::None {
        why,
        latest_why: None,
    };
    let latest_key = Key::Sumdb {
        db: db.clone(),
        path: SumdbPath::Latest,
    };
    let stored = match storage.get_bytes(&latest_key, MAX_SMALL).await {
        // A stored head that does not open is the store's problem (verify reports it); it is
        // no anchor.
        Ok((_, note)) => open_tree(verifier, &note).ok(),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let source = if paths.contains(&SumdbPath::Latest) {
        let note = staging.read(db, &SumdbPath::Latest).await?;
        match open_tree(verifier, &note) {
            Ok(tree) => Some(tree),
            Err(e) => {
                return Ok(Anchor::None {
                    why: format!("the source's tree head of {db} was refused"),
                    latest_why: Some(format!("tree head does not verify with {verifier}: {e}")),
                });
            }
        }
    } else {
        None
    };

    let anchor = |tree: Tree| Anchor::Tree {
        tree,
        latest: Decision::Import,
    };
    Ok(match (source, stored) {
        (Some(b), None) => anchor(b),
        (Some(b), Some(s)) if b.n == s.n => {
            if b.hash != s.hash {
                return Ok(refuse(format!(
                    "SECURITY: {db} signed two different trees of {} records (the source's and the stored one)",
                    b.n
                )));
            }
            Anchor::Tree {
                tree: b,
                latest: Decision::KeepStored("the store has the same tree".to_string()),
            }
        }
        (Some(b), Some(s)) => {
            let (big, small) = if b.n > s.n { (b, s) } else { (s, b) };
            if let Verdict::Refused(why) = tiles.prove_prefix(big, small).await? {
                return Ok(refuse(format!(
                    "the source's tree of {} records cannot be proven consistent with the stored tree of {} records: {why}",
                    b.n, s.n
                )));
            }
            if s.n > b.n {
                Anchor::Tree {
                    tree: b,
                    latest: Decision::KeepStored(format!(
                        "the store has a newer tree ({} records)",
                        s.n
                    )),
                }
            } else {
                anchor(b)
            }
        }
        (None, Some(s)) => anchor(s),
        (None, None) => {
            let mut best: Option<Tree> = None;
            for p in paths {
                if let SumdbPath::Lookup { .. } = p {
                    let body = staging.read(db, p).await?;
                    if let Ok(l) = Lookup::parse(&body)
                        && let Ok(t) = open_tree(verifier, &l.note)
                        && best.is_none_or(|b| t.n > b.n)
                    {
                        best = Some(t);
                    }
                }
            }
            match best {
                Some(tree) => anchor(tree),
                None => refuse(format!(
                    "no signed tree head of {db} to prove it in (neither the source nor the store has one)"
                )),
            }
        }
    })
}

/// Checks a lookup answer for `module@version`: well-formed, a record for that version, its
/// note signed, and its record proven in `anchor`.
pub(crate) async fn check_lookup(
    tiles: &mut Tiles<'_>,
    verifier: &Verifier,
    anchor: Tree,
    module: &gomod::ModulePath,
    version: &gomod::Version,
    body: &[u8],
) -> Result<Verdict, BundleError> {
    let lookup = match Lookup::parse(body) {
        Ok(l) => l,
        Err(e) => refuse!("{e}"),
    };
    if lookup
        .record(module.as_str(), version.as_str())
        .go_mod
        .is_none()
    {
        refuse!("the record is not for {module}@{version} (no go.mod line for it)");
    }
    let theirs = match open_tree(verifier, &lookup.note) {
        Ok(t) => t,
        Err(e) => refuse!("its tree note does not verify: {e}"),
    };
    if lookup.id >= theirs.n {
        refuse!(
            "record {} is not in the tree of {} records it came with",
            lookup.id,
            theirs.n
        );
    }
    if theirs.n == anchor.n && theirs.hash != anchor.hash {
        refuse!(
            "SECURITY: its tree of {} records differs from the signed tree head of the same size",
            theirs.n
        );
    }
    tiles.prove_record(anchor, lookup.id, &lookup.text).await
}

/// Checks a recorded tree head (`tree/<n>`): signed with the key, of `n` records, and a prefix
/// of `anchor` provable with the tiles at hand — what a client that remembers it will check.
pub(crate) async fn check_tree(
    tiles: &mut Tiles<'_>,
    verifier: &Verifier,
    anchor: Tree,
    n: i64,
    note: &[u8],
) -> Result<Verdict, BundleError> {
    let tree = match open_tree(verifier, note) {
        Ok(t) => t,
        Err(e) => refuse!("tree head does not verify with {verifier}: {e}"),
    };
    if tree.n != n {
        refuse!("it is the tree of {} records, not of {n}", tree.n);
    }
    if tree.n > anchor.n {
        refuse!(
            "a tree of {} records, newer than the signed tree head of {} it is checked against",
            tree.n,
            anchor.n
        );
    }
    if tree.n == anchor.n {
        if tree.hash != anchor.hash {
            refuse!(
                "SECURITY: another tree of {} records than the signed tree head",
                tree.n
            );
        }
        return Ok(Verdict::Accepted);
    }
    match tiles.prove_prefix(anchor, tree).await? {
        Verdict::Refused(why) => refuse!(
            "not provable a prefix of the signed tree of {} records (a client that remembers it would fail): {why}",
            anchor.n
        ),
        accepted => Ok(accepted),
    }
}
