//! The module graph the go command loads for a main module, to know which `.mod` files and
//! zips an offline build of it needs (`prewarm go.mod:PATH`).
//!
//! This follows the go command's `modload.readModGraph`:
//! - the roots are the main module's requirements (minus versions its `exclude`s name, which go
//!   ignores since 1.16), each under the main module's `replace`s;
//! - every enqueued module version has its go.mod loaded;
//! - below a *pruned* module (go ≥ 1.17, whose go.mod lists every module its packages need) the
//!   walk stops when the main module is pruned too: that module's requirements are graph nodes
//!   (they take part in version selection) but their go.mod files are not read;
//! - below an *unpruned* module (go < 1.17, or a go.mod without a `go` line) everything is
//!   loaded transitively.
//!
//! The selected version of each module is the highest in the graph (minimal version selection).
//! Zips are needed for the modules that can provide packages: for a pruned main module those it
//! requires (its go.mod lists them all), else every module in the graph — what
//! `go mod download` without arguments fetches.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use futures::StreamExt;
use gomod::modfile::{ModFile, Replacement};
use gomod::{ModulePath, Version};
use gomodproxy_storage::ArtifactKind;

use super::warmer::{Target, Warmer};

/// A module version as the graph sees it (its path before replacement).
type Node = (String, Version);

/// Whether the walk continues below a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pruning {
    Pruned,
    Unpruned,
}

/// What a go.mod says that the walk needs.
struct Summary {
    pruning: Pruning,
    requires: Vec<Node>,
}

