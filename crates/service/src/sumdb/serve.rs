//! The two ways the rest of the service uses the checksum database: serving
//! `/sumdb/<name>/…` ([`serve`]) and checking an upstream artifact's hash before it is stored
//! ([`verify_hash`]), with the private-module rule both obey ([`is_private`]).

use std::sync::Arc;

use bytes::Bytes;
use gomod::sumdb::{Record, SumdbName, SumdbPath};
use gomod::{ModulePath, Version};

use super::security;
use crate::{Answer, Body, Inner, ServiceError, sha256_etag};

/// Whether `module` is private: it matches `private`, the patterns of a private route (the
/// same patterns `gomodproxy import` exempts, [`crate::Routes::private_globs`]), or the
/// caller's `private_names` (modules the access rules restrict).
pub(crate) fn is_private(inner: &Inner, module: &ModulePath) -> bool {
    inner.config.private.matches(module.as_str())
        || inner
            .config
            .private_names
            .as_ref()
            .is_some_and(|private| private(module.as_str()))
        || inner.config.routes.is_private(module.as_str())
}

/// Checks an upstream `.mod` or `.zip` hash against the verifying database, unless
/// verification is off or the module is private.
pub(crate) async fn verify_hash(
    inner: &Arc<Inner>,
    module: &ModulePath,
    version: &Version,
    what: Verified,
    h1: &str,
) -> Result<(), ServiceError> {
    if !inner.config.verify || is_private(inner, module) {
        return Ok(());
    }
    let Some(db) = inner.sumdbs.verifying().cloned() else {
        return Ok(());
    };
    let lookup = db
        .lookup(inner, module, version)
        .await
        .map_err(|e| match e {
            // Not in the database: the go command would refuse it too.
            ServiceError::NotFound(m) => {
                ServiceError::BadUpstream(format!("cannot verify {module}@{version}: {m}"))
            }
            other => other,
        })?;
    let Record { zip, go_mod } = lookup.record(module.as_str(), version.as_str());
    let (want, label) = match what {
        Verified::Zip => (zip, ""),
        Verified::GoMod => (go_mod, "/go.mod"),
    };
    match want {
        Some(want) if want == h1 => Ok(()),
        Some(want) => Err(security(
            &db.name,
            format!(
                "checksum mismatch for {module}@{version}{label}: upstream sent {h1}, checksum database {} has {want}; not stored",
                db.name
            ),
        )),
        None => Err(security(
            &db.name,
            format!(
                "checksum database {} has no {module} {version}{label} hash",
                db.name
            ),
        )),
    }
}

/// What [`verify_hash`] checks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Verified {
    Zip,
    GoMod,
}

/// `/sumdb/<name>/<path>`.
pub(crate) async fn serve(
    inner: &Arc<Inner>,
    name: &SumdbName,
    path: &SumdbPath,
) -> Result<Answer, ServiceError> {
    let db = match inner.sumdbs.get(name) {
        Some(db) if inner.config.serve_sumdb => db.clone(),
        _ => {
            return Err(ServiceError::NotFound(format!(
                "checksum database {name} is not proxied here"
            )));
        }
    };
    let (body, immutable) = match path {
        SumdbPath::Supported => (Bytes::new(), false),
        SumdbPath::Tree(_) => {
            return Err(ServiceError::NotFound(format!(
                "sumdb/{name}/{path}: the proxy's record of a tree head is not a checksum-database endpoint"
            )));
        }
        SumdbPath::Latest => {
            let t = if db.source.is_some() {
                db.tree_at_least(inner, 0, false).await?
            } else {
                db.trusted(inner).await?.ok_or_else(|| {
                    ServiceError::NotFound(format!(
                        "offline mode: no tree head of {name} is cached"
                    ))
                })?
            };
            (t.note, false)
        }
        SumdbPath::Tile(tile) => (db.tile(inner, *tile).await?, true),
        SumdbPath::Lookup { module, version } => {
            let lookup = db.lookup(inner, module, version).await?;
            // Attach the trusted tree, whose tiles are the ones this proxy serves.
            let trusted = match db.trusted(inner).await? {
                Some(t) if t.tree.n > lookup.id => Some(t),
                _ if db.source.is_some() => {
                    Some(db.tree_at_least(inner, lookup.id + 1, true).await?)
                }
                _ => None,
            };
            let body = match trusted {
                Some(t) => lookup.format_with_note(&t.note),
                None => lookup.format_with_note(&lookup.note),
            };
            (Bytes::from(body), false)
        }
    };
    Ok(Answer {
        size: body.len() as u64,
        etag: Some(sha256_etag(&body)),
        body: Body::Bytes(body),
        immutable,
        modified: None,
        fetched: false,
    })
}
