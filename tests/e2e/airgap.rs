//! Air-gapped serving, end to end: `gomodproxy prewarm` fills a store online, then a proxy in
//! offline mode — upstream and checksum database stopped — serves a go command that starts from
//! an empty GOMODCACHE and GOPATH and verifies every download against the harness's checksum
//! database through the proxy (GOSUMDB is the database's key alone, so go asks the proxy's
//! `/sumdb/<name>/`). Also: what prewarm fetches is exactly what go itself fetches, a second run
//! fetches nothing, a toolchain switch works offline, and a tampered upstream zip never enters
//! the store even when the client does not verify.

use std::collections::BTreeSet;
use std::path::Path;

use gomodproxy_tests::fixtures::{self, FileContent, ModuleVersion, storage_rel_path};
use gomodproxy_tests::sumdb::{ModuleRecord, SumdbServer, fixture_records};
use gomodproxy_tests::{Fault, Fixtures, Go, ProxyConfig, TestDir, Upstream};

use crate::common;

/// The artifact requests among `requests`, split by kind: `(mods, zips, infos)`, each as
/// escaped `module/@v/version` without the extension.
fn artifacts(requests: &[String]) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let (mut mods, mut zips, mut infos) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for r in requests {
        let r = r.trim_start_matches('/');
        if let Some(stem) = r.strip_suffix(".mod") {
            mods.insert(stem.to_string());
        } else if let Some(stem) = r.strip_suffix(".zip") {
            zips.insert(stem.to_string());
        } else if let Some(stem) = r.strip_suffix(".info") {
            infos.insert(stem.to_string());
        }
    }
    (mods, zips, infos)
}

/// `artifact_path` without the leading `/` and the extension.
fn stem(module: &str, version: &str) -> String {
    fixtures::artifact_path(module, version, "x")
        .trim_start_matches('/')
        .trim_end_matches(".x")
        .to_string()
}

fn go_mod_item(app: &Path) -> String {
    format!("go.mod:{}", app.join("go.mod").display())
}

#[test]
fn prewarm_a_go_mod_then_build_offline_with_checksum_verification() {
    let fx = Fixtures::shared();
    let t = TestDir::new("airgap-gomod");
    let db = SumdbServer::with_fixtures("sumdb.airgap.test");

    // The oracle: what the go command itself fetches to download and build the app.
    let up0 = Upstream::start(fx.root());
    let app0 = common::app(&t.sub("oracle"));
    let go0 = Go::new(&t.sub("go0"), &up0.url()).env("GOSUMDB", &db.gosumdb());
    go0.run(&app0, &["mod", "download"]).assert_success();
    common::build_run(&go0, &app0);
    let (go_mods, go_zips, _) = artifacts(&up0.requests());
    assert!(
        !go_zips.is_empty() && go_mods.len() > go_zips.len(),
        "{go_mods:?} {go_zips:?}"
    );

    // Prewarm the app's go.mod through the proxy's own code, online.
    let up = Upstream::start(fx.root());
    let root = t.sub("store");
    let cfg = ProxyConfig::new(&root, &up.url()).with_sumdb(&db);
    let app = common::app(t.path());
    let out = cfg.run(&["prewarm", &go_mod_item(&app)]);
    out.assert_success();
    let (mods, zips, infos) = artifacts(&up.requests());
    assert_eq!(zips, go_zips, "zips prewarm fetched vs zips go fetched");
    assert_eq!(
        mods, go_mods,
        ".mod files prewarm fetched vs those go fetched"
    );
    assert_eq!(
        infos, zips,
        ".info fetched for exactly the versions whose zip is needed"
    );
    for (m, v) in [("example.com/dep", "v1.0.0"), ("example.com/lib", "v1.0.0")] {
        assert!(
            !zips.contains(&stem(m, v)),
            "graph-only {m}@{v} zip prewarmed"
        );
    }
    assert!(out.stdout.contains("0 failed"), "{}", out.stdout);

    // A second run finds everything stored and asks upstream for nothing.
    let before = up.total_hits();
    let again = cfg.run(&["prewarm", &go_mod_item(&app)]);
    again.assert_success();
    assert_eq!(
        up.total_hits(),
        before,
        "second prewarm hit upstream: {}",
        again.stdout
    );
    assert!(again.stdout.contains(" 0 fetched"), "{}", again.stdout);

    // Cut the network: upstream and checksum database gone, proxy offline.
    let vkey = db.vkey();
    up.stop();
    db.stop();
    let proxy = cfg
        .clone()
        .set("MODE", "offline")
        .set("UPSTREAM", "")
        .start(&t.sub("logs"));
    let go = Go::new(&t.sub("go"), &proxy.url()).env("GOSUMDB", &vkey);
    common::build_run(&go, &app);
    common::check_go_sum_against_fixtures(&app, fx, false);
    // The client really verified through the proxy: it holds a tree head of that database.
    let latest = go.gopath().join("pkg/sumdb/sumdb.airgap.test/latest");
    assert!(
        latest.is_file(),
        "go kept no tree head at {}",
        latest.display()
    );

    // A module version that was never prewarmed fails with the proxy's reason.
    let out = go.run(&app, &["mod", "download", "example.com/lib@v1.2.0"]);
    assert!(!out.success, "{out:?}");
    assert!(
        out.stderr.contains("offline mode") && out.stderr.contains("example.com/lib@v1.2.0"),
        "{}",
        out.stderr
    );
}

