//! A small in-memory map whose entries expire, bounded in entries and in bytes: the negative
//! cache of "not found" answers and the short cache of non-canonical queries.
//!
//! Eviction is first-in, first-out (entries have one TTL, so the oldest is also the first to
//! expire): cheap, and enough for caches whose point is to absorb bursts of the same request.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Something whose memory cost can be estimated.
pub(crate) trait Weigh {
    /// Approximate heap bytes.
    fn weight(&self) -> usize;
}

impl Weigh for String {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl Weigh for bytes::Bytes {
    fn weight(&self) -> usize {
        self.len()
    }
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    inserted: Instant,
    /// Matches the generation in `order`, so a stale queue slot does not evict a newer entry.
    generation: u64,
}

#[derive(Debug)]
struct State<V> {
    map: HashMap<String, Entry<V>>,
    order: VecDeque<(String, u64)>,
    bytes: usize,
    generation: u64,
}

/// See the module docs. A TTL or a capacity of zero turns the cache off.
#[derive(Debug)]
pub(crate) struct TtlCache<V> {
    ttl: Duration,
    max_entries: usize,
    max_bytes: usize,
    state: Mutex<State<V>>,
}

/// Fixed per-entry overhead counted against the byte budget (map slot, queue slot).
const ENTRY_OVERHEAD: usize = 96;

impl<V: Clone + Weigh> TtlCache<V> {
    pub(crate) fn new(ttl: Duration, max_entries: usize, max_bytes: usize) -> TtlCache<V> {
        TtlCache {
            ttl,
            max_entries,
            max_bytes,
            state: Mutex::new(State {
                map: HashMap::new(),
                order: VecDeque::new(),
                bytes: 0,
                generation: 0,
            }),
        }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.max_entries > 0 && self.max_bytes > 0
    }

    /// The value under `key` if it is younger than the TTL.
    pub(crate) fn get(&self, key: &str) -> Option<V> {
        if !self.enabled() {
            return None;
        }
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let entry = state.map.get(key)?;
        (entry.inserted.elapsed() < self.ttl).then(|| entry.value.clone())
    }

    /// Stores `value` under `key`, evicting the oldest entries to stay within the bounds.
    pub(crate) fn insert(&self, key: &str, value: V) {
        if !self.enabled() {
            return;
        }
        let cost = key.len() + value.weight() + ENTRY_OVERHEAD;
        if cost > self.max_bytes {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.generation += 1;
        let generation = state.generation;
        if let Some(old) = state.map.insert(
            key.to_string(),
            Entry {
                value,
                inserted: Instant::now(),
                generation,
            },
        ) {
            state.bytes -= key.len() + old.value.weight() + ENTRY_OVERHEAD;
        }
        state.bytes += cost;
        state.order.push_back((key.to_string(), generation));
        while state.map.len() > self.max_entries || state.bytes > self.max_bytes {
            let Some((oldest, generation)) = state.order.pop_front() else {
                break;
            };
            if state
                .map
                .get(&oldest)
                .is_some_and(|e| e.generation == generation)
                && let Some(e) = state.map.remove(&oldest)
            {
                state.bytes -= oldest.len() + e.value.weight() + ENTRY_OVERHEAD;
            }
        }
        // Queue slots of replaced entries: drop them once they dominate, so the queue stays
        // proportional to the map.
        if state.order.len() > 2 * state.map.len() + 16 {
            let State { map, order, .. } = &mut *state;
            order.retain(|(k, g)| map.get(k).is_some_and(|e| e.generation == *g));
        }
    }

    /// Number of entries held (expired ones included until evicted).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.state.lock().map(|s| s.map.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_bounds_hold() {
        let cache: TtlCache<String> = TtlCache::new(Duration::from_millis(50), 3, 1 << 20);
        cache.insert("a", "1".into());
        assert_eq!(cache.get("a").as_deref(), Some("1"));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("a"), None);
        for k in ["b", "c", "d", "e"] {
            cache.insert(k, k.to_string());
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("b"), None, "the oldest was evicted");
        assert_eq!(cache.get("e").as_deref(), Some("e"));
        // Replacing a key keeps one entry.
        for _ in 0..100 {
            cache.insert("e", "again".into());
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("e").as_deref(), Some("again"));
    }

    #[test]
    fn byte_budget() {
        let cache: TtlCache<String> = TtlCache::new(Duration::from_secs(60), 1000, 1000);
        for i in 0..100 {
            cache.insert(&format!("k{i}"), "x".repeat(100));
        }
        assert!(
            cache.len() <= 1000 / (100 + ENTRY_OVERHEAD),
            "{}",
            cache.len()
        );
        assert!(cache.get("k99").is_some());
        // Bigger than the whole budget: not held.
        cache.insert("huge", "x".repeat(2000));
        assert_eq!(cache.get("huge"), None);
    }

    #[test]
    fn zero_ttl_is_off() {
        let cache: TtlCache<String> = TtlCache::new(Duration::ZERO, 10, 1000);
        cache.insert("a", "1".into());
        assert_eq!(cache.get("a"), None);
    }
}
