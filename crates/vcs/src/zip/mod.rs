//! The module zip, as `(*codeRepo).Zip` builds it from `git archive` and x/mod/zip's `Create`
//! filters it: entries under the module's directory, LICENSE from the repository root for a
//! module in a subdirectory, then x/mod's file rules (vendored packages by the go.mod's Go
//! version, files of nested modules, `.hg_archival.txt`, invalid or case-colliding names,
//! symbolic links and other irregular files, size limits).
//!
//! The archive is spooled to a temporary file, its central directory is read one header at a
//! time (gomod's reader, the one `check_zip` uses) into one compact record per entry, and the
//! module zip is written entry by entry (`copy.rs`): each kept entry's compressed bytes are
//! copied as git wrote them behind a new local header carrying the renamed path, and the
//! central directory is written from the records. Nothing is inflated or deflated again but the
//! root go.mod, read for its Go version, and a LICENSE copied from the root. Per file this
//! keeps its path in one arena and a 56-byte record; while `check_files` runs, x/mod's
//! collision map (`gomod::zipfile::Collisions`, two strings per file: about 130 bytes per file
//! for a 20,000-file module, measured with heaptrack) is the larger part. The number of files
//! is capped at `gomod::zipfile::MAX_ENTRIES` (the service's `check_zip` refuses more).

mod copy;

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};

use gomod::zipfile::{DirectoryEntry, MAX_ENTRIES, ZipDirectory};

use crate::error::VcsError;
use crate::modrules::{go_mod_lang, lang_at_least_1_24};
use copy::{EntryHeader, ZipOut};

/// Largest module zip and total file size (`zip.MaxZipFile`).
const MAX_ZIP_FILE: u64 = 500 << 20;
/// `zip.MaxGoMod` and `zip.MaxLICENSE`.
const MAX_GO_MOD: u64 = 16 << 20;
const MAX_LICENSE: u64 = 16 << 20;

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFDIR: u32 = 0o040000;

/// Compression method: deflate.
const METHOD_DEFLATE: u16 = 8;

/// A file candidate for the module zip: 56 bytes, its path in the arena of [`Candidates`].
struct Candidate {
    path_start: u32,
    path_len: u32,
    kind: Kind,
    /// False for the root LICENSE of a module in a subdirectory (its bytes are in memory).
    from_archive: bool,
    /// The declared uncompressed size.
    size: u64,
    /// The header fields copied to the module zip; `local_header_offset` is the entry's in
    /// the git archive until it is written, then its offset in the module zip.
    header: CompactHeader,
}

// The figure the module documentation gives.
const _: () = assert!(std::mem::size_of::<Candidate>() == 56);

#[derive(Clone, Copy)]
struct CompactHeader {
    creator_version: u16,
    method: u16,
    modified: u32,
    crc32: u32,
    external_attributes: u32,
    compressed_size: u64,
    local_header_offset: u64,
}

/// The candidates in archive order, their paths (relative to the module root) in one string.
#[derive(Default)]
struct Candidates {
    arena: String,
    files: Vec<Candidate>,
}

impl Candidates {
    fn path(&self, f: &Candidate) -> &str {
        &self.arena[f.path_start as usize..(f.path_start + f.path_len) as usize]
    }

    fn push(
        &mut self,
        path: &str,
        kind: Kind,
        from_archive: bool,
        size: u64,
        header: CompactHeader,
    ) -> Result<(), VcsError> {
        let too_large = || VcsError::TooLarge {
            reason: "file names of the module too long in total".into(),
        };
        let path_start = u32::try_from(self.arena.len()).map_err(|_| too_large())?;
        let path_len = u32::try_from(path.len()).map_err(|_| too_large())?;
        path_start.checked_add(path_len).ok_or_else(too_large)?;
        if self.files.len() as u64 >= MAX_ENTRIES {
            return Err(VcsError::TooLarge {
                reason: format!("module has more than {MAX_ENTRIES} files"),
            });
        }
        self.arena.push_str(path);
        self.files.push(Candidate {
            path_start,
            path_len,
            kind,
            from_archive,
            size,
            header,
        });
        Ok(())
    }

