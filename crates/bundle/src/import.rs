//! `import`: a bundle or a GOPROXY-layout directory into the store, every object validated
//! before it is stored.
//!
//! One pass in bundle order: the checksum-database objects come first and are staged in a
//! temporary directory; when the first artifact arrives (or the source ends) they are checked
//! together ([`crate::sumdb::check_db`]) and the valid ones stored — tiles, then lookups, then
//! the tree head. Artifacts follow and are checked against the records now in the store.

use std::collections::HashSet;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use gomod::dirhash::hash_go_mod;
use gomod::sumdb::{Lookup, SumdbName, SumdbPath};
use gomod::zipfile::ZipLimits;
use gomod::{ModulePath, Version};
use gomodproxy_service::validate;
use gomodproxy_storage::{ArtifactKind, Key, PutPayload, Storage, StorageExt};
use tokio_util::io::ReaderStream;

use crate::MAX_SMALL;
use crate::error::BundleError;
use crate::manifest::Manifest;
use crate::source::{self, Body, ImportSource, Item, ReadOptions};
use crate::sumdb::{Decision, Staging, Verifiers, check_db};
use crate::verdict::{Verdict, refuse};
use crate::{Problem, Progress};

/// How many skipped paths a report keeps as examples.
const SKIPPED_EXAMPLES: usize = 20;

/// How an import checks and where it spools.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Keys of the checksum databases whose objects may be imported (and whose records the
    /// artifacts are checked against).
    pub sumdbs: Verifiers,
    /// Where zips and checksum-database objects are spooled (default: the OS temp dir).
    pub spool_dir: Option<PathBuf>,
    /// Module zip limits (the go command's by default).
    pub zip_limits: ZipLimits,
    /// The serving rule of `sumdb.verify`: a `.zip`, `.mod` or `.info` of a module that is not
    /// `private` is imported only if a checksum-database record (in the source or already in
    /// the store) proves it; without one it is refused. Off by default for library callers;
    /// `gomodproxy import` sets it from `sumdb.verify`.
    pub verify: bool,
    /// Module path patterns (GOPRIVATE syntax, comma-separated entries allowed) exempt from
    /// `verify`, as in serving.
    pub private: Vec<String>,
    /// The server's allow/deny policy: a module version it refuses (the reason) is not
    /// imported, as it is never served nor prewarmed. `None`: everything may be imported.
    pub policy: Option<ImportPolicy>,
}

/// A policy check for [`ImportOptions::policy`]: the refusal reason of a module version, if
/// refused.
#[derive(Clone)]
pub struct ImportPolicy(pub Arc<PolicyCheck>);

/// The function inside an [`ImportPolicy`].
pub type PolicyCheck = dyn Fn(&ModulePath, &Version) -> Option<String> + Send + Sync;

impl std::fmt::Debug for ImportPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImportPolicy")
    }
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// The bundle's manifest (none for a directory).
    pub manifest: Option<Manifest>,
    /// Objects written to the store (including `.ziphash` objects computed from zips).
    pub imported: u64,
    /// Bytes written.
    pub imported_bytes: u64,
    /// Source objects the store already had, byte for byte (or, for a tree head, `list` or
    /// `@latest`, a same or newer one).
    pub already: u64,
    /// Objects not stored because they are invalid, unprovable or conflict with the store.
    pub refused: Vec<Problem>,
    /// Entries that are not store objects (lock files, partial downloads, hidden files, …).
    pub skipped: u64,
    /// The first few skipped entries.
    pub skipped_examples: Vec<Problem>,
    /// How long it took.
    pub elapsed: std::time::Duration,
    /// Whether this run recorded the bundle as imported (a bundle that follows it may be
    /// imported next); false when it was recorded before, or objects were refused.
    pub recorded: bool,
}

impl ImportReport {
    /// Whether nothing was refused.
    pub fn ok(&self) -> bool {
        self.refused.is_empty()
    }
}

/// What happened to one object.
enum Outcome {
    Imported(u64),
    Already,
    Refused(String),
}

