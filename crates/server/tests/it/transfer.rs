//! The binary's `export`, `import` and `verify`: exit codes and output on a tiny fs store.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::fixture::{INFO, go_mod, module_zip};

const M: &str = "example.com/m";
const V: &str = "v1.0.0";

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gomodproxy"))
        .args(args)
        .env_clear()
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A config file whose fs store is `root`. The test module has no checksum-database record, so
/// it is `private` (with `sumdb.verify` on, import refuses unproven public modules: issue 9).
fn config(dir: &Path, name: &str, root: &Path) -> String {
    let file = dir.join(name);
    std::fs::write(
        &file,
        format!(
            "private = [\"{M}\"]\n\n[storage.fs]\nroot = \"{}\"\n",
            root.display()
        ),
    )
    .unwrap();
    file.to_str().unwrap().to_string()
}

/// Writes one module version in GOPROXY layout under `root` (an fs store's layout).
fn write_module(root: &Path, info: &str) {
    let at_v = root.join(M).join("@v");
    std::fs::create_dir_all(&at_v).unwrap();
    let zip = module_zip(M, V);
    let h1 = gomod::check_zip(
        std::io::Cursor::new(&zip),
        &gomod::ModulePath::parse(M).unwrap(),
        &gomod::Version::parse(V).unwrap(),
        &gomod::ZipLimits::default(),
    )
    .unwrap()
    .h1;
    std::fs::write(at_v.join(format!("{V}.info")), info).unwrap();
    std::fs::write(at_v.join(format!("{V}.mod")), go_mod(M)).unwrap();
    std::fs::write(at_v.join(format!("{V}.zip")), zip).unwrap();
    std::fs::write(at_v.join(format!("{V}.ziphash")), h1).unwrap();
    std::fs::write(at_v.join("list"), format!("{V}\n")).unwrap();
}

#[test]
fn export_import_verify_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write_module(&src, INFO);
    let src_cfg = config(dir.path(), "src.toml", &src);
    let dst = dir.path().join("dst");
    let dst_cfg = config(dir.path(), "dst.toml", &dst);
    let bundle = dir.path().join("out.tar.zst");
    let bundle = bundle.to_str().unwrap();

    let out = run(&["export", bundle, "--config", &src_cfg], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("export: 5 objects"), "{stdout}");
    assert!(stdout.contains(bundle), "{stdout}");

    let out = run(&["import", bundle, "--config", &dst_cfg], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("import: 5 imported"), "{stdout}");
    assert!(stdout.contains("0 refused"), "{stdout}");
    for ext in ["info", "mod", "zip", "ziphash"] {
        let path = format!("{M}/@v/{V}.{ext}");
        assert_eq!(
            std::fs::read(dst.join(&path)).unwrap(),
            std::fs::read(src.join(&path)).unwrap(),
            "{path}"
        );
    }

    let out = run(&["import", bundle, "--config", &dst_cfg], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("0 imported (0 B), 5 already there"),
        "{}",
        text(&out.stdout)
    );

    let out = run(&["verify", "--config", &dst_cfg], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("1 zips"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).contains(": 0 problems"),
        "{}",
        text(&out.stdout)
    );

    // A zip damaged in the store: verify names it and fails.
    let zip = dst.join(format!("{M}/@v/{V}.zip"));
    std::fs::write(&zip, b"PK\x03\x04 not a zip").unwrap();
    let out = run(&["verify", "--config", &dst_cfg], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(": 1 problems"),
        "{}",
        text(&out.stdout)
    );
    let stderr = text(&out.stderr);
    // Rewritten in place with another length: the store's recorded length already tells it is
    // damaged (issue 9), before the zip is re-hashed.
    assert!(
        stderr.contains(&format!("verify: PROBLEM {M}/@v/{V}.zip: "))
            && stderr.contains("is damaged: its file has 14 bytes"),
        "{stderr}"
    );
}

#[test]
fn unproven_public_modules_are_refused_by_import() {
    // Issue 9: a missing checksum record counted as a pass.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write_module(&src, &format!(r#"{{"Version":"{V}"}}"#));
    let dst = dir.path().join("dst");
    let file = dir.path().join("public.toml");
    std::fs::write(
        &file,
        format!("[storage.fs]\nroot = \"{}\"\n", dst.display()),
    )
    .unwrap();
    let out = run(
        &[
            "import",
            src.to_str().unwrap(),
            "--config",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    for ext in ["info", "mod", "zip"] {
        assert!(
            stderr.contains(&format!("import: REFUSED {M}/@v/{V}.{ext}: "))
                && stderr.contains("no checksum-database record proves"),
            "{stderr}"
        );
        assert!(!dst.join(format!("{M}/@v/{V}.{ext}")).exists());
    }
}

#[test]
fn a_refused_object_fails_the_import_and_stdin_stdout_work() {
    let dir = tempfile::tempdir().unwrap();
    // A GOPROXY-layout directory whose .info names another version.
    let bad = dir.path().join("bad");
    write_module(&bad, r#"{"Version":"v1.0.1"}"#);
    std::fs::write(bad.join(format!("{M}/@v/{V}.lock")), "").unwrap();
    let dst = dir.path().join("dst");
    let dst_cfg = config(dir.path(), "dst.toml", &dst);
    let out = run(
        &["import", bad.to_str().unwrap(), "--config", &dst_cfg],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("4 imported")
            && stdout.contains("1 refused")
            && stdout.contains("1 skipped"),
        "{stdout}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "import: REFUSED {M}/@v/{V}.info: info is for version v1.0.1 instead of the requested {V}"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("some objects were refused"), "{stderr}");
    assert!(!dst.join(format!("{M}/@v/{V}.info")).exists());

    // The store without that object, through a pipe: export to stdout, import from stdin.
    let other = dir.path().join("other");
    let other_cfg = config(dir.path(), "other.toml", &other);
    let out = run(&["export", "-", "--config", &dst_cfg, "--module", M], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("export: 4 objects"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["import", "-", "--config", &other_cfg], Some(&out.stdout));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("4 imported"),
        "{}",
        text(&out.stdout)
    );

    // A go.sum naming a version the store lacks: the bundle is written, the exit is 1.
    let go_sum = dir.path().join("go.sum");
    std::fs::write(
        &go_sum,
        format!("{M} v1.9.9/go.mod h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"),
    )
    .unwrap();
    let bundle = dir.path().join("partial.tar.zst");
    let out = run(
        &[
            "export",
            bundle.to_str().unwrap(),
            "--config",
            &dst_cfg,
            "--go-sum",
            go_sum.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("export: MISSING {M}/@v/v1.9.9.mod")),
        "{}",
        text(&out.stderr)
    );
    assert!(bundle.exists());
}
