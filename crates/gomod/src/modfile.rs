//! go.mod parsing (`golang.org/x/mod/modfile`), with no I/O.
//!
//! [`ModFile::parse`] reads a go.mod file the way `modfile.Parse(name, data, nil)` does — what
//! the go command uses for the main module when it cannot resolve versions (`go mod edit`) —
//! and [`ModFile::parse_lax`] the way `modfile.ParseLax(name, data, nil)` does, which is how
//! the go command reads every *dependency's* go.mod (the `.mod` files a proxy serves):
//!
//! | directive                         | strict ([`ModFile::parse`])  | lax ([`ModFile::parse_lax`])      |
//! |-----------------------------------|------------------------------|-----------------------------------|
//! | `module`, `require`, `ignore`     | parsed                       | parsed                            |
//! | `go`                              | `1.23`, `1.23.0`, `1.23rc1`  | also `1.23-foo`, `v1.23.x` → `1.23` |
//! | `retract`                         | parsed, errors reported      | parsed; malformed ones skipped    |
//! | `toolchain`, `godebug`, `exclude`, `replace`, `tool` | parsed | skipped (main-module only)      |
//! | unknown directives and blocks     | error                        | skipped (forward compatibility)   |
//!
//! Both accept single lines and `( … )` blocks, `//` comments (`/* */` is an error), and
//! interpreted `"…"` strings; a raw `` `…` `` string is lexed but rejected wherever its value
//! is used, as go does. Errors from the tokenizer stop parsing; otherwise every bad directive is
//! reported, each with its line (and column, when not 1), as [`ModFileError`].
//!
//! Versions in `require`, `exclude` and `replace` must be semantic versions in both modes and
//! are canonicalized as go does without a version fixer (`v1.2` → `v1.2.0`, build metadata
//! other than `+incompatible` dropped); a branch name or `latest` is an error, as in
//! `go mod edit` and in every dependency. (Loading a main module, the go command instead
//! resolves such a query through the proxy and then wants go.mod rewritten, `go mod tidy`; a
//! prewarm should report it.) `retract` versions are
//! kept exactly as written, unvalidated, as go does when it has no fixer: in a dependency's
//! go.mod a retraction `[junk, v1.5.0]` therefore covers every version up to v1.5.0 under
//! [`semver::compare`](crate::semver::compare), where invalid versions sort first.
//!
//! Deliberately stricter than go: module paths and versions (after unquoting) and `godebug`
//! settings must be valid UTF-8 (go keeps the bytes, and fails later when the path is used);
//! versions are capped at [`MAX_VERSION_LEN`](crate::module::MAX_VERSION_LEN) bytes. Comments
//! may hold any bytes (they are decoded lossily). Paths are otherwise not validated, as in go: a
//! main module may `require myorg/lib v0.0.0` and replace it with a directory; validate with
//! [`ModulePath::parse`](crate::ModulePath::parse) before fetching.
//!
//! The Go language version helpers ([`compare_go_versions`], [`ModFile::go_version_at_least`])
//! port `internal/gover`: `1.9 < 1.17`, `1.21 < 1.21rc1 < 1.21.0`, `1.20 == 1.20.0`.

use std::cmp::Ordering;
use std::fmt;

use crate::error::{excerpt, one_line};
use crate::module::{canonical_version, check_path_major, split_path_version};
use crate::{ModulePath, Version};

mod print_table;

/// The Go version the go command assumes for a go.mod without a `go` directive
/// (`gover.DefaultGoModVersion`).
pub const DEFAULT_GO_VERSION: &str = "1.16";

/// The Go version from which a module's go.mod lists every module providing a package it
/// imports, so the module graph is pruned below it (`gover.ExplicitIndirectVersion`).
pub const PRUNING_GO_VERSION: &str = "1.17";

/// A parsed go.mod file. Directives keep their file order; duplicates are kept (go removes
/// duplicate `exclude`s, keeping the first, and duplicate `replace`s, keeping the last, only
/// when it rewrites the file; see [`ModFile::replacement`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModFile {
    /// The `module` directive, if any (a dependency's go.mod always has one in practice; the
    /// go command rejects a fetched go.mod without it).
    pub module: Option<Module>,
    /// The `go` directive's version (`1.21`, `1.21.0`, `1.21rc1`), if any. See
    /// [`ModFile::go_version`] for the version go assumes without one.
    pub go: Option<String>,
    /// The `toolchain` directive (`go1.21.3`, `default`); strict mode only.
    pub toolchain: Option<String>,
    /// `godebug key=value` settings; strict mode only.
    pub godebug: Vec<Godebug>,
    /// `require` directives.
    pub require: Vec<Require>,
    /// `exclude` directives; strict mode only.
    pub exclude: Vec<Exclude>,
    /// `replace` directives; strict mode only.
    pub replace: Vec<Replace>,
    /// `retract` directives.
    pub retract: Vec<Retract>,
    /// `tool` directives (package paths); strict mode only.
    pub tool: Vec<Tool>,
    /// `ignore` directives (directory paths).
    pub ignore: Vec<Ignore>,
}

/// The `module` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// The module path as written (unquoted; not validated).
    pub path: String,
    /// The deprecation message: the paragraph starting `Deprecated:` in the comments on the
    /// directive, without that prefix; `None` if there is none or it is empty.
    pub deprecated: Option<String>,
    /// 1-based line of the directive.
    pub line: usize,
}

/// A `require` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Require {
    /// The required module's path (unquoted; not validated).
    pub path: String,
    /// The required version, canonical.
    pub version: Version,
    /// Whether the line's first end-of-line comment is `// indirect` or starts `// indirect;`.
    pub indirect: bool,
    /// 1-based line of the requirement.
    pub line: usize,
}

/// An `exclude` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclude {
    /// The module path.
    pub path: String,
    /// The excluded version, canonical.
    pub version: Version,
    /// 1-based line of the directive.
    pub line: usize,
}

/// A `replace` directive: `old_path [old_version] => new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replace {
    /// The replaced module's path.
    pub old_path: String,
    /// The replaced version, or `None` to replace every version.
    pub old_version: Option<Version>,
    /// What it is replaced with.
    pub new: Replacement,
    /// 1-based line of the directive.
    pub line: usize,
}

/// The right-hand side of a `replace` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replacement {
    /// Another module version, fetched like any other.
    Module {
        /// The replacement module's path.
        path: String,
        /// Its version, canonical.
        version: Version,
    },
    /// A local directory (see [`is_directory_path`]); it has no version and nothing to fetch.
    Dir(String),
}

/// A `retract` directive: a closed interval of versions (a single version has `low == high`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retract {
    /// The lowest retracted version, as written (not validated; see the module docs).
    pub low: String,
    /// The highest retracted version, as written.
    pub high: String,
    /// The comments on the directive (or on its block, if the line has none), one line each;
    /// empty if none.
    pub rationale: String,
    /// 1-based line of the directive.
    pub line: usize,
}

/// A `godebug key=value` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Godebug {
    /// The setting's name (may be empty: go accepts `godebug =x`).
    pub key: String,
    /// Its value.
    pub value: String,
    /// 1-based line of the directive.
    pub line: usize,
}

/// A `tool` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    /// The tool's package path.
    pub path: String,
    /// 1-based line of the directive.
    pub line: usize,
}

/// An `ignore` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignore {
    /// The ignored directory, as written.
    pub path: String,
    /// 1-based line of the directive.
    pub line: usize,
}

