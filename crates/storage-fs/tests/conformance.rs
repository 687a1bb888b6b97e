//! The filesystem backend against the shared conformance suite, plus what only a filesystem can
//! get wrong: temporary files left by crashes or cancelled saves, the on-disk layout, and errors
//! of a damaged tree.

use std::path::Path;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use gomod::{ModulePath, Version};
use gomodproxy_storage::conformance::{Capabilities, run_all};
use gomodproxy_storage::{
    ArtifactKind, Key, ListPrefix, PutPayload, Storage, StorageError, StorageExt,
};
use gomodproxy_storage_fs::{FsStorage, STALE_TEMP_AGE, TEMP_DIR};

fn key(module: &str, version: &str, kind: ArtifactKind) -> Key {
    Key::artifact(
        &ModulePath::parse(module).unwrap(),
        &Version::parse(version).unwrap(),
        kind,
    )
}

fn temp_files(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join(TEMP_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

async fn list_all(store: &FsStorage) -> Vec<Key> {
    store
        .list(&ListPrefix::All)
        .map(|e| e.unwrap().key)
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = FsStorage::open(&root).unwrap();
    run_all(&store, Capabilities::default()).await;
    // Failed and racing saves in the suite must not leak temporary files.
    assert_eq!(
        temp_files(&root),
        Vec::<String>::new(),
        "temporary files left after the suite"
    );
}

/// The memory cache the server puts in front of every backend keeps the contract too, and keeps
/// zips out of memory (the RSS bound is enforced).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_behind_the_memory_cache_passes_the_conformance_suite() {
    use gomodproxy_storage::cache::{MemoryCache, MemoryCacheOptions};
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryCache::new(
        FsStorage::open(dir.path()).unwrap(),
        MemoryCacheOptions::default(),
    );
    run_all(&store, Capabilities::default()).await;
}

#[tokio::test]
async fn leftover_temp_files_are_invisible_and_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let store = FsStorage::open(root).unwrap();
    let k = key("example.com/crashed", "v1.0.0", ArtifactKind::Zip);
    store
        .put_bytes(&k, Bytes::from_static(b"complete body"))
        .await
        .unwrap();

    // What a process killed mid-save leaves: a partial temporary file, here one that looks like
    // an overwrite of `k` in progress, and one left long ago.
    let tmp = root.join(TEMP_DIR);
    std::fs::write(tmp.join("4242-1-0.tmp"), b"partial bo").unwrap();
    let old = tmp.join("4242-0-0.tmp");
    std::fs::write(&old, b"partial from an earlier crash").unwrap();
    let two_hours_ago = SystemTime::now() - STALE_TEMP_AGE - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    // Even a key-shaped tree under .tmp must never be listed.
    let shaped = tmp.join("example.com/crashed/@v");
    std::fs::create_dir_all(&shaped).unwrap();
    std::fs::write(shaped.join("v9.9.9.zip"), b"x").unwrap();

    assert_eq!(list_all(&store).await, vec![k.clone()]);
    let (meta, body) = store.get_bytes(&k, 1 << 20).await.unwrap();
    assert_eq!((meta.size, &body[..]), (13, &b"complete body"[..]));
    store.check().await.unwrap();
    store
        .put_bytes(&k, Bytes::from_static(b"new body"))
        .await
        .unwrap();
    assert_eq!(
        &store.get_bytes(&k, 1 << 20).await.unwrap().1[..],
        b"new body"
    );

    // A restart removes only the stale file: a young one may be another replica's save.
    let reopened = FsStorage::open(root).unwrap();
    let mut left = temp_files(root);
    left.sort();
    assert_eq!(
        left,
        vec!["4242-1-0.tmp".to_string(), "example.com".to_string()]
    );
    assert_eq!(list_all(&reopened).await, vec![k.clone()]);
    assert_eq!(
        &reopened.get_bytes(&k, 1 << 20).await.unwrap().1[..],
        b"new body"
    );
}