    fn entry_header(&self, f: &Candidate) -> EntryHeader {
        EntryHeader {
            creator_version: f.header.creator_version,
            method: f.header.method,
            modified: f.header.modified,
            crc32: f.header.crc32,
            compressed_size: f.header.compressed_size,
            uncompressed_size: f.size,
            external_attributes: f.header.external_attributes,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Regular,
    Symlink,
    Directory,
    Other,
}

/// How Go's `archive/zip` reads an entry's file mode (`(*FileHeader).Mode`).
fn entry_kind(creator: u8, external: u32, name: &str) -> Kind {
    let mut kind = match creator {
        // Unix, macOS: the mode in the high 16 bits.
        3 | 19 => match (external >> 16) & S_IFMT {
            0 | S_IFREG => Kind::Regular,
            S_IFLNK => Kind::Symlink,
            S_IFDIR => Kind::Directory,
            _ => Kind::Other,
        },
        // MS-DOS, NTFS, VFAT: the directory attribute.
        0 | 11 | 14 if external & 0x10 != 0 => Kind::Directory,
        _ => Kind::Regular,
    };
    if name.ends_with('/') {
        kind = Kind::Directory;
    }
    kind
}

/// `isVendoredPackage` of x/mod/zip; `new_rules` for go.mod files at Go 1.24 or later.
fn is_vendored_package(name: &str, new_rules: bool) -> bool {
    if new_rules && name == "vendor/modules.txt" {
        return true;
    }
    let i = if let Some(rest) = name.strip_prefix("vendor/") {
        name.len() - rest.len()
    } else if let Some(j) = name.find("/vendor/") {
        if new_rules {
            j + "/vendor/".len()
        } else {
            // The old rule's quirk: the offset of "/vendor/" is not added.
            "/vendor/".len()
        }
    } else {
        return false;
    };
    name.get(i..).is_some_and(|rest| rest.contains('/'))
}

/// Writes the module zip for `module@version` from the `git archive` zip in `archive`.
/// `subdir` is the module's directory in the repository; `root_license` is the repository
/// root's LICENSE, used when the module has none of its own. Returns the zip's size.
pub(crate) fn build(
    archive: &mut File,
    module: &str,
    version: &str,
    subdir: &str,
    root_license: Option<Vec<u8>>,
    dest: &mut File,
) -> Result<u64, VcsError> {
    let size = archive
        .seek(SeekFrom::End(0))
        .map_err(|e| VcsError::io("reading the git archive", e))?;
    if size > MAX_ZIP_FILE {
        return Err(VcsError::TooLarge {
            reason: "downloaded zip file too large".into(),
        });
    }
    let mut zr = ZipDirectory::open(&mut *archive).map_err(|e| bad_archive(e.to_string()))?;
    let what = format!("{module}@{version}");

    let subdir = subdir.trim_matches('/');
    let subdir = if subdir.is_empty() {
        String::new()
    } else {
        format!("{subdir}/")
    };

    // The entries under the module's directory (coderepo.go's loop).
    let mut files = Candidates::default();
    let mut have_license = false;
    let mut top_prefix = String::new();
    let mut root_go_mod: Option<DirectoryEntry> = None;
    while let Some((entry, raw_name)) = zr.next_entry().map_err(|e| bad_archive(e.to_string()))? {
        let name = String::from_utf8_lossy(raw_name);
        if top_prefix.is_empty() {
            let Some(slash) = name.find('/') else {
                return Err(bad_archive("missing top-level directory prefix".into()));
            };
            top_prefix = name[..=slash].to_string();
        }
        let Some(rel) = name.strip_prefix(&top_prefix) else {
            return Err(bad_archive(
                "zip file contains more than one top-level directory".into(),
            ));
        };
        let Some(rel) = rel.strip_prefix(&subdir) else {
            continue;
        };
        if rel.is_empty() || rel.ends_with('/') {
            continue;
        }
        if std::str::from_utf8(raw_name).is_err() {
            return Err(invalid_file(&what, rel, "invalid UTF-8 in file path"));
        }
        let kind = entry_kind(entry.creator_system(), entry.external_attributes, &name);
        if rel == "LICENSE" {
            have_license = true;
        }
        if rel == "go.mod" && kind == Kind::Regular {
            root_go_mod = Some(entry);
        }
        let header = CompactHeader {
            creator_version: entry.creator_version,
            method: entry.method,
            modified: entry.modified,
            crc32: entry.crc32,
            external_attributes: entry.external_attributes,
            compressed_size: entry.compressed_size,
            local_header_offset: entry.local_header_offset,
        };
        files.push(rel, kind, true, entry.uncompressed_size, header)?;
    }
    // The root go.mod's Go version picks the vendor rule (read with a limit; a go.mod that
    // cannot be read counts as one without a go line, as x/mod reads it).
    let go_mod = root_go_mod
        .filter(|e| e.uncompressed_size <= MAX_GO_MOD)
        .map(|entry| {
            let mut data = Vec::new();
            let _ = zr.read_content(&entry, |chunk| data.extend_from_slice(chunk));
            data
        });
    let license = match root_license {
        Some(data) if !have_license && !subdir.is_empty() => {
            let (header, compressed) = deflate_license(&data);
            files.push("LICENSE", Kind::Regular, false, data.len() as u64, header)?;
            Some(compressed)
        }
        _ => None,
    };

    let valid = check_files(&files, go_mod.as_deref(), &what)?;

    // Entries from the archive are copied as git compressed them, renamed to
    // `module@version/path`: inflating and deflating again would cost a decompressor and a
    // compressor state per file (hundreds of KiB each) and most of the time of a large zip.
    //
    // So the CRC-32 and the sizes in the copied headers are the ones git wrote. Git computes
    // them itself from the bytes it compresses (after the eol and export-subst conversions),
    // or, for a large blob it streams, takes the blob's size, which the object id hashes
    // together with the content (`index-pack` checked it when the mirror fetched it). A
    // repository's content is data, never headers: it cannot make them lie. Nothing here
    // inflates these entries, so there is no "larger than declared size" to catch while
    // copying; the service's `check_zip` inflates every entry of the finished zip and refuses
    // it unless each file is exactly its declared size with a matching CRC-32, before it is
    // stored or served. The size limits of `check_files` are applied to the declared sizes,
    // so they hold for the real ones.
    let writing = |e| VcsError::io("writing the module zip", e);
    let mut zw = ZipOut::new(BufWriter::new(&mut *dest), format!("{module}@{version}/"));
    for &idx in &valid {
        let f = &files.files[idx];
        let header = files.entry_header(f);
        let (offset, out) = zw.start_entry(files.path(f), &header).map_err(writing)?;
        if f.from_archive {
            zr.copy_data(f.header.local_header_offset, f.header.compressed_size, out)
                .map_err(|e| bad_archive(e.to_string()))?;
        } else if let Some(data) = &license {
            out.write_all(data).map_err(writing)?;
        }
        files.files[idx].header.local_header_offset = offset;
    }
    let directory = valid.iter().map(|&idx| {
        let f = &files.files[idx];
        (
            files.path(f),
            files.entry_header(f),
            f.header.local_header_offset,
        )
    });
    let size = zw.finish(directory).map_err(writing)?;
    dest.flush().map_err(writing)?;
    Ok(size)
}

/// The root LICENSE (read from git with a limit, at most MAX_LICENSE bytes when it is used:
/// check_files refuses a larger one), deflated once; its header and compressed bytes.
fn deflate_license(data: &[u8]) -> (CompactHeader, Vec<u8>) {
    let mut deflate =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = deflate.write_all(data);
    let compressed = deflate.finish().unwrap_or_default();
    let header = CompactHeader {
        // Unix, zip 2.0; a regular file, rw-r--r--.
        creator_version: (3 << 8) | 20,
        method: METHOD_DEFLATE,
        // 1980-01-01 00:00, the earliest MS-DOS date.
        modified: (1 | (1 << 5)) << 16,
        crc32: crc32fast::hash(data),
        external_attributes: (S_IFREG | 0o644) << 16,
        compressed_size: compressed.len() as u64,
        local_header_offset: 0,
    };
    (header, compressed)
}

fn bad_archive(reason: String) -> VcsError {
    VcsError::Git {
        command: "git archive".into(),
        stderr: format!("unusable zip: {reason}"),
    }
}

fn invalid_file(what: &str, path: &str, reason: &str) -> VcsError {
    VcsError::not_found(what, format!("create zip: {path}: {reason}"))
}

/// x/mod/zip's `checkFiles`: the indexes of the files that go into the zip, or the first
/// reason the zip cannot be made.
fn check_files(
    candidates: &Candidates,
    root_go_mod: Option<&[u8]>,
    what: &str,
) -> Result<Vec<usize>, VcsError> {
    // Directories holding a go.mod are other modules; the root go.mod's Go version picks the
    // vendor rule.
    let mut have_go_mod: HashSet<&str> = HashSet::new();
    for f in &candidates.files {
        let path = candidates.path(f);
        let (dir, base) = match path.rfind('/') {
            Some(i) => (&path[..=i], &path[i + 1..]),
            None => ("", path),
        };
        if base.eq_ignore_ascii_case("go.mod") && f.kind == Kind::Regular {
            have_go_mod.insert(dir);
        }
    }
    let lang = root_go_mod.and_then(go_mod_lang);
    let new_rules = lang_at_least_1_24(lang.as_deref());
    let in_submodule = |p: &str| {
        let mut p = p;
        loop {
            let dir = match p.rfind('/') {
                Some(i) => &p[..=i],
                None => return false,
            };
            if have_go_mod.contains(dir) {
                return true;
            }
            p = &dir[..dir.len() - 1];
        }
    };

    let mut errors: Vec<String> = Vec::new();
    let mut seen_error: HashSet<&str> = HashSet::new();
    let mut collisions = gomod::zipfile::Collisions::default();
    let mut remaining = MAX_ZIP_FILE;
    let mut size_error = None;
    let mut valid = Vec::new();
    for (idx, f) in candidates.files.iter().enumerate() {
        let p = candidates.path(f);
        let mut invalid = |reason: String| {
            if seen_error.insert(p) {
                errors.push(format!("{p}: {reason}"));
            }
        };
        if is_vendored_package(p, new_rules) || in_submodule(p) || p == ".hg_archival.txt" {
            continue;
        }
        if let Err(e) = gomod::module::check_file_path(p) {
            invalid(e.to_string());
            continue;
        }
        if p.eq_ignore_ascii_case("go.mod") && p != "go.mod" {
            invalid("go.mod files must have lowercase names".into());
            continue;
        }
        if let Err(e) = collisions.check(p, f.kind == Kind::Directory) {
            invalid(e.to_string());
            continue;
        }
        match f.kind {
            Kind::Regular => {}
            // Symbolic links and other irregular files are left out.
            Kind::Symlink | Kind::Directory | Kind::Other => continue,
        }
        if f.size <= remaining {
            remaining -= f.size;
        } else if size_error.is_none() {
            size_error = Some(format!(
                "module source tree too large (max size is {MAX_ZIP_FILE} bytes)"
            ));
        }
        if p == "go.mod" && f.size > MAX_GO_MOD {
            invalid(format!(
                "go.mod file too large (max size is {MAX_GO_MOD} bytes)"
            ));
            continue;
        }
        if p == "LICENSE" && f.size > MAX_LICENSE {
            invalid(format!(
                "LICENSE file too large (max size is {MAX_LICENSE} bytes)"
            ));
            continue;
        }
        valid.push(idx);
    }
    if let Some(reason) = size_error {
        return Err(VcsError::TooLarge { reason });
    }
    if !errors.is_empty() {
        return Err(VcsError::not_found(
            what,
            format!("create zip: {}", errors.join("; ")),
        ));
    }
    Ok(valid)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use zip::write::SimpleFileOptions;
    use zip::{CompressionMethod, ZipArchive, ZipWriter};

    use super::*;

    #[test]
    fn vendor_rules() {
        // x/mod/zip's isVendoredPackage, both rule sets.
        assert!(is_vendored_package("vendor/a/b.go", false));
        assert!(!is_vendored_package("vendor/modules.txt", false));
        assert!(is_vendored_package("vendor/modules.txt", true));
        assert!(!is_vendored_package("vendor/x.go", false));
        // Old quirk: offset 8 into the name, not past the match.
        assert!(is_vendored_package("x/vendor/a.go", false));
        assert!(!is_vendored_package("x/vendor/a.go", true));
        assert!(is_vendored_package("x/vendor/a/b.go", true));
        assert!(!is_vendored_package("x/y.go", true));
    }

    /// A `git archive`-like zip: every entry under `top/`, with git's unix modes; deflated,
    /// but stored for names ending in `.bin` (as git stores what deflate does not shrink).
    fn archive(files: &[(&str, &[u8])]) -> File {
        let mut out = tempfile::tempfile().unwrap();
        let mut zw = ZipWriter::new(&mut out);
        for (name, data) in files {
            let method = if name.ends_with(".bin") {
                CompressionMethod::Stored
            } else {
                CompressionMethod::Deflated
            };
            let options = SimpleFileOptions::default()
                .compression_method(method)
                .unix_permissions(0o644);
            zw.start_file(format!("top/{name}"), options).unwrap();
            zw.write_all(data).unwrap();
        }
        zw.finish().unwrap();
        out
    }

    /// The raw (compressed) bytes of each entry, by name.
    fn raw_entries(zip: &mut File) -> Vec<(String, Vec<u8>)> {
        zip.seek(SeekFrom::Start(0)).unwrap();
        let mut zr = ZipArchive::new(zip).unwrap();
        (0..zr.len())
            .map(|i| {
                let mut entry = zr.by_index_raw(i).unwrap();
                let name = entry.name().unwrap().to_string();
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                (name, data)
            })
            .collect()
    }

    fn check(zip: &mut File, module: &str, version: &str) -> Result<String, gomod::Error> {
        zip.seek(SeekFrom::Start(0)).unwrap();
        let module = gomod::ModulePath::parse(module).unwrap();
        let version = gomod::Version::parse(version).unwrap();
        gomod::zipfile::check_zip(&mut *zip, &module, &version, &Default::default())
            .map(|summary| summary.h1)
    }

    #[test]
    fn entries_are_copied_compressed_and_the_root_license_added() {
        let text = b"package a\n// compressible compressible compressible compressible\n";
        let mut src = archive(&[
            ("LICENSE", b"root license\n"),
            ("sub/go.mod", b"module example.com/m/sub\n\ngo 1.24\n"),
            ("sub/a.go", text),
            ("sub/data.bin", b"stored as git stored it"),
            ("sub/vendor/modules.txt", b"# vendored\n"),
        ]);
        let mut out = tempfile::tempfile().unwrap();
        let license = Some(b"root license\n".to_vec());
        let size = build(
            &mut src,
            "example.com/m/sub",
            "v1.0.0",
            "sub",
            license,
            &mut out,
        )
        .unwrap();
        assert_eq!(size, out.metadata().unwrap().len());

        let from_git = raw_entries(&mut src);
        let written = raw_entries(&mut out);
        let names: Vec<&str> = written.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "example.com/m/sub@v1.0.0/go.mod",
                "example.com/m/sub@v1.0.0/a.go",
                "example.com/m/sub@v1.0.0/data.bin",
                "example.com/m/sub@v1.0.0/LICENSE",
            ]
        );
        // The same compressed bytes as in git's archive, not inflated and deflated again.
        assert_eq!(written[0].1, from_git[1].1);
        assert_eq!(written[1].1, from_git[2].1);
        assert!(written[1].1.len() < text.len(), "a.go stays deflated");
        assert_eq!(
            written[2].1, b"stored as git stored it",
            "data.bin stays stored"
        );

        // The result is a module zip the go command accepts, with the files' contents.
        check(&mut out, "example.com/m/sub", "v1.0.0").unwrap();
        out.seek(SeekFrom::Start(0)).unwrap();
        let mut zr = ZipArchive::new(&mut out).unwrap();
        let mut a = String::new();
        zr.by_name("example.com/m/sub@v1.0.0/a.go")
            .unwrap()
            .read_to_string(&mut a)
            .unwrap();
        assert_eq!(a.as_bytes(), text);
        let mut l = String::new();
        zr.by_name("example.com/m/sub@v1.0.0/LICENSE")
            .unwrap()
            .read_to_string(&mut l)
            .unwrap();
        assert_eq!(l, "root license\n");
    }