/// One problem in a go.mod file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column in characters; go prints it only when it is not 1.
    pub column: usize,
    /// Why, as one line; strings from the file are quoted or shortened.
    pub reason: String,
}

/// Why a go.mod file was rejected: every problem found, in file order (a tokenizer error is
/// always alone, since it stops parsing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModFileError {
    /// The file name given to the parser.
    pub name: String,
    /// The problems; never empty.
    pub problems: Vec<Problem>,
}

impl ModFileError {
    /// Each problem as the go command prints it: `name:line: reason`, or `name:line:col: reason`
    /// when the column is not 1 (inside blocks).
    pub fn messages(&self) -> impl Iterator<Item = String> + '_ {
        self.problems.iter().map(|p| {
            if p.column > 1 {
                format!("{}:{}:{}: {}", self.name, p.line, p.column, p.reason)
            } else {
                format!("{}:{}: {}", self.name, p.line, p.reason)
            }
        })
    }
}

/// How many problems `Display` shows before summarizing the rest.
const SHOWN_PROBLEMS: usize = 5;

impl fmt::Display for ModFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.messages().take(SHOWN_PROBLEMS).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&m)?;
        }
        if self.problems.len() > SHOWN_PROBLEMS {
            write!(f, "; and {} more", self.problems.len() - SHOWN_PROBLEMS)?;
        }
        Ok(())
    }
}

impl std::error::Error for ModFileError {}

/// Checks a dependency's go.mod as the go command reads it from a proxy: UTF-8 text that
/// [`ModFile::parse_lax`] accepts. Returns a one-line reason otherwise.
pub fn check_dependency_go_mod(body: &[u8]) -> Result<(), String> {
    parse_dependency_go_mod(body).map(|_| ())
}

fn parse_dependency_go_mod(body: &[u8]) -> Result<ModFile, String> {
    std::str::from_utf8(body).map_err(|e| format!("go.mod is not valid UTF-8: {e}"))?;
    ModFile::parse_lax("go.mod", body).map_err(|e| format!("go.mod does not parse: {e}"))
}

/// Checks the go.mod served as `module`'s `.mod`, as the go command checks it before using it
/// (modload's `goModSummary`, modfetch's `findDir`): it parses ([`check_dependency_go_mod`]), it
/// has a `module` line ("parsing go.mod: missing module line"), and the path it declares is a
/// valid module path of the same major version as `module` (`isMajor`: `example.com/m` may not
/// declare `example.com/m/v2`, nor `example.com/m/v3` declare `example.com/m`).
///
/// A declared path that differs from `module` with the same major version is accepted: that is
/// a fork, usable through a `replace` directive, and the go command accepts it there (it refuses
/// it only when the module is required under its own path, which a proxy cannot know).
pub fn check_module_go_mod(module: &ModulePath, body: &[u8]) -> Result<(), String> {
    let file = parse_dependency_go_mod(body)?;
    let declared = file
        .module_path()
        .filter(|p| !p.is_empty())
        .ok_or("go.mod has no module line (the go command refuses it: \"parsing go.mod: missing module line\")")?;
    if declared == module.as_str() {
        return Ok(());
    }
    let (_, want_major) = module.split_major();
    if is_major(declared, want_major)
        || (want_major.is_empty() && declared.starts_with("gopkg.in/"))
    {
        return Ok(());
    }
    Err(format!(
        "go.mod declares module {declared:?}, which cannot be a version of {module} (a different major version or a malformed path)"
    ))
}

/// `isMajor` of cmd/go's coderepo.go: whether a go.mod declaring `declared` can be a version of
/// a module path whose major-version suffix is `path_major`.
fn is_major(declared: &str, path_major: &str) -> bool {
    let Some((_, declared_major)) = crate::module::split_path_version(declared) else {
        return false;
    };
    if crate::module::check_path(declared).is_err() {
        return false;
    }
    let prefix = |major: &str| -> String {
        let m = major.strip_suffix("-unstable").unwrap_or(major);
        m.get(1..).unwrap_or("").to_string()
    };
    if path_major.is_empty() {
        return matches!(prefix(declared_major).as_str(), "" | "v0" | "v1");
    }
    if declared_major.is_empty() {
        return false;
    }
    path_major[1..] == declared_major[1..]
}

impl ModFile {
    /// Parses a main module's go.mod as `modfile.Parse(name, data, nil)` does: every directive
    /// is checked and unknown ones are errors. `name` is used in error messages.
    pub fn parse(name: &str, data: &[u8]) -> Result<ModFile, ModFileError> {
        parse_file(name, data, true)
    }

    /// Parses a dependency's go.mod as `modfile.ParseLax(name, data, nil)` does (the go command
    /// reads every go.mod other than the main module's this way): only `module`, `go`,
    /// `require`, `retract` and `ignore` are interpreted, everything else — including
    /// directives newer than this parser — is skipped, and malformed `retract`s are dropped.
    pub fn parse_lax(name: &str, data: &[u8]) -> Result<ModFile, ModFileError> {
        parse_file(name, data, false)
    }

    /// The module path, if there is a `module` directive.
    pub fn module_path(&self) -> Option<&str> {
        self.module.as_ref().map(|m| m.path.as_str())
    }

    /// The Go version go uses for this file: the `go` directive, or [`DEFAULT_GO_VERSION`]
    /// (1.16) without one.
    pub fn go_version(&self) -> &str {
        self.go.as_deref().unwrap_or(DEFAULT_GO_VERSION)
    }

    /// Whether [`ModFile::go_version`] is at least `version`, compared as Go versions
    /// ([`compare_go_versions`]): `go_version_at_least("1.17")` is the graph-pruning test.
    pub fn go_version_at_least(&self, version: &str) -> bool {
        compare_go_versions(self.go_version(), version) != Ordering::Less
    }

    /// Whether the module graph is pruned below this module (`go` ≥ 1.17): its go.mod then
    /// lists every module needed to build its packages, and the go command does not load the
    /// go.mod files of its dependencies' dependencies through it.
    pub fn is_pruned(&self) -> bool {
        self.go_version_at_least(PRUNING_GO_VERSION)
    }

    /// The replacement go applies to `path@version`: a `replace` of that exact version wins over
    /// one for all versions of `path`, and among duplicates the last one wins (the go command
    /// refuses a build whose duplicate replacements disagree).
    pub fn replacement(&self, path: &str, version: &str) -> Option<&Replacement> {
        let exact = self.replace.iter().rev().find(|r| {
            r.old_path == path
                && r.old_version
                    .as_ref()
                    .is_some_and(|v| v.as_str() == version)
        });
        exact
            .or_else(|| {
                self.replace
                    .iter()
                    .rev()
                    .find(|r| r.old_path == path && r.old_version.is_none())
            })
            .map(|r| &r.new)
    }
}

/// Reports whether a replacement path denotes a local directory (`modfile.IsDirectoryPath`):
/// `.`, `..`, or starting `./`, `../`, `/`, their Windows forms `.\`, `..\`, `\`, or a drive
/// letter and colon — all syntaxes, because go.mod files move between systems.
pub fn is_directory_path(p: &str) -> bool {
    let b = p.as_bytes();
    p == "."
        || p.starts_with("./")
        || p.starts_with(".\\")
        || p == ".."
        || p.starts_with("../")
        || p.starts_with("..\\")
        || p.starts_with('/')
        || p.starts_with('\\')
        || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
}

