//! `gomodproxy prewarm`: the command line around [`gomodproxy_service::prewarm`].
//!
//! It runs either in process — the same store and service as `serve`, opened directly, which
//! works whether or not a server is running on a store that allows several processes (fs,
//! Redis, S3) — or, with `--server URL`, through a running gomodproxy over HTTP (needed for sled,
//! whose database a running server holds locked, and handy on any backend). Progress goes to
//! stderr: a bar on a terminal, one line per module version otherwise. The summary goes to
//! stdout; failures are listed and make the exit status non-zero.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use bytes::Bytes;
use gomod::sumdb::tlog::{
    Tile, TilePlan, Tree, stored_hash_index, sub_tree_index, tree_hash_from_subtrees,
};
use gomod::sumdb::{Lookup, note::Verifier};
use gomod::{ModulePath, Version};
use gomodproxy_service::prewarm::{
    Item, Outcome, PrewarmOptions, RefreshScope, Report, StoredModule, Target, TargetDone,
    WarmError, Warmed, Warmer, prewarm, refresh,
};
use gomodproxy_service::progress::Progress;
use gomodproxy_service::{KnownTree, ProxyService, SealReport};
use gomodproxy_storage::ArtifactKind;
use indicatif::ProgressBar;

use crate::config::Config;
use crate::http::CACHE_STATUS;
use crate::terminal::Terminal;

/// What the command line asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Items given as arguments (`module@version`, `go.mod:PATH`, …).
    pub items: Vec<String>,
    /// Files with one item per line.
    pub files: Vec<PathBuf>,
    /// Toolchain versions (`go1.22.1`), for each of `platforms`.
    pub toolchains: Vec<String>,
    /// `GOOS/GOARCH` platforms of `toolchains` (default: this machine's).
    pub platforms: Vec<String>,
    /// A running server to prewarm through.
    pub server: Option<String>,
    /// Overrides `prewarm.concurrency`.
    pub concurrency: Option<usize>,
    /// Overrides `prewarm.retries`.
    pub retries: Option<u32>,
    /// Go command `latest` notes of clients (`--sumdb-known-tree`), beside the config's
    /// `prewarm.sumdb_known_trees`.
    pub known_trees: Vec<PathBuf>,
    /// Refresh instead (`--refresh`): the items name modules (none: every stored module).
    pub refresh: bool,
}

/// Turns the request (or, without items, the config's `prewarm.items`) into items.
pub fn items(
    request: &Request,
    config: &Config,
    options: &PrewarmOptions,
) -> anyhow::Result<Vec<Item>> {
    let mut texts: Vec<String> = request.items.clone();
    for file in &request.files {
        texts.extend(
            read_list(file)
                .with_context(|| format!("cannot read the prewarm list {}", file.display()))?,
        );
    }
    let platforms = if request.platforms.is_empty() {
        vec![options.default_platform.clone()]
    } else {
        request.platforms.clone()
    };
    for go in &request.toolchains {
        for platform in &platforms {
            texts.push(format!("toolchain:{go}@{platform}"));
        }
    }
    if texts.is_empty() {
        texts = config.prewarm.items.clone();
    }
    if texts.is_empty() {
        anyhow::bail!(
            "nothing to prewarm: give module@version, go.mod:PATH, go.sum:PATH or toolchain:goX.Y.Z \
             arguments, --file LIST, --toolchain, or set prewarm.items in the configuration"
        );
    }
    texts
        .iter()
        .map(|t| Item::parse(t, &options.default_platform).map_err(anyhow::Error::new))
        .collect()
}

/// The options of a run: the config's `[prewarm]` with the command line's overrides; the known
/// trees (the config's and the command line's) are read here, and a file that cannot be read
/// is an error.
pub fn options(request: &Request, config: &Config) -> anyhow::Result<PrewarmOptions> {
    let known_trees = config
        .prewarm
        .sumdb_known_trees
        .iter()
        .chain(&request.known_trees)
        .map(|path| KnownTree::read(path).map_err(anyhow::Error::new))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(PrewarmOptions {
        concurrency: request.concurrency.unwrap_or(config.prewarm.concurrency),
        retries: request.retries.unwrap_or(config.prewarm.retries),
        retry_backoff: config.prewarm.retry_backoff,
        known_trees,
        ..PrewarmOptions::default()
    })
}

