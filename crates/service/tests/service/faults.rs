//! A misbehaving upstream: the right error, nothing stored, and a later good answer is served.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gomodproxy_service::{ServiceConfig, VersionQuery};
use gomodproxy_storage::memory::InMemory;

use crate::assert_err;
use crate::support::*;

const M: &str = "example.com/m";
const V: &str = "v1.0.0";
const ZIP: &str = "example.com/m/@v/v1.0.0.zip";
const INFO: &str = "example.com/m/@v/v1.0.0.info";
const MOD: &str = "example.com/m/@v/v1.0.0.mod";

/// Fetches the zip with `bad` as the only reply, expects the `variant` error mentioning each
/// of `needles`, checks nothing was stored, then makes upstream good and expects success.
macro_rules! zip_fault {
    ($cfg:expr, $bad:expr, $variant:ident, $($needle:expr),+) => {{
        let up = Upstream::start().await;
        up.set(ZIP, [$bad]);
        let storage = Arc::new(InMemory::new());
        let cfg: fn(&str) -> ServiceConfig = $cfg;
        let svc = service(&storage, cfg(&up.url));
        let msg = assert_err!(svc.zip(&module(M), &version(V)).await, $variant);
        $(assert!(msg.contains($needle), "{msg:?} should mention {:?}", $needle);)+
        assert!(stored(&storage).await.is_empty(), "stored after a fault: {:?}", stored(&storage).await);
        let zip = good_zip(M, V);
        up.set(ZIP, [Reply::Ok(zip.clone())]);
        assert_eq!(body(svc.zip(&module(M), &version(V)).await.unwrap()).await, zip);
        up
    }};
}

#[tokio::test]
async fn server_error() {
    let up = zip_fault!(
        config,
        Reply::Status(500),
        BadUpstream,
        "returned 500",
        ZIP,
        "127.0.0.1"
    );
    assert_eq!(up.hits(ZIP), 2);
}

#[tokio::test]
async fn client_errors_other_than_404_are_upstream_errors() {
    zip_fault!(config, Reply::Status(403), BadUpstream, "returned 403");
}

#[tokio::test]
async fn not_found_and_gone() {
    zip_fault!(config, Reply::Status(404), NotFound, "returned 404", ZIP);
    zip_fault!(config, Reply::Status(410), NotFound, "returned 410");
}

#[tokio::test]
async fn hang_before_headers_times_out() {
    let started = Instant::now();
    zip_fault!(config, Reply::Hang, UpstreamTimeout, "did not answer", ZIP);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn stall_in_the_body_times_out() {
    let zip = good_zip(M, V);
    let claimed = zip.len() as u64;
    let partial = zip.slice(..zip.len() / 2);
    zip_fault!(
        config,
        Reply::Stall {
            body: partial,
            claimed
        },
        UpstreamTimeout,
        "sent nothing"
    );
}

#[tokio::test]
async fn truncated_body() {
    let zip = good_zip(M, V);
    let claimed = zip.len() as u64 + 100;
    zip_fault!(
        config,
        Reply::Truncated { body: zip, claimed },
        BadUpstream,
        ZIP
    );
}

#[tokio::test]
async fn content_length_shorter_than_the_zip() {
    // The client reads exactly the announced bytes, which are not a valid zip.
    let zip = good_zip(M, V);
    let claimed = zip.len() as u64 - 10;
    zip_fault!(
        config,
        Reply::Truncated { body: zip, claimed },
        BadUpstream,
        "invalid module zip"
    );
}

#[tokio::test]
async fn corrupt_zip() {
    zip_fault!(
        config,
        Reply::Ok(Bytes::from_static(b"PK\x03\x04 this is not a zip")),
        BadUpstream,
        "invalid module zip"
    );
}

#[tokio::test]
async fn zip_for_another_version() {
    zip_fault!(
        config,
        Reply::Ok(good_zip(M, "v1.0.1")),
        BadUpstream,
        "invalid module zip"
    );
}

fn small_zip_limit(url: &str) -> ServiceConfig {
    ServiceConfig {
        max_zip_size: 300,
        ..config(url)
    }
}

fn big_zip() -> Bytes {
    // Incompressible content so the zip is well over the limit.
    let noise: Vec<u8> = (0..2000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    make_zip(
        M,
        V,
        &[("go.mod", b"module example.com/m\n"), ("noise.bin", &noise)],
    )
}

#[tokio::test]
async fn oversize_zip_with_content_length_is_refused_up_front() {
    let up = Upstream::start().await;
    up.set(ZIP, [Reply::Ok(big_zip())]);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, small_zip_limit(&up.url));
    let msg = assert_err!(svc.zip(&module(M), &version(V)).await, BadUpstream);
    assert!(
        msg.contains("announced") && msg.contains("300-byte limit"),
        "{msg}"
    );
    assert!(stored(&storage).await.is_empty());
}

#[tokio::test]
async fn oversize_chunked_zip_is_cut_off_while_streaming() {
    let up = Upstream::start().await;
    up.set(ZIP, [Reply::Chunked(big_zip())]);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, small_zip_limit(&up.url));
    let msg = assert_err!(svc.zip(&module(M), &version(V)).await, BadUpstream);
    assert!(msg.contains("more than the 300-byte limit"), "{msg}");
    assert!(stored(&storage).await.is_empty());
}

