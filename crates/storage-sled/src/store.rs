//! [`SledStorage`]: opening a store (with its crash recovery), and the [`Storage`] trait over the
//! other modules.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt};
use gomodproxy_file_body::file_body;
use gomodproxy_storage::{
    ByteStream, GetResult, Key, ListEntry, ListPrefix, ObjectMeta, PutPayload, Result, Storage,
    StorageError,
};
use sled::IVec;
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::audit::Audit;
use crate::error::{Context, SledError, blocking, damaged, io_error};
use crate::inner::{Found, Inner};
use crate::list::{Cursor, list_page};
use crate::manifest::{Manifest, Stored};
use crate::options::SledOptions;
use crate::staging::{Spill, Staging, WRITE_BUFFER};
use crate::{BODIES_DIR, INLINE_MAX, SLED_DIR};

/// Chunk size of inline body streams (body files stream through
/// [`gomodproxy_file_body`]).
const READ_CHUNK: u64 = 64 * 1024;

const OBJECTS_TREE: &str = "objects";
const UNREFERENCED_TREE: &str = "unreferenced";

/// Default-tree key of the on-disk format marker.
const FORMAT_KEY: &[u8] = b"gomodproxy/format";
/// The on-disk format this crate reads and writes.
const FORMAT: &[u8] = b"gomodproxy-storage-sled 1";

/// What [`Storage::check`] writes and reads back.
const PROBE: &[u8] = b"gomodproxy storage check\n";

/// A [`Storage`] in a sled database plus a directory of body files. Cheap to clone (clones
/// share the database). See the crate docs.
#[derive(Clone)]
pub struct SledStorage {
    inner: Arc<Inner>,
}

impl fmt::Debug for SledStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledStorage")
            .field("path", &self.inner.root)
            .finish_non_exhaustive()
    }
}

