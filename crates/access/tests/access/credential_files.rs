//! Loading the user, token and groups files.

use gomodproxy_access::{AccessError, AuthConfig, Authentication, Authenticator, IdentityKind};

use crate::*;

fn load(htpasswd: &str) -> Result<Authenticator, AccessError> {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "htpasswd", htpasswd);
    Authenticator::new(&AuthConfig {
        htpasswd_file: Some(path),
        ..AuthConfig::default()
    })
}

#[test]
fn htpasswd_bcrypt_and_argon2_hashes_verify() {
    let file =
        format!("# users\n\n{ALICE_BCRYPT}\r\n{BOB_BCRYPT_COLON_PASSWORD}\n{GINA_ARGON2ID}\n");
    let auth = load(&file).unwrap();
    assert_eq!(auth.summary().users, 3);
    let client = ip("192.0.2.1");
    for (user, password) in [
        ("alice", "alice-pw"),
        ("bob", "bob:pw"),
        ("gina", "gina-pw"),
    ] {
        match auth.authenticate_blocking(Some(&basic(user, password)), client) {
            Authentication::Authenticated(id) => {
                assert_eq!(id.name(), user);
                assert_eq!(id.kind(), IdentityKind::User);
            }
            other => panic!("{user}: {other:?}"),
        }
    }
    assert!(matches!(
        auth.authenticate_blocking(Some(&basic("alice", "wrong")), client),
        Authentication::Failed(_)
    ));
}

#[test]
fn bcrypt_2a_and_2b_prefixes_and_the_crate_s_own_hashes() {
    let hash_2y = gomodproxy_access::hash_password(b"s3cret", 4).unwrap();
    assert!(hash_2y.starts_with("$2y$04$"), "{hash_2y}");
    let rest = &hash_2y[4..];
    let file = format!("y:{hash_2y}\na:$2a${rest}\nb:$2b${rest}\n");
    let auth = load(&file).unwrap();
    for user in ["y", "a", "b"] {
        assert!(
            matches!(
                auth.authenticate_blocking(Some(&basic(user, "s3cret")), ip("192.0.2.1")),
                Authentication::Authenticated(_)
            ),
            "{user}"
        );
    }
}

#[test]
fn weak_schemes_are_refused_naming_the_line_and_user_not_the_hash() {
    for (line, user, hash_part, scheme) in [
        (CAROL_APR1, "carol", "lgRe7sJ0", "apr1-MD5"),
        (DAVE_SHA, "dave", "uE1+cBGm", "{SHA}"),
        (ERIN_CRYPT, "erin", "ISFijSY5I", "DES"),
        (FRANK_PLAIN, "frank", "frank-pw", "plaintext"),
        ("hank:$6$salt$abcdef", "hank", "abcdef", "crypt(3)"),
    ] {
        let file = format!("{ALICE_BCRYPT}\n# comment\n{line}\n");
        let err = load(&file).unwrap_err().to_string();
        assert!(err.contains(":3: "), "{err}");
        assert!(err.contains(user) && err.contains(scheme), "{err}");
        assert!(!err.contains(hash_part), "the error quotes the hash: {err}");
    }
}

#[test]
fn malformed_and_duplicate_entries_are_refused() {
    for (file, needle) in [
        ("nocolon\n", ":1: expected user:hash"),
        (
            "a b:$2y$05$0Lv1O/gERvJHEEEn6ALBhOuqL2OJsb2bSbs7C8gvMqCTdbwaREy76\n",
            ":1: the user name",
        ),
        (
            &format!("{ALICE_BCRYPT}\n{ALICE_BCRYPT}\n") as &str,
            ":2: user alice is already defined on line 1",
        ),
        ("x:$2y$05$tooshort\n", "malformed bcrypt"),
        (
            "x:$2y$31$0Lv1O/gERvJHEEEn6ALBhOuqL2OJsb2bSbs7C8gvMqCTdbwaREy76\n",
            "bcrypt cost 31",
        ),
        (
            "x:$argon2id$v=19$m=1048576,t=2,p=1$c29tZXNhbHQxMjM0NTY3OA$lTBMSt3NKespIf/0pLj3mDd7YNyW1+FkB1SsvE42H5I\n",
            "argon2 cost",
        ),
    ] {
        let err = load(file).unwrap_err().to_string();
        assert!(err.contains(needle), "{file:?}: {err}");
    }
}

