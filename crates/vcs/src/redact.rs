//! Keeping secrets out of messages: URL userinfo, configured tokens and the basic-auth headers
//! built from them are replaced before any git output or URL reaches an error or a log line.

/// Replaces the credentials of every URL in `text` and every occurrence of one of `secrets`:
/// the workspace's one redaction helper ([`gomodproxy_redact::scrub`]).
pub fn redact(text: &str, secrets: &[String]) -> String {
    gomodproxy_redact::scrub(text, secrets)
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
            "fatal: unable to access 'https://bob:***@git.example.com/x.git/': 403"
        );
        assert_eq!(redact("ssh://git@host:22/x", &[]), "ssh://***@host:22/x");
        assert_eq!(redact("no url here", &[]), "no url here");
        assert_eq!(
            redact("token abcd1234 leaked", &["abcd1234".into()]),
            "token *** leaked"
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
