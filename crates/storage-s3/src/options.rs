//! [`S3Options`]: what an [`S3Storage`](crate::S3Storage) connects to and how, and how missing
//! fields are filled from the usual AWS environment variables; the server's `[storage.s3]`
//! section.

use std::fmt;
use std::time::Duration;

use crate::error::S3Error;

const MIB: usize = 1024 * 1024;

/// The smallest part S3 accepts in a multipart upload (except the last part).
pub const MIN_PART_SIZE: usize = 5 * MIB;

/// The largest part (and the largest single PUT) S3 accepts.
pub const MAX_PART_SIZE: usize = 5 * 1024 * MIB;

/// The region used when neither the options nor the environment name one. MinIO and most other
/// S3-compatible servers accept it whatever their own region setting.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Configuration of an [`S3Storage`](crate::S3Storage).
///
/// A plain struct: build it with struct update syntax so that fields added later get their
/// defaults, e.g. for a local MinIO:
///
/// ```
/// use gomodproxy_storage_s3::S3Options;
///
/// let options = S3Options {
///     bucket: "gomodproxy".into(),
///     endpoint: Some("http://127.0.0.1:9000".into()),
///     allow_http: true,
///     access_key_id: Some("gomodproxy".into()),
///     secret_access_key: Some("change-me-secret".into()),
///     key_prefix: "cache".into(),
///     ..S3Options::default()
/// };
/// // Debug output never shows the secrets.
/// assert!(!format!("{options:?}").contains("change-me-secret"));
/// ```
///
/// # Environment fallbacks
/// Fields left `None` are read from the environment when the store is opened, the way the AWS
/// tools do; an empty variable counts as unset:
///
/// | field | variables, in order |
/// |---|---|
/// | `endpoint` | `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL` (else the AWS endpoint of the region) |
/// | `region` | `AWS_REGION`, `AWS_DEFAULT_REGION` (else [`DEFAULT_REGION`]) |
/// | `access_key_id`, `secret_access_key`, `session_token` | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` |
///
/// The three credential fields go together: when `access_key_id` or `secret_access_key` is set
/// in the options, no credential variable is read (not even `AWS_SESSION_TOKEN`), so keys from
/// two sources are never mixed. When neither the options nor the environment hold keys, the
/// store uses the AWS default credential providers of `object_store`, which read
/// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (+ `AWS_ROLE_SESSION_NAME`,
/// `AWS_ENDPOINT_URL_STS`; EKS service accounts), `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or
/// `AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (ECS/EKS pod
/// identity), and otherwise the EC2 instance metadata service. No other `AWS_*` variable is
/// read: `allow_http` and the addressing style are never taken from the environment.
///
/// # Configuration
/// With the `serde` feature it deserializes itself under the names of its fields, durations as
/// humantime strings (`"30s"`). The optional strings are plain strings there, empty for `None`
/// (`endpoint = ""`: AWS); `virtual_hosted_style` is left out for `None`. A key it does not have
/// is an error, a key left out keeps its default; [`retry_timeout`](Self::retry_timeout) is not a
/// configuration key. [`S3Options::redacted`] is the copy to print.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(default, deny_unknown_fields)
)]
pub struct S3Options {
    /// The bucket. Required; it must already exist ([`S3Storage::open`](crate::S3Storage::open)
    /// checks).
    pub bucket: String,
    /// The S3 API endpoint, e.g. `http://127.0.0.1:9000` for MinIO; `None` for AWS (its regional
    /// endpoint). See the environment fallbacks above.
    #[cfg_attr(feature = "serde", serde(with = "empty_is_none"))]
    pub endpoint: Option<String>,
    /// The region requests are signed for. See the environment fallbacks above.
    #[cfg_attr(feature = "serde", serde(with = "empty_is_none"))]
    pub region: Option<String>,
    /// Access key id of static credentials.
    #[cfg_attr(feature = "serde", serde(with = "empty_is_none"))]
    pub access_key_id: Option<String>,
    /// Secret access key of static credentials. Never printed.
    #[cfg_attr(feature = "serde", serde(with = "empty_is_none"))]
    pub secret_access_key: Option<String>,
    /// Session token of temporary static credentials. Never printed.
    #[cfg_attr(feature = "serde", serde(with = "empty_is_none"))]
    pub session_token: Option<String>,
    /// Permit an `http://` endpoint (local MinIO, tests). Default `false`: only `https://`.
    pub allow_http: bool,
    /// `Some(true)`: virtual-hosted-style URLs (`https://bucket.host/key`; a custom `endpoint`
    /// must then include the bucket); `Some(false)`: path-style URLs (`https://host/bucket/key`).
    /// Default `None`: virtual-hosted for AWS (no endpoint), path-style for a custom endpoint,
    /// which is what MinIO and most S3-compatible servers expect.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub virtual_hosted_style: Option<bool>,
    /// A prefix under which every object is stored (`<key_prefix>/<Key::path()>`), so that one
    /// bucket can hold other data or several caches. Leading and trailing `/` are ignored;
    /// empty (the default) stores keys at the top of the bucket.
    pub key_prefix: String,
    /// How long to wait for a TCP (and TLS) connection. Default 5 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub connect_timeout: Duration,
    /// The longest S3 may stay silent: the time from sending a request (including uploading its
    /// body, at most one part) until its response headers arrive, and then between two chunks of
    /// a response body. Default 30 s. There is deliberately no limit on a whole request: a
    /// 500 MiB zip may take minutes to stream to a slow client. A body reader that pauses longer
    /// than this between two reads gets a timeout error from the stream.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub request_timeout: Duration,
    /// How often a failed request is retried (connection errors, 5xx, 429 and, for idempotent
    /// requests, timeouts), with exponential backoff from 100 ms. Default 3.
    pub max_retries: usize,
    /// No retry starts later than this after the first attempt of a request. Default 15 s.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub retry_timeout: Duration,
    /// Size of the parts of a multipart upload, and the size up to which a streamed payload is
    /// buffered and sent as one PUT. Between [`MIN_PART_SIZE`] (5 MiB) and [`MAX_PART_SIZE`].
    /// Default 8 MiB.
    pub part_size: usize,
    /// How many parts of one upload are sent at once. A `put` holds at most
    /// `part_size * (upload_concurrency + 1)` bytes of its payload in memory. Default 2.
    pub upload_concurrency: usize,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            bucket: String::new(),
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            allow_http: false,
            virtual_hosted_style: None,
            key_prefix: String::new(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_retries: 3,
            retry_timeout: Duration::from_secs(15),
            part_size: 8 * MIB,
            upload_concurrency: 2,
        }
    }
}

