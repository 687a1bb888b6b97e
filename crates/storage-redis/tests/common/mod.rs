//! Shared by the test binaries: the server switch (`GOMODPROXY_TEST_REDIS_URL`), stores under
//! random key prefixes, raw Redis access to inspect what a store wrote, and private redis-server
//! processes that a test may stop and restart.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gomodproxy_storage_redis::{RedisOptions, RedisStorage};
use redis::aio::MultiplexedConnection;

pub const URL_VAR: &str = "GOMODPROXY_TEST_REDIS_URL";
pub const REQUIRE_VAR: &str = "GOMODPROXY_TEST_REQUIRE_SERVERS";

/// The test server's URL, or `None` (after a loud message) when the tests are to be skipped.
/// Panics when `GOMODPROXY_TEST_REQUIRE_SERVERS=1` demands a server that was not given.
pub fn test_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
                panic!(
                    "{test}: {URL_VAR} is not set but {REQUIRE_VAR}=1 requires the Redis tests to run \
                     (tests/servers/redis.sh start <dir> prints the variable)"
                );
            }
            // Written to the stderr handle, not with eprintln!, which the test harness captures
            // and hides for passing tests: a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {test}: {URL_VAR} is not set (tests/run.sh starts redis-server and sets it)"
            );
            None
        }
    }
}

/// A key prefix no other run uses.
pub fn random_prefix(tag: &str) -> String {
    format!("gomodproxy-test:{tag}:{:016x}:", rand::random::<u64>())
}

/// Opens a store, failing the test (with the reason) if the server cannot be reached.
pub async fn open(options: RedisOptions) -> RedisStorage {
    let url = options.url.clone();
    RedisStorage::open(options)
        .await
        .unwrap_or_else(|e| panic!("cannot open a RedisStorage on {url} (is the server up?): {e}"))
}

/// A plain connection for inspecting what a store wrote.
pub async fn raw(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .unwrap_or_else(|e| panic!("bad URL {url}: {e}"))
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

/// Every key whose name starts with `prefix` (SCAN: fine in tests, never on request paths).
pub async fn keys_under(conn: &mut MultiplexedConnection, prefix: &str) -> Vec<String> {
    let mut pattern = String::new();
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    scan(conn, &pattern).await
}

/// Every key of the database.
pub async fn all_keys(conn: &mut MultiplexedConnection) -> Vec<String> {
    scan(conn, "*").await
}

async fn scan(conn: &mut MultiplexedConnection, pattern: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys.dedup();
    keys
}

/// Milliseconds until `key` expires: -1 without expiry, -2 if it does not exist.
pub async fn pttl(conn: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query_async(conn).await.unwrap()
}

/// Deletes every key under `prefix`.
pub async fn remove_prefix(conn: &mut MultiplexedConnection, prefix: &str) {
    for key in keys_under(conn, prefix).await {
        let _: i64 = redis::cmd("DEL").arg(&key).query_async(conn).await.unwrap();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// A redis-server of the test's own, on a loopback port, killed when dropped.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free port.
    pub async fn start() -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let mut server = RedisServer {
            port: free_port(),
            dir,
            child: None,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// (Re)starts the server on the same port and waits until it answers PING.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.log())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server (install the Debian package redis-server): {e}")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(self.log()).unwrap_or_default();
                panic!(
                    "redis-server on port {} exited ({status}):\n{log}",
                    self.port
                );
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING within 10 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends `signal` (`STOP`, `CONT`) to the server process.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the server is not running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Kills the server (SIGKILL: no goodbye to its clients) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A stopped process dies of SIGKILL too; CONT is harmless otherwise.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(child.id().to_string())
                .status();
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
