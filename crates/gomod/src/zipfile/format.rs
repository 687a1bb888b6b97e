//! The zip container, read as Go's `archive/zip` reads it, sequentially and in bounded memory.
//!
//! Go decides what a module zip contains (and so what its `h1:` hash is), so every quirk that
//! changes which entries Go sees is reproduced here:
//!
//! - the end of central directory record is looked for in the last 1 KiB, then the last 65 KiB,
//!   and the first signature from the end whose comment fits is used;
//! - a zip64 end record is used when a 32-bit field is saturated (Go tests the directory *size*
//!   against `0xffff`, not `0xffffffff`) and a zip64 locator precedes the end record;
//! - data prepended to the zip shifts every offset (`baseOffset`), unless a directory header is
//!   found at the unshifted offset;
//! - central directory headers are read until one does not parse, and only the low 16 bits of
//!   their count must match the declared count;
//! - an entry's data starts after its local header (whose signature is checked, nothing else), is
//!   its compressed size long, and is stored or raw deflate; a data descriptor, when flagged,
//!   must repeat the central directory's CRC-32.
//!
//! Nothing here allocates per entry: names and extra fields go into buffers the caller reuses.

use std::io::{self, Read, Seek};

use flate2::{Decompress, FlushDecompress, Status};

const LOCAL_HEADER_SIGNATURE: u32 = 0x0403_4b50;
const DIRECTORY_HEADER_SIGNATURE: u32 = 0x0201_4b50;
const DIRECTORY_END_SIGNATURE: [u8; 4] = *b"PK\x05\x06";
const DIRECTORY64_LOCATOR_SIGNATURE: u32 = 0x0706_4b50;
const DIRECTORY64_END_SIGNATURE: u32 = 0x0606_4b50;
const DATA_DESCRIPTOR_SIGNATURE: u32 = 0x0807_4b50;
const LOCAL_HEADER_LEN: usize = 30;
const DIRECTORY_HEADER_LEN: usize = 46;
const DIRECTORY_END_LEN: usize = 22;
const DIRECTORY64_LOCATOR_LEN: u64 = 20;
const DIRECTORY64_END_LEN: usize = 56;
const ZIP64_EXTRA_ID: u16 = 0x0001;

/// Compression method: stored.
pub(super) const METHOD_STORE: u16 = 0;
/// Compression method: deflate.
pub(super) const METHOD_DEFLATE: u16 = 8;
/// General purpose flag: the entry is encrypted.
pub(super) const FLAG_ENCRYPTED: u16 = 0x1;
/// General purpose flag: a data descriptor follows the data.
const FLAG_DATA_DESCRIPTOR: u16 = 0x8;

/// Read buffer size: large enough that a central directory is read in few system calls, small
/// enough not to matter per concurrent check.
const BUFFER_SIZE: usize = 64 * 1024;

/// Why the container could not be read.
#[derive(Debug)]
pub(super) enum ReadError {
    /// The bytes are not a zip Go can read; the reason is one line.
    Format(String),
    /// Reading the underlying file failed.
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

fn format(reason: impl Into<String>) -> ReadError {
    ReadError::Format(reason.into())
}

/// A buffered reader over the zip that knows which file offsets its buffer holds, so that
/// moving to an offset already in the buffer costs nothing: reading many small entries one
/// after another stays one sequential read per 64 KiB.
///
/// After a jump out of the buffer, the next read asks for 512 bytes only (a local header, its
/// name and a small file's data), and full 64 KiB reads resume once reading goes on
/// sequentially: a central directory that lists its entries in a random order (as a hostile zip
/// may) then costs a small read per entry, not 64 KiB (1M entries: 5 s instead of 21 s).
pub(super) struct Source<R> {
    inner: R,
    /// Where `inner` is positioned, if known.
    inner_pos: Option<u64>,
    buf: Box<[u8]>,
    /// The file offset of `buf[0]`.
    buf_start: u64,
    /// How many bytes of `buf` hold data.
    filled: usize,
    /// The read position, relative to `buf_start` (at most `filled`).
    cursor: usize,
    size: u64,
    /// Whether the last move left the buffer: the next read is a short one.
    jumped: bool,
}

/// How much is read after a jump.
const JUMP_READ: usize = 512;

impl<R: Read + Seek> Source<R> {
    /// `reader` must be positioned at its start; `size` is its length.
    pub(super) fn new(reader: R, size: u64) -> Self {
        Source {
            inner: reader,
            inner_pos: Some(0),
            buf: vec![0u8; BUFFER_SIZE].into_boxed_slice(),
            buf_start: 0,
            filled: 0,
            cursor: 0,
            size,
            jumped: true,
        }
    }

