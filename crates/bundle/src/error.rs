//! The crate's error type: failures that stop a whole run. Problems with single objects are not
//! errors; they are listed in the run's report.

use std::path::PathBuf;

use gomodproxy_storage::StorageError;

/// Why an export, import or verify run stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The store failed (not a missing object: those are reported per object).
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// Reading or writing a local file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The input is not a bundle this version can read, or it is corrupt (truncated, bad
    /// compression, a tar entry that cannot be read).
    #[error("{path}: not a readable gomodproxy bundle: {reason}")]
    BadBundle {
        /// The bundle file (`-` for standard input).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An incremental bundle whose predecessor this store never imported (or whose import
    /// refused objects): nothing of it is imported.
    #[error(
        "{bundle} follows {follows}, which was never imported into this store: import {name} first (bundles of a chain are imported in order)"
    )]
    BrokenChain {
        /// The bundle being imported.
        bundle: String,
        /// The one it follows, described.
        follows: String,
        /// Its file name.
        name: String,
    },
    /// The options are unusable (a bad verifier key, an unreadable or malformed go.sum, …).
    #[error("{0}")]
    Options(String),
    /// A worker task died.
    #[error("internal error: {0}")]
    Internal(String),
}

impl BundleError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        BundleError::Io {
            context: context.into(),
            source,
        }
    }
}
