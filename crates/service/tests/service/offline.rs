//! Offline mode: storage only, clear misses, and never a request upstream.

use std::sync::Arc;

use bytes::Bytes;
use gomodproxy_service::{Mode, ProxyService, ServiceConfig, VersionQuery};
use gomodproxy_storage::memory::InMemory;
use gomodproxy_storage::{ArtifactKind, Key, StorageExt};

use crate::assert_err;
use crate::support::*;

const M: &str = "example.com/m";

async fn put(storage: &InMemory, v: &str, kind: ArtifactKind, body: Bytes) {
    storage
        .put_bytes(&Key::artifact(&module(M), &version(v), kind), body)
        .await
        .unwrap();
}

/// An offline service whose configured upstream is a live server that counts every request.
async fn offline(storage: &Arc<InMemory>) -> (ProxyService, Upstream) {
    let up = Upstream::start().await;
    for path in [
        "example.com/m/@v/list",
        "example.com/m/@latest",
        "example.com/m/@v/v1.9.0.zip",
    ] {
        up.set(
            path,
            [Reply::Ok(Bytes::from_static(b"should never be asked"))],
        );
    }
    let cfg = ServiceConfig {
        mode: Mode::Offline,
        ..config(&up.url)
    };
    (ProxyService::new(storage.clone(), cfg).unwrap(), up)
}

#[tokio::test]
async fn list_is_the_stored_tagged_versions_in_semver_order() {
    let storage = Arc::new(InMemory::new());
    for v in [
        "v1.10.0",
        "v1.2.0",
        "v1.2.0-rc.1",
        "v0.0.0-20230102030405-abcdefabcdef",
        "v2.0.0+incompatible",
    ] {
        put(
            &storage,
            v,
            ArtifactKind::Mod,
            Bytes::from_static(b"module example.com/m\n"),
        )
        .await;
    }
    put(&storage, "v1.2.0", ArtifactKind::Info, info_json("v1.2.0")).await;
    // Another module's artifacts and a cached upstream list do not count.
    storage
        .put_bytes(
            &Key::artifact(
                &module("example.com/m/sub"),
                &version("v3.0.0"),
                ArtifactKind::Mod,
            ),
            Bytes::new(),
        )
        .await
        .unwrap();
    storage
        .put_bytes(
            &Key::List { module: module(M) },
            Bytes::from_static(b"v5.0.0\n"),
        )
        .await
        .unwrap();
    let (svc, up) = offline(&storage).await;
    let answer = svc.list(&module(M)).await.unwrap();
    assert!(!answer.immutable);
    assert_eq!(
        body(answer).await,
        "v1.2.0-rc.1\nv1.2.0\nv1.10.0\nv2.0.0+incompatible\n"
    );
    assert_eq!(up.total_hits(), 0);
}

#[tokio::test]
async fn list_of_an_uncached_module_is_not_found() {
    let storage = Arc::new(InMemory::new());
    put(
        &storage,
        "v0.0.0-20230102030405-abcdefabcdef",
        ArtifactKind::Mod,
        Bytes::new(),
    )
    .await;
    let (svc, up) = offline(&storage).await;
    let msg = assert_err!(svc.list(&module(M)).await, NotFound);
    assert_eq!(msg, "offline mode: no versions of example.com/m are cached");
    let msg = assert_err!(svc.list(&module("example.com/other")).await, NotFound);
    assert_eq!(
        msg,
        "offline mode: no versions of example.com/other are cached"
    );
    assert_eq!(up.total_hits(), 0);
}

