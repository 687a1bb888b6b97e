//! Failed-attempt limiting per client address: a token bucket per address (IPv6 per prefix) in
//! a bounded map.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::AccessError;
use crate::config::RateLimitConfig;

/// The address a bucket is kept for: IPv4 addresses whole (IPv4-mapped IPv6 as IPv4), IPv6
/// addresses cut to the configured prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ClientKey(u128, bool);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Attempts left, fractional while refilling.
    tokens: f64,
    updated: Instant,
}

/// Per-address token buckets of failed attempts.
#[derive(Debug)]
pub(crate) struct FailureLimiter {
    enabled: bool,
    burst: f64,
    refill: Duration,
    max_clients: usize,
    ipv6_mask: u128,
    buckets: Mutex<HashMap<ClientKey, Bucket>>,
}

impl FailureLimiter {
    pub(crate) fn new(cfg: &RateLimitConfig) -> Result<FailureLimiter, AccessError> {
        let bad = |key: &str, reason: &str| AccessError::Config {
            key: format!("auth.rate_limit.{key}"),
            reason: reason.into(),
        };
        if cfg.enabled {
            if cfg.burst == 0 {
                return Err(bad("burst", "must be at least 1"));
            }
            if cfg.refill_interval.is_zero() {
                return Err(bad("refill_interval", "must be more than 0s"));
            }
            if cfg.max_clients == 0 {
                return Err(bad("max_clients", "must be at least 1"));
            }
        }
        if cfg.ipv6_prefix_len > 128 {
            return Err(bad("ipv6_prefix_len", "must be at most 128"));
        }
        let ipv6_mask = match cfg.ipv6_prefix_len {
            0 => 0,
            n => u128::MAX << (128 - u32::from(n)),
        };
        Ok(FailureLimiter {
            enabled: cfg.enabled,
            burst: f64::from(cfg.burst),
            refill: cfg.refill_interval,
            max_clients: cfg.max_clients,
            ipv6_mask,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    fn key(&self, ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(v4) => ClientKey(u128::from(u32::from(v4)), false),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(u128::from(u32::from(v4)), false),
                None => ClientKey(u128::from(v6) & self.ipv6_mask, true),
            },
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated);
        (bucket.tokens + elapsed.as_secs_f64() / self.refill.as_secs_f64()).min(self.burst)
    }

    /// `Err(retry_after)` when the address has no attempt left.
    pub(crate) fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        if !self.enabled {
            return Ok(());
        }
        let key = self.key(ip);
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        match buckets.get(&key) {
            Some(&bucket) => {
                let tokens = self.refilled(bucket, now);
                if tokens < 1.0 {
                    Err(self
                        .refill
                        .mul_f64(1.0 - tokens)
                        .max(Duration::from_millis(1)))
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }

    /// Takes one attempt from the address's bucket: before a verification (so that
    /// concurrent guesses are counted before their answers) or for a failure found at once.
    /// `Err(retry_after)` if none was left.
    pub(crate) fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        if !self.enabled {
            return Ok(());
        }
        let key = self.key(ip);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(&key) && buckets.len() >= self.max_clients {
            self.make_room(&mut buckets, now);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let tokens = self.refilled(*bucket, now);
        if tokens < 1.0 {
            *bucket = Bucket {
                tokens,
                updated: now,
            };
            return Err(self
                .refill
                .mul_f64(1.0 - tokens)
                .max(Duration::from_millis(1)));
        }
        *bucket = Bucket {
            tokens: tokens - 1.0,
            updated: now,
        };
        Ok(())
    }

    /// Gives back the attempt [`FailureLimiter::take`] took, after the verification succeeded:
    /// a user who logs in correctly does not use up their address's allowance.
    pub(crate) fn give_back(&self, ip: IpAddr, now: Instant) {
        if !self.enabled {
            return;
        }
        let key = self.key(ip);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = buckets.get_mut(&key) {
            let tokens = (self.refilled(*bucket, now) + 1.0).min(self.burst);
            *bucket = Bucket {
                tokens,
                updated: now,
            };
            if tokens >= self.burst {
                buckets.remove(&key);
            }
        }
    }

    /// Frees a slot in a full map: drops the buckets that refilled (they are the same as no
    /// bucket), or else the one closest to full, which is the address least under suspicion.
    fn make_room(&self, buckets: &mut HashMap<ClientKey, Bucket>, now: Instant) {
        buckets.retain(|_, b| self.refilled(*b, now) < self.burst);
        if buckets.len() < self.max_clients {
            return;
        }
        let fullest = buckets
            .iter()
            .max_by(|a, b| {
                self.refilled(*a.1, now)
                    .total_cmp(&self.refilled(*b.1, now))
            })
            .map(|(k, _)| *k);
        if let Some(key) = fullest {
            buckets.remove(&key);
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(burst: u32, refill_secs: u64, max_clients: usize) -> FailureLimiter {
        FailureLimiter::new(&RateLimitConfig {
            enabled: true,
            burst,
            refill_interval: Duration::from_secs(refill_secs),
            max_clients,
            ipv6_prefix_len: 64,
        })
        .unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn burst_then_limited_then_refilled() {
        let l = limiter(3, 10, 100);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(l.check(a, t0), Ok(()));
            assert_eq!(l.take(a, t0), Ok(()));
        }
        assert_eq!(l.check(a, t0), Err(Duration::from_secs(10)));
        assert_eq!(l.take(a, t0), Err(Duration::from_secs(10)));
        // Other addresses are not affected.
        assert_eq!(l.check(ip("192.0.2.2"), t0), Ok(()));
        // Half an interval later: still limited, half the wait left.
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(l.check(a, t1), Err(Duration::from_secs(5)));
        // A whole interval: one attempt back, and only one.
        let t2 = t0 + Duration::from_secs(10);
        assert_eq!(l.take(a, t2), Ok(()));
        assert!(l.take(a, t2).is_err());
    }

    #[test]
    fn success_gives_the_attempt_back() {
        let l = limiter(2, 60, 100);
        let t = Instant::now();
        let a = ip("198.51.100.7");
        for _ in 0..10 {
            l.take(a, t).unwrap();
            l.give_back(a, t);
        }
        assert_eq!(l.check(a, t), Ok(()));
        assert_eq!(l.tracked(), 0, "a full bucket is not kept");
    }

    #[test]
    fn ipv6_counts_per_prefix_and_mapped_v4_as_v4() {
        let l = limiter(1, 60, 100);
        let t = Instant::now();
        l.take(ip("2001:db8:1:2::1"), t).unwrap();
        assert!(l.check(ip("2001:db8:1:2:ffff::9"), t).is_err());
        assert!(l.check(ip("2001:db8:1:3::1"), t).is_ok());
        l.take(ip("::ffff:192.0.2.9"), t).unwrap();
        assert!(l.check(ip("192.0.2.9"), t).is_err());
    }

    #[test]
    fn the_map_is_bounded_and_keeps_the_most_limited() {
        let l = limiter(2, 60, 3);
        let t = Instant::now();
        // Two addresses exhausted, one with an attempt left.
        for a in ["10.0.0.1", "10.0.0.2"] {
            l.take(ip(a), t).unwrap();
            l.take(ip(a), t).unwrap();
        }
        l.take(ip("10.0.0.3"), t).unwrap();
        // A new address needs room: the least-limited one goes.
        l.take(ip("10.0.0.4"), t).unwrap();
        assert_eq!(l.tracked(), 3);
        assert!(l.check(ip("10.0.0.1"), t).is_err());
        assert!(l.check(ip("10.0.0.2"), t).is_err());
        assert!(l.check(ip("10.0.0.3"), t).is_ok());
        // Many new addresses never grow the map.
        for i in 0..100u8 {
            let _ = l.take(ip(&format!("10.1.0.{i}")), t);
            assert!(l.tracked() <= 3);
        }
    }

    #[test]
    fn disabled_never_limits_and_bad_settings_are_refused() {
        let l = FailureLimiter::new(&RateLimitConfig {
            enabled: false,
            ..RateLimitConfig::default()
        })
        .unwrap();
        let t = Instant::now();
        for _ in 0..100 {
            assert!(l.take(ip("10.0.0.1"), t).is_ok());
        }
        for cfg in [
            RateLimitConfig {
                burst: 0,
                ..Default::default()
            },
            RateLimitConfig {
                refill_interval: Duration::ZERO,
                ..Default::default()
            },
            RateLimitConfig {
                ipv6_prefix_len: 129,
                ..Default::default()
            },
        ] {
            assert!(FailureLimiter::new(&cfg).is_err(), "{cfg:?}");
        }
    }
}
