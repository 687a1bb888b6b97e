//! [`S3Error`]: the source of every [`StorageError::Backend`] this crate returns, with the
//! operation, object, bucket and endpoint, and a classification of what the server (or the
//! network) said.

use std::error::Error as StdError;
use std::fmt;

use gomodproxy_storage::StorageError;
use object_store::client::{HttpError, HttpErrorKind};

/// The `store` name in [`StorageError::Backend`].
pub(crate) const STORE: &str = "s3";

/// What kind of failure an [`S3Error`] is, as far as the server or the network tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum S3ErrorKind {
    /// The options are invalid; nothing was sent.
    Config,
    /// No usable connection to the endpoint: refused, reset, DNS or TLS failure.
    Connection,
    /// The server accepted the connection but did not answer in time.
    Timeout,
    /// The bucket does not exist (`NoSuchBucket`).
    NoSuchBucket,
    /// The server rejected the credentials (`InvalidAccessKeyId`, `SignatureDoesNotMatch`, an
    /// expired token, 401).
    Credentials,
    /// The credentials were accepted but lack a permission (`AccessDenied`, 403).
    AccessDenied,
    /// Anything else: a 5xx after the retries, an unexpected answer, a response that does not
    /// parse, a failed probe.
    Other,
}

impl S3ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            S3ErrorKind::Config => "invalid configuration",
            S3ErrorKind::Connection => "cannot connect to the S3 endpoint",
            S3ErrorKind::Timeout => "the S3 endpoint did not answer in time",
            S3ErrorKind::NoSuchBucket => "the bucket does not exist",
            S3ErrorKind::Credentials => "the S3 endpoint rejected the credentials",
            S3ErrorKind::AccessDenied => "access denied",
            S3ErrorKind::Other => "failed",
        }
    }
}

/// A failure of the S3 backend: what was being done, to which object, in which bucket at which
/// endpoint, the [`S3ErrorKind`], the S3 error code when the server sent one, and the cause.
///
/// Every [`StorageError::Backend`] of this crate has an `S3Error` as its source, so a caller
/// can tell a missing bucket from an unreachable server:
///
/// ```
/// # use gomodproxy_storage::StorageError;
/// # use gomodproxy_storage_s3::{S3Error, S3ErrorKind};
/// fn is_connection_problem(e: &StorageError) -> bool {
///     match e {
///         StorageError::Backend { source, .. } => source
///             .downcast_ref::<S3Error>()
///             .is_some_and(|e| matches!(e.kind(), S3ErrorKind::Connection | S3ErrorKind::Timeout)),
///         _ => false,
///     }
/// }
/// ```
#[derive(Debug)]
pub struct S3Error(Box<Details>);

/// Boxed so that results carrying an [`S3Error`] stay small.
#[derive(Debug)]
struct Details {
    kind: S3ErrorKind,
    op: &'static str,
    object: Option<String>,
    bucket: String,
    endpoint: String,
    code: Option<String>,
    /// The cause as text: the `object_store` error chain, condensed (XML bodies reduced to code
    /// and message). Shown by `Display`, which is what most logs print.
    detail: String,
    source: Option<object_store::Error>,
}

impl S3Error {
    /// A configuration error (nothing was sent).
    pub(crate) fn config(bucket: &str, message: String) -> Self {
        S3Error(Box::new(Details {
            kind: S3ErrorKind::Config,
            op: "configure",
            object: None,
            bucket: bucket.to_string(),
            endpoint: String::new(),
            code: None,
            detail: message,
            source: None,
        }))
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> S3ErrorKind {
        self.0.kind
    }

    /// The operation: `open`, `put`, `get`, `read`, `head`, `delete`, `list`, `check`, ...
    pub fn operation(&self) -> &'static str {
        self.0.op
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.0.bucket
    }

    /// The endpoint requests went to (empty for a configuration error).
    pub fn endpoint(&self) -> &str {
        &self.0.endpoint
    }

    /// The S3 error code of the server's answer (`NoSuchBucket`, `AccessDenied`, ...), if any.
    pub fn s3_code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }

    /// The underlying `object_store` error, if the failure came from a request.
    pub fn object_store_error(&self) -> Option<&object_store::Error> {
        self.0.source.as_ref()
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.kind == S3ErrorKind::Config {
            return write!(
                f,
                "invalid S3 configuration (bucket {:?}): {}",
                self.0.bucket, self.0.detail
            );
        }
        write!(f, "{}", self.0.op)?;
        if let Some(object) = &self.0.object {
            write!(f, " {object}")?;
        }
        write!(
            f,
            " (bucket {:?} at {}): {}",
            self.0.bucket,
            self.0.endpoint,
            self.0.kind.describe()
        )?;
        if let Some(code) = &self.0.code {
            write!(f, " [{code}]")?;
        }
        if !self.0.detail.is_empty() {
            write!(f, ": {}", self.0.detail)?;
        }
        Ok(())
    }
}

// The cause is part of the message (most logs print only `Display`), so `source()` stays `None`
// to keep chains from printing it twice; `object_store_error()` gives access to it.
impl StdError for S3Error {}

