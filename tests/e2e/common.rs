//! Helpers shared by the topic modules.

use std::path::{Path, PathBuf};

use gomodproxy_tests::fixtures::{self, APP_EXPECTED_OUTPUT};
use gomodproxy_tests::{Fixtures, Go, Upstream};

/// The fixture app, written into `dir/app`.
pub fn app(dir: &Path) -> PathBuf {
    let app = dir.join("app");
    fixtures::write_app(&app).unwrap();
    app
}

/// `go mod download -json all` then `go build` of the app; runs the binary and checks that it
/// printed the identity of every module version it should have compiled in. Returns the
/// `go mod download -json` objects.
pub fn download_build_run(go: &Go, app: &Path) -> Vec<serde_json::Value> {
    let out = go.run(app, &["mod", "download", "-json", "all"]);
    out.assert_success();
    let downloads = parse_json_stream(&out.stdout);
    build_run(go, app);
    downloads
}

/// `go build` of the app, then runs it and checks its output.
pub fn build_run(go: &Go, app: &Path) {
    let exe = app.join("app.exe");
    let _ = std::fs::remove_file(&exe);
    go.run(app, &["build", "-o", exe.to_str().unwrap(), "."])
        .assert_success();
    let out = std::process::Command::new(&exe)
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success(), "app failed: {out:?}");
    // println writes to stderr.
    let printed = String::from_utf8_lossy(&out.stderr).to_string();
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(
        lines, APP_EXPECTED_OUTPUT,
        "the app compiled in other module versions"
    );
}

/// Splits the concatenated JSON objects that `go mod download -json` prints.
pub fn parse_json_stream(text: &str) -> Vec<serde_json::Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<serde_json::Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("bad go mod download -json output: {e}\n{text}"))
}

/// Checks every go.sum line against the oracle hash of the fixture bytes, and that go.sum has
/// the lines it must have. `full_graph`: the whole module graph was loaded (`go mod download
/// all`), so the graph-only versions have go.mod lines too; a plain `go build` of a go ≥ 1.17
/// main module loads the graph lazily and may skip them. Returns the parsed go.sum.
pub fn check_go_sum_against_fixtures(
    app: &Path,
    fx: &Fixtures,
    full_graph: bool,
) -> fixtures::GoSum {
    let text = std::fs::read_to_string(app.join("go.sum")).expect("go.sum written by go");
    let sum = fixtures::parse_go_sum(&text);
    for (module, version, h1) in &sum.zip {
        let zip = fx.zip_bytes(module, version);
        assert_eq!(h1, &fixtures::h1_zip(&zip), "zip h1 of {module}@{version}");
    }
    for (module, version, h1) in &sum.go_mod {
        let m = fx.mod_bytes(module, version);
        assert_eq!(
            h1,
            &fixtures::h1_go_mod(&m),
            "go.mod h1 of {module}@{version}"
        );
    }
    let has_zip = |m: &str, v: &str| sum.zip.iter().any(|(a, b, _)| a == m && b == v);
    let has_mod = |m: &str, v: &str| sum.go_mod.iter().any(|(a, b, _)| a == m && b == v);
    for (m, v) in [
        ("example.com/Upper/Case", "v1.0.0"),
        ("example.com/lib", "v1.1.0"),
        ("example.com/lib/v2", "v2.0.0"),
        ("example.com/dep", "v1.1.0"),
        ("example.com/old", "v2.0.0+incompatible"),
        ("example.com/pseudo", fixtures::PSEUDO_VERSION),
        ("example.com/big", "v1.0.0"),
    ] {
        assert!(
            has_zip(m, v),
            "go.sum lacks the zip line of {m}@{v}:\n{text}"
        );
        assert!(
            has_mod(m, v),
            "go.sum lacks the go.mod line of {m}@{v}:\n{text}"
        );
    }
    // Graph-only versions: their go.mod was needed, their zip was not.
    for (m, v) in [("example.com/dep", "v1.0.0"), ("example.com/lib", "v1.0.0")] {
        assert!(
            !full_graph || has_mod(m, v),
            "go.sum lacks the go.mod line of {m}@{v}:\n{text}"
        );
        assert!(
            !has_zip(m, v),
            "go.sum has a zip line for graph-only {m}@{v}:\n{text}"
        );
    }
    sum
}

/// The graph-only assertion on the upstream's counters: the go.mod of `dep v1.0.0` and
/// `lib v1.0.0` was fetched, their zips never were.
pub fn assert_graph_only(up: &Upstream, fx: &Fixtures) {
    for (m, v) in [("example.com/dep", "v1.0.0"), ("example.com/lib", "v1.0.0")] {
        let mv = fx.get(m, v);
        assert!(
            up.hits(&mv.url_path("mod")) >= 1,
            "{m}@{v}.mod never requested upstream; requests: {:?}",
            up.requests()
        );
        assert_eq!(
            up.hits(&mv.url_path("zip")),
            0,
            "{m}@{v}.zip was requested upstream though only its go.mod is needed"
        );
    }
}
