//! Credentials for HTTP upstreams (`[[fetch.credentials]]`): HTTP basic (a user and a password
//! or a password file), a bearer token (a value or a file), or a netrc file, each sent only to
//! the upstream URLs under its `url` (and, with `modules`, only for requests about those
//! modules: two routes sharing one upstream can hold different credentials).
//!
//! Secrets given as files are read when first needed and again whenever the file changes
//! (device, inode, size or mtime), so a rotated token (a Kubernetes secret, a vault agent's
//! file) is used without a restart. The values never leave this module but as the header of a
//! request to a matching URL; `Debug` shows `<redacted>`; `config check` redacts the `password`
//! and `token` keys.
//!
//! Which entry applies to a request: among the entries whose `url` is a prefix of the request
//! URL (same scheme, host and port, whole path segments) and whose `modules` (if any) match the
//! module, the one with the longest path; of equal paths, one with `modules` before one
//! without; then the first written. An upstream given with URL userinfo
//! (`https://user:token@host`) uses that and no entry here.
//!
//! Redirects never carry them to another host: the HTTP client drops `Authorization` on a
//! redirect that changes scheme, host or port (and such redirects are refused anyway unless the
//! target is in `fetch.redirect_hosts`).

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use gomodproxy_redact::Secret;
use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::ModulePatterns;

/// One `[[fetch.credentials]]` table, as written.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialEntry {
    /// The upstream URL prefix the credentials are sent to (`https://artifactory.corp/api/go`).
    pub url: String,
    /// Only for requests about these modules (GOPRIVATE patterns). Default: every request to
    /// `url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modules: Option<ModulePatterns>,
    /// HTTP basic: the user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// HTTP basic: the password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// HTTP basic: a file holding the password (trailing whitespace dropped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// A bearer token (`Authorization: Bearer …`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// A file holding the bearer token (trailing whitespace dropped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// A netrc file: the `machine` entry for the request's host (`host:port` first, then
    /// `host`) is sent as HTTP basic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netrc_file: Option<PathBuf>,
}

impl fmt::Debug for CredentialEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialEntry")
            .field("url", &gomodproxy_redact::url(&self.url))
            .field("modules", &self.modules)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("password_file", &self.password_file)
            .field("token", &self.token)
            .field("token_file", &self.token_file)
            .field("netrc_file", &self.netrc_file)
            .finish()
    }
}

/// A `[[fetch.credentials]]` entry that makes no sense; `index` says which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fetch.credentials[{index}].{key}: {reason}")]
pub struct CredentialError {
    /// The entry's position.
    pub index: usize,
    /// The key at fault.
    pub key: &'static str,
    /// What is wrong (never a secret).
    pub reason: String,
}

/// What one request carries.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Authorization {
    Basic { username: String, password: Secret },
    Bearer(Secret),
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authorization::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Authorization::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// A file whose (trimmed) content is a secret, re-read when it changes.
struct SecretFile {
    path: PathBuf,
    cached: Mutex<Option<(FileStamp, Arc<String>)>>,
}

type FileStamp = (u64, u64, u64, Option<SystemTime>);

impl SecretFile {
    fn new(path: PathBuf) -> SecretFile {
        SecretFile {
            path,
            cached: Mutex::new(None),
        }
    }

    /// The content, trimmed of trailing whitespace; re-read if the file changed.
    fn read(&self) -> Result<Arc<String>, String> {
        let words = |e: &std::io::Error| {
            format!(
                "cannot read {}: {}",
                self.path.display(),
                crate::io_words(e)
            )
        };
        let meta = std::fs::metadata(&self.path).map_err(|e| words(&e))?;
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt as _;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        let stamp = (dev, ino, meta.len(), meta.modified().ok());
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, value)) = cached.as_ref()
            && *seen == stamp
        {
            return Ok(value.clone());
        }
        // Secrets are short; a huge file is a mistake, not a secret.
        if meta.len() > 64 * 1024 {
            return Err(format!(
                "{} is {} bytes, too large for a secret",
                self.path.display(),
                meta.len()
            ));
        }
        let text = std::fs::read_to_string(&self.path).map_err(|e| words(&e))?;
        let value = Arc::new(text.trim_end().to_string());
        *cached = Some((stamp, value.clone()));
        Ok(value)
    }
}

enum SecretSource {
    Value(Secret),
    File(SecretFile),
}

impl SecretSource {
    fn get(&self) -> Result<Secret, String> {
        match self {
            SecretSource::Value(s) => Ok(s.clone()),
            SecretSource::File(f) => {
                let value = f.read()?;
                if value.is_empty() {
                    return Err(format!("{} is empty", f.path.display()));
                }
                Ok(Secret::new(value.as_str()))
            }
        }
    }
}

