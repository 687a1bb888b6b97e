//! The judge: the go command in `GOPROXY=direct` mode, with a fresh module cache for every
//! query ([`gomodproxy_test_support::git`]), against the crate on the same repositories.

use gomod::{ModulePath, Version};
use gomodproxy_vcs::{Direct, DirectConfig, VcsError};

pub use gomodproxy_test_support::git::Download;

use super::Env;

impl Env {
    /// The crate's configuration for this world.
    pub fn direct_config(&self, cache: &str) -> DirectConfig {
        DirectConfig {
            cache_dir: self.dir(cache),
            home: Some(self.home.clone()),
            git_config: Some(self.gitconfig.clone()),
            netrc: Some(self.home.join(".netrc")),
            http_proxy: Some(self.meta.url()),
            no_proxy: Some("127.0.0.1,localhost".into()),
            insecure: vec!["*.test".into(), "gopkg.in".into()],
            ..DirectConfig::default()
        }
    }

    pub fn direct(&self) -> Direct {
        Direct::new(self.direct_config("direct-cache")).expect("Direct::new")
    }
}

/// The crate's answer to `go mod download module@query`: `.info`, then the go.mod and the
/// zip of the version it names, checked with `gomod::zipfile::check_zip`.
pub async fn crate_download(
    direct: &Direct,
    module: &str,
    query: &str,
) -> Result<Download, VcsError> {
    let path = ModulePath::parse(module).expect("valid module path");
    let info = direct.info(&path, query).await?;
    let version = info.version.clone();
    let go_mod = direct.go_mod(&path, &version).await?;
    let sum = zip_sum(direct, &path, &version).await?;
    let go_mod_sum = gomod::dirhash::hash_go_mod(&go_mod);
    Ok(Download {
        version: version.to_string(),
        info: String::from_utf8(info.to_info_json()).expect("info is UTF-8"),
        sum,
        go_mod_sum,
    })
}

/// The zip's `h1:`, after the zip passed `check_zip` (whose go.mod must match `.mod`).
pub async fn zip_sum(
    direct: &Direct,
    path: &ModulePath,
    version: &Version,
) -> Result<String, VcsError> {
    let mut file = tempfile::tempfile().expect("temp file");
    let size = direct.zip(path, version, &mut file).await?;
    assert!(size > 0);
    let summary = gomod::zipfile::check_zip(&file, path, version, &Default::default())
        .unwrap_or_else(|e| panic!("{path}@{version}: the zip fails check_zip: {e}"));
    if summary.has_go_mod {
        let go_mod = direct.go_mod(path, version).await?;
        assert_eq!(
            summary.go_mod_h1.as_deref(),
            Some(gomod::dirhash::hash_go_mod(&go_mod).as_str()),
            "{path}@{version}: the zip's go.mod differs from .mod"
        );
    }
    Ok(summary.h1)
}

/// Compares `go list -m -versions` and, for every query, `go mod download -json` between the
/// go command and the crate. Both failing counts as agreeing (the messages differ in form);
/// returns the crate's results for further checks.
pub async fn compare(
    env: &Env,
    direct: &Direct,
    module: &str,
    queries: &[&str],
) -> Vec<Result<Download, String>> {
    let go_list = env.go_versions(module);
    let ours = direct
        .list(&ModulePath::parse(module).unwrap())
        .await
        .map(|v| v.into_iter().map(|v| v.to_string()).collect::<Vec<_>>())
        .map_err(|e| e.to_string());
    match (&go_list, &ours) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{module}: version lists differ"),
        (Err(_), Err(_)) => {}
        _ => panic!("{module}: go list says {go_list:?}, the crate says {ours:?}"),
    }
    let mut results = Vec::new();
    for q in queries {
        let go = env.go_download(module, q);
        let ours = crate_download(direct, module, q)
            .await
            .map_err(|e| e.to_string());
        if std::env::var_os("VCS_TEST_VERBOSE").is_some() {
            eprintln!("{module}@{q}:\n  go:    {go:?}\n  crate: {ours:?}");
        }
        match (&go, &ours) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "{module}@{q}: go (left) and the crate (right) differ")
            }
            (Err(_), Err(_)) => {}
            _ => panic!("{module}@{q}:\n  go:    {go:?}\n  crate: {ours:?}"),
        }
        results.push(ours);
    }
    results
}

/// The file names in the crate's zip of `module@version`, without the `module@version/`
/// prefix, sorted.
pub async fn zip_names(direct: &Direct, module: &str, version: &str) -> Vec<String> {
    let path = ModulePath::parse(module).unwrap();
    let version = Version::parse(version).unwrap();
    let mut file = tempfile::tempfile().unwrap();
    direct.zip(&path, &version, &mut file).await.unwrap();
    let mut zip = zip::ZipArchive::new(file).unwrap();
    let prefix = format!("{path}@{version}/");
    let mut names: Vec<String> = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().unwrap().to_string())
        .map(|n| n.strip_prefix(&prefix).unwrap_or(&n).to_string())
        .collect();
    names.sort();
    names
}