#[tokio::test]
async fn a_dropped_put_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStorage::open(dir.path()).unwrap();
    let k = key("example.com/cancelled", "v1.0.0", ArtifactKind::Zip);
    store
        .put_bytes(&k, Bytes::from_static(b"previous"))
        .await
        .unwrap();

    // A client that goes away mid-upload: the payload stalls, the put future is dropped.
    let stalled = futures::stream::iter([Ok(Bytes::from(vec![7u8; 300_000]))])
        .chain(futures::stream::pending())
        .boxed();
    let put = store.put(
        &k,
        PutPayload::Stream {
            stream: stalled,
            length: Some(1_000_000),
        },
    );
    let result = tokio::time::timeout(Duration::from_millis(300), put).await;
    assert!(result.is_err(), "the stalled put should still be pending");

    assert_eq!(
        temp_files(dir.path()),
        Vec::<String>::new(),
        "the dropped put left its temporary file"
    );
    assert_eq!(
        &store.get_bytes(&k, 1 << 20).await.unwrap().1[..],
        b"previous"
    );
}

#[tokio::test]
async fn failed_puts_remove_their_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStorage::open(dir.path()).unwrap();
    let k = key("example.com/failed", "v1.0.0", ArtifactKind::Mod);
    let short = futures::stream::iter([Ok(Bytes::from_static(b"abc"))]).boxed();
    let err = store
        .put(
            &k,
            PutPayload::Stream {
                stream: short,
                length: Some(4),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::LengthMismatch {
                expected: 4,
                actual: 3,
                ..
            }
        ),
        "{err:?}"
    );
    let failing = futures::stream::iter([
        Ok(Bytes::from_static(b"abc")),
        Err(std::io::Error::other("boom")),
    ])
    .boxed();
    let err = store
        .put(
            &k,
            PutPayload::Stream {
                stream: failing,
                length: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Payload { .. }), "{err:?}");
    assert_eq!(temp_files(dir.path()), Vec::<String>::new());
    assert!(store.exists(&k).await.unwrap().is_none());
}

#[tokio::test]
async fn files_are_laid_out_like_a_goproxy() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStorage::open(dir.path()).unwrap();
    let module = ModulePath::parse("example.com/Upper/Case").unwrap();
    store
        .put_bytes(
            &key("example.com/Upper/Case", "v1.0.0-RC1", ArtifactKind::Mod),
            Bytes::from_static(b"module m\n"),
        )
        .await
        .unwrap();
    store
        .put_bytes(
            &Key::List {
                module: module.clone(),
            },
            Bytes::from_static(b"v1.0.0-RC1\n"),
        )
        .await
        .unwrap();
    store
        .put_bytes(&Key::Latest { module }, Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let base = dir.path().join("example.com/!upper/!case");
    assert_eq!(
        std::fs::read(base.join("@v/v1.0.0-!r!c1.mod")).unwrap(),
        b"module m\n"
    );
    assert_eq!(
        std::fs::read(base.join("@v/list")).unwrap(),
        b"v1.0.0-RC1\n"
    );
    assert_eq!(std::fs::read(base.join("@latest")).unwrap(), b"{}");
}

#[tokio::test]
async fn foreign_files_are_skipped_when_listing() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStorage::open(dir.path()).unwrap();
    let k = key("example.com/m", "v1.0.0", ArtifactKind::Info);
    store
        .put_bytes(&k, Bytes::from_static(b"{}"))
        .await
        .unwrap();
    std::fs::write(dir.path().join("README"), b"not a key").unwrap();
    std::fs::write(dir.path().join("example.com/m/@v/notes.txt"), b"not a key").unwrap();
    std::fs::write(
        dir.path().join("example.com/m/@v/.hidden.mod"),
        b"not a key",
    )
    .unwrap();
    assert_eq!(list_all(&store).await, vec![k.clone()]);
    let module: Vec<Key> = store
        .list(&ListPrefix::Module(k.module().unwrap().clone()))
        .map(|e| e.unwrap().key)
        .collect()
        .await;
    assert_eq!(module, vec![k]);
}

#[tokio::test]
async fn a_damaged_tree_is_a_backend_error_not_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStorage::open(dir.path()).unwrap();
    // A file where the module's directory should be.
    std::fs::create_dir_all(dir.path().join("example.com")).unwrap();
    std::fs::write(dir.path().join("example.com/blocked"), b"").unwrap();
    let k = key("example.com/blocked", "v1.0.0", ArtifactKind::Mod);
    let err = store.get(&k).await.unwrap_err();
    assert!(
        matches!(err, StorageError::Backend { store: "fs", .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("example.com/blocked"),
        "no path in: {err}"
    );
    let err = store
        .put_bytes(&k, Bytes::from_static(b"module m\n"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::Backend { store: "fs", .. }),
        "{err:?}"
    );
    assert_eq!(temp_files(dir.path()), Vec::<String>::new());
}

#[tokio::test]
async fn check_leaves_no_probe_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStorage::open(dir.path()).unwrap();
    store.check().await.unwrap();
    assert_eq!(temp_files(dir.path()), Vec::<String>::new());
    assert!(list_all(&store).await.is_empty());
}

