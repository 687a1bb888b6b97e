//! A repository's refs as `git ls-remote` reports them, read as `codehost/git.go` reads them:
//! `HEAD`, `refs/heads/*` and `refs/tags/*`, annotated tags replaced by the commit they point
//! to; plus the `t1:` tag and `r1:` repository checksums of `codehost.Origin`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine;
use sha2::{Digest, Sha256};

/// Ref name → object hash (commits, for annotated tags the peeled commit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Refs {
    pub map: BTreeMap<String, String>,
}

/// A tag with its (peeled) hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tag {
    pub name: String,
    pub hash: String,
}

impl Refs {
    /// Parses `git ls-remote` output (`<hash>\t<ref>` lines).
    pub fn parse_ls_remote(out: &str) -> Refs {
        let mut map = BTreeMap::new();
        let mut peeled = Vec::new();
        for line in out.split('\n') {
            let mut f = line.split_whitespace();
            let (Some(hash), Some(name), None) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            if !(name == "HEAD"
                || name.starts_with("refs/heads/")
                || name.starts_with("refs/tags/"))
            {
                continue;
            }
            match name.strip_suffix("^{}") {
                Some(tag) => peeled.push((tag.to_string(), hash.to_string())),
                None => {
                    map.insert(name.to_string(), hash.to_string());
                }
            }
        }
        for (tag, hash) in peeled {
            map.insert(tag, hash);
        }
        Refs { map }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map
            .get(name)
            .map(String::as_str)
            .filter(|h| !h.is_empty())
    }

    pub fn head(&self) -> Option<&str> {
        self.get("HEAD")
    }

    /// Length of the repository's object hashes in hex (40 for SHA-1, 64 for SHA-256).
    pub fn hash_len(&self) -> usize {
        match self.map.values().next() {
            Some(h) if h.len() == 64 => 64,
            _ => 40,
        }
    }

    /// Tags starting with `prefix`, sorted by name.
    pub fn tags(&self, prefix: &str) -> Vec<Tag> {
        self.map
            .range(format!("refs/tags/{prefix}")..)
            .take_while(|(k, _)| k.starts_with("refs/tags/") && k[10..].starts_with(prefix))
            .map(|(k, v)| Tag {
                name: k[10..].to_string(),
                hash: v.clone(),
            })
            .collect()
    }

    /// Names of the tags pointing at `hash`.
    pub fn tags_at(&self, hash: &str) -> Vec<String> {
        self.map
            .iter()
            .filter(|(k, v)| k.starts_with("refs/tags/") && v.as_str() == hash)
            .map(|(k, _)| k[10..].to_string())
            .collect()
    }

    /// The `TagSum` of `Origin` for the tags with `prefix` (`(*gitRepo).Tags`).
    pub fn tag_sum(&self, prefix: &str) -> String {
        let dir = match prefix.rfind('/') {
            Some(i) => &prefix[..=i],
            None => "",
        };
        let mut h = Sha256::new();
        for tag in self.tags(prefix) {
            let bare = tag.name.strip_prefix(dir).unwrap_or(&tag.name);
            if is_origin_tag(bare) {
                let mut line = gomod::modfile::quote(&tag.name);
                let _ = writeln!(line, " {}", tag.hash);
                h.update(line.as_bytes());
            }
        }
        format!(
            "t1:{}",
            base64::engine::general_purpose::STANDARD.encode(h.finalize())
        )
    }

    /// The `RepoSum` of `Origin`: a checksum of every ref (`(*gitRepo).repoSum`).
    pub fn repo_sum(&self) -> String {
        let mut h = Sha256::new();
        for (name, hash) in &self.map {
            let mut line = gomod::modfile::quote(name);
            let _ = writeln!(line, " {hash}");
            h.update(line.as_bytes());
        }
        format!(
            "r1:{}",
            base64::engine::general_purpose::STANDARD.encode(h.finalize())
        )
    }
}

/// `codehost.isOriginTag`: tags that can matter to version lists and pseudo-version bases.
fn is_origin_tag(tag: &str) -> bool {
    match gomod::semver::canonical(tag) {
        Some(c) => tag.starts_with(&c) && !gomod::pseudo::is_pseudo_version(tag),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LS_REMOTE: &str = "1d37fedeafb1b79fc2c56806f032db1c1bcb15e7\tHEAD\n\
1d37fedeafb1b79fc2c56806f032db1c1bcb15e7\trefs/heads/main\n\
9f6443b969dd81fe00059ea6252b7ba4c731932b\trefs/tags/v1.0.0\n\
0b1c5c3a6f2e0c1a9d0e0f6f0a6a1b2c3d4e5f60\trefs/tags/v1.1.0\n\
f9a3caa3896cb45019400623f009eb1bc611d099\trefs/tags/v1.1.0^{}\n\
1111111111111111111111111111111111111111\trefs/pull/1/head\n";

    #[test]
    fn ls_remote_and_tag_sum() {
        let refs = Refs::parse_ls_remote(LS_REMOTE);
        assert_eq!(
            refs.get("refs/tags/v1.1.0"),
            Some("f9a3caa3896cb45019400623f009eb1bc611d099")
        );
        assert!(refs.get("refs/pull/1/head").is_none());
        assert_eq!(refs.tags("v").len(), 2);
        assert_eq!(
            refs.tags_at("9f6443b969dd81fe00059ea6252b7ba4c731932b"),
            ["v1.0.0"]
        );
        // The go command printed this TagSum for `go mod download …@main` on this repository
        // (tag prefix "").
        assert_eq!(
            refs.tag_sum(""),
            "t1:9ySKkhqW6l64O4D1xROwgz3JoitB994SCO/JCh5jMWY="
        );
    }
}
