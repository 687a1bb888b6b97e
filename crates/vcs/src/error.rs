//! The crate's one error type, shaped for the service to map to HTTP statuses.

use std::io;
use std::time::Duration;

/// Why a direct (version-control) fetch failed.
///
/// Every message is safe to show to a client or put in a log: git's stderr and URLs pass
/// through [`crate::redact`] before they land here, so no token, password or URL userinfo
/// appears in one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VcsError {
    /// The module, version or revision does not exist, or is not a valid module version (the go
    /// command reports these as "not exist" errors; a proxy answers 404). The message is the go
    /// command's reason where there is one ("unknown revision v9.9.9", "missing go.mod", ...).
    #[error("{module}: {reason}")]
    NotFound {
        /// The module path (and version or query, if any) the lookup was for.
        module: String,
        /// Why, in the go command's words where it has some.
        reason: String,
    },
    /// The git server asked for credentials that are missing, or refused the ones sent.
    #[error("authentication to {host} failed: {reason}")]
    Auth {
        /// The host that refused (never with userinfo).
        host: String,
        /// git's message, redacted.
        reason: String,
    },
    /// A git process or an HTTP request took longer than its configured bound and was killed.
    #[error("{operation} timed out after {}", humantime::format_duration(*.after))]
    Timeout {
        /// What was running (`git fetch github.com/acme/widget`, `GET https://…?go-get=1`).
        operation: String,
        /// The bound that was hit.
        after: Duration,
    },
    /// A concurrency cap was hit and no slot freed within the queue timeout: try again later.
    #[error("busy: {reason}")]
    Busy {
        /// Which cap.
        reason: String,
    },
    /// A size cap was hit (repository size, module zip, go.mod, LICENSE).
    #[error("too large: {reason}")]
    TooLarge {
        /// Which cap, and what exceeded it.
        reason: String,
    },
    /// The module lives in a version control system other than git (hg, svn, bzr, fossil), or
    /// its go-import tag names a module proxy (`mod`): this source fetches git repositories only.
    #[error("unsupported: {reason}")]
    Unsupported {
        /// What was found and why it cannot be fetched.
        reason: String,
    },
    /// A git command failed for another reason (network, protocol, corrupt mirror).
    #[error("{command}: {stderr}")]
    Git {
        /// The git subcommand and the repository it ran on (`git fetch https://…`).
        command: String,
        /// git's standard error, trimmed and redacted.
        stderr: String,
    },
    /// The go-get discovery request (`https://<path>?go-get=1`) failed to connect or read, or a
    /// go-import page was unusable for a reason other than "no such module".
    #[error("{url}: {reason}")]
    Http {
        /// The URL fetched (without credentials).
        url: String,
        /// What went wrong.
        reason: String,
        /// The client error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A local file system operation failed (mirror directory, temp files, the zip written).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl VcsError {
    pub(crate) fn not_found(module: impl Into<String>, reason: impl Into<String>) -> VcsError {
        VcsError::NotFound {
            module: module.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> VcsError {
        VcsError::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether this is [`VcsError::NotFound`] (the service answers 404 and may cache that).
    pub fn is_not_found(&self) -> bool {
        matches!(self, VcsError::NotFound { .. })
    }
}

/// A configuration that [`crate::Direct::new`] refuses.
#[derive(Debug, thiserror::Error)]
#[error("direct: {key}: {reason}")]
pub struct ConfigError {
    /// The configuration key at fault (`direct.credentials[0].token_file`).
    pub key: String,
    /// Why.
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}
