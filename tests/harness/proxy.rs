//! The real `gomodproxy` binary as a child process, configured through `GOMODPROXY_*`
//! environment variables only.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The binary under test: `GOMODPROXY_BIN` if set, else `<workspace>/target/<profile>/gomodproxy`,
/// which is (re)built once per test process with `cargo build -p gomodproxy` so a stale binary
/// is never tested.
pub fn proxy_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("GOMODPROXY_BIN") {
            let bin = PathBuf::from(bin);
            assert!(
                bin.is_file(),
                "GOMODPROXY_BIN={} is not a file",
                bin.display()
            );
            return bin;
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let release = !cfg!(debug_assertions);
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join("target"));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&workspace)
            .args(["build", "-p", "gomodproxy", "--bin", "gomodproxy"]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd
            .status()
            .unwrap_or_else(|e| panic!("cannot run `cargo build -p gomodproxy`: {e}"));
        assert!(
            status.success(),
            "`cargo build -p gomodproxy` failed ({status})"
        );
        let bin = target
            .join(if release { "release" } else { "debug" })
            .join("gomodproxy");
        assert!(bin.is_file(), "built, but {} does not exist", bin.display());
        bin
    })
    .clone()
}

/// How to start a proxy; [`Proxy::restart`] reuses it with changes.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// `GOMODPROXY_*` variables (without the listen address, which is chosen per start).
    pub env: BTreeMap<String, String>,
    /// A command the binary runs under (`unshare … sh script`): the binary and its arguments
    /// are appended to it. Empty: the binary runs directly.
    pub wrapper: Vec<String>,
    /// Also serve HTTPS on a port of its own (`tls.listen`), with `tls.cert_file`/`key_file`
    /// set by [`ProxyConfig::tls`].
    pub https: bool,
    /// Serve HTTPS only, on the one `listen` address ([`ProxyConfig::tls_only`]).
    pub https_only: bool,
}

impl ProxyConfig {
    /// Online mode, fs storage at `root`, upstream `upstream`, fast-failing fetches.
    pub fn new(root: &Path, upstream: &str) -> ProxyConfig {
        let mut env = BTreeMap::new();
        env.insert("GOMODPROXY_MODE".into(), "online".into());
        env.insert("GOMODPROXY_UPSTREAM".into(), upstream.into());
        env.insert("GOMODPROXY_STORAGE__TYPE".into(), "fs".into());
        env.insert(
            "GOMODPROXY_STORAGE__FS__ROOT".into(),
            root.display().to_string(),
        );
        env.insert("GOMODPROXY_FETCH__RETRIES".into(), "0".into());
        // The fixture upstream alone has no checksum database; tests that run one turn this on.
        env.insert("GOMODPROXY_SUMDB__VERIFY".into(), "false".into());
        env.insert("GOMODPROXY_FETCH__READ_TIMEOUT".into(), "10s".into());
        env.insert(
            "GOMODPROXY_LOG__LEVEL".into(),
            "info,gomodproxy=debug".into(),
        );
        ProxyConfig {
            env,
            wrapper: Vec::new(),
            https: false,
            https_only: false,
        }
    }

    /// Runs `serve` under `wrapper` (a command that ends by running its arguments).
    pub fn wrapped(mut self, wrapper: &[&str]) -> Self {
        self.wrapper = wrapper.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Sets one variable (`key` without the `GOMODPROXY_` prefix, e.g. `FETCH__MAX_ZIP_SIZE`).
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.insert(format!("GOMODPROXY_{key}"), value.into());
        self
    }

    /// Serves HTTPS with this certificate on a second port ([`Proxy::https_url`]), beside
    /// plain HTTP on the first.
    pub fn tls(mut self, files: &crate::tls::CertFiles) -> Self {
        self.https = true;
        self.set("TLS__CERT_FILE", files.cert.display().to_string())
            .set("TLS__KEY_FILE", files.key.display().to_string())
    }

    /// Serves HTTPS only, on `listen` (no `tls.listen`, no plain listener): [`Proxy::https_url`]
    /// is then the one address, and readiness is probed over TLS (with curl).
    pub fn tls_only(mut self, files: &crate::tls::CertFiles) -> Self {
        self.https_only = true;
        self.set("TLS__CERT_FILE", files.cert.display().to_string())
            .set("TLS__KEY_FILE", files.key.display().to_string())
    }

    /// Starts the proxy; see [`Proxy::start`].
    pub fn start(self, log_dir: &Path) -> Proxy {
        Proxy::start(self, log_dir)
    }