/// Shows whether a secret is set, never its value.
fn redacted(value: &Option<String>) -> Option<&'static str> {
    value.as_ref().map(|_| HIDDEN)
}

impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Options")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &redacted(&self.secret_access_key))
            .field("session_token", &redacted(&self.session_token))
            .field("allow_http", &self.allow_http)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_timeout", &self.retry_timeout)
            .field("part_size", &self.part_size)
            .field("upload_concurrency", &self.upload_concurrency)
            .finish()
    }
}

/// What [`S3Options::redacted`] shows instead of a secret.
const HIDDEN: &str = "<redacted>";

/// Why [`S3Options`] cannot be used, found without the environment ([`S3Options::validate`];
/// opening the store checks more, once the environment is applied). `Display` says what is
/// wrong with the setting that [`S3OptionsError::key`] names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum S3OptionsError {
    /// No `bucket`.
    #[error("is required with storage.type = \"s3\"")]
    NoBucket,
    /// `endpoint` is neither `http://` nor `https://`.
    #[error("want an http:// or https:// URL")]
    EndpointScheme,
    /// An `http://` endpoint without `allow_http` (the endpoint shown redacted).
    #[error("must be true for the http:// endpoint {endpoint}")]
    HttpNotAllowed {
        /// The endpoint, its credentials redacted.
        endpoint: String,
    },
    /// `part_size` below [`MIN_PART_SIZE`].
    #[error("must be at least {MIN_PART_SIZE} bytes")]
    PartSizeTooSmall,
}

impl S3OptionsError {
    /// The key of the offending setting, as the configuration spells it (the field's name).
    pub fn key(&self) -> &'static str {
        match self {
            S3OptionsError::NoBucket => "bucket",
            S3OptionsError::EndpointScheme => "endpoint",
            S3OptionsError::HttpNotAllowed { .. } => "allow_http",
            S3OptionsError::PartSizeTooSmall => "part_size",
        }
    }
}