/// Imports `source` into `storage`. Per-object problems are in the report; an error means the
/// run could not go on (the store failed, the bundle is corrupt).
pub async fn import(
    storage: &dyn Storage,
    source: ImportSource,
    options: &ImportOptions,
    progress: &dyn Progress<str>,
) -> Result<ImportReport, BundleError> {
    let started = Instant::now();
    let is_dir = matches!(source, ImportSource::Dir(_));
    let (mut rx, reader) = source::start(
        source,
        ReadOptions {
            spool_dir: options.spool_dir.clone(),
            max_zip: options.zip_limits.max_zip_size,
        },
    );
    let mut importer = Importer {
        storage,
        options,
        progress,
        report: ImportReport::default(),
        staging: Some(Staging::new(options.spool_dir.as_deref())?),
        refused_records: HashSet::new(),
        pending_hash: None,
    };
    if is_dir {
        progress.phase("importing", None, None);
    }
    let result = async {
        while let Some(item) = rx.recv().await {
            importer.item(item?).await?;
        }
        importer.finish_sumdb().await?;
        importer.flush_pending().await?;
        importer.record_bundle().await
    }
    .await;
    // Stop the reader (if the import failed early) and wait for it.
    drop(rx);
    reader
        .await
        .map_err(|e| BundleError::Internal(format!("source reader: {e}")))?;
    result?;
    let mut report = importer.report;
    report.elapsed = started.elapsed();
    Ok(report)
}

struct Importer<'a> {
    storage: &'a dyn Storage,
    options: &'a ImportOptions,
    progress: &'a dyn Progress<str>,
    report: ImportReport,
    /// The source's checksum-database objects, until they are checked (`None` after).
    staging: Option<Staging>,
    /// Module versions whose lookup in the source was refused: their artifacts are refused too
    /// (an attacker must not be able to drop the record that would expose a tampered zip).
    refused_records: HashSet<(ModulePath, Version)>,
    /// A `.ziphash` waiting for its `.zip` (which follows it in bundle order).
    pending_hash: Option<Pending>,
}

struct Pending {
    module: ModulePath,
    version: Version,
    path: String,
    h1: String,
}