    /// Stores in sled under `path`.
    pub fn sled(self, path: &Path) -> Self {
        self.set("STORAGE__TYPE", "sled")
            .set("STORAGE__SLED__PATH", path.display().to_string())
    }

    /// Stores in the Redis at `url`, under `prefix`.
    pub fn redis(self, url: &str, prefix: &str) -> Self {
        self.set("STORAGE__TYPE", "redis")
            .set("STORAGE__REDIS__URL", url)
            .set("STORAGE__REDIS__KEY_PREFIX", prefix)
            // Fail fast in outage tests.
            .set("STORAGE__REDIS__RESPONSE_TIMEOUT", "2s")
            .set("STORAGE__REDIS__CONNECT_TIMEOUT", "1s")
    }

    /// Stores in the S3 bucket of `s3`, under `prefix`.
    pub fn s3(self, s3: &crate::servers::S3Env, prefix: &str) -> Self {
        self.set("STORAGE__TYPE", "s3")
            .set("STORAGE__S3__BUCKET", &s3.bucket)
            .set("STORAGE__S3__ENDPOINT", &s3.endpoint)
            .set("STORAGE__S3__ALLOW_HTTP", "true")
            .set("STORAGE__S3__ACCESS_KEY_ID", &s3.access_key)
            .set("STORAGE__S3__SECRET_ACCESS_KEY", &s3.secret_key)
            .set("STORAGE__S3__KEY_PREFIX", prefix)
            .set("STORAGE__S3__CONNECT_TIMEOUT", "1s")
            .set("STORAGE__S3__MAX_RETRIES", "1")
    }

    /// Coordinates with other replicas through the Redis at `url`.
    pub fn coordination(self, url: &str, prefix: &str) -> Self {
        self.set("COORDINATION__REDIS_URL", url)
            .set("COORDINATION__KEY_PREFIX", prefix)
    }

    /// Verifies upstream artifacts against `sumdb` and proxies it (fetched from its own URL).
    pub fn with_sumdb(self, sumdb: &crate::sumdb::SumdbServer) -> Self {
        self.set("SUMDB__VERIFY", "true").set(
            "SUMDB__DATABASES",
            format!("{} {}", sumdb.vkey(), sumdb.url()),
        )
    }

    /// Sets the `[direct]` section for a hermetic git world: mirrors under `cache_dir`, the
    /// world's HOME (and its netrc), git configuration (its insteadOf rules), and go-import page
    /// proxy (reached over plain HTTP for `*.test` and `gopkg.in`, as the go command does with
    /// `GOINSECURE`). Chains and routes still decide which modules go to `direct`.
    pub fn with_git_world(
        self,
        world: &gomodproxy_test_support::git::GitWorld,
        cache_dir: &Path,
    ) -> Self {
        self.set("DIRECT__CACHE_DIR", cache_dir.display().to_string())
            .set("DIRECT__HOME", world.home.display().to_string())
            .set("DIRECT__GIT_CONFIG", world.gitconfig.display().to_string())
            .set(
                "DIRECT__NETRC",
                world.home.join(".netrc").display().to_string(),
            )
            .set("DIRECT__HTTP_PROXY", world.meta.url())
            .set("DIRECT__NO_PROXY", "127.0.0.1,localhost")
            .set("DIRECT__INSECURE", "*.test,gopkg.in")
    }

    /// Runs another subcommand of the binary (`prewarm`, `export`, …) with this configuration
    /// and waits for it.
    pub fn run(&self, args: &[&str]) -> CommandOutput {
        let mut cmd = Command::new(proxy_binary());
        cmd.args(args).env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        let out = cmd
            .envs(&self.env)
            .output()
            .unwrap_or_else(|e| panic!("cannot run gomodproxy {args:?}: {e}"));
        CommandOutput {
            args: args.iter().map(|a| a.to_string()).collect(),
            success: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// What a finished `gomodproxy` subcommand printed.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    /// The arguments it ran with.
    pub args: Vec<String>,
    /// Exit status 0.
    pub success: bool,
    /// The exit code, if it exited.
    pub code: Option<i32>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl CommandOutput {
    /// Panics with both streams unless it succeeded.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.success,
            "gomodproxy {:?} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            self.args, self.code, self.stdout, self.stderr
        );
        self
    }
}

/// A running `gomodproxy serve`. On drop it is killed, and if the test is panicking, every
/// stderr log it wrote is printed.
#[derive(Debug)]
pub struct Proxy {
    config: ProxyConfig,
    child: Option<Child>,
    addr: SocketAddr,
    https_addr: Option<SocketAddr>,
    log_dir: PathBuf,
    logs: Vec<PathBuf>,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind probe port");
    l.local_addr().expect("probe addr").port()
}

/// Whether `/healthz` at `addr` answers 200 (over TLS, without verifying the certificate, when
/// `tls`: readiness only).
fn healthy(addr: SocketAddr, tls: bool) -> bool {
    if !tls {
        return crate::http::get_with_timeout(addr, "/healthz", Duration::from_secs(2))
            .is_ok_and(|resp| resp.status == 200);
    }
    Command::new("curl")
        .args(["-sfk", "--max-time", "2", "-o", "/dev/null"])
        .arg(format!("https://{addr}/healthz"))
        .env_clear()
        .status()
        .is_ok_and(|s| s.success())
}

impl Proxy {
    /// Spawns the binary on a free loopback port and waits until `/healthz` answers 200. A port
    /// taken between the probe and the bind is retried with another port.
    pub fn start(config: ProxyConfig, log_dir: &Path) -> Proxy {
        std::fs::create_dir_all(log_dir).expect("create log dir");
        let mut proxy = Proxy {
            config,
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            https_addr: None,
            log_dir: log_dir.to_path_buf(),
            logs: Vec::new(),
        };
        proxy.spawn();
        proxy
    }

