//! The module layer over a git repository (`cmd/go/internal/modfetch/coderepo.go`): which
//! tags are versions of this module, what version a revision is (tag, `+incompatible`, or a
//! pseudo-version with the right base), where the module's go.mod is, and its zip.

mod convert;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gomod::module::{canonical_version, check_path_major, match_path_major, split_path_version};
use gomod::{pseudo, semver};

use crate::error::VcsError;
use crate::git::GitRepo;
use crate::modrules::{
    go_mod_module_path, has_path_prefix, join, legacy_go_mod, path_major_prefix,
};
use crate::revinfo::Origin;

/// Largest go.mod read (`codehost.MaxGoMod`).
pub(crate) const MAX_GO_MOD: usize = 16 << 20;
/// Largest LICENSE read (`codehost.MaxLICENSE`).
pub(crate) const MAX_LICENSE: usize = 16 << 20;
/// Largest `git archive` output read (`codehost.MaxZipFile`).
pub(crate) const MAX_ZIP_FILE: u64 = 500 << 20;

/// A resolved version (`modfetch.RevInfo`) before it becomes the public [`crate::RevInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModRev {
    pub version: String,
    pub name: String,
    pub short: String,
    pub time: i64,
    pub origin: Origin,
}

/// The version list and the `Origin` covering it (`modfetch.Versions`).
#[derive(Debug, Clone)]
pub(crate) struct Versions {
    pub list: Vec<String>,
}

/// Retracted version intervals, from a go.mod.
#[derive(Debug, Clone, Default)]
pub(crate) struct Retractions(Vec<(String, String)>);

impl Retractions {
    pub fn from_go_mod(data: &[u8]) -> Retractions {
        match gomod::modfile::ModFile::parse_lax("go.mod", data) {
            Ok(f) => Retractions(f.retract.into_iter().map(|r| (r.low, r.high)).collect()),
            Err(_) => Retractions::default(),
        }
    }

    pub fn contains(&self, v: &str) -> bool {
        use std::cmp::Ordering::Greater;
        self.0.iter().any(|(low, high)| {
            semver::compare(low, v) != Greater && semver::compare(v, high) != Greater
        })
    }
}

/// One module in one repository.
pub(crate) struct CodeRepo {
    pub mod_path: String,
    pub repo: Arc<GitRepo>,
    /// Import path of the repository root.
    code_root: String,
    /// The module's directory in the repository (`` at the root).
    pub code_dir: String,
    /// `mod_path` without its major-version suffix.
    path_prefix: String,
    /// `/v2`, `.v2`, `.v2-unstable`, or `` for v0/v1.
    path_major: String,
    /// Major version of pseudo-versions (`v2`), or `` for v0/v1.
    pseudo_major: String,
    versions_cache: Mutex<Option<(u64, Arc<Versions>)>>,
    /// Where blob-less probes go; `None` disables them.
    pub probe_dir: Option<std::path::PathBuf>,
    retracted_cache: Mutex<Option<(u64, Arc<Retractions>)>>,
}

fn module_error(module: &str, version: &str, reason: impl std::fmt::Display) -> VcsError {
    let module = if version.is_empty() {
        module.to_string()
    } else {
        format!("{module}@{version}")
    };
    VcsError::not_found(module, reason.to_string())
}

/// Keeps errors that are not "does not exist" as they are; rewords the others for `module`.
fn reword(err: VcsError, module: &str, version: &str, prefix: &str) -> VcsError {
    match err {
        VcsError::NotFound { reason, .. } => {
            module_error(module, version, format!("{prefix}{reason}"))
        }
        other => other,
    }
}

impl CodeRepo {
    /// `newCodeRepo`: `code_root` is the import path of the repository root, `subdir` the
    /// go-import subdirectory.
    pub fn new(
        repo: Arc<GitRepo>,
        code_root: &str,
        subdir: &str,
        path: &str,
    ) -> Result<CodeRepo, VcsError> {
        if !has_path_prefix(path, code_root) {
            return Err(module_error(
                path,
                "",
                format!("mismatched repo: found {code_root} for {path}"),
            ));
        }
        let Some((prefix, path_major)) = split_path_version(path) else {
            return Err(module_error(
                path,
                "",
                format!("invalid module path {path:?}"),
            ));
        };
        let path_prefix = if code_root == path { path } else { prefix };
        let mut code_dir = String::new();
        if code_root != path {
            if !has_path_prefix(path_prefix, code_root) {
                return Err(module_error(
                    path,
                    "",
                    format!("repository rooted at {code_root} cannot contain module {path}"),
                ));
            }
            code_dir = path_prefix[code_root.len()..].trim_matches('/').to_string();
        }
        if !subdir.is_empty() {
            code_dir = clean_join(&code_dir, subdir);
        }
        Ok(CodeRepo {
            mod_path: path.to_string(),
            repo,
            code_root: code_root.to_string(),
            code_dir,
            path_prefix: path_prefix.to_string(),
            path_major: path_major.to_string(),
            pseudo_major: path_major_prefix(path_major),
            versions_cache: Mutex::new(None),
            probe_dir: None,
            retracted_cache: Mutex::new(None),
        })
    }

