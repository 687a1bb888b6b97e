//! Offline mode: answers from storage only. There is no HTTP client in this mode, so nothing
//! here can reach the network.

use std::collections::BTreeMap;
use std::time::SystemTime;

use bytes::Bytes;
use futures::StreamExt;
use gomod::{ModulePath, Version};
use gomodproxy_storage::{ArtifactKind, Key, ListPrefix, StorageError};
use tracing::warn;

use crate::{Answer, Body, Inner, ServiceError, sha256_etag, stored_small, versions};

/// The 404 for an artifact that is not stored.
pub(crate) fn miss(module: &ModulePath, version: &Version, kind: ArtifactKind) -> ServiceError {
    ServiceError::NotFound(format!(
        "offline mode: {module}@{version} .{} is not in the cache",
        kind.extension()
    ))
}

/// Every stored version of `module` with the kinds stored for it, and the newest store time.
async fn stored_versions(
    inner: &Inner,
    module: &ModulePath,
) -> Result<BTreeMap<String, (Version, Vec<ArtifactKind>, SystemTime)>, ServiceError> {
    let prefix = ListPrefix::Module(module.clone());
    let mut entries = inner.storage.list(&prefix);
    let mut found: BTreeMap<String, (Version, Vec<ArtifactKind>, SystemTime)> = BTreeMap::new();
    while let Some(entry) = entries.next().await {
        let entry = match entry {
            Ok(entry) => entry,
            // One stray object must not hide the rest of the module.
            Err(e @ StorageError::InvalidKey { .. }) => {
                warn!(module = %module, error = %e, "skipping an invalid stored key");
                continue;
            }
            Err(e) => {
                return Err(ServiceError::storage_doing(
                    &format!("listing {}", prefix.path_prefix()),
                    e,
                ));
            }
        };
        if let Key::Artifact {
            module: m,
            version,
            kind,
        } = entry.key
            && &m == module
        {
            let slot = found
                .entry(version.as_str().to_string())
                .or_insert_with(|| (version.clone(), Vec::new(), entry.meta.modified));
            slot.1.push(kind);
            slot.2 = slot.2.max(entry.meta.modified);
        }
    }
    Ok(found)
}

/// `/@v/list` offline: the tagged versions with anything stored, in Go semver order.
pub(crate) async fn list(inner: &Inner, module: &ModulePath) -> Result<Answer, ServiceError> {
    let found = stored_versions(inner, module).await?;
    let mut tagged: Vec<(Version, SystemTime)> = found
        .into_values()
        .filter(|(v, _, _)| !versions::is_pseudo(v))
        .map(|(v, _, modified)| (v, modified))
        .collect();
    if tagged.is_empty() {
        return Err(ServiceError::NotFound(format!(
            "offline mode: no versions of {module} are cached"
        )));
    }
    tagged.sort_by(|a, b| versions::compare(&a.0, &b.0));
    let modified = tagged.iter().map(|(_, m)| *m).max();
    let body: String = tagged.iter().map(|(v, _)| format!("{v}\n")).collect();
    let body = Bytes::from(body);
    Ok(Answer {
        size: body.len() as u64,
        etag: Some(sha256_etag(&body)),
        body: Body::Bytes(body),
        immutable: false,
        modified,
        fetched: false,
    })
}

/// `/@latest` offline: the `.info` of the best stored version that has one (a release over a
/// prerelease over a pseudo-version, then the highest).
pub(crate) async fn latest(inner: &Inner, module: &ModulePath) -> Result<Answer, ServiceError> {
    let found = stored_versions(inner, module).await?;
    let best = found
        .into_values()
        .filter(|(_, kinds, _)| kinds.contains(&ArtifactKind::Info))
        .map(|(v, _, _)| v)
        .max_by(|a, b| {
            versions::latest_rank(a)
                .cmp(&versions::latest_rank(b))
                .then_with(|| versions::compare(a, b))
        });
    let no_version = || {
        ServiceError::NotFound(format!(
            "offline mode: no version of {module} with a .info is cached"
        ))
    };
    let best = best.ok_or_else(no_version)?;
    let key = Key::artifact(module, &best, ArtifactKind::Info);
    let answer = stored_small(inner, &key, inner.config.max_info_size, false).await?;
    // Deleted between the listing and the read: nothing else to offer.
    answer.ok_or_else(no_version)
}
