//! Listing: the `objects` tree scanned by prefix, a page per blocking call.

use std::ops::Bound;

use gomodproxy_storage::{Key, ListEntry, Result, StorageError};
use sled::IVec;

use crate::error::Context;
use crate::error::decode_manifest;
use crate::inner::Inner;

/// Listing entries fetched per blocking call.
const LIST_PAGE: usize = 256;

/// Where a listing resumes.
pub(crate) enum Cursor {
    Start,
    After(IVec),
    Done,
}

fn list_entry(key: &[u8], value: &[u8]) -> Result<ListEntry> {
    let path = std::str::from_utf8(key).map_err(|_| StorageError::InvalidKey {
        path: String::from_utf8_lossy(key).into_owned(),
        reason: "not UTF-8".to_string(),
    })?;
    let key = Key::from_path(path)?;
    let manifest = decode_manifest(value, path)?;
    Ok(ListEntry {
        key,
        meta: manifest.meta(),
    })
}

/// One page of a listing: up to [`LIST_PAGE`] entries after `cursor`, and where to resume.
pub(crate) fn list_page(
    inner: &Inner,
    prefix: &str,
    cursor: Cursor,
) -> (Vec<Result<ListEntry>>, Cursor) {
    let iter = match cursor {
        Cursor::Done => return (Vec::new(), Cursor::Done),
        Cursor::Start => inner.objects.scan_prefix(prefix),
        Cursor::After(key) => inner
            .objects
            .range::<&[u8], _>((Bound::Excluded(key.as_ref()), Bound::Unbounded)),
    };
    let mut entries = Vec::new();
    for item in iter {
        let (key, value) = match item.context("list", &inner.db_name()) {
            Ok(kv) => kv,
            Err(e) => {
                entries.push(Err(e.into()));
                return (entries, Cursor::Done);
            }
        };
        if !key.starts_with(prefix.as_bytes()) {
            break;
        }
        entries.push(list_entry(&key, &value));
        if entries.len() == LIST_PAGE {
            return (entries, Cursor::After(key));
        }
    }
    (entries, Cursor::Done)
}
