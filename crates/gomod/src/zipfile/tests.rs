//! Unit tests of the zip check (vectors from the go command are in tests/go_vectors.rs).

use super::*;
use std::io::{Cursor, Write};
use zip::CompressionMethod;
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
        check_entry_type(SYSTEM_UNIX, 0o010_644 << 16, false),
        Err("not a regular file")
    );
    assert_eq!(
        check_entry_type(SYSTEM_UNIX, 0o040_755 << 16, false),
        Err("not a regular file")
    );
    assert_eq!(check_entry_type(SYSTEM_UNIX, 0o040_755 << 16, true), Ok(()));
    assert_eq!(
        check_entry_type(SYSTEM_UNIX, 0o100_644 << 16, false),
        Ok(())
    );
    assert_eq!(check_entry_type(0, 0x10, false), Ok(()));

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
        ..ZipLimits::default()
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

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