#[tokio::test]
async fn info_for_the_wrong_version_is_rejected() {
    let up = Upstream::start().await;
    up.set(INFO, [Reply::Ok(info_json("v1.0.1"))]);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    let q = VersionQuery::Canonical(version(V));
    let msg = assert_err!(svc.info(&module(M), &q).await, BadUpstream);
    assert!(msg.contains("instead of the requested v1.0.0"), "{msg}");
    up.set(INFO, [Reply::Ok(Bytes::from_static(b"{not json"))]);
    assert_err!(svc.info(&module(M), &q).await, BadUpstream);
    up.set(
        INFO,
        [Reply::Ok(Bytes::from_static(
            br#"{"Version":"v1.0.0","Time":"noon"}"#,
        ))],
    );
    assert_err!(svc.info(&module(M), &q).await, BadUpstream);
    assert!(stored(&storage).await.is_empty());
    up.set(INFO, [Reply::Ok(info_json(V))]);
    assert_eq!(
        body(svc.info(&module(M), &q).await.unwrap()).await,
        info_json(V)
    );
}

#[tokio::test]
async fn oversize_or_binary_mod_is_rejected() {
    let up = Upstream::start().await;
    up.set(MOD, [Reply::Ok(Bytes::from(vec![b'x'; 100]))]);
    let storage = Arc::new(InMemory::new());
    let svc = service(
        &storage,
        ServiceConfig {
            max_mod_size: 50,
            ..config(&up.url)
        },
    );
    assert_err!(svc.go_mod(&module(M), &version(V)).await, BadUpstream);
    up.set(MOD, [Reply::Ok(Bytes::from_static(b"module \xff\n"))]);
    let msg = assert_err!(svc.go_mod(&module(M), &version(V)).await, BadUpstream);
    assert!(msg.contains("UTF-8"), "{msg}");
    assert!(stored(&storage).await.is_empty());
}

fn with_retries(url: &str) -> ServiceConfig {
    ServiceConfig {
        retries: 2,
        ..config(url)
    }
}

#[tokio::test]
async fn server_errors_are_retried() {
    let up = Upstream::start().await;
    up.set(
        MOD,
        [
            Reply::Status(503),
            Reply::Status(500),
            Reply::Ok("module example.com/m\n".into()),
        ],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, with_retries(&up.url));
    assert_eq!(
        body(svc.go_mod(&module(M), &version(V)).await.unwrap()).await,
        "module example.com/m\n"
    );
    assert_eq!(up.hits(MOD), 3);
}

#[tokio::test]
async fn retries_give_up_after_the_configured_count() {
    let up = Upstream::start().await;
    up.set(MOD, [Reply::Status(500)]);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, with_retries(&up.url));
    assert_err!(svc.go_mod(&module(M), &version(V)).await, BadUpstream);
    assert_eq!(up.hits(MOD), 3);
}

#[tokio::test]
async fn truncation_is_retried() {
    let up = Upstream::start().await;
    let zip = good_zip(M, V);
    up.set(
        ZIP,
        [
            Reply::Truncated {
                body: zip.slice(..10),
                claimed: zip.len() as u64,
            },
            Reply::Ok(zip.clone()),
        ],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, with_retries(&up.url));
    assert_eq!(
        body(svc.zip(&module(M), &version(V)).await.unwrap()).await,
        zip
    );
    assert_eq!(up.hits(ZIP), 2);
}

#[tokio::test]
async fn a_stalled_upstream_is_not_retried() {
    // Issue 9: a stalled header cost every retry's read timeout before the client heard 504.
    let up = Upstream::start().await;
    let zip = good_zip(M, V);
    up.set(ZIP, [Reply::Hang, Reply::Ok(zip.clone())]);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, with_retries(&up.url));
    assert_err!(svc.zip(&module(M), &version(V)).await, UpstreamTimeout);
    assert_eq!(up.hits(ZIP), 1);
    assert_eq!(
        body(svc.zip(&module(M), &version(V)).await.unwrap()).await,
        zip
    );
}

#[tokio::test]
async fn not_found_and_client_errors_are_not_retried() {
    let up = Upstream::start().await;
    up.set(MOD, [Reply::Status(404)]);
    up.set(INFO, [Reply::Status(400)]);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, with_retries(&up.url));
    assert_err!(svc.go_mod(&module(M), &version(V)).await, NotFound);
    assert_err!(
        svc.info(&module(M), &VersionQuery::Canonical(version(V)))
            .await,
        BadUpstream
    );
    assert_eq!(up.hits(MOD), 1);
    assert_eq!(up.hits(INFO), 1);
}

#[tokio::test]
async fn connection_refused_is_an_upstream_error() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&format!("http://127.0.0.1:{port}")));
    let msg = assert_err!(svc.go_mod(&module(M), &version(V)).await, BadUpstream);
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
}
