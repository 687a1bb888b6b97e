//! The access sections of the configuration (from the environment, redacted in `config
//! check`), the outbound settings, and the access layer in front of the HTTP application.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use base64::Engine;
use gomodproxy::access::AccessLayer;
use gomodproxy::config::Config;
use gomodproxy::http::app;
use gomodproxy_service::Mode;

use crate::call;
use crate::fixture::{self, HELLO, Upstream, escape, memory};

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn access_sections_come_from_the_environment_and_secrets_never_print() {
    let c = Config::load(
        None,
        env(&[
            ("GOMODPROXY_TLS__CERT_FILE", "/etc/gomodproxy/cert.pem"),
            ("GOMODPROXY_TLS__KEY_FILE", "/etc/gomodproxy/key.pem"),
            ("GOMODPROXY_TLS__LISTEN", "127.0.0.1:3443"),
            ("GOMODPROXY_AUTH__HTPASSWD_FILE", "/etc/gomodproxy/htpasswd"),
            ("GOMODPROXY_AUTH__RATE_LIMIT__BURST", "3"),
            ("GOMODPROXY_ACCESS__DEFAULT", "nobody"),
            (
                "GOMODPROXY_ACCESS__RULES",
                r#"[{"modules": "*.corp.example.com", "groups": ["dev"]}]"#,
            ),
            ("GOMODPROXY_POLICY__FILE", "/etc/gomodproxy/policy.toml"),
            (
                "GOMODPROXY_FETCH__HTTPS_PROXY",
                "http://corp:proxy-secret@proxy.corp:3128",
            ),
            ("GOMODPROXY_FETCH__NO_PROXY", "corp.example.com,10.0.0.0/8"),
            ("GOMODPROXY_FETCH__CA_FILE", "/etc/ssl/corp-ca.pem"),
            (
                "GOMODPROXY_FETCH__CREDENTIALS",
                r#"[{"url": "https://art.corp/api/go", "token": "token-secret"},
                    {"url": "https://git.corp", "username": "ci", "password": "password-secret"}]"#,
            ),
        ]),
    )
    .unwrap();
    assert_eq!(c.tls.listen, Some("127.0.0.1:3443".parse().unwrap()));
    assert_eq!(c.auth.rate_limit.burst, 3);
    assert_eq!(c.access.rules.len(), 1);
    assert_eq!(c.fetch.credentials.entries().len(), 2);
    assert_eq!(
        c.fetch.no_proxy.as_deref(),
        Some("corp.example.com,10.0.0.0/8")
    );
    let shown = c.to_toml_redacted().unwrap();
    for secret in ["proxy-secret", "token-secret", "password-secret"] {
        assert!(
            !shown.contains(secret),
            "{secret} in config check:\n{shown}"
        );
    }
    assert!(
        shown.contains("cert_file = \"/etc/gomodproxy/cert.pem\""),
        "{shown}"
    );
    // What `config check` prints without redaction loads back to the same configuration.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, c.to_toml().unwrap()).unwrap();
    assert_eq!(Config::load(Some(&path), env(&[])).unwrap(), c);
}

#[test]
fn tls_keys_that_do_not_fit_are_named() {
    for (vars, key) in [
        (
            vec![("GOMODPROXY_TLS__LISTEN", "127.0.0.1:3443")],
            "tls.listen",
        ),
        (
            vec![("GOMODPROXY_TLS__CERT_FILE", "/c.pem")],
            "tls.key_file",
        ),
        (
            vec![
                ("GOMODPROXY_TLS__CERT_FILE", "/c.pem"),
                ("GOMODPROXY_TLS__KEY_FILE", "/k.pem"),
                ("GOMODPROXY_TLS__LISTEN", "127.0.0.1:3000"),
            ],
            "tls.listen",
        ),
        (
            vec![("GOMODPROXY_FETCH__CLIENT_CERT_FILE", "/c.pem")],
            "fetch.client_key_file",
        ),
    ] {
        let err = Config::load(None, env(&vars)).unwrap_err().to_string();
        assert!(err.contains(key), "{vars:?}: {err}");
    }
}

#[test]
fn proxies_fall_back_to_the_environment_and_config_wins() {
    let c = Config::default();
    let vars = |name: &str| match name {
        "https_proxy" => Some("http://lower:3128".to_string()),
        "HTTP_PROXY" => Some("http://upper:3128".to_string()),
        "NO_PROXY" => Some(".corp".to_string()),
        _ => None,
    };
    let out = c.outbound(vars).unwrap();
    assert_eq!(out.https_proxy.as_deref(), Some("http://lower:3128"));
    assert_eq!(out.http_proxy.as_deref(), Some("http://upper:3128"));
    assert_eq!(out.no_proxy.as_deref(), Some(".corp"));
    let mut c = Config::default();
    c.fetch.https_proxy = Some("http://configured:8080".into());
    assert_eq!(
        c.outbound(vars).unwrap().https_proxy.as_deref(),
        Some("http://configured:8080")
    );
    c.fetch.ca_file = Some("/nonexistent/ca.pem".into());
    assert!(
        c.outbound(vars).is_err(),
        "a missing CA file is an error at start"
    );
}

fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[actix_web::test]
async fn the_access_layer_answers_before_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    let hash = gomodproxy_access::hash_password(b"right", 4).unwrap();
    std::fs::write(&htpasswd, format!("alice:{hash}\n")).unwrap();
    let mut config = Config::default();
    config.auth.htpasswd_file = Some(htpasswd);
    config.auth.metrics_require_auth = true;
    config.auth.watch_interval = std::time::Duration::ZERO;
    config.auth.rate_limit.burst = 2;
    let access = Arc::new(AccessLayer::new(&config).unwrap());
    let upstream = Upstream::new();
    let state = fixture::state(&upstream, memory(), Mode::Online).with_access(access);
    let svc = test::init_service(app(state)).await;
    let peer: SocketAddr = "192.0.2.7:4000".parse().unwrap();
    let list = format!("/{}/@v/list", escape(HELLO));
    let req = |path: &str, auth: Option<&str>| {
        let mut r = TestRequest::get().uri(path).peer_addr(peer);
        if let Some(a) = auth {
            r = r.insert_header(("authorization", a.to_string()));
        }
        r
    };

    for open in ["/healthz", "/readyz"] {
        assert_eq!(call!(svc, req(open, None)).status, StatusCode::OK, "{open}");
    }
    let r = call!(svc, req("/metrics", None));
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call!(svc, req(&list, None));
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Basic realm=\"gomodproxy\"")),
        "{:?}",
        r.headers
    );
    assert_eq!(r.text(), "authentication required\n");
    let r = call!(svc, req(&list, Some(&basic("alice", "right"))));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = call!(svc, req("/metrics", Some(&basic("alice", "right"))));
    assert_eq!(r.status, StatusCode::OK);
    // Failed attempts from one address are limited: then even the right password gets 429.
    for _ in 0..2 {
        let r = call!(svc, req(&list, Some(&basic("alice", "wrong"))));
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(
            r.text().contains("invalid username or password"),
            "{}",
            r.text()
        );
    }
    let r = call!(svc, req(&list, Some(&basic("alice", "right"))));
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert!(r.header("retry-after").is_some());
}
