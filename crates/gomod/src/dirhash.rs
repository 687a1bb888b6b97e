//! The `h1:` hash of go.sum and the checksum database (`golang.org/x/mod/sumdb/dirhash`).
//!
//! `Hash1` of a set of named files: for each file, sorted by name byte-wise, the line
//! `hex(sha256(content)) + "  " + name + "\n"`; the result is `"h1:"` + standard (padded)
//! base64 of the SHA-256 of all the lines. A module zip is hashed with each entry's full name
//! (`module@version/…`) and every entry counts; a go.mod file is hashed as one file named
//! `go.mod`.

use std::io::{self, Read};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::Error;
use crate::error::{excerpt, one_line};

/// The prefix of every hash made by this module.
pub const H1_PREFIX: &str = "h1:";

/// Collects `(name, sha256(content))` pairs and produces their `h1:` hash.
///
/// Names are sorted when the hash is produced, so files may be added in any order (a zip's
/// entry order does not matter).
#[derive(Debug, Default, Clone)]
pub struct Hash1 {
    files: Vec<(String, [u8; 32])>,
}

impl Hash1 {
    /// An empty set of files.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file by the SHA-256 of its content. Names with a newline cannot be hashed: the
    /// line format could not be parsed back.
    pub fn add(&mut self, name: impl Into<String>, content_sha256: [u8; 32]) -> Result<(), Error> {
        let name = name.into();
        if name.contains('\n') {
            return Err(Error::Dirhash {
                reason: format!(
                    "file name {:?} contains a newline, which is not supported",
                    excerpt(&name)
                ),
            });
        }
        self.files.push((name, content_sha256));
        Ok(())
    }

    /// Adds a file whose content is read (streamed) from `reader`.
    pub fn add_reader(&mut self, name: impl Into<String>, reader: impl Read) -> Result<(), Error> {
        let name = name.into();
        let sum = sha256_reader(reader).map_err(|e| Error::Io {
            context: format!("hashing {:?}", excerpt(&name)),
            reason: one_line(e),
        })?;
        self.add(name, sum)
    }

    /// Number of files added so far.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no file was added.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The `h1:` hash of the files added.
    pub fn finish(mut self) -> String {
        // Equal names (a module zip may hold one directory twice) have equal lines.
        self.files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut lines = Hash1Lines::new();
        for (name, sum) in &self.files {
            lines.line(&[name.as_str()], sum);
        }
        lines.finish()
    }
}

/// The summary [`Hash1`] hashes, fed one line at a time by a caller that adds the files in
/// sorted order itself (so it need not hold their names as `String`s).
pub(crate) struct Hash1Lines {
    summary: Sha256,
}

impl Hash1Lines {
    pub(crate) fn new() -> Self {
        Hash1Lines {
            summary: Sha256::new(),
        }
    }

    /// Adds the line of the file named `prefix` + `name`; names with a newline are refused, as
    /// by [`Hash1::add`].
    pub(crate) fn add(&mut self, prefix: &str, name: &str, sum: &[u8; 32]) -> Result<(), Error> {
        if prefix.contains('\n') || name.contains('\n') {
            return Err(Error::Dirhash {
                reason: format!(
                    "file name {:?} contains a newline, which is not supported",
                    excerpt(&format!("{prefix}{name}"))
                ),
            });
        }
        self.line(&[prefix, name], sum);
        Ok(())
    }

    fn line(&mut self, name: &[&str], sum: &[u8; 32]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex_sum = [0u8; 64];
        for (pair, byte) in hex_sum.chunks_exact_mut(2).zip(sum) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0xf)];
        }
        self.summary.update(hex_sum);
        self.summary.update(b"  ");
        for part in name {
            self.summary.update(part.as_bytes());
        }
        self.summary.update(b"\n");
    }

    pub(crate) fn finish(self) -> String {
        format!("{H1_PREFIX}{}", STANDARD.encode(self.summary.finalize()))
    }
}