enum Kind {
    Basic {
        username: String,
        password: SecretSource,
    },
    Bearer(SecretSource),
    Netrc(SecretFile),
}

/// A URL prefix: scheme, host, port and a path of whole segments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Prefix {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
}

impl Prefix {
    fn parse(text: &str) -> Result<Prefix, String> {
        let url = Url::parse(text.trim()).map_err(|e| format!("{e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http:// or https:// URL".into());
        }
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            return Err("has no host".into());
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not hold credentials (use the other keys)".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not have a query or fragment".into());
        }
        Ok(Prefix {
            scheme: url.scheme().to_string(),
            host: host.to_ascii_lowercase(),
            port: url.port_or_known_default(),
            path: url.path().trim_end_matches('/').to_string(),
        })
    }

    /// The path length if `url` is under this prefix.
    fn matches(&self, url: &Url) -> Option<usize> {
        let host_ok = url
            .host_str()
            .is_some_and(|h| h.eq_ignore_ascii_case(&self.host));
        if url.scheme() != self.scheme || !host_ok || url.port_or_known_default() != self.port {
            return None;
        }
        let path = url.path();
        let under = path == self.path
            || path
                .strip_prefix(&self.path)
                .is_some_and(|rest| rest.starts_with('/'));
        under.then_some(self.path.len())
    }
}

struct Credential {
    prefix: Prefix,
    modules: Option<ModulePatterns>,
    kind: Kind,
}

/// The parsed `[[fetch.credentials]]` entries. Cheap to clone; `Debug` shows no secret.
///
/// Deserializes from a list of tables or (the form an environment variable can hold,
/// `GOMODPROXY_FETCH__CREDENTIALS`) a string with the same list as JSON; serializes back to
/// the tables as written.
#[derive(Clone, Default)]
pub struct UpstreamCredentials {
    entries: Vec<CredentialEntry>,
    parsed: Arc<Vec<Credential>>,
}

impl PartialEq for UpstreamCredentials {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl fmt::Debug for UpstreamCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.entries).finish()
    }
}

impl UpstreamCredentials {
    /// Checks and parses the entries. Files are not read here (see [`Self::check_files`]).
    pub fn new(entries: Vec<CredentialEntry>) -> Result<UpstreamCredentials, CredentialError> {
        let mut parsed = Vec::new();
        for (index, e) in entries.iter().enumerate() {
            let bad = |key: &'static str, reason: String| CredentialError { index, key, reason };
            if e.url.trim().is_empty() {
                return Err(bad("url", "is required".into()));
            }
            let prefix = Prefix::parse(&e.url).map_err(|r| bad("url", r))?;
            let password = match (&e.password, &e.password_file) {
                (Some(_), Some(_)) => {
                    return Err(bad(
                        "password_file",
                        "set password or password_file, not both".into(),
                    ));
                }
                (Some(p), None) => Some(SecretSource::Value(p.clone())),
                (None, Some(f)) => Some(SecretSource::File(SecretFile::new(f.clone()))),
                (None, None) => None,
            };
            let token = match (&e.token, &e.token_file) {
                (Some(_), Some(_)) => {
                    return Err(bad(
                        "token_file",
                        "set token or token_file, not both".into(),
                    ));
                }
                (Some(t), None) => Some(SecretSource::Value(t.clone())),
                (None, Some(f)) => Some(SecretSource::File(SecretFile::new(f.clone()))),
                (None, None) => None,
            };
            let kinds = usize::from(e.username.is_some() || password.is_some())
                + usize::from(token.is_some())
                + usize::from(e.netrc_file.is_some());
            if kinds != 1 {
                return Err(bad(
                    "url",
                    "needs exactly one of: username with password (or password_file), token (or token_file), netrc_file".into(),
                ));
            }
            let kind = if let Some(token) = token {
                if matches!(&token, SecretSource::Value(t) if t.is_empty()) {
                    return Err(bad("token", "is empty".into()));
                }
                Kind::Bearer(token)
            } else if let Some(netrc) = &e.netrc_file {
                Kind::Netrc(SecretFile::new(netrc.clone()))
            } else {
                let username = e.username.clone().unwrap_or_default();
                if username.is_empty() || username.contains(':') {
                    return Err(bad("username", "must be set, without `:`".into()));
                }
                let Some(password) = password else {
                    return Err(bad(
                        "password",
                        "username needs password or password_file".into(),
                    ));
                };
                Kind::Basic { username, password }
            };
            if prefix.scheme == "http" {
                tracing::warn!(
                    url = %gomodproxy_redact::url(&e.url),
                    "fetch.credentials[{index}] is sent over plain http: anyone on the path can read it"
                );
            }
            parsed.push(Credential {
                prefix,
                modules: e.modules.clone(),
                kind,
            });
        }
        Ok(UpstreamCredentials {
            entries,
            parsed: Arc::new(parsed),
        })
    }

