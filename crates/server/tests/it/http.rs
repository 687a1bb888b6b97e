//! The HTTP application over a real `ProxyService` (in-memory store, `file://` upstream).

use std::io::Read;
use std::time::Duration;

use actix_web::HttpServer;
use actix_web::body::BodySize;
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use gomodproxy::http::app;
use gomodproxy_service::Mode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixture::{
    self, HELLO, INFO, LIST_TTL, UPPER, Upstream, V1, escape, go_mod, memory, module_zip,
};
use crate::{call, get};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn mutable() -> String {
    format!("public, max-age={}", LIST_TTL.as_secs())
}

fn url(module: &str, rest: &str) -> String {
    format!("/{}/{rest}", escape(module))
}

/// A plain-text, single-line, newline-terminated, short, printable error body.
fn assert_one_line_error(resp: &fixture::Resp, status: StatusCode, what: &str) {
    assert_eq!(resp.status, status, "{what}: {:?}", resp.text());
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; charset=utf-8"),
        "{what}"
    );
    let text = resp.text();
    assert!(text.ends_with('\n'), "{what}: {text:?}");
    assert_eq!(text.matches('\n').count(), 1, "{what}: {text:?}");
    assert!(text.len() <= 501, "{what}: {} bytes", text.len());
    assert!(
        text.trim_end().len() > 5,
        "{what}: reason missing: {text:?}"
    );
    assert!(
        text.trim_end().chars().all(|c| !c.is_control()),
        "{what}: {text:?}"
    );
}

#[actix_web::test]
async fn endpoints_status_content_type_and_cache_control() {
    let upstream = Upstream::new();
    let svc = test::init_service(app(fixture::state(&upstream, memory(), Mode::Online))).await;

    let r = get!(svc, url(HELLO, "@v/list"));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some(mutable().as_str()));
    assert_eq!(r.text().lines().collect::<Vec<_>>(), vec![V1]);

    let r = get!(svc, url(HELLO, "@latest"));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some(mutable().as_str()));
    let info: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(info["Version"], V1);

    let r = get!(svc, url(HELLO, "@v/v1.0.0.info"));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some(IMMUTABLE));
    let info: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let expected: serde_json::Value = serde_json::from_str(INFO).unwrap();
    assert_eq!(info["Version"], expected["Version"]);

    let r = get!(svc, url(HELLO, "@v/v1.0.0.mod"));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some(IMMUTABLE));
    assert_eq!(r.text(), go_mod(HELLO));

    let zip = module_zip(HELLO, V1);
    let r = get!(svc, url(HELLO, "@v/v1.0.0.zip"));
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("content-type"), Some("application/zip"));
    assert_eq!(r.header("cache-control"), Some(IMMUTABLE));
    assert_eq!(r.size, BodySize::Sized(zip.len() as u64));
    assert_eq!(r.body.as_ref(), zip.as_slice());
    assert!(r.header("etag").is_some(), "a stored zip has a validator");

    // Upper case in the module path travels escaped, as `!u` or as `%21u` (what go sends).
    let r = get!(svc, url(UPPER, "@v/v1.0.0.mod"));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.text(), go_mod(UPPER));
    let r = get!(svc, "/example.com/%21upper/hello/@v/v1.0.0.zip");
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.body.as_ref(), module_zip(UPPER, V1).as_slice());
}

#[actix_web::test]
async fn gzip_for_text_never_for_zips() {
    let upstream = Upstream::new();
    let svc = test::init_service(app(fixture::state(&upstream, memory(), Mode::Online))).await;

    let r = call!(
        svc,
        TestRequest::get()
            .uri(&url(HELLO, "@v/v1.0.0.mod"))
            .insert_header(("accept-encoding", "gzip"))
    );
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(r.body.as_ref())
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, go_mod(HELLO));
    // Gzip bytes are not the identity bytes: the validator becomes weak, and still matches.
    let weak = r.header("etag").expect("etag").to_string();
    assert!(weak.starts_with("W/\""), "{weak}");
    let plain = get!(svc, url(HELLO, "@v/v1.0.0.mod"));
    assert_eq!(plain.header("etag"), Some(&weak[2..]));
    let r = call!(
        svc,
        TestRequest::get()
            .uri(&url(HELLO, "@v/v1.0.0.mod"))
            .insert_header(("accept-encoding", "gzip"))
            .insert_header(("if-none-match", weak.as_str()))
    );
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);

    let zip = module_zip(HELLO, V1);
    let r = call!(
        svc,
        TestRequest::get()
            .uri(&url(HELLO, "@v/v1.0.0.zip"))
            .insert_header(("accept-encoding", "gzip"))
    );
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("content-encoding"),
        None,
        "zips are sent as they are"
    );
    assert_eq!(r.size, BodySize::Sized(zip.len() as u64));
    assert_eq!(r.body.as_ref(), zip.as_slice());

    let r = call!(
        svc,
        TestRequest::get()
            .uri(&url(HELLO, "@v/nope.zip"))
            .insert_header(("accept-encoding", "gzip"))
    );
    assert_eq!(
        r.header("content-encoding"),
        None,
        "error bodies stay readable"
    );
}

