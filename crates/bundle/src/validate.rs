//! Checks of the small objects (`.info`, `.mod`, `list`, `@latest`, `.ziphash`) before they are
//! stored. They accept what the proxy itself stores (see `gomodproxy-service`'s upstream checks,
//! which these mirror) and what the go command writes into `$GOMODCACHE/cache/download`.

use base64::Engine as _;
use gomod::{ModulePath, Version};

/// Largest `.info`, `@latest`, `list`, lookup or tree head accepted, in bytes.
pub const MAX_SMALL: u64 = 1 << 20;

/// Largest `.mod` accepted (the go command's limit for a go.mod).
pub const MAX_MOD: u64 = gomod::zipfile::MAX_GO_MOD;

/// `<module>/@v/<version>.info`: JSON whose `Version` is exactly `version`.
pub fn info(version: &Version, body: &[u8]) -> Result<(), String> {
    gomod::revinfo::check_for(version, body)
}

/// `<module>/@latest`: info JSON naming a version of `module`.
pub fn latest(module: &ModulePath, body: &[u8]) -> Result<Version, String> {
    gomod::revinfo::check_of(module, body)
}

/// `.mod` of `module`: a go.mod the go command would use for it, as serving checks it
/// ([`gomod::modfile::check_module_go_mod`]: it parses, has a `module` line, and declares a path
/// of the same major version).
pub fn go_mod(module: &ModulePath, body: &[u8]) -> Result<(), String> {
    gomod::modfile::check_module_go_mod(module, body)
}

/// `<module>/@v/list`: UTF-8 lines, each blank or a canonical version of `module`, optionally
/// followed by one more field (a time, as the protocol allows). The proxy stores only tagged
/// versions; the go command's own list files also hold the pseudo-versions it downloaded, which
/// are accepted too (the go command ignores them in a list).
pub fn list(module: &ModulePath, body: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|_| "list is not UTF-8".to_string())?;
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else {
            continue;
        };
        let version =
            Version::parse(first).map_err(|e| format!("line {}: {first:?}: {e}", i + 1))?;
        module.check_version(&version).map_err(|e| {
            format!(
                "line {}: {version} is not a version of {module}: {e}",
                i + 1
            )
        })?;
        if fields.nth(1).is_some() {
            return Err(format!("line {}: more than two fields", i + 1));
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
pub fn ziphash(body: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(body)
        .map_err(|_| "not UTF-8".to_string())?
        .trim();
    let b64 = text
        .strip_prefix("h1:")
        .ok_or_else(|| format!("{:?} is not an h1: hash", excerpt(text)))?;
    match base64::engine::general_purpose::STANDARD.decode(b64) {
        Ok(d) if d.len() == 32 => Ok(text.to_string()),
        _ => Err(format!("{:?} is not an h1: hash", excerpt(text))),
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
    fn info_must_name_the_version() {
        let v = Version::parse("v1.2.3").unwrap();
        assert!(info(&v, br#"{"Version":"v1.2.3","Time":"2023-01-02T03:04:05Z"}"#).is_ok());
        assert!(info(&v, br#"{"version":"v1.2.3"}"#).is_ok());
        assert!(
            info(&v, br#"{"Version":"v1.2.4"}"#)
                .unwrap_err()
                .contains("info is for version v1.2.4 instead of the requested v1.2.3")
        );
        assert!(info(&v, br#"{"Version":"v1.2.3","Time":"noon"}"#).is_err());
        assert!(info(&v, b"v1.2.3").is_err());
    }

    #[test]
    fn lists_hold_versions_of_the_module() {
        let mod1 = m("example.com/m");
        assert!(list(&mod1, b"").is_ok());
        assert!(
            list(
                &mod1,
                b"v1.0.0\nv1.1.0 2023-01-02T03:04:05Z\n\nv0.0.0-20230102030405-abcdefabcdef\n"
            )
            .is_ok()
        );
        assert!(list(&mod1, b"v2.0.0\n").is_err());
        assert!(list(&mod1, b"v1.0\n").is_err());
        assert!(list(&mod1, b"<html>\n").is_err());
        assert!(list(&mod1, b"v1.0.0 a b\n").is_err());
        assert!(list(&mod1, &[0xff]).is_err());
        assert!(latest(&mod1, br#"{"Version":"v1.0.0"}"#).is_ok());
        assert!(latest(&mod1, br#"{"Version":"v2.0.0"}"#).is_err());
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
