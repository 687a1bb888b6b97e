//! Module zip validation (`golang.org/x/mod/zip.CheckZip` + `Unzip`'s size checks) with the
//! zip's `h1:` hash computed in the same pass, in memory bounded by [`ZipLimits`].
//!
//! The rules, as the go command applies them to a zip it downloads:
//!
//! - the zip file is at most 500 MiB;
//! - every entry name starts with `<module>@<version>/` (unescaped path, canonical version);
//! - the rest of each name is clean (`path.Clean`) and passes [`check_file_path`]; an entry
//!   ending in `/` is a directory;
//! - no two names are equal under Unicode case folding unless they are the same bytes, no name
//!   is both a file and a directory (parents of files count as directories), and no file is
//!   there twice (the same directory entry twice is fine, and hashed twice, as the go command
//!   does);
//! - a file named `go.mod` (any case) may only be the lower-case `go.mod` at the root, and the
//!   root `go.mod` may not be a directory (x/mod allows that, but the go command then fails);
//! - the declared uncompressed sizes add up to at most 500 MiB; `go.mod` and `LICENSE` are at
//!   most 16 MiB each;
//! - each file's real content is exactly its declared size (and its CRC-32 matches).
//!
//! On top of x/mod, entries whose Unix mode marks a symbolic link or another non-regular file
//! are rejected (the go command would extract them as plain files holding the link target, which
//! no well-formed module zip contains), as are encrypted entries and compression methods other
//! than store and deflate (which Go's `archive/zip` cannot read), and zips with more entries or
//! longer names in total than [`ZipLimits`] allows (far above any real module; they bound the
//! memory a check takes).
//!
//! # Memory
//!
//! The zip is read as Go's `archive/zip` reads it (see `format.rs`), but streamed: the central
//! directory is read twice, front to back, through a 64 KiB buffer (once for the names and rules,
//! once to find each entry's data), and each file is inflated through a 64 KiB buffer into its
//! SHA-256. What is kept per entry is what the rules and the hash need: its name after the
//! `module@version/` prefix (in one arena), an 8-byte record, a 4-byte index to sort (collisions
//! are found by sorting the folded names once, the `h1:` lines by sorting the names), and the
//! 32-byte SHA-256 of its content. So a check takes about 300 KiB plus 44 bytes per entry plus
//! the entries' name bytes: at the default limits at most ~106 MiB, for the go toolchain's zip
//! (11,518 entries, 482 KB of names) about 1.3 MiB (tests/bench/zip_memory.py measures it).
//!
//! Sizes are never trusted from headers: every file is decompressed until at most its declared
//! size + 1 bytes came out, so a zip bomb costs at most the limits in [`ZipLimits`].

mod collisions;
mod directory;
mod format;
mod names;

pub use collisions::{CollisionError, Collisions};
pub use directory::{DirectoryEntry, ZipDirectory};

use std::io::{Read, Seek, SeekFrom};

use sha2::{Digest, Sha256};

use crate::dirhash::Hash1Lines;
use crate::error::{excerpt, one_line};
use crate::module::{self, check_file_path};
use crate::{Error, ModulePath, Version};
use format::{DataError, Directory, Entry, Header, Inflater, ReadError, Source};
use names::{Kind, Names};

/// Largest module zip file, and largest total uncompressed size of its files (`zip.MaxZipFile`).
pub const MAX_ZIP_FILE: u64 = 500 << 20;
/// Largest `go.mod` in a module zip (`zip.MaxGoMod`).
pub const MAX_GO_MOD: u64 = 16 << 20;
/// Largest `LICENSE` in a module zip (`zip.MaxLICENSE`).
pub const MAX_LICENSE: u64 = 16 << 20;
/// Default cap on the entries of a module zip (our own; x/mod has none).
///
/// The go command bounds the count only through the 500 MiB zip size: every entry costs at
/// least a 46-byte central directory header plus its name (with the `module@version/` prefix),
/// so a 500 MiB zip can hold millions of entries (8.6 million with 15-byte names; Go's
/// `archive/zip` uses size/30 only to decide whether to preallocate, it refuses no count).
/// Real modules are far below: the go toolchain's zip, a large one, has 11,518 entries. One
/// million is 87 times that, and bounds a check to 44 MB of per-entry state.
pub const MAX_ENTRIES: u64 = 1_000_000;
/// Default cap on the total length of the entry names after their `module@version/` prefix
/// (our own; x/mod has none). The go toolchain's zip has 482 KB of names (42 bytes each on
/// average, 105 at most); 64 MiB is 139 times that, or a million names of 67 bytes.
pub const MAX_NAME_BYTES: u64 = 64 << 20;

