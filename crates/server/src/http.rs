//! The HTTP face of the proxy: one default handler for every GOPROXY path, plus `/healthz` and
//! `/readyz`.
//!
//! The handler takes the raw (still percent-encoded) request path and hands it to
//! [`ProxyRequest::parse`], so decoding and validation happen once, in `gomod`; it then calls the
//! service and turns the [`Answer`] into a response. Statuses of failures are decided in exactly
//! one place, [`ProxyError::status_code`].
//!
//! Compression: small text/JSON answers are gzip-compressed for clients that ask (actix's
//! `Compress`); zips never are. A response opts out by carrying the [`NO_COMPRESS`] marker
//! (`Content-Encoding: identity`, which `Compress` leaves alone), and the outermost middleware
//! removes the marker again, so clients see a plain response with its `Content-Length`. That
//! middleware also turns the ETag of a gzip-encoded response into a weak one.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, MessageBody, SizedStream};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{Compress, Next, from_fn};
use actix_web::{
    App, HttpMessage, HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError, web,
};
use bytes::Bytes;
use gomod::request::{InfoVersion, ProxyRequest};
use gomod::sumdb::SumdbPath;
use gomodproxy_access::{AuditDecision, Refusal};
use gomodproxy_service::{Answer, Body, ProxyService, ServiceError, VersionQuery};

use crate::access::{AccessLayer, Caller, Parsed, Target};
use crate::backend::Store;
use crate::metrics::{Metrics, route_of};

/// `Cache-Control` of versioned artifacts: they never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Response header saying whether the answer came from the cache (`hit`) or took an upstream
/// fetch (`miss`).
pub const CACHE_STATUS: &str = "x-gomodproxy-cache";

/// Marker a handler sets so that `Compress` leaves the body alone; removed before sending.
pub const NO_COMPRESS: &str = "identity";

/// `Retry-After` of a 503 for an overloaded upstream: long enough for a queue to drain.
const RETRY_AFTER_SECONDS: u64 = 5;

/// Longest error body, in bytes, before the newline (the go command shows up to 648).
const MAX_ERROR_LEN: usize = 500;

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const ZIP: &str = "application/zip";
const BINARY: &str = "application/octet-stream";

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    service: ProxyService,
    mutable_cache_control: String,
    metrics: Arc<Metrics>,
    store: Option<Store>,
    access: Arc<AccessLayer>,
}

impl AppState {
    /// State over `service`; `list_ttl` is the `max-age` of answers that may change.
    pub fn new(service: ProxyService, list_ttl: Duration) -> Self {
        AppState {
            service,
            mutable_cache_control: format!("public, max-age={}", list_ttl.as_secs()),
            metrics: Arc::default(),
            store: None,
            access: Arc::new(AccessLayer::open()),
        }
    }

    /// Puts `access` (authentication, rules, policy) in front of the service.
    pub fn with_access(mut self, access: Arc<AccessLayer>) -> Self {
        self.access = access;
        self
    }

    /// The access layer.
    pub fn access(&self) -> &Arc<AccessLayer> {
        &self.access
    }

    /// Reports the memory cache of `store` in the metrics.
    pub fn with_store(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }

    /// The metrics this state counts into.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }
}

/// Everything that can stop a request, each mapped to one status in
/// [`ProxyError::status_code`].
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The path is not a valid GOPROXY request (bad escape, path, version, layout).
    #[error(transparent)]
    Request(#[from] gomod::Error),
    /// The service could not answer.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// Not GET or HEAD.
    #[error("method {0} is not allowed; use GET or HEAD")]
    MethodNotAllowed(Method),
    /// `/readyz` when the store does not answer its probe.
    #[error("not ready: {0}")]
    NotReady(ServiceError),
    /// No credentials where they are needed, or wrong ones.
    #[error("{reason}")]
    Unauthorized {
        /// The one-line reason (never whether the module exists).
        reason: String,
        /// The `WWW-Authenticate` value.
        challenge: Option<String>,
    },
    /// A valid identity the access rules do not admit to the module.
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed attempts from the client's address.
    #[error("too many failed authentication attempts; retry in {} s", .0.as_secs().max(1))]
    RateLimited(Duration),
    /// The allow/deny policy refuses the module or version.
    #[error("refused by policy: {0}")]
    Refused(Refusal),
}

