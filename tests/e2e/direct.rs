//! The fixtures themselves, checked with the real `go` talking straight to the fixture
//! upstream (no proxy): if these fail, the fixtures or the oracle are wrong, not the proxy.

use gomodproxy_tests::fixtures::FileContent;
use gomodproxy_tests::{Fixtures, Go, TestDir, Upstream};

use crate::common;

#[test]
fn go_builds_the_fixture_app_straight_from_the_fixture_upstream() {
    let fx = Fixtures::shared();
    let t = TestDir::new("direct");
    let up = Upstream::start(fx.root());
    let app = common::app(t.path());
    let go = Go::new(&t.sub("go"), &up.url());

    let downloads = common::download_build_run(&go, &app);
    for d in &downloads {
        assert!(
            d.get("Error").is_none(),
            "go mod download reported an error: {d}"
        );
    }
    common::check_go_sum_against_fixtures(&app, fx, true);
    // The large module really is large (its data file is incompressible).
    let big = fx.get("example.com/big", "v1.0.0");
    let data_len: usize = big
        .files
        .iter()
        .map(|(_, c)| match c {
            FileContent::Random { len, .. } => *len,
            FileContent::Text(_) => 0,
        })
        .sum();
    let zip_len = std::fs::metadata(fx.file(&big.module, &big.version, "zip"))
        .unwrap()
        .len();
    assert!(
        zip_len as usize >= data_len,
        "big zip is {zip_len} bytes, data {data_len}"
    );
    common::assert_graph_only(&up, fx);
}
