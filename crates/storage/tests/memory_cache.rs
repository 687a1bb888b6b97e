//! `MemoryCache`: the shared suite through it, and what only a cache can get wrong — serving a
//! body the store no longer has, growing past its budget, holding zips, or holding a mutable
//! object too long.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use gomod::{ModulePath, Version};
use gomodproxy_storage::cache::{MemoryCache, MemoryCacheOptions};
use gomodproxy_storage::conformance::{Capabilities, run_all};
use gomodproxy_storage::memory::InMemory;
use gomodproxy_storage::{
    ArtifactKind, GetResult, Key, ListEntry, ListPrefix, ObjectMeta, PutPayload, Result, Storage,
    StorageExt,
};
use tokio::sync::Notify;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_cache_passes_the_conformance_suite() {
    // A small budget so that eviction happens during the suite too.
    let store = MemoryCache::new(
        InMemory::new(),
        MemoryCacheOptions {
            memory_bytes: 64 * 1024,
            max_object_bytes: 16 * 1024,
            mutable_max_age: Duration::from_secs(5),
        },
    );
    let caps = Capabilities {
        large_object_size: 32 * 1024 * 1024,
        bounded_memory: false,
        ..Capabilities::default()
    };
    run_all(&store, caps).await;
}

/// A real in-memory store that counts `get`s reaching it and can hold one `get` at a gate.
#[derive(Debug, Default)]
struct Counting {
    store: InMemory,
    gets: AtomicUsize,
    gate: Option<Arc<Gate>>,
}

#[derive(Debug, Default)]
struct Gate {
    reached: Notify,
    release: Notify,
}

#[async_trait]
impl Storage for Counting {
    async fn put(&self, key: &Key, payload: PutPayload) -> Result<ObjectMeta> {
        self.store.put(key, payload).await
    }
    async fn get(&self, key: &Key) -> Result<GetResult> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let got = self.store.get(key).await;
        if let Some(gate) = &self.gate {
            gate.reached.notify_one();
            gate.release.notified().await;
        }
        got
    }
    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.store.head(key).await
    }
    async fn delete(&self, key: &Key) -> Result<()> {
        self.store.delete(key).await
    }
    fn list(&self, prefix: &ListPrefix) -> BoxStream<'static, Result<ListEntry>> {
        self.store.list(prefix)
    }
    async fn check(&self) -> Result<()> {
        self.store.check().await
    }
}

fn key(kind: ArtifactKind, v: &str) -> Key {
    Key::artifact(
        &ModulePath::parse("example.com/cached").unwrap(),
        &Version::parse(v).unwrap(),
        kind,
    )
}

fn list_key() -> Key {
    Key::List {
        module: ModulePath::parse("example.com/cached").unwrap(),
    }
}

fn options(capacity: u64) -> MemoryCacheOptions {
    MemoryCacheOptions {
        memory_bytes: capacity,
        max_object_bytes: 4096,
        mutable_max_age: Duration::from_millis(200),
    }
}

async fn read(store: &dyn Storage, key: &Key) -> Bytes {
    store.get_bytes(key, 1 << 20).await.unwrap().1
}

#[tokio::test]
async fn small_objects_are_served_from_memory_zips_and_big_ones_never() {
    let cache = MemoryCache::new(Counting::default(), options(1 << 20));
    let info = key(ArtifactKind::Info, "v1.0.0");
    let zip = key(ArtifactKind::Zip, "v1.0.0");
    let big = key(ArtifactKind::Mod, "v1.0.0");
    cache
        .put_bytes(&info, Bytes::from_static(b"{}"))
        .await
        .unwrap();
    cache
        .put_bytes(&zip, Bytes::from_static(b"PK"))
        .await
        .unwrap();
    cache
        .put_bytes(&big, Bytes::from(vec![b'x'; 5000]))
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(read(&cache, &info).await, Bytes::from_static(b"{}"));
        assert_eq!(read(&cache, &zip).await, Bytes::from_static(b"PK"));
        assert_eq!(read(&cache, &big).await.len(), 5000);
    }
    // info: one miss then memory; zip and the 5000-byte object: every time from the store.
    assert_eq!(cache.inner().gets.load(Ordering::SeqCst), 1 + 3 + 3);
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.hits), (1, 2));
    // head of a cached object needs no store call either, and agrees with get.
    assert_eq!(cache.head(&info).await.unwrap().size, 2);
}

