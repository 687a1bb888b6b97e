//! Go modules straight from git, exactly as the go command's `GOPROXY=direct` mode produces
//! them: same versions, same `.info` (with `Origin`), same go.mod, and a module zip with the
//! same `h1:` hash.
//!
//! [`Direct`] is the whole interface: given a module path it finds the repository
//! (`cmd/go/internal/vcs` rules: a configured map, the static table of hosting sites,
//! `host/path.git`, go-get `<meta name="go-import">` pages), lists versions, resolves queries,
//! and produces `.info`, `.mod` and `.zip`. It knows nothing of storage or HTTP serving; the
//! service uses it as one more source in the upstream chain.
//!
//! Layers, bottom up, each a port of the go command's own:
//! - [`git`](crate::git) runs `git` out of process (clean environment, capped concurrency,
//!   time and size bounds, process groups killed on timeout) on one bare mirror per
//!   repository, and answers revision questions (`codehost/git.go`).
//! - `coderepo` maps a module onto a repository: tag prefixes, major-version layouts,
//!   `+incompatible`, pseudo-versions and their bases, go.mod location (`modfetch/coderepo.go`).
//! - `query` answers `latest` and other queries (`modload/query.go`).
//! - `zip` builds the module zip from `git archive` with x/mod/zip's file rules.
//!
//! The key design decision: the go command keeps a mirror per module cache and decides what
//! to fetch by what it fetched earlier in the same process; a proxy's mirrors live for weeks.
//! So every answer here is computed from the repository's current refs (`git ls-remote`,
//! trusted for `refs_ttl`) with *tag pins* applied — the commit each tag had when this proxy
//! first used it — which makes results both identical to a fresh `GOPROXY=direct` run and
//! immutable once served, even if a tag is later moved or deleted upstream (such tags are
//! logged and counted in [`DirectStats`]).
//!
//! May depend on `gomod` and `gomodproxy-redact` only: it knows nothing of storage, the service
//! or HTTP serving; the service depends on it.

#![deny(missing_docs)]

mod coderepo;
mod config;
mod discovery;
mod error;
mod git;
mod metrics;
mod modrules;
pub mod netrc;
mod query;
mod redact;
mod revinfo;
mod zip;

