//! The harness's checksum database ([`SumdbServer`]), judged by the real go command with
//! checksum verification on: go accepts its signed trees, lookups and tiles on both ways of
//! reaching it (an explicit `GOSUMDB` URL, or a GOPROXY entry serving `/sumdb/<name>/`), after
//! the log grows too, and refuses it — with the go command's own messages — when a tile, a
//! lookup or the log's history is tampered with, or when it disagrees with the download.
//! Modules come from the fixture upstream; no proxy under test is involved, so a failure here
//! is the harness's (or `gomod::sumdb`'s, which builds the log), not the proxy's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gomod::sumdb::note::Verifier;
use gomod::sumdb::tlog::{self, Tile, TilePlan, Tree};
use gomodproxy_tests::fixtures::{self, GoSum, PSEUDO_VERSION};
use gomodproxy_tests::go::GoOutput;
use gomodproxy_tests::http::{Response, get_with_timeout};
use gomodproxy_tests::sumdb::{
    FIXTURE_LOG_SIZE, ModuleRecord, SumdbFault, SumdbServer, fixture_records,
};
use gomodproxy_tests::{Fault, Fixtures, Go, TestDir, Upstream};
use sha2::{Digest, Sha256};

use crate::common;

/// The module the probe project requires: no requirements of its own, so a probe run makes
/// exactly one lookup.
const PROBE_MODULE: (&str, &str) = ("example.com/lib", "v1.2.0");

/// A project requiring only `module@version`, in `dir/probe` (go.sum removed).
fn probe(dir: &Path, module: &str, version: &str) -> PathBuf {
    let p = dir.join("probe");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("go.mod"),
        format!("module example.com/probe\n\ngo 1.21\n\nrequire {module} {version}\n"),
    )
    .unwrap();
    let _ = std::fs::remove_file(p.join("go.sum"));
    p
}

/// The database-relative lookup path of a module version.
fn lookup_path(module: &str, version: &str) -> String {
    format!(
        "/lookup/{}@{}",
        fixtures::escape(module),
        fixtures::escape(version)
    )
}

/// The module versions that have a line in go.sum.
fn go_sum_versions(sum: &GoSum) -> BTreeSet<(String, String)> {
    sum.zip
        .iter()
        .chain(&sum.go_mod)
        .map(|(m, v, _)| (m.clone(), v.clone()))
        .collect()
}

/// Every go.sum line is, verbatim, a line of the database's record for that version.
fn assert_go_sum_is_the_databases(db: &SumdbServer, sum: &GoSum) {
    for (lines, suffix) in [(&sum.zip, ""), (&sum.go_mod, "/go.mod")] {
        for (m, v, h) in lines {
            let id = db
                .record_id(m, v)
                .unwrap_or_else(|| panic!("go.sum has {m}@{v}, the database does not"));
            let line = format!("{m} {v}{suffix} {h}\n");
            assert!(
                db.record_text(id).contains(&line),
                "go.sum line {line:?} is not in record {id}: {:?}",
                db.record_text(id)
            );
        }
    }
}

/// The tiles the go command needs to authenticate these records against `tree`, by Go's
/// algorithm (`tlog.TileHashReader`) as `gomod::sumdb::tlog::TilePlan` implements it:
/// database-relative paths.
fn planned_tiles(tree: Tree, ids: impl IntoIterator<Item = i64>) -> BTreeSet<String> {
    let mut tiles = BTreeSet::new();
    for id in ids {
        let plan = TilePlan::new(tree, 8, &[tlog::stored_hash_index(0, id)]).unwrap();
        tiles.extend(plan.tiles().iter().map(|t| format!("/{}", t.path())));
    }
    tiles
}

/// Tile or lookup paths (database-relative) answered 200 after request number `since`.
fn served_since(db: &SumdbServer, since: usize, prefix: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in &db.requests()[since..] {
        if let Some(p) = r.db_path.as_ref().filter(|p| p.starts_with(prefix))
            && r.status == 200
        {
            *out.entry(p.clone()).or_insert(0) += 1;
        }
    }
    out
}

