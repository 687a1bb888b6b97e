//! The sections of the configuration (`[storage]`, `[fetch]`, …) and its keyword values.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use gomodproxy_service::{ServiceConfig, SumdbSpec, UpstreamCredentials};
use gomodproxy_storage_fs::FsOptions;
use gomodproxy_storage_redis::RedisOptions;
use gomodproxy_storage_s3::S3Options;
use gomodproxy_storage_sled::SledOptions;
use gomodproxy_tls::OutboundTlsConfig;
use serde::{Deserialize, Serialize};

use super::Mode;

/// `[storage]`: which backend, and one section of settings per backend.
///
/// Each section is the backend crate's own options type, which deserializes itself (its
/// `serde` feature): a key added to a backend is written once, in that crate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// The backend (`type = "fs"`).
    #[serde(rename = "type")]
    pub kind: StorageKind,
    /// `[storage.fs]`, used when `type = "fs"`.
    pub fs: FsOptions,
    /// `[storage.sled]`, used when `type = "sled"`.
    pub sled: SledOptions,
    /// `[storage.redis]`, used when `type = "redis"`.
    pub redis: RedisOptions,
    /// `[storage.s3]`, used when `type = "s3"`.
    pub s3: S3Options,
}

/// The storage backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum StorageKind {
    /// Files under a directory.
    #[default]
    Fs,
    /// An embedded sled database.
    Sled,
    /// A Redis server.
    Redis,
    /// An S3-compatible object store.
    S3,
}

impl fmt::Display for StorageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StorageKind::Fs => "fs",
            StorageKind::Sled => "sled",
            StorageKind::Redis => "redis",
            StorageKind::S3 => "s3",
        })
    }
}

/// `[fetch]`: how upstream is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    /// Connect timeout of an upstream request.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait for response headers, and longest silence while reading a body.
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Retries of an upstream GET after a connection error, timeout or 5xx.
    pub retries: u32,
    /// First retry delay; doubles each time.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// Largest zip accepted from upstream, in bytes.
    pub max_zip_size: u64,
    /// Largest `.mod` accepted from upstream, in bytes.
    pub max_mod_size: u64,
    /// Largest `.info` / `list` / `@latest` accepted from upstream, in bytes.
    pub max_info_size: u64,
    /// Base deadline of one upstream request, retries included; it grows by one second per
    /// `min_transfer_rate` bytes received, so a large zip at a fair rate always finishes and a
    /// trickle does not.
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
    /// Slowest average transfer, in bytes per second, an upstream may keep up past `deadline`.
    pub min_transfer_rate: u64,
    /// Upstream requests in flight at once, in all.
    pub max_concurrent: usize,
    /// Upstream requests in flight at once to one upstream host (`host:port`).
    pub max_concurrent_per_host: usize,
    /// Requests that may wait for an upstream slot; one more gets a 503 at once.
    pub max_queued: usize,
    /// Requests that may wait for a slot of one upstream host; one more gets a 503 at once, so
    /// that one slow host cannot hold the client connections every waiter keeps open.
    pub max_queued_per_host: usize,
    /// Longest wait for an upstream slot before a 503 with `Retry-After`.
    #[serde(with = "humantime_serde")]
    pub queue_timeout: Duration,
    /// Disk, in bytes, that zips being received (spooled before they are checked and stored)
    /// may take at once; a fetch that would exceed it gets a 503.
    pub spool_budget: u64,
    /// Zip checks (structure and `h1:` hash) running at once.
    pub max_concurrent_zip_checks: usize,
    /// How long a "not found" from every upstream is remembered per path; 0 turns the negative
    /// cache off.
    #[serde(with = "humantime_serde")]
    pub negative_ttl: Duration,
    /// Most paths the negative cache holds.
    pub negative_cache_entries: usize,
    /// How long the answer to a non-canonical query (`@v/master.info`) is reused; 0 turns the
    /// query cache off (identical queries at once still share one request).
    #[serde(with = "humantime_serde")]
    pub query_ttl: Duration,
    /// Hosts (`cdn.example.com`, `*.example.com`) an https upstream may redirect to. Redirects
    /// within the same scheme, host and port are always followed; every other one is refused.
    /// From the environment: comma-separated.
    pub redirect_hosts: Vec<String>,
    /// Proxy for `https://` upstreams, checksum databases and git over https
    /// (`http://[user:password@]host:port`, tunnelled with `CONNECT`). Default: `HTTPS_PROXY`
    /// (or `https_proxy`) from the environment; none if unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub https_proxy: Option<String>,
    /// Proxy for `http://` upstreams. Default: `HTTP_PROXY` (or `http_proxy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_proxy: Option<String>,
    /// Hosts reached without the proxy (`corp.example.com,.internal,10.0.0.0/8`, `*` for all).
    /// Default: `NO_PROXY` (or `no_proxy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
    /// Extra CA certificates (PEM) trusted for upstreams, checksum databases and git over
    /// https, added to the system roots (a TLS-inspecting proxy's CA, a private registry's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// A client certificate chain (PEM) presented to upstreams that ask for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert_file: Option<PathBuf>,
    /// Its private key (PEM); required with `client_cert_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key_file: Option<PathBuf>,
    /// `[[fetch.credentials]]`: credentials sent to upstream URL prefixes (basic, bearer token
    /// or netrc file), never to another host. From the environment: a JSON list.
    pub credentials: UpstreamCredentials,
}

impl FetchConfig {
    /// The outbound TLS keys as the tls crate takes them.
    pub fn outbound_tls(&self) -> OutboundTlsConfig {
        OutboundTlsConfig {
            ca_file: self.ca_file.clone(),
            client_cert_file: self.client_cert_file.clone(),
            client_key_file: self.client_key_file.clone(),
        }
    }
}

