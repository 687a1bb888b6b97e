//! The sled backend of gomodproxy's [`Storage`] trait: an embedded, single-process store in one
//! directory, for a proxy that runs as one instance and wants no external service.
//!
//! [`SledStorage::open`] takes [`SledOptions`] (directory, page-cache bound, background flush
//! interval). Keys are opaque: an object lives under its [`Key::path`], listings are string-prefix
//! scans over [`ListPrefix::path_prefix`], and keys are rebuilt with [`Key::from_path`], so new key
//! kinds (checksum-database tiles under `sumdb/…`) need no change here.
//!
//! # Layout
//! ```text
//! <path>/sled/     the sled database
//! <path>/bodies/   one file per body larger than INLINE_MAX bytes, named by its generation
//! ```
//! The database has two trees, plus the default tree for a format marker and check probes:
//!
//! - `objects`: `Key::path()` → *manifest*: format byte `1`, storage byte (`0` inline, `1`
//!   file), body size (u64), store time (u64 seconds + u32 nanoseconds since the Unix epoch),
//!   *generation* (u64, that of the body file; 0 when inline), integers big-endian, then an
//!   inline body. This tree is also the listing index.
//! - `unreferenced`: generation (u64 BE) → state byte (`0` save in progress, `1` replaced or
//!   deleted) ‖ key path: body files that no manifest refers to and that must be removed.
//!
//! Body files are named by generation (16 hex digits), a number from sled's crash-safe
//! `generate_id`, so no two saves ever share a file.
//!
//! # Why large bodies are files, not sled values
//! A first version kept bodies in sled as 64 KiB chunks. It could not stream a 200 MiB object
//! within 100 MiB of resident memory, at any chunk size (4–64 KiB) or segment size tried: sled
//! 0.34 kept every written and every read chunk in memory. Two things in its page cache cause
//! this. A page larger than a quarter of a segment (128 KiB by default) is written as a blob and
//! counted in the cache at the size of its log pointer, a few bytes; and the cache (256 shards)
//! only processes a shard's accesses in batches of 64, so the few hundred leaf pages of one large
//! body are never evicted, whatever `cache_capacity` says. Only bodies that are not in sled's page
//! cache stream in bounded memory, so sled holds the manifests (small values, which its cache
//! does bound) and bodies up to [`INLINE_MAX`] bytes (`.info`, `.ziphash`, `@latest`, short
//! lists), and larger bodies are files, read and written in 64–256 KiB pieces.
//!
//! # Atomicity and durability
//! A body up to [`INLINE_MAX`] bytes is collected in memory and stored with its manifest in one
//! transaction. A larger one first gets a generation, recorded in `unreferenced` (state 0) and
//! flushed, so the record is on disk before the file exists; the payload then streams into the
//! file, which is fsynced, and the directory is fsynced. One small multi-tree transaction makes
//! it visible: insert the manifest, drop its generation from `unreferenced`, and record the
//! replaced body file's generation there (state 1). sled is then flushed (fsync), so a completed
//! `put` survives a crash, and only after that flush is the replaced body file removed (removed
//! before it, a crash could bring back the old manifest without its file). A reader therefore
//! sees the previous manifest or the new one, and a manifest only names a body that is complete
//! on disk. A payload that fails or has the wrong length, a dropped `put` future and a failed
//! commit leave the manifest untouched and remove the new file. `delete` is the same
//! transaction without a new manifest, and the same flush before the file goes.
//!
//! # Crashes
//! A crash can leave the file of a save in progress, or a replaced body file whose removal had
//! not finished. Both are recorded in `unreferenced`, durably before the file could exist, and
//! [`SledStorage::open`] removes every such file before serving. Nothing of a save that had not
//! completed is ever visible. [`SledStorage::audit`] checks the whole store for unreferenced or
//! missing body files. If sled itself cannot recover its log (damaged recoveries after abrupt
//! kills are reported against sled 0.34: issues 1527, 1533), `open` fails with an error naming
//! the store; it never starts over empty on its own. The tests kill a saving process with
//! SIGKILL and check what the next `open` finds.
//!
//! # Concurrent readers
//! `get` looks the manifest up and opens the body file while holding a shared lock; removing a
//! replaced or deleted body file takes it exclusively. So a reader either opened the old file
//! before it was unlinked, and (on Unix) streams the whole old body from the open descriptor, or
//! sees the new manifest. Bodies are checked against their size: a damaged store yields an error,
//! never a short body.
//!
//! # Blocking
//! Every sled call and every file operation runs off the async runtime (`spawn_blocking`, tokio's
//! file I/O), except [`SledStorage::open`], which is synchronous (like the filesystem backend's)
//! and meant for startup. The database is closed when the store and every clone of it are
//! dropped.

#![deny(missing_docs)]

