//! [`Config::validate`]: what serde cannot check, each error naming its key and where it was set.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use gomodproxy_service::ProxyService;
use gomodproxy_storage::Storage;
use gomodproxy_storage::memory::InMemory;

use super::env::origin_of;
use super::error::ConfigError;
use super::{Config, StorageKind};

impl Config {
    /// Checks what serde cannot: values that parse but make no sense here.
    pub(super) fn validate(
        &self,
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            origin: origin_of(key, file, env),
            key: key.to_string(),
            reason,
        };
        if self.storage.kind == StorageKind::S3 {
            let s3 = &self.storage.s3;
            if s3.bucket.is_empty() {
                return Err(invalid(
                    "storage.s3.bucket",
                    "is required with storage.type = \"s3\"".to_string(),
                ));
            }
            if !s3.endpoint.is_empty()
                && !s3.endpoint.starts_with("http://")
                && !s3.endpoint.starts_with("https://")
            {
                return Err(invalid(
                    "storage.s3.endpoint",
                    "want an http:// or https:// URL".to_string(),
                ));
            }
            if s3.endpoint.starts_with("http://") && !s3.allow_http {
                return Err(invalid(
                    "storage.s3.allow_http",
                    format!("must be true for the http:// endpoint {}", s3.endpoint),
                ));
            }
            if s3.part_size < gomodproxy_storage_s3::MIN_PART_SIZE {
                return Err(invalid(
                    "storage.s3.part_size",
                    format!(
                        "must be at least {} bytes",
                        gomodproxy_storage_s3::MIN_PART_SIZE
                    ),
                ));
            }
        }
        if !self.coordination.redis_url.is_empty()
            && !self.coordination.redis_url.starts_with("redis://")
        {
            return Err(invalid(
                "coordination.redis_url",
                "want redis://host:port/db".to_string(),
            ));
        }
        if self.storage.kind == StorageKind::Fs && self.storage.fs.root.as_os_str().is_empty() {
            return Err(invalid("storage.fs.root", "must not be empty".to_string()));
        }
        if self.storage.kind == StorageKind::Redis {
            let url = &self.storage.redis.url;
            if !["redis://", "redis+unix://", "unix://"]
                .iter()
                .any(|s| url.starts_with(s))
            {
                return Err(invalid(
                    "storage.redis.url",
                    "want redis://host:port/db or redis+unix:///path".to_string(),
                ));
            }
        }
        if self.storage.kind == StorageKind::Sled {
            if self.storage.sled.path.as_os_str().is_empty() {
                return Err(invalid(
                    "storage.sled.path",
                    "must not be empty".to_string(),
                ));
            }
            if self.storage.sled.cache_capacity == 0 {
                return Err(invalid(
                    "storage.sled.cache_capacity",
                    "must be greater than 0".to_string(),
                ));
            }
        }
        if let Some(dir) = &self.spool_dir
            && !dir.is_dir()
        {
            return Err(invalid(
                "spool_dir",
                format!("{} is not a directory", dir.display()),
            ));
        }
        for (i, spec) in self.sumdb.databases.iter().enumerate() {
            check_sumdb_spec(spec)
                .map_err(|reason| invalid("sumdb.databases", format!("entry {i}: {reason}")))?;
        }
        if self.sumdb.verify && self.sumdb.databases.is_empty() {
            return Err(invalid(
                "sumdb.verify",
                "is on, but sumdb.databases is empty (list a database or set verify = false)"
                    .to_string(),
            ));
        }
        let platform = gomodproxy_service::prewarm::host_platform();
        for item in &self.prewarm.items {
            gomodproxy_service::prewarm::Item::parse(item, &platform)
                .map_err(|e| invalid("prewarm.items", e))?;
        }
        if self.prewarm.concurrency == 0 {
            return Err(invalid(
                "prewarm.concurrency",
                "must be at least 1".to_string(),
            ));
        }
        for glob in self.private.iter().flat_map(|p| p.split(',')) {
            if !glob.is_empty() && gomod::glob::path_match(glob, "").is_err() {
                return Err(invalid("private", format!("pattern {glob:?} is malformed")));
            }
        }
        // The service owns the upstream chain syntax (and whether offline mode may leave it
        // empty); building one over a throwaway in-memory store checks it without touching the
        // real store or the network. Settings it also checks are checked above under their
        // own keys, so what is left is the upstream.
        let probe: Arc<dyn Storage> = Arc::new(InMemory::new());
        if let Err(e) = ProxyService::new(probe, self.service_config()) {
            return Err(invalid("upstream", e.to_string()));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(invalid("log.level", e.to_string()));
        }
        for (key, value) in [
            ("fetch.max_zip_size", self.fetch.max_zip_size),
            ("fetch.min_transfer_rate", self.fetch.min_transfer_rate),
            ("fetch.max_concurrent", self.fetch.max_concurrent as u64),
            (
                "fetch.max_concurrent_per_host",
                self.fetch.max_concurrent_per_host as u64,
            ),
            (
                "fetch.max_concurrent_zip_checks",
                self.fetch.max_concurrent_zip_checks as u64,
            ),
            ("fetch.spool_budget", self.fetch.spool_budget),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be greater than 0".to_string()));
            }
        }
        if self.fetch.spool_budget < self.fetch.max_zip_size {
            return Err(invalid(
                "fetch.spool_budget",
                format!(
                    "is {} bytes, less than fetch.max_zip_size ({}): the largest zip could never be received",
                    self.fetch.spool_budget, self.fetch.max_zip_size
                ),
            ));
        }
        for host in &self.fetch.redirect_hosts {
            let bare = host.strip_prefix("*.").unwrap_or(host);
            if bare.is_empty() || bare.contains(['/', ':', '*', ' ']) {
                return Err(invalid(
                    "fetch.redirect_hosts",
                    format!("{host:?} is not a host name or a `*.domain` pattern"),
                ));
            }
        }
        Ok(())
    }
}

/// Checks one `sumdb.databases` entry: `<verifier key>` or `<verifier key> <url>`.
fn check_sumdb_spec(spec: &str) -> Result<(), String> {
    let fields: Vec<&str> = spec.split_whitespace().collect();
    let (key, url) = match fields.as_slice() {
        [key] => (*key, None),
        [key, url] => (*key, Some(*url)),
        _ => {
            return Err(format!(
                "{spec:?}: want \"<verifier key>\" or \"<verifier key> <url>\""
            ));
        }
    };
    gomod::sumdb::note::Verifier::parse(key).map_err(|e| e.to_string())?;
    if let Some(url) = url
        && !["http://", "https://", "file://"]
            .iter()
            .any(|s| url.starts_with(s))
    {
        return Err(format!("{url:?} is not an http(s):// or file:// URL"));
    }
    Ok(())
}