impl Default for FetchConfig {
    fn default() -> Self {
        let s = ServiceConfig::default();
        FetchConfig {
            connect_timeout: s.connect_timeout,
            read_timeout: s.read_timeout,
            retries: s.retries,
            retry_backoff: s.retry_backoff,
            max_zip_size: s.max_zip_size,
            max_mod_size: s.max_mod_size,
            max_info_size: s.max_info_size,
            deadline: s.fetch_deadline,
            min_transfer_rate: s.min_transfer_rate,
            max_concurrent: s.max_concurrent_fetches,
            max_concurrent_per_host: s.max_concurrent_fetches_per_host,
            max_queued: s.max_queued_fetches,
            max_queued_per_host: s.max_queued_fetches_per_host,
            queue_timeout: s.queue_timeout,
            spool_budget: s.spool_budget,
            max_concurrent_zip_checks: s.max_concurrent_zip_checks,
            negative_ttl: s.negative_ttl,
            negative_cache_entries: s.negative_cache_entries,
            query_ttl: s.query_ttl,
            redirect_hosts: s.redirect_hosts,
            https_proxy: None,
            http_proxy: None,
            no_proxy: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            credentials: UpstreamCredentials::default(),
        }
    }
}

/// `[sumdb]`: checksum databases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SumdbConfig {
    /// Serve `/sumdb/<name>/…` for the configured databases (verified, cached).
    pub enabled: bool,
    /// Store an upstream `.mod`/`.zip` only if its hash matches the first database.
    pub verify: bool,
    /// Databases in `GOSUMDB` syntax: `"<verifier key>"` (fetched through the upstream
    /// proxies' `/sumdb/<name>/`) or `"<verifier key> <url>"` (fetched from the database
    /// itself). From the environment: comma-separated.
    #[serde(deserialize_with = "non_empty_specs")]
    pub databases: Vec<SumdbSpec>,
    /// How long a fetched tree head is used before a newer one is asked for.
    #[serde(with = "humantime_serde")]
    pub latest_ttl: Duration,
}

impl Default for SumdbConfig {
    fn default() -> Self {
        let s = ServiceConfig::default();
        SumdbConfig {
            enabled: s.serve_sumdb,
            verify: s.verify,
            databases: s.sumdbs,
            latest_ttl: s.sumdb_latest_ttl,
        }
    }
}

/// `[prewarm]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrewarmConfig {
    /// Items fetched in the background when `serve` starts, and by `prewarm` when given none:
    /// `module@version`, `module@latest`, `go.mod:PATH`, `go.sum:PATH`,
    /// `toolchain:go1.X.Y[@GOOS/GOARCH]`. From the environment: comma-separated.
    pub items: Vec<String>,
    /// Module versions fetched at once.
    pub concurrency: usize,
    /// Retries of a module version after a transient failure.
    pub retries: u32,
    /// First retry delay; doubles each time.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// Go command `latest` notes (`$GOPATH/pkg/sumdb/<name>/latest`) of machines that will
    /// use the proxy: every seal proves them against the sealed tree, as
    /// `prewarm --sumdb-known-tree` does. From the environment: comma-separated.
    pub sumdb_known_trees: Vec<PathBuf>,
    /// How often `serve` refreshes the stored modules (`prewarm --refresh` in the background:
    /// new releases fetched, then a seal); 0 turns it off.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
}

impl Default for PrewarmConfig {
    fn default() -> Self {
        let p = gomodproxy_service::prewarm::PrewarmOptions::default();
        PrewarmConfig {
            items: Vec::new(),
            concurrency: p.concurrency,
            retries: p.retries,
            retry_backoff: p.retry_backoff,
            sumdb_known_trees: Vec::new(),
            refresh_interval: Duration::ZERO,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `warn,gomodproxy=debug`); `RUST_LOG`, when set, wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_string(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A keyword value (`mode`, `storage.type`, `log.format`) that is none of the accepted ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not one of: {}", accepted.join(", "))]
pub struct UnknownKeyword {
    /// What was given.
    pub value: String,
    /// What the key accepts.
    pub accepted: &'static [&'static str],
}

/// Deserializes keyword enums from their lower-case names, with an error that lists the
/// accepted names (serde's own message through the `config` crate does not).
macro_rules! keywords {
    ($ty:ty { $($name:literal => $variant:expr),+ $(,)? }) => {
        impl TryFrom<String> for $ty {
            type Error = UnknownKeyword;
            fn try_from(value: String) -> Result<Self, UnknownKeyword> {
                match value.as_str() {
                    $($name => Ok($variant),)+
                    _ => Err(UnknownKeyword {
                        value,
                        accepted: &[$($name),+],
                    }),
                }
            }
        }
    };
}

keywords!(Mode { "online" => Mode::Online, "offline" => Mode::Offline });
keywords!(StorageKind {
    "fs" => StorageKind::Fs,
    "sled" => StorageKind::Sled,
    "redis" => StorageKind::Redis,
    "s3" => StorageKind::S3,
});
keywords!(LogFormat { "text" => LogFormat::Text, "json" => LogFormat::Json });

/// `sumdb.databases`, skipping empty entries: an empty environment variable is an empty list,
/// not a list of one empty entry.
fn non_empty_specs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SumdbSpec>, D::Error> {
    let items = Vec::<String>::deserialize(d)?;
    items
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| SumdbSpec::parse(s).map_err(serde::de::Error::custom))
        .collect()
}
