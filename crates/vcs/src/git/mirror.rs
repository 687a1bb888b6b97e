//! One bare mirror on disk and the git commands that read and grow it, as
//! `codehost/git.go` runs them: `init --bare`, `remote add origin`, shallow fetches of single
//! refs, the full fetch of all heads and tags (then `--unshallow`), `log`, `cat-file`,
//! `for-each-ref --merged`, `merge-base --is-ancestor` and `archive`.
//!
//! Fetches are serialized by a per-mirror lock; reads of objects already present run in
//! parallel with them (git writes objects before it moves refs).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex as StdMutex;

use bytes::Bytes;
use tokio::sync::Mutex;

use super::command::{Git, GitCommand, RunError, RunFailure, dir_size};
use crate::error::VcsError;
use crate::metrics::Metrics;

/// What the mirror holds, beyond what is on disk.
#[derive(Debug, Default)]
struct FetchState {
    /// `git init` done (in this process or before).
    initialized: bool,
    /// `RepoSum` of the upstream refs at the last full fetch, if the mirror is complete since.
    full_fetch_sum: Option<String>,
}

/// Written into a mirror after its first full fetch.
const COMPLETE_MARKER: &str = "gomodproxy-complete";

pub(crate) struct Mirror {
    pub dir: PathBuf,
    /// The remote URL (before insteadOf rewrites, which git applies).
    url: String,
    /// For authentication error messages.
    host: String,
    git: Arc<Git>,
    metrics: Arc<Metrics>,
    max_size: u64,
    ls_remote_timeout: std::time::Duration,
    state: Mutex<FetchState>,
    /// Commits known to be present.
    present: StdMutex<HashSet<String>>,
}

/// Local commit data: hash and committer time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Commit {
    pub hash: String,
    pub time: i64,
}

impl Mirror {
    pub fn new(
        dir: PathBuf,
        url: &str,
        host: &str,
        git: Arc<Git>,
        metrics: Arc<Metrics>,
        max_size: u64,
        ls_remote_timeout: std::time::Duration,
    ) -> Mirror {
        Mirror {
            dir,
            url: url.to_string(),
            host: host.to_string(),
            git,
            metrics,
            max_size,
            ls_remote_timeout,
            state: Mutex::new(FetchState::default()),
            present: StdMutex::new(HashSet::new()),
        }
    }

    fn err(&self, e: RunError) -> VcsError {
        e.into_vcs(&self.host)
    }

    async fn run(&self, args: Vec<String>) -> Result<Vec<u8>, RunError> {
        self.git.run(GitCommand::new(args).dir(&self.dir)).await
    }

    /// `git ls-remote` of the repository (no mirror needed).
    pub async fn ls_remote(&self) -> Result<String, VcsError> {
        self.metrics.inc(&self.metrics.ls_remotes);
        let out = self
            .git
            .run(
                GitCommand::new(["ls-remote", "-q", "--end-of-options", self.url.as_str()])
                    .network()
                    .timeout(self.ls_remote_timeout),
            )
            .await
            .map_err(|e| self.err(e))?;
        String::from_utf8(out).map_err(|_| VcsError::Git {
            command: format!("git ls-remote {}", self.git.redact(&self.url)),
            stderr: "output is not UTF-8".into(),
        })
    }

