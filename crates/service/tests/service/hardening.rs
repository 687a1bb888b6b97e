//! Issue 9: a hostile or broken upstream, and a flood of requests, cannot make the proxy spend
//! without bound, leak a credential, or cache what the go command would refuse.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gomodproxy_service::{ServiceConfig, VersionQuery};
use gomodproxy_storage::memory::InMemory;
use gomodproxy_storage::{ArtifactKind, Key, StorageExt};

use crate::assert_err;
use crate::support::*;

const M: &str = "example.com/m";
const V: &str = "v1.0.0";
const MOD: &str = "example.com/m/@v/v1.0.0.mod";
const INFO: &str = "example.com/m/@v/v1.0.0.info";
const ZIP: &str = "example.com/m/@v/v1.0.0.zip";

#[tokio::test]
async fn a_trickling_upstream_is_cut_off_at_the_minimum_rate() {
    let up = Upstream::start().await;
    up.set(
        MOD,
        [Reply::Drip {
            body: Bytes::from("module example.com/m\n".repeat(50)),
            every: Duration::from_millis(40),
        }],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(
        &storage,
        ServiceConfig {
            // Never silent for this long: only the rate stops it.
            read_timeout: Duration::from_secs(20),
            fetch_deadline: Duration::from_millis(300),
            min_transfer_rate: 1000,
            ..config(&up.url)
        },
    );
    let msg = assert_err!(svc.go_mod(&module(M), &version(V)).await, UpstreamTimeout);
    assert!(msg.contains("minimum transfer rate"), "{msg}");
    assert_eq!(up.hits(MOD), 1);
    assert!(stored(&storage).await.is_empty());
}

#[tokio::test]
async fn upstream_fetches_are_capped_per_host_behind_a_bounded_queue() {
    let up = Upstream::start().await;
    let paths: Vec<String> = (0..6)
        .map(|i| format!("example.com/m{i}/@v/v1.0.0.mod"))
        .collect();
    for (i, path) in paths.iter().enumerate() {
        up.set(
            path,
            [Reply::Delay(
                Duration::from_millis(600),
                Box::new(Reply::Ok(format!("module example.com/m{i}\n").into())),
            )],
        );
    }
    let storage = Arc::new(InMemory::new());
    let svc = service(
        &storage,
        ServiceConfig {
            read_timeout: Duration::from_secs(5),
            max_concurrent_fetches_per_host: 2,
            max_queued_fetches: 1,
            queue_timeout: Duration::from_millis(200),
            ..config(&up.url)
        },
    );
    let mut tasks = Vec::new();
    for i in 0..6 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            svc.go_mod(&module(&format!("example.com/m{i}")), &version(V))
                .await
        }));
    }
    // While the first two are in flight, nothing else reached the upstream.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(up.total_hits(), 2);
    let mut ok = 0;
    let mut overloaded = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(gomodproxy_service::ServiceError::Overloaded(m)) => overloaded.push(m),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 2, "{overloaded:?}");
    assert_eq!(overloaded.len(), 4);
    assert!(
        overloaded.iter().any(|m| m.contains("waiting")),
        "{overloaded:?}"
    );
    assert!(
        overloaded.iter().any(|m| m.contains("within")),
        "{overloaded:?}"
    );
    let stats = svc.stats().fetch_limits;
    assert_eq!((stats.in_flight, stats.queued, stats.rejected), (0, 0, 4));
}

#[tokio::test]
async fn repeated_misses_cost_one_upstream_request() {
    let up = Upstream::start().await;
    let storage = Arc::new(InMemory::new());
    let svc = service(
        &storage,
        ServiceConfig {
            negative_ttl: Duration::from_secs(60),
            ..config(&up.url)
        },
    );
    for _ in 0..20 {
        let msg = assert_err!(svc.go_mod(&module(M), &version(V)).await, NotFound);
        assert!(msg.contains("404"), "{msg}");
        assert_err!(svc.list(&module(M)).await, NotFound);
    }
    assert_eq!(up.hits(MOD), 1);
    assert_eq!(up.hits("example.com/m/@v/list"), 1);
    // Each path has its own entry.
    assert_err!(
        svc.go_mod(&module("example.com/other"), &version(V)).await,
        NotFound
    );
    assert_eq!(up.total_hits(), 3);

    // With the TTL elapsed, upstream is asked again.
    let svc = service(
        &storage,
        ServiceConfig {
            negative_ttl: Duration::from_millis(100),
            ..config(&up.url)
        },
    );
    assert_err!(svc.go_mod(&module(M), &version(V)).await, NotFound);
    tokio::time::sleep(Duration::from_millis(150)).await;
    up.set(MOD, [Reply::Ok("module example.com/m\n".into())]);
    svc.go_mod(&module(M), &version(V)).await.unwrap();
    assert_eq!(up.hits(MOD), 3);
}

