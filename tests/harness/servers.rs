//! The storage servers of the backend tests: the shared Redis and S3 (MinIO) servers that
//! `tests/run.sh` starts and names in `GOMODPROXY_TEST_*` variables, and private ones that a test
//! owns and can stop and start again on the same port (outage tests).
//!
//! Without the variables a test is skipped with a loud line on stderr — unless
//! `GOMODPROXY_TEST_REQUIRE_SERVERS=1` (which tests/run.sh sets), then it fails: CI never skips.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn var(name: &str, test: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("GOMODPROXY_TEST_REQUIRE_SERVERS").is_ok_and(|v| v == "1") {
                panic!("{test}: {name} is not set but GOMODPROXY_TEST_REQUIRE_SERVERS=1");
            }
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {test}: {name} is not set (tests/run.sh starts the servers and sets it)"
            );
            None
        }
    }
}

/// The shared Redis URL, or `None` if the test is to be skipped.
pub fn shared_redis(test: &str) -> Option<String> {
    var("GOMODPROXY_TEST_REDIS_URL", test)
}

/// Where an S3 server is and how to sign in.
#[derive(Debug, Clone)]
pub struct S3Env {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// An existing bucket.
    pub bucket: String,
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
}

/// The shared S3 server, or `None` if the test is to be skipped.
pub fn shared_s3(test: &str) -> Option<S3Env> {
    Some(S3Env {
        endpoint: var("GOMODPROXY_TEST_S3_ENDPOINT", test)?,
        bucket: var("GOMODPROXY_TEST_S3_BUCKET", test)?,
        access_key: var("GOMODPROXY_TEST_S3_ACCESS_KEY", test)?,
        secret_key: var("GOMODPROXY_TEST_S3_SECRET_KEY", test)?,
    })
}

/// A key prefix no other test run uses.
pub fn unique_prefix(tag: &str) -> String {
    format!(
        "e2e-{tag}-{:x}-{}/",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind probe port");
    l.local_addr().expect("probe addr").port()
}

/// A redis-server owned by one test, with append-only persistence in its directory, so that a
/// stop and a start on the same port keep the data (like a Redis restart in production).
#[derive(Debug)]
pub struct PrivateRedis {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    password: Option<String>,
}

impl PrivateRedis {
    /// Starts one on a free port, data in `dir`.
    pub fn start(dir: &Path) -> PrivateRedis {
        PrivateRedis::start_inner(dir, None)
    }

    /// Starts one that requires `password` (`requirepass`).
    pub fn start_with_password(dir: &Path, password: &str) -> PrivateRedis {
        PrivateRedis::start_inner(dir, Some(password.to_string()))
    }

    fn start_inner(dir: &Path, password: Option<String>) -> PrivateRedis {
        std::fs::create_dir_all(dir).expect("redis dir");
        let mut server = PrivateRedis {
            dir: dir.to_path_buf(),
            port: free_port(),
            child: None,
            password,
        };
        server.resume();
        server
    }

    /// `redis://127.0.0.1:PORT/0`, with `:password@` when it has one.
    pub fn url(&self) -> String {
        match &self.password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// Stops it (SIGKILL: an outage, not a shutdown).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same data.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "redis already running");
        let log = std::fs::File::create(self.dir.join("redis.log")).expect("redis log");
        let mut cmd = Command::new("redis-server");
        if let Some(pw) = &self.password {
            cmd.args(["--requirepass", pw]);
        }
        let child = cmd
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
            ])
            .arg(&self.dir)
            .stdout(Stdio::from(log.try_clone().expect("dup log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("redis-server (Debian package redis-server) must be on PATH");
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                let mut buf = [0u8; 16];
                // With a password, "-NOAUTH" also says the server is up.
                if s.write_all(b"PING\r\n").is_ok()
                    && s.set_read_timeout(Some(Duration::from_millis(500))).is_ok()
                    && s.read(&mut buf).is_ok_and(|n| {
                        buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH")
                    })
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer; log:\n{}",
                self.port,
                std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An S3 server (MinIO, through tests/servers/s3.sh) owned by one test; its data survives a stop
/// and a start on the same port.
#[derive(Debug)]
pub struct PrivateS3 {
    dir: PathBuf,
    port: Option<u16>,
    env: Option<S3Env>,
}

impl PrivateS3 {
    /// Starts one, data in `dir`.
    pub fn start(dir: &Path) -> PrivateS3 {
        let mut server = PrivateS3 {
            dir: dir.to_path_buf(),
            port: None,
            env: None,
        };
        server.resume();
        server
    }

    /// Where it is.
    pub fn env(&self) -> &S3Env {
        self.env.as_ref().expect("started")
    }

    /// Stops it.
    pub fn stop(&mut self) {
        let out = Command::new(repo_root().join("tests/servers/s3.sh"))
            .arg("stop")
            .arg(&self.dir)
            .output()
            .expect("run s3.sh stop");
        assert!(
            out.status.success(),
            "s3.sh stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts it again on the same port with the same data.
    pub fn resume(&mut self) {
        let mut cmd = Command::new(repo_root().join("tests/servers/s3.sh"));
        cmd.arg("start").arg(&self.dir);
        if let Some(port) = self.port {
            cmd.arg(port.to_string());
        }
        let out = cmd.output().expect("run s3.sh start");
        assert!(
            out.status.success(),
            "s3.sh start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let get = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("s3.sh printed no {name}: {text}"))
                .to_string()
        };
        let env = S3Env {
            endpoint: get("GOMODPROXY_TEST_S3_ENDPOINT"),
            bucket: get("GOMODPROXY_TEST_S3_BUCKET"),
            access_key: get("GOMODPROXY_TEST_S3_ACCESS_KEY"),
            secret_key: get("GOMODPROXY_TEST_S3_SECRET_KEY"),
        };
        self.port = env.endpoint.rsplit(':').next().and_then(|p| p.parse().ok());
        self.env = Some(env);
    }
}

impl Drop for PrivateS3 {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("tests/servers/s3.sh"))
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}
