//! Tampered bundles: every bad object is refused, nothing is stored for it, and the report says
//! so (a non-zero exit for the command).

use bytes::Bytes;
use gomodproxy_bundle::ExportOptions;
use gomodproxy_storage::{ArtifactKind, StorageExt};

use crate::support::*;

const A: &str = "example.com/a";

#[tokio::test]
async fn a_changed_zip_is_refused_with_or_without_a_matching_ziphash() {
    let fx = Fixture::new().await;
    let bundle = fx.export(&ExportOptions::default()).await;
    let a = fx.module(A, "v1.0.0");
    // The same files, one byte of content changed: a valid module zip.
    let evil = make_zip(
        A,
        "v1.0.0",
        &[("go.mod", a.go_mod.as_bytes()), ("m.go", b"package b\n")],
    );
    let evil_h1 = zip_h1(A, "v1.0.0", &evil);
    assert_ne!(evil_h1, a.zip_h1());
    let zip = "example.com/a/@v/v1.0.0.zip";
    let ziphash = "example.com/a/@v/v1.0.0.ziphash";

    // Only the zip replaced: it does not match the bundle's .ziphash.
    let tampered = rewrite(&bundle, |p, b| {
        Some(if p == zip { evil.to_vec() } else { b })
    });
    let (_d, store) = fresh().await;
    let report = import_bytes(store.as_ref(), tampered, &fx.import_options()).await;
    assert!(!report.ok());
    assert_eq!(refused(&report), [zip, ziphash], "{:?}", report.refused);
    assert!(
        report.refused[0].reason.contains(".ziphash"),
        "{:?}",
        report.refused
    );
    assert!(!stored(store.as_ref(), zip).await);
    assert!(!stored(store.as_ref(), ziphash).await);
    // The rest of the bundle is imported.
    assert!(stored(store.as_ref(), "example.com/a/@v/v1.0.0.mod").await);
    assert!(stored(store.as_ref(), "example.com/a/@v/v1.1.0.zip").await);

    // The .ziphash rewritten to match: the checksum database's record still catches it.
    let tampered = rewrite(&bundle, |p, b| {
        Some(match p {
            p if p == zip => evil.to_vec(),
            p if p == ziphash => evil_h1.clone().into_bytes(),
            _ => b,
        })
    });
    let (_d, store) = fresh().await;
    let report = import_bytes(store.as_ref(), tampered, &fx.import_options()).await;
    assert_eq!(refused(&report), [zip, ziphash], "{:?}", report.refused);
    let why = &report
        .refused
        .iter()
        .find(|p| p.path == zip)
        .unwrap()
        .reason;
    assert!(
        why.contains("checksum database") && why.contains(&evil_h1),
        "{why}"
    );
    assert!(!stored(store.as_ref(), zip).await);
    assert!(!stored(store.as_ref(), ziphash).await);
}

#[tokio::test]
async fn a_mod_that_differs_from_the_record_is_refused() {
    let fx = Fixture::new().await;
    let bundle = fx.export(&ExportOptions::default()).await;
    let path = "example.com/a/@v/v1.1.0.mod";
    let tampered = rewrite(&bundle, |p, mut b| {
        if p == path {
            b.extend_from_slice(b"require evil.example/x v1.0.0\n");
        }
        Some(b)
    });
    let (_d, store) = fresh().await;
    let report = import_bytes(store.as_ref(), tampered, &fx.import_options()).await;
    assert_eq!(refused(&report), [path], "{:?}", report.refused);
    assert!(
        report.refused[0].reason.contains("/go.mod"),
        "{:?}",
        report.refused
    );
    assert!(!stored(store.as_ref(), path).await);
    // Its zip is still fine (its go.mod is in the zip, not in the .mod file).
    assert!(stored(store.as_ref(), "example.com/a/@v/v1.1.0.zip").await);
}

