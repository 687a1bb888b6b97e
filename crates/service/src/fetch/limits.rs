//! Bounds on what upstream work can consume: concurrent fetches (in all and per upstream host,
//! with a bounded queue in front), and the disk that zips being received may take.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::FetchError;

/// Settings of [`FetchLimits`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct LimitSettings {
    /// Upstream requests in flight at once, in all.
    pub(crate) max_concurrent: usize,
    /// Upstream requests in flight at once to one `host:port`.
    pub(crate) max_concurrent_per_host: usize,
    /// Requests that may wait for a slot, in all; one more is refused at once.
    pub(crate) max_queued: usize,
    /// Requests that may wait for a slot of one host: a slow host cannot fill the whole queue
    /// (and hold the client connections of every waiter).
    pub(crate) max_queued_per_host: usize,
    /// Longest wait for a slot.
    pub(crate) queue_timeout: Duration,
}

/// The concurrency caps of upstream fetching, shared by every fetcher of a service.
#[derive(Debug)]
pub(crate) struct FetchLimits {
    settings: LimitSettings,
    global: Arc<Semaphore>,
    /// Slots and waiters per upstream `host:port`; the hosts come from the configuration (the
    /// chain and the checksum databases), so the map stays small.
    per_host: Mutex<HashMap<String, Arc<HostSlots>>>,
    queued: AtomicUsize,
    in_flight: AtomicUsize,
    rejected: AtomicU64,
}

/// One host's slots and the requests waiting for them.
#[derive(Debug)]
struct HostSlots {
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
}

/// Slots held while a request runs; released on drop.
#[derive(Debug)]
pub(crate) struct FetchPermit {
    _host: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
    limits: Arc<FetchLimits>,
}

