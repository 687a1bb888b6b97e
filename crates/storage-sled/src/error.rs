//! [`SledError`]: a failure with the operation and the object, file or database it concerns; and
//! the helpers that attach that context and run blocking work off the runtime.

use std::io;
use std::path::{Path, PathBuf};

use gomodproxy_storage::{Result, StorageError};

use crate::manifest::{Manifest, ManifestError};

/// A failure of the store, with the operation and the object, file or database it concerns.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SledError {
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
    /// A manifest that cannot be read: the store is damaged.
    #[error("{what}: the store is damaged: {source}")]
    BadManifest { what: String, source: ManifestError },
    /// A manifest that cannot be written.
    #[error("{op} {what}: {source}")]
    Encode {
        op: &'static str,
        what: String,
        source: ManifestError,
    },
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
pub(crate) trait Context<T> {
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

pub(crate) fn io_error(op: &'static str, path: &Path, source: io::Error) -> SledError {
    SledError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn damaged(what: &str, problem: impl Into<String>) -> SledError {
    SledError::Damaged {
        what: what.to_string(),
        problem: problem.into(),
    }
}

/// Runs blocking work off the async runtime.
pub(crate) async fn blocking<T, F>(op: &'static str, f: F) -> Result<T>
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

pub(crate) fn sync_dir(dir: &Path) -> Result<(), SledError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("sync directory", dir, e))
}

/// Decodes the manifest of `path`, naming the object when it is malformed.
pub(crate) fn decode_manifest(raw: &[u8], path: &str) -> Result<Manifest, SledError> {
    Manifest::decode(raw).map_err(|source| SledError::BadManifest {
        what: format!("object {path}"),
        source,
    })
}