    /// The zip's length, in bytes.
    pub(super) fn size(&self) -> u64 {
        self.size
    }

    /// The offset the next read starts at.
    pub(super) fn position(&self) -> u64 {
        self.buf_start + self.cursor as u64
    }

    /// Moves to `pos` (which may be past the end: reads there return nothing).
    pub(super) fn goto(&mut self, pos: u64) {
        match pos.checked_sub(self.buf_start) {
            Some(offset) if offset <= self.filled as u64 => self.cursor = offset as usize,
            _ => {
                self.buf_start = pos;
                self.filled = 0;
                self.cursor = 0;
                self.jumped = true;
            }
        }
    }

    /// The bytes from the read position on that the buffer holds, reading more if it holds
    /// none; empty at the end of the file (as measured when the check started).
    pub(super) fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.cursor == self.filled {
            let pos = self.position();
            let left = self.size.saturating_sub(pos);
            let want = if self.jumped { JUMP_READ } else { BUFFER_SIZE };
            let want = want.min(usize::try_from(left).unwrap_or(usize::MAX));
            let mut n = 0;
            if want > 0 {
                if self.inner_pos != Some(pos) {
                    self.inner_pos = None;
                    self.inner.seek(io::SeekFrom::Start(pos))?;
                    self.inner_pos = Some(pos);
                }
                n = loop {
                    match self.inner.read(&mut self.buf[..want]) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            self.inner_pos = None;
                            return Err(e);
                        }
                    }
                };
                self.inner_pos = Some(pos + n as u64);
            }
            self.buf_start = pos;
            self.filled = n;
            self.cursor = 0;
            self.jumped = false;
        }
        Ok(&self.buf[self.cursor..self.filled])
    }

    /// Marks `n` bytes of what [`Source::fill_buf`] returned as read.
    pub(super) fn consume(&mut self, n: usize) {
        debug_assert!(self.cursor + n <= self.filled);
        self.cursor += n;
    }

    /// Reads until `buf` is full or the file ends; returns how many bytes were read.
    fn read_full(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let available = self.fill_buf()?;
            if available.is_empty() {
                break;
            }
            let n = available.len().min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&available[..n]);
            self.consume(n);
            done += n;
        }
        Ok(done)
    }

    /// `N` bytes at `at`, or `None` if the file ends first (Go's `ReadAt` fails there).
    fn read_exact_at<const N: usize>(&mut self, at: u64) -> io::Result<Option<[u8; N]>> {
        if at.checked_add(N as u64).is_none_or(|end| end > self.size) {
            return Ok(None);
        }
        self.goto(at);
        let mut buf = [0u8; N];
        Ok((self.read_full(&mut buf)? == N).then_some(buf))
    }

    /// Skips `n` bytes; returns how many there were before the end of the file.
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let pos = self.position();
        let available = self.size.saturating_sub(pos).min(n);
        self.goto(pos + available);
        Ok(available)
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Where the central directory is, from the end of central directory record(s).
#[derive(Debug, Clone, Copy)]
pub(super) struct Directory {
    /// Offset of the first central directory header.
    pub(super) start: u64,
    /// The entry count the end record declares (Go compares only its low 16 bits).
    pub(super) declared_entries: u64,
    /// What to add to every local header offset (data prepended to the zip).
    pub(super) base_offset: i128,
}

