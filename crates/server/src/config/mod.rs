//! The server's configuration: one typed struct, loaded from built-in defaults, then a TOML file,
//! then `GOMODPROXY_*` environment variables.
//!
//! Precedence is field by field: an environment variable overrides the same key from the file,
//! and a key set nowhere keeps its default. Environment names map to keys by dropping the
//! `GOMODPROXY_` prefix, lower-casing, and reading `__` as the nesting separator
//! (`GOMODPROXY_STORAGE__FS__ROOT` → `storage.fs.root`), so every key is lower snake_case.
//!
//! Every struct denies unknown fields: a misspelt key in the file or in a `GOMODPROXY_*`
//! variable is an error that names the key and where it came from, never a silently ignored
//! setting. The service-layer defaults (timeouts, sizes, TTL) come from
//! [`ServiceConfig::default`], so the two layers cannot disagree.
//!
//! The backend sections (`[storage.fs]`, `[storage.sled]`, `[storage.redis]`, `[storage.s3]`),
//! `[cache]` and `[coordination]` are the options types of the crates they configure, which
//! deserialize themselves (their `serde` feature), check themselves (`validate()`, called from
//! here with the section prefixed to the key they name) and redact their own secrets
//! (`redacted()`). A key of a backend is written once, in its crate. The upstream chain, the
//! routes, the `private` patterns, the checksum databases and `[direct]` are the service's
//! types, parsed (and so checked) as they are deserialized.
//!
//! Modules: `sections` (the other sections and keyword values), `env` (variable names and
//! keys), `load`, `validate`, `output` (TOML and redaction), `error` ([`ConfigError`]).

mod env;
mod error;
mod load;
mod output;
mod sections;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gomodproxy_access::{AccessConfig, AuthConfig, PolicyConfig};
use gomodproxy_coordination_redis::RedisLockOptions;
use gomodproxy_service::{
    DirectConfig, Mode as ServiceMode, ModulePatterns, Outbound, Routes, ServiceConfig,
    UpstreamChain,
};
use gomodproxy_storage::cache::MemoryCacheOptions;
use gomodproxy_tls::ListenerTlsConfig;
use serde::{Deserialize, Serialize};

pub use env::{ENV_PREFIX, env_vars};
pub use error::{ConfigError, Origin};
pub use sections::*;

/// The whole configuration of `gomodproxy serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`IP:PORT`; port 0 picks a free port).
    pub listen: SocketAddr,
    /// `online` (storage, then upstream) or `offline` (storage only, never the network).
    pub mode: Mode,
    /// Upstream chain in GOPROXY syntax (`https://a,https://b|file:///dir`, `…,direct`),
    /// parsed when the configuration is loaded.
    pub upstream: UpstreamChain,
    /// Module patterns with chains of their own (`[[routes]]`, or from the environment
    /// `PATTERNS=CHAIN;…`).
    pub routes: Routes,
    /// How long a cached `list` / `@latest` is served before upstream is asked again; also the
    /// `max-age` of those responses.
    #[serde(with = "humantime_serde")]
    pub list_ttl: Duration,
    /// Where zips are spooled for validation before they are stored (default: the OS temp dir).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spool_dir: Option<PathBuf>,
    /// On SIGTERM/SIGINT, how long in-flight requests may run before they are cut.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// HTTP worker threads; 0 means one per CPU.
    pub workers: usize,
    /// Client connections held at once; 0 means what the open-file limit allows after the
    /// descriptors upstream fetches need (the server raises its soft limit to the hard one).
    pub max_connections: usize,
    /// Module path patterns (GOPRIVATE syntax) never verified against, or looked up in, a
    /// checksum database. From the environment: comma-separated.
    pub private: ModulePatterns,
    /// Where artifacts are stored.
    pub storage: StorageConfig,
    /// `[cache]`: the in-memory cache of small objects in front of the store (its options type
    /// deserializes itself).
    pub cache: MemoryCacheOptions,
    /// `[coordination]`: a Redis that replicas use for cluster-wide fetch locks, so concurrent
    /// misses for one artifact on several replicas make one upstream fetch; an empty
    /// `redis_url` means none (its options type deserializes itself).
    pub coordination: RedisLockOptions,
    /// How upstream is fetched.
    pub fetch: FetchConfig,
    /// The checksum database: proxying and verification.
    pub sumdb: SumdbConfig,
    /// The version-control source of chains with `direct`.
    pub direct: DirectConfig,
    /// What to fetch ahead of time (`gomodproxy prewarm`, and in the background at `serve`).
    pub prewarm: PrewarmConfig,
    /// Logging.
    pub log: LogConfig,
    /// `[tls]`: HTTPS on `listen`, or on `tls.listen` beside plain HTTP on `listen`.
    pub tls: ListenerTlsConfig,
    /// `[auth]`: client authentication (htpasswd and token files).
    pub auth: AuthConfig,
    /// `[access]`: which identities may read which modules.
    pub access: AccessConfig,
    /// `[policy]`: modules and versions served to nobody (or the only ones served).
    pub policy: PolicyConfig,
}

impl Default for Config {
    fn default() -> Self {
        let service = ServiceConfig::default();
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            mode: Mode::from(service.mode),
            upstream: service.upstream,
            routes: service.routes,
            list_ttl: service.list_ttl,
            spool_dir: service.spool_dir,
            shutdown_timeout: Duration::from_secs(30),
            workers: 0,
            max_connections: 0,
            private: service.private,
            direct: service.direct,
            storage: StorageConfig::default(),
            cache: MemoryCacheOptions::default(),
            coordination: RedisLockOptions::default(),
            fetch: FetchConfig::default(),
            sumdb: SumdbConfig::default(),
            prewarm: PrewarmConfig::default(),
            log: LogConfig::default(),
            tls: ListenerTlsConfig::default(),
            auth: AuthConfig::default(),
            access: AccessConfig::default(),
            policy: PolicyConfig::default(),
        }
    }
}

