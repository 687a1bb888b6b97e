//! The `!` case-escaping of module paths and versions (`module.EscapePath` and friends).
//!
//! Proxy URLs and cache directories must never need two spellings that differ only in case, so
//! every upper-case ASCII letter `X` is written `!x`: `github.com/Azure/go` ↔
//! `github.com/!azure/go`. Module paths and versions are ASCII and never contain `!`, so the
//! mapping is one-to-one; anything else in escaped input (upper case, `!` not before a lower-case
//! letter, a trailing `!`, non-ASCII) is rejected.

//!
//! The raw mapping lives in `case_escape` (it validates nothing); the checking forms
//! ([`escape_path`], [`unescape_path`], [`escape_version`], [`unescape_version`]) are part of the
//! path rules in [`crate::module`] and re-exported here, so the two files never depend on each
//! other.

pub use crate::case_escape::{escape, unescape};
pub use crate::module::{escape_path, escape_version, unescape_path, unescape_version};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

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
