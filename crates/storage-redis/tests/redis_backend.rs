//! What only the Redis backend can get wrong: key prefixes and layout, staging chunks of failed,
//! cancelled and crashed puts, readers racing overwrites, damaged data, and a server that goes
//! away and comes back.
//!
//! Tests that stop a server or need a keyspace of their own start a private redis-server; the
//! others share the one named by `GOMODPROXY_TEST_REDIS_URL`, each under a random key prefix.

mod common;

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream;
use gomod::{ModulePath, Version};
use gomodproxy_storage::{
    ArtifactKind, ByteStream, Key, ListPrefix, PutPayload, Storage, StorageError, StorageExt,
};
use gomodproxy_storage_redis::{RedisOptions, RedisStorage};
use redis::aio::MultiplexedConnection;

use common::RedisServer;

const KIB: usize = 1024;

fn key(module: &str, version: &str, kind: ArtifactKind) -> Key {
    Key::artifact(
        &ModulePath::parse(module).unwrap(),
        &Version::parse(version).unwrap(),
        kind,
    )
}

/// `len` bytes that differ with `seed`.
fn body(seed: u8, len: usize) -> Bytes {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect::<Vec<u8>>()
        .into()
}

fn options(url: &str, prefix: &str) -> RedisOptions {
    RedisOptions {
        url: url.to_string(),
        key_prefix: prefix.to_string(),
        chunk_size: 64 * KIB,
        ..RedisOptions::default()
    }
}

/// A store on the shared test server under a fresh prefix, with small chunks so that small
/// bodies span several; `None` when the Redis tests are skipped.
async fn shared_store(test: &str, tweak: impl FnOnce(&mut RedisOptions)) -> Option<Fixture> {
    let url = common::test_url(test)?;
    let prefix = common::random_prefix(test);
    let mut opts = options(&url, &prefix);
    tweak(&mut opts);
    let store = common::open(opts).await;
    let conn = common::raw(&url).await;
    Some(Fixture {
        store,
        conn,
        prefix,
    })
}

struct Fixture {
    store: RedisStorage,
    conn: MultiplexedConnection,
    prefix: String,
}

impl Fixture {
    async fn keys(&mut self) -> BTreeSet<String> {
        common::keys_under(&mut self.conn, &self.prefix)
            .await
            .into_iter()
            .collect()
    }

    /// The keys a store holds for exactly one committed object `k` (index, manifest, chunks)
    /// plus the expiring `done` marker of its generation.
    async fn keys_of_one_object(&mut self, k: &Key) -> BTreeSet<String> {
        let manifest = format!("{}m:{}", self.prefix, k.path());
        let (generation, chunks): (String, u64) = redis::cmd("HMGET")
            .arg(&manifest)
            .arg("gen")
            .arg("chunks")
            .query_async(&mut self.conn)
            .await
            .unwrap();
        let mut keys: BTreeSet<String> = (0..chunks)
            .map(|n| format!("{}c:{generation}:{n}", self.prefix))
            .collect();
        keys.insert(format!("{}index", self.prefix));
        keys.insert(manifest);
        keys.insert(format!("{}s:{generation}", self.prefix));
        keys
    }

    async fn cleanup(mut self) {
        common::remove_prefix(&mut self.conn, &self.prefix).await;
    }
}

async fn read_all(store: &RedisStorage, k: &Key) -> Vec<u8> {
    let (_, body) = store.get_bytes(k, 1 << 30).await.unwrap();
    body.to_vec()
}

