//! [`SledStorage::audit`](crate::SledStorage::audit): one scan of the whole store for body files
//! no object refers to and objects whose body is missing or of the wrong size.

use std::io;

use crate::error::{Context, SledError, io_error};
use crate::inner::Inner;
use crate::manifest::{Manifest, Stored, parse_body_name};

/// What [`SledStorage::audit`](crate::SledStorage::audit) found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// Objects stored (manifests).
    pub objects: u64,
    /// Sum of their body sizes.
    pub object_bytes: u64,
    /// Objects whose body is stored in the database.
    pub inline_objects: u64,
    /// Files in the bodies directory.
    pub body_files: u64,
    /// Bytes in those files.
    pub body_file_bytes: u64,
    /// Files in the bodies directory that no object refers to: saves in progress, replaced or
    /// deleted bodies not yet removed, and anything leaked. Zero in a quiescent, healthy store.
    pub unreferenced_files: u64,
    /// Records of body files awaiting removal (saves in progress, replaced or deleted bodies).
    /// Zero in a quiescent, healthy store.
    pub cleanup_records: u64,
    /// Objects whose manifest cannot be read or whose body file is missing or of the wrong size,
    /// one line each, sorted. Empty in a healthy store.
    pub damaged: Vec<String>,
}

impl Inner {
    /// One full scan of the store; see [`SledStorage::audit`].
    pub(crate) fn audit(&self) -> Result<Audit, SledError> {
        let db = self.db_name();
        let mut audit = Audit::default();
        let mut referenced = std::collections::HashMap::new();
        for item in self.objects.iter() {
            let (key, value) = item.context("scan objects of", &db)?;
            let path = String::from_utf8_lossy(&key).into_owned();
            audit.objects += 1;
            match Manifest::decode(&value) {
                Ok(m) => {
                    audit.object_bytes += m.size;
                    match m.stored {
                        Stored::Inline => audit.inline_objects += 1,
                        Stored::File { generation } => {
                            referenced.insert(generation, (path, m.size));
                        }
                    }
                }
                Err(problem) => audit.damaged.push(format!("{path}: {problem}")),
            }
        }
        let entries =
            std::fs::read_dir(&self.bodies).map_err(|e| io_error("list", &self.bodies, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list", &self.bodies, e))?;
            let len = match entry.metadata() {
                Ok(md) => md.len(),
                // Removed since the listing (a concurrent cleanup).
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("stat", &entry.path(), e)),
            };
            audit.body_files += 1;
            audit.body_file_bytes += len;
            let name = entry.file_name();
            let generation = name.to_str().and_then(parse_body_name);
            match generation.and_then(|g| referenced.remove(&g)) {
                Some((path, size)) if size != len => audit.damaged.push(format!(
                    "{path}: body file {} has {len} bytes, expected {size}",
                    name.to_string_lossy()
                )),
                Some(_) => {}
                None => audit.unreferenced_files += 1,
            }
        }
        for (generation, (path, _)) in referenced {
            audit
                .damaged
                .push(format!("{path}: body file {generation:016x} is missing"));
        }
        audit.cleanup_records = self.unreferenced.len() as u64;
        audit.damaged.sort();
        Ok(audit)
    }
}
