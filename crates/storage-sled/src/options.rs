//! [`SledOptions`]: the store's directory, sled's page-cache bound and flush interval, and
//! whether reads check body sizes; the server's `[storage.sled]` section.

use std::path::PathBuf;

const MIB: u64 = 1024 * 1024;

/// How to open a [`SledStorage`](crate::SledStorage). Build with struct update syntax:
/// `SledOptions { path: dir.into(), ..SledOptions::default() }`.
///
/// With the `serde` feature it deserializes itself with the configuration's keys: `path`,
/// `cache_capacity` (for [`cache_capacity_bytes`](Self::cache_capacity_bytes)), `flush_every_ms`
/// (0 for `None`) and `verify_size_on_read`. A key it does not have is an error; a key left out
/// keeps its default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(default, deny_unknown_fields)
)]
pub struct SledOptions {
    /// Directory of the store, created if missing: the database in [`SLED_DIR`](crate::SLED_DIR),
    /// body files in [`BODIES_DIR`](crate::BODIES_DIR). Default `./data/sled`.
    pub path: PathBuf,
    /// Upper bound of sled's page cache, in bytes. Default 64 MiB (sled's own default is
    /// 1 GiB). The cache holds manifests and inline bodies only. sled's accounting is lazy (see
    /// the crate docs): allow some more resident memory than this. Must be non-zero. Key
    /// `cache_capacity`.
    #[cfg_attr(feature = "serde", serde(rename = "cache_capacity"))]
    pub cache_capacity_bytes: u64,
    /// Interval of sled's background log flush (write + fsync), in milliseconds; `None` turns it
    /// off. Saves and deletes flush explicitly before they return either way, so this only
    /// bounds how long the removal of cleanup records stays unsynced. Default `Some(500)`
    /// (sled's default). In the configuration, 0 stands for `None`.
    #[cfg_attr(feature = "serde", serde(with = "zero_is_off"))]
    pub flush_every_ms: Option<u64>,
    /// Compare a body file's size with the size its manifest recorded on every read, before
    /// the first byte is sent: a truncated or extended file is
    /// [`StorageError::Corrupt`](gomodproxy_storage::StorageError::Corrupt) instead of a short
    /// answer. Default on.
    pub verify_size_on_read: bool,
}

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            path: PathBuf::from("./data/sled"),
            cache_capacity_bytes: 64 * MIB,
            flush_every_ms: Some(500),
            verify_size_on_read: true,
        }
    }
}

/// Why [`SledOptions`] cannot be used. `Display` says what is wrong with the setting that
/// [`SledOptionsError::key`] names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SledOptionsError {
    /// `path` is empty.
    #[error("must not be empty")]
    EmptyPath,
    /// `cache_capacity_bytes` is 0 (sled needs a page cache).
    #[error("must be greater than 0")]
    ZeroCacheCapacity,
}

impl SledOptionsError {
    /// The key of the offending setting, as the configuration spells it (`cache_capacity`).
    pub fn key(&self) -> &'static str {
        match self {
            SledOptionsError::EmptyPath => "path",
            SledOptionsError::ZeroCacheCapacity => "cache_capacity",
        }
    }

    /// The [`SledOptions`] field of the offending setting (`cache_capacity_bytes`), for callers
    /// that set the struct in code.
    pub fn field(&self) -> &'static str {
        match self {
            SledOptionsError::EmptyPath => "path",
            SledOptionsError::ZeroCacheCapacity => "cache_capacity_bytes",
        }
    }
}

impl SledOptions {
    /// Checks what the types do not: [`SledStorage::open`](crate::SledStorage::open) calls it,
    /// and so can a configuration loader, to name the key before anything is opened.
    pub fn validate(&self) -> Result<(), SledOptionsError> {
        if self.path.as_os_str().is_empty() {
            return Err(SledOptionsError::EmptyPath);
        }
        if self.cache_capacity_bytes == 0 {
            return Err(SledOptionsError::ZeroCacheCapacity);
        }
        Ok(())
    }
}

/// `flush_every_ms` in the configuration: a number of milliseconds, 0 for off (`None`).
#[cfg(feature = "serde")]
mod zero_is_off {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(value.unwrap_or(0))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Ok(Some(u64::deserialize(d)?).filter(|&ms| ms > 0))
    }
}