#[tokio::test]
async fn latest_prefers_releases_then_prereleases_then_pseudo_versions() {
    let storage = Arc::new(InMemory::new());
    let pseudo = "v1.5.0-0.20230102030405-abcdefabcdef";
    put(&storage, pseudo, ArtifactKind::Info, info_json(pseudo)).await;
    let (svc, up) = offline(&storage).await;
    assert_eq!(
        body(svc.latest(&module(M)).await.unwrap()).await,
        info_json(pseudo)
    );

    put(
        &storage,
        "v1.3.0-rc.1",
        ArtifactKind::Info,
        info_json("v1.3.0-rc.1"),
    )
    .await;
    assert_eq!(
        body(svc.latest(&module(M)).await.unwrap()).await,
        info_json("v1.3.0-rc.1")
    );

    put(&storage, "v1.0.0", ArtifactKind::Info, info_json("v1.0.0")).await;
    put(&storage, "v1.2.0", ArtifactKind::Info, info_json("v1.2.0")).await;
    put(
        &storage,
        "v1.10.0",
        ArtifactKind::Info,
        info_json("v1.10.0"),
    )
    .await;
    // Highest release, but without a stored .info it cannot be the answer.
    put(&storage, "v1.11.0", ArtifactKind::Mod, Bytes::new()).await;
    let answer = svc.latest(&module(M)).await.unwrap();
    assert!(!answer.immutable);
    assert_eq!(body(answer).await, info_json("v1.10.0"));
    assert_eq!(up.total_hits(), 0);
}

#[tokio::test]
async fn latest_without_any_info_is_not_found() {
    let storage = Arc::new(InMemory::new());
    put(&storage, "v1.0.0", ArtifactKind::Mod, Bytes::new()).await;
    let (svc, _up) = offline(&storage).await;
    let msg = assert_err!(svc.latest(&module(M)).await, NotFound);
    assert!(
        msg.starts_with("offline mode:") && msg.contains("example.com/m"),
        "{msg}"
    );
}

#[tokio::test]
async fn misses_name_module_version_and_artifact() {
    let storage = Arc::new(InMemory::new());
    put(
        &storage,
        "v1.0.0",
        ArtifactKind::Mod,
        Bytes::from_static(b"module example.com/m\n"),
    )
    .await;
    let (svc, up) = offline(&storage).await;
    let (m, v) = (module(M), version("v1.0.0"));
    assert_eq!(
        body(svc.go_mod(&m, &v).await.unwrap()).await,
        "module example.com/m\n"
    );
    let msg = assert_err!(svc.zip(&m, &v).await, NotFound);
    assert_eq!(
        msg,
        "offline mode: example.com/m@v1.0.0 .zip is not in the cache"
    );
    let msg = assert_err!(
        svc.info(&m, &VersionQuery::Canonical(v.clone())).await,
        NotFound
    );
    assert_eq!(
        msg,
        "offline mode: example.com/m@v1.0.0 .info is not in the cache"
    );
    let msg = assert_err!(svc.go_mod(&m, &version("v1.9.0")).await, NotFound);
    assert_eq!(
        msg,
        "offline mode: example.com/m@v1.9.0 .mod is not in the cache"
    );
    let msg = assert_err!(
        svc.info(&m, &VersionQuery::Query("master".into())).await,
        NotFound
    );
    assert!(
        msg.starts_with("offline mode:") && msg.contains("example.com/m@master"),
        "{msg}"
    );
    svc.zip(&m, &version("v1.9.0"))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(up.total_hits(), 0);
}

#[tokio::test]
async fn what_online_mode_cached_is_served_offline() {
    let storage = Arc::new(InMemory::new());
    let up = Upstream::start().await;
    let zip = good_zip(M, "v1.0.0");
    up.set("example.com/m/@v/v1.0.0.zip", [Reply::Ok(zip.clone())]);
    let online = service(&storage, config(&up.url));
    let etag = online
        .zip(&module(M), &version("v1.0.0"))
        .await
        .unwrap()
        .etag;
    let (svc, off_up) = offline(&storage).await;
    let answer = svc.zip(&module(M), &version("v1.0.0")).await.unwrap();
    assert_eq!(answer.etag, etag);
    assert_eq!(body(answer).await, zip);
    assert_eq!(body(svc.list(&module(M)).await.unwrap()).await, "v1.0.0\n");
    assert_eq!(off_up.total_hits(), 0);
}