    #[test]
    fn a_declared_size_that_lies_is_caught_by_check_zip() {
        // Git writes the sizes from the bytes it compressed, so this cannot come from git; if
        // it did, the copied header would carry the lie, and check_zip, which inflates every
        // entry, refuses the zip before the service stores it.
        let mut src = archive(&[
            ("go.mod", b"module example.com/m\n"),
            ("a.go", b"package a\n"),
        ]);
        let mut bytes = Vec::new();
        src.seek(SeekFrom::Start(0)).unwrap();
        src.read_to_end(&mut bytes).unwrap();
        // The central directory's uncompressed size of a.go (offset 24 of its header): 1 byte
        // smaller than the content.
        let header = (0..bytes.len() - 4)
            .filter(|&i| bytes[i..i + 4] == [0x50, 0x4b, 0x01, 0x02])
            .nth(1)
            .unwrap();
        bytes[header + 24..header + 28].copy_from_slice(&9u32.to_le_bytes());
        let mut src = tempfile::tempfile().unwrap();
        src.write_all(&bytes).unwrap();

        let mut out = tempfile::tempfile().unwrap();
        build(&mut src, "example.com/m", "v1.0.0", "", None, &mut out).unwrap();
        let err = check(&mut out, "example.com/m", "v1.0.0").unwrap_err();
        assert!(err.to_string().contains("a.go"), "{err}");
    }

