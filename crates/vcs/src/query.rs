//! Queries the proxy answers for the go command (`modload.queryProxy` as `go mod download`
//! runs it in direct mode): `latest` (highest release, else highest prerelease, else the
//! default branch's pseudo-version, skipping retracted versions), semver prefixes (`v1.2`),
//! and revisions (canonical versions, `v1.2.3+meta`, branches, tags, commit hashes).

use gomod::module::canonical_version;
use gomod::semver;

use crate::coderepo::{CodeRepo, ModRev, Retractions, matches_major};
use crate::error::VcsError;

/// Longest query accepted.
const MAX_QUERY: usize = 1024;

/// Rejects queries git could misread or that no ref can have (check-ref-format's rules).
pub(crate) fn check_query(module: &str, query: &str) -> Result<(), VcsError> {
    let bad = |why: &str| {
        VcsError::not_found(format!("{module}@{query}"), format!("invalid query: {why}"))
    };
    if query.is_empty() {
        return Err(bad("empty"));
    }
    if query.len() > MAX_QUERY {
        return Err(bad("too long"));
    }
    if query.starts_with('-') || query.starts_with('.') || query.starts_with('/') {
        return Err(bad("must not start with '-', '.' or '/'"));
    }
    if query
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c))
    {
        return Err(bad("contains a character no ref name can have"));
    }
    if query.contains("..")
        || query.contains("@{")
        || query.contains("//")
        || query.ends_with('/')
        || query.ends_with(".lock")
        || query.ends_with('.')
    {
        return Err(bad("not a valid ref name"));
    }
    Ok(())
}

/// `gover.ModIsPrefix` for module versions: `v1` or `v1.2`.
fn is_prefix_query(v: &str) -> bool {
    semver::is_valid(v) && !v.contains(['-', '+']) && v.matches('.').count() < 2
}

/// The answer to `query` for `code`.
pub(crate) async fn query(code: &CodeRepo, query: &str) -> Result<ModRev, VcsError> {
    check_query(&code.mod_path, query)?;
    if query == "latest" {
        return latest(code).await;
    }
    if matches!(query, "upgrade" | "patch") || query.starts_with(['<', '>']) {
        return Err(VcsError::not_found(
            format!("{}@{query}", code.mod_path),
            "this query is resolved by the go command from the version list",
        ));
    }
    if is_prefix_query(query) {
        return prefix(code, query).await;
    }
    // A revision: a canonical version, a version with +metadata, a tag, a branch, a hash.
    match code.stat(query).await {
        Ok(rev) => Ok(rev),
        Err(first) => {
            if let Some(canonical) = canonical_version(query)
                && canonical != query
            {
                match code.stat(&canonical).await {
                    Ok(rev) => return Ok(rev),
                    Err(e) if !e.is_not_found() => return Err(e),
                    Err(_) => {}
                }
            }
            Err(first)
        }
    }
}

/// `filterVersions`: the allowed releases and prereleases, without `+incompatible` versions
/// above a compatible version that has a go.mod.
async fn filter_versions(
    code: &CodeRepo,
    list: &[String],
    allowed: &(dyn Fn(&str) -> bool + Send + Sync),
    prefer_incompatible: bool,
) -> Result<(Vec<String>, Vec<String>), VcsError> {
    let mut need_incompatible = prefer_incompatible;
    let mut last_compatible: Option<&String> = None;
    let (mut releases, mut prereleases) = (Vec::new(), Vec::new());
    for v in list {
        if !allowed(v) {
            continue;
        }
        if !need_incompatible {
            if !v.ends_with("+incompatible") {
                last_compatible = Some(v);
            } else if let Some(lc) = last_compatible {
                if code.has_real_go_mod(lc).await? {
                    // Nothing above the last compatible version with a go.mod is wanted
                    // (golang.org/issue/34165).
                    break;
                }
                need_incompatible = true;
            }
        }
        if semver::prerelease(v).is_some() {
            prereleases.push(v.clone());
        } else {
            releases.push(v.clone());
        }
    }
    Ok((releases, prereleases))
}