use std::fmt;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt};
use gomodproxy_storage::file_body::file_body;
use gomodproxy_storage::{
    ByteStream, GetResult, Key, ListEntry, ListPrefix, ObjectMeta, PutPayload, Result, Storage,
    StorageError,
};
use sled::transaction::{TransactionError, Transactional};
use sled::{IVec, Tree};
use tokio::io::{AsyncWriteExt, BufWriter};

/// Bodies up to this many bytes are stored in the database, inside their manifest; larger ones
/// are files. Small enough that a sled leaf page (up to 17 entries) stays well below sled's
/// blob threshold, so its cache accounts for it.
pub const INLINE_MAX: usize = 512;

/// Directory of the sled database under [`SledOptions::path`].
pub const SLED_DIR: &str = "sled";

/// Directory of body files under [`SledOptions::path`].
pub const BODIES_DIR: &str = "bodies";

/// Chunk size of inline body streams (body files stream through
/// [`gomodproxy_storage::file_body`]).
const READ_CHUNK: u64 = 64 * 1024;

/// Write buffer in front of a body file, so small payload chunks do not each become a write.
const WRITE_BUFFER: usize = 256 * 1024;

/// Listing entries fetched per blocking call.
const LIST_PAGE: usize = 256;

const OBJECTS_TREE: &str = "objects";
const UNREFERENCED_TREE: &str = "unreferenced";

/// Default-tree key of the on-disk format marker.
const FORMAT_KEY: &[u8] = b"gomodproxy/format";
/// The on-disk format this crate reads and writes.
const FORMAT: &[u8] = b"gomodproxy-storage-sled 1";

const MANIFEST_V1: u8 = 1;
const STORED_INLINE: u8 = 0;
const STORED_FILE: u8 = 1;
const MANIFEST_HEADER: usize = 1 + 1 + 8 + 8 + 4 + 8;

/// `unreferenced` states.
const STATE_SAVING: u8 = 0;
const STATE_RETIRED: u8 = 1;

/// What [`Storage::check`] writes and reads back.
const PROBE: &[u8] = b"gomodproxy storage check\n";

const MIB: u64 = 1024 * 1024;

/// How to open a [`SledStorage`]. Build with struct update syntax:
/// `SledOptions { path: dir.into(), ..SledOptions::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SledOptions {
    /// Directory of the store, created if missing: the database in [`SLED_DIR`], body files in
    /// [`BODIES_DIR`]. Default `./data/sled`.
    pub path: PathBuf,
    /// Upper bound of sled's page cache, in bytes. Default 64 MiB (sled's own default is
    /// 1 GiB). The cache holds manifests and inline bodies only. sled's accounting is lazy (see
    /// the crate docs): allow some more resident memory than this. Must be non-zero.
    pub cache_capacity_bytes: u64,
    /// Interval of sled's background log flush (write + fsync), in milliseconds; `None` turns it
    /// off. Saves and deletes flush explicitly before they return either way, so this only
    /// bounds how long the removal of cleanup records stays unsynced. Default `Some(500)`
    /// (sled's default).
    pub flush_every_ms: Option<u64>,
    /// Compare a body file's size with the size its manifest recorded on every read, before
    /// the first byte is sent: a truncated or extended file is [`StorageError::Corrupt`]
    /// instead of a short answer. Default on.
    pub verify_size_on_read: bool,
}

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            path: PathBuf::from("./data/sled"),
            cache_capacity_bytes: 64 * MIB,
            flush_every_ms: Some(500),
            verify_size_on_read: true,
        }
    }
}

/// A failure of the store, with the operation and the object, file or database it concerns.
#[derive(Debug, thiserror::Error)]
enum SledError {
    #[error("{op} {what}: {source}")]
    Sled {
        op: &'static str,
        what: String,
        source: sled::Error,
    },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{what}: the store is damaged: {problem}")]
    Damaged { what: String, problem: String },
    /// A body file whose size is not the manifest's: reported as [`StorageError::Corrupt`].
    #[error("stored {key} is damaged: {problem}")]
    BodySize { key: String, problem: String },
    #[error("{op} {what}: {problem}")]
    Refused {
        op: &'static str,
        what: String,
        problem: String,
    },
}

impl From<SledError> for StorageError {
    fn from(e: SledError) -> Self {
        match e {
            SledError::BodySize { key, problem } => StorageError::Corrupt {
                key,
                reason: problem,
            },
            e => StorageError::backend("sled", e),
        }
    }
}

/// Attaches the operation and its object to sled results.
trait Context<T> {
    fn context(self, op: &'static str, what: &str) -> Result<T, SledError>;
}

impl<T> Context<T> for sled::Result<T> {
    fn context(self, op: &'static str, what: &str) -> Result<T, SledError> {
        self.map_err(|source| SledError::Sled {
            op,
            what: what.to_string(),
            source,
        })
    }
}

fn io_error(op: &'static str, path: &Path, source: io::Error) -> SledError {
    SledError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn damaged(what: &str, problem: impl Into<String>) -> SledError {
    SledError::Damaged {
        what: what.to_string(),
        problem: problem.into(),
    }
}

/// Runs blocking work off the async runtime.
async fn blocking<T, F>(op: &'static str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, SledError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(StorageError::from),
        Err(e) => Err(StorageError::backend(
            "sled",
            format!("{op}: blocking task failed: {e}"),
        )),
    }
}

fn sync_dir(dir: &Path) -> Result<(), SledError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("sync directory", dir, e))
}

