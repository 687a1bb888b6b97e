//! GOPRIVATE-style module path patterns (`module.MatchPrefixPatterns` and Go's `path.Match`).
//!
//! A pattern list is comma-separated; empty entries and a trailing `/` on an entry are
//! ignored. A pattern with N slashes is matched with `path.Match` against the first N+1 path
//! elements of the target, so every pattern is a prefix match by whole elements: `rsc.io`
//! matches `rsc.io/quote/v3`, `*/quote` matches it too, but `*/v3` and `rsc` do not. `*`
//! never crosses a `/`; there is no `**`.

/// Reports whether any pattern in the comma-separated `patterns` matches a prefix of `target`
/// made of whole path elements (`module.MatchPrefixPatterns`). Malformed patterns match
/// nothing.
pub fn match_prefix_patterns(patterns: &str, target: &str) -> bool {
    for glob in patterns.split(',') {
        let glob = glob.strip_suffix('/').unwrap_or(glob);
        if glob.is_empty() {
            continue;
        }
        let slashes = glob.bytes().filter(|&b| b == b'/').count();
        // The first slashes+1 elements of target, if it has that many.
        let mut end = 0;
        let mut have = 0;
        for (i, elem) in target.split('/').take(slashes + 1).enumerate() {
            end += elem.len() + usize::from(i > 0);
            have += 1;
        }
        if have < slashes + 1 {
            continue;
        }
        if path_match(glob, &target[..end]) == Ok(true) {
            return true;
        }
    }
    false
}

/// A pattern that `path.Match` reports as malformed (`path.ErrBadPattern`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPattern;

/// Go's `path.Match`: reports whether `name` matches the shell pattern `pattern`.
///
/// `*` matches any run of non-`/` characters, `?` one non-`/` character, `[...]` a character
/// class (`^` negates, `a-z` ranges), and `\` escapes the next character. The whole name must
/// match. Errors only for malformed patterns, as Go does (including, like Go, for a malformed
/// tail of a pattern that already failed to match).
pub fn path_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let mut pattern = pattern.as_bytes();
    let mut name = name.as_bytes();
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing * matches the rest of the name unless it has a /.
            return Ok(!name.contains(&b'/'));
        }
        let first = match_chunk(chunk, name);
        if let Ok(Some(t)) = first
            && (t.is_empty() || !pattern.is_empty())
        {
            name = t;
            continue;
        }
        first?;
        if star {
            // Let the star absorb 1, 2, … bytes, never a /.
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                match match_chunk(chunk, &name[i + 1..])? {
                    Some(t) if pattern.is_empty() && !t.is_empty() => {}
                    Some(t) => {
                        name = t;
                        continue 'pattern;
                    }
                    None => {}
                }
                i += 1;
            }
        }
        // No match; still report a malformed remainder as Go does.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off leading stars and the chunk up to the next star outside a class.
fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let [b'*', rest @ ..] = pattern {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            // Skip the escaped byte (a trailing \ is reported by match_chunk).
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => return (star, &pattern[..i], &pattern[i..]),
            _ => {}
        }
        i += 1;
    }
    (star, pattern, &[])
}

