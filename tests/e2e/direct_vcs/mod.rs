//! `direct` through the real binary, judged by the go command's own `GOPROXY=direct` mode on
//! the same repositories (issue 11): for every fixture shape, `go list -m -versions` and
//! `go mod download -json` of each tag, branch, commit and `@latest` must give the same
//! Version, `.info` (Time, Origin) and `h1:` of zip and go.mod through `GOPROXY=<proxy>` as
//! with `GOPROXY=direct`; a fixture app depending on all of them builds online, then offline
//! from the same store, and after prewarm → export → import into an empty store; routes keep
//! private modules away from the public upstream and the checksum database; a tag moved
//! upstream keeps being served as first served.
//!
//! One world per test process ([`world`]): the git repositories (served by `git daemon` and
//! by `git http-backend` behind basic auth, vanity pages by a loopback HTTP proxy), a fixture
//! upstream with the public modules, a checksum database for them, and one proxy whose
//! default chain is that upstream and whose route sends `github.com/acme`,
//! `github.com/acmeprivate` and `vanity.test` to `direct`. Tests that need another
//! configuration start a proxy of their own on the same world.

mod airgap;
mod fixtures;
mod immutability;
mod judge;
mod routes;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gomodproxy_test_support::git::{GitWorld, GoVia};
use gomodproxy_tests::sumdb::SumdbServer;
use gomodproxy_tests::util::{kill_at_exit, remove_at_exit};
use gomodproxy_tests::{Fixtures, Go, Proxy, ProxyConfig, TestDir, Upstream};

use fixtures::Case;

/// The modules the shared proxy fetches with `direct` (a private route).
pub const DIRECT_ROUTE: &str = "github.com/acme,github.com/acmeprivate,vanity.test";

/// Patterns a client sets in GONOSUMDB for them (see docs/private-modules.md).
pub const CLIENT_GONOSUMDB: &str = "github.com/acme,github.com/acmeprivate,vanity.test";

/// The shared world.
pub struct World {
    /// Repositories, servers and the judge.
    pub git: GitWorld,
    /// Scratch space (kept for the process).
    dir: PathBuf,
    /// The public modules' upstream (counts requests).
    pub upstream: Upstream,
    /// Their checksum database (counts requests).
    pub sumdb: SumdbServer,
    /// The shared proxy's configuration.
    pub config: ProxyConfig,
    /// The shared proxy (online).
    pub proxy: Proxy,
    /// The judge's cases, in groups.
    pub cases: Vec<Vec<Case>>,
    app: OnceLock<PathBuf>,
}

/// The world, built on first use.
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let git = GitWorld::new();
        kill_at_exit(git.daemon_pid());
        remove_at_exit(git.root.path().to_path_buf());
        let scratch = TestDir::new("direct-world");
        let dir = scratch.path().to_path_buf();
        std::mem::forget(scratch);
        remove_at_exit(dir.clone());
        let cases = fixtures::build(&git);
        let upstream = Upstream::start(Fixtures::shared().root());
        let sumdb = SumdbServer::with_fixtures("sumdb.direct.test");
        let store = dir.join("store");
        let config = ProxyConfig::new(&store, &upstream.url())
            .with_sumdb(&sumdb)
            .with_git_world(&git, &dir.join("vcs"))
            .set("ROUTES", format!("{DIRECT_ROUTE}=direct"));
        let proxy = config.clone().start(&dir.join("logs"));
        if let Some(pid) = proxy.pid() {
            kill_at_exit(pid);
        }
        World {
            git,
            dir,
            upstream,
            sumdb,
            config,
            proxy,
            cases,
            app: OnceLock::new(),
        }
    })
}