    fn err(&self, version: &str, reason: impl std::fmt::Display) -> VcsError {
        module_error(&self.mod_path, version, reason)
    }

    /// The tag prefix of this module's versions (`sub/` or ``).
    fn tag_prefix(&self) -> String {
        if self.code_dir.is_empty() {
            String::new()
        } else {
            format!("{}/", self.code_dir)
        }
    }

    /// The tagged versions, sorted, `+incompatible` ones included where the go command lists
    /// them (`(*codeRepo).Versions` with an empty prefix).
    pub async fn versions(&self) -> Result<Arc<Versions>, VcsError> {
        let generation = self.repo.snapshot().await?.generation;
        if let Some((g, v)) = self.versions_cache.lock().ok().and_then(|c| c.clone())
            && g == generation
        {
            return Ok(v);
        }
        let versions = Arc::new(self.versions_uncached().await?);
        if let Ok(mut c) = self.versions_cache.lock() {
            *c = Some((generation, versions.clone()));
        }
        Ok(versions)
    }

    async fn versions_uncached(&self) -> Result<Versions, VcsError> {
        // gopkg.in/macaroon-bakery.v2-unstable does not use the v2 tags (those are for
        // macaroon-bakery.v2): it has no possible tags at all.
        if self.mod_path.starts_with("gopkg.in/") && self.mod_path.ends_with("-unstable") {
            return Ok(Versions { list: Vec::new() });
        }
        let p = self.tag_prefix();
        let (tags, _) = self.repo.tags(&p).await?;
        let mut list = Vec::new();
        let mut incompatible = Vec::new();
        for tag in tags {
            let Some(v) = tag.name.strip_prefix(&p) else {
                continue;
            };
            if v.is_empty() || semver::canonical(v).as_deref() != Some(v) {
                continue;
            }
            if pseudo::is_pseudo_version(v) {
                continue;
            }
            if check_path_major(v, &self.path_major).is_err() {
                if self.code_dir.is_empty()
                    && self.path_major.is_empty()
                    && semver::major(v).unwrap_or("") > "v1"
                {
                    incompatible.push(v.to_string());
                }
                continue;
            }
            list.push(v.to_string());
        }
        semver::sort(&mut list);
        semver::sort(&mut incompatible);
        self.append_incompatible(list, incompatible).await
    }

    async fn version_has_go_mod(&self, v: &str) -> Result<bool, VcsError> {
        match self.repo.read_file(v, "go.mod", MAX_GO_MOD).await {
            Ok(data) => Ok(data.is_some()),
            Err(e) => Err(reword(e, &self.mod_path, "", "")),
        }
    }

    /// `appendIncompatibleVersions`.
    async fn append_incompatible(
        &self,
        list: Vec<String>,
        incompatible: Vec<String>,
    ) -> Result<Versions, VcsError> {
        let mut versions = Versions { list };
        if incompatible.is_empty() || !self.path_major.is_empty() {
            return Ok(versions);
        }
        if let Some(last) = versions.list.last().cloned()
            && self.version_has_go_mod(&last).await?
        {
            // The latest compatible version has a go.mod: the author means consumers to stay
            // on v0/v1 (golang.org/issue/34189).
            return Ok(versions);
        }
        let mut last_major = String::new();
        let mut last_major_has_go_mod = false;
        for (i, v) in incompatible.iter().enumerate() {
            let major = semver::major(v).unwrap_or("").to_string();
            if major != last_major {
                let latest_at_major = incompatible[i..]
                    .iter()
                    .take_while(|w| semver::major(w) == Some(major.as_str()))
                    .last()
                    .unwrap_or(v);
                last_major_has_go_mod = self.version_has_go_mod(latest_at_major).await?;
                last_major = major;
            }
            if last_major_has_go_mod {
                continue;
            }
            versions.list.push(format!("{v}+incompatible"));
        }
        Ok(versions)
    }

