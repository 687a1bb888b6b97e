//! [`DirectConfig`]: the `[direct]` section of the server's configuration, and its resolution
//! into typed [`Settings`] (files read, defaults taken from the environment, patterns checked).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::netrc;

/// Configuration of the direct (version control) source. Every key has a default; unknown keys
/// are errors. See `docs/private-modules.md` for a walk-through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DirectConfig {
    /// Directory of the bare git mirrors (one per repository), the tag pins that keep served
    /// versions immutable, and temporary files.
    pub cache_dir: PathBuf,
    /// How long a repository's list of refs (`git ls-remote`) is trusted before it is asked
    /// again. Within it, `list` and tag lookups never wait on the network.
    #[serde(with = "humantime_serde")]
    pub refs_ttl: Duration,
    /// Bound on each git process (clone, fetch, ls-remote, archive); the process group is
    /// killed when it is hit.
    #[serde(with = "humantime_serde")]
    pub git_timeout: Duration,
    /// Bound on `git ls-remote` (listing a repository's refs), shorter than `git_timeout`
    /// because every request for the repository waits on it.
    #[serde(with = "humantime_serde")]
    pub ls_remote_timeout: Duration,
    /// Bound on each go-get discovery request (`https://<path>?go-get=1`).
    #[serde(with = "humantime_serde")]
    pub go_get_timeout: Duration,
    /// How long a request waits for one of the `max_git_processes` slots before it fails as
    /// busy.
    #[serde(with = "humantime_serde")]
    pub queue_timeout: Duration,
    /// Most git processes running at once, for all repositories together.
    pub max_git_processes: usize,
    /// Largest mirror on disk, in bytes; a fetch that grows a mirror past it is killed and the
    /// mirror removed.
    pub max_repo_size: u64,
    /// A mirror not used for this long is deleted (its tag pins are kept).
    #[serde(with = "humantime_serde")]
    pub prune_after: Duration,
    /// The git executable (looked up in `PATH` if not a path).
    pub git: PathBuf,
    /// `HOME` of the git processes (where git finds `~/.netrc`, credential stores, ...).
    /// Default: this process's `HOME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home: Option<PathBuf>,
    /// The global git configuration git reads (its `url.<base>.insteadOf` rewrites, credential
    /// helpers, `http.extraHeader`, ...). Default: `GIT_CONFIG_GLOBAL` of this process, else
    /// `<home>/.gitconfig`, else `$XDG_CONFIG_HOME/git/config`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_config: Option<PathBuf>,
    /// Also read the system git configuration (`/etc/gitconfig`).
    pub system_git_config: bool,
    /// A netrc file whose `machine` entries are sent as HTTP basic auth to those hosts (over
    /// https only), by git and by go-get discovery. Default: `NETRC` of this process, else
    /// `<home>/.netrc`; a missing default file is not an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netrc: Option<PathBuf>,
    /// Per-host credentials, sent as HTTP basic auth.
    pub credentials: Vec<CredentialConfig>,
    /// Private key for git over ssh (`ssh -i`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<PathBuf>,
    /// known_hosts file for git over ssh; hosts not in it are refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh_known_hosts: Option<PathBuf>,
    /// Transport protocols allowed besides `https` and `ssh`: `git` and/or `http`. The targets
    /// of `url.<base>.insteadOf` rules in the git configuration are allowed too. `file` and
    /// `ext` never are.
    pub allowed_protocols: Vec<String>,
    /// Module path patterns (GOINSECURE syntax) whose go-get discovery may fall back to plain
    /// HTTP and skips certificate checks.
    pub insecure: Vec<String>,
    /// HTTP proxy for go-get discovery and for git over http(s). Default: the
    /// `HTTPS_PROXY`/`HTTP_PROXY` environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_proxy: Option<String>,
    /// Hosts reached without the proxy (comma-separated, curl's `NO_PROXY` syntax). Default: the
    /// `NO_PROXY` environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
    /// Explicit repository locations for module paths whose host has no go-get support; the
    /// first matching entry wins, before the go command's rules are tried.
    pub repos: Vec<RepoMapping>,
    /// Outbound TLS for git over https and go-get discovery: an extra CA bundle added to the
    /// system roots and a client certificate. Not a key of `[direct]`: the server sets it from
    /// `fetch.ca_file`, `fetch.client_cert_file` and `fetch.client_key_file`, so that git
    /// trusts what the HTTP upstreams trust.
    #[serde(skip)]
    pub tls: gomodproxy_tls::OutboundTlsConfig,
}

