//! Filtered exports: by module pattern and by go.sum, exactly the expected keys.

use std::collections::BTreeSet;

use gomod::gosum::GoSum;
use gomodproxy_bundle::{ExportOptions, INVENTORY_NAME, MANIFEST_NAME, NoProgress};

use crate::support::*;

fn names(bundle: &[u8]) -> BTreeSet<String> {
    entries(bundle)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p != MANIFEST_NAME && p != INVENTORY_NAME)
        .collect()
}

fn sumdb_common(fx: &Fixture) -> Vec<String> {
    let mut v = vec![
        format!("sumdb/{DB}/latest"),
        format!("sumdb/{DB}/tree/{}", fx.log.n()),
    ];
    v.extend(
        fx.log
            .tiles()
            .iter()
            .map(|t| format!("sumdb/{DB}/{}", t.path())),
    );
    v
}

fn artifacts(module_escaped: &str, version: &str) -> Vec<String> {
    ["info", "mod", "zip", "ziphash"]
        .iter()
        .map(|ext| format!("{module_escaped}/@v/{version}.{ext}"))
        .collect()
}

#[tokio::test]
async fn by_module_pattern() {
    let fx = Fixture::new().await;
    let bundle = fx
        .export(&ExportOptions {
            modules: vec!["example.com/a,github.com/*".to_string()],
            ..ExportOptions::default()
        })
        .await;
    let mut want: BTreeSet<String> = sumdb_common(&fx).into_iter().collect();
    for (m, v) in [
        ("example.com/a", "v1.0.0"),
        ("example.com/a", "v1.1.0"),
        ("github.com/!upper/m", "v1.0.0"),
    ] {
        want.extend(artifacts(m, v));
    }
    want.extend([
        "example.com/a/@v/list".to_string(),
        "example.com/a/@latest".to_string(),
        "github.com/!upper/m/@v/list".to_string(),
        "github.com/!upper/m/@latest".to_string(),
        format!("sumdb/{DB}/lookup/example.com/a@v1.0.0"),
        format!("sumdb/{DB}/lookup/example.com/a@v1.1.0"),
        format!("sumdb/{DB}/lookup/github.com/!upper/m@v1.0.0"),
    ]);
    assert_eq!(names(&bundle), want);

    // And without the checksum database.
    let bundle = fx
        .export(&ExportOptions {
            modules: vec!["corp.example".to_string()],
            sumdb: false,
            ..ExportOptions::default()
        })
        .await;
    let mut want: BTreeSet<String> = artifacts("corp.example/private", "v1.0.0")
        .into_iter()
        .collect();
    want.insert("corp.example/private/@v/list".to_string());
    want.insert("corp.example/private/@latest".to_string());
    assert_eq!(names(&bundle), want);

    // The filtered bundle imports cleanly on its own.
    let dir = tempfile::tempdir().unwrap();
    let store = fs_store(dir.path());
    let report = import_bytes(store.as_ref(), bundle, &fx.import_options()).await;
    assert!(report.ok(), "{:?}", report.refused);
    assert_eq!(report.imported, 6);
}

#[tokio::test]
async fn by_go_sum() {
    let fx = Fixture::new().await;
    let a = fx.module("example.com/a", "v1.0.0");
    let b = fx.module("example.com/b", "v0.1.0");
    let go_sum = format!(
        "example.com/a v1.0.0 {}\nexample.com/a v1.0.0/go.mod {}\nexample.com/b v0.1.0/go.mod {}\n\
         example.com/missing v1.2.3/go.mod h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        a.zip_h1(),
        a.mod_h1(),
        b.mod_h1()
    );
    let sum = GoSum::parse("go.sum", go_sum.as_bytes()).unwrap();
    let options = ExportOptions {
        go_sums: vec![("go.sum".to_string(), sum)],
        ..ExportOptions::default()
    };
    let (bundle, report) =
        gomodproxy_bundle::export(fx.store.as_ref(), &options, Vec::new(), &NoProgress)
            .await
            .unwrap();
    let mut want: BTreeSet<String> = sumdb_common(&fx).into_iter().collect();
    want.extend(artifacts("example.com/a", "v1.0.0"));
    want.extend([
        "example.com/b/@v/v0.1.0.mod".to_string(),
        "example.com/a/@v/list".to_string(),
        "example.com/a/@latest".to_string(),
        "example.com/b/@v/list".to_string(),
        "example.com/b/@latest".to_string(),
        format!("sumdb/{DB}/lookup/example.com/a@v1.0.0"),
        format!("sumdb/{DB}/lookup/example.com/b@v0.1.0"),
    ]);
    assert_eq!(names(&bundle), want);
    assert_eq!(
        report
            .missing
            .iter()
            .map(|p| p.path.as_str())
            .collect::<Vec<_>>(),
        ["example.com/missing/@v/v1.2.3.mod"]
    );
    assert!(report.manifest.unwrap().selection.contains("go.sum"));

    let dir = tempfile::tempdir().unwrap();
    let store = fs_store(dir.path());
    let imported = import_bytes(store.as_ref(), bundle, &fx.import_options()).await;
    assert!(imported.ok(), "{:?}", imported.refused);
    assert_eq!(imported.imported, want.len() as u64);
}