#[test]
fn tokens_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let ci = gomodproxy_access::generate_token();
    let text = String::from_utf8(ci.expose().to_vec()).unwrap();
    assert!(text.starts_with("gmp_") && text.len() == 4 + 43, "{text}");
    let tokens = write(
        dir.path(),
        "tokens",
        &format!(
            "# name:sha256:hex\n{}\n",
            gomodproxy_access::token_file_line("ci-bot", &ci).unwrap()
        ),
    );
    let users = write(dir.path(), "htpasswd", &format!("{ALICE_BCRYPT}\n"));
    let groups = write(
        dir.path(),
        "groups",
        "dev: alice ci-bot\nrelease: ci-bot\n# more\ndev: nobody-yet\n",
    );
    let auth = Authenticator::new(&AuthConfig {
        htpasswd_file: Some(users),
        tokens_file: Some(tokens),
        groups_file: Some(groups),
        ..AuthConfig::default()
    })
    .unwrap();
    let summary = auth.summary();
    assert_eq!((summary.users, summary.tokens, summary.groups), (1, 1, 2));
    match auth.authenticate_blocking(Some(&format!("Bearer {text}")), ip("192.0.2.1")) {
        Authentication::Authenticated(id) => {
            assert_eq!(id.name(), "ci-bot");
            assert_eq!(id.kind(), IdentityKind::Token);
            assert!(id.in_group("dev") && id.in_group("release"));
        }
        other => panic!("{other:?}"),
    }
    match auth.authenticate_blocking(Some(&basic("alice", "alice-pw")), ip("192.0.2.1")) {
        Authentication::Authenticated(id) => {
            assert_eq!(id.groups().collect::<Vec<_>>(), ["dev"]);
        }
        other => panic!("{other:?}"),
    }
    let wrong = gomodproxy_access::generate_token();
    let wrong = String::from_utf8(wrong.expose().to_vec()).unwrap();
    assert!(matches!(
        auth.authenticate_blocking(Some(&format!("Bearer {wrong}")), ip("192.0.2.1")),
        Authentication::Failed(gomodproxy_access::AuthFailure::InvalidToken)
    ));
}

#[test]
fn bad_token_files() {
    let dir = tempfile::tempdir().unwrap();
    let digest = "a".repeat(64);
    for (text, needle) in [
        ("ci:deadbeef".to_string(), ":1: expected name:sha256"),
        (format!("ci:md5:{digest}"), "only sha256"),
        ("ci:sha256:abc".to_string(), "not 64 hex digits"),
        (
            format!("ci:sha256:{digest}\nci:sha256:{}", "b".repeat(64)),
            ":2: token ci is already defined",
        ),
        (
            format!("a:sha256:{digest}\nb:sha256:{digest}"),
            ":2: token b has the same digest",
        ),
        (format!("alice:sha256:{digest}"), "names must be unique"),
    ] {
        let tokens = write(dir.path(), "tokens", &text);
        let users = write(dir.path(), "htpasswd", ALICE_BCRYPT);
        let err = Authenticator::new(&AuthConfig {
            htpasswd_file: Some(users),
            tokens_file: Some(tokens),
            ..AuthConfig::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains(needle), "{text}: {err}");
    }
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let err = Authenticator::new(&AuthConfig {
        htpasswd_file: Some("/nonexistent/htpasswd".into()),
        ..AuthConfig::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("/nonexistent/htpasswd: "), "{err}");
}