/// Where a body is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// In the manifest, after its header.
    Inline,
    /// In the body file of this generation.
    File { generation: u64 },
}

/// What `objects` holds for one key (besides an inline body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Manifest {
    size: u64,
    modified: SystemTime,
    stored: Stored,
}

impl Manifest {
    /// The manifest value, with `inline` (empty unless stored inline) after the header.
    fn encode(&self, inline: &[u8]) -> Result<Vec<u8>, String> {
        let since = self
            .modified
            .duration_since(UNIX_EPOCH)
            .map_err(|_| format!("store time {:?} is before 1970", self.modified))?;
        let (stored, generation) = match self.stored {
            Stored::Inline => (STORED_INLINE, 0),
            Stored::File { generation } => (STORED_FILE, generation),
        };
        let mut out = Vec::with_capacity(MANIFEST_HEADER + inline.len());
        out.push(MANIFEST_V1);
        out.push(stored);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&since.as_secs().to_be_bytes());
        out.extend_from_slice(&since.subsec_nanos().to_be_bytes());
        out.extend_from_slice(&generation.to_be_bytes());
        out.extend_from_slice(inline);
        Ok(out)
    }

    /// Parses a manifest value, checking that an inline body has the recorded size and that a
    /// file manifest has none.
    fn decode(raw: &[u8]) -> Result<Manifest, String> {
        if raw.len() < MANIFEST_HEADER || raw[0] != MANIFEST_V1 {
            return Err(format!(
                "manifest of {} bytes, format {:?}: not a format-1 manifest",
                raw.len(),
                raw.first()
            ));
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let mut nanos = [0u8; 4];
        nanos.copy_from_slice(&raw[18..22]);
        let nanos = u32::from_be_bytes(nanos);
        if nanos >= 1_000_000_000 {
            return Err(format!("manifest store time with {nanos} ns"));
        }
        let modified = UNIX_EPOCH
            .checked_add(Duration::new(u64_at(10), nanos))
            .ok_or("manifest store time out of range")?;
        let size = u64_at(2);
        let inline = (raw.len() - MANIFEST_HEADER) as u64;
        let stored = match raw[1] {
            STORED_INLINE if inline == size => Stored::Inline,
            STORED_FILE if inline == 0 => Stored::File {
                generation: u64_at(22),
            },
            kind => {
                return Err(format!(
                    "manifest of storage kind {kind} for {size} bytes with {inline} inline bytes"
                ));
            }
        };
        Ok(Manifest {
            size,
            modified,
            stored,
        })
    }

    fn generation(&self) -> Option<u64> {
        match self.stored {
            Stored::Inline => None,
            Stored::File { generation } => Some(generation),
        }
    }

    fn meta(&self) -> ObjectMeta {
        ObjectMeta {
            size: self.size,
            modified: self.modified,
        }
    }
}

fn decode_manifest(raw: &[u8], path: &str) -> Result<Manifest, SledError> {
    Manifest::decode(raw).map_err(|problem| damaged(&format!("object {path}"), problem))
}

fn generation_key(generation: u64) -> [u8; 8] {
    generation.to_be_bytes()
}

fn unreferenced_record(state: u8, path: &str) -> Vec<u8> {
    let mut record = Vec::with_capacity(1 + path.len());
    record.push(state);
    record.extend_from_slice(path.as_bytes());
    record
}

/// The generation a body file name stands for, if it is one.
fn parse_body_name(name: &str) -> Option<u64> {
    if name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        u64::from_str_radix(name, 16).ok()
    } else {
        None
    }
}

/// A body as found by `get`.
enum Found {
    Inline(Bytes),
    File(std::fs::File),
}

struct Inner {
    root: PathBuf,
    bodies: PathBuf,
    db: sled::Db,
    objects: Tree,
    unreferenced: Tree,
    /// Held shared by `get` from looking a manifest up until its body file is open, and
    /// exclusively while a body file is unlinked, so no reader finds a manifest whose file is
    /// already gone.
    files: RwLock<()>,
    /// [`SledOptions::verify_size_on_read`].
    verify_size_on_read: bool,
}

impl Inner {
    fn db_name(&self) -> String {
        format!("sled store {}", self.root.display())
    }

    fn body_path(&self, generation: u64) -> PathBuf {
        self.bodies.join(format!("{generation:016x}"))
    }

    fn manifest(&self, path: &str) -> Result<Option<(Manifest, IVec)>, SledError> {
        match self.objects.get(path).context("read manifest of", path)? {
            Some(raw) => Ok(Some((decode_manifest(&raw, path)?, raw))),
            None => Ok(None),
        }
    }