impl Default for DirectConfig {
    fn default() -> Self {
        DirectConfig {
            cache_dir: PathBuf::from("./data/vcs"),
            refs_ttl: Duration::from_secs(60),
            git_timeout: Duration::from_secs(600),
            ls_remote_timeout: Duration::from_secs(60),
            go_get_timeout: Duration::from_secs(30),
            queue_timeout: Duration::from_secs(60),
            max_git_processes: 8,
            max_repo_size: 4 << 30,
            prune_after: Duration::from_secs(30 * 24 * 3600),
            git: PathBuf::from("git"),
            home: None,
            git_config: None,
            system_git_config: false,
            netrc: None,
            credentials: Vec::new(),
            ssh_key: None,
            ssh_known_hosts: None,
            allowed_protocols: Vec::new(),
            insecure: Vec::new(),
            http_proxy: None,
            no_proxy: None,
            repos: Vec::new(),
            tls: gomodproxy_tls::OutboundTlsConfig::default(),
        }
    }
}

/// Credentials for one host, sent as HTTP basic auth (`Authorization: Basic …`) to URLs under
/// `host`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// `git.corp.example.com` (https, default port), `git.corp.example.com:8443`, or a URL
    /// prefix with scheme and optional path (`https://git.corp.example.com/team/`,
    /// `http://127.0.0.1:8080/`).
    pub host: String,
    /// User name; GitLab and GitHub accept any non-empty name with a token.
    #[serde(default = "default_username")]
    pub username: String,
    /// The token or password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// A file holding the token (trailing newline ignored), instead of `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

fn default_username() -> String {
    "oauth2".to_string()
}

impl fmt::Debug for CredentialConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialConfig")
            .field("host", &self.host)
            .field("username", &self.username)
            .field("token", &self.token)
            .field("token_file", &self.token_file)
            .finish()
    }
}

/// A secret string: the workspace's one type for them ([`gomodproxy_redact::Secret`]), never
/// shown by `Debug` or `Display`; `config check` replaces it when printing the configuration.
pub use gomodproxy_redact::Secret;

/// A repository location for module paths matching `pattern`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoMapping {
    /// A GOPRIVATE-style pattern (`git.corp.example.com/*/*`, `go.corp.example.com/lib`): the
    /// prefix of the module path it matches (as many elements as the pattern has) is the
    /// repository root; the rest of the path is a directory in the repository.
    pub pattern: String,
    /// The repository URL. `{root}` is replaced by the matched prefix, `{rest}` by the matched
    /// prefix without its first element (`https://gitlab.corp.example.com/{rest}.git`).
    pub url: String,
}

/// A parsed credential: a URL prefix and HTTP basic auth.
#[derive(Clone)]
pub(crate) struct Credential {
    /// `https://host[:port]/[path/]`, lower-case scheme and host.
    pub prefix: UrlPrefix,
    pub username: String,
    pub secret: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential({} as {})", self.prefix, self.username)
    }
}

impl Credential {
    /// The `Authorization` header value.
    pub fn basic_auth(&self) -> String {
        use base64::Engine;
        let raw = format!("{}:{}", self.username, self.secret);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// `scheme://host[:port]/path/` with the path ending in `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlPrefix {
    pub scheme: String,
    /// Host and optional `:port`, lower-case.
    pub authority: String,
    /// Starts and ends with `/`.
    pub path: String,
}

impl fmt::Display for UrlPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.path)
    }
}