/// The tree head the go command keeps in `$GOPATH/pkg/sumdb/<name>/latest`.
fn client_latest(go: &Go, db: &SumdbServer) -> String {
    let file = go.gopath().join("pkg/sumdb").join(db.name()).join("latest");
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

fn assert_fails_with(out: &GoOutput, needles: &[&str]) {
    assert!(
        !out.success,
        "`{}` succeeded, expected a failure mentioning {needles:?}\n--- stderr\n{}",
        out.command, out.stderr
    );
    for needle in needles {
        assert!(
            out.stderr.contains(needle),
            "`{}` failed without {needle:?}\n--- stderr\n{}",
            out.command,
            out.stderr
        );
    }
}

fn assert_no_download_errors(downloads: &[serde_json::Value]) {
    for d in downloads {
        assert!(d.get("Error").is_none(), "go mod download reported: {d}");
    }
}

/// After a successful full build: go.sum is right (fixture oracle and database), go looked up
/// exactly the versions in go.sum, once each, and fetched exactly the tiles that authenticate
/// them against the database's tree, once each (requests after number `since`).
fn assert_verified_the_app(db: &SumdbServer, app: &Path, since: usize) -> BTreeMap<String, u64> {
    let sum = common::check_go_sum_against_fixtures(app, Fixtures::shared(), true);
    assert_go_sum_is_the_databases(db, &sum);
    let versions = go_sum_versions(&sum);
    let lookups = served_since(db, since, "/lookup/");
    let want: BTreeMap<String, u64> = versions
        .iter()
        .map(|(m, v)| (lookup_path(m, v), 1))
        .collect();
    assert_eq!(lookups, want, "lookups the go command made");
    let tiles = served_since(db, since, "/tile/");
    let ids = versions
        .iter()
        .map(|(m, v)| db.record_id(m, v).unwrap())
        .collect::<Vec<_>>();
    let want = planned_tiles(db.tree(), ids);
    assert_eq!(
        tiles.keys().cloned().collect::<BTreeSet<_>>(),
        want,
        "tiles the go command fetched vs the tiles that authenticate its lookups"
    );
    assert!(
        tiles.values().all(|&n| n == 1),
        "a tile was fetched twice: {tiles:?}"
    );
    tiles
}

/// Test 1: GOSUMDB names the database's URL; modules come from the fixture upstream.
#[test]
fn go_verifies_the_fixture_app_against_the_harness_sumdb_named_in_gosumdb() {
    let fx = Fixtures::shared();
    let t = TestDir::new("sumdb-url");
    let db = SumdbServer::with_fixtures("sum.url.e2e.test");
    let up = Upstream::start(fx.root());
    let app = common::app(t.path());
    let go = Go::new(&t.sub("go"), &up.url()).env("GOSUMDB", &db.gosumdb());

    assert_no_download_errors(&common::download_build_run(&go, &app));
    let tiles = assert_verified_the_app(&db, &app, 0);
    eprintln!(
        "go fetched {} tiles of the tree of {} records: {:?}",
        tiles.len(),
        db.tree().n,
        tiles.keys().collect::<Vec<_>>()
    );
    for level in ["/tile/8/0/", "/tile/8/1/", "/tile/8/2/"] {
        assert!(
            tiles.keys().any(|p| p.starts_with(level)),
            "no {level} tile fetched: {tiles:?}"
        );
    }
    assert!(
        tiles.keys().any(|p| p.contains(".p/")),
        "no partial tile fetched: {tiles:?}"
    );
    // Only the database's own path form, every answer 200, nothing through GOPROXY.
    for r in db.requests() {
        assert_eq!(r.status, 200, "{r:?}");
        assert!(!r.path.starts_with("/sumdb/"), "{r:?}");
    }
    assert!(
        up.requests().iter().all(|p| !p.starts_with("/sumdb/")),
        "the go command asked the module proxy about the checksum database: {:?}",
        up.requests()
    );
    assert_eq!(client_latest(&go, &db), db.latest_note());
    common::assert_graph_only(&up, fx);
}

/// Test 1, the other way in: GOSUMDB is only the key, and the database sits first in GOPROXY
/// answering `/sumdb/<name>/supported`; module requests fall through (404) to the upstream.
#[test]
fn go_reaches_the_harness_sumdb_through_a_goproxy_entry() {
    let fx = Fixtures::shared();
    let t = TestDir::new("sumdb-proxy");
    let db = SumdbServer::with_fixtures("sum.proxy.e2e.test");
    let up = Upstream::start(fx.root());
    // Guard: were the database's `supported` ever 404, the go command would ask the upstream,
    // and if that were 404 too it would go to https://<name> directly. A 500 here stops it.
    let supported = format!("/sumdb/{}/supported", db.name());
    up.set_fault(&supported, Fault::Status(500));
    let app = common::app(t.path());
    let go =
        Go::new(&t.sub("go"), &format!("{},{}", db.url(), up.url())).env("GOSUMDB", &db.vkey());

    assert_no_download_errors(&common::download_build_run(&go, &app));
    assert_verified_the_app(&db, &app, 0);
    assert!(db.hits(&supported) >= 1, "supported never asked");
    assert_eq!(up.hits(&supported), 0);
    let prefix = format!("/sumdb/{}/", db.name());
    let mut module_requests = 0;
    for r in db.requests() {
        match &r.db_path {
            Some(_) => {
                assert!(r.path.starts_with(&prefix), "{r:?}");
                assert_eq!(r.status, 200, "{r:?}");
            }
            None => {
                assert_eq!(r.status, 404, "{r:?}");
                module_requests += 1;
            }
        }
    }
    assert!(
        module_requests > 0,
        "the go command never asked the first GOPROXY entry for a module"
    );
    assert_eq!(client_latest(&go, &db), db.latest_note());
    common::assert_graph_only(&up, fx);
}

/// Test 3: the log grows. A client that verified the old tree checks that the new one extends
/// it and goes on; a fresh client verifies the new tree; a record that only the grown log has
/// (and that sits in its partial right-edge tile) is what makes the app build.
#[test]
fn go_verifies_after_the_log_grows_with_an_old_and_a_fresh_client() {
    let fx = Fixtures::shared();
    let t = TestDir::new("sumdb-grow");
    let all = fixture_records();
    let (pseudo, initial): (Vec<ModuleRecord>, Vec<ModuleRecord>) = all
        .iter()
        .cloned()
        .partition(|r| r.module == "example.com/pseudo");
    let db = SumdbServer::start("sum.grow.e2e.test", &initial, FIXTURE_LOG_SIZE - all.len());
    let up = Upstream::start(fx.root());
    let old_tree = db.tree();
    let old_note = db.latest_note();

    // Client A verifies a record against the first tree.
    let go_a = Go::new(&t.sub("go-a"), &up.url()).env("GOSUMDB", &db.gosumdb());
    let probe_dir = probe(t.path(), PROBE_MODULE.0, PROBE_MODULE.1);
    go_a.run(&probe_dir, &["mod", "download", "all"])
        .assert_success();
    assert_eq!(client_latest(&go_a, &db), old_note);

    // The app needs a version the log does not have yet: the lookup is 404 and go refuses.
    let app_c = common::app(&t.sub("c"));
    let go_c = Go::new(&t.sub("go-c"), &up.url()).env("GOSUMDB", &db.gosumdb());
    let out = go_c.run(&app_c, &["mod", "download", "all"]);
    assert_fails_with(
        &out,
        &[
            &format!("example.com/pseudo@{PSEUDO_VERSION}"),
            "404 Not Found",
            &format!("not found: example.com/pseudo@{PSEUDO_VERSION}"),
        ],
    );

    let new_tree = db.append(&pseudo, 300);
    assert_eq!(new_tree.n, old_tree.n + 301);
    let id = db.record_id("example.com/pseudo", PSEUDO_VERSION).unwrap();
    assert!(id >= old_tree.n);
    assert!(
        new_tree.n % 256 != 0 && id >> 8 == new_tree.n >> 8,
        "record {id} is not in the partial right-edge tile of a tree of {}",
        new_tree.n
    );

    // Client A, holding the old tree, builds the app: it must prove the new tree extends it.
    let since = db.requests().len();
    let app_a = common::app(&t.sub("a"));
    assert_no_download_errors(&common::download_build_run(&go_a, &app_a));
    common::check_go_sum_against_fixtures(&app_a, fx, true);
    assert_eq!(client_latest(&go_a, &db), db.latest_note());
    assert!(
        served_since(&db, since, "/lookup/")
            .contains_key(&lookup_path("example.com/pseudo", PSEUDO_VERSION))
    );

    // A fresh client verifies the grown tree.
    let since = db.requests().len();
    let app_b = common::app(&t.sub("b"));
    let go_b = Go::new(&t.sub("go-b"), &up.url()).env("GOSUMDB", &db.gosumdb());
    assert_no_download_errors(&common::download_build_run(&go_b, &app_b));
    let tiles = assert_verified_the_app(&db, &app_b, since);
    let edge = format!("/tile/8/0/{:03}.p/{}", new_tree.n >> 8, new_tree.n % 256);
    assert!(tiles.contains_key(&edge), "{edge} not fetched: {tiles:?}");
    assert_eq!(client_latest(&go_b, &db), db.latest_note());
}

/// Test 2: a flipped byte in a tile — one that authenticates the looked-up record through its
/// parent, the partial right-edge tile, or the top tile that rebuilds the root — and the go
/// command refuses the lookup. Each time the same client succeeds once the fault is cleared.
#[test]
fn go_rejects_tampered_tiles() {
    let fx = Fixtures::shared();
    let t = TestDir::new("sumdb-tile");
    let db = SumdbServer::with_fixtures("sum.tile.e2e.test");
    let up = Upstream::start(fx.root());
    let (module, version) = PROBE_MODULE;
    let id = db.record_id(module, version).unwrap();
    let n = db.tree().n;
    let cases = [
        // The record's own hash in its full level-0 tile.
        (
            format!("/tile/8/0/{:03}", id >> 8),
            (id % 256) as usize * 32,
        ),
        // The right-edge level-0 tile (served as .p/W; a key without .p covers every width).
        (format!("/tile/8/0/{:03}", n >> 8), 5),
        // The level-2 tile, whose one hash covers the first 65536 records.
        ("/tile/8/2/000".to_string(), 31),
    ];
    for (i, (tile, offset)) in cases.into_iter().enumerate() {
        let go = Go::new(&t.sub(&format!("go-{i}")), &up.url()).env("GOSUMDB", &db.gosumdb());
        let dir = probe(&t.sub(&format!("p-{i}")), module, version);
        db.set_fault(&tile, SumdbFault::FlipTileByte(offset));
        let since = db.requests().len();
        let out = go.run(&dir, &["mod", "download", "all"]);
        assert_fails_with(
            &out,
            &[
                &format!("{module}@{version}"),
                "downloaded inconsistent tile",
            ],
        );
        assert!(
            served_since(&db, since, &tile).values().sum::<u64>() >= 1,
            "{tile} was never served: {:?}",
            db.requests()
        );
        assert!(!dir.join("go.sum").exists());
        db.clear_fault(&tile);
        go.run(&dir, &["mod", "download", "all"]).assert_success();
    }
}

/// Test 2: a lookup whose record is not the one the log holds — the go command cannot
/// authenticate it.
#[test]
fn go_rejects_a_lookup_that_does_not_match_the_log() {
    let fx = Fixtures::shared();
    let t = TestDir::new("sumdb-lookup");
    let db = SumdbServer::with_fixtures("sum.lookup.e2e.test");
    let up = Upstream::start(fx.root());
    let (module, version) = PROBE_MODULE;
    let path = lookup_path(module, version);
    db.set_fault(&path, SumdbFault::TamperRecord);
    let go = Go::new(&t.sub("go"), &up.url()).env("GOSUMDB", &db.gosumdb());
    let dir = probe(t.path(), module, version);
    let out = go.run(&dir, &["mod", "download", "all"]);
    assert_fails_with(
        &out,
        &[
            &format!("{module}@{version}"),
            "cannot authenticate record data in server response",
        ],
    );
    assert_eq!(db.hits(&path), 1);
    db.clear_fault(&path);
    go.run(&dir, &["mod", "download", "all"]).assert_success();
}

/// Test 2: the log itself holds a hash the download does not have (an honest, consistent log
/// of a different zip or go.mod): the go command reports the checksum mismatch, names the
/// database, and keeps nothing.
#[test]
fn go_reports_a_checksum_mismatch_when_the_log_disagrees_with_the_download() {
    let fx = Fixtures::shared();
    let t = TestDir::new("sumdb-mismatch");
    let up = Upstream::start(fx.root());
    let (module, version) = PROBE_MODULE;
    let honest = fixture_records()
        .iter()
        .find(|r| (r.module.as_str(), r.version.as_str()) == PROBE_MODULE)
        .unwrap()
        .clone();
    let wrong = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    for (case, noun, downloaded) in [
        ("zip", "module", &honest.zip),
        ("mod", "go.mod", &honest.go_mod),
    ] {
        let mut lying = honest.clone();
        match case {
            "zip" => lying.zip = wrong.to_string(),
            _ => lying.go_mod = wrong.to_string(),
        }
        let records: Vec<ModuleRecord> = fixture_records()
            .iter()
            .map(|r| {
                if r == &honest {
                    lying.clone()
                } else {
                    r.clone()
                }
            })
            .collect();
        let db = SumdbServer::start(
            &format!("sum.{case}.mismatch.e2e.test"),
            &records,
            FIXTURE_LOG_SIZE - records.len(),
        );
        let go = Go::new(&t.sub(&format!("go-{case}")), &up.url()).env("GOSUMDB", &db.gosumdb());
        let dir = probe(&t.sub(case), module, version);
        let out = go.run(&dir, &["mod", "download", "all"]);
        assert_fails_with(
            &out,
            &[
                &format!("{module}@{version}: verifying {noun}: checksum mismatch"),
                &format!("downloaded: {downloaded}"),
                &format!("{}: {wrong}", db.name()),
                "SECURITY ERROR\nThis download does NOT match the one reported by the checksum server.",
            ],
        );
        assert_eq!(db.hits(&lookup_path(module, version)), 1);
        assert!(!dir.join("go.sum").exists());
        assert!(
            !go.gomodcache().join(format!("{module}@{version}")).exists(),
            "the go command extracted a module that failed verification"
        );
    }
}

/// Test 2: the database rewrites history (a record the client's tree covers) and signs a
/// larger tree.
/// - A client that remembers the old tree and still has its tiles looks up another module: the
///   new tree's tiles prove that the new tree does not contain the old one — SECURITY ERROR,
///   with both signed trees.
/// - The same client after `go clean -modcache` (the tree survives in GOPATH, the tiles do
///   not): re-checking its own tree against the forked tiles fails first.
/// - A fresh client cannot tell, and accepts the forked log.
#[test]
fn go_detects_a_forked_log_with_security_error() {
    let fx = Fixtures::shared();
    let t = TestDir::new("sumdb-fork");
    let db = SumdbServer::with_fixtures("sum.fork.e2e.test");
    let up = Upstream::start(fx.root());
    let (module, version) = PROBE_MODULE;
    let go = Go::new(&t.sub("go"), &up.url()).env("GOSUMDB", &db.gosumdb());
    let dir = probe(&t.sub("first"), module, version);
    go.run(&dir, &["mod", "download", "all"]).assert_success();
    let old = db.tree();

    // The last record: in the old tree's partial right-edge tile, which the client keeps at
    // the old width; in the grown tree that tile is full, a path the client never saw.
    let victim = old.n - 1;
    assert!(db.record_text(victim).starts_with("filler.example/"));
    let forged = ModuleRecord::new("filler.example/forged", "v1.0.0", "h1:x", "h1:y").text();
    assert_eq!(db.rewrite_record(victim, &forged).n, old.n);
    let new = db.append(&[], 1000);
    assert_ne!(new.hash, old.hash);
    assert_eq!(
        client_latest(&go, &db).lines().nth(1),
        Some(&*old.n.to_string())
    );

    let other = probe(&t.sub("second"), "example.com/Upper/Case", "v1.0.0");
    let out = go.run(&other, &["mod", "download", "all"]);
    assert_fails_with(
        &out,
        &[
            "SECURITY ERROR\ngo.sum database server misbehavior detected!",
            &format!("old database:\n\tgo.sum database tree\n\t{}\n", old.n),
            &format!("new database:\n\tgo.sum database tree\n\t{}\n", new.n),
            "proof of misbehavior:",
        ],
    );

    go.run(&dir, &["clean", "-modcache"]).assert_success();
    let again = probe(&t.sub("third"), module, version);
    let out = go.run(&again, &["mod", "download", "all"]);
    assert_fails_with(
        &out,
        &[&format!(
            "checking tree#{}: downloaded inconsistent tile",
            old.n
        )],
    );

    let fresh = Go::new(&t.sub("go-fresh"), &up.url()).env("GOSUMDB", &db.gosumdb());
    let dir = probe(&t.sub("fresh"), module, version);
    fresh
        .run(&dir, &["mod", "download", "all"])
        .assert_success();
    assert_eq!(client_latest(&fresh, &db), db.latest_note());
}

/// A database that answers 500, then one that is gone: the go command fails (it never falls
/// back to skipping verification), and succeeds in between.
#[test]
fn go_fails_when_the_harness_sumdb_errs_or_is_stopped() {
    let fx = Fixtures::shared();
    let t = TestDir::new("sumdb-down");
    let db = SumdbServer::with_fixtures("sum.down.e2e.test");
    let up = Upstream::start(fx.root());
    let (module, version) = PROBE_MODULE;
    let gosumdb = db.gosumdb();

    db.set_global_fault(Some(SumdbFault::Status(500)));
    let go = Go::new(&t.sub("go-500"), &up.url()).env("GOSUMDB", &gosumdb);
    let dir = probe(&t.sub("500"), module, version);
    let out = go.run(&dir, &["mod", "download", "all"]);
    assert_fails_with(
        &out,
        &[
            &format!(
                "{}{}: 500 Internal Server Error",
                db.url(),
                lookup_path(module, version)
            ),
            "sumdb: injected status 500",
        ],
    );
    db.set_global_fault(None);
    go.run(&dir, &["mod", "download", "all"]).assert_success();

    let addr = db.addr();
    db.stop();
    let go = Go::new(&t.sub("go-stopped"), &up.url()).env("GOSUMDB", &gosumdb);
    let dir = probe(&t.sub("stopped"), module, version);
    let out = go.run(&dir, &["mod", "download", "all"]);
    assert_fails_with(&out, &[&addr.to_string(), "connection refused"]);
}

// ---------------------------------------------------------------------------------------------
// The server itself, over raw HTTP, against an independent Merkle tree (no go command).

/// CPU time (user + system) of the calling thread.
fn thread_cpu_time() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut usage), 0);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn leaf(text: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(text);
    h.finalize().into()
}

