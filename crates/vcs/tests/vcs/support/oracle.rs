//! The judge: the go command in `GOPROXY=direct` mode, with a fresh module cache for every
//! query, against the crate on the same repositories.

use std::path::Path;
use std::process::Command;

use gomod::{ModulePath, Version};
use gomodproxy_vcs::{Direct, DirectConfig, VcsError};

use super::Env;

/// What a download produced, as compared between the two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub version: String,
    /// The `.info` file, byte for byte.
    pub info: String,
    /// `h1:` of the zip.
    pub sum: String,
    /// `h1:` of the go.mod.
    pub go_mod_sum: String,
}

impl Env {
    /// A `go` command with the direct-mode environment and a fresh module cache.
    pub fn go_command(&self, modcache: &Path) -> Command {
        let cwd = self.dir("go-cwd");
        let mut c = Command::new("go");
        c.current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("GIT_CONFIG_GLOBAL", &self.gitconfig)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GOPROXY", "direct")
            .env("GOSUMDB", "off")
            .env("GONOSUMDB", "*")
            .env("GOPRIVATE", "*")
            .env("GOINSECURE", "*.test,gopkg.in")
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-modcacherw")
            .env("GOENV", "off")
            .env("GOMODCACHE", modcache)
            .env("GOPATH", self.root.path().join("gopath"))
            .env("GOCACHE", self.root.path().join("gocache"))
            .env("HTTP_PROXY", self.meta.url())
            .env("HTTPS_PROXY", self.meta.url())
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost");
        c
    }

    /// `go mod download -json module@query` in direct mode.
    pub fn go_download(&self, module: &str, query: &str) -> Result<Download, String> {
        let modcache = self.fresh_modcache();
        let out = self
            .go_command(&modcache)
            .args(["mod", "download", "-json", &format!("{module}@{query}")])
            .output()
            .expect("running go");
        let text = String::from_utf8_lossy(&out.stdout);
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            format!(
                "go mod download printed no JSON ({e}): {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        if let Some(err) = json.get("Error").and_then(|e| e.as_str()) {
            return Err(err.to_string());
        }
        let field = |k: &str| {
            json.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let info =
            std::fs::read_to_string(field("Info")).map_err(|e| format!("reading .info: {e}"))?;
        Ok(Download {
            version: field("Version"),
            info,
            sum: field("Sum"),
            go_mod_sum: field("GoModSum"),
        })
    }

    /// `go list -m -versions` (with retracted versions, as a proxy lists them).
    pub fn go_versions(&self, module: &str) -> Result<Vec<String>, String> {
        let modcache = self.fresh_modcache();
        let out = self
            .go_command(&modcache)
            .args(["list", "-m", "-retracted", "-versions", "-json", module])
            .output()
            .expect("running go");
        let text = String::from_utf8_lossy(&out.stdout);
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            format!(
                "go list printed no JSON ({e}): {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        if let Some(err) = json.pointer("/Error/Err").and_then(|e| e.as_str()) {
            return Err(err.to_string());
        }
        Ok(json
            .get("Versions")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }

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