impl UrlPrefix {
    /// Parses a credential `host` value.
    pub fn parse(host: &str) -> Result<UrlPrefix, String> {
        let (scheme, rest) = match host.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => ("https".to_string(), host),
        };
        if scheme != "https" && scheme != "http" {
            return Err(format!("scheme {scheme:?} is not http or https"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty()
            || authority.contains('@')
            || !authority
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
        {
            return Err(format!("{authority:?} is not a host name"));
        }
        if path
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err("the path has white space".into());
        }
        let mut path = path.to_string();
        if !path.ends_with('/') {
            path.push('/');
        }
        Ok(UrlPrefix {
            scheme,
            authority: authority.to_ascii_lowercase(),
            path,
        })
    }

    /// Whether `url` (an absolute http(s) URL) is under this prefix, as git's `http.<url>.*`
    /// matching decides (scheme, host and port equal, path on an element boundary).
    pub fn matches(&self, url: &reqwest::Url) -> bool {
        if url.scheme() != self.scheme {
            return false;
        }
        let Some(host) = url.host_str() else {
            return false;
        };
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", host.to_ascii_lowercase()),
            None => host.to_ascii_lowercase(),
        };
        let default_port = if self.scheme == "https" { 443 } else { 80 };
        let ours = self
            .authority
            .strip_suffix(&format!(":{default_port}"))
            .unwrap_or(&self.authority);
        if authority != ours {
            return false;
        }
        let path = url.path();
        path.starts_with(&self.path) || format!("{path}/") == self.path
    }
}

/// A parsed repository mapping.
#[derive(Debug, Clone)]
pub(crate) struct RepoRule {
    pub pattern: String,
    pub elements: usize,
    pub url: String,
}

/// Everything [`DirectConfig`] resolves to.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub cache_dir: PathBuf,
    pub refs_ttl: Duration,
    pub git_timeout: Duration,
    pub ls_remote_timeout: Duration,
    pub go_get_timeout: Duration,
    pub queue_timeout: Duration,
    pub max_git_processes: usize,
    pub max_repo_size: u64,
    pub prune_after: Duration,
    pub git: PathBuf,
    pub home: Option<PathBuf>,
    pub git_config: Option<PathBuf>,
    pub system_git_config: bool,
    pub credentials: Vec<Credential>,
    pub ssh_key: Option<PathBuf>,
    pub ssh_known_hosts: Option<PathBuf>,
    /// Extra protocols from the configuration (`git`, `http`).
    pub allowed_protocols: Vec<String>,
    /// GOINSECURE-style patterns, comma-joined.
    pub insecure: String,
    pub http_proxy: Option<String>,
    pub no_proxy: Option<String>,
    pub repos: Vec<RepoRule>,
    /// `PATH` of the git processes.
    pub path_env: Option<String>,
    /// `SSH_AUTH_SOCK` passed through, if set.
    pub ssh_auth_sock: Option<String>,
    /// The extra CA and client certificate, when configured.
    pub outbound_tls: Option<std::sync::Arc<gomodproxy_tls::OutboundTls>>,
    /// git's `http.sslCAInfo` / `http.sslCert` / `http.sslKey` for them (set once the CA
    /// bundle is written under `cache_dir`).
    pub git_tls: Vec<(String, String)>,
}

