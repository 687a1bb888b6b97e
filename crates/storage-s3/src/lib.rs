//! The S3 backend of gomodproxy's [`Storage`] trait: AWS S3, MinIO and other S3-compatible
//! servers, through the `object_store` crate's `AmazonS3` client.
//!
//! [`S3Storage::open`] takes [`S3Options`] (a plain struct with defaults; missing endpoint,
//! region and credentials come from the usual `AWS_*` variables, see [`S3Options`]), checks that
//! the bucket exists and can be listed and read, and fails with an [`S3Error`] naming the bucket
//! and endpoint and telling a missing bucket, rejected credentials and an unreachable server
//! apart ([`S3ErrorKind`]).
//!
//! # Layout
//! Each object is stored at `<key_prefix>/<Key::path()>` (just `<Key::path()>` without a
//! prefix), byte for byte: `cache/github.com/!azure/sdk/@v/v1.2.3+incompatible.zip`. Keys are
//! opaque paths to this crate; it never looks at what kind of key it stores. `Key::path()` is
//! ASCII without empty, `.` or `..` elements, which `object_store::path::Path::parse` keeps
//! verbatim (unlike `Path::from`, which would percent-encode `~` and others), and the client
//! percent-encodes each byte that needs it in the request URL, so `!`, `@`, `+`, `~` and `.`
//! reach S3 unchanged (a test lists the raw keys to prove it). Names under the prefix whose first
//! element starts with `.` are reserved for the store itself (the probe objects of
//! [`Storage::check`]); module paths never start with a dot, and listings skip them.
//!
//! # Atomic puts
//! S3 makes an object visible only when a PUT or a multipart upload completes, so:
//! - a body of at most [`S3Options::part_size`] (default 8 MiB) is sent as one PUT, after the
//!   payload was read whole and of its announced length;
//! - a longer body is sent as a multipart upload in parts of exactly `part_size`, at most
//!   [`S3Options::upload_concurrency`] in flight (so a put holds at most
//!   `part_size * (upload_concurrency + 1)` bytes), and completed only after the payload ended
//!   with the announced length;
//! - a payload that fails or has the wrong length aborts the upload
//!   ([`StorageError::Payload`], [`StorageError::LengthMismatch`]); a failed part or completion
//!   ([`StorageError::Backend`]) and a `put` future dropped midway abort it from a background
//!   task. Nothing becomes visible and a previous object stays as it was. Only a crash can leave
//!   parts of an unfinished upload behind (invisible, but billed): give the bucket a lifecycle
//!   rule that aborts incomplete multipart uploads after a day.
//!
//! # Reads, times, errors
//! `get` streams the body as S3 sends it (object_store resumes a broken body with a ranged
//! request checked against the ETag). `modified` is the object's `Last-Modified` (one-second
//! resolution in `head`/`get`, milliseconds in listings); `put` returns this host's clock at
//! completion, which agrees with it up to the clock skew between this host and the server.
//!
//! A missing object is [`StorageError::NotFound`]; everything else, including a missing bucket
//! (`NoSuchBucket`), rejected credentials, connection failures and timeouts, is
//! [`StorageError::Backend`] with `store: "s3"` and an [`S3Error`] as its source. One exception
//! is S3's: `HEAD` answers carry no body, so a `head` in a bucket deleted after `open` reports
//! `NotFound` (its `get`, `put` and `list` report the missing bucket).
//!
//! Timeouts and retries are chosen for a proxy that must answer its clients, not hang: a 5 s
//! connect timeout, a 30 s limit on silence (no whole-request limit, since a 500 MiB zip may
//! stream for minutes) and 3 retries within 15 s. `object_store`'s defaults (a 30 s limit on
//! whole requests including the body, 10 retries over up to 3 minutes) would cut large
//! transfers and keep a request waiting for minutes when the server is down.
//!
//! # Testing
//! The tests (`tests/`) run against a real S3 server on loopback when
//! `GOMODPROXY_TEST_S3_ENDPOINT` (with `_BUCKET`, `_ACCESS_KEY`, `_SECRET_KEY`) is set, as
//! printed by `tests/servers/s3.sh start DIR`; unset, they print `SKIPPED` and pass, unless
//! `GOMODPROXY_TEST_REQUIRE_SERVERS=1`, which makes that a failure. The outage and multipart
//! abort tests start servers of their own through the same script. `tests/conformance.rs` runs
//! the shared suite (alone in its binary, for the memory bound) under a random key prefix.
//!
//! The server is MinIO, built by `tests/servers/install-s3.sh` with `go install` (pinned to the
//! last upstream commit) into `~/.cache/gomodproxy-test-tools/bin`, because it is what users
//! run and because it answers like S3 where this backend depends on it. The alternative the
//! scripts also support (`GOMODPROXY_TEST_S3_SERVER=s3s-fs`), s3s-fs 0.14.1 from crates.io,
//! passes the suite too but is looser than S3: a `GET` in a missing bucket answers `NoSuchKey`,
//! a `PUT` recreates the bucket, and it has no `ListMultipartUploads`. Measured on a 2-core
//! machine shared with other builds: `go install` of MinIO took 9 min 20 s from a cold module
//! cache (load average about 10), then 13 min 10 s (load about 9) and 7 min 46 s (load about 5)
//! with a fresh build cache; each time about 7.8 CPU-minutes, for a 150 MB binary.
//! `cargo install s3s-fs` took 11 min 46 s (load about 9) and 5.5 CPU-minutes, for 10 MB. So
//! MinIO builds in under 8 minutes on two cores unless they are heavily shared, and only once
//! per machine: the script skips an installed binary.
//!
//! # Dependencies
//! Of gomodproxy's crates: `gomodproxy-storage` (the trait it implements) and
//! `gomodproxy-redact` (credentials in printed options). Nothing depends on it but the server's
//! backend factory; it never reaches up to the service or the server.

