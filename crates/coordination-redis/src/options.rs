//! [`RedisLockOptions`]: the Redis of the locks, their key prefix, expiry and longest wait; the
//! server's `[coordination]` section.

use std::time::Duration;

/// The shortest lock expiry accepted: renewal runs every third of it.
pub const MIN_LOCK_TTL: Duration = Duration::from_millis(300);

/// Settings of [`RedisFetchLock`](crate::RedisFetchLock).
///
/// With the `serde` feature it deserializes itself with the configuration's keys: `redis_url`
/// (for [`url`](Self::url)), `key_prefix`, `lock_ttl` (for [`ttl`](Self::ttl)) and `max_wait`,
/// durations as humantime strings (`"30s"`). A key it does not have is an error, a key left out
/// keeps its default; [`timeout`](Self::timeout) is not a configuration key.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(default, deny_unknown_fields)
)]
pub struct RedisLockOptions {
    /// Server URL (`redis://host:port/db`). Empty, the default, means no coordination: there is
    /// no server to lock in, and [`RedisFetchLock::connect`](crate::RedisFetchLock::connect)
    /// refuses it. Key `redis_url`.
    #[cfg_attr(feature = "serde", serde(rename = "redis_url"))]
    pub url: String,
    /// Prepended to lock keys (`<prefix>lock:<key path>`). Default `gomodproxy:`.
    pub key_prefix: String,
    /// Expiry of a lock that is not renewed: how long a dead replica can block the others. At
    /// least [`MIN_LOCK_TTL`]. Default 30 s. Key `lock_ttl`.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "lock_ttl", with = "humantime_serde")
    )]
    pub ttl: Duration,
    /// Longest wait for a lock another replica holds. Default 15 minutes.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub max_wait: Duration,
    /// Timeout of connecting and of each command. Default 2 s.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub timeout: Duration,
}

impl Default for RedisLockOptions {
    fn default() -> Self {
        RedisLockOptions {
            url: String::new(),
            key_prefix: "gomodproxy:".to_string(),
            ttl: Duration::from_secs(30),
            max_wait: Duration::from_secs(15 * 60),
            timeout: Duration::from_secs(2),
        }
    }
}

impl std::fmt::Debug for RedisLockOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLockOptions")
            .field("url", &gomodproxy_redact::url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("ttl", &self.ttl)
            .field("max_wait", &self.max_wait)
            .finish()
    }
}

/// Why [`RedisLockOptions`] cannot be used. `Display` says what is wrong with the setting that
/// [`RedisLockOptionsError::key`] names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedisLockOptionsError {
    /// `url` is set but not a `redis://` URL.
    #[error("want redis://host:port/db")]
    UrlScheme,
    /// `ttl` is shorter than [`MIN_LOCK_TTL`].
    #[error("{0:?} is too short (at least 300ms)")]
    TtlTooShort(Duration),
}

impl RedisLockOptionsError {
    /// The key of the offending setting, as the configuration spells it (`redis_url`,
    /// `lock_ttl`).
    pub fn key(&self) -> &'static str {
        match self {
            RedisLockOptionsError::UrlScheme => "redis_url",
            RedisLockOptionsError::TtlTooShort(_) => "lock_ttl",
        }
    }
}

impl RedisLockOptions {
    /// Checks what the types do not, for a configuration loader to name the key before anything
    /// connects; [`RedisFetchLock::connect`](crate::RedisFetchLock::connect) calls it too. An
    /// empty `url` (no coordination) passes: nothing else is used then.
    pub fn validate(&self) -> Result<(), RedisLockOptionsError> {
        if self.url.is_empty() {
            return Ok(());
        }
        if !self.url.starts_with("redis://") {
            return Err(RedisLockOptionsError::UrlScheme);
        }
        if self.ttl < MIN_LOCK_TTL {
            return Err(RedisLockOptionsError::TtlTooShort(self.ttl));
        }
        Ok(())
    }

    /// A copy to print: the URL's credentials redacted.
    pub fn redacted(&self) -> RedisLockOptions {
        RedisLockOptions {
            url: gomodproxy_redact::url(&self.url),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_debug_hides_passwords() {
        // One redactor for every Redis URL (it used to mask only `user:password@`).
        for url in [
            "redis://:s3cret@h:6379/0",
            "redis://user:s3cret@h:6379/0",
            "redis+unix:///run/redis.sock?db=0&pass=s3cret",
        ] {
            let options = RedisLockOptions {
                url: url.to_string(),
                ..RedisLockOptions::default()
            };
            let shown = format!("{options:?}");
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
    }
}
