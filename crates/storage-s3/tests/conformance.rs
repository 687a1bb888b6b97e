//! The S3 backend against the shared conformance suite, on the real S3 server named by
//! `GOMODPROXY_TEST_S3_*`. Alone in its test binary: the suite's large-object check measures
//! this process's memory.

mod common;

use gomodproxy_storage::conformance::{Capabilities, run_all};
use gomodproxy_storage::{ListPrefix, Storage};
use gomodproxy_storage_s3::S3Storage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_passes_the_conformance_suite() {
    let Some(server) = common::server() else {
        return;
    };
    let prefix = common::random_prefix("conformance");
    let store = S3Storage::open(server.options(&prefix))
        .await
        .unwrap_or_else(|e| panic!("open bucket {} at {}: {e}", server.bucket, server.endpoint));
    run_all(&store, Capabilities::default()).await;

    // The suite deletes what it wrote; failed and racing puts must not have left objects
    // behind either. (Aborted multipart uploads are checked in tests/s3.rs, on a server whose
    // uploads the test can see.)
    let left = server.raw_names(&prefix).await;
    assert!(left.is_empty(), "objects left under {prefix}: {left:?}");
    let listed: Vec<_> = futures::StreamExt::collect::<Vec<_>>(store.list(&ListPrefix::All)).await;
    assert!(listed.is_empty(), "listing after the suite: {listed:?}");
}
