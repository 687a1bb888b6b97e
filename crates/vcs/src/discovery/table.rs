//! The go command's static table of code hosting sites (`vcsPaths` in
//! `cmd/go/internal/vcs/vcs.go`), matched by hand: every pattern there is a sequence of path
//! elements, so no regular expression engine is needed.

/// What the table says about an import path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TableMatch {
    /// No entry applies: dynamic (go-get) discovery is needed (`errUnknownSite`).
    Unknown,
    /// The repository for the path.
    Found {
        /// Import path of the repository root.
        root: String,
        /// `git`, `hg`, `svn`, `bzr` or `fossil`.
        vcs: String,
        /// The repository URL, or (for the `host/path.vcs` form) the URL without a scheme,
        /// which is found by trying schemes in turn.
        repo: Repo,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Repo {
    Url(String),
    Schemeless(String),
}

/// `[\w.\-]+` (ASCII word characters, dot, dash).
fn is_word_elem(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// `noVCSSuffix`: a repository URL ending in `.git` (or another VCS suffix) on a hosting site
/// is a mistake.
fn no_vcs_suffix(repo: &str, prefix: &str) -> Result<(), String> {
    for vcs in ["hg", "git", "svn", "bzr", "fossil"] {
        if repo.ends_with(&format!(".{vcs}")) {
            return Err(format!("invalid version control suffix in {prefix}/ path"));
        }
    }
    Ok(())
}

fn has_path_prefix(s: &str, prefix: &str) -> bool {
    crate::modrules::has_path_prefix(s, prefix)
}

/// Applies the static table to `path` (`repoRootFromVCSPaths` with `vcsPaths`). An error is
/// the go command's message for a path a site's pattern rejects.
pub(crate) fn lookup(path: &str) -> Result<TableMatch, String> {
    if path.starts_with("http:") || path.starts_with("https:") {
        let prefix = &path[..path.find(':').unwrap_or(0) + 1];
        return Err(format!("\"{prefix}//\" not allowed in import path"));
    }
    let elems: Vec<&str> = path.split('/').collect();
    let invalid = |site: &str| Err(format!("invalid {site} import path {path:?}"));
    let found = |n: usize, vcs: &str| {
        let root = elems[..n].join("/");
        TableMatch::Found {
            repo: Repo::Url(format!("https://{root}")),
            root,
            vcs: vcs.to_string(),
        }
    };

    for site in ["github.com", "bitbucket.org"] {
        if has_path_prefix(path, site) {
            if elems.len() < 3 || !elems[1..].iter().all(|e| is_word_elem(e)) {
                return invalid(site);
            }
            let m = found(3, "git");
            if let TableMatch::Found {
                repo: Repo::Url(u), ..
            } = &m
            {
                no_vcs_suffix(u, site)?;
            }
            return Ok(m);
        }
    }
    if has_path_prefix(path, "hub.jazz.net/git") {
        let user_ok = elems.get(2).is_some_and(|u| {
            !u.is_empty()
                && u.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
        if elems.len() < 4 || !user_ok || !elems[3..].iter().all(|e| is_word_elem(e)) {
            return invalid("hub.jazz.net/git");
        }
        let m = found(4, "git");
        if let TableMatch::Found {
            repo: Repo::Url(u), ..
        } = &m
        {
            no_vcs_suffix(u, "hub.jazz.net/git")?;
        }
        return Ok(m);
    }
    if has_path_prefix(path, "git.apache.org") {
        let repo_ok = elems.get(1).is_some_and(|r| {
            r.len() > 4
                && r.ends_with(".git")
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
        });
        if !repo_ok || !elems[2..].iter().all(|e| is_word_elem(e)) {
            return invalid("git.apache.org");
        }
        return Ok(found(2, "git"));
    }
    if has_path_prefix(path, "git.openstack.org") {
        if elems.len() < 3 || !elems[1..].iter().all(|e| is_word_elem(e)) {
            return invalid("git.openstack.org");
        }
        return Ok(found(3, "git"));
    }
    if has_path_prefix(path, "chiselapp.com") {
        let ok = elems.len() == 5
            && elems[1] == "user"
            && !elems[2].is_empty()
            && elems[2].bytes().all(|b| b.is_ascii_alphanumeric())
            && elems[3] == "repository"
            && is_word_elem(elems[4]);
        if !ok {
            return invalid("chiselapp.com");
        }
        return Ok(found(5, "fossil"));
    }
    Ok(general(path).unwrap_or(TableMatch::Unknown))
}

/// The general `host/path.vcs[/more]` form, as the unanchored pattern
/// `(?P<root>(?P<repo>([a-z0-9.\-]+\.)+[a-z0-9.\-]+(:[0-9]+)?(/~?[\w.\-]+)+?)\.(?P<vcs>bzr|fossil|git|hg|svn))(/~?[\w.\-]+)*$`
/// finds it: the leftmost start, then the fewest elements up to one ending in `.vcs`.
fn general(path: &str) -> Option<TableMatch> {
    let host_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-';
    let bytes = path.as_bytes();
    for start in 0..bytes.len() {
        if !host_char(bytes[start]) {
            continue;
        }
        let rest = &path[start..];
        // The host is the whole run of host characters: the next thing must be ':port' or '/'.
        let host_len = rest.bytes().take_while(|&b| host_char(b)).count();
        let host = &rest[..host_len];
        let dot_ok = host
            .bytes()
            .enumerate()
            .any(|(i, b)| b == b'.' && i >= 1 && i + 2 <= host.len());
        if !dot_ok {
            continue;
        }
        let mut after = &rest[host_len..];
        let mut authority_len = host_len;
        if let Some(port) = after.strip_prefix(':') {
            let digits = port.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                continue;
            }
            authority_len += 1 + digits;
            after = &port[digits..];
        }
        let Some(elems) = after.strip_prefix('/') else {
            continue;
        };
        let elems: Vec<&str> = elems.split('/').collect();
        let elem_ok = |e: &str| is_word_elem(e.strip_prefix('~').unwrap_or(e));
        if !elems.iter().all(|e| elem_ok(e)) {
            continue;
        }
        for (n, e) in elems.iter().enumerate() {
            let body = e.strip_prefix('~').unwrap_or(e);
            let Some(dot) = body.rfind('.') else { continue };
            let vcs = &body[dot + 1..];
            if dot == 0 || !["bzr", "fossil", "git", "hg", "svn"].contains(&vcs) {
                continue;
            }
            let root_len = authority_len + elems[..=n].iter().map(|e| e.len() + 1).sum::<usize>();
            let root = &rest[..root_len];
            let repo = &root[..root.len() - vcs.len() - 1];
            return Some(TableMatch::Found {
                root: root.to_string(),
                vcs: vcs.to_string(),
                repo: Repo::Schemeless(repo.to_string()),
            });
        }
    }
    None
}

/// `vcsPathsAfterDynamic`: Launchpad, tried when go-get discovery failed.
pub(crate) fn after_dynamic(path: &str) -> Option<TableMatch> {
    if !has_path_prefix(path, "launchpad.net") {
        return None;
    }
    let elems: Vec<&str> = path.split('/').collect();
    if elems.len() < 2
        || !elems[1..]
            .iter()
            .all(|e| is_word_elem(e.strip_prefix('~').unwrap_or(e)))
    {
        return None;
    }
    Some(TableMatch::Found {
        root: elems[..2].join("/"),
        vcs: "bzr".into(),
        repo: Repo::Url(format!("https://{}", elems[..2].join("/"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(path: &str) -> (String, String, Repo) {
        match lookup(path).unwrap() {
            TableMatch::Found { root, vcs, repo } => (root, vcs, repo),
            TableMatch::Unknown => panic!("{path}: unknown"),
        }
    }

    #[test]
    fn sites() {
        // Vectors from cmd/go/internal/vcs/vcs_test.go.
        assert_eq!(
            found("github.com/golang/groupcache"),
            (
                "github.com/golang/groupcache".into(),
                "git".into(),
                Repo::Url("https://github.com/golang/groupcache".into())
            )
        );
        assert_eq!(found("github.com/a/b/c/d").0, "github.com/a/b");
        assert!(lookup("github.com/user/unicode/испытание").is_err());
        assert!(lookup("github.com/a").is_err());
        assert!(lookup("github.com/a/b.git").is_err());
        assert_eq!(
            found("hub.jazz.net/git/user1/pkgname").0,
            "hub.jazz.net/git/user1/pkgname"
        );
        assert!(lookup("hub.jazz.net/git/USER/pkgname").is_err());
        assert_eq!(
            lookup("hub.jazz.net/someotherprefix").unwrap(),
            TableMatch::Unknown
        );
        assert_eq!(
            found("git.apache.org/package-name.git").0,
            "git.apache.org/package-name.git"
        );
        assert!(lookup("git.apache.org/package-name").is_err());
        assert_eq!(
            found("git.openstack.org/openstack/swift.git").0,
            "git.openstack.org/openstack/swift.git"
        );
        assert_eq!(
            found("chiselapp.com/user/kyle/repository/fossilgg").1,
            "fossil"
        );
        assert!(lookup("chiselapp.com/user/kyle/fossilgg").is_err());
        assert_eq!(lookup("example.com/a/b").unwrap(), TableMatch::Unknown);
        assert_eq!(
            lookup("bitbucket.org/user/repo").unwrap(),
            TableMatch::Found {
                root: "bitbucket.org/user/repo".into(),
                vcs: "git".into(),
                repo: Repo::Url("https://bitbucket.org/user/repo".into()),
            }
        );
    }

    #[test]
    fn general_form() {
        assert_eq!(
            found("example.com/repo.git/sub"),
            (
                "example.com/repo.git".into(),
                "git".into(),
                Repo::Schemeless("example.com/repo".into())
            )
        );
        assert_eq!(
            found("git.example.com/a/b.git").0,
            "git.example.com/a/b.git"
        );
        assert_eq!(found("example.com/a.hg.git/b").1, "git");
        assert_eq!(found("hg.example.com/x.hg").1, "hg");
        assert_eq!(
            found("example.com/~user/r.git").0,
            "example.com/~user/r.git"
        );
        // The first element ending in a VCS suffix wins.
        assert_eq!(found("example.com/a.git/b.hg").0, "example.com/a.git");
        assert!(matches!(
            lookup("example.com/.git").unwrap(),
            TableMatch::Unknown
        ));
        assert!(lookup("https://example.com/a").is_err());
    }
}
