//! Remembered password verifications: bcrypt and argon2 cost milliseconds to seconds, and the
//! go command sends the same basic credentials with every request.
//!
//! Entries are keyed by an HMAC-SHA256 of user and password under a key drawn at start, so the
//! map never holds a password or anything from which one could be checked offline without
//! the process memory. An entry remembers the generation of the credential set it was verified
//! against: after a reload, entries of the old set no longer match (a removed user or changed
//! password stops working at once), even those inserted by a verification that was still
//! running when the reload happened.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sha2::Sha256;

use crate::credentials::Identity;

pub(crate) type Key = [u8; 32];

#[derive(Debug)]
struct Entry {
    identity: Identity,
    generation: u64,
    expires: Instant,
}

/// The bounded, TTL'd verification cache.
pub(crate) struct VerifiedCache {
    hmac_key: [u8; 32],
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<Key, Entry>>,
}

impl std::fmt::Debug for VerifiedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedCache")
            .field("ttl", &self.ttl)
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

impl VerifiedCache {
    pub(crate) fn new(ttl: Duration, max_entries: usize) -> VerifiedCache {
        let mut hmac_key = [0u8; 32];
        rand::rng().fill_bytes(&mut hmac_key);
        VerifiedCache {
            hmac_key,
            ttl,
            max_entries,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.max_entries > 0
    }

    pub(crate) fn key(&self, user: &str, password: &[u8]) -> Key {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.hmac_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        // Length-prefixed so that ("ab", "c") and ("a", "bc") differ.
        mac.update(&(user.len() as u64).to_be_bytes());
        mac.update(user.as_bytes());
        mac.update(password);
        mac.finalize().into_bytes().into()
    }

    /// The identity verified for these credentials under `generation`, if still fresh.
    pub(crate) fn get(
        &self,
        user: &str,
        password: &[u8],
        generation: u64,
        now: Instant,
    ) -> Option<Identity> {
        if !self.enabled() {
            return None;
        }
        let key = self.key(user, password);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(&key) {
            Some(e) if e.generation == generation && now < e.expires => Some(e.identity.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remembers a successful verification.
    pub(crate) fn insert(
        &self,
        user: &str,
        password: &[u8],
        identity: Identity,
        generation: u64,
        now: Instant,
    ) {
        if !self.enabled() {
            return;
        }
        let key = self.key(user, password);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if !entries.contains_key(&key) && entries.len() >= self.max_entries {
            entries.retain(|_, e| e.generation == generation && now < e.expires);
            if entries.len() >= self.max_entries {
                let soonest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| *k);
                if let Some(k) = soonest {
                    entries.remove(&k);
                }
            }
        }
        entries.insert(
            key,
            Entry {
                identity,
                generation,
                expires: now + self.ttl,
            },
        );
    }

    /// Forgets everything (after a reload: old entries would not match anyway, this frees them).
    pub(crate) fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::IdentityKind;

    fn alice() -> Identity {
        Identity::new("alice", IdentityKind::User, &["dev"])
    }

    #[test]
    fn hit_until_the_ttl_then_miss() {
        let c = VerifiedCache::new(Duration::from_secs(60), 10);
        let t = Instant::now();
        c.insert("alice", b"pw", alice(), 1, t);
        assert_eq!(c.get("alice", b"pw", 1, t), Some(alice()));
        assert_eq!(
            c.get("alice", b"pw", 1, t + Duration::from_secs(59)),
            Some(alice())
        );
        assert_eq!(c.get("alice", b"pw", 1, t + Duration::from_secs(60)), None);
        assert_eq!(c.len(), 0, "an expired entry is dropped when seen");
    }

    #[test]
    fn other_passwords_and_generations_miss() {
        let c = VerifiedCache::new(Duration::from_secs(60), 10);
        let t = Instant::now();
        c.insert("alice", b"pw", alice(), 1, t);
        assert_eq!(c.get("alice", b"pw2", 1, t), None);
        assert_eq!(c.get("alicep", b"w", 1, t), None);
        assert_eq!(c.get("alice", b"pw", 2, t), None, "a reload invalidates");
    }

    #[test]
    fn bounded() {
        let c = VerifiedCache::new(Duration::from_secs(60), 4);
        let t = Instant::now();
        for i in 0..50u32 {
            c.insert(
                "alice",
                &i.to_be_bytes(),
                alice(),
                1,
                t + Duration::from_millis(i.into()),
            );
            assert!(c.len() <= 4);
        }
        // The newest survive.
        assert!(
            c.get("alice", &49u32.to_be_bytes(), 1, t + Duration::from_secs(1))
                .is_some()
        );
    }

    #[test]
    fn ttl_zero_disables() {
        let c = VerifiedCache::new(Duration::ZERO, 10);
        let t = Instant::now();
        c.insert("alice", b"pw", alice(), 1, t);
        assert_eq!(c.get("alice", b"pw", 1, t), None);
    }
}
