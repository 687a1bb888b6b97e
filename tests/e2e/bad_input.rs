//! Hostile or malformed request paths are refused (400/404 with a reason) before anything
//! touches storage or upstream. Requests are written raw so no client library normalizes them.

use gomodproxy_tests::util::stored_files;
use gomodproxy_tests::{Fixtures, ProxyConfig, TestDir, Upstream};

fn cases() -> Vec<(&'static str, String)> {
    let long = format!("/example.com/{}/@v/list", "a".repeat(10 * 1024));
    vec![
        ("dot-dot", "/example.com/../../etc/passwd/@v/list".into()),
        (
            "dot-dot in module",
            "/example.com/lib/../../../etc/@v/v1.0.0.info".into(),
        ),
        (
            "dot-dot after @v",
            "/example.com/lib/@v/../../../../etc/passwd".into(),
        ),
        (
            "encoded dot-dot",
            "/example.com/%2e%2e/%2e%2e/etc/@v/list".into(),
        ),
        (
            "encoded dot-dot upper",
            "/example.com/%2E%2E/x/@v/v1.0.0.mod".into(),
        ),
        ("encoded slash", "/example.com%2Flib/@v/list".into()),
        (
            "encoded slash in version",
            "/example.com/lib/@v/v1.0.0%2F..%2F..%2Fx.zip".into(),
        ),
        (
            "unescaped upper case",
            "/example.com/Upper/Case/@v/list".into(),
        ),
        (
            "unescaped upper case version",
            "/example.com/lib/@v/V1.0.0.info".into(),
        ),
        ("! before a digit", "/example.com/%211bad/@v/list".into()),
        (
            "literal ! before a digit",
            "/example.com/!1bad/@v/list".into(),
        ),
        (
            "! before upper case",
            "/example.com/%21Upper/@v/list".into(),
        ),
        ("trailing !", "/example.com/bad%21/@v/list".into()),
        ("version without v", "/example.com/lib/@v/1.0.0.zip".into()),
        (
            "version with leading zero",
            "/example.com/lib/@v/v01.0.0.mod".into(),
        ),
        (
            "four-part version",
            "/example.com/lib/@v/v1.0.0.0.zip".into(),
        ),
        ("empty prerelease", "/example.com/lib/@v/v1.0.0-.zip".into()),
        (
            "v2 without suffix or +incompatible",
            "/example.com/lib/@v/v2.0.0.zip".into(),
        ),
        ("major mismatch", "/example.com/lib/v2/@v/v1.0.0.zip".into()),
        ("unknown artifact", "/example.com/lib/@v/v1.0.0.exe".into()),
        ("10 KB path", long),
        ("NUL in module", "/example.com/lib%00/@v/list".into()),
        ("NUL in version", "/example.com/lib/@v/v1.0.0%00.zip".into()),
        ("non-ASCII", "/example.com/l%C3%AFb/@v/list".into()),
        (
            "first element without a dot",
            "/localhost/lib/@v/list".into(),
        ),
        ("empty element", "/example.com//lib/@v/list".into()),
        ("backslash", "/example.com/lib%5C..%5Cx/@v/list".into()),
    ]
}

#[test]
fn hostile_paths_are_refused_before_storage_and_upstream() {
    let fx = Fixtures::shared();
    let t = TestDir::new("bad-input");
    let up = Upstream::start(fx.root());
    let root = t.sub("storage");
    let proxy = ProxyConfig::new(&root, &up.url()).start(&t.sub("logs"));
    let before = stored_files(&root);

    let mut failures = Vec::new();
    for (name, path) in cases() {
        match gomodproxy_tests::http::get(proxy.addr(), &path) {
            Ok(r) => {
                let reason = r.text();
                let shown: String = reason.chars().take(200).collect();
                if !(r.status == 400 || r.status == 404) {
                    failures.push(format!("{name}: status {} body {shown:?}", r.status));
                } else if reason.trim().is_empty() {
                    failures.push(format!("{name}: status {} with an empty reason", r.status));
                } else {
                    eprintln!("{name}: {} {}", r.status, shown.trim());
                }
            }
            Err(e) => failures.push(format!("{name}: no HTTP response: {e}")),
        }
    }
    let upstream_requests = up.requests();
    let after = stored_files(&root);
    assert!(
        failures.is_empty(),
        "bad requests not refused:\n{}",
        failures.join("\n")
    );
    assert!(
        upstream_requests.is_empty(),
        "upstream was asked for {upstream_requests:?}"
    );
    assert_eq!(after, before, "bad requests changed storage");

    // Control: a valid request does reach upstream, so the zero above means something.
    let r = proxy.get("/example.com/lib/@v/v1.0.0.mod");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.hits("/example.com/lib/@v/v1.0.0.mod"), 1);
}