#[actix_web::test]
async fn head_has_headers_and_no_body() {
    let upstream = Upstream::new();
    let svc = test::init_service(app(fixture::state(&upstream, memory(), Mode::Online))).await;
    let zip = module_zip(HELLO, V1);
    for (path, ctype, len) in [
        (url(HELLO, "@v/v1.0.0.zip"), "application/zip", zip.len()),
        (
            url(HELLO, "@v/v1.0.0.mod"),
            "text/plain; charset=utf-8",
            go_mod(HELLO).len(),
        ),
        (
            url(HELLO, "@v/list"),
            "text/plain; charset=utf-8",
            V1.len() + 1,
        ),
    ] {
        let r = call!(
            svc,
            TestRequest::default()
                .method(actix_web::http::Method::HEAD)
                .uri(&path)
        );
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.header("content-type"), Some(ctype), "{path}");
        assert_eq!(r.size, BodySize::Sized(len as u64), "{path}");
        assert!(r.body.is_empty(), "{path}");
    }
    let r = call!(
        svc,
        TestRequest::default()
            .method(actix_web::http::Method::HEAD)
            .uri(&url(HELLO, "@v/v9.9.9.zip"))
    );
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn etag_and_if_none_match() {
    let upstream = Upstream::new();
    let svc = test::init_service(app(fixture::state(&upstream, memory(), Mode::Online))).await;
    let path = url(HELLO, "@v/v1.0.0.zip");
    let first = get!(svc, &path);
    assert_eq!(first.status, StatusCode::OK);
    let etag = first.header("etag").expect("ETag on a zip").to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "strong: {etag}"
    );

    for inm in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_string(),
    ] {
        let r = call!(
            svc,
            TestRequest::get()
                .uri(&path)
                .insert_header(("if-none-match", inm.as_str()))
        );
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "If-None-Match: {inm}");
        assert!(r.body.is_empty());
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        assert_eq!(r.header("cache-control"), Some(IMMUTABLE));
    }
    let r = call!(
        svc,
        TestRequest::get()
            .uri(&path)
            .insert_header(("if-none-match", "\"something-else\""))
    );
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, first.body);

    // The same bytes get the same validator on the next request.
    let again = get!(svc, &path);
    assert_eq!(again.header("etag"), Some(etag.as_str()));
}

#[actix_web::test]
async fn bad_input_is_400_with_a_one_line_reason() {
    let upstream = Upstream::new();
    let svc = test::init_service(app(fixture::state(&upstream, memory(), Mode::Online))).await;
    let long = format!("/example.com/{}/@v/list", "a".repeat(10 * 1024));
    let cases = [
        "/example.com/hello/../hello/@v/list",
        "/example.com/%2e%2e/hello/@v/list",
        "/example.com/hello/%2e%2e/@v/v1.0.0.zip",
        "/example.com%2Fhello/@v/list",
        "/example.com/hello%2f@v/list",
        "/example.com/Upper/hello/@v/list",
        "/example.com/hello/@v/V1.0.0.mod",
        "/example.com/!1upper/hello/@v/list",
        "/example.com/%211upper/hello/@v/list",
        "/example.com/hello!/@v/list",
        "/example.com/hello/@v/v1.0.0!.zip",
        "/example.com/hello/@v/not-a-version.zip",
        "/example.com/hello/@v/v1.0.mod",
        "/example.com/hel%00lo/@v/list",
        "/example.com/hello/@v/v1.0.0.exe",
        "/example.com/hello/@v/list%zz",
        long.as_str(),
    ];
    for path in cases {
        let r = get!(svc, path);
        let shown = &path[..path.len().min(80)];
        assert_one_line_error(&r, StatusCode::BAD_REQUEST, shown);
    }
}

