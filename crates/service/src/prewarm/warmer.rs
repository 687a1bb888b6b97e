//! The one interface between prewarming and serving: a [`Warmer`] makes sure an artifact is
//! stored, and says whether that took an upstream fetch.
//!
//! Prewarming knows nothing else of the service: in process it goes through the public
//! [`ProxyService`] API (the impl below), and a server's `prewarm --server URL` goes through plain
//! GOPROXY requests to a running proxy. Failures are [`WarmError`]s, which say only what the
//! batch job needs to know: not there, worth retrying, or failed for good.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use gomod::{ModulePath, Version};
use gomodproxy_storage::ArtifactKind;

use crate::{Body, KnownTree, ProxyService, SealReport, ServiceError, VersionQuery};

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

/// Why a [`Warmer`] could not make sure of an artifact.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WarmError {
    /// The in-process service failed (transient or not, as [`WarmError::is_transient`] says).
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// It does not exist (upstream says so, or an offline proxy does not have it).
    #[error("{0}")]
    NotFound(String),
    /// A failure that may pass: a timeout, an unavailable store or server, a bad gateway.
    #[error("{0}")]
    Transient(String),
    /// A failure that retrying will not fix (an invalid answer, a request that makes no sense).
    #[error("{0}")]
    Failed(String),
}

impl WarmError {
    /// Whether retrying may help: upstream errors and timeouts (but not a security refusal,
    /// which is the same answer every time) and store failures.
    pub fn is_transient(&self) -> bool {
        match self {
            WarmError::Service(e @ ServiceError::BadUpstream { .. }) => {
                !e.to_string().starts_with("SECURITY")
            }
            WarmError::Service(
                ServiceError::UpstreamTimeout { .. } | ServiceError::Storage { .. },
            ) => true,
            WarmError::Transient(_) => true,
            WarmError::Service(_) | WarmError::NotFound(_) | WarmError::Failed(_) => false,
        }
    }

    /// Whether the artifact does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            WarmError::NotFound(_) | WarmError::Service(ServiceError::NotFound { .. })
        )
    }
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
    ) -> Result<Warmed, WarmError>;
    /// The module's `@v/list`.
    async fn list(&self, module: &ModulePath) -> Result<Bytes, WarmError>;
    /// The module's `@latest` `.info`.
    async fn latest(&self, module: &ModulePath) -> Result<Bytes, WarmError>;
    /// The module's `@v/list` as upstream has it now, whatever the age of a cached one (and
    /// stored): what a refresh reads. By default [`Warmer::list`].
    async fn fresh_list(&self, module: &ModulePath) -> Result<Bytes, WarmError> {
        self.list(module).await
    }
    /// The module's `@latest` as upstream has it now (and stored). By default
    /// [`Warmer::latest`].
    async fn fresh_latest(&self, module: &ModulePath) -> Result<Bytes, WarmError> {
        self.latest(module).await
    }
    /// Every module with a version stored, and which versions.
    async fn stored_modules(&self) -> Result<Vec<StoredModule>, WarmError>;
    /// Makes the checksum-database records of `targets` (at least) provable offline against
    /// the stored tree head, and so the tree heads clients remember (`known`, and for an
    /// in-process warmer every tree the store has recorded).
    async fn seal(&self, targets: &[Target], known: &[KnownTree]) -> Result<SealReport, WarmError>;
}

/// A module of the store and what of it is stored (for a refresh).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredModule {
    /// The module.
    pub module: ModulePath,
    /// Its versions with anything stored.
    pub versions: BTreeSet<Version>,
    /// Whether a zip of any version is stored (then new versions are fetched whole, else only
    /// their go.mod: a module the builds need only for the module graph).
    pub zips: bool,
}

#[async_trait]
impl Warmer for ProxyService {
    async fn artifact(
        &self,
        module: &ModulePath,
        version: &Version,
        kind: ArtifactKind,
    ) -> Result<Warmed, WarmError> {
        let answer = match kind {
            ArtifactKind::Info => {
                self.info(module, &VersionQuery::Canonical(version.clone()))
                    .await?
            }
            ArtifactKind::Mod => self.go_mod(module, version).await?,
            ArtifactKind::Zip => self.zip(module, version).await?,
            ArtifactKind::ZipHash => {
                return Err(WarmError::Failed(
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

    async fn list(&self, module: &ModulePath) -> Result<Bytes, WarmError> {
        body_bytes(ProxyService::list(self, module).await?.body).await
    }

    async fn latest(&self, module: &ModulePath) -> Result<Bytes, WarmError> {
        body_bytes(ProxyService::latest(self, module).await?.body).await
    }

    async fn fresh_list(&self, module: &ModulePath) -> Result<Bytes, WarmError> {
        body_bytes(self.refresh_list(module).await?.body).await
    }

    async fn fresh_latest(&self, module: &ModulePath) -> Result<Bytes, WarmError> {
        body_bytes(self.refresh_latest(module).await?.body).await
    }

    async fn stored_modules(&self) -> Result<Vec<StoredModule>, WarmError> {
        let mut by_module: BTreeMap<String, StoredModule> = BTreeMap::new();
        for (module, version, kind) in self.stored_artifacts().await? {
            let entry = by_module
                .entry(module.as_str().to_string())
                .or_insert_with(|| StoredModule {
                    module: module.clone(),
                    versions: BTreeSet::new(),
                    zips: false,
                });
            entry.zips |= kind == ArtifactKind::Zip;
            entry.versions.insert(version);
        }
        Ok(by_module.into_values().collect())
    }

    async fn seal(
        &self,
        _targets: &[Target],
        known: &[KnownTree],
    ) -> Result<SealReport, WarmError> {
        // Every stored record and recorded tree, not only this run's: one tree head serves them
        // all.
        Ok(self.seal_sumdb(known).await?)
    }
}

async fn body_bytes(body: Body) -> Result<Bytes, WarmError> {
    match body {
        Body::Bytes(b) => Ok(b),
        Body::Stream(mut s) => {
            let mut out = Vec::new();
            while let Some(chunk) = s.next().await {
                out.extend_from_slice(&chunk.map_err(|e| {
                    WarmError::Transient(format!("reading a body: {}", crate::io_words(&e)))
                })?);
            }
            Ok(Bytes::from(out))
        }
    }
}
