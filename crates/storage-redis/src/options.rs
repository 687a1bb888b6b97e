//! [`RedisOptions`]: the server, the key prefix, the chunk size, timeouts and retries.

use std::fmt;
use std::time::Duration;

/// Largest accepted [`RedisOptions::chunk_size`]: Redis's default `proto-max-bulk-len`.
pub const MAX_CHUNK_SIZE: usize = 512 * 1024 * 1024;

/// How a [`RedisStorage`] connects and lays out its data.
///
/// A plain struct: build it with struct update syntax so that fields added later keep their
/// defaults, e.g. `RedisOptions { url, ..RedisOptions::default() }`.
#[derive(Clone, PartialEq, Eq)]
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
    pub connect_timeout: Duration,
    /// Time allowed for a reply to each command, including a whole chunk. Default 10 s.
    pub response_timeout: Duration,
    /// How many times a command is retried after it failed because the connection was dropped or
    /// refused (the connection manager reconnects in between). Default 2.
    pub retries: u32,
    /// Expiry of the chunks of a put in progress, refreshed while the payload keeps arriving: how
    /// long a crashed writer's chunks occupy memory. At least 1 s. Default 1 hour.
    pub staging_ttl: Duration,
    /// How long the chunks of a replaced or deleted object stay readable for readers already
    /// streaming it. Zero deletes them at once (such readers then fail). Default 15 minutes.
    pub superseded_grace: Duration,
    /// Chunk writes in flight while a put streams in (at least 1). Default 4.
    pub write_concurrency: usize,
    /// Chunk reads in flight ahead of a reader (at least 1). Default 2.
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

impl RedisOptions {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return Err(format!(
                "chunk_size must be between 1 and {MAX_CHUNK_SIZE} bytes, not {}",
                self.chunk_size
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err("connect_timeout must not be zero".into());
        }
        if self.response_timeout.is_zero() {
            return Err("response_timeout must not be zero".into());
        }
        if self.staging_ttl < Duration::from_secs(1) {
            return Err(format!(
                "staging_ttl must be at least 1 s, not {:?}",
                self.staging_ttl
            ));
        }
        if self.write_concurrency == 0 {
            return Err("write_concurrency must be at least 1".into());
        }
        if self.read_ahead == 0 {
            return Err("read_ahead must be at least 1".into());
        }
        Ok(())
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
