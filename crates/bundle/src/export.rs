//! `export`: the store, or a selection of it, into one bundle.
//!
//! The store is listed first (keys and sizes only), the selection sorted into bundle order,
//! and then every object is streamed from the store into the tar stream: an async producer reads
//! the object bodies and a blocking writer thread tars and compresses them, with a bounded
//! channel of chunks between the two, so no body is ever held whole in memory.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use gomod::gosum::GoSum;
use gomod::sumdb::tlog::Tree;
use gomod::sumdb::{SumdbName, SumdbPath};
use gomod::{ModulePath, Version};
use gomodproxy_storage::{ArtifactKind, Key, ListEntry, ListPrefix, Storage, StorageExt};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::error::BundleError;
use crate::manifest::{
    FORMAT_NAME, FORMAT_VERSION, Follows, INVENTORY_FORMAT, INVENTORY_NAME, Inventory,
    MANIFEST_NAME, Manifest, SideManifest, TreeRef, kind_name,
};
use crate::order::order_key;
use crate::sumdb::Tiles;
use crate::verdict::Verdict;
use crate::{Problem, Progress};

/// Chunks in flight between the store reader and the tar writer.
const CHUNKS: usize = 16;

/// The default zstd level: fast, and zips (most of the bytes) do not compress anyway.
pub const DEFAULT_LEVEL: i32 = 3;

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Module path patterns (GOPRIVATE syntax, each may be comma-separated): their artifacts,
    /// lists and `@latest`.
    pub modules: Vec<String>,
    /// go.sum files (name, parsed): the module versions they list — a `/go.mod` line its `.mod`,
    /// any other line its `.info`, `.mod`, `.zip` and `.ziphash` — and their modules' lists and
    /// `@latest`.
    pub go_sums: Vec<(String, GoSum)>,
    /// Include checksum-database objects: all of them for a full export; for a selection the
    /// tree heads, all tiles and the lookups of the selected versions.
    pub sumdb: bool,
    /// The store's description for the manifest (`fs:/var/lib/gomodproxy`).
    pub source: String,
    /// zstd level (1–19).
    pub level: i32,
    /// The bundle this one follows (`export --since`): only objects its [`Inventory`] lacks
    /// are exported. See [`read_since`].
    pub since: Option<SideManifest>,
    /// The file name for the manifest ([`export_to_path`] sets it).
    pub name: String,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            modules: Vec::new(),
            go_sums: Vec::new(),
            sumdb: true,
            source: String::new(),
            level: DEFAULT_LEVEL,
            since: None,
            name: String::new(),
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Default)]
pub struct ExportReport {
    /// The manifest written first.
    pub manifest: Option<Manifest>,
    /// Objects written (after the manifest).
    pub objects: u64,
    /// Their bytes, uncompressed.
    pub bytes: u64,
    /// Bytes of the bundle file (compressed).
    pub written: u64,
    /// Objects listed but deleted from the store before they were read (not in the bundle).
    pub vanished: Vec<String>,
    /// Module versions a go.sum asks for whose objects the store does not have, and tree heads
    /// clients may remember that the bundle's tree cannot be proven to extend with the
    /// store's tiles.
    pub missing: Vec<Problem>,
    /// What the far side holds once this bundle is imported (written beside the bundle).
    pub inventory: Inventory,
    /// Objects left out because the bundle it follows has them (`--since`).
    pub unchanged: u64,
    /// How long it took.
    pub elapsed: std::time::Duration,
}

/// Which module versions a selection names, and how much of each.
#[derive(Debug, Default)]
struct Filter {
    patterns: Vec<String>,
    /// (module, version) → whether the zip is wanted too (a line that is not `/go.mod`).
    versions: HashMap<(ModulePath, Version), bool>,
    modules: HashSet<ModulePath>,
}

impl Filter {
    fn new(options: &ExportOptions) -> Result<Option<Filter>, BundleError> {
        if options.modules.is_empty() && options.go_sums.is_empty() {
            return Ok(None);
        }
        let mut filter = Filter {
            patterns: options.modules.clone(),
            ..Filter::default()
        };
        for (name, sum) in &options.go_sums {
            for entry in &sum.entries {
                let (m, v) = entry
                    .module()
                    .map_err(|e| BundleError::Options(format!("{name}:{}: {e}", entry.line)))?;
                filter.modules.insert(m.clone());
                let zip = filter.versions.entry((m, v)).or_insert(false);
                *zip |= !entry.go_mod;
            }
        }
        Ok(Some(filter))
    }