    /// Retractions declared in the go.mod of the highest release (else highest prerelease)
    /// that is not `+incompatible` (`(*codeRepo).retractedVersions`); none if that fails.
    pub async fn retracted(&self) -> Arc<Retractions> {
        let generation = match self.repo.snapshot().await {
            Ok(s) => s.generation,
            Err(_) => return Arc::default(),
        };
        if let Some((g, r)) = self.retracted_cache.lock().ok().and_then(|c| c.clone())
            && g == generation
        {
            return r;
        }
        let r = Arc::new(self.retracted_uncached().await.unwrap_or_default());
        if let Ok(mut c) = self.retracted_cache.lock() {
            *c = Some((generation, r.clone()));
        }
        r
    }

    async fn retracted_uncached(&self) -> Result<Retractions, VcsError> {
        let versions = self.versions().await?;
        let list: Vec<&String> = versions
            .list
            .iter()
            .take_while(|v| !v.ends_with("+incompatible"))
            .collect();
        let Some(last) = list.last() else {
            return Ok(Retractions::default());
        };
        let highest = list
            .iter()
            .rev()
            .find(|v| semver::prerelease(v).is_none())
            .unwrap_or(last);
        let data = self.go_mod(highest).await?;
        Ok(Retractions::from_go_mod(&data))
    }

    /// `(*codeRepo).revToRev`: the repository revision a module version or query names.
    fn rev_to_rev(&self, rev: &str) -> String {
        if !semver::is_valid(rev) {
            return rev.to_string();
        }
        if pseudo::is_pseudo_version(rev) {
            return pseudo::pseudo_version_rev(rev).unwrap_or(rev).to_string();
        }
        let rev = match semver::build(rev) {
            Some("+incompatible") => &rev[..rev.len() - "+incompatible".len()],
            _ => rev,
        };
        if self.code_dir.is_empty() {
            rev.to_string()
        } else {
            format!("{}/{rev}", self.code_dir)
        }
    }

    /// `(*codeRepo).Stat`: the version `rev` (a version, tag, branch or hash) resolves to.
    pub async fn stat(&self, rev: &str) -> Result<ModRev, VcsError> {
        if rev == "latest" {
            return self.head().await;
        }
        let code_rev = self.rev_to_rev(rev);
        let info = self
            .repo
            .stat(&code_rev)
            .await
            .map_err(|e| reword(e, &self.mod_path, rev, "invalid version: "))?;
        self.convert(&info, rev).await
    }

    /// `(*codeRepo).Latest`: the version of the default branch's head.
    pub async fn head(&self) -> Result<ModRev, VcsError> {
        // A subdirectory without tags may not be a module at all (a mistyped import path in
        // a huge repository): prove that from the tree alone before fetching the head's files
        // (athens#2030). The go command would fetch the head and fail in findDir.
        if !self.code_dir.is_empty()
            && let Some(tmp) = &self.probe_dir
            && self.repo.tags(&self.tag_prefix()).await?.0.is_empty()
        {
            let mut candidates = vec![join(&self.code_dir, "go.mod")];
            if !self.path_major.is_empty() && !self.path_major.starts_with('.') {
                candidates.push(join(&join(&self.code_dir, &self.path_major[1..]), "go.mod"));
            }
            if self.repo.head_lacks(&candidates, tmp).await == Some(true) {
                return Err(self.err(
                    "latest",
                    format!(
                        "missing {}/go.mod at the default branch's head",
                        self.path_prefix
                    ),
                ));
            }
        }
        let info = self
            .repo
            .latest()
            .await
            .map_err(|e| reword(e, &self.mod_path, "", ""))?;
        self.convert(&info, "").await
    }