    /// Creates the bare repository if it does not exist (`git init --bare`, `git remote add
    /// origin`). Called with the state lock held.
    async fn init_locked(&self, state: &mut FetchState, sha256: bool) -> Result<(), VcsError> {
        if state.initialized {
            return Ok(());
        }
        if self.dir.join("objects").is_dir() && self.dir.join("config").is_file() {
            state.initialized = true;
            // A mirror from an earlier run: complete if it is not shallow, but not known to
            // hold the current refs.
            return Ok(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| VcsError::io(format!("creating {}", self.dir.display()), e))?;
        let format = if sha256 { "sha256" } else { "sha1" };
        let init = async {
            self.run(vec![
                "init".into(),
                "--bare".into(),
                format!("--object-format={format}"),
            ])
            .await?;
            self.run(vec![
                "remote".into(),
                "add".into(),
                "origin".into(),
                "--".into(),
                self.url.clone(),
            ])
            .await?;
            Ok::<_, RunError>(())
        };
        if let Err(e) = init.await {
            let _ = std::fs::remove_dir_all(&self.dir);
            return Err(self.err(e));
        }
        state.initialized = true;
        Ok(())
    }

    /// Whether the commit `hash` is in the mirror.
    pub async fn has_commit(&self, hash: &str) -> bool {
        if self.present.lock().is_ok_and(|p| p.contains(hash)) {
            return true;
        }
        if !self.dir.join("objects").is_dir() {
            return false;
        }
        let ok = self
            .run(vec![
                "cat-file".into(),
                "-e".into(),
                "--end-of-options".into(),
                format!("{hash}^{{commit}}"),
            ])
            .await
            .is_ok();
        if ok && let Ok(mut p) = self.present.lock() {
            p.insert(hash.to_string());
        }
        ok
    }

    /// Makes sure commit `hash` is present: a fetch of `refspec` (shallow, `--depth=1`, unless
    /// the mirror is complete), else the full fetch. `upstream_sum` is the `RepoSum` of the
    /// upstream refs the caller resolved `hash` from.
    pub async fn ensure_commit(
        &self,
        hash: &str,
        refspec: &str,
        sha256: bool,
        upstream_sum: &str,
    ) -> Result<bool, VcsError> {
        if self.has_commit(hash).await {
            return Ok(true);
        }
        let mut state = self.state.lock().await;
        self.init_locked(&mut state, sha256).await?;
        if self.has_commit(hash).await {
            return Ok(true);
        }
        // Once complete, never shallow again: a --depth=1 fetch would cut the history that
        // pseudo-version bases are computed from.
        let complete = self.is_complete();
        let mut args: Vec<String> = Vec::new();
        if !complete {
            // protocol v2 works around git 2.21+ missing tags of the wanted commit
            // (golang.org/issue/56881), as the go command does.
            args.extend(["-c".into(), "protocol.version=2".into()]);
        }
        args.extend(["fetch".into(), "-f".into()]);
        if !complete {
            args.push("--depth=1".into());
        }
        args.extend([
            "--end-of-options".into(),
            "origin".into(),
            refspec.to_string(),
        ]);
        self.metrics.inc(&self.metrics.fetches);
        let fetched = self
            .git
            .run(
                GitCommand::new(args)
                    .dir(&self.dir)
                    .network()
                    .watch_size(&self.dir, self.max_size),
            )
            .await;
        match fetched {
            Err(e) if matches!(e.failure, RunFailure::TooLarge(_)) => {
                return Err(self.too_large(e));
            }
            Err(e) if !matches!(e.failure, RunFailure::Exit { .. }) => return Err(self.err(e)),
            // Any other failure: fall back to the full fetch, as the go command does.
            _ => {}
        }
        self.check_size(&mut state).await?;
        if self.has_commit(hash).await {
            return Ok(true);
        }
        self.full_fetch_locked(&mut state, sha256, upstream_sum)
            .await?;
        Ok(self.has_commit(hash).await)
    }

    /// After a fetch: a mirror over `max_repo_size` is removed (the watcher during the fetch
    /// catches most, but not one that finished between two looks).
    async fn check_size(&self, state: &mut FetchState) -> Result<(), VcsError> {
        let dir = self.dir.clone();
        let size = tokio::task::spawn_blocking(move || dir_size(&dir))
            .await
            .unwrap_or(0);
        if size <= self.max_size {
            return Ok(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        state.initialized = false;
        state.full_fetch_sum = None;
        self.forget_present();
        Err(VcsError::TooLarge {
            reason: format!(
                "repository {} is {size} bytes, more than max_repo_size ({} bytes)",
                self.git.redact(&self.url),
                self.max_size
            ),
        })
    }

    /// Fetches all heads and tags with their history (`fetch -f --prune origin
    /// refs/heads/*:refs/heads/* refs/tags/*:refs/tags/*`, then `--unshallow`), unless that was
    /// done already for the same upstream refs.
    pub async fn full_fetch(&self, sha256: bool, upstream_sum: &str) -> Result<(), VcsError> {
        let mut state = self.state.lock().await;
        self.init_locked(&mut state, sha256).await?;
        self.full_fetch_locked(&mut state, sha256, upstream_sum)
            .await
    }

    async fn full_fetch_locked(
        &self,
        state: &mut FetchState,
        _sha256: bool,
        upstream_sum: &str,
    ) -> Result<(), VcsError> {
        let shallow = self.dir.join("shallow");
        if state.full_fetch_sum.as_deref() == Some(upstream_sum) && !shallow.exists() {
            return Ok(());
        }
        self.metrics.inc(&self.metrics.full_fetches);
        let network = |args: Vec<&str>| {
            GitCommand::new(args)
                .dir(&self.dir)
                .network()
                .watch_size(&self.dir, self.max_size)
        };
        let result = self
            .git
            .run(network(vec![
                "fetch",
                "-f",
                "--prune",
                "--end-of-options",
                "origin",
                "refs/heads/*:refs/heads/*",
                "refs/tags/*:refs/tags/*",
            ]))
            .await;
        if let Err(e) = result {
            return Err(self.fetch_failed(e));
        }
        // Expand the refs first, then unshallow: git up to at least 2.23 needs the two steps
        // (golang.org/issue/34266).
        if shallow.exists() {
            let result = self
                .git
                .run(network(vec![
                    "fetch",
                    "--unshallow",
                    "-f",
                    "--end-of-options",
                    "origin",
                ]))
                .await;
            if let Err(e) = result {
                return Err(self.fetch_failed(e));
            }
        }
        self.check_size(state).await?;
        std::fs::write(self.dir.join(COMPLETE_MARKER), b"")
            .map_err(|e| VcsError::io("marking the mirror complete", e))?;
        state.full_fetch_sum = Some(upstream_sum.to_string());
        Ok(())
    }

    /// Whether the mirror holds the whole history of its heads and tags (a full fetch
    /// succeeded and nothing was fetched shallow since).
    pub fn is_complete(&self) -> bool {
        self.dir.join(COMPLETE_MARKER).exists() && !self.dir.join("shallow").exists()
    }

    fn forget_present(&self) {
        if let Ok(mut p) = self.present.lock() {
            p.clear();
        }
    }

    fn too_large(&self, e: RunError) -> VcsError {
        // A partial mirror of a repository that is too big is useless: free the space.
        let _ = std::fs::remove_dir_all(&self.dir);
        self.forget_present();
        if let Ok(mut state) = self.state.try_lock() {
            state.initialized = false;
            state.full_fetch_sum = None;
        }
        self.err(e)
    }

    fn fetch_failed(&self, e: RunError) -> VcsError {
        if matches!(e.failure, RunFailure::TooLarge(_)) {
            return self.too_large(e);
        }
        self.err(e)
    }

    /// `git log -n1 --format=%H %ct <rev>`: the commit `rev` names, or `None` if there is none.
    pub async fn log(&self, rev: &str) -> Result<Option<Commit>, VcsError> {
        let out = self
            .run(vec![
                "-c".into(),
                "log.showsignature=false".into(),
                "log".into(),
                "--no-decorate".into(),
                "-n1".into(),
                "--format=format:%H %ct".into(),
                "--end-of-options".into(),
                rev.to_string(),
                "--".into(),
            ])
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) if e.exit_code().is_some() => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let text = String::from_utf8_lossy(&out);
        let mut f = text.split_whitespace();
        let (Some(hash), Some(time)) = (f.next(), f.next()) else {
            return Err(VcsError::Git {
                command: "git log".into(),
                stderr: format!("unexpected response from git log: {text:?}"),
            });
        };
        let time: i64 = time.parse().map_err(|_| VcsError::Git {
            command: "git log".into(),
            stderr: format!("invalid time from git log: {text:?}"),
        })?;
        if let Ok(mut p) = self.present.lock() {
            p.insert(hash.to_string());
        }
        Ok(Some(Commit {
            hash: hash.to_string(),
            time,
        }))
    }

    /// `git cat-file blob <hash>:<path>`: the file, or `None` if the tree has no such blob.
    pub async fn cat_file(
        &self,
        hash: &str,
        path: &str,
        max: usize,
    ) -> Result<Option<Bytes>, VcsError> {
        let out = self
            .git
            .run(
                GitCommand::new([
                    "cat-file".to_string(),
                    "--end-of-options".to_string(),
                    "blob".to_string(),
                    format!("{hash}:{path}"),
                ])
                .dir(&self.dir)
                .stdout_limit(max),
            )
            .await;
        match out {
            Ok(out) => Ok(Some(Bytes::from(out))),
            // As the go command: whatever git says, the file is not there.
            Err(e) if e.exit_code().is_some() => Ok(None),
            Err(e) if matches!(e.failure, RunFailure::TooLarge(_)) => Err(VcsError::TooLarge {
                reason: format!("{path} at {hash} is larger than {max} bytes"),
            }),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Peeled commit hashes of the local tags, heads and pins whose tip is reachable from
    /// `hash` (`git for-each-ref --merged`).
    pub async fn merged_commits(&self, hash: &str) -> Result<HashSet<String>, VcsError> {
        let out = self
            .run(vec![
                "for-each-ref".into(),
                "--format=%(objectname) %(*objectname)".into(),
                format!("--merged={hash}"),
                "refs/tags/".into(),
                "refs/gomodproxy/".into(),
            ])
            .await
            .map_err(|e| self.err(e))?;
        let text = String::from_utf8_lossy(&out);
        Ok(text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let direct = f.next()?;
                Some(f.next().unwrap_or(direct).to_string())
            })
            .collect())
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    pub async fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, VcsError> {
        let out = self
            .run(vec![
                "merge-base".into(),
                "--is-ancestor".into(),
                "--".into(),
                ancestor.to_string(),
                descendant.to_string(),
            ])
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if e.exit_code() == Some(1) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Whether `hash` is reachable from a local head, tag or pin (so that no commit outside
    /// the repository's published history, such as a rejected pull request, is ever served).
    pub async fn is_published(&self, hash: &str) -> Result<bool, VcsError> {
        let out = self
            .run(vec![
                "for-each-ref".into(),
                "--count=1".into(),
                "--format=%(refname)".into(),
                format!("--contains={hash}"),
                "refs/heads/".into(),
                "refs/tags/".into(),
                "refs/gomodproxy/".into(),
            ])
            .await
            .map_err(|e| self.err(e))?;
        Ok(!out.is_empty())
    }

    /// Keeps `hash` alive in the mirror (a ref under `refs/gomodproxy/pin/`).
    pub async fn keep(&self, hash: &str) -> Result<(), VcsError> {
        let _state = self.state.lock().await;
        self.run(vec![
            "update-ref".into(),
            "--end-of-options".into(),
            format!("refs/gomodproxy/pin/{hash}"),
            hash.to_string(),
        ])
        .await
        .map(|_| ())
        .map_err(|e| self.err(e))
    }

    /// `git archive --format=zip` of `hash` (only `subdir`, if not empty) into `dest`, at most
    /// `max` bytes, with the go command's settings: `core.autocrlf=input`, `core.eol=lf`, and
    /// `export-subst`/`export-ignore` disabled through `info/attributes`. `Ok(false)` if
    /// `subdir` matches no files.
    pub async fn archive(
        &self,
        hash: &str,
        subdir: &str,
        dest: &mut tokio::fs::File,
        max: u64,
    ) -> Result<bool, VcsError> {
        {
            let _state = self.state.lock().await;
            ensure_git_attributes(&self.dir)
                .map_err(|e| VcsError::io("writing info/attributes", e))?;
        }
        let mut args = vec![
            "-c".to_string(),
            "core.autocrlf=input".into(),
            "-c".into(),
            "core.eol=lf".into(),
            "archive".into(),
            "--format=zip".into(),
            "--prefix=prefix/".into(),
            "--end-of-options".into(),
            hash.to_string(),
        ];
        if !subdir.is_empty() {
            args.push(subdir.to_string());
        }
        let out = self
            .git
            .run(GitCommand::new(args).dir(&self.dir).stdout_file(dest, max))
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if e.stderr().contains("did not match any files") => Ok(false),
            Err(e) if matches!(e.failure, RunFailure::TooLarge(_)) => Err(VcsError::TooLarge {
                reason: format!("git archive of {hash} is larger than {max} bytes"),
            }),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Which of `paths` exist in the tree of `refname` upstream, learned from a shallow,
    /// blob-less fetch into a throwaway repository (so a huge repository's files are never
    /// downloaded to find out that a directory is not a module). `Ok(None)` if the probe
    /// could not be made; the caller then does what it would have done without it.
    pub async fn probe_paths(
        &self,
        refname: &str,
        paths: &[String],
        sha256: bool,
        tmp: &Path,
    ) -> Result<Option<Vec<String>>, VcsError> {
        std::fs::create_dir_all(tmp).map_err(|e| VcsError::io("creating the temp dir", e))?;
        let probe = tempfile::Builder::new()
            .prefix("probe-")
            .tempdir_in(tmp)
            .map_err(|e| VcsError::io("creating a probe repository", e))?;
        let dir = probe.path();
        let format = if sha256 { "sha256" } else { "sha1" };
        let local = |args: Vec<String>| GitCommand::new(args).dir(dir);
        if self
            .git
            .run(local(vec![
                "init".into(),
                "--bare".into(),
                format!("--object-format={format}"),
            ]))
            .await
            .is_err()
        {
            return Ok(None);
        }
        self.metrics.inc(&self.metrics.probes);
        let fetched = self
            .git
            .run(
                GitCommand::new(vec![
                    "-c".to_string(),
                    "protocol.version=2".into(),
                    "fetch".into(),
                    "--depth=1".into(),
                    "--filter=blob:none".into(),
                    "--no-tags".into(),
                    "--end-of-options".into(),
                    self.url.clone(),
                    format!("{refname}:refs/probe"),
                ])
                .dir(dir)
                .network()
                .watch_size(dir, self.max_size),
            )
            .await;
        match fetched {
            Ok(_) => {}
            Err(e) if matches!(e.failure, RunFailure::Exit { .. }) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        }
        let mut args = vec![
            "ls-tree".to_string(),
            "--name-only".into(),
            "--end-of-options".into(),
            "refs/probe".into(),
            "--".into(),
        ];
        args.extend(paths.iter().cloned());
        match self.git.run(local(args)).await {
            Ok(out) => Ok(Some(
                String::from_utf8_lossy(&out)
                    .lines()
                    .map(str::to_string)
                    .collect(),
            )),
            Err(_) => Ok(None),
        }
    }

    /// Last use of the mirror, for pruning: the mtime of this file.
    pub fn used_marker(dir: &Path) -> PathBuf {
        dir.join("gomodproxy-used")
    }
}

/// Appends `* -export-subst -export-ignore` to `info/attributes` unless it ends with it
/// (`codehost.ensureGitAttributes`), so archives do not depend on the repository's own
/// `.gitattributes` export rules (golang.org/issue/27153).
fn ensure_git_attributes(repo: &Path) -> std::io::Result<()> {
    use std::io::{Read, Write};
    const ATTR: &[u8] = b"\n* -export-subst -export-ignore\n";
    let dir = repo.join("info");
    std::fs::create_dir_all(&dir)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(dir.join("attributes"))?;
    let mut have = Vec::new();
    f.read_to_end(&mut have)?;
    if !have.ends_with(ATTR) {
        f.write_all(ATTR)?;
    }
    Ok(())
}