    fn matches(&self, module: &ModulePath) -> bool {
        self.patterns
            .iter()
            .any(|p| gomod::glob::match_prefix_patterns(p, module.as_str()))
    }

    fn wants(&self, key: &Key) -> bool {
        match key {
            Key::Artifact {
                module,
                version,
                kind,
            } => {
                self.matches(module)
                    || self
                        .versions
                        .get(&(module.clone(), version.clone()))
                        .is_some_and(|zip| *zip || *kind == ArtifactKind::Mod)
            }
            Key::List { module } | Key::Latest { module } => {
                self.matches(module) || self.modules.contains(module)
            }
            _ => false,
        }
    }

    fn describe(&self, options: &ExportOptions) -> String {
        let mut parts = Vec::new();
        if !self.patterns.is_empty() {
            parts.push(format!("modules {}", self.patterns.join(",")));
        }
        for (name, _) in &options.go_sums {
            parts.push(format!("go.sum {name}"));
        }
        parts.join("; ")
    }
}

/// Lists and selects the objects to export, sorted in bundle order; also reports go.sum
/// entries the store lacks.
async fn select(
    all: &[ListEntry],
    options: &ExportOptions,
    filter: Option<&Filter>,
) -> Result<Selection, BundleError> {
    let all = all.to_vec();
    let mut selected = Vec::new();
    let mut sumdb = Vec::new();
    let mut exported: HashSet<(ModulePath, Version)> = HashSet::new();
    let mut present: HashSet<Key> = HashSet::new();
    for entry in all {
        if let Key::Bundle { .. } = entry.key {
            // The importing store's own records; never carried.
            continue;
        }
        if let Key::Sumdb { .. } = entry.key {
            if options.sumdb {
                sumdb.push(entry);
            }
            continue;
        }
        let wanted = filter.is_none_or(|f| f.wants(&entry.key));
        if !wanted {
            continue;
        }
        if let Key::Artifact {
            module, version, ..
        } = &entry.key
        {
            exported.insert((module.clone(), version.clone()));
        }
        if filter.is_some_and(|f| !f.versions.is_empty()) {
            present.insert(entry.key.clone());
        }
        selected.push(entry);
    }
    for entry in sumdb {
        let keep = match (&entry.key, filter) {
            (_, None) => true,
            (
                Key::Sumdb {
                    path: SumdbPath::Lookup { module, version },
                    ..
                },
                Some(f),
            ) => {
                let mv = (module.clone(), version.clone());
                exported.contains(&mv) || f.versions.contains_key(&mv)
            }
            (_, Some(_)) => true,
        };
        if keep {
            selected.push(entry);
        }
    }
    let mut missing = Vec::new();
    if let Some(f) = filter {
        let mut wanted: Vec<_> = f.versions.iter().collect();
        wanted.sort_by(|a, b| {
            a.0.0
                .as_str()
                .cmp(b.0.0.as_str())
                .then(a.0.1.as_str().cmp(b.0.1.as_str()))
        });
        for ((m, v), zip) in wanted {
            let mut kinds = vec![ArtifactKind::Mod];
            if *zip {
                kinds.extend([ArtifactKind::Info, ArtifactKind::Zip, ArtifactKind::ZipHash]);
            }
            for kind in kinds {
                let key = Key::artifact(m, v, kind);
                if !present.contains(&key) {
                    missing.push(Problem {
                        path: key.path(),
                        reason: "named by a go.sum but not in the store".to_string(),
                    });
                }
            }
        }
    }
    selected.sort_by_cached_key(|e| order_key(&e.key.path()));
    Ok(Selection {
        entries: selected,
        missing,
    })
}

/// The selected objects, in bundle order, and the go.sum entries the store lacks.
struct Selection {
    entries: Vec<ListEntry>,
    missing: Vec<Problem>,
}