#[tokio::test]
async fn a_tile_with_a_flipped_byte_is_refused() {
    let fx = Fixture::new().await;
    let bundle = fx.export(&ExportOptions::default()).await;
    let total = entries(&bundle).len() as u64 - 2; // the manifest and the inventory
    // Records 0..255 are fillers: no lookup of the bundle needs this tile.
    let path = format!("sumdb/{DB}/tile/8/0/000");
    let tampered = rewrite(&bundle, |p, mut b| {
        if p == path {
            b[100] ^= 0x01;
        }
        Some(b)
    });
    let (_d, store) = fresh().await;
    let report = import_bytes(store.as_ref(), tampered, &fx.import_options()).await;
    assert_eq!(
        refused(&report),
        std::slice::from_ref(&path),
        "{:?}",
        report.refused
    );
    assert!(
        report.refused[0]
            .reason
            .contains("does not match the signed tree"),
        "{:?}",
        report.refused
    );
    assert!(!stored(store.as_ref(), &path).await);
    assert_eq!(report.imported, total - 1);

    // A tile that a record's proof needs: the tile and that record are refused, and so are the
    // artifacts the record vouches for.
    let needed = format!("sumdb/{DB}/tile/8/0/001.p/88");
    let tampered = rewrite(&bundle, |p, mut b| {
        if p == needed {
            b[32 * 40] ^= 0x80;
        }
        Some(b)
    });
    let (_d, store) = fresh().await;
    let report = import_bytes(store.as_ref(), tampered, &fx.import_options()).await;
    let got = refused(&report);
    assert!(got.contains(&needed), "{got:?}");
    assert!(!stored(store.as_ref(), &needed).await);
    for p in &got {
        assert!(!stored(store.as_ref(), p).await, "{p} stored");
    }
    // Every lookup's proof goes through this right-edge tile.
    assert!(
        got.contains(&format!("sumdb/{DB}/lookup/example.com/a@v1.0.0")),
        "{got:?}"
    );
    assert!(
        got.contains(&"example.com/a/@v/v1.0.0.zip".to_string()),
        "{got:?}"
    );
    // The private module has no record: it is imported.
    assert!(stored(store.as_ref(), "corp.example/private/@v/v1.0.0.zip").await);
}

#[tokio::test]
async fn a_lookup_with_a_forged_hash_is_refused_with_its_artifacts() {
    let fx = Fixture::new().await;
    let bundle = fx.export(&ExportOptions::default()).await;
    let b = fx.module("example.com/b", "v0.1.0");
    let forged_zip = make_zip(
        "example.com/b",
        "v0.1.0",
        &[("go.mod", b.go_mod.as_bytes()), ("m.go", b"package evil\n")],
    );
    let forged_h1 = zip_h1("example.com/b", "v0.1.0", &forged_zip);
    let lookup = format!("sumdb/{DB}/lookup/example.com/b@v0.1.0");
    // The attacker swaps the zip and makes the record (and .ziphash) agree with it.
    let tampered = rewrite(&bundle, |p, body| {
        Some(match p {
            p if p == lookup => String::from_utf8(body)
                .unwrap()
                .replace(&b.zip_h1(), &forged_h1)
                .into_bytes(),
            "example.com/b/@v/v0.1.0.zip" => forged_zip.to_vec(),
            "example.com/b/@v/v0.1.0.ziphash" => forged_h1.clone().into_bytes(),
            _ => body,
        })
    });
    let (_d, store) = fresh().await;
    let report = import_bytes(store.as_ref(), tampered, &fx.import_options()).await;
    let got = refused(&report);
    assert_eq!(
        got,
        [
            "example.com/b/@v/v0.1.0.mod",
            "example.com/b/@v/v0.1.0.zip",
            "example.com/b/@v/v0.1.0.ziphash",
            lookup.as_str(),
        ],
        "{:?}",
        report.refused
    );
    let why = &report
        .refused
        .iter()
        .find(|p| p.path == lookup)
        .unwrap()
        .reason;
    assert!(why.contains("not the one the log holds"), "{why}");
    for p in &got {
        assert!(!stored(store.as_ref(), p).await, "{p} stored");
    }
}

#[tokio::test]
async fn an_info_naming_another_version_is_refused() {
    let fx = Fixture::new().await;
    let bundle = fx.export(&ExportOptions::default()).await;
    let path = "example.com/a/@v/v1.0.0.info";
    let tampered = rewrite(&bundle, |p, b| {
        Some(if p == path {
            br#"{"Version":"v1.1.0","Time":"2024-01-02T03:04:05Z"}"#.to_vec()
        } else {
            b
        })
    });
    let (_d, store) = fresh().await;
    let report = import_bytes(store.as_ref(), tampered, &fx.import_options()).await;
    assert_eq!(refused(&report), [path], "{:?}", report.refused);
    assert!(report.refused[0].reason.contains("v1.1.0"));
    assert!(!stored(store.as_ref(), path).await);
}

#[tokio::test]
async fn a_tree_head_signed_by_another_key_refuses_the_database_and_what_it_vouches_for() {
    let fx = Fixture::new().await;
    let bundle = fx.export(&ExportOptions::default()).await;
    let impostor = fx.log.signed_by(signer(99));
    let latest = format!("sumdb/{DB}/latest");
    let tampered = rewrite(&bundle, |p, b| {
        Some(if p == latest {
            impostor.note().to_vec()
        } else {
            b
        })
    });
    let (_d, store) = fresh().await;
    let report = import_bytes(store.as_ref(), tampered, &fx.import_options()).await;
    let got = refused(&report);
    assert!(got.iter().filter(|p| p.starts_with("sumdb/")).count() == 2 + 4 + fx.log.tiles().len()); // latest, tree, lookups, tiles
    let why = &report
        .refused
        .iter()
        .find(|p| p.path == latest)
        .unwrap()
        .reason;
    assert!(why.contains("does not verify"), "{why}");
    assert!(
        snapshot(store.as_ref())
            .await
            .keys()
            .all(|k| !k.starts_with("sumdb/"))
    );
    assert!(!stored(store.as_ref(), "example.com/a/@v/v1.0.0.zip").await);
    assert!(stored(store.as_ref(), "corp.example/private/@v/v1.0.0.zip").await);

    // Without the database's key configured, nothing of it is imported either.
    let (_d, store) = fresh().await;
    let report = import_bytes(store.as_ref(), bundle, &Default::default()).await;
    assert!(
        report
            .refused
            .iter()
            .any(|p| p.reason.contains("no verifier key for checksum database")),
        "{:?}",
        report.refused
    );
    assert!(
        snapshot(store.as_ref())
            .await
            .keys()
            .all(|k| !k.starts_with("sumdb/"))
    );
}

