//! Served versions never change: a tag moved or deleted upstream keeps its first commit
//! (logged and counted), across restarts; and the refs TTL keeps `list` off the network.

use std::time::Duration;

use gomod::{ModulePath, Version};
use gomodproxy_vcs::Direct;

use crate::support::Env;
use crate::support::oracle::{compare, crate_download};

const MODULE: &str = "github.com/acme/moving";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_tag_keeps_serving_the_commit_first_served() {
    let env = Env::new();
    let r = env.repo("moving");
    r.write("go.mod", format!("module {MODULE}\n"))
        .write("a.go", "package a\n");
    let first = r.commit("first");
    r.tag("v1.0.0").tag("v1.1.0");
    r.write("a.go", "package a // moved\n");
    let second = r.commit("second");
    r.push();

    let mut config = env.direct_config("moving-cache");
    config.refs_ttl = Duration::ZERO;
    let direct = Direct::new(config.clone()).unwrap();
    let before = compare(&env, &direct, MODULE, &["v1.0.0"]).await;
    let before = before[0].clone().unwrap();
    assert!(before.info.contains(&first));

    // Upstream moves v1.0.0 to another commit: the go command follows, the proxy does not.
    r.git(&["tag", "-f", "v1.0.0", &second]);
    r.push();
    let go_after = env.go_download(MODULE, "v1.0.0").unwrap();
    assert!(go_after.info.contains(&second), "{go_after:?}");
    let after = crate_download(&direct, MODULE, "v1.0.0").await.unwrap();
    assert_eq!(after, before);
    assert_eq!(direct.stats().moved_tags, 1);
    // Seen again: counted once.
    crate_download(&direct, MODULE, "v1.0.0").await.unwrap();
    assert_eq!(direct.stats().moved_tags, 1);

    // After a restart (same cache dir) too.
    let restarted = Direct::new(config.clone()).unwrap();
    assert_eq!(
        crate_download(&restarted, MODULE, "v1.0.0").await.unwrap(),
        before
    );
    assert_eq!(restarted.stats().moved_tags, 1);

    // A deleted tag stays listed and served once served; an unserved one just disappears.
    crate_download(&restarted, MODULE, "v1.1.0").await.unwrap();
    r.git(&["tag", "-d", "v1.0.0"]);
    r.git(&["tag", "-d", "v1.1.0"]);
    r.push();
    let path = ModulePath::parse(MODULE).unwrap();
    let list = restarted.list(&path).await.unwrap();
    assert_eq!(
        list,
        [
            Version::parse("v1.0.0").unwrap(),
            Version::parse("v1.1.0").unwrap()
        ]
    );
    assert_eq!(
        crate_download(&restarted, MODULE, "v1.0.0").await.unwrap(),
        before
    );
    assert!(restarted.stats().deleted_tags >= 1);
    assert!(env.go_download(MODULE, "v1.0.0").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_within_the_refs_ttl_runs_no_git() {
    let env = Env::new();
    let r = env.repo("ttl");
    r.write("go.mod", "module github.com/acme/ttl\n")
        .write("a.go", "package a\n");
    r.commit("one");
    r.tag("v1.0.0");
    r.push();
    let path = ModulePath::parse("github.com/acme/ttl").unwrap();

    let mut config = env.direct_config("ttl-cache");
    config.refs_ttl = Duration::from_secs(3600);
    let direct = Direct::new(config.clone()).unwrap();
    assert_eq!(direct.list(&path).await.unwrap().len(), 1);
    let git_runs = direct.stats().git_processes;
    assert_eq!(direct.stats().ls_remotes, 1);

    r.write("b.go", "package a\n");
    r.commit("two");
    r.tag("v1.1.0");
    r.push();
    for _ in 0..20 {
        assert_eq!(direct.list(&path).await.unwrap().len(), 1);
    }
    assert_eq!(
        direct.stats().git_processes,
        git_runs,
        "list ran git within the TTL"
    );

    // The refs survive a restart: still no network.
    let restarted = Direct::new(config).unwrap();
    assert_eq!(restarted.list(&path).await.unwrap().len(), 1);
    assert_eq!(restarted.stats().ls_remotes, 0);

    // With the TTL over, the new tag shows.
    let mut short = env.direct_config("ttl-cache");
    short.refs_ttl = Duration::ZERO;
    let fresh = Direct::new(short).unwrap();
    assert_eq!(fresh.list(&path).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_fetch() {
    let env = Env::new();
    let r = env.repo("popular");
    r.write("go.mod", "module github.com/acme/popular\n")
        .write("a.go", "package a\n");
    r.commit("one");
    r.tag("v1.0.0");
    r.push();
    let direct = env.direct();
    let path = ModulePath::parse("github.com/acme/popular").unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (d, p) = (direct.clone(), path.clone());
        tasks.push(tokio::spawn(async move { d.info(&p, "v1.0.0").await }));
    }
    let mut hashes = Vec::new();
    for t in tasks {
        hashes.push(t.await.unwrap().unwrap().hash);
    }
    hashes.dedup();
    assert_eq!(hashes.len(), 1);
    let stats = direct.stats();
    assert_eq!(stats.ls_remotes, 1, "{stats:?}");
    assert_eq!(stats.fetches, 1, "{stats:?}");
    assert_eq!(stats.full_fetches, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unused_mirrors_are_pruned_and_pins_kept() {
    let env = Env::new();
    let r = env.repo("pruned");
    r.write("go.mod", "module github.com/acme/pruned\n")
        .write("a.go", "package a\n");
    r.commit("one");
    r.tag("v1.0.0");
    r.push();
    let mut config = env.direct_config("prune-cache");
    config.prune_after = Duration::ZERO;
    let direct = Direct::new(config.clone()).unwrap();
    let before = crate_download(&direct, "github.com/acme/pruned", "v1.0.0")
        .await
        .unwrap();
    let mirrors = config.cache_dir.join("mirrors");
    assert_eq!(std::fs::read_dir(&mirrors).unwrap().count(), 1);
    assert_eq!(direct.prune_unused().await.unwrap(), 1);
    assert_eq!(std::fs::read_dir(&mirrors).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_dir(config.cache_dir.join("pins"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(direct.stats().pruned_mirrors, 1);
    // Used again, it is fetched again.
    let again = crate_download(&direct, "github.com/acme/pruned", "v1.0.0")
        .await
        .unwrap();
    assert_eq!(again, before);
}
