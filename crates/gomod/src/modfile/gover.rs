//! Go language versions (`internal/gover`): `1.9 < 1.17`, `1.21 < 1.21rc1 < 1.21.0`,
//! `1.20 == 1.20.0`, and the forms the `go` and `toolchain` directives accept.

use std::cmp::Ordering;

/// A parsed Go version: major[.minor[.patch]][kind[pre]], numbers kept as decimal strings.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct GoVersion<'a> {
    pub(super) major: &'a str,
    pub(super) minor: &'a str,
    pub(super) patch: &'a str,
    pub(super) kind: &'a str,
    pub(super) pre: &'a str,
}

/// Leading decimal number without unnecessary leading zero, and the rest.
pub(super) fn cut_int(x: &str) -> Option<(&str, &str)> {
    let n = x.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 || (x.as_bytes()[0] == b'0' && n != 1) {
        return None;
    }
    Some(x.split_at(n))
}

pub(super) fn parse_go_version(x: &str) -> Option<GoVersion<'_>> {
    let (major, x) = cut_int(x)?;
    let mut v = GoVersion {
        major,
        ..GoVersion::default()
    };
    if x.is_empty() {
        v.minor = "0";
        v.patch = "0";
        return Some(v);
    }
    let x = x.strip_prefix('.')?;
    let (minor, x) = cut_int(x)?;
    v.minor = minor;
    if x.is_empty() {
        // Before 1.21 a missing patch means .0; from 1.21 on, "1.21" is the language version,
        // below its release candidates and releases.
        if cmp_int(minor, "21") == Ordering::Less {
            v.patch = "0";
        }
        return Some(v);
    }
    if let Some(x) = x.strip_prefix('.') {
        let (patch, rest) = cut_int(x)?;
        if !rest.is_empty() {
            return None;
        }
        v.patch = patch;
        return Some(v);
    }
    let k = x.bytes().take_while(|b| !b.is_ascii_digit()).count();
    if k == 0 || !x[..k].bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    let (kind, x) = x.split_at(k);
    v.kind = kind;
    if x.is_empty() {
        return Some(v);
    }
    let (pre, rest) = cut_int(x)?;
    if !rest.is_empty() {
        return None;
    }
    v.pre = pre;
    Some(v)
}

/// Compares decimal strings without leading zeros.
pub(super) fn cmp_int(x: &str, y: &str) -> Ordering {
    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
}

/// Compares two Go versions as the go command does (`gover.Compare`; no `go` prefix): `1.9` <
/// `1.17`; `1.21` (the language) < `1.21rc1` < `1.21.0`; `1.20` == `1.20.0` (before 1.21 a
/// missing patch is `.0`); kinds order `alpha` < `beta` < `rc`. Malformed versions compare
/// less than well-formed ones and equal to each other.
pub fn compare_go_versions(x: &str, y: &str) -> Ordering {
    let vx = parse_go_version(x).unwrap_or_default();
    let vy = parse_go_version(y).unwrap_or_default();
    cmp_int(vx.major, vy.major)
        .then_with(|| cmp_int(vx.minor, vy.minor))
        .then_with(|| cmp_int(vx.patch, vy.patch))
        .then_with(|| vx.kind.cmp(vy.kind))
        .then_with(|| cmp_int(vx.pre, vy.pre))
}

/// Reports whether `x` is a valid Go version for [`compare_go_versions`] (`gover.IsValid`).
pub fn is_valid_go_version(x: &str) -> bool {
    parse_go_version(x).is_some()
}

/// `modfile.GoVersionRE`: `^([1-9][0-9]*)\.(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))?([a-z]+[0-9]+)?$`.
pub(super) fn is_go_directive_version(s: &[u8]) -> bool {
    pub(super) fn num(s: &[u8], zero_ok: bool) -> Option<&[u8]> {
        match s.first() {
            Some(b'0') if zero_ok => Some(&s[1..]),
            Some(b'1'..=b'9') => Some(&s[s.iter().take_while(|b| b.is_ascii_digit()).count()..]),
            _ => None,
        }
    }
    let Some(s) = num(s, false) else { return false };
    let Some(s) = s.strip_prefix(b".").and_then(|s| num(s, true)) else {
        return false;
    };
    let s = match s.strip_prefix(b".") {
        Some(p) => match num(p, true) {
            Some(rest) => rest,
            None => return false,
        },
        None => s,
    };
    if s.is_empty() {
        return true;
    }
    let letters = s.iter().take_while(|b| b.is_ascii_lowercase()).count();
    let digits = s[letters..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    letters > 0 && digits > 0 && letters + digits == s.len()
}

/// `modfile.laxGoVersionRE` (`^v?(([1-9][0-9]*)\.(0|[1-9][0-9]*))([^0-9].*)$`): the
/// `major.minor` prefix of a sloppy go version, as go accepts it in dependencies' go.mod files.
pub(super) fn lax_go_version(s: &[u8]) -> Option<&[u8]> {
    let t = s.strip_prefix(b"v").unwrap_or(s);
    let major = t.iter().take_while(|b| b.is_ascii_digit()).count();
    if major == 0 || t[0] == b'0' || t.get(major) != Some(&b'.') {
        return None;
    }
    let m = &t[major + 1..];
    let minor = match m.first() {
        Some(b'0') => 1,
        Some(b'1'..=b'9') => m.iter().take_while(|b| b.is_ascii_digit()).count(),
        _ => return None,
    };
    // One character that is not a digit (a newline included), then anything but newlines.
    let rest = &m[minor..];
    match rest.split_first() {
        Some((c, tail)) if !c.is_ascii_digit() && !tail.contains(&b'\n') => {
            Some(&t[..major + 1 + minor])
        }
        _ => None,
    }
}

/// `modfile.ToolchainRE`: `^default$|^go1($|\.)`.
pub(super) fn is_toolchain_name(s: &[u8]) -> bool {
    s == b"default" || s == b"go1" || s.starts_with(b"go1.")
}

// ---------------------------------------------------------------------------------------------
// Tokenizer and syntax tree (x/mod/modfile read.go).
