//! Hashes and zip verdicts recorded from the real go command by testdata/make-vectors.sh.
//!
//! The zips here are rebuilt with the zip crate (the script built its own with Python), so only
//! names and contents are shared: exactly what the `h1:` hash and the zip rules depend on.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use gomod::dirhash::hash_go_mod;
use gomod::{ModulePath, Version, ZipLimits, check_zip};
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/vectors")
}

fn data_lines(file: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(vectors_dir().join(file)).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// Files under `root` as (slash-separated relative path, content), sorted by path.
fn walk(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn go(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                go(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_str().unwrap();
                out.push((rel.replace('\\', "/"), std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    go(root, root, &mut out);
    out.sort();
    out
}

fn options() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(CompressionMethod::Deflated)
}

/// A module zip of `files` under `prefix`, with directory entries for the root and every
/// parent directory when `dirs` is set (as the script does).
fn build_zip(prefix: &str, files: &[(String, Vec<u8>)], dirs: bool) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    if dirs {
        let mut subdirs: Vec<String> = files
            .iter()
            .flat_map(|(name, _)| {
                let parts: Vec<&str> = name.split('/').collect();
                (1..parts.len())
                    .map(|n| format!("{}/", parts[..n].join("/")))
                    .collect::<Vec<_>>()
            })
            .collect();
        subdirs.sort();
        subdirs.dedup();
        w.add_directory(prefix, options()).unwrap();
        for d in subdirs {
            w.add_directory(format!("{prefix}{d}"), options()).unwrap();
        }
    }
    for (name, content) in files {
        w.start_file(format!("{prefix}{name}"), options()).unwrap();
        w.write_all(content).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn zip_and_go_mod_hashes_match_the_go_command() {
    let lines = data_lines("manifest.txt");
    assert_eq!(lines.len(), 4, "manifest lines");
    for line in lines {
        let [dir, module, version, dirs, zip_h1, go_mod_h1] = line.as_slice() else {
            panic!("bad manifest line {line:?}");
        };
        assert!(zip_h1.starts_with("h1:"), "run make-vectors.sh: {line:?}");
        let files = walk(&vectors_dir().join(dir));
        let module = ModulePath::parse(module).unwrap();
        let version = Version::parse(version).unwrap();
        let prefix = format!("{module}@{version}/");
        let with_dirs = dirs == "yes";

        let zip = build_zip(&prefix, &files, with_dirs);
        let summary = check_zip(Cursor::new(&zip), &module, &version, &ZipLimits::default())
            .unwrap_or_else(|e| panic!("{module}@{version}: {e}"));
        assert_eq!(&summary.h1, zip_h1, "{module}@{version} zip hash");
        assert_eq!(summary.files, files.len());
        assert_eq!(
            summary.uncompressed_size,
            files.iter().map(|(_, c)| c.len() as u64).sum::<u64>()
        );

        let go_mod = files.iter().find(|(n, _)| n == "go.mod");
        assert_eq!(summary.has_go_mod, go_mod.is_some());
        let mod_file = match go_mod {
            Some((_, content)) => content.clone(),
            None => format!("module {module}\n").into_bytes(),
        };
        assert_eq!(
            &hash_go_mod(&mod_file),
            go_mod_h1,
            "{module}@{version} go.mod hash"
        );
        if go_mod.is_some() {
            assert_eq!(summary.go_mod_h1.as_ref(), Some(go_mod_h1));
        }

        if with_dirs {
            // The go command hashed the directory entries too: leaving them out changes the hash.
            let plain = build_zip(&prefix, &files, false);
            let s = check_zip(
                Cursor::new(&plain),
                &module,
                &version,
                &ZipLimits::default(),
            )
            .unwrap();
            assert_ne!(&s.h1, zip_h1, "directory entries must count in the hash");
        }
    }
}

#[test]
fn zip_verdicts_match_the_go_command() {
    let lines = data_lines("zipcases.txt");
    assert!(lines.len() >= 15, "zipcases lines");
    for line in lines {
        let [module, version, verdict, entries @ ..] = line.as_slice() else {
            panic!("bad zipcases line {line:?}");
        };
        assert!(
            verdict == "accept" || verdict == "reject",
            "run make-vectors.sh: {line:?}"
        );
        let module = ModulePath::parse(module).unwrap();
        let version = Version::parse(version).unwrap();
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for e in entries {
            let name = format!("{module}@{version}/{e}");
            if e.ends_with('/') {
                w.add_directory(name, options()).unwrap();
            } else {
                w.start_file(name, options()).unwrap();
                w.write_all(b"x\n").unwrap();
            }
        }
        let zip = w.finish().unwrap().into_inner();
        let got = check_zip(Cursor::new(zip), &module, &version, &ZipLimits::default());
        assert_eq!(
            got.is_ok(),
            verdict == "accept",
            "{module} {entries:?}: go says {verdict}, check_zip says {got:?}"
        );
    }
}

/// A zip of stored entries written byte by byte, so that names may repeat (the zip crate
/// refuses that): local header + content per entry, then the central directory.
fn raw_zip(entries: &[(String, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, content) in entries {
        let offset = out.len() as u32;
        let crc = crc32(content);
        let size = content.len() as u32;
        let name_len = name.len() as u16;
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // version, flags, method, time, date
        for v in [crc, size, size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(content);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // made by, needed, flags, method, time, date
        for v in [crc, size, size] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        central.extend_from_slice(&name_len.to_le_bytes());
        central.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let (start, len, count) = (out.len() as u32, central.len() as u32, entries.len() as u16);
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn zips_with_repeated_names_match_the_go_command() {
    let lines = data_lines("zipraw.txt");
    assert!(lines.len() >= 7, "zipraw lines");
    for line in lines {
        let [module, version, verdict, h1, entries @ ..] = line.as_slice() else {
            panic!("bad zipraw line {line:?}");
        };
        assert!(
            verdict == "accept" || verdict == "reject",
            "run make-vectors.sh: {line:?}"
        );
        let module = ModulePath::parse(module).unwrap();
        let version = Version::parse(version).unwrap();
        let entries: Vec<(String, &[u8])> = entries
            .iter()
            .map(|e| {
                let e = if e == "<root>" { "" } else { e.as_str() };
                let content: &[u8] = if e.is_empty() || e.ends_with('/') {
                    b""
                } else {
                    b"x\n"
                };
                (format!("{module}@{version}/{e}"), content)
            })
            .collect();
        let got = check_zip(
            Cursor::new(raw_zip(&entries)),
            &module,
            &version,
            &ZipLimits::default(),
        );
        match (verdict.as_str(), got) {
            ("accept", Ok(summary)) => assert_eq!(&summary.h1, h1, "{module}: zip hash"),
            ("reject", Err(gomod::Error::InvalidZip { .. })) => {}
            (verdict, got) => {
                panic!("{module} {entries:?}: go says {verdict}, check_zip says {got:?}")
            }
        }
    }
}
