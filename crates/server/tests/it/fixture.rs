//! A `file://` upstream in GOPROXY layout, and the application over a real `ProxyService`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use bytes::Bytes;
use gomodproxy::http::AppState;
use gomodproxy_service::{Mode, ProxyService, ServiceConfig};
use gomodproxy_storage::Storage;
use gomodproxy_storage::memory::InMemory;

/// A plain module.
pub const HELLO: &str = "example.com/hello";
/// A module whose path has upper case (escaped `example.com/!upper/hello`).
pub const UPPER: &str = "example.com/Upper/hello";
/// The one version both modules have.
pub const V1: &str = "v1.0.0";
/// `max-age` of mutable answers in these tests (not the default, to see it is the configured
/// value that is used).
pub const LIST_TTL: Duration = Duration::from_secs(42);

/// Info JSON of `V1`.
pub const INFO: &str = r#"{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}"#;

/// The go.mod of `module`.
pub fn go_mod(module: &str) -> String {
    format!("module {module}\n\ngo 1.21\n")
}

/// A valid module zip of `module@version`.
pub fn module_zip(module: &str, version: &str) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let prefix = format!("{module}@{version}");
        zip.start_file(format!("{prefix}/go.mod"), options).unwrap();
        zip.write_all(go_mod(module).as_bytes()).unwrap();
        zip.start_file(format!("{prefix}/hello.go"), options)
            .unwrap();
        zip.write_all(
            b"package hello\n\n// Hello says hello.\nfunc Hello() string { return \"hello\" }\n",
        )
        .unwrap();
        zip.finish().unwrap();
    }
    out.into_inner()
}

/// `!`-escapes upper case, as in proxy URLs and the upstream layout.
pub fn escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// An upstream directory holding `HELLO` and `UPPER` at `V1`.
pub struct Upstream {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
}

impl Upstream {
    pub fn new() -> Upstream {
        let dir = tempfile::tempdir().unwrap();
        for module in [HELLO, UPPER] {
            let v = dir.path().join(escape(module)).join("@v");
            std::fs::create_dir_all(&v).unwrap();
            std::fs::write(v.join("list"), format!("{V1}\n")).unwrap();
            std::fs::write(v.join(format!("{V1}.info")), INFO).unwrap();
            std::fs::write(v.join(format!("{V1}.mod")), go_mod(module)).unwrap();
            std::fs::write(v.join(format!("{V1}.zip")), module_zip(module, V1)).unwrap();
            std::fs::write(dir.path().join(escape(module)).join("@latest"), INFO).unwrap();
        }
        Upstream { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }
}

/// The service over `storage` and this upstream.
pub fn state(upstream: &Upstream, storage: Arc<dyn Storage>, mode: Mode) -> AppState {
    let config = ServiceConfig {
        mode,
        upstream: upstream.url().parse().unwrap(),
        list_ttl: LIST_TTL,
        retries: 0,
        // The fixture upstream has no checksum database.
        verify: false,
        ..ServiceConfig::default()
    };
    AppState::new(ProxyService::new(storage, config).unwrap(), LIST_TTL)
}

/// A fresh in-memory store.
pub fn memory() -> Arc<dyn Storage> {
    Arc::new(InMemory::new())
}

/// What a test looks at in a response.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body size the response announces (before any transfer encoding).
    pub size: actix_web::body::BodySize,
    pub body: Bytes,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// Sends a `TestRequest` to an initialised test service and collects the response.
#[macro_export]
macro_rules! call {
    ($app:expr, $req:expr) => {{
        let res = actix_web::test::call_service(&$app, $req.to_request()).await;
        let status = res.status();
        let headers = res.headers().clone();
        let size = actix_web::body::MessageBody::size(res.response().body());
        let body = actix_web::test::read_body(res).await;
        $crate::fixture::Resp {
            status,
            headers,
            size,
            body,
        }
    }};
}

/// `GET path`.
#[macro_export]
macro_rules! get {
    ($app:expr, $path:expr) => {
        $crate::call!(
            $app,
            actix_web::test::TestRequest::get().uri(AsRef::<str>::as_ref(&$path))
        )
    };
}
