//! A test certificate authority (rcgen) and the credential files of the access tests: server
//! certificates for 127.0.0.1 signed by the CA, htpasswd lines with bcrypt hashes, token files;
//! and [`TlsFront`], a TLS terminator that puts HTTPS in front of a plain loopback server (git
//! http-backend, say).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A certificate authority made for one test; its certificate is written to `ca.pem`.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").field("dir", &self.dir).finish()
    }
}

/// A certificate chain and key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate (leaf only).
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA named `name`, its files under `dir` (created).
    pub fn new(dir: &Path, name: &str) -> TestCa {
        std::fs::create_dir_all(dir).expect("create CA dir");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key"))
            .expect("self-sign CA");
        let ca = TestCa {
            issuer,
            dir: dir.to_path_buf(),
        };
        write_atomically(&ca.ca_file(), &ca.issuer.pem());
        ca
    }

    /// The CA certificate (PEM): what `SSL_CERT_FILE` and `fetch.ca_file` point at.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Issues a server certificate for 127.0.0.1 and localhost with common name `cn`, written
    /// (atomically, as renewal tools do) to `<stem>.pem` and `<stem>.key`.
    pub fn server(&self, stem: &str, cn: &str) -> CertFiles {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
            .expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        let files = CertFiles {
            cert: self.dir.join(format!("{stem}.pem")),
            key: self.dir.join(format!("{stem}.key")),
        };
        // Key first: a watcher that sees the new certificate also finds its key.
        write_atomically(&files.key, &key.serialize_pem());
        write_atomically(&files.cert, &cert.pem());
        files
    }

    /// Issues a client certificate (mTLS) with common name `cn`, written to `<stem>.pem` and
    /// `<stem>.key`.
    pub fn client(&self, stem: &str, cn: &str) -> CertFiles {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().expect("client key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign client");
        let files = CertFiles {
            cert: self.dir.join(format!("{stem}.pem")),
            key: self.dir.join(format!("{stem}.key")),
        };
        write_atomically(&files.key, &key.serialize_pem());
        write_atomically(&files.cert, &cert.pem());
        files
    }
}

/// Writes `content` to `path` through a temporary file and a rename.
pub fn write_atomically(path: &Path, content: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, content).expect("write temp file");
    std::fs::rename(&tmp, path).expect("rename into place");
}

/// An htpasswd line for `user` with a bcrypt hash of `password` at the lowest cost (fast tests).
pub fn htpasswd_line(user: &str, password: &str) -> String {
    let hash = gomodproxy_access::hash_password(password.as_bytes(), 4).expect("bcrypt");
    format!("{user}:{hash}\n")
}

/// A new random token and its token-file line for `name`.
pub fn token(name: &str) -> (String, String) {
    let token = gomodproxy_access::generate_token();
    let line = gomodproxy_access::token_file_line(name, &token).expect("token line");
    let token = String::from_utf8(token.expose().to_vec()).expect("tokens are ASCII");
    let line = if line.ends_with('\n') {
        line
    } else {
        line + "\n"
    };
    (token, line)
}

/// A rustls server configuration serving `cert` (TLS 1.2+, no client certificates).
pub fn server_config(cert: &CertFiles) -> Arc<rustls::ServerConfig> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert.cert)
        .expect("read cert")
        .collect::<Result<_, _>>()
        .expect("parse cert");
    let key = PrivateKeyDer::from_pem_file(&cert.key).expect("read key");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config"),
    )
}

/// HTTPS in front of a plain TCP server on loopback: every TLS connection is terminated with
/// a certificate and its bytes copied both ways to a new connection to the backend. Dropping
/// it closes the port and every connection.
#[derive(Debug)]
pub struct TlsFront {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl TlsFront {
    /// Serves `cert` on a free loopback port, forwarding to `backend`.
    pub fn start(cert: &CertFiles, backend: SocketAddr) -> TlsFront {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tls-front")
            .enable_all()
            .build()
            .expect("TLS front runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind TLS front");
        let addr = listener.local_addr().expect("TLS front addr");
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config(cert));
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsFront {
            addr,
            _runtime: runtime,
        }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}
