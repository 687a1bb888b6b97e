//! Getting one object from the upstream chain: HTTP with timeouts, deadlines, retries, size
//! limits and concurrency caps, `file://` directories, and the walk over the chain.
//!
//! Nothing here knows about storage; callers validate what comes back (through the `attempt`
//! closure of [`Fetcher::walk`], so that an invalid answer from one entry is an error of that
//! entry and a `|` after it still falls through to the next).
//!
//! Bounds, so that neither a client nor an upstream can make the proxy spend without limit:
//! - concurrent upstream requests, in all and per `host:port`, behind a bounded queue with a
//!   bounded wait ([`limits::FetchLimits`]); beyond them a request is refused as overloaded;
//! - each HTTP request has a deadline that grows with what it received (`deadline` plus one
//!   second per `min_transfer_rate` bytes), so a trickling upstream is cut off; the read timeout
//!   bounds silence and the wait for headers; retries happen only within the deadline and only
//!   for errors that may pass (a connection failure, a 5xx, a body cut short) — never for a
//!   timeout, an oversize answer, a refused redirect or a bad certificate;
//! - spooled zips share a disk budget ([`limits::SpoolBudget`]);
//! - "not found" answers are remembered for `negative_ttl` per path, so repeated requests for a
//!   missing module cost one upstream request.
//!
//! Redirects are followed only within the same scheme, host and port, or from https to https on
//! a host listed in `redirect_hosts` (a CDN); anything else is refused.

mod direct;
mod file;
mod http;
pub(crate) mod limits;
mod router;

pub(crate) use router::Upstreams;

use std::future::Future;
use std::io::SeekFrom;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gomod::{ModulePath, Version};
use gomodproxy_storage::ArtifactKind;
use gomodproxy_vcs::Direct;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tracing::{debug, info};

use crate::ServiceConfig;
use crate::ttl_cache::TtlCache;
use crate::upstream::{Chain, Source};
use limits::{FetchLimits, SpoolReservation};

/// What is asked of a source: a GOPROXY-layout path for proxies and directories, a question
/// about a module for version control.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Want<'a> {
    /// `.info`, `.mod` or `.zip` of a canonical version.
    Artifact {
        module: &'a ModulePath,
        version: &'a Version,
        kind: ArtifactKind,
    },
    /// `@v/list`.
    List(&'a ModulePath),
    /// `@latest`.
    Latest(&'a ModulePath),
    /// `@v/<query>.info` for a non-canonical query (`master`, `v1.2`, a commit).
    Query {
        module: &'a ModulePath,
        query: &'a str,
    },
    /// Any other GOPROXY-layout path (the checksum database's).
    Path(&'a str),
}

impl Want<'_> {
    /// The module the request is about, if it names one.
    pub(crate) fn module(&self) -> Option<&str> {
        match self {
            Want::Artifact { module, .. }
            | Want::List(module)
            | Want::Latest(module)
            | Want::Query { module, .. } => Some(module.as_str()),
            Want::Path(_) => None,
        }
    }

    /// The GOPROXY-layout path of what is wanted.
    pub(crate) fn rel(&self) -> String {
        match self {
            Want::Artifact {
                module,
                version,
                kind,
            } => gomodproxy_storage::Key::artifact(module, version, *kind).path(),
            Want::List(module) => format!("{}/@v/list", module.escaped()),
            Want::Latest(module) => format!("{}/@latest", module.escaped()),
            Want::Query { module, query } => format!(
                "{}/@v/{}.info",
                module.escaped(),
                gomod::escape::escape(query)
            ),
            Want::Path(rel) => rel.to_string(),
        }
    }
}

/// Why fetching from upstream failed. Cloneable so that every waiter of a shared fetch gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchError {
    /// 404/410, a missing file, or `off`: the next `,` entry may have it.
    NotFound(String),
    /// Upstream did not answer (or stalled, or trickled) within its time.
    Timeout(String),
    /// Upstream failed or sent something unacceptable.
    Bad(String),
    /// A local failure while receiving (the spool file); not upstream's fault.
    Local(String),
    /// A bound on upstream work was reached (too many fetches, the spool budget): try later.
    Overloaded(String),
}

impl FetchError {
    fn is_not_found(&self) -> bool {
        matches!(self, FetchError::NotFound(_))
    }
}

/// Where a body is received.
pub(crate) enum Sink {
    /// In memory (info, mod, list, latest).
    Memory(Vec<u8>),
    /// A spool file (zips), whose bytes count against the spool budget.
    File {
        /// The spool file.
        file: tokio::fs::File,
        /// Its share of the budget.
        reservation: SpoolReservation,
    },
}

