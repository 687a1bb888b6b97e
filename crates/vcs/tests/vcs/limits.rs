//! Bounds: git processes killed at the time limit, a cap on concurrent git processes (busy
//! when no slot frees in time), a repository size cap, and negative answers that need no
//! fetch when the tag list proves them.

use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use gomod::ModulePath;
use gomodproxy_vcs::{Direct, RepoMapping, VcsError};

use crate::support::Env;

/// A git:// server that accepts connections and never answers.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            let mut s2 = s.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while s2.read(&mut buf).is_ok_and(|n| n > 0) {}
            });
            held.push(s);
        }
    });
    port
}

fn hanging_config(env: &Env, cache: &str, port: u16) -> gomodproxy_vcs::DirectConfig {
    let mut config = env.direct_config(cache);
    config.allowed_protocols = vec!["git".into()];
    config.repos = vec![RepoMapping {
        pattern: "hang.test/*".into(),
        url: format!("git://127.0.0.1:{port}/{{rest}}"),
    }];
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_process_past_its_time_limit_is_killed() {
    let env = Env::new();
    let port = silent_server();
    let mut config = hanging_config(&env, "timeout", port);
    config.git_timeout = Duration::from_secs(2);
    let direct = Direct::new(config).unwrap();
    let started = Instant::now();
    let err = direct
        .list(&ModulePath::parse("hang.test/repo").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, VcsError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(err.to_string().contains("timed out after 2s"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_free_git_slot_is_busy() {
    let env = Env::new();
    let port = silent_server();
    let mut config = hanging_config(&env, "busy", port);
    config.git_timeout = Duration::from_secs(5);
    config.max_git_processes = 1;
    config.queue_timeout = Duration::from_millis(300);
    let direct = Direct::new(config).unwrap();
    let d = direct.clone();
    let first =
        tokio::spawn(async move { d.list(&ModulePath::parse("hang.test/one").unwrap()).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let err = direct
        .list(&ModulePath::parse("hang.test/two").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, VcsError::Busy { .. }), "{err:?}");
    assert!(matches!(
        first.await.unwrap(),
        Err(VcsError::Timeout { .. })
    ));
}

/// Incompressible bytes, deterministic.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_over_the_size_cap_is_refused_and_removed() {
    let env = Env::new();
    let r = env.repo("huge");
    r.write("go.mod", "module github.com/acme/huge\n")
        .write("blob.bin", noise(3 << 20, 7));
    r.commit("big");
    r.tag("v1.0.0");
    r.push();
    let mut config = env.direct_config("huge-cache");
    config.max_repo_size = 1 << 20;
    let direct = Direct::new(config.clone()).unwrap();
    let path = ModulePath::parse("github.com/acme/huge").unwrap();
    let err = direct.info(&path, "v1.0.0").await.unwrap_err();
    assert!(matches!(err, VcsError::TooLarge { .. }), "{err:?}");
    let mirrors = std::fs::read_dir(config.cache_dir.join("mirrors"))
        .unwrap()
        .count();
    assert_eq!(mirrors, 0, "the partial mirror was not removed");
    // Under a larger cap it works.
    config.max_repo_size = 64 << 20;
    let direct = Direct::new(config).unwrap();
    assert_eq!(
        direct.info(&path, "v1.0.0").await.unwrap().version.as_str(),
        "v1.0.0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_the_tags_disprove_need_no_fetch() {
    let env = Env::new();
    let r = env.repo("big");
    r.write("go.mod", "module github.com/acme/big\n")
        .write("blob.bin", noise(2 << 20, 11));
    r.commit("big");
    r.tag("v1.0.0");
    r.push();
    let direct = env.direct();
    for (module, query) in [
        ("github.com/acme/big/nothere", "v1.0.0"),
        ("github.com/acme/big", "v9.0.0"),
        ("github.com/acme/big/v2", "v2.0.0"),
        ("github.com/acme/nosuchrepo", "v1.0.0"),
    ] {
        let err = direct
            .info(&ModulePath::parse(module).unwrap(), query)
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{module}@{query}: {err:?}");
    }
    let stats = direct.stats();
    assert_eq!((stats.fetches, stats.full_fetches), (0, 0), "{stats:?}");
    assert_eq!(
        direct
            .list(&ModulePath::parse("github.com/acme/big/nothere").unwrap())
            .await
            .unwrap(),
        []
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_that_is_not_a_module_costs_no_file_download() {
    let env = Env::new();
    let r = env.repo("huge2");
    r.write("go.mod", "module github.com/acme/huge2\n")
        .write("blob.bin", noise(4 << 20, 3))
        .write("tool/go.mod", "module github.com/acme/huge2/tool\n")
        .write("tool/t.go", "package tool\n");
    r.commit("big");
    r.tag("v1.0.0");
    r.push();
    // Servers such as GitHub and GitLab honour partial-clone filters; git daemon does when
    // told to.
    env.git(&r.bare, &["config", "uploadpack.allowFilter", "true"]);

    let mut config = env.direct_config("probe-cache");
    config.max_repo_size = 1 << 20; // a fetch of the files would fail
    let direct = Direct::new(config.clone()).unwrap();
    for module in [
        "github.com/acme/huge2/nothere",
        "github.com/acme/huge2/nothere/v2",
    ] {
        let err = direct
            .latest(&ModulePath::parse(module).unwrap())
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{module}: {err:?}");
    }
    let stats = direct.stats();
    assert_eq!(
        (stats.probes, stats.fetches, stats.full_fetches),
        (2, 0, 0),
        "{stats:?}"
    );
    assert!(
        env.go_download("github.com/acme/huge2/nothere", "latest")
            .is_err()
    );

    // A module in a subdirectory without tags is found by the probe, then fetched as usual.
    let mut config = env.direct_config("probe-cache2");
    config.max_repo_size = 64 << 20;
    let direct = Direct::new(config).unwrap();
    crate::support::oracle::compare(&env, &direct, "github.com/acme/huge2/tool", &["latest"]).await;
    assert_eq!(direct.stats().probes, 1);
}
