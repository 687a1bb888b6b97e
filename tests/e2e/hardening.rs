//! Issue 9, with the real binary and the real go command: answers the go command refuses are
//! refused and never stored; secrets never leave the process; a full disk is named; a crashed
//! process's temporary files do not pile up; store errors do not show server paths.

use std::path::Path;
use std::time::Duration;

use gomodproxy_tests::fixtures::{artifact_path, storage_rel_path};
use gomodproxy_tests::servers::PrivateRedis;
use gomodproxy_tests::sumdb::SumdbServer;
use gomodproxy_tests::util::{stored_files, wait_for};
use gomodproxy_tests::{Fault, Fixtures, Go, ProxyConfig, TestDir, Upstream};

const DEP: &str = "example.com/dep";
const V: &str = "v1.0.0";

/// A module that requires `requirement` (so `go get` loads its go.mod as the go command loads
/// a dependency's).
fn consumer(dir: &Path) -> std::path::PathBuf {
    let app = dir.join("consumer");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("go.mod"),
        "module test.example/consumer\n\ngo 1.21\n",
    )
    .unwrap();
    app
}

/// One answer the go command refuses, served by the upstream for `path`.
struct Refused {
    /// What is wrong, for messages.
    what: &'static str,
    /// The artifact's URL path (`/example.com/dep/@v/v1.0.0.mod`).
    path: String,
    /// Where the store would keep it (`example.com/dep/@v/v1.0.0.mod`).
    stored_as: String,
    /// What the upstream sends instead.
    body: Vec<u8>,
    /// What the go command says when it gets this answer straight from the upstream.
    go_says: &'static str,
    /// What the proxy's 502 says.
    we_say: &'static str,
    /// The go command to run: `get` or `download`.
    get: bool,
}

fn refused_cases() -> Vec<Refused> {
    let path = |ext| artifact_path(DEP, V, ext);
    let stored_as = |ext| storage_rel_path(DEP, V, ext);
    vec![
        Refused {
            what: "a .mod without a module line",
            path: path("mod"),
            stored_as: stored_as("mod"),
            body: b"go 1.16\n".to_vec(),
            go_says: "missing module line",
            we_say: "no module line",
            get: true,
        },
        Refused {
            what: "a .mod declaring another major version",
            path: path("mod"),
            stored_as: stored_as("mod"),
            body: b"module example.com/dep/v2\n\ngo 1.16\n".to_vec(),
            go_says: "module declares its path as: example.com/dep/v2",
            we_say: "cannot be a version of example.com/dep",
            get: true,
        },
        Refused {
            what: "an .info whose Origin is not an object",
            path: path("info"),
            stored_as: stored_as("info"),
            body: br#"{"Version":"v1.0.0","Time":"2023-01-02T03:04:05Z","Origin":"git"}"#.to_vec(),
            go_says: "invalid response from proxy",
            we_say: "Origin",
            get: false,
        },
    ]
}

fn run_go(go: &Go, dir: &Path, get: bool) -> gomodproxy_tests::go::GoOutput {
    let target = format!("{DEP}@{V}");
    if get {
        go.run(dir, &["get", &target])
    } else {
        go.run(dir, &["mod", "download", "-json", &target])
    }
}

