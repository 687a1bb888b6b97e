//! The code-host layer (`cmd/go/internal/modfetch/codehost/git.go`): one git repository, its
//! refs, and revision lookups, without any module knowledge.
//!
//! The go command keeps a mirror per `GOMODCACHE` and decides what to fetch from what it
//! fetched before in the same process. This proxy keeps its mirrors for weeks, so every
//! answer is computed from the upstream refs (`git ls-remote`, refreshed after `refs_ttl`)
//! with tag pins applied, and matches what the go command computes with a fresh module cache:
//! the same shallow fetches, the same `Origin`, the same tags on a commit.

pub(crate) mod command;
pub(crate) mod mirror;
pub(crate) mod pins;
pub(crate) mod refs;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};

use self::command::Git;
use self::mirror::Mirror;
use self::pins::Pins;
use self::refs::{Refs, Tag};
use crate::error::VcsError;
use crate::metrics::Metrics;
use crate::revinfo::Origin;

/// Shortest hex string taken as a commit hash prefix (`minHashDigits`).
const MIN_HASH_DIGITS: usize = 7;

/// Most distinct file reads kept in memory per repository.
const FILE_CACHE_ENTRIES: usize = 4096;

/// Reports whether `s` is entirely lower-case hexadecimal (`codehost.AllHex`).
pub(crate) fn all_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The upstream refs at one moment, with pins applied.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// Effective refs: upstream with pinned tags kept at their pinned commits.
    pub refs: Arc<Refs>,
    /// `RepoSum` of the upstream refs as fetched (decides whether a full fetch is current).
    pub upstream_sum: String,
    /// Changes whenever the effective refs change; keys the caches above this layer.
    pub generation: u64,
    fetched_at: SystemTime,
}

/// A revision as the code host describes it (`codehost.RevInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GitRev {
    /// Full commit hash.
    pub name: String,
    /// 12-digit prefix, for pseudo-versions.
    pub short: String,
    /// The tag name if the revision was looked up by a tag on it, else the hash.
    pub version: String,
    /// Committer time, Unix seconds.
    pub time: i64,
    /// Tags on the commit, sorted.
    pub tags: Vec<String>,
    pub origin: Origin,
}

/// The refs snapshot as persisted between runs.
#[derive(Serialize, Deserialize)]
struct SavedRefs {
    url: String,
    fetched_at: u64,
    refs: std::collections::BTreeMap<String, String>,
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

pub(crate) struct GitRepo {
    /// The repository URL as discovered (before insteadOf rewrites): `Origin.URL`.
    pub url: String,
    pub mirror: Mirror,
    git: Arc<Git>,
    metrics: Arc<Metrics>,
    refs_ttl: Duration,
    refs_file: PathBuf,
    snapshot: Mutex<Option<Snapshot>>,
    pins: StdMutex<Pins>,
    stat_cache: StdMutex<HashMap<(u64, String), GitRev>>,
    files: StdMutex<HashMap<(String, String), Option<Bytes>>>,
    /// Commits with a keep-alive ref made in this process.
    kept: StdMutex<std::collections::HashSet<String>>,
    /// Held (shared) by every operation; pruning takes it exclusively.
    pub in_use: Arc<RwLock<()>>,
    /// Unix seconds of the last use.
    pub last_used: AtomicU64,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The directory-safe key of a repository URL (as the go command names its work dirs).
pub(crate) fn repo_key(url: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(format!("git3:{url}").as_bytes()))
}

/// Host (and port) of a URL or scp-like address, for messages.
pub(crate) fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if url.contains("://") {
        authority.to_string()
    } else {
        authority.split(':').next().unwrap_or(authority).to_string()
    }
}

