//! The one error type of the crate.

use std::path::PathBuf;

/// Why loading or building an access component failed.
///
/// Messages name the file and line of a bad entry but never its secret part (a hash, a
/// token): they end up in logs and in `config check`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// A configured file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line of a user, token or groups file is malformed or uses a refused hash scheme.
    #[error("{path}:{line}: {reason}")]
    Line {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong, without the secret part of the line.
        reason: String,
    },
    /// The policy file is not valid TOML of the expected shape.
    #[error("{path}: {source}")]
    PolicyToml {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A policy entry is invalid (bad pattern, bad version range, bad reason).
    #[error("{path}: {what}: {reason}")]
    Policy {
        /// The policy file, or `[policy]` for inline configuration.
        path: PathBuf,
        /// Which entry (`deny[2]`, `allow[0]`).
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The configuration is inconsistent (an access rule without credentials to check, a bad
    /// pattern, an out-of-range setting).
    #[error("{key}: {reason}")]
    Config {
        /// The configuration key, like `access.rules[1].modules`.
        key: String,
        /// What is wrong.
        reason: String,
    },
}
