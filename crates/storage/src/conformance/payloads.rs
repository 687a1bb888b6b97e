//! Payloads: streamed in many shapes, of the wrong length, failing midway, and puts of one key
//! racing each other under concurrent readers.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use futures::future::join_all;

use crate::{ArtifactKind, Key, ListPrefix, PutPayload, Storage, StorageError};

use super::support::{
    Run, assert_body, assert_missing, body, chunked, describe, failing, list, read, read_stream,
    version,
};
use super::{Capabilities, put_ok};

/// Streamed payloads of many shapes (tiny, empty and large chunks; with and without an announced
/// length) store exactly their bytes.
pub async fn streamed_payloads(store: &dyn Storage, _caps: &Capabilities) {
    let mut run = Run::new("streamed_payloads");
    let module = run.module("streams");
    let cases: [(&str, usize, &[usize], bool); 5] = [
        (
            "mixed chunks, length given",
            300_001,
            &[1, 4096, 0, 65536, 100_003],
            true,
        ),
        (
            "mixed chunks, no length",
            300_001,
            &[1, 4096, 0, 65536, 100_003],
            false,
        ),
        ("one-byte chunks", 2000, &[1], true),
        ("one big chunk", 1_500_000, &[1_500_000], true),
        (
            "chunks over 1 MiB, no length",
            3_000_000,
            &[1_100_000, 0],
            false,
        ),
    ];
    for (i, (name, len, sizes, with_length)) in cases.into_iter().enumerate() {
        let ctx = format!("streamed_payloads({name})");
        let key = Key::artifact(&module, &version(&format!("v1.0.{i}")), ArtifactKind::Zip);
        let data = body(&ctx, len);
        let payload = PutPayload::Stream {
            stream: chunked(data.clone(), sizes),
            length: with_length.then_some(len as u64),
        };
        let meta = put_ok(store, &key, payload, &ctx).await;
        assert_eq!(meta.size, len as u64, "{ctx}: put returned the wrong size");
        assert_body(store, &key, &data, &ctx).await;
    }
    run.cleanup(store).await;
}

/// A streamed payload that delivers fewer or more bytes than announced fails with
/// `LengthMismatch`; nothing becomes visible, and a previous object stays intact.
pub async fn length_mismatch_leaves_nothing(store: &dyn Storage, _caps: &Capabilities) {
    let mut run = Run::new("length_mismatch_leaves_nothing");
    let module = run.module("mismatch");
    // (announced, delivered)
    let cases: [(u64, usize); 6] = [
        (1000, 999),
        (1000, 1001),
        (10, 100_000),
        (0, 5),
        (5, 0),
        (200_000, 150_000),
    ];
    for (i, (announced, delivered)) in cases.into_iter().enumerate() {
        for with_previous in [false, true] {
            let ctx = format!(
                "length_mismatch_leaves_nothing(announced {announced}, delivered {delivered}, previous object: {with_previous})"
            );
            let v = version(&format!("v1.{}.{i}", u8::from(with_previous)));
            let key = Key::artifact(&module, &v, ArtifactKind::Zip);
            let previous = body(&format!("{ctx} previous"), 4321);
            let previous_meta = if with_previous {
                put_ok(store, &key, previous.clone().into(), &ctx).await;
                Some(
                    store
                        .head(&key)
                        .await
                        .unwrap_or_else(|e| panic!("{ctx}: head failed: {}", describe(&e))),
                )
            } else {
                None
            };

            let payload = PutPayload::Stream {
                stream: chunked(body(&ctx, delivered), &[4096, 1]),
                length: Some(announced),
            };
            match store.put(&key, payload).await {
                Err(StorageError::LengthMismatch {
                    key: k,
                    expected,
                    actual,
                }) => {
                    assert_eq!(k, key.path(), "{ctx}: LengthMismatch names the wrong key");
                    assert_eq!(expected, announced, "{ctx}: LengthMismatch.expected");
                    if (delivered as u64) < announced {
                        assert_eq!(
                            actual, delivered as u64,
                            "{ctx}: LengthMismatch.actual of a short stream"
                        );
                    } else {
                        assert!(
                            actual > announced && actual <= delivered as u64,
                            "{ctx}: LengthMismatch.actual {actual} of a long stream"
                        );
                    }
                }
                Err(e) => panic!("{ctx}: expected LengthMismatch, got {}", describe(&e)),
                Ok(meta) => panic!("{ctx}: a payload of the wrong length was accepted: {meta:?}"),
            }

            match previous_meta {
                Some(before) => {
                    assert_body(store, &key, &previous, &format!("{ctx}: previous object")).await;
                    let after = store
                        .head(&key)
                        .await
                        .unwrap_or_else(|e| panic!("{ctx}: head failed: {}", describe(&e)));
                    assert_eq!(
                        after, before,
                        "{ctx}: the failed put changed the previous object's metadata"
                    );
                }
                None => assert_missing(store, &key, &ctx).await,
            }
        }
    }
    let listed = list(
        store,
        &ListPrefix::Module(module.clone()),
        "length_mismatch_leaves_nothing",
    )
    .await;
    assert!(
        listed
            .iter()
            .all(|e| e.key.path().contains("/@v/v1.1.") && e.meta.size == 4321),
        "length_mismatch_leaves_nothing: listing shows objects of failed puts: {listed:?}"
    );
    assert_eq!(
        listed.len(),
        cases.len(),
        "length_mismatch_leaves_nothing: listing: {listed:?}"
    );
    run.cleanup(store).await;
}

