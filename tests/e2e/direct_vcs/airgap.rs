//! prewarm, export/import and offline serving for modules fetched from version control,
//! exactly as for mirrored ones (issue 11, item 9): prewarm the fixture app's go.mod (its
//! dependencies come from git through a private route, and one from the public upstream,
//! verified), export, import into an empty store with `sumdb.verify` on — the route marks the
//! git modules private, so they need no checksum-database record — and build offline.

use gomodproxy_tests::ProxyConfig;

use super::{DIRECT_ROUTE, build_and_run, world};

#[test]
fn direct_modules_prewarm_export_import_and_build_offline() {
    let w = world();
    let app = w.app_copy();
    let dir = w.sub("airgap");
    let connected = ProxyConfig::new(&dir.join("connected"), &w.upstream.url())
        .with_sumdb(&w.sumdb)
        .with_git_world(&w.git, &dir.join("vcs"))
        .set("ROUTES", format!("{DIRECT_ROUTE}=direct"));
    let item = format!("go.mod:{}", app.join("go.mod").display());
    let out = connected.run(&["prewarm", &item]);
    out.assert_success();
    assert!(out.stdout.contains(" 0 failed"), "{}", out.stdout);
    let bundle = dir.join("modules.tar.zst");
    connected
        .run(&["export", bundle.to_str().unwrap()])
        .assert_success();

    // The air-gapped side knows the database's key and the same routes, nothing else.
    let airgapped = ProxyConfig::new(&dir.join("airgapped"), "")
        .set("MODE", "offline")
        .set("SUMDB__VERIFY", "true")
        .set("SUMDB__DATABASES", w.sumdb.vkey())
        .set("ROUTES", format!("{DIRECT_ROUTE}=direct"));
    let out = airgapped.run(&["import", bundle.to_str().unwrap()]);
    out.assert_success();
    assert!(out.stdout.contains(" 0 refused"), "{}", out.stdout);
    airgapped.run(&["verify"]).assert_success();

    // Without the routes the same modules are public, and unproven: refused.
    let unrouted = ProxyConfig::new(&dir.join("unrouted"), "")
        .set("MODE", "offline")
        .set("SUMDB__VERIFY", "true")
        .set("SUMDB__DATABASES", w.sumdb.vkey());
    let out = unrouted.run(&["import", bundle.to_str().unwrap()]);
    assert!(!out.success, "{out:?}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("github.com/acme/widget@v1.1.0")
            && said.contains("no checksum-database record"),
        "{said}"
    );

    let proxy = airgapped.start(&dir.join("logs"));
    let go = w.client(&proxy.url(), &w.sub("go-airgapped"));
    build_and_run(&go, &app);
}
