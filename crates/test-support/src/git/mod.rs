//! A hermetic git world for tests of direct (version-control) fetching: a temp root with its
//! own HOME and global git config, bare repositories served by `git daemon` on loopback
//! (reached as `https://github.com/acme/…` through an insteadOf rule, by the go command and by
//! the proxy alike), an HTTP proxy that serves go-import pages for `*.test` hosts and
//! `gopkg.in` ([`MetaProxy`]), and a `git http-backend` server with basic auth
//! ([`AuthGitServer`], reached as `https://github.com/acmeprivate/…`).
//!
//! Every `git` and `go` process gets HOME, GIT_CONFIG_GLOBAL, GIT_CONFIG_NOSYSTEM, and `go`
//! also GOPROXY, GOSUMDB/GONOSUMDB, GOTOOLCHAIN, GOFLAGS, GOMODCACHE, GOPATH; nothing leaves
//! 127.0.0.1. Repositories get fixed commit dates ([`Repo::commit`]), so every run produces
//! the same hashes and times.
//!
//! [`GitWorld::go_download`] and [`GitWorld::go_versions`] are the judge: the go command in
//! `GOPROXY=direct` mode (or, with the `_via` forms, through a proxy), each run with a fresh
//! module cache.

mod oracle;
mod servers;

pub use oracle::{Download, GoVia};
pub use servers::{AuthGitServer, MetaProxy};

use std::cell::Cell;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Commit times start here (2023-01-01T00:00:00Z) and advance an hour per commit.
const EPOCH: i64 = 1_672_531_200;

/// User name the private server accepts.
pub const PRIVATE_USER: &str = "alice";
/// Password the private server accepts.
pub const PRIVATE_PASSWORD: &str = "s3cret-token-9f2c";

/// `git` and `go` are required: a missing tool fails the tests, never skips them.
pub fn require_tools() {
    let home = std::env::temp_dir();
    for tool in ["git", "go"] {
        let ok = Command::new(tool)
            .arg("version")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOSUMDB", "off")
            .env("GOFLAGS", "-modcacherw")
            .env(
                "GOMODCACHE",
                home.join("gomodproxy-git-world-unused-modcache"),
            )
            .env("GOPATH", home.join("gomodproxy-git-world-unused-gopath"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "`{tool}` is required for these tests and was not found in PATH"
        );
    }
}

/// A free loopback port (bound and released; the caller binds it again at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a loopback port")
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

/// A child process killed when dropped.
#[derive(Debug)]
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The test world. Dropping it stops its servers and removes its files. It is `Sync`, so one
/// world can serve many tests of a process (see [`GitWorld::daemon_pid`] for cleanup of a world
/// that is never dropped).
#[derive(Debug)]
pub struct GitWorld {
    /// The temp root everything lives under.
    pub root: tempfile::TempDir,
    /// HOME of every git and go process (holds the `.netrc` of the private server).
    pub home: PathBuf,
    /// The global git configuration (`GIT_CONFIG_GLOBAL`) with the insteadOf rules.
    pub gitconfig: PathBuf,
    /// Bare repositories served by git daemon as `git://127.0.0.1:<port>/<name>`.
    pub repos: PathBuf,
    /// Bare repositories served by the basic-auth http-backend server.
    pub private_repos: PathBuf,
    /// git daemon's port.
    pub daemon_port: u16,
    /// The go-import page proxy.
    pub meta: MetaProxy,
    /// The basic-auth git server.
    pub private: AuthGitServer,
    daemon: Killed,
    go_runs: AtomicU32,
}

impl GitWorld {
    /// Starts the servers and writes the git configuration and the netrc.
    pub fn new() -> GitWorld {
        require_tools();
        let root = tempfile::Builder::new()
            .prefix("gomodproxy-git-world-")
            .tempdir()
            .expect("temp dir");
        let home = root.path().join("home");
        let repos = root.path().join("repos");
        let private_repos = root.path().join("private-repos");
        for d in [&home, &repos, &private_repos] {
            std::fs::create_dir_all(d).unwrap();
        }
        let gitconfig = root.path().join("gitconfig");

        let daemon_port = free_port();
        let daemon = Command::new("git")
            .args([
                "daemon",
                "--listen=127.0.0.1",
                &format!("--port={daemon_port}"),
                &format!("--base-path={}", repos.display()),
                "--export-all",
                "--reuseaddr",
            ])
            .arg(&repos)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("GIT_CONFIG_GLOBAL", &gitconfig)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting git daemon");
        let daemon = Killed(daemon);
        wait_for_port(daemon_port);

        let meta = MetaProxy::start();
        let private = AuthGitServer::start(&private_repos, &home, &gitconfig);

        std::fs::write(
            &gitconfig,
            format!(
                "[user]\n\tname = Test\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n\
                 [url \"git://127.0.0.1:{daemon_port}/\"]\n\tinsteadOf = https://github.com/acme/\n\
                 [url \"http://127.0.0.1:{}/\"]\n\tinsteadOf = https://github.com/acmeprivate/\n",
                private.port
            ),
        )
        .unwrap();
        std::fs::write(
            home.join(".netrc"),
            format!("machine 127.0.0.1 login {PRIVATE_USER} password {PRIVATE_PASSWORD}\n"),
        )
        .unwrap();

        GitWorld {
            root,
            home,
            gitconfig,
            repos,
            private_repos,
            daemon_port,
            meta,
            private,
            daemon,
            go_runs: AtomicU32::new(0),
        }
    }

    /// The git daemon's process id: a world kept for a whole test process (in a `static`, never
    /// dropped) must have it killed at exit.
    pub fn daemon_pid(&self) -> u32 {
        self.daemon.0.id()
    }

    /// Appends `text` to the global git configuration (more insteadOf rules, say).
    pub fn add_git_config(&self, text: &str) {
        let mut cfg = std::fs::read_to_string(&self.gitconfig).unwrap();
        cfg.push_str(text);
        std::fs::write(&self.gitconfig, cfg).unwrap();
    }

    /// A `git` command with the test world's environment.
    pub fn git_command(&self, dir: &Path) -> Command {
        let mut c = Command::new("git");
        c.current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("GIT_CONFIG_GLOBAL", &self.gitconfig)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C");
        c
    }

    /// Runs git in `dir`; panics with its stderr on failure; returns stdout, trimmed.
    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        self.git_env(dir, args, &[])
    }

    /// [`GitWorld::git`] with more environment variables.
    pub fn git_env(&self, dir: &Path, args: &[&str], env: &[(&str, String)]) -> String {
        let mut c = self.git_command(dir);
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().expect("running git");
        assert!(
            out.status.success(),
            "git {args:?} in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A new fixture repository named `name`, served as `https://github.com/acme/<name>`.
    pub fn repo(&self, name: &str) -> Repo<'_> {
        self.make_repo(name, false)
    }

    /// A new fixture repository served as `https://github.com/acmeprivate/<name>`, behind
    /// basic auth.
    pub fn private_repo(&self, name: &str) -> Repo<'_> {
        self.make_repo(name, true)
    }

    fn make_repo(&self, name: &str, private: bool) -> Repo<'_> {
        let work = self.root.path().join("work").join(name);
        std::fs::create_dir_all(&work).unwrap();
        self.git(&work, &["init", "-q", "-b", "main"]);
        let base = if private {
            &self.private_repos
        } else {
            &self.repos
        };
        let bare = base.join(format!("{name}.git"));
        self.git(base, &["init", "-q", "--bare", &format!("{name}.git")]);
        Repo {
            world: self,
            work,
            bare,
            clock: Cell::new(0),
        }
    }

    /// A fresh directory under the root (created if missing).
    pub fn dir(&self, name: &str) -> PathBuf {
        let d = self.root.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A fresh module cache for one go run.
    pub fn fresh_modcache(&self) -> PathBuf {
        let n = self.go_runs.fetch_add(1, Ordering::Relaxed) + 1;
        self.dir(&format!("gomodcache-{n}"))
    }
}

