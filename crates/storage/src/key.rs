//! Typed storage keys: the only code that turns a module, version and kind into a path.

use std::fmt;

use gomod::sumdb::{SumdbName, SumdbPath};
use gomod::{ModulePath, Version};

/// The kind of a per-version artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArtifactKind {
    /// `.info`: the JSON `RevInfo`.
    Info,
    /// `.mod`: the go.mod file.
    Mod,
    /// `.zip`: the module zip.
    Zip,
    /// `.ziphash`: the zip's `h1:` hash, recorded when the zip was validated.
    ZipHash,
}

impl ArtifactKind {
    /// Every kind, in a stable order.
    pub const ALL: [ArtifactKind; 4] = [
        ArtifactKind::Info,
        ArtifactKind::Mod,
        ArtifactKind::Zip,
        ArtifactKind::ZipHash,
    ];

    /// The file extension used in GOPROXY layout (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            ArtifactKind::Info => "info",
            ArtifactKind::Mod => "mod",
            ArtifactKind::Zip => "zip",
            ArtifactKind::ZipHash => "ziphash",
        }
    }

    /// The kind for an extension, if any.
    pub fn from_extension(ext: &str) -> Option<Self> {
        ArtifactKind::ALL.into_iter().find(|k| k.extension() == ext)
    }
}

/// Where an object lives. Rendered by [`Key::path`] in GOPROXY layout, `!`-escaped, so that a
/// filesystem root of the fs backend is itself a valid `file://` GOPROXY for its artifacts, and
/// case-insensitive stores never merge two modules.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Key {
    /// A per-version artifact: `<module>/@v/<version>.<ext>`.
    Artifact {
        /// The module.
        module: ModulePath,
        /// Its canonical version.
        version: Version,
        /// Which artifact.
        kind: ArtifactKind,
    },
    /// The cached upstream version list: `<module>/@v/list`.
    List {
        /// The module.
        module: ModulePath,
    },
    /// The cached upstream `@latest` answer: `<module>/@latest`.
    Latest {
        /// The module.
        module: ModulePath,
    },
    /// A cached checksum-database object: `sumdb/<name>/<path>` — a signed tree head
    /// (`latest`), a lookup record (`lookup/<module>@<version>`) or a tile (`tile/8/0/x001/234`,
    /// `….p/<W>` for a partial one). The layout is the go command's own module-cache layout
    /// (`$GOMODCACHE/cache/download/sumdb/…`). No module path starts with `sumdb/` (its first
    /// element has no dot), so these never collide with artifacts.
    Sumdb {
        /// The database.
        db: SumdbName,
        /// What is stored; never [`SumdbPath::Supported`], which is not an object.
        path: SumdbPath,
    },
    /// The record of a bundle imported into this store: `gomodproxy/bundles/<id>`, written once
    /// the bundle is applied, so that the next bundle of a chain can check that its predecessor
    /// was. Its first element has no dot, so no module path starts with it.
    Bundle {
        /// The bundle's id ([`Key::is_bundle_id`]).
        id: String,
    },
}

/// The directory of [`Key::Bundle`] objects.
const BUNDLES: &str = "gomodproxy/bundles/";

impl Key {
    /// A per-version artifact key.
    pub fn artifact(module: &ModulePath, version: &Version, kind: ArtifactKind) -> Self {
        Key::Artifact {
            module: module.clone(),
            version: version.clone(),
            kind,
        }
    }

    /// A checksum-database key; `None` for [`SumdbPath::Supported`], which is not stored.
    pub fn sumdb(db: &SumdbName, path: &SumdbPath) -> Option<Self> {
        (*path != SumdbPath::Supported).then(|| Key::Sumdb {
            db: db.clone(),
            path: path.clone(),
        })
    }

    /// The record of bundle `id`; `None` if `id` is not a bundle id ([`Key::is_bundle_id`]).
    pub fn bundle(id: &str) -> Option<Self> {
        Key::is_bundle_id(id).then(|| Key::Bundle { id: id.to_string() })
    }

