//! The checksum database through the service: verification of upstream artifacts before they
//! are stored, the `/sumdb/<name>/…` answers, and what a lying upstream cannot get past.
//!
//! The database here is a real transparency log built in the test with `gomod`'s signing and
//! hashing code and published on the fake upstream under `sumdb/<name>/…` (tree heads, lookups,
//! every tile of the current tree), the way proxy.golang.org serves sum.golang.org.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gomod::sumdb::note::{Signer, Verifier};
use gomod::sumdb::tlog::{Tile, Tree, record_hash, stored_hash_index};
use gomod::sumdb::{Lookup, SumdbName, SumdbPath};
use gomodproxy_service::{Mode, ProxyService, ServiceConfig};
use gomodproxy_storage::memory::InMemory;
use gomodproxy_storage::{ArtifactKind, Key};
use gomodproxy_test_support::TestLog;

use crate::assert_err;
use crate::support::*;

const DB: &str = "sum.test.example";

/// An empty log of the test database, signed with the key of `seed`.
fn test_log(seed: u8) -> TestLog {
    TestLog::from_seed(DB, [seed; 32])
}

/// Serves `log` on `up` under `sumdb/<name>/`, as a proxy does.
fn publish(log: &TestLog, up: &Upstream) {
    up.set(&format!("sumdb/{DB}/latest"), [Reply::Ok(log.note())]);
    for (module, version) in log.recorded() {
        up.set(
            &format!("sumdb/{DB}/lookup/{}", lookup_path(module, version)),
            [Reply::Ok(log.lookup_body(module, version))],
        );
    }
    for tile in log.tiles() {
        up.set(
            &format!("sumdb/{DB}/{}", tile.path()),
            [Reply::Ok(log.tile_data(&tile))],
        );
    }
}

fn lookup_path(module: &str, version: &str) -> String {
    format!(
        "{}@{}",
        gomod::escape::escape(module),
        gomod::escape::escape(version)
    )
}

const M: &str = "example.com/verified";
const V: &str = "v1.0.0";

fn go_mod() -> Bytes {
    Bytes::from(format!("module {M}\n"))
}

/// The module's artifacts on the upstream, and its real hashes.
fn publish_module(up: &Upstream, zip: &Bytes) {
    up.set(&format!("{M}/@v/{V}.info"), [Reply::Ok(info_json(V))]);
    up.set(&format!("{M}/@v/{V}.mod"), [Reply::Ok(go_mod())]);
    up.set(&format!("{M}/@v/{V}.zip"), [Reply::Ok(zip.clone())]);
}

/// An upstream serving the module (its honest zip) and `log` under `sumdb/<name>/`.
async fn upstream_with(log: &TestLog) -> Upstream {
    let up = Upstream::start().await;
    publish_module(&up, &good_zip(M, V));
    publish(log, &up);
    up
}

fn real_hashes() -> (String, String) {
    let go_mod_text = format!("module {M}\n");
    let files: [(&str, &[u8]); 2] = [("go.mod", go_mod_text.as_bytes()), ("m.go", b"package m\n")];
    // good_zip's files, hashed independently of gomod.
    let zip_h1 = h1(M, V, &files);
    let mod_h1 = h1_go_mod(&go_mod());
    (zip_h1, mod_h1)
}

fn h1_go_mod(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let line = format!("{}  go.mod\n", hex::encode(Sha256::digest(bytes)));
    format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(line.as_bytes()))
    )
}

fn verifying_config(up: &Upstream, log: &TestLog) -> ServiceConfig {
    ServiceConfig {
        verify: true,
        sumdbs: vec![log.vkey().parse().unwrap()],
        ..config(&up.url)
    }
}

/// A service in offline mode over `storage`, configured as [`verifying_config`].
fn offline_service(storage: &Arc<InMemory>, up: &Upstream, log: &TestLog) -> ProxyService {
    ProxyService::new(
        storage.clone(),
        ServiceConfig {
            mode: Mode::Offline,
            upstream: "".parse().unwrap(),
            ..verifying_config(up, log)
        },
    )
    .unwrap()
}

fn db() -> SumdbName {
    SumdbName::parse(DB).unwrap()
}

fn sumdb_key(path: &str) -> Key {
    Key::sumdb(&db(), &SumdbPath::parse(path).unwrap()).unwrap()
}

