//! Finding a module's repository, as `vcs.RepoRootForImportPath` does in module mode: the
//! configured repository map first, then the static table of hosting sites and the
//! `host/path.git` form, then `https://<path>?go-get=1` with its go-import tags (re-checked at
//! the tag's prefix when the tag is for a shorter path), then Launchpad.
//!
//! Only git repositories are fetched; Mercurial, Subversion, Bazaar and Fossil repositories and
//! go-import `mod` entries are reported as [`VcsError::Unsupported`].

mod meta;
mod table;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::error::VcsError;
use crate::git::command::{Git, GitCommand};
use crate::metrics::Metrics;
use crate::redact::redact;

use self::meta::{MetaImport, match_go_import};
use self::table::{Repo, TableMatch};

/// How long a discovered repository root is reused.
const FOUND_TTL: Duration = Duration::from_secs(15 * 60);
/// How long a "no such module" answer from discovery is reused.
const MISSING_TTL: Duration = Duration::from_secs(60);
/// Largest go-get page read.
const MAX_PAGE: usize = 4 << 20;

/// Where a module's code is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RepoRoot {
    /// The git URL (as written in the go-import tag or derived; insteadOf rules apply later).
    pub repo_url: String,
    /// Import path of the repository root.
    pub root: String,
    /// The go-import subdirectory (4-field form), or empty.
    pub subdir: String,
}

/// A remembered discovery answer.
type Memo = (Instant, Result<RepoRoot, String>);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Security {
    SecureOnly,
    Insecure,
}

/// A fetched go-get page.
struct Page {
    url: String,
    status: u16,
    body: String,
}

pub(crate) struct Discovery {
    settings: Arc<Settings>,
    git: Arc<Git>,
    metrics: Arc<Metrics>,
    secure: reqwest::Client,
    insecure: reqwest::Client,
    /// Protocols git may use, for the `host/path.git` scheme probe.
    protocols: Vec<String>,
    /// Module path → when, and the root or the "not found" reason.
    found: Mutex<HashMap<String, Memo>>,
    schemes: Mutex<HashMap<String, String>>,
}

fn http_client(
    settings: &Settings,
    insecure: bool,
) -> Result<reqwest::Client, crate::error::ConfigError> {
    use reqwest::redirect::Policy;
    let policy = if insecure {
        Policy::limited(10)
    } else {
        // Like the go command's securityPreservingHTTPClient: never from https to http.
        Policy::custom(|attempt| {
            if attempt.previous().len() >= 10 {
                attempt.error("stopped after 10 redirects")
            } else if attempt
                .previous()
                .first()
                .is_some_and(|u| u.scheme() == "https")
                && attempt.url().scheme() != "https"
            {
                let to = attempt.url().to_string();
                attempt.error(format!("redirected from secure URL to insecure URL {to}"))
            } else {
                attempt.follow()
            }
        })
    };
    let mut b = reqwest::Client::builder()
        .redirect(policy)
        .timeout(if insecure {
            // GOINSECURE's "impatient" client.
            Duration::from_secs(5).min(settings.go_get_timeout)
        } else {
            settings.go_get_timeout
        })
        .user_agent(concat!("gomodproxy/", env!("CARGO_PKG_VERSION")))
        .no_proxy();
    if let Some(tls) = &settings.outbound_tls {
        b = tls
            .configure_reqwest(b)
            .map_err(|e| crate::error::ConfigError::new("tls", e.to_string()))?;
    }
    if insecure {
        b = b.danger_accept_invalid_certs(true);
    }
    if let Some(proxy) = &settings.http_proxy {
        let mut p = reqwest::Proxy::all(proxy)
            .map_err(|e| crate::error::ConfigError::new("http_proxy", e.to_string()))?;
        if let Some(no) = &settings.no_proxy {
            p = p.no_proxy(reqwest::NoProxy::from_string(no));
        }
        b = b.proxy(p);
    }
    b.build()
        .map_err(|e| crate::error::ConfigError::new("http_proxy", e.to_string()))
}

