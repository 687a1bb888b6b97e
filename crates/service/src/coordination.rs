//! Coordination between replicas that share one store: a cluster-wide lock per artifact, so that
//! concurrent misses for one artifact on several replicas lead to one upstream fetch.
//!
//! In process, [`crate::dedup::Dedup`] already makes concurrent misses share one fetch. With a
//! [`FetchLock`] configured, that one fetch first takes the artifact's cluster lock; the replica
//! that gets it fetches and stores, the others wait, then find the artifact in the shared store
//! (every fetch re-checks storage before going upstream) and serve it from there.
//!
//! A lock that cannot be taken because the coordination service is down does not stop the
//! proxy: the fetch goes ahead without it (each replica then fetches on its own, as without
//! coordination) and a warning is logged. Availability over deduplication: a duplicate fetch is
//! only wasted bandwidth, while refusing to fetch would be an outage.

use std::fmt::Debug;

use async_trait::async_trait;

/// A held lock; [`LockGuard::release`] gives it up (a guard that is dropped without release
/// still expires).
#[async_trait]
pub trait LockGuard: Send {
    /// Releases the lock if this guard still holds it.
    async fn release(self: Box<Self>);
}

/// A cluster-wide lock per key.
#[async_trait]
pub trait FetchLock: Debug + Send + Sync + 'static {
    /// Waits for the lock on `key` (a storage key path). Errors mean the lock service failed or
    /// the wait timed out; the caller then proceeds without the lock.
    async fn lock(&self, key: &str) -> Result<Box<dyn LockGuard>, String>;
}