/// Runs `op` and checks that it fails with a Redis backend error, within `limit`.
async fn fails_promptly<T: std::fmt::Debug>(
    what: &str,
    limit: Duration,
    op: impl Future<Output = Result<T, StorageError>>,
) -> StorageError {
    let started = Instant::now();
    let result = tokio::time::timeout(limit, op)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after {limit:?} while Redis is down"));
    let err = result.expect_err(&format!("{what}: succeeded while Redis is down"));
    assert!(
        matches!(err, StorageError::Backend { store: "redis", .. }),
        "{what}: expected a redis Backend error, got {err:?}"
    );
    eprintln!("{what}: failed in {:.1?}: {err}", started.elapsed());
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_isolate_stores_and_nothing_is_written_outside_them() {
    // A keyspace of its own, so that every key in it can be accounted for.
    if common::test_url("prefixes_isolate_stores_and_nothing_is_written_outside_them").is_none() {
        return;
    }
    let server = RedisServer::start().await;
    let url = server.url();
    let mut conn = common::raw(&url).await;
    // Another application's keys, including names this store uses below its prefix.
    for (k, v) in [
        ("other-app:index", "theirs"),
        ("index", "mine"),
        ("m:x", "y"),
    ] {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg(v)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let a = common::open(options(&url, "tenant-a:")).await;
    let b = common::open(options(&url, "tenant-b:")).await;

    let k = key("example.com/shared", "v1.0.0", ArtifactKind::Zip);
    let only_a = key("example.com/only-a", "v1.0.0", ArtifactKind::Mod);
    let body_a = body(1, 64 * KIB * 5 + 300);
    let body_b = body(2, 1000);
    a.put_bytes(&k, body_a.clone()).await.unwrap();
    b.put_bytes(&k, body_b.clone()).await.unwrap();
    a.put_bytes(&only_a, Bytes::from_static(b"module example.com/only-a\n"))
        .await
        .unwrap();
    a.check().await.unwrap();
    b.check().await.unwrap();

    assert_eq!(read_all(&a, &k).await, body_a);
    assert_eq!(read_all(&b, &k).await, body_b);
    assert!(b.exists(&only_a).await.unwrap().is_none());
    let listed = |store: RedisStorage| async move {
        store
            .list(&ListPrefix::All)
            .map(|e| {
                let e = e.unwrap();
                (e.key.path(), e.meta.size)
            })
            .collect::<BTreeSet<_>>()
            .await
    };
    assert_eq!(
        listed(a.clone()).await,
        BTreeSet::from([(k.path(), body_a.len() as u64), (only_a.path(), 26)])
    );
    assert_eq!(
        listed(b.clone()).await,
        BTreeSet::from([(k.path(), body_b.len() as u64)])
    );

    // The layout: an index, a manifest and ceil(size / chunk) chunks per object, all under the
    // prefix; the manifest records what the crate docs say.
    let manifest: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(format!("tenant-a:m:{}", k.path()))
        .query_async(&mut conn)
        .await
        .unwrap();
    let manifest: std::collections::BTreeMap<String, String> = manifest.into_iter().collect();
    assert_eq!(manifest["size"], body_a.len().to_string());
    assert_eq!(manifest["chunks"], "6");
    let generation = &manifest["gen"];
    for n in 0..6 {
        let chunk: Vec<u8> = redis::cmd("GET")
            .arg(format!("tenant-a:c:{generation}:{n}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        let start = n * 64 * KIB;
        assert_eq!(chunk, &body_a[start..(start + 64 * KIB).min(body_a.len())]);
    }
    let index: Vec<String> = redis::cmd("ZRANGE")
        .arg("tenant-a:index")
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(index, vec![only_a.path(), k.path()]);

    // Deleting in one store leaves the other alone.
    a.delete(&k).await.unwrap();
    assert!(a.exists(&k).await.unwrap().is_none());
    assert_eq!(read_all(&b, &k).await, body_b);

    let foreign: Vec<String> = common::all_keys(&mut conn)
        .await
        .into_iter()
        .filter(|k| !k.starts_with("tenant-a:") && !k.starts_with("tenant-b:"))
        .collect();
    assert_eq!(foreign, vec!["index", "m:x", "other-app:index"]);
    for (k, v) in [
        ("other-app:index", "theirs"),
        ("index", "mine"),
        ("m:x", "y"),
    ] {
        let got: String = redis::cmd("GET")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(got, v, "{k} was changed");
    }
}

/// A payload that yields `first` and then never ends: a client that went silent.
fn stalled(first: Bytes) -> ByteStream {
    stream::iter([Ok(first)]).chain(stream::pending()).boxed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_put_leaves_nothing_visible_and_its_chunks_are_removed() {
    let Some(mut fx) = shared_store(
        "a_dropped_put_leaves_nothing_visible_and_its_chunks_are_removed",
        |_| {},
    )
    .await
    else {
        return;
    };
    let k = key("example.com/cancelled", "v1.0.0", ArtifactKind::Zip);
    let previous = body(3, 100 * KIB);
    fx.store.put_bytes(&k, previous.clone()).await.unwrap();
    let expected = fx.keys_of_one_object(&k).await;

    let put = fx.store.put(
        &k,
        PutPayload::Stream {
            stream: stalled(body(4, 300 * KIB)),
            length: Some(1024 * KIB as u64),
        },
    );
    let result = tokio::time::timeout(Duration::from_millis(500), put).await;
    assert!(result.is_err(), "the stalled put should still be pending");

    // Visible state is untouched at once; the background clean-up removes the staged chunks.
    assert_eq!(read_all(&fx.store, &k).await, previous);
    let listed: Vec<_> = fx.store.list(&ListPrefix::All).collect().await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let keys = fx.keys().await;
        if keys == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "staging keys of the dropped put are still there: {:?}",
            keys.difference(&expected).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_puts_remove_their_staging_chunks_before_returning() {
    let Some(mut fx) = shared_store(
        "failed_puts_remove_their_staging_chunks_before_returning",
        |_| {},
    )
    .await
    else {
        return;
    };
    let k = key("example.com/failed", "v1.0.0", ArtifactKind::Zip);
    let previous = body(5, 10 * KIB);
    fx.store.put_bytes(&k, previous.clone()).await.unwrap();
    let expected = fx.keys_of_one_object(&k).await;
    let head = fx.store.head(&k).await.unwrap();

    // Each payload stages several full chunks before it goes wrong.
    let data = body(6, 300 * KIB);
    let failing: ByteStream = stream::iter([
        Ok(data.slice(..200 * KIB)),
        Err(std::io::Error::other("upstream reset")),
    ])
    .boxed();
    let err = fx
        .store
        .put(
            &k,
            PutPayload::Stream {
                stream: failing,
                length: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StorageError::Payload { source, .. } if source.to_string() == "upstream reset"),
        "{err:?}"
    );
    assert_eq!(fx.keys().await, expected, "after a failing payload");

    let short = stream::iter([Ok(data.clone())]).boxed();
    let err = fx
        .store
        .put(
            &k,
            PutPayload::Stream {
                stream: short,
                length: Some(400 * KIB as u64),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::LengthMismatch { actual, .. } if actual == 300 * KIB as u64),
        "{err:?}"
    );
    assert_eq!(fx.keys().await, expected, "after a short payload");

    let long = stream::iter(vec![
        Ok(data.slice(..150 * KIB)),
        Ok(data.slice(150 * KIB..)),
    ])
    .boxed();
    let err = fx
        .store
        .put(
            &k,
            PutPayload::Stream {
                stream: long,
                length: Some(200 * KIB as u64),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::LengthMismatch { .. }),
        "{err:?}"
    );
    assert_eq!(fx.keys().await, expected, "after a long payload");

    assert_eq!(read_all(&fx.store, &k).await, previous);
    assert_eq!(fx.store.head(&k).await.unwrap(), head);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_writer_leaves_only_expiring_staging_keys() {
    const TTL: Duration = Duration::from_secs(2);
    let Some(mut fx) = shared_store("a_crashed_writer_leaves_only_expiring_staging_keys", |o| {
        o.staging_ttl = TTL
    })
    .await
    else {
        return;
    };
    let k = key("example.com/crashed", "v1.0.0", ArtifactKind::Zip);
    let writer = fx.store.clone();
    let mut put = Box::pin(writer.put(
        &k,
        PutPayload::Stream {
            stream: stalled(body(7, 300 * KIB)),
            length: Some(1024 * KIB as u64),
        },
    ));
    // Drive the put until it has staged its marker and the four full chunks it has data for.
    let deadline = Instant::now() + Duration::from_secs(5);
    let staged = loop {
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut put)
                .await
                .is_err(),
            "the stalled put finished"
        );
        let keys = fx.keys().await;
        if keys.len() == 5 || Instant::now() > deadline {
            break keys;
        }
    };
    // What a process killed mid-put leaves: nothing runs its clean-up.
    std::mem::forget(put);
    assert_eq!(
        staged.len(),
        5,
        "a marker and four full chunks were expected: {staged:?}"
    );
    for key in &staged {
        let ttl = common::pttl(&mut fx.conn, key).await;
        assert!(
            ttl > 0 && ttl <= TTL.as_millis() as i64,
            "staging key {key} has expiry {ttl} ms"
        );
    }
    assert!(fx.store.exists(&k).await.unwrap().is_none());
    assert_eq!(fx.store.list(&ListPrefix::All).count().await, 0);
    tokio::time::sleep(TTL + Duration::from_millis(300)).await;
    assert_eq!(
        fx.keys().await,
        BTreeSet::new(),
        "staging keys did not expire"
    );
    fx.cleanup().await;
}

/// Yields `data` in `pieces` parts, sleeping `pause` before each.
fn slow(data: Bytes, pieces: usize, pause: Duration) -> ByteStream {
    let size = data.len().div_ceil(pieces);
    let parts: Vec<Bytes> = (0..data.len())
        .step_by(size)
        .map(|at| data.slice(at..(at + size).min(data.len())))
        .collect();
    stream::iter(parts)
        .then(move |part| async move {
            tokio::time::sleep(pause).await;
            Ok(part)
        })
        .boxed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_outlives_its_ttl_while_data_keeps_coming_but_not_a_stall() {
    let Some(fx) = shared_store(
        "staging_outlives_its_ttl_while_data_keeps_coming_but_not_a_stall",
        |o| o.staging_ttl = Duration::from_secs(1),
    )
    .await
    else {
        return;
    };
    let k = key("example.com/slow", "v1.0.0", ArtifactKind::Zip);

    // 2.4 s of steady upload against a 1 s staging expiry: the expiry is pushed back as it goes.
    let steady = body(8, 12 * 64 * KIB);
    let started = Instant::now();
    fx.store
        .put(
            &k,
            PutPayload::Stream {
                stream: slow(steady.clone(), 12, Duration::from_millis(200)),
                length: Some(steady.len() as u64),
            },
        )
        .await
        .unwrap();
    assert!(started.elapsed() > Duration::from_secs(2));
    assert_eq!(read_all(&fx.store, &k).await, steady);

    // A payload that stalls longer than the expiry loses its staging: the commit refuses.
    let stalling = body(9, 2 * 64 * KIB);
    let payload = stream::iter([stalling.slice(..64 * KIB), stalling.slice(64 * KIB..)])
        .enumerate()
        .then(|(i, part)| async move {
            if i == 1 {
                tokio::time::sleep(Duration::from_millis(1600)).await;
            }
            Ok(part)
        })
        .boxed();
    let err = fx
        .store
        .put(
            &k,
            PutPayload::Stream {
                stream: payload,
                length: Some(stalling.len() as u64),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::Backend { store: "redis", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("staging_ttl"), "{err}");
    assert_eq!(read_all(&fx.store, &k).await, steady);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_gets_its_whole_body_while_the_object_is_overwritten_and_deleted() {
    let Some(fx) = shared_store(
        "a_reader_gets_its_whole_body_while_the_object_is_overwritten_and_deleted",
        |o| o.read_ahead = 1,
    )
    .await
    else {
        return;
    };
    let k = key("example.com/busy", "v1.0.0", ArtifactKind::Zip);
    let original = body(10, 40 * 64 * KIB + 17);
    fx.store.put_bytes(&k, original.clone()).await.unwrap();

    let got = fx.store.get(&k).await.unwrap();
    assert_eq!(got.meta.size, original.len() as u64);
    let mut reader = got.body;
    let mut read = reader.next().await.unwrap().unwrap().to_vec();

    // Writers replace the object again and again, and finally delete it, while the reader
    // reads slowly.
    let writer = {
        let store = fx.store.clone();
        let k = k.clone();
        tokio::spawn(async move {
            for i in 0..10u8 {
                let other = body(11 + i, (i as usize + 1) * 50 * KIB);
                let payload = PutPayload::Stream {
                    stream: slow(other, 3, Duration::from_millis(5)),
                    length: None,
                };
                store.put(&k, payload).await.unwrap();
            }
            store.delete(&k).await.unwrap();
        })
    };
    while let Some(chunk) = reader.next().await {
        read.extend_from_slice(&chunk.unwrap());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    writer.await.unwrap();
    assert!(
        read == original,
        "the reader got a body other than the one it opened"
    );
    assert!(fx.store.exists(&k).await.unwrap().is_none());
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_grace_period_a_reader_fails_instead_of_splicing() {
    let Some(fx) = shared_store(
        "without_a_grace_period_a_reader_fails_instead_of_splicing",
        |o| {
            o.superseded_grace = Duration::ZERO;
            o.read_ahead = 1;
        },
    )
    .await
    else {
        return;
    };
    let k = key("example.com/spliced", "v1.0.0", ArtifactKind::Zip);
    let first = body(30, 8 * 64 * KIB);
    let second = body(31, 8 * 64 * KIB);
    fx.store.put_bytes(&k, first.clone()).await.unwrap();
    let mut reader = fx.store.get(&k).await.unwrap().body;
    let mut read = reader.next().await.unwrap().unwrap().to_vec();
    fx.store.put_bytes(&k, second.clone()).await.unwrap();
    let mut failure = None;
    while let Some(chunk) = reader.next().await {
        match chunk {
            Ok(chunk) => read.extend_from_slice(&chunk),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.unwrap_or_else(|| {
        panic!(
            "the reader finished without an error; got {} bytes, {}",
            read.len(),
            if read == first {
                "the old body"
            } else {
                "a spliced body"
            }
        )
    });
    assert!(failure.to_string().contains("is gone"), "{failure}");
    assert!(read.len() < first.len() && first.starts_with(&read));
    assert_eq!(read_all(&fx.store, &k).await, second);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_data_is_a_backend_error_and_bad_paths_list_as_invalid_keys() {
    let Some(mut fx) = shared_store(
        "damaged_data_is_a_backend_error_and_bad_paths_list_as_invalid_keys",
        |_| {},
    )
    .await
    else {
        return;
    };
    let p = fx.prefix.clone();
    let good = key("example.com/good", "v1.0.0", ArtifactKind::Info);
    fx.store
        .put_bytes(&good, Bytes::from_static(b"{}"))
        .await
        .unwrap();

    // A manifest with a non-numeric size, one missing fields, one whose chunk is gone.
    let garbled = key("example.com/garbled", "v1.0.0", ArtifactKind::Mod);
    let partial = key("example.com/partial", "v1.0.0", ArtifactKind::Mod);
    let evicted = key("example.com/evicted", "v1.0.0", ArtifactKind::Zip);
    let hashes: [(&Key, &[(&str, &str)]); 3] = [
        (
            &garbled,
            &[
                ("size", "ten"),
                ("modified", "1"),
                ("gen", "g"),
                ("chunks", "1"),
            ],
        ),
        (&partial, &[("size", "10")]),
        (
            &evicted,
            &[
                ("size", "10"),
                ("modified", "1"),
                ("gen", "nothere"),
                ("chunks", "1"),
            ],
        ),
    ];
    for (k, fields) in hashes {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(format!("{p}m:{}", k.path()));
        for (f, v) in fields {
            cmd.arg(*f).arg(*v);
        }
        let _: i64 = cmd.query_async(&mut fx.conn).await.unwrap();
    }
    for k in [&garbled, &partial, &evicted] {
        let err = fx.store.get(k).await.unwrap_err();
        assert!(
            matches!(err, StorageError::Backend { store: "redis", .. }),
            "get {k}: {err:?}"
        );
        assert!(err.to_string().contains(&k.path()), "get {k}: {err}");
    }
    for k in [&garbled, &partial] {
        let err = fx.store.head(k).await.unwrap_err();
        assert!(
            matches!(err, StorageError::Backend { store: "redis", .. }),
            "head {k}: {err:?}"
        );
    }

    // A path in the index that is not a storage key is listed as an InvalidKey item.
    let _: i64 = redis::cmd("ZADD")
        .arg(format!("{p}index"))
        .arg(0)
        .arg("not-a-key")
        .query_async(&mut fx.conn)
        .await
        .unwrap();
    let _: i64 = redis::cmd("HSET")
        .arg(format!("{p}m:not-a-key"))
        .arg("size")
        .arg(1)
        .arg("modified")
        .arg(1)
        .query_async(&mut fx.conn)
        .await
        .unwrap();
    let listed: Vec<_> = fx.store.list(&ListPrefix::All).collect().await;
    let invalid: Vec<_> = listed
        .iter()
        .filter_map(|e| match e {
            Err(StorageError::InvalidKey { path, .. }) => Some(path.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(invalid, vec!["not-a-key".to_string()], "{listed:?}");
    assert!(
        listed
            .iter()
            .any(|e| e.as_ref().is_ok_and(|e| e.key == good)),
        "{listed:?}"
    );
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_through_a_large_index() {
    let Some(fx) = shared_store("listing_pages_through_a_large_index", |_| {}).await else {
        return;
    };
    // More objects than one listing page holds, in two modules, one of which is a prefix of
    // the other's path.
    let m = ModulePath::parse("example.com/many").unwrap();
    let m2 = ModulePath::parse("example.com/many2").unwrap();
    let mut want = BTreeSet::new();
    for i in 0..700 {
        let k = Key::artifact(
            &m,
            &Version::parse(&format!("v1.0.{i}")).unwrap(),
            ArtifactKind::Mod,
        );
        fx.store
            .put_bytes(&k, Bytes::from(format!("module {i}\n")))
            .await
            .unwrap();
        want.insert(k.path());
    }
    let other = Key::List { module: m2.clone() };
    fx.store
        .put_bytes(&other, Bytes::from_static(b"v1.0.0\n"))
        .await
        .unwrap();
    let got: Vec<String> = fx
        .store
        .list(&ListPrefix::Module(m))
        .map(|e| e.unwrap().key.path())
        .collect()
        .await;
    assert_eq!(got.len(), 700, "a key was listed twice or missed");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);
    assert_eq!(fx.store.list(&ListPrefix::All).count().await, 701);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_leaves_no_probe_behind() {
    let Some(mut fx) = shared_store("check_leaves_no_probe_behind", |_| {}).await else {
        return;
    };
    for _ in 0..3 {
        fx.store.check().await.unwrap();
    }
    assert_eq!(fx.keys().await, BTreeSet::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_fails_promptly_naming_the_url_when_nothing_listens() {
    // Needs no server: nothing listens on a freshly freed port.
    let port = common::free_port();
    let url = format!("redis://:s3cret@127.0.0.1:{port}/0");
    let started = Instant::now();
    let err = RedisStorage::open(RedisOptions {
        url,
        connect_timeout: Duration::from_secs(1),
        ..RedisOptions::default()
    })
    .await
    .unwrap_err();
    let shown = err.to_string();
    assert!(
        matches!(err, StorageError::Backend { store: "redis", .. }),
        "{err:?}"
    );
    assert!(
        shown.contains(&format!("redis://:***@127.0.0.1:{port}/0")),
        "{shown}"
    );
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    eprintln!("open failed in {:.1?}: {shown}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_a_prompt_backend_error_and_the_store_recovers() {
    if common::test_url("an_outage_is_a_prompt_backend_error_and_the_store_recovers").is_none() {
        return;
    }
    let mut server = RedisServer::start().await;
    let store = common::open(RedisOptions {
        connect_timeout: Duration::from_secs(1),
        response_timeout: Duration::from_secs(2),
        read_ahead: 1,
        ..options(&server.url(), "outage:")
    })
    .await;
    let k = key("example.com/outage", "v1.0.0", ArtifactKind::Zip);
    let data = body(40, 16 * 64 * KIB);
    store.put_bytes(&k, data.clone()).await.unwrap();
    let mut reader = store.get(&k).await.unwrap().body;
    let first = reader.next().await.unwrap().unwrap();
    assert_eq!(first.len(), 64 * KIB);

    server.kill();
    let limit = Duration::from_secs(5);

    // A body being streamed ends in an error, not in a short success.
    let rest = tokio::time::timeout(limit, async {
        let mut items = Vec::new();
        while let Some(item) = reader.next().await {
            let failed = item.is_err();
            items.push(item);
            if failed {
                break;
            }
        }
        items
    })
    .await
    .expect("the body stream hangs while Redis is down");
    assert!(
        rest.last().is_some_and(|r| r.is_err()),
        "the body stream ended without an error after {} more chunks",
        rest.len()
    );

    let other = key("example.com/outage", "v1.0.1", ArtifactKind::Mod);
    fails_promptly("get", limit, store.get(&k)).await;
    fails_promptly("get of a missing key", limit, store.get(&other)).await;
    fails_promptly("head", limit, store.head(&k)).await;
    fails_promptly(
        "put",
        limit,
        store.put_bytes(&other, Bytes::from_static(b"x")),
    )
    .await;
    fails_promptly(
        "streamed put",
        limit,
        store.put(
            &other,
            PutPayload::Stream {
                stream: stream::iter([Ok(body(41, 200 * KIB))]).boxed(),
                length: Some(200 * KIB as u64),
            },
        ),
    )
    .await;
    fails_promptly("delete", limit, store.delete(&k)).await;
    fails_promptly("check", limit, store.check()).await;
    let listing = tokio::time::timeout(limit, store.list(&ListPrefix::All).collect::<Vec<_>>())
        .await
        .expect("list hangs while Redis is down");
    assert!(
        matches!(
            listing.as_slice(),
            [Err(StorageError::Backend { store: "redis", .. })]
        ),
        "{listing:?}"
    );

    // The same store object works again once the server is back (empty: it kept no data).
    server.restart().await;
    store
        .check()
        .await
        .expect("check after the server came back");
    assert!(store.get(&k).await.unwrap_err().is_not_found());
    store.put_bytes(&k, data.clone()).await.unwrap();
    assert_eq!(read_all(&store, &k).await, data);
    assert_eq!(store.list(&ListPrefix::All).count().await, 1);

    // A restart between two requests: the next command finds its connection dead (redis-rs
    // reports that to the command that notices it) and must be retried, not fail the caller.
    for round in 0..3 {
        server.kill();
        server.restart().await;
        let started = Instant::now();
        store
            .check()
            .await
            .unwrap_or_else(|e| panic!("check right after restart {round}: {e}"));
        assert!(started.elapsed() < limit, "{:?}", started.elapsed());
        store
            .put_bytes(&k, data.clone())
            .await
            .unwrap_or_else(|e| panic!("put after restart {round}: {e}"));
        server.kill();
        server.restart().await;
        // The first command after this restart is a read: a miss (nothing survives a restart
        // here), not a backend error.
        match store.get(&k).await {
            Err(e) if e.is_not_found() => {}
            other => panic!("get right after restart {round}: expected NotFound, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_reply_is_lost_is_not_undone() {
    const PAUSE: Duration = Duration::from_secs(3);
    // CLIENT PAUSE stops every client of the server: a private one.
    if common::test_url("a_commit_whose_reply_is_lost_is_not_undone").is_none() {
        return;
    }
    let server = RedisServer::start().await;
    let url = server.url();
    let prefix = "lost-reply:";
    let store = common::open(RedisOptions {
        response_timeout: Duration::from_millis(500),
        ..options(&url, prefix)
    })
    .await;
    let k = key("example.com/lost", "v1.0.0", ArtifactKind::Zip);
    let data = body(50, 3 * 64 * KIB);

    // When the payload ends and its three chunks are staged, writes are paused: the commit
    // script is held by the server, its reply times out, and the put's clean-up is queued behind
    // it on the same connection. The server then runs the commit, then the clean-up, which must
    // leave the committed generation alone.
    let paused_at = std::sync::Arc::new(std::sync::Mutex::new(None::<Instant>));
    let payload = {
        let (data, url, paused_at) = (data.clone(), url.clone(), paused_at.clone());
        let end = async move {
            let mut conn = common::raw(&url).await;
            let deadline = Instant::now() + Duration::from_secs(5);
            while common::keys_under(&mut conn, prefix).await.len() < 4 {
                assert!(Instant::now() < deadline, "the chunks were never staged");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _: () = redis::cmd("CLIENT")
                .arg("PAUSE")
                .arg(PAUSE.as_millis() as u64)
                .arg("WRITE")
                .query_async(&mut conn)
                .await
                .unwrap();
            *paused_at.lock().unwrap() = Some(Instant::now());
            None::<std::io::Result<Bytes>>
        };
        stream::iter([Ok(data)])
            .chain(stream::once(end).filter_map(|x| async move { x }))
            .boxed()
    };
    let err = store
        .put(
            &k,
            PutPayload::Stream {
                stream: payload,
                length: Some(data.len() as u64),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::Backend { store: "redis", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("committing"), "{err}");
    eprintln!("put with a lost commit reply: {err}");

    // After the pause: the put did take effect, whole.
    let paused_at = paused_at
        .lock()
        .unwrap()
        .expect("the payload paused the server");
    tokio::time::sleep_until((paused_at + PAUSE + Duration::from_millis(500)).into()).await;
    assert_eq!(read_all(&store, &k).await, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_is_a_timeout_not_a_hang() {
    if common::test_url("a_server_that_stops_answering_is_a_timeout_not_a_hang").is_none() {
        return;
    }
    let server = RedisServer::start().await;
    let opts = RedisOptions {
        connect_timeout: Duration::from_secs(1),
        response_timeout: Duration::from_secs(1),
        ..options(&server.url(), "frozen:")
    };
    let store = common::open(opts.clone()).await;
    let k = key("example.com/frozen", "v1.0.0", ArtifactKind::Mod);
    store
        .put_bytes(&k, Bytes::from_static(b"module m\n"))
        .await
        .unwrap();

    // The process stops (as a partitioned or swapping host would): connections stay open,
    // nothing answers.
    server.signal("STOP");
    let limit = Duration::from_secs(4);
    fails_promptly("get", limit, store.get(&k)).await;
    fails_promptly("head", limit, store.head(&k)).await;
    fails_promptly("put", limit, store.put_bytes(&k, Bytes::from_static(b"x"))).await;
    fails_promptly("check", limit, store.check()).await;
    let err = fails_promptly("open", Duration::from_secs(8), RedisStorage::open(opts)).await;
    assert!(err.to_string().contains(&server.url()), "{err}");

    server.signal("CONT");
    store.check().await.expect("check after the server resumed");
    let (_, got) = store.get_bytes(&k, 1024).await.unwrap();
    assert_eq!(&got[..], b"module m\n");
}