#[test]
fn answers_the_go_command_refuses_are_refused_and_never_stored() {
    let fx = Fixtures::shared();
    let t = TestDir::new("refused-answers");
    let up = Upstream::start(fx.root());
    for (i, case) in refused_cases().into_iter().enumerate() {
        up.set_fault(&case.path, Fault::Body(case.body.clone()));
        // The go command itself, straight from the upstream: it refuses the answer.
        let direct = Go::new(&t.sub(&format!("direct-{i}")), &up.url());
        let app = consumer(&t.sub(&format!("direct-app-{i}")));
        let out = run_go(&direct, &app, case.get);
        let said = format!("{}{}", out.stdout, out.stderr);
        assert!(
            !out.success,
            "{}: the go command accepted it:\n{said}",
            case.what
        );
        assert!(
            said.contains(case.go_says),
            "{}: go said:\n{said}",
            case.what
        );

        // Through the proxy: a 502 that go prints, and nothing stored.
        let root = t.sub(&format!("store-{i}"));
        let proxy = ProxyConfig::new(&root, &up.url()).start(&t.sub(&format!("logs-{i}")));
        let go = Go::new(&t.sub(&format!("go-{i}")), &proxy.url());
        let app = consumer(&t.sub(&format!("app-{i}")));
        let out = run_go(&go, &app, case.get);
        let said = format!("{}{}", out.stdout, out.stderr);
        assert!(
            !out.success,
            "{}: accepted through the proxy:\n{said}",
            case.what
        );
        assert!(said.contains("502"), "{}: go said:\n{said}", case.what);
        assert!(
            said.contains(case.we_say),
            "{}: go said:\n{said}",
            case.what
        );
        let rel = case.stored_as.clone();
        assert!(
            !stored_files(&root).iter().any(|(p, _)| *p == rel),
            "{}: stored {rel}: {:?}",
            case.what,
            stored_files(&root)
        );
        // The upstream repaired: the proxy fetches the good answer (nothing bad was cached).
        up.clear_fault(&case.path);
        let go = Go::new(&t.sub(&format!("go-fixed-{i}")), &proxy.url());
        let app = consumer(&t.sub(&format!("app-fixed-{i}")));
        run_go(&go, &app, case.get).assert_success();
    }
}

#[test]
fn a_mod_that_differs_from_its_zip_is_refused_and_dropped() {
    let fx = Fixtures::shared();
    let t = TestDir::new("mod-zip-disagree");
    let up = Upstream::start(fx.root());
    let sumdb = SumdbServer::with_fixtures("sum.test.example");
    let mod_path = artifact_path(DEP, V, "mod");
    let evil = b"module example.com/dep\n\ngo 1.16\n\nrequire example.com/evil v1.0.0\n".to_vec();
    up.set_fault(&mod_path, Fault::Body(evil));

    // The go command with its checksum database refuses the .mod outright.
    let direct = Go::new(&t.sub("direct"), &up.url()).env("GOSUMDB", &sumdb.gosumdb());
    let out = direct.run(
        &t.sub("direct"),
        &["mod", "download", "-json", &format!("{DEP}@{V}")],
    );
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(!out.success && said.contains("checksum mismatch"), "{said}");

    // A proxy that cannot check it (a private module: no checksum database) finds the .mod
    // and the zip's go.mod disagree, refuses the zip and drops the .mod.
    let root = t.sub("store");
    let proxy = ProxyConfig::new(&root, &up.url()).start(&t.sub("logs"));
    let go = Go::new(&t.sub("go"), &proxy.url());
    let out = go.run(
        &t.sub("go"),
        &["mod", "download", "-json", &format!("{DEP}@{V}")],
    );
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(!out.success, "{said}");
    assert!(said.contains("go.mod hashes to"), "{said}");
    let stored: Vec<String> = stored_files(&root).into_iter().map(|(p, _)| p).collect();
    for ext in ["mod", "zip"] {
        let rel = storage_rel_path(DEP, V, ext);
        assert!(!stored.contains(&rel), "{rel} stored: {stored:?}");
    }
    up.clear_fault(&mod_path);
    let go = Go::new(&t.sub("go-fixed"), &proxy.url());
    go.run(
        &t.sub("go-fixed"),
        &["mod", "download", "-json", &format!("{DEP}@{V}")],
    )
    .assert_success();
}

/// Every secret of the session, each unique, so a leak is attributable.
const SECRETS: &[&str] = &[
    "upstreamPW1x",
    "sumdbPW2x",
    "redisPW3x",
    "lockPW4x",
    "s3Secret5x",
    "s3Token6x",
];

fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
    }
}