    /// Whether `id` is a bundle id: 16 to 64 lower-case hex digits.
    pub fn is_bundle_id(id: &str) -> bool {
        (16..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    /// Whether the object under this key may change over time (`list`, `@latest`, a
    /// checksum database's tree head). Everything else is written once per key and never
    /// differs: a canonical version's `.info`/`.mod`/`.zip`, a lookup record, a tile.
    pub fn is_mutable(&self) -> bool {
        matches!(
            self,
            Key::List { .. }
                | Key::Latest { .. }
                | Key::Sumdb {
                    path: SumdbPath::Latest,
                    ..
                }
        )
    }

    /// Whether this is a module zip, the only kind of object that can be large.
    pub fn is_zip(&self) -> bool {
        matches!(
            self,
            Key::Artifact {
                kind: ArtifactKind::Zip,
                ..
            }
        )
    }

    /// The module this key belongs to: an artifact's, list's or `@latest`'s module, or the
    /// module a checksum-database lookup is for; `None` for tiles and tree heads.
    pub fn module(&self) -> Option<&ModulePath> {
        match self {
            Key::Artifact { module, .. } | Key::List { module } | Key::Latest { module } => {
                Some(module)
            }
            Key::Sumdb {
                path: SumdbPath::Lookup { module, .. },
                ..
            } => Some(module),
            Key::Sumdb { .. } | Key::Bundle { .. } => None,
        }
    }

    /// The relative, `/`-separated path of this object. Never empty, never absolute, never has
    /// `.` or `..` elements, ASCII only and without upper case.
    pub fn path(&self) -> String {
        match self {
            Key::Artifact {
                module,
                version,
                kind,
            } => {
                format!(
                    "{}/@v/{}.{}",
                    module.escaped(),
                    version.escaped(),
                    kind.extension()
                )
            }
            Key::List { module } => format!("{}/@v/list", module.escaped()),
            Key::Latest { module } => format!("{}/@latest", module.escaped()),
            Key::Sumdb { db, path } => format!("sumdb/{db}/{}", path.render()),
            Key::Bundle { id } => format!("{BUNDLES}{id}"),
        }
    }

    /// Parses a path produced by [`Key::path`].
    pub fn from_path(path: &str) -> Result<Self, crate::StorageError> {
        let invalid = |reason: &str| crate::StorageError::InvalidKey {
            path: path.to_string(),
            reason: reason.to_string(),
        };
        if let Some(rest) = path.strip_prefix("sumdb/") {
            let (db, object) = rest
                .split_once('/')
                .ok_or_else(|| invalid("no path after the checksum database name"))?;
            let db = SumdbName::parse(db).map_err(|e| invalid(&e.to_string()))?;
            let object = SumdbPath::parse(object).map_err(|e| invalid(&e.to_string()))?;
            return Key::sumdb(&db, &object).ok_or_else(|| invalid("`supported` is not stored"));
        }
        if let Some(id) = path.strip_prefix(BUNDLES) {
            return Key::bundle(id).ok_or_else(|| invalid("not a bundle id"));
        }
        let module_of =
            |escaped: &str| ModulePath::from_escaped(escaped).map_err(|e| invalid(&e.to_string()));
        if let Some(module) = path.strip_suffix("/@latest") {
            return Ok(Key::Latest {
                module: module_of(module)?,
            });
        }
        let (module, file) = path
            .split_once("/@v/")
            .ok_or_else(|| invalid("no /@v/ or /@latest"))?;
        let module = module_of(module)?;
        if file == "list" {
            return Ok(Key::List { module });
        }
        let (version, ext) = file
            .rsplit_once('.')
            .ok_or_else(|| invalid("no extension"))?;
        let kind = ArtifactKind::from_extension(ext).ok_or_else(|| invalid("unknown extension"))?;
        let version = Version::from_escaped(version).map_err(|e| invalid(&e.to_string()))?;
        Ok(Key::Artifact {
            module,
            version,
            kind,
        })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// Which objects a listing covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListPrefix {
    /// Every object in the store.
    All,
    /// Every object of one module (its artifacts, list and latest; not its sub-modules').
    Module(ModulePath),
    /// Every cached object of one checksum database.
    Sumdb(SumdbName),
    /// The cached lookup records of one checksum database.
    SumdbLookups(SumdbName),
    /// The recorded tree heads (`tree/<N>`) of one checksum database.
    SumdbTrees(SumdbName),
    /// The records of imported bundles.
    Bundles,
}

impl ListPrefix {
    /// The string prefix over [`Key::path`] that defines this listing. A backend may read a
    /// narrower range (a directory) as long as it returns exactly the keys with this prefix.
    pub fn path_prefix(&self) -> String {
        match self {
            ListPrefix::All => String::new(),
            ListPrefix::Module(module) => format!("{}/@", module.escaped()),
            ListPrefix::Sumdb(db) => format!("sumdb/{db}/"),
            ListPrefix::SumdbLookups(db) => format!("sumdb/{db}/lookup/"),
            ListPrefix::SumdbTrees(db) => format!("sumdb/{db}/tree/"),
            ListPrefix::Bundles => BUNDLES.to_string(),
        }
    }
}
