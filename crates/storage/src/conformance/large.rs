//! A large object streamed in and out in bounded memory.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream;
use sha2::{Digest, Sha256};

use crate::{ArtifactKind, Key, PutPayload, Storage};

use super::support::{Run, XorShift64, describe, version};
use super::{Capabilities, MIB, put_ok};

/// A [`Capabilities::large_object_size`] zip streams in and out intact (SHA-256 compared
/// incrementally) while the process's RSS is sampled every 50 ms; with
/// [`Capabilities::bounded_memory`] its growth must stay under [`Capabilities::max_rss_growth`].
pub async fn large_object(store: &dyn Storage, caps: &Capabilities) {
    const CHUNK: usize = 1024 * 1024;
    let ctx = "large_object";
    let mut run = Run::new(ctx);
    let module = run.module("large");
    let key = Key::artifact(&module, &version("v1.0.0"), ArtifactKind::Zip);
    let size = caps.large_object_size;

    // Bodies of the suite's earlier behaviours are freed by now; measure from here.
    let sampler = super::rss::RssSampler::start();
    if sampler.is_none() && caps.bounded_memory {
        panic!(
            "{ctx}: cannot read this process's RSS (/proc/self/status) to check bounded memory; \
             set Capabilities::bounded_memory = false to run without the bound, explicitly"
        );
    }

    let sent_digest: Arc<Mutex<Option<[u8; 32]>>> = Arc::default();
    let generator = {
        let slot = sent_digest.clone();
        stream::unfold(
            (XorShift64::new(0x5eed_1a26_e0b1), size, Sha256::new()),
            move |(mut rng, left, mut hasher)| {
                let slot = slot.clone();
                async move {
                    if left == 0 {
                        if let Ok(mut slot) = slot.lock() {
                            *slot = Some(hasher.finalize().into());
                        }
                        return None;
                    }
                    let n = left.min(CHUNK as u64) as usize;
                    let mut chunk = vec![0u8; n];
                    rng.fill(&mut chunk);
                    hasher.update(&chunk);
                    Some((Ok(Bytes::from(chunk)), (rng, left - n as u64, hasher)))
                }
            },
        )
        .boxed()
    };

    let started = Instant::now();
    let meta = put_ok(
        store,
        &key,
        PutPayload::Stream {
            stream: generator,
            length: Some(size),
        },
        ctx,
    )
    .await;
    let put_time = started.elapsed();
    assert_eq!(meta.size, size, "{ctx}: put returned the wrong size");
    let sent = sent_digest.lock().ok().and_then(|d| *d).unwrap_or_else(|| {
        panic!("{ctx}: the store returned from put without reading the payload stream to its end")
    });

    let started = Instant::now();
    let got = store
        .get(&key)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: get failed: {}", describe(&e)));
    assert_eq!(got.meta.size, size, "{ctx}: get reports the wrong size");
    let mut body = got.body;
    let (mut received, mut largest_chunk, mut hasher) = (0u64, 0usize, Sha256::new());
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap_or_else(|e| {
            panic!("{ctx}: reading the body failed after {received} bytes: {e}")
        });
        received += chunk.len() as u64;
        largest_chunk = largest_chunk.max(chunk.len());
        hasher.update(&chunk);
    }
    let get_time = started.elapsed();
    let report = sampler.map(super::rss::RssSampler::finish);

    assert_eq!(
        received, size,
        "{ctx}: get streamed {received} bytes of {size}"
    );
    let received_digest: [u8; 32] = hasher.finalize().into();
    assert!(
        received_digest == sent,
        "{ctx}: SHA-256 of the body read back ({}) differs from what was written ({})",
        hex::encode(received_digest),
        hex::encode(sent)
    );

    let mib = |b: u64| b as f64 / MIB as f64;
    match report {
        Some(report) => {
            let bound = if caps.bounded_memory {
                format!("bound {:.0} MiB", mib(caps.max_rss_growth))
            } else {
                "NOT bounded: store declares bounded_memory = false".to_string()
            };
            eprintln!(
                "conformance: large_object: {:.0} MiB in {put_time:.1?}, out in {get_time:.1?} \
                 (largest read chunk {largest_chunk} B); peak RSS growth {:.1} MiB over {:.1} MiB ({bound})",
                mib(size),
                mib(report.growth()),
                mib(report.baseline)
            );
            if caps.bounded_memory {
                assert!(
                    report.growth() <= caps.max_rss_growth,
                    "{ctx}: RSS grew by {:.1} MiB while streaming {:.0} MiB, over the {:.0} MiB bound: \
                     the store buffers bodies instead of streaming them",
                    mib(report.growth()),
                    mib(size),
                    mib(caps.max_rss_growth)
                );
            }
        }
        None => eprintln!(
            "conformance: large_object: {:.0} MiB in {put_time:.1?}, out in {get_time:.1?}; RSS not measurable \
             here and NOT bounded (store declares bounded_memory = false)",
            mib(size)
        ),
    }
    run.cleanup(store).await;
}
