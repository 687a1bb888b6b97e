//! `(*codeRepo).convert` and `validatePseudoVersion`: from a commit the code host found to the
//! module version the go command gives it.

use std::cmp::Ordering;
use std::collections::HashMap;

use gomod::module::canonical_version;
use gomod::{pseudo, semver};

use super::{CodeRepo, GoModProbe, ModRev, Retractions, matches_major};
use crate::error::VcsError;
use crate::git::GitRev;
use crate::modrules::{join, pseudo_version};

/// `tagToVersion`: the version a tag names for a module whose tags start with `tag_prefix`,
/// and whether the tag is exactly that canonical version.
fn tag_to_version(tag: &str, tag_prefix: &str) -> (String, bool) {
    let Some(trimmed) = tag.strip_prefix(tag_prefix) else {
        return (String::new(), false);
    };
    // Tags that look like pseudo-versions would be confusing.
    if pseudo::is_pseudo_version(tag) {
        return (String::new(), false);
    }
    match semver::canonical(trimmed) {
        Some(v) if trimmed.starts_with(&v) => {
            let canonical = v == trimmed;
            (v, canonical)
        }
        _ => (String::new(), false),
    }
}

/// `canUseIncompatible`, with its go.mod checks memoized for one conversion.
struct Incompatible<'a> {
    repo: &'a CodeRepo,
    hash: String,
    stat_vers: String,
    probe: GoModProbe,
}

impl Incompatible<'_> {
    async fn allowed(&mut self, v: &str) -> bool {
        if !self.repo.code_dir.is_empty() || !self.repo.path_major().is_empty() {
            // A module in a subdirectory necessarily has a go.mod; a path with a major suffix
            // must match it.
            return false;
        }
        if !self
            .probe
            .absent(&self.repo.repo, &self.hash, "go.mod")
            .await
        {
            return false;
        }
        // golang.org/issue/51324: if vN/go.mod exists, release tags of that major version are
        // meant for the vN module — unless +incompatible was asked for explicitly.
        if !v.is_empty() && !self.stat_vers.ends_with("+incompatible") {
            let major = semver::major(v).unwrap_or("");
            let file = join(major, "go.mod");
            if !self.probe.absent(&self.repo.repo, &self.hash, &file).await {
                return false;
            }
        }
        true
    }
}

impl CodeRepo {
    /// `(*codeRepo).convert`: the module version of `info`; `stat_vers` is what was asked for
    /// (a version or query, or `` for the default branch).
    pub(super) async fn convert(&self, info: &GitRev, stat_vers: &str) -> Result<ModRev, VcsError> {
        let mut rev = self.convert_version(info, stat_vers).await?;
        let mut origin = info.origin.clone();
        origin.subdir = self.code_dir.clone();
        let v = rev.version.as_str();
        if pseudo::is_pseudo_version(v) && (v != stat_vers || !v.starts_with("v0.0.0-")) {
            // Tags relevant to the pseudo-version computation.
            let mut prefix = self.tag_prefix();
            if !self.path_major().is_empty() {
                prefix.push_str(&self.path_major()[1..]);
                prefix.push('.');
            }
            let (_, tags_origin) = self.repo.tags(&prefix).await?;
            origin.tag_prefix = tags_origin.tag_prefix;
            origin.tag_sum = tags_origin.tag_sum;
        }
        rev.origin = origin;
        Ok(rev)
    }

