//! The fixture upstream: an in-process HTTP/1.1 server on 127.0.0.1 that serves a GOPROXY
//! directory, counts requests per path, and misbehaves on demand.
//!
//! It speaks HTTP by hand (one request per connection, `Connection: close`) rather than through
//! a server library, because the faults it injects — a Content-Length that lies, a body cut
//! short, a connection that never answers — are exactly what such libraries refuse to produce.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the upstream misbehaves for a path (or for every path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and a short text body.
    Status(u16),
    /// Accept the request, send nothing for this long, then close the connection.
    Hang(Duration),
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Declare `declared` bytes in Content-Length, send the first `sent` bytes of the real body,
    /// then close.
    Truncate {
        /// The Content-Length header value.
        declared: u64,
        /// How many body bytes are actually written.
        sent: u64,
    },
    /// Send the whole real body but declare only half of its length in Content-Length, so a
    /// client that trusts the header gets a cut body with no transport error.
    WrongContentLength,
    /// Serve the real body with the byte at each offset inverted.
    Corrupt(Vec<usize>),
    /// Serve these bytes (status 200, correct Content-Length) instead of the file.
    Body(Vec<u8>),
    /// Serve these bytes (status 200) with `Transfer-Encoding: chunked` and no Content-Length,
    /// so the client learns the size only at the end.
    BodyChunked(Vec<u8>),
    /// Serve the real body at about this many bytes per second.
    Throttle {
        /// Bytes per second.
        bytes_per_sec: u64,
    },
}

#[derive(Debug, Default)]
struct State {
    faults: Mutex<HashMap<String, Fault>>,
    global: Mutex<Option<Fault>>,
    hits: Mutex<HashMap<String, u64>>,
    log: Mutex<Vec<String>>,
    sent: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

/// A running fixture upstream. Dropping it (or [`Upstream::stop`]) closes the port and every
/// open connection.
#[derive(Debug)]
pub struct Upstream {
    addr: SocketAddr,
    state: Arc<State>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Upstream {
    /// Starts serving `root` (GOPROXY layout) on a free loopback port.
    pub fn start(root: &Path) -> Upstream {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fixture-upstream")
            .enable_all()
            .build()
            .expect("upstream runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let state = Arc::new(State::default());
        let root = root.to_path_buf();
        let st = state.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                let root = root.clone();
                tokio::spawn(async move {
                    let _ = handle(stream, &root, &st).await;
                });
            }
        });
        Upstream {
            addr,
            state,
            runtime: Some(runtime),
        }
    }

