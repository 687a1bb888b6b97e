//! The conformance suite every [`Storage`] backend runs (feature `conformance`).
//!
//! A backend crate calls [`run_all`] from one test against a real instance of its store:
//!
//! ```
//! use gomodproxy_storage::conformance::{Capabilities, run_all};
//! use gomodproxy_storage::memory::InMemory;
//!
//! // In a backend crate: `#[tokio::test(flavor = "multi_thread")] async fn conformance()`.
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = InMemory::new();
//! // InMemory holds bodies in this process, so it cannot bound its memory: it says so.
//! let caps = Capabilities {
//!     large_object_size: 1024 * 1024,
//!     bounded_memory: false,
//!     ..Capabilities::default()
//! };
//! run_all(&store, caps).await;
//! # });
//! ```
//!
//! Each behaviour is also a public `async fn` of its own, so one can be run alone while
//! debugging; [`run_all`] runs them all, in a fixed order, and prints each one's name and time to
//! stderr (visible with `--nocapture`). A failure panics with the behaviour, the key and what was
//! expected.
//!
//! Every behaviour writes only under module paths with a fresh random component
//! (`conformance.test/r<16 hex digits>/…`, plus one `gopkg.in/c<hex>/yaml.v3`), so runs never
//! collide and a shared store (a Redis or a bucket) can be reused. On success a behaviour deletes
//! exactly the objects of its own modules and checks that none is left; after a failure its
//! objects stay behind for inspection, harmless to later runs.
//!
//! What is checked is the contract documented on [`Storage`]: round trips of every key kind,
//! missing keys, deletion, overwrites, `modified` times, streamed payloads, payloads of the wrong
//! length or that fail (nothing visible, previous object intact), concurrent puts of one key with
//! concurrent readers, listings (a module's objects only, not a sub-module's or a sibling's),
//! escaped and unusual module paths and versions, a large object streamed through in bounded
//! memory, and `check`. Nothing is skipped silently: a store that cannot bound its memory says so
//! in [`Capabilities::bounded_memory`], and the report line says the bound was not enforced.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use futures::future::join_all;
use futures::stream;
use sha2::{Digest, Sha256};

use crate::{ArtifactKind, Key, ListPrefix, PutPayload, Storage, StorageError};

mod rss;
mod support;

use support::{
    Run, XorShift64, assert_body, assert_close, assert_missing, assert_recent, assert_same_bytes,
    body, chunked, describe, failing, list, read, read_stream, version,
};

const MIB: u64 = 1024 * 1024;

/// What the suite may expect of a store, and the sizes it works with.
///
/// Construct with struct update syntax so that fields added later get their defaults:
/// `Capabilities { large_object_size: 16 * 1024 * 1024, ..Capabilities::default() }`.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// Size of the object [`large_object`] streams in and out. Default 200 MiB.
    pub large_object_size: u64,
    /// Whether the store keeps bodies out of this process's memory. When true (the default),
    /// [`large_object`] fails if the process's resident set grows by more than
    /// [`max_rss_growth`](Self::max_rss_growth) during its put and get, and fails if the RSS cannot
    /// be measured on this platform. Only a store that holds objects in this process
    /// ([`InMemory`](crate::memory::InMemory)) sets it to false; the growth is then still
    /// measured and reported, but not bounded.
    pub bounded_memory: bool,
    /// The largest RSS growth allowed while the large object streams through. Default 100 MiB.
    /// RSS is per process: run the suite in a test binary without other heavy tests running in
    /// parallel.
    pub max_rss_growth: u64,
    /// How many puts of one key race in [`concurrent_puts`] (at least 2). Default 16.
    pub concurrency: usize,
    /// How far two reports of an object's store time may differ (put vs head vs list), and how
    /// far `modified` may lie outside the wall-clock interval of its put: room for clocks of one
    /// second resolution (HTTP dates) and for a server's clock. Default 2 s.
    pub clock_slack: Duration,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            large_object_size: 200 * MIB,
            bounded_memory: true,
            max_rss_growth: 100 * MIB,
            concurrency: 16,
            clock_slack: Duration::from_secs(2),
        }
    }
}

