//! The filesystem backend of gomodproxy's [`Storage`] trait.
//!
//! [`FsStorage`] keeps each object in its own file at `root/<Key::path()>`, so the root is laid
//! out like a GOPROXY (`github.com/!azure/sdk/@v/v1.2.3.zip`, `<module>/@v/list`,
//! `<module>/@latest`): its artifacts can be inspected with ordinary tools or served as a
//! `file://` proxy. Module path elements never start with a dot, so names starting with `.` are
//! free for the store's own use.
//!
//! # Atomic, durable saves
//! A `put` streams the payload chunk by chunk into a uniquely named temporary file in
//! `root/.tmp/` (the same filesystem, so the final rename is atomic), counts the bytes against the
//! announced length, `fsync`s the file, renames it into place, then `fsync`s the directory so the
//! rename itself survives a crash. Readers therefore see the previous file or the new one, never
//! a part. Any failure, and dropping the `put` future midway, removes the temporary file; only a
//! crash can leave one behind, and `.tmp` is never listed or read. If only the final directory
//! sync fails, `put` reports the error although the new file is already in place (whole, but
//! perhaps not durable).
//!
//! Crash leftovers: every open store holds an exclusive `flock` on an *owner file*
//! (`.owners/owner-<id>.lock`) for as long as it lives, and names its temporary files after that
//! owner (`<id>-<n>.tmp`). [`FsStorage::open`] deletes the temporary files of every owner whose
//! lock it can take — a process that died (SIGKILL, a crash, a container restart) holds no lock,
//! so its files cannot be in use — together with its owner file. Owner files appear only once
//! locked (they are created under another name, locked, then renamed), so a starting process
//! never mistakes another's new owner file for a dead one. The locks are per open file
//! description, so they hold across PID namespaces (containers sharing a volume) and, on NFS,
//! are kept by the server. Temporary files of no known owner (older versions) are deleted once
//! older than [`STALE_TEMP_AGE`] (one hour).
//!
//! # Damage on disk
//! With [`FsOptions::verify_size_on_read`] (the default), a save records the object's length in
//! an extended attribute of its file (`user.gomodproxy.size`), and every read compares it with
//! the file's size before the first byte is sent: a file truncated or extended after it was
//! stored is [`StorageError::Corrupt`], never a 200 with the wrong bytes. On a filesystem without
//! user extended attributes the length is not recorded (a warning at open says so) and reads are
//! not checked. Content damage of the same length is what `gomodproxy verify` finds (it
//! re-hashes every zip).
//!
//! # Reads
//! `get` opens the file and takes the size from the same open descriptor, so a concurrent
//! overwrite (a rename over the path) can never pair one file's size with another's body; the
//! body is streamed by [`gomodproxy_file_body`] (the page cache read on the request's
//! thread, the rest on the blocking pool). `modified` is the file's mtime, which a rename
//! preserves: it is when the save was written.
//!
//! Empty directories are not removed on `delete`: a concurrent `put` into the same directory
//! could otherwise lose its parent between creating it and renaming into it.
//!
//! # Dependencies
//! Of gomodproxy's crates: `gomodproxy-storage` (the trait it implements) and
//! `gomodproxy-file-body` (streaming a file). Nothing depends on it but the server's backend
//! factory; it never reaches up to the service or the server.

#![deny(missing_docs)]

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use gomodproxy_file_body::file_body;
use gomodproxy_storage::{
    GetResult, Key, ListEntry, ListPrefix, ObjectMeta, PutPayload, Result, Storage, StorageError,
};
use tokio::io::{AsyncWriteExt, BufWriter};

mod options;

pub use options::{FsOptions, FsOptionsError};

/// Name of the directory under the root that holds saves in progress.
pub const TEMP_DIR: &str = ".tmp";

/// Leftover temporary files older than this are deleted by [`FsStorage::open`].
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(60 * 60);

/// Write buffer in front of the temporary file, so small payload chunks do not each become a
/// write system call.
const WRITE_BUFFER: usize = 256 * 1024;

