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

mod build;
mod gover;
mod lex;
mod print_table;

use build::parse_file;
pub use gover::{compare_go_versions, is_valid_go_version};
pub use lex::quote;

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

/// Why a go.mod served by a proxy is one the go command would refuse.
#[derive(Debug, thiserror::Error)]
pub enum GoModError {
    /// Not UTF-8 text.
    #[error("go.mod is not valid UTF-8: {0}")]
    NotUtf8(#[source] std::str::Utf8Error),
    /// `modfile.ParseLax` would fail.
    #[error("go.mod does not parse: {0}")]
    Parse(#[source] ModFileError),
    #[error(
        "go.mod has no module line (the go command refuses it: \"parsing go.mod: missing module line\")"
    )]
    /// No `module` directive.
    NoModuleLine,
    #[error(
        "go.mod declares module {declared:?}, which cannot be a version of {module} (a different major version or a malformed path)"
    )]
    /// Declares a path that cannot be a version of the requested module.
    OtherModule {
        /// The path the file declares.
        declared: String,
        /// The module it was served as.
        module: ModulePath,
    },
}

/// Checks a dependency's go.mod as the go command reads it from a proxy: UTF-8 text that
/// [`ModFile::parse_lax`] accepts.
pub fn check_dependency_go_mod(body: &[u8]) -> Result<(), GoModError> {
    parse_dependency_go_mod(body).map(|_| ())
}

fn parse_dependency_go_mod(body: &[u8]) -> Result<ModFile, GoModError> {
    std::str::from_utf8(body).map_err(GoModError::NotUtf8)?;
    ModFile::parse_lax("go.mod", body).map_err(GoModError::Parse)
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
pub fn check_module_go_mod(module: &ModulePath, body: &[u8]) -> Result<(), GoModError> {
    let file = parse_dependency_go_mod(body)?;
    let declared = file
        .module_path()
        .filter(|p| !p.is_empty())
        .ok_or(GoModError::NoModuleLine)?;
    if declared == module.as_str() {
        return Ok(());
    }
    let (_, want_major) = module.split_major();
    if is_major(declared, want_major)
        || (want_major.is_empty() && declared.starts_with("gopkg.in/"))
    {
        return Ok(());
    }
    Err(GoModError::OtherModule {
        declared: declared.to_string(),
        module: module.clone(),
    })
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

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::gover::*;
    use super::*;

    /// `strconv.Quote` of Go 1.26 on the same strings (printed by a Go program).
    #[test]
    fn quote_is_go_strconv_quote() {
        for (raw, go) in [
            ("v1.0.0", r#""v1.0.0""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("tab\there\n", r#""tab\there\n""#),
            ("\x7f\x01", r#""\x7f\x01""#),
            ("é日本", r#""é日本""#),
            ("nb\u{a0}sp", r#""nb\u00a0sp""#),
            ("zw\u{200b}sp", r#""zw\u200bsp""#),
            ("\u{e0001}tag", r#""\U000e0001tag""#),
            ("😀", r#""😀""#),
        ] {
            assert_eq!(quote(raw), go, "{raw:?}");
        }
    }

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
        assert!(err.to_string().contains("no module line"), "{err}");
        assert!(
            ok("example.com/m", "")
                .unwrap_err()
                .to_string()
                .contains("no module line")
        );
        let err = ok("example.com/m", "module example.com/m/v2\n").unwrap_err();
        assert!(err.to_string().contains("cannot be a version"), "{err}");
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