/// Runs every behaviour against `store`, in order; panics at the first failure.
pub async fn run_all(store: &dyn Storage, caps: Capabilities) {
    macro_rules! behaviours {
        ($($name:ident),* $(,)?) => {
            $( step(stringify!($name), $name(store, &caps)).await; )*
        };
    }
    let started = Instant::now();
    behaviours!(
        check_succeeds,
        round_trip_each_kind,
        missing_keys,
        delete_removes,
        empty_object,
        overwrite_replaces,
        modified_is_recent_and_advances,
        streamed_payloads,
        length_mismatch_leaves_nothing,
        failing_stream_leaves_nothing,
        concurrent_puts,
        listing,
        odd_module_paths,
        sumdb_objects,
        large_object,
    );
    eprintln!(
        "conformance: all behaviours passed in {:.1?} against {store:?}",
        started.elapsed()
    );
}

async fn step(name: &str, behaviour: impl Future<Output = ()>) {
    let started = Instant::now();
    behaviour.await;
    eprintln!("conformance: {name} ok ({:.1?})", started.elapsed());
}

async fn put_ok(
    store: &dyn Storage,
    key: &Key,
    payload: PutPayload,
    ctx: &str,
) -> crate::ObjectMeta {
    store
        .put(key, payload)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: put {key} failed: {}", describe(&e)))
}

/// The six keys of one module and version: every artifact kind, the list and `@latest`.
fn all_kinds(module: &gomod::ModulePath, v: &gomod::Version) -> Vec<Key> {
    let mut keys: Vec<Key> = ArtifactKind::ALL
        .iter()
        .map(|&kind| Key::artifact(module, v, kind))
        .collect();
    keys.push(Key::List {
        module: module.clone(),
    });
    keys.push(Key::Latest {
        module: module.clone(),
    });
    keys
}

/// `check` succeeds, twice in a row.
pub async fn check_succeeds(store: &dyn Storage, _caps: &Capabilities) {
    for attempt in 1..=2 {
        if let Err(e) = store.check().await {
            panic!("check_succeeds: check #{attempt} failed: {}", describe(&e));
        }
    }
}

