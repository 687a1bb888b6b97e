//! Test helpers: a scriptable HTTP upstream on 127.0.0.1, module zips, and service builders.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use gomod::{ModulePath, Version};
use gomodproxy_service::{Answer, Body, Mode, ProxyService, ServiceConfig};
use gomodproxy_storage::memory::InMemory;
use gomodproxy_storage::{Key, ListPrefix, Storage};
pub use gomodproxy_test_support::make_zip;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the fake upstream does for one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this body and a correct Content-Length.
    Ok(Bytes),
    /// 200 with a chunked body (no Content-Length).
    Chunked(Bytes),
    /// This status with a short text body.
    Status(u16),
    /// 302 to this absolute URL.
    Redirect(String),
    /// Accepts the request and never answers.
    Hang,
    /// 200 announcing `claimed` bytes, sends `body`, then closes the connection.
    Truncated { body: Bytes, claimed: u64 },
    /// 200 announcing `claimed` bytes, sends `body`, then stalls with the connection open.
    Stall { body: Bytes, claimed: u64 },
    /// Waits, then does the inner reply.
    Delay(Duration, Box<Reply>),
    /// 200 announcing the body's length, then one byte every `every`.
    Drip { body: Bytes, every: Duration },
}

#[derive(Default)]
struct State {
    /// Replies per path; the last one repeats, earlier ones are used once each.
    replies: HashMap<String, VecDeque<Reply>>,
    hits: HashMap<String, usize>,
    /// Request heads, in arrival order.
    heads: Vec<String>,
}

/// A hand-rolled HTTP/1.1 upstream that counts requests per path and can misbehave.
#[derive(Clone)]
pub struct Upstream {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let accept_state = state.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, accept_state.clone()));
            }
        });
        Upstream { url, state }
    }

    /// Sets the replies for `path` (without the leading `/`), replacing earlier ones.
    pub fn set(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .lock()
            .unwrap()
            .replies
            .insert(format!("/{path}"), replies.into_iter().collect());
    }

    /// Requests seen for `path` (without the leading `/`).
    pub fn hits(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(&format!("/{path}"))
            .copied()
            .unwrap_or(0)
    }

    /// Requests seen in total.
    pub fn total_hits(&self) -> usize {
        self.state.lock().unwrap().hits.values().sum()
    }

    /// The request heads seen (request line and headers), in arrival order.
    pub fn heads(&self) -> Vec<String> {
        self.state.lock().unwrap().heads.clone()
    }
}

async fn serve(mut conn: TcpStream, state: Arc<Mutex<State>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let reply = {
        let mut state = state.lock().unwrap();
        state.heads.push(head.clone());
        *state.hits.entry(path.clone()).or_default() += 1;
        match state.replies.get_mut(&path) {
            Some(queue) if queue.len() > 1 => queue.pop_front().unwrap(),
            Some(queue) => queue.front().cloned().unwrap_or(Reply::Status(404)),
            None => Reply::Status(404),
        }
    };
    respond(&mut conn, reply).await;
}

async fn respond(conn: &mut TcpStream, reply: Reply) {
    let mut reply = reply;
    while let Reply::Delay(delay, inner) = reply {
        tokio::time::sleep(delay).await;
        reply = *inner;
    }
    let head = |status: &str, len: u64| {
        format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
            .into_bytes()
    };
    let result = match reply {
        Reply::Ok(body) => {
            let mut out = head("200 OK", body.len() as u64);
            out.extend_from_slice(&body);
            conn.write_all(&out).await
        }
        Reply::Chunked(body) => {
            let mut out =
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                    .to_vec();
            for chunk in body.chunks(1000) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            conn.write_all(&out).await
        }
        Reply::Status(code) => {
            let body = format!("status {code}\n");
            let mut out = head(&format!("{code} Whatever"), body.len() as u64);
            out.extend_from_slice(body.as_bytes());
            conn.write_all(&out).await
        }
        Reply::Redirect(location) => {
            let out = format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            conn.write_all(out.as_bytes()).await
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        }
        Reply::Truncated { body, claimed } => {
            let mut out = head("200 OK", claimed);
            out.extend_from_slice(&body);
            conn.write_all(&out).await
        }
        Reply::Stall { body, claimed } => {
            let mut out = head("200 OK", claimed);
            out.extend_from_slice(&body);
            let _ = conn.write_all(&out).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        }
        Reply::Drip { body, every } => {
            let _ = conn.write_all(&head("200 OK", body.len() as u64)).await;
            for byte in body.iter() {
                tokio::time::sleep(every).await;
                if conn.write_all(&[*byte]).await.is_err() {
                    break;
                }
            }
            Ok(())
        }
        Reply::Delay(..) => unreachable!(),
    };
    let _ = result;
    let _ = conn.shutdown().await;
}

