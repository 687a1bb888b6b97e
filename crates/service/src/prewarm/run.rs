//! The batch jobs: plan every item (or refresh the stored modules), fetch every target with
//! bounded concurrency and retries, seal the checksum-database cache, and report.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use gomod::{ModulePath, Version};
use gomodproxy_storage::ArtifactKind;

use super::item::Item;
use super::plan::plan_item;
use super::refresh::{refresh_module, refresh_new_module};
use super::warmer::{StoredModule, Target, Warmer};
use crate::KnownTree;
use crate::progress::Progress;

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
    /// Tree heads clients remember (`--sumdb-known-tree`): sealing proves each against the
    /// sealed tree and records it.
    pub known_trees: Vec<KnownTree>,
}

impl Default for PrewarmOptions {
    fn default() -> Self {
        PrewarmOptions {
            concurrency: 8,
            retries: 2,
            retry_backoff: Duration::from_millis(500),
            default_platform: host_platform(),
            known_trees: Vec::new(),
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

/// One step of a prewarm run, as its [`Progress`] sink is told: a target and what happened to
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetDone {
    /// The module version.
    pub target: Target,
    /// What happened.
    pub outcome: Outcome,
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
    /// Tree heads (recorded and known) proven to be prefixes of the sealed tree: a client that
    /// remembers one verifies offline.
    pub sumdb_trees: usize,
    /// Of those, the known trees given to this run.
    pub sumdb_known: usize,
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
    progress: &dyn Progress<TargetDone>,
) -> Report {
    let mut report = Report::default();
    progress.phase("planning", Some(items.len() as u64), None);
    let mut plan = Plan::default();
    for item in items {
        match plan_item(warmer, item, options.concurrency).await {
            Ok(targets) => plan.add(targets),
            Err(e) => report.failures.push((item.to_string(), e)),
        }
    }
    fetch_and_seal(warmer, plan, options, progress, report).await
}

/// What to refresh: every stored module, or these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshScope {
    /// Every module with a version in the store.
    Stored,
    /// These modules (a module not stored gets what `module@latest` means).
    Modules(Vec<ModulePath>),
}

/// Keeps a mirror current: the `@v/list` and `@latest` of the modules in `scope` are asked of
/// upstream again, and their new releases fetched (see [`super::refresh`]); then the
/// checksum-database cache is sealed, as after [`prewarm`].
pub async fn refresh(
    warmer: &dyn Warmer,
    scope: &RefreshScope,
    options: &PrewarmOptions,
    progress: &dyn Progress<TargetDone>,
) -> Report {
    let mut report = Report::default();
    let stored = match warmer.stored_modules().await {
        Ok(s) => s,
        Err(e) => {
            report
                .failures
                .push(("the stored modules".to_string(), e.to_string()));
            return report;
        }
    };
    let work: Vec<Result<StoredModule, ModulePath>> = match scope {
        RefreshScope::Stored => stored.into_iter().map(Ok).collect(),
        RefreshScope::Modules(modules) => modules
            .iter()
            .map(|m| {
                stored
                    .iter()
                    .find(|s| &s.module == m)
                    .cloned()
                    .ok_or_else(|| m.clone())
            })
            .collect(),
    };
    progress.phase("refreshing lists", Some(work.len() as u64), None);
    let planned = futures::stream::iter(work)
        .map(|w| async move {
            match &w {
                Ok(stored) => (
                    stored.module.to_string(),
                    refresh_module(warmer, stored).await,
                ),
                Err(module) => (module.to_string(), refresh_new_module(warmer, module).await),
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut plan = Plan::default();
    for (module, targets) in planned {
        match targets {
            Ok(targets) => plan.add(targets),
            Err(e) => report.failures.push((module, e)),
        }
    }
    fetch_and_seal(warmer, plan, options, progress, report).await
}

/// Module versions to fetch, each once (with its zip if any item needs it).
#[derive(Default)]
struct Plan(BTreeMap<(ModulePath, Version), bool>);

impl Plan {
    fn add(&mut self, targets: Vec<Target>) {
        for t in targets {
            let zip = self.0.entry((t.module, t.version)).or_insert(false);
            *zip |= t.zip;
        }
    }
}

/// Fetches every target of `plan`, then seals.
async fn fetch_and_seal(
    warmer: &dyn Warmer,
    plan: Plan,
    options: &PrewarmOptions,
    progress: &dyn Progress<TargetDone>,
    mut report: Report,
) -> Report {
    let targets: Vec<Target> = plan
        .0
        .into_iter()
        .map(|((module, version), zip)| Target {
            module,
            version,
            zip,
        })
        .collect();
    report.targets = targets.len();

    progress.phase("fetching", Some(targets.len() as u64), None);
    let concurrency = options.concurrency.max(1);
    let mut results = futures::stream::iter(targets.iter().cloned())
        .map(|target| async move {
            let outcome = warm_target(warmer, &target, options).await;
            TargetDone { target, outcome }
        })
        .buffer_unordered(concurrency);
    while let Some(done) = results.next().await {
        let bytes = match done.outcome {
            Outcome::Fetched { bytes, .. } => bytes,
            _ => 0,
        };
        progress.step(&done, bytes);
        match done.outcome {
            Outcome::AlreadyStored => report.already_stored += 1,
            Outcome::Fetched { artifacts, bytes } => {
                report.fetched += 1;
                report.artifacts_fetched += artifacts;
                report.bytes_fetched += bytes;
            }
            Outcome::Failed(e) => report.failures.push((done.target.to_string(), e)),
        }
    }
    drop(results);

    progress.phase("sealing the checksum database cache", None, None);
    match warmer.seal(&targets, &options.known_trees).await {
        Ok(sealed) => {
            report.sumdb_records = sealed.records;
            report.sumdb_trees = sealed.trees;
            report.sumdb_known = sealed.known;
        }
        Err(e) => report
            .failures
            .push(("checksum database cache".to_string(), e.to_string())),
    }
    report
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
                Err(e) if e.is_transient() && attempt < options.retries => {
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
