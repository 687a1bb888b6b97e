use thiserror::Error;

/// Why a module path, version, escaped string, request or zip was rejected.
///
/// `Display` is a single line meant to be shown to a client as the reason for a 4xx.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A module path failed `CheckPath`-equivalent validation.
    #[error("malformed module path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    /// A version is not valid (or not canonical where a canonical one is required).
    #[error("invalid version {version:?}: {reason}")]
    InvalidVersion { version: String, reason: String },
    /// A `!`-escaped string could not be unescaped (upper case, bad `!`, non-ASCII).
    #[error("invalid escaped string {input:?}: {reason}")]
    InvalidEscape { input: String, reason: String },
    /// A request path is not a GOPROXY protocol path.
    #[error("invalid request path: {reason}")]
    InvalidRequest { reason: String },
    /// A module zip violates the module zip rules.
    #[error("invalid module zip: {reason}")]
    InvalidZip { reason: String },
}
