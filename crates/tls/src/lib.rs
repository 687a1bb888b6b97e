//! TLS for gomodproxy: the HTTPS listener and outbound trust.
//!
//! - [`ListenerTls`] loads `tls.cert_file` and `tls.key_file` into a `rustls::ServerConfig`
//!   whose certificate resolver reads an atomically swapped `CertifiedKey`: [`ListenerTls::reload`]
//!   (SIGHUP) or the file watcher ([`ListenerTls::watch`]) puts a renewed certificate in force
//!   for the next handshake, open connections untouched; a bad new pair keeps the old one and
//!   says why. Optional client certificates (mTLS) against `tls.client_ca_file`, required or
//!   optional. TLS 1.2 and 1.3 only with rustls' default suites; resumption by session cache
//!   and tickets.
//! - [`OutboundTls`] adds `fetch.ca_file` to the system roots and an optional client
//!   certificate, for reqwest ([`OutboundTls::configure_reqwest`]), other rustls clients
//!   ([`OutboundTls::client_config`]) and git ([`OutboundTls::write_git_ca_bundle`]).
//! - [`explain`] finds the TLS failure in an error chain and says it in words
//!   ("certificate signed by unknown authority: set fetch.ca_file").
//!
//! Crypto is aws-lc-rs, the provider reqwest already brings into the workspace, selected
//! explicitly so that no process-wide default has to be installed.
//!
//! The file watcher is the same metadata poll as gomodproxy-access's (a copy: neither crate
//! should depend on the other for 80 lines).

#![deny(missing_docs)]

pub mod config;
mod error;
mod explain;
mod listener;
mod outbound;
pub mod pem;

use std::sync::Arc;

pub use config::{ClientAuthMode, ListenerTlsConfig, OutboundTlsConfig};
pub use error::TlsError;
pub use explain::{TlsProblem, classify, explain};
pub use gomodproxy_file_watch::Watcher;
pub use listener::{CertSummary, ListenerTls};
pub use outbound::OutboundTls;

/// The crypto provider every configuration of this crate uses (aws-lc-rs, default suites).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}
