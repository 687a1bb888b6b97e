//! Module path and version validation (`golang.org/x/mod/module`).
//!
//! [`ModulePath`] and [`Version`] are the validated forms the rest of the workspace passes
//! around: holding one means the string passed the same checks the go command applies, plus a
//! length cap of our own, so it is safe as a storage key component or in an upstream URL.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::Error;
use crate::error::excerpt;
use crate::{case_escape, pseudo, semver, unicode_tables};

/// Longest module path accepted, in bytes. x/mod has no limit; real paths are far shorter, and
/// the cap keeps hostile 10 KB inputs out of keys, logs and upstream URLs.
pub const MAX_PATH_LEN: usize = 1024;

/// Longest version accepted, in bytes (our cap, as for [`MAX_PATH_LEN`]).
pub const MAX_VERSION_LEN: usize = 256;

/// Which `checkPath` rules apply: module paths are the strictest, file paths the loosest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Module,
    Import,
    File,
}

/// Reserved file names on Windows; an element whose part before the first dot equals one of
/// these (ignoring case) is rejected.
const BAD_WINDOWS_NAMES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Checks a module path as `module.CheckPath` does (without our length cap).
///
/// A module path is an import path whose first element is a lower-case domain-like name with a
/// dot, whose elements do not start with a dot, and whose `/vN` (or gopkg.in `.vN`) suffix, if
/// any, is well formed.
pub fn check_path(path: &str) -> Result<(), Error> {
    let bad = |reason: String| Error::InvalidPath {
        path: excerpt(path),
        reason,
    };
    check_path_kind(path, Kind::Module).map_err(bad)?;
    let first = path.split('/').next().unwrap_or("");
    if first.is_empty() {
        return Err(bad("leading slash".into()));
    }
    if !first.contains('.') {
        return Err(bad("missing dot in first path element".into()));
    }
    if path.starts_with('-') {
        return Err(bad("leading dash in first path element".into()));
    }
    if let Some(c) = first
        .chars()
        .find(|&c| !(c == '-' || c == '.' || c.is_ascii_digit() || c.is_ascii_lowercase()))
    {
        return Err(bad(format!("invalid char {c:?} in first path element")));
    }
    if split_path_version(path).is_none() {
        return Err(bad("invalid version".into()));
    }
    Ok(())
}

/// Checks a package import path as `module.CheckImportPath` does: like a module path's elements
/// but `+` is allowed, elements may start with a dot, and there are no first-element or
/// major-version rules.
pub fn check_import_path(path: &str) -> Result<(), Error> {
    check_path_kind(path, Kind::Import).map_err(|reason| Error::InvalidImportPath {
        path: excerpt(path),
        reason,
    })
}

/// Checks a slash-separated file path (relative to a module root) as `module.CheckFilePath`
/// does: Unicode letters, digits, space and `!#$%&()+,-.=@[]^_{}~` are allowed; no empty,
/// `.` or `..` elements; no Windows reserved names.
pub fn check_file_path(path: &str) -> Result<(), Error> {
    check_path_kind(path, Kind::File).map_err(|reason| Error::InvalidFilePath {
        path: excerpt(path),
        reason,
    })
}

fn check_path_kind(path: &str, kind: Kind) -> Result<(), String> {
    // A &str is valid UTF-8, which is x/mod's first check.
    if path.is_empty() {
        return Err("empty string".into());
    }
    if path.starts_with('-') && kind != Kind::File {
        return Err("leading dash".into());
    }
    if path.contains("//") {
        return Err("double slash".into());
    }
    if path.ends_with('/') {
        return Err("trailing slash".into());
    }
    path.split('/').try_for_each(|elem| check_elem(elem, kind))
}

