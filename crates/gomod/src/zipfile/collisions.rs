//! x/mod/zip's `collisionChecker`, one path at a time, for code that builds a module zip
//! (crates/vcs): it needs to know at once whether the next file may go in. [`check_zip`] applies
//! the same rule to a whole zip by sorting its names instead (see `names.rs`), which needs no
//! map of strings; a test checks that both agree.
//!
//! [`check_zip`]: super::check_zip

use std::collections::HashMap;

use super::names::str_to_fold;

/// Two entries of a module zip that cannot both be in it (x/mod's messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollisionError {
    /// Two names equal under Unicode case folding.
    #[error("case-insensitive file name collision: {first:?} and {second:?}")]
    CaseFold {
        /// The name recorded first.
        first: String,
        /// The name that collides with it.
        second: String,
    },
    /// A name used both as a file and as a directory.
    #[error("entry {0:?} is both a file and a directory")]
    FileAndDirectory(String),
    /// The same file twice.
    #[error("multiple entries for file {0:?}")]
    DuplicateFile(String),
}

/// Finds names equal under Unicode case folding and names used both as a file and as a
/// directory (every parent of an entry is a directory), as x/mod's `collisionChecker` does.
///
/// Public so that code building a module zip (crates/vcs) applies exactly the rule that
/// [`check_zip`](super::check_zip) enforces.
#[derive(Debug, Default)]
pub struct Collisions {
    /// Folded path → (path as first seen, is directory).
    seen: HashMap<String, (String, bool)>,
}

impl Collisions {
    /// Records `path` (a file, or a directory if `is_dir`) and all its parent directories;
    /// fails with x/mod's message if it collides with an entry recorded before.
    pub fn check(&mut self, path: &str, is_dir: bool) -> Result<(), CollisionError> {
        let (mut p, mut dir) = (path, is_dir);
        loop {
            let fold = str_to_fold(p);
            match self.seen.get(&fold) {
                Some((other, other_dir)) => {
                    if other != p {
                        return Err(CollisionError::CaseFold {
                            first: other.clone(),
                            second: p.to_string(),
                        });
                    }
                    if *other_dir != dir {
                        return Err(CollisionError::FileAndDirectory(p.to_string()));
                    }
                    if !dir {
                        return Err(CollisionError::DuplicateFile(p.to_string()));
                    }
                }
                None => {
                    self.seen.insert(fold, (p.to_string(), dir));
                }
            }
            match p.rfind('/') {
                Some(i) => {
                    p = &p[..i];
                    dir = true;
                }
                None => return Ok(()),
            }
        }
    }
}
