//! Through the proxy: a tag moved upstream after the proxy served it keeps being served as
//! first served (logged, counted in `/metrics`); the direct counters count; a private
//! repository without credentials is a clear, quick error; no secret in the logs.

use std::time::{Duration, Instant};

use gomodproxy_test_support::git::{GoVia, PRIVATE_PASSWORD};

use super::{tail, world};

const MODULE: &str = "github.com/acme/moving";

/// The value of the `/metrics` sample `name` (with its labels).
pub(super) fn sample(metrics: &str, name: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn direct_a_tag_moved_after_serving_keeps_its_first_commit_and_is_counted() {
    let w = world();
    let r = w.git.repo("moving");
    r.write("go.mod", format!("module {MODULE}\n"))
        .write("a.go", "package moving\n");
    let first = r.commit("first");
    r.tag("v1.0.0");
    r.write("a.go", "package moving // moved\n");
    let second = r.commit("second");
    r.push();
    let before = w.git.go_download(MODULE, "v1.0.0").unwrap();
    assert!(before.info.contains(&first), "{before:?}");

    // Refs are never trusted for long here, so the move is seen at the next request.
    let dir = w.sub("moving");
    let proxy = w
        .config
        .clone()
        .set("STORAGE__FS__ROOT", dir.join("store").display().to_string())
        .set("DIRECT__CACHE_DIR", dir.join("vcs").display().to_string())
        .set("DIRECT__REFS_TTL", "0s")
        .set("LIST_TTL", "0s")
        .start(&dir.join("logs"));
    // Only the .info is served before the move: the .mod and .zip are made after it.
    let info = proxy.get(&format!("/{MODULE}/@v/v1.0.0.info"));
    assert_eq!(info.status, 200, "{}", info.text());
    assert!(info.text().contains(&first));

    r.git(&["tag", "-f", "v1.0.0", &second]);
    r.push();
    let go_after = w.git.go_download(MODULE, "v1.0.0").unwrap();
    assert_ne!(go_after.sum, before.sum, "the tag did not move");

    let through = w
        .git
        .go_download_via(GoVia::Proxy(&proxy.url()), MODULE, "v1.0.0")
        .unwrap();
    assert_eq!(through, before, "the proxy followed the moved tag");
    let versions = w
        .git
        .go_versions_via(GoVia::Proxy(&proxy.url()), MODULE)
        .unwrap();
    assert_eq!(versions, ["v1.0.0"]);

    let metrics = proxy.get("/metrics").text();
    assert_eq!(
        sample(&metrics, "gomodproxy_direct_moved_tags_total"),
        Some(1),
        "{metrics}"
    );
    // The git work is counted as it happens.
    for op in ["ls-remote", "fetch", "zip"] {
        let n = sample(
            &metrics,
            &format!("gomodproxy_direct_git_operations_total{{op=\"{op}\"}}"),
        );
        assert!(n.is_some_and(|n| n >= 1), "{op}: {n:?}\n{metrics}");
    }
    let logs = proxy.logs();
    assert!(
        logs.contains("tag moved upstream") && logs.contains("v1.0.0"),
        "{}",
        tail(&logs, 100)
    );
}

#[test]
fn direct_a_private_repository_without_credentials_is_a_clear_error_at_once() {
    let w = world();
    let dir = w.sub("nocreds");
    let empty_netrc = dir.join("netrc");
    std::fs::write(&empty_netrc, "").unwrap();
    std::fs::create_dir_all(dir.join("home")).unwrap();
    let proxy = w
        .config
        .clone()
        .set("STORAGE__FS__ROOT", dir.join("store").display().to_string())
        .set("DIRECT__CACHE_DIR", dir.join("vcs").display().to_string())
        .set("DIRECT__HOME", dir.join("home").display().to_string())
        .set("DIRECT__NETRC", empty_netrc.display().to_string())
        .start(&dir.join("logs"));
    for path in [
        "/github.com/acmeprivate/secret/@v/list",
        "/github.com/acmeprivate/secret/@v/v1.0.0.info",
        "/github.com/acmeprivate/secret/@latest",
    ] {
        let started = Instant::now();
        let resp = proxy.get(path);
        let took = started.elapsed();
        assert!(
            resp.status == 502 || resp.status == 404,
            "{path}: {} {}",
            resp.status,
            resp.text()
        );
        assert!(
            resp.text().contains("authentication"),
            "{path}: {}",
            resp.text()
        );
        assert!(took < Duration::from_secs(15), "{path} took {took:?}");
    }
    let err = w
        .git
        .go_download_via(
            GoVia::Proxy(&proxy.url()),
            "github.com/acmeprivate/secret",
            "v1.0.0",
        )
        .unwrap_err();
    assert!(err.contains("authentication"), "{err}");

    // The shared proxy, which has the credentials, never wrote them anywhere.
    w.app();
    for logs in [w.proxy.logs(), proxy.logs()] {
        assert!(!logs.contains(PRIVATE_PASSWORD), "a log has the password");
    }
}