    /// Looks `path` up and opens its body.
    fn lookup(&self, path: &str) -> Result<Option<(Manifest, Found)>, SledError> {
        let _files = self.files.read().unwrap_or_else(PoisonError::into_inner);
        let Some((manifest, raw)) = self.manifest(path)? else {
            return Ok(None);
        };
        let found = match manifest.stored {
            Stored::Inline => Found::Inline(Bytes::from_owner(raw).slice(MANIFEST_HEADER..)),
            Stored::File { generation } => {
                let file_path = self.body_path(generation);
                let file = std::fs::File::open(&file_path).map_err(|e| {
                    if e.kind() == io::ErrorKind::NotFound {
                        damaged(
                            &format!("object {path}"),
                            format!("its body file {} is missing", file_path.display()),
                        )
                    } else {
                        io_error("open body file", &file_path, e)
                    }
                })?;
                let len = file
                    .metadata()
                    .map_err(|e| io_error("stat body file", &file_path, e))?
                    .len();
                if self.verify_size_on_read && len != manifest.size {
                    tracing::error!(file = %file_path.display(), size = len, recorded = manifest.size, "a body file changed size after it was saved");
                    return Err(SledError::BodySize {
                        key: path.to_string(),
                        problem: format!(
                            "its body file has {len} bytes, but {} were stored (damaged on disk; run gomodproxy verify)",
                            manifest.size
                        ),
                    });
                }
                Found::File(file)
            }
        };
        Ok(Some((manifest, found)))
    }

    /// Makes `manifest` the object of `path`: one transaction inserts it and does the
    /// bookkeeping (the generation of a new body file, `saved`, leaves `unreferenced`; that of a
    /// replaced body file enters it), a flush makes it durable, and only then is the replaced
    /// body file removed: removed earlier, a crash could bring back the old manifest without
    /// its file.
    fn switch(&self, path: &str, manifest: &[u8], saved: Option<u64>) -> Result<(), SledError> {
        let replaced = (&self.objects, &self.unreferenced)
            .transaction(|(objects, unreferenced)| {
                let old = objects.insert(path.as_bytes(), manifest)?;
                if let Some(generation) = saved {
                    unreferenced.remove(&generation_key(generation))?;
                }
                retire_in_transaction(unreferenced, old.as_deref(), path)
            })
            .map_err(|e| transaction_error(e, "save", path))?;
        self.db.flush().context("flush the save of", path)?;
        if let Some(old) = replaced_generation(replaced, path) {
            self.purge_logged(old);
        }
        Ok(())
    }

    /// Removes the object of `path` like [`Inner::switch`] replaces one: one transaction, a
    /// flush, then the removal of its body file. A missing object is not an error.
    fn remove_object(&self, path: &str) -> Result<(), SledError> {
        let (removed, replaced) = (&self.objects, &self.unreferenced)
            .transaction(|(objects, unreferenced)| {
                let old = objects.remove(path.as_bytes())?;
                let replaced = retire_in_transaction(unreferenced, old.as_deref(), path)?;
                Ok((old.is_some(), replaced))
            })
            .map_err(|e| transaction_error(e, "delete", path))?;
        if removed {
            self.db.flush().context("flush the delete of", path)?;
        }
        if let Some(old) = replaced_generation(replaced, path) {
            self.purge_logged(old);
        }
        Ok(())
    }

    /// Whether the manifest of `path` names the body file `generation`; `None` if that cannot be
    /// read.
    fn manifest_names(&self, path: &str, generation: u64) -> Option<bool> {
        match self.manifest(path) {
            Ok(found) => Some(found.and_then(|(m, _)| m.generation()) == Some(generation)),
            Err(_) => None,
        }
    }

    fn lock_files(&self) -> RwLockWriteGuard<'_, ()> {
        self.files.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes a generation's body file (if present) durably, then its `unreferenced` record.
    /// Interrupted, it is finished by the next [`SledStorage::open`].
    fn purge(&self, generation: u64) -> Result<(), SledError> {
        let file = self.body_path(generation);
        let removed = {
            let _files = self.lock_files();
            match std::fs::remove_file(&file) {
                Ok(()) => true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(io_error("remove body file", &file, e)),
            }
        };
        if removed {
            // Else a crash could bring the file back after its record is gone: a leak.
            sync_dir(&self.bodies)?;
        }
        self.unreferenced
            .remove(generation_key(generation))
            .context("remove cleanup record of", &file.display().to_string())?;
        Ok(())
    }

    fn purge_logged(&self, generation: u64) {
        match self.purge(generation) {
            Ok(()) => tracing::debug!(generation, "removed an unreferenced body file"),
            Err(e) => tracing::warn!(
                generation,
                error = %e,
                "cannot remove an unreferenced body file now; the next open will"
            ),
        }
    }

