//! [`RedisOptions`]: the server, the key prefix, the chunk size, timeouts and retries; the
//! server's `[storage.redis]` section.

use std::fmt;
use std::time::Duration;

/// Largest accepted [`RedisOptions::chunk_size`]: Redis's default `proto-max-bulk-len`.
pub const MAX_CHUNK_SIZE: usize = 512 * 1024 * 1024;

/// How a [`RedisStorage`](crate::RedisStorage) connects and lays out its data.
///
/// A plain struct: build it with struct update syntax so that fields added later keep their
/// defaults, e.g. `RedisOptions { url, ..RedisOptions::default() }`.
///
/// With the `serde` feature it deserializes itself under the names of its fields, durations as
/// humantime strings (`"10s"`); a key it does not have is an error, a key left out keeps its
/// default. [`write_concurrency`](Self::write_concurrency) and [`read_ahead`](Self::read_ahead)
/// are not configuration keys (they keep their defaults).
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(default, deny_unknown_fields)
)]
pub struct RedisOptions {
    /// The server, as a redis-rs connection URL: `redis://[[user]:password@]host[:port][/db]`
    /// or `redis+unix:///path/to/socket[?db=N]`. Default `redis://127.0.0.1:6379/0`. TLS
    /// (`rediss://`) is not compiled in.
    pub url: String,
    /// Prepended to every Redis key this store uses, so that several stores (or other
    /// applications) can share one Redis. End it with a separator and do not use one store's
    /// prefix as the start of another's. Default `gomodproxy:`.
    pub key_prefix: String,
    /// Size of the chunks a body is stored in, in bytes (1 to [`MAX_CHUNK_SIZE`]); a reader holds
    /// about [`read_ahead`](Self::read_ahead) + 1 of them in memory. Changing it later is safe:
    /// each object records its own chunk count. Default 1 MiB.
    pub chunk_size: usize,
    /// Time allowed for each attempt to connect (TCP connect and handshake). Default 5 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub connect_timeout: Duration,
    /// Time allowed for a reply to each command, including a whole chunk. Default 10 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub response_timeout: Duration,
    /// How many times a command is retried after it failed because the connection was dropped or
    /// refused (the connection manager reconnects in between). Default 2.
    pub retries: u32,
    /// Expiry of the chunks of a put in progress, refreshed while the payload keeps arriving: how
    /// long a crashed writer's chunks occupy memory. At least 1 s. Default 1 hour.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub staging_ttl: Duration,
    /// How long the chunks of a replaced or deleted object stay readable for readers already
    /// streaming it. Zero deletes them at once (such readers then fail). Default 15 minutes.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub superseded_grace: Duration,
    /// Chunk writes in flight while a put streams in (at least 1). Default 4.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub write_concurrency: usize,
    /// Chunk reads in flight ahead of a reader (at least 1). Default 2.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub read_ahead: usize,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            url: "redis://127.0.0.1:6379/0".to_string(),
            key_prefix: "gomodproxy:".to_string(),
            chunk_size: 1024 * 1024,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(10),
            retries: 2,
            staging_ttl: Duration::from_secs(60 * 60),
            superseded_grace: Duration::from_secs(15 * 60),
            write_concurrency: 4,
            read_ahead: 2,
        }
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &gomodproxy_redact::url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("chunk_size", &self.chunk_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("retries", &self.retries)
            .field("staging_ttl", &self.staging_ttl)
            .field("superseded_grace", &self.superseded_grace)
            .field("write_concurrency", &self.write_concurrency)
            .field("read_ahead", &self.read_ahead)
            .finish()
    }
}