impl SledStorage {
    /// Opens (creating if needed) the store at `options.path`, then removes the body files of
    /// saves that a crash interrupted and of replaced bodies whose removal it interrupted.
    ///
    /// This is synchronous and does blocking I/O (recovery of sled's log, the cleanup): call it
    /// at startup, or from `spawn_blocking`. Fails with [`StorageError::Backend`] if the
    /// database is in use (by another process, or another open store in this one), damaged, or
    /// of another format.
    pub fn open(options: SledOptions) -> Result<SledStorage> {
        let db_name = format!("sled store {}", options.path.display());
        if let Err(e) = options.validate() {
            return Err(SledError::Refused {
                op: "open",
                what: db_name,
                problem: format!("`{}` {e}", e.field()),
            }
            .into());
        }
        let SledOptions {
            path,
            cache_capacity_bytes,
            flush_every_ms,
            verify_size_on_read,
        } = options;
        let bodies = path.join(BODIES_DIR);
        std::fs::create_dir_all(&bodies).map_err(|e| io_error("create directory", &bodies, e))?;
        let db = sled::Config::new()
            .path(path.join(SLED_DIR))
            .cache_capacity(cache_capacity_bytes)
            .flush_every_ms(flush_every_ms)
            .open()
            .context("open", &db_name)?;
        match db
            .get(FORMAT_KEY)
            .context("read format marker of", &db_name)?
        {
            Some(format) if format == FORMAT => {}
            Some(format) => {
                return Err(SledError::Refused {
                    op: "open",
                    what: db_name,
                    problem: format!(
                        "its format is {:?}, this build reads {:?}",
                        String::from_utf8_lossy(&format),
                        String::from_utf8_lossy(FORMAT)
                    ),
                }
                .into());
            }
            None => {
                db.insert(FORMAT_KEY, FORMAT)
                    .context("write format marker of", &db_name)?;
                db.flush().context("flush", &db_name)?;
            }
        }
        let open_tree = |name: &str| db.open_tree(name).context("open tree of", &db_name);
        let inner = Inner {
            objects: open_tree(OBJECTS_TREE)?,
            unreferenced: open_tree(UNREFERENCED_TREE)?,
            files: RwLock::new(()),
            verify_size_on_read,
            db,
            bodies,
            root: path,
        };
        let leftovers = inner
            .unreferenced
            .iter()
            .keys()
            .collect::<sled::Result<Vec<IVec>>>()
            .context("read cleanup records of", &db_name)?;
        for key in &leftovers {
            let generation = <[u8; 8]>::try_from(key.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| damaged(&db_name, format!("malformed cleanup record {key:?}")))?;
            inner.purge(generation)?;
        }
        if !leftovers.is_empty() {
            inner.db.flush().context("flush", &db_name)?;
            tracing::info!(
                store = %inner.root.display(),
                files = leftovers.len(),
                "removed body files left by interrupted saves and removals"
            );
        }
        Ok(SledStorage {
            inner: Arc::new(inner),
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.inner.root
    }

    /// Scans the whole store (every manifest and the bodies directory: expensive on a large
    /// store) and reports its contents and inconsistencies: body files no object refers to,
    /// objects with missing or wrong-sized bodies. Operations running concurrently may show up as
    /// unreferenced files; in a quiescent healthy store `unreferenced_files` and
    /// `cleanup_records` are zero and `damaged` is empty.
    pub async fn audit(&self) -> Result<Audit> {
        let inner = self.inner.clone();
        blocking("audit", move || inner.audit()).await
    }

    async fn begin_file(&self, path: &str) -> Result<Spill> {
        let (inner, path) = (self.inner.clone(), path.to_string());
        let (staging, file) = blocking("begin save", move || Staging::begin(inner, path)).await?;
        Ok(Spill {
            staging,
            writer: BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::from_std(file)),
        })
    }
}

fn length_mismatch(path: &str, expected: u64, actual: u64) -> StorageError {
    StorageError::LengthMismatch {
        key: path.to_string(),
        expected,
        actual,
    }
}

/// Streams an inline body in [`READ_CHUNK`] pieces (it is at most [`INLINE_MAX`] bytes: one).
fn inline_body(body: Bytes) -> ByteStream {
    let pieces: Vec<std::io::Result<Bytes>> = (0..body.len())
        .step_by(READ_CHUNK as usize)
        .map(|at| Ok(body.slice(at..body.len().min(at + READ_CHUNK as usize))))
        .collect();
    stream::iter(pieces).boxed()
}

#[async_trait]
impl Storage for SledStorage {
    async fn put(&self, key: &Key, payload: PutPayload) -> Result<ObjectMeta> {
        let path = key.path();
        let expected = payload.length();
        let mut stream = payload.into_stream();
        let mut small = BytesMut::new();
        let mut spill: Option<Spill> = None;
        let mut received = 0u64;
        let streamed: Result<()> = async {
            while let Some(item) = stream.next().await {
                let bytes = item.map_err(|source| StorageError::Payload {
                    key: path.clone(),
                    source,
                })?;
                received += bytes.len() as u64;
                // Stop at the first byte too many rather than storing a runaway stream.
                if let Some(n) = expected
                    && received > n
                {
                    return Err(length_mismatch(&path, n, received));
                }
                if spill.is_none() && received > INLINE_MAX as u64 {
                    let mut file = self.begin_file(&path).await?;
                    file.write(&small.split()).await?;
                    spill = Some(file);
                }
                match &mut spill {
                    Some(file) => file.write(&bytes).await?,
                    None => small.extend_from_slice(&bytes),
                }
            }
            if let Some(n) = expected
                && received != n
            {
                return Err(length_mismatch(&path, n, received));
            }
            Ok(())
        }
        .await;
        if let Err(e) = streamed {
            if let Some(file) = spill {
                drop(file.writer);
                file.staging.abort().await;
            }
            return Err(e);
        }

        match spill {
            None => {
                let manifest = Manifest {
                    size: received,
                    modified: SystemTime::now(),
                    stored: Stored::Inline,
                };
                let encoded = manifest
                    .encode(&small)
                    .map_err(|source| SledError::Encode {
                        op: "save",
                        what: path.clone(),
                        source,
                    })?;
                let (inner, key_path) = (self.inner.clone(), path.clone());
                blocking("save", move || inner.switch(&key_path, &encoded, None)).await?;
                Ok(manifest.meta())
            }
            Some(Spill {
                staging,
                mut writer,
            }) => {
                let synced: Result<()> = async {
                    writer
                        .flush()
                        .await
                        .map_err(|e| staging.io_error("write body file", e))?;
                    writer
                        .into_inner()
                        .sync_all()
                        .await
                        .map_err(|e| staging.io_error("sync body file", e))
                }
                .await;
                if let Err(e) = synced {
                    staging.abort().await;
                    return Err(e);
                }
                let manifest = Manifest {
                    size: received,
                    modified: SystemTime::now(),
                    stored: Stored::File {
                        generation: staging.generation,
                    },
                };
                blocking("save", move || staging.commit(&manifest)).await?;
                Ok(manifest.meta())
            }
        }
    }

