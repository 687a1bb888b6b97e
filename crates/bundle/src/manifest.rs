//! `gomodproxy-bundle.json`, the first entry of every bundle.

use std::collections::BTreeMap;

use gomod::sumdb::SumdbPath;
use gomodproxy_storage::{ArtifactKind, Key};
use serde::{Deserialize, Serialize};

/// The name of the manifest entry.
pub const MANIFEST_NAME: &str = "gomodproxy-bundle.json";

/// The value of [`Manifest::format`].
pub const FORMAT_NAME: &str = "gomodproxy-bundle";

/// The bundle format version this crate writes and the newest it reads. Version 2 added the
/// bundle's identity and chain ([`Manifest::id`], [`Manifest::follows`]) and the
/// [`Inventory`] entry; a version-1 bundle reads as a full bundle that follows nothing.
pub const FORMAT_VERSION: u32 = 2;

/// The name of the inventory entry, right after the manifest (format 2).
pub const INVENTORY_NAME: &str = "gomodproxy-inventory.json";

/// The value of [`Inventory::format`].
pub const INVENTORY_FORMAT: &str = "gomodproxy-inventory";

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
    /// `sumdb-lookup`, `sumdb-tile`, `sumdb-tree`).
    pub counts: BTreeMap<String, u64>,
    /// The bundle's identity (32 hex digits; format 2): an import records it, and the bundle
    /// that follows this one names it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The file name the bundle was written as (`-` for standard output; format 2).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The bundle this one follows (`export --since`): it carries only what is new since that
    /// one, so an import needs that one imported first. `None`: a full bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follows: Option<Follows>,
    /// The tree head of each checksum database the store served when the bundle was made (in
    /// the bundle when it changed since the bundle it follows).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub trees: BTreeMap<String, TreeRef>,
}

impl Manifest {
    /// `name (bundle <id>, created <time>)`: how messages name a bundle.
    pub fn describe(&self) -> String {
        let name = if self.name.is_empty() {
            "a bundle"
        } else {
            &self.name
        };
        format!("{name} (bundle {}, created {})", self.id, self.created)
    }
}

/// The bundle an incremental bundle follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Follows {
    /// Its [`Manifest::id`].
    pub id: String,
    /// Its [`Manifest::name`].
    pub name: String,
    /// Its [`Manifest::created`].
    pub created: String,
}

impl Follows {
    /// `name (bundle <id>, created <time>)`.
    pub fn describe(&self) -> String {
        format!(
            "{} (bundle {}, created {})",
            self.name, self.id, self.created
        )
    }
}

/// A tree head: size and root hash (base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeRef {
    /// Records.
    pub size: i64,
    /// Root hash, base64.
    pub hash: String,
}

/// What the store on the far side of the gap holds once this bundle and every bundle it
/// follows are imported: every object path, and for the objects that can change (`list`,
/// `@latest`, tree heads) the SHA-256 of their content. `export --since` subtracts it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Always [`INVENTORY_FORMAT`].
    pub format: String,
    /// The bundle it is the inventory of.
    pub bundle: String,
    /// Paths of objects that never change, sorted.
    pub immutable: Vec<String>,
    /// Paths of objects that can change, with the hex SHA-256 of the content sent.
    pub mutable: BTreeMap<String, String>,
}

impl Inventory {
    /// Whether the far side has `path` with this content (`sha256` for a mutable object).
    pub(crate) fn has(&self, path: &str, sha256: Option<&str>) -> bool {
        match sha256 {
            Some(h) => self.mutable.get(path).is_some_and(|have| have == h),
            None => self
                .immutable
                .binary_search_by(|p| p.as_str().cmp(path))
                .is_ok(),
        }
    }
}

/// What `export` writes beside a bundle (`<bundle>.manifest.json`): the manifest and the
/// inventory, enough for the next `export --since` when the bundle itself has crossed the gap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideManifest {
    /// The bundle's manifest.
    pub manifest: Manifest,
    /// Its inventory.
    pub inventory: Inventory,
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
            SumdbPath::Tree(_) => "sumdb-tree",
            SumdbPath::Supported => "sumdb-supported",
        },
        Key::Bundle { .. } => "bundle-record",
        _ => "other",
    }
}
