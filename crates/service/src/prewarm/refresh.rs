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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use async_trait::async_trait;
    use bytes::Bytes;

    use super::*;
    use crate::prewarm::warmer::{WarmError, Warmed};
    use crate::{KnownTree, SealReport};

    /// An upstream of one module: its list, and the go.mod of each version.
    struct Upstream {
        list: &'static str,
        go_mods: BTreeMap<&'static str, &'static str>,
    }

    #[async_trait]
    impl Warmer for Upstream {
        async fn artifact(
            &self,
            _module: &ModulePath,
            version: &Version,
            kind: ArtifactKind,
        ) -> Result<Warmed, WarmError> {
            assert_eq!(
                kind,
                ArtifactKind::Mod,
                "a refresh plans with go.mod files only"
            );
            let body = self
                .go_mods
                .get(version.as_str())
                .map(|b| Bytes::from_static(b.as_bytes()));
            Ok(Warmed {
                size: 0,
                fetched: true,
                body: Some(body.unwrap_or_else(|| Bytes::from_static(b"module example.com/m\n"))),
            })
        }
        async fn list(&self, _module: &ModulePath) -> Result<Bytes, WarmError> {
            panic!("a refresh must not read a cached list")
        }
        async fn latest(&self, _module: &ModulePath) -> Result<Bytes, WarmError> {
            panic!("a refresh must not read a cached @latest")
        }
        async fn fresh_list(&self, _module: &ModulePath) -> Result<Bytes, WarmError> {
            Ok(Bytes::from_static(self.list.as_bytes()))
        }
        async fn fresh_latest(&self, _module: &ModulePath) -> Result<Bytes, WarmError> {
            Err(WarmError::NotFound("no @latest".into()))
        }
        async fn stored_modules(&self) -> Result<Vec<StoredModule>, WarmError> {
            Ok(Vec::new())
        }
        async fn seal(&self, _: &[Target], _: &[KnownTree]) -> Result<SealReport, WarmError> {
            Ok(SealReport::default())
        }
    }

    fn stored(versions: &[&str], zips: bool) -> StoredModule {
        StoredModule {
            module: ModulePath::parse("example.com/m").unwrap(),
            versions: versions
                .iter()
                .map(|v| Version::parse(v).unwrap())
                .collect(),
            zips,
        }
    }

    async fn new_versions(up: &Upstream, have: &StoredModule) -> Vec<(String, bool)> {
        refresh_module(up, have)
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.version.as_str().to_string(), t.zip))
            .collect()
    }

    #[tokio::test]
    async fn new_releases_only_without_retracted_ones_and_zips_where_zips_are_stored() {
        let up = Upstream {
            list: "v1.0.0\nv1.1.0\nv1.2.0\nv1.3.0-rc.1\nv1.3.0\nv1.4.0\nv0.9.0\n",
            go_mods: BTreeMap::from([(
                "v1.4.0",
                "module example.com/m\n\nretract v1.3.0 // broken\n",
            )]),
        };
        // Newer than every stored version; not older ones the store lacks; not a prerelease;
        // not what the newest go.mod retracts.
        assert_eq!(
            new_versions(&up, &stored(&["v1.1.0"], true)).await,
            [("v1.2.0".to_string(), true), ("v1.4.0".to_string(), true)]
        );
        // Stored for the module graph only: the new go.mod files only.
        assert_eq!(
            new_versions(&up, &stored(&["v1.2.0"], false)).await,
            [("v1.4.0".to_string(), false)]
        );
        // Following prereleases: the newest stored is one.
        assert_eq!(
            new_versions(&up, &stored(&["v1.3.0-rc.0"], true)).await,
            [
                ("v1.3.0-rc.1".to_string(), true),
                ("v1.4.0".to_string(), true)
            ]
        );
        // Up to date: nothing.
        assert!(
            new_versions(&up, &stored(&["v1.4.0"], true))
                .await
                .is_empty()
        );
    }
}
