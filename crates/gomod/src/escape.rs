//! The `!` case-escaping of module paths and versions (`module.EscapePath` and friends).
//!
//! Proxy URLs and cache directories must never need two spellings that differ only in case, so
//! every upper-case ASCII letter `X` is written `!x`: `github.com/Azure/go` ↔
//! `github.com/!azure/go`. Module paths and versions are ASCII and never contain `!`, so the
//! mapping is one-to-one; anything else in escaped input (upper case, `!` not before a lower-case
//! letter, a trailing `!`, non-ASCII) is rejected.

use crate::Error;
use crate::error::excerpt;
use crate::module::{self, Kind};

/// Escapes upper case as `!` + lower case. Infallible; use [`escape_path`] or
/// [`escape_version`] to validate at the same time.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Reverses [`escape`], rejecting anything [`escape`] could not have produced from an ASCII
/// string without `!`.
pub fn unescape(s: &str) -> Result<String, Error> {
    let bad = |reason: &str| Error::InvalidEscape {
        input: excerpt(s),
        reason: reason.into(),
    };
    let mut out = String::with_capacity(s.len());
    let mut bang = false;
    for c in s.chars() {
        if !c.is_ascii() {
            return Err(bad("non-ASCII character"));
        }
        if bang {
            if !c.is_ascii_lowercase() {
                return Err(bad("'!' not followed by a lower-case letter"));
            }
            out.push(c.to_ascii_uppercase());
            bang = false;
        } else if c == '!' {
            bang = true;
        } else if c.is_ascii_uppercase() {
            return Err(bad("unescaped upper-case letter"));
        } else {
            out.push(c);
        }
    }
    if bang {
        return Err(bad("trailing '!'"));
    }
    Ok(out)
}

/// Validates a module path (`module.CheckPath`) and escapes it (`module.EscapePath`).
pub fn escape_path(path: &str) -> Result<String, Error> {
    module::check_path(path)?;
    Ok(escape(path))
}

/// Unescapes a module path and validates the result (`module.UnescapePath`).
pub fn unescape_path(escaped: &str) -> Result<String, Error> {
    let path = unescape(escaped)?;
    module::check_path(&path)?;
    Ok(path)
}

/// Escapes a version string (`module.EscapeVersion`).
///
/// Versions here may be any query the go command sends (`master`, `v1.2`), not just semantic
/// versions, but they must be a single valid file name element and contain no `!` — in
/// particular no `/`.
pub fn escape_version(v: &str) -> Result<String, Error> {
    check_version_elem(v)?;
    if v.contains('!') {
        return Err(disallowed_version(v, "contains '!'"));
    }
    Ok(escape(v))
}

/// Unescapes a version string and validates the result (`module.UnescapeVersion`).
pub fn unescape_version(escaped: &str) -> Result<String, Error> {
    let v = unescape(escaped)?;
    check_version_elem(&v)?;
    Ok(v)
}

fn check_version_elem(v: &str) -> Result<(), Error> {
    if !v.is_ascii() {
        // x/mod's escapeString refuses non-ASCII even though file names allow letters.
        return Err(disallowed_version(v, "non-ASCII character"));
    }
    module::check_elem(v, Kind::File).map_err(|reason| disallowed_version(v, &reason))
}

fn disallowed_version(v: &str, reason: &str) -> Error {
    Error::InvalidVersion {
        version: excerpt(v),
        reason: format!("disallowed version string: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (unescaped, escaped) pairs, including x/mod's own examples.
    const PAIRS: &[(&str, &str)] = &[
        (
            "github.com/Azure/azure-sdk-for-go",
            "github.com/!azure/azure-sdk-for-go",
        ),
        (
            "github.com/GoogleCloudPlatform/cloudsql-proxy",
            "github.com/!google!cloud!platform/cloudsql-proxy",
        ),
        ("github.com/Sirupsen/logrus", "github.com/!sirupsen/logrus"),
        ("github.com/sirupsen/logrus", "github.com/sirupsen/logrus"),
        ("rsc.io/QUOTE", "rsc.io/!q!u!o!t!e"),
        ("golang.org/x/text", "golang.org/x/text"),
    ];

    #[test]
    fn round_trips() {
        for (plain, esc) in PAIRS {
            assert_eq!(escape(plain), *esc);
            assert_eq!(unescape(esc).unwrap(), *plain);
            assert_eq!(escape_path(plain).unwrap(), *esc);
            assert_eq!(unescape_path(esc).unwrap(), *plain);
        }
    }

    #[test]
    fn unescape_rejects() {
        for bad in [
            "github.com/Azure/x",
            "github.com/!Azure/x",
            "github.com/!!azure",
            "github.com/!1x",
            "github.com/!-x",
            "github.com/x!",
            "!",
            "github.com/caf\u{e9}",
        ] {
            let err = unescape(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidEscape { .. }), "{bad}: {err:?}");
        }
    }

    #[test]
    fn unescape_path_validates() {
        assert!(unescape_path("github.com/!azure/x").is_ok());
        assert!(
            unescape_path("!github.com/x").is_err(),
            "upper case in host"
        );
        assert!(unescape_path("github.com/../x").is_err());
        assert!(unescape_path("example.com/x/v1").is_err());
    }

    #[test]
    fn versions() {
        assert_eq!(escape_version("v1.2.3").unwrap(), "v1.2.3");
        assert_eq!(escape_version("v1.0.0-RC1").unwrap(), "v1.0.0-!r!c1");
        assert_eq!(escape_version("Master").unwrap(), "!master");
        assert_eq!(unescape_version("v1.0.0-!r!c1").unwrap(), "v1.0.0-RC1");
        assert_eq!(
            unescape_version("v1.2.3+incompatible").unwrap(),
            "v1.2.3+incompatible"
        );
        for bad in [
            "feature/x",
            "v1!",
            "",
            "..",
            "v1.",
            "con",
            "a*b",
            "caf\u{e9}",
            "a\nb",
        ] {
            assert!(escape_version(bad).is_err(), "escape_version({bad:?})");
        }
        for bad in ["feature/x", "..", "v1.", "!a!", "V1", "nul.txt"] {
            assert!(unescape_version(bad).is_err(), "unescape_version({bad:?})");
        }
    }
}
