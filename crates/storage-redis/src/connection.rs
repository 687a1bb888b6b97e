//! [`Inner`]: the one shared connection with its retries, and the commands every operation is
//! built from (chunk reads and writes, staging refreshes, listing pages).

use std::future::Future;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use gomodproxy_storage::{Key, ListEntry, ObjectMeta, Result, StorageError};
use redis::aio::ConnectionManager;
use redis::{Cmd, FromRedisValue, RedisError, RedisResult};

use crate::error::{RedisOpError, STORE, StoreError, body_error, is_transient};
use crate::layout::{Layout, millis};
use crate::scripts::Scripts;

/// Paths read per listing page (one script call each).
const LIST_PAGE: usize = 256;

/// Delay before the n-th retry of a command, times n.
const RETRY_DELAY: Duration = Duration::from_millis(100);

/// Reconnection attempts the connection manager makes inside one failing command, beyond the
/// first. Kept small: our own retries add more, and a request must fail promptly while Redis is
/// down rather than queue behind a long backoff.
pub(crate) const RECONNECT_RETRIES: usize = 1;

/// Shared state of a store and of the streams it hands out.
pub(crate) struct Inner {
    pub(crate) conn: ConnectionManager,
    /// The URL without its password.
    pub(crate) url: String,
    pub(crate) layout: Layout,
    pub(crate) scripts: Scripts,
    pub(crate) chunk_size: usize,
    pub(crate) retries: u32,
    pub(crate) staging_ttl: Duration,
    pub(crate) superseded_grace: Duration,
    pub(crate) write_concurrency: usize,
    pub(crate) read_ahead: usize,
}

impl Inner {
    pub(crate) fn redis_error(&self, op: impl Into<String>, source: RedisError) -> StorageError {
        StorageError::backend(
            STORE,
            RedisOpError {
                op: op.into(),
                url: self.url.clone(),
                source,
            },
        )
    }

    pub(crate) fn store_error(&self, message: impl Into<String>) -> StorageError {
        StorageError::backend(
            STORE,
            StoreError {
                message: message.into(),
                url: self.url.clone(),
            },
        )
    }

    /// Runs `op` on the shared connection, again after a dropped or refused connection.
    pub(crate) async fn retry<T, F, Fut>(&self, mut op: F) -> RedisResult<T>
    where
        F: FnMut(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let mut attempt = 0;
        loop {
            match op(self.conn.clone()).await {
                Err(e) if attempt < self.retries && is_transient(&e) => {
                    attempt += 1;
                    tracing::debug!(url = %self.url, attempt, error = %e, "retrying a Redis command");
                    tokio::time::sleep(RETRY_DELAY * attempt).await;
                }
                result => return result,
            }
        }
    }

    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> RedisResult<T> {
        self.retry(|mut conn| async move { cmd.query_async(&mut conn).await })
            .await
    }

