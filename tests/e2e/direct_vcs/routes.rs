//! Routes: a module matching a private route is never asked of the default (public) upstream
//! and never looked up in the checksum database, while public modules through the same proxy
//! are verified; a client that does not exempt private modules from its checksum database
//! gets the proxy's reason; `<proxy>,direct` falls back to version control on 404.

use gomodproxy_test_support::git::GoVia;
use gomodproxy_tests::sumdb::SumdbServer;
use gomodproxy_tests::{Fixtures, Go, ProxyConfig, Upstream};

use super::fixtures::Case;
use super::{judge, tail, world};

#[test]
fn direct_private_routes_never_reach_the_public_upstream_or_the_checksum_database() {
    let w = world();
    // Plenty of traffic through the route: the app's whole graph, and a module that does not
    // exist (a route does not fall through to the default chain).
    w.app();
    let go = w.client(&w.proxy.url(), &w.sub("go-routes"));
    let cwd = w.sub("cwd");
    go.run(
        &cwd,
        &[
            "mod",
            "download",
            "-json",
            "github.com/acme/widget@v1.0.0",
            "github.com/acmeprivate/secret@latest",
            "vanity.test/tools@v0.3.0",
            "example.com/lib@v1.1.0",
            "example.com/Upper/Case@v1.0.0",
        ],
    )
    .assert_success();
    let out = go.run(
        &cwd,
        &["mod", "download", "github.com/acme/nosuchrepo@latest"],
    );
    assert!(!out.success, "{out:?}");

    let upstream = w.upstream.requests();
    let leaked: Vec<&String> = upstream
        .iter()
        .filter(|p| p.starts_with("/github.com/acme") || p.starts_with("/vanity.test"))
        .collect();
    assert!(
        leaked.is_empty(),
        "asked of the public upstream: {leaked:?}"
    );
    assert!(
        upstream
            .iter()
            .any(|p| p == "/example.com/lib/@v/v1.1.0.zip"),
        "{upstream:?}"
    );

    // The git work behind it is counted (default refs_ttl: one ls-remote per repository, then
    // the saved refs; the moved-tag test counts with refs_ttl = 0).
    let metrics = w.proxy.get("/metrics").text();
    for op in ["ls-remote", "fetch", "zip"] {
        let name = format!("gomodproxy_direct_git_operations_total{{op=\"{op}\"}}");
        let n = super::immutability::sample(&metrics, &name);
        assert!(n.is_some_and(|n| n >= 3), "{op}: {n:?}\n{metrics}");
    }

    // The public modules were verified: the proxy looked their records up.
    let sumdb: Vec<String> = w.sumdb.requests().into_iter().map(|r| r.path).collect();
    for module in ["example.com/lib@v1.1.0", "example.com/!upper/!case@v1.0.0"] {
        assert!(
            sumdb
                .iter()
                .any(|p| p.ends_with(&format!("/lookup/{module}"))),
            "{module} not looked up: {sumdb:?}"
        );
    }

    // Asked by name, the proxy refuses to look a private module up, and says what to do.
    let lookup = format!(
        "/sumdb/{}/lookup/github.com/acme/widget@v1.0.0",
        w.sumdb.name()
    );
    let resp = w.proxy.get(&lookup);
    assert_eq!(resp.status, 404, "{}", resp.text());
    assert!(
        resp.text().contains("private") && resp.text().contains("GONOSUMDB"),
        "{}",
        resp.text()
    );
    let sumdb: Vec<String> = w.sumdb.requests().into_iter().map(|r| r.path).collect();
    let leaked: Vec<&String> = sumdb
        .iter()
        .filter(|p| p.contains("acme") || p.contains("vanity"))
        .collect();
    assert!(
        leaked.is_empty(),
        "sent to the checksum database: {leaked:?}"
    );

    // A client that verifies every module (no GONOSUMDB) cannot add a private module: the go
    // command asks the checksum database (through the proxy) before it trusts a new go.sum
    // line. This is why docs/private-modules.md tells clients to set GONOSUMDB.
    let strict = Go::new(&w.sub("go-strict"), &w.proxy.url()).env("GOSUMDB", &w.sumdb.vkey());
    let out = strict.run(&cwd, &["mod", "download", "github.com/acme/widget@v1.0.0"]);
    assert!(!out.success, "{out:?}");
    assert!(
        out.stderr.contains("private on this proxy") && out.stderr.contains("GONOSUMDB"),
        "{}",
        out.stderr
    );
    // A go.sum that already has the lines needs no lookup: builds of a checked-in go.sum work
    // without GONOSUMDB.
    let app = w.app_copy();
    let strict = Go::new(&w.sub("go-strict-build"), &w.proxy.url())
        .env("GOSUMDB", &w.sumdb.vkey())
        .env("GOFLAGS", "-mod=readonly -modcacherw");
    super::build_and_run(&strict, &app);
}

#[test]
fn direct_after_a_proxy_in_the_chain_answers_what_the_proxy_has_not() {
    let w = world();
    let upstream = Upstream::start(Fixtures::shared().root());
    let sumdb = SumdbServer::with_fixtures("sumdb.fallback.test");
    let dir = w.sub("fallback");
    let proxy = ProxyConfig::new(&dir.join("store"), &format!("{},direct", upstream.url()))
        .with_sumdb(&sumdb)
        .with_git_world(&w.git, &dir.join("vcs"))
        .set("PRIVATE", "github.com/acme")
        .start(&dir.join("logs"));
    let case = Case {
        module: "github.com/acme/widget".into(),
        queries: ["v1.0.0", "v1.1.0", "latest", "main", "feature", "v9.9.9"]
            .map(String::from)
            .to_vec(),
    };
    let problems = judge(w, &proxy.url(), &case);
    assert!(
        problems.is_empty(),
        "{}\n{}",
        problems.join("\n"),
        tail(&proxy.logs(), 200)
    );
    // The proxy was asked first, and said 404.
    assert!(
        upstream.hits("/github.com/acme/widget/@v/list") >= 1,
        "{:?}",
        upstream.requests()
    );
    // What the proxy has comes from it, verified; nothing private went to the database.
    let got = w
        .git
        .go_download_via(GoVia::Proxy(&proxy.url()), "example.com/lib", "v1.1.0")
        .unwrap();
    assert_eq!(got.version, "v1.1.0");
    assert!(upstream.hits("/example.com/lib/@v/v1.1.0.zip") == 1);
    let paths: Vec<String> = sumdb.requests().into_iter().map(|r| r.path).collect();
    assert!(
        paths
            .iter()
            .any(|p| p.ends_with("/lookup/example.com/lib@v1.1.0"))
    );
    assert!(!paths.iter().any(|p| p.contains("acme")), "{paths:?}");
    // A public module from version control must be in the checksum database, as for the go
    // command: vanity.test is not private here, and the database has no record of it.
    let err = w
        .git
        .go_download_via(GoVia::Proxy(&proxy.url()), "vanity.test/lib", "v1.0.0")
        .unwrap_err();
    assert!(err.contains("cannot verify"), "{err}");
}