/// `urlForImportPath`: `https://host/path?go-get=1` (scheme chosen by the caller).
fn url_for_import_path(path: &str, scheme: &str) -> Result<String, String> {
    let (host, rest) = match path.find('/') {
        Some(i) => (&path[..i], &path[i..]),
        None => (path, "/"),
    };
    if !host.contains('.') {
        return Err("import path does not begin with hostname".into());
    }
    Ok(format!("{scheme}://{host}{rest}?go-get=1"))
}

impl Discovery {
    pub fn new(
        settings: Arc<Settings>,
        git: Arc<Git>,
        metrics: Arc<Metrics>,
        protocols: Vec<String>,
    ) -> Result<Discovery, crate::error::ConfigError> {
        Ok(Discovery {
            secure: http_client(&settings, false)?,
            insecure: http_client(&settings, true)?,
            settings,
            git,
            metrics,
            protocols,
            found: Mutex::new(HashMap::new()),
            schemes: Mutex::new(HashMap::new()),
        })
    }

    /// The repository of module `path`.
    pub async fn repo_root(&self, path: &str) -> Result<RepoRoot, VcsError> {
        if let Some(root) = self.configured(path) {
            return Ok(root);
        }
        if let Some((at, cached)) = self.found.lock().ok().and_then(|c| c.get(path).cloned()) {
            let ttl = if cached.is_ok() {
                FOUND_TTL
            } else {
                MISSING_TTL
            };
            if at.elapsed() < ttl {
                return cached.map_err(|reason| VcsError::not_found(path, reason));
            }
        }
        let result = self.lookup(path).await;
        // Remember answers, not failures to ask.
        let memo = match &result {
            Ok(root) => Some(Ok(root.clone())),
            Err(VcsError::NotFound { reason, .. }) => Some(Err(reason.clone())),
            Err(_) => None,
        };
        if let Some(memo) = memo
            && let Ok(mut c) = self.found.lock()
        {
            if c.len() > 10_000 {
                c.clear();
            }
            c.insert(path.to_string(), (Instant::now(), memo));
        }
        result
    }

    /// The configured repository map (`direct.repos`).
    fn configured(&self, path: &str) -> Option<RepoRoot> {
        let elems: Vec<&str> = path.split('/').collect();
        for rule in &self.settings.repos {
            if elems.len() < rule.elements {
                continue;
            }
            let root = elems[..rule.elements].join("/");
            if gomod::glob::path_match(&rule.pattern, &root) != Ok(true) {
                continue;
            }
            let rest = elems[1..rule.elements].join("/");
            let url = rule.url.replace("{root}", &root).replace("{rest}", &rest);
            return Some(RepoRoot {
                repo_url: url,
                root,
                subdir: String::new(),
            });
        }
        None
    }

    async fn lookup(&self, path: &str) -> Result<RepoRoot, VcsError> {
        let security = if gomod::glob::match_prefix_patterns(&self.settings.insecure, path) {
            Security::Insecure
        } else {
            Security::SecureOnly
        };
        let matched = table::lookup(path).map_err(|reason| VcsError::not_found(path, reason))?;
        let (root, vcs, repo) = match matched {
            TableMatch::Found { root, vcs, repo } => (root, vcs, repo),
            TableMatch::Unknown => match self.dynamic(path, security).await {
                Ok(root) => return Ok(root),
                Err(e) => match table::after_dynamic(path) {
                    Some(TableMatch::Found { root, vcs, repo }) => (root, vcs, repo),
                    _ => return Err(e),
                },
            },
        };
        if vcs != "git" {
            return Err(unsupported_vcs(&vcs, &root));
        }
        let repo_url = match repo {
            Repo::Url(u) => u,
            Repo::Schemeless(r) => self
                .ping(&r, security)
                .await
                .map_err(|reason| VcsError::not_found(path, reason))?,
        };
        Ok(RepoRoot {
            repo_url,
            root,
            subdir: String::new(),
        })
    }