// ---------------------------------------------------------------------------------------------
// Go language versions (internal/gover).

/// A parsed Go version: major[.minor[.patch]][kind[pre]], numbers kept as decimal strings.
#[derive(Debug, Default, PartialEq, Eq)]
struct GoVersion<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    kind: &'a str,
    pre: &'a str,
}

/// Leading decimal number without unnecessary leading zero, and the rest.
fn cut_int(x: &str) -> Option<(&str, &str)> {
    let n = x.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 || (x.as_bytes()[0] == b'0' && n != 1) {
        return None;
    }
    Some(x.split_at(n))
}

fn parse_go_version(x: &str) -> Option<GoVersion<'_>> {
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
fn cmp_int(x: &str, y: &str) -> Ordering {
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
fn is_go_directive_version(s: &[u8]) -> bool {
    fn num(s: &[u8], zero_ok: bool) -> Option<&[u8]> {
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
fn lax_go_version(s: &[u8]) -> Option<&[u8]> {
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
fn is_toolchain_name(s: &[u8]) -> bool {
    s == b"default" || s == b"go1" || s.starts_with(b"go1.")
}

// ---------------------------------------------------------------------------------------------
// Tokenizer and syntax tree (x/mod/modfile read.go).

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Pos {
    line: usize,
    /// 1-based, in runes (an invalid UTF-8 byte counts as one).
    col: usize,
    byte: usize,
}

impl Pos {
    /// The position after a one-byte token starting here (`Position.add(")")`).
    fn after_paren(self) -> Pos {
        Pos {
            line: self.line,
            col: self.col + 1,
            byte: self.byte + 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Eof,
    /// A comment after other tokens on its line.
    EolComment,
    Ident,
    Str,
    /// A comment alone on its line.
    Comment,
    /// `\n ( ) [ ] { } ,`
    Punct(u8),
}

impl Kind {
    fn is_eol(self) -> bool {
        matches!(self, Kind::Eof | Kind::EolComment | Kind::Punct(b'\n'))
    }
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    pos: Pos,
    end: Pos,
    text: &'a [u8],
}

/// A `//` comment (text without the line end), or an empty marker for a blank line in a block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Comment<'a> {
    start: Pos,
    text: &'a [u8],
}

#[derive(Debug, Default)]
struct Comments<'a> {
    before: Vec<Comment<'a>>,
    suffix: Vec<Comment<'a>>,
}

#[derive(Debug)]
struct Line<'a> {
    comments: Comments<'a>,
    start: Pos,
    tokens: Vec<&'a [u8]>,
    end: Pos,
}

#[derive(Debug)]
struct Paren<'a> {
    comments: Comments<'a>,
    pos: Pos,
}

#[derive(Debug)]
struct LineBlock<'a> {
    comments: Comments<'a>,
    start: Pos,
    tokens: Vec<&'a [u8]>,
    lparen: Paren<'a>,
    lines: Vec<Line<'a>>,
    rparen: Paren<'a>,
}

#[derive(Debug)]
enum Stmt<'a> {
    Comments { comments: Comments<'a>, start: Pos },
    Line(Line<'a>),
    Block(LineBlock<'a>),
}

/// A tokenizer or parser error; it stops parsing.
#[derive(Debug)]
struct SyntaxError {
    pos: Pos,
    msg: String,
}

type Syn<T> = Result<T, SyntaxError>;

struct Input<'a> {
    name: &'a str,
    data: &'a [u8],
    /// Offset of the remaining input.
    off: usize,
    pos: Pos,
    token_start: usize,
    token: Token<'a>,
    /// End-of-line comments, in order, for assignment to the syntax they follow.
    comments: Vec<Comment<'a>>,
}

/// Decodes one rune as Go's `utf8.DecodeRune` does: an invalid byte is U+FFFD of size 1; the
/// empty input is 0 of size 0.
fn decode_rune(b: &[u8]) -> (u32, usize) {
    match b.first() {
        None => (0, 0),
        Some(&c) if c < 0x80 => (u32::from(c), 1),
        Some(_) => {
            let head = &b[..b.len().min(4)];
            let valid = match std::str::from_utf8(head) {
                Ok(s) => s,
                Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or(""),
            };
            match valid.chars().next() {
                Some(c) => (u32::from(c), c.len_utf8()),
                None => (0xFFFD, 1),
            }
        }
    }
}

/// `unicode.IsSpace`.
fn is_go_space(c: u32) -> bool {
    char::from_u32(c).is_some_and(char::is_whitespace)
}

/// `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
fn is_go_print(c: u32) -> bool {
    if c < 0x80 {
        return (0x20..0x7f).contains(&c);
    }
    print_table::PRINT
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                Ordering::Less
            } else if lo > c {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        })
        .is_ok()
}

/// Whether `c` can be part of an identifier token (`isIdent`).
fn is_ident(c: u32) -> bool {
    !matches!(
        char::from_u32(c),
        Some(' ' | '(' | ')' | '[' | ']' | '{' | '}' | ',')
    ) && !is_go_space(c)
        && is_go_print(c)
}

/// `%q` of a rune, as Go's `strconv.QuoteRune` writes the non-printable characters the lexer
/// rejects.
fn quote_rune(c: u32) -> String {
    match c {
        0x07 => r"'\a'".into(),
        0x08 => r"'\b'".into(),
        0x0c => r"'\f'".into(),
        0x0a => r"'\n'".into(),
        0x0d => r"'\r'".into(),
        0x09 => r"'\t'".into(),
        0x0b => r"'\v'".into(),
        _ if is_go_print(c) => format!("'{}'", char::from_u32(c).unwrap_or('\u{FFFD}')),
        _ if c < 0x80 => format!(r"'\x{c:02x}'"),
        _ if c < 0x10000 => format!(r"'\u{c:04x}'"),
        _ => format!(r"'\U{c:08x}'"),
    }
}