/// Every key kind stores and returns its own body, with the right size, through `put`, `get` and
/// `head`.
pub async fn round_trip_each_kind(store: &dyn Storage, caps: &Capabilities) {
    let mut run = Run::new("round_trip_each_kind");
    let module = run.module("kinds");
    let v = version("v1.2.3");
    let bodies: Vec<(Key, Bytes)> = all_kinds(&module, &v)
        .into_iter()
        .map(|key| {
            let b = match &key {
                Key::Artifact {
                    kind: ArtifactKind::Info,
                    ..
                } => Bytes::from_static(br#"{"Version":"v1.2.3","Time":"2024-01-02T03:04:05Z"}"#),
                Key::Artifact {
                    kind: ArtifactKind::Mod,
                    ..
                } => Bytes::from(format!("module {module}\n\ngo 1.21\n")),
                Key::Artifact {
                    kind: ArtifactKind::ZipHash,
                    ..
                } => Bytes::from_static(b"h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
                Key::List { .. } => Bytes::from_static(b"v1.2.2\nv1.2.3\n"),
                Key::Latest { .. } => {
                    Bytes::from_static(br#"{"Version":"v1.2.3","Time":"2024-01-02T03:04:05Z"}"#)
                }
                _ => body(&key.path(), 100_000),
            };
            (key, b)
        })
        .collect();

    for (key, b) in &bodies {
        let ctx = format!("round_trip_each_kind({})", key.path());
        let payload = if b.len() > 1000 {
            PutPayload::Stream {
                stream: chunked(b.clone(), &[8192, 333]),
                length: Some(b.len() as u64),
            }
        } else {
            PutPayload::Bytes(b.clone())
        };
        let before = SystemTime::now();
        let put = put_ok(store, key, payload, &ctx).await;
        let after = SystemTime::now();
        assert_eq!(
            put.size,
            b.len() as u64,
            "{ctx}: put returned the wrong size"
        );
        assert_recent(put.modified, before, after, caps.clock_slack, &ctx);
    }
    // Read back only after all are written, so that keys sharing a module and version are shown
    // not to overwrite each other.
    for (key, b) in &bodies {
        let ctx = format!("round_trip_each_kind({})", key.path());
        let got = assert_body(store, key, b, &ctx).await;
        let head = store
            .head(key)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: head failed: {}", describe(&e)));
        assert_close(got.modified, head.modified, caps.clock_slack, &ctx);
    }
    run.cleanup(store).await;
}

/// `get` and `head` of a missing key fail with `NotFound` (also when neighbouring keys exist);
/// `delete` of a missing key succeeds; a module with nothing stored lists empty.
pub async fn missing_keys(store: &dyn Storage, _caps: &Capabilities) {
    let mut run = Run::new("missing_keys");
    let never = run.module("never/written");
    for key in all_kinds(&never, &version("v1.0.0")) {
        assert_missing(store, &key, "missing_keys").await;
        if let Err(e) = store.delete(&key).await {
            panic!(
                "missing_keys: delete of missing {key} failed: {}",
                describe(&e)
            );
        }
    }
    assert!(
        list(store, &ListPrefix::Module(never.clone()), "missing_keys")
            .await
            .is_empty(),
        "missing_keys: a module with nothing stored lists objects"
    );

    let module = run.module("neighbours");
    let stored = Key::artifact(&module, &version("v1.0.0"), ArtifactKind::Mod);
    put_ok(
        store,
        &stored,
        Bytes::from_static(b"module x\n").into(),
        "missing_keys",
    )
    .await;
    let neighbours = [
        Key::artifact(&module, &version("v1.0.0"), ArtifactKind::Zip),
        Key::artifact(&module, &version("v1.0.0"), ArtifactKind::Info),
        Key::artifact(&module, &version("v1.0.1"), ArtifactKind::Mod),
        Key::artifact(&module, &version("v1.0.0-pre"), ArtifactKind::Mod),
        Key::List {
            module: module.clone(),
        },
        Key::Latest {
            module: module.clone(),
        },
    ];
    for key in &neighbours {
        assert_missing(store, key, "missing_keys (next to a stored key)").await;
    }
    let err = store.get(&neighbours[0]).await.err();
    assert!(
        err.as_ref().is_some_and(StorageError::is_not_found),
        "missing_keys: is_not_found() is false for a missing key's error: {err:?}"
    );
    run.cleanup(store).await;
}

/// `delete` removes exactly one object; deleting again succeeds; the key can be written again.
pub async fn delete_removes(store: &dyn Storage, _caps: &Capabilities) {
    let mut run = Run::new("delete_removes");
    let module = run.module("deleted");
    let keys = all_kinds(&module, &version("v0.3.0"));
    for key in &keys {
        put_ok(store, key, body(&key.path(), 1234).into(), "delete_removes").await;
    }
    let victim = &keys[2];
    store
        .delete(victim)
        .await
        .unwrap_or_else(|e| panic!("delete_removes: delete {victim} failed: {}", describe(&e)));
    assert_missing(store, victim, "delete_removes (after delete)").await;
    for key in keys.iter().filter(|k| *k != victim) {
        assert_body(
            store,
            key,
            &body(&key.path(), 1234),
            "delete_removes (other keys)",
        )
        .await;
    }
    let listed: HashSet<Key> = list(store, &ListPrefix::Module(module.clone()), "delete_removes")
        .await
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert!(
        !listed.contains(victim),
        "delete_removes: deleted {victim} is still listed"
    );
    assert_eq!(
        listed.len(),
        keys.len() - 1,
        "delete_removes: listing after delete: {listed:?}"
    );
    store
        .delete(victim)
        .await
        .unwrap_or_else(|e| panic!("delete_removes: second delete failed: {}", describe(&e)));

    let again = body("written again", 77);
    put_ok(store, victim, again.clone().into(), "delete_removes").await;
    assert_body(
        store,
        victim,
        &again,
        "delete_removes (written after delete)",
    )
    .await;
    run.cleanup(store).await;
}

/// An empty body is an object like any other, whether given as bytes or as a stream.
pub async fn empty_object(store: &dyn Storage, _caps: &Capabilities) {
    let mut run = Run::new("empty_object");
    let module = run.module("empty");
    let v = version("v1.0.0");
    let payloads: Vec<(Key, PutPayload)> = vec![
        (
            Key::artifact(&module, &v, ArtifactKind::Info),
            PutPayload::Bytes(Bytes::new()),
        ),
        (
            Key::artifact(&module, &v, ArtifactKind::Mod),
            PutPayload::Stream {
                stream: stream::empty().boxed(),
                length: Some(0),
            },
        ),
        (
            Key::List {
                module: module.clone(),
            },
            PutPayload::Stream {
                stream: stream::iter([Ok(Bytes::new()), Ok(Bytes::new())]).boxed(),
                length: None,
            },
        ),
    ];
    for (key, payload) in payloads {
        let ctx = format!("empty_object({payload:?})");
        let meta = put_ok(store, &key, payload, &ctx).await;
        assert_eq!(meta.size, 0, "{ctx}: put returned a non-zero size");
        assert_body(store, &key, b"", &ctx).await;
    }
    run.cleanup(store).await;
}

/// A put replaces the previous body entirely (a shorter body leaves no tail of the longer one);
/// putting the same body twice is harmless.
pub async fn overwrite_replaces(store: &dyn Storage, _caps: &Capabilities) {
    let mut run = Run::new("overwrite_replaces");
    let module = run.module("overwrite");
    let key = Key::artifact(&module, &version("v1.0.0"), ArtifactKind::Zip);
    let long = body("long", 100_000);
    let short = body("short", 100);
    let streamed = body("streamed", 54_321);

    put_ok(store, &key, long.clone().into(), "overwrite_replaces").await;
    assert_body(store, &key, &long, "overwrite_replaces (first)").await;
    put_ok(store, &key, short.clone().into(), "overwrite_replaces").await;
    assert_body(store, &key, &short, "overwrite_replaces (shorter)").await;
    let payload = PutPayload::Stream {
        stream: chunked(streamed.clone(), &[1000, 7]),
        length: Some(54_321),
    };
    put_ok(store, &key, payload, "overwrite_replaces").await;
    assert_body(store, &key, &streamed, "overwrite_replaces (streamed)").await;
    put_ok(store, &key, long.clone().into(), "overwrite_replaces").await;
    put_ok(store, &key, long.clone().into(), "overwrite_replaces").await;
    assert_body(store, &key, &long, "overwrite_replaces (same body twice)").await;
    let listed = list(
        store,
        &ListPrefix::Module(module.clone()),
        "overwrite_replaces",
    )
    .await;
    assert_eq!(
        listed.len(),
        1,
        "overwrite_replaces: one key must list once: {listed:?}"
    );
    assert_eq!(
        listed[0].meta.size,
        long.len() as u64,
        "overwrite_replaces: listed size"
    );
    run.cleanup(store).await;
}

/// `modified` is the wall-clock time of the put, agrees across put/head/get/list, never goes back
/// on an overwrite, and moves forward when the overwrite is more than a second later (TTLs of
/// `list` and `@latest` are measured from it).
pub async fn modified_is_recent_and_advances(store: &dyn Storage, caps: &Capabilities) {
    let ctx = "modified_is_recent_and_advances";
    let mut run = Run::new(ctx);
    let module = run.module("times");
    let key = Key::List {
        module: module.clone(),
    };

    let before = SystemTime::now();
    let first = put_ok(store, &key, Bytes::from_static(b"v1.0.0\n").into(), ctx).await;
    let after = SystemTime::now();
    assert_recent(first.modified, before, after, caps.clock_slack, ctx);
    let head = store
        .head(&key)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: head failed: {}", describe(&e)));
    assert_close(head.modified, first.modified, caps.clock_slack, ctx);
    let (got, _) = read(store, &key, ctx).await;
    assert_close(got.modified, first.modified, caps.clock_slack, ctx);

    let second = put_ok(
        store,
        &key,
        Bytes::from_static(b"v1.0.0\nv1.0.1\n").into(),
        ctx,
    )
    .await;
    let head2 = store
        .head(&key)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: head failed: {}", describe(&e)));
    assert!(
        second.modified >= first.modified,
        "{ctx}: modified went back on overwrite: {first:?} then {second:?}"
    );
    assert!(
        head2.modified >= head.modified,
        "{ctx}: head's modified went back on overwrite: {head:?} then {head2:?}"
    );

    // More than a second later, so that even a store with one-second timestamps must show a
    // later time: a store that kept the first time would make TTLs expire forever.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = SystemTime::now();
    let third = put_ok(
        store,
        &key,
        Bytes::from_static(b"v1.0.0\nv1.0.1\nv1.0.2\n").into(),
        ctx,
    )
    .await;
    let after = SystemTime::now();
    assert_recent(third.modified, before, after, caps.clock_slack, ctx);
    let head3 = store
        .head(&key)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: head failed: {}", describe(&e)));
    assert!(
        third.modified > second.modified,
        "{ctx}: put 1.1 s later did not advance modified: {second:?} then {third:?}"
    );
    assert!(
        head3.modified > head2.modified,
        "{ctx}: head 1.1 s later did not advance modified: {head2:?} then {head3:?}"
    );
    let listed = list(store, &ListPrefix::Module(module.clone()), ctx).await;
    assert_eq!(listed.len(), 1, "{ctx}: listing: {listed:?}");
    assert!(
        listed[0].meta.modified > head2.modified,
        "{ctx}: listed modified did not advance: {listed:?}"
    );
    assert_close(
        listed[0].meta.modified,
        head3.modified,
        caps.clock_slack,
        ctx,
    );
    run.cleanup(store).await;
}

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
                        source.to_string().contains(support::INJECTED),
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

/// `ListPrefix::Module(m)` lists exactly m's objects (not those of `m/sub` or of the sibling
/// `m2`), each once with its size; `ListPrefix::All` includes all of them.
pub async fn listing(store: &dyn Storage, caps: &Capabilities) {
    let ctx = "listing";
    let mut run = Run::new(ctx);
    let parent = run.module("list");
    let m = run.module("list/m");
    let sub = run.module("list/m/sub");
    let sibling = run.module("list/m2");
    let dashed = run.module("list/m-x");
    let (v1, v11) = (version("v1.0.0"), version("v1.1.0"));
    let mut expected: HashMap<gomod::ModulePath, Vec<Key>> = HashMap::new();
    let mut add = |module: &gomod::ModulePath, key: Key| {
        expected.entry(module.clone()).or_default().push(key)
    };
    for kind in ArtifactKind::ALL {
        add(&m, Key::artifact(&m, &v1, kind));
    }
    add(&m, Key::artifact(&m, &v11, ArtifactKind::Mod));
    add(&m, Key::List { module: m.clone() });
    add(&m, Key::Latest { module: m.clone() });
    add(&sub, Key::artifact(&sub, &v1, ArtifactKind::Mod));
    add(
        &sub,
        Key::List {
            module: sub.clone(),
        },
    );
    add(&sibling, Key::artifact(&sibling, &v1, ArtifactKind::Info));
    add(
        &sibling,
        Key::Latest {
            module: sibling.clone(),
        },
    );
    add(
        &dashed,
        Key::List {
            module: dashed.clone(),
        },
    );

    let mut sizes: HashMap<Key, u64> = HashMap::new();
    for (n, key) in expected.values().flatten().enumerate() {
        let len = 10 + n * 37;
        put_ok(store, key, body(&key.path(), len).into(), ctx).await;
        sizes.insert(key.clone(), len as u64);
    }

    let check_listing = |what: String, entries: Vec<crate::ListEntry>, want: &[Key]| {
        let got: HashSet<&Key> = entries.iter().map(|e| &e.key).collect();
        assert_eq!(
            got.len(),
            entries.len(),
            "{ctx}: {what}: a key is listed twice: {entries:?}"
        );
        let want_set: HashSet<&Key> = want.iter().collect();
        assert!(
            got == want_set,
            "{ctx}: {what}: listed {:?}, expected {:?}",
            entries.iter().map(|e| e.key.path()).collect::<Vec<_>>(),
            want.iter().map(Key::path).collect::<Vec<_>>()
        );
        for entry in &entries {
            assert_eq!(
                entry.meta.size, sizes[&entry.key],
                "{ctx}: {what}: wrong size for {}",
                entry.key
            );
        }
        entries
    };

    for module in [&m, &sub, &sibling, &dashed] {
        let entries = list(store, &ListPrefix::Module(module.clone()), ctx).await;
        let entries = check_listing(format!("Module({module})"), entries, &expected[module]);
        for entry in entries {
            let head = store
                .head(&entry.key)
                .await
                .unwrap_or_else(|e| panic!("{ctx}: head failed: {}", describe(&e)));
            assert_close(
                entry.meta.modified,
                head.modified,
                caps.clock_slack,
                &format!("{ctx}: listed vs head modified"),
            );
        }
    }
    let empty = list(store, &ListPrefix::Module(parent.clone()), ctx).await;
    assert!(
        empty.is_empty(),
        "{ctx}: Module({parent}) has no objects of its own but lists {empty:?}"
    );

    let ours: HashSet<&gomod::ModulePath> = run.modules().iter().collect();
    let all: Vec<crate::ListEntry> = list(store, &ListPrefix::All, ctx)
        .await
        .into_iter()
        .filter(|e| e.key.module().is_some_and(|m| ours.contains(m)))
        .collect();
    let want: Vec<Key> = expected.values().flatten().cloned().collect();
    check_listing("All (this run's modules)".into(), all, &want);

    let gone = Key::Latest { module: m.clone() };
    store
        .delete(&gone)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: delete failed: {}", describe(&e)));
    let entries = list(store, &ListPrefix::Module(m.clone()), ctx).await;
    let want: Vec<Key> = expected[&m]
        .iter()
        .filter(|k| **k != gone)
        .cloned()
        .collect();
    check_listing(format!("Module({m}) after deleting {gone}"), entries, &want);
    run.cleanup(store).await;
}

/// Checksum-database objects (tree head, lookups, full and partial tiles side by side, a data
/// tile, deep tile paths) round-trip and list under their database only.
pub async fn sumdb_objects(store: &dyn Storage, _caps: &Capabilities) {
    use gomod::sumdb::SumdbPath;
    let ctx = "sumdb_objects";
    let mut run = Run::new(ctx);
    let db = run.sumdb();
    let module = run.module("Upper/sumdb");
    let object = |path: &str| {
        let path = SumdbPath::parse(path)
            .unwrap_or_else(|e| panic!("{ctx}: test data: sumdb path {path:?}: {e}"));
        Key::sumdb(&db, &path).unwrap_or_else(|| panic!("{ctx}: test data: {path} is no key"))
    };
    let lookups = vec![
        object(&format!("lookup/{}@v1.0.0", module.escaped())),
        object(&format!("lookup/{}@v2.0.0+incompatible", module.escaped())),
        object(&format!("lookup/{}@v1.0.1-!r!c.1", module.escaped())),
    ];
    let mut keys = lookups.clone();
    keys.extend(
        [
            "latest",
            "tile/8/0/x001/x234/067",
            "tile/8/0/x001/x234/067.p/5",
            "tile/8/0/x001/x234/067.p/17",
            "tile/8/1/000.p/255",
            "tile/8/3/000.p/3",
            "tile/8/data/000",
        ]
        .iter()
        .map(|p| object(p)),
    );
    for (n, key) in keys.iter().enumerate() {
        let path = key.path();
        assert!(
            path.starts_with(&format!("sumdb/{db}/")),
            "{ctx}: {path} is not under sumdb/{db}/"
        );
        assert_eq!(
            Key::from_path(&path).ok().as_ref(),
            Some(key),
            "{ctx}: {path} does not parse back"
        );
        put_ok(store, key, body(&path, 32 * (n + 1)).into(), ctx).await;
    }
    for (n, key) in keys.iter().enumerate() {
        assert_body(store, key, &body(&key.path(), 32 * (n + 1)), ctx).await;
    }
    let listed = |entries: Vec<crate::ListEntry>| -> HashSet<Key> {
        entries.into_iter().map(|e| e.key).collect()
    };
    let all_of_db = listed(list(store, &ListPrefix::Sumdb(db.clone()), ctx).await);
    assert_eq!(
        all_of_db,
        keys.iter().cloned().collect::<HashSet<_>>(),
        "{ctx}: ListPrefix::Sumdb({db})"
    );
    let only_lookups = listed(list(store, &ListPrefix::SumdbLookups(db.clone()), ctx).await);
    assert_eq!(
        only_lookups,
        lookups.iter().cloned().collect::<HashSet<_>>(),
        "{ctx}: ListPrefix::SumdbLookups({db})"
    );
    let of_module = list(store, &ListPrefix::Module(module.clone()), ctx).await;
    assert!(
        of_module.is_empty(),
        "{ctx}: lookups of {module} must not list as the module's artifacts: {of_module:?}"
    );
    let everything = listed(list(store, &ListPrefix::All, ctx).await);
    for key in &keys {
        assert!(
            everything.contains(key),
            "{ctx}: ListPrefix::All misses {key}"
        );
    }
    // A partial tile and the full tile beside it are distinct objects.
    let partial = object("tile/8/0/x001/x234/067.p/5");
    store
        .delete(&partial)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: delete failed: {}", describe(&e)));
    assert_missing(store, &partial, ctx).await;
    read(store, &object("tile/8/0/x001/x234/067"), ctx).await;
    run.cleanup(store).await;
}

/// Module paths and versions that need escaping or follow unusual rules round-trip, stay distinct
/// from their lower-case twins, and list back as equal keys.
pub async fn odd_module_paths(store: &dyn Storage, _caps: &Capabilities) {
    let ctx = "odd_module_paths";
    let mut run = Run::new(ctx);
    let pseudo_versions = [
        "v0.0.0-20240102030405-abcdef123456",
        "v1.2.4-0.20240102030405-abcdef123456",
        "v1.2.3-pre.0.20240102030405-abcdef123456",
    ];
    let cases: Vec<(gomod::ModulePath, Vec<&str>)> = vec![
        (
            run.module("Upper/Case"),
            vec!["v1.0.0", "v1.0.0-RC1", "v1.0.0-rc1"],
        ),
        (run.module("upper/case"), vec!["v1.0.0"]),
        (run.module("x..y/z~1a"), vec!["v1.0.0"]),
        (run.module("dash-under_score~tilde.dot"), vec!["v0.1.0"]),
        (
            run.module("major/v2"),
            vec!["v2.3.4", "v2.0.0-20240102030405-abcdef123456"],
        ),
        (
            run.module("legacy"),
            vec![
                "v2.0.0+incompatible",
                "v2.0.1-0.20240102030405-abcdef123456+incompatible",
            ],
        ),
        (run.module("pseudo"), pseudo_versions.to_vec()),
        (run.gopkg_module(), vec!["v3.0.1"]),
    ];

    for (module, versions) in &cases {
        let mut want: Vec<Key> = vec![
            Key::List {
                module: module.clone(),
            },
            Key::Latest {
                module: module.clone(),
            },
        ];
        for v in versions {
            let v = version(v);
            want.extend(
                ArtifactKind::ALL
                    .iter()
                    .map(|&kind| Key::artifact(module, &v, kind)),
            );
        }
        for key in &want {
            let path = key.path();
            assert_eq!(
                Key::from_path(&path).ok().as_ref(),
                Some(key),
                "{ctx}: Key::from_path({path:?})"
            );
            // The body names its own key, so a store that merges two keys returns the wrong one.
            put_ok(store, key, Bytes::from(format!("{key:?}")).into(), ctx).await;
        }
        let listed = list(store, &ListPrefix::Module(module.clone()), ctx).await;
        let got: HashSet<&Key> = listed.iter().map(|e| &e.key).collect();
        let want_set: HashSet<&Key> = want.iter().collect();
        assert_eq!(
            got.len(),
            listed.len(),
            "{ctx}: Module({module}) lists a key twice"
        );
        assert!(
            got == want_set,
            "{ctx}: Module({module}) listed {:?}, expected {:?}",
            listed
                .iter()
                .map(|e| format!("{:?}", e.key))
                .collect::<Vec<_>>(),
            want.iter().map(|k| format!("{k:?}")).collect::<Vec<_>>()
        );
    }
    // Read back after everything is written: `Upper/Case` and `upper/case` (and `RC1`/`rc1`) are
    // different keys even on a case-insensitive store.
    for (module, versions) in &cases {
        let mut keys = vec![
            Key::List {
                module: module.clone(),
            },
            Key::Latest {
                module: module.clone(),
            },
        ];
        for v in versions {
            keys.extend(all_kinds(module, &version(v)));
        }
        for key in &keys {
            let want = format!("{key:?}");
            let (_, got) = read(store, key, ctx).await;
            assert_same_bytes(&got, want.as_bytes(), &format!("{ctx}: get {key}"));
        }
    }
    run.cleanup(store).await;
}

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
    let sampler = rss::RssSampler::start();
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
    let report = sampler.map(rss::RssSampler::finish);

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