/// What `--refresh` refreshes: the modules the items name (`module` or `module@latest`), or
/// every stored module when there are none.
pub fn refresh_scope(request: &Request) -> anyhow::Result<RefreshScope> {
    let mut texts = request.items.clone();
    for file in &request.files {
        texts.extend(
            read_list(file)
                .with_context(|| format!("cannot read the module list {}", file.display()))?,
        );
    }
    if !request.toolchains.is_empty() {
        anyhow::bail!("--refresh takes modules, not --toolchain");
    }
    if texts.is_empty() {
        return Ok(RefreshScope::Stored);
    }
    let modules = texts
        .iter()
        .map(|t| {
            let path = t.trim().strip_suffix("@latest").unwrap_or(t.trim());
            ModulePath::parse(path).map_err(|e| {
                anyhow::anyhow!("--refresh {t:?}: want a module path (or module@latest): {e}")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(RefreshScope::Modules(modules))
}

/// The job a request asks for.
enum Job {
    Prewarm(Vec<Item>),
    Refresh(RefreshScope),
}

impl Job {
    async fn run(
        &self,
        warmer: &dyn Warmer,
        options: &PrewarmOptions,
        progress: &dyn Progress<TargetDone>,
    ) -> Report {
        match self {
            Job::Prewarm(items) => prewarm(warmer, items, options, progress).await,
            Job::Refresh(scope) => refresh(warmer, scope, options, progress).await,
        }
    }
}

/// Runs `gomodproxy prewarm`; `Ok(false)` when something failed (already reported).
pub async fn run(request: Request, config: Config) -> anyhow::Result<bool> {
    let options = options(&request, &config)?;
    let job = if request.refresh {
        Job::Refresh(refresh_scope(&request)?)
    } else {
        Job::Prewarm(items(&request, &config, &options)?)
    };
    let progress = TerminalProgress::new();
    let started = Instant::now();
    let policy = crate::access::policy(&config)?;
    let report = match &request.server {
        Some(url) => {
            let warmer = HttpWarmer::new(url, &config)?;
            for k in &options.known_trees {
                let verifier = warmer.sumdb.as_ref().ok_or_else(|| {
                    anyhow::anyhow!(
                        "known tree {}: the checksum database is off (sumdb.enabled)",
                        k.origin
                    )
                })?;
                open(verifier, &k.note, &k.origin).map_err(|e| {
                    anyhow::anyhow!(
                        "{e} (not a tree head signed by the key of {})",
                        verifier.name()
                    )
                })?;
            }
            if request.refresh && matches!(job, Job::Refresh(RefreshScope::Stored)) {
                anyhow::bail!(
                    "--refresh --server needs the modules to refresh (a running server's store cannot be listed)"
                );
            }
            let warmer = crate::access::PolicyWarmer::new(&warmer, policy);
            job.run(&warmer, &options, &progress).await
        }
        None => {
            let store = crate::backend::open(&config.storage, &config.cache)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{e} (if a running server holds this store, prewarm through it with --server URL)"
                    )
                })?;
            let mut service_config = crate::access::service_config(&config)?;
            service_config.fetch_lock = crate::backend::fetch_lock(&config.coordination).await?;
            let service = ProxyService::new(store.storage.clone(), service_config)
                .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
            // A known tree signed by another key is refused before anything is fetched.
            for k in &options.known_trees {
                service.open_known_tree(k)?;
            }
            let warmer = crate::access::PolicyWarmer::new(&service, policy);
            job.run(&warmer, &options, &progress).await
        }
    };
    progress.finish();
    print_report(&report, started.elapsed());
    Ok(report.ok())
}

/// Runs `prewarm --refresh` of every stored module in the background every
/// `prewarm.refresh_interval` (when set), reporting in the logs and metrics.
pub fn start_refresh_schedule(
    config: &Config,
    service: ProxyService,
    policy: std::sync::Arc<gomodproxy_access::Policy>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
) {
    let interval = config.prewarm.refresh_interval;
    if interval.is_zero() {
        return;
    }
    if config.mode == crate::config::Mode::Offline {
        tracing::warn!(target: "gomodproxy::prewarm", "prewarm.refresh_interval is set, but an offline proxy has no upstream to refresh from: no scheduled refresh");
        return;
    }
    let options = match options(&Request::default(), config) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(target: "gomodproxy::prewarm", error = %format!("{e:#}"), "scheduled refresh not started");
            return;
        }
    };
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is now: the first refresh runs one interval after the start.
        ticks.tick().await;
        loop {
            ticks.tick().await;
            metrics.prewarm.set_running(true);
            tracing::info!(target: "gomodproxy::prewarm", "scheduled refresh started");
            let started = Instant::now();
            let warmer = crate::access::PolicyWarmer::new(&service, policy.clone());
            let report = refresh(&warmer, &RefreshScope::Stored, &options, &metrics.prewarm).await;
            metrics.prewarm.set_running(false);
            for (what, why) in &report.failures {
                tracing::warn!(target: "gomodproxy::prewarm", item = %what, error = %why, "refresh failed");
            }
            tracing::info!(
                target: "gomodproxy::prewarm",
                targets = report.targets,
                fetched = report.fetched,
                failed = report.failures.len(),
                bytes = report.bytes_fetched,
                sumdb_records = report.sumdb_records,
                sumdb_trees = report.sumdb_trees,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "scheduled refresh finished"
            );
        }
    });
}

