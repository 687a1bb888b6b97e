//! Test helpers: the test checksum database (a `gomodproxy-test-support` log: signed notes,
//! tiles, lookups), a fixture store on the filesystem, and bundle rewriting.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use gomod::sumdb::note::Signer;
use gomod::sumdb::{SumdbName, SumdbPath};
use gomod::{ModulePath, Version, ZipLimits, check_zip};
use gomodproxy_bundle::{
    ExportOptions, ImportOptions, ImportReport, ImportSource, NoProgress, Problem, Progress,
    Verifiers,
};
use gomodproxy_storage::{ArtifactKind, Key, ListPrefix, Storage, StorageExt};
use gomodproxy_storage_fs::FsStorage;
use gomodproxy_storage_sled::{SledOptions, SledStorage};
pub use gomodproxy_test_support::{TestLog, make_zip};

/// The test checksum database's name.
pub const DB: &str = "sum.test.example";

/// The `h1:` of a zip, as the go command computes it.
pub fn zip_h1(module: &str, version: &str, zip: &[u8]) -> String {
    check_zip(
        std::io::Cursor::new(zip),
        &ModulePath::parse(module).unwrap(),
        &Version::parse(version).unwrap(),
        &ZipLimits::default(),
    )
    .unwrap()
    .h1
}

/// An empty log of the test database, signed with the key of `seed`.
pub fn test_log(seed: u8) -> TestLog {
    TestLog::from_seed(DB, [seed; 32])
}

/// The signer of the test database with the key of `seed`.
pub fn signer(seed: u8) -> Signer {
    Signer::from_seed(DB, [seed; 32]).unwrap()
}

pub fn db() -> SumdbName {
    SumdbName::parse(DB).unwrap()
}

pub fn sumdb_key(path: &str) -> Key {
    Key::sumdb(&db(), &SumdbPath::parse(path).unwrap()).unwrap()
}

pub fn key(path: &str) -> Key {
    Key::from_path(path).unwrap()
}

/// One module version of the fixture.
pub struct Published {
    pub module: &'static str,
    pub version: &'static str,
    pub go_mod: String,
    pub zip: Bytes,
}

impl Published {
    pub fn new(module: &'static str, version: &'static str, body: &str) -> Published {
        let go_mod = format!("module {module}\n\ngo 1.21\n");
        let zip = make_zip(
            module,
            version,
            &[("go.mod", go_mod.as_bytes()), ("m.go", body.as_bytes())],
        );
        Published {
            module,
            version,
            go_mod,
            zip,
        }
    }

    pub fn mod_h1(&self) -> String {
        gomod::dirhash::hash_go_mod(self.go_mod.as_bytes())
    }

    pub fn zip_h1(&self) -> String {
        zip_h1(self.module, self.version, &self.zip)
    }

    pub fn key(&self, kind: ArtifactKind) -> Key {
        Key::artifact(
            &ModulePath::parse(self.module).unwrap(),
            &Version::parse(self.version).unwrap(),
            kind,
        )
    }

    pub fn info(&self) -> String {
        format!(
            "{{\"Version\":\"{}\",\"Time\":\"2024-01-02T03:04:05Z\"}}",
            self.version
        )
    }
}

/// A store with a few modules, their lists and `@latest`, and the checksum database's tree
/// head, lookups (for the public modules) and every tile.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Arc<FsStorage>,
    pub log: TestLog,
    pub modules: Vec<Published>,
}

impl Fixture {
    pub async fn new() -> Fixture {
        let modules = vec![
            Published::new("example.com/a", "v1.0.0", "package a\n"),
            Published::new("example.com/a", "v1.1.0", "package a // 1.1\n"),
            Published::new("example.com/b", "v0.1.0", "package b\n"),
            Published::new("github.com/Upper/m", "v1.0.0", "package m\n"),
            Published::new("corp.example/private", "v1.0.0", "package private\n"),
        ];
        let mut log = test_log(7);
        log.fillers(300);
        for m in modules.iter().filter(|m| !m.module.starts_with("corp.")) {
            log.add(m.module, m.version, &m.zip_h1(), &m.mod_h1());
        }
        log.fillers(40);

        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FsStorage::open(dir.path().join("store")).unwrap());
        for m in &modules {
            store
                .put_bytes(&m.key(ArtifactKind::Info), Bytes::from(m.info()))
                .await
                .unwrap();
            store
                .put_bytes(&m.key(ArtifactKind::Mod), Bytes::from(m.go_mod.clone()))
                .await
                .unwrap();
            store
                .put_bytes(&m.key(ArtifactKind::Zip), m.zip.clone())
                .await
                .unwrap();
            store
                .put_bytes(&m.key(ArtifactKind::ZipHash), Bytes::from(m.zip_h1()))
                .await
                .unwrap();
        }
        let mut lists: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for m in &modules {
            lists.entry(m.module).or_default().push(m.version);
        }
        for (module, versions) in lists {
            let module = ModulePath::parse(module).unwrap();
            let body: String = versions.iter().map(|v| format!("{v}\n")).collect();
            store
                .put_bytes(
                    &Key::List {
                        module: module.clone(),
                    },
                    Bytes::from(body),
                )
                .await
                .unwrap();
            let latest = versions.last().unwrap();
            store
                .put_bytes(
                    &Key::Latest { module },
                    Bytes::from(format!("{{\"Version\":\"{latest}\"}}")),
                )
                .await
                .unwrap();
        }
        store
            .put_bytes(&sumdb_key("latest"), log.note())
            .await
            .unwrap();
        // A sealed store records the tree head it serves.
        store
            .put_bytes(&sumdb_key(&format!("tree/{}", log.n())), log.note())
            .await
            .unwrap();
        for (module, version) in log.recorded() {
            let k = Key::sumdb(
                &db(),
                &SumdbPath::Lookup {
                    module: ModulePath::parse(module).unwrap(),
                    version: Version::parse(version).unwrap(),
                },
            )
            .unwrap();
            store
                .put_bytes(&k, log.lookup_body(module, version))
                .await
                .unwrap();
        }
        for tile in log.tiles() {
            store
                .put_bytes(
                    &Key::sumdb(&db(), &SumdbPath::Tile(tile)).unwrap(),
                    log.tile_data(&tile),
                )
                .await
                .unwrap();
        }
        Fixture {
            dir,
            store,
            log,
            modules,
        }
    }

    pub fn module(&self, module: &str, version: &str) -> &Published {
        self.modules
            .iter()
            .find(|m| m.module == module && m.version == version)
            .unwrap()
    }

    pub fn import_options(&self) -> ImportOptions {
        ImportOptions {
            sumdbs: Verifiers::parse(&[self.log.vkey()]).unwrap(),
            ..ImportOptions::default()
        }
    }

    /// The whole store exported into memory.
    pub async fn export(&self, options: &ExportOptions) -> Vec<u8> {
        let (out, report) =
            gomodproxy_bundle::export(self.store.as_ref(), options, Vec::new(), &NoProgress)
                .await
                .unwrap();
        assert!(report.vanished.is_empty());
        assert_eq!(report.written, out.len() as u64);
        out
    }
}