/// What [`Storage::check`] writes and reads back.
const PROBE: &[u8] = b"gomodproxy storage check\n";

/// An io error with the operation and path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
struct FsError {
    op: &'static str,
    path: PathBuf,
    source: io::Error,
}

fn backend(op: &'static str, path: &Path, source: io::Error) -> StorageError {
    StorageError::backend(
        "fs",
        FsError {
            op,
            path: path.to_path_buf(),
            source,
        },
    )
}

/// Name of the directory under the root that holds the owner files of open stores.
pub const OWNERS_DIR: &str = ".owners";

/// Name of the extended attribute that records an object's length.
const SIZE_XATTR: &str = "user.gomodproxy.size";

/// This store's claim on its temporary files: the owner file, locked for the store's life.
#[derive(Debug)]
struct Owner {
    id: String,
    /// Holds the flock; closing it (drop, or the process dying) releases it.
    _lock: std::fs::File,
    path: PathBuf,
}

impl Drop for Owner {
    fn drop(&mut self) {
        // Our temporary files are gone by now (each removes itself); the owner file goes too.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A [`Storage`] in a directory of the local (or a shared) filesystem. See the crate docs.
#[derive(Debug, Clone)]
pub struct FsStorage {
    root: PathBuf,
    tmp: PathBuf,
    owners: PathBuf,
    owner: std::sync::Arc<Owner>,
    options: FsOptions,
}

impl FsStorage {
    /// [`FsStorage::open_with`] with the default options and `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<FsStorage> {
        FsStorage::open_with(FsOptions {
            root: root.into(),
            ..FsOptions::default()
        })
    }

    /// Opens (creating if needed) a store rooted at `options.root`, with its `.tmp` directory,
    /// and deletes the temporary files of crashed processes (see the crate docs). Options that
    /// fail [`FsOptions::validate`] are a [`StorageError::Backend`] naming the key.
    ///
    /// This does blocking filesystem calls: call it at startup, or from `spawn_blocking`.
    pub fn open_with(options: FsOptions) -> Result<FsStorage> {
        options.validate().map_err(|e| {
            StorageError::backend("fs", format!("invalid option `{}`: {e}", e.key()))
        })?;
        let root = options.root.clone();
        let tmp = root.join(TEMP_DIR);
        std::fs::create_dir_all(&tmp).map_err(|e| backend("create directory", &tmp, e))?;
        let owners = root.join(OWNERS_DIR);
        std::fs::create_dir_all(&owners).map_err(|e| backend("create directory", &owners, e))?;
        let owner = std::sync::Arc::new(claim_owner(&owners)?);
        let store = FsStorage {
            root,
            tmp,
            owners,
            owner,
            options,
        };
        store.remove_stale_temp_files();
        if store.options.verify_size_on_read && !xattrs_supported(&store.tmp) {
            tracing::warn!(
                root = %store.root.display(),
                "this filesystem has no user extended attributes: object lengths are not recorded, so reads cannot be checked against them (storage.fs.verify_size_on_read)"
            );
        }
        Ok(store)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of `key`. [`Key::path`] has no `.`, `..` or absolute elements, so the result is
    /// always inside the root.
    fn object_path(&self, key: &Key) -> PathBuf {
        let mut path = self.root.clone();
        path.extend(key.path().split('/'));
        path
    }

    /// Deletes the temporary files of dead owners, and of no known owner once stale.
    fn remove_stale_temp_files(&self) {
        let read = |dir: &Path| match std::fs::read_dir(dir) {
            Ok(entries) => entries.flatten().collect::<Vec<_>>(),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot read a directory of the store");
                Vec::new()
            }
        };
        let entries = read(&self.tmp);
        // Owners whose lock we could take: dead. Their lock stays held (by us) until their
        // files are gone, so no one else sweeps them at the same time.
        let mut dead: Vec<(String, std::fs::File, PathBuf)> = Vec::new();
        let mut live: std::collections::HashSet<String> = std::collections::HashSet::new();
        for entry in &read(&self.owners) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(CLAIM_PREFIX) {
                // A claim that never became an owner file (a crash in between): unlocked.
                let path = entry.path();
                if std::fs::File::open(&path).is_ok_and(|f| try_lock(&f)) {
                    let _ = std::fs::remove_file(&path);
                }
                continue;
            }
            let Some(id) = name
                .strip_prefix(OWNER_PREFIX)
                .and_then(|n| n.strip_suffix(OWNER_SUFFIX))
            else {
                continue;
            };
            if id == self.owner.id {
                live.insert(id.to_string());
                continue;
            }
            let path = entry.path();
            match std::fs::File::open(&path) {
                Ok(file) if try_lock(&file) => dead.push((id.to_string(), file, path)),
                Ok(_) => {
                    live.insert(id.to_string());
                }
                Err(_) => {}
            }
        }
        let now = SystemTime::now();
        let mut removed = 0usize;
        for entry in &entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let owner = name.split_once('-').map(|(id, _)| id);
            let remove = match owner {
                Some(id) if dead.iter().any(|(d, _, _)| d == id) => true,
                Some(id) if live.contains(id) => false,
                // No owner file: an older version's name, or an owner gone long ago.
                _ => meta
                    .modified()
                    .ok()
                    .and_then(|m| now.duration_since(m).ok())
                    .is_some_and(|age| age > STALE_TEMP_AGE),
            };
            if remove {
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "cannot remove a leftover temporary file")
                    }
                }
            }
        }
        for (_, file, path) in dead {
            let _ = std::fs::remove_file(&path);
            drop(file);
        }
        if removed > 0 {
            tracing::info!(dir = %self.tmp.display(), files = removed, "removed temporary files of crashed saves");
        }
    }

    /// Creates a new, uniquely named temporary file, named after this store's owner.
    async fn create_temp(&self) -> Result<(tokio::fs::File, TempFile)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = self.tmp.join(format!("{}-{n}.tmp", self.owner.id));
            // `create_new` makes a name collision (another replica on a shared volume with the
            // same pid) an error we retry instead of two saves sharing one file.
            match tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .await
            {
                Ok(file) => return Ok((file, TempFile { path: Some(path) })),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(backend("create temporary file", &path, e)),
            }
        }
    }
}

