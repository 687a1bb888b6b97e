//! What only an S3 backend can get wrong, on a real S3 server: object names byte for byte,
//! open() errors, multipart uploads that fail or are cancelled, foreign objects in the bucket,
//! and an outage of the server (on a server these tests start themselves).

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, stream};
use gomodproxy_storage::{
    ArtifactKind, Key, ListPrefix, PutPayload, Storage, StorageError, StorageExt,
};
use gomodproxy_storage_s3::{MIN_PART_SIZE, S3Error, S3ErrorKind, S3Options, S3Storage};
use object_store::ObjectStoreExt;
use object_store::path::Path;

use common::{OwnServer, TestServer, module, random_prefix, version, zip_key};

const MIB: usize = 1024 * 1024;

async fn open(server: &TestServer, options: S3Options) -> S3Storage {
    S3Storage::open(options)
        .await
        .unwrap_or_else(|e| panic!("open bucket {} at {}: {e}", server.bucket, server.endpoint))
}

/// The [`S3Error`] behind a backend error; panics on any other error.
fn s3_error(e: &StorageError) -> &S3Error {
    match e {
        StorageError::Backend { store, source } => {
            assert_eq!(*store, "s3", "{e}");
            source
                .downcast_ref::<S3Error>()
                .unwrap_or_else(|| panic!("backend error without an S3Error: {e:?}"))
        }
        other => panic!("expected StorageError::Backend, got {other:?}"),
    }
}

fn deterministic(len: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>(),
    )
}

/// `data` in 1 MiB chunks, then `tail` (an error, or nothing).
fn stream_of(data: Bytes, tail: Option<std::io::Error>) -> gomodproxy_storage::ByteStream {
    let chunks: Vec<std::io::Result<Bytes>> = (0..data.len())
        .step_by(MIB)
        .map(|at| Ok(data.slice(at..(at + MIB).min(data.len()))))
        .chain(tail.map(Err))
        .collect();
    stream::iter(chunks).boxed()
}

async fn listed_keys(store: &S3Storage, prefix: &ListPrefix) -> BTreeSet<String> {
    store
        .list(prefix)
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("list {prefix:?}: {e}"))
                .key
                .path()
        })
        .collect()
        .await
}

