//! The raw `!` case-escaping (no validation): the leaf that both the path rules
//! ([`crate::module`]) and the public [`crate::escape`] module build on.

use crate::Error;
use crate::error::excerpt;

/// Escapes upper case as `!` + lower case. Infallible; use
/// [`crate::escape::escape_path`] or [`crate::escape::escape_version`] to validate at the same time.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Reverses [`escape`], rejecting anything [`escape`] could not have produced from an ASCII
/// string without `!`.
pub fn unescape(s: &str) -> Result<String, Error> {
    let bad = |reason: &str| Error::InvalidEscape {
        input: excerpt(s),
        reason: reason.into(),
    };
    let mut out = String::with_capacity(s.len());
    let mut bang = false;
    for c in s.chars() {
        if !c.is_ascii() {
            return Err(bad("non-ASCII character"));
        }
        if bang {
            if !c.is_ascii_lowercase() {
                return Err(bad("'!' not followed by a lower-case letter"));
            }
            out.push(c.to_ascii_uppercase());
            bang = false;
        } else if c == '!' {
            bang = true;
        } else if c.is_ascii_uppercase() {
            return Err(bad("unescaped upper-case letter"));
        } else {
            out.push(c);
        }
    }
    if bang {
        return Err(bad("trailing '!'"));
    }
    Ok(out)
}