/// Whether the proxy may use the network (`mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Mode {
    /// Storage first, then upstream.
    Online,
    /// Storage only.
    Offline,
}

impl From<ServiceMode> for Mode {
    fn from(mode: ServiceMode) -> Self {
        match mode {
            ServiceMode::Online => Mode::Online,
            ServiceMode::Offline => Mode::Offline,
        }
    }
}

impl From<Mode> for ServiceMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Online => ServiceMode::Online,
            Mode::Offline => ServiceMode::Offline,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Online => "online",
            Mode::Offline => "offline",
        })
    }
}

impl Config {
    /// `[direct]` with what it shares with `[fetch]`: the extra CA and client certificate, and
    /// the proxies when `[direct]` sets none of its own.
    fn direct_config(&self) -> DirectConfig {
        let mut direct = self.direct.clone();
        direct.tls = self.fetch.outbound_tls();
        if direct.http_proxy.is_none() {
            direct.http_proxy = self.fetch.https_proxy.clone();
        }
        if direct.no_proxy.is_none() {
            direct.no_proxy = self.fetch.no_proxy.clone();
        }
        direct
    }

    /// The outbound network settings of the upstream chain and the checksum databases:
    /// `fetch.https_proxy`, `fetch.http_proxy` and `fetch.no_proxy`, each falling back to
    /// `HTTPS_PROXY`/`https_proxy`, `HTTP_PROXY`/`http_proxy` and `NO_PROXY`/`no_proxy` from
    /// `env` (the process environment in the binary); and the extra CA and client certificate
    /// (read here, so a missing file is an error at start).
    pub fn outbound(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Outbound, gomodproxy_tls::TlsError> {
        let from_env = |upper: &str| {
            env(upper)
                .or_else(|| env(&upper.to_ascii_lowercase()))
                .filter(|v| !v.trim().is_empty())
        };
        let tls_config = self.fetch.outbound_tls();
        let tls = if tls_config == gomodproxy_tls::OutboundTlsConfig::default() {
            None
        } else {
            Some(Arc::new(gomodproxy_tls::OutboundTls::load(&tls_config)?))
        };
        Ok(Outbound {
            https_proxy: self
                .fetch
                .https_proxy
                .clone()
                .or_else(|| from_env("HTTPS_PROXY")),
            http_proxy: self
                .fetch
                .http_proxy
                .clone()
                .or_else(|| from_env("HTTP_PROXY")),
            no_proxy: self.fetch.no_proxy.clone().or_else(|| from_env("NO_PROXY")),
            tls,
        })
    }

    /// [`Config::service_config`] with the outbound settings ([`Config::outbound`]) from the
    /// process environment: what `serve`, `prewarm` and `import` run with.
    pub fn runtime_service_config(&self) -> anyhow::Result<ServiceConfig> {
        let mut service = self.service_config();
        service.outbound = self
            .outbound(|name| std::env::var(name).ok())
            .map_err(|e| {
                anyhow::anyhow!("outbound TLS (fetch.ca_file, fetch.client_cert_file): {e}")
            })?;
        self.fetch
            .credentials
            .check_files()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(service)
    }

    /// The service-layer settings this configuration describes.
    pub fn service_config(&self) -> ServiceConfig {
        // Settings the service gains later keep their defaults until the config exposes them.
        #[allow(clippy::needless_update)]
        ServiceConfig {
            mode: self.mode.into(),
            upstream: self.upstream.clone(),
            routes: self.routes.clone(),
            direct: self.direct_config(),
            list_ttl: self.list_ttl,
            connect_timeout: self.fetch.connect_timeout,
            read_timeout: self.fetch.read_timeout,
            retries: self.fetch.retries,
            retry_backoff: self.fetch.retry_backoff,
            max_zip_size: self.fetch.max_zip_size,
            max_mod_size: self.fetch.max_mod_size,
            max_info_size: self.fetch.max_info_size,
            spool_dir: self.spool_dir.clone(),
            sumdbs: self.sumdb.databases.clone(),
            serve_sumdb: self.sumdb.enabled,
            verify: self.sumdb.verify,
            private: self.private.clone(),
            sumdb_latest_ttl: self.sumdb.latest_ttl,
            fetch_deadline: self.fetch.deadline,
            min_transfer_rate: self.fetch.min_transfer_rate,
            max_concurrent_fetches: self.fetch.max_concurrent,
            max_concurrent_fetches_per_host: self.fetch.max_concurrent_per_host,
            max_queued_fetches: self.fetch.max_queued,
            max_queued_fetches_per_host: self.fetch.max_queued_per_host,
            queue_timeout: self.fetch.queue_timeout,
            spool_budget: self.fetch.spool_budget,
            max_concurrent_zip_checks: self.fetch.max_concurrent_zip_checks,
            negative_ttl: self.fetch.negative_ttl,
            negative_cache_entries: self.fetch.negative_cache_entries,
            query_ttl: self.fetch.query_ttl,
            redirect_hosts: self.fetch.redirect_hosts.clone(),
            credentials: self.fetch.credentials.clone(),
            ..ServiceConfig::default()
        }
    }
}
