//! The fixture upstream's faults do what the fault tests rely on, checked with the raw client
//! (no proxy involved).

use std::io::Read;
use std::time::{Duration, Instant};

use gomodproxy_tests::fixtures;
use gomodproxy_tests::http::get_with_timeout;
use gomodproxy_tests::{Fault, Fixtures, Upstream};

#[test]
fn upstream_faults_behave_as_documented() {
    let fx = Fixtures::shared();
    let up = Upstream::start(fx.root());
    let mv = fx.get("example.com/Upper/Case", "v1.0.0");
    let path = mv.url_path("zip");
    let zip = fx.zip_bytes(&mv.module, &mv.version);
    let t = Duration::from_secs(10);
    let get = |p: &str| get_with_timeout(up.addr(), p, t);

    // Normal, with `!` percent-encoded as go sends it.
    let r = get(&path.replace('!', "%21")).unwrap();
    assert_eq!((r.status, r.body == zip), (200, true));
    assert_eq!(
        r.header("content-length"),
        Some(zip.len().to_string().as_str())
    );
    assert_eq!(up.hits(&path), 1);
    assert_eq!(get("/example.com/nope/@v/list").unwrap().status, 404);
    assert_eq!(
        get("/example.com/lib/@v/../../lib/@v/list").unwrap().status,
        404
    );

    up.set_fault(&path, Fault::Status(500));
    assert_eq!(get(&path).unwrap().status, 500);

    up.set_fault(
        &path,
        Fault::Truncate {
            declared: zip.len() as u64,
            sent: 10,
        },
    );
    let e = get(&path).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");

    up.set_fault(&path, Fault::WrongContentLength);
    let r = get(&path).unwrap();
    assert_eq!(
        r.body,
        zip[..zip.len() / 2],
        "a client trusting Content-Length gets half"
    );

    up.set_fault(&path, Fault::Corrupt(fixtures::data_offsets(&zip)));
    let r = get(&path).unwrap();
    assert_eq!(r.body.len(), zip.len());
    assert_ne!(r.body, zip);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&r.body)).unwrap();
    let unreadable = (0..archive.len()).any(|i| {
        let mut f = archive.by_index(i).unwrap();
        let mut sink = Vec::new();
        f.read_to_end(&mut sink).is_err()
    });
    assert!(unreadable, "the corrupted zip still reads cleanly");

    up.set_fault(&path, Fault::Body(b"hello".to_vec()));
    assert_eq!(get(&path).unwrap().body, b"hello");

    up.set_fault(&path, Fault::BodyChunked(zip.clone()));
    let r = get(&path).unwrap();
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(r.body == zip, "chunked body differs");

    up.set_fault(&path, Fault::Hang(Duration::from_secs(5)));
    let e = get_with_timeout(up.addr(), &path, Duration::from_millis(500)).unwrap_err();
    assert!(matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));

    up.set_fault(
        &path,
        Fault::Throttle {
            bytes_per_sec: zip.len() as u64,
        },
    );
    let started = Instant::now();
    let r = get(&path).unwrap();
    assert!(r.body == zip && started.elapsed() >= Duration::from_millis(900));

    up.clear_fault(&path);
    up.set_global_fault(Some(Fault::Status(503)));
    assert_eq!(get("/example.com/lib/@v/list").unwrap().status, 503);
    up.set_global_fault(None);
    assert_eq!(get(&path).unwrap().status, 200);

    let addr = up.addr();
    up.stop();
    assert!(
        get_with_timeout(addr, "/", t).is_err(),
        "a stopped upstream still answers"
    );
}
