//! Writing the module zip: each entry a new local header (carrying the renamed path) and its
//! data, then the central directory from the caller's compact records, with the zip64 end
//! records when the entry count or an offset does not fit the classic fields (Go's
//! `archive/zip` reads zip64, and writes it under the same conditions).
//!
//! Nothing is kept here per entry: the caller holds one record per entry and passes them
//! back for the central directory.

use std::io::{self, Write};

const LOCAL_HEADER_SIGNATURE: u32 = 0x0403_4b50;
const DIRECTORY_HEADER_SIGNATURE: u32 = 0x0201_4b50;
const DIRECTORY_END_SIGNATURE: u32 = 0x0605_4b50;
const DIRECTORY64_LOCATOR_SIGNATURE: u32 = 0x0706_4b50;
const DIRECTORY64_END_SIGNATURE: u32 = 0x0606_4b50;
const ZIP64_EXTRA_ID: u16 = 0x0001;
/// "Version needed to extract": 2.0 (deflate), 4.5 (zip64).
const VERSION_20: u16 = 20;
const VERSION_45: u16 = 45;
/// General purpose flag: names are UTF-8 (set, as Go sets it, for names that are not ASCII).
const FLAG_UTF8: u16 = 0x800;
const U16_MAX: u64 = 0xffff;
const U32_MAX: u64 = 0xffff_ffff;

/// What a header says about an entry, besides its name.
#[derive(Debug, Clone, Copy)]
pub(super) struct EntryHeader {
    pub(super) creator_version: u16,
    pub(super) method: u16,
    pub(super) modified: u32,
    pub(super) crc32: u32,
    pub(super) compressed_size: u64,
    pub(super) uncompressed_size: u64,
    pub(super) external_attributes: u32,
}

/// A writer that counts what went through it: the offsets of the zip being written.
pub(super) struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The module zip being written.
pub(super) struct ZipOut<W: Write> {
    out: Counting<W>,
    /// `module@version/`, before every path.
    prefix: String,
    /// Reused for each header.
    buf: Vec<u8>,
}

fn too_large(what: &str) -> io::Error {
    io::Error::other(format!("{what} does not fit a zip header"))
}

fn flags(name_utf8_non_ascii: bool) -> u16 {
    if name_utf8_non_ascii { FLAG_UTF8 } else { 0 }
}

impl<W: Write> ZipOut<W> {
    pub(super) fn new(out: W, prefix: String) -> Self {
        ZipOut {
            out: Counting {
                inner: out,
                written: 0,
            },
            prefix,
            buf: Vec::with_capacity(512),
        }
    }

    /// The offset the next write goes to.
    pub(super) fn offset(&self) -> u64 {
        self.out.written
    }

