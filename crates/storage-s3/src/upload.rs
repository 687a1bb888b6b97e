//! Atomic puts: one PUT for bodies up to a part, a multipart upload completed only after the
//! payload was read whole and of its announced length for longer ones, and an abort on every
//! other way out (error, length mismatch, dropped future).

use bytes::Bytes;
use futures::StreamExt;
use gomodproxy_storage::{Key, PutPayload, Result, StorageError};
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStoreExt};
use tokio::task::JoinSet;

use crate::Inner;

/// Capacity a part buffer starts with when the payload's length is not known: small bodies
/// (`.info`, `.mod`, lists) should not cost a part-sized allocation each.
const INITIAL_BUFFER: usize = 64 * 1024;

/// Stores `payload` at `location`; returns the number of bytes stored.
pub(crate) async fn put(
    inner: &Inner,
    key: &Key,
    location: &Path,
    payload: PutPayload,
) -> Result<u64> {
    let expected = payload.length();
    // A body already in memory that fits one part needs no copy and no streaming.
    if let PutPayload::Bytes(body) = &payload
        && body.len() <= inner.part_size
    {
        let size = body.len() as u64;
        single_put(inner, key, location, body.clone()).await?;
        return Ok(size);
    }

    let mut stream = payload.into_stream();
    let mut received = 0u64;
    let mut part = PartBuffer::new(inner.part_size, expected);
    // A complete part is held back until more data arrives: if the payload ends exactly there,
    // it is the whole body and goes out as one PUT.
    let mut full: Option<Bytes> = None;
    let mut upload: Option<Multipart> = None;
    let mismatch = |expected: u64, actual: u64| StorageError::LengthMismatch {
        key: key.path(),
        expected,
        actual,
    };

    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(source) => {
                abort(upload).await;
                return Err(StorageError::Payload {
                    key: key.path(),
                    source,
                });
            }
        };
        received += chunk.len() as u64;
        // Stop at the first byte too many rather than uploading the rest of a runaway stream.
        if let Some(expected) = expected
            && received > expected
        {
            abort(upload).await;
            return Err(mismatch(expected, received));
        }
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            if let Some(done) = full.take() {
                let multipart = match &mut upload {
                    Some(multipart) => multipart,
                    None => upload.insert(Multipart::start(inner, key, location).await?),
                };
                multipart.send(done).await?;
            }
            rest = part.fill(rest);
            if part.is_full() {
                full = Some(part.take());
            }
        }
    }
    if let Some(expected) = expected
        && received != expected
    {
        abort(upload).await;
        return Err(mismatch(expected, received));
    }

    let last = full.take().unwrap_or_else(|| part.take());
    match upload {
        None => single_put(inner, key, location, last).await?,
        Some(multipart) => multipart.finish(last).await?,
    }
    Ok(received)
}

async fn single_put(inner: &Inner, key: &Key, location: &Path, body: Bytes) -> Result<()> {
    inner
        .store
        .put(location, body.into())
        .await
        .map(|_| ())
        .map_err(|e| inner.target.backend("put", &key.path(), e))
}

/// Aborts an upload in progress, if any, waiting for the answer: used when the payload failed,
/// so the store itself is presumably healthy and the abort quick.
async fn abort(upload: Option<Multipart>) {
    if let Some(multipart) = upload {
        multipart.abort().await;
    }
}

/// Collects one part. Payload chunks are copied into it (one `memcpy`, cheap next to hashing and
/// sending) so that memory per part is exactly the part size, whatever the chunking of the
/// payload.
struct PartBuffer {
    buf: Vec<u8>,
    part_size: usize,
    /// Bytes still announced beyond this buffer, to size the next allocation.
    remaining_hint: Option<u64>,
}

impl PartBuffer {
    fn new(part_size: usize, expected: Option<u64>) -> Self {
        PartBuffer {
            buf: Vec::new(),
            part_size,
            remaining_hint: expected,
        }
    }

    /// Appends as much of `data` as fits; returns the rest.
    fn fill<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        let n = (self.part_size - self.buf.len()).min(data.len());
        if self.buf.capacity() - self.buf.len() < n {
            // Grow geometrically but never past the part size, and exactly to the announced
            // length when there is one.
            let wanted = match self.remaining_hint {
                Some(hint) => hint.min(self.part_size as u64) as usize,
                None => (self.buf.capacity() * 2).max(INITIAL_BUFFER),
            };
            let target = wanted.clamp(self.buf.len() + n, self.part_size);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(&data[..n]);
        &data[n..]
    }

    fn is_full(&self) -> bool {
        self.buf.len() == self.part_size
    }

    fn take(&mut self) -> Bytes {
        let part = std::mem::take(&mut self.buf);
        if let Some(hint) = &mut self.remaining_hint {
            *hint = hint.saturating_sub(part.len() as u64);
        }
        Bytes::from(part)
    }
}