impl GitRepo {
    pub fn open(
        url: &str,
        cache_dir: &std::path::Path,
        git: Arc<Git>,
        metrics: Arc<Metrics>,
        refs_ttl: Duration,
        max_size: u64,
        ls_remote_timeout: Duration,
    ) -> Result<GitRepo, VcsError> {
        let key = repo_key(url);
        let host = url_host(url);
        let pins = Pins::load(cache_dir.join("pins").join(format!("{key}.json")), url)?;
        Ok(GitRepo {
            url: url.to_string(),
            mirror: Mirror::new(
                cache_dir.join("mirrors").join(&key),
                url,
                &host,
                git.clone(),
                metrics.clone(),
                max_size,
                ls_remote_timeout,
            ),
            git,
            metrics,
            refs_ttl,
            refs_file: cache_dir.join("refs").join(format!("{key}.json")),
            snapshot: Mutex::new(None),
            pins: StdMutex::new(pins),
            stat_cache: StdMutex::new(HashMap::new()),
            files: StdMutex::new(HashMap::new()),
            kept: StdMutex::new(Default::default()),
            in_use: Arc::new(RwLock::new(())),
            last_used: AtomicU64::new(now_unix()),
        })
    }

    fn origin(&self) -> Origin {
        Origin {
            vcs: "git".into(),
            url: self.url.clone(),
            ..Origin::default()
        }
    }