/// `%q` of a string as Go's `strconv.Quote` writes it (exactly for ASCII; other non-printable
/// characters are escaped as `\u`/`\U`), shortened first if very long.
fn go_quote(s: &str) -> String {
    let s = excerpt(s);
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_print(u32::from(c)) => out.push(c),
            c if u32::from(c) < 0x80 => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if u32::from(c) < 0x10000 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// A token from the file for an error message: lossily decoded, shortened, and on one line (a
/// quoted token can span lines with a backslash before the newline).
fn show(b: &[u8]) -> String {
    one_line(String::from_utf8_lossy(b))
}

impl<'a> Input<'a> {
    fn new(name: &'a str, data: &'a [u8]) -> Self {
        let start = Pos {
            line: 1,
            col: 1,
            byte: 0,
        };
        Input {
            name,
            data,
            off: 0,
            pos: start,
            token_start: 0,
            token: Token {
                kind: Kind::Eof,
                pos: start,
                end: start,
                text: b"",
            },
            comments: Vec::new(),
        }
    }

    fn error<T>(&self, msg: impl Into<String>) -> Syn<T> {
        Err(SyntaxError {
            pos: self.pos,
            msg: msg.into(),
        })
    }

    fn eof(&self) -> bool {
        self.off >= self.data.len()
    }

    fn peek_rune(&self) -> u32 {
        decode_rune(&self.data[self.off..]).0
    }

    fn peek_prefix(&self, prefix: &[u8]) -> bool {
        self.data[self.off..].starts_with(prefix)
    }

    fn read_rune(&mut self) -> u32 {
        let (c, size) = decode_rune(&self.data[self.off..]);
        self.off += size;
        if c == u32::from(b'\n') {
            self.pos.line += 1;
            self.pos.col = 1;
        } else {
            self.pos.col += 1;
        }
        self.pos.byte += size;
        c
    }

    fn start_token(&mut self) {
        self.token_start = self.off;
        self.token.pos = self.pos;
    }

    fn end_token(&mut self, kind: Kind) {
        let mut text = &self.data[self.token_start..self.off];
        if matches!(kind, Kind::Comment | Kind::EolComment) {
            text = text
                .strip_suffix(b"\r\n")
                .or_else(|| text.strip_suffix(b"\n"))
                .unwrap_or(text);
        }
        self.token.kind = kind;
        self.token.text = text;
        self.token.end = self.pos;
    }

    fn peek(&self) -> Kind {
        self.token.kind
    }

    fn lex(&mut self) -> Syn<Token<'a>> {
        let tok = self.token;
        self.read_token()?;
        Ok(tok)
    }

    /// Reads the next token into `self.token` (`readToken`).
    fn read_token(&mut self) -> Syn<()> {
        while !self.eof() {
            let c = self.peek_rune();
            if c == u32::from(b' ') || c == u32::from(b'\t') || c == u32::from(b'\r') {
                self.read_rune();
                continue;
            }
            if self.peek_prefix(b"//") {
                self.start_token();
                // A comment is a suffix if something other than space precedes it on its line.
                let line_start = self.data[..self.pos.byte]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let suffix = !String::from_utf8_lossy(&self.data[line_start..self.pos.byte])
                    .trim()
                    .is_empty();
                self.read_rune();
                self.read_rune();
                while !self.eof() && self.read_rune() != u32::from(b'\n') {}
                if !suffix {
                    self.end_token(Kind::Comment);
                    return Ok(());
                }
                self.end_token(Kind::EolComment);
                self.comments.push(Comment {
                    start: self.token.pos,
                    text: self.token.text,
                });
                return Ok(());
            }
            if self.peek_prefix(b"/*") {
                return self.error("mod files must use // comments (not /* */ comments)");
            }
            break;
        }

        self.start_token();
        if self.eof() {
            self.end_token(Kind::Eof);
            return Ok(());
        }

        let c = self.peek_rune();
        if let Ok(p @ (b'\n' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b',')) = u8::try_from(c) {
            self.read_rune();
            self.end_token(Kind::Punct(p));
            return Ok(());
        }
        if c == u32::from(b'"') || c == u32::from(b'`') {
            let quote = c;
            self.read_rune();
            loop {
                if self.eof() {
                    self.pos = self.token.pos;
                    return self.error("unexpected EOF in string");
                }
                if self.peek_rune() == u32::from(b'\n') {
                    return self.error("unexpected newline in string");
                }
                let c = self.read_rune();
                if c == quote {
                    break;
                }
                if c == u32::from(b'\\') && quote != u32::from(b'`') {
                    if self.eof() {
                        self.pos = self.token.pos;
                        return self.error("unexpected EOF in string");
                    }
                    self.read_rune();
                }
            }
            self.end_token(Kind::Str);
            return Ok(());
        }

        if !is_ident(c) {
            return self.error(format!("unexpected input character {}", quote_rune(c)));
        }
        while is_ident(self.peek_rune()) {
            if self.peek_prefix(b"//") {
                break;
            }
            if self.peek_prefix(b"/*") {
                return self.error("mod files must use // comments (not /* */ comments)");
            }
            self.read_rune();
        }
        self.end_token(Kind::Ident);
        Ok(())
    }

    /// `parseFile`.
    fn parse_file(&mut self) -> Syn<Vec<Stmt<'a>>> {
        let mut stmts = Vec::new();
        let mut cb: Option<(Pos, Vec<Comment<'a>>)> = None;
        loop {
            match self.peek() {
                Kind::Punct(b'\n') => {
                    self.lex()?;
                    if let Some((start, before)) = cb.take() {
                        stmts.push(Stmt::Comments {
                            comments: Comments {
                                before,
                                suffix: Vec::new(),
                            },
                            start,
                        });
                    }
                }
                Kind::Comment => {
                    let tok = self.lex()?;
                    let (_, before) = cb.get_or_insert_with(|| (tok.pos, Vec::new()));
                    before.push(Comment {
                        start: tok.pos,
                        text: tok.text,
                    });
                }
                Kind::Eof => {
                    if let Some((start, before)) = cb.take() {
                        stmts.push(Stmt::Comments {
                            comments: Comments {
                                before,
                                suffix: Vec::new(),
                            },
                            start,
                        });
                    }
                    return Ok(stmts);
                }
                _ => {
                    let mut stmt = self.parse_stmt()?;
                    if let Some((_, before)) = cb.take() {
                        match &mut stmt {
                            Stmt::Line(l) => l.comments.before = before,
                            Stmt::Block(b) => b.comments.before = before,
                            Stmt::Comments { .. } => unreachable!("parse_stmt makes no comments"),
                        }
                    }
                    stmts.push(stmt);
                }
            }
        }
    }

    /// `parseStmt`.
    fn parse_stmt(&mut self) -> Syn<Stmt<'a>> {
        let tok = self.lex()?;
        let start = tok.pos;
        let mut end = tok.end;
        let mut tokens = vec![tok.text];
        loop {
            let tok = self.lex()?;
            if tok.kind.is_eol() {
                return Ok(Stmt::Line(Line {
                    comments: Comments::default(),
                    start,
                    tokens,
                    end,
                }));
            }
            if tok.kind == Kind::Punct(b'(') {
                let next = self.peek();
                if next.is_eol() {
                    return Ok(Stmt::Block(self.parse_line_block(start, tokens, tok)?));
                } else if next == Kind::Punct(b')') {
                    let rparen = self.lex()?;
                    if self.peek().is_eol() {
                        // Empty block.
                        self.lex()?;
                        return Ok(Stmt::Block(LineBlock {
                            comments: Comments::default(),
                            start,
                            tokens,
                            lparen: Paren {
                                comments: Comments::default(),
                                pos: tok.pos,
                            },
                            lines: Vec::new(),
                            rparen: Paren {
                                comments: Comments::default(),
                                pos: rparen.pos,
                            },
                        }));
                    }
                    // "( )" in the middle of a line is not a block (and does not move `end`).
                    tokens.push(tok.text);
                    tokens.push(rparen.text);
                } else {
                    tokens.push(tok.text);
                }
                continue;
            }
            tokens.push(tok.text);
            end = tok.end;
        }
    }

    /// `parseLineBlock`.
    fn parse_line_block(
        &mut self,
        start: Pos,
        tokens: Vec<&'a [u8]>,
        lparen: Token<'a>,
    ) -> Syn<LineBlock<'a>> {
        let mut lines: Vec<Line<'a>> = Vec::new();
        let mut comments: Vec<Comment<'a>> = Vec::new();
        loop {
            match self.peek() {
                Kind::EolComment => {
                    self.lex()?;
                }
                Kind::Punct(b'\n') => {
                    self.lex()?;
                    // A blank line between lines of a block gives the next line an empty
                    // comment, so that it does not inherit the block's comments. (go also keeps
                    // blank lines after comments for reformatting; that changes no directive.)
                    if comments.is_empty() && !lines.is_empty() {
                        comments.push(Comment::default());
                    }
                }
                Kind::Comment => {
                    let tok = self.lex()?;
                    comments.push(Comment {
                        start: tok.pos,
                        text: tok.text,
                    });
                }
                Kind::Eof => {
                    return self.error(format!(
                        "syntax error (unterminated block started at {}:{}:{})",
                        self.name, start.line, start.col
                    ));
                }
                Kind::Punct(b')') => {
                    // Comments before the closing paren belong to no directive.
                    let rparen = self.lex()?;
                    if !self.peek().is_eol() {
                        return self.error("syntax error (expected newline after closing paren)");
                    }
                    self.lex()?;
                    return Ok(LineBlock {
                        comments: Comments::default(),
                        start,
                        tokens,
                        lparen: Paren {
                            comments: Comments::default(),
                            pos: lparen.pos,
                        },
                        lines,
                        rparen: Paren {
                            comments: Comments::default(),
                            pos: rparen.pos,
                        },
                    });
                }
                _ => {
                    let mut line = self.parse_line()?;
                    line.comments.before = std::mem::take(&mut comments);
                    lines.push(line);
                }
            }
        }
    }

    /// `parseLine`: one line inside a block.
    fn parse_line(&mut self) -> Syn<Line<'a>> {
        let tok = self.lex()?;
        let start = tok.pos;
        let mut end = tok.end;
        let mut tokens = vec![tok.text];
        loop {
            let tok = self.lex()?;
            if tok.kind.is_eol() {
                return Ok(Line {
                    comments: Comments::default(),
                    start,
                    tokens,
                    end,
                });
            }
            tokens.push(tok.text);
            end = tok.end;
        }
    }
}