impl ResponseError for ProxyError {
    fn status_code(&self) -> StatusCode {
        match self {
            ProxyError::Request(_) => StatusCode::BAD_REQUEST,
            ProxyError::Service(e) => match e {
                ServiceError::BadRequest(_) => StatusCode::BAD_REQUEST,
                ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
                ServiceError::BadUpstream(_) => StatusCode::BAD_GATEWAY,
                ServiceError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
                ServiceError::Storage { .. } | ServiceError::Overloaded(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            },
            ProxyError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ProxyError::Forbidden(_) | ProxyError::Refused(_) => StatusCode::FORBIDDEN,
            ProxyError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let message = one_line(&self.to_string());
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %message, "request failed");
        }
        let mut response = HttpResponse::build(status);
        response
            .content_type(TEXT)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::CONTENT_ENCODING, NO_COMPRESS));
        if let ProxyError::MethodNotAllowed(_) = self {
            response.insert_header((header::ALLOW, "GET, HEAD"));
        }
        match self {
            ProxyError::Service(ServiceError::Overloaded(_)) => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string()));
            }
            ProxyError::RateLimited(after) => {
                let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
                response.insert_header((header::RETRY_AFTER, seconds.max(1).to_string()));
            }
            ProxyError::Unauthorized {
                challenge: Some(challenge),
                ..
            } => {
                response.insert_header((header::WWW_AUTHENTICATE, challenge.as_str()));
            }
            _ => {}
        }
        response.body(message)
    }
}

/// A printable, single-line, newline-terminated message of at most [`MAX_ERROR_LEN`] bytes
/// (the go command drops an error body that is not printable, and shows only a few lines).
pub fn one_line(message: &str) -> String {
    let mut line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = line.trim_end().len();
    line.truncate(trimmed);
    if line.len() > MAX_ERROR_LEN {
        const ELLIPSIS: &str = "...";
        let mut cut = MAX_ERROR_LEN - ELLIPSIS.len();
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str(ELLIPSIS);
    }
    line.push('\n');
    line
}

/// The application: routes, state and middleware. Used by the server and by in-process tests.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::new(state))
        .wrap(from_fn(crate::access::guard))
        .wrap(from_fn(access_log))
        .wrap(Compress::default())
        .wrap(from_fn(after_compress))
        .service(web::resource("/healthz").to(healthz))
        .service(web::resource("/readyz").to(readyz))
        .service(web::resource("/metrics").to(metrics))
        .default_service(web::to(proxy))
}

/// Logs one line per request. Runs inside `Compress`, so `bytes` is the uncompressed length,
/// and the duration is the time to the response head (a zip body streams after it).
async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        metrics.request(route_of(&path), response.status().as_u16());
    }
    let bytes = match response.response().body().size() {
        BodySize::Sized(n) => Some(n),
        BodySize::None => Some(0),
        BodySize::Stream => None,
    };
    tracing::info!(
        target: "gomodproxy::access",
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        bytes,
        duration_us = start.elapsed().as_micros() as u64,
        "request"
    );
    Ok(response)
}

/// Runs outside `Compress`: removes the [`NO_COMPRESS`] marker once `Compress` has seen it, and
/// weakens the ETag of a gzip-encoded response, since a strong ETag promises the exact bytes of
/// the identity representation (matching stays the same: `If-None-Match` compares weakly).
async fn after_compress(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    match headers.get(header::CONTENT_ENCODING) {
        Some(v) if v == NO_COMPRESS => {
            headers.remove(header::CONTENT_ENCODING);
        }
        Some(_) => {
            let weak = headers
                .get(header::ETAG)
                .and_then(|tag| tag.to_str().ok())
                .filter(|tag| tag.starts_with('"'))
                .and_then(|tag| header::HeaderValue::from_str(&format!("W/{tag}")).ok());
            if let Some(weak) = weak {
                headers.insert(header::ETAG, weak);
            }
        }
        None => {}
    }
    Ok(response)
}

fn check_method(req: &HttpRequest) -> Result<(), ProxyError> {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        Ok(())
    } else {
        Err(ProxyError::MethodNotAllowed(req.method().clone()))
    }
}

/// Liveness: 200 while the process serves.
async fn healthz(req: HttpRequest) -> Result<HttpResponse, ProxyError> {
    check_method(&req)?;
    Ok(HttpResponse::Ok()
        .content_type(TEXT)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body("ok\n"))
}

/// Readiness: 200 when the store answers its probe, else 503 with the reason.
async fn readyz(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ProxyError> {
    check_method(&req)?;
    state.service.ready().await.map_err(ProxyError::NotReady)?;
    Ok(HttpResponse::Ok()
        .content_type(TEXT)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body("ready\n"))
}

/// Prometheus metrics.
async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ProxyError> {
    check_method(&req)?;
    let cache = state.store.as_ref().and_then(Store::cache_stats);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(state.metrics.render(&state.service.stats(), cache)))
}