/// A log of ~600 records (three level-0 tiles, a level-1 tile) with the module in the middle.
fn log_with_module(zip_h1: &str, mod_h1: &str) -> TestLog {
    let mut log = test_log(1);
    log.fillers(300);
    log.add(M, V, zip_h1, mod_h1);
    log.fillers(300);
    log
}

#[tokio::test]
async fn verified_artifacts_are_stored_with_the_lookup_and_tiles_that_prove_them() {
    let up = Upstream::start().await;
    let zip = good_zip(M, V);
    publish_module(&up, &zip);
    let (zip_h1, mod_h1) = real_hashes();
    let log = log_with_module(&zip_h1, &mod_h1);
    publish(&log, &up);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, verifying_config(&up, &log));

    assert_eq!(
        body(svc.go_mod(&module(M), &version(V)).await.unwrap()).await,
        go_mod()
    );
    assert_eq!(
        body(svc.zip(&module(M), &version(V)).await.unwrap()).await,
        zip
    );
    // One lookup served both checks.
    assert_eq!(up.hits(&format!("sumdb/{DB}/lookup/{M}@{V}")), 1);
    let keys = stored(&storage).await;
    assert!(
        keys.contains(&format!("sumdb/{DB}/lookup/{M}@{V}")),
        "{keys:?}"
    );
    assert!(keys.contains(&format!("sumdb/{DB}/latest")), "{keys:?}");
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("sumdb/{DB}/tile/8/0/"))),
        "{keys:?}"
    );

    // The lookup as a client gets it: the record, and a tree note that verifies.
    let answer = svc
        .sumdb(
            &db(),
            &SumdbPath::parse(&format!("lookup/{M}@{V}")).unwrap(),
        )
        .await
        .unwrap();
    let lookup = Lookup::parse(&body(answer).await).unwrap();
    assert_eq!(lookup.id, log.id(M, V).unwrap());
    let verifier = Verifier::parse(&log.vkey()).unwrap();
    let tree = Tree::parse(verifier.open(&lookup.note).unwrap()).unwrap();
    assert_eq!(tree, log.tree());
    // A tile it needs comes from the cache now.
    let tile = Tile::for_index(8, stored_hash_index(0, lookup.id))
        .0
        .parent(0, tree.n)
        .unwrap();
    let path = tile.path();
    let before = up.hits(&format!("sumdb/{DB}/{path}"));
    let got = body(svc.sumdb(&db(), &SumdbPath::Tile(tile)).await.unwrap()).await;
    assert_eq!(got, log.tile_data(&tile));
    assert_eq!(up.hits(&format!("sumdb/{DB}/{path}")), before);
}

#[tokio::test]
async fn a_zip_whose_hash_differs_from_the_database_is_refused_and_not_stored() {
    let up = Upstream::start().await;
    // A valid module zip, but not the one the database vouches for.
    let tampered = make_zip(
        M,
        V,
        &[
            ("go.mod", format!("module {M}\n").as_bytes()),
            ("m.go", b"package m\n\nfunc Evil() {}\n"),
        ],
    );
    publish_module(&up, &tampered);
    let (zip_h1, mod_h1) = real_hashes();
    let log = log_with_module(&zip_h1, &mod_h1);
    publish(&log, &up);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, verifying_config(&up, &log));

    let msg = assert_err!(svc.zip(&module(M), &version(V)).await, BadUpstream);
    assert!(msg.contains("checksum mismatch"), "{msg}");
    assert!(msg.contains(&zip_h1), "names the expected hash: {msg}");
    for kind in [ArtifactKind::Zip, ArtifactKind::ZipHash] {
        assert!(!has(&storage, &Key::artifact(&module(M), &version(V), kind)).await);
    }
    // The honest go.mod still passes.
    svc.go_mod(&module(M), &version(V)).await.unwrap();
}

#[tokio::test]
async fn a_go_mod_whose_hash_differs_is_refused() {
    let up = Upstream::start().await;
    publish_module(&up, &good_zip(M, V));
    up.set(
        &format!("{M}/@v/{V}.mod"),
        [Reply::Ok(Bytes::from(format!(
            "module {M}\n\nrequire evil.example/x v1.0.0\n"
        )))],
    );
    let (zip_h1, mod_h1) = real_hashes();
    let log = log_with_module(&zip_h1, &mod_h1);
    publish(&log, &up);
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, verifying_config(&up, &log));
    let msg = assert_err!(svc.go_mod(&module(M), &version(V)).await, BadUpstream);
    assert!(
        msg.contains("checksum mismatch") && msg.contains("/go.mod"),
        "{msg}"
    );
    assert!(
        !has(
            &storage,
            &Key::artifact(&module(M), &version(V), ArtifactKind::Mod)
        )
        .await
    );
}