impl Importer<'_> {
    /// The one path of every refusal: recorded in the report and told to the progress sink.
    fn refuse(&mut self, path: String, reason: String) {
        let problem = Problem { path, reason };
        self.progress.problem(&problem);
        self.report.refused.push(problem);
    }

    fn skip(&mut self, path: String, reason: String) {
        self.report.skipped += 1;
        if self.report.skipped_examples.len() < SKIPPED_EXAMPLES {
            self.report.skipped_examples.push(Problem { path, reason });
        }
    }

    fn record(&mut self, path: String, outcome: Outcome) {
        match outcome {
            Outcome::Imported(bytes) => {
                self.report.imported += 1;
                self.report.imported_bytes += bytes;
            }
            Outcome::Already => self.report.already += 1,
            Outcome::Refused(reason) => self.refuse(path, reason),
        }
    }

    async fn item(&mut self, item: Item) -> Result<(), BundleError> {
        match item {
            Item::Manifest(m) => {
                self.check_chain(&m).await?;
                self.progress
                    .phase("importing", Some(m.objects), Some(m.bytes));
                self.report.manifest = Some(m);
            }
            Item::Skipped { path, reason } => {
                self.progress.step(&path, 0);
                self.skip(path, reason);
            }
            Item::Refused { path, reason } => {
                self.progress.step(&path, 0);
                self.refuse(path, reason);
            }
            Item::Object { key, body } => {
                let path = key.path();
                let size = body.size();
                if let Key::Sumdb { db, path: p } = &key {
                    match (&mut self.staging, body) {
                        (Some(staging), Body::Bytes(bytes)) => {
                            if !staging.add(db, p, &bytes).await? {
                                self.refuse(path.clone(), "duplicate entry".to_string());
                            }
                        }
                        _ => self.refuse(
                            path.clone(),
                            "checksum-database objects must come before every artifact in a bundle"
                                .to_string(),
                        ),
                    }
                    // Counted when checked.
                    return Ok(());
                }
                self.finish_sumdb().await?;
                self.artifact(key, body).await?;
                self.progress.step(&path, size);
            }
        }
        Ok(())
    }

    /// Checks and stores the staged checksum-database objects (once).
    async fn finish_sumdb(&mut self) -> Result<(), BundleError> {
        let Some(staging) = self.staging.take() else {
            return Ok(());
        };
        let dbs: Vec<_> = staging.by_db.keys().cloned().collect();
        let had_dbs = !dbs.is_empty();
        for db in dbs {
            self.progress.phase(&format!("checking {db}"), None, None);
            let mut verdicts =
                check_db(self.storage, &staging, &db, self.options.sumdbs.get(&db)).await?;
            // Tiles, then records and recorded trees, then the tree head: a reader never sees
            // a head whose proofs are not stored yet.
            verdicts.sort_by_key(|(p, _)| match p {
                SumdbPath::Tile(_) => 0,
                SumdbPath::Lookup { .. } | SumdbPath::Tree(_) => 1,
                _ => 2,
            });
            let latest_accepted = verdicts
                .iter()
                .any(|(p, d)| *p == SumdbPath::Latest && !matches!(d, Decision::Refused(_)));
            for (p, verdict) in verdicts {
                let key = Key::Sumdb {
                    db: db.clone(),
                    path: p.clone(),
                };
                let path = key.path();
                let outcome = match verdict {
                    Decision::Refused(why) => Outcome::Refused(why),
                    Decision::KeepStored(_) => Outcome::Already,
                    Decision::Import => {
                        let body = staging.read(&db, &p).await?;
                        match &p {
                            SumdbPath::Lookup { .. } => self.store_lookup(&key, body).await?,
                            SumdbPath::Latest => self.store_replacing(&key, body).await?,
                            _ => self.store_immutable(&key, body).await?,
                        }
                    }
                };
                if let (Outcome::Refused(_), SumdbPath::Lookup { module, version }) = (&outcome, &p)
                {
                    self.refused_records
                        .insert((module.clone(), version.clone()));
                }
                let size = staging.sizes.get(&path).copied().unwrap_or(0);
                self.progress.step(&path, size);
                self.record(path, outcome);
            }
            if latest_accepted {
                // The imported tree head is one the offline proxy hands to clients: recorded,
                // so that the next bundle must prove it.
                let note = staging.read(&db, &SumdbPath::Latest).await?;
                if let Ok(tree) = gomod::sumdb::tlog::Tree::parse(&String::from_utf8_lossy(&note)) {
                    let key = Key::Sumdb {
                        db: db.clone(),
                        path: SumdbPath::Tree(tree.n),
                    };
                    if self.storage.exists(&key).await?.is_none() {
                        self.storage.put_bytes(&key, note).await?;
                    }
                }
            }
        }
        if had_dbs {
            let (objects, bytes) = self
                .report
                .manifest
                .as_ref()
                .map_or((None, None), |m| (Some(m.objects), Some(m.bytes)));
            self.progress.phase("importing", objects, bytes);
        }
        Ok(())
    }

    async fn artifact(&mut self, key: Key, body: Body) -> Result<(), BundleError> {
        let path = key.path();
        if let (
            Key::Artifact {
                module, version, ..
            },
            Some(policy),
        ) = (&key, &self.options.policy)
            && let Some(reason) = (policy.0)(module, version)
        {
            self.refuse(path, format!("refused by policy: {reason}"));
            return Ok(());
        }
        match (&key, body) {
            (
                Key::Artifact {
                    module,
                    version,
                    kind: ArtifactKind::Zip,
                },
                body,
            ) => {
                let pending = match self.pending_hash.take() {
                    Some(p) if &p.module == module && &p.version == version => Some(p),
                    other => {
                        self.pending_hash = other;
                        self.flush_pending().await?;
                        None
                    }
                };
                let (file, size) = match body {
                    Body::File { file, size } => (file, size),
                    Body::Bytes(_) => {
                        return Err(BundleError::Internal("a zip was not spooled".to_string()));
                    }
                };
                self.zip(module, version, &path, file, size, pending)
                    .await?;
            }
            (_, Body::File { .. }) => {
                return Err(BundleError::Internal(format!("{path} was spooled")));
            }
            (
                Key::Artifact {
                    module,
                    version,
                    kind,
                },
                Body::Bytes(bytes),
            ) => {
                let outcome = match kind {
                    ArtifactKind::ZipHash => {
                        self.flush_pending().await?;
                        match validate::ziphash(&bytes) {
                            Ok(h1) => {
                                self.pending_hash = Some(Pending {
                                    module: module.clone(),
                                    version: version.clone(),
                                    path,
                                    h1,
                                });
                                return Ok(());
                            }
                            Err(why) => Outcome::Refused(why.into()),
                        }
                    }
                    ArtifactKind::Info => match validate::info_for(version, &bytes) {
                        Ok(()) => match self.has_record(module, version).await? {
                            Verdict::Accepted => self.store_immutable(&key, bytes).await?,
                            Verdict::Refused(why) => Outcome::Refused(why),
                        },
                        Err(why) => Outcome::Refused(why.into()),
                    },
                    ArtifactKind::Mod => match validate::go_mod(module, &bytes) {
                        Ok(()) => {
                            let h1 = hash_go_mod(&bytes);
                            match self.against_records(module, version, true, &h1).await? {
                                Verdict::Accepted => self.store_immutable(&key, bytes).await?,
                                Verdict::Refused(why) => Outcome::Refused(why),
                            }
                        }
                        Err(why) => Outcome::Refused(why.into()),
                    },
                    ArtifactKind::Zip => unreachable!("zips are handled above"),
                };
                self.record(path, outcome);
            }
            (Key::List { module }, Body::Bytes(bytes)) => {
                let outcome = match validate::check_list(module, &bytes) {
                    Ok(()) => self.store_list(&key, bytes).await?,
                    Err(why) => Outcome::Refused(why.into()),
                };
                self.record(path, outcome);
            }
            (Key::Latest { module }, Body::Bytes(bytes)) => {
                let outcome = match validate::info_of(module, &bytes) {
                    Ok(v) => self.store_latest_info(&key, bytes, &v).await?,
                    Err(why) => Outcome::Refused(why.into()),
                };
                self.record(path, outcome);
            }
            (_, Body::Bytes(_)) => {
                self.skip(path, "not an object this version imports".to_string());
            }
        }
        Ok(())
    }

    /// An incremental bundle needs the bundle it follows imported first.
    async fn check_chain(&self, manifest: &Manifest) -> Result<(), BundleError> {
        let Some(follows) = &manifest.follows else {
            return Ok(());
        };
        let recorded = match Key::bundle(&follows.id) {
            Some(key) => self.storage.exists(&key).await?.is_some(),
            None => false,
        };
        if recorded {
            return Ok(());
        }
        Err(BundleError::BrokenChain {
            bundle: manifest.describe(),
            follows: follows.describe(),
            name: follows.name.clone(),
        })
    }

    /// Records a bundle applied without a refusal, for the bundle that follows it.
    async fn record_bundle(&mut self) -> Result<(), BundleError> {
        let Some(manifest) = &self.report.manifest else {
            return Ok(());
        };
        let Some(key) = Key::bundle(&manifest.id) else {
            return Ok(());
        };
        if !self.report.ok() {
            return Ok(());
        }
        let body = serde_json::to_vec_pretty(manifest)
            .map_err(|e| BundleError::Internal(format!("bundle record: {e}")))?;
        if self.storage.exists(&key).await?.is_none() {
            self.storage.put_bytes(&key, Bytes::from(body)).await?;
            self.report.recorded = true;
        }
        Ok(())
    }

    /// A `.ziphash` whose `.zip` did not follow: hashes are stored only as computed from a zip.
    async fn flush_pending(&mut self) -> Result<(), BundleError> {
        let Some(p) = self.pending_hash.take() else {
            return Ok(());
        };
        let key = Key::artifact(&p.module, &p.version, ArtifactKind::ZipHash);
        match self.storage.get_bytes(&key, MAX_SMALL).await {
            Ok((_, stored)) if validate::ziphash(&stored).ok().as_deref() == Some(&p.h1) => {
                self.report.already += 1;
            }
            Ok(_) => self.refuse(
                p.path,
                "differs from the stored hash of this version's zip".to_string(),
            ),
            Err(e) if e.is_not_found() => self.skip(
                p.path,
                "a .ziphash without its .zip is not imported (hashes are stored only as computed from a zip)"
                    .to_string(),
            ),
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Whether `module` must be proven by a checksum-database record (`sumdb.verify` on, and
    /// the module not `private`).
    fn needs_proof(&self, module: &ModulePath) -> bool {
        self.options.verify
            && !self
                .options
                .private
                .iter()
                .any(|p| gomod::glob::match_prefix_patterns(p, module.as_str()))
    }

    /// The reason an unproven object of `module@version` is refused.
    fn unproven(module: &ModulePath, version: &Version) -> String {
        format!(
            "no checksum-database record proves {module}@{version} (neither in the source nor in the store); \
             with sumdb.verify on, a module that is not `private` is imported only with its proof"
        )
    }

    /// For an `.info`: a record of the version must exist when the module needs proof (an
    /// `.info` carries no hash, but must not invent a version).
    async fn has_record(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Verdict, BundleError> {
        if !self.needs_proof(module) {
            return Ok(Verdict::Accepted);
        }
        if self.record_refused(module, version) {
            refuse!("its checksum-database record in the source was refused (see above)");
        }
        for db in self.options.sumdbs.names() {
            let key = lookup_key(db, module, version);
            if self.storage.exists(&key).await?.is_some() {
                return Ok(Verdict::Accepted);
            }
        }
        Ok(Verdict::Refused(Self::unproven(module, version)))
    }

    /// Checks `h1` (of the zip, or of the go.mod when `go_mod`) against the module version's
    /// records: refused in the source → refused; a stored record with another hash → refused;
    /// no record at all → refused when the module needs proof.
    async fn against_records(
        &self,
        module: &ModulePath,
        version: &Version,
        go_mod: bool,
        h1: &str,
    ) -> Result<Verdict, BundleError> {
        if self.record_refused(module, version) {
            refuse!("its checksum-database record in the source was refused (see above)");
        }
        let mut proven = false;
        for db in self.options.sumdbs.names() {
            let key = lookup_key(db, module, version);
            let body = match self.storage.get_bytes(&key, MAX_SMALL).await {
                Ok((_, b)) => b,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            let Ok(lookup) = Lookup::parse(&body) else {
                refuse!("the stored record {key} is corrupt (run gomodproxy verify)");
            };
            let record = lookup.record(module.as_str(), version.as_str());
            let (want, label) = if go_mod {
                (record.go_mod, "/go.mod")
            } else {
                (record.zip, "")
            };
            match want {
                Some(want) if want != h1 => refuse!(
                    "checksum mismatch for {module}@{version}{label}: it hashes to {h1}, checksum database {db} has {want}"
                ),
                Some(_) => proven = true,
                None => {}
            }
        }
        if !proven && self.needs_proof(module) {
            return Ok(Verdict::Refused(Self::unproven(module, version)));
        }
        Ok(Verdict::Accepted)
    }

    /// Whether the source's lookup of `module@version` was refused (its artifacts are refused
    /// too).
    fn record_refused(&self, module: &ModulePath, version: &Version) -> bool {
        self.refused_records
            .contains(&(module.clone(), version.clone()))
    }

    async fn zip(
        &mut self,
        module: &ModulePath,
        version: &Version,
        path: &str,
        file: std::fs::File,
        size: u64,
        pending: Option<Pending>,
    ) -> Result<(), BundleError> {
        let (m, v, limits) = (module.clone(), version.clone(), self.options.zip_limits);
        let (file, checked) = tokio::task::spawn_blocking(move || {
            let mut file = file;
            let checked = gomod::check_zip(&mut file, &m, &v, &limits);
            (file, checked)
        })
        .await
        .map_err(|e| BundleError::Internal(format!("zip check: {e}")))?;
        let hash_path = pending.as_ref().map(|p| p.path.clone());
        let h1 = match checked {
            Ok(summary) => summary.h1,
            Err(e) => {
                self.refuse_zip(hash_path, path, e.to_string());
                return Ok(());
            }
        };
        let verdict = match &pending {
            Some(p) if p.h1 != h1 => Verdict::Refused(format!(
                "the zip hashes to {h1}, but the source's .ziphash says {}",
                p.h1
            )),
            _ => self.against_records(module, version, false, &h1).await?,
        };
        if let Verdict::Refused(why) = verdict {
            self.refuse_zip(hash_path, path, why);
            return Ok(());
        }
        let zip_key = Key::artifact(module, version, ArtifactKind::Zip);
        let hash_key = Key::artifact(module, version, ArtifactKind::ZipHash);
        let mut file = tokio::fs::File::from_std(file);
        match self.storage.exists(&zip_key).await? {
            Some(meta) => {
                if meta.size != size || !self.same_as_file(&zip_key, &mut file).await? {
                    let why = "conflict: the store has a different zip for this version (not overwritten)".to_string();
                    if let Some(hp) = hash_path {
                        self.refuse(hp, why.clone());
                    }
                    self.refuse(path.to_string(), why);
                    return Ok(());
                }
                self.record(path.to_string(), Outcome::Already);
                // The same zip: its hash must be stored, and be this one.
                let outcome = self
                    .store_immutable(&hash_key, Bytes::from(h1.clone()))
                    .await?;
                let outcome = match outcome {
                    Outcome::Refused(_) => Outcome::Refused(format!(
                        "the store's .ziphash differs from the hash of its zip, {h1} (run gomodproxy verify)"
                    )),
                    other => other,
                };
                self.record(hash_path.unwrap_or_else(|| hash_key.path()), outcome);
            }
            None => {
                // The hash first, as the proxy does: a zip is never visible without it.
                self.storage
                    .put_bytes(&hash_key, Bytes::from(h1.clone()))
                    .await?;
                self.record(
                    hash_path.unwrap_or_else(|| hash_key.path()),
                    Outcome::Imported(h1.len() as u64),
                );
                tokio::io::AsyncSeekExt::seek(&mut file, SeekFrom::Start(0))
                    .await
                    .map_err(|e| BundleError::io("rewinding a spooled zip", e))?;
                let stream = ReaderStream::with_capacity(
                    tokio::io::AsyncReadExt::take(file, size),
                    256 * 1024,
                )
                .boxed();
                self.storage
                    .put(
                        &zip_key,
                        PutPayload::Stream {
                            stream,
                            length: Some(size),
                        },
                    )
                    .await?;
                self.record(path.to_string(), Outcome::Imported(size));
            }
        }
        Ok(())
    }

    /// Refuses a zip, and the `.ziphash` that came with it (at `hash_path`) because of it.
    fn refuse_zip(&mut self, hash_path: Option<String>, path: &str, why: String) {
        if let Some(hp) = hash_path {
            self.refuse(hp, format!("its zip was refused: {why}"));
        }
        self.refuse(path.to_string(), why);
    }

    /// Whether the stored object equals the file's content (streamed, compared chunk by
    /// chunk).
    async fn same_as_file(
        &self,
        key: &Key,
        file: &mut tokio::fs::File,
    ) -> Result<bool, BundleError> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        file.seek(SeekFrom::Start(0))
            .await
            .map_err(|e| BundleError::io("rewinding a spooled zip", e))?;
        let mut stored = self.storage.get(key).await?.body;
        let mut buf = Vec::new();
        while let Some(chunk) = stored.next().await {
            let chunk = chunk.map_err(|e| BundleError::io(format!("reading {key}"), e))?;
            buf.resize(chunk.len(), 0);
            match file.read_exact(&mut buf).await {
                Ok(_) if buf == chunk[..] => {}
                Ok(_) => return Ok(false),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
                Err(e) => return Err(BundleError::io("reading a spooled zip", e)),
            }
        }
        let mut probe = [0u8; 1];
        Ok(file
            .read(&mut probe)
            .await
            .map_err(|e| BundleError::io("reading a spooled zip", e))?
            == 0)
    }

    /// An object that never changes: stored if absent, "already there" if identical, a conflict
    /// otherwise.
    async fn store_immutable(&self, key: &Key, body: Bytes) -> Result<Outcome, BundleError> {
        match self.storage.exists(key).await? {
            Some(meta) => {
                if meta.size == body.len() as u64 {
                    let (_, stored) = self.storage.get_bytes(key, meta.size).await?;
                    if stored == body {
                        return Ok(Outcome::Already);
                    }
                }
                Ok(Outcome::Refused(
                    "conflict: the store has different content under this key (not overwritten)"
                        .to_string(),
                ))
            }
            None => {
                let len = body.len() as u64;
                self.storage.put_bytes(key, body).await?;
                Ok(Outcome::Imported(len))
            }
        }
    }

    /// A mutable object (a tree head already proven newer or equal): replaced if different.
    async fn store_replacing(&self, key: &Key, body: Bytes) -> Result<Outcome, BundleError> {
        match self.storage.get_bytes(key, MAX_SMALL).await {
            Ok((_, stored)) if stored == body => return Ok(Outcome::Already),
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        let len = body.len() as u64;
        self.storage.put_bytes(key, body).await?;
        Ok(Outcome::Imported(len))
    }

    /// A lookup: the record is immutable, the note attached to it may differ.
    async fn store_lookup(&self, key: &Key, body: Bytes) -> Result<Outcome, BundleError> {
        match self.storage.get_bytes(key, MAX_SMALL).await {
            Ok((_, stored)) => {
                let same = match (Lookup::parse(&stored), Lookup::parse(&body)) {
                    (Ok(a), Ok(b)) => a.id == b.id && a.text == b.text,
                    _ => false,
                };
                Ok(if same {
                    Outcome::Already
                } else {
                    Outcome::Refused(
                        "conflict: the store has a different record for this version (not overwritten)"
                            .to_string(),
                    )
                })
            }
            Err(e) if e.is_not_found() => {
                let len = body.len() as u64;
                self.storage.put_bytes(key, body).await?;
                Ok(Outcome::Imported(len))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `@v/list`: the union of the stored and the source's versions.
    async fn store_list(&self, key: &Key, body: Bytes) -> Result<Outcome, BundleError> {
        let stored = match self.storage.get_bytes(key, MAX_SMALL).await {
            Ok((_, s)) => s,
            Err(e) if e.is_not_found() => {
                let len = body.len() as u64;
                self.storage.put_bytes(key, body).await?;
                return Ok(Outcome::Imported(len));
            }
            Err(e) => return Err(e.into()),
        };
        let have: HashSet<String> = validate::list_versions(&stored).into_iter().collect();
        let new: Vec<String> = validate::list_versions(&body)
            .into_iter()
            .filter(|v| !have.contains(v))
            .collect();
        if new.is_empty() {
            return Ok(Outcome::Already);
        }
        let mut merged = String::from_utf8_lossy(&stored).into_owned();
        if !merged.is_empty() && !merged.ends_with('\n') {
            merged.push('\n');
        }
        for v in new {
            merged.push_str(&v);
            merged.push('\n');
        }
        let len = merged.len() as u64;
        self.storage.put_bytes(key, Bytes::from(merged)).await?;
        Ok(Outcome::Imported(len))
    }

    /// `@latest`: the one naming the higher version wins.
    async fn store_latest_info(
        &self,
        key: &Key,
        body: Bytes,
        version: &Version,
    ) -> Result<Outcome, BundleError> {
        match self.storage.get_bytes(key, MAX_SMALL).await {
            Ok((_, stored)) => {
                let module = key.module().cloned();
                let stored_version = module.and_then(|m| validate::info_of(&m, &stored).ok());
                if stored == body
                    || stored_version.is_some_and(|s| {
                        gomod::semver::compare(s.as_str(), version.as_str())
                            != std::cmp::Ordering::Less
                    })
                {
                    return Ok(Outcome::Already);
                }
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        let len = body.len() as u64;
        self.storage.put_bytes(key, body).await?;
        Ok(Outcome::Imported(len))
    }
}

/// The key of `module@version`'s lookup in database `db`.
fn lookup_key(db: &SumdbName, module: &ModulePath, version: &Version) -> Key {
    Key::Sumdb {
        db: db.clone(),
        path: SumdbPath::Lookup {
            module: module.clone(),
            version: version.clone(),
        },
    }
}
