//! Counters the service exposes under `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Event counters of one [`crate::Direct`], shared by all its repositories.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub moved_tags: AtomicU64,
    pub deleted_tags: AtomicU64,
    pub ls_remotes: AtomicU64,
    pub fetches: AtomicU64,
    pub full_fetches: AtomicU64,
    pub go_get_requests: AtomicU64,
    pub probes: AtomicU64,
    pub zips: AtomicU64,
    pub pruned_mirrors: AtomicU64,
}

impl Metrics {
    pub fn inc(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A snapshot of the counters (monotonic since the [`crate::Direct`] was created).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirectStats {
    /// Tags found pointing at a different commit upstream than when first served (each tag and
    /// new commit counted once). The old commit keeps being served.
    pub moved_tags: u64,
    /// Served tags found deleted upstream (each counted once); they keep being served.
    pub deleted_tags: u64,
    /// `git ls-remote` runs.
    pub ls_remotes: u64,
    /// Fetches of single refs (shallow while a mirror is incomplete).
    pub fetches: u64,
    /// Fetches of all heads and tags with history.
    pub full_fetches: u64,
    /// go-get discovery requests sent.
    pub go_get_requests: u64,
    /// Blob-less probes of a repository's tree (to prove a directory is not a module).
    pub probes: u64,
    /// git processes started.
    pub git_processes: u64,
    /// Module zips written.
    pub zips: u64,
    /// Mirrors deleted for disuse.
    pub pruned_mirrors: u64,
}

impl Metrics {
    pub fn snapshot(&self, git_processes: u64) -> DirectStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DirectStats {
            moved_tags: get(&self.moved_tags),
            deleted_tags: get(&self.deleted_tags),
            ls_remotes: get(&self.ls_remotes),
            fetches: get(&self.fetches),
            full_fetches: get(&self.full_fetches),
            go_get_requests: get(&self.go_get_requests),
            probes: get(&self.probes),
            git_processes,
            zips: get(&self.zips),
            pruned_mirrors: get(&self.pruned_mirrors),
        }
    }
}
