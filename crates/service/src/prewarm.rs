//! Prewarming: fetching ahead of time what offline clients will need.
//!
//! An operator lists [`Item`]s — `module@version`, `module@latest`, a go.mod (its whole module
//! graph, as the go command loads it), a go.sum (every line), Go toolchains — and [`prewarm`]
//! turns them into [`Target`]s (a module version and whether its zip is needed or only its
//! go.mod), fetches each through a [`Warmer`] with bounded concurrency and retries, and reports
//! what was fetched, what was already stored and what failed.
//!
//! The fetching itself is the proxy's own: through a [`ProxyService`] (storage first, so a second
//! run fetches nothing; every artifact validated and checked against the checksum database before
//! it is stored, which stores the lookups and tiles that prove it), or through a running server
//! over HTTP. At the end the checksum-database cache is sealed so that an offline client can
//! verify every stored record against the stored tree head.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use gomod::{ModulePath, Version};
use gomodproxy_storage::ArtifactKind;

use crate::{Body, ProxyService, ServiceError, versions};

/// The module of Go toolchain distributions.
pub const TOOLCHAIN_MODULE: &str = "golang.org/toolchain";

/// One thing to prewarm, as written on the command line, in a list file or in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `module@version`: its `.info`, `.mod` and `.zip`.
    Version(ModulePath, Version),
    /// `module@latest`: the version the go command would pick, then as [`Item::Version`].
    Latest(ModulePath),
    /// `go.mod:PATH` (or a path ending in `go.mod`): the module graph the go command loads for
    /// that main module — the `.mod` of every version in it, and `.info`/`.mod`/`.zip` of the
    /// selected versions of the modules the main module requires.
    GoMod(PathBuf),
    /// `go.sum:PATH` (or a path ending in `go.sum`): every line; a `/go.mod` line needs the
    /// `.mod` only, any other line the `.info`, `.mod` and `.zip`.
    GoSum(PathBuf),
    /// `toolchain:go1.X.Y@GOOS/GOARCH`: the `golang.org/toolchain` module version the go command
    /// downloads when it switches to that toolchain.
    Toolchain {
        /// `go1.22.1`, `go1.23rc1`.
        go: String,
        /// `linux`, `darwin`, …
        goos: String,
        /// `amd64`, `arm64`, …
        goarch: String,
    },
}

impl Item {
    /// Parses one item. A toolchain without a platform is for `default_platform`
    /// (`GOOS/GOARCH`).
    pub fn parse(text: &str, default_platform: &str) -> Result<Item, String> {
        let text = text.trim();
        let bad = |why: &str| format!("prewarm item {text:?}: {why}");
        if let Some(path) = text.strip_prefix("go.mod:") {
            return Ok(Item::GoMod(PathBuf::from(path)));
        }
        if let Some(path) = text.strip_prefix("go.sum:") {
            return Ok(Item::GoSum(PathBuf::from(path)));
        }
        if let Some(spec) = text.strip_prefix("toolchain:") {
            let (go, platform) = spec.split_once('@').unwrap_or((spec, default_platform));
            let (goos, goarch) = platform
                .split_once('/')
                .ok_or_else(|| bad("the platform must be GOOS/GOARCH, like linux/amd64"))?;
            let item = Item::Toolchain {
                go: go.to_string(),
                goos: goos.to_string(),
                goarch: goarch.to_string(),
            };
            item.toolchain_version().map_err(|e| bad(&e))?;
            return Ok(item);
        }
        if !text.contains('@') {
            if text.ends_with("go.mod") {
                return Ok(Item::GoMod(PathBuf::from(text)));
            }
            if text.ends_with("go.sum") {
                return Ok(Item::GoSum(PathBuf::from(text)));
            }
        }
        let (module, version) = text.rsplit_once('@').ok_or_else(|| {
            bad("want module@version, module@latest, go.mod:PATH, go.sum:PATH or toolchain:goX.Y.Z[@GOOS/GOARCH]")
        })?;
        let module = ModulePath::parse(module).map_err(|e| bad(&e.to_string()))?;
        if version == "latest" {
            return Ok(Item::Latest(module));
        }
        let version = Version::parse(version).map_err(|e| bad(&e.to_string()))?;
        module
            .check_version(&version)
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Item::Version(module, version))
    }

    /// The `golang.org/toolchain` version of a toolchain item.
    fn toolchain_version(&self) -> Result<Version, String> {
        let Item::Toolchain { go, goos, goarch } = self else {
            return Err("not a toolchain".to_string());
        };
        let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if !go.starts_with("go1") || !ok(goos) || !ok(goarch) {
            return Err(format!(
                "{go}@{goos}/{goarch} is not a toolchain like go1.22.1@linux/amd64"
            ));
        }
        Version::parse(&format!("v0.0.1-{go}.{goos}-{goarch}")).map_err(|e| e.to_string())
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Version(m, v) => write!(f, "{m}@{v}"),
            Item::Latest(m) => write!(f, "{m}@latest"),
            Item::GoMod(p) => write!(f, "go.mod:{}", p.display()),
            Item::GoSum(p) => write!(f, "go.sum:{}", p.display()),
            Item::Toolchain { go, goos, goarch } => write!(f, "toolchain:{go}@{goos}/{goarch}"),
        }
    }
}

