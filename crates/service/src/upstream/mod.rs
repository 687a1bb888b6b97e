//! Where answers come from: the upstream chain in GOPROXY syntax ([`UpstreamChain`]), module
//! path patterns ([`ModulePatterns`]) and per-pattern routes to chains of their own ([`Route`]).
//! Each is parsed once, from configuration, into a type.
//!
//! The chain rules follow the go command (`cmd/go/internal/modfetch/proxy.go`): the separator
//! *after* an entry decides whether a failure of that entry falls through to the next one (`,`
//! only on "not found", `|` on any error); an entry containing `.`, `:` or `/` but no `:/` gets
//! `https://` prepended; `direct` fetches from version control; `off` ends the chain; trailing
//! `/` is trimmed.

mod credentials;
mod patterns;
mod routes;

pub(crate) use credentials::Authorization;
pub use credentials::{CredentialEntry, CredentialError, UpstreamCredentials};
pub use patterns::{ModulePatterns, PatternError};
pub use routes::{Route, RouteError, Routes};

use std::fmt;
use std::path::PathBuf;

use gomodproxy_redact::Secret;
use reqwest::Url;

/// Where one entry of the chain gets its answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// A GOPROXY over HTTP(S).
    Http(HttpSource),
    /// A directory in GOPROXY layout (`file:///dir`).
    File(PathBuf),
    /// `direct`: the module's version control repository (`gomodproxy_vcs`).
    Direct,
    /// `off`: every lookup fails as "not found", like `GOPROXY=off` in the go command.
    Off,
}

/// An HTTP(S) upstream. Credentials given as URL userinfo (`https://user:token@host`) are taken
/// out of the URL when it is parsed and sent as HTTP basic auth, so that no URL the HTTP client
/// sees (and quotes in its errors) holds them; `Display` shows the URL with the password
/// redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpSource {
    /// The base URL without userinfo and without a trailing `/`.
    pub(crate) base: Url,
    /// Basic-auth credentials from the URL's userinfo.
    pub(crate) auth: Option<BasicAuth>,
}

/// A user name and password sent as HTTP basic auth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BasicAuth {
    pub(crate) username: String,
    pub(crate) password: Secret,
}

impl HttpSource {
    /// `host:port` of the base URL: the unit of the per-host fetch limit.
    pub(crate) fn host_port(&self) -> String {
        let host = self.base.host_str().unwrap_or_default();
        match self.base.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Http(http) => {
                // Url keeps a lone `/` path for bare hosts; show what the user configured.
                let base = http.base.as_str().trim_end_matches('/');
                match &http.auth {
                    None => f.write_str(base),
                    Some(_) => {
                        let (scheme, rest) = base.split_once("://").unwrap_or(("", base));
                        write!(f, "{scheme}://{}@{rest}", gomodproxy_redact::REDACTED)
                    }
                }
            }
            Source::File(dir) => write!(f, "file://{}", dir.display()),
            Source::Direct => f.write_str("direct"),
            Source::Off => f.write_str("off"),
        }
    }
}

/// One entry of the chain and what to do when it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Where to ask.
    pub(crate) source: Source,
    /// True when the entry was followed by `|`: fall through to the next on any error, not only
    /// on "not found".
    pub(crate) fall_back_on_error: bool,
}

/// The upstream chain, in order, as parsed from GOPROXY syntax
/// (`https://proxy.golang.org,direct`, `https://a|file:///srv/mirror`, `off`).
///
/// `Display` and `Debug` show it with every credential redacted; serialized it is the text it
/// was parsed from, so a configuration written back loads again.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamChain {
    spec: String,
    pub(crate) entries: Vec<Entry>,
}

/// Why an upstream chain does not parse. The message quotes the chain with its credentials
/// redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UpstreamError(String);

impl UpstreamChain {
    /// Parses a GOPROXY-style list. An empty list is allowed here; the service decides whether
    /// the mode needs an upstream.
    pub fn parse(spec: &str) -> Result<UpstreamChain, UpstreamError> {
        Chain::parse(spec)
            .map(|chain| UpstreamChain {
                spec: spec.trim().to_string(),
                entries: chain.entries,
            })
            .map_err(UpstreamError)
    }

    /// `https://proxy.golang.org`, the default.
    pub fn proxy_golang_org() -> UpstreamChain {
        // A constant of ours; the unit tests parse it.
        UpstreamChain::parse("https://proxy.golang.org").expect("the default upstream parses")
    }

    /// Whether the chain has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether an entry is `direct` (the service then needs its version-control source).
    pub fn uses_direct(&self) -> bool {
        self.entries.iter().any(|e| e.source == Source::Direct)
    }

    /// The text it was parsed from (with any credentials: for configuration files only).
    pub fn as_spec(&self) -> &str {
        &self.spec
    }
}

