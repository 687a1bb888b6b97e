//! The module zip, as `(*codeRepo).Zip` builds it from `git archive` and x/mod/zip's `Create`
//! filters it: entries under the module's directory, LICENSE from the repository root for a
//! module in a subdirectory, then x/mod's file rules (vendored packages by the go.mod's Go
//! version, files of nested modules, `.hg_archival.txt`, invalid or case-colliding names,
//! symbolic links and other irregular files, size limits).
//!
//! The archive is spooled to a temporary file and the module zip is written entry by entry,
//! each kept entry's compressed bytes copied as git wrote them (nothing is inflated or deflated
//! again but the root go.mod, read for its Go version, and a LICENSE copied from the root), so
//! memory stays bounded and small for any zip size.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::error::VcsError;
use crate::modrules::{go_mod_lang, lang_at_least_1_24};

/// Largest module zip and total file size (`zip.MaxZipFile`).
const MAX_ZIP_FILE: u64 = 500 << 20;
/// `zip.MaxGoMod` and `zip.MaxLICENSE`.
const MAX_GO_MOD: u64 = 16 << 20;
const MAX_LICENSE: u64 = 16 << 20;

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFDIR: u32 = 0o040000;

/// A file candidate for the module zip.
struct Candidate {
    /// Path relative to the module root.
    path: String,
    kind: Kind,
    size: u64,
    source: Source,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Regular,
    Symlink,
    Directory,
    Other,
}

enum Source {
    /// Entry index in the git archive.
    Archive(usize),
    /// The root LICENSE of a module in a subdirectory.
    Data(Vec<u8>),
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
    archive
        .seek(SeekFrom::Start(0))
        .map_err(|e| VcsError::io("reading the git archive", e))?;
    let mut zr = ZipArchive::new(&mut *archive).map_err(|e| bad_archive(e.to_string()))?;
    let what = format!("{module}@{version}");

    let subdir = subdir.trim_matches('/');
    let subdir = if subdir.is_empty() {
        String::new()
    } else {
        format!("{subdir}/")
    };

    // The entries under the module's directory (coderepo.go's loop).
    let mut files = Vec::new();
    let mut have_license = false;
    let mut top_prefix = String::new();
    for i in 0..zr.len() {
        let entry = zr.by_index_raw(i).map_err(|e| bad_archive(e.to_string()))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
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
        if std::str::from_utf8(entry.name_raw()).is_err() {
            return Err(invalid_file(&what, rel, "invalid UTF-8 in file path"));
        }
        let kind = entry_kind(entry.system() as u8, entry.external_attributes(), &name);
        if rel == "LICENSE" {
            have_license = true;
        }
        files.push(Candidate {
            path: rel.to_string(),
            kind,
            size: entry.size(),
            source: Source::Archive(i),
        });
    }
    if !have_license
        && !subdir.is_empty()
        && let Some(data) = root_license
    {
        files.push(Candidate {
            path: "LICENSE".into(),
            kind: Kind::Regular,
            size: data.len() as u64,
            source: Source::Data(data),
        });
    }

    let valid = check_files(&mut zr, &files, &what)?;

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
    let mut zw = ZipWriter::new(&mut *dest);
    let prefix = format!("{module}@{version}/");
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .large_file(false);
    for idx in valid {
        let f = &files[idx];
        let name = format!("{prefix}{}", f.path);
        match &f.source {
            Source::Archive(i) => {
                let entry = zr
                    .by_index_raw(*i)
                    .map_err(|e| bad_archive(e.to_string()))?;
                zw.raw_copy_file_rename(entry, name).map_err(|e| {
                    VcsError::io("writing the module zip", std::io::Error::other(e))
                })?;
            }
            // The root LICENSE (read from git with a limit, at most MAX_LICENSE bytes here:
            // check_files refused a larger one), compressed once.
            Source::Data(data) => {
                zw.start_file(name, options).map_err(|e| {
                    VcsError::io("writing the module zip", std::io::Error::other(e))
                })?;
                zw.write_all(data)
                    .map_err(|e| VcsError::io("writing the module zip", e))?;
            }
        }
    }
    zw.finish()
        .map_err(|e| VcsError::io("writing the module zip", std::io::Error::other(e)))?;
    dest.flush()
        .map_err(|e| VcsError::io("writing the module zip", e))?;
    dest.stream_position()
        .map_err(|e| VcsError::io("writing the module zip", e))
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
fn check_files<R: Read + Seek>(
    zr: &mut ZipArchive<R>,
    files: &[Candidate],
    what: &str,
) -> Result<Vec<usize>, VcsError> {
    // Directories holding a go.mod are other modules; the root go.mod's Go version picks the
    // vendor rule.
    let mut have_go_mod: HashSet<String> = HashSet::new();
    let mut lang = None;
    for f in files {
        let (dir, base) = match f.path.rfind('/') {
            Some(i) => (&f.path[..=i], &f.path[i + 1..]),
            None => ("", f.path.as_str()),
        };
        if !base.eq_ignore_ascii_case("go.mod") || f.kind != Kind::Regular {
            continue;
        }
        have_go_mod.insert(dir.to_string());
        if base == "go.mod" && dir.is_empty() && f.size <= MAX_GO_MOD {
            let data = match &f.source {
                Source::Archive(i) => {
                    let mut data = Vec::new();
                    if let Ok(entry) = zr.by_index(*i) {
                        let _ = entry.take(MAX_GO_MOD + 1).read_to_end(&mut data);
                    }
                    data
                }
                Source::Data(d) => d.clone(),
            };
            lang = go_mod_lang(&data);
        }
    }
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
    for (idx, f) in files.iter().enumerate() {
        let p = f.path.as_str();
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
    fn modes() {
        assert!(entry_kind(0, 0, "a") == Kind::Regular);
        assert!(entry_kind(0, 0x10, "a") == Kind::Directory);
        assert!(entry_kind(3, 0o120777 << 16, "a") == Kind::Symlink);
        assert!(entry_kind(3, 0o100755 << 16, "a") == Kind::Regular);
        assert!(entry_kind(3, 0, "a/") == Kind::Directory);
    }
}
