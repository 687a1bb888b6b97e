//! The binary: `config check`, help, and startup failures.

use std::path::Path;
use std::process::{Command, Output};

use gomodproxy::config::Config;

fn gomodproxy(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gomodproxy"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn config_check_prints_toml_that_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.toml");
    std::fs::write(
        &file,
        "mode = \"offline\"\n[storage.fs]\nroot = \"/srv/cache\"\n",
    )
    .unwrap();
    let out = gomodproxy(
        &["config", "check", "--config", file.to_str().unwrap()],
        &[("GOMODPROXY_FETCH__RETRIES", "9")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let back = dir.path().join("out.toml");
    std::fs::write(&back, &printed).unwrap();
    let reloaded = Config::load(Some(&back), Vec::new()).unwrap();
    assert_eq!(reloaded.fetch.retries, 9);
    assert_eq!(reloaded.storage.fs.root, Path::new("/srv/cache"));
    assert_eq!(reloaded.mode, gomodproxy::config::Mode::Offline);
    let direct = Config::load(
        Some(&file),
        vec![("GOMODPROXY_FETCH__RETRIES".into(), "9".into())],
    )
    .unwrap();
    assert_eq!(reloaded, direct);
}

#[test]
fn config_check_errors_exit_2_and_name_the_key() {
    let out = gomodproxy(&["config", "check"], &[("GOMODPROXY_MODE", "sideways")]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("GOMODPROXY_MODE") && err.contains("sideways"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(out.stdout.is_empty());

    let out = gomodproxy(
        &["config", "check"],
        &[("GOMODPROXY_STORAGE__FS__ROOTT", "/x")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("storage.fs.roott"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn no_arguments_prints_help() {
    let out = gomodproxy(&[], &[]);
    assert!(!out.status.success());
    let help = text(&out.stderr) + &text(&out.stdout);
    assert!(help.contains("serve") && help.contains("config"), "{help}");
}

#[test]
fn serve_fails_clearly_on_a_bad_store() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let root = not_a_dir.to_str().unwrap();
    let out = gomodproxy(
        &["serve"],
        &[
            ("GOMODPROXY_STORAGE__FS__ROOT", root),
            ("GOMODPROXY_LISTEN", "127.0.0.1:0"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("storage.fs.root") && err.contains(root),
        "{err}"
    );
}

/// An upstream that answers one request after `delay`, so a proxy request can be in flight.
fn slow_upstream(delay: std::time::Duration) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            std::thread::sleep(delay);
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\nConnection: close\r\n\r\nv1.0.0\n",
            );
        }
    });
    addr
}

#[test]
fn serve_finishes_in_flight_requests_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::Stdio;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let upstream = slow_upstream(Duration::from_millis(1500));
    let mut child = Command::new(env!("CARGO_BIN_EXE_gomodproxy"))
        .arg("serve")
        .env_clear()
        .env("GOMODPROXY_STORAGE__FS__ROOT", &root)
        .env("GOMODPROXY_LISTEN", "127.0.0.1:0")
        .env("GOMODPROXY_UPSTREAM", format!("http://{upstream}"))
        .env("GOMODPROXY_FETCH__RETRIES", "0")
        .env("GOMODPROXY_SHUTDOWN_TIMEOUT", "10s")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut log = String::new();
    let startup = loop {
        let line = lines.next().expect("startup line").unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("listening on") {
            break line;
        }
    };
    assert!(startup.contains("mode=online"), "{startup}");
    assert!(startup.contains(root.to_str().unwrap()), "{startup}");
    assert!(startup.contains(&upstream.to_string()), "{startup}");
    let addr = startup
        .rsplit("listening on ")
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let addr: std::net::SocketAddr = addr.parse().unwrap();

    let client = std::thread::spawn(move || {
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        conn.write_all(
            b"GET /example.com/hello/@v/list HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).unwrap();
        response
    });
    // Let the request reach the slow upstream, then ask the server to stop.
    std::thread::sleep(Duration::from_millis(500));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    let response = client.join().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("v1.0.0\n"), "{response}");
    let exit = child.wait().unwrap();
    for line in lines {
        log.push_str(&line.unwrap());
        log.push('\n');
    }
    assert!(exit.success(), "{exit}\n{log}");
    assert!(log.contains("SIGTERM"), "{log}");
    // Stopping means no new connections are accepted.
    assert!(std::net::TcpStream::connect(addr).is_err());
}