/// The targets for a main module's go.mod (see the module docs), its go.mod files fetched
/// `concurrency` at a time.
pub(super) async fn go_mod_targets(
    warmer: &dyn Warmer,
    name: &str,
    text: &[u8],
    concurrency: usize,
) -> Result<Vec<Target>, String> {
    let main = ModFile::parse(name, text).map_err(|e| e.to_string())?;
    let excluded: HashSet<Node> = main
        .exclude
        .iter()
        .map(|e| (e.path.clone(), e.version.clone()))
        .collect();
    let main_pruning = if main.is_pruned() {
        Pruning::Pruned
    } else {
        Pruning::Unpruned
    };

    let mut graph: BTreeMap<String, BTreeSet<Version>> = BTreeMap::new();
    let mut mod_only: BTreeSet<(ModulePath, Version)> = BTreeSet::new();
    let mut seen: HashSet<(Node, Pruning)> = HashSet::new();
    let roots: Vec<Node> = main
        .require
        .iter()
        .map(|r| (r.path.clone(), r.version.clone()))
        .filter(|n| !excluded.contains(n))
        .collect();
    let mut level: Vec<(Node, Pruning)> = Vec::new();
    for root in &roots {
        graph
            .entry(root.0.clone())
            .or_default()
            .insert(root.1.clone());
        if seen.insert((root.clone(), main_pruning)) {
            level.push((root.clone(), main_pruning));
        }
    }

    // Breadth first, each level's go.mod files fetched concurrently.
    while !level.is_empty() {
        let loads = futures::stream::iter(level.iter().cloned())
            .map(|(node, pruning)| {
                let main = &main;
                let excluded = &excluded;
                async move {
                    let loaded = load(warmer, main, excluded, &node).await;
                    (node, pruning, loaded)
                }
            })
            .buffer_unordered(concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        let mut next_level = Vec::new();
        for (_, pruning, loaded) in loads {
            let (fetched_as, summary) = loaded?;
            if let Some(target) = fetched_as {
                mod_only.insert(target);
            }
            for r in &summary.requires {
                graph.entry(r.0.clone()).or_default().insert(r.1.clone());
            }
            let next = if pruning == Pruning::Unpruned {
                Pruning::Unpruned
            } else {
                summary.pruning
            };
            if pruning != Pruning::Pruned || summary.pruning == Pruning::Unpruned {
                for r in summary.requires {
                    if seen.insert((r.clone(), next)) {
                        next_level.push((r, next));
                    }
                }
            }
        }
        level = next_level;
    }

    // Minimal version selection: the highest version of each module in the graph.
    let selected: BTreeMap<&String, &Version> = graph
        .iter()
        .filter_map(|(path, versions)| versions.iter().next_back().map(|v| (path, v)))
        .collect();
    let providers: BTreeSet<&String> = match main_pruning {
        Pruning::Pruned => roots.iter().map(|(p, _)| p).collect(),
        Pruning::Unpruned => graph.keys().collect(),
    };
    let mut targets: BTreeMap<(ModulePath, Version), bool> =
        mod_only.into_iter().map(|mv| (mv, false)).collect();
    for path in providers {
        let version = selected[path];
        if let Some(mv) = fetchable(&main, path, version)? {
            targets.insert(mv, true);
        }
    }
    Ok(targets
        .into_iter()
        .map(|((module, version), zip)| Target {
            module,
            version,
            zip,
        })
        .collect())
}

/// The module version to fetch for graph node `path@version`: itself, or its replacement;
/// `None` when it is replaced by a local directory (nothing to fetch).
fn fetchable(
    main: &ModFile,
    path: &str,
    version: &Version,
) -> Result<Option<(ModulePath, Version)>, String> {
    let (path, version) = match main.replacement(path, version.as_str()) {
        Some(Replacement::Dir(_)) => return Ok(None),
        Some(Replacement::Module { path, version }) => (path.as_str(), version),
        None => (path, version),
    };
    let module = ModulePath::parse(path).map_err(|e| format!("{path}@{version}: {e}"))?;
    module
        .check_version(version)
        .map_err(|e| format!("{path}@{version}: {e}"))?;
    Ok(Some((module, version.clone())))
}

/// Fetches and reads the go.mod of one node (or of its replacement).
async fn load(
    warmer: &dyn Warmer,
    main: &ModFile,
    excluded: &HashSet<Node>,
    node: &Node,
) -> Result<(Option<(ModulePath, Version)>, Summary), String> {
    let Some((module, version)) = fetchable(main, &node.0, &node.1)? else {
        // A local directory: its go.mod is not ours to fetch; the client has it on disk.
        return Ok((
            None,
            Summary {
                pruning: Pruning::Pruned,
                requires: Vec::new(),
            },
        ));
    };
    let warmed = warmer
        .artifact(&module, &version, ArtifactKind::Mod)
        .await
        .map_err(|e| format!("{module}@{version}.mod: {e}"))?;
    let body = warmed
        .body
        .ok_or_else(|| format!("{module}@{version}.mod: no body"))?;
    let go_mod = ModFile::parse_lax(&format!("{module}@{version}/go.mod"), &body)
        .map_err(|e| e.to_string())?;
    let pruning = if go_mod.is_pruned() {
        Pruning::Pruned
    } else {
        Pruning::Unpruned
    };
    let requires = go_mod
        .require
        .iter()
        .map(|r| (r.path.clone(), r.version.clone()))
        .filter(|n| !excluded.contains(n))
        .collect();
    Ok((Some((module, version)), Summary { pruning, requires }))
}

/// A closed interval of retracted versions.
#[derive(Debug, Clone)]
pub(super) struct Retracted {
    low: Version,
    high: Version,
}

impl Retracted {
    pub(super) fn contains(&self, v: &Version) -> bool {
        &self.low <= v && v <= &self.high
    }
}

/// The versions a module's go.mod (that of its highest version) retracts.
pub(super) fn retractions(
    module: &ModulePath,
    version: &Version,
    go_mod: Option<&[u8]>,
) -> Result<Vec<Retracted>, String> {
    let Some(body) = go_mod else {
        return Ok(Vec::new());
    };
    let file = ModFile::parse_lax(&format!("{module}@{version}/go.mod"), body)
        .map_err(|e| e.to_string())?;
    Ok(file
        .retract
        .iter()
        .filter_map(|r| {
            Some(Retracted {
                low: Version::parse(&r.low).ok()?,
                high: Version::parse(&r.high).ok()?,
            })
        })
        .collect())
}
