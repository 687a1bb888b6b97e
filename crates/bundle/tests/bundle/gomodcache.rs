//! Import from a real `$GOMODCACHE/cache/download` written by the real go command.

use std::path::Path;
use std::process::Command;

use gomodproxy_bundle::ImportOptions;
use gomodproxy_storage::StorageExt;

use crate::support::*;

/// Writes `module@version` into `dir` in GOPROXY layout.
fn publish(dir: &Path, module: &str, escaped: &str, version: &str, files: &[(&str, &[u8])]) {
    let at_v = dir.join(escaped).join("@v");
    std::fs::create_dir_all(&at_v).unwrap();
    let go_mod = files.iter().find(|(n, _)| *n == "go.mod").unwrap().1;
    std::fs::write(at_v.join(format!("{version}.mod")), go_mod).unwrap();
    std::fs::write(
        at_v.join(format!("{version}.info")),
        format!("{{\"Version\":\"{version}\",\"Time\":\"2024-05-06T07:08:09Z\"}}"),
    )
    .unwrap();
    std::fs::write(
        at_v.join(format!("{version}.zip")),
        make_zip(module, version, files),
    )
    .unwrap();
    std::fs::write(at_v.join("list"), format!("{version}\n")).unwrap();
}

#[tokio::test]
async fn a_module_cache_made_by_the_go_command_imports_with_its_hashes() {
    let tmp = tempfile::tempdir().unwrap();
    let proxy = tmp.path().join("proxy");
    publish(
        &proxy,
        "example.com/hello",
        "example.com/hello",
        "v1.0.0",
        &[
            ("go.mod", b"module example.com/hello\n\ngo 1.21\n"),
            (
                "hello.go",
                b"package hello\n\nfunc Hello() string { return \"hi\" }\n",
            ),
            ("LICENSE", b"MIT\n"),
        ],
    );
    publish(
        &proxy,
        "example.com/Greet",
        "example.com/!greet",
        "v0.2.0",
        &[
            ("go.mod", b"module example.com/Greet\n\ngo 1.21\n"),
            ("greet.go", b"package greet\n"),
        ],
    );
    let main = tmp.path().join("main");
    std::fs::create_dir_all(&main).unwrap();
    std::fs::write(
        main.join("go.mod"),
        "module example.com/main\n\ngo 1.21\n\nrequire (\n\texample.com/Greet v0.2.0\n\texample.com/hello v1.0.0\n)\n",
    )
    .unwrap();
    let modcache = tmp.path().join("modcache");
    let out = Command::new("go")
        .args(["mod", "download"])
        .current_dir(&main)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", tmp.path())
        .env("GOENV", "off")
        .env("GOFLAGS", "-mod=mod -modcacherw")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", format!("file://{}", proxy.display()))
        .env("GOSUMDB", "off")
        .env("GOMODCACHE", &modcache)
        .env("GOPATH", tmp.path().join("gopath"))
        .env("GOCACHE", tmp.path().join("gocache"))
        .output()
        .expect("the go command is needed (see README.md)");
    assert!(
        out.status.success(),
        "go mod download: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let download = modcache.join("cache/download");
    let go_ziphash = download.join("example.com/hello/@v/v1.0.0.ziphash");
    assert!(go_ziphash.exists(), "go wrote no {}", go_ziphash.display());

    let store_dir = tmp.path().join("store");
    let store = fs_store(&store_dir);
    let report = import_dir(store.as_ref(), &download, &ImportOptions::default()).await;
    assert!(report.ok(), "{:?}", report.refused);
    // info, mod, zip, ziphash, list of each module.
    assert_eq!(report.imported, 10, "{report:?}");
    // The go command's lock files are not store objects: skipped, and counted.
    let mut non_keys = Vec::new();
    collect_non_keys(&download, "", &mut non_keys);
    assert!(
        non_keys.iter().any(|p| p.ends_with(".lock")),
        "go left no lock files? {non_keys:?}"
    );
    assert_eq!(report.skipped, non_keys.len() as u64, "{non_keys:?}");
    assert!(
        report
            .skipped_examples
            .iter()
            .all(|p| p.reason.contains("not a store object")),
        "{:?}",
        report.skipped_examples
    );

    for (escaped, module, version) in [
        ("example.com/hello", "example.com/hello", "v1.0.0"),
        ("example.com/!greet", "example.com/Greet", "v0.2.0"),
    ] {
        for ext in ["zip", "mod", "info"] {
            let path = format!("{escaped}/@v/{version}.{ext}");
            let (_, stored) = store.get_bytes(&key(&path), 1 << 20).await.unwrap();
            assert_eq!(
                stored,
                std::fs::read(download.join(&path)).unwrap(),
                "{path}"
            );
        }
        // The hash computed on import is the one go wrote.
        let path = format!("{escaped}/@v/{version}.ziphash");
        let (_, stored) = store.get_bytes(&key(&path), 1024).await.unwrap();
        let go_wrote = std::fs::read_to_string(download.join(&path)).unwrap();
        assert_eq!(
            std::str::from_utf8(&stored).unwrap(),
            go_wrote.trim(),
            "{module}"
        );
    }

    // Again: everything is already there.
    let again = import_dir(store.as_ref(), &download, &ImportOptions::default()).await;
    assert!(again.ok(), "{:?}", again.refused);
    assert_eq!((again.imported, again.already), (0, 10));
}

fn collect_non_keys(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let rel = format!("{prefix}{}", entry.file_name().to_str().unwrap());
        if entry.file_type().unwrap().is_dir() {
            collect_non_keys(&entry.path(), &format!("{rel}/"), out);
        } else if gomodproxy_storage::Key::from_path(&rel).is_err() {
            out.push(rel);
        }
    }
}

