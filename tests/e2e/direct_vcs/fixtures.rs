//! The fixture repositories of the judge, one per shape the issue names, and the queries each
//! is asked: every tag, branches, commits (full and short), `latest`, and queries that must
//! fail. Repositories are built once per test process, in the shared world.

use gomodproxy_test_support::git::{GitWorld, Repo};

/// One module and what is asked of it.
#[derive(Debug, Clone)]
pub struct Case {
    /// The module path.
    pub module: String,
    /// `go mod download` queries.
    pub queries: Vec<String>,
}

fn case(module: &str, queries: &[&str]) -> Case {
    Case {
        module: module.to_string(),
        queries: queries.iter().map(|q| q.to_string()).collect(),
    }
}

/// The module dependencies of the fixture app: `go get` arguments. Every one is a module
/// version that builds (the app imports its root package).
pub const APP_DEPENDENCIES: &[&str] = &[
    "github.com/acme/widget@v1.1.0",
    "github.com/acme/widget/v2@v2.1.0",
    "github.com/acme/majorbranch/v2@v2.0.0",
    "github.com/acme/mono@main",
    "github.com/acme/mono/sub@v1.1.0",
    "github.com/acme/legacy@v2.1.0+incompatible",
    "github.com/acme/nested@v1.0.0",
    "github.com/acme/nested/inner@v1.0.0",
    "github.com/acme/vendor123@v1.0.0",
    "github.com/acme/vendor124@v1.0.0",
    "github.com/acme/attrs@v1.0.0",
    "github.com/acme/links@v1.0.0",
    "github.com/acme/collide@v1.1.0",
    "github.com/acme/retract@v1.1.0",
    "github.com/acme/moved@v1.0.0",
    "vanity.test/lib@v1.0.0",
    "github.com/acmeprivate/secret@v1.1.0",
    // From the public upstream, verified against the checksum database.
    "example.com/lib@v1.1.0",
];

/// Builds every repository in `world`; returns the judge's cases, in groups (one test each).
pub fn build(world: &GitWorld) -> Vec<Vec<Case>> {
    vec![
        root_module(world),
        majors_and_subdirectories(world),
        zip_contents(world),
        retractions_vanity_private(world),
    ]
}

/// Root module through v0 and v1: lightweight and annotated tags, a non-semver tag, a
/// shorthand tag, a prerelease, build metadata, branches with and without a base tag, commits;
/// and its v2 in a `/v2` directory.
fn root_module(world: &GitWorld) -> Vec<Case> {
    const GO_MOD: &str = "module github.com/acme/widget\n\ngo 1.21\n";
    let r = world.repo("widget");
    r.write("go.mod", GO_MOD)
        .write("widget.go", "package widget\n");
    let first = r.commit("first");
    r.tag("v0.1.0");
    r.write("widget.go", "package widget\n\nconst V = 1\n");
    let c1 = r.commit("v1");
    r.tag("v1.0.0").tag("release-2023");
    r.write("more.go", "package widget\n\nfunc More() {}\n");
    r.commit("more");
    r.tag_annotated("v1.1.0");
    r.tag("v1.2"); // shorthand: not a version tag
    r.write("pre.go", "package widget\n");
    r.commit("pre");
    r.tag("v1.2.0-rc.1");
    r.write("meta.go", "package widget\n");
    r.commit("meta");
    r.tag("v1.3.0+build.5"); // build metadata: not listed, only a pseudo-version base
    r.write("v2/go.mod", "module github.com/acme/widget/v2\n\ngo 1.21\n")
        .write("v2/widget.go", "package widget // v2\n");
    r.commit("v2 in a directory");
    r.tag("v2.0.0");
    r.write("v2/extra.go", "package widget\n");
    r.commit("v2.1");
    r.tag_annotated("v2.1.0");
    r.write("head.go", "package widget\n");
    let head = r.commit("head");
    // A branch off v1.0.0 (base v1.0.0), and one with no tag in its history.
    r.git(&["checkout", "-q", "-b", "feature", &c1]);
    r.write("feature.go", "package widget\n");
    let feature = r.commit("feature");
    r.git(&["checkout", "-q", "--orphan", "fresh"]);
    r.write("go.mod", GO_MOD)
        .write("fresh.go", "package widget\n");
    r.commit("fresh start");
    r.checkout("main");
    r.push();
    vec![
        case(
            "github.com/acme/widget",
            &[
                "v0.1.0",
                "v1.0.0",
                "v1.1.0",
                "v1.2.0-rc.1",
                "v1.3.0+build.5",
                "v1.2",
                "latest",
                "main",
                "feature",
                "fresh",
                "release-2023",
                &head[..7],
                &head,
                &first,
                &feature,
                &c1[..12],
                "v2.0.0+incompatible",
                "v9.9.9",
                "nosuchbranch",
            ],
        ),
        case(
            "github.com/acme/widget/v2",
            &["v2.0.0", "v2.1.0", "latest", "main", &head, "v1.0.0", "v2"],
        ),
    ]
}