/// Compares with the text it was parsed from (`chain == "https://proxy.golang.org"`).
impl PartialEq<&str> for UpstreamChain {
    fn eq(&self, other: &&str) -> bool {
        self.spec == other.trim()
    }
}

impl std::str::FromStr for UpstreamChain {
    type Err = UpstreamError;
    fn from_str(s: &str) -> Result<Self, UpstreamError> {
        UpstreamChain::parse(s)
    }
}

impl fmt::Display for UpstreamChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&gomodproxy_redact::text(&self.spec))
    }
}

impl fmt::Debug for UpstreamChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UpstreamChain({:?})",
            gomodproxy_redact::text(&self.spec)
        )
    }
}

impl serde::Serialize for UpstreamChain {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.spec)
    }
}

impl<'de> serde::Deserialize<'de> for UpstreamChain {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spec = String::deserialize(deserializer)?;
        UpstreamChain::parse(&spec).map_err(serde::de::Error::custom)
    }
}

/// The parsed upstream chain, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Chain {
    pub(crate) entries: Vec<Entry>,
}

impl Chain {
    /// Parses a GOPROXY-style list. An empty list is allowed here; the caller decides whether
    /// the mode needs an upstream.
    pub(crate) fn parse(spec: &str) -> Result<Chain, String> {
        // Messages quote the spec: never with its credentials.
        let shown = gomodproxy_redact::text(spec);
        let mut entries = Vec::new();
        let mut rest = spec;
        while !rest.is_empty() {
            let (item, fall_back_on_error) = match rest.find([',', '|']) {
                Some(i) => {
                    let item = &rest[..i];
                    let sep = rest.as_bytes()[i];
                    rest = &rest[i + 1..];
                    (item, sep == b'|')
                }
                None => {
                    let item = rest;
                    rest = "";
                    (item, false)
                }
            };
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            match item {
                "off" => {
                    // Like the go command: `off` always fails hard, so nothing after it is
                    // reachable.
                    entries.push(Entry {
                        source: Source::Off,
                        fall_back_on_error,
                    });
                    break;
                }
                "direct" => {
                    entries.push(Entry {
                        source: Source::Direct,
                        fall_back_on_error,
                    });
                    continue;
                }
                "noproxy" => {
                    return Err(format!(
                        "upstream {shown:?}: \"noproxy\" is not a valid upstream"
                    ));
                }
                _ => {}
            }
            let source = parse_source(item).map_err(|e| format!("upstream {shown:?}: {e}"))?;
            entries.push(Entry {
                source,
                fall_back_on_error,
            });
        }
        Ok(Chain { entries })
    }
}

fn parse_source(raw: &str) -> Result<Source, String> {
    let item = gomodproxy_redact::url(raw);
    let item = item.as_str();
    let mut text = raw.to_string();
    // Single words are reserved for keywords; anything with a scheme or an absolute path must be
    // a full URL; everything else is a host (and path) that gets https://.
    if text.contains(['.', ':', '/']) && !text.contains(":/") && !text.starts_with('/') {
        text = format!("https://{text}");
    }
    if !text.contains(":/") {
        return Err(format!("invalid proxy URL {item:?}: missing scheme"));
    }
    let mut url = Url::parse(&text).map_err(|e| format!("invalid proxy URL {item:?}: {e}"))?;
    match url.scheme() {
        "http" | "https" => {
            if url.host_str().is_none_or(str::is_empty) {
                return Err(format!("invalid proxy URL {item:?}: no host"));
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err(format!(
                    "invalid proxy URL {item:?}: query or fragment not allowed"
                ));
            }
            let path = url.path().trim_end_matches('/').to_string();
            url.set_path(&path);
            let auth = if url.username().is_empty() && url.password().is_none() {
                None
            } else {
                let decode = |s: &str| {
                    percent_decode(s).ok_or_else(|| {
                        format!("invalid proxy URL {item:?}: userinfo is not valid percent-encoded UTF-8")
                    })
                };
                let username = decode(url.username())?;
                let password = Secret::new(decode(url.password().unwrap_or(""))?);
                // Both setters only fail for URLs that cannot have credentials (not http(s)).
                let _ = url.set_username("");
                let _ = url.set_password(None);
                Some(BasicAuth { username, password })
            };
            Ok(Source::Http(HttpSource { base: url, auth }))
        }
        "file" => {
            let dir = url
                .to_file_path()
                .map_err(|()| format!("invalid proxy URL {item:?}: not a local absolute path"))?;
            Ok(Source::File(dir))
        }
        other => Err(format!(
            "invalid proxy URL {item:?}: unsupported scheme {other:?}"
        )),
    }
}

