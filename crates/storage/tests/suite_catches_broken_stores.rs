//! The conformance suite must fail a store that breaks the contract: each test here runs one
//! behaviour against a store with one deliberate flaw and expects the behaviour to panic for the
//! right reason. Without these, an assertion that can never fire would go unnoticed.

use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use futures::stream::{BoxStream, StreamExt};
use gomodproxy_storage::conformance::{self, Capabilities};
use gomodproxy_storage::memory::InMemory;
use gomodproxy_storage::{
    GetResult, Key, ListEntry, ListPrefix, ObjectMeta, PutPayload, Result, Storage, StorageError,
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Flaw {
    /// Makes each chunk visible as it arrives.
    TornWrites,
    /// Stores whatever arrives, whatever length was announced.
    IgnoresLength,
    /// Stores what arrived before a stream error and reports success.
    SwallowsStreamErrors,
    /// Drops the `!` escapes, merging `Upper/Case` with `upper/case`.
    FoldsCase,
    /// Keeps the first store time of a key forever.
    KeepsFirstModified,
    /// Lists a module by the prefix `<module>/`, taking in its sub-modules.
    ListsSubModules,
    /// Reports a missing key as a backend failure.
    MissingIsBackendError,
}

#[derive(Debug)]
struct Broken {
    inner: InMemory,
    flaw: Flaw,
    first_modified: Mutex<Vec<(Key, SystemTime)>>,
}

impl Broken {
    fn new(flaw: Flaw) -> Self {
        Broken {
            inner: InMemory::new(),
            flaw,
            first_modified: Mutex::default(),
        }
    }

    fn map_key(&self, key: &Key) -> Key {
        if self.flaw == Flaw::FoldsCase {
            Key::from_path(&key.path().replace('!', "")).unwrap()
        } else {
            key.clone()
        }
    }
}

#[async_trait]
impl Storage for Broken {
    async fn put(&self, key: &Key, payload: PutPayload) -> Result<ObjectMeta> {
        let key = self.map_key(key);
        match self.flaw {
            Flaw::TornWrites | Flaw::IgnoresLength | Flaw::SwallowsStreamErrors => {
                let expected = payload.length();
                let mut stream = payload.into_stream();
                let mut buf = BytesMut::new();
                while let Some(chunk) = stream.next().await {
                    match chunk {
                        Ok(chunk) => buf.extend_from_slice(&chunk),
                        Err(source) if self.flaw != Flaw::SwallowsStreamErrors => {
                            return Err(StorageError::Payload {
                                key: key.path(),
                                source,
                            });
                        }
                        Err(_) => break,
                    }
                    if self.flaw == Flaw::TornWrites {
                        self.inner
                            .put(&key, Bytes::copy_from_slice(&buf).into())
                            .await?;
                    }
                }
                // The torn store does check the length, but only after every chunk was visible.
                if let (Flaw::TornWrites, Some(n)) = (self.flaw, expected)
                    && buf.len() as u64 != n
                {
                    let (expected, actual) = (n, buf.len() as u64);
                    return Err(StorageError::LengthMismatch {
                        key: key.path(),
                        expected,
                        actual,
                    });
                }
                self.inner.put(&key, buf.freeze().into()).await
            }
            Flaw::KeepsFirstModified => {
                let mut meta = self.inner.put(&key, payload).await?;
                let mut first = self.first_modified.lock().unwrap();
                match first.iter().find(|(k, _)| *k == key) {
                    Some((_, t)) => meta.modified = *t,
                    None => first.push((key, meta.modified)),
                }
                Ok(meta)
            }
            _ => self.inner.put(&key, payload).await,
        }
    }

    async fn get(&self, key: &Key) -> Result<GetResult> {
        let mut got = self
            .inner
            .get(&self.map_key(key))
            .await
            .map_err(|e| self.missing(e))?;
        got.meta = self.fix_meta(key, got.meta);
        Ok(got)
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let meta = self
            .inner
            .head(&self.map_key(key))
            .await
            .map_err(|e| self.missing(e))?;
        Ok(self.fix_meta(key, meta))
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        self.inner.delete(&self.map_key(key)).await
    }

    fn list(&self, prefix: &ListPrefix) -> BoxStream<'static, Result<ListEntry>> {
        match (self.flaw, prefix) {
            (Flaw::ListsSubModules, ListPrefix::Module(m)) => {
                let wide = format!("{}/", m.escaped());
                self.inner
                    .list(&ListPrefix::All)
                    .filter(move |e| {
                        let keep = e.as_ref().map_or(true, |e| e.key.path().starts_with(&wide));
                        async move { keep }
                    })
                    .boxed()
            }
            _ => self.inner.list(prefix),
        }
    }

    async fn check(&self) -> Result<()> {
        Ok(())
    }
}