/// A payload stream that fails (at the start, midway, or after delivering every announced byte)
/// fails the put with `Payload` carrying the cause; nothing becomes visible, and a previous
/// object stays intact.
pub async fn failing_stream_leaves_nothing(store: &dyn Storage, _caps: &Capabilities) {
    let mut run = Run::new("failing_stream_leaves_nothing");
    let module = run.module("failing");
    const LEN: usize = 100_000;
    // (fail after this many bytes, announce the length)
    let cases: [(usize, bool); 5] = [
        (0, true),
        (50_000, true),
        (LEN, true),
        (50_000, false),
        (LEN, false),
    ];
    for (i, (fail_after, announce)) in cases.into_iter().enumerate() {
        for with_previous in [false, true] {
            let ctx = format!(
                "failing_stream_leaves_nothing(fails after {fail_after} of {LEN} bytes, length announced: {announce}, previous object: {with_previous})"
            );
            let v = version(&format!("v2.{}.{i}+incompatible", u8::from(with_previous)));
            let key = Key::artifact(&module, &v, ArtifactKind::Zip);
            let previous = body(&format!("{ctx} previous"), 999);
            let previous_meta = if with_previous {
                put_ok(store, &key, previous.clone().into(), &ctx).await;
                Some(
                    store
                        .head(&key)
                        .await
                        .unwrap_or_else(|e| panic!("{ctx}: head failed: {}", describe(&e))),
                )
            } else {
                None
            };

            let payload = PutPayload::Stream {
                stream: failing(body(&ctx, LEN), fail_after),
                length: announce.then_some(LEN as u64),
            };
            match store.put(&key, payload).await {
                Err(StorageError::Payload { key: k, source }) => {
                    assert_eq!(k, key.path(), "{ctx}: Payload names the wrong key");
                    assert!(
                        source.to_string().contains(super::support::INJECTED),
                        "{ctx}: Payload error lost its cause: {source}"
                    );
                }
                Err(e) => panic!(
                    "{ctx}: expected StorageError::Payload, got {}",
                    describe(&e)
                ),
                Ok(meta) => panic!("{ctx}: a failing payload was accepted: {meta:?}"),
            }

            match previous_meta {
                Some(before) => {
                    assert_body(store, &key, &previous, &format!("{ctx}: previous object")).await;
                    let after = store
                        .head(&key)
                        .await
                        .unwrap_or_else(|e| panic!("{ctx}: head failed: {}", describe(&e)));
                    assert_eq!(
                        after, before,
                        "{ctx}: the failed put changed the previous object's metadata"
                    );
                }
                None => assert_missing(store, &key, &ctx).await,
            }
        }
    }
    let listed = list(
        store,
        &ListPrefix::Module(module.clone()),
        "failing_stream_leaves_nothing",
    )
    .await;
    assert!(
        listed.iter().all(|e| e.meta.size == 999),
        "failing_stream_leaves_nothing: listing shows objects of failed puts: {listed:?}"
    );
    assert_eq!(
        listed.len(),
        cases.len(),
        "failing_stream_leaves_nothing: listing: {listed:?}"
    );
    run.cleanup(store).await;
}