    /// The base URL, e.g. `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests received for `path` (percent-decoded, e.g. `/example.com/!upper/x/@v/list`).
    pub fn hits(&self, path: &str) -> u64 {
        self.state
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Requests received in total.
    pub fn total_hits(&self) -> u64 {
        self.state.hits.lock().unwrap().values().sum()
    }

    /// Every request path received, in arrival order.
    pub fn requests(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }

    /// Body bytes written so far for `path`, over all its requests.
    pub fn bytes_sent(&self, path: &str) -> u64 {
        self.state
            .sent
            .lock()
            .unwrap()
            .get(path)
            .map(|c| c.load(Ordering::SeqCst))
            .unwrap_or(0)
    }

    /// Makes `path` misbehave until cleared.
    pub fn set_fault(&self, path: &str, fault: Fault) {
        self.state
            .faults
            .lock()
            .unwrap()
            .insert(path.to_string(), fault);
    }

    /// Makes `path` behave again.
    pub fn clear_fault(&self, path: &str) {
        self.state.faults.lock().unwrap().remove(path);
    }

    /// Makes every path without its own fault misbehave (None clears).
    pub fn set_global_fault(&self, fault: Option<Fault>) {
        *self.state.global.lock().unwrap() = fault;
    }

    /// Stops serving: the port is closed and open connections are dropped.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Percent-decodes a request target; invalid escapes are kept literally.
pub fn percent_decode(s: &str) -> Vec<u8> {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

async fn handle(mut stream: TcpStream, root: &Path, st: &State) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let request_line = head.lines().next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default();
    let path = String::from_utf8_lossy(&percent_decode(target.split('?').next().unwrap_or("")))
        .to_string();

    *st.hits.lock().unwrap().entry(path.clone()).or_insert(0) += 1;
    st.log.lock().unwrap().push(path.clone());
    let sent = st
        .sent
        .lock()
        .unwrap()
        .entry(path.clone())
        .or_default()
        .clone();

    let fault = st
        .faults
        .lock()
        .unwrap()
        .get(&path)
        .cloned()
        .or_else(|| st.global.lock().unwrap().clone());

    if let Some(Fault::Hang(d)) = &fault {
        tokio::time::sleep(*d).await;
        return Ok(());
    }
    if let Some(Fault::Delay(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    if let Some(Fault::Status(code)) = &fault {
        let body = format!("fixture upstream: injected status {code}\n");
        return respond(
            &mut stream,
            *code,
            "text/plain; charset=utf-8",
            body.as_bytes(),
            &method,
        )
        .await;
    }
    if method != "GET" && method != "HEAD" {
        return respond(
            &mut stream,
            405,
            "text/plain",
            b"method not allowed\n",
            &method,
        )
        .await;
    }

    let body = match &fault {
        Some(Fault::Body(bytes) | Fault::BodyChunked(bytes)) => Some(bytes.clone()),
        _ => match resolve(root, &path) {
            Some(file) => tokio::fs::read(&file).await.ok(),
            None => None,
        },
    };
    let Some(mut body) = body else {
        return respond(
            &mut stream,
            404,
            "text/plain; charset=utf-8",
            b"not found\n",
            &method,
        )
        .await;
    };
    let content_type = if path.ends_with(".info") || path.ends_with("/@latest") {
        "application/json"
    } else if path.ends_with(".zip") {
        "application/zip"
    } else {
        "text/plain; charset=utf-8"
    };
    let len = body.len() as u64;
    match fault {
        Some(Fault::Truncate { declared, sent: n }) => {
            let n = n.min(len) as usize;
            write_head(&mut stream, 200, content_type, declared).await?;
            stream.write_all(&body[..n]).await?;
            sent.fetch_add(n as u64, Ordering::SeqCst);
            stream.flush().await?;
            // Close without the rest: the client must see an unexpected EOF.
            Ok(())
        }
        Some(Fault::BodyChunked(_)) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await?;
            for piece in body.chunks(64 * 1024) {
                stream
                    .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                    .await?;
                stream.write_all(piece).await?;
                stream.write_all(b"\r\n").await?;
                sent.fetch_add(piece.len() as u64, Ordering::SeqCst);
            }
            stream.write_all(b"0\r\n\r\n").await?;
            stream.flush().await
        }
        Some(Fault::WrongContentLength) => {
            write_head(&mut stream, 200, content_type, len / 2).await?;
            stream.write_all(&body).await?;
            sent.fetch_add(len, Ordering::SeqCst);
            stream.flush().await
        }
        Some(Fault::Throttle { bytes_per_sec }) => {
            write_head(&mut stream, 200, content_type, len).await?;
            let chunk = (bytes_per_sec / 20).max(1) as usize;
            for piece in body.chunks(chunk) {
                stream.write_all(piece).await?;
                stream.flush().await?;
                sent.fetch_add(piece.len() as u64, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(())
        }
        other => {
            if let Some(Fault::Corrupt(offsets)) = other {
                for o in offsets {
                    if let Some(b) = body.get_mut(o) {
                        *b = !*b;
                    }
                }
            }
            write_head(&mut stream, 200, content_type, len).await?;
            if method == "GET" {
                stream.write_all(&body).await?;
                sent.fetch_add(len, Ordering::SeqCst);
            }
            stream.flush().await
        }
    }
}

/// Maps a request path onto the root; refuses anything that could leave it.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = path.strip_prefix('/')?;
    if rel.is_empty()
        || rel.contains('\0')
        || rel.contains('\\')
        || rel
            .split('/')
            .any(|e| e.is_empty() || e == "." || e == "..")
    {
        return None;
    }
    let file = root.join(rel);
    file.is_file().then_some(file)
}

async fn write_head(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    content_length: u64,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {content_length}\r\nConnection: close\r\n\r\n",
        reason(status)
    );
    stream.write_all(head.as_bytes()).await
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
    method: &str,
) -> std::io::Result<()> {
    write_head(stream, status, content_type, body.len() as u64).await?;
    if method != "HEAD" {
        stream.write_all(body).await?;
    }
    stream.flush().await
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
