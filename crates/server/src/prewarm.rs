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
use gomod::sumdb::tlog::{Tile, TilePlan, Tree, stored_hash_index};
use gomod::sumdb::{Lookup, note::Verifier};
use gomod::{ModulePath, Version};
use gomodproxy_service::ProxyService;
use gomodproxy_service::prewarm::{
    Item, Outcome, PrewarmOptions, Report, Target, TargetDone, WarmError, Warmed, Warmer, prewarm,
};
use gomodproxy_service::progress::Progress;
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

/// The options of a run: the config's `[prewarm]` with the command line's overrides.
pub fn options(request: &Request, config: &Config) -> PrewarmOptions {
    PrewarmOptions {
        concurrency: request.concurrency.unwrap_or(config.prewarm.concurrency),
        retries: request.retries.unwrap_or(config.prewarm.retries),
        retry_backoff: config.prewarm.retry_backoff,
        ..PrewarmOptions::default()
    }
}

/// Runs `gomodproxy prewarm`; `Ok(false)` when something failed (already reported).
pub async fn run(request: Request, config: Config) -> anyhow::Result<bool> {
    let options = options(&request, &config);
    let items = items(&request, &config, &options)?;
    let progress = TerminalProgress::new();
    let started = Instant::now();
    let policy = crate::access::policy(&config)?;
    let report = match &request.server {
        Some(url) => {
            let warmer = HttpWarmer::new(url, &config)?;
            let warmer = crate::access::PolicyWarmer::new(&warmer, policy);
            prewarm(&warmer, &items, &options, &progress).await
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
            let warmer = crate::access::PolicyWarmer::new(&service, policy);
            prewarm(&warmer, &items, &options, &progress).await
        }
    };
    progress.finish();
    print_report(&report, started.elapsed());
    Ok(report.ok())
}

/// The summary on stdout, the failures on stderr.
pub fn print_report(report: &Report, elapsed: Duration) {
    println!(
        "prewarm: {} module versions in {:.1?}: {} fetched ({} artifacts, {}), {} already stored, {} failed; {} checksum records provable offline",
        report.targets,
        elapsed,
        report.fetched,
        report.artifacts_fetched,
        human_bytes(report.bytes_fetched),
        report.already_stored,
        report.failures.len(),
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

    /// Does what an offline client will do for each target: its lookup, then every tile that
    /// proves the record in the tree the lookup came with — so the server has them stored.
    async fn seal(&self, targets: &[Target]) -> Result<usize, WarmError> {
        let Some(verifier) = &self.sumdb else {
            return Ok(0);
        };
        let name = verifier.name();
        let mut checked = 0;
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
            let text = verifier
                .open(&lookup.note)
                .map_err(|e| WarmError::Failed(format!("{path}: {e}")))?;
            let tree = Tree::parse(text).map_err(|e| WarmError::Failed(format!("{path}: {e}")))?;
            let plan = TilePlan::new(tree, 8, &[stored_hash_index(0, lookup.id)])
                .map_err(|e| WarmError::Failed(format!("{path}: {e}")))?;
            let mut data = Vec::new();
            for tile in plan.tiles() {
                data.push(self.get(&tile_path(name, tile)).await?.0);
            }
            let proven = plan
                .verify(&data)
                .map_err(|e| WarmError::Failed(format!("{path}: {e}")))?;
            if proven != [gomod::sumdb::tlog::record_hash(lookup.text.as_bytes())] {
                return Err(WarmError::Failed(format!(
                    "{path}: the record is not in the tree the server serves"
                )));
            }
            checked += 1;
        }
        Ok(checked)
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
