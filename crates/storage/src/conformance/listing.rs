//! Where objects are found: listings by module, checksum-database objects, and escaped or
//! unusual module paths and versions.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use crate::{ArtifactKind, Key, ListPrefix, Storage};

use super::support::{
    Run, assert_body, assert_close, assert_missing, assert_same_bytes, body, describe, list, read,
    version,
};
use super::{Capabilities, all_kinds, put_ok};

/// `ListPrefix::Module(m)` lists exactly m's objects (not those of `m/sub` or of the sibling
/// `m2`), each once with its size; `ListPrefix::All` includes all of them.
pub async fn listing(store: &dyn Storage, caps: &Capabilities) {
    let ctx = "listing";
    let mut run = Run::new(ctx);
    let parent = run.module("list");
    let m = run.module("list/m");
    let sub = run.module("list/m/sub");
    let sibling = run.module("list/m2");
    let dashed = run.module("list/m-x");
    let (v1, v11) = (version("v1.0.0"), version("v1.1.0"));
    let mut expected: HashMap<gomod::ModulePath, Vec<Key>> = HashMap::new();
    let mut add = |module: &gomod::ModulePath, key: Key| {
        expected.entry(module.clone()).or_default().push(key)
    };
    for kind in ArtifactKind::ALL {
        add(&m, Key::artifact(&m, &v1, kind));
    }
    add(&m, Key::artifact(&m, &v11, ArtifactKind::Mod));
    add(&m, Key::List { module: m.clone() });
    add(&m, Key::Latest { module: m.clone() });
    add(&sub, Key::artifact(&sub, &v1, ArtifactKind::Mod));
    add(
        &sub,
        Key::List {
            module: sub.clone(),
        },
    );
    add(&sibling, Key::artifact(&sibling, &v1, ArtifactKind::Info));
    add(
        &sibling,
        Key::Latest {
            module: sibling.clone(),
        },
    );
    add(
        &dashed,
        Key::List {
            module: dashed.clone(),
        },
    );

    let mut sizes: HashMap<Key, u64> = HashMap::new();
    for (n, key) in expected.values().flatten().enumerate() {
        let len = 10 + n * 37;
        put_ok(store, key, body(&key.path(), len).into(), ctx).await;
        sizes.insert(key.clone(), len as u64);
    }

    let check_listing = |what: String, entries: Vec<crate::ListEntry>, want: &[Key]| {
        let got: HashSet<&Key> = entries.iter().map(|e| &e.key).collect();
        assert_eq!(
            got.len(),
            entries.len(),
            "{ctx}: {what}: a key is listed twice: {entries:?}"
        );
        let want_set: HashSet<&Key> = want.iter().collect();
        assert!(
            got == want_set,
            "{ctx}: {what}: listed {:?}, expected {:?}",
            entries.iter().map(|e| e.key.path()).collect::<Vec<_>>(),
            want.iter().map(Key::path).collect::<Vec<_>>()
        );
        for entry in &entries {
            assert_eq!(
                entry.meta.size, sizes[&entry.key],
                "{ctx}: {what}: wrong size for {}",
                entry.key
            );
        }
        entries
    };

    for module in [&m, &sub, &sibling, &dashed] {
        let entries = list(store, &ListPrefix::Module(module.clone()), ctx).await;
        let entries = check_listing(format!("Module({module})"), entries, &expected[module]);
        for entry in entries {
            let head = store
                .head(&entry.key)
                .await
                .unwrap_or_else(|e| panic!("{ctx}: head failed: {}", describe(&e)));
            assert_close(
                entry.meta.modified,
                head.modified,
                caps.clock_slack,
                &format!("{ctx}: listed vs head modified"),
            );
        }
    }
    let empty = list(store, &ListPrefix::Module(parent.clone()), ctx).await;
    assert!(
        empty.is_empty(),
        "{ctx}: Module({parent}) has no objects of its own but lists {empty:?}"
    );

    let ours: HashSet<&gomod::ModulePath> = run.modules().iter().collect();
    let all: Vec<crate::ListEntry> = list(store, &ListPrefix::All, ctx)
        .await
        .into_iter()
        .filter(|e| e.key.module().is_some_and(|m| ours.contains(m)))
        .collect();
    let want: Vec<Key> = expected.values().flatten().cloned().collect();
    check_listing("All (this run's modules)".into(), all, &want);

    let gone = Key::Latest { module: m.clone() };
    store
        .delete(&gone)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: delete failed: {}", describe(&e)));
    let entries = list(store, &ListPrefix::Module(m.clone()), ctx).await;
    let want: Vec<Key> = expected[&m]
        .iter()
        .filter(|k| **k != gone)
        .cloned()
        .collect();
    check_listing(format!("Module({m}) after deleting {gone}"), entries, &want);
    run.cleanup(store).await;
}

