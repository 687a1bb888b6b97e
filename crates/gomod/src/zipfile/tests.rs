//! Unit tests of the zip check (vectors from the go command are in tests/go_vectors.rs).

use super::*;
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
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

/// An entry for [`RawZip`], written exactly as described, so that tests can make any header
/// say anything.
#[derive(Clone)]
struct Raw {
    name: String,
    content: Vec<u8>,
    deflate: bool,
    /// A data descriptor after the data: `Some(with its signature)`.
    descriptor: Option<bool>,
    /// The CRC-32 the central directory records, if not the right one.
    crc: Option<u32>,
    /// Sizes and offset in a zip64 extra field (the 32-bit fields saturated).
    zip64: bool,
}

fn raw(name: &str, content: &[u8]) -> Raw {
    Raw {
        name: format!("{MODULE}@{VERSION}/{name}"),
        content: content.to_vec(),
        deflate: false,
        descriptor: None,
        crc: None,
        zip64: false,
    }
}

/// A zip written byte by byte. The verdicts and hashes the tests below expect for such zips
/// (prepended data both ways, zip64, a count off by 65,536, data descriptors, CRC 0, trailing
/// bytes after a deflate stream, a missing local header of a directory) were checked once on the
/// same bytes against Go 1.26.8's archive/zip and x/mod v0.42.0 (CheckZip, HashZip and Unzip).
#[derive(Default)]
struct RawZip {
    entries: Vec<Raw>,
    /// Bytes before the zip (a self-extracting stub, say).
    prepend: Vec<u8>,
    /// Whether recorded offsets count the prepended bytes (some writers do, some do not).
    offsets_count_prepend: bool,
    /// A zip64 end of central directory record and locator.
    zip64_end: bool,
    /// The entry count the end record(s) declare, if not the real one.
    declared: Option<u64>,
    comment: Vec<u8>,
}

impl RawZip {
    fn new(entries: Vec<Raw>) -> Self {
        RawZip {
            entries,
            ..RawZip::default()
        }
    }

