//! Every storage backend under the real go command, replicas sharing one store, and outages of
//! the store's server.
//!
//! - `go mod download` + `go build` of the fixture app with a fresh GOMODCACHE through a proxy on
//!   sled, on the shared Redis and on the shared S3 server (fs: `e2e_go`);
//! - two proxy processes sharing an S3 prefix and coordinating through Redis: 2 × 50 concurrent
//!   requests for one uncached zip make exactly one upstream request;
//! - a private Redis or S3 server stopped under load: requests get 503 with a reason, `/readyz`
//!   fails, no client ever gets a wrong body; started again, the same proxy process recovers.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use gomodproxy_tests::fixtures::sha256_hex;
use gomodproxy_tests::servers::{self, PrivateRedis, PrivateS3};
use gomodproxy_tests::{Fault, Fixtures, Go, Proxy, ProxyConfig, TestDir, Upstream};

use crate::common;

/// Downloads and builds the fixture app through a proxy started with `config`.
fn go_builds_through(config: ProxyConfig, t: &TestDir, up: &Upstream) {
    let fx = Fixtures::shared();
    let proxy = config.start(&t.sub("logs"));
    let app = common::app(t.path());
    let go = Go::new(&t.sub("go"), &proxy.url());
    let downloads = common::download_build_run(&go, &app);
    assert!(
        downloads.iter().all(|d| d.get("Error").is_none()),
        "{downloads:?}"
    );
    common::check_go_sum_against_fixtures(&app, fx, true);
    common::assert_graph_only(up, fx);
    // A second client with a fresh module cache is served from the store alone.
    let hits = up.total_hits();
    let go2 = Go::new(&t.sub("go2"), &proxy.url());
    common::build_run(&go2, &app);
    let refetched: Vec<String> = up
        .requests()
        .into_iter()
        .skip(hits as usize)
        .filter(|p| !p.ends_with("/@v/list") && !p.ends_with("/@latest"))
        .collect();
    assert!(
        refetched.is_empty(),
        "artifacts fetched again: {refetched:?}"
    );
}

#[test]
fn go_builds_on_sled() {
    let t = TestDir::new("backend-sled");
    let up = Upstream::start(Fixtures::shared().root());
    let config = ProxyConfig::new(&t.sub("unused"), &up.url()).sled(&t.sub("sled"));
    go_builds_through(config, &t, &up);
}

#[test]
fn go_builds_on_redis() {
    let Some(url) = servers::shared_redis("go_builds_on_redis") else {
        return;
    };
    let t = TestDir::new("backend-redis");
    let up = Upstream::start(Fixtures::shared().root());
    let config =
        ProxyConfig::new(&t.sub("unused"), &up.url()).redis(&url, &servers::unique_prefix("redis"));
    go_builds_through(config, &t, &up);
}

#[test]
fn go_builds_on_s3() {
    let Some(s3) = servers::shared_s3("go_builds_on_s3") else {
        return;
    };
    let t = TestDir::new("backend-s3");
    let up = Upstream::start(Fixtures::shared().root());
    let config =
        ProxyConfig::new(&t.sub("unused"), &up.url()).s3(&s3, &servers::unique_prefix("s3"));
    go_builds_through(config, &t, &up);
}

const CLIENTS_PER_REPLICA: usize = 50;

#[test]
fn two_replicas_sharing_s3_and_redis_fetch_one_zip_once() {
    let test = "two_replicas_sharing_s3_and_redis_fetch_one_zip_once";
    let (Some(s3), Some(redis)) = (servers::shared_s3(test), servers::shared_redis(test)) else {
        return;
    };
    let fx = Fixtures::shared();
    let t = TestDir::new("replicas");
    let up = Upstream::start(fx.root());
    let prefix = servers::unique_prefix("replicas");
    let config = ProxyConfig::new(&t.sub("unused"), &up.url())
        .s3(&s3, &prefix)
        .coordination(&redis, &prefix);
    let a = config.clone().start(&t.sub("logs-a"));
    let b = config.start(&t.sub("logs-b"));
    // A small zip: what is measured is the number of upstream fetches, not bandwidth.
    let mv = fx.get("example.com/Upper/Case", "v1.0.0");
    let path = mv.url_path("zip");
    let want = sha256_hex(&fx.zip_bytes(&mv.module, &mv.version));
    // Slow enough that every client of both replicas asks while the first fetch is in flight.
    up.set_fault(&path, Fault::Delay(Duration::from_millis(2000)));

    let barrier = Arc::new(Barrier::new(2 * CLIENTS_PER_REPLICA));
    let handles: Vec<_> = [&a, &b]
        .iter()
        .flat_map(|proxy| {
            let addr = proxy.addr();
            let (barrier, path) = (barrier.clone(), path.clone());
            (0..CLIENTS_PER_REPLICA).map(move |_| {
                let (barrier, path) = (barrier.clone(), path.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    // As go sends it: `!` percent-encoded.
                    gomodproxy_tests::http::get(addr, &path.replace('!', "%21"))
                })
            })
        })
        .collect();
    for h in handles {
        let r = h.join().unwrap().expect("response");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(sha256_hex(&r.body), want, "a client got the wrong bytes");
    }
    assert_eq!(
        up.hits(&path),
        1,
        "the two replicas fetched the zip {} times",
        up.hits(&path)
    );
}