    /// The entries as written.
    pub fn entries(&self) -> &[CredentialEntry] {
        &self.entries
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads every secret file once, so that a missing or unreadable one is an error at start
    /// rather than at the first fetch.
    pub fn check_files(&self) -> Result<(), CredentialError> {
        for (index, c) in self.parsed.iter().enumerate() {
            let (key, result) = match &c.kind {
                Kind::Basic { password, .. } => ("password_file", password.get().map(drop)),
                Kind::Bearer(token) => ("token_file", token.get().map(drop)),
                Kind::Netrc(file) => ("netrc_file", file.read().map(drop)),
            };
            result.map_err(|reason| CredentialError { index, key, reason })?;
        }
        Ok(())
    }

    /// What a request to `url` about `module` carries, if an entry applies. An error says
    /// which file could not be read (never a secret).
    pub(crate) fn authorization(
        &self,
        url: &Url,
        module: Option<&str>,
    ) -> Result<Option<Authorization>, String> {
        let mut best: Option<(usize, bool, &Credential)> = None;
        for c in self.parsed.iter() {
            let Some(len) = c.prefix.matches(url) else {
                continue;
            };
            let scoped = match (&c.modules, module) {
                (None, _) => false,
                (Some(patterns), Some(m)) if patterns.matches(m) => true,
                (Some(_), _) => continue,
            };
            if best.is_none_or(|(l, s, _)| (len, scoped) > (l, s)) {
                best = Some((len, scoped, c));
            }
        }
        let Some((_, _, c)) = best else {
            return Ok(None);
        };
        Ok(match &c.kind {
            Kind::Basic { username, password } => Some(Authorization::Basic {
                username: username.clone(),
                password: password.get()?,
            }),
            Kind::Bearer(token) => Some(Authorization::Bearer(token.get()?)),
            Kind::Netrc(file) => {
                let text = file.read()?;
                let host = url.host_str().unwrap_or_default();
                let with_port = url.port().map(|p| format!("{host}:{p}"));
                let lines = gomodproxy_vcs::netrc::parse(&text);
                // The first entry of a machine wins, as in the go command.
                let found = with_port
                    .as_deref()
                    .and_then(|hp| lines.iter().find(|l| l.machine.eq_ignore_ascii_case(hp)))
                    .or_else(|| lines.iter().find(|l| l.machine.eq_ignore_ascii_case(host)));
                found.map(|l| Authorization::Basic {
                    username: l.login.clone(),
                    password: Secret::new(l.password.as_str()),
                })
            }
        })
    }
}

impl Serialize for UpstreamCredentials {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.entries.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for UpstreamCredentials {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Vec<CredentialEntry>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of tables, or a JSON list in a string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                if text.trim().is_empty() {
                    return Ok(Vec::new());
                }
                // serde_json's message quotes no value, only positions and field names.
                serde_json::from_str(text).map_err(|e| E::custom(format!("not a JSON list: {e}")))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(items)
            }
        }
        let entries = deserializer.deserialize_any(Visitor)?;
        UpstreamCredentials::new(entries).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(url: &str) -> CredentialEntry {
        CredentialEntry {
            url: url.into(),
            ..CredentialEntry::default()
        }
    }

    fn bearer(url: &str, token: &str) -> CredentialEntry {
        CredentialEntry {
            token: Some(Secret::new(token)),
            ..entry(url)
        }
    }

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn the_longest_prefix_on_the_same_origin_applies() {
        let creds = UpstreamCredentials::new(vec![
            bearer("https://art.example/api", "general"),
            bearer("https://art.example/api/go/team", "team"),
            CredentialEntry {
                modules: Some(ModulePatterns::parse("github.com/acme").unwrap()),
                ..bearer("https://art.example/api", "acme")
            },
        ])
        .unwrap();
        let token = |url: &str, module: Option<&str>| match creds.authorization(&u(url), module) {
            Ok(Some(Authorization::Bearer(t))) => Some(t.expose().to_string()),
            Ok(other) => {
                assert!(other.is_none());
                None
            }
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            token("https://art.example/api/x/@v/list", None).as_deref(),
            Some("general")
        );
        assert_eq!(
            token("https://art.example/api/go/team/m/@v/list", None).as_deref(),
            Some("team")
        );
        assert_eq!(
            token(
                "https://art.example/api/github.com/acme/x/@v/list",
                Some("github.com/acme/x")
            )
            .as_deref(),
            Some("acme"),
            "an entry for the module beats one for every module on the same path"
        );
        assert_eq!(
            token("https://art.example/apix/m", None),
            None,
            "whole segments"
        );
        assert_eq!(token("http://art.example/api/m", None), None, "scheme");
        assert_eq!(token("https://art.example:8443/api/m", None), None, "port");
        assert_eq!(token("https://other.example/api/m", None), None, "host");
        assert_eq!(
            token("https://ART.example:443/api/m", None).as_deref(),
            Some("general")
        );
    }