#[tokio::test]
async fn overwrites_and_deletes_are_seen_at_once() {
    let cache = MemoryCache::new(Counting::default(), options(1 << 20));
    let k = key(ArtifactKind::Mod, "v1.0.0");
    cache
        .put_bytes(&k, Bytes::from_static(b"one"))
        .await
        .unwrap();
    assert_eq!(read(&cache, &k).await, Bytes::from_static(b"one"));
    cache
        .put_bytes(&k, Bytes::from_static(b"two"))
        .await
        .unwrap();
    assert_eq!(read(&cache, &k).await, Bytes::from_static(b"two"));
    cache.delete(&k).await.unwrap();
    assert!(cache.get(&k).await.unwrap_err().is_not_found());
    assert!(cache.head(&k).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn a_read_racing_a_write_does_not_cache_the_old_body() {
    let gate = Arc::new(Gate::default());
    let counting = Counting {
        gate: Some(gate.clone()),
        ..Counting::default()
    };
    let cache = Arc::new(MemoryCache::new(counting, options(1 << 20)));
    let k = key(ArtifactKind::Info, "v1.0.0");
    cache
        .inner()
        .store
        .put_bytes(&k, Bytes::from_static(b"old"))
        .await
        .unwrap();

    // A reader fetches "old" from the store and is held there…
    let reader = {
        let (cache, k) = (cache.clone(), k.clone());
        tokio::spawn(async move { read(cache.as_ref(), &k).await })
    };
    gate.reached.notified().await;
    // …while a writer replaces it.
    cache
        .put_bytes(&k, Bytes::from_static(b"new"))
        .await
        .unwrap();
    gate.release.notify_one();
    assert_eq!(reader.await.unwrap(), Bytes::from_static(b"old"));

    // The next read must see the new body, not the old one the racing read saw.
    let next = {
        let (cache, k) = (cache.clone(), k.clone());
        tokio::spawn(async move { read(cache.as_ref(), &k).await })
    };
    gate.reached.notified().await;
    gate.release.notify_one();
    assert_eq!(next.await.unwrap(), Bytes::from_static(b"new"));
}

#[tokio::test]
async fn the_budget_holds_and_the_least_recently_used_goes_first() {
    // Room for about three 1000-byte bodies with their per-entry overhead.
    let cache = MemoryCache::new(Counting::default(), options(3 * 1300));
    let keys: Vec<Key> = (0..5)
        .map(|i| key(ArtifactKind::Info, &format!("v1.0.{i}")))
        .collect();
    for k in &keys {
        cache
            .put_bytes(k, Bytes::from(vec![b'i'; 1000]))
            .await
            .unwrap();
    }
    for k in &keys[..3] {
        read(&cache, k).await;
    }
    // Touch 0 so that 1 is now the least recently used, then bring in 3.
    read(&cache, &keys[0]).await;
    read(&cache, &keys[3]).await;
    let stats = cache.stats();
    assert!(stats.bytes <= 3 * 1300, "{stats:?}");
    assert_eq!(stats.entries, 3, "{stats:?}");
    let before = cache.inner().gets.load(Ordering::SeqCst);
    read(&cache, &keys[0]).await; // still cached
    read(&cache, &keys[3]).await; // cached
    assert_eq!(cache.inner().gets.load(Ordering::SeqCst), before);
    read(&cache, &keys[1]).await; // evicted: goes to the store
    assert_eq!(cache.inner().gets.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn mutable_objects_are_re_read_after_their_max_age() {
    let cache = MemoryCache::new(Counting::default(), options(1 << 20));
    let k = list_key();
    cache
        .put_bytes(&k, Bytes::from_static(b"v1.0.0\n"))
        .await
        .unwrap();
    read(&cache, &k).await;
    // Another replica rewrites the list in the shared store, behind this cache's back.
    cache
        .inner()
        .store
        .put_bytes(&k, Bytes::from_static(b"v1.0.0\nv1.1.0\n"))
        .await
        .unwrap();
    assert_eq!(read(&cache, &k).await, Bytes::from_static(b"v1.0.0\n"));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        read(&cache, &k).await,
        Bytes::from_static(b"v1.0.0\nv1.1.0\n")
    );
}

#[tokio::test]
async fn a_zero_budget_caches_nothing() {
    let cache = MemoryCache::new(Counting::default(), options(0));
    let k = key(ArtifactKind::Info, "v1.0.0");
    cache
        .put_bytes(&k, Bytes::from_static(b"{}"))
        .await
        .unwrap();
    read(&cache, &k).await;
    read(&cache, &k).await;
    assert_eq!(cache.inner().gets.load(Ordering::SeqCst), 2);
    assert_eq!(cache.stats().entries, 0);
}
