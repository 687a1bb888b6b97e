//! Outbound TLS through reqwest: the extra CA, the client certificate, and the causes of
//! failures in words.

use gomodproxy_tls::{
    ClientAuthMode, ListenerTls, ListenerTlsConfig, OutboundTls, OutboundTlsConfig, TlsProblem,
    explain,
};

use crate::*;

async fn upstream(ca: &TestCa, leaf: &Leaf, client_ca: bool) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ListenerTlsConfig {
        cert_file: Some(write(dir.path(), "cert.pem", &leaf.cert_pem)),
        key_file: Some(write(dir.path(), "key.pem", &leaf.key_pem)),
        client_ca_file: client_ca.then(|| write(dir.path(), "clients.pem", &ca.pem())),
        client_auth: ClientAuthMode::Required,
        watch_interval: std::time::Duration::ZERO,
        ..ListenerTlsConfig::default()
    };
    let tls = ListenerTls::load(&cfg).unwrap();
    let addr = spawn_server(tls.server_config(), Serve::Http).await;
    (dir, format!("https://127.0.0.1:{}/", addr.port()))
}

fn client(outbound: &OutboundTls) -> reqwest::Client {
    outbound
        .configure_reqwest(reqwest::Client::builder())
        .unwrap()
        .build()
        .unwrap()
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<String, reqwest::Error> {
    client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

#[tokio::test]
async fn unknown_ca_then_fetch_ca_file() {
    let ca = TestCa::new("corporate proxy CA");
    let (dir, url) = upstream(&ca, &ca.server(&["127.0.0.1"]), false).await;

    let plain = OutboundTls::load(&OutboundTlsConfig::default()).unwrap();
    let err = fetch(&client(&plain), &url).await.unwrap_err();
    let problem = explain(&err).expect("a TLS problem in the chain");
    assert_eq!(problem, TlsProblem::UnknownAuthority);
    assert_eq!(
        problem.to_string(),
        "certificate signed by unknown authority: set fetch.ca_file"
    );

    let with_ca = OutboundTls::load(&OutboundTlsConfig {
        ca_file: Some(write(dir.path(), "ca.pem", &ca.pem())),
        ..OutboundTlsConfig::default()
    })
    .unwrap();
    assert_eq!(with_ca.extra_roots().len(), 1);
    assert_eq!(fetch(&client(&with_ca), &url).await.unwrap(), "ok");
    // The plain rustls configuration trusts the same roots, and without the CA it does not.
    let port: u16 = url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let handshake = |config: rustls::ClientConfig| async move {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await
    };
    handshake(with_ca.client_config().unwrap()).await.unwrap();
    let err = handshake(plain.client_config().unwrap()).await.unwrap_err();
    assert_eq!(explain(&err), Some(TlsProblem::UnknownAuthority));
}

#[tokio::test]
async fn expired_and_wrong_name() {
    let ca = TestCa::new("test CA");
    let dir = tempfile::tempdir().unwrap();
    let outbound = OutboundTls::load(&OutboundTlsConfig {
        ca_file: Some(write(dir.path(), "ca.pem", &ca.pem())),
        ..OutboundTlsConfig::default()
    })
    .unwrap();
    let http = client(&outbound);

    let (_d1, expired) = upstream(&ca, &ca.expired_server(&["127.0.0.1"]), false).await;
    let problem = explain(&fetch(&http, &expired).await.unwrap_err()).unwrap();
    assert!(matches!(problem, TlsProblem::Expired { .. }), "{problem:?}");
    let text = problem.to_string();
    assert!(
        text.starts_with("certificate has expired at 2021-01-01T00:00:00Z"),
        "{text}"
    );

    let (_d2, wrong) = upstream(&ca, &ca.server(&["proxy.example.com"]), false).await;
    let problem = explain(&fetch(&http, &wrong).await.unwrap_err()).unwrap();
    assert!(
        matches!(problem, TlsProblem::NameMismatch { .. }),
        "{problem:?}"
    );
    let text = problem.to_string();
    assert!(
        text.starts_with("certificate is not valid for 127.0.0.1")
            && text.contains("proxy.example.com"),
        "{text}"
    );
}

#[tokio::test]
async fn client_certificate_to_an_upstream_that_requires_one() {
    let ca = TestCa::new("test CA");
    let (dir, url) = upstream(&ca, &ca.server(&["127.0.0.1"]), true).await;
    let ca_file = write(dir.path(), "ca.pem", &ca.pem());
    let without = OutboundTls::load(&OutboundTlsConfig {
        ca_file: Some(ca_file.clone()),
        ..OutboundTlsConfig::default()
    })
    .unwrap();
    let err = fetch(&client(&without), &url).await.unwrap_err();
    let problem = explain(&err).unwrap_or_else(|| panic!("no TLS problem in {err:?}"));
    assert_eq!(problem, TlsProblem::ClientCertificateRequired, "{err:?}");

    let leaf = ca.client("gomodproxy");
    let with = OutboundTls::load(&OutboundTlsConfig {
        ca_file: Some(ca_file),
        client_cert_file: Some(write(dir.path(), "client.pem", &leaf.cert_pem)),
        client_key_file: Some(write(dir.path(), "client-key.pem", &leaf.key_pem)),
    })
    .unwrap();
    assert!(with.has_client_certificate());
    let shown = format!("{with:?}");
    assert!(
        !shown.contains("PRIVATE") && shown.contains("<redacted>"),
        "{shown}"
    );
    assert_eq!(fetch(&client(&with), &url).await.unwrap(), "ok");
}

#[test]
fn git_bundle_holds_the_system_roots_and_the_extra_ca() {
    let ca = TestCa::new("test CA");
    let dir = tempfile::tempdir().unwrap();
    let none = OutboundTls::load(&OutboundTlsConfig::default()).unwrap();
    let bundle = dir.path().join("git-ca.pem");
    assert!(!none.write_git_ca_bundle(&bundle).unwrap());
    assert!(!bundle.exists());
    let outbound = OutboundTls::load(&OutboundTlsConfig {
        ca_file: Some(write(dir.path(), "ca.pem", &ca.pem())),
        ..OutboundTlsConfig::default()
    })
    .unwrap();
    assert!(outbound.write_git_ca_bundle(&bundle).unwrap());
    let certs = gomodproxy_tls::pem::load_certs(&bundle).unwrap();
    let system = rustls_native_certs::load_native_certs().certs.len();
    assert_eq!(certs.len(), system + 1);
    assert_eq!(certs.last().unwrap(), &ca.der());
    assert_eq!(
        outbound.git_config(Some(&bundle)),
        [("http.sslCAInfo".to_string(), bundle.display().to_string())]
    );
}

#[test]
fn bad_outbound_settings() {
    let dir = tempfile::tempdir().unwrap();
    let leaf = TestCa::new("x").client("c");
    let cert = write(dir.path(), "c.pem", &leaf.cert_pem);
    let err = OutboundTls::load(&OutboundTlsConfig {
        client_cert_file: Some(cert),
        ..OutboundTlsConfig::default()
    })
    .unwrap_err();
    assert!(
        err.to_string().starts_with("fetch.client_key_file:"),
        "{err}"
    );
    let not_pem = write(dir.path(), "ca.pem", "hello");
    let err = OutboundTls::load(&OutboundTlsConfig {
        ca_file: Some(not_pem),
        ..OutboundTlsConfig::default()
    })
    .unwrap_err();
    assert!(
        err.to_string().ends_with("ca.pem: no CERTIFICATE block"),
        "{err}"
    );
}