impl Drop for FetchPermit {
    fn drop(&mut self) {
        self.limits.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Decrements the queue length when a waiter leaves the queue, however it leaves.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Figures for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchLimitStats {
    /// Upstream requests running now.
    pub in_flight: u64,
    /// Requests waiting for a slot now.
    pub queued: u64,
    /// Requests refused because the queue was full or the wait too long (since start).
    pub rejected: u64,
}

impl FetchLimits {
    pub(crate) fn new(settings: LimitSettings) -> Arc<FetchLimits> {
        Arc::new(FetchLimits {
            global: Arc::new(Semaphore::new(settings.max_concurrent.max(1))),
            per_host: Mutex::default(),
            queued: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            rejected: AtomicU64::new(0),
            settings,
        })
    }

    fn host(&self, host: &str) -> Arc<HostSlots> {
        let mut map = self.per_host.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(host.to_string())
            .or_insert_with(|| {
                Arc::new(HostSlots {
                    slots: Arc::new(Semaphore::new(self.settings.max_concurrent_per_host.max(1))),
                    queued: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    /// Takes a slot for a request to `host`, waiting in a bounded queue for at most
    /// `queue_timeout`; a full queue or a wait too long is [`FetchError::Overloaded`].
    pub(crate) async fn acquire(self: &Arc<Self>, host: &str) -> Result<FetchPermit, FetchError> {
        let host_state = self.host(host);
        let host_slots = host_state.slots.clone();
        let permit = |host_permit, global_permit| {
            self.in_flight.fetch_add(1, Ordering::Relaxed);
            FetchPermit {
                _host: host_permit,
                _global: global_permit,
                limits: self.clone(),
            }
        };
        if let Ok(h) = host_slots.clone().try_acquire_owned() {
            if let Ok(g) = self.global.clone().try_acquire_owned() {
                return Ok(permit(h, g));
            }
            drop(h);
        }
        if self.queued.fetch_add(1, Ordering::Relaxed) >= self.settings.max_queued {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(self.reject(format!(
                "too many upstream fetches are waiting ({} queued behind {} in flight); try again shortly",
                self.settings.max_queued,
                self.in_flight.load(Ordering::Relaxed)
            )));
        }
        let _queued = Queued(&self.queued);
        if host_state.queued.fetch_add(1, Ordering::Relaxed) >= self.settings.max_queued_per_host {
            host_state.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(self.reject(format!(
                "too many upstream fetches are waiting for {host} ({} queued); try again shortly",
                self.settings.max_queued_per_host
            )));
        }
        let _host_queued = Queued(&host_state.queued);
        let wait = async {
            // The host first: a waiter for a saturated host must not hold a global slot.
            let h = host_slots.acquire_owned().await;
            let g = self.global.clone().acquire_owned().await;
            (h, g)
        };
        match tokio::time::timeout(self.settings.queue_timeout, wait).await {
            Ok((Ok(h), Ok(g))) => Ok(permit(h, g)),
            // The semaphores are never closed.
            Ok(_) => Err(FetchError::Local("fetch limits are closed".to_string())),
            Err(_) => Err(self.reject(format!(
                "no upstream fetch slot for {host} within {:?} ({} in flight); try again shortly",
                self.settings.queue_timeout,
                self.in_flight.load(Ordering::Relaxed)
            ))),
        }
    }

    fn reject(&self, message: String) -> FetchError {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(reason = %message, "upstream fetch refused: overloaded");
        FetchError::Overloaded(message)
    }

    pub(crate) fn stats(&self) -> FetchLimitStats {
        FetchLimitStats {
            in_flight: self.in_flight.load(Ordering::Relaxed) as u64,
            queued: self.queued.load(Ordering::Relaxed) as u64,
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}

/// The disk that spooled zips (received, not yet stored) may take at once, in all.
#[derive(Debug)]
pub(crate) struct SpoolBudget {
    limit: u64,
    used: AtomicU64,
}

/// Bytes of the spool budget held by one spool file; given back on drop.
#[derive(Debug)]
pub(crate) struct SpoolReservation {
    budget: Arc<SpoolBudget>,
    held: u64,
}

impl SpoolBudget {
    pub(crate) fn new(limit: u64) -> Arc<SpoolBudget> {
        Arc::new(SpoolBudget {
            limit,
            used: AtomicU64::new(0),
        })
    }

    pub(crate) fn reservation(self: &Arc<Self>) -> SpoolReservation {
        SpoolReservation {
            budget: self.clone(),
            held: 0,
        }
    }

    /// Bytes in use now (for metrics).
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

impl SpoolReservation {
    /// Takes `n` more bytes, or fails with [`FetchError::Overloaded`] if the budget has no room.
    pub(crate) fn grow(&mut self, n: u64) -> Result<(), FetchError> {
        let budget = &self.budget;
        let mut used = budget.used.load(Ordering::Relaxed);
        loop {
            let next = used.saturating_add(n);
            if next > budget.limit {
                return Err(FetchError::Overloaded(format!(
                    "the spool budget ({} bytes for zips being received) is in use; try again shortly",
                    budget.limit
                )));
            }
            match budget.used.compare_exchange_weak(
                used,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.held += n;
                    return Ok(());
                }
                Err(now) => used = now,
            }
        }
    }

    /// Gives everything back (the spool file was emptied).
    pub(crate) fn clear(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::Relaxed);
        self.held = 0;
    }
}

impl Drop for SpoolReservation {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per_host: usize, queued: usize, wait_ms: u64) -> Arc<FetchLimits> {
        FetchLimits::new(LimitSettings {
            max_concurrent: max,
            max_concurrent_per_host: per_host,
            max_queued: queued,
            max_queued_per_host: queued,
            queue_timeout: Duration::from_millis(wait_ms),
        })
    }

    #[tokio::test]
    async fn per_host_cap_leaves_other_hosts_alone() {
        let l = limits(10, 2, 10, 50);
        let a1 = l.acquire("a:443").await.unwrap();
        let _a2 = l.acquire("a:443").await.unwrap();
        assert!(matches!(
            l.acquire("a:443").await,
            Err(FetchError::Overloaded(_))
        ));
        let _b = l.acquire("b:443").await.unwrap();
        assert_eq!(l.stats().in_flight, 3);
        assert_eq!(l.stats().rejected, 1);
        drop(a1);
        let _a3 = l.acquire("a:443").await.unwrap();
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let l = limits(1, 1, 1, 5_000);
        let held = l.acquire("a:1").await.unwrap();
        let waiter = {
            let l = l.clone();
            tokio::spawn(async move { l.acquire("a:1").await.map(|_| ()) })
        };
        while l.stats().queued == 0 {
            tokio::task::yield_now().await;
        }
        let started = std::time::Instant::now();
        assert!(matches!(
            l.acquire("a:1").await,
            Err(FetchError::Overloaded(_))
        ));
        assert!(started.elapsed() < Duration::from_secs(1));
        drop(held);
        waiter.await.unwrap().unwrap();
        assert_eq!(l.stats().queued, 0);
    }

    #[tokio::test]
    async fn one_slow_host_cannot_fill_the_whole_queue() {
        let l = FetchLimits::new(LimitSettings {
            max_concurrent: 10,
            max_concurrent_per_host: 1,
            max_queued: 10,
            max_queued_per_host: 1,
            queue_timeout: Duration::from_secs(5),
        });
        let _held = l.acquire("slow:1").await.unwrap();
        let waiter = {
            let l = l.clone();
            tokio::spawn(async move { l.acquire("slow:1").await.map(|_| ()) })
        };
        while l.stats().queued == 0 {
            tokio::task::yield_now().await;
        }
        // A second waiter for the slow host is refused at once; another host still queues.
        assert!(
            matches!(l.acquire("slow:1").await, Err(FetchError::Overloaded(m)) if m.contains("slow:1"))
        );
        let _other = l.acquire("fast:1").await.unwrap();
        waiter.abort();
    }

    #[test]
    fn spool_budget_is_shared_and_given_back() {
        let budget = SpoolBudget::new(100);
        let mut a = budget.reservation();
        let mut b = budget.reservation();
        a.grow(60).unwrap();
        assert!(matches!(b.grow(50), Err(FetchError::Overloaded(_))));
        b.grow(40).unwrap();
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        b.clear();
        assert_eq!(budget.used(), 0);
    }
}