#![deny(missing_docs)]

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use gomodproxy_storage::{
    GetResult, Key, ListEntry, ListPrefix, ObjectMeta, PutPayload, Result, Storage, StorageError,
};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStoreExt, RetryConfig};

mod error;
mod options;
mod upload;

pub use error::{S3Error, S3ErrorKind};
pub use options::{DEFAULT_REGION, MAX_PART_SIZE, MIN_PART_SIZE, S3Options, S3OptionsError};

use error::{Target, s3_code};
use options::{CredentialSource, Resolved};

/// The first path element (under the key prefix) of the store's own objects. Module paths never
/// start with a dot, so no key can collide with it.
const RESERVED_DIR: &str = ".gomodproxy";

/// What [`Storage::check`] writes and reads back.
const PROBE: &[u8] = b"gomodproxy storage check\n";

/// A [`Storage`] in an S3 bucket. Cheap to clone (the clones share one HTTP client). See the
/// crate docs.
#[derive(Clone)]
pub struct S3Storage {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    store: AmazonS3,
    target: Target,
    /// Without leading or trailing `/`; empty for none.
    prefix: String,
    region: String,
    credential_source: CredentialSource,
    part_size: usize,
    upload_concurrency: usize,
}

impl fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("S3Storage")
            .field("bucket", &inner.target.bucket)
            .field("endpoint", &inner.target.endpoint)
            .field("region", &inner.region)
            .field("key_prefix", &inner.prefix)
            .field("credentials", &inner.credential_source)
            .field("part_size", &inner.part_size)
            .field("upload_concurrency", &inner.upload_concurrency)
            .finish()
    }
}

impl S3Storage {
    /// Connects to the bucket of `options` and checks that it exists and can be listed and read
    /// (two requests: a one-key listing under the prefix and a `GET` of a missing key, which must
    /// answer "no such key"). It does not write: [`Storage::check`] does.
    ///
    /// Fails with [`StorageError::Backend`] whose source is an [`S3Error`]: kind
    /// [`S3ErrorKind::Config`] for invalid options, [`S3ErrorKind::NoSuchBucket`],
    /// [`S3ErrorKind::Credentials`], [`S3ErrorKind::AccessDenied`],
    /// [`S3ErrorKind::Connection`] or [`S3ErrorKind::Timeout`] as the server or the network
    /// tells; its message names the bucket and endpoint.
    pub async fn open(options: S3Options) -> Result<S3Storage> {
        let resolved = options.resolve(|name| std::env::var(name).ok())?;
        let store = S3Storage::build(resolved)?;
        store.probe().await?;
        Ok(store)
    }

