//! Keeping secrets out of messages: URL userinfo, configured tokens and the basic-auth headers
//! built from them are replaced before any git output or URL reaches an error or a log line.

/// What replaces a secret.
const MASK: &str = "<redacted>";

/// Replaces the userinfo of every `scheme://user[:password]@host` in `text`, and every
/// occurrence of one of `secrets` (ignored when shorter than 4 bytes, which would mangle
/// ordinary text without protecting anything).
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = redact_userinfo(text);
    for s in secrets {
        if s.len() >= 4 && out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// `https://user:pw@host/x` → `https://<redacted>@host/x`, for every URL in `text`.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', whitespace, quote or end.
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"' || c == '>')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str(MASK);
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// git's stderr as it goes into an error: redacted, progress lines dropped, at most 20 lines
/// and 2,000 bytes, trailing white space trimmed.
pub(crate) fn trim_stderr(stderr: &[u8], secrets: &[String]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let mut lines: Vec<&str> = text
        .lines()
        .map(|l| l.rsplit('\r').next().unwrap_or(l).trim_end())
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() > 20 {
        lines.drain(..lines.len() - 20);
    }
    let mut joined = redact(&lines.join("\n"), secrets);
    if joined.len() > 2000 {
        let mut cut = joined.len() - 2000;
        while !joined.is_char_boundary(cut) {
            cut += 1;
        }
        joined = format!("…{}", &joined[cut..]);
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_and_secrets() {
        assert_eq!(
            redact(
                "fatal: unable to access 'https://bob:hunter2@git.example.com/x.git/': 403",
                &[]
            ),
            "fatal: unable to access 'https://<redacted>@git.example.com/x.git/': 403"
        );
        assert_eq!(
            redact("ssh://git@host:22/x", &[]),
            "ssh://<redacted>@host:22/x"
        );
        assert_eq!(redact("no url here", &[]), "no url here");
        assert_eq!(
            redact("token abcd1234 leaked", &["abcd1234".into()]),
            "token <redacted> leaked"
        );
        assert_eq!(redact("a b", &["b".into()]), "a b");
    }

    #[test]
    fn stderr_is_trimmed() {
        let s = trim_stderr(
            b"remote: Counting\rremote: Counting objects: 100%\nfatal: bad\n\n",
            &[],
        );
        assert_eq!(s, "remote: Counting objects: 100%\nfatal: bad");
    }
}
