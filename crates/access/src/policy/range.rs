//! Version ranges of policy entries: `>=v1.2.0,<v1.3.0`, `v1.4.2`, `<v2 || >=v2.1.0`.
//!
//! A range is alternatives separated by `||`; an alternative is comparators separated by `,`,
//! all of which must hold. A comparator is `=`, `!=`, `<`, `<=`, `>`, `>=` or nothing (`=`)
//! followed by a Go semantic version (shorthands like `v1.2` allowed). Versions compare by Go's
//! rules (`gomod::semver::compare`): prereleases and pseudo-versions sort below their release,
//! build metadata (`+incompatible`) is ignored.

use std::cmp::Ordering;
use std::fmt;

use gomod::semver;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Comparator {
    op: Op,
    version: String,
}

impl Comparator {
    fn holds(&self, v: &str) -> bool {
        let ord = semver::compare(v, &self.version);
        match self.op {
            Op::Eq => ord == Ordering::Equal,
            Op::Ne => ord != Ordering::Equal,
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
        }
    }
}

/// A parsed version range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRange {
    text: String,
    alternatives: Vec<Vec<Comparator>>,
}

impl VersionRange {
    /// Parses a range; the error says which part is wrong.
    pub fn parse(text: &str) -> Result<VersionRange, String> {
        let mut alternatives = Vec::new();
        for alternative in text.split("||") {
            let mut all = Vec::new();
            for part in alternative.split(',') {
                let part = part.trim();
                if part.is_empty() {
                    return Err(format!("empty comparator in {text:?}"));
                }
                let (op, rest) = [
                    (">=", Op::Ge),
                    ("<=", Op::Le),
                    ("!=", Op::Ne),
                    (">", Op::Gt),
                    ("<", Op::Lt),
                    ("=", Op::Eq),
                ]
                .iter()
                .find_map(|(prefix, op)| part.strip_prefix(prefix).map(|rest| (*op, rest)))
                .unwrap_or((Op::Eq, part));
                let version = rest.trim();
                if !semver::is_valid(version) {
                    return Err(format!(
                        "{version:?} is not a Go semantic version (like v1.2.3)"
                    ));
                }
                all.push(Comparator {
                    op,
                    version: version.to_string(),
                });
            }
            alternatives.push(all);
        }
        Ok(VersionRange {
            text: text.trim().to_string(),
            alternatives,
        })
    }

    /// Reports whether `version` is in the range.
    pub fn contains(&self, version: &str) -> bool {
        self.alternatives
            .iter()
            .any(|all| all.iter().all(|c| c.holds(version)))
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_range() {
        let r = VersionRange::parse(">=v1.2.0,<v1.3.0").unwrap();
        for v in [
            "v1.2.0",
            "v1.2.9",
            "v1.2.10",
            "v1.3.0-rc.1",
            "v1.2.99-0.20240101000000-abcdefabcdef",
        ] {
            assert!(r.contains(v), "{v}");
        }
        for v in ["v1.1.9", "v1.2.0-rc.1", "v1.3.0", "v2.0.0", "v1.10.0"] {
            assert!(!r.contains(v), "{v}");
        }
    }

    #[test]
    fn exact_shorthand_alternatives_and_incompatible() {
        let exact = VersionRange::parse("v1.4.2").unwrap();
        assert!(exact.contains("v1.4.2") && !exact.contains("v1.4.3"));
        let short = VersionRange::parse("<v2").unwrap();
        assert!(short.contains("v1.99.0") && !short.contains("v2.0.0"));
        let alt = VersionRange::parse("<v1.0.0 || >=v1.5.0, !=v1.6.0").unwrap();
        assert!(alt.contains("v0.9.0") && alt.contains("v1.5.0") && alt.contains("v1.7.0"));
        assert!(!alt.contains("v1.2.0") && !alt.contains("v1.6.0"));
        let inc = VersionRange::parse(">=v2.0.0").unwrap();
        assert!(inc.contains("v2.1.0+incompatible"));
    }

    #[test]
    fn bad_ranges() {
        for bad in [
            "",
            ">=",
            ">=1.2.0",
            "v1.2.0,",
            ">=v1.2.0 <v1.3.0",
            "~v1.2.0",
        ] {
            assert!(VersionRange::parse(bad).is_err(), "{bad}");
        }
    }
}