/// RFC 6962 tree hash, straight from the definition.
fn naive_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    if leaves.len() == 1 {
        return leaves[0];
    }
    let mut k = 1;
    while k * 2 < leaves.len() {
        k *= 2;
    }
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(naive_root(&leaves[..k]));
    h.update(naive_root(&leaves[k..]));
    h.finalize().into()
}

/// Splits a data tile into record texts (each is followed by a blank line).
fn split_data_tile(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let end = data
            .windows(2)
            .position(|w| w == b"\n\n")
            .expect("record ends in a blank line");
        out.push(data[..end + 1].to_vec());
        data = &data[end + 2..];
    }
    out
}

fn get(db: &SumdbServer, path: &str) -> Response {
    get_with_timeout(db.addr(), path, Duration::from_secs(10)).unwrap()
}

fn ok(db: &SumdbServer, path: &str) -> Vec<u8> {
    let r = get(db, path);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.body
}

/// Every record of the log (from its data tiles) and the verified signed tree.
fn read_log(db: &SumdbServer) -> (Vec<Vec<u8>>, Tree) {
    let note = ok(db, "/latest");
    let verifier = Verifier::parse(&db.vkey()).unwrap();
    let tree = Tree::parse(verifier.open(&note).unwrap()).unwrap();
    let mut records = Vec::new();
    for k in 0..=(tree.n >> 8) {
        let w = (tree.n - (k << 8)).min(256) as u32;
        if w > 0 {
            let tile = Tile {
                h: 8,
                l: -1,
                n: k,
                w,
            };
            records.extend(split_data_tile(&ok(db, &format!("/{}", tile.path()))));
        }
    }
    assert_eq!(records.len() as i64, tree.n);
    (records, tree)
}

