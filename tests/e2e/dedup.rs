//! Concurrent misses for one artifact share one upstream fetch.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use gomodproxy_tests::fixtures::sha256_hex;
use gomodproxy_tests::{Fault, Fixtures, ProxyConfig, TestDir, Upstream};

const CLIENTS: usize = 50;

#[test]
fn fifty_concurrent_gets_of_one_uncached_zip_fetch_it_once() {
    let fx = Fixtures::shared();
    let t = TestDir::new("dedup");
    let up = Upstream::start(fx.root());
    let proxy = ProxyConfig::new(&t.sub("storage"), &up.url()).start(&t.sub("logs"));
    let mv = fx.get("example.com/Upper/Case", "v1.0.0");
    let path = mv.url_path("zip");
    let want = sha256_hex(&fx.zip_bytes(&mv.module, &mv.version));
    // Upstream answers slowly so that every client asks while the first fetch is in flight.
    up.set_fault(&path, Fault::Delay(Duration::from_millis(1500)));

    // As go sends it: `!` percent-encoded.
    let target = path.replace('!', "%21");
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let addr = proxy.addr();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let barrier = barrier.clone();
            let target = target.clone();
            std::thread::spawn(move || {
                barrier.wait();
                gomodproxy_tests::http::get(addr, &target)
            })
        })
        .collect();
    let mut statuses = Vec::new();
    let mut hashes = std::collections::BTreeSet::new();
    for h in handles {
        let r = h.join().unwrap().expect("response");
        statuses.push(r.status);
        hashes.insert(sha256_hex(&r.body));
    }
    assert!(statuses.iter().all(|s| *s == 200), "statuses: {statuses:?}");
    assert_eq!(hashes.len(), 1, "clients got different bodies");
    assert_eq!(
        hashes.into_iter().next().unwrap(),
        want,
        "clients got the wrong bytes"
    );
    assert_eq!(up.hits(&path), 1, "upstream requests: {:?}", up.requests());
}
