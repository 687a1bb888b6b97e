//! Reading an import source — a bundle, or a directory in GOPROXY layout — on a blocking
//! thread, handing objects to the importer through a small bounded channel.
//!
//! Memory stays bounded: small objects (at most [`MAX_MOD`] bytes, most far smaller) travel in
//! memory, zips are spooled to anonymous temporary files first (check_zip needs `Seek`), and the
//! channel holds [`CHANNEL`] objects at most.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use gomod::sumdb::SumdbPath;
use gomodproxy_storage::{ArtifactKind, Key};
use tokio::sync::mpsc;

use crate::error::BundleError;
use crate::manifest::{
    FORMAT_NAME, FORMAT_VERSION, INVENTORY_NAME, Inventory, MANIFEST_NAME, Manifest, SideManifest,
};
use crate::order::order_key;
use crate::sumdb::MAX_TILE;
use crate::{MAX_MOD, MAX_SMALL};

/// Objects read ahead of the importer.
const CHANNEL: usize = 4;

/// An object's body.
#[derive(Debug)]
pub(crate) enum Body {
    /// A small object, in memory.
    Bytes(Bytes),
    /// A zip, spooled to an anonymous temporary file, rewound.
    File { file: File, size: u64 },
}

impl Body {
    pub(crate) fn size(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::File { size, .. } => *size,
        }
    }
}

/// What the reader found.
#[derive(Debug)]
pub(crate) enum Item {
    /// A bundle's manifest (always first in a bundle; never from a directory).
    Manifest(Manifest),
    /// A store object.
    Object { key: Key, body: Body },
    /// A valid key whose body cannot be used (too large, unreadable).
    Refused { path: String, reason: String },
    /// Something that is not a store object (a lock file, a partial download, …).
    Skipped { path: String, reason: String },
}

/// Where an import reads from.
pub enum ImportSource {
    /// A bundle stream; `name` is for messages (`-` for standard input).
    Bundle {
        /// The file name.
        name: PathBuf,
        /// The compressed bundle.
        reader: Box<dyn Read + Send>,
    },
    /// A directory in GOPROXY layout: `$GOMODCACHE/cache/download`, or an fs store's root.
    Dir(PathBuf),
}

impl std::fmt::Debug for ImportSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportSource::Bundle { name, .. } => write!(f, "Bundle({})", name.display()),
            ImportSource::Dir(d) => write!(f, "Dir({})", d.display()),
        }
    }
}

impl ImportSource {
    /// `-` is a bundle on standard input, a directory is a GOPROXY-layout tree, anything else
    /// a bundle file.
    pub fn open(path: &Path) -> Result<ImportSource, BundleError> {
        if path == Path::new("-") {
            return Ok(ImportSource::Bundle {
                name: path.to_path_buf(),
                reader: Box::new(io::stdin()),
            });
        }
        let meta = std::fs::metadata(path)
            .map_err(|e| BundleError::io(format!("cannot open {}", path.display()), e))?;
        if meta.is_dir() {
            return Ok(ImportSource::Dir(path.to_path_buf()));
        }
        let file = File::open(path)
            .map_err(|e| BundleError::io(format!("cannot open {}", path.display()), e))?;
        Ok(ImportSource::Bundle {
            name: path.to_path_buf(),
            reader: Box::new(io::BufReader::with_capacity(1 << 20, file)),
        })
    }
}

/// Limits and places of the reader.
#[derive(Debug, Clone)]
pub(crate) struct ReadOptions {
    pub(crate) spool_dir: Option<PathBuf>,
    pub(crate) max_zip: u64,
}

