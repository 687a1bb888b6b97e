//! `module@latest`: the version `go get module@latest` picks.

use gomod::{ModulePath, Version};
use gomodproxy_storage::ArtifactKind;

use super::graph::retractions;
use super::warmer::Warmer;

/// The version `go get module@latest` picks: the highest release, else the highest
/// prerelease, skipping versions retracted by the go.mod of the highest listed version; if the
/// list is empty, what `@latest` answers.
pub(super) async fn resolve_latest(
    warmer: &dyn Warmer,
    module: &ModulePath,
) -> Result<Version, String> {
    let list = warmer
        .list(module)
        .await
        .map_err(|e| format!("{module}@latest: {e}"))?;
    let listed = super::refresh::listed_versions(module, &list);
    if let Some(highest) = listed.last().cloned() {
        let go_mod = warmer
            .artifact(module, &highest, ArtifactKind::Mod)
            .await
            .map_err(|e| format!("{module}@latest: {e}"))?;
        let retracted = retractions(module, &highest, go_mod.body.as_deref())?;
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
