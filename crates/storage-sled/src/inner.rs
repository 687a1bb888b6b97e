//! [`Inner`]: the open database and bodies directory, and the blocking steps every operation is
//! built from: looking an object up, switching or removing its manifest in one transaction, and
//! removing body files no manifest refers to.

use std::io;
use std::path::PathBuf;
use std::sync::{PoisonError, RwLock, RwLockWriteGuard};

use bytes::Bytes;
use sled::transaction::{TransactionError, Transactional};
use sled::{IVec, Tree};

use crate::error::{Context, SledError, damaged, decode_manifest, io_error, sync_dir};
use crate::manifest::{
    MANIFEST_HEADER, Manifest, ManifestError, STATE_RETIRED, Stored, generation_key,
    unreferenced_record,
};

/// A body as found by `get`.
pub(crate) enum Found {
    Inline(Bytes),
    File(std::fs::File),
}

pub(crate) struct Inner {
    pub(crate) root: PathBuf,
    pub(crate) bodies: PathBuf,
    pub(crate) db: sled::Db,
    pub(crate) objects: Tree,
    pub(crate) unreferenced: Tree,
    /// Held shared by `get` from looking a manifest up until its body file is open, and
    /// exclusively while a body file is unlinked, so no reader finds a manifest whose file is
    /// already gone.
    pub(crate) files: RwLock<()>,
    /// [`SledOptions::verify_size_on_read`].
    pub(crate) verify_size_on_read: bool,
}

impl Inner {
    pub(crate) fn db_name(&self) -> String {
        format!("sled store {}", self.root.display())
    }

    pub(crate) fn body_path(&self, generation: u64) -> PathBuf {
        self.bodies.join(format!("{generation:016x}"))
    }

    pub(crate) fn manifest(&self, path: &str) -> Result<Option<(Manifest, IVec)>, SledError> {
        match self.objects.get(path).context("read manifest of", path)? {
            Some(raw) => Ok(Some((decode_manifest(&raw, path)?, raw))),
            None => Ok(None),
        }
    }

    /// Looks `path` up and opens its body.
    pub(crate) fn lookup(&self, path: &str) -> Result<Option<(Manifest, Found)>, SledError> {
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
    pub(crate) fn switch(
        &self,
        path: &str,
        manifest: &[u8],
        saved: Option<u64>,
    ) -> Result<(), SledError> {
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
    pub(crate) fn remove_object(&self, path: &str) -> Result<(), SledError> {
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
    pub(crate) fn manifest_names(&self, path: &str, generation: u64) -> Option<bool> {
        match self.manifest(path) {
            Ok(found) => Some(found.and_then(|(m, _)| m.generation()) == Some(generation)),
            Err(_) => None,
        }
    }

    pub(crate) fn lock_files(&self) -> RwLockWriteGuard<'_, ()> {
        self.files.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes a generation's body file (if present) durably, then its `unreferenced` record.
    /// Interrupted, it is finished by the next [`SledStorage::open`].
    pub(crate) fn purge(&self, generation: u64) -> Result<(), SledError> {
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

    pub(crate) fn purge_logged(&self, generation: u64) {
        match self.purge(generation) {
            Ok(()) => tracing::debug!(generation, "removed an unreferenced body file"),
            Err(e) => tracing::warn!(
                generation,
                error = %e,
                "cannot remove an unreferenced body file now; the next open will"
            ),
        }
    }
}

/// In a transaction that removed or replaced the manifest `old`: records its body file as
/// retired. Returns the file's generation, or why the old manifest could not be read.
fn retire_in_transaction(
    unreferenced: &sled::transaction::TransactionalTree,
    old: Option<&[u8]>,
    path: &str,
) -> sled::transaction::ConflictableTransactionResult<Option<Result<u64, ManifestError>>, SledError>
{
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
fn replaced_generation(outcome: Option<Result<u64, ManifestError>>, path: &str) -> Option<u64> {
    match outcome? {
        Ok(generation) => Some(generation),
        Err(problem) => {
            tracing::warn!(path, %problem, "replaced a damaged manifest");
            None
        }
    }
}
