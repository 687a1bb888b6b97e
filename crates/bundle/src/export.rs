//! `export`: the store, or a selection of it, into one bundle.
//!
//! The store is listed first (keys and sizes only), the selection sorted into bundle order,
//! and then every object is streamed from the store into the tar stream: an async producer reads
//! the object bodies and a blocking writer thread tars and compresses them, with a bounded
//! channel of chunks between the two, so no body is ever held whole in memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use gomod::gosum::GoSum;
use gomod::sumdb::SumdbPath;
use gomod::{ModulePath, Version};
use gomodproxy_storage::{ArtifactKind, Key, ListEntry, ListPrefix, Storage};
use tokio::sync::mpsc;

use crate::error::BundleError;
use crate::manifest::{FORMAT_NAME, FORMAT_VERSION, MANIFEST_NAME, Manifest, kind_name};
use crate::order::order_key;
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
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            modules: Vec::new(),
            go_sums: Vec::new(),
            sumdb: true,
            source: String::new(),
            level: DEFAULT_LEVEL,
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
    /// Module versions a go.sum asks for whose objects the store does not have.
    pub missing: Vec<Problem>,
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
    storage: &dyn Storage,
    options: &ExportOptions,
    filter: Option<&Filter>,
) -> Result<(Vec<ListEntry>, Vec<Problem>), BundleError> {
    let mut all = Vec::new();
    let mut listing = storage.list(&ListPrefix::All);
    while let Some(entry) = listing.next().await {
        all.push(entry?);
    }
    let mut selected = Vec::new();
    let mut sumdb = Vec::new();
    let mut exported: HashSet<(ModulePath, Version)> = HashSet::new();
    let mut present: HashSet<Key> = HashSet::new();
    for entry in all {
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
    Ok((selected, missing))
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
    let (selected, missing) = select(storage, options, filter.as_ref()).await?;
    for problem in &missing {
        progress.problem(problem);
    }

    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for e in &selected {
        *counts.entry(kind_name(&e.key).to_string()).or_default() += 1;
    }
    let manifest = Manifest {
        format: FORMAT_NAME.to_string(),
        version: FORMAT_VERSION,
        created: now_rfc3339(),
        source: options.source.clone(),
        selection: filter
            .as_ref()
            .map_or_else(|| "everything".to_string(), |f| f.describe(options)),
        sumdb: options.sumdb,
        objects: selected.len() as u64,
        bytes: selected.iter().map(|e| e.meta.size).sum(),
        counts,
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BundleError::Internal(format!("manifest: {e}")))?;

    let (tx, rx) = mpsc::channel::<Msg>(CHUNKS);
    let level = options.level;
    let writer = tokio::task::spawn_blocking(move || write_bundle(out, level, &manifest_json, rx));

    progress.phase("exporting", Some(manifest.objects), Some(manifest.bytes));
    let mut report = ExportReport {
        missing,
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
    manifest: &[u8],
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
    tar.append_data(
        &mut header(manifest.len() as u64, now),
        MANIFEST_NAME,
        manifest,
    )?;
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
/// truncated bundle under that name.
pub async fn export_to_path(
    storage: &dyn Storage,
    options: &ExportOptions,
    path: &Path,
    progress: &dyn Progress<str>,
) -> Result<ExportReport, BundleError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".gomodproxy-export-")
        .tempfile_in(&dir)
        .map_err(|e| BundleError::io(format!("cannot create a file in {}", dir.display()), e))?;
    let file = tmp
        .as_file()
        .try_clone()
        .map_err(|e| BundleError::io("cannot duplicate a file handle", e))?;
    let (file, report) = export(storage, options, file, progress).await?;
    let target = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<(), BundleError> {
        file.sync_all()
            .map_err(|e| BundleError::io(format!("syncing {}", target.display()), e))?;
        tmp.persist(&target)
            .map_err(|e| BundleError::io(format!("cannot create {}", target.display()), e.error))?;
        Ok(())
    })
    .await
    .map_err(|e| BundleError::Internal(format!("finishing the bundle: {e}")))??;
    Ok(report)
}
