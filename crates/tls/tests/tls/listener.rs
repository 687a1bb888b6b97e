//! The listener: handshakes, reload while serving, mTLS, resumption, bad files.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gomodproxy_tls::{ClientAuthMode, ListenerTls, ListenerTlsConfig, TlsError};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::*;

struct Files {
    dir: tempfile::TempDir,
    cfg: ListenerTlsConfig,
}

fn files(leaf: &Leaf) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let cert_file = write(dir.path(), "cert.pem", &leaf.cert_pem);
    let key_file = write(dir.path(), "key.pem", &leaf.key_pem);
    Files {
        cfg: ListenerTlsConfig {
            cert_file: Some(cert_file),
            key_file: Some(key_file),
            watch_interval: Duration::ZERO,
            ..ListenerTlsConfig::default()
        },
        dir,
    }
}

fn client_config(
    ca: &TestCa,
    versions: &[&'static rustls::SupportedProtocolVersion],
    client: Option<&Leaf>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(gomodproxy_tls::provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![leaf.der.clone()],
                PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

const ALL: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Connects, completes the handshake and reads the server's greeting.
async fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<BufReader<TlsStream<TcpStream>>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?;
    let mut stream = BufReader::new(tls);
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    if line != "hello\n" {
        return Err(std::io::Error::other(format!("greeting {line:?}")));
    }
    Ok(stream)
}

fn peer_leaf(stream: &BufReader<TlsStream<TcpStream>>) -> CertificateDer<'static> {
    stream.get_ref().get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

async fn echo(stream: &mut BufReader<TlsStream<TcpStream>>, text: &str) -> String {
    stream
        .get_mut()
        .write_all(format!("{text}\n").as_bytes())
        .await
        .unwrap();
    let mut line = String::new();
    stream.read_line(&mut line).await.unwrap();
    line
}

#[tokio::test]
async fn handshakes_with_tls13_and_tls12() {
    let ca = TestCa::new("test CA");
    let leaf = ca.server(&["localhost", "127.0.0.1"]);
    let f = files(&leaf);
    let tls = ListenerTls::load(&f.cfg).unwrap();
    assert_eq!(tls.current().chain_len, 1);
    let addr = spawn_server(tls.server_config(), Serve::Echo).await;
    for (versions, want) in [
        (
            &[&rustls::version::TLS13][..],
            rustls::ProtocolVersion::TLSv1_3,
        ),
        (
            &[&rustls::version::TLS12][..],
            rustls::ProtocolVersion::TLSv1_2,
        ),
    ] {
        let stream = connect(addr, client_config(&ca, versions, None))
            .await
            .unwrap();
        let conn = stream.get_ref().get_ref().1;
        assert_eq!(conn.protocol_version(), Some(want));
        assert_eq!(peer_leaf(&stream), leaf.der);
    }
    let config = tls.server_config();
    assert!(config.alpn_protocols.is_empty(), "actix sets ALPN itself");
}

#[tokio::test]
async fn reload_while_connections_continue() {
    let ca = TestCa::new("test CA");
    let first = ca.server(&["localhost"]);
    let f = files(&first);
    let tls = ListenerTls::load(&f.cfg).unwrap();
    let addr = spawn_server(tls.server_config(), Serve::Echo).await;
    // A fresh client config per connection: a resumed session would carry the certificate
    // of the session it resumes, and this test is about full handshakes.
    let client = || client_config(&ca, ALL, None);
    let mut old = connect(addr, client()).await.unwrap();
    assert_eq!(peer_leaf(&old), first.der);

    // Renewal: both files replaced, then reload (SIGHUP).
    let second = ca.server(&["localhost"]);
    write(f.dir.path(), "cert.pem", &second.cert_pem);
    write(f.dir.path(), "key.pem", &second.key_pem);
    let summary = tls.reload().unwrap();
    assert_eq!(summary, tls.current());
    let new = connect(addr, client()).await.unwrap();
    assert_eq!(
        peer_leaf(&new),
        second.der,
        "a new handshake sees the new certificate"
    );
    assert_eq!(
        echo(&mut old, "still there").await,
        "still there\n",
        "the old connection goes on"
    );

    // A half-done renewal (new certificate, old key): refused, the second pair stays.
    let third = ca.server(&["localhost"]);
    write(f.dir.path(), "cert.pem", &third.cert_pem);
    let err = tls.reload().unwrap_err();
    assert!(matches!(err, TlsError::KeyPair { .. }), "{err}");
    assert!(err.to_string().contains("cert.pem and "), "{err}");
    assert_eq!(tls.current(), summary);
    let again = connect(addr, client()).await.unwrap();
    assert_eq!(peer_leaf(&again), second.der);

    // Garbage in the key file: refused too.
    write(f.dir.path(), "key.pem", "not a key");
    assert!(matches!(tls.reload(), Err(TlsError::Pem { .. })));
    // The renewal completes: accepted.
    write(f.dir.path(), "key.pem", &third.key_pem);
    tls.reload().unwrap();
    assert_eq!(
        peer_leaf(&connect(addr, client()).await.unwrap()),
        third.der
    );
}

#[tokio::test]
async fn the_watcher_picks_up_renewed_files() {
    let ca = TestCa::new("test CA");
    let first = ca.server(&["localhost"]);
    let mut f = files(&first);
    f.cfg.watch_interval = Duration::from_millis(10);
    let tls = Arc::new(ListenerTls::load(&f.cfg).unwrap());
    let _watcher = tls.watch().unwrap().expect("a watcher");
    let addr = spawn_server(tls.server_config(), Serve::Echo).await;
    let before = tls.current();
    let second = ca.server(&["localhost"]);
    write(f.dir.path(), "key.pem", &second.key_pem);
    write(f.dir.path(), "cert.pem", &second.cert_pem);
    let deadline = Instant::now() + Duration::from_secs(30);
    while tls.current() == before {
        assert!(Instant::now() < deadline, "the watcher never reloaded");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stream = connect(addr, client_config(&ca, ALL, None)).await.unwrap();
    assert_eq!(peer_leaf(&stream), second.der);
}

#[tokio::test]
async fn mtls_required_accepts_the_ca_s_clients_and_refuses_others() {
    let ca = TestCa::new("test CA");
    let other_ca = TestCa::new("other CA");
    let leaf = ca.server(&["localhost"]);
    let mut f = files(&leaf);
    f.cfg.client_ca_file = Some(write(f.dir.path(), "clients.pem", &ca.pem()));
    let tls = ListenerTls::load(&f.cfg).unwrap();
    let addr = spawn_server(tls.server_config(), Serve::Echo).await;

    let good = ca.client("ci-bot");
    let mut stream = connect(addr, client_config(&ca, ALL, Some(&good)))
        .await
        .unwrap();
    assert_eq!(echo(&mut stream, "x").await, "x\n");
    // TLS 1.2 too.
    connect(
        addr,
        client_config(&ca, &[&rustls::version::TLS12], Some(&good)),
    )
    .await
    .unwrap();

    let stranger = other_ca.client("stranger");
    for (what, config) in [
        ("no certificate", client_config(&ca, ALL, None)),
        (
            "another CA's certificate",
            client_config(&ca, ALL, Some(&stranger)),
        ),
        (
            "no certificate, TLS 1.2",
            client_config(&ca, &[&rustls::version::TLS12], None),
        ),
    ] {
        assert!(connect(addr, config).await.is_err(), "{what} was accepted");
    }
}

#[tokio::test]
async fn mtls_optional_lets_clients_without_a_certificate_in() {
    let ca = TestCa::new("test CA");
    let leaf = ca.server(&["localhost"]);
    let mut f = files(&leaf);
    f.cfg.client_ca_file = Some(write(f.dir.path(), "clients.pem", &ca.pem()));
    f.cfg.client_auth = ClientAuthMode::Optional;
    let tls = ListenerTls::load(&f.cfg).unwrap();
    let addr = spawn_server(tls.server_config(), Serve::Echo).await;
    connect(addr, client_config(&ca, ALL, None)).await.unwrap();
    connect(addr, client_config(&ca, ALL, Some(&ca.client("c"))))
        .await
        .unwrap();
    let stranger = TestCa::new("other").client("s");
    assert!(
        connect(addr, client_config(&ca, ALL, Some(&stranger)))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn sessions_resume_by_ticket_and_by_cache() {
    let ca = TestCa::new("test CA");
    let leaf = ca.server(&["localhost"]);
    for tickets in [true, false] {
        let mut f = files(&leaf);
        f.cfg.session_tickets = tickets;
        let tls = ListenerTls::load(&f.cfg).unwrap();
        let addr = spawn_server(tls.server_config(), Serve::Echo).await;
        for versions in [
            &[&rustls::version::TLS13][..],
            &[&rustls::version::TLS12][..],
        ] {
            // One client config: its resumption store carries the session to the next
            // connection.
            let client = client_config(&ca, versions, None);
            let first = connect(addr, client.clone()).await.unwrap();
            assert_eq!(
                first.get_ref().get_ref().1.handshake_kind(),
                Some(rustls::HandshakeKind::Full)
            );
            drop(first);
            let second = connect(addr, client).await.unwrap();
            assert_eq!(
                second.get_ref().get_ref().1.handshake_kind(),
                Some(rustls::HandshakeKind::Resumed),
                "tickets={tickets} versions={versions:?}"
            );
        }
    }
}

#[test]
fn configuration_and_file_errors() {
    let ca = TestCa::new("test CA");
    let leaf = ca.server(&["localhost"]);
    let f = files(&leaf);
    let only_cert = ListenerTlsConfig {
        key_file: None,
        ..f.cfg.clone()
    };
    assert!(matches!(
        ListenerTls::load(&only_cert),
        Err(TlsError::Config { key, .. }) if key == "tls.key_file"
    ));
    let no_cert = write(f.dir.path(), "empty.pem", "");
    let err = ListenerTls::load(&ListenerTlsConfig {
        cert_file: Some(no_cert),
        ..f.cfg.clone()
    })
    .unwrap_err();
    assert!(
        err.to_string().ends_with("empty.pem: no CERTIFICATE block"),
        "{err}"
    );
    let other_key = write(f.dir.path(), "other-key.pem", &ca.server(&["x"]).key_pem);
    let err = ListenerTls::load(&ListenerTlsConfig {
        key_file: Some(other_key),
        ..f.cfg.clone()
    })
    .unwrap_err();
    assert!(matches!(err, TlsError::KeyPair { .. }), "{err}");
    assert!(!err.to_string().contains("PRIVATE KEY"), "{err}");
    let missing = ListenerTls::load(&ListenerTlsConfig {
        client_ca_file: Some(f.dir.path().join("nope.pem")),
        ..f.cfg.clone()
    })
    .unwrap_err();
    assert!(matches!(missing, TlsError::Read { .. }), "{missing}");
}
