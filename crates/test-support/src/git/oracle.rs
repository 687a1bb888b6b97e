//! The judge: the go command in `GOPROXY=direct` mode, or through a proxy, each run with a
//! fresh module cache.

use std::path::Path;
use std::process::Command;

use super::GitWorld;

/// What `go mod download -json` produced for one query, as compared between direct mode, the
/// proxy and the vcs crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// The version the query resolved to.
    pub version: String,
    /// The `.info` file the go command wrote, byte for byte (Version, Time, Origin).
    pub info: String,
    /// `h1:` of the zip.
    pub sum: String,
    /// `h1:` of the go.mod.
    pub go_mod_sum: String,
}

impl Download {
    /// The same download with `Origin.Ref` taken out of the `.info`. The go command writes a
    /// version's `.info` once per module cache, from whichever query reached it first (a tag,
    /// another tag on the same commit, a commit hash: each with its own `Ref`, or none), so
    /// when one run downloads several queries the `Ref` says which query came first, not what
    /// the source answered.
    pub fn without_ref(&self) -> Download {
        let mut clean = self.clone();
        if let Ok(mut json) = serde_json::from_str::<serde_json::Value>(&self.info) {
            if let Some(origin) = json.get_mut("Origin").and_then(|o| o.as_object_mut()) {
                origin.remove("Ref");
            }
            clean.info = json.to_string();
        }
        clean
    }
}

/// Where the go command gets modules from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoVia<'a> {
    /// `GOPROXY=direct`: straight from the repositories of the world.
    Direct,
    /// `GOPROXY=<url>` with no fallback, checksum database off.
    Proxy(&'a str),
}

impl GitWorld {
    /// A `go` command for this world with a fresh-or-given module cache: in direct mode with
    /// the world's git configuration, `GOINSECURE` for `*.test` and `gopkg.in` and the go-import
    /// page proxy as `HTTP_PROXY`; through a proxy with GOPRIVATE, GONOPROXY and GOINSECURE
    /// empty. `GOSUMDB=off` either way (set it again on the command to verify).
    pub fn go_command(&self, modcache: &Path, via: GoVia<'_>) -> Command {
        let cwd = self.dir("go-cwd");
        let mut c = Command::new("go");
        c.current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("GIT_CONFIG_GLOBAL", &self.gitconfig)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GOSUMDB", "off")
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-modcacherw")
            .env("GOENV", "off")
            .env("CGO_ENABLED", "0")
            .env("GOMODCACHE", modcache)
            .env("GOPATH", self.root.path().join("gopath"))
            .env("GOCACHE", self.root.path().join("gocache"));
        match via {
            GoVia::Direct => {
                c.env("GOPROXY", "direct")
                    .env("GONOSUMDB", "*")
                    .env("GOPRIVATE", "*")
                    .env("GOINSECURE", "*.test,gopkg.in")
                    .env("HTTP_PROXY", self.meta.url())
                    .env("HTTPS_PROXY", self.meta.url())
                    .env("NO_PROXY", "127.0.0.1,localhost")
                    .env("no_proxy", "127.0.0.1,localhost");
            }
            GoVia::Proxy(url) => {
                c.env("GOPROXY", url)
                    .env("GONOSUMDB", "")
                    .env("GOPRIVATE", "")
                    .env("GONOPROXY", "")
                    .env("GOINSECURE", "");
            }
        }
        c
    }

    /// `go mod download -json module@query` in direct mode.
    pub fn go_download(&self, module: &str, query: &str) -> Result<Download, String> {
        self.go_download_via(GoVia::Direct, module, query)
    }

    /// `go mod download -json module@query`, fresh module cache.
    pub fn go_download_via(
        &self,
        via: GoVia<'_>,
        module: &str,
        query: &str,
    ) -> Result<Download, String> {
        let modcache = self.fresh_modcache();
        let mut command = self.go_command(&modcache, via);
        command.args(["mod", "download", "-json", &format!("{module}@{query}")]);
        let all = run_download(command, 1);
        remove_modcache(&modcache);
        all?.pop().expect("one result")
    }

    /// `go mod download -json module@q1 module@q2 …` in one run (fresh module cache); one
    /// result per query, in order. The go command resolves the arguments one after another and
    /// prints one object per argument; should a run print anything else (an argument it
    /// refuses outright ends it), each query is run on its own instead.
    pub fn go_downloads_via(
        &self,
        via: GoVia<'_>,
        module: &str,
        queries: &[&str],
    ) -> Vec<Result<Download, String>> {
        let modcache = self.fresh_modcache();
        let mut command = self.go_command(&modcache, via);
        command.args(["mod", "download", "-json"]);
        command.args(queries.iter().map(|q| format!("{module}@{q}")));
        let all = run_download(command, queries.len());
        remove_modcache(&modcache);
        match all {
            Ok(all) => all,
            Err(_) => queries
                .iter()
                .map(|q| self.go_download_via(via, module, q))
                .collect(),
        }
    }

    /// `go list -m -versions` in direct mode (with retracted versions, as a proxy lists them).
    pub fn go_versions(&self, module: &str) -> Result<Vec<String>, String> {
        self.go_versions_via(GoVia::Direct, module)
    }

    /// `go list -m -retracted -versions module`, fresh module cache.
    pub fn go_versions_via(&self, via: GoVia<'_>, module: &str) -> Result<Vec<String>, String> {
        let modcache = self.fresh_modcache();
        let out = self
            .go_command(&modcache, via)
            .args(["list", "-m", "-retracted", "-versions", "-json", module])
            .output()
            .expect("running go");
        remove_modcache(&modcache);
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
}

/// Removes a module cache once its go run is over (everything the judge needs is in the
/// go command's JSON output), so that a long test process does not pile them up on disk.
/// `-modcacherw` left it writable.
fn remove_modcache(modcache: &Path) {
    let _ = std::fs::remove_dir_all(modcache);
}

/// Runs a `go mod download -json` command and reads `want` objects from its output. `Err` when
/// the output is not `want` JSON objects (the message has the go command's output).
fn run_download(
    mut command: Command,
    want: usize,
) -> Result<Vec<Result<Download, String>>, String> {
    let out = command.output().expect("running go");
    let text = String::from_utf8_lossy(&out.stdout);
    let objects: Result<Vec<serde_json::Value>, _> = serde_json::Deserializer::from_str(&text)
        .into_iter::<serde_json::Value>()
        .collect();
    let objects = match objects {
        Ok(o) if o.len() == want => o,
        other => {
            return Err(format!(
                "go mod download printed {} JSON objects, not {want} ({:?}): {text} {}",
                other.as_ref().map_or(0, Vec::len),
                other.err(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    };
    Ok(objects.iter().map(download_of).collect())
}

fn download_of(json: &serde_json::Value) -> Result<Download, String> {
    if let Some(err) = json.get("Error").and_then(|e| e.as_str()) {
        return Err(err.to_string());
    }
    let field = |k: &str| {
        json.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let info = std::fs::read_to_string(field("Info")).map_err(|e| format!("reading .info: {e}"))?;
    Ok(Download {
        version: field("Version"),
        info,
        sum: field("Sum"),
        go_mod_sum: field("GoModSum"),
    })
}
