//! The upstream chain: `,` vs `|`, `file://` directories, `off`, and configuration errors.

use std::sync::Arc;

use bytes::Bytes;
use gomodproxy_service::{
    Mode, ProxyService, ServiceConfig, ServiceError, UpstreamChain, VersionQuery,
};
use gomodproxy_storage::memory::InMemory;

use crate::assert_err;
use crate::support::*;

const M: &str = "example.com/m";
const V: &str = "v1.0.0";
const MOD: &str = "example.com/m/@v/v1.0.0.mod";
const GO_MOD: &str = "module example.com/m\n";

async fn two() -> (Upstream, Upstream) {
    let (a, b) = (Upstream::start().await, Upstream::start().await);
    b.set(MOD, [Reply::Ok(GO_MOD.into())]);
    (a, b)
}

async fn go_mod(upstream: &str) -> Result<Bytes, ServiceError> {
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(upstream));
    match svc.go_mod(&module(M), &version(V)).await {
        Ok(answer) => Ok(body(answer).await),
        Err(e) => Err(e),
    }
}

#[tokio::test]
async fn comma_falls_through_on_not_found_only() {
    let (a, b) = two().await;
    a.set(MOD, [Reply::Status(404)]);
    assert_eq!(
        go_mod(&format!("{},{}", a.url, b.url)).await.unwrap(),
        GO_MOD
    );
    a.set(MOD, [Reply::Status(410)]);
    assert_eq!(
        go_mod(&format!("{},{}", a.url, b.url)).await.unwrap(),
        GO_MOD
    );
    assert_eq!(b.hits(MOD), 2);

    a.set(MOD, [Reply::Status(500)]);
    let msg = assert_err!(go_mod(&format!("{},{}", a.url, b.url)).await, BadUpstream);
    assert!(msg.contains(&a.url) && msg.contains("500"), "{msg}");
    // Invalid content stops a `,` chain too: it is an error, not "not found".
    a.set(MOD, [Reply::Ok(Bytes::from_static(b"\xff\xfe"))]);
    assert_err!(go_mod(&format!("{},{}", a.url, b.url)).await, BadUpstream);
    assert_eq!(b.hits(MOD), 2);
}

#[tokio::test]
async fn pipe_falls_through_on_any_error() {
    let (a, b) = two().await;
    for bad in [
        Reply::Status(500),
        Reply::Status(403),
        Reply::Hang,
        Reply::Ok(Bytes::from_static(b"\xff\xfe")),
    ] {
        a.set(MOD, [bad]);
        assert_eq!(
            go_mod(&format!("{}|{}", a.url, b.url)).await.unwrap(),
            GO_MOD
        );
    }
    a.set(MOD, [Reply::Status(404)]);
    assert_eq!(
        go_mod(&format!("{}|{}", a.url, b.url)).await.unwrap(),
        GO_MOD
    );
    assert_eq!(b.hits(MOD), 5);
}

#[tokio::test]
async fn the_most_useful_error_is_reported() {
    let (a, b) = two().await;
    a.set(MOD, [Reply::Status(500)]);
    b.set(MOD, [Reply::Status(404)]);
    // a's failure says more than b's "not found".
    let msg = assert_err!(go_mod(&format!("{}|{}", a.url, b.url)).await, BadUpstream);
    assert!(msg.contains(&a.url), "{msg}");
    a.set(MOD, [Reply::Status(404)]);
    let msg = assert_err!(go_mod(&format!("{},{}", a.url, b.url)).await, NotFound);
    assert!(msg.contains(&b.url), "{msg}");
}