/// A node of the syntax tree, for comment assignment.
#[derive(Clone, Copy)]
enum Node {
    Comments(usize),
    Line(usize),
    BlockLine(usize, usize),
    LParen(usize),
    RParen(usize),
    Block(usize),
}

/// Attaches each end-of-line comment to the last single-line syntax node ending before it
/// (`assignComments`; whole-line comments were attached by the parser).
fn assign_suffix_comments<'a>(stmts: &mut [Stmt<'a>], mut suffix: Vec<Comment<'a>>) {
    // Postorder: children before their block.
    let mut post = Vec::new();
    for (i, s) in stmts.iter().enumerate() {
        match s {
            Stmt::Comments { .. } => post.push(Node::Comments(i)),
            Stmt::Line(_) => post.push(Node::Line(i)),
            Stmt::Block(b) => {
                post.push(Node::LParen(i));
                post.extend((0..b.lines.len()).map(|j| Node::BlockLine(i, j)));
                post.push(Node::RParen(i));
                post.push(Node::Block(i));
            }
        }
    }
    let span = |stmts: &[Stmt<'a>], n: Node| -> (Pos, Pos) {
        match (n, &stmts[node_stmt(n)]) {
            (Node::Comments(_), Stmt::Comments { start, .. }) => (*start, *start),
            (Node::Line(_), Stmt::Line(l)) => (l.start, l.end),
            (Node::BlockLine(_, j), Stmt::Block(b)) => (b.lines[j].start, b.lines[j].end),
            (Node::LParen(_), Stmt::Block(b)) => (b.lparen.pos, b.lparen.pos.after_paren()),
            (Node::RParen(_), Stmt::Block(b)) => (b.rparen.pos, b.rparen.pos.after_paren()),
            (Node::Block(_), Stmt::Block(b)) => (b.start, b.rparen.pos.after_paren()),
            _ => unreachable!("node kind matches its statement"),
        }
    };
    let mut touched = Vec::new();
    for &n in post.iter().rev() {
        let (start, end) = span(stmts, n);
        // Never attach to something spanning lines: in `x ( y` / `z ) // c` the comment is z's.
        if start.line != end.line {
            continue;
        }
        while suffix.last().is_some_and(|c| end.byte <= c.start.byte) {
            let c = suffix.pop().expect("checked non-empty");
            let list = &mut node_comments(stmts, n).suffix;
            if list.is_empty() {
                touched.push(n);
            }
            list.push(c);
        }
    }
    // They were attached last first.
    for n in touched {
        node_comments(stmts, n).suffix.reverse();
    }
}

fn node_stmt(n: Node) -> usize {
    match n {
        Node::Comments(i)
        | Node::Line(i)
        | Node::BlockLine(i, _)
        | Node::LParen(i)
        | Node::RParen(i)
        | Node::Block(i) => i,
    }
}

fn node_comments<'s, 'a>(stmts: &'s mut [Stmt<'a>], n: Node) -> &'s mut Comments<'a> {
    match (n, &mut stmts[node_stmt(n)]) {
        (Node::Comments(_), Stmt::Comments { comments, .. }) => comments,
        (Node::Line(_), Stmt::Line(l)) => &mut l.comments,
        (Node::BlockLine(_, j), Stmt::Block(b)) => &mut b.lines[j].comments,
        (Node::LParen(_), Stmt::Block(b)) => &mut b.lparen.comments,
        (Node::RParen(_), Stmt::Block(b)) => &mut b.rparen.comments,
        (Node::Block(_), Stmt::Block(b)) => &mut b.comments,
        _ => unreachable!("node kind matches its statement"),
    }
}

// ---------------------------------------------------------------------------------------------
// Interpretation (x/mod/modfile rule.go).

fn parse_file(name: &str, data: &[u8], strict: bool) -> Result<ModFile, ModFileError> {
    let syntax_error = |e: SyntaxError| ModFileError {
        name: name.to_string(),
        problems: vec![Problem {
            line: e.pos.line,
            column: e.pos.col,
            reason: e.msg,
        }],
    };
    let mut input = Input::new(name, data);
    let mut stmts = input
        .read_token()
        .and_then(|()| input.parse_file())
        .map_err(syntax_error)?;
    assign_suffix_comments(&mut stmts, std::mem::take(&mut input.comments));

    let mut b = Builder {
        file: ModFile::default(),
        problems: Vec::new(),
        strict,
    };
    for stmt in &stmts {
        match stmt {
            Stmt::Comments { .. } => {}
            Stmt::Line(l) => b.add(None, l, l.tokens[0], &l.tokens[1..]),
            Stmt::Block(x) => {
                const BLOCKS: &[&[u8]] = &[
                    b"module", b"godebug", b"require", b"exclude", b"replace", b"retract", b"tool",
                    b"ignore",
                ];
                if x.tokens.len() > 1 || !BLOCKS.contains(&x.tokens[0]) {
                    if strict {
                        let joined: Vec<String> = x.tokens.iter().map(|t| show(t)).collect();
                        b.problem(
                            x.start,
                            format!("unknown block type: {}", excerpt(&joined.join(" "))),
                        );
                    }
                    continue;
                }
                for l in &x.lines {
                    b.add(Some(x), l, x.tokens[0], &l.tokens);
                }
            }
        }
    }
    if b.problems.is_empty() {
        Ok(b.file)
    } else {
        Err(ModFileError {
            name: name.to_string(),
            problems: b.problems,
        })
    }
}

struct Builder {
    file: ModFile,
    problems: Vec<Problem>,
    strict: bool,
}

