//! Upstream faults: each one makes a zip request fail with 502 (504 for a timeout) and a
//! one-line reason, leaves nothing stored, and does not stick: once upstream behaves, the same
//! request succeeds with the right bytes.

use std::time::{Duration, Instant};

use gomodproxy_tests::fixtures::{self, storage_rel_path};
use gomodproxy_tests::util::stored_files;
use gomodproxy_tests::{Fault, Fixtures, ProxyConfig, TestDir, Upstream};

const MODULE: &str = "example.com/lib";
const VERSION: &str = "v1.0.0";
/// The proxy's zip size cap in these tests: above every small fixture zip, below the oversize one.
const MAX_ZIP: usize = 1 << 20;
const READ_TIMEOUT_SECS: u64 = 2;

/// Runs one fault case: `make_fault` gets the real zip bytes.
fn case(name: &str, make_fault: impl FnOnce(&[u8]) -> Fault, expected_status: u16) {
    let fx = Fixtures::shared();
    let t = TestDir::new(&format!("fault-{name}"));
    let up = Upstream::start(fx.root());
    let root = t.sub("storage");
    let proxy = ProxyConfig::new(&root, &up.url())
        .set("FETCH__READ_TIMEOUT", format!("{READ_TIMEOUT_SECS}s"))
        .set("FETCH__RETRIES", "0")
        .set("FETCH__MAX_ZIP_SIZE", MAX_ZIP.to_string())
        .start(&t.sub("logs"));
    let mv = fx.get(MODULE, VERSION);
    let path = mv.url_path("zip");
    let zip = fx.zip_bytes(MODULE, VERSION);
    assert!(
        zip.len() < MAX_ZIP,
        "fixture zip must fit under the test cap"
    );

    up.set_fault(&path, make_fault(&zip));
    let started = Instant::now();
    let r = proxy.get(&path);
    let took = started.elapsed();
    let reason = r.text();
    assert_eq!(
        r.status, expected_status,
        "{name}: expected {expected_status}, got {} with body {reason:?}",
        r.status
    );
    assert!(
        up.hits(&path) >= 1,
        "{name}: the proxy never asked upstream"
    );
    assert!(
        !reason.trim().is_empty() && !reason.trim().contains('\n'),
        "{name}: the reason must be one non-empty line, got {reason:?}"
    );
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{name}: error body must be text/plain, got {:?}",
        r.header("content-type")
    );
    assert!(
        took < Duration::from_secs(20),
        "{name}: the proxy took {took:?} to give up"
    );
    let zip_files: Vec<_> = stored_files(&root)
        .into_iter()
        .filter(|(p, _)| p.contains(".zip"))
        .collect();
    assert!(
        zip_files.is_empty(),
        "{name}: something was stored after a fault: {zip_files:?}"
    );
    eprintln!("{name}: {} in {took:?}: {}", r.status, reason.trim());

    up.clear_fault(&path);
    let r = proxy.get(&path);
    assert_eq!(
        r.status,
        200,
        "{name}: after the fault cleared: {}",
        r.text()
    );
    assert!(
        r.body == zip,
        "{name}: after the fault cleared, the proxy served other bytes"
    );
    let stored = root.join(storage_rel_path(MODULE, VERSION, "zip"));
    assert_eq!(
        std::fs::metadata(&stored).map(|m| m.len()).ok(),
        Some(zip.len() as u64),
        "{name}: the zip is not stored whole at {}",
        stored.display()
    );
}

#[test]
fn upstream_500() {
    case("status-500", |_| Fault::Status(500), 502);
}

#[test]
fn upstream_hangs_past_the_read_timeout() {
    case(
        "hang",
        |_| Fault::Hang(Duration::from_secs(READ_TIMEOUT_SECS * 10)),
        504,
    );
}

#[test]
fn truncated_body() {
    case(
        "truncate",
        |zip| Fault::Truncate {
            declared: zip.len() as u64,
            sent: zip.len() as u64 / 2,
        },
        502,
    );
}

#[test]
fn corrupt_zip() {
    case(
        "corrupt",
        |zip| Fault::Corrupt(fixtures::data_offsets(zip)),
        502,
    );
}

#[test]
fn oversize_zip() {
    case(
        "oversize",
        |_| Fault::Body(fixtures::oversize_zip(MODULE, VERSION, 2 * MAX_ZIP)),
        502,
    );
}

#[test]
fn oversize_zip_without_content_length() {
    // The size is known only while streaming: the cap must hold without a Content-Length.
    case(
        "oversize-chunked",
        |_| Fault::BodyChunked(fixtures::oversize_zip(MODULE, VERSION, 2 * MAX_ZIP)),
        502,
    );
}

#[test]
fn content_length_shorter_than_the_body() {
    case("wrong-content-length", |_| Fault::WrongContentLength, 502);
}