    #[test]
    fn more_than_65535_files_get_zip64_end_records() {
        // The classic end record's count saturates at 65,535: Go's archive/zip (and check_zip,
        // which reads as Go does) then takes the count from the zip64 end record.
        const FILES: usize = 70_000;
        let mut src = tempfile::tempfile().unwrap();
        let mut zw = ZipWriter::new(&mut src);
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .unix_permissions(0o644);
        zw.start_file("top/go.mod", options).unwrap();
        zw.write_all(b"module example.com/m\n").unwrap();
        for i in 0..FILES {
            zw.start_file(format!("top/d{}/f{}.go", i / 1000, i % 1000), options)
                .unwrap();
            zw.write_all(b"package d\n").unwrap();
        }
        zw.finish().unwrap();

        let mut out = tempfile::tempfile().unwrap();
        let size = build(&mut src, "example.com/m", "v1.0.0", "", None, &mut out).unwrap();
        let mut bytes = Vec::new();
        out.seek(SeekFrom::Start(0)).unwrap();
        out.read_to_end(&mut bytes).unwrap();
        assert_eq!(size, bytes.len() as u64);
        let end = &bytes[bytes.len() - 22..];
        assert_eq!(end[..4], [0x50, 0x4b, 0x05, 0x06]);
        assert_eq!(end[10..12], [0xff, 0xff], "the classic count saturates");
        let locator = &bytes[bytes.len() - 42..bytes.len() - 22];
        assert_eq!(locator[..4], [0x50, 0x4b, 0x06, 0x07]);

        out.seek(SeekFrom::Start(0)).unwrap();
        let module = gomod::ModulePath::parse("example.com/m").unwrap();
        let version = gomod::Version::parse("v1.0.0").unwrap();
        let summary =
            gomod::zipfile::check_zip(&mut out, &module, &version, &Default::default()).unwrap();
        assert_eq!(summary.files, FILES + 1);
    }

    #[test]
    fn modes() {
        assert!(entry_kind(0, 0, "a") == Kind::Regular);
        assert!(entry_kind(0, 0x10, "a") == Kind::Directory);
        assert!(entry_kind(3, 0o120777 << 16, "a") == Kind::Symlink);
        assert!(entry_kind(3, 0o100755 << 16, "a") == Kind::Regular);
        assert!(entry_kind(3, 0, "a/") == Kind::Directory);
    }
}