#[tokio::test]
async fn odd_characters_round_trip_byte_exact() {
    let Some(server) = common::server() else {
        return;
    };
    let prefix = random_prefix("odd");
    let store = open(&server, server.options(&prefix)).await;
    // `!` (escaped upper case), `~`, `.`, `_`, `-`, `@`, `+` and a gopkg.in path.
    let odd = module("example.com/Az~b/c.d_e-f~1");
    let keys = vec![
        Key::artifact(
            &odd,
            &version("v2.0.0-RC.1+incompatible"),
            ArtifactKind::Zip,
        ),
        Key::artifact(
            &odd,
            &version("v0.0.0-20240102030405-abcdef123456"),
            ArtifactKind::Mod,
        ),
        Key::List {
            module: odd.clone(),
        },
        Key::Latest {
            module: odd.clone(),
        },
        Key::artifact(
            &module("gopkg.in/Yaml.v3"),
            &version("v3.0.1"),
            ArtifactKind::Info,
        ),
    ];
    // Checksum-database objects, made from their paths only: the store treats every key as an
    // opaque path.
    let sumdb = [
        "sumdb/sum.golang.org/lookup/example.com/!az~b/c.d_e-f~1@v2.0.0-!r!c.1+incompatible",
        "sumdb/sum.golang.org/tile/8/0/x001/x234/067.p/5",
        "sumdb/sum.golang.org/tile/8/0/x001/x234/067",
        "sumdb/sum.golang.org/latest",
    ];
    let keys: Vec<Key> =
        keys.into_iter()
            .chain(sumdb.iter().map(|p| {
                Key::from_path(p).unwrap_or_else(|e| panic!("test data: {p} is no key: {e}"))
            }))
            .collect();
    for key in &keys {
        store
            .put_bytes(key, Bytes::from(key.path()))
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e}"));
    }

    // What the server itself lists: exactly `<prefix>/<Key::path()>`, nothing percent-encoded.
    let raw: BTreeSet<String> = server.raw_names(&prefix).await.into_iter().collect();
    let expected: BTreeSet<String> = keys
        .iter()
        .map(|k| format!("{prefix}/{}", k.path()))
        .collect();
    assert_eq!(raw, expected);
    assert!(
        raw.iter()
            .any(|n| n.ends_with("example.com/!az~b/c.d_e-f~1/@v/v2.0.0-!r!c.1+incompatible.zip")),
        "{raw:?}"
    );
    for key in &keys {
        assert_eq!(store.object_name(key), format!("{prefix}/{}", key.path()));
        let (_, body) = store.get_bytes(key, 1 << 20).await.unwrap();
        assert_eq!(body, Bytes::from(key.path()), "get {key}");
    }
    // Listings parse the names back into equal keys.
    let all = listed_keys(&store, &ListPrefix::All).await;
    assert_eq!(all, keys.iter().map(Key::path).collect::<BTreeSet<_>>());
    let of_module = listed_keys(&store, &ListPrefix::Module(odd.clone())).await;
    assert_eq!(of_module.len(), 4, "{of_module:?}");
    let of_sumdb = listed_keys(
        &store,
        &ListPrefix::Sumdb(gomod::sumdb::SumdbName::parse("sum.golang.org").unwrap()),
    )
    .await;
    assert_eq!(of_sumdb, sumdb.iter().map(|p| p.to_string()).collect());

    for key in &keys {
        store.delete(key).await.unwrap();
    }
    assert!(server.raw_names(&prefix).await.is_empty());
}

#[tokio::test]
async fn open_tells_a_missing_bucket_from_a_closed_port_and_bad_credentials() {
    let Some(server) = common::server() else {
        return;
    };

    let missing = format!("gomodproxy-missing-{:08x}", rand::random::<u32>());
    let err = S3Storage::open(S3Options {
        bucket: missing.clone(),
        ..server.options("")
    })
    .await
    .expect_err("open of a missing bucket succeeded");
    let s3 = s3_error(&err);
    assert_eq!(s3.kind(), S3ErrorKind::NoSuchBucket, "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&missing) && message.contains(&server.endpoint),
        "message must name the bucket and endpoint: {message}"
    );
    assert!(message.contains("does not exist"), "{message}");

    // A port nothing listens on: bind one, then free it.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let endpoint = format!("http://127.0.0.1:{closed}");
    let started = Instant::now();
    let err = S3Storage::open(S3Options {
        endpoint: Some(endpoint.clone()),
        ..server.options("")
    })
    .await
    .expect_err("open against a closed port succeeded");
    let elapsed = started.elapsed();
    let s3 = s3_error(&err);
    assert_eq!(s3.kind(), S3ErrorKind::Connection, "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&server.bucket) && message.contains(&endpoint),
        "message must name the bucket and endpoint: {message}"
    );
    assert!(message.contains("cannot connect"), "{message}");
    // Connection refused is retried (3 times by default), but quickly.
    assert!(
        elapsed < Duration::from_secs(10),
        "open took {elapsed:?} to fail"
    );

    let err = S3Storage::open(S3Options {
        secret_access_key: Some("not-the-secret".into()),
        ..server.options("")
    })
    .await
    .expect_err("open with a wrong secret succeeded");
    assert_eq!(s3_error(&err).kind(), S3ErrorKind::Credentials, "{err}");
    assert!(
        err.to_string().contains("rejected the credentials"),
        "{err}"
    );

    let err = S3Storage::open(S3Options {
        endpoint: Some(server.endpoint.clone()),
        allow_http: false,
        ..server.options("")
    })
    .await
    .expect_err("http endpoint without allow_http accepted");
    assert_eq!(s3_error(&err).kind(), S3ErrorKind::Config, "{err}");
}

