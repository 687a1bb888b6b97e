//! The configuration printed back: as TOML (`config check`), with every secret redacted.

use super::Config;

impl Config {
    /// The configuration as TOML; loading it back gives the same configuration.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// The configuration as `config check` prints it: [`Config::to_toml`] with every secret
    /// replaced. Each options type redacts its own secrets first ([`Config::redacted`]); then
    /// every string value is walked: the values of secret keys (tokens, passwords) become
    /// `<redacted>`, and the credentials of every URL in any value (upstream, routes, checksum
    /// databases, Redis) become `***` ([`gomodproxy_redact`]) — so a key added later is covered
    /// without being listed here.
    pub fn to_toml_redacted(&self) -> Result<String, toml::ser::Error> {
        let mut value = toml::Value::try_from(self.redacted())?;
        redact_value(&mut value, None);
        toml::to_string(&value)
    }

    /// A copy with the backends' secrets replaced by their own `redacted()`.
    pub fn redacted(&self) -> Config {
        let mut shown = self.clone();
        // Each options type knows its own secrets.
        shown.storage.s3 = self.storage.s3.redacted();
        shown.storage.redis = self.storage.redis.redacted();
        shown.coordination = self.coordination.redacted();
        shown
    }
}

/// Keys whose whole value is a secret.
const SECRET_KEYS: &[&str] = &["secret_access_key", "session_token", "token", "password"];

/// Redacts every string under `value` (see [`Config::to_toml_redacted`]); `key` is the name of
/// the table entry `value` is.
fn redact_value(value: &mut toml::Value, key: Option<&str>) {
    match value {
        toml::Value::String(text) => {
            if key.is_some_and(|k| SECRET_KEYS.contains(&k))
                && !text.is_empty()
                && text != "<redacted>"
            {
                *text = "<redacted>".to_string();
            } else {
                *text = gomodproxy_redact::text(text);
            }
        }
        toml::Value::Array(items) => {
            for item in items {
                redact_value(item, key);
            }
        }
        toml::Value::Table(table) => {
            for (k, v) in table.iter_mut() {
                redact_value(v, Some(k));
            }
        }
        _ => {}
    }
}