    fn spawn(&mut self) {
        let bin = proxy_binary();
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let log = self.log_dir.join(format!("proxy-{}.log", self.logs.len()));
            self.logs.push(log.clone());
            let stderr = std::fs::File::create(&log).expect("create proxy log");
            let stdout = stderr.try_clone().expect("dup log");
            let mut cmd = match self.config.wrapper.split_first() {
                Some((program, args)) => {
                    let mut cmd = Command::new(program);
                    cmd.args(args).arg(&bin);
                    cmd
                }
                None => Command::new(&bin),
            };
            // A clean environment: nothing from the developer's shell (HTTP_PROXY, a stray
            // GOMODPROXY_* variable) may change what is tested.
            cmd.arg("serve")
                .env_clear()
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr);
            if let Some(path) = std::env::var_os("PATH") {
                cmd.env("PATH", path);
            }
            cmd.env("RUST_BACKTRACE", "1");
            cmd.env("TMPDIR", &self.log_dir);
            cmd.envs(&self.config.env)
                .env("GOMODPROXY_LISTEN", addr.to_string());
            let https_addr = if self.config.https_only {
                Some(addr)
            } else {
                self.config
                    .https
                    .then(|| SocketAddr::from(([127, 0, 0, 1], free_port())))
            };
            if let Some(https) = https_addr.filter(|_| !self.config.https_only) {
                cmd.env("GOMODPROXY_TLS__LISTEN", https.to_string());
            }
            let mut child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last_log = std::fs::read_to_string(&log).unwrap_or_default();
                    if last_log.contains("in use") {
                        break; // port race: try another port
                    }
                    panic!("gomodproxy exited at startup ({status}):\n{last_log}");
                }
                if healthy(addr, self.config.https_only) {
                    self.child = Some(child);
                    self.addr = addr;
                    self.https_addr = https_addr;
                    return;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "gomodproxy did not answer /healthz within 30 s:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        panic!("gomodproxy could not bind a free port in 5 attempts:\n{last_log}");
    }

    /// The base URL, e.g. `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The HTTPS base URL, `https://127.0.0.1:PORT` (with [`ProxyConfig::tls`]).
    pub fn https_url(&self) -> String {
        format!(
            "https://{}",
            self.https_addr.expect("started without ProxyConfig::tls")
        )
    }

    /// Sends a signal (`libc::SIGHUP`, …) to the running process.
    pub fn signal(&self, signal: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(pid as libc::pid_t, signal);
            }
        }
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// The OS process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL: no chance to clean up, as in a crash or an OOM kill.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits up to 15 s for a clean exit (SIGKILL after that). Returns whether it
    /// exited on its own with status 0.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops (gracefully) if running, then starts again with `config` (same log dir, a new port).
    pub fn restart(&mut self, config: ProxyConfig) {
        self.stop();
        self.config = config;
        self.spawn();
    }

    /// Everything the process wrote to stderr/stdout over all its starts.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (i, log) in self.logs.iter().enumerate() {
            out.push_str(&format!("===== gomodproxy log #{i} ({})\n", log.display()));
            out.push_str(&std::fs::read_to_string(log).unwrap_or_default());
        }
        out
    }

    /// GET via the proxy with a raw request; panics on transport errors.
    pub fn get(&self, target: &str) -> crate::http::Response {
        crate::http::get(self.addr, target)
            .unwrap_or_else(|e| panic!("GET {target} via proxy failed: {e}\n{}", self.logs()))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}