/// A multipart upload in progress. Dropped without [`Multipart::finish`] or
/// [`Multipart::abort`] (an error returned with `?`, a `put` future dropped by a client that went
/// away), it cancels its part uploads and aborts the upload from a background task.
struct Multipart {
    upload: Option<Box<dyn MultipartUpload>>,
    parts: JoinSet<object_store::Result<()>>,
    concurrency: usize,
    key: String,
    target: crate::error::Target,
}

impl Multipart {
    async fn start(inner: &Inner, key: &Key, location: &Path) -> Result<Multipart> {
        let upload = inner.store.put_multipart(location).await.map_err(|e| {
            inner
                .target
                .backend("start multipart upload of", &key.path(), e)
        })?;
        Ok(Multipart {
            upload: Some(upload),
            parts: JoinSet::new(),
            concurrency: inner.upload_concurrency,
            key: key.path(),
            target: inner.target.clone(),
        })
    }

    fn part_result(
        &self,
        joined: std::result::Result<object_store::Result<()>, tokio::task::JoinError>,
    ) -> Result<()> {
        match joined {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.target.backend("upload part of", &self.key, e)),
            Err(e) => Err(self
                .target
                .failure(
                    "upload part of",
                    Some(&self.key),
                    crate::S3ErrorKind::Other,
                    format!("part upload task failed: {e}"),
                )
                .into()),
        }
    }

    /// Starts uploading `part` once fewer than `concurrency` parts are in flight; reports the
    /// failure of any part that finished meanwhile.
    async fn send(&mut self, part: Bytes) -> Result<()> {
        while let Some(joined) = self.parts.try_join_next() {
            self.part_result(joined)?;
        }
        while self.parts.len() >= self.concurrency {
            if let Some(joined) = self.parts.join_next().await {
                self.part_result(joined)?;
            }
        }
        let Some(upload) = self.upload.as_mut() else {
            return Err(self.finished_error());
        };
        // A task of its own, so that the part keeps uploading while the payload is read.
        self.parts.spawn(upload.put_part(part.into()));
        Ok(())
    }

    /// Uploads the last part, waits for all of them and completes the upload: only now does the
    /// object become visible, whole.
    async fn finish(mut self, last: Bytes) -> Result<()> {
        if !last.is_empty() {
            self.send(last).await?;
        }
        while let Some(joined) = self.parts.join_next().await {
            self.part_result(joined)?;
        }
        let Some(upload) = self.upload.as_mut() else {
            return Err(self.finished_error());
        };
        // On failure (or if this future is dropped here) the upload stays armed and `Drop`
        // aborts it; if S3 did complete it, that abort fails harmlessly.
        upload.complete().await.map_err(|e| {
            self.target
                .backend("complete multipart upload of", &self.key, e)
        })?;
        self.upload = None;
        Ok(())
    }

    /// Cancels the part uploads and aborts the upload, waiting for S3's answer.
    async fn abort(mut self) {
        self.parts.shutdown().await;
        if let Some(mut upload) = self.upload.take()
            && let Err(e) = upload.abort().await
        {
            let e = self
                .target
                .error("abort multipart upload of", Some(&self.key), e);
            tracing::warn!(error = %e, "cannot abort a multipart upload; its parts stay until the bucket's lifecycle rule removes them");
        }
    }

    fn finished_error(&self) -> StorageError {
        self.target
            .failure(
                "put",
                Some(&self.key),
                crate::S3ErrorKind::Other,
                "multipart upload used after it ended".into(),
            )
            .into()
    }
}

impl Drop for Multipart {
    fn drop(&mut self) {
        let Some(mut upload) = self.upload.take() else {
            return;
        };
        self.parts.abort_all();
        let target = self.target.clone();
        let key = std::mem::take(&mut self.key);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = upload.abort().await {
                        let e = target.error("abort multipart upload of", Some(&key), e);
                        tracing::warn!(error = %e, "cannot abort a multipart upload; its parts stay until the bucket's lifecycle rule removes them");
                    }
                });
            }
            Err(_) => tracing::warn!(
                key = %key,
                bucket = %target.bucket,
                "multipart upload dropped outside a Tokio runtime; its parts stay until the bucket's lifecycle rule removes them"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_buffer_splits_at_part_boundaries_and_grows_within_bounds() {
        let mut part = PartBuffer::new(10, None);
        let rest = part.fill(b"abcdefg");
        assert!(rest.is_empty());
        assert!(!part.is_full());
        let rest = part.fill(b"hijklm");
        assert_eq!(rest, b"klm");
        assert!(part.is_full());
        assert!(
            part.buf.capacity() <= 10,
            "capacity {}",
            part.buf.capacity()
        );
        assert_eq!(&part.take()[..], b"abcdefghij");
        let rest = part.fill(rest);
        assert!(rest.is_empty());
        assert_eq!(&part.take()[..], b"klm");
    }

    #[test]
    fn part_buffer_allocates_the_announced_length_once() {
        let mut part = PartBuffer::new(1 << 20, Some(3000));
        for _ in 0..3 {
            part.fill(&[7u8; 1000]);
        }
        assert_eq!(part.buf.capacity(), 3000);
        assert_eq!(part.take().len(), 3000);
    }
}