/// A go command's module cache keeps lookups and tiles under `pkg/mod/cache/download/sumdb`, and
/// the tree head it verified them with in `pkg/sumdb/<name>/latest`: the import uses it.
#[tokio::test]
async fn the_go_commands_tree_head_beside_the_module_cache_is_used() {
    let fx = Fixture::new().await;
    // The lookups came with an older tree (as they do: each carries the tree of its day); the
    // tiles are of the newest tree the go command saw.
    let old_n = 304;
    let early = fx.log.prefix(old_n);
    let gopath = tempfile::tempdir().unwrap();
    let download = gopath.path().join("pkg/mod/cache/download");
    let sumdb = download.join(format!("sumdb/{DB}"));
    for (module, version) in fx.log.recorded() {
        let escaped = gomod::escape::escape(module);
        let file = sumdb.join(format!("lookup/{escaped}@{version}"));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let body = fx.log.lookup_body_with_note(module, version, &early.note());
        std::fs::write(file, body).unwrap();
    }
    for tile in fx.log.tiles() {
        let file = sumdb.join(tile.path());
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, fx.log.tile_data(&tile)).unwrap();
    }
    let tiles = fx.log.tiles().len();

    // Without the go command's tree head, the newest right-edge tile cannot be proven in any
    // tree the directory holds, nor can anything that needs the older tree's right edge.
    let (_dir, store) = fresh().await;
    let report = import_dir(store.as_ref(), &download, &fx.import_options()).await;
    assert!(!report.ok());
    assert!(
        report.refused.iter().all(|p| p.path.starts_with("sumdb/")),
        "{:?}",
        report.refused
    );
    let edge = report
        .refused
        .iter()
        .find(|p| p.path.ends_with("/tile/8/0/001.p/88"))
        .unwrap();
    assert!(edge.reason.contains("beyond the tree of 304"), "{edge:?}");
    assert_eq!(report.imported as usize + report.refused.len(), 4 + tiles);
    assert_eq!(report.skipped, 0);

    // With it, everything is proven, and the head is stored for the offline proxy.
    let pkg_sumdb = gopath.path().join(format!("pkg/sumdb/{DB}"));
    std::fs::create_dir_all(&pkg_sumdb).unwrap();
    std::fs::write(pkg_sumdb.join("latest"), fx.log.note()).unwrap();
    let (_dir, store) = fresh().await;
    let report = import_dir(store.as_ref(), &download, &fx.import_options()).await;
    assert!(report.ok(), "{:?}", report.refused);
    assert_eq!(report.imported as usize, 1 + 4 + tiles);
    let (_, head) = store
        .get_bytes(&sumdb_key("latest"), 1 << 20)
        .await
        .unwrap();
    assert_eq!(head, fx.log.note());
}