    /// The first scheme `git ls-remote` succeeds with, in the go command's order, among the
    /// allowed ones.
    async fn ping(&self, repo: &str, security: Security) -> Result<String, String> {
        if let Some(u) = self.schemes.lock().ok().and_then(|c| c.get(repo).cloned()) {
            return Ok(u);
        }
        for scheme in ["git", "https", "http", "git+ssh", "ssh"] {
            let protocol = if scheme == "git+ssh" { "ssh" } else { scheme };
            if !self.protocols.iter().any(|p| p == protocol) {
                continue;
            }
            if security == Security::SecureOnly
                && !matches!(scheme, "https" | "git+ssh" | "ssh")
                && !self.settings.allowed_protocols.iter().any(|p| p == scheme)
            {
                continue;
            }
            let url = format!("{scheme}://{repo}");
            let ok = self
                .git
                .run(
                    GitCommand::new(["ls-remote", "-q", "--end-of-options", url.as_str()])
                        .network()
                        .timeout(self.settings.ls_remote_timeout),
                )
                .await
                .is_ok();
            if ok {
                if let Ok(mut c) = self.schemes.lock() {
                    c.insert(repo.to_string(), url.clone());
                }
                return Ok(url);
            }
        }
        Err(match security {
            Security::SecureOnly => "no secure protocol found for repository".into(),
            Security::Insecure => "no protocol found for repository".into(),
        })
    }

    /// `repoRootForImportDynamic`.
    async fn dynamic(&self, path: &str, security: Security) -> Result<RepoRoot, VcsError> {
        let unrecognized = |reason: String| {
            VcsError::not_found(path, format!("unrecognized import path {path:?}: {reason}"))
        };
        let page = self.get(path, security).await?;
        let imports = meta::parse(&page.body);
        if imports.is_empty() && page.status != 200 {
            return Err(unrecognized(format!(
                "reading {}: {}",
                page.url,
                status_text(page.status)
            )));
        }
        let mmi = match_go_import(&imports, path).map_err(|e| {
            if imports.is_empty() {
                unrecognized(format!("parse {}: no go-import meta tags ()", page.url))
            } else {
                unrecognized(format!("parse {}: no go-import meta tags ({e})", page.url))
            }
        })?;
        // A tag for a shorter path must be confirmed by that path's own page, or anyone with
        // a page under a prefix could claim the whole prefix.
        if mmi.prefix != path {
            let (url2, imports2) = self.meta_for_prefix(&mmi.prefix, security).await?;
            let again = match_go_import(&imports2, path);
            if again.as_ref() != Ok(&mmi) {
                return Err(unrecognized(format!(
                    "{} and {url2} disagree about go-import for {}",
                    page.url, mmi.prefix
                )));
            }
        }
        self.accept(path, &page.url, mmi)
    }

    fn accept(&self, path: &str, page_url: &str, mmi: MetaImport) -> Result<RepoRoot, VcsError> {
        let bad = |reason: String| VcsError::not_found(path, reason);
        if mmi.subdir.starts_with('/') {
            return Err(bad(format!(
                "{page_url}: invalid subdirectory {:?}: leading slash",
                mmi.subdir
            )));
        }
        if mmi.subdir.starts_with('-') {
            return Err(bad(format!(
                "{page_url}: invalid subdirectory {:?}: leading hyphen",
                mmi.subdir
            )));
        }
        match reqwest::Url::parse(&mmi.repo_root) {
            Err(_) if !mmi.repo_root.contains("://") => {
                return Err(bad(format!(
                    "{page_url}: invalid repo root {:?}: no scheme",
                    mmi.repo_root
                )));
            }
            Err(e) => {
                return Err(bad(format!(
                    "{page_url}: invalid repo root {:?}: {e}",
                    mmi.repo_root
                )));
            }
            Ok(u) if u.scheme() == "file" => {
                return Err(bad(format!(
                    "{page_url}: invalid repo root {:?}: file scheme disallowed",
                    mmi.repo_root
                )));
            }
            Ok(_) => {}
        }
        match mmi.vcs.as_str() {
            "git" => Ok(RepoRoot {
                repo_url: mmi.repo_root,
                root: mmi.prefix,
                subdir: mmi.subdir,
            }),
            "mod" => Err(VcsError::Unsupported {
                reason: format!(
                    "{path}: the go-import tag for {} names a module proxy ({}), not a \
                     repository; add that proxy to the upstream chain instead",
                    mmi.prefix,
                    redact(&mmi.repo_root, &[])
                ),
            }),
            "hg" | "svn" | "bzr" | "fossil" => Err(unsupported_vcs(&mmi.vcs, &mmi.prefix)),
            other => Err(bad(format!("{page_url}: unknown vcs {other:?}"))),
        }
    }