/// Starts the reader; items arrive on the returned channel, a fatal error as its last item.
pub(crate) fn start(
    source: ImportSource,
    options: ReadOptions,
) -> (
    mpsc::Receiver<Result<Item, BundleError>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel(CHANNEL);
    let handle = tokio::task::spawn_blocking(move || {
        let result = match source {
            ImportSource::Bundle { name, reader } => read_bundle(&name, reader, &options, &tx),
            ImportSource::Dir(dir) => read_dir(&dir, &options, &tx),
        };
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    (rx, handle)
}

/// The receiver went away (the import stopped): not an error of the reader.
struct Stopped;

fn send(tx: &mpsc::Sender<Result<Item, BundleError>>, item: Item) -> Result<(), Stopped> {
    tx.blocking_send(Ok(item)).map_err(|_| Stopped)
}

fn read_bundle(
    name: &Path,
    reader: Box<dyn Read + Send>,
    options: &ReadOptions,
    tx: &mpsc::Sender<Result<Item, BundleError>>,
) -> Result<(), BundleError> {
    let bad = |reason: String| BundleError::BadBundle {
        path: name.to_path_buf(),
        reason,
    };
    let decoder =
        zstd::stream::read::Decoder::new(reader).map_err(|e| bad(format!("zstd: {e}")))?;
    let mut archive = tar::Archive::new(decoder);
    let entries = archive.entries().map_err(|e| bad(format!("tar: {e}")))?;
    let mut first = true;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("tar: {e}")))?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if first {
            first = false;
            if path != MANIFEST_NAME {
                return Err(bad(format!(
                    "the first entry is {path:?}, not {MANIFEST_NAME} (not a gomodproxy bundle?)"
                )));
            }
            let mut body = Vec::new();
            (&mut entry)
                .take(MAX_SMALL + 1)
                .read_to_end(&mut body)
                .map_err(|e| bad(format!("reading {MANIFEST_NAME}: {e}")))?;
            let manifest: Manifest =
                serde_json::from_slice(&body).map_err(|e| bad(format!("{MANIFEST_NAME}: {e}")))?;
            if manifest.format != FORMAT_NAME || manifest.version > FORMAT_VERSION {
                return Err(bad(format!(
                    "format {:?} version {} (this gomodproxy reads {FORMAT_NAME} up to version {FORMAT_VERSION})",
                    manifest.format, manifest.version
                )));
            }
            if send(tx, Item::Manifest(manifest)).is_err() {
                return Ok(());
            }
            continue;
        }
        if path == INVENTORY_NAME {
            // For `export --since`; an import has no use for it.
            continue;
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            let item = Item::Skipped {
                path,
                reason: format!("not a regular file ({:?})", entry.header().entry_type()),
            };
            if send(tx, item).is_err() {
                return Ok(());
            }
            continue;
        }
        let size = entry.size();
        // A read error inside the archive is a corrupt bundle, not a bad object.
        match object(&path, size, &mut entry, options) {
            Ok(item) => {
                if send(tx, item).is_err() {
                    return Ok(());
                }
            }
            Err(e) => return Err(bad(format!("reading {path}: {e}"))),
        }
        // Entries skip whatever of the body was not read.
    }
    if first {
        return Err(bad("empty (no entries)".to_string()));
    }
    // Read the compressed stream to its end, so that a bundle cut inside its trailer (or with
    // a damaged frame checksum) is an error too.
    let mut decoder = archive.into_inner();
    io::copy(&mut decoder, &mut io::sink()).map_err(|e| bad(format!("zstd: {e}")))?;
    Ok(())
}

/// Largest inventory read (a path and a hash per object of a big mirror).
const MAX_INVENTORY: u64 = 1 << 30;

/// The manifest and inventory of a bundle file: its first two entries (the rest is not read).
pub(crate) fn read_head(path: &Path) -> Result<SideManifest, BundleError> {
    let bad = |reason: String| BundleError::BadBundle {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path)
        .map_err(|e| BundleError::io(format!("cannot open {}", path.display()), e))?;
    let decoder = zstd::stream::read::Decoder::new(io::BufReader::new(file))
        .map_err(|e| bad(format!("zstd: {e}")))?;
    let mut archive = tar::Archive::new(decoder);
    let mut entries = archive.entries().map_err(|e| bad(format!("tar: {e}")))?;
    let mut next = |name: &str, limit: u64| -> Result<Vec<u8>, BundleError> {
        let mut entry = entries
            .next()
            .ok_or_else(|| bad(format!("no {name} entry")))?
            .map_err(|e| bad(format!("tar: {e}")))?;
        let got = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if got != name {
            return Err(bad(format!("{got:?} where {name} should be")));
        }
        let mut body = Vec::new();
        (&mut entry)
            .take(limit + 1)
            .read_to_end(&mut body)
            .map_err(|e| bad(format!("reading {name}: {e}")))?;
        if body.len() as u64 > limit {
            return Err(bad(format!("{name} is over {limit} bytes")));
        }
        Ok(body)
    };
    let manifest: Manifest = serde_json::from_slice(&next(MANIFEST_NAME, MAX_SMALL)?)
        .map_err(|e| bad(format!("{MANIFEST_NAME}: {e}")))?;
    if manifest.version < 2 {
        return Ok(SideManifest {
            manifest,
            inventory: Inventory::default(),
        });
    }
    let inventory: Inventory = serde_json::from_slice(&next(INVENTORY_NAME, MAX_INVENTORY)?)
        .map_err(|e| bad(format!("{INVENTORY_NAME}: {e}")))?;
    Ok(SideManifest {
        manifest,
        inventory,
    })
}

