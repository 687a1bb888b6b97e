//! The HTTPS listener's TLS: a `rustls::ServerConfig` whose certificate comes from a resolver
//! over an atomically swapped [`CertifiedKey`], so a renewed certificate takes effect for the
//! next handshake without a restart and without touching open connections.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{
    ClientHello, ResolvesServerCert, ServerSessionMemoryCache, WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use sha2::{Digest as _, Sha256};

use crate::config::{ClientAuthMode, ListenerTlsConfig};
use crate::pem::{load_certs, load_key};
use crate::{TlsError, provider};
use gomodproxy_file_watch::{ChangeTracker, Watcher};

/// What certificate is being served, for logs: the leaf's SHA-256 fingerprint and the chain
/// length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// SHA-256 of the leaf certificate's DER, lower-case hex.
    pub fingerprint: String,
    /// Certificates in the chain, leaf included.
    pub chain_len: usize,
}

impl fmt::Display for CertSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "leaf sha256 {} ({} certificates in the chain)",
            self.fingerprint, self.chain_len
        )
    }
}

struct Loaded {
    key: Arc<CertifiedKey>,
    summary: CertSummary,
}

/// Hands every handshake the certificate in force at that moment.
struct SwappingResolver {
    current: ArcSwap<Loaded>,
}

impl fmt::Debug for SwappingResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwappingResolver")
            .field("certificate", &self.current.load().summary)
            .finish()
    }
}

impl ResolvesServerCert for SwappingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().key.clone())
    }
}

/// The listener's TLS configuration with its reloadable certificate.
pub struct ListenerTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    resolver: Arc<SwappingResolver>,
    config: ServerConfig,
    reload_lock: Mutex<()>,
    tracker: ChangeTracker,
    watch_interval: Duration,
}

impl fmt::Debug for ListenerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerTls")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("certificate", &self.current())
            .finish_non_exhaustive()
    }
}

impl ListenerTls {
    /// Loads the certificate, key and (if set) client CA, and builds the server configuration:
    /// TLS 1.3 and 1.2 only, rustls' default cipher suites (AEAD with forward secrecy; no CBC,
    /// RC4 or static RSA exist in rustls), session resumption by cache and tickets.
    pub fn load(cfg: &ListenerTlsConfig) -> Result<ListenerTls, TlsError> {
        let (Some(cert_file), Some(key_file)) = (&cfg.cert_file, &cfg.key_file) else {
            return Err(TlsError::Config {
                key: if cfg.cert_file.is_none() {
                    "tls.cert_file".into()
                } else {
                    "tls.key_file".into()
                },
                reason: "tls.cert_file and tls.key_file must be set together".into(),
            });
        };
        let provider = provider();
        let tracker = ChangeTracker::new(vec![cert_file.clone(), key_file.clone()]);
        let loaded = load_pair(&provider, cert_file, key_file)?;
        let resolver = Arc::new(SwappingResolver {
            current: ArcSwap::from_pointee(loaded),
        });
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Build {
                what: "TLS server configuration",
                reason: e.to_string(),
            })?;
        let builder = match &cfg.client_ca_file {
            Some(ca_file) => {
                let mut roots = RootCertStore::empty();
                for cert in load_certs(ca_file)? {
                    roots.add(cert).map_err(|e| TlsError::Pem {
                        path: ca_file.clone(),
                        reason: format!("not a usable CA certificate: {e}"),
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                let verifier = match cfg.client_auth {
                    ClientAuthMode::Required => verifier,
                    ClientAuthMode::Optional => verifier.allow_unauthenticated(),
                };
                let verifier = verifier.build().map_err(|e| TlsError::Build {
                    what: "client certificate verifier",
                    reason: e.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(resolver.clone());
        config.session_storage = if cfg.session_cache_size > 0 {
            ServerSessionMemoryCache::new(cfg.session_cache_size)
        } else {
            Arc::new(rustls::server::NoServerSessionStorage {})
        };
        if cfg.session_tickets {
            config.ticketer =
                rustls::crypto::aws_lc_rs::Ticketer::new().map_err(|e| TlsError::Build {
                    what: "session ticketer",
                    reason: e.to_string(),
                })?;
        }
        Ok(ListenerTls {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
            provider,
            resolver,
            config,
            reload_lock: Mutex::new(()),
            tracker,
            watch_interval: cfg.watch_interval,
        })
    }

    /// The server configuration to hand to the HTTP server (actix-web's `bind_rustls_0_23`,
    /// or tokio-rustls). Every clone shares the certificate resolver, the session cache and
    /// the ticket keys. ALPN is left empty: actix-web sets the protocols it speaks.
    pub fn server_config(&self) -> ServerConfig {
        self.config.clone()
    }

    /// The certificate in force.
    pub fn current(&self) -> CertSummary {
        self.resolver.current.load().summary.clone()
    }

    /// Re-reads the certificate and key; if they load and match, new handshakes use them.
    /// Otherwise the previous pair stays in force and the error says why.
    pub fn reload(&self) -> Result<CertSummary, TlsError> {
        let _serial = self.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.tracker.mark();
        let loaded = load_pair(&self.provider, &self.cert_file, &self.key_file)?;
        let summary = loaded.summary.clone();
        self.resolver.current.store(Arc::new(loaded));
        Ok(summary)
    }

    /// Reloads if the certificate or key file changed since the last load, logging the
    /// outcome on target `gomodproxy::tls`. Returns whether a reload was attempted.
    ///
    /// A renewal that writes the two files one after the other may be seen half done (new
    /// certificate, old key): that reload fails on the mismatch, keeps the old pair, and the
    /// next poll, after the second write, succeeds.
    pub fn reload_if_changed(&self) -> bool {
        if !self.tracker.changed() {
            return false;
        }
        match self.reload() {
            Ok(summary) => {
                tracing::info!(target: "gomodproxy::tls", certificate = %summary, "TLS certificate reloaded")
            }
            Err(error) => tracing::warn!(
                target: "gomodproxy::tls",
                %error,
                "TLS certificate files changed but could not be loaded; keeping the previous certificate"
            ),
        }
        true
    }

    /// Starts a thread that reloads the pair when a file changes (every `tls.watch_interval`).
    /// `None` with a zero interval. Dropping the [`Watcher`] stops it.
    pub fn watch(self: &Arc<Self>) -> std::io::Result<Option<Watcher>> {
        if self.watch_interval.is_zero() {
            return Ok(None);
        }
        Watcher::spawn(
            "tls",
            self.watch_interval,
            Arc::downgrade(self),
            ListenerTls::reload_if_changed,
        )
        .map(Some)
    }
}

fn load_pair(
    provider: &CryptoProvider,
    cert_file: &std::path::Path,
    key_file: &std::path::Path,
) -> Result<Loaded, TlsError> {
    let chain = load_certs(cert_file)?;
    let key = load_key(key_file)?;
    let summary = CertSummary {
        fingerprint: hex::encode(Sha256::digest(chain[0].as_ref())),
        chain_len: chain.len(),
    };
    let certified =
        CertifiedKey::from_der(chain, key, provider).map_err(|source| TlsError::KeyPair {
            cert: cert_file.to_path_buf(),
            key: key_file.to_path_buf(),
            source,
        })?;
    // from_der checks that the key matches when it can tell; insist on a parseable leaf too.
    certified
        .end_entity_cert()
        .map_err(|source| TlsError::KeyPair {
            cert: cert_file.to_path_buf(),
            key: key_file.to_path_buf(),
            source,
        })?;
    Ok(Loaded {
        key: Arc::new(certified),
        summary,
    })
}