    /// The refs, from memory or disk while younger than `refs_ttl`, else from `git ls-remote`.
    /// If asking upstream fails for a transient reason, an older snapshot is used.
    pub async fn snapshot(&self) -> Result<Snapshot, VcsError> {
        self.last_used.store(now_unix(), Ordering::Relaxed);
        let mut guard = self.snapshot.lock().await;
        let fresh = |s: &Snapshot| s.fetched_at.elapsed().is_ok_and(|age| age < self.refs_ttl);
        if let Some(s) = guard.as_ref()
            && fresh(s)
        {
            return Ok(s.clone());
        }
        if guard.is_none()
            && let Some(saved) = self.load_refs()
        {
            let s = self.make_snapshot(saved.0, saved.1, None);
            if fresh(&s) {
                *guard = Some(s.clone());
                return Ok(s);
            }
            *guard = Some(s);
        }
        match self.mirror.ls_remote().await {
            Ok(out) => {
                let upstream = Refs::parse_ls_remote(&out);
                self.save_refs(&upstream);
                let s = self.make_snapshot(upstream, SystemTime::now(), guard.as_ref());
                *guard = Some(s.clone());
                Ok(s)
            }
            Err(e @ (VcsError::Timeout { .. } | VcsError::Git { .. } | VcsError::Busy { .. })) => {
                match guard.as_ref() {
                    Some(stale) => {
                        tracing::warn!(repo = %self.git.redact(&self.url), error = %e,
                            "git ls-remote failed; using the refs from an earlier listing");
                        Ok(stale.clone())
                    }
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn make_snapshot(
        &self,
        upstream: Refs,
        fetched_at: SystemTime,
        previous: Option<&Snapshot>,
    ) -> Snapshot {
        let upstream_sum = upstream.repo_sum();
        let mut effective = upstream;
        let report = match self.pins.lock() {
            Ok(mut pins) => pins.apply(&mut effective),
            Err(_) => Default::default(),
        };
        for (tag, pinned, now) in &report.moved {
            self.metrics.inc(&self.metrics.moved_tags);
            tracing::warn!(repo = %self.git.redact(&self.url), tag = %tag, served = %pinned,
                upstream = %now, "tag moved upstream; keeping the commit already served");
        }
        for (tag, pinned) in &report.deleted {
            self.metrics.inc(&self.metrics.deleted_tags);
            tracing::warn!(repo = %self.git.redact(&self.url), tag = %tag, served = %pinned,
                "tag deleted upstream; keeping the commit already served");
        }
        let generation = match previous {
            Some(p) if *p.refs == effective => p.generation,
            _ => GENERATION.fetch_add(1, Ordering::Relaxed),
        };
        Snapshot {
            refs: Arc::new(effective),
            upstream_sum,
            generation,
            fetched_at,
        }
    }

    fn load_refs(&self) -> Option<(Refs, SystemTime)> {
        let data = std::fs::read(&self.refs_file).ok()?;
        let saved: SavedRefs = serde_json::from_slice(&data).ok()?;
        if saved.url != self.url {
            return None;
        }
        Some((
            Refs { map: saved.refs },
            UNIX_EPOCH + Duration::from_secs(saved.fetched_at),
        ))
    }

    fn save_refs(&self, refs: &Refs) {
        let saved = SavedRefs {
            url: self.url.clone(),
            fetched_at: now_unix(),
            refs: refs.map.clone(),
        };
        if let Ok(data) = serde_json::to_vec(&saved)
            && let Err(e) = pins::write_atomic(&self.refs_file, &data)
        {
            tracing::warn!(error = %e, "saving the refs snapshot failed");
        }
    }

    /// Tags with `prefix` and the `Origin` naming them (`(*gitRepo).Tags`).
    pub async fn tags(&self, prefix: &str) -> Result<(Vec<Tag>, Origin), VcsError> {
        let snap = self.snapshot().await?;
        let mut origin = self.origin();
        origin.tag_prefix = prefix.to_string();
        origin.tag_sum = snap.refs.tag_sum(prefix);
        Ok((snap.refs.tags(prefix), origin))
    }

    fn unknown(&self, rev: &str) -> VcsError {
        VcsError::not_found(
            self.git.redact(&self.url),
            format!("unknown revision {rev}"),
        )
    }

    /// Resolves `rev` (tag, branch, `HEAD`, or a hash or hash prefix) to a commit, fetching
    /// it if needed (`(*gitRepo).Stat`).
    pub async fn stat(&self, rev: &str) -> Result<GitRev, VcsError> {
        let snap = self.snapshot().await?;
        let key = (snap.generation, rev.to_string());
        if let Some(hit) = self
            .stat_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
        {
            return Ok(hit);
        }
        let info = self.stat_uncached(rev, &snap).await?;
        if let Ok(mut c) = self.stat_cache.lock() {
            if c.len() > 10_000 {
                c.clear();
            }
            c.insert(key, info.clone());
        }
        Ok(info)
    }

    async fn stat_uncached(&self, rev: &str, snap: &Snapshot) -> Result<GitRev, VcsError> {
        let refs = &snap.refs;
        let hex_len = refs.hash_len();
        let is_hash_like = |s: &str| s.len() >= MIN_HASH_DIGITS && s.len() <= hex_len && all_hex(s);

        // Which ref and commit `rev` names, in the go command's order: tag, branch, HEAD,
        // hash prefix of a ref's commit, full hash.
        let mut rev = rev.to_string();
        let (mut ref_name, mut hash) = (String::new(), String::new());
        if let Some(h) = refs.get(&format!("refs/tags/{rev}")) {
            ref_name = format!("refs/tags/{rev}");
            hash = h.to_string();
        } else if let Some(h) = refs.get(&format!("refs/heads/{rev}")) {
            ref_name = format!("refs/heads/{rev}");
            hash = h.to_string();
            rev = hash.clone();
        } else if rev == "HEAD" && refs.head().is_some() {
            ref_name = "HEAD".into();
            hash = refs.head().unwrap_or_default().to_string();
            rev = hash.clone();
        } else if is_hash_like(&rev) {
            for (k, h) in &refs.map {
                if h.starts_with(rev.as_str()) {
                    if !hash.is_empty() && hash != *h {
                        return Err(VcsError::not_found(
                            self.git.redact(&self.url),
                            format!("ambiguous revision {rev}"),
                        ));
                    }
                    // The map is sorted, so the first ref found is the least, as Go picks.
                    if ref_name.is_empty() {
                        ref_name = k.clone();
                    }
                    hash = h.clone();
                }
            }
            if !hash.is_empty() {
                rev = hash.clone();
            } else if rev.len() == hex_len {
                hash = rev.clone();
            }
        } else {
            return Err(self.unknown(&rev));
        }

        let sha256 = hex_len == 64;
        let local_rev;
        if !ref_name.is_empty() && !hash.is_empty() {
            let refspec = if ref_name == "HEAD" {
                // A local name that is never used, as the go command fetches HEAD; the
                // Origin gets no Ref for it.
                let spec = format!("{hash}:refs/dummy");
                ref_name = hash.clone();
                spec
            } else {
                format!("{ref_name}:{ref_name}")
            };
            if !self
                .mirror
                .ensure_commit(&hash, &refspec, sha256, &snap.upstream_sum)
                .await?
            {
                return Err(self.unknown(&rev));
            }
            local_rev = hash.clone();
        } else {
            // Not a ref's commit: it can only be in the history of the heads and tags.
            self.mirror.full_fetch(sha256, &snap.upstream_sum).await?;
            local_rev = rev.clone();
        }

        let Some(commit) = self.mirror.log(&local_rev).await? else {
            return Err(self.unknown(&rev));
        };
        if ref_name.is_empty() && !self.mirror.is_published(&commit.hash).await? {
            return Err(self.unknown(&rev));
        }

        let mut version = rev.clone();
        if commit.hash.starts_with(version.as_str()) {
            version = commit.hash.clone();
        }
        let mut tags = refs.tags_at(&commit.hash);
        tags.sort();
        tags.dedup();
        let version = if tags.contains(&version) {
            version
        } else {
            commit.hash.clone()
        };
        let mut origin = self.origin();
        origin.hash = commit.hash.clone();
        if ref_name != commit.hash {
            origin.r#ref = ref_name.clone();
        }

        if let Some(tag) = ref_name.strip_prefix("refs/tags/") {
            self.pin(tag, &commit.hash).await;
        }

        Ok(GitRev {
            short: commit.hash.chars().take(12).collect(),
            name: commit.hash,
            version,
            time: commit.time,
            tags,
            origin,
        })
    }

    /// Records that `tag` was used at `hash` (first use wins), and keeps the commit alive in
    /// the mirror (once per process and commit: the mirror may have been re-created).
    async fn pin(&self, tag: &str, hash: &str) {
        let pinned = match self.pins.lock() {
            Ok(mut pins) => pins.pin(tag, hash),
            Err(_) => return,
        };
        if let Err(e) = pinned {
            tracing::warn!(error = %e, tag, "recording a tag pin failed");
            return;
        }
        let first = self
            .kept
            .lock()
            .is_ok_and(|mut k| k.insert(hash.to_string()));
        if first && let Err(e) = self.mirror.keep(hash).await {
            tracing::warn!(error = %e, tag, "keeping a pinned commit failed");
        }
    }

    /// Whether the tree of the default branch's head lacks all of `paths`, when that can be
    /// told without fetching its files: `Some(true)` only if a blob-less probe ran and found
    /// none. `None` when the commit is already in the mirror (reading it is cheaper) or the
    /// probe could not be made.
    pub async fn head_lacks(&self, paths: &[String], tmp: &std::path::Path) -> Option<bool> {
        let snap = self.snapshot().await.ok()?;
        let head = snap.refs.head()?;
        if self.mirror.has_commit(head).await {
            return None;
        }
        let sha256 = snap.refs.hash_len() == 64;
        match self.mirror.probe_paths("HEAD", paths, sha256, tmp).await {
            Ok(Some(found)) => Some(found.is_empty()),
            _ => None,
        }
    }

    /// The default branch's commit (`(*gitRepo).Latest`).
    pub async fn latest(&self) -> Result<GitRev, VcsError> {
        let snap = self.snapshot().await?;
        let Some(head) = snap.refs.head().map(str::to_string) else {
            return Err(VcsError::not_found(
                self.git.redact(&self.url),
                "no commits",
            ));
        };
        let mut info = self.stat(&head).await?;
        info.origin.r#ref = "HEAD".into();
        info.origin.hash = head;
        Ok(info)
    }

    /// A file at revision `rev`: `Ok(None)` if it does not exist there; an unknown revision is
    /// an error (`(*gitRepo).ReadFile`).
    pub async fn read_file(
        &self,
        rev: &str,
        file: &str,
        max: usize,
    ) -> Result<Option<Bytes>, VcsError> {
        let info = self.stat(rev).await?;
        self.read_file_at(&info.name, file, max).await
    }

    /// A file in commit `hash` (which must be present).
    pub async fn read_file_at(
        &self,
        hash: &str,
        file: &str,
        max: usize,
    ) -> Result<Option<Bytes>, VcsError> {
        let key = (hash.to_string(), file.to_string());
        if let Some(hit) = self.files.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(hit);
        }
        let data = self.mirror.cat_file(hash, file, max).await?;
        if let Ok(mut c) = self.files.lock() {
            if c.len() >= FILE_CACHE_ENTRIES {
                c.clear();
            }
            c.insert(key, data.clone());
        }
        Ok(data)
    }

    /// The highest tag with `prefix` on `rev` or its ancestors that `allowed` accepts
    /// (`(*gitRepo).RecentTag`).
    pub async fn recent_tag(
        &self,
        rev: &str,
        prefix: &str,
        allowed: &(dyn Fn(&str) -> bool + Send + Sync),
    ) -> Result<Option<String>, VcsError> {
        let info = self.stat(rev).await?;
        let snap = self.snapshot().await?;
        let highest = |tags: &mut dyn Iterator<Item = String>| -> Option<String> {
            let mut best: Option<String> = None;
            for tag in tags {
                let Some(sem) = tag.strip_prefix(prefix) else {
                    continue;
                };
                if !allowed(&tag) {
                    continue;
                }
                let better = match &best {
                    None => gomod::semver::is_valid(sem),
                    Some(b) => {
                        gomod::semver::compare(sem, &b[prefix.len()..])
                            == std::cmp::Ordering::Greater
                    }
                };
                if better {
                    best = Some(tag);
                }
            }
            best.filter(|t| !all_hex(t))
        };

        // With only the commit itself fetched, the go command sees the tags on it.
        let mut on_commit = snap.refs.tags_at(&info.name);
        on_commit.sort();
        if let Some(tag) = highest(&mut on_commit.into_iter()) {
            return Ok(Some(tag));
        }
        // Otherwise, if any plausible tag exists, it fetches the history and looks again.
        if snap.refs.tags(&format!("{prefix}v")).is_empty() {
            return Ok(None);
        }
        let sha256 = snap.refs.hash_len() == 64;
        self.mirror.full_fetch(sha256, &snap.upstream_sum).await?;
        let merged = self.mirror.merged_commits(&info.name).await?;
        let mut reachable = snap
            .refs
            .tags(prefix)
            .into_iter()
            .filter(|t| merged.contains(&t.hash))
            .map(|t| t.name);
        Ok(highest(&mut reachable))
    }

    /// Whether `tag` is on `rev` or one of its ancestors (`(*gitRepo).DescendsFrom`).
    pub async fn descends_from(&self, rev: &str, tag: &str) -> Result<bool, VcsError> {
        let snap = self.snapshot().await?;
        let Some(tag_hash) = snap
            .refs
            .get(&format!("refs/tags/{tag}"))
            .map(str::to_string)
        else {
            return Ok(false);
        };
        let info = self.stat(rev).await?;
        if !self.mirror.is_complete() {
            let sha256 = snap.refs.hash_len() == 64;
            self.mirror.full_fetch(sha256, &snap.upstream_sum).await?;
        }
        self.mirror.is_ancestor(&tag_hash, &info.name).await
    }

    /// The `git archive` zip of `rev` (only `subdir`) in a new temporary file under `tmp`;
    /// `Ok(None)` if `subdir` has no files (`(*gitRepo).ReadZip`).
    pub async fn read_zip(
        &self,
        rev: &str,
        subdir: &str,
        max: u64,
        tmp: &std::path::Path,
    ) -> Result<Option<tempfile::NamedTempFile>, VcsError> {
        let info = self.stat(rev).await?;
        std::fs::create_dir_all(tmp).map_err(|e| VcsError::io("creating the temp dir", e))?;
        let spool = tempfile::NamedTempFile::new_in(tmp)
            .map_err(|e| VcsError::io("creating a temp file", e))?;
        let file = spool
            .reopen()
            .map_err(|e| VcsError::io("opening a temp file", e))?;
        let mut file = tokio::fs::File::from_std(file);
        if !self
            .mirror
            .archive(&info.name, subdir, &mut file, max)
            .await?
        {
            return Ok(None);
        }
        Ok(Some(spool))
    }
}