/// `strconv.Unquote` for a token starting with `"`; `None` is "invalid syntax".
fn unquote(s: &[u8]) -> Option<Vec<u8>> {
    let inner = s.strip_prefix(b"\"")?;
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    loop {
        let c = *inner.get(i)?;
        match c {
            b'"' => {
                // The closing quote must end the token.
                return (i + 1 == inner.len()).then_some(out);
            }
            b'\n' => return None,
            b'\\' => {
                let e = *inner.get(i + 1)?;
                i += 2;
                let simple = match e {
                    b'a' => Some(7),
                    b'b' => Some(8),
                    b'f' => Some(12),
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    b'v' => Some(11),
                    b'\\' => Some(b'\\'),
                    b'"' => Some(b'"'),
                    _ => None,
                };
                if let Some(v) = simple {
                    out.push(v);
                    continue;
                }
                match e {
                    b'x' | b'u' | b'U' => {
                        let n = match e {
                            b'x' => 2,
                            b'u' => 4,
                            _ => 8,
                        };
                        let hex = inner.get(i..i + n)?;
                        let hex = std::str::from_utf8(hex).ok()?;
                        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                            return None;
                        }
                        let v = u32::from_str_radix(hex, 16).ok()?;
                        i += n;
                        if e == b'x' {
                            // A single byte, possibly not UTF-8.
                            out.push(u8::try_from(v).ok()?);
                        } else {
                            let ch = char::from_u32(v)?;
                            let mut buf = [0; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                    }
                    b'0'..=b'7' => {
                        let digits = inner.get(i..i + 2)?;
                        if !digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                            return None;
                        }
                        let v = u32::from(e - b'0') << 6
                            | u32::from(digits[0] - b'0') << 3
                            | u32::from(digits[1] - b'0');
                        i += 2;
                        out.push(u8::try_from(v).ok()?);
                    }
                    _ => return None,
                }
            }
            c if c < 0x80 => {
                out.push(c);
                i += 1;
            }
            _ => {
                // A multi-byte rune; an invalid byte becomes U+FFFD, as in Go.
                let (r, size) = decode_rune(&inner[i..]);
                let ch = char::from_u32(r).unwrap_or('\u{FFFD}');
                let mut buf = [0; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                i += size;
            }
        }
    }
}

/// Why a token's string value could not be taken (`parseString`'s errors, plus our UTF-8 rule).
enum StrError {
    /// `strconv.Unquote` failed.
    Syntax,
    /// An unquoted token containing `"`, `'` or `` ` ``.
    Quote,
    /// The value is not UTF-8 (go would accept it).
    Utf8,
}

impl fmt::Display for StrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StrError::Syntax => "invalid syntax",
            StrError::Quote => "unquoted string cannot contain quote",
            StrError::Utf8 => "invalid UTF-8",
        })
    }
}

/// `parseString`: a `"…"` token is unquoted; other tokens are taken as is but may not contain
/// quote characters (so `` `…` `` strings are refused).
fn parse_string_bytes(tok: &[u8]) -> Result<Vec<u8>, StrError> {
    if tok.starts_with(b"\"") {
        unquote(tok).ok_or(StrError::Syntax)
    } else if tok.iter().any(|b| matches!(b, b'"' | b'\'' | b'`')) {
        Err(StrError::Quote)
    } else {
        Ok(tok.to_vec())
    }
}

fn parse_string(tok: &[u8]) -> Result<String, StrError> {
    String::from_utf8(parse_string_bytes(tok)?).map_err(|_| StrError::Utf8)
}

/// A path argument's value, with go's message if it cannot be taken (or ours if it is not UTF-8).
fn string_arg(tok: &[u8]) -> Result<String, String> {
    parse_string(tok).map_err(|e| match e {
        StrError::Utf8 => format!(
            "invalid UTF-8 in {}",
            go_quote(&String::from_utf8_lossy(tok))
        ),
        e => format!("invalid quoted string: {e}"),
    })
}

/// The text of a directive's comments, one trimmed line per comment (`parseDirectiveComment`):
/// the line's own comments, or its block's if the line has none.
fn directive_comment(block: Option<&LineBlock<'_>>, line: &Line<'_>) -> String {
    let mut comments = &line.comments;
    if let Some(b) = block
        && comments.before.is_empty()
        && comments.suffix.is_empty()
    {
        comments = &b.comments;
    }
    let lines: Vec<String> = comments
        .before
        .iter()
        .chain(&comments.suffix)
        .filter_map(|c| c.text.strip_prefix(b"//"))
        .map(|t| String::from_utf8_lossy(t).trim().to_string())
        .collect();
    lines.join("\n")
}

/// The deprecation message in a directive comment: the first paragraph starting `Deprecated:`
/// (`(?s)(?:^|\n\n)Deprecated: *(.*?)(?:$|\n\n)`), without the prefix.
fn deprecation(text: &str) -> Option<String> {
    const PREFIX: &str = "Deprecated:";
    let start = if text.starts_with(PREFIX) {
        0
    } else {
        // The leftmost paragraph break followed by the prefix ("\n\n\nDeprecated:" matches at 1).
        text.find("\n\nDeprecated:")? + 2
    };
    let msg = text[start + PREFIX.len()..].trim_start_matches(' ');
    let msg = msg.find("\n\n").map_or(msg, |end| &msg[..end]);
    Some(msg.to_string()).filter(|m| !m.is_empty())
}

/// Whether a requirement line carries `// indirect` (`isIndirect`): its first end-of-line
/// comment is exactly `indirect`, or starts with the word `indirect;`.
fn is_indirect(line: &Line<'_>) -> bool {
    let Some(c) = line.comments.suffix.first() else {
        return false;
    };
    let text = c.text.strip_prefix(b"//").unwrap_or(c.text);
    let text = String::from_utf8_lossy(text);
    let f: Vec<&str> = text.split_whitespace().collect();
    (f.len() == 1 && f[0] == "indirect") || (f.len() > 1 && f[0] == "indirect;")
}

impl Builder {
    fn problem(&mut self, pos: Pos, reason: String) {
        self.problems.push(Problem {
            line: pos.line,
            column: pos.col,
            reason,
        });
    }

    /// `parseVersion` without a fixer: a semantic version, canonicalized. `path` is the module
    /// path for the message (`verb path: version "x" invalid: …`).
    fn version(&self, verb: &str, path: &str, tok: &[u8]) -> Result<Version, String> {
        let prefix = if path.is_empty() {
            format!("{verb}: ")
        } else {
            format!("{verb} {}: ", excerpt(path))
        };
        let t = parse_string_bytes(tok).map_err(|e| {
            format!(
                "{prefix}version {} invalid: {e}",
                go_quote(&String::from_utf8_lossy(tok))
            )
        })?;
        // Bytes that are not UTF-8 are no semantic version: the same error as in go.
        let t = String::from_utf8_lossy(&t);
        let cv = canonical_version(&t).ok_or_else(|| {
            format!(
                "{prefix}version {} invalid: must be of the form v1.2.3",
                go_quote(&t)
            )
        })?;
        Version::parse(&cv).map_err(|e| match e {
            crate::Error::InvalidVersion { reason, .. } => {
                format!("{prefix}version {} invalid: {reason}", go_quote(&cv))
            }
            other => format!("{prefix}{other}"),
        })
    }

    /// `module.CheckPathMajor` with go's message.
    fn path_major(verb: &str, path: &str, v: &Version, major: &str) -> Result<(), String> {
        check_path_major(v.as_str(), major).map_err(|e| match e {
            crate::Error::InvalidVersion { reason, .. } => format!(
                "{verb} {}: version {} invalid: {reason}",
                excerpt(path),
                go_quote(v.as_str())
            ),
            other => format!("{verb} {}: {other}", excerpt(path)),
        })
    }

