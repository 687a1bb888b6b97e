//! [`Config::validate`]: what serde cannot check, each error naming its key and where it was set.

use std::collections::BTreeMap;
use std::path::Path;

use super::env::origin_of;
use super::error::ConfigError;
use super::{Config, Mode, StorageKind};

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
                .map_err(|e| invalid("prewarm.items", e.to_string()))?;
        }
        if self.prewarm.concurrency == 0 {
            return Err(invalid(
                "prewarm.concurrency",
                "must be at least 1".to_string(),
            ));
        }
        if self.mode == Mode::Online && self.upstream.is_empty() {
            return Err(invalid(
                "upstream",
                "online mode needs at least one upstream (set upstream, or use offline mode)"
                    .to_string(),
            ));
        }
        for route in &self.routes.0 {
            if route.upstream.is_empty() {
                return Err(invalid(
                    "routes",
                    format!("the route for {} has an empty upstream", route.modules),
                ));
            }
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
        if let Some(https) = self.tls.listen {
            if !self.tls.enabled() {
                return Err(invalid(
                    "tls.listen",
                    "needs tls.cert_file and tls.key_file".to_string(),
                ));
            }
            if https == self.listen {
                return Err(invalid(
                    "tls.listen",
                    format!(
                        "is the same address as listen ({https}); leave tls.listen unset to serve only HTTPS there"
                    ),
                ));
            }
        }
        if self.tls.enabled() != self.tls.key_file.is_some() {
            return Err(invalid(
                "tls.key_file",
                "tls.cert_file and tls.key_file go together".to_string(),
            ));
        }
        if self.fetch.client_cert_file.is_some() != self.fetch.client_key_file.is_some() {
            return Err(invalid(
                "fetch.client_key_file",
                "fetch.client_cert_file and fetch.client_key_file go together".to_string(),
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
