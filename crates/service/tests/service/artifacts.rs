//! Versioned artifacts: fetched once, validated, stored, then served from storage.

use std::sync::Arc;

use gomodproxy_service::VersionQuery;
use gomodproxy_storage::memory::InMemory;
use gomodproxy_storage::{ArtifactKind, Key, StorageExt};

use crate::assert_err;
use crate::support::*;

const M: &str = "example.com/m";
const V: &str = "v1.0.0";

#[tokio::test]
async fn info_and_mod_are_fetched_once_and_stored() {
    let up = Upstream::start().await;
    up.set("example.com/m/@v/v1.0.0.info", [Reply::Ok(info_json(V))]);
    up.set(
        "example.com/m/@v/v1.0.0.mod",
        [Reply::Ok("module example.com/m\n".into())],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    let (m, v) = (module(M), version(V));

    for _ in 0..3 {
        let info = svc
            .info(&m, &VersionQuery::Canonical(v.clone()))
            .await
            .unwrap();
        assert!(info.immutable);
        assert!(info.modified.is_some());
        let etag = info.etag.clone().unwrap();
        assert_eq!(etag.len(), 64, "hex sha256 etag: {etag}");
        assert_eq!(body(info).await, info_json(V));
        let go_mod = svc.go_mod(&m, &v).await.unwrap();
        assert_eq!(go_mod.size, 21);
        assert_eq!(body(go_mod).await, "module example.com/m\n");
    }
    assert_eq!(up.hits("example.com/m/@v/v1.0.0.info"), 1);
    assert_eq!(up.hits("example.com/m/@v/v1.0.0.mod"), 1);
    assert_eq!(
        stored(&storage).await,
        [
            "example.com/m/@v/v1.0.0.info",
            "example.com/m/@v/v1.0.0.mod"
        ]
    );
}

#[tokio::test]
async fn mod_request_never_fetches_the_zip() {
    let up = Upstream::start().await;
    up.set(
        "example.com/m/@v/v1.0.0.mod",
        [Reply::Ok("module example.com/m\n".into())],
    );
    up.set("example.com/m/@v/v1.0.0.zip", [Reply::Ok(good_zip(M, V))]);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    svc.go_mod(&module(M), &version(V)).await.unwrap();
    assert_eq!(up.hits("example.com/m/@v/v1.0.0.zip"), 0);
    assert_eq!(up.hits("example.com/m/@v/v1.0.0.info"), 0);
    assert_eq!(up.total_hits(), 1);
    assert_eq!(stored(&storage).await, ["example.com/m/@v/v1.0.0.mod"]);
}

#[tokio::test]
async fn zip_is_checked_hashed_and_served_with_its_h1_as_etag() {
    let files: [(&str, &[u8]); 2] = [
        ("go.mod", b"module example.com/m\n"),
        ("m.go", b"package m\n"),
    ];
    let zip = make_zip(M, V, &files);
    let up = Upstream::start().await;
    up.set("example.com/m/@v/v1.0.0.zip", [Reply::Ok(zip.clone())]);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    let (m, v) = (module(M), version(V));
    let expected_h1 = h1(M, V, &files);

    for _ in 0..2 {
        let answer = svc.zip(&m, &v).await.unwrap();
        assert!(answer.immutable);
        assert_eq!(answer.size, zip.len() as u64);
        assert_eq!(answer.etag.as_deref(), Some(expected_h1.as_str()));
        assert_eq!(body(answer).await, zip);
    }
    assert_eq!(up.hits("example.com/m/@v/v1.0.0.zip"), 1);
    let (_, hash) = storage
        .get_bytes(&Key::artifact(&m, &v, ArtifactKind::ZipHash), 1024)
        .await
        .unwrap();
    assert_eq!(hash, expected_h1.as_bytes());
    assert_eq!(
        stored(&storage).await,
        [
            "example.com/m/@v/v1.0.0.zip",
            "example.com/m/@v/v1.0.0.ziphash"
        ]
    );
}

#[tokio::test]
async fn chunked_zip_without_content_length_is_accepted() {
    let up = Upstream::start().await;
    let zip = good_zip(M, V);
    up.set("example.com/m/@v/v1.0.0.zip", [Reply::Chunked(zip.clone())]);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    assert_eq!(
        body(svc.zip(&module(M), &version(V)).await.unwrap()).await,
        zip
    );
}

#[tokio::test]
async fn escaped_paths_are_requested_and_stored() {
    let module_path = "github.com/Azure/SDK";
    let up = Upstream::start().await;
    up.set(
        "github.com/!azure/!s!d!k/@v/v1.0.0-!r!c.1.info",
        [Reply::Ok(info_json("v1.0.0-RC.1"))],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    let answer = svc
        .info(
            &module(module_path),
            &VersionQuery::Canonical(version("v1.0.0-RC.1")),
        )
        .await
        .unwrap();
    assert_eq!(body(answer).await, info_json("v1.0.0-RC.1"));
    assert_eq!(
        stored(&storage).await,
        ["github.com/!azure/!s!d!k/@v/v1.0.0-!r!c.1.info"]
    );
}

#[tokio::test]
async fn fifty_concurrent_zip_misses_make_one_upstream_request() {
    let up = Upstream::start().await;
    let zip = good_zip(M, V);
    // Slow enough that every caller arrives while the first fetch is still running.
    up.set(
        "example.com/m/@v/v1.0.0.zip",
        [Reply::Delay(
            std::time::Duration::from_millis(300),
            Box::new(Reply::Ok(zip.clone())),
        )],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            let answer = svc.zip(&module(M), &version(V)).await.unwrap();
            body(answer).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), zip);
    }
    assert_eq!(up.hits("example.com/m/@v/v1.0.0.zip"), 1);
}