/// Why [`RedisOptions`] cannot be used. `Display` says what is wrong with the setting that
/// [`RedisOptionsError::key`] names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedisOptionsError {
    /// `url` is not a `redis://`, `redis+unix://` or `unix://` URL.
    #[error("want redis://host:port/db or redis+unix:///path")]
    UrlScheme,
    /// `chunk_size` is 0 or larger than [`MAX_CHUNK_SIZE`].
    #[error("must be between 1 and {MAX_CHUNK_SIZE} bytes, not {0}")]
    ChunkSize(usize),
    /// `connect_timeout` is zero.
    #[error("must not be zero")]
    ZeroConnectTimeout,
    /// `response_timeout` is zero.
    #[error("must not be zero")]
    ZeroResponseTimeout,
    /// `staging_ttl` is shorter than a second.
    #[error("must be at least 1 s, not {0:?}")]
    StagingTtlTooShort(Duration),
    /// `write_concurrency` is 0.
    #[error("must be at least 1")]
    ZeroWriteConcurrency,
    /// `read_ahead` is 0.
    #[error("must be at least 1")]
    ZeroReadAhead,
}

impl RedisOptionsError {
    /// The key of the offending setting, as the configuration spells it (the field's name).
    pub fn key(&self) -> &'static str {
        match self {
            RedisOptionsError::UrlScheme => "url",
            RedisOptionsError::ChunkSize(_) => "chunk_size",
            RedisOptionsError::ZeroConnectTimeout => "connect_timeout",
            RedisOptionsError::ZeroResponseTimeout => "response_timeout",
            RedisOptionsError::StagingTtlTooShort(_) => "staging_ttl",
            RedisOptionsError::ZeroWriteConcurrency => "write_concurrency",
            RedisOptionsError::ZeroReadAhead => "read_ahead",
        }
    }
}

/// URL schemes redis-rs connects with (TLS is not compiled in).
const URL_SCHEMES: [&str; 3] = ["redis://", "redis+unix://", "unix://"];

impl RedisOptions {
    /// Checks what the types do not: [`RedisStorage::open`](crate::RedisStorage::open) calls it,
    /// and so can a configuration loader, to name the key before anything is opened.
    pub fn validate(&self) -> Result<(), RedisOptionsError> {
        if !URL_SCHEMES.iter().any(|s| self.url.starts_with(s)) {
            return Err(RedisOptionsError::UrlScheme);
        }
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return Err(RedisOptionsError::ChunkSize(self.chunk_size));
        }
        if self.connect_timeout.is_zero() {
            return Err(RedisOptionsError::ZeroConnectTimeout);
        }
        if self.response_timeout.is_zero() {
            return Err(RedisOptionsError::ZeroResponseTimeout);
        }
        if self.staging_ttl < Duration::from_secs(1) {
            return Err(RedisOptionsError::StagingTtlTooShort(self.staging_ttl));
        }
        if self.write_concurrency == 0 {
            return Err(RedisOptionsError::ZeroWriteConcurrency);
        }
        if self.read_ahead == 0 {
            return Err(RedisOptionsError::ZeroReadAhead);
        }
        Ok(())
    }

    /// A copy to print: the URL's password (and every other credential in it) redacted.
    pub fn redacted(&self) -> RedisOptions {
        RedisOptions {
            url: gomodproxy_redact::url(&self.url),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_debug_hides_the_password() {
        let options = RedisOptions {
            url: "redis://:hunter2@127.0.0.1:6379/0".into(),
            ..RedisOptions::default()
        };
        let shown = format!("{options:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("127.0.0.1:6379"), "{shown}");
    }

    #[test]
    fn invalid_options_are_rejected() {
        let bad = [
            RedisOptions {
                chunk_size: 0,
                ..RedisOptions::default()
            },
            RedisOptions {
                chunk_size: MAX_CHUNK_SIZE + 1,
                ..RedisOptions::default()
            },
            RedisOptions {
                response_timeout: Duration::ZERO,
                ..RedisOptions::default()
            },
            RedisOptions {
                connect_timeout: Duration::ZERO,
                ..RedisOptions::default()
            },
            RedisOptions {
                staging_ttl: Duration::from_millis(999),
                ..RedisOptions::default()
            },
            RedisOptions {
                write_concurrency: 0,
                ..RedisOptions::default()
            },
            RedisOptions {
                read_ahead: 0,
                ..RedisOptions::default()
            },
        ];
        for options in bad {
            assert!(options.validate().is_err(), "{options:?} was accepted");
        }
        assert_eq!(RedisOptions::default().validate(), Ok(()));
    }
}