/// Finds the central directory as `archive/zip.readDirectoryEnd` does.
pub(super) fn find_directory<R: Read + Seek>(src: &mut Source<R>) -> Result<Directory, ReadError> {
    let size = src.size();
    let mut found = None;
    for (i, want) in [1024u64, 65 * 1024].into_iter().enumerate() {
        let len = want.min(size);
        // At most 65 KiB, read once per zip.
        let mut block = vec![0u8; len as usize];
        src.goto(size - len);
        if src.read_full(&mut block)? != block.len() {
            return Err(format("the zip file ended while it was being read"));
        }
        if let Some(p) = find_end_signature(&block) {
            found = Some((block, p, size - len + p as u64));
            break;
        }
        if i == 1 || len == size {
            break;
        }
    }
    let Some((block, p, mut end_offset)) = found else {
        return Err(format(
            "not a zip file (no end of central directory record)",
        ));
    };
    let b = &block[p..];
    let mut declared_entries = u64::from(u16_at(b, 10));
    let mut directory_size = u64::from(u32_at(b, 12));
    let mut directory_offset = u64::from(u32_at(b, 16));

    if (declared_entries == 0xffff || directory_size == 0xffff || directory_offset == 0xffff_ffff)
        && let Some(at) = find_directory64_end(src, end_offset)?
    {
        end_offset = at;
        let b = src
            .read_exact_at::<DIRECTORY64_END_LEN>(at)?
            .ok_or_else(|| format("the zip64 end of central directory record is truncated"))?;
        if u32_at(&b, 0) != DIRECTORY64_END_SIGNATURE {
            return Err(format("bad zip64 end of central directory record"));
        }
        declared_entries = u64_at(&b, 32);
        directory_size = u64_at(&b, 40);
        directory_offset = u64_at(&b, 48);
    }
    if directory_size > i64::MAX as u64 || directory_offset > i64::MAX as u64 {
        return Err(format("central directory size or offset out of range"));
    }
    let mut base_offset =
        i128::from(end_offset) - i128::from(directory_size) - i128::from(directory_offset);
    let start = base_offset + i128::from(directory_offset);
    if start < 0 || start >= i128::from(size) {
        return Err(format("central directory offset is outside the file"));
    }
    // Some writers record offsets as if nothing were prepended; Go then uses them as they are.
    if base_offset > 0 {
        src.goto(directory_offset);
        let (mut name, mut extra) = (Vec::new(), Vec::new());
        if let Ok(Header::Entry(_)) = read_directory_header(src, &mut name, &mut extra) {
            base_offset = 0;
        }
    }
    Ok(Directory {
        start: (base_offset + i128::from(directory_offset)) as u64,
        declared_entries,
        base_offset,
    })
}

/// The last end-of-central-directory signature whose comment fits in `block`, as Go's
/// `findSignatureInBlock` (which gives up, rather than looking further back, if that comment
/// is truncated).
fn find_end_signature(block: &[u8]) -> Option<usize> {
    let last = block.len().checked_sub(DIRECTORY_END_LEN)?;
    let i = (0..=last)
        .rev()
        .find(|&i| block[i..i + 4] == DIRECTORY_END_SIGNATURE)?;
    let comment_len = usize::from(u16_at(block, i + DIRECTORY_END_LEN - 2));
    (i + DIRECTORY_END_LEN + comment_len <= block.len()).then_some(i)
}

/// The offset of the zip64 end record, from the locator just before the end record.
fn find_directory64_end<R: Read + Seek>(
    src: &mut Source<R>,
    end_offset: u64,
) -> Result<Option<u64>, ReadError> {
    let Some(at) = end_offset.checked_sub(DIRECTORY64_LOCATOR_LEN) else {
        return Ok(None);
    };
    let b = src
        .read_exact_at::<{ DIRECTORY64_LOCATOR_LEN as usize }>(at)?
        .ok_or_else(|| format("the zip64 end of central directory locator is truncated"))?;
    if u32_at(&b, 0) != DIRECTORY64_LOCATOR_SIGNATURE || u32_at(&b, 4) != 0 || u32_at(&b, 16) != 1 {
        return Ok(None);
    }
    Ok(Some(u64_at(&b, 8)))
}

/// One central directory header, without its name (which the caller's buffer holds).
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    /// "Version made by": the high byte is the creating system.
    pub(super) creator_version: u16,
    pub(super) flags: u16,
    pub(super) method: u16,
    /// MS-DOS time (low 16 bits) and date (high 16 bits) of last modification.
    pub(super) modified: u32,
    pub(super) crc32: u32,
    pub(super) compressed_size: u64,
    pub(super) uncompressed_size: u64,
    pub(super) external_attributes: u32,
    /// As recorded, before adding the directory's base offset.
    pub(super) local_header_offset: u64,
}

impl Entry {
    /// The creating system (3 is Unix, 19 is macOS).
    pub(super) fn creator_system(&self) -> u8 {
        (self.creator_version >> 8) as u8
    }
}

/// What reading the next central directory header found.
#[derive(Debug)]
pub(super) enum Header {
    Entry(Entry),
    /// No further header parses: the directory ends here (Go stops reading at the first
    /// header with a wrong signature, a truncated header or a malformed zip64 field).
    End,
}

