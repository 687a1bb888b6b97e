//! Tag pins: the commit each tag resolved to the first time this proxy used it. A tag that later
//! points elsewhere upstream (moved) or disappears (deleted) keeps its pinned commit here, so a
//! version once served never changes; each such tag is logged and counted once.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::refs::Refs;
use crate::error::VcsError;

#[derive(Debug, Default, Serialize, Deserialize)]
struct PinFile {
    url: String,
    /// Tag name → commit hash.
    tags: BTreeMap<String, String>,
}

/// What [`Pins::apply`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PinReport {
    /// Tags upstream now points elsewhere, newly seen: (tag, pinned, upstream).
    pub moved: Vec<(String, String, String)>,
    /// Tags upstream no longer has, newly seen: (tag, pinned).
    pub deleted: Vec<(String, String)>,
}

#[derive(Debug)]
pub(crate) struct Pins {
    path: PathBuf,
    url: String,
    tags: BTreeMap<String, String>,
    /// (tag, upstream hash or "") already reported, so each change is counted once per process.
    reported: HashSet<(String, String)>,
}

impl Pins {
    /// Loads the pins of `url` from `path` (none if the file does not exist).
    pub fn load(path: PathBuf, url: &str) -> Result<Pins, VcsError> {
        let tags = match std::fs::read(&path) {
            Ok(data) => {
                let file: PinFile = serde_json::from_slice(&data).map_err(|e| {
                    VcsError::io(
                        format!("reading tag pins {}", path.display()),
                        std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                    )
                })?;
                file.tags
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(VcsError::io(
                    format!("reading tag pins {}", path.display()),
                    e,
                ));
            }
        };
        Ok(Pins {
            path,
            url: url.to_string(),
            tags,
            reported: HashSet::new(),
        })
    }

    #[cfg(test)]
    pub fn get(&self, tag: &str) -> Option<&str> {
        self.tags.get(tag).map(String::as_str)
    }

    /// Pins `tag` to `hash` unless it is pinned already; returns whether it was new. The file
    /// is replaced atomically (temp file, fsync, rename).
    pub fn pin(&mut self, tag: &str, hash: &str) -> Result<bool, VcsError> {
        if self.tags.contains_key(tag) {
            return Ok(false);
        }
        self.tags.insert(tag.to_string(), hash.to_string());
        if let Err(e) = self.save() {
            self.tags.remove(tag);
            return Err(e);
        }
        Ok(true)
    }

    fn save(&self) -> Result<(), VcsError> {
        let file = PinFile {
            url: self.url.clone(),
            tags: self.tags.clone(),
        };
        let data = serde_json::to_vec_pretty(&file)
            .map_err(|e| VcsError::io("encoding tag pins", std::io::Error::other(e)))?;
        write_atomic(&self.path, &data)
            .map_err(|e| VcsError::io(format!("writing tag pins {}", self.path.display()), e))
    }

    /// Replaces, in `refs`, every pinned tag by its pinned commit, and reports the tags whose
    /// upstream value differs (each once).
    pub fn apply(&mut self, refs: &mut Refs) -> PinReport {
        let mut report = PinReport::default();
        for (tag, pinned) in &self.tags {
            let name = format!("refs/tags/{tag}");
            match refs.map.get(&name) {
                Some(up) if up == pinned => continue,
                Some(up) => {
                    if self.reported.insert((tag.clone(), up.clone())) {
                        report.moved.push((tag.clone(), pinned.clone(), up.clone()));
                    }
                }
                None => {
                    if self.reported.insert((tag.clone(), String::new())) {
                        report.deleted.push((tag.clone(), pinned.clone()));
                    }
                }
            }
            refs.map.insert(name, pinned.clone());
        }
        report
    }
}

/// Writes `data` to `path` so that readers see the old or the new content, never a part.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_and_deleted_tags_keep_their_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let mut pins = Pins::load(path.clone(), "https://x/y").unwrap();
        assert!(pins.pin("v1.0.0", "aaaa").unwrap());
        assert!(pins.pin("v1.1.0", "bbbb").unwrap());
        assert!(!pins.pin("v1.0.0", "cccc").unwrap());

        let mut pins = Pins::load(path, "https://x/y").unwrap();
        assert_eq!(pins.get("v1.0.0"), Some("aaaa"));
        let mut refs = Refs::default();
        refs.map.insert("refs/tags/v1.0.0".into(), "cccc".into());
        let report = pins.apply(&mut refs);
        assert_eq!(
            report.moved,
            vec![("v1.0.0".to_string(), "aaaa".to_string(), "cccc".to_string())]
        );
        assert_eq!(
            report.deleted,
            vec![("v1.1.0".to_string(), "bbbb".to_string())]
        );
        assert_eq!(refs.get("refs/tags/v1.0.0"), Some("aaaa"));
        assert_eq!(refs.get("refs/tags/v1.1.0"), Some("bbbb"));
        // Reported once.
        let mut refs2 = Refs::default();
        refs2.map.insert("refs/tags/v1.0.0".into(), "cccc".into());
        assert_eq!(pins.apply(&mut refs2), PinReport::default());
    }
}