/// Percent-decodes URL userinfo (`%40` → `@`); `None` if the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Source {
    /// The URL of `rel` (a GOPROXY-layout path such as `example.com/m/@v/v1.0.0.zip`) on an
    /// HTTP source.
    pub(crate) fn http_url(base: &Url, rel: &str) -> Result<Url, String> {
        let text = format!("{}/{rel}", base.as_str().trim_end_matches('/'));
        Url::parse(&text).map_err(|e| format!("cannot build upstream URL {text:?}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(url: &str) -> Source {
        Source::Http(HttpSource {
            base: Url::parse(url).unwrap(),
            auth: None,
        })
    }

    #[test]
    fn separators_decide_fallthrough() {
        let chain = Chain::parse("https://a.example,https://b.example|https://c.example").unwrap();
        assert_eq!(
            chain.entries,
            vec![
                Entry {
                    source: http("https://a.example"),
                    fall_back_on_error: false
                },
                Entry {
                    source: http("https://b.example"),
                    fall_back_on_error: true
                },
                Entry {
                    source: http("https://c.example"),
                    fall_back_on_error: false
                },
            ]
        );
    }

    #[test]
    fn scheme_is_added_and_slash_trimmed() {
        let chain = Chain::parse("proxy.example.com/sub/ , 127.0.0.1:8080").unwrap();
        assert_eq!(
            chain.entries[0].source.to_string(),
            "https://proxy.example.com/sub"
        );
        assert_eq!(
            chain.entries[1].source.to_string(),
            "https://127.0.0.1:8080"
        );
        let chain = Chain::parse("http://127.0.0.1:1234/").unwrap();
        assert_eq!(chain.entries[0].source.to_string(), "http://127.0.0.1:1234");
    }

    #[test]
    fn file_and_off() {
        let chain = Chain::parse("file:///tmp/x,off,https://never.example").unwrap();
        assert_eq!(chain.entries.len(), 2);
        assert_eq!(
            chain.entries[0].source,
            Source::File(PathBuf::from("/tmp/x"))
        );
        assert_eq!(chain.entries[1].source, Source::Off);
    }

    #[test]
    fn empty_entries_are_skipped() {
        assert_eq!(Chain::parse("").unwrap().entries, vec![]);
        assert_eq!(Chain::parse(" , |").unwrap().entries, vec![]);
    }

    #[test]
    fn direct_is_an_entry() {
        let chain = Chain::parse("https://a.example,direct").unwrap();
        assert_eq!(chain.entries[1].source, Source::Direct);
        assert!(UpstreamChain::parse("direct").unwrap().uses_direct());
        assert!(
            !UpstreamChain::parse("https://a.example")
                .unwrap()
                .uses_direct()
        );
    }

    #[test]
    fn the_typed_chain_round_trips_and_redacts() {
        let chain: UpstreamChain = "https://u:hunter2@a.example,direct".parse().unwrap();
        assert_eq!(chain.to_string(), "https://u:***@a.example,direct");
        assert!(!format!("{chain:?}").contains("hunter2"));
        assert_eq!(chain.as_spec(), "https://u:hunter2@a.example,direct");
        let err = "ftp://u:hunter2@x.example"
            .parse::<UpstreamChain>()
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn invalid_entries_are_rejected() {
        assert!(
            Chain::parse("proxy")
                .unwrap_err()
                .contains("missing scheme")
        );
        assert!(
            Chain::parse("/abs/dir")
                .unwrap_err()
                .contains("missing scheme")
        );
        assert!(
            Chain::parse("ftp://x.example")
                .unwrap_err()
                .contains("unsupported scheme")
        );
        assert!(
            Chain::parse("https://x.example/?a=b")
                .unwrap_err()
                .contains("query")
        );
        assert!(Chain::parse("noproxy").is_err());
    }

    #[test]
    fn credentials_leave_the_url_and_never_print() {
        let chain = Chain::parse("https://alice:hunter%402@proxy.example/sub/").unwrap();
        let Source::Http(http) = &chain.entries[0].source else {
            panic!("not http")
        };
        assert_eq!(http.base.as_str(), "https://proxy.example/sub");
        let auth = http.auth.as_ref().unwrap();
        assert_eq!(auth.username, "alice");
        assert_eq!(auth.password.expose(), "hunter@2");
        let shown = chain.entries[0].source.to_string();
        assert_eq!(shown, "https://***@proxy.example/sub");
        let debug = format!("{:?}", chain.entries[0]);
        assert!(!debug.contains("hunter"), "{debug}");
        // A bad entry after it: the error quotes the spec without the password.
        let err = Chain::parse("https://alice:s3cret@proxy.example,ftp://x.example").unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
        let err = Chain::parse("https://alice:s3cret@proxy.example/?token=t2").unwrap_err();
        assert!(!err.contains("s3cret") && !err.contains("t2"), "{err}");
    }

    #[test]
    fn urls_are_joined_under_the_base_path() {
        let base = Url::parse("https://h.example/sub").unwrap();
        let url = Source::http_url(&base, "example.com/!m/@v/v1.0.0+incompatible.zip").unwrap();
        assert_eq!(
            url.as_str(),
            "https://h.example/sub/example.com/!m/@v/v1.0.0+incompatible.zip"
        );
    }
}