#[tokio::test]
async fn concurrent_failures_are_shared_too() {
    let up = Upstream::start().await;
    up.set(
        "example.com/m/@v/v1.0.0.mod",
        [Reply::Delay(
            std::time::Duration::from_millis(200),
            Box::new(Reply::Status(500)),
        )],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            svc.go_mod(&module(M), &version(V)).await.map(|_| ())
        }));
    }
    for task in tasks {
        let msg = assert_err!(task.await.unwrap(), BadUpstream);
        assert!(msg.contains("returned 500"), "{msg}");
    }
    assert_eq!(up.hits("example.com/m/@v/v1.0.0.mod"), 1);
}

#[tokio::test]
async fn a_fetch_no_client_waits_for_is_cancelled() {
    // Issue 9: work nobody waits for is work an attacker can pile up by dropping requests.
    let up = Upstream::start().await;
    let zip = good_zip(M, V);
    up.set(
        "example.com/m/@v/v1.0.0.zip",
        [
            Reply::Delay(
                std::time::Duration::from_millis(300),
                Box::new(Reply::Ok(zip.clone())),
            ),
            Reply::Ok(zip.clone()),
        ],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    let svc2 = svc.clone();
    let client = tokio::spawn(async move { svc2.zip(&module(M), &version(V)).await.map(|_| ()) });
    while up.hits("example.com/m/@v/v1.0.0.zip") == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    client.abort();
    // Past the moment the upstream answers: the cancelled fetch stored nothing.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        stored(&storage).await.is_empty(),
        "{:?}",
        stored(&storage).await
    );
    // The next request fetches afresh.
    assert_eq!(
        body(svc.zip(&module(M), &version(V)).await.unwrap()).await,
        zip
    );
    assert_eq!(up.hits("example.com/m/@v/v1.0.0.zip"), 2);
}

