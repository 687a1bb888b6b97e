//! The conformance suite every [`Storage`] backend runs (feature `conformance`).
//!
//! A backend crate calls [`run_all`] from one test against a real instance of its store:
//!
//! ```
//! use gomodproxy_storage::conformance::{Capabilities, run_all};
//! use gomodproxy_storage::memory::InMemory;
//!
//! // In a backend crate: `#[tokio::test(flavor = "multi_thread")] async fn conformance()`.
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = InMemory::new();
//! // InMemory holds bodies in this process, so it cannot bound its memory: it says so.
//! let caps = Capabilities {
//!     large_object_size: 1024 * 1024,
//!     bounded_memory: false,
//!     ..Capabilities::default()
//! };
//! run_all(&store, caps).await;
//! # });
//! ```
//!
//! Each behaviour is also a public `async fn` of its own, so one can be run alone while
//! debugging; [`run_all`] runs them all, in a fixed order, and prints each one's name and time to
//! stderr (visible with `--nocapture`). A failure panics with the behaviour, the key and what was
//! expected.
//!
//! Every behaviour writes only under module paths with a fresh random component
//! (`conformance.test/r<16 hex digits>/…`, plus one `gopkg.in/c<hex>/yaml.v3`), so runs never
//! collide and a shared store (a Redis or a bucket) can be reused. On success a behaviour deletes
//! exactly the objects of its own modules and checks that none is left; after a failure its
//! objects stay behind for inspection, harmless to later runs.
//!
//! What is checked is the contract documented on [`Storage`]: round trips of every key kind,
//! missing keys, deletion, overwrites, `modified` times, streamed payloads, payloads of the wrong
//! length or that fail (nothing visible, previous object intact), concurrent puts of one key with
//! concurrent readers, listings (a module's objects only, not a sub-module's or a sibling's),
//! escaped and unusual module paths and versions, a large object streamed through in bounded
//! memory, and `check`. Nothing is skipped silently: a store that cannot bound its memory says so
//! in [`Capabilities::bounded_memory`], and the report line says the bound was not enforced.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::{ArtifactKind, Key, PutPayload, Storage};

mod rss;
mod support;

use support::describe;

const MIB: u64 = 1024 * 1024;

/// What the suite may expect of a store, and the sizes it works with.
///
/// Construct with struct update syntax so that fields added later get their defaults:
/// `Capabilities { large_object_size: 16 * 1024 * 1024, ..Capabilities::default() }`.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// Size of the object [`large_object`] streams in and out. Default 200 MiB.
    pub large_object_size: u64,
    /// Whether the store keeps bodies out of this process's memory. When true (the default),
    /// [`large_object`] fails if the process's resident set grows by more than
    /// [`max_rss_growth`](Self::max_rss_growth) during its put and get, and fails if the RSS cannot
    /// be measured on this platform. Only a store that holds objects in this process
    /// ([`InMemory`](crate::memory::InMemory)) sets it to false; the growth is then still
    /// measured and reported, but not bounded.
    pub bounded_memory: bool,
    /// The largest RSS growth allowed while the large object streams through. Default 100 MiB.
    /// RSS is per process: run the suite in a test binary without other heavy tests running in
    /// parallel.
    pub max_rss_growth: u64,
    /// How many puts of one key race in [`concurrent_puts`] (at least 2). Default 16.
    pub concurrency: usize,
    /// How far two reports of an object's store time may differ (put vs head vs list), and how
    /// far `modified` may lie outside the wall-clock interval of its put: room for clocks of one
    /// second resolution (HTTP dates) and for a server's clock. Default 2 s.
    pub clock_slack: Duration,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            large_object_size: 200 * MIB,
            bounded_memory: true,
            max_rss_growth: 100 * MIB,
            concurrency: 16,
            clock_slack: Duration::from_secs(2),
        }
    }
}

/// Runs every behaviour against `store`, in order; panics at the first failure.
pub async fn run_all(store: &dyn Storage, caps: Capabilities) {
    macro_rules! behaviours {
        ($($name:ident),* $(,)?) => {
            $( step(stringify!($name), $name(store, &caps)).await; )*
        };
    }
    let started = Instant::now();
    behaviours!(
        check_succeeds,
        round_trip_each_kind,
        missing_keys,
        delete_removes,
        empty_object,
        overwrite_replaces,
        modified_is_recent_and_advances,
        streamed_payloads,
        length_mismatch_leaves_nothing,
        failing_stream_leaves_nothing,
        concurrent_puts,
        listing,
        odd_module_paths,
        sumdb_objects,
        large_object,
    );
    eprintln!(
        "conformance: all behaviours passed in {:.1?} against {store:?}",
        started.elapsed()
    );
}

async fn step(name: &str, behaviour: impl Future<Output = ()>) {
    let started = Instant::now();
    behaviour.await;
    eprintln!("conformance: {name} ok ({:.1?})", started.elapsed());
}

pub(super) async fn put_ok(
    store: &dyn Storage,
    key: &Key,
    payload: PutPayload,
    ctx: &str,
) -> crate::ObjectMeta {
    store
        .put(key, payload)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: put {key} failed: {}", describe(&e)))
}

/// The six keys of one module and version: every artifact kind, the list and `@latest`.
pub(super) fn all_kinds(module: &gomod::ModulePath, v: &gomod::Version) -> Vec<Key> {
    let mut keys: Vec<Key> = ArtifactKind::ALL
        .iter()
        .map(|&kind| Key::artifact(module, v, kind))
        .collect();
    keys.push(Key::List {
        module: module.clone(),
    });
    keys.push(Key::Latest {
        module: module.clone(),
    });
    keys
}

mod large;
mod listing;
mod objects;
mod payloads;

pub use large::large_object;
pub use listing::{listing, odd_module_paths, sumdb_objects};
pub use objects::{
    check_succeeds, delete_removes, empty_object, missing_keys, modified_is_recent_and_advances,
    overwrite_replaces, round_trip_each_kind,
};
pub use payloads::{
    concurrent_puts, failing_stream_leaves_nothing, length_mismatch_leaves_nothing,
    streamed_payloads,
};
