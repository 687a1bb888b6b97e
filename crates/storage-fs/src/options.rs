//! [`FsOptions`]: where the store lives and whether reads check lengths; the server's
//! `[storage.fs]` section.

use std::path::PathBuf;

/// Settings of [`FsStorage::open_with`](crate::FsStorage::open_with).
///
/// With the `serde` feature it deserializes itself under the names of its fields (`root`,
/// `verify_size_on_read`): a key it does not have is an error, a key left out keeps its default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(default, deny_unknown_fields)
)]
pub struct FsOptions {
    /// The directory holding the GOPROXY-layout tree, created if missing. Default `./data`.
    pub root: PathBuf,
    /// Record each object's length at save time and check it on every read (see the crate
    /// docs), so a file truncated on disk is an error instead of a short answer. Default on.
    pub verify_size_on_read: bool,
}

impl Default for FsOptions {
    fn default() -> Self {
        FsOptions {
            root: PathBuf::from("./data"),
            verify_size_on_read: true,
        }
    }
}

/// Why [`FsOptions`] cannot be used. `Display` says what is wrong with the setting that
/// [`FsOptionsError::key`] names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FsOptionsError {
    /// `root` is empty (which would put the store in the working directory unannounced).
    #[error("must not be empty")]
    EmptyRoot,
}

impl FsOptionsError {
    /// The key of the offending setting, as the configuration spells it (`root`).
    pub fn key(&self) -> &'static str {
        match self {
            FsOptionsError::EmptyRoot => "root",
        }
    }
}

impl FsOptions {
    /// Checks what the types do not: [`FsStorage::open_with`](crate::FsStorage::open_with)
    /// calls it, and so can a configuration loader, to name the key before anything is opened.
    pub fn validate(&self) -> Result<(), FsOptionsError> {
        if self.root.as_os_str().is_empty() {
            return Err(FsOptionsError::EmptyRoot);
        }
        Ok(())
    }
}