    async fn convert_version(&self, info: &GitRev, stat_vers: &str) -> Result<ModRev, VcsError> {
        let mut incompat = Incompatible {
            repo: self,
            hash: info.name.clone(),
            stat_vers: stat_vers.to_string(),
            probe: GoModProbe::default(),
        };

        if pseudo::is_pseudo_version(stat_vers) {
            // Rule out a bad directory or major version with the shallow commit before the
            // (possibly expensive) ancestry check of the base.
            let rev = self
                .check_canonical(info, stat_vers, stat_vers, &mut incompat)
                .await?;
            self.validate_pseudo_version(info, stat_vers).await?;
            return Ok(rev);
        }

        let tag_prefix = self.tag_prefix();
        let retracted = self.retracted().await;

        // If the code host gave us a valid version, use that.
        let (v, canonical) = tag_to_version(&info.version, &tag_prefix);
        if canonical
            && let Ok(rev) = self
                .check_canonical(info, &v, stat_vers, &mut incompat)
                .await
        {
            return Ok(rev);
        }

        // Look through the tags on the revision for a usable canonical version or a base for
        // a pseudo-version.
        let mut highest_canonical = String::new();
        let mut pseudo_base = String::new();
        for path_tag in &info.tags {
            let (v, canonical) = tag_to_version(path_tag, &tag_prefix);
            if !stat_vers.is_empty() && semver::compare(&v, stat_vers) == Ordering::Equal {
                if canonical {
                    // The canonical form of the requested version: use it exactly (or fail in
                    // check_canonical).
                    return self
                        .check_canonical(info, &v, stat_vers, &mut incompat)
                        .await;
                }
                // Equivalent but not canonical (v1.0.0+meta): only good as a base.
                pseudo_base = v.clone();
            }
            if canonical
                && semver::compare(&highest_canonical, &v) == Ordering::Less
                && !retracted.contains(&v)
                && (matches_major(&v, self.path_major()) || incompat.allowed(&v).await)
            {
                highest_canonical = v;
            }
        }
        if !highest_canonical.is_empty() {
            return self
                .check_canonical(info, &highest_canonical, stat_vers, &mut incompat)
                .await;
        }

        // The highest allowed tag in the revision's history is the base, so the
        // pseudo-version sorts above it.
        if pseudo_base.is_empty() {
            let allowed = self
                .tag_filter(&mut incompat, &tag_prefix, &retracted)
                .await?;
            let tag = self
                .repo
                .recent_tag(&info.name, &tag_prefix, &|tag: &str| allowed(tag))
                .await
                .map_err(|e| super::reword(e, &self.mod_path, stat_vers, "invalid version: "))?;
            if let Some(tag) = tag {
                pseudo_base = tag_to_version(&tag, &tag_prefix).0;
            }
        }
        let pseudo = pseudo_version(&self.pseudo_major, &pseudo_base, info.time, &info.short);
        self.check_canonical(info, &pseudo, stat_vers, &mut incompat)
            .await
    }

    /// `tagAllowed` of convert as a synchronous predicate: the go.mod probes it needs (one per
    /// major version among the tags) are done up front.
    async fn tag_filter(
        &self,
        incompat: &mut Incompatible<'_>,
        tag_prefix: &str,
        retracted: &Retractions,
    ) -> Result<impl Fn(&str) -> bool + Send + Sync + use<>, VcsError> {
        let (tags, _) = self.repo.tags(tag_prefix).await?;
        let mut by_major: HashMap<String, bool> = HashMap::new();
        for tag in &tags {
            let (v, _) = tag_to_version(&tag.name, tag_prefix);
            if v.is_empty() || matches_major(&v, self.path_major()) {
                continue;
            }
            let major = semver::major(&v).unwrap_or("").to_string();
            if let std::collections::hash_map::Entry::Vacant(slot) = by_major.entry(major) {
                slot.insert(incompat.allowed(&v).await);
            }
        }
        let tag_prefix = tag_prefix.to_string();
        let path_major = self.path_major().to_string();
        let retracted = retracted.clone();
        Ok(move |tag: &str| {
            let (v, _) = tag_to_version(tag, &tag_prefix);
            if v.is_empty() {
                return false;
            }
            let major = semver::major(&v).unwrap_or("");
            if !matches_major(&v, &path_major) && !by_major.get(major).copied().unwrap_or(false) {
                return false;
            }
            !retracted.contains(&v)
        })
    }

    /// `checkCanonical`: `v` must fit this module (go.mod location and path, major version,
    /// `+incompatible` only without a go.mod), and equal a canonical `stat_vers`.
    async fn check_canonical(
        &self,
        info: &GitRev,
        v: &str,
        stat_vers: &str,
        incompat: &mut Incompatible<'_>,
    ) -> Result<ModRev, VcsError> {
        // The module author decides where the module is and what it is called.
        if let Err(e) = self.find_dir(v).await {
            return Err(match e {
                VcsError::NotFound { reason, .. } => {
                    self.err(v, format!("invalid version: {reason}"))
                }
                other => other,
            });
        }
        let mut v = v.to_string();
        if v == stat_vers.strip_suffix("+incompatible").unwrap_or(stat_vers) {
            v = stat_vers.to_string();
        }
        let shown = v.clone();
        let invalid = |reason: String| self.err(&shown, format!("invalid version: {reason}"));
        let base = v.strip_suffix("+incompatible").unwrap_or(&v).to_string();
        let mut err_incompatible = None;
        if !matches_major(&base, self.path_major()) {
            if incompat.allowed(&base).await {
                v = format!("{base}+incompatible");
            } else if !self.path_major().is_empty() {
                err_incompatible = Some(invalid(
                    "module path includes a major version suffix, so major version must match"
                        .into(),
                ));
            } else {
                err_incompatible = Some(invalid(format!(
                    "module contains a go.mod file, so module path must match major version ({:?})",
                    join(&self.path_prefix, semver::major(&v).unwrap_or(""))
                )));
            }
        } else if v.ends_with("+incompatible") {
            err_incompatible = Some(invalid(format!(
                "+incompatible suffix not allowed: major version {} is compatible",
                semver::major(&v).unwrap_or("")
            )));
        }

        if !stat_vers.is_empty() && canonical_version(stat_vers).as_deref() == Some(stat_vers) {
            // A canonical request resolving to anything but itself would be confusing.
            let stat_base = stat_vers.strip_suffix("+incompatible").unwrap_or(stat_vers);
            if stat_base != base {
                return Err(self.err(
                    stat_vers,
                    format!("invalid version: resolves to version {v} ({stat_base} is not a tag)"),
                ));
            }
        }
        if let Some(e) = err_incompatible {
            return Err(e);
        }
        Ok(ModRev {
            version: v,
            name: info.name.clone(),
            short: info.short.clone(),
            time: info.time,
            origin: Default::default(),
        })
    }