/// Removes its file when dropped, unless disarmed: covers errors and a `put` future dropped
/// midway (a client that went away).
struct TempFile {
    path: Option<PathBuf>,
}

impl TempFile {
    fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Call once the file has been renamed away.
    fn disarm(mut self) {
        self.path = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            // A blocking call in async context, but unlink is quick and this path is rare.
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(file = %path.display(), error = %e, "cannot remove a temporary file");
            }
        }
    }
}

const OWNER_PREFIX: &str = "owner-";
const CLAIM_PREFIX: &str = "claim-";
const OWNER_SUFFIX: &str = ".lock";

/// A fresh owner id: pid, time and a counter, in hex, with no `-` (temporary file names split
/// at the first `-`).
fn owner_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "o{:x}x{:x}x{:x}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates and locks this store's owner file in `dir`; it gets its final name only once locked.
fn claim_owner(dir: &Path) -> Result<Owner> {
    loop {
        let id = owner_id();
        let staging = dir.join(format!("{CLAIM_PREFIX}{id}"));
        let file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(backend("create owner file", &staging, e)),
        };
        if !try_lock(&file) {
            let _ = std::fs::remove_file(&staging);
            return Err(backend(
                "lock owner file",
                &staging,
                io::Error::other("a fresh file is locked by someone else"),
            ));
        }
        let path = dir.join(format!("{OWNER_PREFIX}{id}{OWNER_SUFFIX}"));
        std::fs::rename(&staging, &path).map_err(|e| backend("rename owner file", &path, e))?;
        return Ok(Owner {
            id,
            _lock: file,
            path,
        });
    }
}