#[tokio::test]
async fn a_bucket_deleted_under_the_store_is_a_backend_error_not_a_miss() {
    let Some(server) = common::server() else {
        return;
    };
    let bucket = format!("gomodproxy-doomed-{:08x}", rand::random::<u32>());
    let (status, body) = server.signed("PUT", &bucket);
    assert_eq!(status, 200, "create bucket {bucket}: {body}");
    let store = open(
        &server,
        S3Options {
            bucket: bucket.clone(),
            ..server.options("p")
        },
    )
    .await;
    let key = zip_key("example.com/doomed", "v1.0.0");
    store
        .put_bytes(&key, Bytes::from_static(b"zip"))
        .await
        .unwrap();
    store.delete(&key).await.unwrap();
    let (status, body) = server.signed("DELETE", &bucket);
    assert!(
        status == 204 || status == 200,
        "delete bucket {bucket}: {status} {body}"
    );

    // S3 and MinIO answer requests in a missing bucket with NoSuchBucket. s3s-fs 0.14 does not
    // keep track of buckets that way (a GET says NoSuchKey, a PUT recreates the bucket), so
    // there is nothing for the store to report there: say so loudly instead of passing quietly.
    let (status, answer) = server.signed("GET", &format!("{bucket}/probe"));
    assert_eq!(status, 404, "{answer}");
    if !answer.contains("<Code>NoSuchBucket</Code>") {
        let note = format!(
            "NOT CHECKED: this S3 server answers a GET in a deleted bucket with {answer:?}, not \
             NoSuchBucket (s3s-fs does); run the tests against MinIO to check this"
        );
        eprintln!("\n{0}\n{note}\n{0}\n", "*".repeat(note.len()));
        return;
    }
    let err = store.get(&key).await.expect_err("get in a deleted bucket");
    assert_eq!(s3_error(&err).kind(), S3ErrorKind::NoSuchBucket, "{err}");
    assert!(err.to_string().contains(&bucket), "{err}");
    let err = store
        .put_bytes(&key, Bytes::from_static(b"zip"))
        .await
        .expect_err("put in a deleted bucket");
    assert_eq!(s3_error(&err).kind(), S3ErrorKind::NoSuchBucket, "{err}");
    let listed: Vec<_> = store.list(&ListPrefix::All).collect().await;
    assert!(
        matches!(listed.as_slice(), [Err(e)] if s3_error(e).kind() == S3ErrorKind::NoSuchBucket),
        "{listed:?}"
    );
    let err = store.check().await.expect_err("check in a deleted bucket");
    assert_eq!(s3_error(&err).kind(), S3ErrorKind::NoSuchBucket, "{err}");
    // HEAD answers have no body to tell a missing bucket from a missing key (documented).
    assert!(store.head(&key).await.unwrap_err().is_not_found());
}

/// Options with the smallest parts S3 allows, so multipart uploads are cheap to provoke.
fn small_parts(server: &TestServer, prefix: &str) -> S3Options {
    S3Options {
        part_size: MIN_PART_SIZE,
        ..server.options(prefix)
    }
}