impl Default for GitWorld {
    fn default() -> Self {
        GitWorld::new()
    }
}

/// A fixture repository: a work tree and the bare repository it is pushed to.
pub struct Repo<'w> {
    world: &'w GitWorld,
    /// The work tree.
    pub work: PathBuf,
    /// The bare repository the servers serve.
    pub bare: PathBuf,
    clock: Cell<i64>,
}

impl Repo<'_> {
    /// Writes a file of the work tree (directories created).
    pub fn write(&self, path: &str, content: impl AsRef<[u8]>) -> &Self {
        let p = self.work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }

    /// Removes a file or directory of the work tree.
    pub fn remove(&self, path: &str) -> &Self {
        let p = self.work.join(path);
        if p.is_dir() {
            std::fs::remove_dir_all(p).unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
        self
    }

    /// A symbolic link `path` → `target` in the work tree.
    pub fn symlink(&self, target: &str, path: &str) -> &Self {
        let p = self.work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
        self
    }

    /// Runs git in the work tree.
    pub fn git(&self, args: &[&str]) -> String {
        self.world.git(&self.work, args)
    }

    fn dated(&self) -> Vec<(&'static str, String)> {
        let t = self.clock.get() + 1;
        self.clock.set(t);
        let date = format!("@{} +0000", EPOCH + t * 3600);
        vec![
            ("GIT_COMMITTER_DATE", date.clone()),
            ("GIT_AUTHOR_DATE", date),
        ]
    }

    /// Commits everything; returns the commit hash.
    pub fn commit(&self, msg: &str) -> String {
        self.git(&["add", "-A"]);
        let env = self.dated();
        self.world.git_env(
            &self.work,
            &["commit", "-q", "--allow-empty", "-m", msg],
            &env,
        );
        self.git(&["rev-parse", "HEAD"])
    }

    /// A lightweight tag on HEAD.
    pub fn tag(&self, name: &str) -> &Self {
        self.git(&["tag", name]);
        self
    }

    /// An annotated tag on HEAD.
    pub fn tag_annotated(&self, name: &str) -> &Self {
        let env = self.dated();
        self.world.git_env(
            &self.work,
            &["tag", "-a", name, "-m", &format!("release {name}")],
            &env,
        );
        self
    }

    /// Checks out an existing branch.
    pub fn checkout(&self, branch: &str) -> &Self {
        self.git(&["checkout", "-q", branch]);
        self
    }

    /// Creates a branch at HEAD and checks it out.
    pub fn new_branch(&self, branch: &str) -> &Self {
        self.git(&["checkout", "-q", "-b", branch]);
        self
    }

    /// Pushes every branch and tag to the bare repository (moved and deleted refs too).
    pub fn push(&self) -> &Self {
        let bare = self.bare.to_string_lossy().to_string();
        self.git(&["push", "-q", "--mirror", &bare]);
        self
    }
}
