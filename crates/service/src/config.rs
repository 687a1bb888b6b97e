//! [`ServiceConfig`]: the service's settings, typed (the server parses its configuration into
//! them once), with defaults.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gomodproxy_vcs::DirectConfig;

use crate::coordination;
use crate::sumdb::SumdbSpec;
use crate::upstream::{ModulePatterns, Routes, UpstreamChain, UpstreamCredentials};

/// A predicate over module paths: true for names that must never reach a checksum database
/// (the server's access rules say which modules are restricted).
pub type PrivateNames = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Outbound network settings of the HTTP upstreams and the checksum databases: the proxies
/// (already resolved from the configuration and the environment by the caller: the service
/// reads no environment variable) and the TLS trust. `Debug` redacts proxy credentials.
#[derive(Clone, Default)]
pub struct Outbound {
    /// Proxy for `https://` URLs (`http://[user:password@]host:port`), tunnelled with
    /// `CONNECT`. `None`: connect directly.
    pub https_proxy: Option<String>,
    /// Proxy for `http://` URLs.
    pub http_proxy: Option<String>,
    /// Hosts reached without a proxy (curl's `NO_PROXY` syntax: `corp.example.com`,
    /// `.corp.example.com`, `10.0.0.0/8`, `*`).
    pub no_proxy: Option<String>,
    /// The extra CA and client certificate (`fetch.ca_file`, …); `None`: the system roots.
    pub tls: Option<Arc<gomodproxy_tls::OutboundTls>>,
}

impl Outbound {
    /// The proxy for a URL of `scheme`, if one is configured (`NO_PROXY` not considered).
    pub(crate) fn proxy_for(&self, scheme: &str) -> Option<&str> {
        match scheme {
            "https" => self.https_proxy.as_deref(),
            _ => self.http_proxy.as_deref(),
        }
    }
}

impl fmt::Debug for Outbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |p: &Option<String>| p.as_deref().map(gomodproxy_redact::url);
        f.debug_struct("Outbound")
            .field("https_proxy", &shown(&self.https_proxy))
            .field("http_proxy", &shown(&self.http_proxy))
            .field("no_proxy", &self.no_proxy)
            .field("tls", &self.tls)
            .finish()
    }
}

/// Whether the proxy may use the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Storage first, then upstream.
    #[default]
    Online,
    /// Never open a network connection; serve what is stored.
    Offline,
}

/// Settings of the service layer (the server builds this from its config).
///
/// `Debug` redacts the credentials the upstream chain and checksum-database URLs may carry.
#[derive(Clone)]
pub struct ServiceConfig {
    /// Online or offline.
    pub mode: Mode,
    /// The default upstream chain (`https://a,https://b|file:///dir`, `…,direct`).
    pub upstream: UpstreamChain,
    /// Module patterns with chains of their own (a private route keeps its modules away from
    /// checksum databases too).
    pub routes: Routes,
    /// The version-control source, used by chains with `direct`.
    pub direct: DirectConfig,
    /// How long a cached `list` / `@latest` is served before upstream is asked again.
    pub list_ttl: Duration,
    /// Connect timeout for upstream requests.
    pub connect_timeout: Duration,
    /// Longest wait for upstream response headers, and longest silence while reading a body.
    pub read_timeout: Duration,
    /// Retries of an idempotent upstream GET after a connection error, timeout or 5xx.
    pub retries: u32,
    /// First retry delay; doubles each time.
    pub retry_backoff: Duration,
    /// Largest zip accepted from upstream (bytes).
    pub max_zip_size: u64,
    /// Largest `.mod` accepted from upstream (bytes).
    pub max_mod_size: u64,
    /// Largest `.info` / `list` / `@latest` accepted from upstream (bytes).
    pub max_info_size: u64,
    /// Where zips are spooled for validation before they are stored (default: the OS temp dir).
    pub spool_dir: Option<PathBuf>,
    /// Checksum databases, in `GOSUMDB` syntax: `<verifier key>` (fetched through the upstream
    /// chain's `/sumdb/<name>/`) or `<verifier key> <url>` (fetched from the database itself).
    /// The first one is the one upstream artifacts are verified against.
    pub sumdbs: Vec<SumdbSpec>,
    /// Serve `/sumdb/<name>/…` for the configured databases.
    pub serve_sumdb: bool,
    /// Store an upstream `.mod` or `.zip` only if its `h1:` hash matches the first checksum
    /// database (modules matching `private` are exempt).
    pub verify: bool,
    /// Module path patterns (GOPRIVATE syntax) of modules that are never verified against, or
    /// looked up in, a checksum database.
    pub private: ModulePatterns,
    /// How long a fetched checksum-database tree head is used before upstream is asked for a
    /// newer one.
    pub sumdb_latest_ttl: Duration,
    /// A cluster-wide lock per artifact, when several replicas share the store.
    pub fetch_lock: Option<Arc<dyn coordination::FetchLock>>,
    /// Base deadline of one upstream request (retries included); it grows by one second per
    /// `min_transfer_rate` bytes received.
    pub fetch_deadline: Duration,
    /// Slowest average transfer (bytes per second) an upstream may keep up past the deadline.
    pub min_transfer_rate: u64,
    /// Upstream requests in flight at once, in all.
    pub max_concurrent_fetches: usize,
    /// Upstream requests in flight at once to one upstream host.
    pub max_concurrent_fetches_per_host: usize,
    /// Requests that may wait for an upstream slot; more are refused (503) at once.
    pub max_queued_fetches: usize,
    /// Requests that may wait for a slot of one upstream host; more are refused (503) at once.
    pub max_queued_fetches_per_host: usize,
    /// Longest wait for an upstream slot before a 503 with `Retry-After`.
    pub queue_timeout: Duration,
    /// Disk that zips being received (spooled, not yet stored) may take at once, in bytes.
    pub spool_budget: u64,
    /// Zip checks (structure and hash, CPU and I/O bound) running at once.
    pub max_concurrent_zip_checks: usize,
    /// How long a "not found" from every upstream is remembered per path (0: off).
    pub negative_ttl: Duration,
    /// Most paths the negative cache holds.
    pub negative_cache_entries: usize,
    /// How long the answer to a non-canonical query (`@v/master.info`) is reused (0: off).
    pub query_ttl: Duration,
    /// Hosts (`cdn.example.com`, `*.example.com`) an https upstream may redirect to; redirects
    /// within the same scheme, host and port are always followed, others refused.
    pub redirect_hosts: Vec<String>,
    /// Proxies and TLS trust for HTTP upstreams and checksum databases.
    pub outbound: Outbound,
    /// Credentials sent to HTTP upstreams by URL prefix (and module).
    pub credentials: UpstreamCredentials,
    /// More module names kept from checksum databases, besides `private` and private routes.
    pub private_names: Option<PrivateNames>,
}