impl Sink {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), FetchError> {
        match self {
            Sink::Memory(buf) => {
                buf.extend_from_slice(chunk);
                Ok(())
            }
            Sink::File { file, reservation } => {
                reservation.grow(chunk.len() as u64)?;
                file.write_all(chunk)
                    .await
                    .map_err(|e| FetchError::Local(format!("cannot write the spool file: {e}")))
            }
        }
    }

    /// Empties the sink before a retry or the next upstream.
    pub(crate) async fn reset(&mut self) -> Result<(), FetchError> {
        match self {
            Sink::Memory(buf) => {
                buf.clear();
                Ok(())
            }
            Sink::File { file, reservation } => {
                let reset = async {
                    // Whatever is still buffered must not land after the truncation.
                    file.flush().await?;
                    file.set_len(0).await?;
                    file.seek(SeekFrom::Start(0)).await.map(|_| ())
                };
                reset
                    .await
                    .map_err(|e| FetchError::Local(format!("cannot reset the spool file: {e}")))?;
                reservation.clear();
                Ok(())
            }
        }
    }

    async fn finish(&mut self) -> Result<(), FetchError> {
        match self {
            Sink::Memory(_) => Ok(()),
            Sink::File { file, .. } => file
                .flush()
                .await
                .map_err(|e| FetchError::Local(format!("cannot flush the spool file: {e}"))),
        }
    }
}

/// The timing and retry settings of HTTP fetches.
#[derive(Debug, Clone)]
pub(crate) struct FetchSettings {
    pub(crate) read_timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) retry_backoff: Duration,
    pub(crate) deadline: Duration,
    pub(crate) min_transfer_rate: u64,
}

impl FetchSettings {
    fn from_config(config: &ServiceConfig) -> FetchSettings {
        FetchSettings {
            read_timeout: config.read_timeout,
            retries: config.retries,
            retry_backoff: config.retry_backoff,
            deadline: config.fetch_deadline,
            min_transfer_rate: config.min_transfer_rate.max(1),
        }
    }

    /// Until when a request that started at `started` may run, having received `received`
    /// bytes: the base deadline plus the time `received` takes at the minimum rate.
    fn deadline(&self, started: Instant, received: u64) -> Instant {
        let earned = Duration::from_secs_f64(received as f64 / self.min_transfer_rate as f64);
        started + self.deadline + earned
    }
}

/// One upstream chain with its HTTP client (and the version-control source, when the chain
/// has `direct`).
pub(crate) struct Fetcher {
    chain: Chain,
    client: reqwest::Client,
    settings: FetchSettings,
    limits: Arc<FetchLimits>,
    /// Paths every entry of the chain said "not found" for, recently: (path → message).
    negative: TtlCache<String>,
    /// The version-control source, shared by every chain that has `direct`.
    direct: Option<Direct>,
    /// Credentials by URL prefix, for entries without userinfo.
    credentials: crate::UpstreamCredentials,
    /// The proxies (for error messages) and TLS trust the client was built with.
    outbound: crate::Outbound,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("chain", &self.chain)
            .field("direct", &self.direct.is_some())
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// Builds the client. Only called in online mode, so offline never creates one. `direct` is
    /// the version-control source; a chain with `direct` needs it.
    pub(crate) fn new(
        chain: Chain,
        config: &ServiceConfig,
        limits: Arc<FetchLimits>,
        direct: Option<Direct>,
    ) -> Result<Fetcher, String> {
        let client = http::client(config)?;
        if direct.is_none() && chain.entries.iter().any(|e| e.source == Source::Direct) {
            return Err("internal error: a chain with direct but no version-control source".into());
        }
        Ok(Fetcher {
            chain,
            client,
            settings: FetchSettings::from_config(config),
            limits,
            direct,
            credentials: config.credentials.clone(),
            outbound: config.outbound.clone(),
            negative: TtlCache::new(
                config.negative_ttl,
                config.negative_cache_entries,
                // Messages are one line each; the entry count is the real bound.
                config.negative_cache_entries.saturating_mul(512),
            ),
        })
    }

    /// Runs `attempt` against each entry of the chain until one succeeds, following the
    /// `,`/`|` rules. The error reported is the go command's choice: the last failure other than
    /// "not found" if there was one, else the last "not found". When every entry said "not
    /// found", that answer is remembered for `rel` for the negative TTL.
    pub(crate) async fn walk<T, F, Fut>(
        &self,
        want: Want<'_>,
        mut attempt: F,
    ) -> Result<T, FetchError>
    where
        F: FnMut(Source) -> Fut,
        Fut: Future<Output = Result<T, FetchError>>,
    {
        let rel = &want.rel();
        if let Some(message) = self.negative.get(rel) {
            debug!(path = rel, "answered from the negative cache");
            return Err(FetchError::NotFound(message));
        }
        let mut best: Option<FetchError> = None;
        for entry in &self.chain.entries {
            match attempt(entry.source.clone()).await {
                Ok(value) => return Ok(value),
                Err(err) => {
                    let not_found = err.is_not_found();
                    if !not_found || best.as_ref().is_none_or(FetchError::is_not_found) {
                        best = Some(err);
                    }
                    if !not_found && !entry.fall_back_on_error {
                        break;
                    }
                }
            }
        }
        let err =
            best.unwrap_or_else(|| FetchError::NotFound("no upstream is configured".to_string()));
        if let FetchError::NotFound(message) = &err {
            self.negative.insert(rel, message.clone());
        }
        Err(err)
    }