/// The summary on stdout, the failures on stderr.
pub fn print_report(report: &Report, elapsed: Duration) {
    println!(
        "prewarm: {} module versions in {:.1?}: {} fetched ({} artifacts, {}), {} already stored, {} failed; {} tree heads provable offline ({} known); {} checksum records provable offline",
        report.targets,
        elapsed,
        report.fetched,
        report.artifacts_fetched,
        human_bytes(report.bytes_fetched),
        report.already_stored,
        report.failures.len(),
        report.sumdb_trees,
        report.sumdb_known,
        report.sumdb_records,
    );
    for (what, why) in &report.failures {
        eprintln!("prewarm: FAILED {what}: {why}");
    }
}

/// `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Progress on stderr: a bar of module versions on a terminal (failures printed above it), a
/// line per phase and per module version otherwise.
struct TerminalProgress(Terminal);

impl TerminalProgress {
    fn new() -> Self {
        TerminalProgress(Terminal::new("prewarm"))
    }

    fn finish(&self) {
        self.0.finish();
    }
}

impl Progress<TargetDone> for TerminalProgress {
    fn phase(&self, name: &str, total: Option<u64>, _bytes: Option<u64>) {
        let (line, bar) = match total {
            Some(n) => (format!("{name} ({n})"), ProgressBar::new(n)),
            None => (name.to_string(), ProgressBar::new_spinner()),
        };
        self.0.phase(
            name,
            &line,
            bar,
            "{prefix:>12} [{bar:30}] {pos}/{len} {wide_msg}",
        );
    }

    fn step(&self, done: &TargetDone, _bytes: u64) {
        let (target, outcome) = (&done.target, &done.outcome);
        let line = match outcome {
            Outcome::AlreadyStored => format!("stored   {target}"),
            Outcome::Fetched { artifacts, bytes } => {
                format!(
                    "fetched  {target} ({artifacts} artifacts, {})",
                    human_bytes(*bytes)
                )
            }
            Outcome::Failed(e) => format!("FAILED   {target}: {e}"),
        };
        if !self.0.is_terminal() {
            self.0.println(&line);
            return;
        }
        self.0.with_bar(|bar| bar.inc(1));
        if matches!(outcome, Outcome::Failed(_)) {
            self.0.println(&line);
        }
    }
}

/// Prewarming through a running gomodproxy: plain GOPROXY requests, which the server answers
/// from its store or fetches, verifies and stores. Its `x-gomodproxy-cache` header says which.
pub struct HttpWarmer {
    base: String,
    client: reqwest::Client,
    /// The database records are sealed against, if the config names one.
    sumdb: Option<Verifier>,
}

impl HttpWarmer {
    /// A warmer for the server at `url`.
    pub fn new(url: &str, config: &Config) -> anyhow::Result<HttpWarmer> {
        let base = url.trim_end_matches('/').to_string();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            anyhow::bail!("--server {url:?}: want an http:// or https:// URL");
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.fetch.connect_timeout)
            .build()
            .context("cannot build the HTTP client")?;
        let sumdb = config
            .sumdb
            .databases
            .first()
            .map(|spec| spec.verifier_key())
            .map(Verifier::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("sumdb.databases: {e}"))?;
        Ok(HttpWarmer {
            base,
            client,
            sumdb: sumdb.filter(|_| config.sumdb.enabled),
        })
    }

    async fn get(&self, path: &str) -> Result<(Bytes, bool), WarmError> {
        let url = format!("{}/{path}", self.base);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| WarmError::Transient(format!("{url}: {e}")))?;
        let status = response.status();
        let fetched = response
            .headers()
            .get(CACHE_STATUS)
            .is_some_and(|v| v == "miss");
        let body = response
            .bytes()
            .await
            .map_err(|e| WarmError::Transient(format!("{url}: {e}")))?;
        let reason = || {
            String::from_utf8_lossy(&body[..body.len().min(500)])
                .trim()
                .to_string()
        };
        // Every failure but "not found" may pass (the server's upstream or store): retried.
        match status.as_u16() {
            200 => Ok((body, fetched)),
            404 | 410 => Err(WarmError::NotFound(format!("{url}: {}", reason()))),
            503 | 504 => Err(WarmError::Transient(format!("{url}: {}", reason()))),
            code => Err(WarmError::Transient(format!("{url}: {code} {}", reason()))),
        }
    }
}

#[async_trait]
impl Warmer for HttpWarmer {
    async fn artifact(
        &self,
        module: &ModulePath,
        version: &Version,
        kind: ArtifactKind,
    ) -> Result<Warmed, WarmError> {
        let path = format!(
            "{}/@v/{}.{}",
            module.escaped(),
            version.escaped(),
            kind.extension()
        );
        let (body, fetched) = self.get(&path).await?;
        Ok(Warmed {
            size: body.len() as u64,
            fetched,
            body: (kind == ArtifactKind::Mod).then_some(body),
        })
    }