/// Checks one path element; the reason does not mention the path (callers add it).
pub(crate) fn check_elem(elem: &str, kind: Kind) -> Result<(), String> {
    if elem.is_empty() {
        return Err("empty path element".into());
    }
    if elem.bytes().all(|b| b == b'.') {
        return Err(format!("invalid path element {elem:?}"));
    }
    if elem.starts_with('.') && kind == Kind::Module {
        return Err("leading dot in path element".into());
    }
    if elem.ends_with('.') {
        return Err("trailing dot in path element".into());
    }
    let char_ok = match kind {
        Kind::Module => mod_path_ok,
        Kind::Import => import_path_ok,
        Kind::File => file_name_ok,
    };
    if let Some(c) = elem.chars().find(|&c| !char_ok(c)) {
        return Err(format!("invalid char {c:?}"));
    }
    let short = elem.split('.').next().unwrap_or(elem);
    // The reserved names are ASCII without k or s, so ASCII case folding equals Go's EqualFold.
    if BAD_WINDOWS_NAMES
        .iter()
        .any(|bad| bad.eq_ignore_ascii_case(short))
    {
        return Err(format!(
            "{short:?} disallowed as path element component on Windows"
        ));
    }
    if kind == Kind::File {
        return Ok(());
    }
    // Windows short names (PROGRA~1) could alias another element on some file systems.
    if let Some(tilde) = short.rfind('~') {
        let suffix = &short[tilde + 1..];
        if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) {
            return Err("trailing tilde and digits in path element".into());
        }
    }
    Ok(())
}

fn mod_path_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

fn import_path_ok(c: char) -> bool {
    mod_path_ok(c) || c == '+'
}

fn file_name_ok(c: char) -> bool {
    if c.is_ascii() {
        // All ASCII punctuation except shell/OS specials " ' * < > ? ` | and separators / \ :.
        return c.is_ascii_alphanumeric() || "!#$%&()+,-.=@[]^_{}~ ".contains(c);
    }
    is_go_letter(c)
}

/// Go's `unicode.IsLetter` (general categories L*), from a table generated from Go.
pub(crate) fn is_go_letter(c: char) -> bool {
    let c = c as u32;
    crate::in_ranges(unicode_tables::LETTERS, c)
}

/// Splits a module path into its prefix and major-version suffix (`module.SplitPathVersion`).
///
/// `example.com/m/v2` → `("example.com/m", "/v2")`; `example.com/m` → `("example.com/m", "")`;
/// `gopkg.in/yaml.v2` → `("gopkg.in/yaml", ".v2")`. `None` when the final element looks like
/// a major version but is not a valid one (`/v1`, `/v0`, `/v02`, `/v2.0`, `gopkg.in/x`).
pub fn split_path_version(path: &str) -> Option<(&str, &str)> {
    if path.starts_with("gopkg.in/") {
        return split_gopkg_in(path);
    }
    let b = path.as_bytes();
    let mut i = b.len();
    let mut dot = false;
    while i > 0 && (b[i - 1].is_ascii_digit() || b[i - 1] == b'.') {
        dot |= b[i - 1] == b'.';
        i -= 1;
    }
    if i <= 1 || i == b.len() || b[i - 1] != b'v' || b[i - 2] != b'/' {
        return Some((path, ""));
    }
    let (prefix, major) = path.split_at(i - 2);
    if dot || major.len() <= 2 || major.as_bytes()[2] == b'0' || major == "/v1" {
        return None;
    }
    Some((prefix, major))
}

