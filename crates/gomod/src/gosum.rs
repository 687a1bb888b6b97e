//! go.sum parsing, with no I/O.
//!
//! A go.sum line is `path version hash` (the module zip's hash) or `path version/go.mod hash`
//! (the module's go.mod file's hash), fields separated by any Unicode white space. This reader
//! accepts exactly what the go command's (`modfetch.readGoSum`) does:
//!
//! - blank (or all-space) lines are skipped;
//! - any other line must have exactly three fields, or the file is rejected
//!   (`wrong number of fields N`, with the line number; only `go mod tidy` skips such lines);
//! - nothing else is checked: paths and versions are not validated and hashes with prefixes
//!   other than `h1:` are kept (go ignores them when verifying, so future algorithms can be
//!   added). Use [`SumEntry::module`] and [`SumEntry::h1`] to validate what you use;
//! - lines whose hash is [`EMPTY_GO_MOD_HASH`] are dropped, as go does (an old bug wrote them
//!   for non-modules).
//!
//! Bytes that are not UTF-8 are decoded lossily (as U+FFFD, never white space — as in go), so
//! such a line still has its fields but its path cannot pass [`SumEntry::module`].

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::dirhash::H1_PREFIX;
use crate::{Error, ModulePath, Version};

/// The `h1:` hash of an empty go.mod file; go drops go.sum lines with this hash.
pub const EMPTY_GO_MOD_HASH: &str = "h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY=";

/// The suffix of the version field on lines for go.mod files.
const GO_MOD_SUFFIX: &str = "/go.mod";

/// A parsed go.sum file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GoSum {
    /// The entries in file order, duplicates included (a module version may carry several
    /// hashes, e.g. for different algorithms).
    pub entries: Vec<SumEntry>,
}

/// One go.sum line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumEntry {
    /// The module path, as written.
    pub path: String,
    /// The version, as written, without the `/go.mod` suffix.
    pub version: String,
    /// Whether this is the hash of the module's go.mod file (`version/go.mod`) rather than of
    /// its zip.
    pub go_mod: bool,
    /// The hash, as written (`h1:` + base64 of a SHA-256 for every hash go writes today).
    pub hash: String,
    /// 1-based line number.
    pub line: usize,
}

/// Why a go.sum file was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoSumError {
    /// The file name given to the parser.
    pub name: String,
    /// 1-based line of the malformed line.
    pub line: usize,
    /// Why, as one line.
    pub reason: String,
}

impl fmt::Display for GoSumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.name, self.line, self.reason)
    }
}

impl std::error::Error for GoSumError {}

impl GoSum {
    /// Parses a go.sum file as the go command reads one; `name` is used in errors.
    pub fn parse(name: &str, data: &[u8]) -> Result<GoSum, GoSumError> {
        let mut entries = Vec::new();
        for (i, line) in data.split(|&b| b == b'\n').enumerate() {
            let text = String::from_utf8_lossy(line);
            let fields: Vec<&str> = text.split_whitespace().collect();
            let [path, version, hash] = fields[..] else {
                if fields.is_empty() {
                    continue;
                }
                return Err(GoSumError {
                    name: name.to_string(),
                    line: i + 1,
                    reason: format!("wrong number of fields {}", fields.len()),
                });
            };
            if hash == EMPTY_GO_MOD_HASH {
                continue;
            }
            let (version, go_mod) = match version.strip_suffix(GO_MOD_SUFFIX) {
                Some(v) => (v, true),
                None => (version, false),
            };
            entries.push(SumEntry {
                path: path.to_string(),
                version: version.to_string(),
                go_mod,
                hash: hash.to_string(),
                line: i + 1,
            });
        }
        Ok(GoSum { entries })
    }

    /// The hashes recorded for `path@version`'s zip (`go_mod == false`) or go.mod file, in file
    /// order.
    pub fn hashes<'s>(
        &'s self,
        path: &'s str,
        version: &'s str,
        go_mod: bool,
    ) -> impl Iterator<Item = &'s str> + 's {
        self.entries
            .iter()
            .filter(move |e| e.path == path && e.version == version && e.go_mod == go_mod)
            .map(|e| e.hash.as_str())
    }
}

impl SumEntry {
    /// The entry's module path and version, validated as a module a proxy can serve
    /// ([`ModulePath::parse`], [`Version::parse`], and [`ModulePath::check_version`]).
    pub fn module(&self) -> Result<(ModulePath, Version), Error> {
        let path = ModulePath::parse(&self.path)?;
        let version = Version::parse(&self.version)?;
        path.check_version(&version)?;
        Ok((path, version))
    }

    /// The SHA-256 digest of an `h1:` hash; `None` for other algorithms or a malformed hash.
    pub fn h1(&self) -> Option<[u8; 32]> {
        let b64 = self.hash.strip_prefix(H1_PREFIX)?;
        STANDARD.decode(b64).ok()?.try_into().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_suffix() {
        let sum = GoSum::parse(
            "go.sum",
            b"example.com/a v1.0.0 h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\
              \n   \t\n\
              example.com/a\tv1.0.0/go.mod  h2:future\n\
              example.com/b v0.1.0/go.mod h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY=",
        )
        .unwrap();
        assert_eq!(sum.entries.len(), 2);
        let [a, b] = &sum.entries[..] else {
            unreachable!()
        };
        assert_eq!(
            (a.path.as_str(), a.version.as_str(), a.go_mod),
            ("example.com/a", "v1.0.0", false)
        );
        assert_eq!(a.h1(), Some([0; 32]));
        assert_eq!((b.version.as_str(), b.go_mod, b.line), ("v1.0.0", true, 4));
        assert_eq!(b.h1(), None);
        assert_eq!(
            sum.hashes("example.com/a", "v1.0.0", true)
                .collect::<Vec<_>>(),
            ["h2:future"]
        );
    }

    #[test]
    fn wrong_field_count_is_an_error() {
        let e = GoSum::parse("go.sum", b"\na b c\na b\n").unwrap_err();
        assert_eq!(e.to_string(), "go.sum:3: wrong number of fields 2");
        let e = GoSum::parse("x", b"a b c d").unwrap_err();
        assert_eq!((e.line, e.reason.as_str()), (1, "wrong number of fields 4"));
    }

    #[test]
    fn module_validation() {
        let e = |p: &str, v: &str| SumEntry {
            path: p.into(),
            version: v.into(),
            go_mod: false,
            hash: String::new(),
            line: 1,
        };
        assert!(e("example.com/a", "v1.0.0").module().is_ok());
        assert!(e("example.com/a", "v1.0").module().is_err());
        assert!(e("example.com/a/v2", "v1.0.0").module().is_err());
        assert!(e("noDot/a", "v1.0.0").module().is_err());
    }
}