    pub(crate) async fn invoke<T: FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> RedisResult<T> {
        self.retry(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await
    }

    /// Writes chunk `n` of a staged generation.
    pub(crate) async fn write_chunk(
        &self,
        generation: &str,
        n: u64,
        data: Bytes,
        path: &str,
    ) -> Result<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.layout.chunk(generation, n))
            .arg(data.as_ref())
            .arg("PX")
            .arg(millis(self.staging_ttl));
        self.query::<()>(&cmd)
            .await
            .map_err(|e| self.redis_error(format!("writing chunk {n} of {path}"), e))
    }

    /// Pushes back the expiry of a staged generation's marker and its first `issued` chunks.
    pub(crate) async fn refresh_staging(
        &self,
        generation: &str,
        issued: u64,
        path: &str,
    ) -> Result<()> {
        let ttl = millis(self.staging_ttl);
        let mut pipe = redis::pipe();
        pipe.cmd("PEXPIRE")
            .arg(self.layout.marker(generation))
            .arg(ttl)
            .ignore();
        for n in 0..issued {
            pipe.cmd("PEXPIRE")
                .arg(self.layout.chunk(generation, n))
                .arg(ttl)
                .ignore();
        }
        self.retry(|mut conn| {
            let pipe = &pipe;
            async move { pipe.query_async::<()>(&mut conn).await }
        })
        .await
        .map_err(|e| self.redis_error(format!("refreshing the staging expiry of {path}"), e))
    }

    /// Reads chunk `n` of a generation for a body stream.
    pub(crate) async fn read_chunk(
        &self,
        generation: &str,
        n: u64,
        path: &str,
    ) -> std::io::Result<Bytes> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.layout.chunk(generation, n));
        match self.query::<Option<Bytes>>(&cmd).await {
            Ok(Some(data)) => Ok(data),
            Ok(None) => Err(body_error(format!(
                "chunk {n} of {path} (generation {generation}) is gone: the object was replaced \
                 or deleted more than {:?} ago while this read was in progress, or Redis evicted \
                 it (redis at {})",
                self.superseded_grace, self.url
            ))),
            Err(e) => Err(body_error(
                RedisOpError {
                    op: format!("reading chunk {n} of {path}"),
                    url: self.url.clone(),
                    source: e,
                }
                .to_string(),
            )),
        }
    }

    /// One listing page: the entries (or their errors) and where the next page starts.
    pub(crate) async fn list_page(
        &self,
        min: &[u8],
        max: &[u8],
        prefix: &str,
    ) -> Result<(Vec<Result<ListEntry>>, Option<Vec<u8>>)> {
        let index = self.layout.index();
        let manifest_prefix = self.layout.manifest_prefix();
        let mut invocation = self.scripts.list.prepare_invoke();
        invocation
            .key(&index)
            .arg(min)
            .arg(max)
            .arg(LIST_PAGE)
            .arg(&manifest_prefix);
        type Page = (usize, Vec<u8>, u64, Vec<(Vec<u8>, u64, u64)>);
        let (scanned, last, dangling, rows): Page = self
            .invoke(&invocation)
            .await
            .map_err(|e| self.redis_error(format!("listing objects under {prefix:?}"), e))?;
        if dangling > 0 {
            tracing::warn!(
                url = %self.url,
                count = dangling,
                "indexed paths without a manifest (evicted or edited by hand); not listed"
            );
        }
        let entries = rows
            .into_iter()
            .filter_map(|(path, size, ms)| {
                let path = match String::from_utf8(path) {
                    Ok(path) => path,
                    Err(e) => {
                        return Some(Err(StorageError::InvalidKey {
                            path: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                            reason: "not UTF-8".into(),
                        }));
                    }
                };
                // The lex range already bounds the page; this guards paths outside ASCII.
                if !path.starts_with(prefix) {
                    return None;
                }
                Some(Key::from_path(&path).map(|key| ListEntry {
                    key,
                    meta: ObjectMeta {
                        size,
                        modified: UNIX_EPOCH + Duration::from_millis(ms),
                    },
                }))
            })
            .collect();
        let next = (scanned >= LIST_PAGE).then(|| {
            let mut cursor = b"(".to_vec();
            cursor.extend_from_slice(&last);
            cursor
        });
        Ok((entries, next))
    }
}

impl Inner {
    /// Logs a warning when the server may evict keys of live objects. `CONFIG` is often
    /// disabled on managed servers: then nothing is said.
    pub(crate) async fn warn_about_eviction(&self) {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg("maxmemory-policy");
        match self.query::<Vec<String>>(&cmd).await {
            Ok(reply) => {
                if let Some(policy) = reply.get(1)
                    && policy.starts_with("allkeys-")
                {
                    tracing::warn!(
                        url = %self.url,
                        policy = %policy,
                        "Redis may evict chunks of stored objects under memory pressure, which \
                         then fail to read; use maxmemory-policy noeviction or a volatile-* policy"
                    );
                }
            }
            Err(e) => tracing::debug!(url = %self.url, error = %e, "cannot read maxmemory-policy"),
        }
    }
}
