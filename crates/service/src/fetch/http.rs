//! HTTP(S) upstreams: the client (redirect policy), one request with its deadline, and retries.

use std::time::Instant;

use reqwest::{StatusCode, Url, redirect};
use tracing::debug;

use super::{FetchError, Fetcher, Sink, error_chain};
use crate::ServiceConfig;
use crate::upstream::{Authorization, HttpSource, Source};

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

/// Whether a redirect target may be followed from `original`: the same scheme, host and port,
/// or https to https on one of `allowed_hosts` (`cdn.example.com` or `*.example.com`).
pub(crate) fn redirect_allowed(original: &Url, next: &Url, allowed_hosts: &[String]) -> bool {
    let same_origin = original.scheme() == next.scheme()
        && original.host_str() == next.host_str()
        && original.port_or_known_default() == next.port_or_known_default();
    if same_origin {
        return true;
    }
    let Some(host) = next.host_str() else {
        return false;
    };
    original.scheme() == "https"
        && next.scheme() == "https"
        && allowed_hosts
            .iter()
            .any(|pattern| host_matches(pattern, host))
}

fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// The HTTP client of one fetcher.
pub(crate) fn client(config: &ServiceConfig) -> Result<reqwest::Client, String> {
    let allowed = config.redirect_hosts.clone();
    let policy = redirect::Policy::custom(move |attempt| {
        // `previous` starts with the original URL, so it holds one more than the hops so far.
        if attempt.previous().len() > 10 {
            return attempt.error("stopped after 10 redirects");
        }
        let Some(original) = attempt.previous().first() else {
            return attempt.follow();
        };
        if redirect_allowed(original, attempt.url(), &allowed) {
            attempt.follow()
        } else {
            let msg = format!(
                "refusing a redirect to {} (only the same scheme, host and port, or https hosts in fetch.redirect_hosts, are followed)",
                gomodproxy_redact::url(attempt.url().as_str())
            );
            attempt.error(msg)
        }
    });
    // The proxies are explicit (the caller resolved configuration and environment): the
    // client reads no environment variable of its own.
    let mut builder = reqwest::Client::builder()
        .connect_timeout(config.connect_timeout)
        .redirect(policy)
        .user_agent(concat!("gomodproxy/", env!("CARGO_PKG_VERSION")))
        .no_proxy();
    let outbound = &config.outbound;
    let no_proxy = outbound
        .no_proxy
        .as_deref()
        .and_then(reqwest::NoProxy::from_string);
    for (key, url, https) in [
        ("fetch.https_proxy", &outbound.https_proxy, true),
        ("fetch.http_proxy", &outbound.http_proxy, false),
    ] {
        if let Some(url) = url {
            let made = if https {
                reqwest::Proxy::https(url.as_str())
            } else {
                reqwest::Proxy::http(url.as_str())
            };
            let proxy = made.map_err(|e| {
                format!(
                    "{key} {:?}: {}",
                    gomodproxy_redact::url(url),
                    error_chain(&e)
                )
            })?;
            builder = builder.proxy(proxy.no_proxy(no_proxy.clone()));
        }
    }
    if let Some(tls) = &outbound.tls {
        builder = tls.configure_reqwest(builder).map_err(|e| e.to_string())?;
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", error_chain(&e)))
}

/// A failed request in words that name its cause, and whether it is worth retrying: a TLS
/// problem ("certificate signed by unknown authority: set fetch.ca_file"), a proxy that wants
/// credentials (407) or refused the `CONNECT`, a proxy that cannot be reached, else the error
/// chain.
fn send_error_words(
    outbound: &crate::Outbound,
    url: &Url,
    error: &reqwest::Error,
) -> (String, bool) {
    if let Some(problem) = gomodproxy_tls::explain(error) {
        return (problem.to_string(), false);
    }
    let chain = error_chain(error);
    let proxy = outbound
        .proxy_for(url.scheme())
        .map(gomodproxy_redact::url)
        .unwrap_or_else(|| "(from the environment)".to_string());
    let target = format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    );
    // hyper-util's tunnel errors are not public types; their messages are its interface.
    if chain.contains("proxy authorization required") {
        return (
            format!(
                "the proxy {proxy} answered 407 Proxy Authentication Required to CONNECT {target}: \
                 give its user and password in the proxy URL (http://user:password@host:port)"
            ),
            false,
        );
    }
    if chain.contains("failed to create underlying connection") {
        return (
            format!("cannot connect to the proxy {proxy}: {chain}"),
            true,
        );
    }
    if chain.contains("unsuccessful")
        || (chain.contains("unexpected end of file") && chain.contains("tunnel"))
    {
        return (
            format!("the proxy {proxy} refused to CONNECT to {target} ({chain})"),
            true,
        );
    }
    (chain, !is_certificate_error(error))
}

/// Fetches `rel` from `http` into `sink`, retrying what may pass, within the deadline.
pub(super) async fn get(
    fetcher: &Fetcher,
    source: &Source,
    http: &HttpSource,
    rel: &str,
    module: Option<&str>,
    limit: u64,
    sink: &mut Sink,
) -> Result<u64, FetchError> {
    let url = Source::http_url(&http.base, rel).map_err(FetchError::Bad)?;
    let settings = &fetcher.settings;
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        match once(fetcher, source, http, &url, rel, module, limit, sink).await {
            Ok(n) => return Ok(n),
            Err(e) if e.retryable && attempt < settings.retries => {
                let delay = settings
                    .retry_backoff
                    .saturating_mul(2u32.saturating_pow(attempt));
                // A retry that could not finish within the deadline is not worth starting.
                if Instant::now() + delay >= settings.deadline(started, 0) {
                    return Err(e.error);
                }
                attempt += 1;
                debug!(upstream = %source, path = rel, attempt, ?delay, error = ?e.error, "retrying upstream fetch");
                tokio::time::sleep(delay).await;
                sink.reset().await?;
            }
            Err(e) => return Err(e.error),
        }
    }
}

