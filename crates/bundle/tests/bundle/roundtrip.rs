//! Export, then import into fresh stores of two backends: the same objects, byte for byte.

use gomodproxy_bundle::{
    ExportOptions, INVENTORY_NAME, ImportSource, MANIFEST_NAME, Manifest, NoProgress, VerifyOptions,
};
use gomodproxy_storage::Storage;

use crate::support::*;

#[tokio::test]
async fn export_then_import_into_fs_and_sled_gives_identical_objects() {
    let fx = Fixture::new().await;
    let source = snapshot(fx.store.as_ref()).await;
    let bundle = fx.export(&ExportOptions::default()).await;

    // The layout: manifest first, sumdb next, then artifacts with .ziphash before .zip.
    let names: Vec<String> = entries(&bundle).into_iter().map(|(p, _)| p).collect();
    assert_eq!(names[0], MANIFEST_NAME);
    assert_eq!(names[1], INVENTORY_NAME);
    assert_eq!(names.len(), source.len() + 2);
    let first_artifact = 2 + names[2..]
        .iter()
        .position(|n| !n.starts_with("sumdb/"))
        .unwrap();
    assert!(first_artifact > 2);
    assert!(
        names[2..first_artifact]
            .iter()
            .all(|n| n.starts_with("sumdb/"))
    );
    assert!(
        names[first_artifact + 1..]
            .iter()
            .all(|n| !n.starts_with("sumdb/"))
    );
    let zh = names
        .iter()
        .position(|n| n == "example.com/a/@v/v1.0.0.ziphash")
        .unwrap();
    assert_eq!(names[zh + 1], "example.com/a/@v/v1.0.0.zip");
    assert!(names.contains(&"github.com/!upper/m/@v/v1.0.0.zip".to_string()));
    let manifest: Manifest = serde_json::from_slice(&entries(&bundle)[0].1).unwrap();
    assert_eq!(manifest.objects, source.len() as u64);
    assert_eq!(
        manifest.bytes,
        source.values().map(|b| b.len() as u64).sum::<u64>()
    );
    assert_eq!(manifest.counts["zip"], 5);
    assert_eq!(manifest.counts["sumdb-lookup"], 4);
    assert_eq!(manifest.selection, "everything");

    let dir = tempfile::tempdir().unwrap();
    let fs = fs_store(&dir.path().join("fs"));
    let sled = sled_store(&dir.path().join("sled"));
    for store in [fs.clone() as std::sync::Arc<dyn Storage>, sled.clone()] {
        let report = import_bytes(store.as_ref(), bundle.clone(), &fx.import_options()).await;
        assert!(report.ok(), "{:?}", report.refused);
        assert_eq!(report.imported, source.len() as u64, "{report:?}");
        assert_eq!(report.already, 0);
        assert_eq!(report.skipped, 0);
        assert_eq!(report.manifest.as_ref(), Some(&manifest));
        assert_eq!(snapshot(store.as_ref()).await, source);

        // A second import finds everything there.
        let again = import_bytes(store.as_ref(), bundle.clone(), &fx.import_options()).await;
        assert!(again.ok(), "{:?}", again.refused);
        assert_eq!(again.imported, 0, "{again:?}");
        assert_eq!(again.already, source.len() as u64);
        assert_eq!(snapshot(store.as_ref()).await, source);

        // And the result verifies.
        let verified = gomodproxy_bundle::verify(
            store.as_ref(),
            &VerifyOptions {
                sumdbs: fx.import_options().sumdbs,
                ..VerifyOptions::default()
            },
            &NoProgress,
        )
        .await
        .unwrap();
        assert!(verified.ok(), "{:?}", verified.problems);
        assert_eq!(verified.zips, 5);
        assert_eq!(verified.records, 4);
        assert_eq!(verified.tiles, fx.log.tiles().len() as u64);
        assert_eq!(verified.trees, 1);
    }
}

#[tokio::test]
async fn export_to_a_file_then_import_the_file_and_a_directory() {
    let fx = Fixture::new().await;
    let source = snapshot(fx.store.as_ref()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.tar.zst");
    let report = gomodproxy_bundle::export_to_path(
        fx.store.as_ref(),
        &ExportOptions::default(),
        &file,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(report.objects, source.len() as u64);
    assert_eq!(report.written, std::fs::metadata(&file).unwrap().len());
    // Nothing but the bundle and the manifest beside it is left in the directory.
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["out.tar.zst", "out.tar.zst.manifest.json"]);

    let target = fs_store(&dir.path().join("a"));
    let imported = gomodproxy_bundle::import(
        target.as_ref(),
        ImportSource::open(&file).unwrap(),
        &fx.import_options(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert!(imported.ok(), "{:?}", imported.refused);
    assert_eq!(snapshot(target.as_ref()).await, source);

    // The fs store's root is a GOPROXY-layout directory: importing it gives the same objects,
    // and its temporary directory is skipped.
    let other = fs_store(&dir.path().join("b"));
    let from_dir = gomodproxy_bundle::import(
        other.as_ref(),
        ImportSource::open(&fx.dir.path().join("store")).unwrap(),
        &fx.import_options(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert!(from_dir.ok(), "{:?}", from_dir.refused);
    assert_eq!(from_dir.imported, source.len() as u64);
    assert!(from_dir.manifest.is_none());
    assert_eq!(snapshot(other.as_ref()).await, source);
}

#[tokio::test]
async fn a_truncated_or_foreign_file_is_an_error() {
    let fx = Fixture::new().await;
    let bundle = fx.export(&ExportOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = fs_store(dir.path());

    let truncated = bundle[..bundle.len() - 100].to_vec();
    let err = gomodproxy_bundle::import(
        store.as_ref(),
        ImportSource::Bundle {
            name: "cut.bundle".into(),
            reader: Box::new(std::io::Cursor::new(truncated)),
        },
        &fx.import_options(),
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("cut.bundle"), "{err}");

    let err = gomodproxy_bundle::import(
        store.as_ref(),
        ImportSource::Bundle {
            name: "x.zip".into(),
            reader: Box::new(std::io::Cursor::new(fx.modules[0].zip.to_vec())),
        },
        &fx.import_options(),
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("not a readable gomodproxy bundle"),
        "{err}"
    );

    // A tar without the manifest first is refused as a whole.
    let no_manifest = rewrite(&bundle, |p, b| (p != MANIFEST_NAME).then_some(b));
    let err = import_bytes_err(store.as_ref(), no_manifest, &fx).await;
    assert!(err.contains(MANIFEST_NAME), "{err}");
}

async fn import_bytes_err(store: &dyn Storage, bundle: Vec<u8>, fx: &Fixture) -> String {
    gomodproxy_bundle::import(
        store,
        ImportSource::Bundle {
            name: "b".into(),
            reader: Box::new(std::io::Cursor::new(bundle)),
        },
        &fx.import_options(),
        &NoProgress,
    )
    .await
    .unwrap_err()
    .to_string()
}