/// Matches `chunk` (no unescaped stars) against the start of `s`; `Ok(Some(rest))` on a match.
/// After a mismatch the rest of the chunk is still parsed so malformed patterns are reported.
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<Option<&'a [u8]>, BadPattern> {
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        failed = failed || s.is_empty();
        match c {
            b'[' => {
                let mut r = '\0';
                if !failed {
                    let (ch, n) = decode_rune(s);
                    r = ch;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let mut negated = false;
                if chunk.first() == Some(&b'^') {
                    negated = true;
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    matched = matched || (lo <= r && r <= hi);
                    ranges += 1;
                }
                failed = failed || matched == negated;
            }
            b'?' => {
                if !failed {
                    failed = s[0] == b'/';
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(BadPattern);
                    }
                }
                if !failed {
                    failed = chunk[0] != s[0];
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok((!failed).then_some(s))
}

/// One possibly escaped character of a class, and the rest of the chunk (which must not be
/// empty: the class still needs its `]`).
fn get_esc(chunk: &[u8]) -> Result<(char, &[u8]), BadPattern> {
    let mut chunk = match chunk.first() {
        None | Some(b'-') | Some(b']') => return Err(BadPattern),
        Some(_) => chunk,
    };
    if chunk[0] == b'\\' {
        chunk = &chunk[1..];
        if chunk.is_empty() {
            return Err(BadPattern);
        }
    }
    let (r, n) = decode_rune(chunk);
    if r == char::REPLACEMENT_CHARACTER && n == 1 {
        return Err(BadPattern);
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((r, rest))
}

/// Decodes the first UTF-8 character of a non-empty slice like Go's
/// `utf8.DecodeRuneInString`: an invalid byte decodes as U+FFFD of width 1.
fn decode_rune(s: &[u8]) -> (char, usize) {
    let end = s.len().min(4);
    let valid = match std::str::from_utf8(&s[..end]) {
        Ok(v) => v,
        Err(e) => std::str::from_utf8(&s[..e.valid_up_to()]).unwrap_or(""),
    };
    match valid.chars().next() {
        Some(c) => (c, c.len_utf8()),
        None => (char::REPLACEMENT_CHARACTER, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_vectors() {
        assert!(match_prefix_patterns("*/quote", "rsc.io/quote/v3"));
        assert!(!match_prefix_patterns("*/v3", "rsc.io/quote/v3"));
        assert!(!match_prefix_patterns("rsc", "rsc.io/quote"));
        assert!(match_prefix_patterns("rsc*", "rsc.io/quote"));
        assert!(match_prefix_patterns("rsc.io", "rsc.io/quote/v3"));
    }

    #[test]
    fn pattern_lists() {
        let cases: &[(&str, &str, bool)] = &[
            ("", "rsc.io/quote", false),
            (",", "rsc.io/quote", false),
            ("example.com,rsc.io", "rsc.io/quote", true),
            ("example.com,,rsc.io/", "rsc.io/quote", true),
            ("rsc.io/quote", "rsc.io/quote", true),
            ("rsc.io/quote", "rsc.io/quotes", false),
            ("rsc.io/quote/v3/x", "rsc.io/quote/v3", false),
            ("*.corp.example.com", "git.corp.example.com/team/repo", true),
            ("*.corp.example.com", "corp.example.com/team/repo", false),
            ("github.com/acme/*", "github.com/acme/tools/cmd", true),
            ("github.com/acme/*", "github.com/acme", false),
            ("github.com/ac?e", "github.com/acme/x", true),
            ("github.com/[a-c]cme", "github.com/acme/x", true),
            ("github.com/[^a-c]cme", "github.com/acme/x", false),
            ("github.com/[", "github.com/[", false),
            ("*", "anything.example/at/all", true),
            ("**", "rsc.io/quote", true),
            ("*/*/*/*", "rsc.io/quote", false),
        ];
        for (patterns, target, want) in cases {
            assert_eq!(
                match_prefix_patterns(patterns, target),
                *want,
                "match_prefix_patterns({patterns:?}, {target:?})"
            );
        }
    }

    #[test]
    fn path_match_table() {
        // (pattern, name, result) in the spirit of Go's path/match_test.go.
        let ok: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[\\-x]", "-", true),
            ("[\\-x]", "a", false),
            ("*x", "xxx", true),
        ];
        for (p, n, want) in ok {
            assert_eq!(path_match(p, n), Ok(*want), "path_match({p:?}, {n:?})");
        }
        let bad: &[(&str, &str)] = &[
            ("[]a]", "]"),
            ("[-]", "-"),
            ("[x-]", "x"),
            ("[x-]", "-"),
            ("[x-]", "z"),
            ("[-x]", "x"),
            ("[-x]", "-"),
            ("[-x]", "a"),
            ("\\", "a"),
            ("[a-b-c]", "a"),
            ("[", "a"),
            ("[^", "a"),
            ("[^bc", "a"),
            ("a[", "a"),
            ("a[", "ab"),
            ("a[", "x"),
            ("a/b[", "x"),
            ("*x[", "a"),
        ];
        for (p, n) in bad {
            assert_eq!(
                path_match(p, n),
                Err(BadPattern),
                "path_match({p:?}, {n:?})"
            );
        }
    }
}