#[test]
fn prewarm_a_go_sum_fetches_each_line_once() {
    let fx = Fixtures::shared();
    let t = TestDir::new("airgap-gosum");
    let db = SumdbServer::with_fixtures("sumdb.gosum.test");

    // A go.sum written by the go command for the app.
    let up0 = Upstream::start(fx.root());
    let app0 = common::app(&t.sub("oracle"));
    let go0 = Go::new(&t.sub("go0"), &up0.url()).env("GOSUMDB", &db.gosumdb());
    go0.run(&app0, &["mod", "download", "all"]).assert_success();
    let sum = fixtures::parse_go_sum(&std::fs::read_to_string(app0.join("go.sum")).unwrap());
    let want_zips: BTreeSet<String> = sum.zip.iter().map(|(m, v, _)| stem(m, v)).collect();
    let want_mods: BTreeSet<String> = sum
        .zip
        .iter()
        .chain(&sum.go_mod)
        .map(|(m, v, _)| stem(m, v))
        .collect();

    let up = Upstream::start(fx.root());
    let cfg = ProxyConfig::new(&t.sub("store"), &up.url()).with_sumdb(&db);
    let item = format!("go.sum:{}", app0.join("go.sum").display());
    cfg.run(&["prewarm", &item]).assert_success();
    let (mods, zips, infos) = artifacts(&up.requests());
    assert_eq!(
        zips, want_zips,
        "a zip for every h1 line, none for /go.mod-only lines"
    );
    assert_eq!(infos, want_zips);
    assert_eq!(mods, want_mods, "a .mod for every module version in go.sum");
    for stem in &zips {
        assert_eq!(
            up.hits(&format!("/{stem}.zip")),
            1,
            "{stem}.zip fetched more than once"
        );
    }
    let before = up.total_hits();
    let again = cfg.run(&["prewarm", &item]);
    again.assert_success();
    assert_eq!(up.total_hits(), before, "{}", again.stdout);
}

/// A fake Go toolchain distribution: `bin/go` is a shell script that says who it is.
fn toolchain_module(go_version: &str, goos: &str, goarch: &str) -> ModuleVersion {
    let text = |s: &str| FileContent::Text(s.to_string());
    ModuleVersion {
        module: "golang.org/toolchain".into(),
        version: format!("v0.0.1-{go_version}.{goos}-{goarch}"),
        listed: false,
        go_mod: None,
        files: vec![
            (
                "bin/go".into(),
                text(&format!(
                    "#!/bin/sh\necho \"fake toolchain {go_version}: $*\"\n"
                )),
            ),
            ("bin/gofmt".into(), text("#!/bin/sh\nexit 0\n")),
            (
                format!("pkg/tool/{goos}_{goarch}/README"),
                text("fake tools\n"),
            ),
            // go 1.26 marks the files under lib/ executable too, so the directory must exist.
            ("lib/README".into(), text("fake lib\n")),
            ("VERSION".into(), text(&format!("{go_version}\n"))),
        ],
    }
}