    async fn get(&self, key: &Key) -> Result<GetResult> {
        let path = key.path();
        let found = {
            let (inner, path) = (self.inner.clone(), path.clone());
            blocking("get", move || inner.lookup(&path)).await?
        };
        let Some((manifest, found)) = found else {
            return Err(StorageError::NotFound { key: path });
        };
        let body = match found {
            Found::Inline(body) => inline_body(body),
            Found::File(file) => file_body(file, manifest.size, format!("the body file of {path}")),
        };
        Ok(GetResult {
            meta: manifest.meta(),
            body,
        })
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let path = key.path();
        let found = {
            let (inner, path) = (self.inner.clone(), path.clone());
            blocking("head", move || inner.manifest(&path)).await?
        };
        match found {
            Some((manifest, _)) => Ok(manifest.meta()),
            None => Err(StorageError::NotFound { key: path }),
        }
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        let path = key.path();
        let inner = self.inner.clone();
        blocking("delete", move || inner.remove_object(&path)).await
    }

    fn list(&self, prefix: &ListPrefix) -> BoxStream<'static, Result<ListEntry>> {
        let inner = self.inner.clone();
        let prefix = prefix.path_prefix();
        stream::unfold(Cursor::Start, move |cursor| {
            let (inner, prefix) = (inner.clone(), prefix.clone());
            async move {
                if matches!(cursor, Cursor::Done) {
                    return None;
                }
                let page = tokio::task::spawn_blocking(move || list_page(&inner, &prefix, cursor))
                    .await
                    .unwrap_or_else(|e| {
                        let e = StorageError::backend(
                            "sled",
                            format!("list: blocking task failed: {e}"),
                        );
                        (vec![Err(e)], Cursor::Done)
                    });
                Some(page)
            }
        })
        .flat_map(stream::iter)
        .boxed()
    }

    async fn check(&self) -> Result<()> {
        let inner = self.inner.clone();
        blocking("check", move || {
            let db_name = inner.db_name();
            // The database: write, read back, remove a probe value.
            let id = inner.db.generate_id().context("check", &db_name)?;
            let key = format!("gomodproxy/check/{id}");
            inner
                .db
                .insert(key.as_bytes(), PROBE)
                .context("check: write probe to", &db_name)?;
            let read = inner
                .db
                .get(key.as_bytes())
                .context("check: read probe from", &db_name)?;
            inner
                .db
                .remove(key.as_bytes())
                .context("check: remove probe from", &db_name)?;
            if read.as_deref() != Some(PROBE) {
                return Err(damaged(&db_name, "the check probe read back differently"));
            }
            // The bodies directory, through the same bookkeeping as a save, so that a crash
            // midway leaves nothing behind after the next open.
            let (staging, mut file) = Staging::begin(inner.clone(), "(check probe)".into())?;
            let file_path = staging.file_path.clone();
            io::Write::write_all(&mut file, PROBE)
                .map_err(|e| io_error("check: write probe file", &file_path, e))?;
            drop(file);
            let read = std::fs::read(&file_path)
                .map_err(|e| io_error("check: read probe file", &file_path, e))?;
            staging.finished.store(true, Ordering::SeqCst);
            inner.purge(staging.generation)?;
            if read != PROBE {
                return Err(damaged(
                    &db_name,
                    "the check probe file read back differently",
                ));
            }
            Ok(())
        })
        .await
    }
}