/// v2 on a major branch, a submodule with `sub/vX` tags and the LICENSE only at the root,
/// `+incompatible` versions of a repository without go.mod.
fn majors_and_subdirectories(world: &GitWorld) -> Vec<Case> {
    let r = world.repo("majorbranch");
    r.write("go.mod", "module github.com/acme/majorbranch\n\ngo 1.20\n")
        .write("a.go", "package a\n");
    r.commit("v1");
    r.tag("v1.0.0");
    r.new_branch("v2");
    r.write(
        "go.mod",
        "module github.com/acme/majorbranch/v2\n\ngo 1.21\n",
    );
    r.commit("v2 layout");
    r.tag("v2.0.0");
    r.write("c.go", "package a\n");
    let v2head = r.commit("v2 work");
    r.checkout("main");
    r.write("d.go", "package a\n");
    r.commit("main work");
    r.push();

    let m = world.repo("mono");
    m.write("go.mod", "module github.com/acme/mono\n\ngo 1.21\n")
        .write("mono.go", "package mono\n")
        .write("LICENSE", "Apache-2.0, root only\n")
        .write("sub/go.mod", "module github.com/acme/mono/sub\n\ngo 1.21\n")
        .write("sub/sub.go", "package sub\n");
    m.commit("both");
    m.tag("v1.0.0").tag("sub/v1.0.0");
    m.write("sub/more.go", "package sub\n");
    m.commit("sub work");
    m.tag_annotated("sub/v1.1.0");
    m.write("sub/pre.go", "package sub\n");
    m.commit("sub pre");
    m.tag("sub/v1.2.0-beta.1");
    m.write("mono2.go", "package mono\n");
    let mono_head = m.commit("root work");
    m.push();

    let l = world.repo("legacy");
    l.write("legacy.go", "package legacy\n");
    l.commit("v1");
    l.tag("v1.0.0");
    l.write("two.go", "package legacy\n");
    l.commit("v2");
    l.tag("v2.0.0");
    l.write("three.go", "package legacy\n");
    l.commit("v2.1");
    l.tag_annotated("v2.1.0");
    l.write("four.go", "package legacy\n");
    let legacy_head = l.commit("head");
    l.push();

    vec![
        case(
            "github.com/acme/majorbranch/v2",
            &["v2.0.0", "latest", "v2", &v2head, &v2head[..12], "main"],
        ),
        case(
            "github.com/acme/majorbranch",
            &["v1.0.0", "latest", "main", "v2.0.0"],
        ),
        case(
            "github.com/acme/mono/sub",
            &[
                "v1.0.0",
                "v1.1.0",
                "v1.2.0-beta.1",
                "latest",
                "main",
                &mono_head,
                "v2.0.0",
            ],
        ),
        case("github.com/acme/mono", &["v1.0.0", "latest", "main"]),
        case("github.com/acme/mono/nothere", &["latest", "v1.0.0"]),
        case(
            "github.com/acme/legacy",
            &[
                "v1.0.0",
                "v2.0.0+incompatible",
                "v2.1.0+incompatible",
                "v2.0.0",
                "latest",
                "main",
                &legacy_head,
            ],
        ),
    ]
}

