//! Incremental bundles: `export --since` carries only what is new, a bundle names the one it
//! follows, and an import applies a chain in order only — refusing a gap with the name of the
//! missing bundle — and is idempotent.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use gomod::ModulePath;
use gomodproxy_bundle::{
    BundleError, ExportOptions, ExportReport, ImportReport, ImportSource, NoProgress, read_since,
    side_manifest_path,
};
use gomodproxy_storage::{ArtifactKind, Key, Storage, StorageExt};

use crate::support::*;

async fn export_file(store: &dyn Storage, path: &Path, since: Option<&Path>) -> ExportReport {
    let options = ExportOptions {
        since: since.map(|p| read_since(p).unwrap()),
        ..ExportOptions::default()
    };
    gomodproxy_bundle::export_to_path(store, &options, path, &NoProgress)
        .await
        .unwrap()
}

async fn import_file(
    store: &dyn Storage,
    path: &Path,
    fx: &Fixture,
) -> Result<ImportReport, BundleError> {
    gomodproxy_bundle::import(
        store,
        ImportSource::open(path).unwrap(),
        &fx.import_options(),
        &NoProgress,
    )
    .await
}

fn broken_chain(got: Result<ImportReport, BundleError>, missing: &str) {
    match got {
        Err(e @ BundleError::BrokenChain { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("import {missing} first")),
                "the error does not name {missing}: {msg}"
            );
        }
        other => panic!("imported out of order: {other:?}"),
    }
}

#[tokio::test]
async fn a_chain_of_incremental_bundles_applies_in_order_only_and_twice_changes_nothing() {
    let fx = Fixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| -> PathBuf { dir.path().join(name) };
    let full = snapshot(fx.store.as_ref()).await;

    // Generation 1: a full bundle.
    let gen1 = export_file(fx.store.as_ref(), &path("gen1.tar.zst"), None).await;
    assert_eq!(gen1.objects, full.len() as u64);
    let id1 = gen1.manifest.as_ref().unwrap().id.clone();
    assert!(gen1.manifest.as_ref().unwrap().follows.is_none());

    // Generation 2: a new version of a module (immutable objects) and its list (mutable),
    // since the manifest written beside generation 1.
    let new = Published::new("corp.example/private", "v1.1.0", "package private // 1.1\n");
    for (kind, body) in [
        (ArtifactKind::Info, Bytes::from(new.info())),
        (ArtifactKind::Mod, Bytes::from(new.go_mod.clone())),
        (ArtifactKind::Zip, new.zip.clone()),
        (ArtifactKind::ZipHash, Bytes::from(new.zip_h1())),
    ] {
        fx.store.put_bytes(&new.key(kind), body).await.unwrap();
    }
    let private = ModulePath::parse("corp.example/private").unwrap();
    fx.store
        .put_bytes(
            &Key::List {
                module: private.clone(),
            },
            Bytes::from("v1.0.0\nv1.1.0\n"),
        )
        .await
        .unwrap();
    let side1 = side_manifest_path(&path("gen1.tar.zst"));
    let gen2 = export_file(fx.store.as_ref(), &path("gen2.tar.zst"), Some(&side1)).await;
    assert_eq!(gen2.objects, 5, "4 artifacts and a list");
    assert_eq!(
        gen2.unchanged,
        full.len() as u64 - 1,
        "all but the old list"
    );
    let m2 = gen2.manifest.clone().unwrap();
    assert_eq!(m2.follows.as_ref().unwrap().id, id1);
    assert_eq!(m2.follows.as_ref().unwrap().name, "gen1.tar.zst");

    // Generation 3: only `@latest` changed; since the bundle file of generation 2 itself.
    fx.store
        .put_bytes(
            &Key::Latest { module: private },
            Bytes::from("{\"Version\":\"v1.1.0\"}"),
        )
        .await
        .unwrap();
    let gen3 = export_file(
        fx.store.as_ref(),
        &path("gen3.tar.zst"),
        Some(&path("gen2.tar.zst")),
    )
    .await;
    assert_eq!(gen3.objects, 1);
    // Nothing new at all: an empty increment, which still chains.
    let gen4 = export_file(
        fx.store.as_ref(),
        &path("gen4.tar.zst"),
        Some(&path("gen3.tar.zst")),
    )
    .await;
    assert_eq!(gen4.objects, 0);

    let (_d, store) = fresh().await;
    // A gap: generation 2 without generation 1; nothing of it is imported.
    broken_chain(
        import_file(store.as_ref(), &path("gen2.tar.zst"), &fx).await,
        "gen1.tar.zst",
    );
    assert!(snapshot(store.as_ref()).await.is_empty());

    let r1 = import_file(store.as_ref(), &path("gen1.tar.zst"), &fx)
        .await
        .unwrap();
    assert!(r1.ok() && r1.recorded, "{:?}", r1.refused);
    // Out of order: generation 3 before 2.
    broken_chain(
        import_file(store.as_ref(), &path("gen3.tar.zst"), &fx).await,
        "gen2.tar.zst",
    );
    let r2 = import_file(store.as_ref(), &path("gen2.tar.zst"), &fx)
        .await
        .unwrap();
    assert!(r2.ok() && r2.recorded, "{:?}", r2.refused);
    assert_eq!(r2.imported, 5);
    // Twice: nothing changes, and the chain goes on.
    let again = import_file(store.as_ref(), &path("gen2.tar.zst"), &fx)
        .await
        .unwrap();
    assert!(again.ok() && !again.recorded, "{:?}", again.refused);
    assert_eq!((again.imported, again.already), (0, 5));
    for name in ["gen3.tar.zst", "gen4.tar.zst", "gen3.tar.zst"] {
        let r = import_file(store.as_ref(), &path(name), &fx).await.unwrap();
        assert!(r.ok(), "{name}: {:?}", r.refused);
    }
    assert_eq!(
        snapshot(store.as_ref()).await,
        snapshot(fx.store.as_ref()).await,
        "the chain gives the connected store's objects"
    );
}

#[tokio::test]
async fn since_a_file_that_is_no_bundle_manifest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("notes.json");
    std::fs::write(&junk, b"{\"hello\": 1}").unwrap();
    let err = read_since(&junk).unwrap_err().to_string();
    assert!(err.contains("neither a bundle nor the manifest"), "{err}");
}
