//! `verify`: re-checks what the store holds.
//!
//! - every cached checksum-database tree head opens with its database's key; every cached tile
//!   is what that tree commits to; every cached lookup is well-formed, signed, and its record
//!   provable in the cached tree with cached tiles (what an offline client will need);
//! - every stored zip is read back (spooled to a temporary file), re-validated with
//!   `check_zip`, and its `h1:` compared with the stored `.ziphash` and the cached record;
//! - every `.mod` parses, and its go.mod hash is compared with the cached record;
//! - every `.info`, `list` and `@latest` is well-formed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use futures::StreamExt;
use gomod::dirhash::hash_go_mod;
use gomod::sumdb::tlog::Tree;
use gomod::sumdb::{Lookup, Record, SumdbName, SumdbPath};
use gomod::zipfile::ZipLimits;
use gomod::{ModulePath, Version};
use gomodproxy_service::validate;
use gomodproxy_storage::{ArtifactKind, Key, ListEntry, ListPrefix, Storage, StorageExt};
use tokio::io::AsyncWriteExt;

use crate::error::BundleError;
use crate::order::order_key;
use crate::sumdb::{MAX_TILE, Tiles, Verifiers, check_lookup, open_tree};
use crate::{MAX_MOD, MAX_SMALL};
use crate::{Problem, Progress};

/// What to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Only these modules (GOPRIVATE-style patterns); empty: the whole store, tiles included.
    pub modules: Vec<String>,
    /// The checksum databases' keys.
    pub sumdbs: Verifiers,
    /// Where zips are spooled (default: the OS temp dir).
    pub spool_dir: Option<PathBuf>,
    /// Module zip limits.
    pub zip_limits: ZipLimits,
}

/// What verify found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Zips re-validated.
    pub zips: u64,
    /// Their bytes.
    pub zip_bytes: u64,
    /// `.mod` files checked.
    pub mods: u64,
    /// `.info`, `list`, `@latest` checked.
    pub others: u64,
    /// Lookup records checked.
    pub records: u64,
    /// Tiles checked.
    pub tiles: u64,
    /// Everything wrong.
    pub problems: Vec<Problem>,
    /// How long it took.
    pub elapsed: std::time::Duration,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the store (or the selected modules of it).