/// Reads an environment variable, treating empty as unset.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl DirectConfig {
    /// Resolves defaults from the environment, reads token and netrc files, checks patterns.
    pub(crate) fn resolve(&self) -> Result<Settings, ConfigError> {
        if self.max_git_processes == 0 {
            return Err(ConfigError::new("max_git_processes", "must be at least 1"));
        }
        for (key, d) in [
            ("refs_ttl", self.refs_ttl),
            ("git_timeout", self.git_timeout),
            ("ls_remote_timeout", self.ls_remote_timeout),
            ("go_get_timeout", self.go_get_timeout),
        ] {
            if key != "refs_ttl" && d.is_zero() {
                return Err(ConfigError::new(key, "must be more than zero"));
            }
        }
        if self.max_repo_size == 0 {
            return Err(ConfigError::new("max_repo_size", "must be more than zero"));
        }
        let home = self.home.clone().or_else(|| env("HOME").map(PathBuf::from));
        // Where git itself looks for its global configuration: GIT_CONFIG_GLOBAL, else
        // ~/.gitconfig, else $XDG_CONFIG_HOME/git/config (~/.config/git/config).
        let git_config = match &self.git_config {
            Some(p) => Some(p.clone()),
            None => env("GIT_CONFIG_GLOBAL").map(PathBuf::from).or_else(|| {
                let home = home.as_ref()?;
                let xdg = env("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| home.join(".config"))
                    .join("git/config");
                [home.join(".gitconfig"), xdg]
                    .into_iter()
                    .find(|p| p.is_file())
            }),
        };
        if let Some(p) = &self.git_config
            && !p.is_file()
        {
            return Err(ConfigError::new(
                "git_config",
                format!("{} is not a file", p.display()),
            ));
        }

        let mut credentials = Vec::new();
        for (i, c) in self.credentials.iter().enumerate() {
            let key = |field: &str| format!("credentials[{i}].{field}");
            let prefix = UrlPrefix::parse(&c.host).map_err(|e| ConfigError::new(key("host"), e))?;
            let secret = match (&c.token, &c.token_file) {
                (Some(t), None) => t.expose().to_string(),
                (None, Some(file)) => read_secret_file(file).map_err(|e| {
                    ConfigError::new(key("token_file"), format!("{}: {e}", file.display()))
                })?,
                (Some(_), Some(_)) => {
                    return Err(ConfigError::new(
                        key("token"),
                        "set token or token_file, not both",
                    ));
                }
                (None, None) => {
                    return Err(ConfigError::new(key("token"), "set token or token_file"));
                }
            };
            if secret.is_empty() || secret.contains(['\n', '\r']) {
                return Err(ConfigError::new(key("token"), "must be one non-empty line"));
            }
            if c.username.is_empty() || c.username.contains([':', '\n', '\r']) {
                return Err(ConfigError::new(
                    key("username"),
                    "must be non-empty, without ':' or line breaks",
                ));
            }
            credentials.push(Credential {
                prefix,
                username: c.username.clone(),
                secret,
            });
        }

        let (netrc_path, netrc_explicit) = match &self.netrc {
            Some(p) => (Some(p.clone()), true),
            None => (
                env("NETRC")
                    .map(PathBuf::from)
                    .or_else(|| home.as_ref().map(|h| h.join(".netrc"))),
                false,
            ),
        };
        if let Some(path) = netrc_path {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    for line in netrc::parse(&text) {
                        let Ok(prefix) = UrlPrefix::parse(&line.machine) else {
                            continue;
                        };
                        // A configured credential for the same host wins.
                        if credentials
                            .iter()
                            .any(|c: &Credential| c.prefix.authority == prefix.authority)
                        {
                            continue;
                        }
                        credentials.push(Credential {
                            prefix,
                            username: line.login,
                            secret: line.password,
                        });
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !netrc_explicit => {}
                Err(e) => {
                    return Err(ConfigError::new(
                        "netrc",
                        format!("{}: {e}", path.display()),
                    ));
                }
            }
        }

        for (key, p) in [
            ("ssh_key", &self.ssh_key),
            ("ssh_known_hosts", &self.ssh_known_hosts),
        ] {
            if let Some(p) = p
                && !p.is_file()
            {
                return Err(ConfigError::new(
                    key,
                    format!("{} is not a file", p.display()),
                ));
            }
        }

        let mut allowed_protocols = Vec::new();
        for p in &self.allowed_protocols {
            match p.as_str() {
                "git" | "http" | "https" | "ssh" => allowed_protocols.push(p.clone()),
                "file" | "ext" => {
                    return Err(ConfigError::new(
                        "allowed_protocols",
                        format!(
                            "{p:?} is never allowed (it runs local commands or reads local files)"
                        ),
                    ));
                }
                other => {
                    return Err(ConfigError::new(
                        "allowed_protocols",
                        format!("unknown protocol {other:?} (allowed: git, http)"),
                    ));
                }
            }
        }

        for p in &self.insecure {
            check_pattern(p).map_err(|e| ConfigError::new("insecure", e))?;
        }

        let mut repos = Vec::new();
        for (i, r) in self.repos.iter().enumerate() {
            let pattern = r.pattern.trim_end_matches('/');
            check_pattern(pattern)
                .map_err(|e| ConfigError::new(format!("repos[{i}].pattern"), e))?;
            let scheme = r.url.split_once("://").map(|(s, _)| s);
            if !matches!(scheme, Some("https" | "http" | "ssh" | "git" | "git+ssh")) {
                return Err(ConfigError::new(
                    format!("repos[{i}].url"),
                    "must be an https://, http://, ssh:// or git:// URL",
                ));
            }
            repos.push(RepoRule {
                pattern: pattern.to_string(),
                elements: pattern.split('/').count(),
                url: r.url.clone(),
            });
        }

        let http_proxy = self
            .http_proxy
            .clone()
            .or_else(|| env("HTTPS_PROXY").or_else(|| env("https_proxy")))
            .or_else(|| env("HTTP_PROXY").or_else(|| env("http_proxy")));
        if let Some(p) = &http_proxy {
            reqwest::Url::parse(p)
                .map_err(|e| ConfigError::new("http_proxy", format!("{p:?}: {e}")))?;
        }
        let no_proxy = self
            .no_proxy
            .clone()
            .or_else(|| env("NO_PROXY").or_else(|| env("no_proxy")));

        let outbound_tls = if self.tls == gomodproxy_tls::OutboundTlsConfig::default() {
            None
        } else {
            Some(std::sync::Arc::new(
                gomodproxy_tls::OutboundTls::load(&self.tls)
                    .map_err(|e| ConfigError::new("tls", e.to_string()))?,
            ))
        };

        Ok(Settings {
            cache_dir: self.cache_dir.clone(),
            refs_ttl: self.refs_ttl,
            git_timeout: self.git_timeout,
            ls_remote_timeout: self.ls_remote_timeout,
            go_get_timeout: self.go_get_timeout,
            queue_timeout: self.queue_timeout,
            max_git_processes: self.max_git_processes,
            max_repo_size: self.max_repo_size,
            prune_after: self.prune_after,
            git: self.git.clone(),
            home,
            git_config: git_config.filter(|p| p.is_file()),
            system_git_config: self.system_git_config,
            credentials,
            ssh_key: self.ssh_key.clone(),
            ssh_known_hosts: self.ssh_known_hosts.clone(),
            allowed_protocols,
            insecure: self.insecure.join(","),
            http_proxy,
            no_proxy,
            repos,
            path_env: env("PATH"),
            ssh_auth_sock: env("SSH_AUTH_SOCK"),
            outbound_tls,
            git_tls: Vec::new(),
        })
    }
}