fn split_gopkg_in(path: &str) -> Option<(&str, &str)> {
    let b = path.as_bytes();
    let mut i = b.len();
    if path.ends_with("-unstable") {
        i -= "-unstable".len();
    }
    while i > 0 && b[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i <= 1 || b[i - 1] != b'v' || b[i - 2] != b'.' {
        // Every gopkg.in path must end in .vN.
        return None;
    }
    let (prefix, major) = path.split_at(i - 2);
    if major.len() <= 2 || (major.as_bytes()[2] == b'0' && major != ".v0") {
        return None;
    }
    Some((prefix, major))
}

/// Checks that version `v` suits a path whose major-version suffix is `path_major` (as returned
/// by [`split_path_version`]), as `module.CheckPathMajor` does.
pub fn check_path_major(v: &str, path_major: &str) -> Result<(), Error> {
    let mut want = path_major;
    if want.starts_with(".v") {
        want = want.strip_suffix("-unstable").unwrap_or(want);
    }
    // Old go commands produced v0.0.0 pseudo-versions for gopkg.in .v1 paths; they are still
    // required by real go.mod files (gopkg.in/yaml.v2@v2.2.1 requires gopkg.in/check.v1
    // v0.0.0-20161208181325-20d25e280405).
    if v.starts_with("v0.0.0-") && want == ".v1" {
        return Ok(());
    }
    let m = semver::major(v).unwrap_or("");
    let expected = if want.is_empty() {
        if m == "v0" || m == "v1" || semver::build(v) == Some("+incompatible") {
            return Ok(());
        }
        "v0 or v1"
    } else {
        let suffix_major = &want[1..];
        if m == suffix_major {
            return Ok(());
        }
        suffix_major
    };
    Err(Error::InvalidVersion {
        version: excerpt(v),
        reason: format!("should be {expected}, not {m}"),
    })
}

/// Reports whether [`check_path_major`] accepts `v` for `path_major`.
pub fn match_path_major(v: &str, path_major: &str) -> bool {
    check_path_major(v, path_major).is_ok()
}

/// Checks a module path and version pair (`module.Check`), plus the go command's rule that
/// `+incompatible` is only for unsuffixed paths at major version 2 or more.
///
/// x/mod's `Check` alone accepts `example.com/m/v2@v2.0.0+incompatible` and
/// `example.com/m@v1.0.0+incompatible`; the go command refuses to produce either (modfetch
/// coderepo), so a proxy should not serve them.
pub fn check(path: &str, version: &str) -> Result<(), Error> {
    check_path(path)?;
    if !semver::is_valid(version) {
        return Err(Error::InvalidVersion {
            version: excerpt(version),
            reason: "not a semantic version".into(),
        });
    }
    let (_, path_major) = split_path_version(path).unwrap_or((path, ""));
    check_path_major(version, path_major).map_err(|e| match e {
        Error::InvalidVersion { version, reason } => Error::InvalidVersion {
            version,
            reason: format!("{reason} (module path {:?})", excerpt(path)),
        },
        other => other,
    })?;
    if semver::build(version) == Some("+incompatible") {
        let bad = |reason: String| Error::InvalidVersion {
            version: excerpt(version),
            reason,
        };
        if !path_major.is_empty() {
            return Err(bad(
                "+incompatible suffix not allowed: module path includes a major version suffix"
                    .into(),
            ));
        }
        let m = semver::major(version).unwrap_or("");
        if m == "v0" || m == "v1" {
            return Err(bad(format!(
                "+incompatible suffix not allowed: major version {m} is compatible"
            )));
        }
    }
    Ok(())
}

/// The canonical form of a module version (`module.CanonicalVersion`): like
/// [`semver::canonical`] but keeping a `+incompatible` suffix. `None` if `v` is invalid.
pub fn canonical_version(v: &str) -> Option<String> {
    let mut c = semver::canonical(v)?;
    if semver::build(v) == Some("+incompatible") {
        c.push_str("+incompatible");
    }
    Some(c)
}

/// A module path that passed [`check_path`] and the [`MAX_PATH_LEN`] cap; holds the
/// unescaped (original-case) form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModulePath(String);

impl ModulePath {
    /// Validates an unescaped module path as `module.CheckPath` does, plus the length cap.
    pub fn parse(path: &str) -> Result<Self, Error> {
        if path.len() > MAX_PATH_LEN {
            return Err(Error::InvalidPath {
                path: excerpt(path),
                reason: format!("longer than {MAX_PATH_LEN} bytes"),
            });
        }
        check_path(path)?;
        Ok(ModulePath(path.to_string()))
    }

    /// Unescapes (`!x` → `X`) and validates.
    pub fn from_escaped(escaped: &str) -> Result<Self, Error> {
        if escaped.len() > 2 * MAX_PATH_LEN {
            return Err(Error::InvalidPath {
                path: excerpt(escaped),
                reason: format!("longer than {MAX_PATH_LEN} bytes"),
            });
        }
        Self::parse(&case_escape::unescape(escaped)?)
    }

    /// The unescaped path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `!`-escaped form used in URLs and storage keys.
    pub fn escaped(&self) -> String {
        case_escape::escape(&self.0)
    }

    /// The path without its major-version suffix, and the suffix (`/v2`, `.v1`, or empty).
    pub fn split_major(&self) -> (&str, &str) {
        split_path_version(&self.0).unwrap_or((&self.0, ""))
    }

    /// Checks that `version` belongs to this path (see [`check`]).
    pub fn check_version(&self, version: &Version) -> Result<(), Error> {
        check(&self.0, version.as_str())
    }
}

impl fmt::Display for ModulePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ModulePath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for ModulePath {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

/// A canonical Go semantic version (`v1.2.3`, `v1.2.3-pre`, pseudo-versions, `+incompatible`).
///
/// Ordering is Go's semver order with ties (`v2.0.0` vs `v2.0.0+incompatible`) broken by the
/// string, so it is a total order consistent with `Eq`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(String);

impl Version {
    /// Accepts only canonical versions (`module.CanonicalVersion(v) == v`: no shorthands, no
    /// build metadata except `+incompatible`) of at most [`MAX_VERSION_LEN`] bytes.
    pub fn parse(version: &str) -> Result<Self, Error> {
        let bad = |reason: String| Error::InvalidVersion {
            version: excerpt(version),
            reason,
        };
        if version.len() > MAX_VERSION_LEN {
            return Err(bad(format!("longer than {MAX_VERSION_LEN} bytes")));
        }
        match canonical_version(version) {
            None => Err(bad("not a semantic version".into())),
            Some(c) if c != version => Err(bad(format!("not canonical (should be {c:?})"))),
            Some(_) => Ok(Version(version.to_string())),
        }
    }

    /// Unescapes and validates a canonical version.
    pub fn from_escaped(escaped: &str) -> Result<Self, Error> {
        if escaped.len() > 2 * MAX_VERSION_LEN {
            return Err(Error::InvalidVersion {
                version: excerpt(escaped),
                reason: format!("longer than {MAX_VERSION_LEN} bytes"),
            });
        }
        Self::parse(&case_escape::unescape(escaped)?)
    }

    /// The version string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `!`-escaped form.
    pub fn escaped(&self) -> String {
        case_escape::escape(&self.0)
    }

    /// The major version (`v1.2.3` → `v1`).
    pub fn major(&self) -> &str {
        semver::major(&self.0).unwrap_or(&self.0)
    }

    /// Whether the version has a prerelease part (pseudo-versions do).
    pub fn is_prerelease(&self) -> bool {
        semver::prerelease(&self.0).is_some()
    }

    /// Whether the version is a pseudo-version (see [`pseudo::is_pseudo_version`]).
    pub fn is_pseudo(&self) -> bool {
        pseudo::is_pseudo_version(&self.0)
    }

    /// Whether the version ends in `+incompatible`.
    pub fn is_incompatible(&self) -> bool {
        self.0.ends_with("+incompatible")
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Version {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for Version {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        semver::compare_total(&self.0, &other.0)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Validates a module path (`module.CheckPath`) and escapes it (`module.EscapePath`).
pub fn escape_path(path: &str) -> Result<String, Error> {
    check_path(path)?;
    Ok(case_escape::escape(path))
}

/// Unescapes a module path and validates the result (`module.UnescapePath`).
pub fn unescape_path(escaped: &str) -> Result<String, Error> {
    let path = case_escape::unescape(escaped)?;
    check_path(&path)?;
    Ok(path)
}

/// Escapes a version string (`module.EscapeVersion`).
///
/// Versions here may be any query the go command sends (`master`, `v1.2`), not just semantic
/// versions, but they must be a single valid file name element and contain no `!` — in
/// particular no `/`.
pub fn escape_version(v: &str) -> Result<String, Error> {
    check_version_elem(v)?;
    if v.contains('!') {
        return Err(disallowed_version(v, "contains '!'"));
    }
    Ok(case_escape::escape(v))
}

/// Unescapes a version string and validates the result (`module.UnescapeVersion`).
pub fn unescape_version(escaped: &str) -> Result<String, Error> {
    let v = case_escape::unescape(escaped)?;
    check_version_elem(&v)?;
    Ok(v)
}

fn check_version_elem(v: &str) -> Result<(), Error> {
    if !v.is_ascii() {
        // x/mod's escapeString refuses non-ASCII even though file names allow letters.
        return Err(disallowed_version(v, "non-ASCII character"));
    }
    check_elem(v, Kind::File).map_err(|reason| disallowed_version(v, &reason))
}

fn disallowed_version(v: &str, reason: &str) -> Error {
    Error::InvalidVersion {
        version: excerpt(v),
        reason: format!("disallowed version string: {reason}"),
    }
}

#[cfg(test)]
mod tests;