#[tokio::test]
async fn identical_queries_share_one_upstream_request() {
    let up = Upstream::start().await;
    let pseudo = "v0.0.0-20230102030405-abcdefabcdef";
    up.set(
        "example.com/m/@v/master.info",
        [Reply::Delay(
            Duration::from_millis(200),
            Box::new(Reply::Ok(info_json(pseudo))),
        )],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(
        &storage,
        ServiceConfig {
            query_ttl: Duration::from_secs(30),
            ..config(&up.url)
        },
    );
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            let answer = svc
                .info(&module(M), &VersionQuery::Query("master".into()))
                .await
                .unwrap();
            body(answer).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), info_json(pseudo));
    }
    // And a while later, within the TTL, from the short cache.
    let again = svc
        .info(&module(M), &VersionQuery::Query("master".into()))
        .await
        .unwrap();
    assert!(!again.fetched);
    assert_eq!(up.hits("example.com/m/@v/master.info"), 1);
    assert!(
        stored(&storage).await.is_empty(),
        "queries are never stored"
    );
}

#[tokio::test]
async fn the_spool_budget_bounds_zips_being_received() {
    let up = Upstream::start().await;
    // Incompressible, so the zip itself is bigger than the budget.
    let mut x = 0x2545_f491_u32;
    let noise: Vec<u8> = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let big = make_zip(
        M,
        V,
        &[("go.mod", b"module example.com/m\n"), ("data", &noise)],
    );
    assert!(big.len() > 8192);
    up.set(ZIP, [Reply::Ok(big.clone())]);
    let storage = Arc::new(InMemory::new());
    let svc = service(
        &storage,
        ServiceConfig {
            spool_budget: 4096,
            ..config(&up.url)
        },
    );
    let msg = assert_err!(svc.zip(&module(M), &version(V)).await, Overloaded);
    assert!(msg.contains("spool budget"), "{msg}");
    assert!(stored(&storage).await.is_empty());
    assert_eq!(svc.stats().spool_bytes, 0, "the budget is given back");
    let small = good_zip("example.com/s", V);
    up.set("example.com/s/@v/v1.0.0.zip", [Reply::Ok(small.clone())]);
    assert_eq!(
        body(
            svc.zip(&module("example.com/s"), &version(V))
                .await
                .unwrap()
        )
        .await,
        small
    );
    assert_eq!(svc.stats().spool_bytes, 0);
}

#[tokio::test]
async fn a_file_upstream_never_follows_links_out_of_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proxy");
    let at_v = root.join("example.com/m/@v");
    std::fs::create_dir_all(&at_v).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", at_v.join("v1.0.0.mod")).unwrap();
    std::fs::write(at_v.join("v1.1.0.mod"), "module example.com/m\n").unwrap();
    let storage = Arc::new(InMemory::new());
    let url = format!("file://{}", root.display());
    let svc = service(&storage, config(&url));
    let msg = assert_err!(svc.go_mod(&module(M), &version(V)).await, BadUpstream);
    assert!(msg.contains("symbolic link"), "{msg}");
    assert!(!msg.contains("root:"), "{msg}");
    assert!(stored(&storage).await.is_empty());
    svc.go_mod(&module(M), &version("v1.1.0")).await.unwrap();
}