impl World {
    /// A fresh directory in the world's scratch space.
    pub fn sub(&self, name: &str) -> PathBuf {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d = self.dir.join(format!("{name}-{n}"));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A go command environment through `proxy` as a company laptop sets it up: GOPROXY, the
    /// checksum database through the proxy (GOSUMDB is its key), GONOSUMDB for the private
    /// modules — and the world's git configuration is *not* needed (nor given: HOME is empty).
    pub fn client(&self, proxy: &str, dir: &Path) -> Go {
        Go::new(dir, proxy)
            .env("GOSUMDB", &self.sumdb.vkey())
            .env("GONOSUMDB", CLIENT_GONOSUMDB)
    }

    /// The fixture app (`go.mod`, `go.sum`, `main.go`), its dependencies resolved by `go get`
    /// through the shared proxy once per process. Copy it before building.
    pub fn app(&self) -> &Path {
        self.app.get_or_init(|| {
            let app = self.sub("app");
            write_main(&app);
            let go = self.client(&self.proxy.url(), &self.sub("go-app"));
            go.run(&app, &["mod", "init", "example.com/directapp"])
                .assert_success();
            let mut args = vec!["get"];
            args.extend(fixtures::APP_DEPENDENCIES);
            go.run(&app, &args).assert_success();
            app
        })
    }

    /// A copy of the fixture app in a fresh directory.
    pub fn app_copy(&self) -> PathBuf {
        let dir = self.sub("app-copy");
        for f in ["go.mod", "go.sum", "main.go"] {
            std::fs::copy(self.app().join(f), dir.join(f)).unwrap();
        }
        dir
    }
}

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Every dependency's root package, imported.
fn write_main(app: &Path) {
    let mut imports = String::new();
    for dep in fixtures::APP_DEPENDENCIES {
        let module = dep.split('@').next().unwrap();
        imports.push_str(&format!("\t_ \"{module}\"\n"));
    }
    std::fs::write(
        app.join("main.go"),
        format!("package main\n\nimport (\n{imports})\n\nfunc main() {{ println(\"built\") }}\n"),
    )
    .unwrap();
}

/// `go build` of `app` with `go`, then runs it.
pub fn build_and_run(go: &Go, app: &Path) {
    let exe = app.join("app.exe");
    go.run(app, &["build", "-o", exe.to_str().unwrap(), "."])
        .assert_success();
    let out = std::process::Command::new(&exe).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "built\n");
}

/// Compares the go command through `proxy` with the go command in direct mode for `case`;
/// returns what differs (empty when they agree). Both failing counts as agreeing (the
/// messages differ in form). All queries of a case run in one go command (one per mode), so
/// `.info` files are compared without `Origin.Ref` (see `Download::without_ref`); the
/// immutability test compares single downloads whole.
pub fn judge(world: &World, proxy: &str, case: &Case) -> Vec<String> {
    let git = &world.git;
    let module = &case.module;
    let mut problems = Vec::new();
    let direct_list = git.go_versions_via(GoVia::Direct, module);
    let proxy_list = git.go_versions_via(GoVia::Proxy(proxy), module);
    match (&direct_list, &proxy_list) {
        (Ok(a), Ok(b)) if a == b => {}
        (Err(_), Err(_)) => {}
        _ => problems.push(format!(
            "{module}: go list -m -versions\n  direct: {direct_list:?}\n  proxy:  {proxy_list:?}"
        )),
    }
    let queries: Vec<&str> = case.queries.iter().map(String::as_str).collect();
    let direct = git.go_downloads_via(GoVia::Direct, module, &queries);
    let through = git.go_downloads_via(GoVia::Proxy(proxy), module, &queries);
    for ((q, a), b) in queries.iter().zip(&direct).zip(&through) {
        match (a, b) {
            (Ok(a), Ok(b)) if a.without_ref() == b.without_ref() => {}
            (Err(_), Err(_)) => {}
            _ => problems.push(format!(
                "{module}@{q}: go mod download -json\n  direct: {a:?}\n  proxy:  {b:?}"
            )),
        }
    }
    if std::env::var_os("DIRECT_E2E_VERBOSE").is_some() {
        for ((q, a), b) in queries.iter().zip(&direct).zip(&through) {
            eprintln!("{module}@{q}\n  direct: {a:?}\n  proxy:  {b:?}");
        }
    }
    problems
}

/// Judges every case of `group` (in parallel threads); panics listing every difference.
pub fn judge_group(world: &World, proxy: &str, group: &[Case]) {
    let problems: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = group
            .iter()
            .map(|case| s.spawn(move || judge(world, proxy, case)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("judge thread"))
            .collect()
    });
    assert!(
        problems.is_empty(),
        "the proxy and GOPROXY=direct differ:\n{}\n{}",
        problems.join("\n"),
        tail(&world.proxy.logs(), 200)
    );
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
