//! Online mode: fetching from the upstream chain, validating and storing.
//!
//! The `fetch_*` functions run inside a [`crate::dedup::Dedup`] task: they own their arguments,
//! store what they got, and return only whether that worked; the callers then serve from storage.

use std::io::{Seek, SeekFrom};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::StreamExt;
use gomod::zipfile::{ZipLimits, check_zip};
use gomod::{ModulePath, Version};
use gomodproxy_storage::{ArtifactKind, Key, ObjectMeta, PutPayload, StorageExt};
use tokio::io::AsyncReadExt;
use tracing::warn;

use crate::fetch::limits::SpoolReservation;
use crate::fetch::{FetchError, Fetcher, Sink, Want};
use crate::sumdb::{self, Verified};
use crate::upstream::Source;
use crate::{Answer, Body, Inner, ServiceError, sha256_etag, stored_small, validate};

/// A service failure met while checking one upstream's answer, as that entry's error.
impl From<ServiceError> for FetchError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::UpstreamTimeout(m) => FetchError::Timeout(m),
            ServiceError::Storage { message, .. } => FetchError::Local(message),
            ServiceError::Overloaded(m) => FetchError::Overloaded(m),
            ServiceError::BadRequest(m)
            | ServiceError::NotFound(m)
            | ServiceError::BadUpstream(m) => FetchError::Bad(m),
        }
    }
}

impl From<FetchError> for ServiceError {
    fn from(err: FetchError) -> Self {
        match err {
            FetchError::NotFound(m) => ServiceError::NotFound(m),
            FetchError::Timeout(m) => ServiceError::UpstreamTimeout(m),
            FetchError::Bad(m) => ServiceError::BadUpstream(m),
            FetchError::Local(m) => ServiceError::local(m),
            FetchError::Overloaded(m) => ServiceError::Overloaded(m),
        }
    }
}

/// The fetcher of the chain `module` is routed to.
fn fetcher<'a>(inner: &'a Inner, module: &ModulePath) -> Result<&'a Fetcher, ServiceError> {
    // Only reachable through the online paths, which checked for upstreams first.
    inner
        .upstreams
        .as_ref()
        .map(|u| u.for_module(module))
        .ok_or_else(|| ServiceError::NotFound("offline mode: upstream is not used".to_string()))
}

/// Turns a validation failure of one upstream's answer into that entry's error.
fn rejected(source: &Source, rel: &str, what: &str, reason: &str) -> FetchError {
    warn!(upstream = %source, path = rel, reason, "rejected invalid {what} from upstream");
    FetchError::Bad(format!(
        "invalid {what} from upstream {source} for {rel}: {reason}"
    ))
}

/// Fetches, validates and stores the `.info` or `.mod` of a canonical version.
pub(crate) async fn fetch_small_artifact(
    inner: Arc<Inner>,
    module: ModulePath,
    version: Version,
    kind: ArtifactKind,
) -> Result<(), ServiceError> {
    let key = Key::artifact(&module, &version, kind);
    // A request that missed just before the previous fetch finished lands here: don't refetch.
    if inner.stored_meta(&key).await?.is_some() {
        return Ok(());
    }
    let fetcher = fetcher(&inner, &module)?;
    let rel = key.path();
    let limit = inner.small_limit(kind);
    let want = Want::Artifact {
        module: &module,
        version: &version,
        kind,
    };
    let body = fetcher
        .walk(want, |source| {
            let (inner, rel, module, version) = (&inner, &rel, &module, &version);
            async move {
                let body = fetcher.get_bytes(&source, want, limit).await?;
                let checked = match kind {
                    ArtifactKind::Info => validate::info_for(version, &body),
                    _ => validate::go_mod(module, &body),
                };
                checked.map_err(|reason| {
                    rejected(&source, rel, &format!(".{}", kind.extension()), &reason)
                })?;
                if kind == ArtifactKind::Mod {
                    let h1 = gomod::dirhash::hash_go_mod(&body);
                    sumdb::verify_hash(inner, module, version, Verified::GoMod, &h1).await?;
                    if let Some(zip_go_mod) = stored_zip_go_mod_h1(inner, module, version).await?
                        && !go_mod_agrees(version, &h1, &zip_go_mod)
                    {
                        return Err(rejected(
                            &source,
                            rel,
                            ".mod",
                            &format!("it hashes to {h1}, but the go.mod in the stored zip of this version hashes to {zip_go_mod}"),
                        ));
                    }
                }
                Ok(body)
            }
        })
        .await?;
    inner.store_fetched(&key, body).await
}

