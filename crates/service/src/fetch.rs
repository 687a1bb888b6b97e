//! Getting one object from the upstream chain: HTTP with timeouts, retries and size limits,
//! `file://` directories, and the walk over the chain.
//!
//! Nothing here knows about storage; callers validate what comes back (through the `attempt`
//! closure of [`Fetcher::walk`], so that an invalid answer from one entry is an error of that
//! entry and a `|` after it still falls through to the next).

use std::future::Future;
use std::io::SeekFrom;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::{StatusCode, Url, redirect};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tracing::{debug, info};

use crate::ServiceConfig;
use crate::upstream::{Chain, Source};

/// Why fetching from upstream failed. Cloneable so that every waiter of a shared fetch gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchError {
    /// 404/410, a missing file, or `off`: the next `,` entry may have it.
    NotFound(String),
    /// Upstream did not answer (or stalled) within the read timeout.
    Timeout(String),
    /// Upstream failed or sent something unacceptable.
    Bad(String),
    /// A local failure while receiving (the spool file); not upstream's fault.
    Local(String),
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
    /// A spool file (zips).
    File(tokio::fs::File),
}

impl Sink {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), FetchError> {
        match self {
            Sink::Memory(buf) => {
                buf.extend_from_slice(chunk);
                Ok(())
            }
            Sink::File(file) => file
                .write_all(chunk)
                .await
                .map_err(|e| FetchError::Local(format!("cannot write the spool file: {e}"))),
        }
    }

    /// Empties the sink before a retry or the next upstream.
    pub(crate) async fn reset(&mut self) -> Result<(), FetchError> {
        match self {
            Sink::Memory(buf) => {
                buf.clear();
                Ok(())
            }
            Sink::File(file) => {
                let reset = async {
                    file.set_len(0).await?;
                    file.seek(SeekFrom::Start(0)).await.map(|_| ())
                };
                reset
                    .await
                    .map_err(|e| FetchError::Local(format!("cannot reset the spool file: {e}")))
            }
        }
    }

    async fn finish(&mut self) -> Result<(), FetchError> {
        match self {
            Sink::Memory(_) => Ok(()),
            Sink::File(file) => file
                .flush()
                .await
                .map_err(|e| FetchError::Local(format!("cannot flush the spool file: {e}"))),
        }
    }
}

/// A failed attempt and whether trying the same source again might help.
struct AttemptError {
    error: FetchError,
    retryable: bool,
}

impl AttemptError {
    fn retry(error: FetchError) -> Self {
        AttemptError {
            error,
            retryable: true,
        }
    }
    fn fatal(error: FetchError) -> Self {
        AttemptError {
            error,
            retryable: false,
        }
    }
}

impl From<FetchError> for AttemptError {
    fn from(error: FetchError) -> Self {
        AttemptError::fatal(error)
    }
}

/// The upstream side of the service: the chain and one shared HTTP client.
#[derive(Debug)]
pub(crate) struct Fetcher {
    chain: Chain,
    client: reqwest::Client,
    read_timeout: Duration,
    retries: u32,
    retry_backoff: Duration,
}

impl Fetcher {
    /// Builds the client. Only called in online mode, so offline never creates one.
    pub(crate) fn new(chain: Chain, config: &ServiceConfig) -> Result<Fetcher, String> {
        let policy = redirect::Policy::custom(|attempt| {
            // `previous` starts with the original URL, so it holds one more than the hops so far.
            if attempt.previous().len() > 10 {
                return attempt.error("stopped after 10 redirects");
            }
            let from_https = attempt.previous().iter().any(|u| u.scheme() == "https");
            if from_https && attempt.url().scheme() != "https" {
                let msg = format!("refusing redirect from https to insecure {}", attempt.url());
                return attempt.error(msg);
            }
            attempt.follow()
        });
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .redirect(policy)
            .user_agent(concat!("gomodproxy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", error_chain(&e)))?;
        Ok(Fetcher {
            chain,
            client,
            read_timeout: config.read_timeout,
            retries: config.retries,
            retry_backoff: config.retry_backoff,
        })
    }

    /// Runs `attempt` against each entry of the chain until one succeeds, following the
    /// `,`/`|` rules. The error reported is the go command's choice: the last failure other than
    /// "not found" if there was one, else the last "not found".
    pub(crate) async fn walk<T, F, Fut>(&self, mut attempt: F) -> Result<T, FetchError>
    where
        F: FnMut(Source) -> Fut,
        Fut: Future<Output = Result<T, FetchError>>,
    {
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
        Err(best.unwrap_or_else(|| FetchError::NotFound("no upstream is configured".to_string())))
    }

    /// Fetches `rel` (a GOPROXY-layout path) from one source into `sink`, at most `limit` bytes,
    /// retrying transient HTTP failures. Returns the number of bytes received.
    pub(crate) async fn get(
        &self,
        source: &Source,
        rel: &str,
        limit: u64,
        sink: &mut Sink,
    ) -> Result<u64, FetchError> {
        let started = Instant::now();
        sink.reset().await?;
        let result = match source {
            Source::Off => Err(FetchError::NotFound(format!(
                "module lookup disabled by GOPROXY=off ({rel})"
            ))),
            Source::File(dir) => get_file(source, dir, rel, limit, sink).await,
            Source::Http(base) => {
                let url = Source::http_url(base, rel).map_err(FetchError::Bad)?;
                self.get_http(source, &url, rel, limit, sink).await
            }
        };
        match &result {
            Ok(bytes) => info!(
                upstream = %source, path = rel, bytes, elapsed_ms = started.elapsed().as_millis() as u64,
                "fetched from upstream"
            ),
            Err(err) => debug!(
                upstream = %source, path = rel, elapsed_ms = started.elapsed().as_millis() as u64, ?err,
                "upstream fetch failed"
            ),
        }
        result
    }

