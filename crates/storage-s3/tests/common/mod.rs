//! What the S3 tests share: the test server from `GOMODPROXY_TEST_S3_*`, options for it, random
//! key prefixes, a raw `object_store` client to look at the bucket behind the store's back, and
//! a server of their own started with `tests/servers/s3.sh`.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::path::{Path as FsPath, PathBuf};
use std::process::Command;
use std::time::Duration;

use futures::TryStreamExt;
use gomod::{ModulePath, Version};
use gomodproxy_storage::{ArtifactKind, Key};
use gomodproxy_storage_s3::S3Options;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;

/// Connection details of an S3 server for tests.
#[derive(Clone)]
pub struct TestServer {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

const SKIP_MESSAGE: &str = "SKIPPED: GOMODPROXY_TEST_S3_ENDPOINT is not set (tests/run.sh starts the S3 server and sets it)";

/// The server named by `GOMODPROXY_TEST_S3_*`, or `None` (with a loud message) when the variables
/// are unset. With `GOMODPROXY_TEST_REQUIRE_SERVERS=1` an unset variable is a failure instead, so
/// that CI never skips silently.
pub fn server() -> Option<TestServer> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some(endpoint) = var("GOMODPROXY_TEST_S3_ENDPOINT") else {
        if var("GOMODPROXY_TEST_REQUIRE_SERVERS").as_deref() == Some("1") {
            panic!(
                "GOMODPROXY_TEST_REQUIRE_SERVERS=1 but GOMODPROXY_TEST_S3_ENDPOINT is not set: \
                 start the server with tests/servers/s3.sh (tests/run.sh does)"
            );
        }
        eprintln!(
            "\n{0}\n{SKIP_MESSAGE}\n{0}\n",
            "*".repeat(SKIP_MESSAGE.len())
        );
        return None;
    };
    let required = |name: &str| {
        var(name).unwrap_or_else(|| {
            panic!("GOMODPROXY_TEST_S3_ENDPOINT is set but {name} is not (see tests/servers/s3.sh)")
        })
    };
    Some(TestServer {
        endpoint,
        bucket: required("GOMODPROXY_TEST_S3_BUCKET"),
        access_key: required("GOMODPROXY_TEST_S3_ACCESS_KEY"),
        secret_key: required("GOMODPROXY_TEST_S3_SECRET_KEY"),
    })
}

/// A prefix no other run uses: `test-<name>-<random>`.
pub fn random_prefix(name: &str) -> String {
    format!("test-{name}-{:016x}", rand::random::<u64>())
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// Options for this server under `key_prefix`, with the crate's default timeouts.
    pub fn options(&self, key_prefix: &str) -> S3Options {
        S3Options {
            bucket: self.bucket.clone(),
            endpoint: Some(self.endpoint.clone()),
            allow_http: self.endpoint.starts_with("http://"),
            access_key_id: Some(self.access_key.clone()),
            secret_access_key: Some(self.secret_key.clone()),
            key_prefix: key_prefix.to_string(),
            ..S3Options::default()
        }
    }

    /// A plain object_store client of the bucket, to see and make objects behind the store's back.
    pub fn raw(&self) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_client_options(
                object_store::ClientOptions::new()
                    .with_allow_http(true)
                    .with_timeout(Duration::from_secs(60)),
            )
            .with_endpoint(&self.endpoint)
            .with_bucket_name(&self.bucket)
            .with_region("us-east-1")
            .with_access_key_id(&self.access_key)
            .with_secret_access_key(&self.secret_key)
            .with_virtual_hosted_style_request(false)
            .build()
            .expect("raw object_store client")
    }

    /// The names of every object under `prefix/`, exactly as the server lists them.
    pub async fn raw_names(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .raw()
            .list(Some(&Path::parse(prefix).unwrap()))
            .map_ok(|meta| meta.location.as_ref().to_string())
            .try_collect()
            .await
            .expect("raw listing");
        names.sort();
        names
    }
}