pub async fn verify(
    storage: &dyn Storage,
    options: &VerifyOptions,
    progress: &dyn Progress<str>,
) -> Result<VerifyReport, BundleError> {
    let started = Instant::now();
    let mut report = VerifyReport::default();
    let in_scope = |m: &ModulePath| {
        options.modules.is_empty()
            || options
                .modules
                .iter()
                .any(|p| gomod::glob::match_prefix_patterns(p, m.as_str()))
    };
    progress.phase("listing the store", None, None);
    let mut entries: Vec<ListEntry> = Vec::new();
    let mut listing = storage.list(&ListPrefix::All);
    while let Some(entry) = listing.next().await {
        let entry = entry?;
        let keep = match &entry.key {
            Key::Sumdb {
                path: SumdbPath::Lookup { module, .. },
                ..
            } => in_scope(module),
            Key::Sumdb { .. } => options.modules.is_empty(),
            other => other.module().is_some_and(in_scope),
        };
        if keep {
            entries.push(entry);
        }
    }
    entries.sort_by_cached_key(|e| order_key(&e.key.path()));
    progress.phase(
        "verifying",
        Some(entries.len() as u64),
        Some(entries.iter().map(|e| e.meta.size).sum()),
    );

    // Checksum database: heads, tiles, records.
    let mut records: HashMap<(ModulePath, Version), Vec<(SumdbName, Record)>> = HashMap::new();
    let mut anchors: HashMap<SumdbName, Option<Tree>> = HashMap::new();
    let mut tiles_by_db: HashMap<SumdbName, Tiles<'_>> = HashMap::new();
    let split = entries
        .iter()
        .position(|e| !matches!(e.key, Key::Sumdb { .. }))
        .unwrap_or(entries.len());
    let (sumdb_entries, artifacts) = entries.split_at(split);
    for entry in sumdb_entries {
        let Key::Sumdb { db, path } = &entry.key else {
            continue;
        };
        let key_path = entry.key.path();
        let mut problem = |reason: String| {
            report.problems.push(Problem {
                path: key_path.clone(),
                reason,
            })
        };
        let Some(verifier) = options.sumdbs.get(db) else {
            problem(format!(
                "no verifier key for checksum database {db} is configured (sumdb.databases)"
            ));
            progress.step(&key_path, entry.meta.size);
            continue;
        };
        if !anchors.contains_key(db) {
            let latest = Key::Sumdb {
                db: db.clone(),
                path: SumdbPath::Latest,
            };
            let anchor = match storage.get_bytes(&latest, MAX_SMALL).await {
                Ok((_, note)) => match open_tree(verifier, &note) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        report.problems.push(Problem {
                            path: latest.path(),
                            reason: format!("tree head does not verify with {verifier}: {e}"),
                        });
                        None
                    }
                },
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e.into()),
            };
            anchors.insert(db.clone(), anchor);
        }
        let anchor = anchors[db];
        let mut problem = |reason: String| {
            report.problems.push(Problem {
                path: key_path.clone(),
                reason,
            })
        };
        let tiles = tiles_by_db
            .entry(db.clone())
            .or_insert_with(|| Tiles::new(storage, db, None));
        match path {
            SumdbPath::Latest | SumdbPath::Supported => {}
            SumdbPath::Tile(tile) => {
                let data = match storage.get_bytes(&entry.key, MAX_TILE).await {
                    Ok((_, d)) => d,
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => {
                        problem(format!("cannot read: {e}"));
                        continue;
                    }
                };
                match anchor {
                    Some(anchor) => {
                        if let Err(why) = tiles.prove_tile(anchor, tile, &data).await? {
                            problem(why);
                        }
                    }
                    None => problem(format!(
                        "no valid cached tree head of {db} to check it against"
                    )),
                }
                report.tiles += 1;
            }
            SumdbPath::Lookup { module, version } => {
                let body = match storage.get_bytes(&entry.key, MAX_SMALL).await {
                    Ok((_, b)) => b,
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => {
                        problem(format!("cannot read: {e}"));
                        continue;
                    }
                };
                if let Ok(lookup) = Lookup::parse(&body) {
                    records
                        .entry((module.clone(), version.clone()))
                        .or_default()
                        .push((db.clone(), lookup.record(module.as_str(), version.as_str())));
                }
                match anchor {
                    Some(anchor) => {
                        if let Err(why) =
                            check_lookup(tiles, verifier, anchor, module, version, &body).await?
                        {
                            problem(format!("record not provable offline: {why}"));
                        }
                    }
                    None => problem(format!(
                        "no valid cached tree head of {db} to prove the record in"
                    )),
                }
                report.records += 1;
            }
        }
        progress.step(&key_path, entry.meta.size);
    }

    // Artifacts, in order: .info, .mod, .ziphash, .zip per version.
    let mut ziphash: Option<(ModulePath, Version, String, Option<String>)> = None;
    for entry in artifacts {
        let path = entry.key.path();
        let mut problems = Vec::new();
        if let Key::Artifact {
            module, version, ..
        } = &entry.key
            && let Some((m, v, hp, _)) = &ziphash
            && (m != module || v != version || !entry.key.is_zip())
        {
            problems.push(Problem {
                path: hp.clone(),
                reason: "a .ziphash without its zip".to_string(),
            });
            ziphash = None;
        }
        match &entry.key {
            Key::Artifact {
                module,
                version,
                kind,
            } => match kind {
                ArtifactKind::Info => {
                    if let Some(body) = read(storage, &entry.key, MAX_SMALL, &mut problems).await? {
                        if let Err(why) = validate::info_for(version, &body) {
                            problems.push(Problem::new(&path, why));
                        }
                        report.others += 1;
                    }
                }
                ArtifactKind::Mod => {
                    if let Some(body) = read(storage, &entry.key, MAX_MOD, &mut problems).await? {
                        if let Err(why) = validate::go_mod(module, &body) {
                            problems.push(Problem::new(&path, why));
                        }
                        let h1 = hash_go_mod(&body);
                        compare(&records, module, version, true, &h1, &path, &mut problems);
                        report.mods += 1;
                    }
                }
                ArtifactKind::ZipHash => {
                    let stored = read(storage, &entry.key, MAX_SMALL, &mut problems)
                        .await?
                        .map(|b| {
                            validate::ziphash(&b).unwrap_or_else(|e| format!("invalid ({e})"))
                        });
                    ziphash = Some((module.clone(), version.clone(), path.clone(), stored));
                }
                ArtifactKind::Zip => {
                    let stored_hash = match ziphash.take() {
                        Some((m, v, _, h)) if &m == module && &v == version => h,
                        _ => None,
                    };
                    if let Some(summary) =
                        check_stored_zip(storage, options, &entry.key, &mut problems).await?
                    {
                        report.zips += 1;
                        report.zip_bytes += entry.meta.size;
                        match stored_hash {
                            None => problems.push(Problem::new(
                                &path,
                                format!("no .ziphash stored (the zip hashes to {})", summary.h1),
                            )),
                            Some(h) if h != summary.h1 => problems.push(Problem::new(
                                &path,
                                format!(
                                    "the zip hashes to {}, but its .ziphash says {h}",
                                    summary.h1
                                ),
                            )),
                            Some(_) => {}
                        }
                        compare(
                            &records,
                            module,
                            version,
                            false,
                            &summary.h1,
                            &path,
                            &mut problems,
                        );
                    }
                }
            },
            Key::List { module } => {
                if let Some(body) = read(storage, &entry.key, MAX_SMALL, &mut problems).await? {
                    if let Err(why) = validate::check_list(module, &body) {
                        problems.push(Problem::new(&path, why));
                    }
                    report.others += 1;
                }
            }
            Key::Latest { module } => {
                if let Some(body) = read(storage, &entry.key, MAX_SMALL, &mut problems).await? {
                    if let Err(why) = validate::info_of(module, &body) {
                        problems.push(Problem::new(&path, why));
                    }
                    report.others += 1;
                }
            }
            _ => {}
        }
        for p in &problems {
            progress.problem(p);
        }
        report.problems.extend(problems);
        progress.step(&path, entry.meta.size);
    }
    if let Some((_, _, hp, _)) = ziphash {
        report
            .problems
            .push(Problem::new(&hp, "a .ziphash without its zip".to_string()));
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// A small object's body; `None` (and a problem) if it cannot be read, `None` alone if it was
/// deleted meanwhile.
async fn read(
    storage: &dyn Storage,
    key: &Key,
    limit: u64,
    problems: &mut Vec<Problem>,
) -> Result<Option<bytes::Bytes>, BundleError> {
    match storage.get_bytes(key, limit).await {
        Ok((_, b)) => Ok(Some(b)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(gomodproxy_storage::StorageError::Backend { source, .. })
            if source.to_string().contains("limit") =>
        {
            problems.push(Problem::new(key.path(), source.to_string()));
            Ok(None)
        }
        Err(e @ gomodproxy_storage::StorageError::Corrupt { .. }) => {
            problems.push(Problem::new(key.path(), e.to_string()));
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Compares a hash with the cached records of the version.
fn compare(
    records: &HashMap<(ModulePath, Version), Vec<(SumdbName, Record)>>,
    module: &ModulePath,
    version: &Version,
    go_mod: bool,
    h1: &str,
    path: &str,
    problems: &mut Vec<Problem>,
) {
    let Some(found) = records.get(&(module.clone(), version.clone())) else {
        return;
    };
    for (db, record) in found {
        let want = if go_mod { &record.go_mod } else { &record.zip };
        if let Some(want) = want
            && want != h1
        {
            problems.push(Problem::new(
                path,
                format!("hashes to {h1}, but checksum database {db} has {want}"),
            ));
        }
    }
}

/// Streams a stored zip to a temporary file and re-validates it.
async fn check_stored_zip(
    storage: &dyn Storage,
    options: &VerifyOptions,
    key: &Key,
    problems: &mut Vec<Problem>,
) -> Result<Option<gomod::ZipSummary>, BundleError> {
    let Key::Artifact {
        module, version, ..
    } = key
    else {
        return Ok(None);
    };
    let path = key.path();
    let got = match storage.get(key).await {
        Ok(g) => g,
        Err(e) if e.is_not_found() => return Ok(None),
        // The store's own length check found it (a truncated or extended file).
        Err(e @ gomodproxy_storage::StorageError::Corrupt { .. }) => {
            problems.push(Problem::new(&path, e.to_string()));
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    if got.meta.size > options.zip_limits.max_zip_size {
        problems.push(Problem::new(
            &path,
            format!(
                "{} bytes, over the {}-byte zip limit",
                got.meta.size, options.zip_limits.max_zip_size
            ),
        ));
        return Ok(None);
    }
    let spool = match &options.spool_dir {
        Some(d) => tempfile::tempfile_in(d),
        None => tempfile::tempfile(),
    }
    .map_err(|e| BundleError::io("cannot create a spool file", e))?;
    let mut file = tokio::fs::File::from_std(spool);
    let mut body = got.body;
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                problems.push(Problem::new(&path, format!("cannot read: {e}")));
                return Ok(None);
            }
        };
        size += chunk.len() as u64;
        file.write_all(&chunk)
            .await
            .map_err(|e| BundleError::io("spooling a zip", e))?;
    }
    file.flush()
        .await
        .map_err(|e| BundleError::io("spooling a zip", e))?;
    if size != got.meta.size {
        problems.push(Problem::new(
            &path,
            format!(
                "the store announced {} bytes but sent {size}",
                got.meta.size
            ),
        ));
        return Ok(None);
    }
    let mut file = file.into_std().await;
    let (m, v, limits) = (module.clone(), version.clone(), options.zip_limits);
    let checked = tokio::task::spawn_blocking(move || gomod::check_zip(&mut file, &m, &v, &limits))
        .await
        .map_err(|e| BundleError::Internal(format!("zip check: {e}")))?;
    match checked {
        Ok(summary) => Ok(Some(summary)),
        Err(e) => {
            problems.push(Problem::new(&path, format!("invalid module zip: {e}")));
            Ok(None)
        }
    }
}
