//! A zip's central directory, read one header at a time as Go's `archive/zip` reads it (the
//! same reader [`check_zip`](super::check_zip) uses), for callers that rewrite a zip entry by
//! entry in bounded memory: nothing is kept per entry, names go into one reused buffer.

use std::io::{Read, Seek, SeekFrom, Write};

use super::format::{self, DataError, Directory, Entry, Header, Inflater, ReadError, Source};
use super::{invalid, io_error, read_error};
use crate::Error;
use crate::error::one_line;

/// One central directory header (its name is returned next to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// "Version made by": the high byte is the creating system (3 is Unix, 19 is macOS).
    pub creator_version: u16,
    /// General purpose flags.
    pub flags: u16,
    /// Compression method (0 stored, 8 deflate).
    pub method: u16,
    /// MS-DOS time (low 16 bits) and date (high 16 bits) of last modification.
    pub modified: u32,
    /// CRC-32 of the content, as recorded.
    pub crc32: u32,
    /// Length of the entry's data in the zip.
    pub compressed_size: u64,
    /// Declared length of the content.
    pub uncompressed_size: u64,
    /// External file attributes (a Unix mode in the high 16 bits for Unix creators).
    pub external_attributes: u32,
    /// Offset of the local header, as recorded (before the directory's base offset).
    pub local_header_offset: u64,
}

impl DirectoryEntry {
    /// The creating system (3 is Unix, 19 is macOS).
    pub fn creator_system(&self) -> u8 {
        (self.creator_version >> 8) as u8
    }

    fn to_format(self) -> Entry {
        Entry {
            creator_version: self.creator_version,
            flags: self.flags,
            method: self.method,
            modified: self.modified,
            crc32: self.crc32,
            compressed_size: self.compressed_size,
            uncompressed_size: self.uncompressed_size,
            external_attributes: self.external_attributes,
            local_header_offset: self.local_header_offset,
        }
    }
}

impl From<Entry> for DirectoryEntry {
    fn from(e: Entry) -> Self {
        DirectoryEntry {
            creator_version: e.creator_version,
            flags: e.flags,
            method: e.method,
            modified: e.modified,
            crc32: e.crc32,
            compressed_size: e.compressed_size,
            uncompressed_size: e.uncompressed_size,
            external_attributes: e.external_attributes,
            local_header_offset: e.local_header_offset,
        }
    }
}

/// The central directory of a zip, read entry by entry through a 64 KiB buffer; entries' data
/// can be read or copied between two headers.
pub struct ZipDirectory<R> {
    src: Source<R>,
    directory: Directory,
    next_header: u64,
    entries: u64,
    done: bool,
    name: Vec<u8>,
    extra: Vec<u8>,
    inflater: Option<Inflater>,
}

fn io(e: std::io::Error) -> Error {
    io_error("reading the zip", e)
}

impl<R: Read + Seek> ZipDirectory<R> {
    /// Finds the central directory of the zip in `reader` (read from its start to its end).
    pub fn open(mut reader: R) -> Result<Self, Error> {
        let size = reader.seek(SeekFrom::End(0)).map_err(io)?;
        reader.seek(SeekFrom::Start(0)).map_err(io)?;
        let mut src = Source::new(reader, size);
        let directory = format::find_directory(&mut src).map_err(read_error)?;
        Ok(ZipDirectory {
            src,
            next_header: directory.start,
            directory,
            entries: 0,
            done: false,
            name: Vec::new(),
            extra: Vec::new(),
            inflater: None,
        })
    }

    /// The next central directory header and its name; `None` after the last one, once the
    /// count of headers read matches the end record (as Go compares it: the low 16 bits).
    pub fn next_entry(&mut self) -> Result<Option<(DirectoryEntry, &[u8])>, Error> {
        if self.done {
            return Ok(None);
        }
        self.src.goto(self.next_header);
        match format::read_directory_header(&mut self.src, &mut self.name, &mut self.extra)
            .map_err(read_error)?
        {
            Header::Entry(entry) => {
                self.next_header = self.src.position();
                self.entries += 1;
                Ok(Some((entry.into(), &self.name)))
            }
            Header::End => {
                self.done = true;
                if self.entries as u16 != self.directory.declared_entries as u16 {
                    return Err(invalid(format!(
                        "cannot read zip: the central directory has {} entries, not the {} its end record declares",
                        self.entries, self.directory.declared_entries
                    )));
                }
                Ok(None)
            }
        }
    }

    fn data_offset(&mut self, entry: &Entry) -> Result<u64, Error> {
        format::data_offset(&mut self.src, &self.directory, entry).map_err(|e| match e {
            ReadError::Format(reason) => invalid(format!("cannot read zip: {reason}")),
            ReadError::Io(e) => io(e),
        })
    }

    /// Copies the data of the entry whose local header is at `local_header_offset` (as
    /// recorded) and which is `compressed_size` bytes long to `out`, as it is in the zip.
    pub fn copy_data<W: Write>(
        &mut self,
        local_header_offset: u64,
        compressed_size: u64,
        out: &mut W,
    ) -> Result<(), Error> {
        let entry = Entry {
            creator_version: 0,
            flags: 0,
            method: 0,
            modified: 0,
            crc32: 0,
            compressed_size,
            uncompressed_size: 0,
            external_attributes: 0,
            local_header_offset,
        };
        let at = self.data_offset(&entry)?;
        self.src.goto(at);
        let mut left = compressed_size;
        while left > 0 {
            let buf = self.src.fill_buf().map_err(io)?;
            if buf.is_empty() {
                return Err(invalid(
                    "cannot read zip: an entry's data runs past the end of the file".into(),
                ));
            }
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            out.write_all(&buf[..n])
                .map_err(|e| io_error("writing the zip", e))?;
            self.src.consume(n);
            left -= n as u64;
        }
        Ok(())
    }

    /// Streams the content of `entry` to `sink`, checking it is exactly its declared size
    /// with a matching CRC-32 (at most the declared size + 1 bytes are inflated).
    pub fn read_content(
        &mut self,
        entry: &DirectoryEntry,
        sink: impl FnMut(&[u8]),
    ) -> Result<u64, Error> {
        let entry = entry.to_format();
        let at = self.data_offset(&entry)?;
        let inflater = self.inflater.get_or_insert_with(Inflater::new);
        inflater
            .read(&mut self.src, &entry, at, sink)
            .map_err(|e| match e {
                DataError::TooLarge => invalid("content is larger than its declared size".into()),
                DataError::TooSmall(n) => invalid(format!(
                    "content ({n} bytes) is smaller than its declared size"
                )),
                DataError::Checksum => invalid("content does not match its CRC-32".into()),
                DataError::Corrupt(reason) => {
                    invalid(format!("cannot decompress: {}", one_line(reason)))
                }
                DataError::Io(e) => io(e),
            })
    }
}
