//! Nothing a repository, a go-import page or a query says can make git run a command, read
//! a local file, or take an argument as an option.

use gomod::ModulePath;
use gomodproxy_vcs::{Direct, RepoMapping, VcsError};

use crate::support::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_cannot_become_git_options() {
    let env = Env::new();
    let r = env.repo("opts");
    r.write("go.mod", "module github.com/acme/opts\n");
    r.commit("one");
    r.tag("v1.0.0");
    r.push();
    let marker = env.root.path().join("pwned");
    let direct = env.direct();
    let path = ModulePath::parse("github.com/acme/opts").unwrap();
    for q in [
        format!("--upload-pack=touch {}", marker.display()),
        "--output=/tmp/x".to_string(),
        "-h".to_string(),
        "HEAD~1".to_string(),
        "v1.0.0:go.mod".to_string(),
        "main^{tree}".to_string(),
        "a..b".to_string(),
    ] {
        let err = direct.info(&path, &q).await.unwrap_err();
        assert!(err.is_not_found(), "{q}: {err:?}");
    }
    assert!(!marker.exists());
    // Ordinary queries still work.
    assert_eq!(
        direct.info(&path, "v1.0.0").await.unwrap().version.as_str(),
        "v1.0.0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_and_command_transports_are_refused() {
    let env = Env::new();
    let marker = env.root.path().join("ran");
    let script = env.root.path().join("evil.sh");
    std::fs::write(&script, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&script).unwrap().permissions(),
        0o755,
    );
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&script)
        .status()
        .unwrap();

    let page = |content: &str| {
        format!("<html><head><meta name=\"go-import\" content=\"{content}\"></head></html>")
    };
    env.meta.page(
        "vanity.test/ext",
        &page(&format!("vanity.test/ext git ext::{}", script.display())),
    );
    env.meta.page(
        "vanity.test/file",
        &page(&format!(
            "vanity.test/file git file://{}",
            env.repos.display()
        )),
    );

    // A local-path insteadOf rule in the git configuration does not open the file transport.
    let r = env.repo("local");
    r.write("go.mod", "module github.com/localfs/local\n");
    r.commit("one");
    r.tag("v1.0.0");
    r.push();
    let mut cfg = std::fs::read_to_string(&env.gitconfig).unwrap();
    cfg.push_str(&format!(
        "[url \"{}/\"]\n\tinsteadOf = https://github.com/localfs/\n",
        env.repos.display()
    ));
    std::fs::write(&env.gitconfig, cfg).unwrap();

    let direct = Direct::new(env.direct_config("transports")).unwrap();
    for module in [
        "vanity.test/ext",
        "vanity.test/file",
        "github.com/localfs/local",
    ] {
        let err = direct
            .latest(&ModulePath::parse(module).unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                VcsError::Unsupported { .. } | VcsError::NotFound { .. }
            ),
            "{module}: {err:?}"
        );
    }
    assert!(!marker.exists(), "a transport ran a command");
    let err = direct
        .latest(&ModulePath::parse("github.com/localfs/local").unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not allowed"), "{err}");

    // A file:// repository in the configuration is refused at start.
    let mut config = env.direct_config("transports2");
    config.repos = vec![RepoMapping {
        pattern: "x.test/y".into(),
        url: "file:///etc".into(),
    }];
    assert!(Direct::new(config).is_err());
}