#[actix_web::test]
async fn unknown_is_404_unconfigured_sumdb_too_and_methods_are_limited() {
    let upstream = Upstream::new();
    let svc = test::init_service(app(fixture::state(&upstream, memory(), Mode::Online))).await;

    for path in [
        "/example.com/nothere/@v/list".to_string(),
        "/example.com/nothere/@latest".to_string(),
        url(HELLO, "@v/v9.9.9.info"),
        url(HELLO, "@v/v9.9.9.mod"),
        url(HELLO, "@v/v9.9.9.zip"),
    ] {
        let r = get!(svc, &path);
        assert_one_line_error(&r, StatusCode::NOT_FOUND, &path);
    }

    // The default database is proxied; any other is not, so the go command goes direct.
    let r = get!(svc, "/sumdb/sum.golang.org/supported");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = get!(svc, "/sumdb/sum.example.org/supported");
    assert_one_line_error(&r, StatusCode::NOT_FOUND, "sumdb");
    assert_eq!(
        r.text(),
        "checksum database sum.example.org is not proxied here\n"
    );

    for path in [
        url(HELLO, "@v/list"),
        "/healthz".to_string(),
        "/readyz".to_string(),
    ] {
        let r = call!(svc, TestRequest::post().uri(&path));
        assert_one_line_error(&r, StatusCode::METHOD_NOT_ALLOWED, &path);
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }

    let r = get!(svc, "/healthz");
    assert_eq!((r.status, r.text()), (StatusCode::OK, "ok\n"));
    let r = get!(svc, "/readyz");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[actix_web::test]
async fn offline_serves_the_cache_and_explains_misses() {
    let upstream = Upstream::new();
    let storage = memory();
    let online = test::init_service(app(fixture::state(
        &upstream,
        storage.clone(),
        Mode::Online,
    )))
    .await;
    let zip_path = url(HELLO, "@v/v1.0.0.zip");
    assert_eq!(get!(online, &zip_path).status, StatusCode::OK);

    // The upstream disappears; offline mode must not need it.
    std::fs::remove_dir_all(upstream.path().join(escape(HELLO))).unwrap();
    let offline = test::init_service(app(fixture::state(&upstream, storage, Mode::Offline))).await;
    let r = get!(offline, &zip_path);
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_ref(), module_zip(HELLO, V1).as_slice());

    // UPPER is still upstream, but offline mode never looks there.
    let r = get!(offline, url(UPPER, "@v/v1.0.0.zip"));
    assert_one_line_error(&r, StatusCode::NOT_FOUND, "offline miss");
    let text = r.text();
    assert!(text.contains("offline"), "{text}");
    assert!(
        text.contains(UPPER) || text.contains(&escape(UPPER)),
        "{text}"
    );
}

/// Over a real socket: what actix's HTTP/1 encoder does with our HEAD and zip responses.
#[actix_web::test]
async fn over_the_wire() {
    let upstream = Upstream::new();
    let state = fixture::state(&upstream, memory(), Mode::Online);
    let server = HttpServer::new(move || app(state.clone()))
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    async fn exchange(addr: std::net::SocketAddr, method: &str, path: &str) -> (String, Vec<u8>) {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: proxy\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
        );
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut raw))
            .await
            .unwrap()
            .unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(raw[..split].to_vec())
            .unwrap()
            .to_ascii_lowercase();
        (head, raw[split + 4..].to_vec())
    }

    let zip = module_zip(HELLO, V1);
    let path = url(HELLO, "@v/v1.0.0.zip");
    let (head, body) = exchange(addr, "GET", &path).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", zip.len())),
        "{head}"
    );
    assert!(!head.contains("content-encoding"), "{head}");
    assert_eq!(body, zip);

    let (head, body) = exchange(addr, "HEAD", &path).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", zip.len())),
        "{head}"
    );
    assert!(body.is_empty());

    let (head, body) = exchange(addr, "GET", "/example.com/Upper/hello/@v/list").await;
    assert!(head.starts_with("http/1.1 400"), "{head}");
    assert!(
        head.contains("content-type: text/plain; charset=utf-8"),
        "{head}"
    );
    assert_eq!(body.iter().filter(|&&b| b == b'\n').count(), 1);

    handle.stop(true).await;
}
