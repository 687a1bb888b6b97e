//! Issue 9: with `sumdb.verify` on, import applies the serving rule — an artifact of a module
//! that is not `private` needs a checksum-database record that proves it (in the bundle or the
//! store); a missing record is a refusal, not a pass.

use gomodproxy_bundle::{ExportOptions, ImportOptions};

use crate::support::*;

/// `bundle` with `extra` entries appended (artifacts after everything else: bundle order).
fn append(bundle: &[u8], extra: &[(String, Vec<u8>)]) -> Vec<u8> {
    bundle_of(entries(bundle).into_iter().chain(extra.iter().cloned()))
}

/// The bundle of the issue: a made-up `v0.99.0` of a public module, and a public version whose
/// record was dropped and whose zip and go.mod were replaced.
async fn hostile_bundle(fx: &Fixture) -> Vec<u8> {
    let bundle = fx.export(&ExportOptions::default()).await;
    // example.com/b@v0.1.0: its lookup removed, its .mod and zip swapped for evil ones.
    let evil_mod = "module example.com/b\n\nrequire evil.example/x v1.0.0\n";
    let evil_zip = make_zip(
        "example.com/b",
        "v0.1.0",
        &[
            ("go.mod", evil_mod.as_bytes()),
            ("b.go", b"package b // evil\n"),
        ],
    );
    let evil_h1 = zip_h1("example.com/b", "v0.1.0", &evil_zip);
    let lookup = format!("sumdb/{DB}/lookup/example.com/b@v0.1.0");
    let bundle = rewrite(&bundle, |p, b| {
        if p == lookup {
            return None;
        }
        Some(match p {
            "example.com/b/@v/v0.1.0.mod" => evil_mod.as_bytes().to_vec(),
            "example.com/b/@v/v0.1.0.zip" => evil_zip.to_vec(),
            "example.com/b/@v/v0.1.0.ziphash" => evil_h1.clone().into_bytes(),
            _ => b,
        })
    });
    let made_up = "module example.com/a\n";
    let zip = make_zip(
        "example.com/a",
        "v0.99.0",
        &[("go.mod", made_up.as_bytes()), ("a.go", b"package a\n")],
    );
    append(
        &bundle,
        &[
            (
                "example.com/a/@v/v0.99.0.info".to_string(),
                br#"{"Version":"v0.99.0","Time":"2030-01-01T00:00:00Z"}"#.to_vec(),
            ),
            (
                "example.com/a/@v/v0.99.0.mod".to_string(),
                made_up.as_bytes().to_vec(),
            ),
            (
                "example.com/a/@v/v0.99.0.ziphash".to_string(),
                zip_h1("example.com/a", "v0.99.0", &zip).into_bytes(),
            ),
            ("example.com/a/@v/v0.99.0.zip".to_string(), zip.to_vec()),
        ],
    )
}

#[tokio::test]
async fn unproven_public_artifacts_are_refused_with_verify_on() {
    let fx = Fixture::new().await;
    let bundle = hostile_bundle(&fx).await;
    let (_dir, store) = fresh().await;
    let options = ImportOptions {
        verify: true,
        private: vec!["corp.example".to_string()],
        ..fx.import_options()
    };
    let report = import_bytes(store.as_ref(), bundle, &options).await;
    assert!(!report.ok());
    let refused = refused(&report);
    for path in [
        "example.com/a/@v/v0.99.0.info",
        "example.com/a/@v/v0.99.0.mod",
        "example.com/a/@v/v0.99.0.zip",
        "example.com/a/@v/v0.99.0.ziphash",
        "example.com/b/@v/v0.1.0.info",
        "example.com/b/@v/v0.1.0.mod",
        "example.com/b/@v/v0.1.0.zip",
        "example.com/b/@v/v0.1.0.ziphash",
    ] {
        assert!(
            refused.contains(&path.to_string()),
            "{path} not refused: {refused:?}"
        );
        assert!(!stored(store.as_ref(), path).await, "{path} stored");
    }
    let why = &report
        .refused
        .iter()
        .find(|p| p.path == "example.com/a/@v/v0.99.0.zip")
        .unwrap()
        .reason;
    assert!(why.contains("no checksum-database record proves"), "{why}");
    // Proven public versions and the private module are imported.
    for path in [
        "example.com/a/@v/v1.0.0.zip",
        "example.com/a/@v/v1.1.0.mod",
        "corp.example/private/@v/v1.0.0.zip",
        "corp.example/private/@v/v1.0.0.info",
    ] {
        assert!(stored(store.as_ref(), path).await, "{path} not stored");
    }
}

#[tokio::test]
async fn a_record_already_in_the_store_proves_an_artifact() {
    let fx = Fixture::new().await;
    // The store has every record (a first import); a second bundle with the artifacts of one
    // version and no checksum-database objects at all is then accepted.
    let full = fx.export(&ExportOptions::default()).await;
    let (_dir, store) = fresh().await;
    let options = ImportOptions {
        verify: true,
        private: vec!["corp.example".to_string()],
        ..fx.import_options()
    };
    let manifest = "gomodproxy-bundle.json";
    let only_records = rewrite(&full, |p, b| {
        (p == manifest || p.starts_with("sumdb/")).then_some(b)
    });
    assert!(
        import_bytes(store.as_ref(), only_records, &options)
            .await
            .ok()
    );
    let only_artifacts = rewrite(&full, |p, b| (!p.starts_with("sumdb/")).then_some(b));
    let report = import_bytes(store.as_ref(), only_artifacts, &options).await;
    assert!(report.ok(), "{:?}", report.refused);
    assert!(stored(store.as_ref(), "example.com/b/@v/v0.1.0.zip").await);
}

#[tokio::test]
async fn without_verify_the_library_default_imports_unproven_artifacts() {
    // The library's default stays what it was (callers that do not verify); the command sets
    // `verify` from `sumdb.verify`.
    let fx = Fixture::new().await;
    let bundle = hostile_bundle(&fx).await;
    let (_dir, store) = fresh().await;
    let report = import_bytes(store.as_ref(), bundle, &fx.import_options()).await;
    assert!(
        stored(store.as_ref(), "example.com/a/@v/v0.99.0.zip").await,
        "{:?}",
        report.refused
    );
}