/// Checksum-database objects (tree head, lookups, full and partial tiles side by side, a data
/// tile, deep tile paths, recorded trees) round-trip and list under their database only; the
/// record of an imported bundle round-trips and lists under [`ListPrefix::Bundles`].
pub async fn sumdb_objects(store: &dyn Storage, _caps: &Capabilities) {
    use gomod::sumdb::SumdbPath;
    let ctx = "sumdb_objects";
    let mut run = Run::new(ctx);
    let db = run.sumdb();
    let module = run.module("Upper/sumdb");
    let object = |path: &str| {
        let path = SumdbPath::parse(path)
            .unwrap_or_else(|e| panic!("{ctx}: test data: sumdb path {path:?}: {e}"));
        Key::sumdb(&db, &path).unwrap_or_else(|| panic!("{ctx}: test data: {path} is no key"))
    };
    let lookups = vec![
        object(&format!("lookup/{}@v1.0.0", module.escaped())),
        object(&format!("lookup/{}@v2.0.0+incompatible", module.escaped())),
        object(&format!("lookup/{}@v1.0.1-!r!c.1", module.escaped())),
    ];
    let mut keys = lookups.clone();
    keys.extend(
        [
            "latest",
            "tile/8/0/x001/x234/067",
            "tile/8/0/x001/x234/067.p/5",
            "tile/8/0/x001/x234/067.p/17",
            "tile/8/1/000.p/255",
            "tile/8/3/000.p/3",
            "tile/8/data/000",
            "tree/70000",
            "tree/69959272",
        ]
        .iter()
        .map(|p| object(p)),
    );
    for (n, key) in keys.iter().enumerate() {
        let path = key.path();
        assert!(
            path.starts_with(&format!("sumdb/{db}/")),
            "{ctx}: {path} is not under sumdb/{db}/"
        );
        assert_eq!(
            Key::from_path(&path).ok().as_ref(),
            Some(key),
            "{ctx}: {path} does not parse back"
        );
        put_ok(store, key, body(&path, 32 * (n + 1)).into(), ctx).await;
    }
    for (n, key) in keys.iter().enumerate() {
        assert_body(store, key, &body(&key.path(), 32 * (n + 1)), ctx).await;
    }
    let listed = |entries: Vec<crate::ListEntry>| -> HashSet<Key> {
        entries.into_iter().map(|e| e.key).collect()
    };
    let all_of_db = listed(list(store, &ListPrefix::Sumdb(db.clone()), ctx).await);
    assert_eq!(
        all_of_db,
        keys.iter().cloned().collect::<HashSet<_>>(),
        "{ctx}: ListPrefix::Sumdb({db})"
    );
    let only_lookups = listed(list(store, &ListPrefix::SumdbLookups(db.clone()), ctx).await);
    assert_eq!(
        only_lookups,
        lookups.iter().cloned().collect::<HashSet<_>>(),
        "{ctx}: ListPrefix::SumdbLookups({db})"
    );
    let only_trees = listed(list(store, &ListPrefix::SumdbTrees(db.clone()), ctx).await);
    assert_eq!(
        only_trees,
        [object("tree/70000"), object("tree/69959272")]
            .into_iter()
            .collect::<HashSet<_>>(),
        "{ctx}: ListPrefix::SumdbTrees({db})"
    );
    // The record of an imported bundle: a key outside every module and database.
    let id = format!("{:032x}", rand::random::<u128>());
    let bundle = Key::bundle(&id).unwrap_or_else(|| panic!("{ctx}: {id} is no bundle id"));
    assert_eq!(Key::from_path(&bundle.path()).ok().as_ref(), Some(&bundle));
    put_ok(store, &bundle, body(&bundle.path(), 100).into(), ctx).await;
    assert_body(store, &bundle, &body(&bundle.path(), 100), ctx).await;
    let bundles = listed(list(store, &ListPrefix::Bundles, ctx).await);
    assert!(
        bundles.contains(&bundle),
        "{ctx}: ListPrefix::Bundles misses {bundle}"
    );
    assert!(
        bundles.iter().all(|k| matches!(k, Key::Bundle { .. })),
        "{ctx}: ListPrefix::Bundles lists other objects: {bundles:?}"
    );
    assert!(
        listed(list(store, &ListPrefix::All, ctx).await).contains(&bundle),
        "{ctx}: ListPrefix::All misses {bundle}"
    );
    store
        .delete(&bundle)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: delete failed: {}", describe(&e)));
    assert_missing(store, &bundle, ctx).await;
    let of_module = list(store, &ListPrefix::Module(module.clone()), ctx).await;
    assert!(
        of_module.is_empty(),
        "{ctx}: lookups of {module} must not list as the module's artifacts: {of_module:?}"
    );
    let everything = listed(list(store, &ListPrefix::All, ctx).await);
    for key in &keys {
        assert!(
            everything.contains(key),
            "{ctx}: ListPrefix::All misses {key}"
        );
    }
    // A partial tile and the full tile beside it are distinct objects.
    let partial = object("tile/8/0/x001/x234/067.p/5");
    store
        .delete(&partial)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: delete failed: {}", describe(&e)));
    assert_missing(store, &partial, ctx).await;
    read(store, &object("tile/8/0/x001/x234/067"), ctx).await;
    run.cleanup(store).await;
}