#[test]
fn harness_sumdb_serves_a_log_that_an_independent_merkle_tree_confirms() {
    // The log is built in the calling thread: its CPU time is the cost, whatever the load.
    let (wall, cpu) = (Instant::now(), thread_cpu_time());
    let big = SumdbServer::start("sum.big.e2e.test", &[], FIXTURE_LOG_SIZE);
    let (wall, cpu) = (wall.elapsed(), thread_cpu_time() - cpu);
    eprintln!("a log of {FIXTURE_LOG_SIZE} records built and signed: {cpu:?} CPU, {wall:?} wall");
    assert!(cpu < Duration::from_secs(3), "building took {cpu:?} of CPU");
    assert_eq!(big.tree().n, FIXTURE_LOG_SIZE as i64);
    big.stop();

    let mine: Vec<ModuleRecord> = (0..3)
        .map(|i| {
            ModuleRecord::new(
                &format!("example.com/Rec{i}"),
                "v1.0.0",
                &format!("h1:zip{i}"),
                &format!("h1:mod{i}"),
            )
        })
        .collect();
    let db = SumdbServer::start("sum.self.e2e.test", &mine, 997);
    let name = db.name().to_string();
    let (records, tree) = read_log(&db);
    assert_eq!(tree, db.tree());
    let leaves: Vec<[u8; 32]> = records.iter().map(|r| leaf(r)).collect();
    assert_eq!(naive_root(&leaves), tree.hash.0, "root of the log");
    // The records of interest are spread out, one per level-0 tile here.
    let ids: Vec<i64> = mine
        .iter()
        .map(|r| db.record_id(&r.module, &r.version).unwrap())
        .collect();
    assert_eq!(
        ids.iter().map(|id| id >> 8).collect::<BTreeSet<_>>().len(),
        3
    );
    for (r, &id) in mine.iter().zip(&ids) {
        assert_eq!(records[id as usize], r.text().into_bytes());
    }

    // Hash tiles: level 0 holds record hashes, level 1 the hashes of 256-record subtrees.
    for k in 0..4i64 {
        let w = (1000 - k * 256).min(256) as usize;
        let suffix = if w < 256 {
            format!(".p/{w}")
        } else {
            String::new()
        };
        let data = ok(&db, &format!("/tile/8/0/{k:03}{suffix}"));
        let want: Vec<u8> = leaves[k as usize * 256..][..w].concat();
        assert_eq!(data, want, "tile/8/0/{k:03}{suffix}");
    }
    let level1 = ok(&db, "/tile/8/1/000.p/3");
    for k in 0..3 {
        assert_eq!(
            level1[k * 32..][..32],
            naive_root(&leaves[k * 256..][..256])
        );
    }
    for beyond in [
        "/tile/8/0/003.p/233",
        "/tile/8/0/003",
        "/tile/8/0/004.p/1",
        "/tile/8/1/000.p/4",
        "/tile/8/2/000.p/1",
        "/tile/8/data/003.p/233",
        "/tile/4/0/000",
    ] {
        assert_eq!(get(&db, beyond).status, 404, "{beyond}");
    }
    assert_eq!(get(&db, "/tile/8/0/0003").status, 400);

    // Lookups: `<id>\n<record>\n<note>`, same on the proxy path form; unknown is a one-line 404.
    let note = ok(&db, "/latest");
    let lookup = "/lookup/example.com/!rec1@v1.0.0";
    let body = ok(&db, lookup);
    let mut want = format!("{}\n{}\n", ids[1], mine[1].text()).into_bytes();
    want.extend_from_slice(&note);
    assert_eq!(body, want);
    assert_eq!(ok(&db, &format!("/sumdb/{name}{lookup}")), want);
    assert_eq!(
        get(&db, "/lookup/example.com/!rec1@v1.0.0").header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let missing = get(&db, "/lookup/example.com/nope@v1.0.0");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.text(), "not found: example.com/nope@v1.0.0\n");
    assert_eq!(get(&db, "/lookup/example.com/Rec1@v1.0.0").status, 400);
    assert_eq!(get(&db, "/lookup/example.com/rec1").status, 400);

    // The proxy form: supported for this name only; nothing but the database is served.
    let supported = get(&db, &format!("/sumdb/{name}/supported"));
    assert_eq!((supported.status, supported.body.len()), (200, 0));
    assert_eq!(ok(&db, &format!("/sumdb/{name}/tile/8/1/000.p/3")), level1);
    for absent in [
        "/sumdb/sum.other.e2e.test/supported",
        "/supported",
        "/example.com/lib/@v/list",
        "/",
    ] {
        assert_eq!(get(&db, absent).status, 404, "{absent}");
    }
    assert_eq!(db.hits(&format!("/sumdb/{name}/supported")), 1);
    assert_eq!(db.hits("/tile/8/1/000.p/3"), 1);

    // Growth: append-only, and a narrower partial tile than the tree's is the prefix.
    let old_edge = ok(&db, "/tile/8/0/003.p/232");
    let more = ModuleRecord::new("example.com/later", "v1.0.0", "h1:a", "h1:b");
    let grown = db.append(std::slice::from_ref(&more), 99);
    assert_eq!(grown.n, 1100);
    let (records2, tree2) = read_log(&db);
    assert_eq!(tree2, grown);
    assert_eq!(records2[..1000], records[..]);
    let leaves2: Vec<[u8; 32]> = records2.iter().map(|r| leaf(r)).collect();
    assert_eq!(naive_root(&leaves2), grown.hash.0);
    assert_eq!(ok(&db, "/tile/8/0/003.p/232"), old_edge);
    assert_eq!(ok(&db, "/tile/8/0/003")[..232 * 32], old_edge[..]);
    assert_eq!(ok(&db, "/tile/8/0/004.p/76"), leaves2[1024..].concat());
    let relooked = ok(&db, lookup);
    assert!(relooked.ends_with(&ok(&db, "/latest")) && relooked != body);

    // Faults: one flipped byte in one tile (every width, both forms); a lookup whose record
    // differs from the log's; statuses.
    let honest = leaves2[256..512].concat();
    db.set_fault("/tile/8/0/001", SumdbFault::FlipTileByte(40));
    for path in [
        "/tile/8/0/001".to_string(),
        format!("/sumdb/{name}/tile/8/0/001.p/9"),
    ] {
        let bad = ok(&db, &path);
        let diff: Vec<usize> = (0..bad.len()).filter(|&i| bad[i] != honest[i]).collect();
        assert_eq!(diff, [40], "{path}");
    }
    assert_eq!(ok(&db, "/tile/8/0/000"), leaves2[..256].concat());
    db.clear_fault("/tile/8/0/001");
    assert_eq!(ok(&db, "/tile/8/0/001"), honest);

    db.set_fault(lookup, SumdbFault::TamperRecord);
    let tampered = ok(&db, lookup);
    let record = &tampered[format!("{}\n", ids[1]).len()..][..mine[1].text().len()];
    assert_ne!(record, mine[1].text().as_bytes());
    assert!(tampered.starts_with(format!("{}\nexample.com/Rec1 v1.0.0 h1:", ids[1]).as_bytes()));
    db.clear_fault(lookup);

    db.set_fault("/latest", SumdbFault::Status(503));
    assert_eq!(get(&db, "/latest").status, 503);
    assert_eq!(get(&db, &format!("/sumdb/{name}/latest")).status, 503);
    db.clear_fault("/latest");
    db.set_global_fault(Some(SumdbFault::Status(500)));
    assert_eq!(get(&db, lookup).status, 500);
    assert_eq!(get(&db, &format!("/sumdb/{name}/supported")).status, 500);
    assert_eq!(get(&db, "/example.com/lib/@v/list").status, 404);
    db.set_global_fault(None);

    // History rewritten: same size, another root, the lookup serves the new text.
    let forged = "example.com/Rec1 v1.0.0 h1:forged\n";
    let forked = db.rewrite_record(ids[1], forged);
    assert_eq!(forked.n, grown.n);
    assert_ne!(forked.hash, grown.hash);
    let (records3, _) = read_log(&db);
    assert_eq!(records3[ids[1] as usize], forged.as_bytes());
    let leaves3: Vec<[u8; 32]> = records3.iter().map(|r| leaf(r)).collect();
    assert_eq!(naive_root(&leaves3), forked.hash.0);
    assert!(ok(&db, lookup).starts_with(format!("{}\n{forged}\n", ids[1]).as_bytes()));

    let addr = db.addr();
    db.stop();
    assert!(
        get_with_timeout(addr, "/latest", Duration::from_secs(5)).is_err(),
        "a stopped database still answers"
    );
}