/// Serves `bad` for `path`, expects a 502 mentioning `needle` and nothing stored; then a good
/// answer is fetched and stored.
async fn refused_then_fixed(path: &str, bad: &str, good: Bytes, needle: &str) {
    let up = Upstream::start().await;
    up.set(path, [Reply::Ok(Bytes::from(bad.to_string()))]);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    let fetch = || async {
        if path.ends_with(".info") {
            svc.info(&module(M), &VersionQuery::Canonical(version(V)))
                .await
        } else {
            svc.go_mod(&module(M), &version(V)).await
        }
    };
    let msg = assert_err!(fetch().await, BadUpstream);
    assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
    assert!(stored(&storage).await.is_empty());
    up.set(path, [Reply::Ok(good.clone())]);
    assert_eq!(body(fetch().await.unwrap()).await, good);
}

#[tokio::test]
async fn a_mod_without_a_module_line_is_refused() {
    refused_then_fixed(
        MOD,
        "go 1.21\n",
        "module example.com/m\n".into(),
        "no module line",
    )
    .await;
}

#[tokio::test]
async fn a_mod_of_another_major_version_is_refused() {
    refused_then_fixed(
        MOD,
        "module example.com/m/v2\n",
        "module example.com/m\n".into(),
        "cannot be a version of example.com/m",
    )
    .await;
}

#[tokio::test]
async fn an_info_whose_origin_is_not_an_object_is_refused() {
    refused_then_fixed(
        INFO,
        r#"{"Version":"v1.0.0","Time":"2023-01-02T03:04:05Z","Origin":"git"}"#,
        info_json(V),
        "Origin",
    )
    .await;
}

#[tokio::test]
async fn a_zip_whose_go_mod_differs_from_the_stored_mod_is_refused() {
    let up = Upstream::start().await;
    // A .mod that parses and names the module, but is not the zip's go.mod.
    up.set(
        MOD,
        [Reply::Ok(
            "module example.com/m\n\nrequire example.com/evil v1.0.0\n".into(),
        )],
    );
    up.set(ZIP, [Reply::Ok(good_zip(M, V))]);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    svc.go_mod(&module(M), &version(V)).await.unwrap();
    let msg = assert_err!(svc.zip(&module(M), &version(V)).await, BadUpstream);
    assert!(msg.contains("go.mod hashes to"), "{msg}");
    // Neither the zip nor the inconsistent .mod is left in the store.
    assert!(
        stored(&storage).await.is_empty(),
        "{:?}",
        stored(&storage).await
    );
    up.set(MOD, [Reply::Ok("module example.com/m\n".into())]);
    svc.go_mod(&module(M), &version(V)).await.unwrap();
    svc.zip(&module(M), &version(V)).await.unwrap();

    // The other order: the zip is stored first, and a .mod that disagrees with it is refused.
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    up.set(MOD, [Reply::Ok("module example.com/m\ngo 1.22\n".into())]);
    svc.zip(&module(M), &version(V)).await.unwrap();
    let msg = assert_err!(svc.go_mod(&module(M), &version(V)).await, BadUpstream);
    assert!(msg.contains("stored zip"), "{msg}");
    let key = Key::artifact(&module(M), &version(V), ArtifactKind::Mod);
    assert!(storage.exists(&key).await.unwrap().is_none());
}

#[tokio::test]
async fn a_zip_without_go_mod_needs_the_synthesized_mod() {
    let up = Upstream::start().await;
    let zip = make_zip(M, V, &[("m.go", b"package m\n")]);
    up.set(MOD, [Reply::Ok("module example.com/m\ngo 1.21\n".into())]);
    up.set(ZIP, [Reply::Ok(zip.clone())]);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config(&up.url));
    svc.go_mod(&module(M), &version(V)).await.unwrap();
    assert_err!(svc.zip(&module(M), &version(V)).await, BadUpstream);
    up.set(MOD, [Reply::Ok("module example.com/m\n".into())]);
    svc.go_mod(&module(M), &version(V)).await.unwrap();
    assert_eq!(
        body(svc.zip(&module(M), &version(V)).await.unwrap()).await,
        zip
    );
}