/// Clients hammering a proxy in the background: every answer must be a whole, correct body (200)
/// or an error status; never a wrong body. Counts each.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    errors: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(proxy: &Proxy, targets: Vec<(String, String)>) -> Load {
        let (stop, ok, errors) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let addr = proxy.addr();
        let threads = (0..4)
            .map(|i| {
                let (stop, ok, errors) = (stop.clone(), ok.clone(), errors.clone());
                let targets = targets.clone();
                std::thread::spawn(move || {
                    let mut n = i;
                    while !stop.load(Ordering::SeqCst) {
                        let (path, want) = &targets[n % targets.len()];
                        n += 1;
                        match gomodproxy_tests::http::get_with_timeout(
                            addr,
                            path,
                            Duration::from_secs(30),
                        ) {
                            Ok(r) if r.status == 200 => {
                                assert_eq!(&sha256_hex(&r.body), want, "wrong body for {path}");
                                ok.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok(r) => {
                                assert!(r.status >= 500, "{path}: {} {}", r.status, r.text());
                                errors.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(_) => {
                                errors.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            errors,
            threads,
        }
    }

    fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().expect("a load thread saw a wrong answer");
        }
        (
            self.ok.load(Ordering::SeqCst),
            self.errors.load(Ordering::SeqCst),
        )
    }
}

/// The outage scenario against a proxy whose store's server can be stopped and resumed.
fn outage(proxy: &Proxy, up: &Upstream, stop: &mut dyn FnMut(), resume: &mut dyn FnMut()) {
    let fx = Fixtures::shared();
    let cached = fx.get("example.com/lib", "v1.1.0");
    let uncached = fx.get("example.com/dep", "v1.1.0");
    let zip_target = |mv: &gomodproxy_tests::fixtures::ModuleVersion| {
        (
            mv.url_path("zip"),
            sha256_hex(&fx.zip_bytes(&mv.module, &mv.version)),
        )
    };
    // Stored before the outage.
    let r = proxy.get(&cached.url_path("zip"));
    assert_eq!(r.status, 200, "{}", r.text());
    let load = Load::start(proxy, vec![zip_target(cached)]);
    std::thread::sleep(Duration::from_millis(300));

    stop();
    let down = gomodproxy_tests::util::wait_for(
        "503 while the store is down",
        Duration::from_secs(20),
        || {
            let r = proxy.get(&cached.url_path("zip"));
            (r.status == 503).then_some(r)
        },
    );
    let reason = down.text();
    assert!(
        reason.contains("storage") && reason.lines().count() == 1,
        "503 without a one-line reason: {reason:?}"
    );
    let ready = proxy.get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(ready.text().contains("not ready"), "{}", ready.text());
    // A miss during the outage: upstream answers, the store cannot take it.
    let r = proxy.get(&uncached.url_path("zip"));
    assert!(r.status >= 500, "{} {}", r.status, r.text());

    resume();
    // The same proxy process recovers on its own.
    gomodproxy_tests::util::wait_for(
        "/readyz 200 after the store is back",
        Duration::from_secs(30),
        || (proxy.get("/readyz").status == 200).then_some(()),
    );
    let (path, want) = zip_target(cached);
    let r = proxy.get(&path);
    assert_eq!((r.status, sha256_hex(&r.body)), (200, want));
    // Nothing partial of the miss is served: it is complete, whether it is fetched now or was
    // stored whole.
    let (path, want) = zip_target(uncached);
    let r = proxy.get(&path);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        sha256_hex(&r.body),
        want,
        "a partial object was stored during the outage"
    );
    let (ok, errors) = load.finish();
    assert!(
        ok > 0 && errors > 0,
        "load saw {ok} successes and {errors} errors"
    );
    let _ = up;
}

#[test]
fn a_redis_outage_is_503_and_the_proxy_recovers() {
    let t = TestDir::new("outage-redis");
    let up = Upstream::start(Fixtures::shared().root());
    let mut redis = PrivateRedis::start(&t.sub("redis"));
    let proxy = ProxyConfig::new(&t.sub("unused"), &up.url())
        .redis(&redis.url(), "outage:")
        .start(&t.sub("logs"));
    let redis = std::cell::RefCell::new(&mut redis);
    outage(&proxy, &up, &mut || redis.borrow_mut().stop(), &mut || {
        redis.borrow_mut().resume()
    });
}

#[test]
fn an_s3_outage_is_503_and_the_proxy_recovers() {
    // A private MinIO: the shared one must not go down under other tests.
    if servers::shared_s3("an_s3_outage_is_503_and_the_proxy_recovers").is_none() {
        return;
    }
    let t = TestDir::new("outage-s3");
    let up = Upstream::start(Fixtures::shared().root());
    let mut s3 = PrivateS3::start(&t.sub("s3"));
    let proxy = ProxyConfig::new(&t.sub("unused"), &up.url())
        .s3(s3.env(), "outage/")
        .start(&t.sub("logs"));
    let s3 = std::cell::RefCell::new(&mut s3);
    outage(&proxy, &up, &mut || s3.borrow_mut().stop(), &mut || {
        s3.borrow_mut().resume()
    });
}