#[tokio::test]
async fn a_store_with_a_newer_tree_keeps_it_and_a_forked_tree_refuses_the_bundle() {
    let fx = Fixture::new().await;
    let bundle = fx.export(&ExportOptions::default()).await;

    // The same log, grown: the bundle's tree is proven a prefix of it.
    let mut grown = fx.log.clone();
    grown.fillers(300);
    let (_d, store) = fresh().await;
    store
        .put_bytes(&sumdb_key("latest"), grown.note())
        .await
        .unwrap();
    for tile in grown.tiles() {
        store
            .put_bytes(&sumdb_key(&tile.path()), grown.tile_data(&tile))
            .await
            .unwrap();
    }
    let report = import_bytes(store.as_ref(), bundle.clone(), &fx.import_options()).await;
    assert!(report.ok(), "{:?}", report.refused);
    let (_, head) = store
        .get_bytes(&sumdb_key("latest"), 1 << 20)
        .await
        .unwrap();
    assert_eq!(head, grown.note());
    assert!(
        stored(
            store.as_ref(),
            &format!("sumdb/{DB}/lookup/example.com/a@v1.0.0")
        )
        .await
    );

    // A different log of the same size under the same key: a fork.
    let mut fork = test_log(7);
    fork.fillers(fx.log.n() as usize);
    assert_eq!(fork.n(), fx.log.n());
    let (_d, store) = fresh().await;
    store
        .put_bytes(&sumdb_key("latest"), fork.note())
        .await
        .unwrap();
    let report = import_bytes(store.as_ref(), bundle, &fx.import_options()).await;
    let latest = report
        .refused
        .iter()
        .find(|p| p.path == format!("sumdb/{DB}/latest"))
        .unwrap();
    assert!(latest.reason.contains("SECURITY"), "{latest:?}");
    let (_, head) = store
        .get_bytes(&sumdb_key("latest"), 1 << 20)
        .await
        .unwrap();
    assert_eq!(head, fork.note());
    assert!(!stored(store.as_ref(), "example.com/a/@v/v1.0.0.zip").await);
}

#[tokio::test]
async fn a_different_object_already_stored_is_a_conflict_and_kept() {
    let fx = Fixture::new().await;
    let bundle = fx.export(&ExportOptions::default()).await;
    let (_d, store) = fresh().await;
    let info = fx.module(A, "v1.0.0").key(ArtifactKind::Info);
    let mine = Bytes::from_static(br#"{"Version":"v1.0.0","Time":"2020-01-01T00:00:00Z"}"#);
    store.put_bytes(&info, mine.clone()).await.unwrap();
    let report = import_bytes(store.as_ref(), bundle, &fx.import_options()).await;
    assert_eq!(refused(&report), [info.path()]);
    assert!(report.refused[0].reason.contains("conflict"));
    assert_eq!(store.get_bytes(&info, 1024).await.unwrap().1, mine);
}

#[tokio::test]
async fn every_refusal_is_told_to_the_progress_sink_as_it_is_found() {
    let fx = Fixture::new().await;
    let bundle = fx.export(&ExportOptions::default()).await;
    let impostor = fx.log.signed_by(signer(99));
    let latest = format!("sumdb/{DB}/latest");
    let info = format!("{A}/@v/v1.0.0.info");
    let tampered = rewrite(&bundle, |p, b| {
        Some(if p == latest {
            impostor.note().to_vec()
        } else if p == info {
            br#"{"Version":"v1.0.1"}"#.to_vec()
        } else {
            b
        })
    });
    let (_d, store) = fresh().await;
    let recorder = Recorder::default();
    let report = gomodproxy_bundle::import(
        store.as_ref(),
        gomodproxy_bundle::ImportSource::Bundle {
            name: "test.bundle".into(),
            reader: Box::new(std::io::Cursor::new(tampered)),
        },
        &fx.import_options(),
        &recorder,
    )
    .await
    .unwrap();
    assert!(refused(&report).contains(&latest));
    assert!(refused(&report).contains(&info));
    assert_eq!(*recorder.problems.lock().unwrap(), report.refused);
}