/// One module version to have in storage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// The module.
    pub module: ModulePath,
    /// The version.
    pub version: Version,
    /// `.info` and `.zip` too, not only the `.mod`.
    pub zip: bool,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.module, self.version)?;
        if !self.zip {
            f.write_str(" (go.mod)")?;
        }
        Ok(())
    }
}

/// What fetching one artifact did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warmed {
    /// Its size.
    pub size: u64,
    /// True if it came from upstream now; false if it was already stored.
    pub fetched: bool,
    /// The body, for `.mod` files (the module graph reads them).
    pub body: Option<Bytes>,
}

/// Where prewarming fetches through: the service itself, or a running server.
#[async_trait]
pub trait Warmer: Send + Sync {
    /// Makes sure one artifact is stored.
    async fn artifact(
        &self,
        module: &ModulePath,
        version: &Version,
        kind: ArtifactKind,
    ) -> Result<Warmed, ServiceError>;
    /// The module's `@v/list`.
    async fn list(&self, module: &ModulePath) -> Result<Bytes, ServiceError>;
    /// The module's `@latest` `.info`.
    async fn latest(&self, module: &ModulePath) -> Result<Bytes, ServiceError>;
    /// Makes the checksum-database records of `targets` (at least) provable offline against
    /// the stored tree head; returns how many records were checked.
    async fn seal(&self, targets: &[Target]) -> Result<usize, ServiceError>;
}

#[async_trait]
impl Warmer for ProxyService {
    async fn artifact(
        &self,
        module: &ModulePath,
        version: &Version,
        kind: ArtifactKind,
    ) -> Result<Warmed, ServiceError> {
        let answer = match kind {
            ArtifactKind::Info => {
                self.info(module, &crate::VersionQuery::Canonical(version.clone()))
                    .await?
            }
            ArtifactKind::Mod => self.go_mod(module, version).await?,
            ArtifactKind::Zip => self.zip(module, version).await?,
            ArtifactKind::ZipHash => {
                return Err(ServiceError::BadRequest(
                    "a zip hash is stored with its zip".to_string(),
                ));
            }
        };
        let body = match answer.body {
            Body::Bytes(b) if kind == ArtifactKind::Mod => Some(b),
            // Zips are not read here: the service validated and stored them already.
            _ => None,
        };
        Ok(Warmed {
            size: answer.size,
            fetched: answer.fetched,
            body,
        })
    }

    async fn list(&self, module: &ModulePath) -> Result<Bytes, ServiceError> {
        body_bytes(ProxyService::list(self, module).await?.body).await
    }

    async fn latest(&self, module: &ModulePath) -> Result<Bytes, ServiceError> {
        body_bytes(ProxyService::latest(self, module).await?.body).await
    }

    async fn seal(&self, _targets: &[Target]) -> Result<usize, ServiceError> {
        // Every stored record, not only this run's: one tree head serves them all.
        self.seal_sumdb().await
    }
}

async fn body_bytes(body: Body) -> Result<Bytes, ServiceError> {
    match body {
        Body::Bytes(b) => Ok(b),
        Body::Stream(mut s) => {
            let mut out = Vec::new();
            while let Some(chunk) = s.next().await {
                out.extend_from_slice(&chunk.map_err(|e| {
                    ServiceError::local(format!("reading a body: {}", crate::io_words(&e)))
                })?);
            }
            Ok(Bytes::from(out))
        }
    }
}

/// How prewarming runs.
#[derive(Debug, Clone)]
pub struct PrewarmOptions {
    /// Targets fetched at once.
    pub concurrency: usize,
    /// Retries of a target after a transient failure (upstream error or timeout, store error).
    pub retries: u32,
    /// First retry delay; doubles each time.
    pub retry_backoff: Duration,
    /// The platform of toolchain items that name none (`GOOS/GOARCH`).
    pub default_platform: String,
}

