//! A put in progress: its staging marker and chunks, the commit that makes them visible, and
//! the clean-up of a put that failed or was dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use futures::stream::StreamExt;
use gomodproxy_storage::{ObjectMeta, PutPayload, Result, StorageError};

use crate::connection::Inner;
use crate::layout::millis;
use crate::rechunk::rechunk;

/// How long a committed generation's `done` marker stays, for commits retried after a lost reply.
const DONE_MARKER_TTL: Duration = Duration::from_secs(5 * 60);

/// A put's staged generation. Dropped while armed (an error, or the `put` future dropped midway)
/// it deletes the staged chunks, unless the generation was committed meanwhile.
pub(crate) struct Staging {
    pub(crate) inner: Arc<Inner>,
    pub(crate) generation: String,
    pub(crate) path: String,
    /// Chunk writes started so far (they may land in any order).
    pub(crate) issued: AtomicU64,
    /// Set once the staging marker is written (before it, nothing needs cleaning up: a marker
    /// whose reply was lost expires by itself), cleared once committed or cleaned up.
    pub(crate) armed: AtomicBool,
}

impl Staging {
    fn abort_invocation(&self) -> redis::ScriptInvocation<'_> {
        let mut invocation = self.inner.scripts.abort.prepare_invoke();
        invocation
            .key(self.inner.layout.marker(&self.generation))
            .arg(self.inner.layout.generation_prefix(&self.generation))
            .arg(self.issued.load(Ordering::SeqCst));
        invocation
    }

    /// Deletes the staged chunks now (after a failure the caller reports).
    pub(crate) async fn abort(self) {
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        let invocation = self.abort_invocation();
        match self.inner.invoke::<i64>(&invocation).await {
            Ok(_) => {}
            Err(e) => tracing::warn!(
                url = %self.inner.url,
                path = %self.path,
                generation = %self.generation,
                error = %e,
                "cannot delete the staging chunks of a failed put; they expire by themselves"
            ),
        }
        self.armed.store(false, Ordering::SeqCst);
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        // A dropped `put` future: clean up in the background. Commands already sent for this
        // generation are ahead of this one on the connection, so they cannot land after it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = self.inner.clone();
        let marker = inner.layout.marker(&self.generation);
        let prefix = inner.layout.generation_prefix(&self.generation);
        let issued = self.issued.load(Ordering::SeqCst);
        let path = std::mem::take(&mut self.path);
        runtime.spawn(async move {
            let mut invocation = inner.scripts.abort.prepare_invoke();
            invocation.key(&marker).arg(&prefix).arg(issued);
            if let Err(e) = inner.invoke::<i64>(&invocation).await {
                tracing::warn!(
                    url = %inner.url,
                    path = %path,
                    error = %e,
                    "cannot delete the staging chunks of a cancelled put; they expire by themselves"
                );
            }
        });
    }
}

impl Inner {
    /// Stages the payload and commits it; the caller cleans up on error.
    pub(crate) async fn stage_and_commit(
        self: &Arc<Self>,
        staging: &Staging,
        payload: PutPayload,
    ) -> Result<ObjectMeta> {
        let path = staging.path.as_str();
        let generation = staging.generation.as_str();
        let marker = self.layout.marker(generation);

        let mut cmd = redis::cmd("SET");
        cmd.arg(&marker)
            .arg(format!("staging:{path}"))
            .arg("PX")
            .arg(millis(self.staging_ttl));
        self.query::<()>(&cmd)
            .await
            .map_err(|e| self.redis_error(format!("starting the put of {path}"), e))?;
        staging.armed.store(true, Ordering::SeqCst);

        let mut size = 0u64;
        let mut last_refresh = Instant::now();
        let refresh_every = self.staging_ttl / 3;
        let mut writes = rechunk(payload, self.chunk_size, path.to_string())
            .enumerate()
            .map(|(n, chunk)| {
                let n = n as u64;
                let refresh = last_refresh.elapsed() >= refresh_every;
                if refresh {
                    last_refresh = Instant::now();
                }
                if chunk.is_ok() {
                    staging.issued.fetch_max(n + 1, Ordering::SeqCst);
                }
                async move {
                    let chunk = chunk?;
                    let len = chunk.len() as u64;
                    if refresh {
                        self.refresh_staging(generation, n, path).await?;
                    }
                    self.write_chunk(generation, n, chunk, path).await?;
                    Ok::<u64, StorageError>(len)
                }
            })
            .buffered(self.write_concurrency);
        while let Some(written) = writes.next().await {
            size += written?;
        }
        drop(writes);
        let chunks = staging.issued.load(Ordering::SeqCst);

        let mut invocation = self.scripts.commit.prepare_invoke();
        invocation
            .key(self.layout.manifest(path))
            .key(self.layout.index())
            .key(&marker)
            .arg(path)
            .arg(generation)
            .arg(chunks)
            .arg(size)
            .arg(self.layout.chunk_prefix())
            .arg(millis(self.superseded_grace))
            .arg(millis(DONE_MARKER_TTL));
        let ms: u64 = self.invoke(&invocation).await.map_err(|e| {
            if e.code() == Some("STAGING_EXPIRED") {
                self.store_error(format!(
                    "the put of {path} took longer than staging_ttl allows ({:?}): {e}",
                    self.staging_ttl
                ))
            } else {
                self.redis_error(format!("committing the put of {path}"), e)
            }
        })?;
        Ok(ObjectMeta {
            size,
            modified: UNIX_EPOCH + Duration::from_millis(ms),
        })
    }
}
