//! One upstream fetch per key at a time, shared by every request that misses it.
//!
//! The fetch runs in its own task, so a client that disconnects drops only its own wait. When
//! the last waiter is gone and the fetch has not finished, it is cancelled (its upstream
//! connection closed, its spool file removed, its upstream slot freed): a fetch nobody waits for
//! is work an attacker can pile up by opening and dropping requests. Two exceptions: prewarm
//! always waits for what it started, and with a cluster lock (replicas sharing a store) fetches
//! are never cancelled, since other replicas may be waiting on the lock this one holds.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::task::AbortHandle;

use crate::ServiceError;
use crate::coordination::FetchLock;

type SharedFetch<T> = Shared<BoxFuture<'static, Result<T, ServiceError>>>;

struct Flight<T> {
    /// Tells this flight from a later one under the same key.
    id: u64,
    shared: SharedFetch<T>,
    waiters: usize,
    abort: AbortHandle,
}

type Inflight<T> = Arc<Mutex<HashMap<String, Flight<T>>>>;

/// The in-flight fetches, by key.
pub(crate) struct Dedup<T: Clone + Send + Sync + 'static> {
    inflight: Inflight<T>,
    /// Makes the fetch cluster-wide exclusive too, when replicas coordinate.
    cluster: Option<Arc<dyn FetchLock>>,
    next_id: AtomicU64,
}

impl<T: Clone + Send + Sync + 'static> std::fmt::Debug for Dedup<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dedup")
            .field("cluster", &self.cluster.is_some())
            .finish_non_exhaustive()
    }
}

/// Counts one waiter of a flight; the last one to leave an unfinished flight cancels it.
struct Waiter<T: Clone + Send + Sync + 'static> {
    inflight: Inflight<T>,
    key: String,
    id: u64,
    cancel_when_abandoned: bool,
}