    /// Starts the entry `prefix + path`: writes its local header and returns its offset and
    /// the writer its data goes to (exactly `header.compressed_size` bytes). File sizes fit
    /// 32 bits: the module's files are at most 500 MiB in total.
    pub(super) fn start_entry(
        &mut self,
        path: &str,
        header: &EntryHeader,
    ) -> io::Result<(u64, &mut Counting<W>)> {
        let offset = self.offset();
        let compressed =
            u32::try_from(header.compressed_size).map_err(|_| too_large("a file size"))?;
        let uncompressed =
            u32::try_from(header.uncompressed_size).map_err(|_| too_large("a file size"))?;
        let name_len =
            u16::try_from(self.prefix.len() + path.len()).map_err(|_| too_large("a file name"))?;
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(&LOCAL_HEADER_SIGNATURE.to_le_bytes());
        b.extend_from_slice(&VERSION_20.to_le_bytes());
        b.extend_from_slice(&flags(!self.prefix.is_ascii() || !path.is_ascii()).to_le_bytes());
        b.extend_from_slice(&header.method.to_le_bytes());
        b.extend_from_slice(&header.modified.to_le_bytes());
        b.extend_from_slice(&header.crc32.to_le_bytes());
        b.extend_from_slice(&compressed.to_le_bytes());
        b.extend_from_slice(&uncompressed.to_le_bytes());
        b.extend_from_slice(&name_len.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(self.prefix.as_bytes());
        b.extend_from_slice(path.as_bytes());
        self.out.write_all(b)?;
        Ok((offset, &mut self.out))
    }

    /// Writes the central directory, one header per `(path, header, local header offset)` in
    /// `entries`, then the end records; returns the zip's size.
    pub(super) fn finish<'a>(
        mut self,
        entries: impl Iterator<Item = (&'a str, EntryHeader, u64)>,
    ) -> io::Result<u64> {
        let start = self.offset();
        let mut count = 0u64;
        for (path, header, offset) in entries {
            count += 1;
            let zip64 = offset >= U32_MAX;
            let name_len = u16::try_from(self.prefix.len() + path.len())
                .map_err(|_| too_large("a file name"))?;
            let compressed =
                u32::try_from(header.compressed_size).map_err(|_| too_large("a file size"))?;
            let uncompressed =
                u32::try_from(header.uncompressed_size).map_err(|_| too_large("a file size"))?;
            let b = &mut self.buf;
            b.clear();
            b.extend_from_slice(&DIRECTORY_HEADER_SIGNATURE.to_le_bytes());
            b.extend_from_slice(&header.creator_version.to_le_bytes());
            b.extend_from_slice(&(if zip64 { VERSION_45 } else { VERSION_20 }).to_le_bytes());
            b.extend_from_slice(&flags(!self.prefix.is_ascii() || !path.is_ascii()).to_le_bytes());
            b.extend_from_slice(&header.method.to_le_bytes());
            b.extend_from_slice(&header.modified.to_le_bytes());
            b.extend_from_slice(&header.crc32.to_le_bytes());
            b.extend_from_slice(&compressed.to_le_bytes());
            b.extend_from_slice(&uncompressed.to_le_bytes());
            b.extend_from_slice(&name_len.to_le_bytes());
            b.extend_from_slice(&(if zip64 { 12u16 } else { 0 }).to_le_bytes());
            b.extend_from_slice(&0u16.to_le_bytes()); // comment
            b.extend_from_slice(&0u16.to_le_bytes()); // disk number
            b.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            b.extend_from_slice(&header.external_attributes.to_le_bytes());
            b.extend_from_slice(&(offset.min(U32_MAX) as u32).to_le_bytes());
            b.extend_from_slice(self.prefix.as_bytes());
            b.extend_from_slice(path.as_bytes());
            if zip64 {
                b.extend_from_slice(&ZIP64_EXTRA_ID.to_le_bytes());
                b.extend_from_slice(&8u16.to_le_bytes());
                b.extend_from_slice(&offset.to_le_bytes());
            }
            self.out.write_all(b)?;
        }
        let end = self.offset();
        let size = end - start;
        let b = &mut self.buf;
        b.clear();
        if count >= U16_MAX || size >= U32_MAX || start >= U32_MAX {
            // The zip64 end of central directory record, then its locator.
            b.extend_from_slice(&DIRECTORY64_END_SIGNATURE.to_le_bytes());
            b.extend_from_slice(&44u64.to_le_bytes()); // size of the rest of the record
            b.extend_from_slice(&VERSION_45.to_le_bytes());
            b.extend_from_slice(&VERSION_45.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes()); // this disk
            b.extend_from_slice(&0u32.to_le_bytes()); // the directory's disk
            b.extend_from_slice(&count.to_le_bytes());
            b.extend_from_slice(&count.to_le_bytes());
            b.extend_from_slice(&size.to_le_bytes());
            b.extend_from_slice(&start.to_le_bytes());
            b.extend_from_slice(&DIRECTORY64_LOCATOR_SIGNATURE.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
            b.extend_from_slice(&end.to_le_bytes());
            b.extend_from_slice(&1u32.to_le_bytes()); // total disks
        }
        b.extend_from_slice(&DIRECTORY_END_SIGNATURE.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(count.min(U16_MAX) as u16).to_le_bytes());
        b.extend_from_slice(&(count.min(U16_MAX) as u16).to_le_bytes());
        b.extend_from_slice(&(size.min(U32_MAX) as u32).to_le_bytes());
        b.extend_from_slice(&(start.min(U32_MAX) as u32).to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes()); // comment
        self.out.write_all(b)?;
        self.out.flush()?;
        Ok(self.offset())
    }
}
