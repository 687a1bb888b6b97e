//! A root module through v0 and v1: lightweight and annotated tags, non-semver and
//! non-canonical tags, a prerelease, branches with and without a base tag, commit hashes.

use crate::support::Env;
use crate::support::oracle::compare;

const GO_MOD: &str = "module github.com/acme/widget\n\ngo 1.21\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_module_tags_branches_and_commits() {
    let env = Env::new();
    let r = env.repo("widget");
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

    let direct = env.direct();
    let short = &head[..7];
    compare(
        &env,
        &direct,
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
            short,
            &head,
            &first, // a tagged commit by hash
            &feature,
            &c1[..12],
            "v9.9.9", // no such tag
            "nosuchbranch",
        ],
    )
    .await;
}
