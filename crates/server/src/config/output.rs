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
        const HIDDEN: &str = "<redacted>";
        let mut shown = self.clone();
        let s3 = &mut shown.storage.s3;
        for secret in [&mut s3.secret_access_key, &mut s3.session_token] {
            if !secret.is_empty() {
                *secret = HIDDEN.to_string();
            }
        }
        s3.endpoint = gomodproxy_redact::url(&s3.endpoint);
        for url in [
            &mut shown.storage.redis.url,
            &mut shown.coordination.redis_url,
        ] {
            *url = gomodproxy_redact::url(url);
        }
        shown.upstream = gomodproxy_redact::text(&shown.upstream);
        for spec in &mut shown.sumdb.databases {
            *spec = gomodproxy_redact::text(spec);
        }
        shown
    }
}