#[tokio::test]
async fn temp_files_of_dead_processes_are_swept_at_start() {
    // Issue 9: after kill -9, temporary files stayed for an hour and piled up across crashes.
    use gomodproxy_storage_fs::OWNERS_DIR;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let live = FsStorage::open(root).unwrap();
    let owners = |root: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(root.join(OWNERS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let live_owner = owners(root)[0].clone();
    let live_id = live_owner
        .strip_prefix("owner-")
        .and_then(|n| n.strip_suffix(".lock"))
        .unwrap()
        .to_string();
    // What a killed process leaves: its owner file (no one holds its lock any more) and young
    // temporary files named after it.
    std::fs::write(root.join(OWNERS_DIR).join("owner-odead.lock"), b"").unwrap();
    std::fs::write(root.join(TEMP_DIR).join("odead-0.tmp"), b"partial").unwrap();
    std::fs::write(root.join(TEMP_DIR).join("odead-1.tmp"), b"partial").unwrap();
    // A save in progress of the live store, and a leftover of no known owner.
    std::fs::write(
        root.join(TEMP_DIR).join(format!("{live_id}-9.tmp")),
        b"in progress",
    )
    .unwrap();
    std::fs::write(root.join(TEMP_DIR).join("4242-1-0.tmp"), b"unknown").unwrap();

    let second = FsStorage::open(root).unwrap();
    let mut left = temp_files(root);
    left.sort();
    assert_eq!(
        left,
        vec!["4242-1-0.tmp".to_string(), format!("{live_id}-9.tmp")]
    );
    let now = owners(root);
    assert!(!now.contains(&"owner-odead.lock".to_string()), "{now:?}");
    assert!(now.contains(&live_owner), "{now:?}");
    assert_eq!(now.len(), 2, "the live store and the second one: {now:?}");
    // Closed cleanly, a store leaves no owner file behind.
    drop(second);
    drop(live);
    assert_eq!(owners(root), Vec::<String>::new());
}

#[tokio::test]
async fn a_file_changed_on_disk_is_damaged_not_served() {
    // Issue 9: a stored zip corrupted on disk was served with 200.
    use gomodproxy_storage_fs::FsOptions;
    let dir = tempfile::tempdir().unwrap();
    let store = FsStorage::open(dir.path()).unwrap();
    let k = key("example.com/m", "v1.0.0", ArtifactKind::Zip);
    store
        .put_bytes(&k, Bytes::from(vec![7u8; 10_000]))
        .await
        .unwrap();
    let file = dir.path().join(k.path());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(4_000)
        .unwrap();
    match store.get(&k).await {
        Err(StorageError::Corrupt { key, reason }) => {
            assert_eq!(key, k.path());
            assert!(
                reason.contains("4000") && reason.contains("10000"),
                "{reason}"
            );
            assert!(!reason.contains(dir.path().to_str().unwrap()), "{reason}");
        }
        other => panic!("expected Corrupt, got {:?}", other.map(|g| g.meta)),
    }
    // Extended is damage too.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(12_000)
        .unwrap();
    assert!(matches!(
        store.get(&k).await,
        Err(StorageError::Corrupt { .. })
    ));
    // A new save replaces the damaged copy.
    store
        .put_bytes(&k, Bytes::from(vec![1u8; 5]))
        .await
        .unwrap();
    assert_eq!(store.get_bytes(&k, 100).await.unwrap().1.len(), 5);
    // The check can be turned off.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(3)
        .unwrap();
    let unchecked = FsStorage::open_with(FsOptions {
        root: dir.path().to_path_buf(),
        verify_size_on_read: false,
    })
    .unwrap();
    assert_eq!(unchecked.get_bytes(&k, 100).await.unwrap().1.len(), 3);
}
