//! An air gap that lasts: generations of incremental bundles (`export --since`) while the
//! harness's checksum database grows between them, one client GOPATH kept across all of them
//! (it remembers the previous generation's tree, which the next proxy must prove), and a
//! machine joining with a tree of its own (`prewarm --sumdb-known-tree`) and one that skips a
//! generation; the last generation is fetched by `prewarm --refresh`. Also: a narrower partial
//! tile cut from a stored wider one is the database's own, a chain with a gap is refused naming
//! the missing bundle, and a known tree signed by another key is refused. And `serve` with
//! `prewarm.refresh_interval` fetches a new release on its own.

use std::path::{Path, PathBuf};

use gomod::sumdb::tlog::Tile;
use gomodproxy_tests::fixtures::{self, FileContent, ModuleVersion};
use gomodproxy_tests::sumdb::{ModuleRecord, SumdbServer};
use gomodproxy_tests::{Go, ProxyConfig, TestDir, Upstream};

use crate::airgap::write_module;

const MODULE: &str = "example.org/gen";
const DB: &str = "sumdb.chain.test";

/// `example.org/gen` v1.`n`.0, whose `Gen()` returns `n`, written to `upstream` (with the
/// `@v/list` of every generation so far); returns its checksum-database record.
fn publish(upstream: &Path, n: u32) -> ModuleRecord {
    let mv = ModuleVersion {
        module: MODULE.into(),
        version: format!("v1.{n}.0"),
        listed: true,
        go_mod: None,
        files: vec![(
            "gen.go".into(),
            FileContent::Text(format!("package gen\n\nfunc Gen() int {{ return {n} }}\n")),
        )],
    };
    write_module(upstream, &mv);
    let list: String = (1..=n).map(|i| format!("v1.{i}.0\n")).collect();
    std::fs::write(upstream.join(MODULE).join("@v/list"), list).unwrap();
    let mut zip = Vec::new();
    fixtures::write_zip(&mv, std::io::Cursor::new(&mut zip)).unwrap();
    ModuleRecord::new(
        MODULE,
        &mv.version,
        &fixtures::h1_zip(&zip),
        &fixtures::h1_go_mod(&mv.mod_bytes()),
    )
}

/// A main module that prints `gen.Gen()` (with `println`: no package of the standard library
/// to compile).
fn main_module(dir: &Path) -> PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("go.mod"), "module example.org/app\n\ngo 1.21\n").unwrap();
    std::fs::write(
        app.join("main.go"),
        "package main\n\nimport \"example.org/gen\"\n\nfunc main() { println(gen.Gen()) }\n",
    )
    .unwrap();
    app
}

/// `go get` generation `n`, `go build` the app offline and run it: it prints `n`.
fn get_and_run(go: &Go, app: &Path, n: u32) {
    go.run(app, &["get", &format!("{MODULE}@v1.{n}.0")])
        .assert_success();
    let exe = app.join("app.exe");
    go.run(app, &["build", "-o", exe.to_str().unwrap(), "."])
        .assert_success();
    let out = std::process::Command::new(&exe).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), n.to_string());
}

/// The size of the tree a client remembers.
fn remembered(go: &Go) -> i64 {
    let note = std::fs::read_to_string(go.gopath().join(format!("pkg/sumdb/{DB}/latest")))
        .expect("the client remembers a tree");
    note.lines().nth(1).unwrap().parse().unwrap()
}

