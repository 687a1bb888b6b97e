//! The checks of the small objects (`.info`, `.mod`, `list`, `@latest`, `.ziphash`) before
//! anything is stored: what upstream sends (serving) and what an import brings
//! (`gomodproxy-bundle`), one copy of each rule.
//!
//! Each check mirrors what the go command itself would reject, so that the proxy never caches
//! an answer a client would refuse; the rules themselves are `gomod`'s. A refusal is an
//! [`Invalid`]: one line saying why.

use std::fmt;
use std::ops::Deref;

use base64::Engine as _;
use gomod::{ModulePath, Version};

use crate::versions;

/// Why an object is refused, in one line fit for a client or a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(String);

impl Invalid {
    fn new(reason: impl Into<String>) -> Invalid {
        Invalid(reason.into())
    }

    /// The reason.
    pub fn reason(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

/// The reason reads as text wherever a `&str` is expected (a log field, a message argument).
impl Deref for Invalid {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<Invalid> for String {
    fn from(invalid: Invalid) -> String {
        invalid.0
    }
}

/// `.info` of a canonical version: JSON whose `Version` is exactly `version`.
pub fn info_for(version: &Version, body: &[u8]) -> Result<(), Invalid> {
    gomod::revinfo::check_for(version, body).map_err(|e| Invalid::new(e.to_string()))
}

/// `.info` of a query, or `@latest`: info JSON naming a canonical version of `module`.
pub fn info_of(module: &ModulePath, body: &[u8]) -> Result<Version, Invalid> {
    gomod::revinfo::check_of(module, body).map_err(|e| Invalid::new(e.to_string()))
}

/// `.mod`: UTF-8 text that parses as a dependency's go.mod, with a `module` line declaring a
/// path of `module`'s major version, as the go command reads one
/// ([`gomod::modfile::check_module_go_mod`]; a client would refuse anything else). Its bytes are
/// hashed by clients, so it is stored exactly as received.
pub fn go_mod(module: &ModulePath, body: &[u8]) -> Result<(), Invalid> {
    gomod::modfile::check_module_go_mod(module, body).map_err(|e| Invalid::new(e.to_string()))
}

/// `@v/list` from upstream, normalized: keeps the canonical, non-pseudo versions (first field of
/// each line), in upstream order without duplicates, one per line, that belong to `module` (no
/// `v2.0.0` for a path without `/v2`). Anything else on a line is dropped, as the go command
/// would ignore it.
pub fn list(module: &ModulePath, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut seen = std::collections::HashSet::new();
    let mut out = String::new();
    for line in text.split('\n') {
        let Some(field) = line.split_whitespace().next() else {
            continue;
        };
        let Ok(version) = Version::parse(field) else {
            continue;
        };
        if versions::is_pseudo(&version)
            || module.check_version(&version).is_err()
            || !seen.insert(version.as_str().to_string())
        {
            continue;
        }
        out.push_str(version.as_str());
        out.push('\n');
    }
    out
}

/// `@v/list` as stored (an import's source), checked strictly: UTF-8 lines, each blank or a
/// canonical version of `module`, optionally followed by one more field (a time, as the
/// protocol allows). The proxy stores only tagged versions; the go command's own list files
/// also hold the pseudo-versions it downloaded, which are accepted too (the go command ignores
/// them in a list).
pub fn check_list(module: &ModulePath, body: &[u8]) -> Result<(), Invalid> {
    let text = std::str::from_utf8(body).map_err(|_| Invalid::new("list is not UTF-8"))?;
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else {
            continue;
        };
        let version = Version::parse(first)
            .map_err(|e| Invalid(format!("line {}: {first:?}: {e}", i + 1)))?;
        module.check_version(&version).map_err(|e| {
            Invalid(format!(
                "line {}: {version} is not a version of {module}: {e}",
                i + 1
            ))
        })?;
        if fields.nth(1).is_some() {
            return Err(Invalid(format!("line {}: more than two fields", i + 1)));
        }
    }
    Ok(())
}

/// The versions of a list body (first fields), for merging lists.
pub fn list_versions(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// A `.ziphash` body: `h1:` + base64 of a SHA-256, surrounding white space ignored. Returns the
/// hash text.
pub fn ziphash(body: &[u8]) -> Result<String, Invalid> {
    let text = std::str::from_utf8(body)
        .map_err(|_| Invalid::new("not UTF-8"))?
        .trim();
    let not_h1 = || Invalid(format!("{:?} is not an h1: hash", excerpt(text)));
    let b64 = text.strip_prefix("h1:").ok_or_else(not_h1)?;
    match base64::engine::general_purpose::STANDARD.decode(b64) {
        Ok(d) if d.len() == 32 => Ok(text.to_string()),
        _ => Err(not_h1()),
    }
}

fn excerpt(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str) -> ModulePath {
        ModulePath::parse(p).unwrap()
    }

    #[test]
    fn go_mod_must_be_text() {
        let m = ModulePath::parse("example.com/m").unwrap();
        assert!(go_mod(&m, b"module example.com/m\n").is_ok());
        assert!(go_mod(&m, &[0xff, 0xfe]).is_err());
    }

    #[test]
    fn list_keeps_tagged_canonical_versions() {
        let body = b"v1.0.0\nv1.1.0 2023-01-02T03:04:05Z\n\nnot-a-version\nv0.0.0-20230102030405-abcdefabcdef\n\
                     v1.0.0\nv1.2\nv2.0.0+incompatible\r\nv2.0.0\nv1.0.1+incompatible\n";
        let m = ModulePath::parse("example.com/m").unwrap();
        assert_eq!(list(&m, body), "v1.0.0\nv1.1.0\nv2.0.0+incompatible\n");
        assert_eq!(list(&m, b""), "");
        let m2 = ModulePath::parse("example.com/m/v2").unwrap();
        assert_eq!(
            list(&m2, b"v1.0.0\nv2.1.0\nv2.0.0+incompatible\n"),
            "v2.1.0\n"
        );
    }

    // Moved from gomodproxy-bundle's validate.rs (the import's checks), with the functions'
    // names of this module.
    #[test]
    fn info_must_name_the_version() {
        let v = Version::parse("v1.2.3").unwrap();
        assert!(info_for(&v, br#"{"Version":"v1.2.3","Time":"2023-01-02T03:04:05Z"}"#).is_ok());
        assert!(info_for(&v, br#"{"version":"v1.2.3"}"#).is_ok());
        assert!(
            info_for(&v, br#"{"Version":"v1.2.4"}"#)
                .unwrap_err()
                .contains("info is for version v1.2.4 instead of the requested v1.2.3")
        );
        assert!(info_for(&v, br#"{"Version":"v1.2.3","Time":"noon"}"#).is_err());
        assert!(info_for(&v, b"v1.2.3").is_err());
    }

    #[test]
    fn lists_hold_versions_of_the_module() {
        let mod1 = m("example.com/m");
        assert!(check_list(&mod1, b"").is_ok());
        assert!(
            check_list(
                &mod1,
                b"v1.0.0\nv1.1.0 2023-01-02T03:04:05Z\n\nv0.0.0-20230102030405-abcdefabcdef\n"
            )
            .is_ok()
        );
        assert!(check_list(&mod1, b"v2.0.0\n").is_err());
        assert!(check_list(&mod1, b"v1.0\n").is_err());
        assert!(check_list(&mod1, b"<html>\n").is_err());
        assert!(check_list(&mod1, b"v1.0.0 a b\n").is_err());
        assert!(check_list(&mod1, &[0xff]).is_err());
        assert!(info_of(&mod1, br#"{"Version":"v1.0.0"}"#).is_ok());
        assert!(info_of(&mod1, br#"{"Version":"v2.0.0"}"#).is_err());
    }

    #[test]
    fn go_mod_and_ziphash() {
        let m = ModulePath::parse("example.com/m").unwrap();
        assert!(go_mod(&m, b"module example.com/m\n\ngo 1.21\n").is_ok());
        assert!(go_mod(&m, b"module example.com/m\nrequire (\n").is_err());
        assert!(go_mod(&m, &[0xff]).is_err());
        assert!(go_mod(&m, b"go 1.21\n").is_err());
        let h = "h1:w5fcysjrx7yqtD/aO+QwRjYZOKnaM9Uh2b40tElTs3Y=";
        assert_eq!(ziphash(format!("{h}\n").as_bytes()).unwrap(), h);
        assert!(ziphash(b"h1:AAAA").is_err());
        assert!(ziphash(b"sha256:abc").is_err());
    }
}