#[tokio::test]
async fn the_separator_belongs_to_the_entry_before_it() {
    let (a, b) = two().await;
    let c = Upstream::start().await;
    a.set(MOD, [Reply::Status(404)]);
    b.set(MOD, [Reply::Status(500)]);
    c.set(MOD, [Reply::Ok(GO_MOD.into())]);
    // a,b|c: a's 404 falls to b; b's 500 falls to c because `|` follows b.
    assert_eq!(
        go_mod(&format!("{},{}|{}", a.url, b.url, c.url))
            .await
            .unwrap(),
        GO_MOD
    );
    // a|b,c: b's 500 stops the chain.
    assert_err!(
        go_mod(&format!("{}|{},{}", a.url, b.url, c.url)).await,
        BadUpstream
    );
    assert_eq!(c.hits(MOD), 1);
}

#[tokio::test]
async fn file_upstream_in_goproxy_layout() {
    let dir = tempfile::tempdir().unwrap();
    let vdir = dir.path().join("example.com/m/@v");
    std::fs::create_dir_all(&vdir).unwrap();
    std::fs::write(vdir.join("v1.0.0.mod"), GO_MOD).unwrap();
    std::fs::write(vdir.join("v1.0.0.info"), info_json(V)).unwrap();
    std::fs::write(vdir.join("v1.0.0.zip"), good_zip(M, V)).unwrap();
    std::fs::write(vdir.join("list"), "v1.0.0\n").unwrap();
    let url = format!("file://{}", dir.path().display());
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&url));
    let (m, v) = (module(M), version(V));
    assert_eq!(body(svc.go_mod(&m, &v).await.unwrap()).await, GO_MOD);
    assert_eq!(
        body(
            svc.info(&m, &VersionQuery::Canonical(v.clone()))
                .await
                .unwrap()
        )
        .await,
        info_json(V)
    );
    assert_eq!(body(svc.zip(&m, &v).await.unwrap()).await, good_zip(M, V));
    assert_eq!(body(svc.list(&m).await.unwrap()).await, "v1.0.0\n");
    let msg = assert_err!(svc.go_mod(&m, &version("v1.0.1")).await, NotFound);
    assert!(msg.contains("file://"), "{msg}");

    // A missing file falls through a `,` to the next entry.
    let up = Upstream::start().await;
    up.set("example.com/m/@v/v1.0.1.mod", [Reply::Ok(GO_MOD.into())]);
    let svc = service(&storage, config(&format!("{url},{}", up.url)));
    assert_eq!(
        body(svc.go_mod(&m, &version("v1.0.1")).await.unwrap()).await,
        GO_MOD
    );
}

#[tokio::test]
async fn off_is_not_found_and_ends_the_chain() {
    let up = Upstream::start().await;
    up.set(MOD, [Reply::Ok(GO_MOD.into())]);
    let msg = assert_err!(go_mod(&format!("off,{}", up.url)).await, NotFound);
    assert!(msg.contains("GOPROXY=off"), "{msg}");
    assert_eq!(up.total_hits(), 0);
}

#[test]
fn invalid_chains_fail_at_construction() {
    let storage = Arc::new(InMemory::new());
    // The chain is parsed into its type when the configuration is read (issue 10), and the
    // service refuses what parses but cannot work (an empty chain online). `direct` is a valid
    // entry since issue 11.
    for bad in ["ftp://x.example", "justaword", ""] {
        let built = bad
            .parse::<UpstreamChain>()
            .map_err(|e| e.to_string())
            .and_then(|upstream| {
                let cfg = ServiceConfig {
                    upstream,
                    ..ServiceConfig::default()
                };
                ProxyService::new(storage.clone(), cfg)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
        match built {
            Err(e) => assert!(!e.is_empty()),
            Ok(()) => panic!("{bad:?}: expected an error, got a service"),
        }
    }
    // Building the HTTP client needs no async runtime (the server validates config before one
    // starts).
    let cfg = ServiceConfig {
        upstream: "proxy.example.com".parse().unwrap(),
        ..ServiceConfig::default()
    };
    ProxyService::new(storage.clone(), cfg).unwrap();
    // Offline needs no upstream at all.
    let cfg = ServiceConfig {
        upstream: "".parse().unwrap(),
        mode: Mode::Offline,
        ..ServiceConfig::default()
    };
    ProxyService::new(storage, cfg).unwrap();
}
