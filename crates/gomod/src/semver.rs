//! Go's semantic versions (`golang.org/x/mod/semver`).
//!
//! Go versions differ from SemVer 2.0 in ways that matter to a proxy: a leading `v` is required,
//! `vX` and `vX.Y` are valid shorthands for `vX.0.0` and `vX.Y.0`, numbers have no size limit
//! (they are compared by length, then byte-wise), and comparison ignores build metadata, so
//! `v2.0.0+incompatible` and `v2.0.0` compare equal. Invalid strings compare below every valid
//! version. The `semver` crate differs on all of these, so it is not used.

use std::cmp::Ordering;

/// The pieces of a valid version; all borrow from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parsed<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    /// What `canonical` appends to a shorthand: `".0.0"`, `".0"` or `""`.
    short: &'static str,
    /// Including the leading `-`, or empty.
    prerelease: &'a str,
    /// Including the leading `+`, or empty.
    build: &'a str,
}

fn parse(v: &str) -> Option<Parsed<'_>> {
    let rest = v.strip_prefix('v')?;
    let (major, rest) = parse_int(rest)?;
    if rest.is_empty() {
        return Some(Parsed {
            major,
            minor: "0",
            patch: "0",
            short: ".0.0",
            prerelease: "",
            build: "",
        });
    }
    let (minor, rest) = parse_int(rest.strip_prefix('.')?)?;
    if rest.is_empty() {
        return Some(Parsed {
            major,
            minor,
            patch: "0",
            short: ".0",
            prerelease: "",
            build: "",
        });
    }
    let (patch, mut rest) = parse_int(rest.strip_prefix('.')?)?;
    let mut prerelease = "";
    if rest.starts_with('-') {
        (prerelease, rest) = parse_prerelease(rest)?;
    }
    let mut build = "";
    if rest.starts_with('+') {
        (build, rest) = parse_build(rest)?;
    }
    if !rest.is_empty() {
        return None;
    }
    Some(Parsed {
        major,
        minor,
        patch,
        short: "",
        prerelease,
        build,
    })
}

/// A decimal number without leading zeros, and what follows it.
fn parse_int(v: &str) -> Option<(&str, &str)> {
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || (v.as_bytes()[0] == b'0' && digits != 1) {
        return None;
    }
    Some(v.split_at(digits))
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

/// A numeric identifier with a leading zero, which SemVer forbids in prereleases.
fn is_bad_num(ident: &str) -> bool {
    ident.len() > 1 && ident.starts_with('0') && ident.bytes().all(|b| b.is_ascii_digit())
}

fn is_num(ident: &str) -> bool {
    ident.bytes().all(|b| b.is_ascii_digit())
}

/// `-ident(.ident)*` up to a `+` or the end.
fn parse_prerelease(v: &str) -> Option<(&str, &str)> {
    let end = v[1..].find('+').map_or(v.len(), |i| i + 1);
    let pre = &v[..end];
    for ident in pre[1..].split('.') {
        if ident.is_empty() || !ident.bytes().all(is_ident_char) || is_bad_num(ident) {
            return None;
        }
    }
    Some((pre, &v[end..]))
}

/// `+ident(.ident)*` to the end (leading zeros allowed).
fn parse_build(v: &str) -> Option<(&str, &str)> {
    for ident in v[1..].split('.') {
        if ident.is_empty() || !ident.bytes().all(is_ident_char) {
            return None;
        }
    }
    Some((v, ""))
}

/// Reports whether `v` is a valid Go semantic version.
pub fn is_valid(v: &str) -> bool {
    parse(v).is_some()
}

/// The canonical form of `v`: shorthands expanded, build metadata dropped (`v1.2` →
/// `v1.2.0`, `v1.2.3+meta` → `v1.2.3`). `None` if `v` is invalid.
///
/// This drops `+incompatible` too; use [`crate::module::canonical_version`] for module
/// versions.
pub fn canonical(v: &str) -> Option<String> {
    let p = parse(v)?;
    if !p.build.is_empty() {
        return Some(v[..v.len() - p.build.len()].to_string());
    }
    Some(format!("{v}{}", p.short))
}

/// The major version prefix of `v` (`v1.2.3` → `v1`). `None` if `v` is invalid.
pub fn major(v: &str) -> Option<&str> {
    let p = parse(v)?;
    Some(&v[..1 + p.major.len()])
}

/// The `vMAJOR.MINOR` prefix of `v` (`v1.2.3` → `v1.2`, `v1` → `v1.0`). `None` if `v` is
/// invalid.
pub fn major_minor(v: &str) -> Option<String> {
    let p = parse(v)?;
    Some(format!("v{}.{}", p.major, p.minor))
}

/// The prerelease suffix of `v` including its `-` (`v1.2.3-pre+b` → `-pre`). `None` if `v` is
/// invalid or has no prerelease.
pub fn prerelease(v: &str) -> Option<&str> {
    parse(v).map(|p| p.prerelease).filter(|s| !s.is_empty())
}

/// The build suffix of `v` including its `+` (`v1.2.3+incompatible` → `+incompatible`). `None`
/// if `v` is invalid or has no build metadata.
pub fn build(v: &str) -> Option<&str> {
    parse(v).map(|p| p.build).filter(|s| !s.is_empty())
}

/// Compares two versions by Go's rules: build metadata ignored, invalid below valid, two invalid
/// versions equal.
pub fn compare(v: &str, w: &str) -> Ordering {
    match (parse(v), parse(w)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(pv), Some(pw)) => compare_int(pv.major, pw.major)
            .then_with(|| compare_int(pv.minor, pw.minor))
            .then_with(|| compare_int(pv.patch, pw.patch))
            .then_with(|| compare_prerelease(pv.prerelease, pw.prerelease)),
    }
}

