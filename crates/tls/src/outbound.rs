//! Outbound TLS for upstreams and git: the system roots plus an extra CA bundle
//! (`fetch.ca_file`), and an optional client certificate.
//!
//! reqwest 0.13 (rustls) verifies with `rustls-platform-verifier`, which on Linux loads the
//! system roots through `rustls-native-certs` (honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`)
//! and takes extra roots beside them: [`OutboundTls::configure_reqwest`] hands it ours with
//! `tls_certs_merge`. git over https (curl) replaces its default bundle when given
//! `http.sslCAInfo`, so for git [`OutboundTls::write_git_ca_bundle`] writes the system roots
//! and the extra ones into one file.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::OutboundTlsConfig;
use crate::pem::{load_certs, load_key, read};
use crate::{TlsError, provider};

/// A client certificate with its key. `Debug` shows neither.
struct ClientIdentity {
    cert_file: PathBuf,
    key_file: PathBuf,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// The chain and key as PEM, for reqwest's `Identity::from_pem`.
    pem: Vec<u8>,
}

/// The outbound TLS settings, loaded and checked.
pub struct OutboundTls {
    ca_file: Option<PathBuf>,
    extra_roots: Vec<CertificateDer<'static>>,
    identity: Option<ClientIdentity>,
}

impl fmt::Debug for OutboundTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundTls")
            .field("ca_file", &self.ca_file)
            .field("extra_roots", &self.extra_roots.len())
            .field(
                "client_certificate",
                &self.identity.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl OutboundTls {
    /// Loads `fetch.ca_file` and the client certificate, checking that each parses and that
    /// the key matches the certificate.
    pub fn load(cfg: &OutboundTlsConfig) -> Result<OutboundTls, TlsError> {
        let extra_roots = match &cfg.ca_file {
            Some(path) => {
                let certs = load_certs(path)?;
                // Fail now, not at the first fetch, on a certificate webpki cannot use as a root.
                let mut store = rustls::RootCertStore::empty();
                for cert in &certs {
                    store.add(cert.clone()).map_err(|e| TlsError::Pem {
                        path: path.clone(),
                        reason: format!("not a usable CA certificate: {e}"),
                    })?;
                }
                certs
            }
            None => Vec::new(),
        };
        let identity = match (&cfg.client_cert_file, &cfg.client_key_file) {
            (None, None) => None,
            (Some(cert_file), Some(key_file)) => {
                let chain = load_certs(cert_file)?;
                let key = load_key(key_file)?;
                rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider())
                    .map_err(|source| TlsError::KeyPair {
                    cert: cert_file.clone(),
                    key: key_file.clone(),
                    source,
                })?;
                let mut pem = read(cert_file)?;
                pem.push(b'\n');
                pem.extend(read(key_file)?);
                Some(ClientIdentity {
                    cert_file: cert_file.clone(),
                    key_file: key_file.clone(),
                    chain,
                    key,
                    pem,
                })
            }
            (Some(_), None) => {
                return Err(TlsError::Config {
                    key: "fetch.client_key_file".into(),
                    reason: "fetch.client_cert_file is set without its key".into(),
                });
            }
            (None, Some(_)) => {
                return Err(TlsError::Config {
                    key: "fetch.client_cert_file".into(),
                    reason: "fetch.client_key_file is set without its certificate".into(),
                });
            }
        };
        Ok(OutboundTls {
            ca_file: cfg.ca_file.clone(),
            extra_roots,
            identity,
        })
    }

    /// The extra roots from `fetch.ca_file`.
    pub fn extra_roots(&self) -> &[CertificateDer<'static>] {
        &self.extra_roots
    }

    /// Reports whether a client certificate is configured.
    pub fn has_client_certificate(&self) -> bool {
        self.identity.is_some()
    }

    /// Adds the extra roots (merged with the system roots) and the client certificate to a
    /// reqwest client builder.
    pub fn configure_reqwest(
        &self,
        builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, TlsError> {
        let mut builder = builder.tls_backend_rustls();
        if !self.extra_roots.is_empty() {
            let certs = self
                .extra_roots
                .iter()
                .map(|der| reqwest::Certificate::from_der(der.as_ref()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TlsError::Build {
                    what: "fetch.ca_file",
                    reason: e.to_string(),
                })?;
            builder = builder.tls_certs_merge(certs);
        }
        if let Some(identity) = &self.identity {
            let identity =
                reqwest::Identity::from_pem(&identity.pem).map_err(|e| TlsError::Build {
                    what: "fetch.client_cert_file",
                    reason: e.to_string(),
                })?;
            builder = builder.identity(identity);
        }
        Ok(builder)
    }

    /// A rustls client configuration with the same trust (system roots plus the extra ones,
    /// through the platform verifier) and client certificate, for clients other than reqwest.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, TlsError> {
        let provider = provider();
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
            self.extra_roots.iter().cloned(),
            provider.clone(),
        )
        .map_err(|e| TlsError::Build {
            what: "certificate verifier",
            reason: e.to_string(),
        })?;
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Build {
                what: "TLS client configuration",
                reason: e.to_string(),
            })?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier));
        match &self.identity {
            Some(id) => builder
                .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
                .map_err(|e| TlsError::Build {
                    what: "fetch.client_cert_file",
                    reason: e.to_string(),
                }),
            None => Ok(builder.with_no_client_auth()),
        }
    }

    /// Writes a CA bundle for git (`GIT_SSL_CAINFO` / `http.sslCAInfo`): the system roots
    /// (as `rustls-native-certs` finds them) followed by the extra ones, PEM. Returns `false`
    /// and writes nothing without `fetch.ca_file`: git's own default bundle is then right.
    /// The file is written next to `path` and renamed into place.
    pub fn write_git_ca_bundle(&self, path: &Path) -> Result<bool, TlsError> {
        if self.extra_roots.is_empty() {
            return Ok(false);
        }
        let system = rustls_native_certs::load_native_certs();
        let mut pem = Vec::new();
        for cert in system.certs.iter().chain(&self.extra_roots) {
            pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
            let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
            for line in b64.as_bytes().chunks(64) {
                pem.extend_from_slice(line);
                pem.push(b'\n');
            }
            pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
        }
        let err = |source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp).map_err(err)?;
        file.write_all(&pem).map_err(err)?;
        file.sync_all().map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)?;
        Ok(true)
    }

    /// The git configuration that applies these settings, as (key, value) pairs for
    /// `GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n` or `-c`: `http.sslCAInfo` when a bundle was
    /// written, `http.sslCert` and `http.sslKey` with a client certificate.
    pub fn git_config(&self, ca_bundle: Option<&Path>) -> Vec<(String, String)> {
        let mut settings = Vec::new();
        if let Some(bundle) = ca_bundle {
            settings.push(("http.sslCAInfo".to_string(), bundle.display().to_string()));
        }
        if let Some(id) = &self.identity {
            settings.push((
                "http.sslCert".to_string(),
                id.cert_file.display().to_string(),
            ));
            settings.push(("http.sslKey".to_string(), id.key_file.display().to_string()));
        }
        settings
    }
}