impl S3Options {
    /// Checks what can be checked without the environment, for a configuration loader to name
    /// the key before anything is opened. [`S3Storage::open`](crate::S3Storage::open) checks
    /// every field once the environment is applied.
    pub fn validate(&self) -> Result<(), S3OptionsError> {
        if self.bucket.is_empty() {
            return Err(S3OptionsError::NoBucket);
        }
        if let Some(endpoint) = self.endpoint.as_deref().filter(|e| !e.is_empty()) {
            if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
                return Err(S3OptionsError::EndpointScheme);
            }
            if endpoint.starts_with("http://") && !self.allow_http {
                return Err(S3OptionsError::HttpNotAllowed {
                    endpoint: gomodproxy_redact::url(endpoint),
                });
            }
        }
        if self.part_size < MIN_PART_SIZE {
            return Err(S3OptionsError::PartSizeTooSmall);
        }
        Ok(())
    }

    /// A copy to print: the secret key and session token replaced by `<redacted>` when set, and
    /// the endpoint's credentials redacted.
    pub fn redacted(&self) -> S3Options {
        let hide = |secret: &Option<String>| secret.as_ref().map(|_| HIDDEN.to_string());
        S3Options {
            endpoint: self.endpoint.as_deref().map(gomodproxy_redact::url),
            secret_access_key: hide(&self.secret_access_key),
            session_token: hide(&self.session_token),
            ..self.clone()
        }
    }
}

/// The optional strings in the configuration: a plain string, empty for `None`.
#[cfg(feature = "serde")]
mod empty_is_none {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<String>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(value.as_deref().unwrap_or(""))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Some(String::deserialize(d)?).filter(|v| !v.is_empty()))
    }
}

