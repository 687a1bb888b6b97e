//! The Go checksum database (`golang.org/x/mod/sumdb`), without I/O.
//!
//! - [`note`]: signed notes and verifier keys (the `GOSUMDB` key format), verification and
//!   signing (the proxy verifies; the test harness signs its own database).
//! - [`tlog`]: the transparency log: record and node hashes, stored-hash indexes, tree hashes,
//!   tiles and their paths, and [`tlog::TilePlan`], which says which tiles authenticate a set of
//!   hashes against a signed tree and then checks them — the I/O between the two steps is the
//!   caller's.
//! - [`Lookup`]: the body of a `/lookup/<module>@<version>` answer, and [`Record`]: the go.sum
//!   lines it carries.
//! - [`SumdbPath`]: a validated path under `/sumdb/<name>/`.

pub mod note;
pub mod tlog;

mod lookup;
mod path;

pub use lookup::{Lookup, Record};
pub use path::{SumdbName, SumdbPath};

/// What is wrong with checksum-database data. The message names the item and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SumdbError(pub String);

impl SumdbError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        SumdbError(message.into())
    }
}
