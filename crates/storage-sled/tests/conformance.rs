//! The sled backend against the shared conformance suite, alone in this test binary so that the
//! suite's RSS bound measures nothing but the store.

use std::time::{Duration, Instant};

use gomodproxy_storage::conformance::{Capabilities, run_all};
use gomodproxy_storage_sled::{Audit, SledOptions, SledStorage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStorage::open(SledOptions {
        path: dir.path().join("db"),
        ..SledOptions::default()
    })
    .unwrap();
    run_all(&store, Capabilities::default()).await;

    // Failed, dropped, racing and overwritten saves of the suite must leave no chunk behind. The
    // last reader of a replaced body removes its chunks on a blocking thread: allow it a moment.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let audit = store.audit().await.unwrap();
        if audit == Audit::default() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the store is not empty after the suite cleaned up: {audit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
