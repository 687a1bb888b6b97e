//! Offline mode: a cache primed online serves a whole build with the upstream gone, and a miss
//! is a 404 whose reason the go command shows.

use gomodproxy_tests::{Fixtures, Go, ProxyConfig, TestDir, Upstream};

use crate::common;

#[test]
fn a_primed_cache_builds_offline_and_misses_say_offline() {
    let fx = Fixtures::shared();
    let t = TestDir::new("offline");
    let up = Upstream::start(fx.root());
    let root = t.sub("storage");
    let config = ProxyConfig::new(&root, &up.url());
    let mut proxy = config.clone().start(&t.sub("logs"));
    let app = common::app(t.path());

    // Prime: an ordinary build through the online proxy.
    let go = Go::new(&t.sub("go-online"), &proxy.url());
    common::build_run(&go, &app);
    assert!(
        proxy.stop(),
        "gomodproxy did not exit cleanly on SIGTERM:\n{}",
        proxy.logs()
    );
    up.stop();

    // Offline, same storage root, nothing reachable upstream, a brand-new go environment.
    proxy.restart(config.set("MODE", "offline"));
    let go = Go::new(&t.sub("go-offline"), &proxy.url());
    common::build_run(&go, &app);

    let out = go.run(
        &app,
        &["mod", "download", "-json", "example.com/never@v1.0.0"],
    );
    assert!(
        !out.success,
        "downloading a never-fetched module offline succeeded:\n{}",
        out.stdout
    );
    let shown = format!("{}{}", out.stdout, out.stderr);
    eprintln!("go's report of the offline miss:\n{shown}");
    assert!(
        shown.contains("offline"),
        "go's error does not carry the proxy's offline reason:\n{shown}"
    );

    let r = proxy.get("/example.com/never/@v/v1.0.0.zip");
    assert_eq!(r.status, 404, "{}", r.text());
    let reason = r.text();
    assert!(
        reason.contains("offline") && !reason.trim().contains('\n'),
        "offline miss reason must be one line mentioning offline: {reason:?}"
    );
}
