use thiserror::Error;

/// Why a module path, version, escaped string, request or zip was rejected.
///
/// `Display` is a single line meant to be shown to a client as the reason for a 4xx: every string
/// that came from outside is quoted with `{:?}` (so control characters are escaped) and long
/// inputs are shortened before they are stored here.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A module path failed `module.CheckPath`-equivalent validation.
    #[error("malformed module path {path:?}: {reason}")]
    InvalidPath {
        /// The offending path (shortened if very long).
        path: String,
        /// Why it was rejected.
        reason: String,
    },
    /// An import path failed `module.CheckImportPath`-equivalent validation.
    #[error("malformed import path {path:?}: {reason}")]
    InvalidImportPath {
        /// The offending path (shortened if very long).
        path: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A file path failed `module.CheckFilePath`-equivalent validation.
    #[error("malformed file path {path:?}: {reason}")]
    InvalidFilePath {
        /// The offending path (shortened if very long).
        path: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A version is not valid (or not canonical where a canonical one is required), or does not
    /// match its module path's major version.
    #[error("invalid version {version:?}: {reason}")]
    InvalidVersion {
        /// The offending version (shortened if very long).
        version: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A `!`-escaped string could not be unescaped (upper case, bad `!`, non-ASCII).
    #[error("invalid escaped string {input:?}: {reason}")]
    InvalidEscape {
        /// The offending escaped string (shortened if very long).
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A request path is not a GOPROXY protocol path.
    #[error("invalid request path: {reason}")]
    InvalidRequest {
        /// Why it was rejected.
        reason: String,
    },
    /// A module zip violates the module zip rules.
    #[error("invalid module zip: {reason}")]
    InvalidZip {
        /// Why it was rejected.
        reason: String,
    },
    /// A set of files cannot be hashed with the `h1:` dirhash (a name contains a newline).
    #[error("dirhash: {reason}")]
    Dirhash {
        /// Why it could not be hashed.
        reason: String,
    },
    /// Reading the caller's input failed (not a property of the input's content).
    #[error("I/O error while {context}: {reason}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error, as one line.
        reason: String,
    },
}

/// Longest excerpt of an outside string kept in an error, so a 10 KB request path does not turn
/// into a 10 KB response body or log line.
const EXCERPT_MAX: usize = 128;

/// Shortens `s` for use in an error message, cutting on a character boundary.
pub(crate) fn excerpt(s: &str) -> String {
    if s.len() <= EXCERPT_MAX {
        return s.to_string();
    }
    let mut end = EXCERPT_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...({} bytes)", &s[..end], s.len())
}

/// Makes an error message from elsewhere (an I/O or zip library error) safe to embed in a
/// one-line reason.
pub(crate) fn one_line(s: impl std::fmt::Display) -> String {
    let s = s.to_string();
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    excerpt(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_shortens_on_char_boundary() {
        let long = "é".repeat(200);
        let e = excerpt(&long);
        assert!(e.len() < 160, "{e}");
        assert!(e.ends_with("...(400 bytes)"), "{e}");
        assert_eq!(excerpt("short"), "short");
    }

    #[test]
    fn display_is_one_line() {
        let e = Error::InvalidPath {
            path: "a\nb".into(),
            reason: "x".into(),
        };
        assert_eq!(e.to_string(), r#"malformed module path "a\nb": x"#);
        assert_eq!(one_line("a\nb\tc"), "a b c");
    }
}
