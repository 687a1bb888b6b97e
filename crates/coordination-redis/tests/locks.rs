//! The fetch lock against a real redis-server (`GOMODPROXY_TEST_REDIS_URL`, started by
//! tests/run.sh): exclusion, renewal past the ttl, a dead holder's lock lapsing, tokens that
//! keep a lapsed holder from releasing another's lock, and a Redis that is not there.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gomodproxy_coordination_redis::{RedisFetchLock, RedisLockOptions, is_locked};
use gomodproxy_service::coordination::FetchLock;

const URL_VAR: &str = "GOMODPROXY_TEST_REDIS_URL";

fn url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("GOMODPROXY_TEST_REQUIRE_SERVERS").is_ok_and(|v| v == "1") {
                panic!("{test}: {URL_VAR} is not set but GOMODPROXY_TEST_REQUIRE_SERVERS=1");
            }
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {test}: {URL_VAR} is not set (tests/run.sh starts redis-server and sets it)"
            );
            None
        }
    }
}

async fn lock(url: &str, prefix: &str, ttl: Duration) -> RedisFetchLock {
    RedisFetchLock::connect(RedisLockOptions {
        url: url.to_string(),
        key_prefix: prefix.to_string(),
        ttl,
        max_wait: Duration::from_secs(20),
        timeout: Duration::from_secs(2),
    })
    .await
    .unwrap_or_else(|e| panic!("connect: {e}"))
}

fn prefix(tag: &str) -> String {
    format!("gomodproxy-test:{tag}:{:016x}:", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_never_hold_one_lock_at_once() {
    let Some(url) = url("two_replicas_never_hold_one_lock_at_once") else {
        return;
    };
    let p = prefix("exclusion");
    // Two "replicas": separate connections, same prefix.
    let a = Arc::new(lock(&url, &p, Duration::from_secs(5)).await);
    let b = Arc::new(lock(&url, &p, Duration::from_secs(5)).await);
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..12 {
        let l = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (inside, most) = (inside.clone(), most.clone());
        tasks.push(tokio::spawn(async move {
            let guard = l.lock("example.com/m/@v/v1.0.0.zip").await.unwrap();
            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
            inside.fetch_sub(1, Ordering::SeqCst);
            guard.release().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(most.load(Ordering::SeqCst), 1, "two holders at once");
    assert!(!is_locked(&a, "example.com/m/@v/v1.0.0.zip").await.unwrap());
    // Other keys are independent.
    let g1 = a.lock("k1").await.unwrap();
    let started = Instant::now();
    let g2 = b.lock("k2").await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(500));
    g1.release().await;
    g2.release().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_is_renewed_past_its_ttl() {
    let Some(url) = url("a_held_lock_is_renewed_past_its_ttl") else {
        return;
    };
    let p = prefix("renewal");
    let a = lock(&url, &p, Duration::from_millis(600)).await;
    let b = lock(&url, &p, Duration::from_millis(600)).await;
    let guard = a.lock("slow").await.unwrap();
    // Three ttls later the holder still holds it: b must wait.
    let waiter = tokio::spawn(async move {
        let started = Instant::now();
        let g = b.lock("slow").await.unwrap();
        let waited = started.elapsed();
        g.release().await;
        waited
    });
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert!(is_locked(&a, "slow").await.unwrap());
    guard.release().await;
    let waited = waiter.await.unwrap();
    assert!(
        waited >= Duration::from_millis(1700),
        "b got the lock after {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_holders_lock_lapses_after_the_ttl() {
    let Some(url) = url("a_dead_holders_lock_lapses_after_the_ttl") else {
        return;
    };
    let p = prefix("lapse");
    let a = lock(&url, &p, Duration::from_millis(800)).await;
    let b = lock(&url, &p, Duration::from_millis(800)).await;
    // A replica that dies: its guard is dropped without a release, so no one renews it.
    let guard = a.lock("orphan").await.unwrap();
    drop(guard);
    let started = Instant::now();
    let g = b.lock("orphan").await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(3),
        "waited {waited:?} for a lock with an 800ms ttl"
    );
    g.release().await;
    assert!(!is_locked(&b, "orphan").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_holder_cannot_release_the_next_holders_lock() {
    let Some(url) = url("a_lapsed_holder_cannot_release_the_next_holders_lock") else {
        return;
    };
    let p = prefix("token");
    let a = lock(&url, &p, Duration::from_secs(5)).await;
    let b = lock(&url, &p, Duration::from_secs(5)).await;
    let late = a.lock("contended").await.unwrap();
    // A's lock lapses under it (as after a long pause of its process)…
    let mut raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg(format!("{p}lock:contended"))
        .query_async(&mut raw)
        .await
        .unwrap();
    // …B takes it, and A's late release must leave B's lock in place.
    let current = b.lock("contended").await.unwrap();
    late.release().await;
    assert!(
        is_locked(&b, "contended").await.unwrap(),
        "A released B's lock"
    );
    current.release().await;
    assert!(!is_locked(&b, "contended").await.unwrap());
}

#[tokio::test]
async fn an_unreachable_redis_is_a_clear_error_at_connect() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://:pw@127.0.0.1:{port}/0");
    let started = Instant::now();
    let err = RedisFetchLock::connect(RedisLockOptions {
        url,
        timeout: Duration::from_millis(500),
        ..RedisLockOptions::default()
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("pw"), "password shown: {err}");
}