impl Default for PrewarmOptions {
    fn default() -> Self {
        PrewarmOptions {
            concurrency: 8,
            retries: 2,
            retry_backoff: Duration::from_millis(500),
            default_platform: host_platform(),
        }
    }
}

/// This machine's platform in Go's names (`linux/amd64`).
pub fn host_platform() -> String {
    let goos = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let goarch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    };
    format!("{goos}/{goarch}")
}

/// What happened to one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything it needs was stored before.
    AlreadyStored,
    /// At least one artifact came from upstream: how many, and their bytes.
    Fetched {
        /// Artifacts fetched.
        artifacts: usize,
        /// Their bytes.
        bytes: u64,
    },
    /// It could not be completed.
    Failed(String),
}

/// Receives progress (a terminal progress bar, log lines, metrics).
pub trait Progress: Send + Sync {
    /// A phase starts (`reading go.mod`, `fetching`, `sealing`), with the number of steps if
    /// known.
    fn phase(&self, name: &str, total: Option<usize>);
    /// One target is done.
    fn target_done(&self, target: &Target, outcome: &Outcome);
}

/// A progress sink that reports nothing.
#[derive(Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn phase(&self, _: &str, _: Option<usize>) {}
    fn target_done(&self, _: &Target, _: &Outcome) {}
}

/// The result of a prewarm run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Module versions planned.
    pub targets: usize,
    /// Targets that needed an upstream fetch.
    pub fetched: usize,
    /// Targets that were stored already.
    pub already_stored: usize,
    /// Artifacts fetched from upstream.
    pub artifacts_fetched: usize,
    /// Their bytes.
    pub bytes_fetched: u64,
    /// What failed (an item, a target or the sealing step) and why.
    pub failures: Vec<(String, String)>,
    /// Checksum-database records checked to be provable offline.
    pub sumdb_records: usize,
}

