//! [`RedisStorage`]: opening a store, and the [`Storage`] trait over the other modules.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use gomodproxy_storage::{
    ByteStream, GetResult, Key, ListEntry, ListPrefix, ObjectMeta, PutPayload, Result, Storage,
    StorageError,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::RedisOptions;
use crate::connection::{Inner, RECONNECT_RETRIES};
use crate::error::{STORE, StoreError, body_error};
use crate::layout::{Layout, millis, random_token};
use crate::scripts::Scripts;
use crate::staging::Staging;

/// What [`Storage::check`] writes and reads back.
const PROBE: &[u8] = b"gomodproxy storage check\n";

/// A [`Storage`] in a Redis server. See the crate docs for the layout and guarantees.
///
/// Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct RedisStorage {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStorage")
            .field("url", &self.inner.url)
            .field("key_prefix", &self.inner.layout.prefix)
            .field("chunk_size", &self.inner.chunk_size)
            .finish_non_exhaustive()
    }
}

impl RedisStorage {
    /// Connects to the server of `options.url` and prepares the store's scripts.
    ///
    /// Fails with a [`StorageError::Backend`] naming the URL (without its password) when the
    /// options are invalid, the URL cannot be parsed, or the server cannot be reached within
    /// about two [`RedisOptions::connect_timeout`]s.
    pub async fn open(options: RedisOptions) -> Result<RedisStorage> {
        let url = gomodproxy_redact::url(&options.url);
        let open_error = |message: String| {
            StorageError::backend(
                STORE,
                StoreError {
                    message,
                    url: url.clone(),
                },
            )
        };
        options
            .validate()
            .map_err(|e| open_error(format!("invalid Redis options: `{}` {e}", e.key())))?;
        let client = redis::Client::open(options.url.as_str())
            .map_err(|e| open_error(format!("invalid Redis URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.response_timeout))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(1));
        // The manager's own attempts are bounded by the connect timeout each; this bounds the
        // whole, backoff included, whatever the platform does with a silent host.
        let budget =
            options.connect_timeout * (RECONNECT_RETRIES as u32 + 1) + Duration::from_secs(2);
        let conn =
            match tokio::time::timeout(budget, ConnectionManager::new_with_config(client, config))
                .await
            {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return Err(open_error(format!("cannot connect to Redis: {e}"))),
                Err(_) => {
                    return Err(open_error(format!(
                        "cannot connect to Redis: no connection within {budget:?}"
                    )));
                }
            };
        let inner = Inner {
            conn,
            url: url.clone(),
            layout: Layout {
                prefix: options.key_prefix.clone(),
            },
            scripts: Scripts::new(),
            chunk_size: options.chunk_size,
            retries: options.retries,
            staging_ttl: options.staging_ttl,
            superseded_grace: options.superseded_grace,
            write_concurrency: options.write_concurrency,
            read_ahead: options.read_ahead,
        };
        // Loading the scripts now makes a server without scripting (or an ACL forbidding it)
        // fail at startup instead of on the first request.
        for (name, script) in inner.scripts.all() {
            let invocation = script.prepare_invoke();
            inner
                .retry(|mut conn| {
                    let invocation = &invocation;
                    async move { invocation.load_async(&mut conn).await }
                })
                .await
                .map_err(|e| inner.redis_error(format!("loading the {name} script"), e))?;
        }
        inner.warn_about_eviction().await;
        Ok(RedisStorage {
            inner: Arc::new(inner),
        })
    }

    /// The options' key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.inner.layout.prefix
    }
}

#[async_trait]
impl Storage for RedisStorage {
    async fn put(&self, key: &Key, payload: PutPayload) -> Result<ObjectMeta> {
        let staging = Staging {
            inner: self.inner.clone(),
            generation: random_token(),
            path: key.path(),
            issued: AtomicU64::new(0),
            armed: AtomicBool::new(false),
        };
        match self.inner.stage_and_commit(&staging, payload).await {
            Ok(meta) => {
                staging.armed.store(false, Ordering::SeqCst);
                Ok(meta)
            }
            Err(e) => {
                staging.abort().await;
                Err(e)
            }
        }
    }

    async fn get(&self, key: &Key) -> Result<GetResult> {
        let inner = &self.inner;
        let path = key.path();
        let mut invocation = inner.scripts.get.prepare_invoke();
        invocation
            .key(inner.layout.manifest(&path))
            .arg(inner.layout.chunk_prefix());
        type Head = Option<(u64, u64, String, u64, Option<Bytes>)>;
        let head: Head = inner
            .invoke(&invocation)
            .await
            .map_err(|e| inner.redis_error(format!("reading the manifest of {path}"), e))?;
        let Some((size, ms, generation, chunks, first)) = head else {
            return Err(StorageError::NotFound { key: path });
        };
        let first = match (chunks, first) {
            (0, _) => None,
            (_, Some(first)) => Some(first),
            (_, None) => {
                return Err(inner.store_error(format!(
                    "the first chunk of {path} (generation {generation}) is missing: evicted or \
                     deleted outside gomodproxy"
                )));
            }
        };
        let read_ahead = inner.read_ahead;
        let rest = {
            let (inner, generation, path) = (inner.clone(), generation.clone(), path.clone());
            stream::iter(1..chunks)
                .map(move |n| {
                    let (inner, generation, path) =
                        (inner.clone(), generation.clone(), path.clone());
                    async move { inner.read_chunk(&generation, n, &path).await }
                })
                .buffered(read_ahead)
        };
        let chunks = stream::iter(first.map(Ok)).chain(rest).boxed();
        Ok(GetResult {
            meta: ObjectMeta {
                size,
                modified: UNIX_EPOCH + Duration::from_millis(ms),
            },
            body: checked_body(chunks, size, path),
        })
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let inner = &self.inner;
        let path = key.path();
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(inner.layout.manifest(&path))
            .arg("size")
            .arg("modified");
        let fields: (Option<u64>, Option<u64>) = inner
            .query(&cmd)
            .await
            .map_err(|e| inner.redis_error(format!("reading the manifest of {path}"), e))?;
        match fields {
            (Some(size), Some(ms)) => Ok(ObjectMeta {
                size,
                modified: UNIX_EPOCH + Duration::from_millis(ms),
            }),
            (None, None) => Err(StorageError::NotFound { key: path }),
            _ => Err(inner.store_error(format!("the manifest of {path} is incomplete"))),
        }
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        let inner = &self.inner;
        let path = key.path();
        let mut invocation = inner.scripts.delete.prepare_invoke();
        invocation
            .key(inner.layout.manifest(&path))
            .key(inner.layout.index())
            .arg(&path)
            .arg(inner.layout.chunk_prefix())
            .arg(millis(inner.superseded_grace));
        inner
            .invoke::<i64>(&invocation)
            .await
            .map_err(|e| inner.redis_error(format!("deleting {path}"), e))?;
        Ok(())
    }

    fn list(&self, prefix: &ListPrefix) -> BoxStream<'static, Result<ListEntry>> {
        let inner = self.inner.clone();
        let prefix = prefix.path_prefix();
        let (min, max) = if prefix.is_empty() {
            (b"-".to_vec(), b"+".to_vec())
        } else {
            // Key paths are ASCII, so every path starting with `prefix` sorts below prefix+0xff.
            let mut min = b"[".to_vec();
            min.extend_from_slice(prefix.as_bytes());
            let mut max = b"(".to_vec();
            max.extend_from_slice(prefix.as_bytes());
            max.push(0xff);
            (min, max)
        };
        stream::unfold(Some(min), move |cursor| {
            let (inner, max, prefix) = (inner.clone(), max.clone(), prefix.clone());
            async move {
                let min = cursor?;
                match inner.list_page(&min, &max, &prefix).await {
                    Ok((entries, next)) => Some((stream::iter(entries), next)),
                    Err(e) => Some((stream::iter(vec![Err(e)]), None)),
                }
            }
        })
        .flatten()
        .boxed()
    }

    async fn check(&self) -> Result<()> {
        let inner = &self.inner;
        let probe = inner.layout.probe(&random_token());
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(&probe)
            .arg(PROBE)
            .arg("PX")
            .arg(60_000)
            .ignore()
            .cmd("GET")
            .arg(&probe)
            .cmd("DEL")
            .arg(&probe)
            .ignore();
        let (read,): (Option<Vec<u8>>,) = inner
            .retry(|mut conn| {
                let pipe = &pipe;
                async move { pipe.query_async(&mut conn).await }
            })
            .await
            .map_err(|e| inner.redis_error("writing and reading a probe key", e))?;
        if read.as_deref() != Some(PROBE) {
            return Err(inner.store_error(format!(
                "the probe key {probe} read back differently than written"
            )));
        }
        Ok(())
    }
}

/// Ends a body stream with an error when its chunks do not add up to the manifest's size, and
/// stops after the first error.
fn checked_body(
    chunks: BoxStream<'static, std::io::Result<Bytes>>,
    size: u64,
    path: String,
) -> ByteStream {
    stream::unfold(
        (chunks, 0u64, false),
        move |(mut chunks, received, done)| {
            let path = path.clone();
            async move {
                if done {
                    return None;
                }
                match chunks.next().await {
                    Some(Ok(data)) => {
                        let received = received + data.len() as u64;
                        if received > size {
                            let err = body_error(format!(
                                "{path}: the chunks hold more than the manifest's {size} bytes"
                            ));
                            return Some((Err(err), (chunks, received, true)));
                        }
                        Some((Ok(data), (chunks, received, false)))
                    }
                    Some(Err(e)) => Some((Err(e), (chunks, received, true))),
                    None if received != size => {
                        let err = body_error(format!(
                            "{path}: the chunks hold {received} bytes, the manifest says {size}"
                        ));
                        Some((Err(err), (chunks, received, true)))
                    }
                    None => None,
                }
            }
        },
    )
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_rejects_invalid_options_naming_the_url() {
        let err = RedisStorage::open(RedisOptions {
            url: "redis://:hunter2@127.0.0.1:1/0".into(),
            chunk_size: 0,
            ..RedisOptions::default()
        })
        .await
        .unwrap_err();
        let shown = err.to_string();
        assert!(
            matches!(err, StorageError::Backend { store: "redis", .. }),
            "{err:?}"
        );
        assert!(shown.contains("chunk_size"), "{shown}");
        assert!(shown.contains("redis://:***@127.0.0.1:1/0"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
