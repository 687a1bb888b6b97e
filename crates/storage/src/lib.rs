//! The storage contract of gomodproxy.
//!
//! One small trait, [`Storage`], that every backend implements (filesystem, sled, Redis, S3), in
//! the shape of `object_store`: a handful of required methods over opaque byte objects, and the
//! conveniences in [`StorageExt`], which nobody implements by hand.
//!
//! - [`Key`] is the only place that decides where an artifact lives: a validated module path and
//!   version plus a kind, rendered as a relative path in GOPROXY layout
//!   (`github.com/!azure/sdk/@v/v1.2.3.zip`). Backends store objects under [`Key::path`] and must
//!   not build paths of their own; [`Key::from_path`] parses a path back for listing.
//! - Every write is atomic: a reader sees the whole previous object, the whole new one, or
//!   nothing, never a prefix. A payload that fails or delivers a different length than announced
//!   leaves nothing visible.
//! - Bodies stream ([`ByteStream`]) so that 500 MiB zips never sit in memory.
//! - [`ObjectMeta::modified`] is when the object was stored: the fetch time that TTLs of mutable
//!   records (`list`, `@latest`) are measured from.
//! - [`StorageError::NotFound`] is distinct from every failure of the store itself: a proxy must
//!   tell a cache miss (go upstream) from a broken backend (answer 503).
//!
//! [`memory::InMemory`] is the reference implementation. [`cache::MemoryCache`] is a wrapper
//! that holds small objects of any store in a bounded memory cache. With the `conformance`
//! feature, `conformance::run_all` is the one suite every backend crate runs against a real
//! instance. (Streaming a body out of a local file, which the fs and sled backends share, is the
//! `gomodproxy-file-body` crate.)
//!
//! # Dependencies
//! Of gomodproxy's crates only `gomod` (key validation and escaping). Everything else depends
//! on this crate, never the other way: no backend, no service, no server code here. Arrows point
//! downward only: server → service → storage ← backends.

#![deny(missing_docs)]

use std::fmt::Debug;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};

pub mod cache;
mod key;
pub mod memory;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use key::{ArtifactKind, Key, ListPrefix};

/// A stream of body chunks. Errors are `std::io::Error` so that any source (file, socket,
/// upstream response) can feed it.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Result alias for storage operations.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What a store knows about an object without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Length of the body in bytes.
    pub size: u64,
    /// When the object was stored (its fetch time, for TTLs).
    pub modified: SystemTime,
}

/// An object being read: its metadata and its body as a stream.
pub struct GetResult {
    /// Size and store time.
    pub meta: ObjectMeta,
    /// The body; yields exactly `meta.size` bytes.
    pub body: ByteStream,
}

impl Debug for GetResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetResult")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// A body to store.
pub enum PutPayload {
    /// A small body held in memory.
    Bytes(Bytes),
    /// A streamed body. When `length` is given, a stream that ends early or runs long is an
    /// error ([`StorageError::LengthMismatch`]) and nothing is stored.
    Stream {
        /// The body.
        stream: ByteStream,
        /// The announced length, checked by the store.
        length: Option<u64>,
    },
}

impl Debug for PutPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PutPayload::Bytes(b) => f.debug_tuple("Bytes").field(&b.len()).finish(),
            PutPayload::Stream { length, .. } => f
                .debug_struct("Stream")
                .field("length", length)
                .finish_non_exhaustive(),
        }
    }
}

impl From<Bytes> for PutPayload {
    fn from(value: Bytes) -> Self {
        PutPayload::Bytes(value)
    }
}

impl From<Vec<u8>> for PutPayload {
    fn from(value: Vec<u8>) -> Self {
        PutPayload::Bytes(Bytes::from(value))
    }
}

impl PutPayload {
    /// The announced length, if known up front.
    pub fn length(&self) -> Option<u64> {
        match self {
            PutPayload::Bytes(b) => Some(b.len() as u64),
            PutPayload::Stream { length, .. } => *length,
        }
    }

    /// Turns the payload into a stream (a `Bytes` payload becomes a one-chunk stream).
    pub fn into_stream(self) -> ByteStream {
        match self {
            PutPayload::Bytes(b) => futures::stream::once(async move { Ok(b) }).boxed(),
            PutPayload::Stream { stream, .. } => stream,
        }
    }
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// The object's key.
    pub key: Key,
    /// Its size and store time.
    pub meta: ObjectMeta,
}