    fn build(r: Resolved) -> Result<S3Storage> {
        let target = Target {
            bucket: r.bucket.clone(),
            endpoint: r.endpoint_display(),
        };
        // `with_client_options` replaces the whole options object (including `allow_http`), so
        // it goes first and carries everything client-level.
        let client = ClientOptions::new()
            .with_allow_http(r.allow_http)
            .with_connect_timeout(r.connect_timeout)
            .with_read_timeout(r.request_timeout)
            .with_timeout_disabled();
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: r.max_retries,
            retry_timeout: r.retry_timeout,
        };
        let mut builder = AmazonS3Builder::new()
            .with_client_options(client)
            .with_bucket_name(&r.bucket)
            .with_region(&r.region)
            .with_virtual_hosted_style_request(r.virtual_hosted_style)
            // One object at a time is all this store deletes: a plain `DELETE`, which every
            // S3-compatible server implements (not all implement `POST ?delete`).
            .with_disable_bulk_delete(true)
            .with_retry(retry);
        if let Some(endpoint) = &r.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(credentials) = &r.credentials {
            builder = builder
                .with_access_key_id(&credentials.access_key_id)
                .with_secret_access_key(&credentials.secret_access_key);
            if let Some(token) = &credentials.session_token {
                builder = builder.with_token(token);
            }
        }
        for (name, value) in &r.provider_env {
            let key: AmazonS3ConfigKey = name.to_ascii_lowercase().parse().map_err(|e| {
                S3Error::config(
                    &r.bucket,
                    format!("cannot pass {name} to object_store: {e}"),
                )
            })?;
            builder = builder.with_config(key, value);
        }
        let store = builder.build().map_err(|e| {
            S3Error::config(
                &r.bucket,
                format!(
                    "object_store rejected the options: {}",
                    error::condensed_chain(&e)
                ),
            )
        })?;
        Ok(S3Storage {
            inner: Arc::new(Inner {
                store,
                target,
                prefix: r.key_prefix,
                region: r.region,
                credential_source: r.credential_source,
                part_size: r.part_size,
                upload_concurrency: r.upload_concurrency,
            }),
        })
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.inner.target.bucket
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &str {
        &self.inner.target.endpoint
    }

    /// The key prefix, without leading or trailing `/` (empty for none).
    pub fn key_prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The object name of `key`: `<prefix>/<key.path()>`.
    pub fn object_name(&self, key: &Key) -> String {
        self.inner.object_name(&key.path())
    }

    async fn probe(&self) -> Result<()> {
        let inner = &self.inner;
        let prefix = inner.object_name(&format!("{RESERVED_DIR}/"));
        let options = PaginatedListOptions {
            max_keys: Some(1),
            ..PaginatedListOptions::default()
        };
        inner
            .store
            .list_paginated(Some(&prefix), options)
            .await
            .map_err(|e| inner.target.error("open: list", None, e))?;

        let missing = inner.reserved_name("open-probe");
        let location = inner.location(&missing)?;
        match inner.store.get(&location).await {
            Ok(_) => Ok(()),
            Err(e) if is_missing_object(&e) => Ok(()),
            Err(e) => Err(inner.target.error("open: get", Some(&missing), e).into()),
        }
    }
}

impl Inner {
    fn object_name(&self, relative: &str) -> String {
        if self.prefix.is_empty() {
            relative.to_string()
        } else {
            format!("{}/{relative}", self.prefix)
        }
    }

    /// A fresh name under the reserved directory: unique per process, call and time, so that
    /// several replicas sharing the bucket never collide.
    fn reserved_name(&self, what: &str) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.object_name(&format!(
            "{RESERVED_DIR}/{what}-{}-{nanos}-{n}",
            std::process::id()
        ))
    }

    /// The object_store location of an object name. `Path::parse` keeps the name verbatim.
    fn location(&self, name: &str) -> Result<Path> {
        Path::parse(name).map_err(|e| {
            self.target
                .failure(
                    "locate",
                    Some(name),
                    S3ErrorKind::Other,
                    format!("not a valid object name: {e}"),
                )
                .into()
        })
    }

    fn key_location(&self, key: &Key) -> Result<Path> {
        self.location(&self.object_name(&key.path()))
    }

    /// One listed object as an entry: `None` for objects that are not ours to list (outside the
    /// prefix, or the store's own reserved names), an error for foreign objects that are not
    /// keys.
    fn entry(&self, meta: object_store::ObjectMeta) -> Option<Result<ListEntry>> {
        let name = meta.location.as_ref();
        let relative = if self.prefix.is_empty() {
            name
        } else {
            name.strip_prefix(self.prefix.as_str())?.strip_prefix('/')?
        };
        if relative.starts_with('.') {
            return None;
        }
        Some(Key::from_path(relative).map(|key| ListEntry {
            key,
            meta: ObjectMeta {
                size: meta.size,
                modified: SystemTime::from(meta.last_modified),
            },
        }))
    }
}

/// A 404 for the object itself: S3 says `NoSuchKey` (or, for `HEAD`, nothing). `NoSuchBucket` is
/// a 404 too, but a broken store, not a miss.
fn is_missing_object(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
        && s3_code(e).as_deref() != Some("NoSuchBucket")
}

fn meta_of(meta: &object_store::ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        size: meta.size,
        modified: SystemTime::from(meta.last_modified),
    }
}

