//! The `[auth]`, `[access]` and `[policy]` configuration sections.
//!
//! Every struct is `#[serde(default, deny_unknown_fields)]`: a missing key takes the default
//! documented on its field, an unknown key is an error. Keys are lower snake_case so that the
//! server's environment mapping (`GOMODPROXY_AUTH__HTPASSWD_FILE`,
//! `GOMODPROXY_AUTH__RATE_LIMIT__BURST`, …) reaches every one. Durations are humantime strings
//! (`"2s"`, `"1m"`). Nothing here is secret (files hold the secrets), so `Debug` is derived.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::credentials::CredentialFiles;

/// `[auth]`: who the clients are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `auth.htpasswd_file`: users and bcrypt/argon2 password hashes (HTTP basic, what the go
    /// command sends from `.netrc`). Default: none.
    pub htpasswd_file: Option<PathBuf>,
    /// `auth.tokens_file`: bearer tokens, stored as `name:sha256:<hex>`. Default: none.
    pub tokens_file: Option<PathBuf>,
    /// `auth.groups_file`: `group: member member …` lines (Apache `AuthGroupFile` format).
    /// Default: none (no identity is in any group).
    pub groups_file: Option<PathBuf>,
    /// `auth.metrics_require_auth`: `/metrics` needs a valid user or token. Default: false.
    pub metrics_require_auth: bool,
    /// `auth.realm`: the realm of the `WWW-Authenticate` challenge. Default: `gomodproxy`.
    pub realm: String,
    /// `auth.watch_interval`: how often the credential files are checked for changes (mtime,
    /// size, inode); `0s` turns the watcher off (reload on SIGHUP only). Default: `2s`.
    #[serde(with = "humantime_serde")]
    pub watch_interval: Duration,
    /// `auth.cache_ttl`: how long a successful password verification is remembered, so that
    /// every request does not pay bcrypt; `0s` turns the cache off. Default: `60s`.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// `auth.cache_max_entries`: bound of the verification cache. Default: 10000.
    pub cache_max_entries: usize,
    /// `auth.max_concurrent_verifications`: password hashes verified at once (each is
    /// milliseconds to seconds of one core); more wait. Default: 4.
    pub max_concurrent_verifications: usize,
    /// `[auth.rate_limit]`: failed attempts per client address.
    pub rate_limit: RateLimitConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            htpasswd_file: None,
            tokens_file: None,
            groups_file: None,
            metrics_require_auth: false,
            realm: "gomodproxy".into(),
            watch_interval: Duration::from_secs(2),
            cache_ttl: Duration::from_secs(60),
            cache_max_entries: 10_000,
            max_concurrent_verifications: 4,
            rate_limit: RateLimitConfig::default(),
        }
    }
}

impl AuthConfig {
    /// The credential files this configuration names.
    pub fn files(&self) -> CredentialFiles {
        CredentialFiles {
            htpasswd: self.htpasswd_file.clone(),
            tokens: self.tokens_file.clone(),
            groups: self.groups_file.clone(),
        }
    }

    /// Reports whether authentication is on (a user or token file is set).
    pub fn enabled(&self) -> bool {
        self.files().any()
    }
}

/// `[auth.rate_limit]`: a token bucket of failed attempts per client address.
///
/// Each failed login (wrong password, unknown user, bad token, malformed header) takes one
/// token from the client's bucket; the bucket holds `burst` and regains one every
/// `refill_interval`. A client with an empty bucket gets 429 for every request that carries
/// credentials, right or wrong, until a token comes back: it cannot go on guessing, and cannot
/// tell a right guess from a wrong one while limited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// `auth.rate_limit.enabled`. Default: true.
    pub enabled: bool,
    /// `auth.rate_limit.burst`: failures allowed in a row. Default: 10.
    pub burst: u32,
    /// `auth.rate_limit.refill_interval`: one failure is forgiven per interval. Default: `6s`
    /// (10 a minute).
    #[serde(with = "humantime_serde")]
    pub refill_interval: Duration,
    /// `auth.rate_limit.max_clients`: addresses tracked at once; when full, the address
    /// closest to a full bucket is forgotten. Default: 10000.
    pub max_clients: usize,
    /// `auth.rate_limit.ipv6_prefix_len`: IPv6 clients are counted per prefix of this length
    /// (one host usually holds a whole /64). Default: 64.
    pub ipv6_prefix_len: u8,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            burst: 10,
            refill_interval: Duration::from_secs(6),
            max_clients: 10_000,
            ipv6_prefix_len: 64,
        }
    }
}

/// `[access]`: which identities may read which modules.
///
/// ```toml
/// [access]
/// default = "authenticated"          # modules no rule matches
///
/// [[access.rules]]
/// modules = "github.com/acme/public,golang.org"
/// anonymous = true
///
/// [[access.rules]]
/// modules = "*.corp.example.com"
/// groups = ["dev"]
///
/// [[access.rules]]
/// modules = "github.com/acme/secret"
/// groups = ["release"]
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    /// `access.default`: who may read a module no rule matches. Default: `authenticated` when
    /// `auth.htpasswd_file` or `auth.tokens_file` is set, else `anonymous`.
    pub default: Option<DefaultAccess>,
    /// `access.rules`: the rules; the most specific matching rule decides (see
    /// [`crate::rules`]). A list of tables, or (the form an environment variable can hold,
    /// `GOMODPROXY_ACCESS__RULES`) one string with the same list as JSON:
    /// `[{"modules": "*.corp.example.com", "groups": ["dev"]}]`.
    #[serde(deserialize_with = "tables_or_json")]
    pub rules: Vec<AccessRuleConfig>,
}

