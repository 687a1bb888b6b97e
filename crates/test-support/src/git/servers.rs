//! Two small HTTP/1.1 servers on loopback, one thread per connection, `Connection: close`:
//!
//! - [`MetaProxy`]: an HTTP proxy that refuses `CONNECT` (so https go-get attempts fail
//!   fast) and answers plain `GET http://<host>/<path>?go-get=1` from a table of go-import
//!   pages. The go command reaches it through `HTTP_PROXY` with `GOINSECURE` for the host;
//!   the crate through `direct.http_proxy` with `direct.insecure`.
//! - [`AuthGitServer`]: git smart HTTP (`git http-backend` as CGI) behind basic auth.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;

/// A parsed request.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut r = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut req = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if let Some(len) = req
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        let mut body = vec![0; len];
        r.read_exact(&mut body).ok()?;
        req.body = body;
    } else if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            if n == 0 {
                let mut end = String::new();
                r.read_line(&mut end).ok()?;
                break;
            }
            let mut chunk = vec![0; n];
            r.read_exact(&mut chunk).ok()?;
            req.body.extend_from_slice(&chunk);
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf).ok()?;
        }
    }
    Some(req)
}

fn respond(mut stream: &TcpStream, status: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

fn serve(listener: TcpListener, handler: Arc<dyn Fn(TcpStream) + Send + Sync>) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let handler = handler.clone();
            std::thread::spawn(move || handler(stream));
        }
    });
}

/// The go-import page proxy.
#[derive(Debug)]
pub struct MetaProxy {
    /// Its loopback port.
    pub port: u16,
    pages: Arc<Mutex<HashMap<String, String>>>,
    /// GET requests answered (pages or 404s).
    pub gets: Arc<AtomicUsize>,
}

impl MetaProxy {
    /// Starts it on a free loopback port.
    pub fn start() -> MetaProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the meta proxy");
        let port = listener.local_addr().unwrap().port();
        let pages: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let gets = Arc::new(AtomicUsize::new(0));
        let (p, g) = (pages.clone(), gets.clone());
        serve(
            listener,
            Arc::new(move |stream| {
                let Some(req) = read_request(&stream) else {
                    return;
                };
                if req.method == "CONNECT" {
                    respond(&stream, "502 Bad Gateway", &[], b"no tunnels here\n");
                    return;
                }
                g.fetch_add(1, Ordering::Relaxed);
                // Absolute-form target: http://host/path?query.
                let target = req.target.strip_prefix("http://").unwrap_or(&req.target);
                let key = target.split('?').next().unwrap_or(target).to_string();
                let page = p.lock().unwrap().get(&key).cloned();
                match page {
                    Some(html) => respond(
                        &stream,
                        "200 OK",
                        &[("Content-Type", "text/html; charset=utf-8")],
                        html.as_bytes(),
                    ),
                    None => respond(
                        &stream,
                        "404 Not Found",
                        &[("Content-Type", "text/plain")],
                        b"not found\n",
                    ),
                }
            }),
        );
        MetaProxy { port, pages, gets }
    }

    /// `http://127.0.0.1:<port>`, for `HTTP_PROXY` and `direct.http_proxy`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Serves `html` at `http://<host_and_path>?go-get=1`.
    pub fn page(&self, host_and_path: &str, html: &str) {
        self.pages
            .lock()
            .unwrap()
            .insert(host_and_path.to_string(), html.to_string());
    }
}

/// git smart HTTP behind basic auth.
#[derive(Debug)]
pub struct AuthGitServer {
    /// Its loopback port.
    pub port: u16,
    /// Requests refused for missing or wrong credentials.
    pub refused: Arc<AtomicUsize>,
}

impl AuthGitServer {
    /// Serves the bare repositories under `root` with [`super::PRIVATE_USER`] and
    /// [`super::PRIVATE_PASSWORD`] as the only accepted credentials.
    pub fn start(root: &Path, home: &Path, gitconfig: &Path) -> AuthGitServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the git http server");
        let port = listener.local_addr().unwrap().port();
        let refused = Arc::new(AtomicUsize::new(0));
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                super::PRIVATE_USER,
                super::PRIVATE_PASSWORD
            ))
        );
        let (root, home, gitconfig): (PathBuf, PathBuf, PathBuf) =
            (root.into(), home.into(), gitconfig.into());
        let r = refused.clone();
        serve(
            listener,
            Arc::new(move |stream| {
                let Some(req) = read_request(&stream) else {
                    return;
                };
                if req.header("authorization") != Some(want.as_str()) {
                    r.fetch_add(1, Ordering::Relaxed);
                    respond(
                        &stream,
                        "401 Unauthorized",
                        &[("WWW-Authenticate", "Basic realm=\"private\"")],
                        b"authentication required\n",
                    );
                    return;
                }
                let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
                let mut cgi = Command::new("git");
                cgi.arg("http-backend")
                    .env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .env("HOME", &home)
                    .env("GIT_CONFIG_GLOBAL", &gitconfig)
                    .env("GIT_CONFIG_NOSYSTEM", "1")
                    .env("GIT_PROJECT_ROOT", &root)
                    .env("GIT_HTTP_EXPORT_ALL", "1")
                    .env("REQUEST_METHOD", &req.method)
                    .env("PATH_INFO", path)
                    .env("QUERY_STRING", query)
                    .env("REMOTE_USER", super::PRIVATE_USER)
                    .env("REMOTE_ADDR", "127.0.0.1")
                    .env("CONTENT_LENGTH", req.body.len().to_string())
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null());
                for (name, var) in [
                    ("content-type", "CONTENT_TYPE"),
                    ("git-protocol", "HTTP_GIT_PROTOCOL"),
                    ("content-encoding", "HTTP_CONTENT_ENCODING"),
                ] {
                    if let Some(v) = req.header(name) {
                        cgi.env(var, v);
                    }
                }
                let Ok(mut child) = cgi.spawn() else {
                    respond(&stream, "500 Internal Server Error", &[], b"");
                    return;
                };
                let mut stdin = child.stdin.take().unwrap();
                let body = req.body.clone();
                let writer = std::thread::spawn(move || {
                    let _ = stdin.write_all(&body);
                });
                let mut out = Vec::new();
                let _ = child.stdout.take().unwrap().read_to_end(&mut out);
                let _ = writer.join();
                let _ = child.wait();
                // CGI output: headers, blank line, body.
                let split = out
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map(|i| (i, 4))
                    .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
                let Some((at, sep)) = split else {
                    respond(&stream, "502 Bad Gateway", &[], b"bad CGI output\n");
                    return;
                };
                let head = String::from_utf8_lossy(&out[..at]).to_string();
                let mut status = "200 OK".to_string();
                let mut headers = Vec::new();
                for line in head.lines() {
                    let Some((k, v)) = line.split_once(':') else {
                        continue;
                    };
                    if k.eq_ignore_ascii_case("status") {
                        status = v.trim().to_string();
                    } else {
                        headers.push((k.trim().to_string(), v.trim().to_string()));
                    }
                }
                let hs: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                respond(&stream, &status, &hs, &out[at + sep..]);
            }),
        );
        AuthGitServer { port, refused }
    }
}