    /// Fetches `want` from one source into `sink`, at most `limit` bytes, retrying transient
    /// HTTP failures. Returns the number of bytes received.
    pub(crate) async fn get(
        &self,
        source: &Source,
        want: Want<'_>,
        limit: u64,
        sink: &mut Sink,
    ) -> Result<u64, FetchError> {
        let started = Instant::now();
        let rel = &want.rel();
        sink.reset().await?;
        let result = match source {
            Source::Off => Err(FetchError::NotFound(format!(
                "module lookup disabled by GOPROXY=off ({rel})"
            ))),
            Source::File(dir) => get_file(source, dir, rel, limit, sink).await,
            Source::Http(http) => {
                let permit = self.limits.acquire(&http.host_port()).await?;
                let got = http::get(self, source, http, rel, want.module(), limit, sink).await;
                drop(permit);
                got
            }
            Source::Direct => match &self.direct {
                Some(direct) => direct::get(direct, want, limit, sink).await,
                None => Err(FetchError::Local(
                    "direct: the version-control source is not configured".to_string(),
                )),
            },
        };
        match &result {
            Ok(bytes) => info!(
                upstream = %source, path = %rel, bytes, elapsed_ms = started.elapsed().as_millis() as u64,
                "fetched from upstream"
            ),
            Err(err) => debug!(
                upstream = %source, path = %rel, elapsed_ms = started.elapsed().as_millis() as u64, ?err,
                "upstream fetch failed"
            ),
        }
        result
    }

    /// Fetches a small object into memory.
    pub(crate) async fn get_bytes(
        &self,
        source: &Source,
        want: Want<'_>,
        limit: u64,
    ) -> Result<Bytes, FetchError> {
        let mut sink = Sink::Memory(Vec::new());
        self.get(source, want, limit, &mut sink).await?;
        match sink {
            Sink::Memory(buf) => Ok(Bytes::from(buf)),
            Sink::File { .. } => Err(FetchError::Local(
                "internal error: memory sink became a file".to_string(),
            )),
        }
    }
}

async fn get_file(
    source: &Source,
    dir: &std::path::Path,
    rel: &str,
    limit: u64,
    sink: &mut Sink,
) -> Result<u64, FetchError> {
    let opened = {
        let (dir, rel) = (dir.to_path_buf(), rel.to_string());
        tokio::task::spawn_blocking(move || file::open_beneath(&dir, &rel))
            .await
            .map_err(|e| FetchError::Local(format!("file upstream task failed: {e}")))?
    };
    let (file, len) = match opened {
        Ok(opened) => opened,
        Err(file::OpenError::NotFound) => {
            return Err(FetchError::NotFound(format!(
                "upstream {source} has no {rel}"
            )));
        }
        Err(file::OpenError::NotRegular(why)) => {
            tracing::warn!(target: "gomodproxy::security", upstream = %source, path = rel, reason = why, "refused a file upstream entry that is not a regular file inside the directory");
            return Err(FetchError::Bad(format!(
                "upstream {source}: {rel} refused: {why} (only regular files inside the directory are served)"
            )));
        }
        Err(file::OpenError::Io(e)) => {
            tracing::warn!(upstream = %source, path = rel, error = %e, "cannot open a file upstream entry");
            return Err(FetchError::Bad(format!(
                "upstream {source}: cannot open {rel} ({})",
                crate::io_words(&e)
            )));
        }
    };
    if len > limit {
        return Err(FetchError::Bad(format!(
            "upstream {source} has {len} bytes for {rel}, over the {limit}-byte limit"
        )));
    }
    let mut file = tokio::fs::File::from_std(file);
    let mut received = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).await.map_err(|e| {
            FetchError::Bad(format!(
                "upstream {source}: cannot read {rel} ({})",
                crate::io_words(&e)
            ))
        })?;
        if n == 0 {
            break;
        }
        received += n as u64;
        // The file may grow between stat and read.
        if received > limit {
            return Err(FetchError::Bad(format!(
                "upstream {source} has more than {limit} bytes for {rel}"
            )));
        }
        sink.write(&buf[..n]).await?;
    }
    sink.finish().await?;
    Ok(received)
}

/// An error and its sources on one line, with any URL credentials redacted: reqwest's own
/// message ("error sending request") hides the useful part ("connection refused") in its source
/// chain.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    gomodproxy_redact::text(&out)
}
