//! Test helpers shared by gomodproxy's test trees (`crates/bundle/tests`,
//! `crates/service/tests` and the end-to-end harness in `tests/harness`), so that each exists
//! once:
//!
//! - [`TestLog`]: a Go checksum database's transparency log of go.sum records ([`ModuleRecord`]),
//!   signed with a test key — tree heads, tiles (hash and data), lookup answers — built with
//!   `gomod`'s own hashing and signing (the go command, or an independent tree in the tests, is
//!   the judge of the result). It can grow, be cut to a prefix, be re-signed by another key, and
//!   have its history rewritten (a fork an honest database never makes).
//! - [`make_zip`]: a module zip with files under `module@version/`.
//! - [`git`]: a hermetic git world (repositories with fixed dates served by `git daemon` and
//!   by `git http-backend` behind basic auth, a go-import page proxy) and the judge of direct
//!   fetching: the go command in `GOPROXY=direct` mode, or through a proxy, on the same
//!   repositories. The vcs crate's tests and the end-to-end tests use this one copy.
//!
//! Only test code depends on this crate (a dev-dependency of the library crates, a dependency of
//! the test harness); it may depend on `gomod` and nothing else of the workspace, so that any
//! crate's tests can use it without a dependency cycle (so the vcs crate's tests keep their
//! crate-side half of the oracle, which calls `gomodproxy_vcs`, themselves).

#![deny(missing_docs)]

pub mod git;
mod log;
mod zip;

pub use crate::log::{FILLER_PREFIX, ModuleRecord, TestLog};
pub use crate::zip::make_zip;