    fn build(&self) -> Vec<u8> {
        let mut out = self.prepend.clone();
        let base = if self.offsets_count_prepend {
            0
        } else {
            self.prepend.len() as u64
        };
        let mut central = Vec::new();
        for e in &self.entries {
            let offset = out.len() as u64 - base;
            let data = if e.deflate {
                let mut w =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                w.write_all(&e.content).unwrap();
                w.finish().unwrap()
            } else {
                e.content.clone()
            };
            let real_crc = crc32fast::hash(&e.content);
            let crc = e.crc.unwrap_or(real_crc);
            let (csize, usize) = (data.len() as u64, e.content.len() as u64);
            let flags: u16 = if e.descriptor.is_some() { 8 } else { 0 };
            let method: u16 = if e.deflate { 8 } else { 0 };
            let name = e.name.as_bytes();

            out.extend_from_slice(b"PK\x03\x04");
            put16(&mut out, 20);
            put16(&mut out, flags);
            put16(&mut out, method);
            put32(&mut out, 0); // time, date
            // With a descriptor, the local header's CRC and sizes are zero (as Go writes).
            let local = if e.descriptor.is_some() {
                [0, 0, 0]
            } else {
                [real_crc, csize as u32, usize as u32]
            };
            local.iter().for_each(|&v| put32(&mut out, v));
            put16(&mut out, name.len() as u16);
            put16(&mut out, 0);
            out.extend_from_slice(name);
            out.extend_from_slice(&data);
            if let Some(signature) = e.descriptor {
                if signature {
                    out.extend_from_slice(b"PK\x07\x08");
                }
                put32(&mut out, real_crc);
                put32(&mut out, csize as u32);
                put32(&mut out, usize as u32);
            }

            let mut extra = Vec::new();
            let (c32, u32_, o32) = if e.zip64 {
                put16(&mut extra, 1);
                put16(&mut extra, 24);
                for v in [usize, csize, offset] {
                    extra.extend_from_slice(&v.to_le_bytes());
                }
                (u32::MAX, u32::MAX, u32::MAX)
            } else {
                (csize as u32, usize as u32, offset as u32)
            };
            central.extend_from_slice(b"PK\x01\x02");
            put16(&mut central, 20);
            put16(&mut central, 20);
            put16(&mut central, flags);
            put16(&mut central, method);
            put32(&mut central, 0);
            put32(&mut central, crc);
            put32(&mut central, c32);
            put32(&mut central, u32_);
            put16(&mut central, name.len() as u16);
            put16(&mut central, extra.len() as u16);
            put16(&mut central, 0); // comment
            put16(&mut central, 0); // disk
            put16(&mut central, 0); // internal attributes
            put32(&mut central, 0); // external attributes
            put32(&mut central, o32);
            central.extend_from_slice(name);
            central.extend_from_slice(&extra);
        }
        let start = out.len() as u64 - base;
        let count = self.declared.unwrap_or(self.entries.len() as u64);
        out.extend_from_slice(&central);
        let end64 = out.len() as u64 - base;
        if self.zip64_end {
            out.extend_from_slice(b"PK\x06\x06");
            out.extend_from_slice(&44u64.to_le_bytes());
            put16(&mut out, 45);
            put16(&mut out, 45);
            put32(&mut out, 0);
            put32(&mut out, 0);
            for v in [count, count, central.len() as u64, start] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(b"PK\x06\x07");
            put32(&mut out, 0);
            out.extend_from_slice(&end64.to_le_bytes());
            put32(&mut out, 1);
        }
        out.extend_from_slice(b"PK\x05\x06");
        put32(&mut out, 0);
        let count16 = if self.zip64_end { 0xffff } else { count as u16 };
        put16(&mut out, count16);
        put16(&mut out, count16);
        put32(
            &mut out,
            if self.zip64_end {
                u32::MAX
            } else {
                central.len() as u32
            },
        );
        put32(
            &mut out,
            if self.zip64_end {
                u32::MAX
            } else {
                start as u32
            },
        );
        put16(&mut out, self.comment.len() as u16);
        out.extend_from_slice(&self.comment);
        out
    }
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// The `h1:` of `(name, content)` entries, by the definition.
fn h1_of(entries: &[Raw]) -> String {
    crate::dirhash::hash1_contents(entries.iter().map(|e| (e.name.clone(), e.content.clone())))
        .unwrap()
}

fn sample() -> Vec<Raw> {
    vec![
        raw("go.mod", b"module example.com/m\n"),
        raw("", b""),
        Raw {
            deflate: true,
            ..raw("b/c.go", &b"package b\n".repeat(50))
        },
        raw("b/", b""),
        raw("a.go", b"package m\n"),
    ]
}

#[test]
fn raw_writer_makes_zips_the_check_accepts() {
    let entries = sample();
    let s = check(&RawZip::new(entries.clone()).build()).unwrap();
    assert_eq!(s.h1, h1_of(&entries));
    assert_eq!((s.files, s.uncompressed_size), (3, 21 + 500 + 10));
    assert!(s.has_go_mod);
}

#[test]
fn the_same_directory_twice_is_hashed_twice() {
    // x/mod's CheckZip, Unzip and HashZip accept this; HashZip lists both copies.
    let mut entries = sample();
    entries.push(raw("b/", b""));
    entries.push(raw("", b""));
    let s = check(&RawZip::new(entries.clone()).build()).unwrap();
    assert_eq!(s.h1, h1_of(&entries));
    assert_ne!(s.h1, h1_of(&sample()));
    assert_eq!(s.files, 3);

    let mut twice = sample();
    twice.push(raw("a.go", b"package m\n"));
    let r = reason(check(&RawZip::new(twice).build()));
    assert!(r.contains(r#"multiple entries for file "a.go""#), "{r}");
}

#[test]
fn data_descriptors_must_repeat_the_crc() {
    for signature in [true, false] {
        for deflate in [true, false] {
            let mut entries = sample();
            entries[4].descriptor = Some(signature);
            entries[4].deflate = deflate;
            let zip = RawZip::new(entries.clone()).build();
            assert_eq!(
                check(&zip).unwrap().h1,
                h1_of(&entries),
                "{signature} {deflate}"
            );

            // A descriptor makes Go check the CRC even when the directory records 0.
            entries[4].crc = Some(0);
            let r = reason(check(&RawZip::new(entries).build()));
            assert!(r.contains("a.go") && r.contains("CRC-32"), "{r}");
        }
    }
}

#[test]
fn crc_is_checked_when_recorded() {
    let mut entries = sample();
    entries[2].crc = Some(0xdead_beef);
    let r = reason(check(&RawZip::new(entries.clone()).build()));
    assert!(r.contains("b/c.go") && r.contains("CRC-32"), "{r}");
    // Without a descriptor, a zero CRC means "not recorded" to Go.
    entries[2].crc = Some(0);
    assert!(check(&RawZip::new(entries).build()).is_ok());
}

#[test]
fn zip64_records_and_fields_are_read() {
    let mut entries = sample();
    for e in &mut entries {
        e.zip64 = true;
    }
    let mut zip = RawZip::new(entries.clone());
    zip.zip64_end = true;
    assert_eq!(check(&zip.build()).unwrap().h1, h1_of(&entries));
    // The zip64 record's count is compared modulo 2^16, as Go does.
    zip.declared = Some(entries.len() as u64 + 65536);
    assert!(check(&zip.build()).is_ok());
    zip.declared = Some(entries.len() as u64 + 1);
    let r = reason(check(&zip.build()));
    assert!(r.contains("central directory has 5 entries"), "{r}");
}

#[test]
fn prepended_data_shifts_offsets_either_way() {
    for counted in [false, true] {
        let mut zip = RawZip::new(sample());
        zip.prepend = b"#!/bin/sh\nexit 0\n".to_vec();
        zip.offsets_count_prepend = counted;
        zip.comment = b"a comment".to_vec();
        assert_eq!(
            check(&zip.build()).unwrap().h1,
            h1_of(&sample()),
            "{counted}"
        );
    }
}

#[test]
fn broken_containers_are_invalid_zips() {
    let good = RawZip::new(sample()).build();
    // Cut anywhere: the end record, the directory or the data goes missing.
    for cut in [1, 10, 30, 60, 200, good.len() / 2] {
        let r = reason(check(&good[..good.len() - cut]));
        assert!(!r.is_empty());
    }
    // A directory that declares a different entry count.
    let mut zip = RawZip::new(sample());
    zip.declared = Some(4);
    let r = reason(check(&zip.build()));
    assert!(r.contains("not the 4 its end record declares"), "{r}");
    // An end record whose comment runs past the end of the file.
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 2..].copy_from_slice(&5u16.to_le_bytes());
    let r = reason(check(&bad));
    assert!(r.contains("no end of central directory record"), "{r}");
    // A local header that is not there: checked for directories too, as Go opens them all.
    for name in ["b/", "a.go"] {
        let mut bad = good.clone();
        let at = local_header(&bad, name);
        bad[at] = b'X';
        let r = reason(check(&bad));
        let want = format!(r#""{MODULE}@{VERSION}/{name}": no local header"#);
        assert!(r.starts_with(&want), "{name}: {r}");
    }
}

/// The offset of the local header of the entry named `name` (after the prefix).
fn local_header(zip: &[u8], name: &str) -> usize {
    let name = format!("{MODULE}@{VERSION}/{name}");
    (0..zip.len() - 30)
        .find(|&i| {
            zip[i..i + 4] == *b"PK\x03\x04"
                && usize::from(u16::from_le_bytes([zip[i + 26], zip[i + 27]])) == name.len()
                && zip[i + 30..].starts_with(name.as_bytes())
        })
        .unwrap()
}

#[test]
fn trailing_bytes_after_a_deflate_stream_are_ignored() {
    // Go's flate reader stops at the end of the stream; the rest of the section is not read.
    let mut entries = sample();
    entries[2].deflate = true;
    let mut zip = RawZip::new(entries.clone()).build();
    // Grow the recorded compressed size of b/c.go by 3 (the next local header follows).
    let name = format!("{MODULE}@{VERSION}/b/c.go");
    let cd = find(&zip, b"PK\x01\x02").unwrap();
    let at = cd + find(&zip[cd..], name.as_bytes()).unwrap() - 46 + 20;
    let csize = u32::from_le_bytes(zip[at..at + 4].try_into().unwrap());
    zip[at..at + 4].copy_from_slice(&(csize + 3).to_le_bytes());
    assert_eq!(check(&zip).unwrap().h1, h1_of(&entries));
}

#[test]
fn entry_count_and_name_bytes_are_capped() {
    let zip = RawZip::new(sample()).build();
    let limits = |max_entries, max_name_bytes| ZipLimits {
        max_entries,
        max_name_bytes,
        ..ZipLimits::default()
    };
    assert!(check_limits(&zip, limits(5, 1000)).is_ok());
    let r = reason(check_limits(&zip, limits(4, 1000)));
    assert!(r.contains("more than 4 entries"), "{r}");
    // go.mod, (root), b/c.go, b/, a.go: 6 + 0 + 6 + 2 + 4 bytes after the prefix.
    assert!(check_limits(&zip, limits(5, 18)).is_ok());
    let r = reason(check_limits(&zip, limits(5, 17)));
    assert!(r.contains("longer than 17 bytes"), "{r}");
}

/// A reader whose reads fail after `ok` bytes.
struct Failing {
    inner: Cursor<Vec<u8>>,
    ok: u64,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.inner.position() >= self.ok {
            return Err(std::io::Error::other("disk on fire"));
        }
        self.inner.read(buf)
    }
}

impl Seek for Failing {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[test]
fn read_errors_are_io_errors() {
    let zip = RawZip::new(sample()).build();
    let (m, v) = mv();
    let r = Failing {
        inner: Cursor::new(zip),
        ok: 0,
    };
    match check_zip(r, &m, &v, &ZipLimits::default()) {
        Err(Error::Io { reason, .. }) => assert!(reason.contains("disk on fire"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn many_entries_in_unsorted_order() {
    // More than one run of central directory headers, names out of order, and the 16-bit
    // entry count of the end record wrapped (as writers without zip64 do).
    let mut entries: Vec<Raw> = (0..70_000u32)
        .map(|i| raw(&format!("d{}/f{i}.go", i % 97), format!("{i}\n").as_bytes()))
        .collect();
    entries.reverse();
    let mut zip = RawZip::new(entries.clone());
    zip.declared = Some(entries.len() as u64 % 65536);
    let s = check(&zip.build()).unwrap();
    assert_eq!(s.files, 70_000);
    assert_eq!(s.h1, h1_of(&entries));
}

#[test]
fn large_files_span_many_reads() {
    // Content of several read buffers, stored and deflated, between small entries, in an order
    // that makes the reader jump back and forth.
    let mut state = 1u32;
    let big: Vec<u8> = (0..300_000)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (state >> 24) as u8
        })
        .collect();
    let mut entries = sample();
    entries.insert(1, raw("big.bin", &big));
    entries.insert(
        3,
        Raw {
            deflate: true,
            ..raw("sub/big.txt", &big.repeat(2))
        },
    );
    let mut zip = RawZip::new(entries.clone());
    zip.entries.reverse();
    let s = check(&zip.build()).unwrap();
    assert_eq!(s.h1, h1_of(&entries));
    assert_eq!(s.uncompressed_size, 21 + 500 + 10 + 300_000 * 3);
}