#[tokio::test]
async fn failed_multipart_puts_leave_nothing_and_keep_the_old_object() {
    // On a server of its own, whose open uploads the test can see.
    if common::server().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let own = OwnServer::start(dir.path(), 0);
    let server = own.server.clone();
    let prefix = random_prefix("multipart-fail");
    let store = open(&server, small_parts(&server, &prefix)).await;
    let kept = zip_key("example.com/kept", "v1.0.0");
    let fresh = zip_key("example.com/fresh", "v1.0.0");
    let old = deterministic(1000, 1);
    store.put_bytes(&kept, old.clone()).await.unwrap();
    let old_meta = store.head(&kept).await.unwrap();

    let big = deterministic(3 * MIN_PART_SIZE + 12345, 2);
    let len = big.len() as u64;
    for key in [&kept, &fresh] {
        // The payload fails after two full parts went out.
        let cut = big.slice(..2 * MIN_PART_SIZE + MIB);
        let err = store
            .put(
                key,
                PutPayload::Stream {
                    stream: stream_of(cut, Some(std::io::Error::other("upstream went away"))),
                    length: Some(len),
                },
            )
            .await
            .expect_err("failing payload accepted");
        assert!(
            matches!(&err, StorageError::Payload { source, .. } if source.to_string().contains("upstream went away")),
            "{err:?}"
        );

        // Too short, and too long, by one byte, both past several parts.
        for (delivered, announced) in [(len - 1, len), (len, len - 1)] {
            let err = store
                .put(
                    key,
                    PutPayload::Stream {
                        stream: stream_of(big.slice(..delivered as usize), None),
                        length: Some(announced),
                    },
                )
                .await
                .expect_err("wrong length accepted");
            assert!(
                matches!(err, StorageError::LengthMismatch { expected, .. } if expected == announced),
                "{err:?}"
            );
        }
    }

    assert_eq!(store.head(&kept).await.unwrap(), old_meta);
    assert_eq!(store.get_bytes(&kept, 1 << 20).await.unwrap().1, old);
    assert!(store.head(&fresh).await.unwrap_err().is_not_found());
    assert!(store.get(&fresh).await.unwrap_err().is_not_found());
    assert_eq!(
        listed_keys(&store, &ListPrefix::All).await,
        BTreeSet::from([kept.path()])
    );
    // Aborted, not just abandoned: the server keeps no parts of them.
    assert_eq!(own.uploads_in_progress(), Vec::<String>::new());

    // And a good multipart put of the same key still works and replaces the old object.
    store
        .put(
            &kept,
            PutPayload::Stream {
                stream: stream_of(big.clone(), None),
                length: Some(len),
            },
        )
        .await
        .unwrap();
    assert_eq!(store.get_bytes(&kept, 1 << 30).await.unwrap().1, big);
    store.delete(&kept).await.unwrap();
}

#[tokio::test]
async fn a_dropped_put_aborts_its_upload() {
    if common::server().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let own = OwnServer::start(dir.path(), 0);
    let server = own.server.clone();
    let prefix = random_prefix("multipart-drop");
    let store = open(&server, small_parts(&server, &prefix)).await;
    let key = zip_key("example.com/cancelled", "v1.0.0");
    let old = deterministic(777, 3);
    store.put_bytes(&key, old.clone()).await.unwrap();

    // A client that goes away mid-upload: two and a half parts, then the payload stalls.
    let data = deterministic(2 * MIN_PART_SIZE + MIN_PART_SIZE / 2, 4);
    let sent = Arc::new(AtomicU64::new(0));
    let counted = {
        let sent = sent.clone();
        stream_of(data.clone(), None)
            .inspect(move |chunk| {
                if let Ok(chunk) = chunk {
                    sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                }
            })
            .chain(stream::pending())
            .boxed()
    };
    let mut put = Box::pin(store.put(
        &key,
        PutPayload::Stream {
            stream: counted,
            length: Some(10 * MIN_PART_SIZE as u64),
        },
    ));
    // Drive the put until the payload has stalled and the server holds its upload.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::select! {
            outcome = &mut put => panic!("the stalled put finished: {outcome:?}"),
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if sent.load(Ordering::SeqCst) == data.len() as u64 && !own.uploads_in_progress().is_empty()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no multipart upload in progress after sending {} bytes",
            sent.load(Ordering::SeqCst)
        );
    }
    drop(put);

    assert_eq!(store.get_bytes(&key, 1 << 20).await.unwrap().1, old);
    assert_eq!(
        listed_keys(&store, &ListPrefix::All).await,
        BTreeSet::from([key.path()])
    );
    // The abort runs in the background after the drop.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let uploads = own.uploads_in_progress();
        if uploads.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dropped put's upload was not aborted: {uploads:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.delete(&key).await.unwrap();
}