impl TestServer {
    /// A SigV4-signed request without a body through curl (for bucket operations that
    /// object_store does not offer); returns the HTTP status and the body.
    pub fn signed(&self, method: &str, path: &str) -> (u16, String) {
        let url = format!("{}/{path}", self.endpoint);
        let out = Command::new("curl")
            .args(["-sS", "-w", "\n%{http_code}", "-X", method])
            // s3s wants the payload hash header, which curl does not send by itself.
            .args([
                "-H",
                "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ])
            .args(["--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
            .arg(format!("{}:{}", self.access_key, self.secret_key))
            .arg(&url)
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        let status = status.trim().parse().unwrap_or_else(|_| {
            panic!(
                "curl {method} {url}: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (status, body.to_string())
    }
}

pub fn module(path: &str) -> ModulePath {
    ModulePath::parse(path).unwrap_or_else(|e| panic!("module path {path:?}: {e}"))
}

pub fn version(v: &str) -> Version {
    Version::parse(v).unwrap_or_else(|e| panic!("version {v:?}: {e}"))
}

pub fn zip_key(module_path: &str, v: &str) -> Key {
    Key::artifact(&module(module_path), &version(v), ArtifactKind::Zip)
}

/// The repository root (for tests/servers/s3.sh).
pub fn repo_root() -> PathBuf {
    FsPath::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An S3 server of a test's own, started by `tests/servers/s3.sh` in `dir`; stopped on drop.
pub struct OwnServer {
    pub dir: PathBuf,
    pub server: TestServer,
    pub port: u16,
    /// `s3s-fs` or `minio`, as s3.sh wrote it to `DIR/server`.
    pub kind: String,
}

impl OwnServer {
    /// Starts a server with its data in `dir`, on `port` (0: a free one).
    pub fn start(dir: &FsPath, port: u16) -> OwnServer {
        let script = repo_root().join("tests/servers/s3.sh");
        let mut command = Command::new("bash");
        command.arg(&script).arg("start").arg(dir);
        if port != 0 {
            command.arg(port.to_string());
        }
        let out = command.output().expect("run tests/servers/s3.sh");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{} start failed:\n{stdout}\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let value = |name: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("s3.sh printed no {name}:\n{stdout}"))
                .to_string()
        };
        let server = TestServer {
            endpoint: value("GOMODPROXY_TEST_S3_ENDPOINT"),
            bucket: value("GOMODPROXY_TEST_S3_BUCKET"),
            access_key: value("GOMODPROXY_TEST_S3_ACCESS_KEY"),
            secret_key: value("GOMODPROXY_TEST_S3_SECRET_KEY"),
        };
        let port = server
            .endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {}", server.endpoint));
        let kind = std::fs::read_to_string(dir.join("server"))
            .expect("s3.sh writes DIR/server")
            .trim()
            .to_string();
        OwnServer {
            dir: dir.to_path_buf(),
            server,
            port,
            kind,
        }
    }

    /// Multipart uploads started and neither completed nor aborted, by upload id. MinIO answers
    /// S3's `ListMultipartUploads` (signed by curl here); s3s-fs does not implement it but keeps
    /// one `.upload-<id>.json` file per open upload at the top of its data directory.
    pub fn uploads_in_progress(&self) -> Vec<String> {
        match self.kind.as_str() {
            "s3s-fs" => {
                let mut ids: Vec<String> = std::fs::read_dir(self.dir.join("data"))
                    .expect("read the s3s-fs data directory")
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter_map(|name| {
                        name.strip_prefix(".upload-")?
                            .strip_suffix(".json")
                            .map(str::to_string)
                    })
                    .collect();
                ids.sort();
                ids
            }
            "minio" => {
                let s = &self.server;
                let url = format!("{}/{}?uploads=", s.endpoint, s.bucket);
                let out = Command::new("curl")
                    .args([
                        "-sS",
                        "--fail-with-body",
                        "--aws-sigv4",
                        "aws:amz:us-east-1:s3",
                    ])
                    .arg("--user")
                    .arg(format!("{}:{}", s.access_key, s.secret_key))
                    .arg(&url)
                    .output()
                    .expect("run curl");
                let body = String::from_utf8_lossy(&out.stdout).into_owned();
                assert!(
                    out.status.success(),
                    "ListMultipartUploads {url} failed: {body} {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                body.split("<UploadId>")
                    .skip(1)
                    .filter_map(|rest| rest.split("</UploadId>").next().map(str::to_string))
                    .collect()
            }
            other => panic!("unknown server kind {other:?} in {}", self.dir.display()),
        }
    }

    pub fn stop(&self) {
        let script = repo_root().join("tests/servers/s3.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("stop")
            .arg(&self.dir)
            .output()
            .expect("run tests/servers/s3.sh stop");
        assert!(
            out.status.success(),
            "s3.sh stop failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("tests/servers/s3.sh"))
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}
