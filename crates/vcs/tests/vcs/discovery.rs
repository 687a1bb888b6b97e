//! Repository discovery: vanity paths through go-import pages (the go command reaches the
//! pages through `HTTP_PROXY` with `GOINSECURE`, the crate through `direct.http_proxy` with
//! `direct.insecure`), the 4-field subdirectory form, the prefix re-check, the configured
//! repository map, other version control systems, and module-proxy (`mod`) entries.

use gomod::ModulePath;
use gomodproxy_vcs::{Direct, RepoMapping, VcsError};

use crate::support::Env;
use crate::support::oracle::{compare, crate_download};

fn meta(content: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head>\n<meta name=\"go-import\" content=\"{content}\">\n</head><body>go get</body></html>\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanity_paths_through_go_import_pages() {
    let env = Env::new();
    let r = env.repo("vanity");
    r.write("go.mod", "module vanity.test/lib\n\ngo 1.21\n")
        .write("lib.go", "package lib\n")
        .write("tools/go.mod", "module vanity.test/tools\n")
        .write("tools/t.go", "package tools\n");
    r.commit("lib and tools");
    r.tag("v1.0.0").tag("tools/v0.3.0");
    r.write("lib2.go", "package lib\n");
    r.commit("more");
    r.push();
    let repo = "https://github.com/acme/vanity";
    env.meta.page(
        "vanity.test/lib",
        &meta(&format!("vanity.test/lib git {repo}")),
    );
    // A package below the module answers with the module's tag (prefix re-check).
    env.meta.page(
        "vanity.test/lib/pkg",
        &meta(&format!("vanity.test/lib git {repo}")),
    );
    env.meta.page(
        "vanity.test/tools",
        &meta(&format!("vanity.test/tools git {repo} tools")),
    );
    // A page that claims a prefix whose own page disagrees.
    env.meta.page(
        "vanity.test/liar/x",
        &meta(&format!("vanity.test/liar git {repo}")),
    );
    env.meta.page(
        "vanity.test/liar",
        &meta("vanity.test/liar git https://github.com/acme/other"),
    );

    let direct = env.direct();
    compare(
        &env,
        &direct,
        "vanity.test/lib",
        &["v1.0.0", "latest", "main"],
    )
    .await;
    compare(
        &env,
        &direct,
        "vanity.test/tools",
        &["v0.3.0", "latest", "main"],
    )
    .await;
    compare(&env, &direct, "vanity.test/liar/x", &["latest"]).await;
    compare(&env, &direct, "vanity.test/nopage", &["latest", "v1.0.0"]).await;
    assert!(env.meta.gets.load(std::sync::atomic::Ordering::Relaxed) > 0);

    // The Origin names the repository from the page.
    let info = direct
        .info(&ModulePath::parse("vanity.test/tools").unwrap(), "v0.3.0")
        .await
        .unwrap();
    assert_eq!(info.origin.url, repo);
    assert_eq!(info.origin.subdir, "tools");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_version_control_systems_and_proxies_are_unsupported() {
    let env = Env::new();
    env.meta.page(
        "vanity.test/hg",
        &meta("vanity.test/hg hg https://hg.example.test/repo"),
    );
    env.meta.page(
        "vanity.test/viaproxy",
        &meta("vanity.test/viaproxy mod https://proxy.example.test"),
    );
    let direct = env.direct();
    for (module, want) in [
        ("vanity.test/hg", "Mercurial"),
        ("vanity.test/viaproxy", "module proxy"),
        ("chiselapp.com/user/kyle/repository/fossilgg", "Fossil"),
        ("example.test/repo.svn/sub", "Subversion"),
    ] {
        let err = direct
            .latest(&ModulePath::parse(module).unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(err, VcsError::Unsupported { .. }),
            "{module}: {err:?}"
        );
        assert!(err.to_string().contains(want), "{module}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_repository_map() {
    let env = Env::new();
    let r = env.repo("mapped");
    r.write("go.mod", "module corp.test/team/mapped\n")
        .write("a.go", "package a\n")
        .write("sub/go.mod", "module corp.test/team/mapped/sub\n")
        .write("sub/s.go", "package sub\n");
    r.commit("one");
    r.tag("v1.0.0").tag("sub/v1.0.0");
    r.push();
    let mut config = env.direct_config("mapped-cache");
    config.repos = vec![RepoMapping {
        pattern: "corp.test/*/*".into(),
        url: "https://github.com/acme/{rest}".into(),
    }];
    let direct = Direct::new(config).unwrap();
    // No page exists for corp.test: only the map can find it.
    let got = crate_download(&direct, "corp.test/team/mapped", "v1.0.0").await;
    assert!(
        got.is_err(),
        "team/mapped is not a repository name: {got:?}"
    );
    let mut config = env.direct_config("mapped-cache2");
    config.repos = vec![RepoMapping {
        pattern: "corp.test/team/mapped".into(),
        url: "https://github.com/acme/mapped".into(),
    }];
    let direct = Direct::new(config).unwrap();
    let root = crate_download(&direct, "corp.test/team/mapped", "v1.0.0")
        .await
        .unwrap();
    assert_eq!(root.version, "v1.0.0");
    let sub = crate_download(&direct, "corp.test/team/mapped/sub", "v1.0.0")
        .await
        .unwrap();
    assert_eq!(sub.version, "v1.0.0");
    assert_ne!(root.sum, sub.sum);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_path_dot_git_probes_schemes() {
    let env = Env::new();
    // `ping.example/pingme.git` is the repository `https://ping.example/pingme` (the suffix is
    // dropped), which an insteadOf rule sends to git daemon, for the go command and the crate.
    let mut cfg = std::fs::read_to_string(&env.gitconfig).unwrap();
    cfg.push_str(&format!(
        "[url \"git://127.0.0.1:{}/\"]\n\tinsteadOf = https://ping.example/\n",
        env.daemon_port
    ));
    std::fs::write(&env.gitconfig, cfg).unwrap();
    let r = env.repo("pingme");
    r.write("go.mod", "module ping.example/pingme.git/sub\n");
    r.write("sub/go.mod", "module ping.example/pingme.git/sub\n")
        .write("sub/a.go", "package sub\n");
    r.commit("one");
    r.tag("sub/v1.0.0");
    r.push();
    let direct = env.direct();
    compare(
        &env,
        &direct,
        "ping.example/pingme.git/sub",
        &["v1.0.0", "latest"],
    )
    .await;
    let info = direct
        .info(
            &ModulePath::parse("ping.example/pingme.git/sub").unwrap(),
            "v1.0.0",
        )
        .await
        .unwrap();
    assert_eq!(info.origin.url, "https://ping.example/pingme");
}
