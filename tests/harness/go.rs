//! Runs the real `go` command with a hermetic environment.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Finds `go` on PATH. Panics (the e2e tests must fail, not skip, without it).
pub fn go_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("go"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("the `go` command is not on PATH: the end-to-end tests need it (install Go)")
        })
}

/// A `go` environment: its own HOME, GOMODCACHE, GOPATH and GOCACHE under one directory, and
/// GOPROXY set to one URL with no `direct` fallback. [`Go::env`] sets more variables (GOSUMDB
/// to turn checksum verification on, for instance).
#[derive(Debug, Clone)]
pub struct Go {
    go: PathBuf,
    dir: PathBuf,
    goproxy: String,
    env: Vec<(String, String)>,
}

/// The result of one `go` run.
#[derive(Debug, Clone)]
pub struct GoOutput {
    /// The command line, for messages.
    pub command: String,
    /// Whether it exited 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl GoOutput {
    /// Panics with the full output unless the command succeeded.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.success,
            "`{}` failed\n--- stdout\n{}\n--- stderr\n{}",
            self.command, self.stdout, self.stderr
        );
        self
    }
}

impl Go {
    /// A fresh environment under `dir` (created), talking to `goproxy` only.
    pub fn new(dir: &Path, goproxy: &str) -> Go {
        for sub in ["home", "gomodcache", "gopath", "gocache", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create go env dir");
        }
        Go {
            go: go_binary(),
            dir: dir.to_path_buf(),
            goproxy: goproxy.to_string(),
            env: Vec::new(),
        }
    }

    /// Sets `key=value` for every run, over the defaults (e.g. `GOSUMDB`, which is `off`
    /// unless set here). Setting a key again replaces its value.
    pub fn env(mut self, key: &str, value: &str) -> Go {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// The GOPATH directory (the go command keeps `pkg/sumdb/<name>/latest` there).
    pub fn gopath(&self) -> PathBuf {
        self.dir.join("gopath")
    }

    /// The module cache directory.
    pub fn gomodcache(&self) -> PathBuf {
        self.dir.join("gomodcache")
    }

    /// Runs `go args…` in `cwd`.
    pub fn run(&self, cwd: &Path, args: &[&str]) -> GoOutput {
        let mut cmd = Command::new(&self.go);
        cmd.args(args).current_dir(cwd).env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd.env("HOME", self.dir.join("home"))
            .env("GOPROXY", &self.goproxy)
            .env("GOSUMDB", "off")
            .env("GONOSUMDB", "")
            .env("GOPRIVATE", "")
            .env("GONOPROXY", "")
            .env("GOTOOLCHAIN", "local")
            // -modcacherw keeps the module cache removable by the test's cleanup.
            .env("GOFLAGS", "-mod=mod -modcacherw")
            .env("GOMODCACHE", self.dir.join("gomodcache"))
            .env("GOPATH", self.dir.join("gopath"))
            .env("GOCACHE", self.dir.join("gocache"))
            .env("GOTMPDIR", self.dir.join("tmp"))
            .env("GOENV", "off")
            .env("CGO_ENABLED", "0");
        let mut command = format!("GOPROXY={}", self.goproxy);
        for (key, value) in &self.env {
            cmd.env(key, value);
            command.push_str(&format!(" {key}={value:?}"));
        }
        let command = format!("{command} go {}", args.join(" "));
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
        GoOutput {
            command,
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        }
    }
}
