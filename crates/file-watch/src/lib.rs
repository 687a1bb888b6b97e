//! Noticing that a configured file changed, without inotify: a poll of each file's metadata
//! (device, inode, size, mtime, ctime). That sees in-place writes, atomic renames over the file
//! and Kubernetes' symlink swaps (metadata follows the link), costs a few `stat` calls per
//! interval, and works on every filesystem (inotify does not see changes on NFS or through
//! some container mounts).
//!
//! One copy for every component that reloads files (users and tokens, policy, certificates).

#![deny(missing_docs)]

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// What the metadata of one file said (`None`: it could not be read).
type FileStamp = Option<(u64, u64, u64, Option<SystemTime>, i64, i64)>;

fn stamp(path: &PathBuf) -> FileStamp {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let (dev, ino, ctime, ctime_ns) = {
        use std::os::unix::fs::MetadataExt as _;
        (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec())
    };
    #[cfg(not(unix))]
    let (dev, ino, ctime, ctime_ns) = (0, 0, 0, 0);
    Some((dev, ino, meta.len(), meta.modified().ok(), ctime, ctime_ns))
}

/// The files one component loads, and what they looked like when it last loaded them.
#[derive(Debug)]
pub struct ChangeTracker {
    paths: Vec<PathBuf>,
    seen: Mutex<Vec<FileStamp>>,
}

impl ChangeTracker {
    /// Tracks `paths`, taking their current state as seen.
    pub fn new(paths: Vec<PathBuf>) -> ChangeTracker {
        let seen = paths.iter().map(stamp).collect();
        ChangeTracker {
            paths,
            seen: Mutex::new(seen),
        }
    }

    /// Records the files' current state; call right before reading them, so that a change
    /// made while they are read is seen by the next poll.
    pub fn mark(&self) {
        let now: Vec<FileStamp> = self.paths.iter().map(stamp).collect();
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    /// Reports whether any file differs from its state at the last [`ChangeTracker::mark`].
    pub fn changed(&self) -> bool {
        let now: Vec<FileStamp> = self.paths.iter().map(stamp).collect();
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) != now
    }

    /// Whether it tracks no file at all (nothing to watch).
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

/// A background thread that polls for changes and reloads; stops when dropped (or when the
/// component it watches is dropped).
#[derive(Debug)]
pub struct Watcher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Calls `tick` on the target every `interval` until the watcher or the target is dropped.
    pub fn spawn<T: Send + Sync + 'static>(
        name: &str,
        interval: Duration,
        target: Weak<T>,
        tick: fn(&T) -> bool,
    ) -> std::io::Result<Watcher> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("watch-{name}"))
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let Some(target) = target.upgrade() else {
                        return;
                    };
                    tick(&target);
                }
            })?;
        Ok(Watcher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Closing the channel wakes the thread at once.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_writes_renames_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "one").unwrap();
        let t = ChangeTracker::new(vec![path.clone()]);
        assert!(!t.changed());
        std::fs::write(&path, "two!").unwrap();
        assert!(t.changed());
        t.mark();
        assert!(!t.changed());
        let tmp = dir.path().join("f.new");
        std::fs::write(&tmp, "two!").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert!(t.changed(), "a rename over the file is a new inode");
        t.mark();
        std::fs::remove_file(&path).unwrap();
        assert!(t.changed());
        t.mark();
        assert!(!t.changed());
    }
}