    #[test]
    fn files_are_reread_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let creds = UpstreamCredentials::new(vec![CredentialEntry {
            token_file: Some(path.clone()),
            ..entry("https://h.example")
        }])
        .unwrap();
        creds.check_files().unwrap();
        let get = || match creds
            .authorization(&u("https://h.example/m"), None)
            .unwrap()
        {
            Some(Authorization::Bearer(t)) => t.expose().to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(get(), "first");
        std::fs::write(dir.path().join("new"), "second-token\n").unwrap();
        std::fs::rename(dir.path().join("new"), &path).unwrap();
        assert_eq!(get(), "second-token");
        std::fs::remove_file(&path).unwrap();
        let err = creds
            .authorization(&u("https://h.example/m"), None)
            .unwrap_err();
        assert!(
            err.contains("cannot read") && !err.contains("second"),
            "{err}"
        );
        assert!(creds.check_files().is_err());
    }

    #[test]
    fn netrc_machines_by_host_and_port() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netrc");
        std::fs::write(
            &path,
            "machine h.example login plain password p1\nmachine h.example:8443 login ported password p2\n",
        )
        .unwrap();
        let netrc = |url: &str| CredentialEntry {
            netrc_file: Some(path.clone()),
            ..entry(url)
        };
        let creds = UpstreamCredentials::new(vec![
            netrc("https://h.example"),
            netrc("https://h.example:8443"),
        ])
        .unwrap();
        let user = |url: &str| match creds.authorization(&u(url), None).unwrap() {
            Some(Authorization::Basic { username, .. }) => username,
            other => panic!("{other:?}"),
        };
        assert_eq!(user("https://h.example/m"), "plain");
        assert_eq!(user("https://h.example:8443/m"), "ported");
    }

    #[test]
    fn bad_entries_name_their_key_and_never_a_secret() {
        let cases = [
            (entry(""), "url"),
            (entry("https://h.example"), "url"),
            (bearer("ftp://h.example", "t"), "url"),
            (bearer("https://u:hunter2@h.example", "t"), "url"),
            (
                CredentialEntry {
                    username: Some("u".into()),
                    ..entry("https://h.example")
                },
                "password",
            ),
            (
                CredentialEntry {
                    username: Some("u".into()),
                    password: Some(Secret::new("hunter2")),
                    token: Some(Secret::new("t")),
                    ..entry("https://h.example")
                },
                "url",
            ),
            (
                CredentialEntry {
                    token: Some(Secret::new("hunter2")),
                    token_file: Some("/x".into()),
                    ..entry("https://h.example")
                },
                "token_file",
            ),
        ];
        for (e, key) in cases {
            let err = UpstreamCredentials::new(vec![e.clone()])
                .err()
                .unwrap_or_else(|| panic!("{e:?}"));
            assert_eq!(err.key, key, "{e:?}: {err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        let debug = format!(
            "{:?}",
            UpstreamCredentials::new(vec![bearer("https://h.example", "hunter2")]).unwrap()
        );
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn tables_and_json_strings_deserialize() {
        #[derive(Deserialize)]
        struct C {
            credentials: UpstreamCredentials,
        }
        let c: C = toml::from_str(
            "[[credentials]]\nurl = \"https://h.example\"\ntoken = \"t\"\n[[credentials]]\nurl = \"https://g.example\"\nusername = \"u\"\npassword = \"p\"\n",
        )
        .unwrap();
        assert_eq!(c.credentials.entries().len(), 2);
        let c: C = toml::from_str(
            r#"credentials = '[{"url": "https://h.example", "token": "t", "modules": "github.com/acme"}]'"#,
        )
        .unwrap();
        assert_eq!(c.credentials.entries().len(), 1);
        let err =
            toml::from_str::<C>("[[credentials]]\nurl = \"https://h.example\"\ntokn = \"t\"\n")
                .err()
                .unwrap()
                .to_string();
        assert!(err.contains("unknown field"), "{err}");
    }
}