#[test]
fn generations_of_incremental_bundles_keep_every_client_verifying_offline() {
    let t = TestDir::new("airgap-chain");
    let upstream = t.sub("upstream");
    let path = |name: &str| t.sub("transfer").join(name).to_str().unwrap().to_string();
    std::fs::create_dir_all(t.sub("transfer")).unwrap();

    // Sizes chosen so that the joining machine's tree ends in a level-0 tile that no proof
    // of the proxy's own trees and records needs.
    let db = SumdbServer::start(DB, &[publish(&upstream, 1)], 3000);
    let up = Upstream::start(&upstream);
    let vkey = db.vkey();
    let connected = ProxyConfig::new(&t.sub("connected"), &up.url()).with_sumdb(&db);
    let airgapped = ProxyConfig::new(&t.sub("airgapped"), "")
        .set("MODE", "offline")
        .set("SUMDB__DATABASES", &vkey);
    let app = main_module(t.path());
    // One client kept across every generation.
    let client_dir = t.sub("client");

    // Generation 1: a full bundle.
    connected
        .run(&["prewarm", &format!("{MODULE}@v1.1.0")])
        .assert_success();
    connected
        .run(&["export", &path("gen1.tar.zst")])
        .assert_success();
    airgapped
        .run(&["import", &path("gen1.tar.zst")])
        .assert_success();
    let hits = db.total_hits();
    let proxy = airgapped.clone().start(&t.sub("logs1"));
    let client = Go::new(&client_dir, &proxy.url()).env("GOSUMDB", &vkey);
    get_and_run(&client, &app, 1);
    let n1 = remembered(&client);
    assert_eq!(n1, db.tree().n);
    // A machine that will skip generation 2: it remembers generation 1's tree.
    let skipper_app = main_module(&t.sub("skipper-work"));
    let skipper_dir = t.sub("skipper");
    let skipper_sumdb = Go::new(&skipper_dir, "off")
        .gopath()
        .join(format!("pkg/sumdb/{DB}"));
    std::fs::create_dir_all(&skipper_sumdb).unwrap();
    std::fs::copy(
        client.gopath().join(format!("pkg/sumdb/{DB}/latest")),
        skipper_sumdb.join("latest"),
    )
    .unwrap();

    // A narrower partial tile, cut from the proxy's wider one, is the database's own.
    let k = (n1 - 1) >> 8;
    let wide = Tile {
        h: 8,
        l: 0,
        n: k,
        w: (n1 - (k << 8)) as u32,
    };
    assert!(wide.w > 2, "{wide:?}");
    let narrow = wide.with_width(wide.w - 2);
    let got = proxy.get(&format!("/sumdb/{DB}/{}", narrow.path()));
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(Some(got.body.clone()), db.tile_data(&narrow));
    // Offline means offline: the database heard nothing from the air-gapped side.
    assert_eq!(db.total_hits(), hits);
    drop(proxy);

    // A machine that will join the air gap used the database directly meanwhile.
    db.append(&[], 700);
    let joiner_note = t.path().join("joiner-latest");
    std::fs::write(&joiner_note, db.latest_note()).unwrap();
    // Its own main module: the kept client's go.sum would spare it the checksum database.
    let joiner_app = main_module(&t.sub("joiner-work"));
    let joiner = Go::new(&t.sub("joiner"), "off").env("GOSUMDB", &vkey);
    // The build cache is not what is tested: shared, so that the runtime is compiled once.
    let gocache = client_dir.join("gocache");
    let joiner_latest = joiner.gopath().join(format!("pkg/sumdb/{DB}"));
    std::fs::create_dir_all(&joiner_latest).unwrap();
    std::fs::copy(&joiner_note, joiner_latest.join("latest")).unwrap();

    // Generation 2: the log grew; an increment since the manifest beside generation 1.
    db.append(&[publish(&upstream, 2)], 600);
    connected
        .run(&["prewarm", &format!("{MODULE}@v1.2.0")])
        .assert_success();
    let out = connected.run(&[
        "export",
        "--since",
        &format!("{}.manifest.json", path("gen1.tar.zst")),
        &path("gen2.tar.zst"),
    ]);
    out.assert_success();
    assert!(
        out.stdout.contains("follows gen1.tar.zst"),
        "{}",
        out.stdout
    );
    airgapped
        .run(&["import", &path("gen2.tar.zst")])
        .assert_success();
    let proxy = airgapped.clone().start(&t.sub("logs2"));
    let client = Go::new(&client_dir, &proxy.url()).env("GOSUMDB", &vkey);
    get_and_run(&client, &app, 2);
    let n2 = remembered(&client);
    assert!(n2 > n1 && n2 == db.tree().n, "{n1} -> {n2}");
    // The joiner's tree is one this proxy cannot prove: go fails, with the proxy's words.
    let joiner = Go::new(&t.sub("joiner"), &proxy.url())
        .env("GOSUMDB", &vkey)
        .env("GOCACHE", gocache.to_str().unwrap());
    let out = joiner.run(&joiner_app, &["get", &format!("{MODULE}@v1.2.0")]);
    assert!(!out.success, "{out:?}");
    assert!(
        out.stderr.contains("offline mode") && out.stderr.contains("--sumdb-known-tree"),
        "{}",
        out.stderr
    );
    drop(proxy);

    // A known tree signed by another key is refused before anything is fetched.
    let mut other = gomodproxy_test_support::TestLog::from_seed(DB, [9; 32]);
    other.fillers(3500);
    let forged = t.path().join("forged-latest");
    std::fs::write(&forged, other.note()).unwrap();
    let before = (up.total_hits(), db.total_hits());
    let out = connected.run(&[
        "prewarm",
        "--sumdb-known-tree",
        forged.to_str().unwrap(),
        &format!("{MODULE}@v1.2.0"),
    ]);
    assert!(!out.success, "{out:?}");
    assert!(
        out.stderr.contains(forged.to_str().unwrap()) && out.stderr.contains("signed"),
        "{}",
        out.stderr
    );
    assert_eq!((up.total_hits(), db.total_hits()), before);

    // Generation 3: a refresh, with the joiner's tree known; since the bundle file of
    // generation 2.
    db.append(&[publish(&upstream, 3)], 300);
    // The connected side's whole job: refresh what is stored (v1.3.0 is new upstream).
    let out = connected.run(&[
        "prewarm",
        "--refresh",
        "--sumdb-known-tree",
        joiner_note.to_str().unwrap(),
    ]);
    out.assert_success();
    assert!(
        out.stdout.contains("1 module versions") && out.stdout.contains(" 1 fetched"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("(1 known)"), "{}", out.stdout);
    connected
        .run(&[
            "export",
            "--since",
            &path("gen2.tar.zst"),
            &path("gen3.tar.zst"),
        ])
        .assert_success();
    // Generation 3 without generation 2: refused, naming it.
    let gap = ProxyConfig::new(&t.sub("gap"), "")
        .set("MODE", "offline")
        .set("SUMDB__DATABASES", &vkey);
    gap.run(&["import", &path("gen1.tar.zst")]).assert_success();
    let out = gap.run(&["import", &path("gen3.tar.zst")]);
    assert!(!out.success, "{out:?}");
    assert!(
        out.stderr.contains("import gen2.tar.zst first"),
        "{}",
        out.stderr
    );

    airgapped
        .run(&["import", &path("gen3.tar.zst")])
        .assert_success();
    airgapped.run(&["verify"]).assert_success();
    let proxy = airgapped.clone().start(&t.sub("logs3"));
    let client = Go::new(&client_dir, &proxy.url()).env("GOSUMDB", &vkey);
    get_and_run(&client, &app, 3);
    let n3 = remembered(&client);
    assert!(n3 > n2 && n3 == db.tree().n, "{n2} -> {n3}");
    let joiner = Go::new(&t.sub("joiner"), &proxy.url())
        .env("GOSUMDB", &vkey)
        .env("GOCACHE", gocache.to_str().unwrap());
    get_and_run(&joiner, &joiner_app, 3);
    assert_eq!(remembered(&joiner), n3);
    // Every recorded tree is proven at every seal: skipping a bundle is harmless.
    let skipper = Go::new(&skipper_dir, &proxy.url())
        .env("GOSUMDB", &vkey)
        .env("GOCACHE", gocache.to_str().unwrap());
    assert_eq!(remembered(&skipper), n1);
    get_and_run(&skipper, &skipper_app, 3);
    assert_eq!(remembered(&skipper), n3);
}

#[test]
fn serve_refreshes_the_stored_modules_on_its_schedule() {
    let t = TestDir::new("airgap-schedule");
    let upstream = t.sub("upstream");
    let db = SumdbServer::start("sumdb.schedule.test", &[publish(&upstream, 1)], 100);
    let up = Upstream::start(&upstream);
    let cfg = ProxyConfig::new(&t.sub("store"), &up.url()).with_sumdb(&db);
    cfg.run(&["prewarm", &format!("{MODULE}@v1.1.0")])
        .assert_success();
    // A new release upstream, and in the log.
    db.append(&[publish(&upstream, 2)], 50);
    let zip = format!("/{MODULE}/@v/v1.2.0.zip");
    let proxy = cfg
        .set("PREWARM__REFRESH_INTERVAL", "1s")
        .start(&t.sub("logs"));
    gomodproxy_tests::util::wait_for(
        "a scheduled refresh",
        std::time::Duration::from_secs(30),
        || {
            let logs = proxy.logs();
            logs.lines()
                .any(|l| l.contains("scheduled refresh finished"))
                .then_some(logs)
        },
    );
    assert_eq!(up.hits(&zip), 1, "the new release was fetched once");
    // It is stored: served without asking upstream.
    let before = up.total_hits();
    let got = proxy.get(&zip);
    assert_eq!(got.status, 200);
    assert_eq!(up.total_hits(), before);
}