/// Who may read a module that no rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultAccess {
    /// Everyone, without credentials.
    Anonymous,
    /// Any valid user or token.
    Authenticated,
    /// Nobody: only modules some rule names are served.
    Nobody,
}

/// One `[[access.rules]]` table. The rule grants access to whoever any of its fields names;
/// a rule naming nobody refuses the modules it matches to everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessRuleConfig {
    /// GOPRIVATE-style patterns, comma-separated (`*.corp.example.com,github.com/acme/*`): each
    /// matches a module path prefix of whole elements, `*` within one element. Required.
    pub modules: String,
    /// Anyone, without credentials. Default: false.
    pub anonymous: bool,
    /// Any valid user or token. Default: false.
    pub authenticated: bool,
    /// These users or tokens by name. Default: none.
    pub users: Vec<String>,
    /// Members of these groups (`auth.groups_file`). Default: none.
    pub groups: Vec<String>,
}

/// A list of tables, or a string holding the list as JSON (from an environment variable). A
/// visitor rather than an untagged enum, so that an unknown key inside a table keeps its own
/// error message.
pub(crate) fn tables_or_json<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    struct Visitor<T>(std::marker::PhantomData<T>);
    impl<'de, T: serde::de::DeserializeOwned> serde::de::Visitor<'de> for Visitor<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of tables, or a JSON list in a string")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Vec<T>, E> {
            if text.trim().is_empty() {
                return Ok(Vec::new());
            }
            serde_json::from_str(text).map_err(|e| E::custom(format!("not a JSON list: {e}")))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                items.push(item);
            }
            Ok(items)
        }
    }
    d.deserialize_any(Visitor(std::marker::PhantomData))
}

/// `[policy]`: which modules and versions are served at all, whoever asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// `policy.file`: the policy file (TOML, see [`crate::policy`]). Default: none (everything
    /// is allowed).
    pub file: Option<PathBuf>,
    /// `policy.watch_interval`: how often the file is checked for changes; `0s` turns the
    /// watcher off. Default: `2s`.
    #[serde(with = "humantime_serde")]
    pub watch_interval: Duration,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            file: None,
            watch_interval: Duration::from_secs(2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sections {
        #[serde(default)]
        auth: AuthConfig,
        #[serde(default)]
        access: AccessConfig,
        #[serde(default)]
        policy: PolicyConfig,
    }

    #[test]
    fn empty_sections_take_the_defaults() {
        let s: Sections = toml::from_str("").unwrap();
        assert_eq!(s.auth, AuthConfig::default());
        assert_eq!(s.access, AccessConfig::default());
        assert_eq!(s.policy, PolicyConfig::default());
        assert!(!s.auth.enabled());
        assert_eq!(s.auth.rate_limit.burst, 10);
        assert_eq!(s.auth.cache_ttl, Duration::from_secs(60));
    }

    #[test]
    fn a_full_configuration_parses() {
        let s: Sections = toml::from_str(
            r#"
            [auth]
            htpasswd_file = "/etc/gomodproxy/htpasswd"
            tokens_file = "/etc/gomodproxy/tokens"
            groups_file = "/etc/gomodproxy/groups"
            metrics_require_auth = true
            watch_interval = "0s"
            cache_ttl = "5m"
            [auth.rate_limit]
            burst = 3
            refill_interval = "1m"
            [access]
            default = "nobody"
            [[access.rules]]
            modules = "*.corp.example.com"
            groups = ["dev"]
            [[access.rules]]
            modules = "github.com/acme/public"
            anonymous = true
            [policy]
            file = "/etc/gomodproxy/policy.toml"
            "#,
        )
        .unwrap();
        assert!(s.auth.enabled());
        assert_eq!(s.auth.watch_interval, Duration::ZERO);
        assert_eq!(s.auth.rate_limit.refill_interval, Duration::from_secs(60));
        assert_eq!(s.auth.rate_limit.max_clients, 10_000);
        assert_eq!(s.access.default, Some(DefaultAccess::Nobody));
        assert_eq!(s.access.rules.len(), 2);
        assert_eq!(s.access.rules[0].groups, ["dev"]);
        assert!(s.access.rules[1].anonymous);
    }

    #[test]
    fn rules_from_a_json_string() {
        let s: Sections = toml::from_str(
            r#"
            [access]
            rules = '[{"modules": "*.corp.example.com", "groups": ["dev"]}, {"modules": "x.example", "anonymous": true}]'
            "#,
        )
        .unwrap();
        assert_eq!(s.access.rules.len(), 2);
        assert_eq!(s.access.rules[0].groups, ["dev"]);
        assert!(s.access.rules[1].anonymous);
        let err = toml::from_str::<Sections>("[access]\nrules = '[{\"module\": \"x\"}]'")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        for bad in [
            "[auth]\nhtpasswd = \"x\"",
            "[auth.rate_limit]\nrate = 1",
            "[[access.rules]]\nmodules = \"x\"\ngroup = [\"dev\"]",
            "[policy]\npath = \"x\"",
        ] {
            let err = toml::from_str::<Sections>(bad).unwrap_err().to_string();
            assert!(err.contains("unknown field"), "{bad}: {err}");
        }
    }
}
