//! The conformance suite against the in-memory reference store.

use gomodproxy_storage::conformance::{Capabilities, run_all};
use gomodproxy_storage::memory::InMemory;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_passes_the_conformance_suite() {
    let store = InMemory::new();
    // InMemory holds every body in this process, so a 200 MiB object would grow the RSS by
    // 200 MiB by design: it runs a smaller large object and declares that its memory is not
    // bounded, which the suite reports instead of checking.
    let caps = Capabilities {
        large_object_size: 32 * 1024 * 1024,
        bounded_memory: false,
        ..Capabilities::default()
    };
    run_all(&store, caps).await;
}

#[tokio::test]
async fn in_memory_passes_on_a_current_thread_runtime() {
    // Concurrency in the suite must not depend on worker threads (a store that never suspends
    // must not starve the racing writers).
    let store = InMemory::new();
    let caps = Capabilities {
        large_object_size: 4 * 1024 * 1024,
        bounded_memory: false,
        ..Capabilities::default()
    };
    gomodproxy_storage::conformance::concurrent_puts(&store, &caps).await;
    gomodproxy_storage::conformance::large_object(&store, &caps).await;
}
