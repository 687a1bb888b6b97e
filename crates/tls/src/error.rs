//! The one error type of the crate.

use std::path::PathBuf;

/// Why TLS material could not be loaded or a TLS configuration built.
///
/// Messages name files and what is wrong with them; they never include key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not the PEM it should be (no certificate, no key, bad encoding).
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The certificate and key do not go together, or rustls refused them.
    #[error("{cert} and {key}: {source}")]
    KeyPair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
    /// A configuration key is missing or inconsistent.
    #[error("{key}: {reason}")]
    Config {
        /// The key, like `tls.key_file`.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls could not build the configuration (a verifier, a ticketer).
    #[error("{what}: {reason}")]
    Build {
        /// What was being built.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
}