    /// `metaImportsForPrefix`.
    async fn meta_for_prefix(
        &self,
        prefix: &str,
        security: Security,
    ) -> Result<(String, Vec<MetaImport>), VcsError> {
        let page = self.get(prefix, security).await?;
        let imports = meta::parse(&page.body);
        if imports.is_empty() {
            let reason = if page.status != 200 {
                format!("reading {}: {}", page.url, status_text(page.status))
            } else {
                format!(
                    "fetching {prefix}: no go-import meta tag found in {}",
                    page.url
                )
            };
            return Err(VcsError::not_found(prefix, reason));
        }
        Ok((page.url, imports))
    }

    /// `web.Get` of the go-get URL for `path`: https, then (for insecure paths) http.
    async fn get(&self, path: &str, security: Security) -> Result<Page, VcsError> {
        let https = url_for_import_path(path, "https").map_err(|reason| {
            VcsError::not_found(path, format!("unrecognized import path {path:?}: {reason}"))
        })?;
        let client = match security {
            Security::SecureOnly => &self.secure,
            Security::Insecure => &self.insecure,
        };
        match self.fetch(client, &https).await {
            Ok(page) => Ok(page),
            Err(e) if security == Security::SecureOnly => Err(e),
            Err(e) => {
                tracing::debug!(error = %e, "https go-get failed; trying http (insecure)");
                let http = url_for_import_path(path, "http")
                    .map_err(|reason| VcsError::not_found(path, reason))?;
                self.fetch(&self.secure, &http).await
            }
        }
    }

    async fn fetch(&self, client: &reqwest::Client, url: &str) -> Result<Page, VcsError> {
        self.metrics.inc(&self.metrics.go_get_requests);
        let shown = redact(url, self.git.secrets());
        let parsed = reqwest::Url::parse(url).map_err(|e| VcsError::Http {
            url: shown.clone(),
            reason: e.to_string(),
            source: None,
        })?;
        let mut req = client.get(parsed.clone());
        if parsed.scheme() == "https"
            && let Some(c) = self
                .settings
                .credentials
                .iter()
                .find(|c| c.prefix.matches(&parsed))
        {
            req = req.header(reqwest::header::AUTHORIZATION, c.basic_auth());
        }
        let fail = |e: reqwest::Error| {
            if e.is_timeout() {
                VcsError::Timeout {
                    operation: format!("GET {shown}"),
                    after: self.settings.go_get_timeout,
                }
            } else {
                VcsError::Http {
                    url: shown.clone(),
                    reason: redact(&e.to_string(), self.git.secrets()),
                    source: Some(Box::new(e)),
                }
            }
        };
        let mut resp = req.send().await.map_err(fail)?;
        let status = resp.status().as_u16();
        let final_url = redact(resp.url().as_str(), self.git.secrets());
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(fail)? {
            let room = MAX_PAGE.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_PAGE {
                break;
            }
        }
        Ok(Page {
            url: final_url,
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

fn status_text(status: u16) -> String {
    match reqwest::StatusCode::from_u16(status) {
        Ok(s) => format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or("")),
        Err(_) => status.to_string(),
    }
}

fn unsupported_vcs(vcs: &str, root: &str) -> VcsError {
    let name = match vcs {
        "hg" => "Mercurial",
        "svn" => "Subversion",
        "bzr" => "Bazaar",
        "fossil" => "Fossil",
        other => other,
    };
    VcsError::Unsupported {
        reason: format!(
            "{root} is a {name} ({vcs}) repository; the direct source fetches git repositories \
             only (fetch it through a proxy in the upstream chain instead)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_get_urls() {
        assert_eq!(
            url_for_import_path("example.com/a/b", "https").unwrap(),
            "https://example.com/a/b?go-get=1"
        );
        assert_eq!(
            url_for_import_path("example.com", "http").unwrap(),
            "http://example.com/?go-get=1"
        );
        assert!(url_for_import_path("localhost/a", "https").is_err());
    }
}
