//! What can go wrong: per request ([`ServiceError`], mapped to a status by the server) and at
//! construction ([`ServiceInitError`]), and store and I/O failures in words without paths.

use std::path::PathBuf;
use std::sync::Arc;

use gomodproxy_storage::{Key, StorageError};

/// What went wrong, in terms the HTTP layer maps to a status.
///
/// Every message is one line naming what was asked and what failed, fit to be shown to a client.
/// A store failure keeps the store's error as its `source` (for logs), while its message says
/// what failed in words only.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    /// The request itself is invalid (→ 400).
    #[error("{0}")]
    BadRequest(String),
    /// Upstream says it does not exist, or it is not stored in offline mode (→ 404).
    #[error("{0}")]
    NotFound(String),
    /// Upstream failed or sent something invalid; nothing was stored (→ 502).
    #[error("{0}")]
    BadUpstream(String),
    /// Upstream did not answer in time (→ 504).
    #[error("{0}")]
    UpstreamTimeout(String),
    /// The store, or the local disk the service spools to, failed (→ 503). The message says what
    /// failed in words; details such as server paths are in `source` and the log only.
    #[error("{message}")]
    Storage {
        /// What failed, in words: `storage failed for <key>: no space left on device (ENOSPC)`.
        message: String,
        /// The store's own error, when a store failed.
        #[source]
        source: Option<Arc<StorageError>>,
    },
    /// A bound on upstream work was reached: too many fetches waiting, or the spool budget in
    /// use (→ 503 with `Retry-After`).
    #[error("{0}")]
    Overloaded(String),
}

impl ServiceError {
    /// A store failure as clients see it: what failed, in words. The full error (with server
    /// paths) is logged here, once, and kept as the source.
    pub fn storage(key: &Key, err: StorageError) -> Self {
        ServiceError::storage_doing(&format!("for {key}"), err)
    }

    /// Like [`ServiceError::storage`], for a failure that names no single key (`what` follows
    /// "storage failed": `listing example.com/m`).
    pub fn storage_doing(what: &str, err: StorageError) -> Self {
        ServiceError::Storage {
            message: format!("storage failed {what}: {}", storage_words(&err)),
            source: Some(Arc::new(err)),
        }
    }

    /// A local failure that is not a store's error (the spool file, a body read): `message`
    /// must already be words without paths.
    pub fn local(message: impl Into<String>) -> Self {
        ServiceError::Storage {
            message: message.into(),
            source: None,
        }
    }
}

/// Why [`ProxyService::new`] cannot build the service: the configuration it was given is
/// inconsistent, or the HTTP client cannot be built. Never a per-request error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceInitError {
    /// The upstream chain does not parse.
    #[error("{0}")]
    Upstream(String),
    /// Online mode with an empty chain.
    #[error("online mode needs at least one upstream (set upstream, or use offline mode)")]
    NoUpstream,
    /// A checksum database entry is invalid, or `verify` is on without one.
    #[error("{0}")]
    Sumdb(String),
    /// `spool_dir` is set but not a directory.
    #[error("spool_dir {} is not a directory", .0.display())]
    SpoolDir(PathBuf),
    /// The HTTP client could not be built.
    #[error("{0}")]
    HttpClient(String),
    /// The version-control source (`direct`) could not be set up.
    #[error("{0}")]
    Direct(String),
}

/// What a storage error means, without paths or backend internals (those are logged).
pub fn storage_words(err: &StorageError) -> String {
    tracing::warn!(error = %gomodproxy_redact::text(&err.to_string()), "storage error");
    match err {
        StorageError::NotFound { .. } => "not found".to_string(),
        StorageError::LengthMismatch { .. } => "a save was cut short".to_string(),
        StorageError::Payload { source, .. } => format!("the body failed ({})", io_words(source)),
        StorageError::InvalidKey { .. } => "the store holds an invalid key".to_string(),
        StorageError::Corrupt { reason, .. } => format!("the stored copy is damaged: {reason}"),
        StorageError::Backend { store, source } => {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
            while let Some(e) = cause {
                if let Some(io) = e.downcast_ref::<std::io::Error>() {
                    return format!("{store} store: {}", io_words(io));
                }
                cause = e.source();
            }
            format!("{store} store: {}", without_paths(&source.to_string()))
        }
        _ => "the store failed (details in the server log)".to_string(),
    }
}

/// `text` with credentials redacted and every absolute or `./` path replaced by `<path>`.
fn without_paths(text: &str) -> String {
    gomodproxy_redact::text(text)
        .split(' ')
        .map(|word| {
            let bare = word.trim_start_matches(['(', '"', '\'']);
            if bare.starts_with('/') || bare.starts_with("./") || bare.starts_with("../") {
                "<path>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// An I/O error in words, with the errno name where it has one that operators grep for
/// (`no space left on device (ENOSPC)`); never a path.
pub fn io_words(e: &std::io::Error) -> String {
    let named = match e.raw_os_error() {
        Some(libc::ENOSPC) => Some("no space left on device (ENOSPC)"),
        Some(libc::EDQUOT) => Some("disk quota exceeded (EDQUOT)"),
        Some(libc::EMFILE) => Some("too many open files (EMFILE)"),
        Some(libc::ENFILE) => Some("too many open files in the system (ENFILE)"),
        Some(libc::EACCES) | Some(libc::EPERM) => Some("permission denied"),
        Some(libc::EROFS) => Some("read-only file system (EROFS)"),
        Some(libc::EIO) => Some("input/output error (EIO)"),
        Some(libc::ENOMEM) => Some("out of memory (ENOMEM)"),
        _ => None,
    };
    match named {
        Some(words) => words.to_string(),
        None => match e.kind() {
            // `Other` kinds carry a message of their own (`probe file read back differently`).
            std::io::ErrorKind::Other => without_paths(&e.to_string()),
            kind => kind.to_string(),
        },
    }
}