    /// `(*codeRepo).findDir`: the revision, the module's directory and its go.mod (if found
    /// on the way) for `version`.
    pub async fn find_dir(
        &self,
        version: &str,
    ) -> Result<(String, String, Option<Bytes>), VcsError> {
        if !semver::is_valid(version) {
            return Err(self.err(version, "invalid version: syntax error"));
        }
        let rev = self.rev_to_rev(version);
        let reading = |file: &str, e: VcsError| match e {
            VcsError::NotFound { reason, .. } => self.err(
                version,
                format!(
                    "reading {}/{file} at revision {rev}: {reason}",
                    self.code_root
                ),
            ),
            other => other,
        };
        let file1 = join(&self.code_dir, "go.mod");
        let gomod1 = self
            .repo
            .read_file(&rev, &file1, MAX_GO_MOD)
            .await
            .map_err(|e| reading(&file1, e))?;
        let mpath1 = gomod1
            .as_deref()
            .map(go_mod_module_path)
            .unwrap_or_default();
        let found1 = gomod1.is_some()
            && (is_major(&mpath1, &self.path_major)
                || self.can_replace_mismatched_version_due_to_bug(&mpath1));

        let mut file2 = String::new();
        if !self.path_major.is_empty()
            && self.code_root != self.mod_path
            && !self.path_major.starts_with('.')
        {
            // Either go.mod claims v2 and v2/go.mod does not exist, or v2/go.mod exists and
            // claims v2. Not both.
            let dir2 = join(&self.code_dir, &self.path_major[1..]);
            file2 = join(&dir2, "go.mod");
            let gomod2 = self
                .repo
                .read_file(&rev, &file2, MAX_GO_MOD)
                .await
                .map_err(|e| reading(&file2, e))?;
            let mpath2 = gomod2
                .as_deref()
                .map(go_mod_module_path)
                .unwrap_or_default();
            let found2 = gomod2.is_some() && is_major(&mpath2, &self.path_major);
            if found1 && found2 {
                return Err(self.err(
                    version,
                    format!(
                        "{}/{file1} and ...{}/go.mod both have ...{} module paths at revision {rev}",
                        self.path_prefix, self.path_major, self.path_major
                    ),
                ));
            }
            if found2 {
                return Ok((rev, dir2, gomod2));
            }
            if gomod2.is_some() {
                if mpath2.is_empty() {
                    return Err(self.err(
                        version,
                        format!(
                            "{}/{file2} is missing module path at revision {rev}",
                            self.code_root
                        ),
                    ));
                }
                return Err(self.err(
                    version,
                    format!(
                        "{}/{file2} has non-...{} module path {mpath2:?} at revision {rev}",
                        self.code_root, self.path_major
                    ),
                ));
            }
        }

        if found1 {
            return Ok((rev, self.code_dir.clone(), gomod1));
        }
        if gomod1.is_some() {
            let suffix = if file2.is_empty() {
                String::new()
            } else {
                format!(" (and ...{}/go.mod does not exist)", self.path_major)
            };
            let reason = if mpath1.is_empty() {
                format!("{file1} is missing module path{suffix} at revision {rev}")
            } else if !self.path_major.is_empty() {
                format!(
                    "{file1} has non-...{} module path {mpath1:?}{suffix} at revision {rev}",
                    self.path_major
                )
            } else if split_path_version(&mpath1).is_none() {
                format!("{file1} has malformed module path {mpath1:?}{suffix} at revision {rev}")
            } else {
                format!(
                    "{file1} has post-{} module path {mpath1:?}{suffix} at revision {rev}",
                    semver::major(version).unwrap_or("")
                )
            };
            return Err(self.err(version, reason));
        }

        if self.code_dir.is_empty()
            && (self.path_major.is_empty() || self.path_major.starts_with('.'))
        {
            // Implicit go.mod at the root: fine for v0/v1 and gopkg.in.
            return Ok((rev, String::new(), None));
        }
        if !file2.is_empty() {
            return Err(self.err(
                version,
                format!(
                    "missing {}/go.mod and ...{}/go.mod at revision {rev}",
                    self.path_prefix, self.path_major
                ),
            ));
        }
        Err(self.err(
            version,
            format!("missing {}/go.mod at revision {rev}", self.path_prefix),
        ))
    }

    /// golang.org/issue/34254: unversioned paths were accepted as replacements for versioned
    /// gopkg.in paths.
    fn can_replace_mismatched_version_due_to_bug(&self, mpath: &str) -> bool {
        self.path_major.is_empty() && mpath.starts_with("gopkg.in/")
    }

    fn check_canonical_arg(&self, version: &str) -> Result<(), VcsError> {
        if canonical_version(version).as_deref() != Some(version) {
            return Err(self.err(version, format!("version {version} is not canonical")));
        }
        Ok(())
    }