use std::collections::HashMap;
use std::io::{Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gomod::{ModulePath, Version};

pub use config::{CredentialConfig, DirectConfig, RepoMapping, Secret};
pub use error::{ConfigError, VcsError};
pub use metrics::DirectStats;
pub use redact::redact;
pub use revinfo::{Origin, RevInfo};

use coderepo::{CodeRepo, MAX_LICENSE, MAX_ZIP_FILE, ModRev};
use config::Settings;
use discovery::Discovery;
use git::command::Git;
use git::{GitRepo, repo_key};
use metrics::Metrics;

/// How often unused mirrors are looked for (at most).
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// How often a mirror's last-use marker file is rewritten (at most).
const USED_MARKER_INTERVAL: u64 = 600;

/// The direct (version control) source. Cheap to clone: clones share mirrors, caches, limits
/// and counters.
#[derive(Clone)]
pub struct Direct {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Arc<Settings>,
    git: Arc<Git>,
    discovery: Discovery,
    metrics: Arc<Metrics>,
    repos: Mutex<HashMap<String, Arc<GitRepo>>>,
    modules: Mutex<HashMap<String, Arc<CodeRepo>>>,
    last_prune: AtomicU64,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("cache_dir", &self.inner.settings.cache_dir)
            .finish_non_exhaustive()
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The transport protocol of a git URL or scp-like address, as `GIT_ALLOW_PROTOCOL` names it.
fn protocol_of(url: &str) -> Option<&'static str> {
    if let Some((scheme, _)) = url.split_once("://") {
        return match scheme.to_ascii_lowercase().as_str() {
            "https" => Some("https"),
            "http" => Some("http"),
            "git" => Some("git"),
            "ssh" | "git+ssh" | "ssh+git" => Some("ssh"),
            "file" => Some("file"),
            _ => None,
        };
    }
    // `<transport>::<address>` runs a remote helper.
    if let Some(i) = url.find("::")
        && !url[..i].contains('/')
    {
        return match &url[..i] {
            "ext" => Some("ext"),
            _ => None,
        };
    }
    // scp-like `host:path` is ssh; anything else is a local path.
    match url.find(':') {
        Some(i) if !url[..i].contains('/') => Some("ssh"),
        _ => Some("file"),
    }
}

impl Direct {
    /// Checks the configuration, reads credential files, and probes `git` (it must be 2.29 or
    /// later). Creates `cache_dir` if needed. Does not touch the network.
    pub fn new(config: DirectConfig) -> Result<Direct, ConfigError> {
        let mut settings = config.resolve()?;
        for sub in ["mirrors", "pins", "refs", "tmp"] {
            let dir = settings.cache_dir.join(sub);
            std::fs::create_dir_all(&dir)
                .map_err(|e| ConfigError::new("cache_dir", format!("{}: {e}", dir.display())))?;
        }
        if let Some(tls) = settings.outbound_tls.clone() {
            // git's curl replaces its CA bundle with http.sslCAInfo: give it the system roots
            // and the extra CA in one file.
            let bundle = settings.cache_dir.join("ca-bundle.pem");
            let written = tls
                .write_git_ca_bundle(&bundle)
                .map_err(|e| ConfigError::new("tls", e.to_string()))?;
            settings.git_tls = tls.git_config(written.then_some(bundle.as_path()));
        }
        let settings = Arc::new(settings);
        let mut secrets: Vec<String> = Vec::new();
        for c in &settings.credentials {
            secrets.push(c.secret.clone());
            let header = c.basic_auth();
            secrets.push(header.trim_start_matches("Basic ").to_string());
        }

        // The protocol allow-list: https and ssh, what the configuration adds, and what the
        // git configuration's insteadOf rules rewrite to (never file or ext).
        let probe = Git::new(&settings, &[], Arc::new(secrets.clone()));
        let version = probe
            .std_command()
            .arg("version")
            .output()
            .map_err(|e| ConfigError::new("git", format!("{}: {e}", settings.git.display())))?;
        check_git_version(&String::from_utf8_lossy(&version.stdout))?;
        let mut protocols: Vec<String> = vec!["https".into(), "ssh".into()];
        for p in &settings.allowed_protocols {
            if !protocols.contains(p) {
                protocols.push(p.clone());
            }
        }
        let rules = probe
            .std_command()
            .args(["config", "--get-regexp", r"^url\..*\.insteadof$"])
            .output()
            .map_err(|e| ConfigError::new("git", e.to_string()))?;
        for line in String::from_utf8_lossy(&rules.stdout).lines() {
            let Some(key) = line.split_whitespace().next() else {
                continue;
            };
            let Some(base) = key
                .strip_prefix("url.")
                .and_then(|k| k.strip_suffix(".insteadof"))
            else {
                continue;
            };
            match protocol_of(base) {
                Some(p @ ("git" | "http" | "https" | "ssh")) => {
                    if !protocols.iter().any(|q| q == p) {
                        protocols.push(p.to_string());
                    }
                }
                _ => tracing::warn!(
                    rule = %redact(base, &secrets),
                    "ignoring an insteadOf rule to a local or unknown transport"
                ),
            }
        }
        let git = Arc::new(Git::new(&settings, &protocols, Arc::new(secrets)));
        let metrics = Arc::new(Metrics::default());
        let discovery = Discovery::new(settings.clone(), git.clone(), metrics.clone(), protocols)?;
        Ok(Direct {
            inner: Arc::new(Inner {
                settings,
                git,
                discovery,
                metrics,
                repos: Mutex::new(HashMap::new()),
                modules: Mutex::new(HashMap::new()),
                last_prune: AtomicU64::new(0),
            }),
        })
    }

    /// Counters for `/metrics`.
    pub fn stats(&self) -> DirectStats {
        self.inner
            .metrics
            .snapshot(self.inner.git.started.load(Ordering::Relaxed))
    }

    /// The module's code repository, with the mirror marked in use until the guard drops.
    async fn module(
        &self,
        module: &ModulePath,
    ) -> Result<(Arc<CodeRepo>, tokio::sync::OwnedRwLockReadGuard<()>), VcsError> {
        self.maybe_prune();
        let path = module.as_str();
        let root = self.inner.discovery.repo_root(path).await?;
        let key = format!("{path}\n{}\n{}\n{}", root.repo_url, root.root, root.subdir);
        let repo = self.repo(&root.repo_url)?;
        let guard = repo.in_use.clone().read_owned().await;
        let cached = self
            .inner
            .modules
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
            .filter(|c| Arc::ptr_eq(&c.repo, &repo));
        let code = match cached {
            Some(c) => c,
            None => {
                let mut c = CodeRepo::new(repo.clone(), &root.root, &root.subdir, path)?;
                c.probe_dir = Some(self.inner.settings.cache_dir.join("tmp"));
                let c = Arc::new(c);
                if let Ok(mut m) = self.inner.modules.lock() {
                    if m.len() > 50_000 {
                        m.clear();
                    }
                    m.insert(key, c.clone());
                }
                c
            }
        };
        let last = repo.last_used.swap(now_unix(), Ordering::Relaxed);
        if now_unix().saturating_sub(last) >= USED_MARKER_INTERVAL || last == 0 {
            touch_used(&repo.mirror.dir);
        }
        Ok((code, guard))
    }

    fn repo(&self, url: &str) -> Result<Arc<GitRepo>, VcsError> {
        let mut repos = self
            .inner
            .repos
            .lock()
            .map_err(|_| VcsError::io("repository table", std::io::Error::other("poisoned")))?;
        if let Some(r) = repos.get(url) {
            return Ok(r.clone());
        }
        let s = &self.inner.settings;
        let repo = Arc::new(GitRepo::open(
            url,
            &s.cache_dir,
            self.inner.git.clone(),
            self.inner.metrics.clone(),
            s.refs_ttl,
            s.max_repo_size,
            s.ls_remote_timeout,
        )?);
        touch_used(&repo.mirror.dir);
        repos.insert(url.to_string(), repo.clone());
        Ok(repo)
    }

    /// The module's tagged versions (no pseudo-versions), sorted, including the
    /// `+incompatible` versions the go command lists. Empty when the repository has no tags
    /// for the module. Within `refs_ttl` of the last listing this does not run git.
    pub async fn list(&self, module: &ModulePath) -> Result<Vec<Version>, VcsError> {
        let (code, _guard) = self.module(module).await?;
        let versions = code.versions().await?;
        Ok(versions
            .list
            .iter()
            .filter_map(|v| Version::parse(v).ok())
            .collect())
    }

    /// Resolves `query` — a canonical version, `latest`, a semver prefix (`v1.2`), a version
    /// with build metadata, a tag, a branch, or a commit hash (prefix) — to a version's
    /// `.info`, as `go mod download module@query` does in direct mode.
    pub async fn info(&self, module: &ModulePath, query: &str) -> Result<RevInfo, VcsError> {
        let (code, _guard) = self.module(module).await?;
        let rev = query::query(&code, query).await?;
        to_revinfo(module, rev)
    }

    /// `@latest`: the highest release, else the highest prerelease, else a pseudo-version of
    /// the default branch's head, skipping versions retracted by the latest go.mod.
    pub async fn latest(&self, module: &ModulePath) -> Result<RevInfo, VcsError> {
        let (code, _guard) = self.module(module).await?;
        to_revinfo(module, query::latest(&code).await?)
    }

    /// The go.mod of a version (`module <path>` synthesized for a module without one, as the
    /// go command does).
    pub async fn go_mod(&self, module: &ModulePath, version: &Version) -> Result<Bytes, VcsError> {
        let (code, _guard) = self.module(module).await?;
        code.go_mod(version.as_str()).await
    }

    /// Writes the module zip of a version into `dest` (truncated first) and returns its size.
    /// The zip is what `go mod download` builds in direct mode (same files, so the same
    /// `h1:`); the service still validates it with `gomod::zipfile::check_zip`.
    pub async fn zip(
        &self,
        module: &ModulePath,
        version: &Version,
        dest: &mut std::fs::File,
    ) -> Result<u64, VcsError> {
        let (code, _guard) = self.module(module).await?;
        let (rev, subdir) = code.zip_source(version.as_str()).await?;
        let tmp = self.inner.settings.cache_dir.join("tmp");
        let Some(archive) = code
            .repo
            .read_zip(&rev, &subdir, MAX_ZIP_FILE, &tmp)
            .await?
        else {
            return Err(VcsError::not_found(
                format!("{module}@{version}"),
                format!("no files in {subdir} at revision {rev}"),
            ));
        };
        // A module in a subdirectory gets the repository's LICENSE if it has none.
        let root_license = if subdir.is_empty() {
            None
        } else {
            match code.repo.read_file(&rev, "LICENSE", MAX_LICENSE + 1).await {
                Ok(data) => data.map(|d| d.to_vec()),
                Err(VcsError::TooLarge { .. }) => Some(vec![0; MAX_LICENSE + 1]),
                Err(e) => return Err(e),
            }
        };
        dest.set_len(0)
            .and_then(|_| dest.seek(SeekFrom::Start(0)))
            .map_err(|e| VcsError::io("truncating the zip destination", e))?;
        let mut out = dest
            .try_clone()
            .map_err(|e| VcsError::io("opening the zip destination", e))?;
        let module = module.to_string();
        let version = version.to_string();
        let size = tokio::task::spawn_blocking(move || {
            let mut archive = archive
                .reopen()
                .map_err(|e| VcsError::io("reading the git archive", e))?;
            let built = zip::build(
                &mut archive,
                &module,
                &version,
                &subdir,
                root_license,
                &mut out,
            );
            return_freed_memory();
            built
        })
        .await
        .map_err(|e| VcsError::io("building the module zip", std::io::Error::other(e)))??;
        self.inner.metrics.inc(&self.inner.metrics.zips);
        Ok(size)
    }

    /// Deletes mirrors not used for `prune_after` (their tag pins stay). Runs on its own about
    /// once an hour while the source is used; returns how many mirrors were removed.
    pub async fn prune_unused(&self) -> Result<usize, VcsError> {
        self.inner.last_prune.store(now_unix(), Ordering::Relaxed);
        let s = &self.inner.settings;
        let mirrors = s.cache_dir.join("mirrors");
        let entries = std::fs::read_dir(&mirrors)
            .map_err(|e| VcsError::io(format!("listing {}", mirrors.display()), e))?;
        let cutoff = SystemTime::now()
            .checked_sub(s.prune_after)
            .unwrap_or(UNIX_EPOCH);
        let mut removed = 0;
        for entry in entries.flatten() {
            let dir = entry.path();
            let Some(key) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                continue;
            };
            let used = std::fs::metadata(git::mirror::Mirror::used_marker(&dir))
                .or_else(|_| std::fs::metadata(&dir))
                .and_then(|m| m.modified())
                .unwrap_or(UNIX_EPOCH);
            if used > cutoff {
                continue;
            }
            // A repository in memory must not be in use, and leaves the tables with its dir.
            let loaded = self.inner.repos.lock().ok().and_then(|r| {
                r.iter()
                    .find(|(url, _)| repo_key(url) == key)
                    .map(|(url, repo)| (url.clone(), repo.clone()))
            });
            let _guard = match &loaded {
                Some((_, repo)) => {
                    let recent = now_unix().saturating_sub(repo.last_used.load(Ordering::Relaxed))
                        < s.prune_after.as_secs();
                    if recent {
                        continue;
                    }
                    match repo.in_use.clone().try_write_owned() {
                        Ok(g) => Some(g),
                        Err(_) => continue,
                    }
                }
                None => None,
            };
            if let Some((url, repo)) = &loaded {
                if let Ok(mut r) = self.inner.repos.lock() {
                    r.remove(url);
                }
                if let Ok(mut m) = self.inner.modules.lock() {
                    m.retain(|_, c| !Arc::ptr_eq(&c.repo, repo));
                }
            }
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "pruning a mirror failed");
                continue;
            }
            let _ = std::fs::remove_file(s.cache_dir.join("refs").join(format!("{key}.json")));
            tracing::info!(dir = %dir.display(), "pruned an unused mirror");
            self.inner.metrics.inc(&self.inner.metrics.pruned_mirrors);
            removed += 1;
        }
        Ok(removed)
    }

    fn maybe_prune(&self) {
        let last = self.inner.last_prune.load(Ordering::Relaxed);
        let now = now_unix();
        if now.saturating_sub(last) < PRUNE_INTERVAL.as_secs() {
            return;
        }
        if self
            .inner
            .last_prune
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        if last == 0 {
            // Not right at start-up: the first pass runs an interval later.
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.prune_unused().await {
                tracing::warn!(error = %e, "pruning unused mirrors failed");
            }
        });
    }
}