impl<T: Clone + Send + Sync + 'static> Drop for Waiter<T> {
    fn drop(&mut self) {
        let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        let Some(flight) = map.get_mut(&self.key) else {
            return;
        };
        if flight.id != self.id {
            return;
        }
        flight.waiters -= 1;
        if flight.waiters == 0
            && self.cancel_when_abandoned
            && let Some(flight) = map.remove(&self.key)
        {
            flight.abort.abort();
            tracing::debug!(key = %self.key, "fetch cancelled: no one waits for it any more");
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Dedup<T> {
    /// Dedup within this process, and across replicas through `cluster` if given.
    pub(crate) fn new(cluster: Option<Arc<dyn FetchLock>>) -> Self {
        Dedup {
            inflight: Arc::default(),
            cluster,
            next_id: AtomicU64::new(0),
        }
    }

    /// Waits for the fetch of `key`, starting it with `start` if none is in flight. Every waiter
    /// gets the same result.
    pub(crate) async fn run<F, Fut>(&self, key: &str, start: F) -> Result<T, ServiceError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ServiceError>> + Send + 'static,
    {
        let cancel_when_abandoned = self.cluster.is_none();
        let (shared, _waiter) = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            let id = match inflight.get_mut(key) {
                Some(flight) => {
                    flight.waiters += 1;
                    flight.id
                }
                None => {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let flight = self.spawn(key, id, start());
                    inflight.insert(key.to_string(), flight);
                    id
                }
            };
            let shared = inflight.get(key).map(|f| f.shared.clone());
            let waiter = Waiter {
                inflight: self.inflight.clone(),
                key: key.to_string(),
                id,
                cancel_when_abandoned,
            };
            (shared, waiter)
        };
        match shared {
            Some(shared) => shared.await,
            None => Err(ServiceError::local(
                "internal error: a fetch vanished from the in-flight map".to_string(),
            )),
        }
    }

    fn spawn<Fut>(&self, key: &str, id: u64, fetch: Fut) -> Flight<T>
    where
        Fut: Future<Output = Result<T, ServiceError>> + Send + 'static,
    {
        let map = self.inflight.clone();
        let task_key = key.to_string();
        let cluster = self.cluster.clone();
        let handle = tokio::spawn(async move {
            let guard = match &cluster {
                Some(lock) => match lock.lock(&task_key).await {
                    Ok(guard) => Some(guard),
                    Err(e) => {
                        tracing::warn!(key = %task_key, error = %e, "cluster lock unavailable; fetching without it");
                        None
                    }
                },
                None => None,
            };
            // The fetch re-checks storage first: another replica may have stored it while this
            // one waited for the lock.
            let result = fetch.await;
            if let Some(guard) = guard {
                guard.release().await;
            }
            // Removed before the result is published, so a request arriving afterwards starts
            // afresh (and finds the stored object) instead of reusing an old error.
            let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
            if map.get(&task_key).is_some_and(|f| f.id == id) {
                map.remove(&task_key);
            }
            result
        });
        let abort = handle.abort_handle();
        let path = key.to_string();
        let shared = async move {
            match handle.await {
                Ok(result) => result,
                Err(e) if e.is_cancelled() => Err(ServiceError::BadUpstream(format!(
                    "the fetch of {path} was cancelled"
                ))),
                Err(e) => Err(ServiceError::BadUpstream(format!(
                    "fetch of {path} failed: {e}"
                ))),
            }
        }
        .boxed()
        .shared();
        Flight {
            id,
            shared,
            waiters: 1,
            abort,
        }
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
    use std::time::Duration;

    use super::*;

    const KEY: &str = "example.com/m/@v/list";

    #[tokio::test]
    async fn concurrent_waiters_share_one_run() {
        let dedup: Arc<Dedup<()>> = Arc::new(Dedup::new(None));
        let runs = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut waiters = Vec::new();
        for _ in 0..20 {
            let dedup = dedup.clone();
            let runs = runs.clone();
            let mut rx = rx.clone();
            waiters.push(tokio::spawn(async move {
                dedup
                    .run(KEY, move || async move {
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
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send(true).unwrap();
        for waiter in waiters {
            assert!(matches!(waiter.await.unwrap(), Err(ServiceError::NotFound(m)) if m == "gone"));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(dedup.len(), 0);
    }

    /// Dropped on drop of the fetch future: tells whether the fetch was cancelled.
    struct DropFlag(Arc<AtomicUsize>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_fetch_no_one_waits_for_is_cancelled() {
        let dedup: Arc<Dedup<()>> = Arc::new(Dedup::new(None));
        let dropped = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let mut waiters = Vec::new();
        for _ in 0..3 {
            let (dedup, dropped, finished) = (dedup.clone(), dropped.clone(), finished.clone());
            waiters.push(tokio::spawn(async move {
                dedup
                    .run(KEY, move || async move {
                        let _flag = DropFlag(dropped);
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        finished.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
            }));
        }
        while dedup.len() == 0 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Two leave: the fetch goes on for the third.
        waiters[0].abort();
        waiters[1].abort();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        assert_eq!(dedup.len(), 1);
        // The last one leaves: the fetch is cancelled and forgotten.
        waiters[2].abort();
        for _ in 0..100 {
            if dropped.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert_eq!(finished.load(Ordering::SeqCst), 0);
        assert_eq!(dedup.len(), 0);
        // A new request starts a new fetch.
        let value = dedup.run(KEY, || async { Ok(()) }).await;
        assert!(value.is_ok());
    }

    #[tokio::test]
    async fn a_waited_for_fetch_completes_and_shares_its_value() {
        let dedup: Arc<Dedup<bytes::Bytes>> = Arc::new(Dedup::new(None));
        let a = {
            let dedup = dedup.clone();
            tokio::spawn(async move {
                dedup
                    .run("q", || async {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(bytes::Bytes::from_static(b"v"))
                    })
                    .await
            })
        };
        while dedup.len() == 0 {
            tokio::task::yield_now().await;
        }
        let b = dedup
            .run("q", || async { Ok(bytes::Bytes::from_static(b"other")) })
            .await
            .unwrap();
        assert_eq!(b, "v");
        assert_eq!(a.await.unwrap().unwrap(), "v");
    }
}
