//! The Redis backend against the shared conformance suite, on the server named by
//! `GOMODPROXY_TEST_REDIS_URL`.
//!
//! Alone in its test binary: the suite bounds this process's RSS growth while a 200 MiB object
//! streams through, which other tests running in parallel would disturb.

mod common;

use gomodproxy_storage::conformance::{Capabilities, run_all};
use gomodproxy_storage_redis::RedisOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_passes_the_conformance_suite() {
    let Some(url) = common::test_url("redis_passes_the_conformance_suite") else {
        return;
    };
    let prefix = common::random_prefix("conformance");
    let store = common::open(RedisOptions {
        url: url.clone(),
        key_prefix: prefix.clone(),
        ..RedisOptions::default()
    })
    .await;
    run_all(&store, Capabilities::default()).await;

    // The suite deleted everything it stored. What may remain are keys that expire by
    // themselves: chunks of replaced objects in their grace period and `done` markers. A key
    // without an expiry would be a leak (an orphaned staging chunk, a forgotten manifest).
    let mut conn = common::raw(&url).await;
    let left = common::keys_under(&mut conn, &prefix).await;
    let mut persistent = Vec::new();
    for key in &left {
        if common::pttl(&mut conn, key).await == -1 {
            persistent.push(key.clone());
        }
    }
    assert_eq!(
        persistent,
        Vec::<String>::new(),
        "keys without expiry left after the suite"
    );
    eprintln!(
        "after the suite: {} expiring keys left under {prefix} (superseded chunks, done markers)",
        left.len()
    );
    common::remove_prefix(&mut conn, &prefix).await;
}