impl Broken {
    fn missing(&self, e: StorageError) -> StorageError {
        if self.flaw == Flaw::MissingIsBackendError && e.is_not_found() {
            StorageError::backend("broken", "lookup failed")
        } else {
            e
        }
    }

    fn fix_meta(&self, key: &Key, mut meta: ObjectMeta) -> ObjectMeta {
        let first = self.first_modified.lock().unwrap();
        if self.flaw == Flaw::KeepsFirstModified
            && let Some((_, t)) = first.iter().find(|(k, _)| k == key)
        {
            meta.modified = *t;
        }
        meta
    }
}

/// Runs `behaviour` and returns its panic message; fails if it did not panic.
async fn panic_of<F: std::future::Future<Output = ()>>(behaviour: F) -> String {
    match AssertUnwindSafe(behaviour).catch_unwind().await {
        Ok(()) => panic!("the behaviour passed against a broken store"),
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
    }
}

fn caps() -> Capabilities {
    Capabilities {
        large_object_size: 1024 * 1024,
        bounded_memory: false,
        ..Capabilities::default()
    }
}

#[tokio::test]
async fn torn_writes_are_caught() {
    let store = Broken::new(Flaw::TornWrites);
    let msg = panic_of(conformance::length_mismatch_leaves_nothing(&store, &caps())).await;
    assert!(msg.contains("expected NotFound, got an object"), "{msg}");
    let store = Broken::new(Flaw::TornWrites);
    let msg = panic_of(conformance::concurrent_puts(&store, &caps())).await;
    assert!(msg.contains("torn or mixed write"), "{msg}");
}

#[tokio::test]
async fn ignoring_the_announced_length_is_caught() {
    let store = Broken::new(Flaw::IgnoresLength);
    let msg = panic_of(conformance::length_mismatch_leaves_nothing(&store, &caps())).await;
    assert!(
        msg.contains("a payload of the wrong length was accepted"),
        "{msg}"
    );
}

#[tokio::test]
async fn swallowed_stream_errors_are_caught() {
    let store = Broken::new(Flaw::SwallowsStreamErrors);
    let msg = panic_of(conformance::failing_stream_leaves_nothing(&store, &caps())).await;
    assert!(msg.contains("a failing payload was accepted"), "{msg}");
}

#[tokio::test]
async fn case_folding_is_caught() {
    let store = Broken::new(Flaw::FoldsCase);
    let msg = panic_of(conformance::odd_module_paths(&store, &caps())).await;
    assert!(msg.contains("Upper/Case"), "{msg}");
}

#[tokio::test]
async fn a_stale_modified_time_is_caught() {
    let store = Broken::new(Flaw::KeepsFirstModified);
    let msg = panic_of(conformance::modified_is_recent_and_advances(
        &store,
        &caps(),
    ))
    .await;
    assert!(msg.contains("did not advance modified"), "{msg}");
}

#[tokio::test]
async fn listing_sub_modules_is_caught() {
    let store = Broken::new(Flaw::ListsSubModules);
    let msg = panic_of(conformance::listing(&store, &caps())).await;
    assert!(msg.contains("listed"), "{msg}");
}

#[tokio::test]
async fn missing_as_backend_error_is_caught() {
    let store = Broken::new(Flaw::MissingIsBackendError);
    let msg = panic_of(conformance::missing_keys(&store, &caps())).await;
    assert!(msg.contains("expected NotFound"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffering_a_large_object_is_caught() {
    // InMemory holds the whole body: with the bound on, the RSS check must fire.
    let store = InMemory::new();
    let caps = Capabilities {
        large_object_size: 96 * 1024 * 1024,
        max_rss_growth: 48 * 1024 * 1024,
        ..Capabilities::default()
    };
    let msg = panic_of(conformance::large_object(&store, &caps)).await;
    assert!(msg.contains("over the 48 MiB bound"), "{msg}");
}
