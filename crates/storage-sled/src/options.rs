//! [`SledOptions`]: the store's directory, sled's page-cache bound and flush interval, and
//! whether reads check body sizes.

use std::path::PathBuf;

const MIB: u64 = 1024 * 1024;

/// How to open a [`SledStorage`]. Build with struct update syntax:
/// `SledOptions { path: dir.into(), ..SledOptions::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SledOptions {
    /// Directory of the store, created if missing: the database in [`SLED_DIR`], body files in
    /// [`BODIES_DIR`]. Default `./data/sled`.
    pub path: PathBuf,
    /// Upper bound of sled's page cache, in bytes. Default 64 MiB (sled's own default is
    /// 1 GiB). The cache holds manifests and inline bodies only. sled's accounting is lazy (see
    /// the crate docs): allow some more resident memory than this. Must be non-zero.
    pub cache_capacity_bytes: u64,
    /// Interval of sled's background log flush (write + fsync), in milliseconds; `None` turns it
    /// off. Saves and deletes flush explicitly before they return either way, so this only
    /// bounds how long the removal of cleanup records stays unsynced. Default `Some(500)`
    /// (sled's default).
    pub flush_every_ms: Option<u64>,
    /// Compare a body file's size with the size its manifest recorded on every read, before
    /// the first byte is sent: a truncated or extended file is [`StorageError::Corrupt`]
    /// instead of a short answer. Default on.
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
