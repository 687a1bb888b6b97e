//! The policy file: checks through the typed API, reload, a bad file keeps the old policy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gomod::{ModulePath, Version};
use gomodproxy_access::{Policy, PolicyConfig};

use crate::*;

fn m(path: &str) -> ModulePath {
    ModulePath::parse(path).unwrap()
}

fn v(version: &str) -> Version {
    Version::parse(version).unwrap()
}

const FIRST: &str = r#"
[[deny]]
modules = "github.com/acme/lib"
versions = ">=v1.2.0,<v1.3.0"
reason = "known-bad release: corrupts data, use v1.3.1"
"#;

#[test]
fn check_reload_and_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "policy.toml", FIRST);
    let policy = Policy::new(&PolicyConfig {
        file: Some(path),
        watch_interval: Duration::ZERO,
    })
    .unwrap();
    let lib = m("github.com/acme/lib");
    assert_eq!(
        policy
            .check(&lib, Some(&v("v1.2.3")))
            .unwrap_err()
            .to_string(),
        "known-bad release: corrupts data, use v1.3.1"
    );
    assert!(policy.check(&lib, Some(&v("v1.3.1"))).is_ok());
    assert!(policy.check(&lib, None).is_ok());
    assert!(policy.check(&m("example.com/x"), None).is_ok());

    // Allow-list mode after a reload.
    write(
        dir.path(),
        "policy.toml",
        "[[allow]]\nmodules = \"github.com/acme\"\n",
    );
    assert!(policy.reload_if_changed());
    assert!(policy.current().is_allow_list());
    assert!(policy.check(&lib, Some(&v("v1.2.3"))).is_ok());
    assert_eq!(
        policy.check(&m("example.com/x"), None).unwrap_err().reason,
        "example.com/x is not in this proxy's allow-list"
    );

    // A broken file: reported, and the allow-list stays in force.
    write(dir.path(), "policy.toml", "[[allow]]\nmodules = 3\n");
    assert!(policy.reload().is_err());
    assert!(policy.check(&m("example.com/x"), None).is_err());
    assert!(policy.check(&lib, None).is_ok());
}

#[test]
fn no_file_allows_everything_and_a_missing_file_is_an_error() {
    let open = Policy::new(&PolicyConfig::default()).unwrap();
    assert!(open.check(&m("example.com/x"), Some(&v("v0.0.1"))).is_ok());
    assert!(open.reload().is_ok());
    let err = Policy::new(&PolicyConfig {
        file: Some("/nonexistent/policy.toml".into()),
        ..PolicyConfig::default()
    })
    .unwrap_err();
    assert!(
        err.to_string().starts_with("/nonexistent/policy.toml"),
        "{err}"
    );
}

#[test]
fn the_watcher_reloads_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "policy.toml", "");
    let policy = Arc::new(
        Policy::new(&PolicyConfig {
            file: Some(path),
            watch_interval: Duration::from_millis(10),
        })
        .unwrap(),
    );
    let _watcher = policy.watch().unwrap().expect("a watcher");
    write(dir.path(), "policy.toml", FIRST);
    let deadline = Instant::now() + Duration::from_secs(30);
    let lib = m("github.com/acme/lib");
    while policy.check(&lib, Some(&v("v1.2.0"))).is_ok() {
        assert!(Instant::now() < deadline, "the watcher never reloaded");
        std::thread::sleep(Duration::from_millis(5));
    }
}