    /// `File.add`: interprets one directive line.
    fn add(&mut self, block: Option<&LineBlock<'_>>, line: &Line<'_>, verb: &[u8], args: &[&[u8]]) {
        // In dependencies, keep only what matters outside the main module; skip the rest,
        // including directives newer than this parser.
        if !self.strict
            && !matches!(
                verb,
                b"go" | b"module" | b"retract" | b"require" | b"ignore"
            )
        {
            return;
        }
        let at = line.start;
        let result = match verb {
            b"go" => self.add_go(args),
            b"toolchain" => self.add_toolchain(args),
            b"module" => self.add_module(block, line, args),
            b"godebug" => self.add_godebug(line, args),
            b"require" | b"exclude" => self.add_require_or_exclude(line, verb, args),
            b"replace" => self.add_replace(line, args),
            b"retract" => self.add_retract(block, line, args),
            b"tool" | b"ignore" => self.add_tool_or_ignore(line, verb, args),
            _ => Err(format!("unknown directive: {}", show(verb))),
        };
        if let Err(reason) = result {
            self.problem(at, reason);
        }
    }

    fn add_go(&mut self, args: &[&[u8]]) -> Result<(), String> {
        if self.file.go.is_some() {
            return Err("repeated go statement".into());
        }
        let [v] = args else {
            return Err("go directive expects exactly one argument".into());
        };
        let v = if is_go_directive_version(v) {
            *v
        } else {
            match lax_go_version(v).filter(|_| !self.strict) {
                Some(fixed) => fixed,
                None => {
                    return Err(format!(
                        "invalid go version '{}': must match format 1.23.0",
                        show(v)
                    ));
                }
            }
        };
        // Both forms are ASCII.
        self.file.go = Some(String::from_utf8_lossy(v).into_owned());
        Ok(())
    }

    fn add_toolchain(&mut self, args: &[&[u8]]) -> Result<(), String> {
        if self.file.toolchain.is_some() {
            return Err("repeated toolchain statement".into());
        }
        let [name] = args else {
            return Err("toolchain directive expects exactly one argument".into());
        };
        if !is_toolchain_name(name) {
            return Err(format!(
                "invalid toolchain version '{}': must match format go1.23.0 or default",
                show(name)
            ));
        }
        let name = std::str::from_utf8(name)
            .map_err(|_| format!("invalid toolchain version '{}': invalid UTF-8", show(name)))?;
        self.file.toolchain = Some(name.to_string());
        Ok(())
    }

    fn add_module(
        &mut self,
        block: Option<&LineBlock<'_>>,
        line: &Line<'_>,
        args: &[&[u8]],
    ) -> Result<(), String> {
        if self.file.module.is_some() {
            return Err("repeated module statement".into());
        }
        // Set before checking the arguments, so a second bad one is "repeated", as in go.
        self.file.module = Some(Module {
            path: String::new(),
            deprecated: deprecation(&directive_comment(block, line)),
            line: line.start.line,
        });
        let [path] = args else {
            return Err("usage: module module/path".into());
        };
        let path = string_arg(path)?;
        if let Some(m) = &mut self.file.module {
            m.path = path;
        }
        Ok(())
    }

    fn add_godebug(&mut self, line: &Line<'_>, args: &[&[u8]]) -> Result<(), String> {
        let usage = || "usage: godebug key=value".to_string();
        let [kv] = args else { return Err(usage()) };
        if kv.iter().any(|b| matches!(b, b'"' | b'`' | b'\'' | b',')) {
            return Err(usage());
        }
        let kv = std::str::from_utf8(kv)
            .map_err(|_| format!("invalid godebug setting '{}': invalid UTF-8", show(kv)))?;
        let (key, value) = kv.split_once('=').ok_or_else(usage)?;
        self.file.godebug.push(Godebug {
            key: key.to_string(),
            value: value.to_string(),
            line: line.start.line,
        });
        Ok(())
    }

    fn add_require_or_exclude(
        &mut self,
        line: &Line<'_>,
        verb: &[u8],
        args: &[&[u8]],
    ) -> Result<(), String> {
        let verb = if verb == b"require" {
            "require"
        } else {
            "exclude"
        };
        let [path, version] = args else {
            return Err(format!("usage: {verb} module/path v1.2.3"));
        };
        let path = string_arg(path)?;
        let version = self.version(verb, &path, version)?;
        let (_, major) = split_path_version(&path).ok_or("invalid module path")?;
        Self::path_major(verb, &path, &version, major)?;
        if verb == "require" {
            self.file.require.push(Require {
                path,
                version,
                indirect: is_indirect(line),
                line: line.start.line,
            });
        } else {
            self.file.exclude.push(Exclude {
                path,
                version,
                line: line.start.line,
            });
        }
        Ok(())
    }

    /// `parseReplace`.
    fn add_replace(&mut self, line: &Line<'_>, args: &[&[u8]]) -> Result<(), String> {
        let arrow = if args.len() >= 2 && args[1] == b"=>" {
            1
        } else {
            2
        };
        if args.len() < arrow + 2 || args.len() > arrow + 3 || args[arrow] != b"=>" {
            return Err("usage: replace module/path [v1.2.3] => other/module v1.4 \
                        or replace module/path [v1.2.3] => ../local/directory"
                .into());
        }
        let old_path = string_arg(args[0])?;
        let (_, major) = split_path_version(&old_path)
            .ok_or_else(|| format!("replace {}: invalid module path", excerpt(&old_path)))?;
        let old_version = if arrow == 2 {
            let v = self.version("replace", &old_path, args[1])?;
            Self::path_major("replace", &old_path, &v, major)?;
            Some(v)
        } else {
            None
        };
        let new_path = string_arg(args[arrow + 1])?;
        let new = if args.len() == arrow + 2 {
            if !is_directory_path(&new_path) {
                if new_path.contains('@') {
                    return Err("replacement module must match format 'path version', \
                                not 'path@version'"
                        .into());
                }
                return Err("replacement module without version must be directory path \
                            (rooted or starting with . or ..)"
                    .into());
            }
            if std::path::MAIN_SEPARATOR == '/' && new_path.contains('\\') {
                return Err(
                    "replacement directory appears to be Windows path (on a non-windows system)"
                        .into(),
                );
            }
            Replacement::Dir(new_path)
        } else {
            let version = self.version("replace", &new_path, args[arrow + 2])?;
            if is_directory_path(&new_path) {
                return Err(format!(
                    "replacement module directory path {} cannot have version",
                    go_quote(&new_path)
                ));
            }
            Replacement::Module {
                path: new_path,
                version,
            }
        };
        self.file.replace.push(Replace {
            old_path,
            old_version,
            new,
            line: line.start.line,
        });
        Ok(())
    }

