//! `!` case-escaping (placeholder, being replaced by the full port).

use crate::Error;

/// Escapes upper case as `!` + lower case.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
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

/// Reverses [`escape`].
pub fn unescape(s: &str) -> Result<String, Error> {
    let bad = |r: &str| Error::InvalidEscape { input: s.into(), reason: r.into() };
    let mut out = String::with_capacity(s.len());
    let mut bang = false;
    for c in s.chars() {
        if !c.is_ascii() || c.is_ascii_uppercase() {
            return Err(bad("upper case or non-ASCII"));
        }
        if bang {
            if !c.is_ascii_lowercase() {
                return Err(bad("! not before a lower-case letter"));
            }
            out.push(c.to_ascii_uppercase());
            bang = false;
        } else if c == '!' {
            bang = true;
        } else {
            out.push(c);
        }
    }
    if bang {
        return Err(bad("trailing !"));
    }
    Ok(out)
}
