//! The proxy's service layer: everything between an HTTP handler and the stores.
//!
//! [`ProxyService`] answers the GOPROXY requests (`list`, `@latest`, `.info`, `.mod`, `.zip`)
//! from storage first and, in online mode, from the upstream chain on a miss. It owns the caching
//! policy: what is immutable and stored forever, what has a TTL, what is passed through and never
//! stored; it validates every upstream answer (a zip is checked and hashed before it is stored) and
//! makes concurrent misses for one artifact share a single upstream fetch.
//!
//! HTTP status codes are not chosen here: [`ServiceError`] says what went wrong, and the server
//! maps it to a status in one place.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use gomod::{ModulePath, Version};
use gomodproxy_storage::{ByteStream, Storage};

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
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Online or offline.
    pub mode: Mode,
    /// Upstream chain in GOPROXY syntax (`https://a,https://b|file:///dir`).
    pub upstream: String,
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
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            mode: Mode::Online,
            upstream: "https://proxy.golang.org".to_string(),
            list_ttl: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            retries: 2,
            retry_backoff: Duration::from_millis(200),
            max_zip_size: 500 << 20,
            max_mod_size: 16 << 20,
            max_info_size: 1 << 20,
            spool_dir: None,
        }
    }
}

/// A non-canonical `.info` request (`master`, `v1.2`, a commit prefix) or a canonical version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionQuery {
    /// A canonical version: the answer is immutable and stored.
    Canonical(Version),
    /// Anything else: passed to upstream and never stored.
    Query(String),
}

/// The body of an answer.
pub enum Body {
    /// Small bodies, in memory.
    Bytes(Bytes),
    /// Zips, streamed from storage.
    Stream(ByteStream),
}

/// What the service hands to the HTTP layer.
pub struct Answer {
    /// The body.
    pub body: Body,
    /// Its exact length.
    pub size: u64,
    /// A strong validator for ETag (content hash), when known.
    pub etag: Option<String>,
    /// True for versioned artifacts (cache forever), false for list/@latest/queries.
    pub immutable: bool,
    /// When it was stored or fetched.
    pub modified: Option<SystemTime>,
}

/// What went wrong, in terms the HTTP layer maps to a status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request itself is invalid (→ 400).
    #[error("{0}")]
    BadRequest(String),
    /// Upstream says it does not exist, or it is not stored in offline mode (→ 404).
    #[error("{0}")]
    NotFound(String),
    /// Upstream failed or sent something invalid; nothing was stored (→ 502).
    #[error("{0}")]
    BadUpstream(String),
    /// Upstream did not answer in time (→ 504).
    #[error("{0}")]
    UpstreamTimeout(String),
    /// The store failed (→ 503).
    #[error("{0}")]
    Storage(String),
}

/// The GOPROXY service over one store and one upstream chain.
#[derive(Debug, Clone)]
pub struct ProxyService {
    storage: Arc<dyn Storage>,
    config: Arc<ServiceConfig>,
}

impl ProxyService {
    /// Builds the service; fails on an invalid upstream chain.
    pub fn new(storage: Arc<dyn Storage>, config: ServiceConfig) -> Result<Self, ServiceError> {
        Ok(ProxyService { storage, config: Arc::new(config) })
    }

    /// `/@v/list`.
    pub async fn list(&self, module: &ModulePath) -> Result<Answer, ServiceError> {
        todo!("{module} {:?} {:?}", self.storage, self.config)
    }

    /// `/@latest`.
    pub async fn latest(&self, module: &ModulePath) -> Result<Answer, ServiceError> {
        todo!("{module}")
    }

    /// `/@v/<version>.info`.
    pub async fn info(&self, module: &ModulePath, query: &VersionQuery) -> Result<Answer, ServiceError> {
        todo!("{module} {query:?}")
    }

    /// `/@v/<version>.mod`.
    pub async fn go_mod(&self, module: &ModulePath, version: &Version) -> Result<Answer, ServiceError> {
        todo!("{module} {version}")
    }

    /// `/@v/<version>.zip`.
    pub async fn zip(&self, module: &ModulePath, version: &Version) -> Result<Answer, ServiceError> {
        todo!("{module} {version}")
    }

    /// Readiness: the store answers its probe.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        todo!()
    }
}
