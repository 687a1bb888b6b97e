//! The values of the two trees: an object's manifest (`objects`) and the cleanup record of a
//! body file (`unreferenced`); see the crate docs for their layout.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gomodproxy_storage::ObjectMeta;

const MANIFEST_V1: u8 = 1;
const STORED_INLINE: u8 = 0;
const STORED_FILE: u8 = 1;
pub(crate) const MANIFEST_HEADER: usize = 1 + 1 + 8 + 8 + 4 + 8;

/// `unreferenced` states.
pub(crate) const STATE_SAVING: u8 = 0;
pub(crate) const STATE_RETIRED: u8 = 1;

/// Why a manifest cannot be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ManifestError {
    /// The store time cannot be recorded.
    #[error("store time {0:?} is before 1970")]
    BeforeEpoch(SystemTime),
    /// Too short, or of another format.
    #[error("manifest of {len} bytes, format {format:?}: not a format-1 manifest")]
    NotFormat1 { len: usize, format: Option<u8> },
    /// A store time with a nanosecond field of a second or more.
    #[error("manifest store time with {0} ns")]
    Nanos(u32),
    /// A store time past what `SystemTime` holds.
    #[error("manifest store time out of range")]
    TimeOutOfRange,
    /// A storage kind that does not match the bytes after the header.
    #[error("manifest of storage kind {kind} for {size} bytes with {inline} inline bytes")]
    Storage { kind: u8, size: u64, inline: u64 },
}

/// Where a body is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// In the manifest, after its header.
    Inline,
    /// In the body file of this generation.
    File { generation: u64 },
}

/// What `objects` holds for one key (besides an inline body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub(crate) size: u64,
    pub(crate) modified: SystemTime,
    pub(crate) stored: Stored,
}

impl Manifest {
    /// The manifest value, with `inline` (empty unless stored inline) after the header.
    pub(crate) fn encode(&self, inline: &[u8]) -> Result<Vec<u8>, ManifestError> {
        let since = self
            .modified
            .duration_since(UNIX_EPOCH)
            .map_err(|_| ManifestError::BeforeEpoch(self.modified))?;
        let (stored, generation) = match self.stored {
            Stored::Inline => (STORED_INLINE, 0),
            Stored::File { generation } => (STORED_FILE, generation),
        };
        let mut out = Vec::with_capacity(MANIFEST_HEADER + inline.len());
        out.push(MANIFEST_V1);
        out.push(stored);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&since.as_secs().to_be_bytes());
        out.extend_from_slice(&since.subsec_nanos().to_be_bytes());
        out.extend_from_slice(&generation.to_be_bytes());
        out.extend_from_slice(inline);
        Ok(out)
    }

    /// Parses a manifest value, checking that an inline body has the recorded size and that a
    /// file manifest has none.
    pub(crate) fn decode(raw: &[u8]) -> Result<Manifest, ManifestError> {
        if raw.len() < MANIFEST_HEADER || raw[0] != MANIFEST_V1 {
            return Err(ManifestError::NotFormat1 {
                len: raw.len(),
                format: raw.first().copied(),
            });
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let mut nanos = [0u8; 4];
        nanos.copy_from_slice(&raw[18..22]);
        let nanos = u32::from_be_bytes(nanos);
        if nanos >= 1_000_000_000 {
            return Err(ManifestError::Nanos(nanos));
        }
        let modified = UNIX_EPOCH
            .checked_add(Duration::new(u64_at(10), nanos))
            .ok_or(ManifestError::TimeOutOfRange)?;
        let size = u64_at(2);
        let inline = (raw.len() - MANIFEST_HEADER) as u64;
        let stored = match raw[1] {
            STORED_INLINE if inline == size => Stored::Inline,
            STORED_FILE if inline == 0 => Stored::File {
                generation: u64_at(22),
            },
            kind => return Err(ManifestError::Storage { kind, size, inline }),
        };
        Ok(Manifest {
            size,
            modified,
            stored,
        })
    }

    pub(crate) fn generation(&self) -> Option<u64> {
        match self.stored {
            Stored::Inline => None,
            Stored::File { generation } => Some(generation),
        }
    }

    pub(crate) fn meta(&self) -> ObjectMeta {
        ObjectMeta {
            size: self.size,
            modified: self.modified,
        }
    }
}

pub(crate) fn generation_key(generation: u64) -> [u8; 8] {
    generation.to_be_bytes()
}

pub(crate) fn unreferenced_record(state: u8, path: &str) -> Vec<u8> {
    let mut record = Vec::with_capacity(1 + path.len());
    record.push(state);
    record.extend_from_slice(path.as_bytes());
    record
}

/// The generation a body file name stands for, if it is one.
pub(crate) fn parse_body_name(name: &str) -> Option<u64> {
    if name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        u64::from_str_radix(name, 16).ok()
    } else {
        None
    }
}
