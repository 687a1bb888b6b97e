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
        // Each backend's options check themselves and name the key within their section; only
        // the section in use is checked, the coordination section whenever it names a server.
        let option =
            |section: &str, key: &str, reason: String| invalid(&format!("{section}.{key}"), reason);
        if self.storage.kind == StorageKind::S3 {
            self.storage
                .s3
                .validate()
                .map_err(|e| option("storage.s3", e.key(), e.to_string()))?;
        }
        self.coordination
            .validate()
            .map_err(|e| option("coordination", e.key(), e.to_string()))?;
        match self.storage.kind {
            StorageKind::Fs => self
                .storage
                .fs
                .validate()
                .map_err(|e| option("storage.fs", e.key(), e.to_string()))?,
            StorageKind::Redis => self
                .storage
                .redis
                .validate()
                .map_err(|e| option("storage.redis", e.key(), e.to_string()))?,
            StorageKind::Sled => self
                .storage
                .sled
                .validate()
                .map_err(|e| option("storage.sled", e.key(), e.to_string()))?,
            StorageKind::S3 => {}
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