    /// One full scan of the store; see [`SledStorage::audit`].
    fn audit(&self) -> Result<Audit, SledError> {
        let db = self.db_name();
        let mut audit = Audit::default();
        let mut referenced = std::collections::HashMap::new();
        for item in self.objects.iter() {
            let (key, value) = item.context("scan objects of", &db)?;
            let path = String::from_utf8_lossy(&key).into_owned();
            audit.objects += 1;
            match Manifest::decode(&value) {
                Ok(m) => {
                    audit.object_bytes += m.size;
                    match m.stored {
                        Stored::Inline => audit.inline_objects += 1,
                        Stored::File { generation } => {
                            referenced.insert(generation, (path, m.size));
                        }
                    }
                }
                Err(problem) => audit.damaged.push(format!("{path}: {problem}")),
            }
        }
        let entries =
            std::fs::read_dir(&self.bodies).map_err(|e| io_error("list", &self.bodies, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list", &self.bodies, e))?;
            let len = match entry.metadata() {
                Ok(md) => md.len(),
                // Removed since the listing (a concurrent cleanup).
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("stat", &entry.path(), e)),
            };
            audit.body_files += 1;
            audit.body_file_bytes += len;
            let name = entry.file_name();
            let generation = name.to_str().and_then(parse_body_name);
            match generation.and_then(|g| referenced.remove(&g)) {
                Some((path, size)) if size != len => audit.damaged.push(format!(
                    "{path}: body file {} has {len} bytes, expected {size}",
                    name.to_string_lossy()
                )),
                Some(_) => {}
                None => audit.unreferenced_files += 1,
            }
        }
        for (generation, (path, _)) in referenced {
            audit
                .damaged
                .push(format!("{path}: body file {generation:016x} is missing"));
        }
        audit.cleanup_records = self.unreferenced.len() as u64;
        audit.damaged.sort();
        Ok(audit)
    }
}

/// In a transaction that removed or replaced the manifest `old`: records its body file as
/// retired. Returns the file's generation, or why the old manifest could not be read.
fn retire_in_transaction(
    unreferenced: &sled::transaction::TransactionalTree,
    old: Option<&[u8]>,
    path: &str,
) -> sled::transaction::ConflictableTransactionResult<Option<Result<u64, String>>, SledError> {
    let Some(old) = old else { return Ok(None) };
    match Manifest::decode(old) {
        Ok(m) => match m.generation() {
            Some(generation) => {
                unreferenced.insert(
                    &generation_key(generation),
                    unreferenced_record(STATE_RETIRED, path),
                )?;
                Ok(Some(Ok(generation)))
            }
            None => Ok(None),
        },
        Err(problem) => Ok(Some(Err(problem))),
    }
}

/// Maps a transaction's failure; aborts carry a [`SledError`].
fn transaction_error(e: TransactionError<SledError>, op: &'static str, path: &str) -> SledError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(source) => SledError::Sled {
            op,
            what: path.to_string(),
            source,
        },
    }
}

/// The body file a transaction retired. A damaged old manifest is replaced or deleted all the
/// same (repairing the object); its body file, if any, cannot be found without it and is logged.
fn replaced_generation(outcome: Option<Result<u64, String>>, path: &str) -> Option<u64> {
    match outcome? {
        Ok(generation) => Some(generation),
        Err(problem) => {
            tracing::warn!(path, problem, "replaced a damaged manifest");
            None
        }
    }
}

/// A body file being written: its generation is recorded as unreferenced. Unless committed,
/// dropping it removes the file and the record (in the background when dropped in async code,
/// e.g. with a `put` future dropped midway).
struct Staging {
    inner: Arc<Inner>,
    generation: u64,
    path: String,
    file_path: PathBuf,
    finished: AtomicBool,
}

impl Staging {
    /// Allocates a generation, records it durably, then creates its file.
    fn begin(inner: Arc<Inner>, path: String) -> Result<(Staging, std::fs::File), SledError> {
        let generation = inner
            .db
            .generate_id()
            .context("allocate a generation for", &path)?;
        inner
            .unreferenced
            .insert(
                generation_key(generation),
                unreferenced_record(STATE_SAVING, &path),
            )
            .context("record the save of", &path)?;
        let file_path = inner.body_path(generation);
        let staging = Staging {
            inner,
            generation,
            path,
            file_path,
            finished: AtomicBool::new(false),
        };
        // The record must be on disk before the file can be, or a crash could leak the file.
        staging
            .inner
            .db
            .flush()
            .context("flush the save record of", &staging.path)?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging.file_path)
            .map_err(|e| io_error("create body file", &staging.file_path, e))?;
        Ok((staging, file))
    }

    /// Makes the complete, synced body file the object's body.
    fn commit(self, manifest: &Manifest) -> Result<(), SledError> {
        let encoded = manifest.encode(&[]).map_err(|problem| SledError::Refused {
            op: "save",
            what: self.path.clone(),
            problem,
        })?;
        // The file's directory entry must be durable before a manifest names it.
        sync_dir(&self.inner.bodies)?;
        // Marked first: if only the flush in `switch` fails, the manifest may already name the
        // file, which must then stay.
        self.finished.store(true, Ordering::SeqCst);
        let switched = self
            .inner
            .switch(&self.path, &encoded, Some(self.generation));
        if switched.is_err()
            && self.inner.manifest_names(&self.path, self.generation) == Some(false)
        {
            self.inner.purge_logged(self.generation);
        }
        switched
    }

    fn io_error(&self, op: &'static str, source: io::Error) -> StorageError {
        io_error(op, &self.file_path, source).into()
    }

    /// Removes the file of a save that failed, before the failure is reported.
    async fn abort(self) {
        self.finished.store(true, Ordering::SeqCst);
        let (inner, generation) = (self.inner.clone(), self.generation);
        if let Err(e) = tokio::task::spawn_blocking(move || inner.purge_logged(generation)).await {
            tracing::warn!(generation, error = %e, "cleanup of a failed save did not run; the next open will do it");
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.finished.load(Ordering::SeqCst) {
            return;
        }
        let (inner, generation) = (self.inner.clone(), self.generation);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(move || inner.purge_logged(generation));
            }
            Err(_) => inner.purge_logged(generation),
        }
    }
}