/// A fresh fs store in `dir`.
pub fn fs_store(dir: &Path) -> Arc<FsStorage> {
    Arc::new(FsStorage::open(dir).unwrap())
}

/// A fresh sled store in `dir`.
pub fn sled_store(dir: &Path) -> Arc<SledStorage> {
    Arc::new(
        SledStorage::open(SledOptions {
            path: dir.to_path_buf(),
            cache_capacity_bytes: 8 << 20,
            flush_every_ms: None,
            ..SledOptions::default()
        })
        .unwrap(),
    )
}

/// Every object of a store, by path (but the store's records of imported bundles).
pub async fn snapshot(store: &dyn Storage) -> BTreeMap<String, Bytes> {
    let mut out = BTreeMap::new();
    let mut listing = store.list(&ListPrefix::All);
    while let Some(entry) = listing.next().await {
        let entry = entry.unwrap();
        if let Key::Bundle { .. } = entry.key {
            continue;
        }
        let (_, body) = store.get_bytes(&entry.key, 1 << 30).await.unwrap();
        out.insert(entry.key.path(), body);
    }
    out
}

/// Imports a bundle held in memory.
pub async fn import_bytes(
    store: &dyn Storage,
    bundle: Vec<u8>,
    options: &ImportOptions,
) -> ImportReport {
    gomodproxy_bundle::import(
        store,
        ImportSource::Bundle {
            name: "test.bundle".into(),
            reader: Box::new(std::io::Cursor::new(bundle)),
        },
        options,
        &NoProgress,
    )
    .await
    .unwrap()
}

/// The entries of a bundle, in order (manifest included).
pub fn entries(bundle: &[u8]) -> Vec<(String, Vec<u8>)> {
    let decoder = zstd::stream::read::Decoder::new(bundle).unwrap();
    let mut archive = tar::Archive::new(decoder);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = String::from_utf8(entry.path_bytes().to_vec()).unwrap();
        let mut body = Vec::new();
        entry.read_to_end(&mut body).unwrap();
        out.push((path, body));
    }
    out
}

/// A bundle of these entries, in this order.
pub fn bundle_of(entries: impl IntoIterator<Item = (String, Vec<u8>)>) -> Vec<u8> {
    let encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    let mut builder = tar::Builder::new(encoder);
    for (path, body) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, &path, &body[..]).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// A bundle with the same entries as `bundle`, each passed through `edit` (`None` drops it).
pub fn rewrite(bundle: &[u8], mut edit: impl FnMut(&str, Vec<u8>) -> Option<Vec<u8>>) -> Vec<u8> {
    bundle_of(
        entries(bundle)
            .into_iter()
            .filter_map(|(path, body)| edit(&path, body).map(|body| (path, body))),
    )
}

/// A fresh fs store in a temporary directory (dropped with it).
pub async fn fresh() -> (tempfile::TempDir, Arc<FsStorage>) {
    let dir = tempfile::tempdir().unwrap();
    let store = fs_store(dir.path());
    (dir, store)
}

/// Whether the store has an object at `path`.
pub async fn stored(store: &dyn Storage, path: &str) -> bool {
    store.exists(&key(path)).await.unwrap().is_some()
}

/// Imports a directory in GOPROXY or `$GOMODCACHE/cache/download` layout.
pub async fn import_dir(store: &dyn Storage, dir: &Path, options: &ImportOptions) -> ImportReport {
    gomodproxy_bundle::import(
        store,
        ImportSource::open(dir).unwrap(),
        options,
        &NoProgress,
    )
    .await
    .unwrap()
}

/// The refused paths of a report.
pub fn refused(report: &ImportReport) -> Vec<String> {
    let mut v: Vec<String> = report.refused.iter().map(|p| p.path.clone()).collect();
    v.sort();
    v
}

/// A progress sink that keeps what it is told.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Steps (objects) done.
    pub steps: Mutex<Vec<String>>,
    /// Problems, in the order they were told.
    pub problems: Mutex<Vec<Problem>>,
}

impl Progress<str> for Recorder {
    fn step(&self, path: &str, _bytes: u64) {
        self.steps.lock().unwrap().push(path.to_string());
    }

    fn problem(&self, problem: &Problem) {
        self.problems.lock().unwrap().push(problem.clone());
    }
}