#[tokio::test]
async fn a_tampered_tile_or_forged_record_is_caught_and_nothing_is_stored() {
    let (zip_h1, mod_h1) = real_hashes();
    let log = log_with_module(&zip_h1, &mod_h1);
    let id = log.id(M, V).unwrap();
    let record_tile = Tile::for_index(8, stored_hash_index(0, id))
        .0
        .parent(0, log.n())
        .unwrap();

    // 1. The tile holding the record is altered.
    let up = upstream_with(&log).await;
    let mut bad = log.tile_data(&record_tile).to_vec();
    bad[0] ^= 1;
    up.set(
        &format!("sumdb/{DB}/{}", record_tile.path()),
        [Reply::Ok(Bytes::from(bad))],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, verifying_config(&up, &log));
    let msg = assert_err!(svc.zip(&module(M), &version(V)).await, BadUpstream);
    assert!(msg.contains("SECURITY"), "{msg}");
    let keys = stored(&storage).await;
    assert!(
        !keys
            .iter()
            .any(|k| k.ends_with(".zip") || k.contains("/lookup/")),
        "{keys:?}"
    );
    assert!(
        !keys.contains(&format!("sumdb/{DB}/{}", record_tile.path())),
        "{keys:?}"
    );

    // 2. The record in the lookup claims another hash (the tiles are honest).
    let up = upstream_with(&log).await;
    let forged = String::from_utf8(log.lookup_body(M, V).to_vec())
        .unwrap()
        .replace(&zip_h1, "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    up.set(
        &format!("sumdb/{DB}/lookup/{M}@{V}"),
        [Reply::Ok(Bytes::from(forged))],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, verifying_config(&up, &log));
    let msg = assert_err!(svc.zip(&module(M), &version(V)).await, BadUpstream);
    assert!(
        msg.contains("SECURITY") && msg.contains("not the one the log holds"),
        "{msg}"
    );
    assert!(
        stored(&storage)
            .await
            .iter()
            .all(|k| !k.ends_with(".zip") && !k.contains("/lookup/"))
    );

    // 3. A tree head signed by another key.
    let up = upstream_with(&log).await;
    let impostor = log.signed_by(Signer::from_seed(DB, [9; 32]).unwrap());
    up.set(&format!("sumdb/{DB}/latest"), [Reply::Ok(impostor.note())]);
    up.set(
        &format!("sumdb/{DB}/lookup/{M}@{V}"),
        [Reply::Ok(log.lookup_body_with_note(M, V, &impostor.note()))],
    );
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, verifying_config(&up, &log));
    let msg = assert_err!(svc.zip(&module(M), &version(V)).await, BadUpstream);
    assert!(
        msg.contains("SECURITY") && msg.contains("does not verify"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_forked_log_is_refused_and_the_trusted_tree_kept() {
    let (zip_h1, mod_h1) = real_hashes();
    let log = log_with_module(&zip_h1, &mod_h1);
    let up = upstream_with(&log).await;
    let storage = Arc::new(InMemory::new());
    let cfg = ServiceConfig {
        sumdb_latest_ttl: Duration::ZERO,
        ..verifying_config(&up, &log)
    };
    let svc = service(&storage, cfg);
    svc.zip(&module(M), &version(V)).await.unwrap();
    let trusted = body(svc.sumdb(&db(), &SumdbPath::Latest).await.unwrap()).await;

    // The same key now signs a longer log whose first records differ: a fork.
    let mut fork = test_log(1);
    fork.fillers(5);
    fork.add(M, V, &zip_h1, &mod_h1);
    fork.fillers(900);
    publish(&fork, &up);
    let msg = assert_err!(svc.sumdb(&db(), &SumdbPath::Latest).await, BadUpstream);
    // Detected either by the root rebuilt from the fork's tiles, or by the fork's tiles
    // disagreeing with the ones already verified and cached: both are refusals.
    assert!(msg.contains("SECURITY"), "{msg}");
    // What is stored and served is still the first tree.
    let (_, stored_latest) =
        gomodproxy_storage::StorageExt::get_bytes(storage.as_ref(), &sumdb_key("latest"), 1 << 16)
            .await
            .unwrap();
    assert_eq!(stored_latest, trusted);
}

#[tokio::test]
async fn the_log_grows_lookups_carry_the_trusted_tree_and_narrow_tiles_are_prefixes() {
    let (zip_h1, mod_h1) = real_hashes();
    let mut log = log_with_module(&zip_h1, &mod_h1);
    let up = upstream_with(&log).await;
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, verifying_config(&up, &log));
    svc.zip(&module(M), &version(V)).await.unwrap();
    let old_tree = log.tree();

    // A new module version appears after 200 more records.
    const M2: &str = "example.com/later";
    let zip2 = good_zip(M2, V);
    up.set(&format!("{M2}/@v/{V}.info"), [Reply::Ok(info_json(V))]);
    up.set(
        &format!("{M2}/@v/{V}.mod"),
        [Reply::Ok(Bytes::from(format!("module {M2}\n")))],
    );
    up.set(&format!("{M2}/@v/{V}.zip"), [Reply::Ok(zip2.clone())]);
    log.fillers(200);
    let go_mod_text = format!("module {M2}\n");
    let files: [(&str, &[u8]); 2] = [("go.mod", go_mod_text.as_bytes()), ("m.go", b"package m\n")];
    log.add(
        M2,
        V,
        &h1(M2, V, &files),
        &h1_go_mod(format!("module {M2}\n").as_bytes()),
    );
    publish(&log, &up);
    // Its id is beyond the trusted tree: the proxy moves to the new tree (checked consistent).
    assert_eq!(
        body(svc.zip(&module(M2), &version(V)).await.unwrap()).await,
        zip2
    );

    // The first module's lookup now comes with the new tree.
    let answer = svc
        .sumdb(
            &db(),
            &SumdbPath::parse(&format!("lookup/{M}@{V}")).unwrap(),
        )
        .await
        .unwrap();
    let lookup = Lookup::parse(&body(answer).await).unwrap();
    let verifier = Verifier::parse(&log.vkey()).unwrap();
    assert_eq!(
        Tree::parse(verifier.open(&lookup.note).unwrap()).unwrap(),
        log.tree()
    );

    // A client still on the old tree asks for the old right-edge tile: a prefix of today's.
    let old_edge = Tile {
        h: 8,
        l: 0,
        n: (old_tree.n - 1) >> 8,
        w: 1,
    }
    .parent(0, old_tree.n)
    .unwrap();
    assert!(!old_edge.is_full());
    let got = body(svc.sumdb(&db(), &SumdbPath::Tile(old_edge)).await.unwrap()).await;
    assert_eq!(got, log.tile_data(&old_edge));
    // A tile beyond every tree is not found.
    let beyond = Tile {
        h: 8,
        l: 0,
        n: 99,
        w: 3,
    };
    assert_err!(svc.sumdb(&db(), &SumdbPath::Tile(beyond)).await, NotFound);
}

#[tokio::test]
async fn private_modules_are_never_looked_up() {
    let up = Upstream::start().await;
    publish_module(&up, &good_zip(M, V));
    let log = test_log(1);
    let storage = Arc::new(InMemory::new());
    let svc = service(
        &storage,
        ServiceConfig {
            private: "example.com/verified,corp.example".parse().unwrap(),
            ..verifying_config(&up, &log)
        },
    );
    svc.zip(&module(M), &version(V)).await.unwrap();
    svc.go_mod(&module(M), &version(V)).await.unwrap();
    let msg = assert_err!(
        svc.sumdb(
            &db(),
            &SumdbPath::parse(&format!("lookup/{M}@{V}")).unwrap()
        )
        .await,
        NotFound
    );
    assert!(msg.contains("private"), "{msg}");
    assert_eq!(
        up.hits(&format!("sumdb/{DB}/lookup/{M}@{V}")) + up.hits(&format!("sumdb/{DB}/latest")),
        0,
        "a private module reached the checksum database"
    );
}

#[tokio::test]
async fn offline_serves_what_was_verified_and_nothing_else() {
    let (zip_h1, mod_h1) = real_hashes();
    let log = log_with_module(&zip_h1, &mod_h1);
    let up = upstream_with(&log).await;
    let storage = Arc::new(InMemory::new());
    let online = service(&storage, verifying_config(&up, &log));
    online.zip(&module(M), &version(V)).await.unwrap();
    let sealed = online.seal_sumdb(&[]).await.unwrap().records;
    assert_eq!(sealed, 1);

    let offline = offline_service(&storage, &up, &log);
    let hits = up.total_hits();
    body(offline.sumdb(&db(), &SumdbPath::Supported).await.unwrap()).await;
    let answer = offline
        .sumdb(
            &db(),
            &SumdbPath::parse(&format!("lookup/{M}@{V}")).unwrap(),
        )
        .await
        .unwrap();
    let lookup = Lookup::parse(&body(answer).await).unwrap();
    let verifier = Verifier::parse(&log.vkey()).unwrap();
    let tree = Tree::parse(verifier.open(&lookup.note).unwrap()).unwrap();
    // Every tile a client needs to prove the record in that tree is served from the cache.
    let plan =
        gomod::sumdb::tlog::TilePlan::new(tree, 8, &[stored_hash_index(0, lookup.id)]).unwrap();
    let mut data = Vec::new();
    for tile in plan.tiles() {
        data.push(body(offline.sumdb(&db(), &SumdbPath::Tile(*tile)).await.unwrap()).await);
    }
    assert_eq!(
        plan.verify(&data).unwrap(),
        vec![record_hash(lookup.text.as_bytes())]
    );
    let msg = assert_err!(
        offline
            .sumdb(
                &db(),
                &SumdbPath::parse("lookup/example.com/other@v1.0.0").unwrap()
            )
            .await,
        NotFound
    );
    assert!(msg.contains("offline mode"), "{msg}");
    assert_eq!(up.total_hits(), hits, "offline mode reached the upstream");
}

/// The sizes of the trees in the store's history (`sumdb/<db>/tree/<N>`).
async fn recorded_trees(storage: &Arc<InMemory>) -> Vec<i64> {
    use futures::StreamExt;
    use gomodproxy_storage::{ListPrefix, Storage};
    let mut sizes: Vec<i64> = storage
        .list(&ListPrefix::SumdbTrees(db()))
        .filter_map(|e| async move {
            match e.unwrap().key {
                Key::Sumdb {
                    path: SumdbPath::Tree(n),
                    ..
                } => Some(n),
                _ => None,
            }
        })
        .collect()
        .await;
    sizes.sort();
    sizes
}

/// What a go command that remembers `tree` does against `svc` before it trusts `served`: it
/// rebuilds its own tree's root from the tiles on that tree's right edge, and proves the tree
/// a prefix of `served` with tiles authenticated in `served`.
async fn client_proves(svc: &ProxyService, tree: Tree, served: Tree) {
    use gomod::sumdb::tlog::{TilePlan, sub_tree_index, tree_hash_from_subtrees};
    let stx = sub_tree_index(0, tree.n);
    for within in [tree, served] {
        let plan = TilePlan::new(within, 8, &stx).unwrap();
        let mut data = Vec::new();
        for tile in plan.tiles() {
            let got = svc.sumdb(&db(), &SumdbPath::Tile(*tile)).await;
            let got = got.unwrap_or_else(|e| panic!("tree {}: {}: {e}", tree.n, tile.path()));
            data.push(body(got).await);
        }
        let hashes = plan.verify(&data).unwrap();
        assert_eq!(
            tree_hash_from_subtrees(&hashes).unwrap(),
            tree.hash,
            "tree {} in {}",
            tree.n,
            within.n
        );
    }
}

#[tokio::test]
async fn known_trees_older_and_newer_than_the_store_are_proven_offline_and_another_key_is_refused()
{
    use gomodproxy_service::KnownTree;
    let (zip_h1, mod_h1) = real_hashes();
    let mut log = log_with_module(&zip_h1, &mod_h1);
    let up = upstream_with(&log).await;
    let storage = Arc::new(InMemory::new());
    let online = service(&storage, verifying_config(&up, &log));
    online.zip(&module(M), &version(V)).await.unwrap();
    let stored_tree = log.tree();
    let known = |origin: &str, note: Bytes| KnownTree {
        origin: origin.to_string(),
        note,
    };
    // Older than the store's tree; then the log grows and a client sees a newer one.
    let older = log.prefix(450);
    log.fillers(300);
    publish(&log, &up);
    let newer = log.prefix(log.n() - 17);
    assert!(older.n() < stored_tree.n && newer.n() > stored_tree.n);

    // Signed by another key: refused, nothing fetched.
    let mut other = test_log(2);
    other.fillers(450);
    let hits = up.total_hits();
    let msg = online
        .seal_sumdb(&[known("other.latest", other.note())])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("other.latest") && msg.contains("not a tree head signed"),
        "{msg}"
    );
    assert_eq!(up.total_hits(), hits);

    let sealed = online
        .seal_sumdb(&[
            known("older.latest", older.note()),
            known("newer.latest", newer.note()),
        ])
        .await
        .unwrap();
    assert_eq!(sealed.known, 2);
    // Proven by this seal: the new trusted tree and the two known ones (the store's first tree
    // was proven, and forgotten, when the trusted tree advanced to the new one). Recorded
    // afterwards: the sealed tree alone.
    assert_eq!(sealed.trees, 3, "{sealed:?}");
    assert_eq!(recorded_trees(&storage).await, vec![log.n()]);

    // Online, a narrower tile is cut from the stored one: no upstream request.
    let edge = Tile {
        h: 8,
        l: 0,
        n: (log.n() - 1) >> 8,
        w: ((log.n() - 1) % 256 + 1) as u32,
    };
    let narrow = edge.with_width(edge.w - 5);
    let hits = up.total_hits();
    let got = body(online.sumdb(&db(), &SumdbPath::Tile(narrow)).await.unwrap()).await;
    assert_eq!(got, log.tile_data(&narrow));
    assert_eq!(up.total_hits(), hits, "a derivable tile was fetched");

    let offline = offline_service(&storage, &up, &log);
    for remembered in [stored_tree, older.tree(), newer.tree()] {
        client_proves(&offline, remembered, log.tree()).await;
    }
    assert_eq!(up.total_hits(), hits, "offline mode reached the upstream");
}