/// Writes one module version in GOPROXY layout under `root`.
pub(crate) fn write_module(root: &Path, mv: &ModuleVersion) {
    let dir = root.join(fixtures::escape(&mv.module)).join("@v");
    std::fs::create_dir_all(&dir).unwrap();
    // Not `with_extension`: versions contain dots.
    let file = |ext: &str| dir.join(format!("{}.{ext}", fixtures::escape(&mv.version)));
    std::fs::write(file("info"), mv.info_json()).unwrap();
    std::fs::write(file("mod"), mv.mod_bytes()).unwrap();
    let zip = std::fs::File::create(file("zip")).unwrap();
    fixtures::write_zip(mv, std::io::BufWriter::new(zip)).unwrap();
}

#[test]
fn a_prewarmed_toolchain_is_switched_to_offline() {
    let t = TestDir::new("airgap-toolchain");
    let host = Go::new(&t.sub("probe"), "off").run(t.path(), &["env", "GOOS", "GOARCH"]);
    host.assert_success();
    let platform: Vec<&str> = host.stdout.lines().collect();
    let (goos, goarch) = (platform[0], platform[1]);
    let go_version = "go1.99.1";
    let mv = toolchain_module(go_version, goos, goarch);
    let upstream_root = t.sub("upstream");
    write_module(&upstream_root, &mv);
    let mut zip = Vec::new();
    fixtures::write_zip(&mv, std::io::Cursor::new(&mut zip)).unwrap();
    let record = ModuleRecord::new(
        &mv.module,
        &mv.version,
        &fixtures::h1_zip(&zip),
        &fixtures::h1_go_mod(&mv.mod_bytes()),
    );
    let mut records = fixture_records().to_vec();
    records.push(record);
    let db = SumdbServer::start("sumdb.toolchain.test", &records, 5000);
    let up = Upstream::start(&upstream_root);
    let root = t.sub("store");
    let cfg = ProxyConfig::new(&root, &up.url()).with_sumdb(&db);
    let out = cfg.run(&[
        "prewarm",
        "--toolchain",
        go_version,
        "--platform",
        &format!("{goos}/{goarch}"),
    ]);
    out.assert_success();
    assert!(out.stdout.contains("1 fetched"), "{}", out.stdout);

    let vkey = db.vkey();
    up.stop();
    db.stop();
    let proxy = cfg
        .set("MODE", "offline")
        .set("UPSTREAM", "")
        .start(&t.sub("logs"));
    // GOTOOLCHAIN names a toolchain newer than the local go: go downloads it through GOPROXY,
    // checks it against the checksum database (required for toolchains), and runs it.
    let go = Go::new(&t.sub("go"), &proxy.url())
        .env("GOSUMDB", &vkey)
        .env("GOTOOLCHAIN", go_version);
    let out = go.run(t.path(), &["version"]);
    out.assert_success();
    assert_eq!(
        out.stdout.trim(),
        format!("fake toolchain {go_version}: version"),
        "stderr: {}",
        out.stderr
    );
    // Any other toolchain is not in the cache, and go says so with the proxy's reason.
    let other = Go::new(&t.sub("go2"), &proxy.url())
        .env("GOSUMDB", &vkey)
        .env("GOTOOLCHAIN", "go1.99.2");
    let out = other.run(t.path(), &["version"]);
    assert!(!out.success, "{out:?}");
    assert!(out.stderr.contains("go1.99.2"), "{}", out.stderr);
}

