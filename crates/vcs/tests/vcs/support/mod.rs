//! The hermetic world the tests run in — [`gomodproxy_test_support::git::GitWorld`], shared
//! with the end-to-end tests — and the crate's side of the oracle ([`oracle`]).

pub mod oracle;

pub use gomodproxy_test_support::git::{GitWorld, PRIVATE_PASSWORD, PRIVATE_USER, Repo};

/// The git world, with the crate's configuration for it (see [`oracle`]).
pub struct Env(GitWorld);

impl Env {
    pub fn new() -> Env {
        Env(GitWorld::new())
    }
}

impl std::ops::Deref for Env {
    type Target = GitWorld;
    fn deref(&self) -> &GitWorld {
        &self.0
    }
}