#[tokio::test]
async fn a_fetch_goes_on_while_any_client_waits() {
    let up = Upstream::start().await;
    let zip = good_zip(M, V);
    up.set(
        "example.com/m/@v/v1.0.0.zip",
        [Reply::Delay(
            std::time::Duration::from_millis(200),
            Box::new(Reply::Ok(zip.clone())),
        )],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    let (a, b) = (svc.clone(), svc.clone());
    let leaving = tokio::spawn(async move { a.zip(&module(M), &version(V)).await.map(|_| ()) });
    let staying = tokio::spawn(async move { b.zip(&module(M), &version(V)).await.map(|a| a.size) });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    leaving.abort();
    assert_eq!(staying.await.unwrap().unwrap(), zip.len() as u64);
    assert_eq!(up.hits("example.com/m/@v/v1.0.0.zip"), 1);
}

#[tokio::test]
async fn queries_are_passed_through_and_never_stored() {
    let up = Upstream::start().await;
    let pseudo = "v0.0.0-20230102030405-abcdefabcdef";
    up.set(
        "example.com/m/@v/master.info",
        [Reply::Ok(info_json(pseudo))],
    );
    up.set(
        "example.com/m/@v/!main.info",
        [Reply::Ok(info_json(pseudo))],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    let m = module(M);
    for _ in 0..2 {
        let answer = svc
            .info(&m, &VersionQuery::Query("master".into()))
            .await
            .unwrap();
        assert!(!answer.immutable);
        assert_eq!(body(answer).await, info_json(pseudo));
    }
    // The support config turns the short query cache off: each query goes upstream.
    assert_eq!(up.hits("example.com/m/@v/master.info"), 2);
    // Upper case in a query is escaped like everything else in the path.
    svc.info(&m, &VersionQuery::Query("Main".into()))
        .await
        .unwrap();
    assert!(stored(&storage).await.is_empty());

    let msg = assert_err!(
        svc.info(&m, &VersionQuery::Query("a/b".into())).await,
        BadRequest
    );
    assert!(msg.contains("a/b"), "{msg}");
    let msg = assert_err!(
        svc.info(&m, &VersionQuery::Query("nope".into())).await,
        NotFound
    );
    assert!(msg.contains("404"), "{msg}");
    // A query answer must still name a canonical version.
    up.set(
        "example.com/m/@v/junk.info",
        [Reply::Ok(r#"{"Version":"master"}"#.into())],
    );
    assert_err!(
        svc.info(&m, &VersionQuery::Query("junk".into())).await,
        BadUpstream
    );
}

#[tokio::test]
async fn redirects_are_followed_on_the_same_host() {
    let up = Upstream::start().await;
    up.set(
        "elsewhere/m.mod",
        [Reply::Ok("module example.com/m\n".into())],
    );
    up.set(
        "example.com/m/@v/v1.0.0.mod",
        [Reply::Redirect(format!("{}/elsewhere/m.mod", up.url))],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    let answer = svc.go_mod(&module(M), &version(V)).await.unwrap();
    assert_eq!(body(answer).await, "module example.com/m\n");
}

#[tokio::test]
async fn redirects_to_another_host_are_refused() {
    // Issue 9: a 302 to another port was followed and its answer stored.
    let target = Upstream::start().await;
    target.set(
        "elsewhere/m.mod",
        [Reply::Ok("module example.com/m\n".into())],
    );
    let up = Upstream::start().await;
    up.set(
        "example.com/m/@v/v1.0.0.mod",
        [Reply::Redirect(format!("{}/elsewhere/m.mod", target.url))],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    let msg = assert_err!(svc.go_mod(&module(M), &version(V)).await, BadUpstream);
    assert!(msg.contains("refusing a redirect"), "{msg}");
    assert_eq!(target.total_hits(), 0);
    assert!(stored(&storage).await.is_empty());
}

#[tokio::test]
async fn endless_redirects_are_an_upstream_error() {
    let up = Upstream::start().await;
    up.set(
        "example.com/m/@v/v1.0.0.mod",
        [Reply::Redirect(format!(
            "{}/example.com/m/@v/v1.0.0.mod",
            up.url
        ))],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    let msg = assert_err!(svc.go_mod(&module(M), &version(V)).await, BadUpstream);
    assert!(msg.contains("redirect"), "{msg}");
    assert_eq!(up.hits("example.com/m/@v/v1.0.0.mod"), 11);
}

#[tokio::test]
async fn versions_that_cannot_belong_to_the_module_are_not_found_without_asking_upstream() {
    let up = Upstream::start().await;
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    let msg = assert_err!(svc.zip(&module(M), &version("v2.0.0")).await, NotFound);
    assert!(msg.contains("example.com/m@v2.0.0"), "{msg}");
    assert_err!(
        svc.go_mod(&module("example.com/m/v2"), &version("v1.0.0"))
            .await,
        NotFound
    );
    let q = VersionQuery::Canonical(version("v1.0.0+incompatible"));
    assert_err!(svc.info(&module(M), &q).await, NotFound);
    assert_eq!(up.total_hits(), 0);
    assert!(stored(&storage).await.is_empty());
}
