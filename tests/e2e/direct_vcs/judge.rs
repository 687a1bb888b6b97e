//! The judge, fixture group by fixture group, through the shared proxy; then the fixture app
//! built online through it and offline from its store.

use gomodproxy_test_support::git::GoVia;

use super::{build_and_run, judge_group, world};

fn group(index: usize) {
    let w = world();
    judge_group(w, &w.proxy.url(), &w.cases[index]);
}

#[test]
fn direct_root_module_tags_branches_commits_and_v2_directory() {
    group(0);
}

#[test]
fn direct_major_branch_submodules_and_incompatible() {
    group(1);
}

#[test]
fn direct_zip_contents_nested_vendor_attributes_links_collisions() {
    group(2);
    // The proxy refuses the colliding zip the way the go command does, and says why.
    let w = world();
    let out = w.client(&w.proxy.url(), &w.sub("go-collide")).run(
        w.sub("cwd").as_path(),
        &["mod", "download", "github.com/acme/collide@v1.0.0"],
    );
    assert!(!out.success, "{out:?}");
    assert!(out.stderr.contains("collision"), "{}", out.stderr);
}

#[test]
fn direct_retractions_vanity_paths_private_and_moved_tags() {
    group(3);
}

#[test]
fn direct_app_builds_online_then_offline_from_the_same_store() {
    let w = world();
    let app = w.app_copy();
    let online = w.client(&w.proxy.url(), &w.sub("go-online"));
    build_and_run(&online, &app);
    // Every line of go.sum is what GOPROXY=direct gives (the public module's is checked by
    // the checksum database through the proxy).
    let sum = std::fs::read_to_string(app.join("go.sum")).unwrap();
    let mut by_module: std::collections::BTreeMap<&str, Vec<(&str, &str, bool)>> =
        Default::default();
    for line in sum.lines() {
        let mut f = line.split_whitespace();
        let (module, version, h1) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        if module.starts_with("example.com/") {
            continue;
        }
        let (version, is_mod) = match version.strip_suffix("/go.mod") {
            Some(v) => (v, true),
            None => (version, false),
        };
        by_module
            .entry(module)
            .or_default()
            .push((version, h1, is_mod));
    }
    assert!(by_module.len() >= 16, "{sum}");
    let problems: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = by_module
            .iter()
            .map(|(module, lines)| {
                s.spawn(move || {
                    let versions: Vec<&str> = lines.iter().map(|l| l.0).collect();
                    let got = w.git.go_downloads_via(GoVia::Direct, module, &versions);
                    let mut problems = Vec::new();
                    for ((version, h1, is_mod), got) in lines.iter().zip(got) {
                        let want = got.map(|d| if *is_mod { d.go_mod_sum } else { d.sum });
                        if want.as_deref() != Ok(*h1) {
                            problems
                                .push(format!("{module} {version} {h1}: direct gives {want:?}"));
                        }
                    }
                    problems
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        problems.is_empty(),
        "go.sum differs from GOPROXY=direct:\n{}",
        problems.join("\n")
    );

    // The network goes: an offline proxy on the same store, a fresh module cache.
    let offline = w
        .config
        .clone()
        .set("MODE", "offline")
        .set("UPSTREAM", "")
        .start(&w.sub("logs-offline"));
    let go = w.client(&offline.url(), &w.sub("go-offline"));
    let app2 = w.app_copy();
    build_and_run(&go, &app2);
    assert_eq!(
        std::fs::read_to_string(app2.join("go.sum")).unwrap(),
        sum,
        "offline, go.sum changed"
    );
}