/// What kind of artifact an answer is, which decides its content type and compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Json,
    Zip,
    /// Checksum-database tiles: raw hashes.
    Binary,
}

/// Every GOPROXY path: parse, apply the policy, ask the service, write the audit line.
async fn proxy(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ProxyError> {
    check_method(&req)?;
    // The raw path, still percent-encoded: `gomod` decodes and bounds it, so that `%2F`, `%00`,
    // `..` and overlong input are judged on what the client actually sent.
    // The guard parsed it already (from the same raw path).
    let parsed = req.extensions_mut().remove::<Parsed>();
    let request = match parsed {
        Some(Parsed(request)) => request,
        None => {
            let raw = req.uri().path();
            ProxyRequest::parse(raw.strip_prefix('/').unwrap_or(raw))?
        }
    };
    let target = Target::of(&request);
    let caller = req.extensions().get::<Caller>().cloned();
    match answer(&state, request).await {
        Ok((answer, kind)) => {
            let response = respond(&req, answer, kind, &state.mutable_cache_control);
            if let Some(caller) = &caller {
                let bytes = match response.body().size() {
                    BodySize::Sized(n) if req.method() != Method::HEAD => n,
                    _ => 0,
                };
                caller.audit(
                    &target,
                    AuditDecision::Served,
                    response.status().as_u16(),
                    bytes,
                );
            }
            Ok(response)
        }
        Err(error) => {
            if let (Some(caller), ProxyError::Refused(_)) = (&caller, &error) {
                let reason = error.to_string();
                caller.audit(
                    &target,
                    AuditDecision::Refused { reason: &reason },
                    error.status_code().as_u16(),
                    0,
                );
            }
            Err(error)
        }
    }
}

/// The service's answer to a request the policy admits. A `list` drops the versions the
/// policy refuses, and an `@latest` or `.info` query is refused when it resolves to one, so
/// the go command never picks a refused version.
async fn answer(state: &AppState, request: ProxyRequest) -> Result<(Answer, Kind), ProxyError> {
    let service = &state.service;
    let access = &state.access;
    let policy = |module: &gomod::ModulePath, version: Option<&gomod::Version>| {
        access
            .check_policy(module, version)
            .map_err(ProxyError::Refused)
    };
    Ok(match request {
        ProxyRequest::List { module } => {
            policy(&module, None)?;
            let answer = service.list(&module).await?;
            (filter_list(access, &module, answer).await?, Kind::Text)
        }
        ProxyRequest::Latest { module } => {
            policy(&module, None)?;
            let answer = service.latest(&module).await?;
            (check_resolved(access, &module, answer).await?, Kind::Json)
        }
        ProxyRequest::Info { module, version } => {
            let query = match version {
                InfoVersion::Canonical(v) => {
                    policy(&module, Some(&v))?;
                    VersionQuery::Canonical(v)
                }
                InfoVersion::Query(q) => {
                    policy(&module, None)?;
                    VersionQuery::Query(q)
                }
            };
            let answer = service.info(&module, &query).await?;
            (check_resolved(access, &module, answer).await?, Kind::Json)
        }
        ProxyRequest::Mod { module, version } => {
            policy(&module, Some(&version))?;
            (service.go_mod(&module, &version).await?, Kind::Text)
        }
        ProxyRequest::Zip { module, version } => {
            policy(&module, Some(&version))?;
            (service.zip(&module, &version).await?, Kind::Zip)
        }
        ProxyRequest::Sumdb { name, path } => {
            let kind = match path {
                SumdbPath::Tile(_) => Kind::Binary,
                _ => Kind::Text,
            };
            (service.sumdb(&name, &path).await?, kind)
        }
    })
}

/// The whole body of a small answer (`list`, `.info`, `@latest`: bounded by
/// `fetch.max_info_size`).
async fn small_body(body: Body) -> Result<Bytes, ProxyError> {
    use futures::StreamExt;
    match body {
        Body::Bytes(bytes) => Ok(bytes),
        Body::Stream(mut stream) => {
            let mut all = bytes::BytesMut::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| {
                    ProxyError::Service(ServiceError::BadUpstream(format!(
                        "reading a stored answer: {e}"
                    )))
                })?;
                all.extend_from_slice(&chunk);
            }
            Ok(all.freeze())
        }
    }
}

