//! Go module rules, with no I/O.
//!
//! This crate is the bottom of the workspace: everything that decides whether a module path, a
//! version or a module zip is acceptable lives here, written to match the go command
//! (`golang.org/x/mod/{module,semver,zip,sumdb/dirhash}`), so that the proxy rejects bad input
//! before it touches storage or an upstream.
//!
//! - [`ModulePath`] and [`Version`]: validated values; once you hold one, it is safe to use as a
//!   storage key component or in an upstream URL.
//! - [`escape`]: the `!` case-escaping used in proxy URLs and on disk.
//! - [`semver`]: Go's semver (the `v` prefix, shorthands, ordering that ignores build metadata).
//! - [`pseudo`]: pseudo-version recognition.
//! - [`zipfile`]: module zip validation (size caps, names, prefix, case-fold collisions), which
//!   also computes the zip's `h1:` hash, streaming the zip in memory bounded by its limits.
//! - [`dirhash`]: the `h1:` hash of file sets and go.mod files.
//! - [`glob`]: GOPRIVATE-style path prefix patterns.
//! - [`request`]: parsing a GOPROXY request path into a typed request.
//! - [`revinfo`]: the `.info` / `@latest` JSON, checked as the go command reads it.
//! - [`sumdb`]: the checksum database: signed notes, the transparency log and its tiles, lookup
//!   answers.
//! - [`modfile`]: go.mod parsing, strict (main module) and lax (dependencies), and Go language
//!   version comparison.
//! - [`gosum`]: go.sum parsing.
//!
//! Every rule is a port of the go command's behaviour, not of its code, and is tested against
//! vectors produced by the real `go` command and by `golang.org/x/mod` itself (see
//! `testdata/make-vectors.sh`: `tests/go_vectors.rs` checks zip and go.mod hashes and zip
//! verdicts, `tests/xmod_vectors.rs` checks paths, versions, escaping and patterns). Where the
//! proxy is deliberately stricter than x/mod (length caps, symlink entries, a root `go.mod`
//! directory or more than a million entries in zips, `+incompatible` on versions the go command
//! would never produce), the item's docs say so.
//! Character classes that depend on Unicode data (`unicode.IsLetter`, case folding) use tables
//! generated from Go itself (`testdata/gen-unicode-tables.go`), because Rust's
//! `char::is_alphabetic` and lower-casing are different sets.
//!
//! Depends on no crate of this workspace (it is the bottom layer); everything above may use it.

#![deny(missing_docs)]

mod case_escape;
pub mod dirhash;
pub mod escape;
pub mod glob;
pub mod gosum;
pub mod modfile;
pub mod module;
pub mod pseudo;
pub mod request;
pub mod revinfo;
pub mod semver;
pub mod sumdb;
pub mod zipfile;

mod error;
mod unicode_tables;

pub use error::Error;
pub use module::{ModulePath, Version};
pub use request::{InfoVersion, ProxyRequest};
pub use zipfile::{ZipLimits, ZipSummary, check_zip};

/// Whether `c` is in one of `table`'s inclusive ranges (sorted, not overlapping): the lookup
/// behind the generated Unicode tables (`unicode.IsLetter`, `unicode.IsPrint`).
pub(crate) fn in_ranges(table: &[(u32, u32)], c: u32) -> bool {
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}