/// Size limits for [`check_zip`]; the default is the go command's, plus the two caps of our own
/// on the entry count and name bytes, which bound the memory a check takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipLimits {
    /// Largest zip file, in bytes.
    pub max_zip_size: u64,
    /// Largest total uncompressed size of all files, in bytes.
    pub max_total_size: u64,
    /// Largest root `go.mod`, in bytes.
    pub max_go_mod: u64,
    /// Largest root `LICENSE`, in bytes.
    pub max_license: u64,
    /// Most entries (files and directories), default [`MAX_ENTRIES`].
    pub max_entries: u64,
    /// Most bytes of entry names after the `module@version/` prefix, all entries together,
    /// default [`MAX_NAME_BYTES`] (at most 4 GiB is used).
    pub max_name_bytes: u64,
}

impl Default for ZipLimits {
    fn default() -> Self {
        ZipLimits {
            max_zip_size: MAX_ZIP_FILE,
            max_total_size: MAX_ZIP_FILE,
            max_go_mod: MAX_GO_MOD,
            max_license: MAX_LICENSE,
            max_entries: MAX_ENTRIES,
            max_name_bytes: MAX_NAME_BYTES,
        }
    }
}

/// What [`check_zip`] learned about a valid module zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipSummary {
    /// The zip's `h1:` hash, as on the go.sum line `<module> <version> h1:…`.
    pub h1: String,
    /// Number of file entries (directory entries not counted).
    pub files: usize,
    /// Total uncompressed size of the files, in bytes (as read, which equals as declared).
    pub uncompressed_size: u64,
    /// Whether the zip has a root `go.mod`.
    pub has_go_mod: bool,
    /// The go.mod hash (go.sum `/go.mod` line) of the zip's root `go.mod`, if it has one. A
    /// proxy's `.mod` for this version must have the same hash.
    pub go_mod_h1: Option<String>,
}

/// Validates a module zip for `module@version` and computes its `h1:` hash.
///
/// `reader` is read from its start to its end (its length is the zip's size); it need not be
/// buffered. Errors are [`Error::InvalidZip`] for content problems, [`Error::InvalidPath`]/
/// [`Error::InvalidVersion`] if `version` does not belong to `module`, and [`Error::Io`] if
/// seeking or reading `reader` fails.
///
/// The rules that look at one entry are checked in zip order while the central directory is
/// read; then the collision rules (which need all names); then each entry's content, in zip
/// order. The first problem found is the error.
pub fn check_zip<R: Read + Seek>(
    mut reader: R,
    module: &ModulePath,
    version: &Version,
    limits: &ZipLimits,
) -> Result<ZipSummary, Error> {
    module::check(module.as_str(), version.as_str())?;

    let zip_size = reader
        .seek(SeekFrom::End(0))
        .map_err(|e| io_error("measuring the module zip", e))?;
    if zip_size > limits.max_zip_size {
        return Err(invalid(format!(
            "module zip file is too large ({zip_size} bytes; limit is {} bytes)",
            limits.max_zip_size
        )));
    }
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|e| io_error("measuring the module zip", e))?;

    let mut src = Source::new(reader, zip_size);
    let prefix = format!("{module}@{version}/");
    let directory = format::find_directory(&mut src).map_err(read_error)?;
    let names = read_names(&mut src, &directory, &prefix, limits)?;
    names.check_collisions().map_err(|c| {
        invalid(format!(
            "{:?}: {}",
            excerpt(&format!("{prefix}{}", names.name(c.entry))),
            c.reason
        ))
    })?;
    hash_contents(&mut src, &directory, &prefix, &names)
}

/// First pass over the central directory: applies every rule that looks at one entry, and
/// keeps the names.
fn read_names<R: Read + Seek>(
    src: &mut Source<R>,
    directory: &Directory,
    prefix: &str,
    limits: &ZipLimits,
) -> Result<Names, Error> {
    let max_name_bytes = limits.max_name_bytes.min(u64::from(u32::MAX));
    let mut names = Names::default();
    let (mut raw_name, mut extra) = (Vec::new(), Vec::new());
    let mut total_size = 0u64;
    src.goto(directory.start);
    while let Header::Entry(entry) =
        format::read_directory_header(src, &mut raw_name, &mut extra).map_err(read_error)?
    {
        let index = names.len();
        if index as u64 >= limits.max_entries {
            return Err(invalid(format!(
                "zip has more than {} entries (limit)",
                limits.max_entries
            )));
        }
        let Ok(full_name) = std::str::from_utf8(&raw_name) else {
            return Err(invalid(format!(
                "entry {index} has a name that is not UTF-8"
            )));
        };
        let (rel, kind) = check_entry(full_name, prefix, &entry, limits, &mut total_size)?;
        if (names.name_bytes() + rel.len()) as u64 > max_name_bytes || !names.push(rel, kind) {
            return Err(invalid(format!(
                "zip entry names are longer than {max_name_bytes} bytes in total (limit)"
            )));
        }
    }
    // Go reads headers until one does not parse, then compares only the low 16 bits of the
    // count (writers truncate it).
    if names.len() as u16 != directory.declared_entries as u16 {
        return Err(invalid(format!(
            "cannot read zip: the central directory has {} entries, not the {} its end record declares",
            names.len(),
            directory.declared_entries
        )));
    }
    Ok(names)
}

