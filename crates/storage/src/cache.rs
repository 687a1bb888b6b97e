//! A bounded in-memory cache of small objects in front of any store.
//!
//! [`MemoryCache`] wraps a [`Storage`] and implements it: the server puts it in front of
//! whichever backend is configured, so hot `.info`, `.mod`, `list` and checksum-database objects
//! are answered from memory instead of a disk read, a Redis round trip or an S3 GET.
//!
//! - Bounded by bytes (bodies plus a fixed per-entry overhead), least recently used first out.
//!   Objects larger than [`MemoryCacheOptions::max_object_bytes`] and every zip go straight to
//!   the store and are never held.
//! - Filled on reads only. `put` and `delete` drop the cached copy before and after they reach
//!   the store, and count in a write epoch; a read that missed fills the cache only if no write
//!   happened while it read the store. So this process never keeps a body it has overwritten,
//!   whatever the interleaving of concurrent reads and writes (writes are rare here: they are
//!   upstream misses).
//! - Objects that change ([`Key::is_mutable`]: `list`, `@latest`, a tree head) are cached for at
//!   most [`MemoryCacheOptions::mutable_max_age`]: another replica sharing the store may have
//!   replaced them, and that bounds how long this one can serve the older copy. Immutable objects
//!   stay until evicted.
//! - `list` and `check` always go to the store.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};

use crate::{GetResult, Key, ListEntry, ListPrefix, ObjectMeta, PutPayload, Result, Storage};

/// Bookkeeping charged per entry on top of its body, so many tiny objects cannot exceed the
/// budget unnoticed.
const ENTRY_OVERHEAD: u64 = 256;

/// Settings of a [`MemoryCache`]: the server's `[cache]` section.
///
/// With the `serde` feature it deserializes itself, under the names of its fields
/// (`memory_bytes`, `max_object_bytes`, `mutable_max_age` as a humantime string such as `"5s"`);
/// a key it does not have is an error, and a key left out keeps its default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(default, deny_unknown_fields)
)]
pub struct MemoryCacheOptions {
    /// Total budget in bytes. 0 disables caching (every call goes to the store). Default 64 MiB.
    pub memory_bytes: u64,
    /// Largest single object cached. Default 1 MiB.
    pub max_object_bytes: u64,
    /// Longest time a mutable object (`list`, `@latest`, a tree head) is served from memory:
    /// other replicas sharing the store may have replaced it. Default 5 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub mutable_max_age: Duration,
}

impl Default for MemoryCacheOptions {
    fn default() -> Self {
        MemoryCacheOptions {
            memory_bytes: 64 << 20,
            max_object_bytes: 1 << 20,
            mutable_max_age: Duration::from_secs(5),
        }
    }
}

struct Entry {
    body: Bytes,
    meta: ObjectMeta,
    cached_at: Instant,
    tick: u64,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<Key, Entry>,
    /// Use order: tick → key; the smallest tick is the least recently used.
    order: BTreeMap<u64, Key>,
    next_tick: u64,
    /// Bumped before and after every write through this cache.
    write_epoch: u64,
    bytes: u64,
    hits: u64,
    misses: u64,
}

impl Lru {
    fn cost(body: &Bytes) -> u64 {
        body.len() as u64 + ENTRY_OVERHEAD
    }

    fn remove(&mut self, key: &Key) {
        if let Some(old) = self.entries.remove(key) {
            self.order.remove(&old.tick);
            self.bytes -= Self::cost(&old.body);
        }
    }

    fn touch(&mut self, key: &Key) -> Option<(Bytes, ObjectMeta, Instant)> {
        let tick = self.next_tick;
        let entry = self.entries.get_mut(key)?;
        self.order.remove(&entry.tick);
        entry.tick = tick;
        self.order.insert(tick, key.clone());
        self.next_tick += 1;
        Some((entry.body.clone(), entry.meta.clone(), entry.cached_at))
    }

    fn insert(&mut self, key: Key, body: Bytes, meta: ObjectMeta, capacity: u64) {
        self.remove(&key);
        let cost = Self::cost(&body);
        while self.bytes + cost > capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(old) = self.entries.remove(&oldest) {
                self.bytes -= Self::cost(&old.body);
            }
        }
        if self.bytes + cost > capacity {
            return;
        }
        let tick = self.next_tick;
        self.next_tick += 1;
        self.bytes += cost;
        self.order.insert(tick, key.clone());
        self.entries.insert(
            key,
            Entry {
                body,
                meta,
                cached_at: Instant::now(),
                tick,
            },
        );
    }
}