impl From<S3Error> for StorageError {
    fn from(e: S3Error) -> Self {
        StorageError::backend(STORE, e)
    }
}

/// Where requests go: what every error names.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub bucket: String,
    pub endpoint: String,
}

impl Target {
    /// An error of a request, classified from the `object_store` error.
    pub fn error(&self, op: &'static str, object: Option<&str>, e: object_store::Error) -> S3Error {
        let code = s3_code(&e);
        let kind = classify(&e, code.as_deref());
        S3Error(Box::new(Details {
            kind,
            op,
            object: object.map(str::to_string),
            bucket: self.bucket.clone(),
            endpoint: self.endpoint.clone(),
            code,
            detail: condensed_chain(&e),
            source: Some(e),
        }))
    }

    /// An error found by this crate rather than reported by a request.
    pub fn failure(
        &self,
        op: &'static str,
        object: Option<&str>,
        kind: S3ErrorKind,
        detail: String,
    ) -> S3Error {
        S3Error(Box::new(Details {
            kind,
            op,
            object: object.map(str::to_string),
            bucket: self.bucket.clone(),
            endpoint: self.endpoint.clone(),
            code: None,
            detail,
            source: None,
        }))
    }

    /// [`Target::error`] as a [`StorageError::Backend`].
    pub fn backend(&self, op: &'static str, object: &str, e: object_store::Error) -> StorageError {
        self.error(op, Some(object), e).into()
    }
}

/// The S3 error code (`<Code>…</Code>` of the XML error body) somewhere in the error chain.
pub(crate) fn s3_code(e: &(dyn StdError + 'static)) -> Option<String> {
    chain(e).find_map(|level| xml_element(&level.to_string(), "Code"))
}

fn xml_element(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&close)?;
    let value = text[start..start + len].trim();
    (!value.is_empty()).then(|| value.to_string())
}

fn chain<'a>(
    e: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(e), |&e: &&'a (dyn StdError + 'static)| e.source())
}

fn classify(e: &object_store::Error, code: Option<&str>) -> S3ErrorKind {
    match code {
        Some("NoSuchBucket") => return S3ErrorKind::NoSuchBucket,
        Some(
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "InvalidToken"
            | "TokenRefreshRequired"
            | "AuthorizationHeaderMalformed"
            | "InvalidClientTokenId",
        ) => return S3ErrorKind::Credentials,
        Some("AccessDenied" | "AllAccessDisabled" | "AccountProblem") => {
            return S3ErrorKind::AccessDenied;
        }
        _ => {}
    }
    for level in chain(e) {
        if let Some(http) = level.downcast_ref::<HttpError>() {
            match http.kind() {
                HttpErrorKind::Connect | HttpErrorKind::Request | HttpErrorKind::Interrupted => {
                    return S3ErrorKind::Connection;
                }
                HttpErrorKind::Timeout => return S3ErrorKind::Timeout,
                _ => {}
            }
        }
    }
    match e {
        object_store::Error::Unauthenticated { .. } => S3ErrorKind::Credentials,
        object_store::Error::PermissionDenied { .. } => S3ErrorKind::AccessDenied,
        _ => S3ErrorKind::Other,
    }
}

/// The error chain as one line: each level that adds something to the one before (object_store
/// repeats its causes in its messages), with XML error bodies reduced to their code and message.
pub(crate) fn condensed_chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for level in chain(e) {
        let text = condense_xml(&level.to_string());
        if parts.last().is_some_and(|prev| prev.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

fn condense_xml(text: &str) -> String {
    let Some(start) = text.find("<?xml").or_else(|| text.find("<Error>")) else {
        return text.to_string();
    };
    let head = text[..start].trim_end();
    let body = &text[start..];
    match (xml_element(body, "Code"), xml_element(body, "Message")) {
        (Some(code), Some(message)) => format!("{head} {code}: {message}"),
        (Some(code), None) => format!("{head} {code}"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_bodies_are_condensed() {
        let text = "Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\" \
                    encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code><Message>The specified \
                    bucket does not exist</Message><BucketName>b</BucketName></Error>";
        assert_eq!(
            condense_xml(text),
            "Server returned non-2xx status code: 404 Not Found: NoSuchBucket: The specified bucket does not exist"
        );
        assert_eq!(xml_element(text, "Code").as_deref(), Some("NoSuchBucket"));
        assert_eq!(condense_xml("no xml here"), "no xml here");
    }

    #[test]
    fn display_names_operation_object_bucket_and_endpoint() {
        let target = Target {
            bucket: "b".into(),
            endpoint: "http://127.0.0.1:9".into(),
        };
        let e = target.failure(
            "check",
            Some("x/.probe"),
            S3ErrorKind::Other,
            "read back 3 bytes".into(),
        );
        assert_eq!(
            e.to_string(),
            "check x/.probe (bucket \"b\" at http://127.0.0.1:9): failed: read back 3 bytes"
        );
        let e = S3Error::config("b", "no bucket configured".into());
        assert_eq!(
            e.to_string(),
            "invalid S3 configuration (bucket \"b\"): no bucket configured"
        );
    }
}