/// A `list` without the versions the policy refuses.
async fn filter_list(
    access: &AccessLayer,
    module: &gomod::ModulePath,
    mut answer: Answer,
) -> Result<Answer, ProxyError> {
    let body = small_body(answer.body).await?;
    let policy = access.policy().current();
    let text = String::from_utf8_lossy(&body);
    let mut kept = String::with_capacity(text.len());
    let mut dropped = false;
    for line in text.lines() {
        let version = line.trim();
        if !version.is_empty() && policy.check(module.as_str(), Some(version)).is_err() {
            dropped = true;
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    if dropped {
        answer.size = kept.len() as u64;
        answer.etag = None;
        answer.body = Body::Bytes(Bytes::from(kept));
    } else {
        answer.body = Body::Bytes(body);
    }
    Ok(answer)
}

/// An `.info` or `@latest` answer, refused if the version it resolved to is refused.
async fn check_resolved(
    access: &AccessLayer,
    module: &gomod::ModulePath,
    mut answer: Answer,
) -> Result<Answer, ProxyError> {
    let body = small_body(answer.body).await?;
    #[derive(serde::Deserialize)]
    struct Info {
        #[serde(rename = "Version")]
        version: String,
    }
    if let Ok(info) = serde_json::from_slice::<Info>(&body) {
        access
            .policy()
            .current()
            .check(module.as_str(), Some(&info.version))
            .map_err(ProxyError::Refused)?;
    }
    answer.body = Body::Bytes(body);
    Ok(answer)
}

/// Turns an answer into a 200 (or a 304 when the client's `If-None-Match` matches).
fn respond(req: &HttpRequest, answer: Answer, kind: Kind, mutable: &str) -> HttpResponse {
    let etag = answer.etag.as_deref().and_then(strong_etag);
    let cache_control = if answer.immutable { IMMUTABLE } else { mutable };
    let validators = |builder: &mut HttpResponseBuilder| {
        builder.insert_header((header::CACHE_CONTROL, cache_control));
        builder.insert_header((CACHE_STATUS, if answer.fetched { "miss" } else { "hit" }));
        if let Some(tag) = &etag {
            builder.insert_header((header::ETAG, tag.clone()));
        }
        if let Some(modified) = answer.modified {
            builder.insert_header(header::LastModified(modified.into()));
        }
    };

    if let Some(tag) = &etag
        && if_none_match(req, tag)
    {
        let mut builder = HttpResponse::NotModified();
        validators(&mut builder);
        return builder.finish();
    }

    let mut builder = HttpResponse::Ok();
    validators(&mut builder);
    builder.content_type(match kind {
        Kind::Text => TEXT,
        Kind::Json => JSON,
        Kind::Zip => ZIP,
        Kind::Binary => BINARY,
    });
    let head = req.method() == Method::HEAD;
    // Zips are already compressed, tiles are random hashes, and a HEAD answer has no body to compress: either way the
    // client should see the real Content-Length.
    if matches!(kind, Kind::Zip | Kind::Binary) || head {
        builder.insert_header((header::CONTENT_ENCODING, NO_COMPRESS));
    }
    if head {
        // Drop the body unread: for a zip that avoids opening a stream only to discard it.
        return builder.body(HeadBody(answer.size));
    }
    match answer.body {
        Body::Bytes(bytes) => builder.body(bytes),
        Body::Stream(stream) => builder.body(SizedStream::new(answer.size, stream)),
    }
}

/// The answer's validator as a quoted strong ETag; `None` if it cannot be one.
fn strong_etag(raw: &str) -> Option<String> {
    let inner = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    // RFC 9110 etagc: 0x21, 0x23–0x7E (no quote, no space, no control, ASCII only here).
    let valid = !inner.is_empty()
        && inner
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b));
    valid.then(|| format!("\"{inner}\""))
}

/// Whether `If-None-Match` lists `tag` (weak comparison, as RFC 9110 prescribes) or `*`.
fn if_none_match(req: &HttpRequest, tag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == tag)
}

/// The body of a HEAD answer: announces the length of the GET body, yields nothing.
struct HeadBody(u64);

impl MessageBody for HeadBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.0)
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_flattens_and_truncates() {
        assert_eq!(one_line("a\nb\r\tc  "), "a b  c\n");
        let long = "é".repeat(400);
        let line = one_line(&long);
        assert!(line.len() <= MAX_ERROR_LEN + 1);
        assert!(line.ends_with("...\n"));
        assert_eq!(line.matches('\n').count(), 1);
    }

    #[test]
    fn etags_are_quoted_and_checked() {
        assert_eq!(strong_etag("abc").as_deref(), Some("\"abc\""));
        assert_eq!(strong_etag("\"abc\"").as_deref(), Some("\"abc\""));
        assert_eq!(strong_etag("h1:a+b/c=").as_deref(), Some("\"h1:a+b/c=\""));
        assert_eq!(strong_etag("a b"), None);
        assert_eq!(strong_etag(""), None);
    }
}
