//! Single objects: `check`, round trips of every key kind, missing keys, deletion, empty
//! bodies, overwrites and `modified` times.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream;

use crate::{ArtifactKind, Key, ListPrefix, PutPayload, Storage, StorageError};

use super::support::{
    Run, assert_body, assert_close, assert_missing, assert_recent, body, chunked, describe, list,
    read, version,
};
use super::{Capabilities, all_kinds, put_ok};

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