pub fn module(path: &str) -> ModulePath {
    ModulePath::parse(path).unwrap()
}

pub fn version(v: &str) -> Version {
    Version::parse(v).unwrap()
}

/// A small valid module zip.
pub fn good_zip(module: &str, version: &str) -> Bytes {
    make_zip(
        module,
        version,
        &[
            ("go.mod", format!("module {module}\n").as_bytes()),
            ("m.go", b"package m\n"),
        ],
    )
}

/// The dirhash `h1:` of a set of files with full names, computed independently of `gomod`.
pub fn h1(module: &str, version: &str, files: &[(&str, &[u8])]) -> String {
    let mut lines: Vec<String> = files
        .iter()
        .map(|(name, content)| {
            format!(
                "{}  {module}@{version}/{name}\n",
                hex::encode(Sha256::digest(content))
            )
        })
        .collect();
    lines.sort_by(|a, b| a[66..].cmp(&b[66..]));
    let summary = Sha256::digest(lines.concat().as_bytes());
    format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(summary)
    )
}

pub fn info_json(version: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"Version":"{version}","Time":"2023-01-02T03:04:05Z"}}"#
    ))
}

/// A test config: short timeouts, no retries, spool in a temp dir.
pub fn config(upstream: &str) -> ServiceConfig {
    ServiceConfig {
        mode: Mode::Online,
        upstream: upstream.parse().unwrap(),
        list_ttl: Duration::from_secs(3600),
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_millis(500),
        retries: 0,
        retry_backoff: Duration::from_millis(10),
        // These upstreams have no checksum database; verification has tests of its own.
        verify: false,
        // Tests make a path fail and then succeed; the caches have tests of their own.
        negative_ttl: Duration::ZERO,
        query_ttl: Duration::ZERO,
        ..ServiceConfig::default()
    }
}

pub fn service(storage: &Arc<InMemory>, config: ServiceConfig) -> ProxyService {
    ProxyService::new(storage.clone(), config).unwrap()
}

/// Reads an answer's whole body.
pub async fn body(answer: Answer) -> Bytes {
    match answer.body {
        Body::Bytes(b) => b,
        Body::Stream(mut s) => {
            let mut out = Vec::new();
            while let Some(chunk) = s.next().await {
                out.extend_from_slice(&chunk.unwrap());
            }
            Bytes::from(out)
        }
    }
}

/// Every stored key path.
pub async fn stored(storage: &InMemory) -> Vec<String> {
    let mut keys: Vec<String> = storage
        .list(&ListPrefix::All)
        .map(|e| e.unwrap().key.path())
        .collect::<Vec<_>>()
        .await;
    keys.sort();
    keys
}

pub async fn has(storage: &InMemory, key: &Key) -> bool {
    storage.head(key).await.is_ok()
}

/// Asserts the error variant, printing the error when it differs.
#[macro_export]
macro_rules! assert_err {
    ($result:expr, $variant:ident) => {
        match $result {
            Err(e @ gomodproxy_service::ServiceError::$variant { .. }) => e.to_string(),
            Err(other) => panic!("expected {}, got {:?}", stringify!($variant), other),
            Ok(_) => panic!("expected {}, got a success", stringify!($variant)),
        }
    };
}
