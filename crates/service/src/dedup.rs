//! One upstream fetch per key at a time, shared by every request that misses it.
//!
//! The fetch runs in its own task: a client that disconnects drops only its wait, never the fetch
//! the others are waiting for, and the result still lands in storage for the next request.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use gomodproxy_storage::Key;

use crate::ServiceError;
use crate::coordination::FetchLock;

type SharedFetch = Shared<BoxFuture<'static, Result<(), ServiceError>>>;

/// The in-flight fetches, by key.
#[derive(Debug, Default, Clone)]
pub(crate) struct Dedup {
    inflight: Arc<Mutex<HashMap<Key, SharedFetch>>>,
    /// Makes the fetch cluster-wide exclusive too, when replicas coordinate.
    cluster: Option<Arc<dyn FetchLock>>,
}

impl Dedup {
    /// Dedup within this process, and across replicas through `cluster` if given.
    pub(crate) fn new(cluster: Option<Arc<dyn FetchLock>>) -> Self {
        Dedup {
            inflight: Arc::default(),
            cluster,
        }
    }

    /// Waits for the fetch of `key`, starting it with `start` if none is in flight. Every waiter
    /// gets the same result. The fetch must store what it got before it returns `Ok`.
    pub(crate) async fn run<F, Fut>(&self, key: &Key, start: F) -> Result<(), ServiceError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), ServiceError>> + Send + 'static,
    {
        let shared = {
            let mut inflight = self
                .inflight
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(existing) = inflight.get(key) {
                existing.clone()
            } else {
                let fetch = start();
                let map = self.inflight.clone();
                let task_key = key.clone();
                let cluster = self.cluster.clone();
                let handle = tokio::spawn(async move {
                    let guard = match &cluster {
                        Some(lock) => match lock.lock(&task_key.path()).await {
                            Ok(guard) => Some(guard),
                            Err(e) => {
                                tracing::warn!(key = %task_key, error = %e, "cluster lock unavailable; fetching without it");
                                None
                            }
                        },
                        None => None,
                    };
                    // The fetch re-checks storage first: another replica may have stored it
                    // while this one waited for the lock.
                    let result = fetch.await;
                    if let Some(guard) = guard {
                        guard.release().await;
                    }
                    // Removed before the result is published, so a request arriving afterwards
                    // starts afresh (and finds the stored object) instead of reusing an old error.
                    map.lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .remove(&task_key);
                    result
                });
                let path = key.path();
                let shared = async move {
                    match handle.await {
                        Ok(result) => result,
                        Err(e) => Err(ServiceError::BadUpstream(format!(
                            "fetch of {path} failed: {e}"
                        ))),
                    }
                }
                .boxed()
                .shared();
                inflight.insert(key.clone(), shared.clone());
                shared
            }
        };
        shared.await
    }

    /// How many fetches are in flight (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inflight.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use gomod::ModulePath;

    use super::*;

    #[tokio::test]
    async fn concurrent_waiters_share_one_run() {
        let dedup = Dedup::default();
        let key = Key::List {
            module: ModulePath::parse("example.com/m").unwrap(),
        };
        let runs = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut waiters = Vec::new();
        for _ in 0..20 {
            let dedup = dedup.clone();
            let key = key.clone();
            let runs = runs.clone();
            let mut rx = rx.clone();
            waiters.push(tokio::spawn(async move {
                dedup
                    .run(&key, move || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        let _ = rx.wait_for(|go| *go).await;
                        Err(ServiceError::NotFound("gone".into()))
                    })
                    .await
            }));
        }
        // Let every waiter join before the fetch finishes.
        while dedup.len() == 0 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        tx.send(true).unwrap();
        for waiter in waiters {
            assert!(matches!(waiter.await.unwrap(), Err(ServiceError::NotFound(m)) if m == "gone"));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(dedup.len(), 0);
    }

    #[tokio::test]
    async fn a_dropped_waiter_does_not_cancel_the_fetch() {
        let dedup = Dedup::default();
        let key = Key::List {
            module: ModulePath::parse("example.com/m").unwrap(),
        };
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let waiter = {
            let dedup = dedup.clone();
            let key = key.clone();
            tokio::spawn(async move {
                dedup
                    .run(&key, move || async move {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        let _ = done_tx.send(());
                        Ok(())
                    })
                    .await
            })
        };
        while dedup.len() == 0 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        done_rx.await.expect("the fetch ran to completion");
    }
}