/// Where a listing stands between pages.
enum Page {
    First,
    Next(String),
    Done,
}

#[async_trait]
impl Storage for S3Storage {
    async fn put(&self, key: &Key, payload: PutPayload) -> Result<ObjectMeta> {
        let location = self.inner.key_location(key)?;
        let size = upload::put(&self.inner, key, &location, payload).await?;
        Ok(ObjectMeta {
            size,
            modified: SystemTime::now(),
        })
    }

    async fn get(&self, key: &Key) -> Result<GetResult> {
        let inner = &self.inner;
        let location = inner.key_location(key)?;
        let path = key.path();
        let result = match inner.store.get(&location).await {
            Ok(result) => result,
            Err(e) if is_missing_object(&e) => return Err(StorageError::NotFound { key: path }),
            Err(e) => return Err(inner.target.backend("get", &path, e)),
        };
        let meta = meta_of(&result.meta);
        let target = inner.target.clone();
        let body = result
            .into_stream()
            .map_err(move |e| std::io::Error::other(target.error("read", Some(&path), e)))
            .boxed();
        Ok(GetResult { meta, body })
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let inner = &self.inner;
        let location = inner.key_location(key)?;
        match inner.store.head(&location).await {
            Ok(meta) => Ok(meta_of(&meta)),
            Err(e) if is_missing_object(&e) => Err(StorageError::NotFound { key: key.path() }),
            Err(e) => Err(inner.target.backend("head", &key.path(), e)),
        }
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        let inner = &self.inner;
        let location = inner.key_location(key)?;
        match inner.store.delete(&location).await {
            Ok(()) => Ok(()),
            Err(e) if is_missing_object(&e) => Ok(()),
            Err(e) => Err(inner.target.backend("delete", &key.path(), e)),
        }
    }

    fn list(&self, prefix: &ListPrefix) -> BoxStream<'static, Result<ListEntry>> {
        let inner = self.inner.clone();
        // A string prefix, not a directory (`example.com/m/@` must not match `example.com/m-x`):
        // the paginated API sends it as given, where `ObjectStore::list` would append a `/`.
        let request_prefix = inner.object_name(&prefix.path_prefix());
        stream::unfold(Page::First, move |page| {
            let (inner, request_prefix) = (inner.clone(), request_prefix.clone());
            async move {
                let page_token = match page {
                    Page::First => None,
                    Page::Next(token) => Some(token),
                    Page::Done => return None,
                };
                let options = PaginatedListOptions {
                    page_token,
                    ..PaginatedListOptions::default()
                };
                let prefix = (!request_prefix.is_empty()).then_some(request_prefix.as_str());
                match inner.store.list_paginated(prefix, options).await {
                    Ok(listed) => {
                        let entries: Vec<Result<ListEntry>> = listed
                            .result
                            .objects
                            .into_iter()
                            .filter_map(|meta| inner.entry(meta))
                            .collect();
                        let next = listed.page_token.map_or(Page::Done, Page::Next);
                        Some((entries, next))
                    }
                    Err(e) => {
                        let what = if request_prefix.is_empty() {
                            "the whole bucket".to_string()
                        } else {
                            format!("prefix {request_prefix}")
                        };
                        let error = inner.target.backend("list", &what, e);
                        Some((vec![Err(error)], Page::Done))
                    }
                }
            }
        })
        .flat_map(stream::iter)
        .boxed()
    }

    async fn check(&self) -> Result<()> {
        let inner = &self.inner;
        let name = inner.reserved_name("check");
        let location = inner.location(&name)?;
        inner
            .store
            .put(&location, Bytes::from_static(PROBE).into())
            .await
            .map_err(|e| inner.target.backend("check: put", &name, e))?;
        let read = async {
            let result = inner
                .store
                .get(&location)
                .await
                .map_err(|e| inner.target.backend("check: get", &name, e))?;
            let body = result
                .bytes()
                .await
                .map_err(|e| inner.target.backend("check: read", &name, e))?;
            if body.as_ref() != PROBE {
                return Err(inner
                    .target
                    .failure(
                        "check",
                        Some(&name),
                        S3ErrorKind::Other,
                        format!(
                            "the probe object read back as {} bytes that differ from the {} written",
                            body.len(),
                            PROBE.len()
                        ),
                    )
                    .into());
            }
            Ok(())
        }
        .await;
        // Delete even after a failed read, so that probes do not pile up.
        let deleted = inner
            .store
            .delete(&location)
            .await
            .map_err(|e| inner.target.backend("check: delete", &name, e));
        read.and(deleted)
    }
}
