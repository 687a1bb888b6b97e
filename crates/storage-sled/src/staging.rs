//! A body file being written ([`Staging`], [`Spill`]): recorded as unreferenced before it exists,
//! made an object's body by one manifest switch, removed if the save fails or is dropped.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gomodproxy_storage::{Result, StorageError};
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::error::{Context, SledError, io_error, sync_dir};
use crate::inner::Inner;
use crate::manifest::{Manifest, STATE_SAVING, generation_key, unreferenced_record};

/// Write buffer in front of a body file, so small payload chunks do not each become a write.
pub(crate) const WRITE_BUFFER: usize = 256 * 1024;

/// A body file being written: its generation is recorded as unreferenced. Unless committed,
/// dropping it removes the file and the record (in the background when dropped in async code,
/// e.g. with a `put` future dropped midway).
pub(crate) struct Staging {
    pub(crate) inner: Arc<Inner>,
    pub(crate) generation: u64,
    pub(crate) path: String,
    pub(crate) file_path: PathBuf,
    pub(crate) finished: AtomicBool,
}

impl Staging {
    /// Allocates a generation, records it durably, then creates its file.
    pub(crate) fn begin(
        inner: Arc<Inner>,
        path: String,
    ) -> Result<(Staging, std::fs::File), SledError> {
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
    pub(crate) fn commit(self, manifest: &Manifest) -> Result<(), SledError> {
        let encoded = manifest.encode(&[]).map_err(|source| SledError::Encode {
            op: "save",
            what: self.path.clone(),
            source,
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

    pub(crate) fn io_error(&self, op: &'static str, source: io::Error) -> StorageError {
        io_error(op, &self.file_path, source).into()
    }

    /// Removes the file of a save that failed, before the failure is reported.
    pub(crate) async fn abort(self) {
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
pub(crate) struct Spill {
    pub(crate) staging: Staging,
    pub(crate) writer: BufWriter<tokio::fs::File>,
}

impl Spill {
    pub(crate) async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.writer
            .write_all(data)
            .await
            .map_err(|e| self.staging.io_error("write body file", e))
    }
}