/// Reads one object of `size` bytes from `reader` into an [`Item`].
fn object(path: &str, size: u64, reader: &mut dyn Read, options: &ReadOptions) -> io::Result<Item> {
    let key = match Key::from_path(path) {
        Ok(k) => k,
        Err(e) => {
            let reason = match e {
                gomodproxy_storage::StorageError::InvalidKey { reason, .. } => reason,
                other => other.to_string(),
            };
            return Ok(Item::Skipped {
                path: path.to_string(),
                reason: format!("not a store object: {reason}"),
            });
        }
    };
    let limit = match &key {
        k if k.is_zip() => options.max_zip,
        Key::Artifact {
            kind: ArtifactKind::Mod,
            ..
        } => MAX_MOD,
        Key::Sumdb {
            path: SumdbPath::Tile(_),
            ..
        } => MAX_TILE,
        _ => MAX_SMALL,
    };
    if size > limit {
        return Ok(Item::Refused {
            path: path.to_string(),
            reason: format!("{size} bytes, over the {limit}-byte limit for this kind of object"),
        });
    }
    if key.is_zip() {
        let mut file = match &options.spool_dir {
            Some(dir) => tempfile::tempfile_in(dir),
            None => tempfile::tempfile(),
        }?;
        let copied = io::copy(&mut reader.take(limit + 1), &mut file)?;
        if copied > limit {
            return Ok(Item::Refused {
                path: path.to_string(),
                reason: format!("grew past the {limit}-byte limit while it was read"),
            });
        }
        file.flush()?;
        file.seek(SeekFrom::Start(0))?;
        return Ok(Item::Object {
            key,
            body: Body::File { file, size: copied },
        });
    }
    let mut body = Vec::with_capacity(size as usize);
    reader.take(limit + 1).read_to_end(&mut body)?;
    if body.len() as u64 > limit {
        return Ok(Item::Refused {
            path: path.to_string(),
            reason: format!("grew past the {limit}-byte limit while it was read"),
        });
    }
    Ok(Item::Object {
        key,
        body: Body::Bytes(Bytes::from(body)),
    })
}

fn read_dir(
    root: &Path,
    options: &ReadOptions,
    tx: &mpsc::Sender<Result<Item, BundleError>>,
) -> Result<(), BundleError> {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    walk(root, String::new(), &mut files, &mut skipped)?;
    for (path, reason) in skipped {
        if send(tx, Item::Skipped { path, reason }).is_err() {
            return Ok(());
        }
    }
    let elsewhere = go_tree_heads(root, &mut files);
    files.sort_by_cached_key(|p| order_key(p));
    for rel in files {
        let full = elsewhere
            .iter()
            .find(|(r, _)| *r == rel)
            .map_or_else(|| root.join(&rel), |(_, f)| f.clone());
        let item = match File::open(&full).and_then(|mut f| {
            let size = f.metadata()?.len();
            object(&rel, size, &mut f, options)
        }) {
            Ok(item) => item,
            // A file that vanished or cannot be read: that object is not imported.
            Err(e) => Item::Refused {
                path: rel.clone(),
                reason: format!("cannot read {}: {e}", full.display()),
            },
        };
        if send(tx, item).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// The go command keeps the checksum databases' tree heads outside the module cache, in
/// `$GOPATH/pkg/sumdb/<name>/latest`, while `$GOPATH/pkg/mod/cache/download/sumdb/<name>/` holds
/// only lookups and tiles — which can be proven only in the tree the go command verified them
/// with. When `root` is such a `…/pkg/mod/cache/download` and has no `latest` of its own for a
/// database, the go command's one is added (as `sumdb/<name>/latest`; it is checked like any
/// other tree head). Returns the added paths with the files they are read from.
fn go_tree_heads(root: &Path, files: &mut Vec<String>) -> Vec<(String, PathBuf)> {
    let mut added = Vec::new();
    let Ok(abs) = root.canonicalize() else {
        return added;
    };
    let pkg = match abs.parent().and_then(Path::parent).and_then(Path::parent) {
        Some(pkg) if abs.ends_with("mod/cache/download") => pkg.to_path_buf(),
        _ => return added,
    };
    let dbs: std::collections::BTreeSet<String> = files
        .iter()
        .filter_map(|f| {
            f.strip_prefix("sumdb/")?
                .split('/')
                .next()
                .map(str::to_string)
        })
        .collect();
    for db in dbs {
        let rel = format!("sumdb/{db}/latest");
        let theirs = pkg.join("sumdb").join(&db).join("latest");
        if !files.contains(&rel) && theirs.is_file() {
            files.push(rel.clone());
            added.push((rel, theirs));
        }
    }
    added
}

/// Collects the regular files under `dir` as `/`-separated paths relative to the root. Hidden
/// entries (`.tmp` of an fs store), symbolic links and names that are not UTF-8 are skipped.
fn walk(
    dir: &Path,
    prefix: String,
    files: &mut Vec<String>,
    skipped: &mut Vec<(String, String)>,
) -> Result<(), BundleError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| BundleError::io(format!("cannot list {}", dir.display()), e))?;
    for entry in entries {
        let entry =
            entry.map_err(|e| BundleError::io(format!("cannot list {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            skipped.push((
                format!("{prefix}{}", name.to_string_lossy()),
                "name is not UTF-8".to_string(),
            ));
            continue;
        };
        let rel = format!("{prefix}{name}");
        if name.starts_with('.') {
            skipped.push((rel, "hidden file or directory".to_string()));
            continue;
        }
        let kind = entry
            .file_type()
            .map_err(|e| BundleError::io(format!("cannot stat {}", entry.path().display()), e))?;
        if kind.is_dir() {
            walk(&entry.path(), format!("{rel}/"), files, skipped)?;
        } else if kind.is_file() {
            files.push(rel);
        } else {
            skipped.push((
                rel,
                "not a regular file (symbolic link or special file)".to_string(),
            ));
        }
    }
    Ok(())
}
