//! The configuration printed back: as TOML (`config check`), with every secret redacted.

use super::Config;

impl Config {
    /// The configuration as TOML; loading it back gives the same configuration.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// The configuration as `config check` prints it: [`Config::to_toml`] with every secret
    /// replaced — S3 keys by `<redacted>`, and the credentials of every URL (upstream,
    /// checksum databases, Redis) by `***` ([`gomodproxy_redact`]).
    pub fn to_toml_redacted(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(&self.redacted())
    }

    /// A copy with every secret replaced, for printing (`config check`, the startup log).
    pub fn redacted(&self) -> Config {
        let mut shown = self.clone();
        // Each options type knows its own secrets.
        shown.storage.s3 = self.storage.s3.redacted();
        shown.storage.redis = self.storage.redis.redacted();
        shown.coordination = self.coordination.redacted();
        shown.upstream = gomodproxy_redact::text(&shown.upstream);
        for spec in &mut shown.sumdb.databases {
            *spec = gomodproxy_redact::text(spec);
        }
        shown
    }
}