/// A zip received and checked, not yet stored.
struct Spooled {
    file: std::fs::File,
    len: u64,
    h1: String,
    /// Its bytes of the spool budget, held until the zip is stored.
    _reservation: SpoolReservation,
}

fn new_spool(inner: &Inner) -> Result<std::fs::File, FetchError> {
    // Unnamed (O_TMPFILE, or unlinked at once): a crash cannot leave it behind.
    let file = match &inner.config.spool_dir {
        Some(dir) => tempfile::tempfile_in(dir),
        None => tempfile::tempfile(),
    };
    file.map_err(|e| {
        FetchError::Local(format!(
            "cannot create a spool file ({})",
            crate::io_words(&e)
        ))
    })
}

/// Runs the zip check on a blocking thread, at most `max_concurrent_zip_checks` at once.
async fn check_spooled_zip(
    inner: &Inner,
    mut file: std::fs::File,
    module: &ModulePath,
    version: &Version,
) -> Result<(std::fs::File, Result<gomod::ZipSummary, gomod::Error>), FetchError> {
    let _slot = inner
        .zip_checks
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| FetchError::Local(format!("zip check slots closed: {e}")))?;
    let (m, v) = (module.clone(), version.clone());
    // The same size limit the download was held to (`fetch.max_zip_size`), the go command's
    // for everything else.
    let limits = ZipLimits {
        max_zip_size: inner.config.max_zip_size,
        ..ZipLimits::default()
    };
    let (file, checked) = tokio::task::spawn_blocking(move || {
        let checked = file
            .seek(SeekFrom::Start(0))
            .map_err(|e| format!("cannot rewind the spool file: {e}"))
            .map(|_| check_zip(&mut file, &m, &v, &limits));
        (file, checked)
    })
    .await
    .map_err(|e| FetchError::Local(format!("zip check task failed: {e}")))?;
    Ok((file, checked.map_err(FetchError::Local)?))
}

/// The `/go.mod` hash the `.mod` of a version must have given its zip: that of the zip's own
/// go.mod, or of the go.mod the go command synthesizes for a zip without one.
fn expected_go_mod_h1(module: &ModulePath, summary: &gomod::ZipSummary) -> String {
    summary
        .go_mod_h1
        .clone()
        .unwrap_or_else(|| gomod::dirhash::hash_go_mod(format!("module {module}\n").as_bytes()))
}

/// Whether a `.mod` hashing to `mod_h1` fits a zip whose go.mod hashes to `zip_h1`. A
/// `+incompatible` version's `.mod` may also be the synthesized one: go commands before 1.14
/// served that even when the version's tree had a go.mod, and proxies keep those answers.
fn go_mod_agrees(version: &Version, mod_h1: &str, zip_h1: &str) -> bool {
    mod_h1 == zip_h1 || version.is_incompatible()
}

fn spool_write_error(e: std::io::Error) -> FetchError {
    FetchError::Local(format!(
        "cannot write the spool file ({})",
        crate::io_words(&e)
    ))
}