impl Report {
    /// True when nothing failed.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Plans `items` and fetches every target; see the module docs.
pub async fn prewarm(
    warmer: &dyn Warmer,
    items: &[Item],
    options: &PrewarmOptions,
    progress: &dyn Progress,
) -> Report {
    let mut report = Report::default();
    progress.phase("planning", Some(items.len()));
    let mut plan: BTreeMap<(ModulePath, Version), bool> = BTreeMap::new();
    let add = |plan: &mut BTreeMap<(ModulePath, Version), bool>, t: Target| {
        let zip = plan.entry((t.module, t.version)).or_insert(false);
        *zip |= t.zip;
    };
    for item in items {
        match plan_item(warmer, item, options).await {
            Ok(targets) => {
                for t in targets {
                    add(&mut plan, t);
                }
            }
            Err(e) => report.failures.push((item.to_string(), e)),
        }
    }
    let targets: Vec<Target> = plan
        .into_iter()
        .map(|((module, version), zip)| Target {
            module,
            version,
            zip,
        })
        .collect();
    report.targets = targets.len();

    progress.phase("fetching", Some(targets.len()));
    let concurrency = options.concurrency.max(1);
    let mut results = futures::stream::iter(targets.iter().cloned())
        .map(|target| async move {
            let outcome = warm_target(warmer, &target, options).await;
            (target, outcome)
        })
        .buffer_unordered(concurrency);
    while let Some((target, outcome)) = results.next().await {
        progress.target_done(&target, &outcome);
        match outcome {
            Outcome::AlreadyStored => report.already_stored += 1,
            Outcome::Fetched { artifacts, bytes } => {
                report.fetched += 1;
                report.artifacts_fetched += artifacts;
                report.bytes_fetched += bytes;
            }
            Outcome::Failed(e) => report.failures.push((target.to_string(), e)),
        }
    }
    drop(results);

    progress.phase("sealing the checksum database cache", None);
    match warmer.seal(&targets).await {
        Ok(n) => report.sumdb_records = n,
        Err(e) => report
            .failures
            .push(("checksum database cache".to_string(), e.to_string())),
    }
    report
}

/// The targets of one item.
async fn plan_item(
    warmer: &dyn Warmer,
    item: &Item,
    options: &PrewarmOptions,
) -> Result<Vec<Target>, String> {
    match item {
        Item::Version(module, version) => Ok(vec![Target {
            module: module.clone(),
            version: version.clone(),
            zip: true,
        }]),
        Item::Latest(module) => {
            let version = resolve_latest(warmer, module, options).await?;
            Ok(vec![Target {
                module: module.clone(),
                version,
                zip: true,
            }])
        }
        Item::Toolchain { .. } => Ok(vec![Target {
            module: ModulePath::parse(TOOLCHAIN_MODULE).map_err(|e| e.to_string())?,
            version: item.toolchain_version()?,
            zip: true,
        }]),
        Item::GoSum(path) => {
            let text =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            go_sum_targets(path, &text)
        }
        Item::GoMod(path) => {
            let text =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            crate::graph::go_mod_targets(warmer, &path.display().to_string(), &text, options).await
        }
    }
}

/// Every line of a go.sum: `/go.mod` lines need the `.mod`, others everything.
fn go_sum_targets(path: &std::path::Path, text: &[u8]) -> Result<Vec<Target>, String> {
    let name = path.display().to_string();
    let sum = gomod::gosum::GoSum::parse(&name, text).map_err(|e| e.to_string())?;
    sum.entries
        .iter()
        .map(|entry| {
            let (module, version) = entry
                .module()
                .map_err(|e| format!("{name}:{}: {e}", entry.line))?;
            Ok(Target {
                module,
                version,
                zip: !entry.go_mod,
            })
        })
        .collect()
}

/// The version `go get module@latest` picks: the highest release, else the highest
/// prerelease, skipping versions retracted by the go.mod of the highest listed version; if the
/// list is empty, what `@latest` answers.
pub(crate) async fn resolve_latest(
    warmer: &dyn Warmer,
    module: &ModulePath,
    _options: &PrewarmOptions,
) -> Result<Version, String> {
    let list = warmer
        .list(module)
        .await
        .map_err(|e| format!("{module}@latest: {e}"))?;
    let mut listed: Vec<Version> = String::from_utf8_lossy(&list)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|v| Version::parse(v).ok())
        .filter(|v| !versions::is_pseudo(v) && module.check_version(v).is_ok())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    listed.sort_by(versions::compare);
    if let Some(highest) = listed.last().cloned() {
        let go_mod = warmer
            .artifact(module, &highest, ArtifactKind::Mod)
            .await
            .map_err(|e| format!("{module}@latest: {e}"))?;
        let retracted = crate::graph::retractions(module, &highest, go_mod.body.as_deref())?;
        let usable: Vec<&Version> = listed
            .iter()
            .filter(|v| !retracted.iter().any(|r| r.contains(v)))
            .collect();
        let release = usable.iter().rev().find(|v| !v.is_prerelease());
        if let Some(v) = release.or(usable.last()) {
            return Ok((*v).clone());
        }
    }
    let info = warmer
        .latest(module)
        .await
        .map_err(|e| format!("{module}@latest: {e}"))?;
    let value: serde_json::Value = serde_json::from_slice(&info)
        .map_err(|e| format!("{module}@latest: bad @latest answer: {e}"))?;
    let version = value["Version"]
        .as_str()
        .ok_or_else(|| format!("{module}@latest: @latest has no Version"))?;
    Version::parse(version).map_err(|e| format!("{module}@latest: {e}"))
}

/// Fetches one target's artifacts, retrying transient failures.
async fn warm_target(warmer: &dyn Warmer, target: &Target, options: &PrewarmOptions) -> Outcome {
    let kinds: &[ArtifactKind] = if target.zip {
        &[ArtifactKind::Mod, ArtifactKind::Info, ArtifactKind::Zip]
    } else {
        &[ArtifactKind::Mod]
    };
    let (mut artifacts, mut bytes) = (0usize, 0u64);
    for &kind in kinds {
        let mut attempt = 0;
        loop {
            match warmer.artifact(&target.module, &target.version, kind).await {
                Ok(w) => {
                    if w.fetched {
                        artifacts += 1;
                        bytes += w.size;
                    }
                    break;
                }
                Err(e) if is_transient(&e) && attempt < options.retries => {
                    let delay = options
                        .retry_backoff
                        .saturating_mul(2u32.saturating_pow(attempt));
                    attempt += 1;
                    tracing::debug!(target = %target, ?kind, attempt, error = %e, "retrying prewarm");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Outcome::Failed(format!(".{}: {e}", kind.extension())),
            }
        }
    }
    if artifacts == 0 {
        Outcome::AlreadyStored
    } else {
        Outcome::Fetched { artifacts, bytes }
    }
}

fn is_transient(e: &ServiceError) -> bool {
    matches!(
        e,
        ServiceError::BadUpstream(m) if !m.starts_with("SECURITY")
    ) || matches!(
        e,
        ServiceError::UpstreamTimeout(_) | ServiceError::Storage { .. }
    )
}