/// A save's body file and its writer.
struct Spill {
    staging: Staging,
    writer: BufWriter<tokio::fs::File>,
}

impl Spill {
    async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.writer
            .write_all(data)
            .await
            .map_err(|e| self.staging.io_error("write body file", e))
    }
}

/// What [`SledStorage::audit`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// Objects stored (manifests).
    pub objects: u64,
    /// Sum of their body sizes.
    pub object_bytes: u64,
    /// Objects whose body is stored in the database.
    pub inline_objects: u64,
    /// Files in the bodies directory.
    pub body_files: u64,
    /// Bytes in those files.
    pub body_file_bytes: u64,
    /// Files in the bodies directory that no object refers to: saves in progress, replaced or
    /// deleted bodies not yet removed, and anything leaked. Zero in a quiescent, healthy store.
    pub unreferenced_files: u64,
    /// Records of body files awaiting removal (saves in progress, replaced or deleted bodies).
    /// Zero in a quiescent, healthy store.
    pub cleanup_records: u64,
    /// Objects whose manifest cannot be read or whose body file is missing or of the wrong size,
    /// one line each, sorted. Empty in a healthy store.
    pub damaged: Vec<String>,
}

/// A [`Storage`] in a sled database plus a directory of body files. Cheap to clone (clones
/// share the database). See the crate docs.
#[derive(Clone)]
pub struct SledStorage {
    inner: Arc<Inner>,
}

impl fmt::Debug for SledStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledStorage")
            .field("path", &self.inner.root)
            .finish_non_exhaustive()
    }
}