impl fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("mode", &self.mode)
            .field("upstream", &self.upstream)
            .field("routes", &self.routes)
            .field("direct", &self.direct)
            .field("list_ttl", &self.list_ttl)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("retries", &self.retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("max_zip_size", &self.max_zip_size)
            .field("max_mod_size", &self.max_mod_size)
            .field("max_info_size", &self.max_info_size)
            .field("spool_dir", &self.spool_dir)
            .field("sumdbs", &self.sumdbs)
            .field("serve_sumdb", &self.serve_sumdb)
            .field("verify", &self.verify)
            .field("private", &self.private)
            .field("sumdb_latest_ttl", &self.sumdb_latest_ttl)
            .field("fetch_lock", &self.fetch_lock.is_some())
            .field("fetch_deadline", &self.fetch_deadline)
            .field("min_transfer_rate", &self.min_transfer_rate)
            .field("max_concurrent_fetches", &self.max_concurrent_fetches)
            .field(
                "max_concurrent_fetches_per_host",
                &self.max_concurrent_fetches_per_host,
            )
            .field("max_queued_fetches", &self.max_queued_fetches)
            .field(
                "max_queued_fetches_per_host",
                &self.max_queued_fetches_per_host,
            )
            .field("queue_timeout", &self.queue_timeout)
            .field("spool_budget", &self.spool_budget)
            .field("max_concurrent_zip_checks", &self.max_concurrent_zip_checks)
            .field("negative_ttl", &self.negative_ttl)
            .field("negative_cache_entries", &self.negative_cache_entries)
            .field("query_ttl", &self.query_ttl)
            .field("redirect_hosts", &self.redirect_hosts)
            .field("outbound", &self.outbound)
            .field("credentials", &self.credentials)
            .field("private_names", &self.private_names.is_some())
            .finish()
    }
}

/// The verifier key of sum.golang.org, the go command's default checksum database.
pub const SUM_GOLANG_ORG_KEY: &str =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            mode: Mode::Online,
            upstream: UpstreamChain::proxy_golang_org(),
            routes: Routes::default(),
            direct: DirectConfig::default(),
            list_ttl: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            retries: 2,
            retry_backoff: Duration::from_millis(200),
            max_zip_size: 500 << 20,
            max_mod_size: 16 << 20,
            max_info_size: 1 << 20,
            spool_dir: None,
            sumdbs: vec![SumdbSpec::sum_golang_org()],
            serve_sumdb: true,
            verify: true,
            private: ModulePatterns::default(),
            sumdb_latest_ttl: Duration::from_secs(600),
            fetch_lock: None,
            fetch_deadline: Duration::from_secs(60),
            min_transfer_rate: 64 * 1024,
            max_concurrent_fetches: 64,
            max_concurrent_fetches_per_host: 16,
            max_queued_fetches: 256,
            max_queued_fetches_per_host: 32,
            queue_timeout: Duration::from_secs(10),
            spool_budget: 2 << 30,
            max_concurrent_zip_checks: 2,
            negative_ttl: Duration::from_secs(60),
            negative_cache_entries: 10_000,
            query_ttl: Duration::from_secs(10),
            redirect_hosts: Vec::new(),
            outbound: Outbound::default(),
            credentials: UpstreamCredentials::default(),
            private_names: None,
        }
    }
}