/// Figures of a [`MemoryCache`], for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Objects held.
    pub entries: u64,
    /// Bytes charged against the budget.
    pub bytes: u64,
    /// Reads answered from memory.
    pub hits: u64,
    /// Reads of cacheable objects that went to the store.
    pub misses: u64,
}

/// A [`Storage`] that answers small objects from memory; see the module docs.
pub struct MemoryCache<S> {
    inner: S,
    options: MemoryCacheOptions,
    lru: Mutex<Lru>,
}

impl<S: Storage> MemoryCache<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, options: MemoryCacheOptions) -> Self {
        MemoryCache {
            inner,
            options,
            lru: Mutex::new(Lru::default()),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Current figures.
    pub fn stats(&self) -> CacheStats {
        let lru = self.lock();
        CacheStats {
            entries: lru.entries.len() as u64,
            bytes: lru.bytes,
            hits: lru.hits,
            misses: lru.misses,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cacheable(&self, key: &Key) -> bool {
        self.options.memory_bytes > 0 && !key.is_zip()
    }

    /// The cached body and meta of `key`, if held and not too old.
    fn lookup(&self, key: &Key) -> Option<(Bytes, ObjectMeta)> {
        let mut lru = self.lock();
        match lru.touch(key) {
            Some((body, meta, cached_at))
                if !key.is_mutable() || cached_at.elapsed() < self.options.mutable_max_age =>
            {
                lru.hits += 1;
                Some((body, meta))
            }
            Some(_) => {
                lru.remove(key);
                lru.misses += 1;
                None
            }
            None => {
                lru.misses += 1;
                None
            }
        }
    }

    /// Caches what a read found, unless a write happened since `epoch`.
    fn remember(&self, key: &Key, body: Bytes, meta: ObjectMeta, epoch: u64) {
        if body.len() as u64 > self.options.max_object_bytes {
            return;
        }
        let mut lru = self.lock();
        if lru.write_epoch == epoch {
            lru.insert(key.clone(), body, meta, self.options.memory_bytes);
        }
    }

    /// Drops `key` and counts a write.
    fn forget(&self, key: &Key) {
        let mut lru = self.lock();
        lru.write_epoch += 1;
        lru.remove(key);
    }

    fn epoch(&self) -> u64 {
        self.lock().write_epoch
    }

    fn answer(body: Bytes, meta: ObjectMeta) -> GetResult {
        GetResult {
            meta,
            body: futures::stream::once(async move { Ok(body) }).boxed(),
        }
    }
}

impl<S: Storage> fmt::Debug for MemoryCache<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCache")
            .field("memory_bytes", &self.options.memory_bytes)
            .field("inner", &self.inner)
            .finish()
    }
}

#[async_trait]
impl<S: Storage> Storage for MemoryCache<S> {
    async fn put(&self, key: &Key, payload: PutPayload) -> Result<ObjectMeta> {
        self.forget(key);
        let result = self.inner.put(key, payload).await;
        self.forget(key);
        result
    }

    async fn get(&self, key: &Key) -> Result<GetResult> {
        if !self.cacheable(key) {
            return self.inner.get(key).await;
        }
        if let Some((body, meta)) = self.lookup(key) {
            return Ok(Self::answer(body, meta));
        }
        let epoch = self.epoch();
        let got = self.inner.get(key).await?;
        if got.meta.size > self.options.max_object_bytes {
            return Ok(got);
        }
        let (meta, body) = collect(key, got, self.options.max_object_bytes).await?;
        self.remember(key, body.clone(), meta.clone(), epoch);
        Ok(Self::answer(body, meta))
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        if self.cacheable(key)
            && let Some((_, meta)) = self.lookup(key)
        {
            return Ok(meta);
        }
        self.inner.head(key).await
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        self.forget(key);
        let result = self.inner.delete(key).await;
        self.forget(key);
        result
    }

    fn list(&self, prefix: &ListPrefix) -> BoxStream<'static, Result<ListEntry>> {
        self.inner.list(prefix)
    }

    async fn check(&self) -> Result<()> {
        self.inner.check().await
    }
}

/// Reads a small body whole, checking it has the size its metadata announced.
async fn collect(key: &Key, got: GetResult, limit: u64) -> Result<(ObjectMeta, Bytes)> {
    let GetResult { meta, mut body } = got;
    let mut buf = bytes::BytesMut::with_capacity(meta.size as usize);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| crate::StorageError::backend("cache", e))?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(crate::StorageError::backend(
                "cache",
                format!("{key} grew past its announced size while reading"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    if buf.len() as u64 != meta.size {
        return Err(crate::StorageError::backend(
            "cache",
            format!(
                "{key}: read {} bytes, the store announced {}",
                buf.len(),
                meta.size
            ),
        ));
    }
    Ok((meta, buf.freeze()))
}