/// Reads the central directory header at the current position (`archive/zip.readDirectoryHeader`);
/// its name goes into `name` and its extra field into `extra`.
pub(super) fn read_directory_header<R: Read + Seek>(
    src: &mut Source<R>,
    name: &mut Vec<u8>,
    extra: &mut Vec<u8>,
) -> Result<Header, ReadError> {
    let mut b = [0u8; DIRECTORY_HEADER_LEN];
    match src.read_full(&mut b)? {
        // Go's io.ReadFull reports io.EOF here, which is not one of the errors that end the
        // directory: the whole zip is refused.
        0 => return Err(format("the central directory runs to the end of the file")),
        DIRECTORY_HEADER_LEN => {}
        _ => return Ok(Header::End),
    }
    if u32_at(&b, 0) != DIRECTORY_HEADER_SIGNATURE {
        return Ok(Header::End);
    }
    let name_len = usize::from(u16_at(&b, 28));
    let extra_len = usize::from(u16_at(&b, 30));
    let comment_len = u64::from(u16_at(&b, 32));
    name.resize(name_len, 0);
    extra.resize(extra_len, 0);
    let got = src.read_full(name)? as u64 + src.read_full(extra)? as u64 + src.skip(comment_len)?;
    let want = (name_len + extra_len) as u64 + comment_len;
    if got < want {
        if got == 0 {
            return Err(format("the central directory runs to the end of the file"));
        }
        return Ok(Header::End);
    }

    let mut entry = Entry {
        creator_version: u16_at(&b, 4),
        flags: u16_at(&b, 8),
        method: u16_at(&b, 10),
        modified: u32_at(&b, 12),
        crc32: u32_at(&b, 16),
        compressed_size: u64::from(u32_at(&b, 20)),
        uncompressed_size: u64::from(u32_at(&b, 24)),
        external_attributes: u32_at(&b, 38),
        local_header_offset: u64::from(u32_at(&b, 42)),
    };
    let mut need_uncompressed = entry.uncompressed_size == 0xffff_ffff;
    let mut need_compressed = entry.compressed_size == 0xffff_ffff;
    let mut need_offset = entry.local_header_offset == 0xffff_ffff;
    let mut rest = &extra[..];
    while rest.len() >= 4 {
        let tag = u16_at(rest, 0);
        let size = usize::from(u16_at(rest, 2));
        rest = &rest[4..];
        if rest.len() < size {
            break;
        }
        let (mut field, after) = rest.split_at(size);
        rest = after;
        if tag != ZIP64_EXTRA_ID {
            continue;
        }
        for (needed, value) in [
            (&mut need_uncompressed, &mut entry.uncompressed_size),
            (&mut need_compressed, &mut entry.compressed_size),
            (&mut need_offset, &mut entry.local_header_offset),
        ] {
            if *needed {
                *needed = false;
                if field.len() < 8 {
                    return Ok(Header::End);
                }
                *value = u64_at(field, 0);
                field = &field[8..];
            }
        }
    }
    // Go accepts a saturated uncompressed size without zip64 (42.zip), not the other two.
    if need_compressed || need_offset {
        return Ok(Header::End);
    }
    Ok(Header::Entry(entry))
}

/// The offset of an entry's data: after its local header, whose signature must be right
/// (`archive/zip.File.findBodyOffset`). Go checks this for directories too.
pub(super) fn data_offset<R: Read + Seek>(
    src: &mut Source<R>,
    directory: &Directory,
    entry: &Entry,
) -> Result<u64, ReadError> {
    let at = u64::try_from(i128::from(entry.local_header_offset) + directory.base_offset)
        .map_err(|_| format("local header offset is outside the file"))?;
    let b = src
        .read_exact_at::<LOCAL_HEADER_LEN>(at)?
        .ok_or_else(|| format("local header offset is outside the file"))?;
    if u32_at(&b, 0) != LOCAL_HEADER_SIGNATURE {
        return Err(format("no local header at the recorded offset"));
    }
    Ok(at + LOCAL_HEADER_LEN as u64 + u64::from(u16_at(&b, 26)) + u64::from(u16_at(&b, 28)))
}

/// Why an entry's content could not be read as declared.
#[derive(Debug)]
pub(super) enum DataError {
    /// More than the declared uncompressed size came out.
    TooLarge,
    /// The content ended after this many bytes, fewer than declared.
    TooSmall(u64),
    /// The content does not match its CRC-32.
    Checksum,
    /// The data is not valid deflate, or ends before its deflate stream does.
    Corrupt(String),
    /// Reading the underlying file failed.
    Io(io::Error),
}

impl From<io::Error> for DataError {
    fn from(e: io::Error) -> Self {
        DataError::Io(e)
    }
}

/// Decompresses entries, reusing one inflate state and one output buffer for all of them.
pub(super) struct Inflater {
    inflate: Decompress,
    out: Vec<u8>,
}