/// The hex SHA-256 of each mutable object among `entries` (read whole: they are small).
async fn mutable_hashes(
    storage: &dyn Storage,
    entries: &[ListEntry],
) -> Result<HashMap<String, String>, BundleError> {
    let mut out = HashMap::new();
    for e in entries.iter().filter(|e| e.key.is_mutable()) {
        match storage.get_bytes(&e.key, crate::MAX_SMALL).await {
            Ok((_, body)) => {
                out.insert(e.key.path(), hex::encode(Sha256::digest(&body)));
            }
            Err(err) if err.is_not_found() => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(out)
}

/// The inventory after this bundle: the previous one's, plus what is exported now.
fn next_inventory(
    id: &str,
    previous: Option<&Inventory>,
    entries: &[ListEntry],
    hashes: &HashMap<String, String>,
) -> Inventory {
    let mut immutable: BTreeSet<String> = previous
        .map(|p| p.immutable.iter().cloned().collect())
        .unwrap_or_default();
    let mut mutable = previous.map(|p| p.mutable.clone()).unwrap_or_default();
    for e in entries {
        let path = e.key.path();
        match hashes.get(&path) {
            Some(h) => {
                mutable.insert(path, h.clone());
            }
            None if !e.key.is_mutable() => {
                immutable.insert(path);
            }
            // A mutable object deleted since the listing: not sent.
            None => {}
        }
    }
    Inventory {
        format: INVENTORY_FORMAT.to_string(),
        bundle: id.to_string(),
        immutable: immutable.into_iter().collect(),
        mutable,
    }
}

/// A fresh bundle id: 32 hex digits of a hash of the time, the process and what is exported.
fn new_id(created: &str, options: &ExportOptions, objects: usize) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut h = Sha256::new();
    h.update(format!(
        "{created}\n{nanos}\n{}\n{}\n{}\n{objects}\n",
        std::process::id(),
        options.source,
        options.name
    ));
    if let Some(since) = &options.since {
        h.update(since.manifest.id.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// The tree head each database's store serves, unverified (export has no keys: the import
/// checks them).
async fn store_trees(
    storage: &dyn Storage,
    entries: &[ListEntry],
) -> Result<BTreeMap<SumdbName, Tree>, BundleError> {
    let mut out = BTreeMap::new();
    for e in entries {
        if let Key::Sumdb {
            db,
            path: SumdbPath::Latest,
        } = &e.key
        {
            match storage.get_bytes(&e.key, crate::MAX_SMALL).await {
                Ok((_, note)) => {
                    if let Ok(tree) = Tree::parse(&String::from_utf8_lossy(&note)) {
                        out.insert(db.clone(), tree);
                    }
                }
                Err(err) if err.is_not_found() => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
    Ok(out)
}

/// Continuity: every tree head the store has recorded, and the one the previous bundle
/// carried, must be provable a prefix of the tree the bundle carries with the store's tiles —
/// else a client that remembers it fails against the far side. Returns the problems.
async fn check_continuity(
    storage: &dyn Storage,
    all: &[ListEntry],
    trees: &BTreeMap<SumdbName, Tree>,
    since: Option<&SideManifest>,
) -> Result<Vec<Problem>, BundleError> {
    let mut problems = Vec::new();
    for (db, anchor) in trees {
        let mut older: Vec<(String, Tree)> = Vec::new();
        for e in all {
            if let Key::Sumdb {
                db: d,
                path: SumdbPath::Tree(_),
            } = &e.key
                && d == db
            {
                match storage.get_bytes(&e.key, crate::MAX_SMALL).await {
                    Ok((_, note)) => match Tree::parse(&String::from_utf8_lossy(&note)) {
                        Ok(t) => older.push((e.key.path(), t)),
                        Err(err) => problems.push(Problem::new(e.key.path(), err.to_string())),
                    },
                    Err(err) if err.is_not_found() => {}
                    Err(err) => return Err(err.into()),
                }
            }
        }
        if let Some(t) = since
            .and_then(|s| s.manifest.trees.get(db.as_str()))
            .and_then(tree_ref)
        {
            older.push((format!("sumdb/{db}/latest of the bundle it follows"), t));
        }
        let mut tiles = Tiles::new(storage, db, None);
        for (what, tree) in older {
            let verdict = if tree.n > anchor.n {
                Verdict::Refused(format!(
                    "a tree of {} records, newer than the bundle's tree of {}",
                    tree.n, anchor.n
                ))
            } else if tree.n == anchor.n {
                if tree.hash == anchor.hash {
                    Verdict::Accepted
                } else {
                    Verdict::Refused(format!(
                        "SECURITY: another tree of {} records than the bundle's",
                        tree.n
                    ))
                }
            } else {
                tiles.prove_prefix(*anchor, tree).await?
            };
            if let Verdict::Refused(why) = verdict {
                problems.push(Problem::new(
                    what,
                    format!(
                        "the bundle's tree of {} records cannot be proven to extend it: {why}; run gomodproxy prewarm (its seal stores the proof) before exporting",
                        anchor.n
                    ),
                ));
            }
        }
    }
    Ok(problems)
}

/// A manifest's tree reference as a tree.
fn tree_ref(t: &TreeRef) -> Option<Tree> {
    use base64::Engine;
    let hash = base64::engine::general_purpose::STANDARD
        .decode(&t.hash)
        .ok()
        .and_then(|h| gomod::sumdb::tlog::Hash::from_slice(&h))?;
    Some(Tree { n: t.size, hash })
}

/// RFC 3339 UTC, seconds.
fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Writes a bundle of the store's selected objects to `out`; returns `out` (flushed) and the
/// report. On an error the output is incomplete and must be discarded ([`export_to_path`] does).
pub async fn export<W: Write + Send + 'static>(
    storage: &dyn Storage,
    options: &ExportOptions,
    out: W,
    progress: &dyn Progress<str>,
) -> Result<(W, ExportReport), BundleError> {
    let started = Instant::now();
    let filter = Filter::new(options)?;
    progress.phase("listing the store", None, None);
    let mut all = Vec::new();
    let mut listing = storage.list(&ListPrefix::All);
    while let Some(entry) = listing.next().await {
        all.push(entry?);
    }
    let Selection {
        entries: mut selected,
        mut missing,
    } = select(&all, options, filter.as_ref()).await?;
    let hashes = mutable_hashes(storage, &selected).await?;
    let trees = store_trees(storage, &selected).await?;
    if options.sumdb {
        missing.extend(check_continuity(storage, &all, &trees, options.since.as_ref()).await?);
    }
    drop(all);
    let before = selected.len();
    if let Some(since) = &options.since {
        selected.retain(|e| {
            let path = e.key.path();
            !since
                .inventory
                .has(&path, hashes.get(&path).map(String::as_str))
        });
    }
    let unchanged = (before - selected.len()) as u64;
    for problem in &missing {
        progress.problem(problem);
    }

    let created = now_rfc3339();
    let id = new_id(&created, options, selected.len());
    let inventory = next_inventory(
        &id,
        options.since.as_ref().map(|s| &s.inventory),
        &selected,
        &hashes,
    );
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for e in &selected {
        *counts.entry(kind_name(&e.key).to_string()).or_default() += 1;
    }
    let manifest = Manifest {
        format: FORMAT_NAME.to_string(),
        version: FORMAT_VERSION,
        created,
        source: options.source.clone(),
        selection: filter
            .as_ref()
            .map_or_else(|| "everything".to_string(), |f| f.describe(options)),
        sumdb: options.sumdb,
        objects: selected.len() as u64,
        bytes: selected.iter().map(|e| e.meta.size).sum(),
        counts,
        id,
        name: options.name.clone(),
        follows: options.since.as_ref().map(|s| Follows {
            id: s.manifest.id.clone(),
            name: s.manifest.name.clone(),
            created: s.manifest.created.clone(),
        }),
        trees: trees
            .iter()
            .map(|(db, t)| {
                (
                    db.to_string(),
                    TreeRef {
                        size: t.n,
                        hash: t.hash.to_string(),
                    },
                )
            })
            .collect(),
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BundleError::Internal(format!("manifest: {e}")))?;
    let inventory_json = serde_json::to_vec(&inventory)
        .map_err(|e| BundleError::Internal(format!("inventory: {e}")))?;

    let (tx, rx) = mpsc::channel::<Msg>(CHUNKS);
    let level = options.level;
    let writer = tokio::task::spawn_blocking(move || {
        write_bundle(
            out,
            level,
            &[
                (MANIFEST_NAME, &manifest_json),
                (INVENTORY_NAME, &inventory_json),
            ],
            rx,
        )
    });

    progress.phase("exporting", Some(manifest.objects), Some(manifest.bytes));
    let mut report = ExportReport {
        missing,
        unchanged,
        ..ExportReport::default()
    };
    let produced = produce(storage, &selected, &tx, progress, &mut report).await;
    drop(tx);
    let written = writer
        .await
        .map_err(|e| BundleError::Internal(format!("bundle writer: {e}")))?;
    // The writer's error explains a producer that found the channel closed.
    let (out, written) = written.map_err(|e| BundleError::io("writing the bundle", e))?;
    produced?;
    report.written = written;
    report.manifest = Some(manifest);
    report.inventory = inventory;
    report.elapsed = started.elapsed();
    Ok((out, report))
}

async fn produce(
    storage: &dyn Storage,
    selected: &[ListEntry],
    tx: &mpsc::Sender<Msg>,
    progress: &dyn Progress<str>,
    report: &mut ExportReport,
) -> Result<(), BundleError> {
    // The writer has stopped (its error is reported instead).
    let closed = || BundleError::Internal("the bundle writer stopped".to_string());
    for entry in selected {
        let path = entry.key.path();
        let got = match storage.get(&entry.key).await {
            Ok(g) => g,
            Err(e) if e.is_not_found() => {
                report.vanished.push(path);
                continue;
            }
            Err(e) => {
                let _ = tx.send(Msg::Abort(e.to_string())).await;
                return Err(e.into());
            }
        };
        let size = got.meta.size;
        let mtime = got
            .meta
            .modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        tx.send(Msg::Entry {
            path: path.clone(),
            size,
            mtime,
        })
        .await
        .map_err(|_| closed())?;
        let mut body = got.body;
        let mut sent = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let why = format!("reading {path} from the store: {e}");
                    let _ = tx.send(Msg::Abort(why.clone())).await;
                    return Err(BundleError::io(why, e));
                }
            };
            sent += chunk.len() as u64;
            if sent > size {
                break;
            }
            tx.send(Msg::Chunk(chunk)).await.map_err(|_| closed())?;
        }
        if sent != size {
            let why = format!("the store announced {size} bytes for {path} but sent {sent}");
            let _ = tx.send(Msg::Abort(why.clone())).await;
            return Err(BundleError::Internal(why));
        }
        report.objects += 1;
        report.bytes += size;
        progress.step(&path, size);
    }
    Ok(())
}

/// From the store reader to the tar writer.
enum Msg {
    /// The next entry's header; exactly `size` bytes of chunks follow.
    Entry {
        path: String,
        size: u64,
        mtime: u64,
    },
    Chunk(Bytes),
    /// The reader failed: the bundle is abandoned.
    Abort(String),
}

/// Counts the bytes written through it.
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads one entry's body from the channel: exactly `remaining` bytes.
struct ChannelReader<'a> {
    rx: &'a mut mpsc::Receiver<Msg>,
    remaining: u64,
    buf: Bytes,
}

impl Read for ChannelReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.buf.is_empty() {
            if self.remaining == 0 {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Msg::Chunk(c)) => {
                    if c.len() as u64 > self.remaining {
                        return Err(io::Error::other("an object ran past its announced size"));
                    }
                    self.remaining -= c.len() as u64;
                    self.buf = c;
                }
                Some(Msg::Abort(why)) => return Err(io::Error::other(why)),
                Some(Msg::Entry { .. }) | None => {
                    return Err(io::Error::other(
                        "an object ended before its announced size",
                    ));
                }
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

fn header(size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(mtime);
    h
}

/// The blocking side: tar + zstd into `out`; returns `out` and the compressed size.
fn write_bundle<W: Write>(
    out: W,
    level: i32,
    first: &[(&str, &[u8])],
    mut rx: mpsc::Receiver<Msg>,
) -> io::Result<(W, u64)> {
    let counting = Counting {
        inner: io::BufWriter::with_capacity(1 << 20, out),
        count: 0,
    };
    let mut encoder = zstd::stream::write::Encoder::new(counting, level)?;
    encoder.include_checksum(true)?;
    let mut tar = tar::Builder::new(encoder);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for (name, body) in first {
        tar.append_data(&mut header(body.len() as u64, now), name, *body)?;
    }
    while let Some(msg) = rx.blocking_recv() {
        match msg {
            Msg::Entry { path, size, mtime } => {
                let reader = ChannelReader {
                    rx: &mut rx,
                    remaining: size,
                    buf: Bytes::new(),
                };
                tar.append_data(&mut header(size, mtime), &path, reader)?;
            }
            Msg::Abort(why) => return Err(io::Error::other(why)),
            Msg::Chunk(_) => return Err(io::Error::other("a chunk outside of an object")),
        }
    }
    tar.finish()?;
    let encoder = tar.into_inner()?;
    let mut counting = encoder.finish()?;
    counting.flush()?;
    let count = counting.count;
    let out = counting
        .inner
        .into_inner()
        .map_err(|e| io::Error::other(format!("flushing the bundle: {}", e.error())))?;
    Ok((out, count))
}

/// Exports into the file `path`, atomically: the bundle is written to a temporary file beside
/// it, synced, and renamed into place only when complete, so a failed export never leaves a
/// truncated bundle under that name. Then the manifest and the inventory are written beside
/// it, to [`side_manifest_path`], the same way: what the next `export --since` reads.
pub async fn export_to_path(
    storage: &dyn Storage,
    options: &ExportOptions,
    path: &Path,
    progress: &dyn Progress<str>,
) -> Result<ExportReport, BundleError> {
    let mut options = options.clone();
    options.name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let file = atomic_file(path)?;
    let handle = file
        .as_file()
        .try_clone()
        .map_err(|e| BundleError::io("cannot duplicate a file handle", e))?;
    let (handle, report) = export(storage, &options, handle, progress).await?;
    let side = SideManifest {
        manifest: report
            .manifest
            .clone()
            .ok_or_else(|| BundleError::Internal("no manifest".to_string()))?,
        inventory: report.inventory.clone(),
    };
    let side_json = serde_json::to_vec_pretty(&side)
        .map_err(|e| BundleError::Internal(format!("manifest: {e}")))?;
    let (target, side_path) = (path.to_path_buf(), side_manifest_path(path));
    tokio::task::spawn_blocking(move || -> Result<(), BundleError> {
        handle
            .sync_all()
            .map_err(|e| BundleError::io(format!("syncing {}", target.display()), e))?;
        file.persist(&target)
            .map_err(|e| BundleError::io(format!("cannot create {}", target.display()), e.error))?;
        let mut side = atomic_file(&side_path)?;
        side.write_all(&side_json)
            .and_then(|()| side.as_file().sync_all())
            .map_err(|e| BundleError::io(format!("writing {}", side_path.display()), e))?;
        side.persist(&side_path).map_err(|e| {
            BundleError::io(format!("cannot create {}", side_path.display()), e.error)
        })?;
        Ok(())
    })
    .await
    .map_err(|e| BundleError::Internal(format!("finishing the bundle: {e}")))??;
    Ok(report)
}

/// A temporary file beside `path`, to be persisted under it.
fn atomic_file(path: &Path) -> Result<tempfile::NamedTempFile, BundleError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    tempfile::Builder::new()
        .prefix(".gomodproxy-export-")
        .tempfile_in(&dir)
        .map_err(|e| BundleError::io(format!("cannot create a file in {}", dir.display()), e))
}

/// Where [`export_to_path`] writes the manifest beside a bundle: `<bundle>.manifest.json`.
pub fn side_manifest_path(bundle: &Path) -> std::path::PathBuf {
    let mut name = bundle.as_os_str().to_os_string();
    name.push(".manifest.json");
    std::path::PathBuf::from(name)
}

/// Reads what `export --since` needs from an earlier bundle: the bundle file itself (its first
/// two entries), or the manifest written beside it. A bundle of format 1 has no inventory and
/// cannot be followed.
pub fn read_since(path: &Path) -> Result<SideManifest, BundleError> {
    let bad = |reason: String| BundleError::BadBundle {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = std::fs::File::open(path)
        .map_err(|e| BundleError::io(format!("cannot open {}", path.display()), e))?;
    let mut magic = [0u8; 4];
    let n = file
        .read(&mut magic)
        .map_err(|e| BundleError::io(format!("reading {}", path.display()), e))?;
    drop(file);
    let side: SideManifest = if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        crate::source::read_head(path)?
    } else {
        let text = std::fs::read(path)
            .map_err(|e| BundleError::io(format!("reading {}", path.display()), e))?;
        serde_json::from_slice(&text).map_err(|e| {
            bad(format!(
                "neither a bundle nor the manifest export writes beside one: {e}"
            ))
        })?
    };
    if side.manifest.id.is_empty() || side.inventory.format != INVENTORY_FORMAT {
        return Err(bad(
            "made by an older gomodproxy (bundle format 1, without an inventory): export a full bundle once, then follow that one"
                .to_string(),
        ));
    }
    Ok(side)
}
