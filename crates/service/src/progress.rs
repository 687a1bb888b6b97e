//! Progress of the long batch jobs — [`prewarm`](crate::prewarm) here; export, import and verify
//! in `gomodproxy-bundle` — told to a sink: a terminal progress bar, log lines, metrics.
//!
//! One trait for every job: [`Progress`] is generic over what a job says when one step is done
//! (a [`TargetDone`](crate::prewarm::TargetDone) for prewarm, an object's path for a bundle
//! run), every method has a default that ignores the call, and [`NoProgress`] is the one sink
//! that shows nothing. A job tells the sink; what it found is in the job's report either way.

use std::fmt;

/// One thing and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What it is about: an object's path ([`Key::path`](gomodproxy_storage::Key::path)) or a
    /// source entry's name.
    pub path: String,
    /// Why, in one line.
    pub reason: String,
}

impl Problem {
    /// A problem with `path`.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Receives the progress of a job whose finished steps are described by a `Step`. Calls come
/// from one task at a time.
pub trait Progress<Step: ?Sized>: Send + Sync {
    /// A phase starts (`listing the store`, `fetching`, `sealing …`), with its size when known:
    /// how many steps and how many bytes.
    fn phase(&self, _name: &str, _steps: Option<u64>, _bytes: Option<u64>) {}
    /// One step is done, having moved `bytes` (read, written or fetched).
    fn step(&self, _step: &Step, _bytes: u64) {}
    /// A problem found along the way, as it is found (the job's report lists it too).
    fn problem(&self, _problem: &Problem) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl<Step: ?Sized> Progress<Step> for NoProgress {}