impl SledStorage {
    /// Opens (creating if needed) the store at `options.path`, then removes the body files of
    /// saves that a crash interrupted and of replaced bodies whose removal it interrupted.
    ///
    /// This is synchronous and does blocking I/O (recovery of sled's log, the cleanup): call it
    /// at startup, or from `spawn_blocking`. Fails with [`StorageError::Backend`] if the
    /// database is in use (by another process, or another open store in this one), damaged, or
    /// of another format.
    pub fn open(options: SledOptions) -> Result<SledStorage> {
        let SledOptions {
            path,
            cache_capacity_bytes,
            flush_every_ms,
            verify_size_on_read,
        } = options;
        let db_name = format!("sled store {}", path.display());
        if cache_capacity_bytes == 0 {
            return Err(SledError::Refused {
                op: "open",
                what: db_name,
                problem: "cache_capacity_bytes must not be zero".to_string(),
            }
            .into());
        }
        let bodies = path.join(BODIES_DIR);
        std::fs::create_dir_all(&bodies).map_err(|e| io_error("create directory", &bodies, e))?;
        let db = sled::Config::new()
            .path(path.join(SLED_DIR))
            .cache_capacity(cache_capacity_bytes)
            .flush_every_ms(flush_every_ms)
            .open()
            .context("open", &db_name)?;
        match db
            .get(FORMAT_KEY)
            .context("read format marker of", &db_name)?
        {
            Some(format) if format == FORMAT => {}
            Some(format) => {
                return Err(SledError::Refused {
                    op: "open",
                    what: db_name,
                    problem: format!(
                        "its format is {:?}, this build reads {:?}",
                        String::from_utf8_lossy(&format),
                        String::from_utf8_lossy(FORMAT)
                    ),
                }
                .into());
            }
            None => {
                db.insert(FORMAT_KEY, FORMAT)
                    .context("write format marker of", &db_name)?;
                db.flush().context("flush", &db_name)?;
            }
        }
        let open_tree = |name: &str| db.open_tree(name).context("open tree of", &db_name);
        let inner = Inner {
            objects: open_tree(OBJECTS_TREE)?,
            unreferenced: open_tree(UNREFERENCED_TREE)?,
            files: RwLock::new(()),
            verify_size_on_read,
            db,
            bodies,
            root: path,
        };
        let leftovers = inner
            .unreferenced
            .iter()
            .keys()
            .collect::<sled::Result<Vec<IVec>>>()
            .context("read cleanup records of", &db_name)?;
        for key in &leftovers {
            let generation = <[u8; 8]>::try_from(key.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| damaged(&db_name, format!("malformed cleanup record {key:?}")))?;
            inner.purge(generation)?;
        }
        if !leftovers.is_empty() {
            inner.db.flush().context("flush", &db_name)?;
            tracing::info!(
                store = %inner.root.display(),
                files = leftovers.len(),
                "removed body files left by interrupted saves and removals"
            );
        }
        Ok(SledStorage {
            inner: Arc::new(inner),
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.inner.root
    }

    /// Scans the whole store (every manifest and the bodies directory: expensive on a large
    /// store) and reports its contents and inconsistencies: body files no object refers to,
    /// objects with missing or wrong-sized bodies. Operations running concurrently may show up as
    /// unreferenced files; in a quiescent healthy store `unreferenced_files` and
    /// `cleanup_records` are zero and `damaged` is empty.
    pub async fn audit(&self) -> Result<Audit> {
        let inner = self.inner.clone();
        blocking("audit", move || inner.audit()).await
    }

    async fn begin_file(&self, path: &str) -> Result<Spill> {
        let (inner, path) = (self.inner.clone(), path.to_string());
        let (staging, file) = blocking("begin save", move || Staging::begin(inner, path)).await?;
        Ok(Spill {
            staging,
            writer: BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::from_std(file)),
        })
    }
}

fn length_mismatch(path: &str, expected: u64, actual: u64) -> StorageError {
    StorageError::LengthMismatch {
        key: path.to_string(),
        expected,
        actual,
    }
}

/// Where a listing resumes.
enum Cursor {
    Start,
    After(IVec),
    Done,
}

fn list_entry(key: &[u8], value: &[u8]) -> Result<ListEntry> {
    let path = std::str::from_utf8(key).map_err(|_| StorageError::InvalidKey {
        path: String::from_utf8_lossy(key).into_owned(),
        reason: "not UTF-8".to_string(),
    })?;
    let key = Key::from_path(path)?;
    let manifest = decode_manifest(value, path)?;
    Ok(ListEntry {
        key,
        meta: manifest.meta(),
    })
}

/// One page of a listing: up to [`LIST_PAGE`] entries after `cursor`, and where to resume.
fn list_page(inner: &Inner, prefix: &str, cursor: Cursor) -> (Vec<Result<ListEntry>>, Cursor) {
    let iter = match cursor {
        Cursor::Done => return (Vec::new(), Cursor::Done),
        Cursor::Start => inner.objects.scan_prefix(prefix),
        Cursor::After(key) => inner
            .objects
            .range::<&[u8], _>((Bound::Excluded(key.as_ref()), Bound::Unbounded)),
    };
    let mut entries = Vec::new();
    for item in iter {
        let (key, value) = match item.context("list", &inner.db_name()) {
            Ok(kv) => kv,
            Err(e) => {
                entries.push(Err(e.into()));
                return (entries, Cursor::Done);
            }
        };
        if !key.starts_with(prefix.as_bytes()) {
            break;
        }
        entries.push(list_entry(&key, &value));
        if entries.len() == LIST_PAGE {
            return (entries, Cursor::After(key));
        }
    }
    (entries, Cursor::Done)
}

/// Streams an inline body in [`READ_CHUNK`] pieces (it is at most [`INLINE_MAX`] bytes: one).
fn inline_body(body: Bytes) -> ByteStream {
    let pieces: Vec<std::io::Result<Bytes>> = (0..body.len())
        .step_by(READ_CHUNK as usize)
        .map(|at| Ok(body.slice(at..body.len().min(at + READ_CHUNK as usize))))
        .collect();
    stream::iter(pieces).boxed()
}

#[async_trait]
impl Storage for SledStorage {
    async fn put(&self, key: &Key, payload: PutPayload) -> Result<ObjectMeta> {
        let path = key.path();
        let expected = payload.length();
        let mut stream = payload.into_stream();
        let mut small = BytesMut::new();
        let mut spill: Option<Spill> = None;
        let mut received = 0u64;
        let streamed: Result<()> = async {
            while let Some(item) = stream.next().await {
                let bytes = item.map_err(|source| StorageError::Payload {
                    key: path.clone(),
                    source,
                })?;
                received += bytes.len() as u64;
                // Stop at the first byte too many rather than storing a runaway stream.
                if let Some(n) = expected
                    && received > n
                {
                    return Err(length_mismatch(&path, n, received));
                }
                if spill.is_none() && received > INLINE_MAX as u64 {
                    let mut file = self.begin_file(&path).await?;
                    file.write(&small.split()).await?;
                    spill = Some(file);
                }
                match &mut spill {
                    Some(file) => file.write(&bytes).await?,
                    None => small.extend_from_slice(&bytes),
                }
            }
            if let Some(n) = expected
                && received != n
            {
                return Err(length_mismatch(&path, n, received));
            }
            Ok(())
        }
        .await;
        if let Err(e) = streamed {
            if let Some(file) = spill {
                drop(file.writer);
                file.staging.abort().await;
            }
            return Err(e);
        }

        match spill {
            None => {
                let manifest = Manifest {
                    size: received,
                    modified: SystemTime::now(),
                    stored: Stored::Inline,
                };
                let encoded = manifest
                    .encode(&small)
                    .map_err(|problem| SledError::Refused {
                        op: "save",
                        what: path.clone(),
                        problem,
                    })?;
                let (inner, key_path) = (self.inner.clone(), path.clone());
                blocking("save", move || inner.switch(&key_path, &encoded, None)).await?;
                Ok(manifest.meta())
            }
            Some(Spill {
                staging,
                mut writer,
            }) => {
                let synced: Result<()> = async {
                    writer
                        .flush()
                        .await
                        .map_err(|e| staging.io_error("write body file", e))?;
                    writer
                        .into_inner()
                        .sync_all()
                        .await
                        .map_err(|e| staging.io_error("sync body file", e))
                }
                .await;
                if let Err(e) = synced {
                    staging.abort().await;
                    return Err(e);
                }
                let manifest = Manifest {
                    size: received,
                    modified: SystemTime::now(),
                    stored: Stored::File {
                        generation: staging.generation,
                    },
                };
                blocking("save", move || staging.commit(&manifest)).await?;
                Ok(manifest.meta())
            }
        }
    }

