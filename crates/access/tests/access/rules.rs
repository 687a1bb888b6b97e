//! Access rules through [`AccessControl`], with real credentials.

use gomod::ModulePath;
use gomodproxy_access::{
    AccessConfig, AccessControl, AccessRuleConfig, AuthConfig, Decision, DefaultAccess,
};

use crate::*;

fn module(path: &str) -> ModulePath {
    ModulePath::parse(path).unwrap()
}

#[tokio::test]
async fn anonymous_public_private_by_group_and_refusals_that_reveal_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let auth = AuthConfig {
        htpasswd_file: Some(write(
            dir.path(),
            "htpasswd",
            &format!("{ALICE_BCRYPT}\n{GINA_ARGON2ID}\n"),
        )),
        groups_file: Some(write(dir.path(), "groups", "dev: alice\nrelease: gina\n")),
        metrics_require_auth: true,
        ..AuthConfig::default()
    };
    let access = AccessConfig {
        default: Some(DefaultAccess::Anonymous),
        rules: vec![
            AccessRuleConfig {
                modules: "*.corp.example.com".into(),
                groups: vec!["dev".into()],
                ..AccessRuleConfig::default()
            },
            AccessRuleConfig {
                modules: "github.com/acme/secret".into(),
                groups: vec!["release".into()],
                ..AccessRuleConfig::default()
            },
        ],
    };
    let control = AccessControl::new(&auth, &access).unwrap();
    let client = ip("192.0.2.1");
    let anonymous = control.authenticate(None, client).await;
    let alice = control
        .authenticate(Some(&basic("alice", "alice-pw")), client)
        .await;
    let gina = control
        .authenticate(Some(&basic("gina", "gina-pw")), client)
        .await;
    let public = module("golang.org/x/mod");
    let corp = module("git.corp.example.com/team/lib");
    let secret = module("github.com/acme/secret");
    // The same answer for an existing and an invented private module: the decision never
    // looks at storage.
    let invented = module("git.corp.example.com/does/not/exist");

    assert_eq!(
        control.authorize_module(&anonymous, &public),
        Decision::Allow
    );
    let refusal = control.authorize_module(&anonymous, &corp);
    assert_eq!(
        refusal,
        Decision::Unauthorized {
            reason: "authentication required".into()
        }
    );
    assert_eq!(control.authorize_module(&anonymous, &invented), refusal);
    assert_eq!(control.authorize_module(&alice, &corp), Decision::Allow);
    assert_eq!(control.authorize_module(&alice, &public), Decision::Allow);
    assert_eq!(
        control.authorize_module(&alice, &secret),
        Decision::Forbidden {
            reason: "user alice may not read this module".into()
        }
    );
    assert_eq!(control.authorize_module(&gina, &secret), Decision::Allow);
    assert!(matches!(
        control.authorize_module(&gina, &corp),
        Decision::Forbidden { .. }
    ));
    assert!(control.rules().is_public(public.as_str()));
    assert!(!control.rules().is_public(corp.as_str()));
    // /metrics with metrics_require_auth.
    assert!(matches!(
        control.authorize_metrics(&anonymous),
        Decision::Unauthorized { .. }
    ));
    assert_eq!(control.authorize_metrics(&alice), Decision::Allow);
    // A wrong password is refused even for a public module, with the reason go will print.
    let wrong = control
        .authenticate(Some(&basic("alice", "nope")), client)
        .await;
    assert_eq!(
        control.authorize_module(&wrong, &public),
        Decision::Unauthorized {
            reason: "invalid username or password".into()
        }
    );
    // An unknown user gets the same words as a wrong password.
    let unknown = control
        .authenticate(Some(&basic("mallory", "alice-pw")), client)
        .await;
    assert_eq!(
        control.authorize_module(&unknown, &public),
        control.authorize_module(&wrong, &public)
    );
}

#[test]
fn metrics_require_auth_needs_credentials() {
    let err = AccessControl::new(
        &AuthConfig {
            metrics_require_auth: true,
            ..AuthConfig::default()
        },
        &AccessConfig::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with("auth.metrics_require_auth:"),
        "{err}"
    );
}