#[tokio::test]
async fn listings_skip_foreign_prefixes_and_report_foreign_names() {
    let Some(server) = common::server() else {
        return;
    };
    let prefix = random_prefix("foreign");
    let store = open(&server, server.options(&prefix)).await;
    let key = zip_key("example.com/m", "v1.0.0");
    store
        .put_bytes(&key, Bytes::from_static(b"zip"))
        .await
        .unwrap();

    let raw = server.raw();
    let put_raw = |name: String| {
        let raw = raw.clone();
        async move {
            raw.put(
                &Path::parse(&name).unwrap(),
                Bytes::from_static(b"x").into(),
            )
            .await
            .unwrap_or_else(|e| panic!("raw put {name}: {e}"));
            name
        }
    };
    // Not a key, inside our prefix: reported, not silently dropped.
    let notes = put_raw(format!("{prefix}/example.com/m/@v/notes.txt")).await;
    // The store's own reserved names, and names that merely share the prefix string: skipped.
    let reserved = put_raw(format!("{prefix}/.gomodproxy/leftover")).await;
    let sibling = put_raw(format!("{prefix}-other/example.com/m/@v/v1.0.0.zip")).await;

    let results: Vec<_> = store.list(&ListPrefix::All).collect().await;
    let mut keys = Vec::new();
    let mut invalid = Vec::new();
    for result in results {
        match result {
            Ok(entry) => keys.push(entry.key),
            Err(StorageError::InvalidKey { path, .. }) => invalid.push(path),
            Err(e) => panic!("unexpected listing error: {e}"),
        }
    }
    assert_eq!(keys, vec![key.clone()]);
    assert_eq!(invalid, vec!["example.com/m/@v/notes.txt".to_string()]);
    let of_module: Vec<_> = store
        .list(&ListPrefix::Module(module("example.com/m")))
        .collect()
        .await;
    assert_eq!(of_module.len(), 2, "{of_module:?}");

    for name in [notes, reserved, sibling] {
        raw.delete(&Path::parse(&name).unwrap()).await.unwrap();
    }
    store.delete(&key).await.unwrap();
}

