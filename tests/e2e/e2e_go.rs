//! The real go command through the proxy: download and build the fixture app from a fresh
//! module cache, and check that every hash go recorded is the hash of the fixture bytes, the hash
//! the proxy stored, and the hash the `gomod` crate computes.

use gomodproxy_tests::fixtures::{self, storage_rel_path};
use gomodproxy_tests::{Fixtures, Go, ProxyConfig, TestDir, Upstream};

use crate::common;

#[test]
fn go_downloads_and_builds_through_the_proxy_with_matching_hashes() {
    let fx = Fixtures::shared();
    let t = TestDir::new("e2e-go");
    let up = Upstream::start(fx.root());
    let root = t.sub("storage");
    let proxy = ProxyConfig::new(&root, &up.url()).start(&t.sub("logs"));
    let app = common::app(t.path());
    let go = Go::new(&t.sub("go"), &proxy.url());

    let downloads = common::download_build_run(&go, &app);

    // What `go mod download -json` reports equals the oracle.
    for d in &downloads {
        assert!(
            d.get("Error").is_none(),
            "go mod download reported an error: {d}"
        );
        let (m, v) = (d["Path"].as_str().unwrap(), d["Version"].as_str().unwrap());
        if m == "example.com/app" {
            continue;
        }
        assert_eq!(
            d["Sum"],
            fixtures::h1_zip(&fx.zip_bytes(m, v)),
            "Sum of {m}@{v}"
        );
        assert_eq!(
            d["GoModSum"],
            fixtures::h1_go_mod(&fx.mod_bytes(m, v)),
            "GoModSum of {m}@{v}"
        );
    }

    let sum = common::check_go_sum_against_fixtures(&app, fx, true);
    for (m, v, h1) in &sum.zip {
        let stored_zip = std::fs::read(root.join(storage_rel_path(m, v, "zip")))
            .unwrap_or_else(|e| panic!("{m}@{v}.zip not in storage: {e}"));
        assert!(
            stored_zip == fx.zip_bytes(m, v),
            "stored {m}@{v}.zip differs from upstream's"
        );
        let ziphash = std::fs::read_to_string(root.join(storage_rel_path(m, v, "ziphash")))
            .unwrap_or_else(|e| panic!("{m}@{v}.ziphash not in storage: {e}"));
        assert_eq!(ziphash.trim(), h1, "stored ziphash of {m}@{v}");
        assert_eq!(
            &gomod_zip_hash(&stored_zip, m, v),
            h1,
            "gomod's h1 of {m}@{v}.zip"
        );
    }
    for (m, v, h1) in &sum.go_mod {
        let stored_mod = std::fs::read(root.join(storage_rel_path(m, v, "mod")))
            .unwrap_or_else(|e| panic!("{m}@{v}.mod not in storage: {e}"));
        assert_eq!(stored_mod, fx.mod_bytes(m, v), "stored {m}@{v}.mod");
        assert_eq!(
            &gomod_go_mod_hash(&stored_mod),
            h1,
            "gomod's h1 of {m}@{v}/go.mod"
        );
    }

    common::assert_graph_only(&up, fx);

    // Version lists through the proxy: tagged versions only; the pseudo-version is never
    // listed, so the empty list answers with no versions (not an error).
    let out = go.run(
        &app,
        &[
            "list",
            "-m",
            "-versions",
            "example.com/lib",
            "example.com/pseudo",
        ],
    );
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        ["example.com/lib v1.0.0 v1.1.0 v1.2.0", "example.com/pseudo"]
    );
    // The synthesized go.mod of the +incompatible version is byte-exact.
    assert_eq!(
        fx.mod_bytes("example.com/old", "v2.0.0+incompatible"),
        b"module example.com/old\n"
    );
    // Each artifact crossed the proxy's upstream link at most once.
    for mv in fx.versions() {
        for ext in ["mod", "zip"] {
            let p = mv.url_path(ext);
            assert!(
                up.hits(&p) <= 1,
                "{p} fetched upstream {} times",
                up.hits(&p)
            );
        }
    }
}

/// The zip's h1 as the `gomod` crate computes it while validating the zip, plus a check that
/// its go.mod hash (if the zip has one) is the stored `.mod`'s.
fn gomod_zip_hash(zip: &[u8], module: &str, version: &str) -> String {
    let m = gomod::ModulePath::parse(module).unwrap();
    let v = gomod::Version::parse(version).unwrap();
    let summary = gomod::zipfile::check_zip(
        std::io::Cursor::new(zip),
        &m,
        &v,
        &gomod::zipfile::ZipLimits::default(),
    )
    .unwrap_or_else(|e| panic!("gomod rejects the fixture zip of {module}@{version}: {e}"));
    if let Some(go_mod_h1) = &summary.go_mod_h1 {
        let fx = gomodproxy_tests::Fixtures::shared();
        assert_eq!(
            go_mod_h1,
            &fixtures::h1_go_mod(&fx.mod_bytes(module, version)),
            "gomod's go.mod hash inside {module}@{version}.zip"
        );
    }
    summary.h1
}

fn gomod_go_mod_hash(bytes: &[u8]) -> String {
    gomod::dirhash::hash_go_mod(bytes)
}

/// A `file://` upstream in GOPROXY layout (the fixture tree itself) serves a whole build.
#[test]
fn go_builds_through_the_proxy_from_a_file_upstream() {
    let fx = Fixtures::shared();
    let t = TestDir::new("e2e-file-upstream");
    let root = t.sub("storage");
    let upstream = format!("file://{}", fx.root().display());
    let proxy = ProxyConfig::new(&root, &upstream).start(&t.sub("logs"));
    let app = common::app(t.path());
    let go = Go::new(&t.sub("go"), &proxy.url());
    common::build_run(&go, &app);
    common::check_go_sum_against_fixtures(&app, fx, false);
    let big = root.join(storage_rel_path("example.com/big", "v1.0.0", "zip"));
    assert!(
        big.is_file(),
        "the zip fetched from the file upstream was not stored"
    );
}