    async fn list(&self, module: &ModulePath) -> Result<Bytes, WarmError> {
        Ok(self.get(&format!("{}/@v/list", module.escaped())).await?.0)
    }

    async fn latest(&self, module: &ModulePath) -> Result<Bytes, WarmError> {
        Ok(self.get(&format!("{}/@latest", module.escaped())).await?.0)
    }

    async fn stored_modules(&self) -> Result<Vec<StoredModule>, WarmError> {
        Err(WarmError::Failed(
            "a running server's store cannot be listed over HTTP: name the modules to refresh"
                .to_string(),
        ))
    }

    /// Does what an offline client will do for each target: its lookup, then every tile that
    /// proves the record in the tree the lookup came with — so the server has them stored. For
    /// each known tree, what a client that remembers it does: the tiles on its right edge, and
    /// those that prove it a prefix of the server's tree. (The server stores those tiles, but
    /// does not record the tree for later seals: only an in-process prewarm does.)
    async fn seal(&self, targets: &[Target], known: &[KnownTree]) -> Result<SealReport, WarmError> {
        let mut report = SealReport::default();
        let Some(verifier) = &self.sumdb else {
            return Ok(report);
        };
        let name = verifier.name();
        for target in targets {
            let path = format!(
                "sumdb/{name}/lookup/{}@{}",
                target.module.escaped(),
                target.version.escaped()
            );
            let body = match self.get(&path).await {
                Ok((body, _)) => body,
                // A private module, or verification off for it: nothing to seal.
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            let lookup =
                Lookup::parse(&body).map_err(|e| WarmError::Failed(format!("{path}: {e}")))?;
            let tree = open(verifier, &lookup.note, &path)?;
            let proven = self
                .proven(name, tree, &[stored_hash_index(0, lookup.id)], &path)
                .await?;
            if proven != [gomod::sumdb::tlog::record_hash(lookup.text.as_bytes())] {
                return Err(WarmError::Failed(format!(
                    "{path}: the record is not in the tree the server serves"
                )));
            }
            report.records += 1;
        }
        if known.is_empty() {
            return Ok(report);
        }
        let latest_path = format!("sumdb/{name}/latest");
        let (note, _) = self.get(&latest_path).await?;
        let served = open(verifier, &note, &latest_path)?;
        for k in known {
            let tree = open(verifier, &k.note, &k.origin)?;
            if tree.n > served.n {
                return Err(WarmError::Failed(format!(
                    "known tree {}: {} records, but the server's tree of {name} has {} (prewarm the server first)",
                    k.origin, tree.n, served.n
                )));
            }
            let stx = sub_tree_index(0, tree.n);
            // Its own right edge, as the client rebuilds it, then the proof in the server's tree.
            for (within, what) in [(tree, "its own tiles"), (served, "the server's tree")] {
                let hashes = self.proven(name, within, &stx, &k.origin).await?;
                if tree_hash_from_subtrees(&hashes).unwrap_or_default() != tree.hash {
                    return Err(WarmError::Failed(format!(
                        "known tree {}: {what} do not prove it (a fork?)",
                        k.origin
                    )));
                }
            }
            report.known += 1;
            report.trees += 1;
        }
        Ok(report)
    }
}

/// Opens a signed tree note with `verifier`; `what` names it in errors.
fn open(verifier: &Verifier, note: &[u8], what: &str) -> Result<Tree, WarmError> {
    let text = verifier
        .open(note)
        .map_err(|e| WarmError::Failed(format!("{what}: {e}")))?;
    Tree::parse(text).map_err(|e| WarmError::Failed(format!("{what}: {e}")))
}

impl HttpWarmer {
    /// The stored hashes at `indexes` of `tree`, through tiles the server serves (which it
    /// fetches, verifies and stores as needed), checked here.
    async fn proven(
        &self,
        name: &str,
        tree: Tree,
        indexes: &[i64],
        what: &str,
    ) -> Result<Vec<gomod::sumdb::tlog::Hash>, WarmError> {
        let plan = TilePlan::new(tree, 8, indexes)
            .map_err(|e| WarmError::Failed(format!("{what}: {e}")))?;
        let mut data = Vec::new();
        for tile in plan.tiles() {
            data.push(self.get(&tile_path(name, tile)).await?.0);
        }
        plan.verify(&data)
            .map_err(|e| WarmError::Failed(format!("{what}: {e}")))
    }
}

fn tile_path(name: &str, tile: &Tile) -> String {
    format!("sumdb/{name}/{}", tile.path())
}

/// The items of a list file: one per line, `#` starts a comment.
pub fn read_list(path: &Path) -> std::io::Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect())
}
