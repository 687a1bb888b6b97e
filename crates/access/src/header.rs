//! Parsing the `Authorization` header the go command sends.
//!
//! The go command sends HTTP basic credentials from `.netrc` (or from a `GOAUTH` command, which
//! may send any header, typically `Authorization: Bearer …`). The HTTP layer hands the raw
//! header value to [`parse_authorization`] and stays thin.

use std::fmt;

use base64::Engine as _;

/// Longest `Authorization` value accepted, in bytes. Real credentials are far shorter; the cap
/// keeps a hostile header from costing a large decode (and later a large hash input).
pub const MAX_AUTHORIZATION_LEN: usize = 4096;

/// Bytes that must not leak into logs or answers (a password or a token).
///
/// `Debug` prints `<redacted>`; there is no `Display`. Read the bytes with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    /// The secret bytes, for hashing or verification only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Credentials a client presented in its `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub enum PresentedCredentials {
    /// `Basic base64(user:password)` (RFC 7617), what `.netrc` produces.
    Basic {
        /// The user name (UTF-8, no `:`).
        user: String,
        /// The password.
        password: Secret,
    },
    /// `Bearer <token>` (RFC 6750).
    Bearer(Secret),
}

impl fmt::Debug for PresentedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PresentedCredentials::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
            PresentedCredentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// Why an `Authorization` header value could not be used. The text is safe to send back in a
/// 401 answer: it never quotes the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The value is longer than [`MAX_AUTHORIZATION_LEN`].
    #[error("Authorization header is too long")]
    TooLong,
    /// A scheme other than Basic or Bearer.
    #[error("unsupported Authorization scheme (use Basic or Bearer)")]
    UnsupportedScheme,
    /// The Basic payload is not base64 of `user:password` in UTF-8 with a non-empty user.
    #[error("malformed Basic credentials")]
    MalformedBasic,
    /// The Bearer token is empty or has characters outside RFC 6750's token68.
    #[error("malformed Bearer token")]
    MalformedBearer,
}

/// Parses an `Authorization` header value into the credentials it carries.
///
/// The scheme is case-insensitive; whitespace around the value is ignored. Basic payloads use
/// the standard base64 alphabet (padding optional); the first `:` separates the user from the
/// password, which may itself contain `:`.
pub fn parse_authorization(value: &str) -> Result<PresentedCredentials, HeaderError> {
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(HeaderError::TooLong);
    }
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        parse_basic(rest)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        parse_bearer(rest)
    } else {
        Err(HeaderError::UnsupportedScheme)
    }
}

fn parse_basic(payload: &str) -> Result<PresentedCredentials, HeaderError> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decoded = engine
        .decode(payload)
        .map_err(|_| HeaderError::MalformedBasic)?;
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or(HeaderError::MalformedBasic)?;
    let user = std::str::from_utf8(&decoded[..colon]).map_err(|_| HeaderError::MalformedBasic)?;
    if user.is_empty() || user.chars().any(char::is_control) {
        return Err(HeaderError::MalformedBasic);
    }
    Ok(PresentedCredentials::Basic {
        user: user.to_string(),
        password: Secret::new(&decoded[colon + 1..]),
    })
}

fn parse_bearer(token: &str) -> Result<PresentedCredentials, HeaderError> {
    let body = token.trim_end_matches('=');
    let token68 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
    if body.is_empty() || !body.bytes().all(token68) {
        return Err(HeaderError::MalformedBearer);
    }
    Ok(PresentedCredentials::Bearer(Secret::new(token.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {b64}")
    }

    #[test]
    fn basic_splits_at_the_first_colon() {
        let got = parse_authorization(&basic("alice", "pa:ss word")).unwrap();
        assert_eq!(
            got,
            PresentedCredentials::Basic {
                user: "alice".into(),
                password: Secret::new("pa:ss word")
            }
        );
    }

    #[test]
    fn scheme_is_case_insensitive_and_padding_optional() {
        // "bob:x" is Ym9iOng= in base64.
        for value in ["basic Ym9iOng=", "BASIC Ym9iOng", "  Basic   Ym9iOng=  "] {
            let got = parse_authorization(value).unwrap();
            assert!(
                matches!(&got, PresentedCredentials::Basic { user, password } if user == "bob" && password.expose() == b"x"),
                "{value}"
            );
        }
    }

    #[test]
    fn empty_password_is_allowed_empty_user_is_not() {
        assert!(parse_authorization(&basic("u", "")).is_ok());
        assert_eq!(
            parse_authorization(&basic("", "p")),
            Err(HeaderError::MalformedBasic)
        );
    }

    #[test]
    fn malformed_values_are_refused() {
        assert_eq!(
            parse_authorization("Basic not*base64"),
            Err(HeaderError::MalformedBasic)
        );
        // base64 of "nocolon"
        assert_eq!(
            parse_authorization("Basic bm9jb2xvbg=="),
            Err(HeaderError::MalformedBasic)
        );
        assert_eq!(
            parse_authorization("Digest username=x"),
            Err(HeaderError::UnsupportedScheme)
        );
        assert_eq!(
            parse_authorization("Bearer "),
            Err(HeaderError::MalformedBearer)
        );
        assert_eq!(
            parse_authorization("Bearer a b"),
            Err(HeaderError::MalformedBearer)
        );
        let long = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_LEN));
        assert_eq!(parse_authorization(&long), Err(HeaderError::TooLong));
    }

    #[test]
    fn bearer_keeps_the_token_and_debug_redacts() {
        let got = parse_authorization("Bearer gmp_abc-DEF_123==").unwrap();
        assert_eq!(
            got,
            PresentedCredentials::Bearer(Secret::new("gmp_abc-DEF_123=="))
        );
        assert_eq!(format!("{got:?}"), "Bearer(<redacted>)");
        let basic = parse_authorization(&basic("alice", "hunter2")).unwrap();
        let shown = format!("{basic:?}");
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