/// The tree history stays bounded while the log grows for many generations — online advances
/// and seals, across level-0 and level-1 tile boundaries — and a client that remembers any tree
/// the proxy ever handed out still proves the last sealed tree offline from stored tiles.
#[tokio::test]
async fn the_tree_history_stays_bounded_and_every_tree_handed_out_stays_provable() {
    let (zip_h1, mod_h1) = real_hashes();
    let mut log = log_with_module(&zip_h1, &mod_h1);
    let up = upstream_with(&log).await;
    let storage = Arc::new(InMemory::new());
    let online = service(
        &storage,
        ServiceConfig {
            // Every `latest` asked advances the trusted tree to upstream's.
            sumdb_latest_ttl: Duration::ZERO,
            ..verifying_config(&up, &log)
        },
    );
    online.zip(&module(M), &version(V)).await.unwrap();
    let verifier = Verifier::parse(&log.vkey()).unwrap();
    let mut handed_out = Vec::new();
    // (records added, then seal?): within one level-0 tile, across level-0 tiles, across the
    // first level-1 tile (65,536 records), and back to small steps.
    let steps: [(usize, bool); 9] = [
        (7, false),
        (300, true),
        (5, false),
        (3, false),
        (66_000, false),
        (2, true),
        (200, false),
        (1, true),
        (0, true),
    ];
    for (grow, seal) in steps {
        log.fillers(grow);
        publish(&log, &up);
        if seal {
            online.seal_sumdb(&[]).await.unwrap();
        }
        let note = body(online.sumdb(&db(), &SumdbPath::Latest).await.unwrap()).await;
        let tree = Tree::parse(verifier.open(&note).unwrap()).unwrap();
        assert_eq!(tree, log.tree());
        handed_out.push(tree);
        let recorded = recorded_trees(&storage).await;
        assert!(
            recorded == vec![tree.n],
            "the history holds {recorded:?} after the tree of {} records",
            tree.n
        );
    }
    assert!(log.n() > 1 << 16);

    let offline = offline_service(&storage, &up, &log);
    let hits = up.total_hits();
    for remembered in handed_out {
        client_proves(&offline, remembered, log.tree()).await;
    }
    assert_eq!(up.total_hits(), hits, "offline mode reached the upstream");
}