/// Takes an exclusive `flock` without waiting; false if someone holds it.
fn try_lock(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on an open descriptor.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Whether `dir`'s filesystem takes user extended attributes.
fn xattrs_supported(dir: &Path) -> bool {
    let probe = dir.join(format!("xattr-probe-{}", owner_id()));
    let supported = std::fs::File::create(&probe)
        .map(|f| set_recorded_size(&f, 0).is_ok())
        .unwrap_or(false);
    let _ = std::fs::remove_file(&probe);
    supported
}

fn xattr_name() -> std::ffi::CString {
    std::ffi::CString::new(SIZE_XATTR).unwrap_or_default()
}

/// Records `size` on the file.
fn set_recorded_size(file: &impl std::os::fd::AsRawFd, size: u64) -> io::Result<()> {
    let value = size.to_string();
    let name = xattr_name();
    // SAFETY: a valid descriptor, NUL-terminated name, and a buffer of the given length.
    let rc = unsafe {
        libc::fsetxattr(
            file.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The recorded size of the file, if one was recorded.
fn recorded_size(file: &impl std::os::fd::AsRawFd) -> Option<u64> {
    let name = xattr_name();
    let mut buf = [0u8; 32];
    // SAFETY: a valid descriptor, NUL-terminated name, and a buffer of the given length.
    let n = unsafe {
        libc::fgetxattr(
            file.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n <= 0 {
        return None;
    }
    std::str::from_utf8(&buf[..n as usize]).ok()?.parse().ok()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Creates `dir` and its missing ancestors below `root`, and makes each new directory entry
/// durable by syncing its parent.
fn create_dirs_durably(root: &Path, dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut d = dir;
    while d != root && !d.is_dir() {
        missing.push(d);
        match d.parent() {
            Some(parent) => d = parent,
            None => break,
        }
    }
    // Tolerates directories created concurrently by another save.
    std::fs::create_dir_all(dir)?;
    for d in missing.iter().rev() {
        if let Some(parent) = d.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Moves a complete, synced temporary file to `dest` and makes the rename durable.
fn publish(root: &Path, temp: &Path, dest: &Path) -> Result<()> {
    let parent = dest.parent().unwrap_or(root);
    create_dirs_durably(root, parent).map_err(|e| backend("create directory", parent, e))?;
    std::fs::rename(temp, dest).map_err(|e| backend("rename temporary file to", dest, e))?;
    sync_dir(parent).map_err(|e| backend("sync directory", parent, e))
}

fn not_found_or(key: &Key, op: &'static str, path: &Path, e: io::Error) -> StorageError {
    if e.kind() == io::ErrorKind::NotFound {
        StorageError::NotFound { key: key.path() }
    } else {
        backend(op, path, e)
    }
}

fn meta_of(path: &Path, md: &std::fs::Metadata) -> Result<ObjectMeta> {
    if !md.is_file() {
        return Err(backend(
            "read",
            path,
            io::Error::other("not a regular file"),
        ));
    }
    let modified = md
        .modified()
        .map_err(|e| backend("read mtime of", path, e))?;
    Ok(ObjectMeta {
        size: md.len(),
        modified,
    })
}

#[async_trait]
impl Storage for FsStorage {
    async fn put(&self, key: &Key, payload: PutPayload) -> Result<ObjectMeta> {
        let expected = payload.length();
        let mismatch = |actual| StorageError::LengthMismatch {
            key: key.path(),
            expected: expected.unwrap_or(0),
            actual,
        };
        let dest = self.object_path(key);
        let (file, temp) = self.create_temp().await?;
        let mut writer = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut stream = payload.into_stream();
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| StorageError::Payload {
                key: key.path(),
                source,
            })?;
            written += chunk.len() as u64;
            // Stop at the first byte too many rather than writing the rest of a runaway stream.
            if expected.is_some_and(|n| written > n) {
                return Err(mismatch(written));
            }
            writer
                .write_all(&chunk)
                .await
                .map_err(|e| backend("write", temp.path(), e))?;
        }
        if expected.is_some_and(|n| written != n) {
            return Err(mismatch(written));
        }
        writer
            .flush()
            .await
            .map_err(|e| backend("write", temp.path(), e))?;
        let file = writer.into_inner();
        if self.options.verify_size_on_read {
            // Best effort: a filesystem without user xattrs stores the object unrecorded.
            let _ = set_recorded_size(&file, written);
        }
        file.sync_all()
            .await
            .map_err(|e| backend("sync", temp.path(), e))?;
        // The mtime of this very file (kept by the rename), not of whatever is at `dest` by the
        // time we look: a concurrent save may replace it immediately.
        let md = file
            .metadata()
            .await
            .map_err(|e| backend("stat", temp.path(), e))?;
        let modified = md
            .modified()
            .map_err(|e| backend("read mtime of", temp.path(), e))?;
        drop(file);

        let (root, temp_path) = (self.root.clone(), temp.path().to_path_buf());
        tokio::task::spawn_blocking(move || publish(&root, &temp_path, &dest))
            .await
            .map_err(|e| StorageError::backend("fs", format!("save task failed: {e}")))??;
        temp.disarm();
        Ok(ObjectMeta {
            size: written,
            modified,
        })
    }

    async fn get(&self, key: &Key) -> Result<GetResult> {
        let path = self.object_path(key);
        let opened = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                let file = std::fs::File::open(&path)?;
                // fstat of the opened file: its size belongs to exactly the body we stream.
                let md = file.metadata()?;
                Ok::<_, io::Error>((file, md))
            })
        }
        .await
        .map_err(|e| backend("open", &path, io::Error::other(e)))?;
        let (file, md) = opened.map_err(|e| not_found_or(key, "open", &path, e))?;
        let meta = meta_of(&path, &md)?;
        if self.options.verify_size_on_read
            && let Some(recorded) = recorded_size(&file)
            && recorded != meta.size
        {
            tracing::error!(file = %path.display(), recorded, size = meta.size, "a stored file changed size after it was saved");
            return Err(StorageError::Corrupt {
                key: key.path(),
                reason: format!(
                    "its file has {} bytes but {recorded} were stored (damaged on disk; run gomodproxy verify)",
                    meta.size
                ),
            });
        }
        let body = file_body(file, meta.size, path.display().to_string());
        Ok(GetResult { meta, body })
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let path = self.object_path(key);
        let md = tokio::fs::metadata(&path)
            .await
            .map_err(|e| not_found_or(key, "stat", &path, e))?;
        meta_of(&path, &md)
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        let path = self.object_path(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(backend("remove", &path, e)),
        }
    }

    fn list(&self, prefix: &ListPrefix) -> BoxStream<'static, Result<ListEntry>> {
        let (root, prefix) = (self.root.clone(), prefix.clone());
        // Collected on a blocking thread, then streamed: a listing is metadata only (a few
        // hundred bytes per object), so even a large cache fits in memory.
        stream::once(async move {
            match tokio::task::spawn_blocking(move || list_blocking(&root, &prefix)).await {
                Ok(entries) => entries,
                Err(e) => vec![Err(StorageError::backend(
                    "fs",
                    format!("listing task failed: {e}"),
                ))],
            }
        })
        .flat_map(stream::iter)
        .boxed()
    }

    async fn check(&self) -> Result<()> {
        let (mut file, temp) = self.create_temp().await?;
        file.write_all(PROBE)
            .await
            .map_err(|e| backend("write", temp.path(), e))?;
        // tokio's write only hands the bytes to a blocking thread: its error (ENOSPC) comes
        // back from the flush, and sync_all would lose it.
        file.flush()
            .await
            .map_err(|e| backend("write", temp.path(), e))?;
        file.sync_all()
            .await
            .map_err(|e| backend("sync", temp.path(), e))?;
        drop(file);
        let read = tokio::fs::read(temp.path())
            .await
            .map_err(|e| backend("read", temp.path(), e))?;
        if read != PROBE {
            return Err(backend(
                "read",
                temp.path(),
                io::Error::other("probe file read back differently"),
            ));
        }
        tokio::fs::remove_file(temp.path())
            .await
            .map_err(|e| backend("remove", temp.path(), e))?;
        temp.disarm();
        Ok(())
    }
}

/// Lists the objects under `prefix`, reading only the directories that can hold them.
fn list_blocking(root: &Path, prefix: &ListPrefix) -> Vec<Result<ListEntry>> {
    let mut out = Vec::new();
    match prefix {
        ListPrefix::All => walk(root, String::new(), &mut out),
        // Directory prefixes: walk just that directory (its path has no `..`: Key rules).
        ListPrefix::Sumdb(_)
        | ListPrefix::SumdbLookups(_)
        | ListPrefix::SumdbTrees(_)
        | ListPrefix::Bundles => {
            let rel = prefix.path_prefix();
            let mut dir = root.to_path_buf();
            dir.extend(rel.split('/').filter(|e| !e.is_empty()));
            match std::fs::symlink_metadata(&dir) {
                Ok(md) if md.is_dir() => walk(&dir, rel, &mut out),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => out.push(Err(backend("stat", &dir, e))),
            }
        }
        ListPrefix::Module(module) => {
            let escaped = module.escaped();
            let mut dir = root.to_path_buf();
            dir.extend(escaped.split('/'));
            let versions = dir.join("@v");
            match std::fs::read_dir(&versions) {
                Ok(entries) => {
                    for entry in entries {
                        match entry {
                            Ok(entry) => add_entry(&entry, &format!("{escaped}/@v/"), &mut out),
                            Err(e) => out.push(Err(backend("read directory", &versions, e))),
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => out.push(Err(backend("read directory", &versions, e))),
            }
            let latest = dir.join("@latest");
            match std::fs::symlink_metadata(&latest) {
                Ok(md) if md.is_file() => {
                    push_key(&format!("{escaped}/@latest"), &latest, &md, &mut out)
                }
                Ok(_) => {
                    tracing::warn!(path = %latest.display(), "skipping a non-file in the store")
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => out.push(Err(backend("stat", &latest, e))),
            }
        }
    }
    out
}

/// Walks `dir` (whose path relative to the root is `rel`, ending in `/` unless empty).
fn walk(dir: &Path, rel: String, out: &mut Vec<Result<ListEntry>>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // Removed by someone else since we saw it.
        Err(e) if e.kind() == io::ErrorKind::NotFound && !rel.is_empty() => return,
        Err(e) => return out.push(Err(backend("read directory", dir, e))),
    };
    for entry in entries {
        match entry {
            Ok(entry) => add_entry(&entry, &rel, out),
            Err(e) => out.push(Err(backend("read directory", dir, e))),
        }
    }
}

fn add_entry(entry: &std::fs::DirEntry, rel: &str, out: &mut Vec<Result<ListEntry>>) {
    let path = entry.path();
    let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
        tracing::warn!(path = %path.display(), "skipping a non-UTF-8 name in the store");
        return;
    };
    // `.tmp` (saves in progress) and anything else hidden: never a module path element.
    if name.starts_with('.') {
        return;
    }
    // Does not follow symlinks: the store never creates them.
    let md = match entry.metadata() {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(e) => return out.push(Err(backend("stat", &path, e))),
    };
    if md.is_dir() {
        walk(&path, format!("{rel}{name}/"), out);
    } else if md.is_file() {
        push_key(&format!("{rel}{name}"), &path, &md, out);
    } else {
        tracing::warn!(path = %path.display(), "skipping a non-file in the store");
    }
}

fn push_key(rel: &str, path: &Path, md: &std::fs::Metadata, out: &mut Vec<Result<ListEntry>>) {
    match Key::from_path(rel) {
        Ok(key) => out.push(meta_of(path, md).map(|meta| ListEntry { key, meta })),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "skipping a file that is not a storage key")
        }
    }
}