/// Module paths and versions that need escaping or follow unusual rules round-trip, stay distinct
/// from their lower-case twins, and list back as equal keys.
pub async fn odd_module_paths(store: &dyn Storage, _caps: &Capabilities) {
    let ctx = "odd_module_paths";
    let mut run = Run::new(ctx);
    let pseudo_versions = [
        "v0.0.0-20240102030405-abcdef123456",
        "v1.2.4-0.20240102030405-abcdef123456",
        "v1.2.3-pre.0.20240102030405-abcdef123456",
    ];
    let cases: Vec<(gomod::ModulePath, Vec<&str>)> = vec![
        (
            run.module("Upper/Case"),
            vec!["v1.0.0", "v1.0.0-RC1", "v1.0.0-rc1"],
        ),
        (run.module("upper/case"), vec!["v1.0.0"]),
        (run.module("x..y/z~1a"), vec!["v1.0.0"]),
        (run.module("dash-under_score~tilde.dot"), vec!["v0.1.0"]),
        (
            run.module("major/v2"),
            vec!["v2.3.4", "v2.0.0-20240102030405-abcdef123456"],
        ),
        (
            run.module("legacy"),
            vec![
                "v2.0.0+incompatible",
                "v2.0.1-0.20240102030405-abcdef123456+incompatible",
            ],
        ),
        (run.module("pseudo"), pseudo_versions.to_vec()),
        (run.gopkg_module(), vec!["v3.0.1"]),
    ];

    for (module, versions) in &cases {
        let mut want: Vec<Key> = vec![
            Key::List {
                module: module.clone(),
            },
            Key::Latest {
                module: module.clone(),
            },
        ];
        for v in versions {
            let v = version(v);
            want.extend(
                ArtifactKind::ALL
                    .iter()
                    .map(|&kind| Key::artifact(module, &v, kind)),
            );
        }
        for key in &want {
            let path = key.path();
            assert_eq!(
                Key::from_path(&path).ok().as_ref(),
                Some(key),
                "{ctx}: Key::from_path({path:?})"
            );
            // The body names its own key, so a store that merges two keys returns the wrong one.
            put_ok(store, key, Bytes::from(format!("{key:?}")).into(), ctx).await;
        }
        let listed = list(store, &ListPrefix::Module(module.clone()), ctx).await;
        let got: HashSet<&Key> = listed.iter().map(|e| &e.key).collect();
        let want_set: HashSet<&Key> = want.iter().collect();
        assert_eq!(
            got.len(),
            listed.len(),
            "{ctx}: Module({module}) lists a key twice"
        );
        assert!(
            got == want_set,
            "{ctx}: Module({module}) listed {:?}, expected {:?}",
            listed
                .iter()
                .map(|e| format!("{:?}", e.key))
                .collect::<Vec<_>>(),
            want.iter().map(|k| format!("{k:?}")).collect::<Vec<_>>()
        );
    }
    // Read back after everything is written: `Upper/Case` and `upper/case` (and `RC1`/`rc1`) are
    // different keys even on a case-insensitive store.
    for (module, versions) in &cases {
        let mut keys = vec![
            Key::List {
                module: module.clone(),
            },
            Key::Latest {
                module: module.clone(),
            },
        ];
        for v in versions {
            keys.extend(all_kinds(module, &version(v)));
        }
        for key in &keys {
            let want = format!("{key:?}");
            let (_, got) = read(store, key, ctx).await;
            assert_same_bytes(&got, want.as_bytes(), &format!("{ctx}: get {key}"));
        }
    }
    run.cleanup(store).await;
}