#[test]
fn secrets_never_appear_in_bodies_logs_or_config_check() {
    let fx = Fixtures::shared();
    let t = TestDir::new("secrets");
    let up = Upstream::start(fx.root());
    let sumdb = SumdbServer::with_fixtures("sum.test.example");
    // A Redis that needs its password: the store and the fetch locks authenticate with it.
    let redis = PrivateRedis::start_with_password(&t.sub("redis"), "redisPW3x");
    let authority = |url: String| url.trim_start_matches("http://").to_string();
    let upstream = format!("http://gmp:upstreamPW1x@{}", authority(up.url()));
    let sumdb_url = format!("http://gmp:sumdbPW2x@{}", authority(sumdb.url()));
    let redis_url = redis.url();
    assert!(redis_url.contains("redisPW3x"));
    let lock_url = format!("{redis_url}?db=0");
    let config = ProxyConfig::new(&t.sub("unused"), &upstream)
        .redis(&redis_url, "secrets-test:")
        .coordination(&lock_url, "secrets-lock:")
        .set("SUMDB__VERIFY", "true")
        .set("SUMDB__DATABASES", format!("{} {sumdb_url}", sumdb.vkey()))
        // Set but unused with this backend: still shown by config check, so still a secret.
        .set("STORAGE__S3__SECRET_ACCESS_KEY", "s3Secret5x")
        .set("STORAGE__S3__SESSION_TOKEN", "s3Token6x");

    // config check: every secret replaced.
    let check = config.run(&["config", "check"]);
    check.assert_success();
    assert_no_secret("config check", &check.stdout);
    assert_no_secret("config check stderr", &check.stderr);
    assert!(check.stdout.contains("***"), "{}", check.stdout);
    assert!(check.stdout.contains("<redacted>"), "{}", check.stdout);
    // A configuration error that quotes the upstream.
    let bad = config
        .clone()
        .set("UPSTREAM", format!("{upstream},ftp://other.example"))
        .run(&["config", "check"]);
    assert!(!bad.success);
    assert!(bad.stderr.contains("upstream"), "{}", bad.stderr);
    assert_no_secret("a config error", &bad.stderr);
    // The lock password in the query form only, as redis URLs allow.
    let query_form = config
        .clone()
        .set(
            "COORDINATION__REDIS_URL",
            "redis://127.0.0.1:1/0?pass=lockPW4x",
        )
        .run(&["config", "check"]);
    query_form.assert_success();
    assert_no_secret("config check (?pass=)", &query_form.stdout);

    // A scripted session: startup, a fetch, a 404, a 502, metrics, shutdown.
    let mut proxy = config.clone().start(&t.sub("logs"));
    let mut bodies = String::new();
    let good = artifact_path(DEP, V, "mod");
    let response = proxy.get(&good);
    assert_eq!(response.status, 200, "{}", response.text());
    for (path, status) in [
        ("/example.com/nothing/@v/v1.0.0.mod".to_string(), 404),
        ("/example.com/nothing/@v/list".to_string(), 404),
    ] {
        let r = proxy.get(&path);
        assert_eq!(r.status, status, "{path}: {}", r.text());
        bodies.push_str(&r.text());
    }
    up.set_fault(&artifact_path(DEP, "v1.1.0", "mod"), Fault::Status(500));
    let r = proxy.get(&artifact_path(DEP, "v1.1.0", "mod"));
    assert_eq!(r.status, 502, "{}", r.text());
    bodies.push_str(&r.text());
    assert!(r.text().contains("***@"), "{}", r.text());
    let r = proxy.get(&format!("/sumdb/{}/latest", sumdb.name()));
    bodies.push_str(&r.text());
    let r = proxy.get("/metrics");
    assert_eq!(r.status, 200);
    bodies.push_str(&r.text());
    assert!(proxy.stop(), "graceful stop");
    assert_no_secret("response bodies", &bodies);
    let logs = proxy.logs();
    assert!(logs.contains("fetched from upstream"), "{logs}");
    assert!(logs.contains("gomodproxy listening"), "{logs}");
    assert!(logs.contains("gomodproxy stopped"), "{logs}");
    assert_no_secret("the log", &logs);
}