/// The `/go.mod` hash implied by this version's stored zip, if the zip is stored: read back
/// from the store and checked (rare: the go command fetches a `.mod` before its zip).
async fn stored_zip_go_mod_h1(
    inner: &Inner,
    module: &ModulePath,
    version: &Version,
) -> Result<Option<String>, FetchError> {
    let key = Key::artifact(module, version, ArtifactKind::Zip);
    let got = match inner.storage.get(&key).await {
        Ok(got) => got,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(ServiceError::storage(&key, e).into()),
    };
    let mut reservation = inner.spool_budget.reservation();
    reservation.grow(got.meta.size)?;
    let mut spool = tokio::fs::File::from_std(new_spool(inner)?);
    let mut body = got.body;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            FetchError::Local(format!(
                "reading the stored zip {key} ({})",
                crate::io_words(&e)
            ))
        })?;
        tokio::io::AsyncWriteExt::write_all(&mut spool, &chunk)
            .await
            .map_err(spool_write_error)?;
    }
    tokio::io::AsyncWriteExt::flush(&mut spool)
        .await
        .map_err(spool_write_error)?;
    let file = spool.into_std().await;
    let (_, checked) = check_spooled_zip(inner, file, module, version).await?;
    match checked {
        Ok(summary) => Ok(Some(expected_go_mod_h1(module, &summary))),
        Err(e) => Err(FetchError::Local(format!(
            "the stored zip {key} does not check ({e}); run gomodproxy verify"
        ))),
    }
}

/// Fetches a zip into a spool file, checks it (structure, limits, `h1:`), and stores its hash
/// and then the zip itself, so a stored zip always has its hash.
pub(crate) async fn fetch_zip(
    inner: Arc<Inner>,
    module: ModulePath,
    version: Version,
) -> Result<(), ServiceError> {
    let key = Key::artifact(&module, &version, ArtifactKind::Zip);
    if inner.stored_meta(&key).await?.is_some() {
        return Ok(());
    }
    let fetcher = fetcher(&inner, &module)?;
    let rel = key.path();
    let limit = inner.config.max_zip_size;
    let mod_key = Key::artifact(&module, &version, ArtifactKind::Mod);
    let want = Want::Artifact {
        module: &module,
        version: &version,
        kind: ArtifactKind::Zip,
    };
    let spooled = fetcher
        .walk(want, |source| {
            let (inner, rel, module, version, mod_key) = (&inner, &rel, &module, &version, &mod_key);
            async move {
                let mut sink = Sink::File {
                    file: tokio::fs::File::from_std(new_spool(inner)?),
                    reservation: inner.spool_budget.reservation(),
                };
                let len = fetcher.get(&source, want, limit, &mut sink).await?;
                let Sink::File { file, reservation } = sink else {
                    return Err(FetchError::Local(
                        "internal error: spool sink became memory".to_string(),
                    ));
                };
                let file = file.into_std().await;
                let (file, checked) = check_spooled_zip(inner, file, module, version).await?;
                let summary = checked.map_err(|e| {
                    // Reading our own spool file failed: not upstream's fault.
                    if let gomod::Error::Io { .. } = e {
                        return FetchError::Local(format!("checking the spooled zip: {e}"));
                    }
                    let reason = e.to_string();
                    let reason = reason
                        .strip_prefix("invalid module zip: ")
                        .unwrap_or(&reason);
                    rejected(&source, rel, "module zip", reason)
                })?;
                sumdb::verify_hash(inner, module, version, Verified::Zip, &summary.h1).await?;
                // The go.mod in the zip and the stored .mod must be one file. One of the two
                // is wrong: refuse the zip and drop the .mod, so both are fetched afresh.
                let want = expected_go_mod_h1(module, &summary);
                if let Ok((_, stored_mod)) = inner.storage.get_bytes(mod_key, inner.config.max_mod_size).await {
                    let have = gomod::dirhash::hash_go_mod(&stored_mod);
                    if !go_mod_agrees(version, &have, &want) {
                        warn!(target: "gomodproxy::security", key = %mod_key, stored = %have, zip = %want, "the stored .mod differs from the go.mod in the zip; dropping the .mod");
                        if let Err(e) = inner.storage.delete(mod_key).await {
                            warn!(key = %mod_key, error = %gomodproxy_redact::text(&e.to_string()), "cannot drop the inconsistent .mod");
                        }
                        return Err(rejected(
                            &source,
                            rel,
                            "module zip",
                            &format!("its go.mod hashes to {want}, but the .mod stored for this version hashes to {have} (both are refetched on the next request)"),
                        ));
                    }
                }
                Ok(Spooled {
                    file,
                    len,
                    h1: summary.h1,
                    _reservation: reservation,
                })
            }
        })
        .await?;

    let hash_key = Key::artifact(&module, &version, ArtifactKind::ZipHash);
    inner
        .storage
        .put_bytes(&hash_key, Bytes::from(spooled.h1.clone()))
        .await
        .map_err(|e| ServiceError::storage(&hash_key, e))?;
    let Spooled {
        file,
        len,
        _reservation: reservation,
        ..
    } = spooled;
    let mut file = tokio::fs::File::from_std(file);
    tokio::io::AsyncSeekExt::seek(&mut file, SeekFrom::Start(0))
        .await
        .map_err(|e| {
            ServiceError::local(format!(
                "cannot rewind the spool file of {key} ({})",
                crate::io_words(&e)
            ))
        })?;
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024).boxed();
    inner
        .storage
        .put(
            &key,
            PutPayload::Stream {
                stream,
                length: Some(len),
            },
        )
        .await
        .map_err(|e| ServiceError::storage(&key, e))?;
    drop(reservation);
    inner.count_fetch(len);
    Ok(())
}