impl Inflater {
    pub(super) fn new() -> Self {
        Inflater {
            inflate: Decompress::new(false),
            out: vec![0u8; BUFFER_SIZE],
        }
    }

    /// Streams the content of `entry` (whose data starts at `data_at`) to `sink`, as Go's
    /// `File.Open` + `checksumReader` do: at most the declared size + 1 bytes are produced
    /// (so a lying header cannot make us inflate a bomb), the size must be exactly as declared
    /// and the CRC-32 must match. Returns the content's length.
    pub(super) fn read<R: Read + Seek>(
        &mut self,
        src: &mut Source<R>,
        entry: &Entry,
        data_at: u64,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<u64, DataError> {
        let declared = entry.uncompressed_size;
        let limit = declared.saturating_add(1);
        let section_end = data_at
            .saturating_add(entry.compressed_size)
            .min(src.size());
        let mut input_left = section_end.saturating_sub(data_at);
        src.goto(data_at.min(src.size()));
        let mut crc = crc32fast::Hasher::new();
        let mut total = 0u64;

        match entry.method {
            METHOD_STORE => {
                let mut left = input_left.min(limit);
                while left > 0 {
                    let buf = src.fill_buf()?;
                    if buf.is_empty() {
                        break;
                    }
                    let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    sink(&buf[..n]);
                    crc.update(&buf[..n]);
                    src.consume(n);
                    left -= n as u64;
                    total += n as u64;
                }
            }
            METHOD_DEFLATE => {
                self.inflate.reset(false);
                loop {
                    let room = self
                        .out
                        .len()
                        .min(usize::try_from(limit - total).unwrap_or(usize::MAX));
                    let (consumed, produced, status) = {
                        let buf = if input_left == 0 {
                            &[][..]
                        } else {
                            src.fill_buf()?
                        };
                        let input = &buf[..buf
                            .len()
                            .min(usize::try_from(input_left).unwrap_or(usize::MAX))];
                        let (in_before, out_before) =
                            (self.inflate.total_in(), self.inflate.total_out());
                        let status = self
                            .inflate
                            .decompress(input, &mut self.out[..room], FlushDecompress::None)
                            .map_err(|e| DataError::Corrupt(e.to_string()))?;
                        (
                            (self.inflate.total_in() - in_before) as usize,
                            (self.inflate.total_out() - out_before) as usize,
                            status,
                        )
                    };
                    src.consume(consumed);
                    input_left -= consumed as u64;
                    sink(&self.out[..produced]);
                    crc.update(&self.out[..produced]);
                    total += produced as u64;
                    if total > declared {
                        return Err(DataError::TooLarge);
                    }
                    if status == Status::StreamEnd {
                        break;
                    }
                    if consumed == 0 && produced == 0 {
                        return Err(DataError::Corrupt(
                            "the compressed data ends before the deflate stream does".into(),
                        ));
                    }
                }
            }
            // The caller checked the method.
            other => {
                return Err(DataError::Corrupt(format!(
                    "unsupported compression method {other}"
                )));
            }
        }
        if total > declared {
            return Err(DataError::TooLarge);
        }
        if total < declared {
            return Err(DataError::TooSmall(total));
        }

        let crc = crc.finalize();
        if entry.flags & FLAG_DATA_DESCRIPTOR != 0 {
            let recorded = read_data_descriptor_crc(src, data_at, entry.compressed_size)?;
            if recorded != entry.crc32 || crc != entry.crc32 {
                return Err(DataError::Checksum);
            }
        } else if entry.crc32 != 0 && crc != entry.crc32 {
            // Without a descriptor Go checks the CRC only if one was recorded.
            return Err(DataError::Checksum);
        }
        Ok(total)
    }
}

/// The CRC-32 of the data descriptor after an entry's data (with or without its signature).
fn read_data_descriptor_crc<R: Read + Seek>(
    src: &mut Source<R>,
    data_at: u64,
    compressed_size: u64,
) -> Result<u32, DataError> {
    let truncated = || DataError::Corrupt("the data descriptor is truncated".into());
    let at = data_at.checked_add(compressed_size).ok_or_else(truncated)?;
    // Go reads it through a 16-byte section: with a signature, all of it is needed.
    let b = src.read_exact_at::<4>(at)?.ok_or_else(truncated)?;
    let crc_at = if u32_at(&b, 0) == DATA_DESCRIPTOR_SIGNATURE {
        at + 4
    } else {
        at
    };
    let b = src.read_exact_at::<12>(crc_at)?.ok_or_else(truncated)?;
    Ok(u32_at(&b, 0))
}
