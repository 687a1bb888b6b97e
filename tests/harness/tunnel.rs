//! An HTTP `CONNECT` proxy on loopback, as companies run them: it tunnels TLS to the target,
//! records every target it was asked for, and can demand `Proxy-Authorization` (407). Only
//! 127.0.0.1 targets are tunnelled (hermetic tests); others get 403.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// A running CONNECT proxy; it stops accepting when dropped.
#[derive(Debug)]
pub struct ConnectProxy {
    addr: SocketAddr,
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    targets: Mutex<Vec<String>>,
    /// `Basic <base64>` the proxy wants, if any.
    required: Mutex<Option<String>>,
    stopped: std::sync::atomic::AtomicBool,
}

impl ConnectProxy {
    /// Starts on a free loopback port.
    pub fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind CONNECT proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let state = Arc::new(State::default());
        let st = state.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if st.stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let st = st.clone();
                thread::spawn(move || {
                    let _ = handle(stream, &st);
                });
            }
        });
        ConnectProxy { addr, state }
    }

    /// The proxy URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, requires these credentials (407 without them).
    pub fn require_basic(&self, user: &str, password: &str) {
        use base64::Engine;
        let value = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        *self.state.required.lock().unwrap() = Some(format!("Basic {value}"));
    }

    /// The `host:port` of every CONNECT received, in order.
    pub fn targets(&self) -> Vec<String> {
        self.state.targets.lock().unwrap().clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.state
            .stopped
            .store(true, std::sync::atomic::Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads one request head (up to the blank line); `None` at end of stream or past 16 KiB.
fn read_head(client: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 || head.len() > 16 * 1024 {
            return Ok(None);
        }
        head.push(byte[0]);
    }
    Ok(Some(String::from_utf8_lossy(&head).into_owned()))
}

fn handle(mut client: TcpStream, state: &State) -> std::io::Result<()> {
    // A 407 keeps the connection open for the retry with credentials, as company proxies do
    // (curl, and so git, asks without credentials first when the method is left open).
    let target = loop {
        let Some(head) = read_head(&mut client)? else {
            return Ok(());
        };
        let mut lines = head.split("\r\n");
        let request = lines.next().unwrap_or_default();
        let mut parts = request.split(' ');
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if method != "CONNECT" {
            client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")?;
            return Ok(());
        }
        state.targets.lock().unwrap().push(target.to_string());
        let Some(required) = state.required.lock().unwrap().clone() else {
            break target.to_string();
        };
        let given = lines.find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("proxy-authorization")
                .then(|| value.trim().to_string())
        });
        if given.as_deref() == Some(required.as_str()) {
            break target.to_string();
        }
        client.write_all(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n",
        )?;
    };
    if !target.starts_with("127.0.0.1:") {
        client.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")?;
        return Ok(());
    }
    let upstream = match TcpStream::connect(&target) {
        Ok(s) => s,
        Err(_) => {
            client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")?;
            return Ok(());
        }
    };
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    let (mut c2, mut u2) = (client.try_clone()?, upstream.try_clone()?);
    let up = thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut u2);
        let _ = u2.shutdown(std::net::Shutdown::Write);
    });
    let (mut u, mut c) = (upstream, client);
    let _ = std::io::copy(&mut u, &mut c);
    let _ = c.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
    Ok(())
}