/// The `latest` query with `allowed` as the version filter; `None` as the result of
/// `stat` means "resolve only the version string" (for the retraction source).
async fn latest_with(
    code: &CodeRepo,
    allowed: &(dyn Fn(&str) -> bool + Send + Sync),
) -> Result<Result<String, ModRev>, VcsError> {
    let versions = code.versions().await?;
    let (releases, prereleases) = filter_versions(code, &versions.list, allowed, false).await?;
    if let Some(v) = releases.last().or(prereleases.last()) {
        return Ok(Ok(v.clone()));
    }
    let no_match = || {
        VcsError::not_found(
            format!("{}@latest", code.mod_path),
            "no matching versions for query \"latest\"",
        )
    };
    let head = match code.head().await {
        Ok(h) => h,
        // As the go command: a default branch that is not this module is no match.
        Err(e) if e.is_not_found() => return Err(no_match()),
        Err(e) => return Err(e),
    };
    if allowed(&head.version) {
        return Ok(Err(head));
    }
    Err(no_match())
}

/// `latest`: what `go mod download <module>@latest` resolves to in direct mode.
pub(crate) async fn latest(code: &CodeRepo) -> Result<ModRev, VcsError> {
    // Retractions come from the go.mod of the latest version, retracted or not
    // (modload.CheckRetractions); if that cannot be read, nothing counts as retracted.
    let retractions = match latest_with(code, &|_| true).await {
        Ok(Ok(v)) => retractions_of(code, &v).await,
        Ok(Err(head)) => retractions_of(code, &head.version).await,
        Err(e) if e.is_not_found() => return Err(e),
        Err(_) => Retractions::default(),
    };
    match latest_with(code, &|v| !retractions.contains(v)).await? {
        Ok(v) => code.stat(&v).await,
        // The go command looks the pseudo-version up again (checking it).
        Err(head) => code.stat(&head.version).await,
    }
}

async fn retractions_of(code: &CodeRepo, version: &str) -> Retractions {
    match code.go_mod(version).await {
        Ok(data) => Retractions::from_go_mod(&data),
        Err(_) => Retractions::default(),
    }
}

/// A semver prefix query (`v1`, `v1.2`): the highest allowed release with that prefix, else
/// the highest prerelease.
async fn prefix(code: &CodeRepo, query: &str) -> Result<ModRev, VcsError> {
    let versions = code.versions().await?;
    let want = format!("{query}.");
    let retractions = match latest_with(code, &|_| true).await {
        Ok(Ok(v)) => retractions_of(code, &v).await,
        Ok(Err(head)) => retractions_of(code, &head.version).await,
        Err(_) => Retractions::default(),
    };
    let allowed = |v: &str| {
        v.starts_with(&want)
            && semver::compare(v, query) != std::cmp::Ordering::Less
            && !retractions.contains(v)
    };
    let prefer_incompatible = !matches_major(query, code.path_major());
    let (releases, prereleases) =
        filter_versions(code, &versions.list, &allowed, prefer_incompatible).await?;
    match releases.last().or(prereleases.last()) {
        Some(v) => code.stat(v).await,
        None => Err(VcsError::not_found(
            format!("{}@{query}", code.mod_path),
            format!("no matching versions for query {query:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        assert!(check_query("m", "main").is_ok());
        assert!(check_query("m", "v1.2.3+meta").is_ok());
        assert!(check_query("m", "feature/x").is_ok());
        assert!(check_query("m", "--upload-pack=x").is_err());
        assert!(check_query("m", "a..b").is_err());
        assert!(check_query("m", "HEAD~1").is_err());
        assert!(check_query("m", "x:y").is_err());
        assert!(check_query("m", "a b").is_err());
        assert!(is_prefix_query("v1"));
        assert!(is_prefix_query("v1.2"));
        assert!(!is_prefix_query("v1.2.3"));
        assert!(!is_prefix_query("main"));
    }
}