    /// `retract v` or `retract [lo, hi]`, versions kept as written (`parseVersionInterval`
    /// with go's no-op retract fixer).
    fn add_retract(
        &mut self,
        block: Option<&LineBlock<'_>>,
        line: &Line<'_>,
        args: &[&[u8]],
    ) -> Result<(), String> {
        let rationale = directive_comment(block, line);
        let version = |tok: &[u8]| -> Result<String, String> {
            let b = parse_string_bytes(tok).map_err(|e| {
                format!(
                    "retract: version {} invalid: {e}",
                    go_quote(&String::from_utf8_lossy(tok))
                )
            })?;
            // Not UTF-8 is not a semantic version either, which is all that matters here.
            Ok(String::from_utf8_lossy(&b).into_owned())
        };
        let interval = (|| -> Result<(String, String, &[&[u8]]), String> {
            match args {
                [] | [b"(", ..] => Err("expected '[' or version".into()),
                [b"[", rest @ ..] => {
                    let [lo, rest @ ..] = rest else {
                        return Err("expected version after '['".into());
                    };
                    let lo = version(lo)?;
                    let [b",", rest @ ..] = rest else {
                        return Err("expected ',' after version".into());
                    };
                    let [hi, rest @ ..] = rest else {
                        return Err("expected version after ','".into());
                    };
                    let hi = version(hi)?;
                    let [b"]", rest @ ..] = rest else {
                        return Err("expected ']' after version".into());
                    };
                    Ok((lo, hi, rest))
                }
                [v, rest @ ..] => {
                    let v = version(v)?;
                    Ok((v.clone(), v, rest))
                }
            }
        })();
        let (low, high, rest) = match interval {
            Ok(i) => i,
            // A dependency may use interval syntax newer than this parser: skip it.
            Err(_) if !self.strict => return Ok(()),
            Err(e) => return Err(e),
        };
        if let (Some(extra), true) = (rest.first(), self.strict) {
            return Err(format!(
                "unexpected token after version: {}",
                go_quote(&String::from_utf8_lossy(extra))
            ));
        }
        self.file.retract.push(Retract {
            low,
            high,
            rationale,
            line: line.start.line,
        });
        Ok(())
    }

    fn add_tool_or_ignore(
        &mut self,
        line: &Line<'_>,
        verb: &[u8],
        args: &[&[u8]],
    ) -> Result<(), String> {
        let tool = verb == b"tool";
        let [path] = args else {
            return Err(if tool {
                "tool directive expects exactly one argument".into()
            } else {
                "ignore directive expects exactly one argument".into()
            });
        };
        let path = string_arg(path)?;
        let line = line.start.line;
        if tool {
            self.file.tool.push(Tool { path, line });
        } else {
            self.file.ignore.push(Ignore { path, line });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_go_mod_must_declare_a_path_of_the_same_major() {
        let m = |p: &str| ModulePath::parse(p).unwrap();
        let ok = |module: &str, body: &str| check_module_go_mod(&m(module), body.as_bytes());
        assert!(ok("example.com/m", "module example.com/m\n").is_ok());
        // A fork with the original's path: used through replace.
        assert!(ok("example.com/fork", "module example.com/m\ngo 1.21\n").is_ok());
        assert!(ok("example.com/fork/v2", "module example.com/m/v2\n").is_ok());
        assert!(ok("gopkg.in/yaml.v2", "module gopkg.in/yaml.v2\n").is_ok());
        assert!(ok("example.com/m", "module gopkg.in/yaml.v1\n").is_ok());
        let err = ok("example.com/m", "go 1.21\nrequire example.com/x v1.0.0\n").unwrap_err();
        assert!(err.contains("no module line"), "{err}");
        assert!(
            ok("example.com/m", "")
                .unwrap_err()
                .contains("no module line")
        );
        let err = ok("example.com/m", "module example.com/m/v2\n").unwrap_err();
        assert!(err.contains("cannot be a version"), "{err}");
        assert!(ok("example.com/m/v3", "module example.com/m\n").is_err());
        assert!(ok("example.com/m/v3", "module example.com/m/v2\n").is_err());
        assert!(ok("example.com/m", "module \"has space\"\n").is_err());
        assert!(ok("example.com/m", "module foo\n").is_err());
        assert!(ok("example.com/m", "modul example.com/m\n").is_err());
    }

    #[test]
    fn go_version_order() {
        let ordered = [
            "1.9",
            "1.17",
            "1.20",
            "1.21",
            "1.21rc1",
            "1.21rc2",
            "1.21.0",
            "1.21.1",
            "1.22beta1",
        ];
        for w in ordered.windows(2) {
            assert_eq!(compare_go_versions(w[0], w[1]), Ordering::Less, "{w:?}");
            assert_eq!(compare_go_versions(w[1], w[0]), Ordering::Greater, "{w:?}");
        }
        assert_eq!(compare_go_versions("1.20", "1.20.0"), Ordering::Equal);
        assert_eq!(compare_go_versions("junk", "also junk"), Ordering::Equal);
        assert_eq!(compare_go_versions("junk", "1"), Ordering::Less);
    }

    #[test]
    fn go_directive_regexps() {
        for ok in ["1.21", "1.21.0", "1.21rc1", "10.0", "1.0.0beta2"] {
            assert!(is_go_directive_version(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "1", "01.2", "1.02", "1.2.03", "1.21rc", "1.21-rc1", "v1.21", "1.21.0.0",
        ] {
            assert!(!is_go_directive_version(bad.as_bytes()), "{bad}");
        }
        let lax =
            |s: &str| lax_go_version(s.as_bytes()).map(|v| String::from_utf8_lossy(v).into_owned());
        assert_eq!(lax("1.21-pre").as_deref(), Some("1.21"));
        assert_eq!(lax("v1.21.x").as_deref(), Some("1.21"));
        assert_eq!(lax("1.0beta").as_deref(), Some("1.0"));
        assert_eq!(lax("v1.21"), None);
        assert_eq!(lax("1.021x"), None);
        assert_eq!(lax("1.2x\ny"), None);
        assert_eq!(lax("1.2\nx").as_deref(), Some("1.2"));
    }

    #[test]
    fn unquote_matches_strconv() {
        let u = |s: &str| unquote(s.as_bytes()).map(|v| String::from_utf8_lossy(&v).into_owned());
        assert_eq!(u(r#""a\tb\u00e9\101""#).as_deref(), Some("a\tbéA"));
        assert_eq!(u(r#""a"b""#), None);
        assert_eq!(u(r#""\'""#), None);
        assert_eq!(u(r#""\400""#), None);
        assert_eq!(u(r#""\ud800""#), None);
        assert_eq!(u(r#""abc"#), None);
        assert_eq!(unquote(br#""\xff""#), Some(vec![0xff]));
    }

    #[test]
    fn errors_display_on_one_line() {
        let e = ModFile::parse("go.mod", b"\"a\\\nb\" x\n").unwrap_err();
        assert_eq!(e.to_string(), r#"go.mod:1: unknown directive: "a\ b""#);
        let many = "module m\n".to_string() + &"bad\n".repeat(7);
        let e = ModFile::parse("go.mod", many.as_bytes()).unwrap_err();
        assert_eq!(e.problems.len(), 7);
        assert!(
            e.to_string()
                .ends_with("go.mod:6: unknown directive: bad; and 2 more"),
            "{e}"
        );
    }

    #[test]
    fn deprecation_paragraphs() {
        assert_eq!(deprecation("Deprecated: use x"), Some("use x".into()));
        assert_eq!(
            deprecation("a\n\nDeprecated:  b\nc\n\nd"),
            Some("b\nc".into())
        );
        assert_eq!(deprecation("a\nDeprecated: b"), None);
        assert_eq!(deprecation("Deprecated:"), None);
        assert_eq!(deprecation("\n\n\nDeprecated: x"), Some("x".into()));
    }
}