/// The rules about one entry (all but collisions and content); returns its name after the
/// prefix and its kind. `total_size` accumulates the declared sizes of files.
fn check_entry<'n>(
    full_name: &'n str,
    prefix: &str,
    entry: &Entry,
    limits: &ZipLimits,
    total_size: &mut u64,
) -> Result<(&'n str, Kind), Error> {
    let bad = |reason: &str| invalid(format!("{:?}: {reason}", excerpt(full_name)));

    let Some(rel) = full_name.strip_prefix(prefix) else {
        return Err(bad(&format!("path does not have prefix {prefix:?}")));
    };
    // The root entry `module@version/` is a directory too.
    let is_dir = rel.is_empty() || rel.ends_with('/');
    let name = rel.strip_suffix('/').unwrap_or(rel);
    // x/mod skips the root entry's checks, but it is still hashed.
    if !rel.is_empty() {
        if !is_clean(name) {
            return Err(bad("file path is not clean"));
        }
        check_file_path(name).map_err(|e| bad(&e.to_string()))?;
        // CheckZip allows this, but the go command then fails reading the module's go.mod
        // ("is a directory"), so such a zip is unusable.
        if name.split('/').next() == Some("go.mod") && (is_dir || name.contains('/')) {
            return Err(bad("go.mod in the module root is a directory"));
        }
    }
    check_entry_type(entry.creator_system(), entry.external_attributes, is_dir).map_err(bad)?;

    let declared = entry.uncompressed_size;
    if is_dir {
        // Go's archive/zip refuses to open a directory entry with content, so the hash
        // (and the go command) would fail on it.
        if declared != 0 {
            return Err(bad("directory entry has content"));
        }
        let kind = if rel.is_empty() {
            Kind::Root
        } else {
            Kind::Dir
        };
        return Ok((rel, kind));
    }

    let base = name.rsplit('/').next().unwrap_or(name);
    if base.eq_ignore_ascii_case("go.mod") {
        if base != name {
            return Err(bad("go.mod file not in module root directory"));
        }
        if name != "go.mod" {
            return Err(bad("go.mod files must have lowercase names"));
        }
    }
    if declared > limits.max_total_size.saturating_sub(*total_size) {
        return Err(invalid(format!(
            "total uncompressed size of module contents too large (max size is {} bytes)",
            limits.max_total_size
        )));
    }
    *total_size += declared;
    if name == "go.mod" && declared > limits.max_go_mod {
        return Err(bad(&format!(
            "go.mod file too large (max size is {} bytes)",
            limits.max_go_mod
        )));
    }
    if name == "LICENSE" && declared > limits.max_license {
        return Err(bad(&format!(
            "LICENSE file too large (max size is {} bytes)",
            limits.max_license
        )));
    }
    if entry.flags & format::FLAG_ENCRYPTED != 0 {
        return Err(bad("encrypted entries are not supported"));
    }
    if !matches!(entry.method, format::METHOD_STORE | format::METHOD_DEFLATE) {
        return Err(bad(&format!(
            "unsupported compression method {}",
            entry.method
        )));
    }
    Ok((rel, Kind::File))
}

/// How many central directory headers to read before reading their entries' data: the
/// directory and the data are far apart, so they are read in runs of this many headers.
const HEADERS_PER_RUN: usize = 256;

