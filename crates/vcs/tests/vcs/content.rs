//! What goes into the module zip: nested modules, vendor directories under go 1.23 and 1.24
//! rules, CRLF files and `.gitattributes` export rules, symbolic links, VCS directories,
//! case-fold collisions (the go command refuses the zip), and the synthesized go.mod.

use crate::support::Env;
use crate::support::oracle::{compare, zip_names};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_modules_are_left_out() {
    let env = Env::new();
    let r = env.repo("nested");
    r.write("go.mod", "module github.com/acme/nested\n\ngo 1.21\n")
        .write("a.go", "package nested\n")
        .write("inner/go.mod", "module github.com/acme/nested/inner\n")
        .write("inner/inner.go", "package inner\n")
        .write("deep/x/go.mod", "module github.com/acme/nested/deep/x\n")
        .write("deep/x/y/z.go", "package y\n")
        .write("deep/keep.go", "package deep\n")
        .write("odd/Go.Mod", "module whatever\n")
        .write("odd/file.go", "package odd\n")
        .write(".hg_archival.txt", "repo: x\n")
        .write(
            ".svn/entries",
            "svn leftovers are ordinary files to x/mod\n",
        )
        .write("testdata/.hg/store", "so are these\n");
    r.commit("tree");
    r.tag("v1.0.0").tag("inner/v1.0.0").tag("deep/x/v0.1.0");
    r.push();

    let direct = env.direct();
    compare(
        &env,
        &direct,
        "github.com/acme/nested",
        &["v1.0.0", "latest"],
    )
    .await;
    assert_eq!(
        zip_names(&direct, "github.com/acme/nested", "v1.0.0").await,
        [
            ".svn/entries",
            "a.go",
            "deep/keep.go",
            "go.mod",
            "testdata/.hg/store"
        ]
    );
    compare(&env, &direct, "github.com/acme/nested/inner", &["v1.0.0"]).await;
    compare(&env, &direct, "github.com/acme/nested/deep/x", &["v0.1.0"]).await;
}

fn vendor_tree(r: &crate::support::Repo<'_>, go: &str, name: &str) {
    r.write(
        "go.mod",
        format!("module github.com/acme/{name}\n\ngo {go}\n"),
    )
    .write("main.go", "package main\n")
    .write("vendor/modules.txt", "# example.com/dep v1.0.0\n")
    .write("vendor/example.com/dep/dep.go", "package dep\n")
    .write("vendor/top.go", "package vendor\n")
    .write("pkg/vendor/direct.go", "package vendor\n")
    .write("pkg/vendor/sub/deep.go", "package sub\n")
    .write("pkg/vendorish/ok.go", "package vendorish\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_directories_by_go_version() {
    let env = Env::new();
    let direct = env.direct();
    for (name, go) in [
        ("vendor123", "1.23"),
        ("vendor124", "1.24"),
        ("vendor1241", "1.24.1"),
        ("vendornogo", ""),
    ] {
        let r = env.repo(name);
        vendor_tree(&r, go, name);
        if go.is_empty() {
            r.write("go.mod", format!("module github.com/acme/{name}\n"));
        }
        r.commit("vendored");
        r.tag("v1.0.0");
        r.push();
        compare(
            &env,
            &direct,
            &format!("github.com/acme/{name}"),
            &["v1.0.0", "main"],
        )
        .await;
    }
    // What the two rule sets keep (the go command agreed above; this says what it is).
    let old_rules = [
        "go.mod",
        "main.go",
        "pkg/vendorish/ok.go",
        "vendor/modules.txt",
        "vendor/top.go",
    ];
    let new_rules = [
        "go.mod",
        "main.go",
        "pkg/vendor/direct.go",
        "pkg/vendorish/ok.go",
        "vendor/top.go",
    ];
    for (name, want) in [
        ("vendor123", &old_rules),
        ("vendornogo", &old_rules),
        ("vendor124", &new_rules),
        ("vendor1241", &new_rules),
    ] {
        let names = zip_names(&direct, &format!("github.com/acme/{name}"), "v1.0.0").await;
        assert_eq!(names, want.to_vec(), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_endings_and_export_attributes() {
    let env = Env::new();
    let r = env.repo("attrs");
    r.write("go.mod", "module github.com/acme/attrs\n\ngo 1.21\n")
        .write("crlf.go", "package attrs\r\n\r\nconst A = 1\r\n")
        .write("conv.txt", "converted\nlines\n")
        .write("binary.bin", b"\x00\x01\r\n\x02")
        .write("ignored.txt", "export-ignore is turned off for module zips\n")
        .write("subst.txt", "$Format:%H$ is not substituted\n")
        .write(
            ".gitattributes",
            "ignored.txt export-ignore\nsubst.txt export-subst\nconv.txt text eol=crlf\n*.go -text\n",
        );
    r.commit("attributes");
    r.tag("v1.0.0");
    r.push();
    let direct = env.direct();
    compare(&env, &direct, "github.com/acme/attrs", &["v1.0.0", "main"]).await;
    // export-ignore and export-subst are off; eol attributes still apply.
    let names = zip_names(&direct, "github.com/acme/attrs", "v1.0.0").await;
    assert!(names.contains(&"ignored.txt".to_string()), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symbolic_links_are_left_out() {
    let env = Env::new();
    let r = env.repo("links");
    r.write("go.mod", "module github.com/acme/links\n")
        .write("real.go", "package links\n")
        .write("dir/f.go", "package dir\n")
        .symlink("real.go", "link.go")
        .symlink("dir", "dirlink")
        .symlink("/etc/passwd", "escape")
        .symlink("go.mod", "sub/go.mod");
    r.commit("links");
    r.tag("v1.0.0");
    r.push();
    let direct = env.direct();
    compare(&env, &direct, "github.com/acme/links", &["v1.0.0"]).await;
    assert_eq!(
        zip_names(&direct, "github.com/acme/links", "v1.0.0").await,
        ["dir/f.go", "go.mod", "real.go"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_fold_collisions_fail_as_in_the_go_command() {
    let env = Env::new();
    let r = env.repo("collide");
    r.write("go.mod", "module github.com/acme/collide\n")
        .write("README", "upper\n")
        .write("readme", "lower\n");
    r.commit("collision");
    r.tag("v1.0.0");
    r.remove("readme");
    r.write("vendor/x/A.go", "package x\n")
        .write("vendor/x/a.go", "package x\n");
    r.commit("collision only in vendor, which is left out");
    r.tag("v1.1.0");
    r.push();
    let direct = env.direct();
    let results = compare(
        &env,
        &direct,
        "github.com/acme/collide",
        &["v1.0.0", "v1.1.0"],
    )
    .await;
    let err = results[0].as_ref().unwrap_err();
    assert!(
        err.contains("case-insensitive file name collision"),
        "{err}"
    );
    assert!(results[1].is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_without_go_mod_gets_a_synthesized_one() {
    let env = Env::new();
    let r = env.repo("nogomod");
    r.write("a.go", "package nogomod\n")
        .write("LICENSE", "MIT\n");
    r.commit("no go.mod");
    r.tag("v0.1.0").tag("v1.0.0");
    r.push();
    let direct = env.direct();
    compare(
        &env,
        &direct,
        "github.com/acme/nogomod",
        &["v0.1.0", "v1.0.0", "latest", "main"],
    )
    .await;
    let module = gomod::ModulePath::parse("github.com/acme/nogomod").unwrap();
    let go_mod = direct
        .go_mod(&module, &gomod::Version::parse("v1.0.0").unwrap())
        .await
        .unwrap();
    assert_eq!(&go_mod[..], b"module github.com/acme/nogomod\n");
}