/// Whether a stored mutable record is young enough to serve without asking upstream.
fn is_fresh(inner: &Inner, meta: &ObjectMeta) -> bool {
    // A store time in the future (clock skew) counts as fresh rather than as infinitely old.
    SystemTime::now()
        .duration_since(meta.modified)
        .map_or(true, |age| age < inner.config.list_ttl)
}

/// Which mutable record.
#[derive(Clone, Copy)]
enum Mutable {
    List,
    Latest,
}

/// `list` and `@latest`: fresh cache, else upstream (stored), else the stale cache if upstream
/// failed without saying "not found".
async fn mutable(
    inner: &Arc<Inner>,
    module: &ModulePath,
    which: Mutable,
    fresh: Freshness,
) -> Result<Answer, ServiceError> {
    let key = match which {
        Mutable::List => Key::List {
            module: module.clone(),
        },
        Mutable::Latest => Key::Latest {
            module: module.clone(),
        },
    };
    let limit = inner.config.max_info_size;
    let cached = inner.stored_meta(&key).await?;
    if let Some(meta) = &cached
        && fresh == Freshness::Ttl
        && is_fresh(inner, meta)
        && let Some(answer) = stored_small(inner, &key, limit, false).await?
    {
        return Ok(answer);
    }
    let task_inner = inner.clone();
    let task_key = key.clone();
    let task_module = module.clone();
    // A forced refresh does not join a TTL fetch in flight (that one may serve a fresh copy
    // without asking upstream): it has its own dedup key.
    let dedup_key = match fresh {
        Freshness::Ttl => key.path(),
        Freshness::Now => format!("{} (refresh)", key.path()),
    };
    let fetched = inner
        .dedup
        .run(&dedup_key, move || {
            fetch_mutable(task_inner, task_module, task_key, which, fresh)
        })
        .await;
    match fetched {
        Ok(()) => {}
        Err(
            err @ (ServiceError::BadUpstream(_)
            | ServiceError::UpstreamTimeout(_)
            | ServiceError::Overloaded(_)),
        ) if cached.is_some() => {
            if let Some(answer) = stored_small(inner, &key, limit, false).await? {
                warn!(key = %key, error = %err, "upstream failed; serving the stale cached copy");
                return Ok(answer);
            }
            return Err(err);
        }
        Err(err) => return Err(err),
    }
    let mut answer = stored_small(inner, &key, limit, false)
        .await?
        .ok_or_else(|| crate::vanished(&key))?;
    answer.fetched = true;
    Ok(answer)
}

async fn fetch_mutable(
    inner: Arc<Inner>,
    module: ModulePath,
    key: Key,
    which: Mutable,
    fresh: Freshness,
) -> Result<(), ServiceError> {
    // Someone refreshed it while this request was deciding to: serve theirs.
    if fresh == Freshness::Ttl
        && let Some(meta) = inner.stored_meta(&key).await?
        && is_fresh(&inner, &meta)
    {
        return Ok(());
    }
    let fetcher = fetcher(&inner, &module)?;
    let rel = key.path();
    let limit = inner.config.max_info_size;
    let want = match which {
        Mutable::List => Want::List(&module),
        Mutable::Latest => Want::Latest(&module),
    };
    let body = fetcher
        .walk(want, |source| {
            let (rel, module) = (&rel, &module);
            async move {
                let body = fetcher.get_bytes(&source, want, limit).await?;
                match which {
                    Mutable::List => Ok(Bytes::from(validate::list(module, &body))),
                    Mutable::Latest => {
                        validate::info_of(module, &body)
                            .map_err(|reason| rejected(&source, rel, "@latest", &reason))?;
                        Ok(body)
                    }
                }
            }
        })
        .await?;
    inner.store_fetched(&key, body).await
}