#[test]
fn a_tampered_upstream_zip_is_refused_even_when_the_client_does_not_verify() {
    let fx = Fixtures::shared();
    let t = TestDir::new("airgap-tampered");
    let db = SumdbServer::with_fixtures("sumdb.tamper.test");
    let up = Upstream::start(fx.root());
    let (m, v) = ("example.com/lib", "v1.1.0");
    // A valid module zip for m@v, with other content than the one the database vouches for.
    let mut evil = fx.get(m, v).clone();
    evil.files.push((
        "evil.go".into(),
        FileContent::Text("package lib\n\nfunc Evil() {}\n".into()),
    ));
    let mut bytes = Vec::new();
    fixtures::write_zip(&evil, std::io::Cursor::new(&mut bytes)).unwrap();
    up.set_fault(&fixtures::artifact_path(m, v, "zip"), Fault::Body(bytes));
    let root = t.sub("store");
    let proxy = ProxyConfig::new(&root, &up.url())
        .with_sumdb(&db)
        .start(&t.sub("logs"));
    // The client trusts the proxy entirely: no checksum database of its own.
    let go = Go::new(&t.sub("go"), &proxy.url()).env("GONOSUMDB", "*");
    let out = go.run(t.path(), &["mod", "download", "-json", &format!("{m}@{v}")]);
    assert!(!out.success, "{out:?}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("checksum mismatch"), "{said}");
    assert!(
        said.contains(&fixtures::h1_zip(&fx.zip_bytes(m, v))),
        "the error names the hash the database has: {said}"
    );
    for ext in ["zip", "ziphash"] {
        let path = root.join(storage_rel_path(m, v, ext));
        assert!(!path.exists(), "{} was stored", path.display());
    }
    // The honest go.mod of the same version was verified and is served.
    let out = go.run(t.path(), &["mod", "download", "-json", &format!("{m}@{v}")]);
    assert!(!out.success);
    assert!(root.join(storage_rel_path(m, v, "mod")).is_file());
    // Once upstream serves the real zip, it is accepted.
    up.clear_fault(&fixtures::artifact_path(m, v, "zip"));
    let out = go.run(t.path(), &["mod", "download", "-json", &format!("{m}@{v}")]);
    out.assert_success();
    assert!(root.join(storage_rel_path(m, v, "zip")).is_file());
    let metrics = proxy.get("/metrics");
    assert!(
        metrics
            .text()
            .contains("gomodproxy_security_refusals_total"),
        "{}",
        metrics.text()
    );
}

#[test]
fn export_from_fs_import_into_s3_then_build_offline_with_verification() {
    let Some(s3) = gomodproxy_tests::servers::shared_s3(
        "export_from_fs_import_into_s3_then_build_offline_with_verification",
    ) else {
        return;
    };
    let fx = Fixtures::shared();
    let t = TestDir::new("airgap-bundle");
    let db = SumdbServer::with_fixtures("sumdb.bundle.test");
    let up = Upstream::start(fx.root());

    // Connected side: fs store, prewarm the app's go.mod, export everything.
    let connected = ProxyConfig::new(&t.sub("connected"), &up.url()).with_sumdb(&db);
    let app = common::app(t.path());
    connected
        .run(&["prewarm", &go_mod_item(&app)])
        .assert_success();
    let bundle = t.sub("transfer").join("modules.tar.zst");
    std::fs::create_dir_all(bundle.parent().unwrap()).unwrap();
    let out = connected.run(&["export", bundle.to_str().unwrap()]);
    out.assert_success();

    // The network goes away for good.
    let vkey = db.vkey();
    up.stop();
    db.stop();

    // Air-gapped side: an S3 store, offline, knowing only the database's key.
    let prefix = gomodproxy_tests::servers::unique_prefix("airgap");
    let airgapped = ProxyConfig::new(&t.sub("unused"), "")
        .s3(&s3, &prefix)
        .set("MODE", "offline")
        .set("SUMDB__DATABASES", &vkey);
    let out = airgapped.run(&["import", bundle.to_str().unwrap()]);
    out.assert_success();
    assert!(out.stdout.contains(" 0 refused"), "{}", out.stdout);
    // Importing again changes nothing.
    let again = airgapped.run(&["import", bundle.to_str().unwrap()]);
    again.assert_success();
    assert!(again.stdout.contains(" 0 imported"), "{}", again.stdout);
    airgapped.run(&["verify"]).assert_success();

    let proxy = airgapped.start(&t.sub("logs"));
    let go = Go::new(&t.sub("go"), &proxy.url()).env("GOSUMDB", &vkey);
    common::build_run(&go, &app);
    common::check_go_sum_against_fixtures(&app, fx, false);
    let out = go.run(&app, &["mod", "download", "example.com/lib@v1.2.0"]);
    assert!(!out.success, "{out:?}");
    assert!(out.stderr.contains("offline mode"), "{}", out.stderr);
}

#[test]
fn the_configured_prewarm_runs_at_start_and_shows_in_metrics_and_logs() {
    let fx = Fixtures::shared();
    let t = TestDir::new("prewarm-background");
    let db = SumdbServer::with_fixtures("sumdb.background.test");
    let up = Upstream::start(fx.root());
    let root = t.sub("store");
    let proxy = ProxyConfig::new(&root, &up.url())
        .with_sumdb(&db)
        .set(
            "PREWARM__ITEMS",
            "example.com/lib@v1.1.0,example.com/Upper/Case@latest",
        )
        .start(&t.sub("logs"));
    let metrics = gomodproxy_tests::util::wait_for(
        "the background prewarm to finish",
        std::time::Duration::from_secs(60),
        || {
            let m = proxy.get("/metrics").text();
            (m.contains("gomodproxy_prewarm_running 0")
                && m.contains("gomodproxy_prewarm_targets_done_total{result=\"fetched\"} 2"))
            .then_some(m)
        },
    );
    assert!(
        metrics.contains("gomodproxy_prewarm_targets 2"),
        "{metrics}"
    );
    for (m, v) in [
        ("example.com/lib", "v1.1.0"),
        ("example.com/Upper/Case", "v1.0.0"),
    ] {
        for ext in ["info", "mod", "zip"] {
            let path = root.join(storage_rel_path(m, v, ext));
            assert!(path.is_file(), "{} not prewarmed", path.display());
        }
    }
    let logs = proxy.logs();
    assert!(
        logs.contains("background prewarm started") && logs.contains("background prewarm finished"),
        "{logs}"
    );
}

#[test]
fn prewarm_through_a_running_server() {
    let fx = Fixtures::shared();
    let t = TestDir::new("prewarm-server");
    let db = SumdbServer::with_fixtures("sumdb.viaserver.test");
    // A client's tree from before the log grew.
    let known = t.path().join("known-latest");
    std::fs::write(&known, db.latest_note()).unwrap();
    db.append(&[], 300);
    let up = Upstream::start(fx.root());
    let root = t.sub("store");
    let config = ProxyConfig::new(&root, &up.url()).with_sumdb(&db);
    let proxy = config.clone().start(&t.sub("logs"));
    let app = common::app(t.path());
    // The CLI opens no store of its own: it asks the server, which fetches, verifies and stores.
    let cli = ProxyConfig::new(&t.sub("not-used"), "off").with_sumdb(&db);
    let args = ["prewarm", "--server", &proxy.url(), &go_mod_item(&app)];
    let out = cli.run(&args);
    out.assert_success();
    assert!(out.stdout.contains(" 0 failed"), "{}", out.stdout);
    assert!(
        !t.sub("not-used").join("example.com").exists(),
        "the CLI wrote a store of its own"
    );
    let (m, v) = ("example.com/big", "v1.0.0");
    assert!(root.join(storage_rel_path(m, v, "zip")).is_file());
    // Every target's record was fetched from the server and proven with tiles the server served.
    let sealed: usize = out
        .stdout
        .split("; ")
        .find_map(|part| part.strip_suffix(" checksum records provable offline\n"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sealing count in {:?}", out.stdout));
    let targets: usize = out
        .stdout
        .strip_prefix("prewarm: ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no target count in {:?}", out.stdout));
    assert!(sealed > 0 && sealed == targets, "{}", out.stdout);
    // A second run through the server finds everything there; the known tree is proven with
    // tiles the server serves (and stores).
    let hits = up.total_hits();
    let mut with_known = args.to_vec();
    with_known.insert(1, "--sumdb-known-tree");
    with_known.insert(2, known.to_str().unwrap());
    let again = cli.run(&with_known);
    again.assert_success();
    assert!(again.stdout.contains(" 0 fetched"), "{}", again.stdout);
    assert!(again.stdout.contains("(1 known)"), "{}", again.stdout);
    assert_eq!(up.total_hits(), hits);
    // A tree signed by another key is refused before anything is asked.
    let mut other = gomodproxy_test_support::TestLog::from_seed("sumdb.viaserver.test", [3; 32]);
    other.fillers(10);
    std::fs::write(&known, other.note()).unwrap();
    let refused = cli.run(&with_known);
    assert!(!refused.success, "{refused:?}");
    assert!(
        refused.stderr.contains("not a tree head signed"),
        "{}",
        refused.stderr
    );
}