/// Checks a GOPRIVATE-style pattern with Go's `path.Match` syntax.
fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() || pattern.contains(',') {
        return Err(format!("{pattern:?} is not a single path pattern"));
    }
    gomod::glob::path_match(pattern, "")
        .map(|_| ())
        .map_err(|_| format!("{pattern:?} is a malformed pattern"))
}

fn read_secret_file(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_prefix_forms() {
        let p = UrlPrefix::parse("git.corp.example.com").unwrap();
        assert_eq!(p.to_string(), "https://git.corp.example.com/");
        let p = UrlPrefix::parse("http://127.0.0.1:8080/team").unwrap();
        assert_eq!(p.to_string(), "http://127.0.0.1:8080/team/");
        assert!(UrlPrefix::parse("ftp://x").is_err());
        assert!(UrlPrefix::parse("user@host").is_err());

        let p = UrlPrefix::parse("https://git.example.com/team/").unwrap();
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(p.matches(&url("https://git.example.com/team/repo.git")));
        assert!(p.matches(&url("https://git.example.com/team")));
        assert!(!p.matches(&url("https://git.example.com/teamx/repo")));
        assert!(!p.matches(&url("http://git.example.com/team/repo")));
        assert!(!p.matches(&url("https://git.example.com:8443/team/repo")));
        let p = UrlPrefix::parse("git.example.com:443").unwrap();
        assert!(p.matches(&url("https://git.example.com/x")));
    }

    #[test]
    fn secrets_are_not_shown() {
        let c = CredentialConfig {
            host: "h.example".into(),
            username: "u".into(),
            token: Some(Secret::new("hunter2")),
            token_file: None,
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        // Serialized it is the value itself, so a configuration written back loads again;
        // `config check` replaces it when it prints the configuration for people.
        let toml = toml::to_string(&c).unwrap();
        let back: CredentialConfig = toml::from_str(&toml).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn config_parses_and_rejects_unknown_keys() {
        let cfg: DirectConfig = toml::from_str(
            r#"
            cache_dir = "/tmp/x"
            refs_ttl = "30s"
            allowed_protocols = ["git"]
            [[credentials]]
            host = "git.corp.example.com"
            token = "t"
            [[repos]]
            pattern = "git.corp.example.com/*/*"
            url = "https://git.corp.example.com/{rest}.git"
            "#,
        )
        .unwrap();
        assert_eq!(cfg.refs_ttl, Duration::from_secs(30));
        assert_eq!(cfg.credentials[0].username, "oauth2");
        assert!(toml::from_str::<DirectConfig>("cache_dri = \"x\"").is_err());

        let bad = DirectConfig {
            allowed_protocols: vec!["file".into()],
            ..DirectConfig::default()
        };
        assert!(bad.resolve().unwrap_err().to_string().contains("never"));
    }
}