/// Whether a stored mutable record may be served while younger than `list_ttl`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Freshness {
    /// Yes: the serving rule.
    Ttl,
    /// No, ask upstream now (a refresh).
    Now,
}

/// `/@v/list` online.
pub(crate) async fn list(inner: &Arc<Inner>, module: &ModulePath) -> Result<Answer, ServiceError> {
    mutable(inner, module, Mutable::List, Freshness::Ttl).await
}

/// `/@latest` online.
pub(crate) async fn latest(
    inner: &Arc<Inner>,
    module: &ModulePath,
) -> Result<Answer, ServiceError> {
    mutable(inner, module, Mutable::Latest, Freshness::Ttl).await
}

/// `/@v/list` from upstream now (a refresh), stored.
pub(crate) async fn refresh_list(
    inner: &Arc<Inner>,
    module: &ModulePath,
) -> Result<Answer, ServiceError> {
    mutable(inner, module, Mutable::List, Freshness::Now).await
}

/// `/@latest` from upstream now (a refresh), stored.
pub(crate) async fn refresh_latest(
    inner: &Arc<Inner>,
    module: &ModulePath,
) -> Result<Answer, ServiceError> {
    mutable(inner, module, Mutable::Latest, Freshness::Now).await
}

/// Rejects a version query that cannot be put in an upstream URL or file path safely (the same
/// set `gomod::request` accepts). Branch names with `/` never reach a proxy (the go command
/// resolves them itself), so the set can be strict.
pub(crate) fn check_query(query: &str) -> Result<(), ServiceError> {
    let ok = !query.is_empty()
        && query.len() <= 256
        && !query.starts_with(['.', '-'])
        && query
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::BadRequest(format!(
            "invalid version query {query:?}"
        )))
    }
}

/// A non-canonical `.info` query: passed to upstream, validated, served, never stored.
/// Identical queries at once share one upstream request, and an answer is reused for
/// `query_ttl`.
pub(crate) async fn query_info(
    inner: &Arc<Inner>,
    module: &ModulePath,
    query: &str,
) -> Result<Answer, ServiceError> {
    let rel = Want::Query { module, query }.rel();
    let (body, fetched) = match inner.query_cache.get(&rel) {
        Some(body) => (body, false),
        None => {
            let (task_inner, task_rel, task_module, task_query) = (
                inner.clone(),
                rel.clone(),
                module.clone(),
                query.to_string(),
            );
            let body = inner
                .query_dedup
                .run(&rel, move || async move {
                    let body = fetch_query(&task_inner, &task_module, &task_query).await?;
                    task_inner.query_cache.insert(&task_rel, body.clone());
                    Ok(body)
                })
                .await?;
            (body, true)
        }
    };
    Ok(Answer {
        size: body.len() as u64,
        etag: Some(sha256_etag(&body)),
        body: Body::Bytes(body),
        immutable: false,
        modified: Some(SystemTime::now()),
        fetched,
    })
}

async fn fetch_query(
    inner: &Inner,
    module: &ModulePath,
    query: &str,
) -> Result<Bytes, ServiceError> {
    let fetcher = fetcher(inner, module)?;
    let limit = inner.config.max_info_size;
    let want = Want::Query { module, query };
    let rel = &want.rel();
    let body = fetcher
        .walk(want, |source| async move {
            let body = fetcher.get_bytes(&source, want, limit).await?;
            validate::info_of(module, &body)
                .map_err(|reason| rejected(&source, rel, ".info", &reason))?;
            Ok(body)
        })
        .await?;
    Ok(body)
}
