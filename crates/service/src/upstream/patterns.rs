//! Module path patterns in GOPRIVATE syntax, parsed once.

use std::fmt;

/// A list of module path patterns in GOPRIVATE/GONOPROXY syntax (`*.corp.example.com`,
/// `github.com/acme`): each glob matches a path prefix of as many elements as it has
/// (`gomod::glob`). Parsed from a comma-separated string or a list of such strings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModulePatterns {
    globs: Vec<String>,
}

/// A malformed pattern (a `[` class that does not close, a trailing `\\`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pattern {0:?} is malformed")]
pub struct PatternError(pub String);

impl ModulePatterns {
    /// Parses comma-separated globs; empty entries are skipped.
    pub fn parse(text: &str) -> Result<ModulePatterns, PatternError> {
        let mut patterns = ModulePatterns::default();
        patterns.extend(text)?;
        Ok(patterns)
    }

    /// Parses each item (each may itself be comma-separated).
    pub fn from_list<S: AsRef<str>>(items: &[S]) -> Result<ModulePatterns, PatternError> {
        let mut patterns = ModulePatterns::default();
        for item in items {
            patterns.extend(item.as_ref())?;
        }
        Ok(patterns)
    }

    fn extend(&mut self, text: &str) -> Result<(), PatternError> {
        for glob in text.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            if gomod::glob::path_match(glob, "").is_err() {
                return Err(PatternError(glob.to_string()));
            }
            self.globs.push(glob.to_string());
        }
        Ok(())
    }

    /// Whether `module` matches one of the patterns.
    pub fn matches(&self, module: &str) -> bool {
        self.globs
            .iter()
            .any(|g| gomod::glob::match_prefix_patterns(g, module))
    }

    /// Whether there is no pattern.
    pub fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }

    /// The globs, in order.
    pub fn globs(&self) -> &[String] {
        &self.globs
    }
}

/// Compares the globs, in order (`patterns == ["*.corp.example.com", "github.com/acme"]`).
impl<const N: usize> PartialEq<[&str; N]> for ModulePatterns {
    fn eq(&self, other: &[&str; N]) -> bool {
        self.globs.len() == N && self.globs.iter().zip(other).all(|(a, b)| a == b)
    }
}

impl std::str::FromStr for ModulePatterns {
    type Err = PatternError;
    fn from_str(s: &str) -> Result<Self, PatternError> {
        ModulePatterns::parse(s)
    }
}

impl fmt::Display for ModulePatterns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.globs.join(","))
    }
}

impl serde::Serialize for ModulePatterns {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.globs.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for ModulePatterns {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Form {
            One(String),
            Many(Vec<String>),
        }
        match Form::deserialize(deserializer)? {
            Form::One(text) => ModulePatterns::parse(&text),
            Form::Many(items) => ModulePatterns::from_list(&items),
        }
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_prefixes() {
        let p = ModulePatterns::parse("*.corp.example.com, github.com/acme,,").unwrap();
        assert_eq!(p.globs().len(), 2);
        assert!(p.matches("git.corp.example.com/team/lib"));
        assert!(p.matches("github.com/acme/widget/v2"));
        assert!(!p.matches("github.com/acmeinc/x"));
        assert!(!p.matches("corp.example.com/x"));
        assert!(ModulePatterns::parse("a[").is_err());
        let list = ModulePatterns::from_list(&["a.example,b.example", "c.example"]).unwrap();
        assert_eq!(list.to_string(), "a.example,b.example,c.example");
    }
}