    async fn get(&self, key: &Key) -> Result<GetResult> {
        let path = key.path();
        let found = {
            let (inner, path) = (self.inner.clone(), path.clone());
            blocking("get", move || inner.lookup(&path)).await?
        };
        let Some((manifest, found)) = found else {
            return Err(StorageError::NotFound { key: path });
        };
        let body = match found {
            Found::Inline(body) => inline_body(body),
            Found::File(file) => file_body(file, manifest.size, format!("the body file of {path}")),
        };
        Ok(GetResult {
            meta: manifest.meta(),
            body,
        })
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let path = key.path();
        let found = {
            let (inner, path) = (self.inner.clone(), path.clone());
            blocking("head", move || inner.manifest(&path)).await?
        };
        match found {
            Some((manifest, _)) => Ok(manifest.meta()),
            None => Err(StorageError::NotFound { key: path }),
        }
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        let path = key.path();
        let inner = self.inner.clone();
        blocking("delete", move || inner.remove_object(&path)).await
    }

    fn list(&self, prefix: &ListPrefix) -> BoxStream<'static, Result<ListEntry>> {
        let inner = self.inner.clone();
        let prefix = prefix.path_prefix();
        stream::unfold(Cursor::Start, move |cursor| {
            let (inner, prefix) = (inner.clone(), prefix.clone());
            async move {
                if matches!(cursor, Cursor::Done) {
                    return None;
                }
                let page = tokio::task::spawn_blocking(move || list_page(&inner, &prefix, cursor))
                    .await
                    .unwrap_or_else(|e| {
                        let e = StorageError::backend(
                            "sled",
                            format!("list: blocking task failed: {e}"),
                        );
                        (vec![Err(e)], Cursor::Done)
                    });
                Some(page)
            }
        })
        .flat_map(stream::iter)
        .boxed()
    }

    async fn check(&self) -> Result<()> {
        let inner = self.inner.clone();
        blocking("check", move || {
            let db_name = inner.db_name();
            // The database: write, read back, remove a probe value.
            let id = inner.db.generate_id().context("check", &db_name)?;
            let key = format!("gomodproxy/check/{id}");
            inner
                .db
                .insert(key.as_bytes(), PROBE)
                .context("check: write probe to", &db_name)?;
            let read = inner
                .db
                .get(key.as_bytes())
                .context("check: read probe from", &db_name)?;
            inner
                .db
                .remove(key.as_bytes())
                .context("check: remove probe from", &db_name)?;
            if read.as_deref() != Some(PROBE) {
                return Err(damaged(&db_name, "the check probe read back differently"));
            }
            // The bodies directory, through the same bookkeeping as a save, so that a crash
            // midway leaves nothing behind after the next open.
            let (staging, mut file) = Staging::begin(inner.clone(), "(check probe)".into())?;
            let file_path = staging.file_path.clone();
            io::Write::write_all(&mut file, PROBE)
                .map_err(|e| io_error("check: write probe file", &file_path, e))?;
            drop(file);
            let read = std::fs::read(&file_path)
                .map_err(|e| io_error("check: read probe file", &file_path, e))?;
            staging.finished.store(true, Ordering::SeqCst);
            inner.purge(staging.generation)?;
            if read != PROBE {
                return Err(damaged(
                    &db_name,
                    "the check probe file read back differently",
                ));
            }
            Ok(())
        })
        .await
    }
}
