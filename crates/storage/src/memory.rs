//! The in-memory reference store.
//!
//! [`InMemory`] keeps every object in a map behind one async `RwLock`. It is the simplest correct
//! implementation of the [`Storage`] contract: other crates use it in unit tests, and it is the
//! store the conformance suite is first checked against. It holds whole bodies in RAM, so it is
//! not meant for production caches of module zips.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::RwLock;

use crate::{
    ByteStream, GetResult, Key, ListEntry, ListPrefix, ObjectMeta, PutPayload, Result, Storage,
    StorageError,
};

/// Size of the chunks a body is handed out in, so that readers see a stream like any other
/// backend's rather than one giant chunk. Slicing [`Bytes`] copies nothing.
const READ_CHUNK: usize = 64 * 1024;

/// One stored object.
#[derive(Clone)]
struct Object {
    key: Key,
    body: Bytes,
    meta: ObjectMeta,
}

/// A [`Storage`] that keeps objects in memory.
///
/// Puts collect the payload first and insert it under the write lock only once it is complete and
/// of the announced length, so readers see the old object or the new one, never a part.
#[derive(Default)]
pub struct InMemory {
    // Keyed by `Key::path()` so that a listing is a range scan, as in an ordered key-value store.
    // Shared so that a listing stream can outlive the `&self` borrow it was created from.
    objects: Arc<RwLock<BTreeMap<String, Object>>>,
}

impl InMemory {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Debug for InMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Bodies can be hundreds of MiB: never print them, and never wait for the lock here.
        let mut d = f.debug_struct("InMemory");
        if let Ok(objects) = self.objects.try_read() {
            d.field("objects", &objects.len());
        }
        d.finish_non_exhaustive()
    }
}

/// Reads a payload whole, enforcing its announced length.
async fn collect(key: &Key, payload: PutPayload) -> Result<Bytes> {
    let expected = match payload {
        PutPayload::Bytes(b) => return Ok(b),
        PutPayload::Stream { length, .. } => length,
    };
    let mut stream = payload.into_stream();
    let capacity = expected.map_or(0, |n| n.min(64 * 1024 * 1024) as usize);
    let mut buf = BytesMut::with_capacity(capacity);
    let mismatch = |expected, actual| StorageError::LengthMismatch {
        key: key.path(),
        expected,
        actual,
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| StorageError::Payload {
            key: key.path(),
            source,
        })?;
        let received = (buf.len() + chunk.len()) as u64;
        // Stop reading a stream that runs long instead of buffering all of it.
        if let Some(expected) = expected
            && received > expected
        {
            return Err(mismatch(expected, received));
        }
        buf.extend_from_slice(&chunk);
    }
    if let Some(expected) = expected
        && buf.len() as u64 != expected
    {
        return Err(mismatch(expected, buf.len() as u64));
    }
    Ok(buf.freeze())
}

fn body_stream(body: Bytes) -> ByteStream {
    let chunks: Vec<std::io::Result<Bytes>> = (0..body.len())
        .step_by(READ_CHUNK)
        .map(|start| Ok(body.slice(start..(start + READ_CHUNK).min(body.len()))))
        .collect();
    stream::iter(chunks).boxed()
}

#[async_trait]
impl Storage for InMemory {
    async fn put(&self, key: &Key, payload: PutPayload) -> Result<ObjectMeta> {
        let body = collect(key, payload).await?;
        let path = key.path();
        let mut objects = self.objects.write().await;
        // Taken under the lock so that, when puts race, the object that ends up stored also has
        // the latest time (unless the wall clock steps back).
        let meta = ObjectMeta {
            size: body.len() as u64,
            modified: SystemTime::now(),
        };
        objects.insert(
            path,
            Object {
                key: key.clone(),
                body,
                meta: meta.clone(),
            },
        );
        Ok(meta)
    }

    async fn get(&self, key: &Key) -> Result<GetResult> {
        let path = key.path();
        let object = self.objects.read().await.get(&path).cloned();
        match object {
            Some(Object { body, meta, .. }) => Ok(GetResult {
                meta,
                body: body_stream(body),
            }),
            None => Err(StorageError::NotFound { key: path }),
        }
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let path = key.path();
        match self.objects.read().await.get(&path) {
            Some(object) => Ok(object.meta.clone()),
            None => Err(StorageError::NotFound { key: path }),
        }
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        self.objects.write().await.remove(&key.path());
        Ok(())
    }

    fn list(&self, prefix: &ListPrefix) -> BoxStream<'static, Result<ListEntry>> {
        let prefix = prefix.path_prefix();
        let objects = self.objects.clone();
        // A snapshot taken when the stream is first polled: the lock is not held while the caller
        // consumes the listing.
        stream::once(async move {
            let objects = objects.read().await;
            let entries: Vec<Result<ListEntry>> = objects
                .range(prefix.clone()..)
                .take_while(|(path, _)| path.starts_with(&prefix))
                .map(|(_, o)| {
                    Ok(ListEntry {
                        key: o.key.clone(),
                        meta: o.meta.clone(),
                    })
                })
                .collect();
            stream::iter(entries)
        })
        .flatten()
        .boxed()
    }

    async fn check(&self) -> Result<()> {
        Ok(())
    }
}
