//! A private repository over `git http-backend` behind basic auth: with credentials from the
//! netrc in HOME (as the go command's git reads them) or from `direct.credentials` (sent as
//! an extra header, never on a command line), and without credentials a clear authentication
//! error, not a hang; secrets never in an error.

use std::sync::atomic::Ordering;
use std::time::Duration;

use gomod::ModulePath;
use gomodproxy_vcs::{CredentialConfig, Direct, Secret, VcsError};

use crate::support::oracle::{compare, crate_download};
use crate::support::{Env, PRIVATE_PASSWORD, PRIVATE_USER};

const MODULE: &str = "github.com/acmeprivate/secret";

fn fixture(env: &Env) {
    let r = env.private_repo("secret");
    r.write("go.mod", format!("module {MODULE}\n\ngo 1.22\n"))
        .write("s.go", "package secret\n");
    r.commit("one");
    r.tag("v1.0.0");
    r.write("t.go", "package secret\n");
    r.commit("two");
    r.tag_annotated("v1.1.0");
    r.write("u.go", "package secret\n");
    r.commit("three");
    r.push();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_from_netrc_and_from_config() {
    let env = Env::new();
    fixture(&env);

    // HOME's .netrc, read by git (curl), as for the go command.
    let direct = env.direct();
    let with_netrc = compare(
        &env,
        &direct,
        MODULE,
        &["v1.0.0", "v1.1.0", "latest", "main"],
    )
    .await;
    assert!(with_netrc.iter().all(Result::is_ok));

    // A HOME without netrc and a configured credential for the server.
    let mut config = env.direct_config("private-token");
    config.home = Some(env.dir("empty-home"));
    config.netrc = None;
    config.credentials = vec![CredentialConfig {
        host: format!("http://127.0.0.1:{}/", env.private.port),
        username: PRIVATE_USER.into(),
        token: Some(Secret::new(PRIVATE_PASSWORD)),
        token_file: None,
    }];
    let direct = Direct::new(config).unwrap();
    for (i, q) in ["v1.0.0", "v1.1.0", "latest", "main"].iter().enumerate() {
        let got = crate_download(&direct, MODULE, q).await.unwrap();
        assert_eq!(&got, with_netrc[i].as_ref().unwrap());
    }
    // The token file form.
    let token_file = env.root.path().join("token");
    std::fs::write(&token_file, format!("{PRIVATE_PASSWORD}\n")).unwrap();
    let mut config = env.direct_config("private-token-file");
    config.home = Some(env.dir("empty-home2"));
    config.netrc = None;
    config.credentials = vec![CredentialConfig {
        host: format!("http://127.0.0.1:{}", env.private.port),
        username: PRIVATE_USER.into(),
        token: None,
        token_file: Some(token_file),
    }];
    let direct = Direct::new(config).unwrap();
    assert!(crate_download(&direct, MODULE, "v1.0.0").await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_credentials_are_a_clear_auth_error() {
    let env = Env::new();
    fixture(&env);
    let path = ModulePath::parse(MODULE).unwrap();

    for (cache, token) in [
        ("no-creds", None),
        ("bad-creds", Some("wrong-password-123")),
    ] {
        let mut config = env.direct_config(cache);
        config.home = Some(env.dir(&format!("{cache}-home")));
        config.netrc = None;
        config.git_timeout = Duration::from_secs(60);
        if let Some(t) = token {
            config.credentials = vec![CredentialConfig {
                host: format!("http://127.0.0.1:{}/", env.private.port),
                username: PRIVATE_USER.into(),
                token: Some(Secret::new(t)),
                token_file: None,
            }];
        }
        let direct = Direct::new(config).unwrap();
        let refused = env.private.refused.load(Ordering::Relaxed);
        let err = direct.info(&path, "v1.0.0").await.unwrap_err();
        // Not a timeout: git was told not to prompt.
        assert!(matches!(err, VcsError::Auth { .. }), "{cache}: {err:?}");
        let text = err.to_string();
        assert!(text.contains("authentication"), "{text}");
        assert!(
            !text.contains(PRIVATE_PASSWORD) && !text.contains("wrong-password-123"),
            "{text}"
        );
        assert!(env.private.refused.load(Ordering::Relaxed) > refused);
        assert!(
            direct
                .list(&path)
                .await
                .unwrap_err()
                .to_string()
                .contains("authentication")
        );
    }
    // The go command without the netrc fails too.
    std::fs::remove_file(env.home.join(".netrc")).unwrap();
    assert!(env.go_download(MODULE, "v1.0.0").is_err());
}
