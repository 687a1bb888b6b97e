//! The sled backend of gomodproxy's [`Storage`] trait: an embedded, single-process store in one
//! directory, for a proxy that runs as one instance and wants no external service.
//!
//! [`SledStorage::open`] takes [`SledOptions`] (directory, page-cache bound, background flush
//! interval). Keys are opaque: an object lives under its [`Key::path`], listings are string-prefix
//! scans over [`ListPrefix::path_prefix`], and keys are rebuilt with [`Key::from_path`], so new key
//! kinds (checksum-database tiles under `sumdb/…`) need no change here.
//!
//! # Layout
//! ```text
//! <path>/sled/     the sled database
//! <path>/bodies/   one file per body larger than INLINE_MAX bytes, named by its generation
//! ```
//! The database has two trees, plus the default tree for a format marker and check probes:
//!
//! - `objects`: `Key::path()` → *manifest*: format byte `1`, storage byte (`0` inline, `1`
//!   file), body size (u64), store time (u64 seconds + u32 nanoseconds since the Unix epoch),
//!   *generation* (u64, that of the body file; 0 when inline), integers big-endian, then an
//!   inline body. This tree is also the listing index.
//! - `unreferenced`: generation (u64 BE) → state byte (`0` save in progress, `1` replaced or
//!   deleted) ‖ key path: body files that no manifest refers to and that must be removed.
//!
//! Body files are named by generation (16 hex digits), a number from sled's crash-safe
//! `generate_id`, so no two saves ever share a file.
//!
//! # Why large bodies are files, not sled values
//! A first version kept bodies in sled as 64 KiB chunks. It could not stream a 200 MiB object
//! within 100 MiB of resident memory, at any chunk size (4–64 KiB) or segment size tried: sled
//! 0.34 kept every written and every read chunk in memory. Two things in its page cache cause
//! this. A page larger than a quarter of a segment (128 KiB by default) is written as a blob and
//! counted in the cache at the size of its log pointer, a few bytes; and the cache (256 shards)
//! only processes a shard's accesses in batches of 64, so the few hundred leaf pages of one large
//! body are never evicted, whatever `cache_capacity` says. Only bodies that are not in sled's page
//! cache stream in bounded memory, so sled holds the manifests (small values, which its cache
//! does bound) and bodies up to [`INLINE_MAX`] bytes (`.info`, `.ziphash`, `@latest`, short
//! lists), and larger bodies are files, read and written in 64–256 KiB pieces.
//!
//! # Atomicity and durability
//! A body up to [`INLINE_MAX`] bytes is collected in memory and stored with its manifest in one
//! transaction. A larger one first gets a generation, recorded in `unreferenced` (state 0) and
//! flushed, so the record is on disk before the file exists; the payload then streams into the
//! file, which is fsynced, and the directory is fsynced. One small multi-tree transaction makes
//! it visible: insert the manifest, drop its generation from `unreferenced`, and record the
//! replaced body file's generation there (state 1). sled is then flushed (fsync), so a completed
//! `put` survives a crash, and only after that flush is the replaced body file removed (removed
//! before it, a crash could bring back the old manifest without its file). A reader therefore
//! sees the previous manifest or the new one, and a manifest only names a body that is complete
//! on disk. A payload that fails or has the wrong length, a dropped `put` future and a failed
//! commit leave the manifest untouched and remove the new file. `delete` is the same
//! transaction without a new manifest, and the same flush before the file goes.
//!
//! # Crashes
//! A crash can leave the file of a save in progress, or a replaced body file whose removal had
//! not finished. Both are recorded in `unreferenced`, durably before the file could exist, and
//! [`SledStorage::open`] removes every such file before serving. Nothing of a save that had not
//! completed is ever visible. [`SledStorage::audit`] checks the whole store for unreferenced or
//! missing body files. If sled itself cannot recover its log (damaged recoveries after abrupt
//! kills are reported against sled 0.34: issues 1527, 1533), `open` fails with an error naming
//! the store; it never starts over empty on its own. The tests kill a saving process with
//! SIGKILL and check what the next `open` finds.
//!
//! # Concurrent readers
//! `get` looks the manifest up and opens the body file while holding a shared lock; removing a
//! replaced or deleted body file takes it exclusively. So a reader either opened the old file
//! before it was unlinked, and (on Unix) streams the whole old body from the open descriptor, or
//! sees the new manifest. Bodies are checked against their size: a damaged store yields an error,
//! never a short body.
//!
//! # Blocking
//! Every sled call and every file operation runs off the async runtime (`spawn_blocking`, tokio's
//! file I/O), except [`SledStorage::open`], which is synchronous (like the filesystem backend's)
//! and meant for startup. The database is closed when the store and every clone of it are
//! dropped.
//!
//! # Modules
//! `options` ([`SledOptions`]), `manifest` (the values of the two trees), `inner` (the database
//! and the blocking steps: lookup, the manifest switch, purging body files), `staging` (a body
//! file being written), `list`, `audit` and `store` ([`SledStorage`] and the trait).
//!
//! # Dependencies
//! Of gomodproxy's crates: `gomodproxy-storage` (the trait it implements) and
//! `gomodproxy-file-body` (streaming a body file). Nothing depends on it but the server's
//! backend factory (and tests); it never reaches up to the service or the server.
//!
//! [`Storage`]: gomodproxy_storage::Storage
//! [`Key::path`]: gomodproxy_storage::Key::path
//! [`ListPrefix::path_prefix`]: gomodproxy_storage::ListPrefix::path_prefix
//! [`Key::from_path`]: gomodproxy_storage::Key::from_path

#![deny(missing_docs)]

mod audit;
mod error;
mod inner;
mod list;
mod manifest;
mod options;
mod staging;
mod store;

pub use audit::Audit;
pub use options::{SledOptions, SledOptionsError};
pub use store::SledStorage;

/// Bodies up to this many bytes are stored in the database, inside their manifest; larger ones
/// are files. Small enough that a sled leaf page (up to 17 entries) stays well below sled's
/// blob threshold, so its cache accounts for it.
pub const INLINE_MAX: usize = 512;

/// Directory of the sled database under [`SledOptions::path`].
pub const SLED_DIR: &str = "sled";

/// Directory of body files under [`SledOptions::path`].
pub const BODIES_DIR: &str = "bodies";
