//! The `[tls]` section and the outbound TLS keys of `[fetch]`.
//!
//! `#[serde(default, deny_unknown_fields)]` throughout; lower snake_case keys so that the
//! server's environment mapping reaches each (`GOMODPROXY_TLS__CERT_FILE`, …). Paths are not
//! secrets, so `Debug` is derived; key material never enters these structs.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[tls]`: the HTTPS listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenerTlsConfig {
    /// `tls.listen`: the address of the HTTPS listener, beside the plain HTTP one on the
    /// server's `listen`. Unset (the default) with `cert_file` set: `listen` itself serves
    /// HTTPS and there is no plain listener. Not read by this crate: the server binds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<std::net::SocketAddr>,
    /// `tls.cert_file`: the certificate chain, PEM, leaf first. Setting it turns TLS on.
    /// Default: none.
    pub cert_file: Option<PathBuf>,
    /// `tls.key_file`: the private key, PEM (PKCS#8, PKCS#1 or SEC1). Required with
    /// `cert_file`. Default: none.
    pub key_file: Option<PathBuf>,
    /// `tls.client_ca_file`: CA certificates (PEM) that client certificates must chain to;
    /// setting it turns on client certificate authentication (mTLS). Default: none.
    pub client_ca_file: Option<PathBuf>,
    /// `tls.client_auth`: with `client_ca_file`, whether a client certificate is `required`
    /// (handshakes without one fail) or `optional` (one is verified if sent). Default:
    /// `required`.
    pub client_auth: ClientAuthMode,
    /// `tls.watch_interval`: how often the certificate and key files are checked for changes;
    /// `0s` turns the watcher off (reload on SIGHUP only). Default: `2s`.
    #[serde(with = "humantime_serde")]
    pub watch_interval: Duration,
    /// `tls.session_cache_size`: TLS 1.2 session IDs and TLS 1.3 stateful resumptions kept
    /// in memory; 0 turns the cache off. Default: 4096.
    pub session_cache_size: usize,
    /// `tls.session_tickets`: issue stateless resumption tickets (keys rotate every 6 hours,
    /// never leave the process). Default: true.
    pub session_tickets: bool,
}

impl Default for ListenerTlsConfig {
    fn default() -> Self {
        ListenerTlsConfig {
            listen: None,
            cert_file: None,
            key_file: None,
            client_ca_file: None,
            client_auth: ClientAuthMode::Required,
            watch_interval: Duration::from_secs(2),
            session_cache_size: 4096,
            session_tickets: true,
        }
    }
}

impl ListenerTlsConfig {
    /// Reports whether TLS is configured (`tls.cert_file` set).
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some()
    }
}

/// Whether the listener requires a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMode {
    /// A handshake without a valid client certificate fails.
    Required,
    /// A client certificate is verified if sent; clients without one connect too.
    Optional,
}

/// The outbound TLS keys, for the server to embed in `[fetch]` (`fetch.ca_file`,
/// `fetch.client_cert_file`, `fetch.client_key_file`) by copying these fields or nesting the
/// struct; `serde(flatten)` does not combine with `deny_unknown_fields`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundTlsConfig {
    /// `fetch.ca_file`: extra CA certificates (PEM) trusted for upstreams and git over https,
    /// added to the system roots (a company's TLS-inspecting proxy, a private registry).
    /// Default: none.
    pub ca_file: Option<PathBuf>,
    /// `fetch.client_cert_file`: a client certificate chain (PEM) presented to upstreams that
    /// ask for one. Default: none.
    pub client_cert_file: Option<PathBuf>,
    /// `fetch.client_key_file`: its private key (PEM). Required with `client_cert_file`.
    /// Default: none.
    pub client_key_file: Option<PathBuf>,
}