/// Errors of a storage backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The object does not exist. Never used for a failure of the store itself.
    #[error("not found: {key}")]
    NotFound {
        /// The key's path.
        key: String,
    },
    /// A streamed payload delivered a different number of bytes than announced; nothing stored.
    #[error("length mismatch for {key}: expected {expected} bytes, got {actual}")]
    LengthMismatch {
        /// The key's path.
        key: String,
        /// Announced length.
        expected: u64,
        /// Bytes actually received (may stop counting once over `expected`).
        actual: u64,
    },
    /// The payload stream itself failed; nothing stored.
    #[error("payload for {key} failed: {source}")]
    Payload {
        /// The key's path.
        key: String,
        /// What the stream reported.
        source: std::io::Error,
    },
    /// A stored path is not a valid [`Key`] (found while listing).
    #[error("invalid key path {path:?}: {reason}")]
    InvalidKey {
        /// The path.
        path: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The stored object is damaged (its recorded length or checksum does not match what is
    /// on disk); nothing of it was served.
    #[error("stored {key} is damaged: {reason}")]
    Corrupt {
        /// The key's path.
        key: String,
        /// What does not match.
        reason: String,
    },
    /// The store failed or is unreachable.
    #[error("{store} storage error: {source}")]
    Backend {
        /// Which backend (`fs`, `sled`, `redis`, `s3`, `memory`).
        store: &'static str,
        /// The underlying error, with its context.
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl StorageError {
    /// Wraps a backend error.
    pub fn backend(
        store: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        StorageError::Backend {
            store,
            source: source.into(),
        }
    }

    /// True for [`StorageError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }
}

/// A store of immutable-per-write objects addressed by [`Key`].
///
/// Contract (checked by the conformance suite):
/// - `put` is atomic and replaces any previous object; concurrent `put`s of one key leave one of
///   the written bodies, whole. A failed payload leaves the previous state untouched.
/// - `get`/`head` of a missing key return [`StorageError::NotFound`].
/// - `delete` of a missing key succeeds.
/// - `list` yields every stored key under the prefix exactly once (order unspecified), never an
///   object whose `put` has not completed.
#[async_trait]
pub trait Storage: Debug + Send + Sync + 'static {
    /// Stores `payload` under `key`, atomically.
    async fn put(&self, key: &Key, payload: PutPayload) -> Result<ObjectMeta>;

    /// Opens the object for streaming.
    async fn get(&self, key: &Key) -> Result<GetResult>;

    /// Metadata without the body.
    async fn head(&self, key: &Key) -> Result<ObjectMeta>;

    /// Removes the object; a missing object is not an error.
    async fn delete(&self, key: &Key) -> Result<()>;

    /// Lists the objects under `prefix`.
    fn list(&self, prefix: &ListPrefix) -> BoxStream<'static, Result<ListEntry>>;

    /// A cheap read/write probe of the store, for startup and `/readyz`.
    async fn check(&self) -> Result<()>;
}

macro_rules! forward_storage {
    ($ty:ty) => {
        #[async_trait]
        impl<S: Storage + ?Sized> Storage for $ty {
            async fn put(&self, key: &Key, payload: PutPayload) -> Result<ObjectMeta> {
                (**self).put(key, payload).await
            }
            async fn get(&self, key: &Key) -> Result<GetResult> {
                (**self).get(key).await
            }
            async fn head(&self, key: &Key) -> Result<ObjectMeta> {
                (**self).head(key).await
            }
            async fn delete(&self, key: &Key) -> Result<()> {
                (**self).delete(key).await
            }
            fn list(&self, prefix: &ListPrefix) -> BoxStream<'static, Result<ListEntry>> {
                (**self).list(prefix)
            }
            async fn check(&self) -> Result<()> {
                (**self).check().await
            }
        }
    };
}

forward_storage!(Arc<S>);
forward_storage!(Box<S>);

/// Conveniences over any [`Storage`]; implemented for every store, never by hand.
#[async_trait]
pub trait StorageExt: Storage {
    /// Stores a small body.
    async fn put_bytes(&self, key: &Key, body: Bytes) -> Result<ObjectMeta> {
        self.put(key, PutPayload::Bytes(body)).await
    }

    /// Reads a whole object into memory, failing with [`StorageError::Backend`] if it is larger
    /// than `limit` bytes (so a corrupt or unexpected object cannot exhaust memory).
    async fn get_bytes(&self, key: &Key, limit: u64) -> Result<(ObjectMeta, Bytes)> {
        let GetResult { meta, mut body } = self.get(key).await?;
        if meta.size > limit {
            return Err(StorageError::backend(
                "storage",
                format!(
                    "{} is {} bytes, over the {limit}-byte limit for in-memory reads",
                    key.path(),
                    meta.size
                ),
            ));
        }
        let mut buf = BytesMut::with_capacity(meta.size as usize);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| StorageError::backend("storage", e))?;
            if (buf.len() + chunk.len()) as u64 > limit {
                return Err(StorageError::backend(
                    "storage",
                    format!(
                        "{} grew past the {limit}-byte limit while reading",
                        key.path()
                    ),
                ));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok((meta, buf.freeze()))
    }

    /// `Some(meta)` if the object exists, `None` if not; other errors pass through.
    async fn exists(&self, key: &Key) -> Result<Option<ObjectMeta>> {
        match self.head(key).await {
            Ok(meta) => Ok(Some(meta)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl<S: Storage + ?Sized> StorageExt for S {}
