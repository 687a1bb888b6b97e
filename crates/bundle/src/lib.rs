//! Air-gap transfer of a gomodproxy store: [`export`] to a bundle file, [`import`] a bundle (or
//! a `$GOMODCACHE/cache/download` directory) with every object validated before it is stored,
//! and [`verify`] what a store holds. Everything goes through the [`Storage`] trait, so a bundle
//! exported from one backend imports into any other.
//!
//! It depends on `gomod` (the module and checksum-database rules), the storage trait, and
//! `gomodproxy-service` for two things only: the small-object checks ([`validate`], one copy for
//! serving and importing) and the [`Progress`] trait every batch job reports through. Never on a
//! backend or the server.
//!
//! # The bundle format (version 1)
//!
//! One file: a tar stream (GNU headers, so module paths of any length fit) compressed as one
//! zstd frame with a content checksum.
//!
//! - The first entry is `gomodproxy-bundle.json` ([`Manifest`]): `format`
//!   (`"gomodproxy-bundle"`), `version` (1), `created` (RFC 3339), `source` (the store it came
//!   from), `selection`, `sumdb`, and the `objects`/`bytes` that follow with `counts` by kind.
//! - Every other entry is one store object, a regular file named exactly [`Key::path`]
//!   (`github.com/!azure/sdk/@v/v1.2.3.zip`, `<module>/@v/list`, `<module>/@latest`,
//!   `sumdb/<name>/latest`, `sumdb/<name>/lookup/<module>@<version>`, `sumdb/<name>/tile/…`),
//!   its body the object's bytes as stored, its mtime the store time.
//! - Order ([`order_key`]): all `sumdb/` objects first, then the rest by path, except that a
//!   version's `.ziphash` comes right before its `.zip`. An import reads the bundle once, in this
//!   order: it checks the checksum database before any artifact, and a zip against the hash the
//!   source recorded.
//!
//! zstd rather than gzip: zips are most of a bundle's bytes and are already compressed, so the
//! codec's speed matters more than its ratio; zstd at level 3 passes them through several times
//! faster than deflate (which would bound export and import throughput on one core), still
//! shrinks the text objects, and its frame checksum catches a bundle damaged in transit. The
//! standard tools read it: `tar --zstd -tvf bundle.tar.zst`.
//!
//! # Validation on import
//!
//! Nothing invalid is stored, and nothing stored is overwritten by something different:
//!
//! 1. Checksum-database objects (staged on disk until all are there), per database: the
//!    database must be configured (its verifier key). The *anchor* tree is the source's `latest`
//!    (which must open with the key; for a `$GOPATH/pkg/mod/cache/download` directory, the go
//!    command's own `$GOPATH/pkg/sumdb/<name>/latest` stands in), else the store's, else the
//!    largest signed tree among the source's lookups. If the source and the
//!    store both have a head, the smaller tree must be proven a prefix of the bigger one with the
//!    tiles at hand, or nothing of that database is imported. Each tile must be what the anchor
//!    commits to (a `TilePlan::for_tile` proof; a narrower tile a prefix of the tree's). Each
//!    lookup must parse, hold the record of its module version, carry a signed note, and its
//!    record must be provable in the anchor with the store's and the source's tiles. Stored in
//!    the order tiles, lookups, tree head.
//! 2. `.ziphash`: must be an `h1:` hash; it is never stored as given — it is checked against
//!    its zip, and the stored `.ziphash` is the hash computed from the zip.
//! 3. `.zip`: spooled to a temporary file, validated with `check_zip` for the key's module and
//!    version (which computes its `h1:`); the hash must equal the source's `.ziphash` if there is
//!    one and every stored checksum-database record of that version; a version whose lookup in
//!    the source was refused has its artifacts refused too.
//! 4. `.mod`: UTF-8 that parses as a go.mod (`ParseLax`); its go.mod hash must equal the
//!    records'.
//! 5. `.info`: JSON whose `Version` is the key's version. `list`: lines of versions of the
//!    module (merged with a stored list). `@latest`: info JSON of a version of the module (the
//!    higher of the stored and the new one is kept).
//!
//! An object already stored with the same bytes counts as "already there"; a different one under
//! an immutable key is a conflict, refused. Entries that are not store objects (lock files,
//! partial downloads, hidden files) are skipped and counted.
//!
//! Memory stays bounded: zips stream through temporary files, small objects are capped
//! (the go command's 16 MiB for a go.mod, 1 MiB for the rest), the source reader runs at most a few
//! objects ahead, and tiles are cached up to 32 MiB. Export and verify hold the store's listing
//! (keys and sizes) in memory to sort it.

#![deny(missing_docs)]

mod error;
mod export;
mod import;
mod manifest;
mod order;
mod source;
mod sumdb;
mod verdict;
mod verify;

pub use error::BundleError;
pub use export::{
    DEFAULT_LEVEL, ExportOptions, ExportReport, export, export_to_path, read_since,
    side_manifest_path,
};
/// Progress is reported the way every batch job of the proxy reports it: a bundle run's step is
/// one object, named by its path (`Progress<str>`), and every problem it finds is told to the
/// sink as it is found, as well as listed in the run's report.
pub use gomodproxy_service::progress::{NoProgress, Problem, Progress};
pub use import::{ImportOptions, ImportPolicy, ImportReport, import};
pub use manifest::{
    FORMAT_NAME, FORMAT_VERSION, Follows, INVENTORY_NAME, Inventory, MANIFEST_NAME, Manifest,
    SideManifest, TreeRef,
};
pub use order::order_key;
pub use source::ImportSource;
pub use sumdb::Verifiers;
pub use verify::{VerifyOptions, VerifyReport, verify};

#[cfg(doc)]
use gomodproxy_service::validate;
#[cfg(doc)]
use gomodproxy_storage::{Key, Storage};

/// Largest `.info`, `@latest`, `list`, lookup or tree head an import or verify reads, in bytes.
pub(crate) const MAX_SMALL: u64 = 1 << 20;

/// Largest `.mod` an import or verify reads (the go command's limit for a go.mod).
pub(crate) const MAX_MOD: u64 = gomod::zipfile::MAX_GO_MOD;
