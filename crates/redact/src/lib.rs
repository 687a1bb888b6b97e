//! The one place gomodproxy hides secrets before anything is printed.
//!
//! Every string that can reach a response body, a log line, a metric or `config check` and that
//! may carry a credential goes through here:
//!
//! - [`url`] redacts one URL: the password of `user:password@` userinfo (a lone userinfo, which
//!   is usually a token as in `https://TOKEN@host`, entirely) and the value of every query
//!   parameter except a few known to be harmless ([`HARMLESS_QUERY_KEYS`]);
//! - [`text`] redacts every URL inside free text (an error message of a library that quotes the
//!   URL it failed on);
//! - [`Secret`] holds a value that must never be printed at all (an S3 secret key, a token): its
//!   `Debug` and `Display` show [`REDACTED`], and the value is reached only through
//!   [`Secret::expose`].
//!
//! Design decision: query values are hidden unless known harmless (deny by default), because the
//! names of token parameters are not standard (`pass`, `token`, `X-Amz-Signature`, `sig`, …) and
//! a missed one is a leaked credential, while a hidden `db=1` only costs a little detail.
//!
//! Depends on no crate of this workspace: every crate that prints may use it.

#![deny(missing_docs)]

use std::fmt;

/// What a hidden value is shown as.
pub const REDACTED: &str = "***";

/// Query parameters whose values are shown as they are: they select, they do not authenticate.
pub const HARMLESS_QUERY_KEYS: &[&str] = &["db", "protocol", "timeout", "region", "go-get"];

/// `url` with its credentials replaced by [`REDACTED`]; a string that is not a URL (no `://`)
/// comes back unchanged.
///
/// ```
/// use gomodproxy_redact::url;
/// assert_eq!(url("https://user:pw@proxy.example/p?token=t"), "https://user:***@proxy.example/p?token=***");
/// assert_eq!(url("https://ghp_token@github.com/acme"), "https://***@github.com/acme");
/// assert_eq!(url("redis+unix:///run/redis.sock?db=1&pass=x"), "redis+unix:///run/redis.sock?db=1&pass=***");
/// assert_eq!(url("/var/lib/gomodproxy"), "/var/lib/gomodproxy");
/// ```
pub fn url(url: &str) -> String {
    match url.find("://") {
        Some(at) if is_scheme(&url[..at]) => {
            let mut out = String::with_capacity(url.len());
            out.push_str(&url[..at + 3]);
            redact_after_scheme(&url[at + 3..], &mut out);
            out
        }
        _ => url.to_string(),
    }
}

/// [`text`], and then every occurrence of one of `secrets` (configured tokens that may appear
/// in a tool's output without a URL around them) replaced by [`REDACTED`]. Secrets shorter than
/// four bytes are skipped: replacing them would mangle ordinary text without protecting
/// anything.
///
/// ```
/// use gomodproxy_redact::scrub;
/// assert_eq!(scrub("token abcd1234 leaked", &["abcd1234"]), "token *** leaked");
/// ```
pub fn scrub<S: AsRef<str>>(text: &str, secrets: &[S]) -> String {
    let mut out = self::text(text);
    for secret in secrets {
        let secret = secret.as_ref();
        if secret.len() >= 4 && out.contains(secret) {
            out = out.replace(secret, REDACTED);
        }
    }
    out
}