/// Compares two versions like [`compare`], breaking ties by byte-wise string order, which gives
/// a total order (the one `semver.Sort` uses).
pub fn compare_total(v: &str, w: &str) -> Ordering {
    compare(v, w).then_with(|| v.cmp(w))
}

/// Sorts versions in increasing order as `semver.Sort` does (ties broken by string).
pub fn sort<S: AsRef<str>>(list: &mut [S]) {
    list.sort_by(|a, b| compare_total(a.as_ref(), b.as_ref()));
}

/// The canonical form of the larger of `v` and `w` (as `semver.Max`). `None` if both are
/// invalid.
pub fn max(v: &str, w: &str) -> Option<String> {
    let cv = canonical(v);
    let cw = canonical(w);
    match (cv, cw) {
        (None, None) => None,
        (Some(a), None) => Some(a),
        (None, Some(b)) => Some(b),
        (Some(a), Some(b)) => {
            if compare(&a, &b) == Ordering::Greater {
                Some(a)
            } else {
                Some(b)
            }
        }
    }
}

/// Arbitrary-length decimals without leading zeros: longer is larger, then byte-wise.
fn compare_int(x: &str, y: &str) -> Ordering {
    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
}

/// SemVer 2.0 §11 precedence of two prerelease suffixes (each empty or starting with `-`).
fn compare_prerelease(x: &str, y: &str) -> Ordering {
    if x == y {
        return Ordering::Equal;
    }
    // A release sorts after all of its prereleases.
    if x.is_empty() {
        return Ordering::Greater;
    }
    if y.is_empty() {
        return Ordering::Less;
    }
    let mut xs = x[1..].split('.');
    let mut ys = y[1..].split('.');
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(dx), Some(dy)) => {
                if dx == dy {
                    continue;
                }
                let (nx, ny) = (is_num(dx), is_num(dy));
                return match (nx, ny) {
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (true, true) => compare_int(dx, dy),
                    (false, false) => dx.cmp(dy),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &[(&str, &str)] = &[
        ("v1", "v1.0.0"),
        ("v1.2", "v1.2.0"),
        ("v1.2.3", "v1.2.3"),
        ("v0.0.0", "v0.0.0"),
        ("v1.2.3-pre", "v1.2.3-pre"),
        ("v1.2.3-pre.1", "v1.2.3-pre.1"),
        ("v1.2.3-0", "v1.2.3-0"),
        ("v1.2.3-0a", "v1.2.3-0a"),
        ("v1.2.3-a-b.c--", "v1.2.3-a-b.c--"),
        ("v1.2.3+meta", "v1.2.3"),
        ("v1.2.3+meta-pre", "v1.2.3"),
        ("v1.2.3-pre+meta", "v1.2.3-pre"),
        ("v1.2.3+incompatible", "v1.2.3"),
        ("v1.2.3+001", "v1.2.3"),
        ("v99999999999999999999.0.0", "v99999999999999999999.0.0"),
        (
            "v0.0.0-20191109021931-daa7c04131f5",
            "v0.0.0-20191109021931-daa7c04131f5",
        ),
    ];

    const INVALID: &[&str] = &[
        "",
        "v",
        "1.2.3",
        "V1.2.3",
        "bad",
        "v1-alpha.beta.gamma",
        "v1-pre",
        "v1+meta",
        "v1-pre+meta",
        "v1.2-pre",
        "v1.2+meta",
        "v1.2-pre+meta",
        "v1.0.0-alpha_beta",
        "v1.0.0-",
        "v1.0.0-alpha..",
        "v1.0.0-alpha..1",
        "v1.0.0-01",
        "v1.0.0-alpha.01",
        "v1.0.0+",
        "v1.0.0+meta..x",
        "v1.0.0+meta+meta",
        "v01.2.3",
        "v1.02.3",
        "v1.2.03",
        "v1.2.3.4",
        "v1..2",
        "v1.2.",
        "v1.2.3 ",
        " v1.2.3",
        "v1.2.3-pré",
        "v-1.2.3",
    ];

    #[test]
    fn validity_and_canonical() {
        for (v, c) in VALID {
            assert!(is_valid(v), "{v} should be valid");
            assert_eq!(canonical(v).as_deref(), Some(*c), "canonical({v})");
        }
        for v in INVALID {
            assert!(!is_valid(v), "{v:?} should be invalid");
            assert_eq!(canonical(v), None, "canonical({v:?})");
            assert_eq!(major(v), None);
        }
    }

    #[test]
    fn accessors() {
        assert_eq!(major("v1.2.3"), Some("v1"));
        assert_eq!(major("v12"), Some("v12"));
        assert_eq!(major_minor("v1.2.3"), Some("v1.2".into()));
        assert_eq!(major_minor("v1"), Some("v1.0".into()));
        assert_eq!(major_minor("v3.14-x"), None);
        assert_eq!(prerelease("v1.2.3-pre+build"), Some("-pre"));
        assert_eq!(prerelease("v1.2.3+build"), None);
        assert_eq!(build("v1.2.3-pre+build"), Some("+build"));
        assert_eq!(build("v2.0.0+incompatible"), Some("+incompatible"));
        assert_eq!(build("v1.2.3"), None);
    }

    /// The precedence example from SemVer 2.0 §11 plus Go specifics, in strictly increasing
    /// order.
    const ORDERED: &[&str] = &[
        "bad",
        "v0.0.0-20190101000000-aaaaaaaaaaaa",
        "v0.0.0",
        "v0.0.1",
        "v0.1.0",
        "v1.0.0-alpha",
        "v1.0.0-alpha.1",
        "v1.0.0-alpha.beta",
        "v1.0.0-beta",
        "v1.0.0-beta.2",
        "v1.0.0-beta.11",
        "v1.0.0-rc.1",
        "v1.0.0",
        "v1.0.1-0.20190101000000-aaaaaaaaaaaa",
        "v1.0.1",
        "v1.2.0",
        "v1.2.3-456",
        "v1.2.3-456-xyz",
        "v1.2.3-pre",
        "v1.2.3",
        "v1.9.0",
        "v1.10.0",
        "v1.11.0",
        "v2.0.0",
        "v10.0.0",
        "v99999999999999999998.0.0",
        "v99999999999999999999.0.0",
        "v100000000000000000000.0.0",
    ];

    #[test]
    fn ordering_table() {
        for (i, v) in ORDERED.iter().enumerate() {
            for (j, w) in ORDERED.iter().enumerate() {
                assert_eq!(compare(v, w), i.cmp(&j), "compare({v}, {w})");
            }
        }
    }

    #[test]
    fn compare_ignores_build_and_shorthand() {
        assert_eq!(compare("v2.0.0+incompatible", "v2.0.0"), Ordering::Equal);
        assert_eq!(compare("v1.2.3+a", "v1.2.3+b"), Ordering::Equal);
        assert_eq!(compare("v1", "v1.0.0"), Ordering::Equal);
        assert_eq!(compare("v1.2", "v1.2.0"), Ordering::Equal);
        assert_eq!(compare("bad", "also-bad"), Ordering::Equal);
        assert_eq!(compare("", "v0.0.0"), Ordering::Less);
        assert_eq!(compare("v1.0.0-alpha", "v1.0.0-alpha.0"), Ordering::Less);
        // Numeric identifiers sort below alphanumeric ones, whatever their text.
        assert_eq!(compare("v1.0.0-999", "v1.0.0-a"), Ordering::Less);
        assert_eq!(compare("v1.0.0-1a", "v1.0.0-999"), Ordering::Greater);
    }

    #[test]
    fn sort_breaks_ties_by_string() {
        let mut list = vec![
            "v2.0.0+incompatible",
            "v1.0.0",
            "v2.0.0",
            "garbage",
            "v1",
            "v1.0.0-pre",
        ];
        sort(&mut list);
        assert_eq!(
            list,
            [
                "garbage",
                "v1.0.0-pre",
                "v1",
                "v1.0.0",
                "v2.0.0",
                "v2.0.0+incompatible"
            ]
        );
    }

    #[test]
    fn max_canonicalizes() {
        assert_eq!(max("v1.2", "v1.1.9").as_deref(), Some("v1.2.0"));
        assert_eq!(max("bad", "v1").as_deref(), Some("v1.0.0"));
        assert_eq!(max("v1.0.0+x", "bad").as_deref(), Some("v1.0.0"));
        // Shorthands cannot carry build metadata, so this is invalid.
        assert_eq!(max("v1+x", "bad"), None);
        assert_eq!(max("bad", "worse"), None);
        assert_eq!(max("v1.0.0", "v1.0.0+meta").as_deref(), Some("v1.0.0"));
    }
}
