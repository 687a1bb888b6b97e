//! Checks on what upstream sends, before anything is stored or served.
//!
//! Each check mirrors what the go command itself would reject, so that the proxy never caches
//! an answer a client would refuse.

use gomod::{ModulePath, Version};

use crate::versions;

/// `.info` of a canonical version: must name exactly that version.
pub(crate) fn info_for(version: &Version, body: &[u8]) -> Result<(), String> {
    gomod::revinfo::check_for(version, body)
}

/// `.info` of a query, or `@latest`: must name a canonical version of `module`.
pub(crate) fn info_of(module: &ModulePath, body: &[u8]) -> Result<Version, String> {
    gomod::revinfo::check_of(module, body)
}

/// `.mod`: UTF-8 text that parses as a dependency's go.mod, with a `module` line declaring a
/// path of `module`'s major version, as the go command reads one (a client would refuse
/// anything else). Its bytes are hashed by clients, so it is stored exactly as received.
pub(crate) fn go_mod(module: &ModulePath, body: &[u8]) -> Result<(), String> {
    gomod::modfile::check_module_go_mod(module, body)
}

/// `@v/list`: keeps the canonical, non-pseudo versions (first field of each line), in upstream
/// order without duplicates, one per line, that belong to `module` (no `v2.0.0` for a path
/// without `/v2`). Anything else on a line is dropped, as the go command would ignore it.
pub(crate) fn list(module: &ModulePath, body: &[u8]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
