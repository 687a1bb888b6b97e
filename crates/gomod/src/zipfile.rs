//! Module zip validation (`golang.org/x/mod/zip.CheckZip` + `Unzip`'s size checks) with the
//! zip's `h1:` hash computed in the same pass.
//!
//! The rules, as the go command applies them to a zip it downloads:
//!
//! - the zip file is at most 500 MiB;
//! - every entry name starts with `<module>@<version>/` (unescaped path, canonical version);
//! - the rest of each name is clean (`path.Clean`) and passes [`check_file_path`]; an entry
//!   ending in `/` is a directory;
//! - no two names are equal under Unicode case folding, and no name is both a file and a
//!   directory (parents of files count as directories);
//! - a file named `go.mod` (any case) may only be the lower-case `go.mod` at the root, and the
//!   root `go.mod` may not be a directory (x/mod allows that, but the go command then fails);
//! - the declared uncompressed sizes add up to at most 500 MiB; `go.mod` and `LICENSE` are at
//!   most 16 MiB each;
//! - each file's real content is exactly its declared size (and its CRC-32 matches).
//!
//! On top of x/mod, entries whose Unix mode marks a symbolic link or another non-regular file
//! are rejected (the go command would extract them as plain files holding the link target, which
//! no well-formed module zip contains), as are encrypted entries and compression methods other
//! than store and deflate (which Go's `archive/zip` cannot read).
//!
//! Sizes are never trusted from headers: every file is decompressed through a reader capped at
//! its declared size + 1, so a zip bomb costs at most the limits in [`ZipLimits`].

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

use sha2::{Digest, Sha256};
use zip::{CompressionMethod, System, ZipArchive};

use crate::dirhash::Hash1;
use crate::error::{excerpt, one_line};
use crate::module::{self, check_file_path};
use crate::{Error, ModulePath, Version, unicode_tables};

/// Largest module zip file, and largest total uncompressed size of its files (`zip.MaxZipFile`).
pub const MAX_ZIP_FILE: u64 = 500 << 20;
/// Largest `go.mod` in a module zip (`zip.MaxGoMod`).
pub const MAX_GO_MOD: u64 = 16 << 20;
/// Largest `LICENSE` in a module zip (`zip.MaxLICENSE`).
pub const MAX_LICENSE: u64 = 16 << 20;

/// Size limits for [`check_zip`]; the default is the go command's.
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
}