    /// `validatePseudoVersion`: the pseudo-version's commit, time and base tag agree with the
    /// repository.
    async fn validate_pseudo_version(&self, info: &GitRev, version: &str) -> Result<(), VcsError> {
        let bad = |reason: String| self.err(version, format!("invalid pseudo-version: {reason}"));
        let rev = pseudo::pseudo_version_rev(version).map_err(|e| bad(e.to_string()))?;
        if rev != info.short {
            let reason = if rev.starts_with(&info.short) {
                format!(
                    "revision is longer than canonical (expected {})",
                    info.short
                )
            } else if info.short.starts_with(rev) {
                format!(
                    "revision is shorter than canonical (expected {})",
                    info.short
                )
            } else {
                format!(
                    "does not match short name of revision (expected {})",
                    info.short
                )
            };
            return Err(bad(reason));
        }
        let t = pseudo::pseudo_version_time(version).map_err(|e| bad(e.to_string()))?;
        if t.unix_seconds() != info.time {
            return Err(bad(format!(
                "does not match version-control timestamp (expected {})",
                crate::revinfo::pseudo_timestamp(info.time)
            )));
        }
        let tag_prefix = self.tag_prefix();
        // The base must be an ancestor's tag, so that a pseudo-version sorts just above its
        // parents and nobody can pin an arbitrarily high one.
        let trimmed = version.strip_suffix("+incompatible").unwrap_or(version);
        let base = pseudo::pseudo_version_base(trimmed).map_err(|e| bad(e.to_string()))?;
        let Some(base) = base else {
            if self.pseudo_major.is_empty() && semver::major(version) == Some("v1") {
                return Err(bad(
                    "major version without preceding tag must be v0, not v1".into(),
                ));
            }
            return Ok(());
        };
        for tag in &info.tags {
            let version_only = tag.strip_prefix(&tag_prefix).unwrap_or(tag);
            if version_only == base {
                return Err(bad(format!(
                    "tag ({tag}) found on revision {rev} is already canonical, so should not be replaced with a pseudo-version derived from that tag"
                )));
            }
        }
        let (tags, _) = self.repo.tags(&format!("{tag_prefix}{base}")).await?;
        let mut last_tag = String::new();
        let mut ancestor_found = false;
        for tag in tags {
            let version_only = tag.name.strip_prefix(&tag_prefix).unwrap_or(&tag.name);
            if semver::compare(version_only, &base) == Ordering::Equal {
                last_tag = tag.name.clone();
                ancestor_found = self.repo.descends_from(&info.name, &tag.name).await?;
                if ancestor_found {
                    break;
                }
            }
        }
        if last_tag.is_empty() {
            return Err(bad(format!("preceding tag ({base}) not found")));
        }
        if !ancestor_found {
            return Err(bad(format!(
                "revision {rev} is not a descendent of preceding tag ({last_tag})"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::tag_to_version;

    #[test]
    fn tags_to_versions() {
        assert_eq!(tag_to_version("v1.2.3", ""), ("v1.2.3".into(), true));
        assert_eq!(
            tag_to_version("sub/v1.2.3", "sub/"),
            ("v1.2.3".into(), true)
        );
        assert_eq!(tag_to_version("v1.2.3", "sub/"), (String::new(), false));
        assert_eq!(tag_to_version("v1.2.3+meta", ""), ("v1.2.3".into(), false));
        assert_eq!(tag_to_version("v1.2", ""), (String::new(), false));
        assert_eq!(tag_to_version("release-1", ""), (String::new(), false));
        assert_eq!(
            tag_to_version("v1.2.4-0.20230102030405-abcdefabcdef", ""),
            (String::new(), false)
        );
    }
}