fn vendor_tree(r: &Repo<'_>, go: &str, name: &str) {
    r.write(
        "go.mod",
        format!("module github.com/acme/{name}\n\ngo {go}\n"),
    )
    .write("lib.go", format!("package {name}\n"))
    .write("vendor/modules.txt", "# example.com/dep v1.0.0\n")
    .write("vendor/example.com/dep/dep.go", "package dep\n")
    .write("vendor/top.go", "package vendor\n")
    .write("pkg/vendor/direct.go", "package vendor\n")
    .write("pkg/vendor/sub/deep.go", "package sub\n")
    .write("pkg/vendorish/ok.go", "package vendorish\n");
}

/// What goes into the zip: nested modules, vendor directories under go 1.23 and 1.24 rules,
/// CRLF files and `.gitattributes` export rules, symbolic links, case-fold collisions.
fn zip_contents(world: &GitWorld) -> Vec<Case> {
    let n = world.repo("nested");
    n.write("go.mod", "module github.com/acme/nested\n\ngo 1.21\n")
        .write("a.go", "package nested\n")
        .write("inner/go.mod", "module github.com/acme/nested/inner\n")
        .write("inner/inner.go", "package inner\n")
        .write("deep/x/go.mod", "module github.com/acme/nested/deep/x\n")
        .write("deep/x/y/z.go", "package y\n")
        .write("deep/keep.go", "package deep\n")
        .write(".hg_archival.txt", "repo: x\n")
        .write("testdata/.hg/store", "ordinary files to x/mod\n");
    n.commit("tree");
    n.tag("v1.0.0").tag("inner/v1.0.0");
    n.push();

    for (name, go) in [("vendor123", "1.23"), ("vendor124", "1.24")] {
        let r = world.repo(name);
        vendor_tree(&r, go, name);
        r.commit("vendored");
        r.tag("v1.0.0");
        r.push();
    }

    let a = world.repo("attrs");
    a.write("go.mod", "module github.com/acme/attrs\n\ngo 1.21\n")
        .write("crlf.go", "package attrs\r\n\r\nconst A = 1\r\n")
        .write("conv.txt", "converted\nlines\n")
        .write("binary.bin", b"\x00\x01\r\n\x02")
        .write("ignored.txt", "export-ignore is turned off for module zips\n")
        .write("subst.txt", "$Format:%H$ is not substituted\n")
        .write(
            ".gitattributes",
            "ignored.txt export-ignore\nsubst.txt export-subst\nconv.txt text eol=crlf\n*.go -text\n",
        );
    a.commit("attributes");
    a.tag("v1.0.0");
    a.push();

    let s = world.repo("links");
    s.write("go.mod", "module github.com/acme/links\n")
        .write("real.go", "package links\n")
        .write("dir/f.go", "package dir\n")
        .symlink("real.go", "link.go")
        .symlink("dir", "dirlink")
        .symlink("/etc/passwd", "escape")
        .symlink("go.mod", "sub/go.mod");
    s.commit("links");
    s.tag("v1.0.0");
    s.push();

    let c = world.repo("collide");
    c.write("go.mod", "module github.com/acme/collide\n")
        .write("README", "upper\n")
        .write("readme", "lower\n");
    c.commit("collision");
    c.tag("v1.0.0");
    c.remove("readme");
    c.write("collide.go", "package collide\n")
        .write("vendor/x/A.go", "package x\n")
        .write("vendor/x/a.go", "package x\n");
    c.commit("collision only in vendor, which is left out");
    c.tag("v1.1.0");
    c.push();

    vec![
        case("github.com/acme/nested", &["v1.0.0", "latest"]),
        case("github.com/acme/nested/inner", &["v1.0.0"]),
        case("github.com/acme/nested/deep/x", &["latest"]),
        case("github.com/acme/vendor123", &["v1.0.0", "main"]),
        case("github.com/acme/vendor124", &["v1.0.0", "main"]),
        case("github.com/acme/attrs", &["v1.0.0", "main"]),
        case("github.com/acme/links", &["v1.0.0"]),
        case("github.com/acme/collide", &["v1.0.0", "v1.1.0", "latest"]),
    ]
}

