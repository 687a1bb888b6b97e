//! Module path and version validation (`golang.org/x/mod/module`).

use std::fmt;

use crate::Error;

/// A module path that passed `CheckPath`; holds the unescaped (original-case) form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModulePath(String);

impl ModulePath {
    /// Validates an unescaped module path as `module.CheckPath` does.
    pub fn parse(path: &str) -> Result<Self, Error> {
        // Placeholder until the full CheckPath port lands.
        if path.is_empty() || path.split('/').any(|e| e.is_empty() || e.starts_with('.')) {
            return Err(Error::InvalidPath { path: path.into(), reason: "bad element".into() });
        }
        Ok(ModulePath(path.to_string()))
    }
    /// Unescapes (`!x` → `X`) and validates.
    pub fn from_escaped(escaped: &str) -> Result<Self, Error> {
        Self::parse(&crate::escape::unescape(escaped)?)
    }
    /// The unescaped path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The `!`-escaped form used in URLs and storage keys.
    pub fn escaped(&self) -> String {
        crate::escape::escape(&self.0)
    }
}

impl fmt::Display for ModulePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A canonical Go semantic version (`v1.2.3`, `v1.2.3-pre`, pseudo-versions, `+incompatible`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(String);

impl Version {
    /// Accepts only canonical versions (`semver::canonical(v) == v`, keeping `+incompatible`).
    pub fn parse(version: &str) -> Result<Self, Error> {
        // Placeholder until the semver port lands.
        if !version.starts_with('v') || version.contains('/') {
            return Err(Error::InvalidVersion { version: version.into(), reason: "not canonical".into() });
        }
        Ok(Version(version.to_string()))
    }
    /// Unescapes and validates a canonical version.
    pub fn from_escaped(escaped: &str) -> Result<Self, Error> {
        Self::parse(&crate::escape::unescape(escaped)?)
    }
    /// The version string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The `!`-escaped form.
    pub fn escaped(&self) -> String {
        crate::escape::escape(&self.0)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