    /// Fetches a small object into memory.
    pub(crate) async fn get_bytes(
        &self,
        source: &Source,
        rel: &str,
        limit: u64,
    ) -> Result<Bytes, FetchError> {
        let mut sink = Sink::Memory(Vec::new());
        self.get(source, rel, limit, &mut sink).await?;
        match sink {
            Sink::Memory(buf) => Ok(Bytes::from(buf)),
            Sink::File(_) => Err(FetchError::Local(
                "internal error: memory sink became a file".to_string(),
            )),
        }
    }

    async fn get_http(
        &self,
        source: &Source,
        url: &Url,
        rel: &str,
        limit: u64,
        sink: &mut Sink,
    ) -> Result<u64, FetchError> {
        let mut attempt = 0u32;
        loop {
            match self.http_once(source, url, rel, limit, sink).await {
                Ok(n) => return Ok(n),
                Err(e) if e.retryable && attempt < self.retries => {
                    let delay = self
                        .retry_backoff
                        .saturating_mul(2u32.saturating_pow(attempt));
                    attempt += 1;
                    debug!(upstream = %source, path = rel, attempt, ?delay, error = ?e.error, "retrying upstream fetch");
                    tokio::time::sleep(delay).await;
                    sink.reset().await?;
                }
                Err(e) => return Err(e.error),
            }
        }
    }

    async fn http_once(
        &self,
        source: &Source,
        url: &Url,
        rel: &str,
        limit: u64,
        sink: &mut Sink,
    ) -> Result<u64, AttemptError> {
        let timeout = self.read_timeout;
        let send = self.client.get(url.clone()).send();
        let mut response = match tokio::time::timeout(timeout, send).await {
            Err(_) => {
                return Err(AttemptError::retry(FetchError::Timeout(format!(
                    "upstream {source} did not answer within {timeout:?} for {rel}"
                ))));
            }
            Ok(Err(e)) if e.is_timeout() => {
                return Err(AttemptError::retry(FetchError::Timeout(format!(
                    "upstream {source} timed out for {rel}: {}",
                    error_chain(&e)
                ))));
            }
            Ok(Err(e)) => {
                let error = FetchError::Bad(format!(
                    "upstream {source} failed for {rel}: {}",
                    error_chain(&e)
                ));
                // A refused redirect will be refused again; connection trouble may pass.
                return Err(if e.is_redirect() {
                    AttemptError::fatal(error)
                } else {
                    AttemptError::retry(error)
                });
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Err(AttemptError::fatal(FetchError::NotFound(format!(
                "upstream {source} returned {} for {rel}",
                status.as_u16()
            ))));
        }
        if status != StatusCode::OK {
            let error = FetchError::Bad(format!(
                "upstream {source} returned {} for {rel}",
                status.as_u16()
            ));
            return Err(AttemptError {
                error,
                retryable: status.is_server_error(),
            });
        }
        // Absent when the body is compressed in transit: then only the limit applies.
        let announced = response.content_length();
        if let Some(len) = announced
            && len > limit
        {
            return Err(AttemptError::fatal(FetchError::Bad(format!(
                "upstream {source} announced {len} bytes for {rel}, over the {limit}-byte limit"
            ))));
        }
        let mut received = 0u64;
        loop {
            let chunk = match tokio::time::timeout(timeout, response.chunk()).await {
                Err(_) => {
                    return Err(AttemptError::retry(FetchError::Timeout(format!(
                        "upstream {source} sent nothing for {timeout:?} after {received} bytes of {rel}"
                    ))));
                }
                Ok(Err(e)) => {
                    return Err(AttemptError::retry(FetchError::Bad(format!(
                        "upstream {source} body for {rel} failed after {received} bytes: {}",
                        error_chain(&e)
                    ))));
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => chunk,
            };
            received += chunk.len() as u64;
            if received > limit {
                return Err(AttemptError::fatal(FetchError::Bad(format!(
                    "upstream {source} sent more than the {limit}-byte limit for {rel}"
                ))));
            }
            sink.write(&chunk).await?;
        }
        if let Some(len) = announced
            && len != received
        {
            return Err(AttemptError::retry(FetchError::Bad(format!(
                "upstream {source} sent {received} bytes for {rel} but announced {len}"
            ))));
        }
        sink.finish().await?;
        Ok(received)
    }
}

async fn get_file(
    source: &Source,
    dir: &std::path::Path,
    rel: &str,
    limit: u64,
    sink: &mut Sink,
) -> Result<u64, FetchError> {
    let path = dir.join(rel);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FetchError::NotFound(format!(
                "upstream {source} has no {rel}"
            )));
        }
        Err(e) => {
            return Err(FetchError::Bad(format!(
                "upstream {source}: cannot open {rel}: {e}"
            )));
        }
    };
    let meta = file
        .metadata()
        .await
        .map_err(|e| FetchError::Bad(format!("upstream {source}: cannot stat {rel}: {e}")))?;
    if !meta.is_file() {
        return Err(FetchError::Bad(format!(
            "upstream {source}: {rel} is not a regular file"
        )));
    }
    if meta.len() > limit {
        return Err(FetchError::Bad(format!(
            "upstream {source} has {} bytes for {rel}, over the {limit}-byte limit",
            meta.len()
        )));
    }
    let mut received = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| FetchError::Bad(format!("upstream {source}: cannot read {rel}: {e}")))?;
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

/// An error and its sources on one line: reqwest's own message ("error sending request") hides
/// the useful part ("connection refused") in its source chain.
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
    out
}