fn meta(content: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head>\n<meta name=\"go-import\" content=\"{content}\">\n</head><body>go get</body></html>\n"
    )
}

/// Retractions, a vanity path through a go-import page (4-field subdirectory form too), a
/// private repository behind basic auth, and a tag that moved before the proxy first saw it.
fn retractions_vanity_private(world: &GitWorld) -> Vec<Case> {
    let r = world.repo("retract");
    r.write("go.mod", "module github.com/acme/retract\n\ngo 1.21\n")
        .write("a.go", "package a\n");
    r.commit("v1.0.0");
    r.tag("v1.0.0");
    r.write("b.go", "package a\n");
    r.commit("v1.1.0");
    r.tag("v1.1.0");
    r.write(
        "go.mod",
        "module github.com/acme/retract\n\ngo 1.21\n\nretract (\n\tv1.2.0 // oops\n\tv1.1.0\n)\n",
    );
    r.commit("v1.2.0 retracts itself");
    r.tag("v1.2.0");
    r.write("c.go", "package a\n");
    r.commit("after");
    r.push();

    let v = world.repo("vanity");
    v.write("go.mod", "module vanity.test/lib\n\ngo 1.21\n")
        .write("lib.go", "package lib\n")
        .write("tools/go.mod", "module vanity.test/tools\n")
        .write("tools/t.go", "package tools\n");
    v.commit("lib and tools");
    v.tag("v1.0.0").tag("tools/v0.3.0");
    v.write("lib2.go", "package lib\n");
    v.commit("more");
    v.push();
    let repo = "https://github.com/acme/vanity";
    world.meta.page(
        "vanity.test/lib",
        &meta(&format!("vanity.test/lib git {repo}")),
    );
    world.meta.page(
        "vanity.test/tools",
        &meta(&format!("vanity.test/tools git {repo} tools")),
    );

    let p = world.private_repo("secret");
    p.write(
        "go.mod",
        "module github.com/acmeprivate/secret\n\ngo 1.22\n",
    )
    .write("s.go", "package secret\n");
    p.commit("one");
    p.tag("v1.0.0");
    p.write("t.go", "package secret\n");
    p.commit("two");
    p.tag_annotated("v1.1.0");
    p.write("u.go", "package secret\n");
    p.commit("three");
    p.push();

    // Moved upstream before anyone fetched it: the proxy serves where the tag is now, as the
    // go command does (the moved-after-serving case is in the immutability test).
    let m = world.repo("moved");
    m.write("go.mod", "module github.com/acme/moved\n")
        .write("a.go", "package moved\n");
    m.commit("first");
    m.tag("v1.0.0");
    m.push();
    m.write("a.go", "package moved // moved\n");
    let second = m.commit("second");
    m.git(&["tag", "-f", "v1.0.0", &second]);
    m.push();

    vec![
        case(
            "github.com/acme/retract",
            &["latest", "v1.2.0", "v1.1.0", "main", "v1"],
        ),
        case("vanity.test/lib", &["v1.0.0", "latest", "main"]),
        case("vanity.test/tools", &["v0.3.0", "latest"]),
        case("vanity.test/nopage", &["latest"]),
        case(
            "github.com/acmeprivate/secret",
            &["v1.0.0", "v1.1.0", "latest", "main"],
        ),
        case("github.com/acme/moved", &["v1.0.0", "latest"]),
    ]
}