/// A shell wrapper that runs the proxy with its store on a 1 MiB tmpfs of its own (a private
/// mount namespace under `unshare --user --map-root-user --mount`: no root needed), and fills
/// that tmpfs when the file `fill` appears. The proxy replaces the shell (`exec`), so killing it
/// kills the proxy.
fn tmpfs_wrapper(dir: &Path, store: &Path) -> std::path::PathBuf {
    let script = dir.join("on-tmpfs.sh");
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
set -e
mkdir -p {store}
mount -t tmpfs -o size=1m gomodproxy-test {store}
(
    i=0
    while [ ! -e {fill} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
    dd if=/dev/zero of={store}/filler bs=64k 2>/dev/null || true
    touch {filled}
) &
exec "$@"
"#,
            store = store.display(),
            fill = dir.join("fill").display(),
            filled = dir.join("filled").display(),
        ),
    )
    .unwrap();
    script
}

#[test]
fn readyz_on_a_full_disk_says_enospc() {
    let fx = Fixtures::shared();
    let t = TestDir::new("full-disk");
    let up = Upstream::start(fx.root());
    let store = t.sub("store");
    let script = tmpfs_wrapper(t.path(), &store);
    let proxy = ProxyConfig::new(&store, &up.url())
        .wrapped(&[
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            script.to_str().unwrap(),
        ])
        .start(&t.sub("logs"));
    let ready = proxy.get("/readyz");
    assert_eq!(ready.status, 200, "{}", ready.text());
    std::fs::write(t.path().join("fill"), b"").unwrap();
    wait_for("the tmpfs to fill", Duration::from_secs(20), || {
        t.path().join("filled").exists().then_some(())
    });
    let ready = proxy.get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(ready.text().contains("ENOSPC"), "{}", ready.text());
    assert!(
        !ready.text().contains(store.to_str().unwrap()),
        "{}",
        ready.text()
    );
}

#[test]
fn temp_files_of_killed_processes_do_not_pile_up() {
    // Issue 9: after kill -9 the temporary files stayed for an hour and piled up across
    // repeated crashes.
    let fx = Fixtures::shared();
    let t = TestDir::new("crash-leftovers");
    let up = Upstream::start(fx.root());
    let root = t.sub("store");
    let big = fx.get("example.com/big", "v1.0.0");
    let path = big.url_path("zip");
    let zip_rel = storage_rel_path("example.com/big", "v1.0.0", "zip");
    let temp_files = |root: &Path| -> Vec<String> {
        std::fs::read_dir(root.join(".tmp"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut killed_mid_save = 0;
    for round in 0..4 {
        let mut proxy = ProxyConfig::new(&root, &up.url()).start(&t.sub(&format!("logs-{round}")));
        // What earlier rounds' kills left was swept when this process started.
        assert_eq!(temp_files(&root), Vec::<String>::new(), "round {round}");
        let _ = std::fs::remove_file(root.join(&zip_rel));
        let addr = proxy.addr();
        let target = path.clone();
        let _client = std::thread::spawn(move || gomodproxy_tests::http::get(addr, &target));
        // Kill the moment the store's save is in progress (its temporary file exists).
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline
            && temp_files(&root).is_empty()
            && !root.join(&zip_rel).exists()
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        proxy.kill();
        if !temp_files(&root).is_empty() {
            killed_mid_save += 1;
        }
    }
    assert!(killed_mid_save > 0, "no round caught a save in progress");
    let _proxy = ProxyConfig::new(&root, &up.url()).start(&t.sub("logs-last"));
    assert_eq!(temp_files(&root), Vec::<String>::new());
}

#[test]
fn store_errors_are_words_without_server_paths() {
    let fx = Fixtures::shared();
    let t = TestDir::new("store-words");
    let up = Upstream::start(fx.root());
    let root = t.sub("store");
    let proxy = ProxyConfig::new(&root, &up.url()).start(&t.sub("logs"));
    // A directory where a stored file belongs: the store fails reading it.
    let rel = storage_rel_path(DEP, V, "mod");
    std::fs::create_dir_all(root.join(&rel)).unwrap();
    let r = proxy.get(&artifact_path(DEP, V, "mod"));
    assert_eq!(r.status, 503, "{}", r.text());
    let body = r.text();
    assert!(body.contains("storage failed for"), "{body}");
    assert!(!body.contains(root.to_str().unwrap()), "{body}");
    assert!(!body.contains("/tmp"), "{body}");
    // The detail is in the log.
    assert!(
        proxy.logs().contains(root.to_str().unwrap()),
        "{}",
        proxy.logs()
    );
}
