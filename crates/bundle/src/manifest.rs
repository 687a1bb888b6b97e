//! `gomodproxy-bundle.json`, the first entry of every bundle.

use std::collections::BTreeMap;

use gomod::sumdb::SumdbPath;
use gomodproxy_storage::{ArtifactKind, Key};
use serde::{Deserialize, Serialize};

/// The name of the manifest entry.
pub const MANIFEST_NAME: &str = "gomodproxy-bundle.json";

/// The value of [`Manifest::format`].
pub const FORMAT_NAME: &str = "gomodproxy-bundle";

/// The bundle format version this crate writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// What a bundle says about itself. Counts are of the objects as listed when the export
/// started; an object deleted from the store during the export is missing from the bundle but
/// counted here (the export reports it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// [`FORMAT_VERSION`] of the writer.
    pub version: u32,
    /// When the export started, RFC 3339 UTC.
    pub created: String,
    /// The store the bundle was made from (`fs:/var/lib/gomodproxy`).
    pub source: String,
    /// What was selected: `everything`, or the module patterns and go.sum files.
    pub selection: String,
    /// Whether checksum-database objects were included.
    pub sumdb: bool,
    /// Number of objects after the manifest.
    pub objects: u64,
    /// Their total size in bytes (uncompressed).
    pub bytes: u64,
    /// Objects by kind (`info`, `mod`, `zip`, `ziphash`, `list`, `latest`, `sumdb-latest`,
    /// `sumdb-lookup`, `sumdb-tile`).
    pub counts: BTreeMap<String, u64>,
}

/// The name under which [`Manifest::counts`] counts `key`.
pub fn kind_name(key: &Key) -> &'static str {
    match key {
        Key::Artifact { kind, .. } => match kind {
            ArtifactKind::Info => "info",
            ArtifactKind::Mod => "mod",
            ArtifactKind::Zip => "zip",
            ArtifactKind::ZipHash => "ziphash",
        },
        Key::List { .. } => "list",
        Key::Latest { .. } => "latest",
        Key::Sumdb { path, .. } => match path {
            SumdbPath::Latest => "sumdb-latest",
            SumdbPath::Lookup { .. } => "sumdb-lookup",
            SumdbPath::Tile(_) => "sumdb-tile",
            SumdbPath::Supported => "sumdb-supported",
        },
        _ => "other",
    }
}