/// `h1:` hash of `(name, sha256(content))` pairs (`dirhash.Hash1`).
pub fn hash1<I, S>(files: I) -> Result<String, Error>
where
    I: IntoIterator<Item = (S, [u8; 32])>,
    S: Into<String>,
{
    let mut h = Hash1::new();
    for (name, sum) in files {
        h.add(name, sum)?;
    }
    Ok(h.finish())
}

/// `h1:` hash of `(name, content)` pairs held in memory.
pub fn hash1_contents<I, S, B>(files: I) -> Result<String, Error>
where
    I: IntoIterator<Item = (S, B)>,
    S: Into<String>,
    B: AsRef<[u8]>,
{
    hash1(
        files
            .into_iter()
            .map(|(name, content)| (name, Sha256::digest(content.as_ref()).into())),
    )
}

/// The hash on a go.sum `/go.mod` line: a single file named `go.mod` with these bytes.
pub fn hash_go_mod(go_mod: &[u8]) -> String {
    let mut h = Hash1::new();
    // "go.mod" has no newline, so this cannot fail.
    h.files
        .push(("go.mod".into(), Sha256::digest(go_mod).into()));
    h.finish()
}

/// SHA-256 of everything `reader` yields.
pub fn sha256_reader(mut reader: impl Read) -> io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_go_mod() {
        // PROTOCOL.md §5: the hash of an empty go.mod.
        assert_eq!(
            hash_go_mod(b""),
            "h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY="
        );
    }

    #[test]
    fn synthesized_go_mods_match_go_sum() {
        // go.sum lines of modules without a go.mod: the proxy serves exactly "module <path>\n".
        for (path, want) in [
            (
                "github.com/pkg/errors",
                "h1:bwawxfHBFNV+L2hUp1rHADufV3IMtnDRdf1r5NINEl0=",
            ),
            (
                "github.com/pmezard/go-difflib",
                "h1:iKH77koFhYxTK1pcRnkKkqfTogsbg7gZNVY4sRDYZ/4=",
            ),
            (
                "github.com/davecgh/go-spew",
                "h1:J7Y8YcW2NihsgmVo/mv3lAwl/skON4iLHjSsI+c5H38=",
            ),
        ] {
            assert_eq!(
                hash_go_mod(format!("module {path}\n").as_bytes()),
                want,
                "{path}"
            );
        }
    }

    #[test]
    fn hash1_is_order_independent_and_name_sensitive() {
        let a = hash1_contents([("m@v1.0.0/a.go", "package a\n"), ("m@v1.0.0/b.go", "b")]).unwrap();
        let b = hash1_contents([("m@v1.0.0/b.go", "b"), ("m@v1.0.0/a.go", "package a\n")]).unwrap();
        assert_eq!(a, b);
        let c = hash1_contents([("m@v1.0.0/a.go", "package a\n"), ("m@v1.0.0/c.go", "b")]).unwrap();
        assert_ne!(a, c);
        assert!(a.starts_with(H1_PREFIX) && a.len() == 3 + 44, "{a}");
    }

    #[test]
    fn hash1_matches_the_definition() {
        // Built by hand from the definition, so a bug in Hash1 cannot hide in both sides.
        let sum_a = Sha256::digest(b"hello");
        let sum_b = Sha256::digest(b"");
        let summary = format!("{}  A\n{}  a/b\n", hex::encode(sum_a), hex::encode(sum_b));
        let want = format!("h1:{}", STANDARD.encode(Sha256::digest(summary.as_bytes())));
        // Upper case sorts before lower case, byte-wise.
        assert_eq!(hash1_contents([("a/b", ""), ("A", "hello")]).unwrap(), want);
    }

    #[test]
    fn newline_in_name_is_an_error() {
        let err = hash1_contents([("a\nb", "x")]).unwrap_err();
        assert!(matches!(err, Error::Dirhash { .. }), "{err:?}");
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn reader_matches_bytes() {
        let data = vec![7u8; 200_000];
        let mut h = Hash1::new();
        h.add_reader("x", &data[..]).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h.finish(), hash1_contents([("x", &data)]).unwrap());
    }
}