/// Whether a request error is a TLS certificate problem: it will fail the same way again.
fn is_certificate_error(error: &reqwest::Error) -> bool {
    let lower = error_chain(error).to_ascii_lowercase();
    lower.contains("certificate") || lower.contains("unknownissuer")
}

#[allow(clippy::too_many_arguments)]
async fn once(
    fetcher: &Fetcher,
    source: &Source,
    http: &HttpSource,
    url: &Url,
    rel: &str,
    module: Option<&str>,
    limit: u64,
    sink: &mut Sink,
) -> Result<u64, AttemptError> {
    let settings = &fetcher.settings;
    let started = Instant::now();
    let read_timeout = settings.read_timeout;
    let mut request = fetcher.client.get(url.clone());
    // The entry's own userinfo, else the `[[fetch.credentials]]` entry for this URL (and
    // module). Set on this request only: the client drops it on a redirect to another origin.
    if let Some(auth) = &http.auth {
        request = request.basic_auth(&auth.username, Some(auth.password.expose()));
    } else {
        match fetcher.credentials.authorization(url, module) {
            Ok(None) => {}
            Ok(Some(Authorization::Basic { username, password })) => {
                request = request.basic_auth(username, Some(password.expose()));
            }
            Ok(Some(Authorization::Bearer(token))) => {
                request = request.bearer_auth(token.expose());
            }
            Err(why) => {
                return Err(AttemptError::fatal(FetchError::Local(format!(
                    "credentials for upstream {source}: {why}"
                ))));
            }
        }
    }
    let head_by = (started + read_timeout).min(settings.deadline(started, 0));
    let mut response = match tokio::time::timeout_at(head_by.into(), request.send()).await {
        // A stalled upstream is not retried: it would cost the same wait again.
        Err(_) => {
            return Err(AttemptError::fatal(FetchError::Timeout(format!(
                "upstream {source} did not answer within {:?} for {rel}",
                head_by - started
            ))));
        }
        Ok(Err(e)) if e.is_timeout() => {
            return Err(AttemptError::fatal(FetchError::Timeout(format!(
                "upstream {source} timed out for {rel}: {}",
                error_chain(&e)
            ))));
        }
        Ok(Err(e)) => {
            let (text, retryable) = send_error_words(&fetcher.outbound, url, &e);
            let error = FetchError::Bad(format!("upstream {source} failed for {rel}: {text}"));
            // A refused redirect, a bad certificate or a proxy that wants credentials fails
            // again; connection trouble may pass.
            return Err(if e.is_redirect() || !retryable {
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
    if status == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
        let proxy = fetcher
            .outbound
            .proxy_for(url.scheme())
            .map(gomodproxy_redact::url)
            .unwrap_or_else(|| "on the way".to_string());
        return Err(AttemptError::fatal(FetchError::Bad(format!(
            "upstream {source} for {rel}: the proxy {proxy} answered 407 Proxy Authentication Required: \
             give its user and password in the proxy URL (http://user:password@host:port)"
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
        let now = Instant::now();
        let rate_deadline = settings.deadline(started, received);
        let by = (now + read_timeout).min(rate_deadline);
        let chunk = match tokio::time::timeout_at(by.into(), response.chunk()).await {
            Err(_) if by == rate_deadline => {
                let elapsed = started.elapsed();
                return Err(AttemptError::fatal(FetchError::Timeout(format!(
                    "upstream {source} sent {received} bytes of {rel} in {:.0?}, below the minimum transfer rate of {} bytes/s",
                    elapsed, settings.min_transfer_rate
                ))));
            }
            Err(_) => {
                return Err(AttemptError::fatal(FetchError::Timeout(format!(
                    "upstream {source} sent nothing for {read_timeout:?} after {received} bytes of {rel}"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_the_origin_or_go_to_allowed_https_hosts() {
        let u = |s: &str| Url::parse(s).unwrap();
        let allowed = vec!["cdn.example.net".to_string(), "*.blobs.example".to_string()];
        let https = u("https://proxy.example/m/@v/v1.0.0.zip");
        let http = u("http://127.0.0.1:8080/m/@v/v1.0.0.zip");
        assert!(redirect_allowed(
            &http,
            &u("http://127.0.0.1:8080/other"),
            &allowed
        ));
        assert!(!redirect_allowed(
            &http,
            &u("http://127.0.0.1:8081/other"),
            &allowed
        ));
        assert!(!redirect_allowed(
            &http,
            &u("http://localhost:8080/other"),
            &allowed
        ));
        assert!(redirect_allowed(
            &https,
            &u("https://proxy.example:443/x"),
            &allowed
        ));
        assert!(!redirect_allowed(
            &https,
            &u("http://proxy.example/x"),
            &allowed
        ));
        assert!(redirect_allowed(
            &https,
            &u("https://cdn.example.net/x"),
            &allowed
        ));
        assert!(redirect_allowed(
            &https,
            &u("https://eu.blobs.example/x"),
            &allowed
        ));
        assert!(!redirect_allowed(
            &https,
            &u("https://blobs.example/x"),
            &allowed
        ));
        assert!(!redirect_allowed(
            &https,
            &u("https://evilblobs.example/x"),
            &allowed
        ));
        assert!(!redirect_allowed(
            &https,
            &u("http://cdn.example.net/x"),
            &allowed
        ));
        // http → https on an allowed host: not from https, so refused.
        assert!(!redirect_allowed(
            &http,
            &u("https://cdn.example.net/x"),
            &allowed
        ));
    }
}
