//! `list` and `@latest`: TTL, refresh, stale fallback, filtering and validation.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gomodproxy_service::ServiceConfig;
use gomodproxy_storage::memory::InMemory;
use gomodproxy_storage::{Key, StorageExt};

use crate::assert_err;
use crate::support::*;

const M: &str = "example.com/m";
const LIST: &str = "example.com/m/@v/list";
const LATEST: &str = "example.com/m/@latest";

fn no_ttl(url: &str) -> ServiceConfig {
    ServiceConfig {
        list_ttl: Duration::ZERO,
        ..config(url)
    }
}

#[tokio::test]
async fn list_is_cached_for_its_ttl() {
    let up = Upstream::start().await;
    up.set(LIST, [Reply::Ok("v1.0.0\n".into())]);
    let storage = Arc::new(InMemory::new());
    let svc = service(
        &storage,
        ServiceConfig {
            list_ttl: Duration::from_millis(300),
            ..config(&up.url)
        },
    );
    for _ in 0..3 {
        let answer = svc.list(&module(M)).await.unwrap();
        assert!(!answer.immutable);
        assert_eq!(body(answer).await, "v1.0.0\n");
    }
    assert_eq!(up.hits(LIST), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    up.set(LIST, [Reply::Ok("v1.0.0\nv1.1.0\n".into())]);
    assert_eq!(
        body(svc.list(&module(M)).await.unwrap()).await,
        "v1.0.0\nv1.1.0\n"
    );
    assert_eq!(up.hits(LIST), 2);
    let (_, stored_list) = storage
        .get_bytes(&Key::List { module: module(M) }, 1024)
        .await
        .unwrap();
    assert_eq!(stored_list, "v1.0.0\nv1.1.0\n");
}

#[tokio::test]
async fn stale_list_is_served_when_upstream_fails() {
    let up = Upstream::start().await;
    up.set(LIST, [Reply::Ok("v1.0.0\n".into())]);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, no_ttl(&up.url));
    assert_eq!(body(svc.list(&module(M)).await.unwrap()).await, "v1.0.0\n");
    for bad in [Reply::Status(500), Reply::Hang, Reply::Status(403)] {
        up.set(LIST, [bad]);
        assert_eq!(body(svc.list(&module(M)).await.unwrap()).await, "v1.0.0\n");
    }
    assert_eq!(up.hits(LIST), 4);
}

#[tokio::test]
async fn not_found_is_not_papered_over_with_a_stale_list() {
    let up = Upstream::start().await;
    up.set(LIST, [Reply::Ok("v1.0.0\n".into())]);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, no_ttl(&up.url));
    svc.list(&module(M)).await.unwrap();
    up.set(LIST, [Reply::Status(404)]);
    assert_err!(svc.list(&module(M)).await, NotFound);
    up.set(LIST, [Reply::Status(410)]);
    assert_err!(svc.list(&module(M)).await, NotFound);
}

#[tokio::test]
async fn without_a_cached_list_upstream_errors_are_reported() {
    let up = Upstream::start().await;
    up.set(LIST, [Reply::Status(502)]);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    let msg = assert_err!(svc.list(&module(M)).await, BadUpstream);
    assert!(msg.contains("502") && msg.contains(LIST), "{msg}");
    up.set(LIST, [Reply::Hang]);
    assert_err!(svc.list(&module(M)).await, UpstreamTimeout);
    assert!(stored(&storage).await.is_empty());
}

#[tokio::test]
async fn list_drops_pseudo_versions_and_junk() {
    let up = Upstream::start().await;
    up.set(
        LIST,
        [Reply::Ok(Bytes::from_static(
            b"v1.1.0 2023-01-02T03:04:05Z\nv0.0.0-20230102030405-abcdefabcdef\ngarbage\n\nv1.0.0\nV2.0.0\nv1.0.0\n",
        ))],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    assert_eq!(
        body(svc.list(&module(M)).await.unwrap()).await,
        "v1.1.0\nv1.0.0\n"
    );
}

#[tokio::test]
async fn empty_list_is_a_valid_answer() {
    let up = Upstream::start().await;
    up.set(LIST, [Reply::Ok(Bytes::new())]);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    let answer = svc.list(&module(M)).await.unwrap();
    assert_eq!(answer.size, 0);
}

#[tokio::test]
async fn latest_is_validated_cached_and_falls_back() {
    let up = Upstream::start().await;
    let pseudo = "v0.0.0-20230102030405-abcdefabcdef";
    up.set(LATEST, [Reply::Ok(info_json(pseudo))]);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, no_ttl(&up.url));
    let answer = svc.latest(&module(M)).await.unwrap();
    assert!(!answer.immutable);
    assert_eq!(body(answer).await, info_json(pseudo));

    up.set(LATEST, [Reply::Ok(r#"{"Version":"master"}"#.into())]);
    // Invalid now, so the stale copy is served.
    assert_eq!(
        body(svc.latest(&module(M)).await.unwrap()).await,
        info_json(pseudo)
    );
    up.set(LATEST, [Reply::Status(404)]);
    assert_err!(svc.latest(&module(M)).await, NotFound);

    let fresh = Arc::new(InMemory::new());
    let svc = service(&fresh, config(&up.url));
    up.set(LATEST, [Reply::Ok(r#"{"Version":"master"}"#.into())]);
    let msg = assert_err!(svc.latest(&module(M)).await, BadUpstream);
    assert!(msg.contains("invalid @latest"), "{msg}");
    assert!(stored(&fresh).await.is_empty());
}

#[tokio::test]
async fn concurrent_list_refreshes_share_one_request() {
    let up = Upstream::start().await;
    up.set(
        LIST,
        [Reply::Delay(
            Duration::from_millis(200),
            Box::new(Reply::Ok("v1.0.0\n".into())),
        )],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            body(svc.list(&module(M)).await.unwrap()).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), "v1.0.0\n");
    }
    assert_eq!(up.hits(LIST), 1);
}