/// [`Capabilities::concurrency`] streamed puts of one key with different bodies race while readers
/// keep reading it: every read sees one whole body (with a matching size) or, only before the
/// first put completes, `NotFound`; afterwards the key holds exactly one of the bodies, whole.
pub async fn concurrent_puts(store: &dyn Storage, caps: &Capabilities) {
    const READERS: usize = 4;
    let ctx = "concurrent_puts";
    assert!(
        caps.concurrency >= 2,
        "{ctx}: Capabilities::concurrency must be at least 2"
    );
    let mut run = Run::new(ctx);
    let module = run.module("race");
    let key = Key::artifact(&module, &version("v1.0.0"), ArtifactKind::Zip);
    let bodies: Vec<Bytes> = (0..caps.concurrency)
        .map(|i| body(&format!("writer {i}"), 64 * 1024 * (i % 4 + 1) + i * 131))
        .collect();
    let which = |got: &[u8]| bodies.iter().position(|b| b.as_ref() == got);

    let any_completed = AtomicBool::new(false);
    let all_done = AtomicBool::new(false);
    let reads = AtomicUsize::new(0);
    let not_found = AtomicUsize::new(0);

    let writers = async {
        let puts = bodies.iter().enumerate().map(|(i, b)| {
            let key = &key;
            let any_completed = &any_completed;
            async move {
                let payload = PutPayload::Stream {
                    stream: chunked(b.clone(), &[7001, 16384, 65536]),
                    length: Some(b.len() as u64),
                };
                let result = store.put(key, payload).await;
                match &result {
                    Ok(meta) => {
                        assert_eq!(
                            meta.size,
                            b.len() as u64,
                            "{ctx}: writer {i}: put returned the wrong size"
                        );
                        any_completed.store(true, Ordering::SeqCst);
                    }
                    Err(e) => panic!("{ctx}: writer {i}: put failed: {}", describe(e)),
                }
            }
        });
        join_all(puts).await;
        all_done.store(true, Ordering::SeqCst);
    };
    let readers = join_all((0..READERS).map(|r| {
        let (key, bodies) = (&key, &bodies);
        let (any_completed, all_done, reads, not_found) = (&any_completed, &all_done, &reads, &not_found);
        async move {
            loop {
                let finished = all_done.load(Ordering::SeqCst);
                let completed = any_completed.load(Ordering::SeqCst);
                match store.get(key).await {
                    Ok(got) => {
                        let size = got.meta.size;
                        let data = read_stream(got.body)
                            .await
                            .unwrap_or_else(|e| panic!("{ctx}: reader {r}: reading a body failed: {e}"));
                        assert_eq!(data.len() as u64, size, "{ctx}: reader {r}: body length differs from meta.size");
                        assert!(
                            bodies.iter().any(|b| b.as_ref() == data.as_slice()),
                            "{ctx}: reader {r}: read a body of {} bytes that is none of the written bodies (torn or mixed write)",
                            data.len()
                        );
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.is_not_found() => {
                        assert!(!completed, "{ctx}: reader {r}: NotFound after a put had completed");
                        not_found.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => panic!("{ctx}: reader {r}: get failed: {}", describe(&e)),
                }
                if finished {
                    break;
                }
                // Without this a store that never suspends would starve the writers.
                tokio::task::yield_now().await;
            }
        }
    }));
    futures::join!(writers, readers);

    let (meta, got) = read(store, &key, ctx).await;
    let winner = which(&got).unwrap_or_else(|| {
        panic!(
            "{ctx}: the final body ({} bytes) is none of the written bodies",
            got.len()
        )
    });
    let head = store
        .head(&key)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: head failed: {}", describe(&e)));
    assert_eq!(
        head.size, meta.size,
        "{ctx}: head and get disagree on the size"
    );
    let listed = list(store, &ListPrefix::Module(module.clone()), ctx).await;
    assert_eq!(
        listed.len(),
        1,
        "{ctx}: one key must list once after racing puts: {listed:?}"
    );
    assert_eq!(
        listed[0].meta.size,
        bodies[winner].len() as u64,
        "{ctx}: listed size"
    );
    eprintln!(
        "conformance: concurrent_puts: {} writers, writer {winner} won; readers saw {} whole bodies and {} NotFound",
        caps.concurrency,
        reads.load(Ordering::Relaxed),
        not_found.load(Ordering::Relaxed)
    );
    run.cleanup(store).await;
}