fn touch_used(dir: &Path) {
    if dir.is_dir() {
        let _ = std::fs::write(git::mirror::Mirror::used_marker(dir), b"");
    }
}

fn check_git_version(out: &str) -> Result<(), ConfigError> {
    let v = out.split_whitespace().nth(2).ok_or_else(|| {
        ConfigError::new("git", format!("unexpected `git version` output {out:?}"))
    })?;
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (2, 29) {
        return Err(ConfigError::new(
            "git",
            format!("git {v} is too old: 2.29 or later is needed"),
        ));
    }
    Ok(())
}

fn to_revinfo(module: &ModulePath, rev: ModRev) -> Result<RevInfo, VcsError> {
    // The code repository only produces canonical versions; anything else is a bug here,
    // reported rather than served.
    let version = Version::parse(&rev.version)
        .map_err(|e| VcsError::not_found(format!("{module}@{}", rev.version), e.to_string()))?;
    Ok(RevInfo {
        version,
        time: rev.time,
        hash: rev.name,
        origin: rev.origin,
    })
}

/// A zip build makes many small allocations (per-entry metadata of the archive read and of the
/// zip written: tens of MiB for a repository of 20,000 files) in its blocking thread's glibc
/// arena; freed, they stay resident, and each build in another thread adds its own (measured
/// on the 20,000-file repository of tests/direct/bench.py: 350 MiB anonymous memory after 10
/// zips, 8 MiB with this). `malloc_trim` hands the free pages of every arena back to the
/// system, at a cost that is small next to a build of seconds.
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists; no pointer is passed.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols() {
        assert_eq!(protocol_of("git://127.0.0.1:9418/"), Some("git"));
        assert_eq!(protocol_of("git@github.com:acme/"), Some("ssh"));
        assert_eq!(protocol_of("ssh+git://x/"), Some("ssh"));
        assert_eq!(protocol_of("/srv/git/"), Some("file"));
        assert_eq!(protocol_of("ext::sh -c x"), Some("ext"));
    }

    /// The service spawns these futures on a multi-threaded runtime.
    #[allow(dead_code)]
    fn futures_are_send(d: &Direct, m: &ModulePath, v: &Version, f: &mut std::fs::File) {
        fn send<T: Send>(_: T) {}
        send(d.list(m));
        send(d.info(m, "main"));
        send(d.latest(m));
        send(d.go_mod(m, v));
        send(d.zip(m, v, f));
        send(d.prune_unused());
    }

    #[test]
    fn git_versions() {
        assert!(check_git_version("git version 2.39.5\n").is_ok());
        assert!(check_git_version("git version 2.28.0\n").is_err());
        assert!(check_git_version("").is_err());
    }
}
