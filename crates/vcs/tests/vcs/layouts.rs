//! Major versions and repository layouts: a `/v2` directory, a major branch, gopkg.in `.vN`
//! paths, a module in a subdirectory with `sub/vX` tags and the LICENSE only at the root,
//! `+incompatible` versions of a repository without go.mod (and one whose v1 has a go.mod),
//! and retractions.

use crate::support::Env;
use crate::support::oracle::compare;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_in_a_directory() {
    let env = Env::new();
    let r = env.repo("multi");
    r.write("go.mod", "module github.com/acme/multi\n\ngo 1.20\n")
        .write("multi.go", "package multi\n")
        .write("LICENSE", "MIT\n");
    r.commit("v1");
    r.tag("v1.0.0");
    r.write("v2/go.mod", "module github.com/acme/multi/v2\n\ngo 1.21\n")
        .write("v2/multi.go", "package multi // v2\n");
    r.commit("add v2");
    r.tag("v2.0.0");
    r.write("v2/extra.go", "package multi\n");
    r.commit("v2.1");
    r.tag_annotated("v2.1.0");
    r.write("v2/later.go", "package multi\n");
    let head = r.commit("later");
    r.push();

    let direct = env.direct();
    compare(
        &env,
        &direct,
        "github.com/acme/multi/v2",
        &["v2.0.0", "v2.1.0", "latest", "main", &head, "v1.0.0", "v2"],
    )
    .await;
    // The v1 module in the same repository: v2 tags are not its versions.
    compare(
        &env,
        &direct,
        "github.com/acme/multi",
        &["v1.0.0", "latest", "main", "v2.0.0", "v2.0.0+incompatible"],
    )
    .await;
    // A v3 that does not exist.
    compare(
        &env,
        &direct,
        "github.com/acme/multi/v3",
        &["latest", "v3.0.0"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_on_a_major_branch() {
    let env = Env::new();
    let r = env.repo("majorbranch");
    r.write("go.mod", "module github.com/acme/majorbranch\n\ngo 1.20\n")
        .write("a.go", "package a\n");
    r.commit("v1");
    r.tag("v1.0.0");
    r.write("b.go", "package a\n");
    r.commit("v1.1");
    r.tag("v1.1.0");
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

    let direct = env.direct();
    compare(
        &env,
        &direct,
        "github.com/acme/majorbranch/v2",
        &["v2.0.0", "latest", "v2", &v2head, &v2head[..12], "main"],
    )
    .await;
    compare(
        &env,
        &direct,
        "github.com/acme/majorbranch",
        &["v1.1.0", "latest", "main", "v2.0.0"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submodule_with_prefixed_tags_and_root_license() {
    let env = Env::new();
    let r = env.repo("mono");
    r.write("go.mod", "module github.com/acme/mono\n\ngo 1.21\n")
        .write("mono.go", "package mono\n")
        .write("LICENSE", "Apache-2.0, root only\n")
        .write("sub/go.mod", "module github.com/acme/mono/sub\n\ngo 1.21\n")
        .write("sub/sub.go", "package sub\n");
    r.commit("both");
    r.tag("v1.0.0").tag("sub/v1.0.0");
    r.write("sub/more.go", "package sub\n");
    r.commit("sub work");
    r.tag_annotated("sub/v1.1.0");
    r.write("sub/pre.go", "package sub\n");
    r.commit("sub pre");
    r.tag("sub/v1.2.0-beta.1");
    r.write("mono2.go", "package mono\n");
    let head = r.commit("root work");
    // A second submodule with its own LICENSE.
    r.write("lic/go.mod", "module github.com/acme/mono/lic\n")
        .write("lic/LICENSE", "BSD, its own\n")
        .write("lic/lic.go", "package lic\n");
    r.commit("lic");
    r.tag("lic/v0.1.0");
    r.push();

    let direct = env.direct();
    compare(
        &env,
        &direct,
        "github.com/acme/mono/sub",
        &[
            "v1.0.0",
            "v1.1.0",
            "v1.2.0-beta.1",
            "latest",
            "main",
            &head,
            "v2.0.0",
        ],
    )
    .await;
    compare(
        &env,
        &direct,
        "github.com/acme/mono",
        &["v1.0.0", "latest", "main"],
    )
    .await;
    compare(
        &env,
        &direct,
        "github.com/acme/mono/lic",
        &["v0.1.0", "latest"],
    )
    .await;
    // A directory that is not a module.
    compare(
        &env,
        &direct,
        "github.com/acme/mono/nothere",
        &["latest", "v1.0.0", "main"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incompatible_versions_without_go_mod() {
    let env = Env::new();
    let r = env.repo("legacy");
    r.write("legacy.go", "package legacy\n");
    r.commit("v1");
    r.tag("v1.0.0");
    r.write("two.go", "package legacy\n");
    r.commit("v2");
    r.tag("v2.0.0");
    r.write("three.go", "package legacy\n");
    r.commit("v2.1");
    r.tag_annotated("v2.1.0");
    r.write("four.go", "package legacy\n");
    r.commit("v3");
    r.tag("v3.0.0");
    // v4 has a go.mod at v4/ (semantic import versioning in a directory): not +incompatible.
    r.write("v4/go.mod", "module github.com/acme/legacy/v4\n")
        .write("v4/x.go", "package legacy\n");
    r.commit("v4 dir");
    r.tag("v4.0.0");
    r.write("five.go", "package legacy\n");
    let head = r.commit("head");
    r.push();

    let direct = env.direct();
    compare(
        &env,
        &direct,
        "github.com/acme/legacy",
        &[
            "v1.0.0",
            "v2.0.0+incompatible",
            "v2.1.0+incompatible",
            "v2.0.0",
            "v3.0.0+incompatible",
            "v4.0.0+incompatible",
            "latest",
            "main",
            &head,
        ],
    )
    .await;
    compare(
        &env,
        &direct,
        "github.com/acme/legacy/v4",
        &["v4.0.0", "latest"],
    )
    .await;

    // The latest compatible version has a go.mod: higher majors are not listed as
    // +incompatible, though asking for one by name still resolves.
    let r = env.repo("legacy2");
    r.write("go.mod", "module github.com/acme/legacy2\n")
        .write("a.go", "package a\n");
    r.commit("v1");
    r.tag("v1.0.0");
    r.remove("go.mod");
    r.commit("drop go.mod");
    r.tag("v2.0.0");
    r.push();
    compare(
        &env,
        &direct,
        "github.com/acme/legacy2",
        &["v1.0.0", "v2.0.0+incompatible", "latest", "main"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retractions_shape_latest() {
    let env = Env::new();
    let r = env.repo("retract");
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

    let direct = env.direct();
    compare(
        &env,
        &direct,
        "github.com/acme/retract",
        &["latest", "v1.2.0", "v1.1.0", "main", "v1"],
    )
    .await;

    // Every release retracted: latest is the default branch's pseudo-version.
    let r = env.repo("allretracted");
    r.write(
        "go.mod",
        "module github.com/acme/allretracted\n\ngo 1.21\n\nretract [v1.0.0, v1.9.9]\n",
    )
    .write("a.go", "package a\n");
    r.commit("v1.0.0");
    r.tag("v1.0.0");
    r.write("b.go", "package a\n");
    r.commit("after");
    r.push();
    compare(
        &env,
        &direct,
        "github.com/acme/allretracted",
        &["latest", "v1.0.0", "main"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gopkg_in_major_versions() {
    let env = Env::new();
    let r = env.repo("gopkgfix");
    r.write("a.go", "package fixture\n");
    r.commit("v1");
    r.tag("v1.0.0");
    r.write("b.go", "package fixture\n");
    r.commit("v1.1");
    r.tag("v1.1.0");
    r.write("c.go", "package fixture // v2\n");
    r.commit("v2");
    r.tag("v2.0.0");
    r.write("go.mod", "module gopkg.in/fixture.v2\n");
    r.commit("v2 with go.mod");
    r.tag("v2.1.0");
    r.write("d.go", "package fixture\n");
    r.commit("head");
    r.push();
    for major in ["v1", "v2"] {
        // What gopkg.in's own pages say; here served by the loopback proxy.
        env.meta.page(
            &format!("gopkg.in/fixture.{major}"),
            &format!(
                "<html><head><meta name=\"go-import\" content=\"gopkg.in/fixture.{major} git https://github.com/acme/gopkgfix\"></head></html>"
            ),
        );
    }
    let direct = env.direct();
    compare(
        &env,
        &direct,
        "gopkg.in/fixture.v2",
        &["v2.0.0", "v2.1.0", "latest", "main", "v1.0.0"],
    )
    .await;
    compare(
        &env,
        &direct,
        "gopkg.in/fixture.v1",
        &["v1.0.0", "v1.1.0", "latest", "v2.0.0"],
    )
    .await;
}
