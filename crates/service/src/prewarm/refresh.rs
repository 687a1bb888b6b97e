//! `prewarm --refresh`: keeping a mirror current. For each module already stored (or each
//! module given), the `@v/list` and `@latest` are asked of upstream again, whatever their age,
//! and the new releases become targets.
//!
//! *New* means listed now and higher than every stored version of the module — not every
//! listed version the store lacks (a project that pins v1.2.3 of a module with a hundred
//! releases needs none of the older ones). A release is a version without a prerelease suffix;
//! a prerelease counts only when the newest stored version is a prerelease itself. Versions
//! retracted by the go.mod of the highest listed version are skipped: that go.mod is fetched
//! (it is what the go command reads retractions and deprecations from), so they arrive with it.
//! A module with no zip stored (one the builds need only for the module graph) gets the `.mod`
//! of its new versions only. A given module that is not stored gets what `module@latest` means.

use std::collections::BTreeSet;

use gomod::{ModulePath, Version};
use gomodproxy_storage::ArtifactKind;

use super::graph::retractions;
use super::latest::resolve_latest;
use super::warmer::{StoredModule, Target, Warmer};

/// The versions `list` names, valid for `module`, in Go semver order (no pseudo-versions).
pub(super) fn listed_versions(module: &ModulePath, list: &[u8]) -> Vec<Version> {
    String::from_utf8_lossy(list)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|v| Version::parse(v).ok())
        .filter(|v| !v.is_pseudo() && module.check_version(v).is_ok())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The targets that bring one stored module up to date (see the module docs).
pub(super) async fn refresh_module(
    warmer: &dyn Warmer,
    stored: &StoredModule,
) -> Result<Vec<Target>, String> {
    let module = &stored.module;
    let fail = |e: &dyn std::fmt::Display| format!("{module} (refresh): {e}");
    let list = warmer.fresh_list(module).await.map_err(|e| fail(&e))?;
    let latest = warmer.fresh_latest(module).await;
    let listed = listed_versions(module, &list);
    let newest = stored.versions.iter().next_back();
    let newer = |v: &Version| newest.is_none_or(|n| v > n);
    let prereleases_too = newest.is_some_and(Version::is_prerelease);
    let mut new: Vec<Version> = Vec::new();
    if let Some(highest) = listed.last() {
        let go_mod = warmer
            .artifact(module, highest, ArtifactKind::Mod)
            .await
            .map_err(|e| fail(&e))?;
        let retracted = retractions(module, highest, go_mod.body.as_deref())?;
        new.extend(
            listed
                .iter()
                .filter(|v| newer(v) && (prereleases_too || !v.is_prerelease()))
                .filter(|v| !retracted.iter().any(|r| r.contains(v)))
                .cloned(),
        );
    } else if let Ok(info) = latest {
        // No tagged versions: what `@latest` names (a pseudo-version), if it is newer.
        let value: serde_json::Value =
            serde_json::from_slice(&info).map_err(|e| fail(&format!("bad @latest answer: {e}")))?;
        if let Some(v) = value["Version"]
            .as_str()
            .and_then(|v| Version::parse(v).ok())
            && newer(&v)
            && module.check_version(&v).is_ok()
        {
            new.push(v);
        }
    }
    Ok(new
        .into_iter()
        .map(|version| Target {
            module: module.clone(),
            version,
            zip: stored.zips,
        })
        .collect())
}

/// The targets of a module given to refresh that the store does not have: `module@latest`.
pub(super) async fn refresh_new_module(
    warmer: &dyn Warmer,
    module: &ModulePath,
) -> Result<Vec<Target>, String> {
    // Asked now, so that what resolve_latest reads is current.
    warmer
        .fresh_list(module)
        .await
        .map_err(|e| format!("{module} (refresh): {e}"))?;
    let _ = warmer.fresh_latest(module).await;
    let version = resolve_latest(warmer, module).await?;
    Ok(vec![Target {
        module: module.clone(),
        version,
        zip: true,
    }])
}