#[tokio::test]
async fn check_leaves_no_probe_behind_and_an_empty_prefix_works() {
    let Some(server) = common::server() else {
        return;
    };
    let prefix = random_prefix("check");
    let store = open(&server, server.options(&format!("/{prefix}/nested/"))).await;
    assert_eq!(store.key_prefix(), format!("{prefix}/nested"));
    store.check().await.unwrap();
    store.check().await.unwrap();
    assert_eq!(server.raw_names(&prefix).await, Vec::<String>::new());

    // Without a prefix, keys sit at the top of the bucket.
    let top = open(&server, server.options("")).await;
    let key = zip_key(&format!("example.com/{prefix}"), "v1.0.0");
    top.put_bytes(&key, Bytes::from_static(b"top"))
        .await
        .unwrap();
    assert_eq!(top.object_name(&key), key.path());
    assert_eq!(
        server.raw_names(&format!("example.com/{prefix}")).await,
        vec![key.path()]
    );
    let listed = listed_keys(
        &top,
        &ListPrefix::Module(module(&format!("example.com/{prefix}"))),
    )
    .await;
    assert_eq!(listed, BTreeSet::from([key.path()]));
    top.delete(&key).await.unwrap();
    assert!(top.head(&key).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn debug_output_hides_the_secret() {
    let Some(server) = common::server() else {
        return;
    };
    let store = open(&server, server.options("debug")).await;
    let shown = format!("{store:?}");
    assert!(
        shown.contains(&server.bucket) && shown.contains(&server.endpoint),
        "{shown}"
    );
    assert!(!shown.contains(&server.secret_key), "{shown}");
}

/// Runs `op` and checks that it fails with a connection error within `limit`.
async fn fails_fast<T: std::fmt::Debug>(
    what: &str,
    limit: Duration,
    op: impl std::future::Future<Output = Result<T, StorageError>>,
) {
    let started = Instant::now();
    let result = tokio::time::timeout(limit * 2, op)
        .await
        .unwrap_or_else(|_| panic!("{what} hung for {:?} with the server down", limit * 2));
    let elapsed = started.elapsed();
    let err = result.expect_err(&format!("{what} succeeded with the server down"));
    assert!(
        !err.is_not_found(),
        "{what}: a down server reported as a miss: {err}"
    );
    let kind = s3_error(&err).kind();
    assert!(
        matches!(kind, S3ErrorKind::Connection | S3ErrorKind::Timeout),
        "{what}: {kind:?}: {err}"
    );
    assert!(elapsed < limit, "{what} took {elapsed:?} to fail");
    eprintln!("outage: {what} failed in {elapsed:.1?}: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_a_backend_error_and_the_store_recovers() {
    // Gated like the others, but on a server of its own that it can stop and start.
    if common::server().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let own = OwnServer::start(dir.path(), 0);
    let server = own.server.clone();
    let prefix = random_prefix("outage");
    let options = S3Options {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
        max_retries: 2,
        retry_timeout: Duration::from_secs(3),
        ..server.options(&prefix)
    };
    let store = open(&server, options).await;
    let key = zip_key("example.com/Outage", "v1.0.0+incompatible");
    let body = deterministic(100_000, 5);
    store.put_bytes(&key, body.clone()).await.unwrap();
    // The object is where the layout says, on the server's disk (s3s-fs keeps a file there,
    // MinIO a directory).
    let on_disk = dir
        .path()
        .join("data")
        .join(&server.bucket)
        .join(store.object_name(&key));
    assert!(on_disk.exists(), "{} does not exist", on_disk.display());

    own.stop();
    let limit = Duration::from_secs(10);
    fails_fast("get", limit, store.get(&key)).await;
    fails_fast("head", limit, store.head(&key)).await;
    fails_fast(
        "put",
        limit,
        store.put_bytes(&key, Bytes::from_static(b"new")),
    )
    .await;
    let streamed = PutPayload::Stream {
        stream: stream_of(deterministic(9 * MIB, 6), None),
        length: Some(9 * MIB as u64),
    };
    fails_fast("streamed put", limit, store.put(&key, streamed)).await;
    fails_fast("delete", limit, store.delete(&key)).await;
    fails_fast("check", limit, store.check()).await;
    let started = Instant::now();
    let listed: Vec<_> = store.list(&ListPrefix::All).collect().await;
    assert!(
        started.elapsed() < limit,
        "list took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(listed.as_slice(), [Err(e)] if s3_error(e).kind() == S3ErrorKind::Connection),
        "{listed:?}"
    );

    // Back on the same port with the same data: the same store object works again.
    let again = OwnServer::start(dir.path(), own.port);
    assert_eq!(again.server.endpoint, server.endpoint);
    store.check().await.unwrap();
    assert_eq!(store.get_bytes(&key, 1 << 20).await.unwrap().1, body);
    let replaced = deterministic(6 * MIB + 1, 7);
    store
        .put(
            &key,
            PutPayload::Stream {
                stream: stream_of(replaced.clone(), None),
                length: Some(replaced.len() as u64),
            },
        )
        .await
        .unwrap();
    assert_eq!(store.get_bytes(&key, 1 << 30).await.unwrap().1, replaced);
    assert_eq!(
        listed_keys(&store, &ListPrefix::All).await,
        BTreeSet::from([key.path()])
    );
    drop(again);
    drop(own);
}