    /// `(*codeRepo).GoMod`: the go.mod of `version` (synthesized where the go command
    /// synthesizes it).
    pub async fn go_mod(&self, version: &str) -> Result<Bytes, VcsError> {
        self.check_canonical_arg(version)?;
        if pseudo::is_pseudo_version(version) {
            // findDir ignores the pseudo-version's metadata; check it. (Boxed: stat reads
            // retractions, which read a go.mod.)
            Box::pin(self.stat(version)).await?;
        }
        let (rev, dir, gomod) = self.find_dir(version).await?;
        if let Some(gomod) = gomod {
            return Ok(gomod);
        }
        match self
            .repo
            .read_file(&rev, &join(&dir, "go.mod"), MAX_GO_MOD)
            .await
        {
            Ok(Some(data)) => Ok(data),
            Ok(None) => Ok(Bytes::from(legacy_go_mod(&self.mod_path))),
            Err(e) => Err(reword(e, &self.mod_path, version, "")),
        }
    }

    /// For [`crate::zip`]: the revision and directory of `version`, checked as `(*codeRepo).Zip`
    /// checks them.
    pub async fn zip_source(&self, version: &str) -> Result<(String, String), VcsError> {
        self.check_canonical_arg(version)?;
        if pseudo::is_pseudo_version(version) {
            self.stat(version).await?;
        }
        let (rev, dir, _) = self.find_dir(version).await?;
        Ok((rev, dir))
    }

    /// The raw go.mod of `version` compared with the synthesized one: whether the module has
    /// a real go.mod there (`modload.versionHasGoMod`).
    pub async fn has_real_go_mod(&self, version: &str) -> Result<bool, VcsError> {
        let data = self.go_mod(version).await?;
        Ok(data[..] != legacy_go_mod(&self.mod_path)[..])
    }
}

/// `filepath.ToSlash(filepath.Join(a, b))` for the relative paths a go-import subdir can be.
fn clean_join(a: &str, b: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in a.split('/').chain(b.split('/')) {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// `isMajor`: whether the versions allowed for `mpath` fit the major version(s) `path_major`
/// implies.
fn is_major(mpath: &str, path_major: &str) -> bool {
    if mpath.is_empty() {
        return false;
    }
    let Some((_, mpath_major)) = split_path_version(mpath) else {
        return false;
    };
    if path_major.is_empty() {
        return matches!(path_major_prefix(mpath_major).as_str(), "" | "v0" | "v1");
    }
    if mpath_major.is_empty() {
        return false;
    }
    path_major[1..] == mpath_major[1..]
}

/// Per-call memo of go.mod existence checks at one commit.
#[derive(Default)]
pub(crate) struct GoModProbe {
    seen: HashMap<String, bool>,
}

impl GoModProbe {
    /// Whether `file` is absent at commit `hash` (any failure counts as absent, as in Go).
    pub async fn absent(&mut self, repo: &GitRepo, hash: &str, file: &str) -> bool {
        if let Some(v) = self.seen.get(file) {
            return *v;
        }
        let absent = !matches!(repo.read_file(hash, file, MAX_GO_MOD).await, Ok(Some(_)));
        self.seen.insert(file.to_string(), absent);
        absent
    }
}

/// Re-exported for the query layer.
pub(crate) fn matches_major(v: &str, path_major: &str) -> bool {
    match_path_major(v, path_major)
}

impl CodeRepo {
    pub fn path_major(&self) -> &str {
        &self.path_major
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majors() {
        assert!(is_major("example.com/m", ""));
        assert!(is_major("gopkg.in/yaml.v1", ""));
        assert!(!is_major("example.com/m/v2", ""));
        assert!(is_major("example.com/m/v2", "/v2"));
        assert!(is_major("gopkg.in/m.v2", "/v2"));
        assert!(!is_major("example.com/m", "/v2"));
        assert!(!is_major("", ""));
    }

    #[test]
    fn retractions() {
        let r =
            Retractions::from_go_mod(b"module m\n\nretract (\n\tv1.0.1\n\t[v1.2.0, v1.3.0]\n)\n");
        assert!(r.contains("v1.0.1"));
        assert!(r.contains("v1.2.5"));
        assert!(!r.contains("v1.3.1"));
        assert!(!r.contains("v1.0.0"));
    }

    #[test]
    fn joins() {
        assert_eq!(clean_join("", "sub/dir"), "sub/dir");
        assert_eq!(clean_join("a", "./b/"), "a/b");
    }
}
