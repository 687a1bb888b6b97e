//! Cutting a payload into chunks of exactly the store's chunk size, checking its length.

use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt};
use gomodproxy_storage::{ByteStream, PutPayload, Result, StorageError};

/// Cuts a payload stream into chunks of exactly `chunk_size` bytes (the last one shorter),
/// checking the announced length. The final chunk is only yielded once the payload has ended
/// with the right length, so a payload that fails never completes its staging.
pub(crate) fn rechunk(
    payload: PutPayload,
    chunk_size: usize,
    path: String,
) -> BoxStream<'static, Result<Bytes>> {
    struct State {
        input: ByteStream,
        expected: Option<u64>,
        chunk_size: usize,
        path: String,
        buf: BytesMut,
        rest: Bytes,
        received: u64,
        ended: bool,
        failed: bool,
    }
    let state = State {
        expected: payload.length(),
        input: payload.into_stream(),
        chunk_size,
        path,
        buf: BytesMut::new(),
        rest: Bytes::new(),
        received: 0,
        ended: false,
        failed: false,
    };
    stream::unfold(state, |mut st| async move {
        if st.failed {
            return None;
        }
        loop {
            if !st.rest.is_empty() {
                // Whole chunks of a large payload chunk are sliced out without copying.
                if st.buf.is_empty() && st.rest.len() >= st.chunk_size {
                    let chunk = st.rest.split_to(st.chunk_size);
                    return Some((Ok(chunk), st));
                }
                if st.buf.capacity() == 0 {
                    st.buf.reserve(st.chunk_size);
                }
                let take = (st.chunk_size - st.buf.len()).min(st.rest.len());
                st.buf.extend_from_slice(&st.rest.split_to(take));
                if st.buf.len() == st.chunk_size {
                    let chunk = st.buf.split().freeze();
                    return Some((Ok(chunk), st));
                }
                continue;
            }
            if st.ended {
                if st.buf.is_empty() {
                    return None;
                }
                let chunk = st.buf.split().freeze();
                return Some((Ok(chunk), st));
            }
            let mismatch = |st: &State| StorageError::LengthMismatch {
                key: st.path.clone(),
                expected: st.expected.unwrap_or(0),
                actual: st.received,
            };
            match st.input.next().await {
                Some(Ok(data)) => {
                    st.received += data.len() as u64;
                    // Stop at the first byte too many rather than storing a runaway stream.
                    if st.expected.is_some_and(|n| st.received > n) {
                        st.failed = true;
                        let err = mismatch(&st);
                        return Some((Err(err), st));
                    }
                    st.rest = data;
                }
                Some(Err(source)) => {
                    st.failed = true;
                    let err = StorageError::Payload {
                        key: st.path.clone(),
                        source,
                    };
                    return Some((Err(err), st));
                }
                None => {
                    if st.expected.is_some_and(|n| st.received != n) {
                        st.failed = true;
                        let err = mismatch(&st);
                        return Some((Err(err), st));
                    }
                    st.ended = true;
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(stream: BoxStream<'static, Result<Bytes>>) -> Vec<Result<Bytes>> {
        stream.collect().await
    }

    fn payload(parts: &[&'static [u8]], length: Option<u64>) -> PutPayload {
        let items: Vec<std::io::Result<Bytes>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        PutPayload::Stream {
            stream: stream::iter(items).boxed(),
            length,
        }
    }

    #[tokio::test]
    async fn rechunk_cuts_exact_chunks() {
        let got = collect(rechunk(
            payload(&[b"ab", b"", b"cdefg", b"hijklmnopq", b"r"], Some(18)),
            4,
            "p".into(),
        ))
        .await;
        let got: Vec<Vec<u8>> = got.into_iter().map(|c| c.unwrap().to_vec()).collect();
        let want: Vec<&[u8]> = vec![b"abcd", b"efgh", b"ijkl", b"mnop", b"qr"];
        assert_eq!(got, want);
        assert!(
            collect(rechunk(payload(&[], Some(0)), 4, "p".into()))
                .await
                .is_empty()
        );
    }

    #[tokio::test]
    async fn rechunk_withholds_the_last_chunk_of_a_short_payload() {
        let got = collect(rechunk(payload(&[b"abcdef"], Some(7)), 4, "p".into())).await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].as_ref().unwrap().as_ref(), b"abcd");
        assert!(
            matches!(
                got[1],
                Err(StorageError::LengthMismatch {
                    expected: 7,
                    actual: 6,
                    ..
                })
            ),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn rechunk_stops_at_the_first_byte_too_many() {
        let got = collect(rechunk(
            payload(&[b"abc", b"de", b"f"], Some(4)),
            2,
            "p".into(),
        ))
        .await;
        let last = got.last().unwrap();
        assert!(
            matches!(
                last,
                Err(StorageError::LengthMismatch {
                    expected: 4,
                    actual: 5,
                    ..
                })
            ),
            "{got:?}"
        );
    }
}