/// Second pass: reads every entry's content (checking sizes and CRC-32) and computes the hashes.
fn hash_contents<R: Read + Seek>(
    src: &mut Source<R>,
    directory: &Directory,
    prefix: &str,
    names: &Names,
) -> Result<ZipSummary, Error> {
    let empty: [u8; 32] = Sha256::digest(b"").into();
    let mut digests: Vec<[u8; 32]> = Vec::with_capacity(names.len());
    let mut summary = ZipSummary {
        h1: String::new(),
        files: 0,
        uncompressed_size: 0,
        has_go_mod: false,
        go_mod_h1: None,
    };
    let mut inflater = Inflater::new();
    let (mut raw_name, mut extra) = (Vec::new(), Vec::new());
    let mut run: Vec<Entry> = Vec::with_capacity(HEADERS_PER_RUN);
    let mut next_header = directory.start;
    let io = |e| io_error("reading the module zip", e);

    while digests.len() < names.len() {
        run.clear();
        src.goto(next_header);
        while run.len() < HEADERS_PER_RUN && digests.len() + run.len() < names.len() {
            let i = digests.len() + run.len();
            match format::read_directory_header(src, &mut raw_name, &mut extra)
                .map_err(read_error)?
            {
                // The same bytes parse the same way; anything else means the file changed.
                Header::Entry(entry)
                    if raw_name.strip_prefix(prefix.as_bytes())
                        == Some(names.name(i).as_bytes()) =>
                {
                    run.push(entry)
                }
                _ => {
                    return Err(Error::Io {
                        context: "reading the module zip".into(),
                        reason: "the zip changed while it was being checked".into(),
                    });
                }
            }
        }
        next_header = src.position();

        for entry in &run {
            let i = digests.len();
            let full_name = || format!("{prefix}{}", names.name(i));
            let bad = |reason: String| invalid(format!("{:?}: {reason}", excerpt(&full_name())));
            let data_at = format::data_offset(src, directory, entry).map_err(|e| match e {
                ReadError::Format(reason) => bad(reason),
                ReadError::Io(e) => io(e),
            })?;
            if names.kind(i) != Kind::File {
                digests.push(empty);
                continue;
            }
            let mut hasher = Sha256::new();
            let declared = entry.uncompressed_size;
            let size = inflater
                .read(src, entry, data_at, |chunk| hasher.update(chunk))
                .map_err(|e| match e {
                    DataError::TooLarge => bad(format!(
                        "content is larger than its declared size ({declared} bytes)"
                    )),
                    DataError::TooSmall(actual) => bad(format!(
                        "content ({actual} bytes) is smaller than its declared size ({declared} bytes)"
                    )),
                    DataError::Checksum => bad("content does not match its CRC-32".into()),
                    DataError::Corrupt(reason) => {
                        bad(format!("cannot decompress: {}", one_line(reason)))
                    }
                    DataError::Io(e) => io(e),
                })?;
            let digest: [u8; 32] = hasher.finalize().into();
            summary.files += 1;
            summary.uncompressed_size += size;
            if names.name(i) == "go.mod" {
                summary.has_go_mod = true;
                let mut go_mod = Hash1Lines::new();
                go_mod.add("", "go.mod", &digest)?;
                summary.go_mod_h1 = Some(go_mod.finish());
            }
            digests.push(digest);
        }
    }

    let mut h1 = Hash1Lines::new();
    for i in names.hash_order() {
        let i = i as usize;
        h1.add(prefix, names.name(i), &digests[i])?;
    }
    summary.h1 = h1.finish();
    Ok(summary)
}

fn invalid(reason: String) -> Error {
    Error::InvalidZip { reason }
}

fn io_error(context: &str, e: std::io::Error) -> Error {
    Error::Io {
        context: context.into(),
        reason: one_line(e),
    }
}

fn read_error(e: ReadError) -> Error {
    match e {
        ReadError::Format(reason) => invalid(format!("cannot read zip: {reason}")),
        ReadError::Io(e) => io_error("reading the module zip", e),
    }
}

/// Whether `path.Clean(name) == name` for a non-empty relative name: no empty, `.` or `..`
/// elements. (`.` alone is "clean" to Go, but [`check_file_path`] rejects it anyway.)
fn is_clean(name: &str) -> bool {
    name == "."
        || name
            .split('/')
            .all(|e| !e.is_empty() && e != "." && e != "..")
}

/// The creating systems whose external attributes hold a Unix mode in their high 16 bits.
const SYSTEM_UNIX: u8 = 3;
const SYSTEM_MACOS: u8 = 19;
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// Rejects entries whose Unix mode says they are not what their name says (symbolic links,
/// devices, FIFOs, sockets, or a directory mode on a file name). Other systems' attributes carry
/// no such types, and a missing mode (type 0) is a plain entry.
fn check_entry_type(
    creator_system: u8,
    external_attributes: u32,
    is_dir: bool,
) -> Result<(), &'static str> {
    if !matches!(creator_system, SYSTEM_UNIX | SYSTEM_MACOS) {
        return Ok(());
    }
    match (external_attributes >> 16) & S_IFMT {
        0 | S_IFREG => Ok(()),
        S_IFDIR if is_dir => Ok(()),
        S_IFLNK => Err("file is a symbolic link"),
        _ => Err("not a regular file"),
    }
}

#[cfg(test)]
mod tests;
