//! Turning a TLS failure deep in an error chain (reqwest → hyper → io → rustls) into its cause
//! in words an operator can act on.

use std::error::Error as StdError;
use std::fmt;
use std::time::{Duration, SystemTime};

use rustls::{AlertDescription, CertificateError};

/// A TLS failure, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsProblem {
    /// The server's certificate does not chain to a trusted root.
    UnknownAuthority,
    /// The server's certificate has expired.
    Expired {
        /// When it expired, if rustls said.
        not_after: Option<SystemTime>,
    },
    /// The server's certificate is not valid yet.
    NotYetValid,
    /// The server's certificate does not name the host.
    NameMismatch {
        /// The name that was asked for, if rustls said.
        expected: Option<String>,
        /// The names the certificate holds, if rustls said.
        presented: Vec<String>,
    },
    /// The server's certificate was revoked.
    Revoked,
    /// The peer asked for a client certificate and none (or an unacceptable one) was sent.
    ClientCertificateRequired,
    /// The peer ended the handshake with this alert.
    PeerRefused(String),
    /// No protocol version or cipher suite in common.
    NoCommonParameters,
    /// Another certificate problem (bad signature, wrong key usage, unsupported algorithm).
    BadCertificate(String),
    /// Another TLS error.
    Other(String),
}

impl fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsProblem::UnknownAuthority => {
                f.write_str("certificate signed by unknown authority: set fetch.ca_file")
            }
            TlsProblem::Expired { not_after } => {
                f.write_str("certificate has expired")?;
                if let Some(t) = not_after {
                    write!(f, " at {}", humantime::format_rfc3339_seconds(*t))?;
                }
                f.write_str(" (or this machine's clock is wrong)")
            }
            TlsProblem::NotYetValid => {
                f.write_str("certificate is not valid yet (or this machine's clock is wrong)")
            }
            TlsProblem::NameMismatch {
                expected,
                presented,
            } => {
                f.write_str("certificate is not valid for ")?;
                f.write_str(expected.as_deref().unwrap_or("the requested host"))?;
                if !presented.is_empty() {
                    write!(f, " (it is valid for {})", presented.join(", "))?;
                }
                Ok(())
            }
            TlsProblem::Revoked => f.write_str("certificate has been revoked"),
            TlsProblem::ClientCertificateRequired => f.write_str(
                "the server requires a client certificate: set fetch.client_cert_file and fetch.client_key_file",
            ),
            TlsProblem::PeerRefused(alert) => {
                write!(f, "the server refused the TLS handshake ({alert})")
            }
            TlsProblem::NoCommonParameters => f.write_str(
                "no TLS version or cipher suite in common with the server (TLS 1.2+ with modern ciphers is required)",
            ),
            TlsProblem::BadCertificate(why) => write!(f, "certificate rejected: {why}"),
            TlsProblem::Other(why) => write!(f, "TLS error: {why}"),
        }
    }
}

/// Finds the TLS failure in an error's chain, if there is one.
///
/// Walks `source()` and also looks inside `std::io::Error`s, whose `source()` skips the error
/// they wrap (tokio-rustls reports handshake failures as an `io::Error` wrapping a
/// `rustls::Error`).
pub fn explain(error: &(dyn StdError + 'static)) -> Option<TlsProblem> {
    let mut current = Some(error);
    let mut depth = 0;
    while let Some(e) = current {
        depth += 1;
        if depth > 32 {
            return None;
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(classify(tls));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(found) = explain(inner)
        {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// Classifies one rustls error.
pub fn classify(error: &rustls::Error) -> TlsProblem {
    match error {
        rustls::Error::InvalidCertificate(cert) => classify_certificate(cert),
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
            TlsProblem::ClientCertificateRequired
        }
        rustls::Error::AlertReceived(AlertDescription::ProtocolVersion)
        | rustls::Error::AlertReceived(AlertDescription::InsufficientSecurity)
        | rustls::Error::PeerIncompatible(_) => TlsProblem::NoCommonParameters,
        rustls::Error::AlertReceived(alert) => TlsProblem::PeerRefused(format!("{alert:?}")),
        rustls::Error::NoCertificatesPresented => TlsProblem::ClientCertificateRequired,
        other => TlsProblem::Other(other.to_string()),
    }
}

fn classify_certificate(error: &CertificateError) -> TlsProblem {
    match error {
        CertificateError::UnknownIssuer => TlsProblem::UnknownAuthority,
        CertificateError::Expired => TlsProblem::Expired { not_after: None },
        CertificateError::ExpiredContext { not_after, .. } => TlsProblem::Expired {
            not_after: SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(not_after.as_secs())),
        },
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            TlsProblem::NotYetValid
        }
        CertificateError::NotValidForName => TlsProblem::NameMismatch {
            expected: None,
            presented: Vec::new(),
        },
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => TlsProblem::NameMismatch {
            expected: Some(expected.to_str().into_owned()),
            presented: presented.clone(),
        },
        CertificateError::Revoked => TlsProblem::Revoked,
        other => TlsProblem::BadCertificate(format!("{other:?}")),
    }
}