impl Default for ZipLimits {
    fn default() -> Self {
        ZipLimits {
            max_zip_size: MAX_ZIP_FILE,
            max_total_size: MAX_ZIP_FILE,
            max_go_mod: MAX_GO_MOD,
            max_license: MAX_LICENSE,
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

/// Validates a module zip for `module@version` and computes its `h1:` hash in one pass.
///
/// `reader` is read from its start to its end (its length is the zip's size). Errors are
/// [`Error::InvalidZip`] for content problems, [`Error::InvalidPath`]/[`Error::InvalidVersion`]
/// if `version` does not belong to `module`, and [`Error::Io`] if seeking `reader` fails.
pub fn check_zip<R: Read + Seek>(
    mut reader: R,
    module: &ModulePath,
    version: &Version,
    limits: &ZipLimits,
) -> Result<ZipSummary, Error> {
    module::check(module.as_str(), version.as_str())?;

    let io_err = |e: std::io::Error| Error::Io {
        context: "measuring the module zip".into(),
        reason: one_line(e),
    };
    let zip_size = reader.seek(SeekFrom::End(0)).map_err(io_err)?;
    if zip_size > limits.max_zip_size {
        return Err(invalid(format!(
            "module zip file is too large ({zip_size} bytes; limit is {} bytes)",
            limits.max_zip_size
        )));
    }
    reader.seek(SeekFrom::Start(0)).map_err(io_err)?;

    let mut archive = ZipArchive::new(reader)
        .map_err(|e| invalid(format!("cannot read zip: {}", one_line(e))))?;
    if archive.has_duplicate_names() {
        return Err(invalid(
            "zip has multiple entries with the same name".into(),
        ));
    }

    let prefix = format!("{module}@{version}/");
    let mut collisions = Collisions::default();
    let mut hash = Hash1::new();
    let mut summary = ZipSummary {
        h1: String::new(),
        files: 0,
        uncompressed_size: 0,
        has_go_mod: false,
        go_mod_h1: None,
    };

    for index in 0..archive.len() {
        let meta = archive
            .by_index_data(index)
            .map_err(|e| invalid(format!("cannot read entry {index}: {}", one_line(e))))?;
        let Ok(full_name) = std::str::from_utf8(meta.name_raw()) else {
            return Err(invalid(format!(
                "entry {index} has a name that is not UTF-8"
            )));
        };
        let full_name = full_name.to_string();
        let bad = |reason: &str| invalid(format!("{:?}: {reason}", excerpt(&full_name)));

        let Some(rel) = full_name.strip_prefix(&prefix) else {
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
            collisions.check(name, is_dir).map_err(|e| bad(&e))?;
            // CheckZip allows this, but the go command then fails reading the module's go.mod
            // ("is a directory"), so such a zip is unusable.
            if name.split('/').next() == Some("go.mod") && (is_dir || name.contains('/')) {
                return Err(bad("go.mod in the module root is a directory"));
            }
        }
        check_entry_type(meta.system(), meta.external_attributes(), is_dir).map_err(bad)?;

        let declared = meta.size();
        if is_dir {
            // Go's archive/zip refuses to open a directory entry with content, so the hash
            // (and the go command) would fail on it.
            if declared != 0 {
                return Err(bad("directory entry has content"));
            }
            hash.add(full_name, Sha256::digest(b"").into())?;
            continue;
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
        if declared > limits.max_total_size - summary.uncompressed_size {
            return Err(invalid(format!(
                "total uncompressed size of module contents too large (max size is {} bytes)",
                limits.max_total_size
            )));
        }
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
        if meta.encrypted() {
            return Err(bad("encrypted entries are not supported"));
        }
        let method = meta.compression();
        if !matches!(
            method,
            CompressionMethod::Stored | CompressionMethod::Deflated
        ) {
            return Err(bad(&format!("unsupported compression method {method:?}")));
        }
        drop(meta);

        let entry = archive
            .by_index(index)
            .map_err(|e| bad(&format!("cannot open: {}", one_line(e))))?;
        let (sum, actual) = hash_capped(entry, declared)
            .map_err(|e| bad(&format!("cannot decompress: {}", one_line(e))))?;
        if actual > declared {
            return Err(bad(&format!(
                "content is larger than its declared size ({declared} bytes)"
            )));
        }
        if actual < declared {
            return Err(bad(&format!(
                "content ({actual} bytes) is smaller than its declared size ({declared} bytes)"
            )));
        }
        summary.uncompressed_size += actual;
        summary.files += 1;
        if name == "go.mod" {
            summary.has_go_mod = true;
            let mut go_mod = Hash1::new();
            go_mod.add("go.mod", sum)?;
            summary.go_mod_h1 = Some(go_mod.finish());
        }
        hash.add(full_name, sum)?;
    }

    summary.h1 = hash.finish();
    Ok(summary)
}

fn invalid(reason: String) -> Error {
    Error::InvalidZip { reason }
}

/// SHA-256 and length of at most `declared + 1` bytes of `r`: enough to detect a lying size
/// without decompressing a bomb.
fn hash_capped(r: impl Read, declared: u64) -> std::io::Result<([u8; 32], u64)> {
    let mut r = r.take(declared.saturating_add(1));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hasher.finalize().into(), total))
}

/// Whether `path.Clean(name) == name` for a non-empty relative name: no empty, `.` or `..`
/// elements. (`.` alone is "clean" to Go, but [`check_file_path`] rejects it anyway.)
fn is_clean(name: &str) -> bool {
    name == "."
        || name
            .split('/')
            .all(|e| !e.is_empty() && e != "." && e != "..")
}

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// Rejects entries whose Unix mode says they are not what their name says (symbolic links,
/// devices, FIFOs, sockets, or a directory mode on a file name). Other systems' attributes carry
/// no such types, and a missing mode (type 0) is a plain entry.
fn check_entry_type(
    system: System,
    external_attributes: u32,
    is_dir: bool,
) -> Result<(), &'static str> {
    if !matches!(system, System::Unix | System::OsDarwin) {
        return Ok(());
    }
    match (external_attributes >> 16) & S_IFMT {
        0 | S_IFREG => Ok(()),
        S_IFDIR if is_dir => Ok(()),
        S_IFLNK => Err("file is a symbolic link"),
        _ => Err("not a regular file"),
    }
}

/// x/mod/zip's `collisionChecker`: finds names equal under Unicode case folding and names used
/// both as a file and as a directory (every parent of an entry is a directory).
///
/// Public so that code building a module zip (crates/vcs) applies exactly the rule that
/// [`check_zip`] enforces.
#[derive(Debug, Default)]
pub struct Collisions {
    /// Folded path → (path as first seen, is directory).
    seen: HashMap<String, (String, bool)>,
}

impl Collisions {
    /// Records `path` (a file, or a directory if `is_dir`) and all its parent directories;
    /// fails with x/mod's message if it collides with an entry recorded before.
    pub fn check(&mut self, path: &str, is_dir: bool) -> Result<(), String> {
        let (mut p, mut dir) = (path, is_dir);
        loop {
            let fold = str_to_fold(p);
            match self.seen.get(&fold) {
                Some((other, other_dir)) => {
                    if other != p {
                        return Err(format!(
                            "case-insensitive file name collision: {other:?} and {p:?}"
                        ));
                    }
                    if *other_dir != dir {
                        return Err(format!("entry {p:?} is both a file and a directory"));
                    }
                    if !dir {
                        return Err(format!("multiple entries for file {p:?}"));
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

/// A string `s'` with `strings.EqualFold(s, t)` iff `str_to_fold(s) == str_to_fold(t)`: each
/// rune becomes the smallest member of its `unicode.SimpleFold` orbit (from Go's tables), with
/// A–Z then lowered.
pub(crate) fn str_to_fold(s: &str) -> String {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            let folded = unicode_tables::FOLD_MIN
                .binary_search_by_key(&(c as u32), |&(r, _)| r)
                .ok()
                .and_then(|i| char::from_u32(unicode_tables::FOLD_MIN[i].1))
                .unwrap_or(c);
            folded.to_ascii_lowercase()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};
    use zip::write::SimpleFileOptions;

    const MODULE: &str = "example.com/m";
    const VERSION: &str = "v1.0.0";

    fn mv() -> (ModulePath, Version) {
        (
            ModulePath::parse(MODULE).unwrap(),
            Version::parse(VERSION).unwrap(),
        )
    }

    fn deflated() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(CompressionMethod::Deflated)
    }

    /// A zip of `(name, content)` files, deflated, in the given order.
    fn make_zip(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content) in files {
            w.start_file(*name, deflated()).unwrap();
            w.write_all(content).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn check(zip: &[u8]) -> Result<ZipSummary, Error> {
        let (m, v) = mv();
        check_zip(Cursor::new(zip), &m, &v, &ZipLimits::default())
    }

    fn check_limits(zip: &[u8], limits: ZipLimits) -> Result<ZipSummary, Error> {
        let (m, v) = mv();
        check_zip(Cursor::new(zip), &m, &v, &limits)
    }

    fn reason(r: Result<ZipSummary, Error>) -> String {
        match r {
            Err(Error::InvalidZip { reason }) => reason,
            other => panic!("expected InvalidZip, got {other:?}"),
        }
    }

    #[test]
    fn valid_zip_hash_equals_hash1_of_entries() {
        let files: &[(&str, &[u8])] = &[
            ("example.com/m@v1.0.0/go.mod", b"module example.com/m\n"),
            ("example.com/m@v1.0.0/m.go", b"package m\n"),
            ("example.com/m@v1.0.0/sub/x.go", b"package sub\n"),
            ("example.com/m@v1.0.0/LICENSE", b"license"),
        ];
        let s = check(&make_zip(files)).unwrap();
        let want = crate::dirhash::hash1_contents(files.iter().copied()).unwrap();
        assert_eq!(s.h1, want);
        assert_eq!(s.files, 4);
        assert_eq!(s.uncompressed_size, 21 + 10 + 12 + 7);
        assert!(s.has_go_mod);
        assert_eq!(
            s.go_mod_h1.as_deref(),
            Some(crate::dirhash::hash_go_mod(b"module example.com/m\n").as_str())
        );

        // Entry order and compression do not change the hash.
        let mut reversed = files.to_vec();
        reversed.reverse();
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content) in &reversed {
            w.start_file(
                *name,
                SimpleFileOptions::default().compression_method(CompressionMethod::Stored),
            )
            .unwrap();
            w.write_all(content).unwrap();
        }
        let stored = w.finish().unwrap().into_inner();
        assert_eq!(check(&stored).unwrap().h1, want);
    }

    #[test]
    fn directory_entries_count_in_the_hash() {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.add_directory("example.com/m@v1.0.0/", deflated())
            .unwrap();
        w.add_directory("example.com/m@v1.0.0/sub/", deflated())
            .unwrap();
        w.start_file("example.com/m@v1.0.0/sub/x.go", deflated())
            .unwrap();
        w.write_all(b"package sub\n").unwrap();
        let zip = w.finish().unwrap().into_inner();
        let s = check(&zip).unwrap();
        assert_eq!(s.files, 1);
        assert!(!s.has_go_mod && s.go_mod_h1.is_none());
        let want = crate::dirhash::hash1_contents([
            ("example.com/m@v1.0.0/", &b""[..]),
            ("example.com/m@v1.0.0/sub/", b""),
            ("example.com/m@v1.0.0/sub/x.go", b"package sub\n"),
        ])
        .unwrap();
        assert_eq!(s.h1, want);
    }

    #[test]
    fn rejects_bad_prefix() {
        for name in [
            "example.com/other@v1.0.0/x.go",
            "example.com/m@v1.0.1/x.go",
            "example.com/m@v1.0.0x.go",
            "x.go",
            "/example.com/m@v1.0.0/x.go",
            "EXAMPLE.com/m@v1.0.0/x.go",
        ] {
            let r = reason(check(&make_zip(&[(name, b"x")])));
            assert!(r.contains("does not have prefix"), "{name}: {r}");
        }
    }

    #[test]
    fn rejects_unclean_and_invalid_paths() {
        for (name, want) in [
            ("example.com/m@v1.0.0/../x.go", "not clean"),
            ("example.com/m@v1.0.0/a/../../x.go", "not clean"),
            ("example.com/m@v1.0.0/./x.go", "not clean"),
            ("example.com/m@v1.0.0//x.go", "not clean"),
            ("example.com/m@v1.0.0/a//x.go", "not clean"),
            ("example.com/m@v1.0.0/a/b//", "not clean"),
            ("example.com/m@v1.0.0/x:y.go", "invalid char"),
            ("example.com/m@v1.0.0/a\\b.go", "invalid char"),
            ("example.com/m@v1.0.0/con.go", "disallowed as path element"),
            ("example.com/m@v1.0.0/x.go.", "trailing dot"),
            ("example.com/m@v1.0.0/a\nb", "invalid char"),
        ] {
            let r = reason(check(&make_zip(&[(name, b"x")])));
            assert!(r.contains(want), "{name:?}: {r}");
        }
    }

    #[test]
    fn rejects_case_fold_collisions() {
        let r = reason(check(&make_zip(&[
            ("example.com/m@v1.0.0/README", b"a"),
            ("example.com/m@v1.0.0/readme", b"b"),
        ])));
        assert!(r.contains("case-insensitive file name collision"), "{r}");
        // Directories collide too.
        let r = reason(check(&make_zip(&[
            ("example.com/m@v1.0.0/Dir/a.go", b"a"),
            ("example.com/m@v1.0.0/dir/b.go", b"b"),
        ])));
        assert!(r.contains("case-insensitive file name collision"), "{r}");
        // U+212A KELVIN SIGN folds to k: Go's EqualFold says these collide.
        let r = reason(check(&make_zip(&[
            ("example.com/m@v1.0.0/k.go", b"a"),
            ("example.com/m@v1.0.0/\u{212A}.go", b"b"),
        ])));
        assert!(r.contains("case-insensitive"), "{r}");
        // So do final and non-final sigma.
        let r = reason(check(&make_zip(&[
            ("example.com/m@v1.0.0/\u{3c3}.txt", b"a"),
            ("example.com/m@v1.0.0/\u{3c2}.txt", b"b"),
        ])));
        assert!(r.contains("case-insensitive"), "{r}");
    }

    #[test]
    fn rejects_file_and_directory_with_one_name() {
        let r = reason(check(&make_zip(&[
            ("example.com/m@v1.0.0/a", b"file"),
            ("example.com/m@v1.0.0/a/b.go", b"b"),
        ])));
        assert!(r.contains("both a file and a directory"), "{r}");
        let r = reason(check(&make_zip(&[
            ("example.com/m@v1.0.0/a/b.go", b"b"),
            ("example.com/m@v1.0.0/a", b"file"),
        ])));
        assert!(r.contains("both a file and a directory"), "{r}");
    }

    #[test]
    fn rejects_duplicate_entries() {
        // The zip writer refuses duplicates, so duplicate the central directory entry by hand:
        // write "a" and "b" (same name length) and rename "b" to "a" in both headers.
        let mut zip = make_zip(&[
            ("example.com/m@v1.0.0/a", b"1"),
            ("example.com/m@v1.0.0/b", b"2"),
        ]);
        let needle = b"example.com/m@v1.0.0/b";
        let mut i = 0;
        while let Some(pos) = find(&zip[i..], needle) {
            let at = i + pos + needle.len() - 1;
            zip[at] = b'a';
            i = at;
        }
        let r = reason(check(&zip));
        assert!(r.contains("multiple entries"), "{r}");
    }

    #[test]
    fn go_mod_placement() {
        let r = reason(check(&make_zip(&[(
            "example.com/m@v1.0.0/GO.MOD",
            b"module x\n",
        )])));
        assert!(r.contains("lowercase"), "{r}");
        let r = reason(check(&make_zip(&[(
            "example.com/m@v1.0.0/sub/go.mod",
            b"module example.com/m/sub\n",
        )])));
        assert!(r.contains("not in module root"), "{r}");
        let r = reason(check(&make_zip(&[(
            "example.com/m@v1.0.0/sub/Go.Mod",
            b"",
        )])));
        assert!(r.contains("not in module root"), "{r}");
        // x/mod's CheckZip allows a root directory named go.mod, but the go command then fails
        // to read the module's go.mod; deeper directories named go.mod are harmless.
        let r = reason(check(&make_zip(&[(
            "example.com/m@v1.0.0/go.mod/x.go",
            b"",
        )])));
        assert!(r.contains("is a directory"), "{r}");
        assert!(check(&make_zip(&[("example.com/m@v1.0.0/sub/go.mod/x.go", b"")])).is_ok());
    }

    #[test]
    fn rejects_symlinks_and_irregular_files() {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.add_symlink("example.com/m@v1.0.0/link", "/etc/passwd", deflated())
            .unwrap();
        let zip = w.finish().unwrap().into_inner();
        let r = reason(check(&zip));
        assert!(r.contains("symbolic link"), "{r}");

        assert_eq!(
            check_entry_type(System::Unix, 0o010_644 << 16, false),
            Err("not a regular file")
        );
        assert_eq!(
            check_entry_type(System::Unix, 0o040_755 << 16, false),
            Err("not a regular file")
        );
        assert_eq!(
            check_entry_type(System::Unix, 0o040_755 << 16, true),
            Ok(())
        );
        assert_eq!(
            check_entry_type(System::Unix, 0o100_644 << 16, false),
            Ok(())
        );
        assert_eq!(check_entry_type(System::Dos, 0x10, false), Ok(()));

        // Executable regular files are fine.
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file(
            "example.com/m@v1.0.0/run.sh",
            deflated().unix_permissions(0o755),
        )
        .unwrap();
        w.write_all(b"#!/bin/sh\n").unwrap();
        assert!(check(&w.finish().unwrap().into_inner()).is_ok());
    }

    #[test]
    fn size_limits_use_declared_sizes_first() {
        let small = ZipLimits {
            max_zip_size: MAX_ZIP_FILE,
            max_total_size: 100,
            max_go_mod: 10,
            max_license: 20,
        };
        let r = reason(check_limits(
            &make_zip(&[("example.com/m@v1.0.0/go.mod", b"module example.com/m\n")]),
            small,
        ));
        assert!(r.contains("go.mod file too large"), "{r}");
        let r = reason(check_limits(
            &make_zip(&[("example.com/m@v1.0.0/LICENSE", &[b'x'; 21])]),
            small,
        ));
        assert!(r.contains("LICENSE file too large"), "{r}");
        // A LICENSE below the root is an ordinary file.
        assert!(
            check_limits(
                &make_zip(&[("example.com/m@v1.0.0/sub/LICENSE", &[b'x'; 21])]),
                small
            )
            .is_ok()
        );
        let r = reason(check_limits(
            &make_zip(&[
                ("example.com/m@v1.0.0/a", &[b'x'; 60]),
                ("example.com/m@v1.0.0/b", &[b'x'; 41]),
            ]),
            small,
        ));
        assert!(r.contains("total uncompressed size"), "{r}");
        // Exactly at the limit is fine.
        let s = check_limits(
            &make_zip(&[
                ("example.com/m@v1.0.0/a", &[b'x'; 60]),
                ("example.com/m@v1.0.0/b", &[b'x'; 40]),
            ]),
            small,
        )
        .unwrap();
        assert_eq!(s.uncompressed_size, 100);

        let zip = make_zip(&[("example.com/m@v1.0.0/a", b"x")]);
        let r = reason(check_limits(
            &zip,
            ZipLimits {
                max_zip_size: zip.len() as u64 - 1,
                ..ZipLimits::default()
            },
        ));
        assert!(r.contains("module zip file is too large"), "{r}");
    }

    /// Rewrites the uncompressed size of every entry (local and central headers) to `size`.
    fn patch_uncompressed_size(zip: &mut [u8], size: u32) {
        let mut i = 0;
        while i + 46 <= zip.len() {
            if zip[i..i + 4] == [b'P', b'K', 3, 4] {
                zip[i + 22..i + 26].copy_from_slice(&size.to_le_bytes());
            } else if zip[i..i + 4] == [b'P', b'K', 1, 2] {
                zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
            }
            i += 1;
        }
    }

    #[test]
    fn lying_headers_are_caught_by_reading() {
        let content = vec![b'z'; 10_000];
        for method in [CompressionMethod::Stored, CompressionMethod::Deflated] {
            let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
            w.start_file(
                "example.com/m@v1.0.0/bomb.txt",
                SimpleFileOptions::default().compression_method(method),
            )
            .unwrap();
            w.write_all(&content).unwrap();
            let mut zip = w.finish().unwrap().into_inner();
            patch_uncompressed_size(&mut zip, 5);
            // The declared 5 bytes fit the limit; the real 10,000 do not.
            let limits = ZipLimits {
                max_total_size: 100,
                ..ZipLimits::default()
            };
            let r = reason(check_limits(&zip, limits));
            assert!(r.contains("bomb.txt"), "{method:?}: {r}");
            // And a header claiming more than the content is also wrong.
            patch_uncompressed_size(&mut zip, 20_000);
            let r = reason(check(&zip));
            assert!(r.contains("bomb.txt"), "{method:?}: {r}");
        }
    }

    #[test]
    fn corrupt_content_is_rejected() {
        let mut zip = make_zip(&[(
            "example.com/m@v1.0.0/a.txt",
            b"hello hello hello hello hello hello",
        )]);
        // Flip a byte inside the compressed data, after the local header, name and extra field.
        let name_len = usize::from(u16::from_le_bytes([zip[26], zip[27]]));
        let extra_len = usize::from(u16::from_le_bytes([zip[28], zip[29]]));
        let data_at = 30 + name_len + extra_len + 2;
        zip[data_at] ^= 0xff;
        assert!(matches!(check(&zip), Err(Error::InvalidZip { .. })));
        assert!(matches!(check(b"not a zip"), Err(Error::InvalidZip { .. })));
        assert!(matches!(check(b""), Err(Error::InvalidZip { .. })));
    }

    #[test]
    fn directory_entry_with_content_is_rejected() {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("example.com/m@v1.0.0/dir/", deflated())
            .unwrap();
        w.write_all(b"data").unwrap();
        let zip = w.finish().unwrap().into_inner();
        let r = reason(check(&zip));
        assert!(r.contains("directory entry has content"), "{r}");
    }

    #[test]
    fn version_must_match_module() {
        let zip = make_zip(&[("example.com/m@v2.0.0/a.go", b"x")]);
        let m = ModulePath::parse(MODULE).unwrap();
        let v = Version::parse("v2.0.0").unwrap();
        let err = check_zip(Cursor::new(zip), &m, &v, &ZipLimits::default()).unwrap_err();
        assert!(matches!(err, Error::InvalidVersion { .. }), "{err:?}");
    }

    #[test]
    fn fold_matches_go_equal_fold() {
        assert_eq!(str_to_fold("ABC/def"), "abc/def");
        assert_eq!(str_to_fold("\u{212A}"), "k");
        assert_eq!(str_to_fold("\u{17F}"), "s");
        assert_eq!(str_to_fold("ΣΑΣ"), str_to_fold("σας"));
        assert_ne!(str_to_fold("a"), str_to_fold("b"));
        assert_eq!(str_to_fold("ß"), str_to_fold("ẞ"));
    }

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }
}