/// Where the credentials came from, for `Debug` and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CredentialSource {
    /// `access_key_id`/`secret_access_key` of the options.
    Options,
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`.
    Environment,
    /// object_store's providers: web identity, container credentials, instance metadata.
    DefaultChain,
}

/// Static credentials, when there are any.
#[derive(Clone)]
pub(crate) struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// The options with the environment applied and every field checked.
#[derive(Clone)]
pub(crate) struct Resolved {
    pub bucket: String,
    /// `None`: the AWS endpoint of the region.
    pub endpoint: Option<String>,
    pub region: String,
    pub credentials: Option<StaticCredentials>,
    pub credential_source: CredentialSource,
    /// Variables of object_store's default credential providers that are set, as
    /// `(lower-case name, value)` for `AmazonS3Builder::with_config`.
    pub provider_env: Vec<(&'static str, String)>,
    pub allow_http: bool,
    pub virtual_hosted_style: bool,
    /// Without leading or trailing `/`; empty for none.
    pub key_prefix: String,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_retries: usize,
    pub retry_timeout: Duration,
    pub part_size: usize,
    pub upload_concurrency: usize,
}

impl Resolved {
    /// The endpoint as shown in messages: the configured one, or the AWS endpoint requests go to.
    pub fn endpoint_display(&self) -> String {
        match (&self.endpoint, self.virtual_hosted_style) {
            (Some(endpoint), _) => endpoint.clone(),
            (None, true) => format!("https://{}.s3.{}.amazonaws.com", self.bucket, self.region),
            (None, false) => format!("https://s3.{}.amazonaws.com", self.region),
        }
    }
}

/// Environment variables of object_store's default credential providers that are passed
/// through when no static credentials are configured.
const PROVIDER_VARIABLES: [&str; 7] = [
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL_STS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

impl S3Options {
    /// Applies the environment (through `env`, so tests need not change the process's) and checks
    /// every field.
    pub(crate) fn resolve(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Resolved, S3Error> {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let invalid = |message: String| S3Error::config(&self.bucket, message);

        let bucket = self.bucket.trim().to_string();
        if bucket.is_empty() {
            return Err(invalid("no bucket configured".into()));
        }
        if bucket.contains('/') || bucket.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(format!(
                "bucket name {bucket:?} must not contain '/', spaces or control characters"
            )));
        }

        let endpoint = self
            .endpoint
            .clone()
            .filter(|e| !e.is_empty())
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .map(|e| e.trim_end_matches('/').to_string());
        if let Some(endpoint) = &endpoint {
            if endpoint.starts_with("http://") {
                if !self.allow_http {
                    return Err(invalid(format!(
                        "endpoint {endpoint} is plain http but allow_http is false; set allow_http = true \
                         for a local server or use an https:// endpoint"
                    )));
                }
            } else if !endpoint.starts_with("https://") {
                return Err(invalid(format!(
                    "endpoint {endpoint:?} must start with https:// (or http:// with allow_http)"
                )));
            }
        }

        let region = self
            .region
            .clone()
            .filter(|r| !r.is_empty())
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| DEFAULT_REGION.to_string());

        let (credentials, credential_source) = match (&self.access_key_id, &self.secret_access_key)
        {
            (Some(id), Some(secret)) => (
                Some(StaticCredentials {
                    access_key_id: id.clone(),
                    secret_access_key: secret.clone(),
                    session_token: self.session_token.clone(),
                }),
                CredentialSource::Options,
            ),
            (Some(_), None) => {
                return Err(invalid(
                    "access_key_id is set but secret_access_key is not".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "secret_access_key is set but access_key_id is not".into(),
                ));
            }
            (None, None) if self.session_token.is_some() => {
                return Err(invalid(
                    "session_token is set but access_key_id and secret_access_key are not".into(),
                ));
            }
            (None, None) => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                (Some(id), Some(secret)) => (
                    Some(StaticCredentials {
                        access_key_id: id,
                        secret_access_key: secret,
                        session_token: env("AWS_SESSION_TOKEN"),
                    }),
                    CredentialSource::Environment,
                ),
                (Some(_), None) => {
                    return Err(invalid(
                        "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into(),
                    ));
                }
                (None, Some(_)) => {
                    return Err(invalid(
                        "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not".into(),
                    ));
                }
                (None, None) => (None, CredentialSource::DefaultChain),
            },
        };
        let provider_env = if credentials.is_none() {
            PROVIDER_VARIABLES
                .iter()
                .filter_map(|&name| env(name).map(|value| (name, value)))
                .collect()
        } else {
            Vec::new()
        };

        let key_prefix = normalize_prefix(&self.key_prefix).map_err(|e| invalid(e.to_string()))?;

        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return Err(invalid(format!(
                "part_size {} is outside the range S3 accepts ({MIN_PART_SIZE}..={MAX_PART_SIZE} bytes)",
                self.part_size
            )));
        }
        if self.upload_concurrency == 0 {
            return Err(invalid("upload_concurrency must be at least 1".into()));
        }
        for (name, value) in [
            ("connect_timeout", self.connect_timeout),
            ("request_timeout", self.request_timeout),
        ] {
            if value.is_zero() {
                return Err(invalid(format!("{name} must be greater than zero")));
            }
        }

        Ok(Resolved {
            bucket,
            virtual_hosted_style: self.virtual_hosted_style.unwrap_or(endpoint.is_none()),
            endpoint,
            region,
            credentials,
            credential_source,
            provider_env,
            allow_http: self.allow_http,
            key_prefix,
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
            part_size: self.part_size,
            upload_concurrency: self.upload_concurrency,
        })
    }
}

/// Why a `key_prefix` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum PrefixError {
    #[error("key_prefix {0:?} has an empty, '.' or '..' element")]
    BadElement(String),
    #[error("key_prefix {0:?} contains a control character")]
    ControlCharacter(String),
}

/// Strips leading and trailing `/` and checks the elements: object_store's `Path` rejects empty
/// elements, `.`, `..` and control characters, and a prefix must not hide our own names.
fn normalize_prefix(prefix: &str) -> Result<String, PrefixError> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for element in trimmed.split('/') {
        if element.is_empty() || element == "." || element == ".." {
            return Err(PrefixError::BadElement(prefix.to_string()));
        }
        if element.chars().any(|c| c.is_control()) {
            return Err(PrefixError::ControlCharacter(prefix.to_string()));
        }
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn base() -> S3Options {
        S3Options {
            bucket: "b".into(),
            ..S3Options::default()
        }
    }

    #[test]
    fn options_win_over_the_environment() {
        let env = env_of(&[
            ("AWS_ENDPOINT_URL", "https://env.example"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "ENVKEY"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
            ("AWS_SESSION_TOKEN", "envtoken"),
        ]);
        let r = S3Options {
            endpoint: Some("http://127.0.0.1:9000/".into()),
            allow_http: true,
            region: Some("us-west-2".into()),
            access_key_id: Some("OPTKEY".into()),
            secret_access_key: Some("optsecret".into()),
            ..base()
        }
        .resolve(env)
        .unwrap();
        assert_eq!(r.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(r.region, "us-west-2");
        let c = r.credentials.unwrap();
        assert_eq!(c.access_key_id, "OPTKEY");
        // Keys from the options never pick up the environment's session token.
        assert_eq!(c.session_token, None);
        assert_eq!(r.credential_source, CredentialSource::Options);
        assert!(!r.virtual_hosted_style, "custom endpoint: path style");
    }

    #[test]
    fn the_environment_fills_missing_fields() {
        let env = env_of(&[
            ("AWS_ENDPOINT_URL", "https://generic.example"),
            ("AWS_ENDPOINT_URL_S3", "https://s3.example"),
            ("AWS_DEFAULT_REGION", "eu-central-1"),
            ("AWS_ACCESS_KEY_ID", "ENVKEY"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
            ("AWS_SESSION_TOKEN", "envtoken"),
            ("AWS_ROLE_ARN", "arn:ignored-with-static-keys"),
        ]);
        let r = base().resolve(env).unwrap();
        assert_eq!(r.endpoint.as_deref(), Some("https://s3.example"));
        assert_eq!(r.region, "eu-central-1");
        let c = r.credentials.unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.session_token.as_deref()),
            ("ENVKEY", Some("envtoken"))
        );
        assert_eq!(r.credential_source, CredentialSource::Environment);
        assert!(r.provider_env.is_empty());
    }

    #[test]
    fn aws_defaults_without_endpoint() {
        let r = base()
            .resolve(env_of(&[
                ("AWS_REGION", ""),
                ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
            ]))
            .unwrap();
        assert_eq!(r.region, DEFAULT_REGION);
        assert!(r.virtual_hosted_style);
        assert_eq!(r.endpoint_display(), "https://b.s3.us-east-1.amazonaws.com");
        assert_eq!(r.credential_source, CredentialSource::DefaultChain);
        assert_eq!(
            r.provider_env,
            vec![
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token".to_string()),
                ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r".to_string())
            ]
        );
    }

    #[test]
    fn invalid_options_are_rejected_with_reasons() {
        let none = env_of(&[]);
        let cases: Vec<(S3Options, &str)> = vec![
            (S3Options::default(), "no bucket"),
            (
                S3Options {
                    bucket: "a/b".into(),
                    ..base()
                },
                "must not contain",
            ),
            (
                S3Options {
                    endpoint: Some("http://127.0.0.1:9000".into()),
                    ..base()
                },
                "allow_http",
            ),
            (
                S3Options {
                    endpoint: Some("127.0.0.1:9000".into()),
                    ..base()
                },
                "must start with https://",
            ),
            (
                S3Options {
                    access_key_id: Some("k".into()),
                    ..base()
                },
                "secret_access_key is not",
            ),
            (
                S3Options {
                    key_prefix: "a//b".into(),
                    ..base()
                },
                "key_prefix",
            ),
            (
                S3Options {
                    key_prefix: "a/../b".into(),
                    ..base()
                },
                "key_prefix",
            ),
            (
                S3Options {
                    part_size: 1024 * 1024,
                    ..base()
                },
                "part_size",
            ),
            (
                S3Options {
                    upload_concurrency: 0,
                    ..base()
                },
                "upload_concurrency",
            ),
            (
                S3Options {
                    request_timeout: Duration::ZERO,
                    ..base()
                },
                "request_timeout",
            ),
        ];
        for (options, want) in cases {
            let err = match options.resolve(&none) {
                Ok(_) => panic!("{options:?} was accepted"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(want), "{err:?} does not mention {want:?}");
        }
        let err = base()
            .resolve(env_of(&[("AWS_ACCESS_KEY_ID", "k")]))
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("AWS_SECRET_ACCESS_KEY is not")),
            "{err:?}"
        );
    }

    #[test]
    fn key_prefix_is_normalized() {
        let none = env_of(&[]);
        for (given, want) in [("", ""), ("/", ""), ("/a/b/", "a/b"), ("cache", "cache")] {
            let r = S3Options {
                key_prefix: given.into(),
                ..base()
            }
            .resolve(&none)
            .unwrap();
            assert_eq!(r.key_prefix, want, "key_prefix {given:?}");
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let options = S3Options {
            access_key_id: Some("AKIAEXAMPLE".into()),
            secret_access_key: Some("very-secret".into()),
            session_token: Some("session-secret".into()),
            ..base()
        };
        let shown = format!("{options:?}");
        assert!(!shown.contains("very-secret") && !shown.contains("session-secret"));
        assert!(shown.contains("<redacted>"));
    }
}
