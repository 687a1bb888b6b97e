//! An HTTPS server that answers every request with a `302` to the same path on another base
//! URL, and records which requests carried an `Authorization` header: the upstream that hands
//! a client to a CDN on another host.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::tls::CertFiles;

/// A running redirector (its accept thread ends with the process).
#[derive(Debug)]
pub struct TlsRedirector {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<(String, bool)>>>,
}

impl TlsRedirector {
    /// Serves HTTPS with `cert` on a free loopback port, redirecting to `target` + path.
    pub fn start(cert: &CertFiles, target: &str) -> TlsRedirector {
        let config = crate::tls::server_config(cert);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind redirector");
        let addr = listener.local_addr().expect("redirector addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let target = target.trim_end_matches('/').to_string();
        let log = seen.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (config, target, log) = (config.clone(), target.clone(), log.clone());
                thread::spawn(move || {
                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let mut tls = rustls::StreamOwned::new(conn, stream);
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match tls.read(&mut byte) {
                            Ok(1) if head.len() < 16 * 1024 => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                    let authorized = head.lines().any(|l| {
                        l.split_once(':')
                            .is_some_and(|(name, _)| name.eq_ignore_ascii_case("authorization"))
                    });
                    log.lock().unwrap().push((path.clone(), authorized));
                    let answer = format!(
                        "HTTP/1.1 302 Found\r\nLocation: {target}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = tls.write_all(answer.as_bytes());
                    let _ = tls.flush();
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                });
            }
        });
        TlsRedirector { addr, seen }
    }

    /// The base URL, `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Every request path, with whether it carried `Authorization`.
    pub fn seen(&self) -> Vec<(String, bool)> {
        self.seen.lock().unwrap().clone()
    }
}