#[tokio::test]
async fn upstream_credentials_go_as_basic_auth_and_are_never_shown() {
    let up = Upstream::start().await;
    up.set(MOD, [Reply::Status(500)]);
    up.set(INFO, [Reply::Ok(info_json(V))]);
    let storage = Arc::new(InMemory::new());
    let authority = up.url.trim_start_matches("http://");
    let url = format!("http://alice:hunter2@{authority}");
    let svc = service(&storage, config(&url));
    let msg = assert_err!(svc.go_mod(&module(M), &version(V)).await, BadUpstream);
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(msg.contains("***@"), "{msg}");
    svc.info(&module(M), &VersionQuery::Canonical(version(V)))
        .await
        .unwrap();
    let heads = up.heads();
    // base64("alice:hunter2")
    assert!(
        heads.iter().all(|h| h
            .to_ascii_lowercase()
            .contains("authorization: basic ywxpy2u6ahvudgvymg==")),
        "{heads:?}"
    );
    assert!(heads.iter().all(|h| !h.contains("hunter2")), "{heads:?}");
    assert!(!format!("{svc:?}").contains("hunter2"));
}

/// InMemory, except that the first read of each zip finds it damaged (what the fs and sled
/// stores report for a file whose size changed on disk).
#[derive(Debug)]
struct DamagedOnce {
    inner: InMemory,
    damaged: std::sync::Mutex<std::collections::HashSet<String>>,
}

#[async_trait::async_trait]
impl gomodproxy_storage::Storage for DamagedOnce {
    async fn put(
        &self,
        key: &Key,
        payload: gomodproxy_storage::PutPayload,
    ) -> gomodproxy_storage::Result<gomodproxy_storage::ObjectMeta> {
        self.inner.put(key, payload).await
    }
    async fn get(&self, key: &Key) -> gomodproxy_storage::Result<gomodproxy_storage::GetResult> {
        let path = key.path();
        if path.ends_with(".zip") && self.damaged.lock().unwrap().insert(path.clone()) {
            self.inner.get(key).await?;
            return Err(gomodproxy_storage::StorageError::Corrupt {
                key: path,
                reason: "its file has 3 bytes but 300 were stored".into(),
            });
        }
        self.inner.get(key).await
    }
    async fn head(&self, key: &Key) -> gomodproxy_storage::Result<gomodproxy_storage::ObjectMeta> {
        self.inner.head(key).await
    }
    async fn delete(&self, key: &Key) -> gomodproxy_storage::Result<()> {
        self.inner.delete(key).await
    }
    fn list(
        &self,
        prefix: &gomodproxy_storage::ListPrefix,
    ) -> futures::stream::BoxStream<
        'static,
        gomodproxy_storage::Result<gomodproxy_storage::ListEntry>,
    > {
        self.inner.list(prefix)
    }
    async fn check(&self) -> gomodproxy_storage::Result<()> {
        self.inner.check().await
    }
}

#[tokio::test]
async fn a_damaged_stored_zip_is_replaced_online_and_refused_offline() {
    let up = Upstream::start().await;
    let zip = good_zip(M, V);
    up.set(ZIP, [Reply::Ok(zip.clone())]);
    let store = Arc::new(DamagedOnce {
        inner: InMemory::new(),
        damaged: Default::default(),
    });
    let key = Key::artifact(&module(M), &version(V), ArtifactKind::Zip);
    store.inner.put_bytes(&key, zip.slice(..3)).await.unwrap();
    // Online: the damaged copy is dropped and the zip fetched again.
    let svc = gomodproxy_service::ProxyService::new(store.clone(), config(&up.url)).unwrap();
    let answer = svc.zip(&module(M), &version(V)).await.unwrap();
    assert!(answer.fetched);
    assert_eq!(body(answer).await, zip);
    assert_eq!(up.hits(ZIP), 1);

    // Offline: a 503 that says what is wrong, no path.
    let store = Arc::new(DamagedOnce {
        inner: InMemory::new(),
        damaged: Default::default(),
    });
    store.inner.put_bytes(&key, zip.clone()).await.unwrap();
    let offline = gomodproxy_service::ProxyService::new(
        store,
        ServiceConfig {
            mode: gomodproxy_service::Mode::Offline,
            ..config(&up.url)
        },
    )
    .unwrap();
    let msg = assert_err!(offline.zip(&module(M), &version(V)).await, Storage);
    assert!(msg.contains("damaged"), "{msg}");
}
