//! What an operator asks to prewarm: [`Item`]s as written on the command line, in a list file
//! or in the config, parsed once into types.

use std::fmt;
use std::path::PathBuf;

use gomod::{ModulePath, Version};

/// The module of Go toolchain distributions.
pub const TOOLCHAIN_MODULE: &str = "golang.org/toolchain";

/// One thing to prewarm, as written on the command line, in a list file or in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `module@version`: its `.info`, `.mod` and `.zip`.
    Version(ModulePath, Version),
    /// `module@latest`: the version the go command would pick, then as [`Item::Version`].
    Latest(ModulePath),
    /// `go.mod:PATH` (or a path ending in `go.mod`): the module graph the go command loads for
    /// that main module — the `.mod` of every version in it, and `.info`/`.mod`/`.zip` of the
    /// selected versions of the modules the main module requires.
    GoMod(PathBuf),
    /// `go.sum:PATH` (or a path ending in `go.sum`): every line; a `/go.mod` line needs the
    /// `.mod` only, any other line the `.info`, `.mod` and `.zip`.
    GoSum(PathBuf),
    /// `toolchain:go1.X.Y@GOOS/GOARCH`: the `golang.org/toolchain` module version the go command
    /// downloads when it switches to that toolchain.
    Toolchain {
        /// `go1.22.1`, `go1.23rc1`.
        go: String,
        /// `linux`, `darwin`, …
        goos: String,
        /// `amd64`, `arm64`, …
        goarch: String,
    },
}

/// Why a prewarm item does not parse: the item as written, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prewarm item {item:?}: {problem}")]
pub struct ItemError {
    /// The item, trimmed.
    pub item: String,
    /// What is wrong with it.
    pub problem: ItemProblem,
}

/// What is wrong with a prewarm item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ItemProblem {
    /// None of the item forms.
    #[error(
        "want module@version, module@latest, go.mod:PATH, go.sum:PATH or toolchain:goX.Y.Z[@GOOS/GOARCH]"
    )]
    Form,
    /// A toolchain's platform that is not `GOOS/GOARCH`.
    #[error("the platform must be GOOS/GOARCH, like linux/amd64")]
    Platform,
    /// A toolchain name or platform that names no toolchain (`go1.22.1@linux/amd64`).
    #[error("{0} is not a toolchain like go1.22.1@linux/amd64")]
    Toolchain(String),
    /// An invalid module path or version (or a version of another major version).
    #[error(transparent)]
    Module(#[from] gomod::Error),
}

impl Item {
    /// Parses one item. A toolchain without a platform is for `default_platform`
    /// (`GOOS/GOARCH`).
    pub fn parse(text: &str, default_platform: &str) -> Result<Item, ItemError> {
        let text = text.trim();
        Item::parse_trimmed(text, default_platform).map_err(|problem| ItemError {
            item: text.to_string(),
            problem,
        })
    }

    fn parse_trimmed(text: &str, default_platform: &str) -> Result<Item, ItemProblem> {
        if let Some(path) = text.strip_prefix("go.mod:") {
            return Ok(Item::GoMod(PathBuf::from(path)));
        }
        if let Some(path) = text.strip_prefix("go.sum:") {
            return Ok(Item::GoSum(PathBuf::from(path)));
        }
        if let Some(spec) = text.strip_prefix("toolchain:") {
            let (go, platform) = spec.split_once('@').unwrap_or((spec, default_platform));
            let (goos, goarch) = platform.split_once('/').ok_or(ItemProblem::Platform)?;
            let item = Item::Toolchain {
                go: go.to_string(),
                goos: goos.to_string(),
                goarch: goarch.to_string(),
            };
            item.toolchain_version()?;
            return Ok(item);
        }
        if !text.contains('@') {
            if text.ends_with("go.mod") {
                return Ok(Item::GoMod(PathBuf::from(text)));
            }
            if text.ends_with("go.sum") {
                return Ok(Item::GoSum(PathBuf::from(text)));
            }
        }
        let (module, version) = text.rsplit_once('@').ok_or(ItemProblem::Form)?;
        let module = ModulePath::parse(module)?;
        if version == "latest" {
            return Ok(Item::Latest(module));
        }
        let version = Version::parse(version)?;
        module.check_version(&version)?;
        Ok(Item::Version(module, version))
    }

    /// The `golang.org/toolchain` module version of a toolchain item (`None` for other items).
    pub(super) fn toolchain_version(&self) -> Result<Option<Version>, ItemProblem> {
        let Item::Toolchain { go, goos, goarch } = self else {
            return Ok(None);
        };
        let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if !go.starts_with("go1") || !ok(goos) || !ok(goarch) {
            return Err(ItemProblem::Toolchain(format!("{go}@{goos}/{goarch}")));
        }
        Ok(Some(Version::parse(&format!(
            "v0.0.1-{go}.{goos}-{goarch}"
        ))?))
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Version(m, v) => write!(f, "{m}@{v}"),
            Item::Latest(m) => write!(f, "{m}@latest"),
            Item::GoMod(p) => write!(f, "go.mod:{}", p.display()),
            Item::GoSum(p) => write!(f, "go.sum:{}", p.display()),
            Item::Toolchain { go, goos, goarch } => write!(f, "toolchain:{go}@{goos}/{goarch}"),
        }
    }
}