/// `text` with every URL in it passed through [`url`]. A URL ends at whitespace or at one of
/// `"'<>()[]{}` (how messages usually quote them), and trailing `,.;:!` are left out of it, so
/// the rest of the text is kept.
///
/// ```
/// use gomodproxy_redact::text;
/// assert_eq!(
///     text("error sending request for url (http://u:pw@127.0.0.1:9/x): connection refused"),
///     "error sending request for url (http://u:***@127.0.0.1:9/x): connection refused",
/// );
/// ```
pub fn text(text: &str) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // Walk back over the scheme.
        let scheme_start = rest[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map_or(at, |(i, _)| i);
        let mut end = rest[at + 3..]
            .find(|c: char| c.is_whitespace() || "\"'<>()[]{}`".contains(c))
            .map_or(rest.len(), |i| at + 3 + i);
        // Sentence punctuation right after a URL is not part of it.
        while end > at + 3 && rest[..end].ends_with([',', '.', ';', ':', '!']) {
            end -= 1;
        }
        out.push_str(&rest[..scheme_start]);
        if scheme_start < at {
            out.push_str(&url(&rest[scheme_start..end]));
        } else {
            // `://` with no scheme before it: not a URL; keep it and look further.
            out.push_str(&rest[scheme_start..at + 3]);
            rest = &rest[at + 3..];
            continue;
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Redacts `authority/path?query#fragment` (everything after `scheme://`) into `out`.
fn redact_after_scheme(rest: &str, out: &mut String) {
    let (before_fragment, fragment) = match rest.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (rest, None),
    };
    let (before_query, query) = match before_fragment.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (before_fragment, None),
    };
    let authority_end = before_query.find('/').unwrap_or(before_query.len());
    let (authority, path) = before_query.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(REDACTED);
                }
                None => out.push_str(REDACTED),
            }
            out.push('@');
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
    out.push_str(path);
    if let Some(query) = query {
        out.push('?');
        for (i, param) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match param.split_once('=') {
                Some((name, _)) if !is_harmless(name) => {
                    out.push_str(name);
                    out.push('=');
                    out.push_str(REDACTED);
                }
                _ => out.push_str(param),
            }
        }
    }
    if fragment.is_some() {
        out.push('#');
        out.push_str(REDACTED);
    }
}

fn is_harmless(name: &str) -> bool {
    HARMLESS_QUERY_KEYS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(name))
}

/// A value that must never be printed: its `Debug` and `Display` show [`REDACTED`] (or nothing
/// when it is empty, so that "not set" stays visible).
///
/// With the `serde` feature it deserializes from a plain string and serializes as the value
/// itself (configuration written back must load again); printing a configuration for people is
/// the caller's job to redact (`config check` replaces every set secret).
#[derive(Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself: only for handing it to the thing that needs it (a header, a client).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no value is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(\"\")")
        } else {
            write!(f, "Secret({REDACTED})")
        }
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            f.write_str(REDACTED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let cases = [
            ("http://user:pw@host:1/p", "http://user:***@host:1/p"),
            ("http://:pw@host", "http://:***@host"),
            ("http://a:b:c@host/0", "http://a:***@host/0"),
            ("https://tok@host", "https://***@host"),
            ("http://host/p", "http://host/p"),
            ("http://host/p?token=t&db=2", "http://host/p?token=***&db=2"),
            ("http://host/p?flag", "http://host/p?flag"),
            (
                "http://host/p?X-Amz-Signature=s#frag",
                "http://host/p?X-Amz-Signature=***#***",
            ),
            (
                "redis://u:p@h/0?password=x",
                "redis://u:***@h/0?password=***",
            ),
            ("file:///srv/mirror", "file:///srv/mirror"),
            ("not a url", "not a url"),
            (
                "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
                "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
            ),
            // An `@` in the path is not userinfo.
            (
                "https://host/m/@v/v1.0.0.zip",
                "https://host/m/@v/v1.0.0.zip",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(url(input), want, "{input}");
        }
    }

    #[test]
    fn text_finds_every_url() {
        assert_eq!(
            text("upstream \"http://u:secret@a/x\" and https://tok@b/y?pass=z, then more"),
            "upstream \"http://u:***@a/x\" and https://***@b/y?pass=***, then more"
        );
        assert_eq!(text("no urls here"), "no urls here");
        assert_eq!(text("weird ://u:p@h"), "weird ://u:p@h");
        assert_eq!(text("sumdb key https://u:p@h"), "sumdb key https://u:***@h");
        for secret in ["secret", "tok", "z"] {
            assert!(
                !text("x http://u:secret@a https://tok@b c://d?pass=z")
                    .contains(&format!("{secret}@"))
            );
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{}", Secret::default()), "");
    }
}
