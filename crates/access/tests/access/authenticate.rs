//! Authentication: the verification cache, rate limiting, reload (explicit, watched, under
//! concurrent readers), the async path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gomodproxy_access::clock::ManualClock;
use gomodproxy_access::{
    AuthConfig, AuthFailure, Authentication, Authenticator, RateLimitConfig, Step,
};

use crate::*;

fn config(dir: &Path, htpasswd: &str) -> AuthConfig {
    AuthConfig {
        htpasswd_file: Some(write(dir, "htpasswd", htpasswd)),
        ..AuthConfig::default()
    }
}

fn is_authenticated(a: &Authentication, name: &str) -> bool {
    matches!(a, Authentication::Authenticated(id) if id.name() == name)
}

#[test]
fn a_successful_verification_is_remembered_until_the_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new());
    let cfg = AuthConfig {
        cache_ttl: Duration::from_secs(60),
        ..config(dir.path(), ALICE_BCRYPT)
    };
    let auth = Authenticator::with_clock(&cfg, clock.clone()).unwrap();
    let header = basic("alice", "alice-pw");
    let client = ip("192.0.2.1");
    let Step::Verify(pending) = auth.begin(Some(&header), client) else {
        panic!("the first request must verify");
    };
    assert!(is_authenticated(&auth.finish(pending.run()), "alice"));
    match auth.begin(Some(&header), client) {
        Step::Done(a) => assert!(is_authenticated(&a, "alice")),
        Step::Verify(_) => panic!("the second request must hit the cache"),
    }
    // A wrong password is never answered from the cache.
    assert!(matches!(
        auth.begin(Some(&basic("alice", "alice-pw ")), client),
        Step::Verify(_)
    ));
    clock.advance(Duration::from_secs(61));
    assert!(matches!(auth.begin(Some(&header), client), Step::Verify(_)));
}

#[test]
fn failed_attempts_are_limited_per_address_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new());
    let cfg = AuthConfig {
        rate_limit: RateLimitConfig {
            burst: 3,
            refill_interval: Duration::from_secs(20),
            ..RateLimitConfig::default()
        },
        ..config(dir.path(), ALICE_BCRYPT)
    };
    let auth = Authenticator::with_clock(&cfg, clock.clone()).unwrap();
    let attacker = ip("203.0.113.9");
    let wrong = [
        basic("alice", "guess1"),
        basic("nobody", "guess2"),
        "Basic %%%".to_string(),
    ];
    for header in &wrong {
        assert!(
            matches!(
                auth.authenticate_blocking(Some(header), attacker),
                Authentication::Failed(_)
            ),
            "{header}"
        );
    }
    // Limited now: even the right password gets 429, so a right guess is not revealed.
    let right = basic("alice", "alice-pw");
    assert_eq!(
        auth.authenticate_blocking(Some(&right), attacker),
        Authentication::RateLimited {
            retry_after: Duration::from_secs(20)
        }
    );
    // Requests without credentials are not limited, and other addresses are unaffected.
    assert_eq!(
        auth.authenticate_blocking(None, attacker),
        Authentication::Anonymous
    );
    assert!(is_authenticated(
        &auth.authenticate_blocking(Some(&right), ip("192.0.2.1")),
        "alice"
    ));
    clock.advance(Duration::from_secs(20));
    assert!(is_authenticated(
        &auth.authenticate_blocking(Some(&right), attacker),
        "alice"
    ));
    // A success gives its attempt back: the one regained attempt is still there.
    assert!(matches!(
        auth.authenticate_blocking(Some(&basic("alice", "x")), attacker),
        Authentication::Failed(AuthFailure::InvalidPassword)
    ));
    assert!(matches!(
        auth.authenticate_blocking(Some(&basic("alice", "x")), attacker),
        Authentication::RateLimited { .. }
    ));
}

#[test]
fn reload_swaps_users_and_a_bad_file_keeps_the_previous_set() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), ALICE_BCRYPT);
    let auth = Authenticator::new(&cfg).unwrap();
    let client = ip("192.0.2.1");
    let alice = basic("alice", "alice-pw");
    let gina = basic("gina", "gina-pw");
    assert!(is_authenticated(
        &auth.authenticate_blocking(Some(&alice), client),
        "alice"
    ));
    assert!(!auth.reload_if_changed(), "nothing changed yet");

    // A broken file: the reload fails, names the line, and the previous set stays in force
    // (a wrong password still goes to verification against alice's hash).
    write(
        dir.path(),
        "htpasswd",
        &format!("{ALICE_BCRYPT}\n{CAROL_APR1}\n"),
    );
    let err = auth.reload().unwrap_err().to_string();
    assert!(err.contains(":2: user carol: apr1-MD5"), "{err}");
    assert!(matches!(
        auth.begin(Some(&basic("alice", "wrong")), client),
        Step::Verify(_)
    ));
    assert!(is_authenticated(
        &auth.authenticate_blocking(Some(&alice), client),
        "alice"
    ));

    // A good file replacing alice by gina: alice stops working at once, cache or not.
    write(dir.path(), "htpasswd", GINA_ARGON2ID);
    assert!(auth.reload_if_changed());
    assert_eq!(auth.summary().users, 1);
    assert!(matches!(
        auth.authenticate_blocking(Some(&alice), client),
        Authentication::Failed(AuthFailure::InvalidPassword)
    ));
    assert!(is_authenticated(
        &auth.authenticate_blocking(Some(&gina), client),
        "gina"
    ));
    assert!(!auth.reload_if_changed());
}

#[test]
fn the_watcher_reloads_a_changed_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AuthConfig {
        watch_interval: Duration::from_millis(10),
        ..config(dir.path(), ALICE_BCRYPT)
    };
    let auth = Arc::new(Authenticator::new(&cfg).unwrap());
    let _watcher = auth.watch().unwrap().expect("a watcher");
    write(
        dir.path(),
        "htpasswd",
        &format!("{ALICE_BCRYPT}\n{GINA_ARGON2ID}\n"),
    );
    // Wait for the watcher, bounded; no assertion on how long it took.
    let deadline = Instant::now() + Duration::from_secs(30);
    while auth.summary().users != 2 {
        assert!(Instant::now() < deadline, "the watcher never reloaded");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(is_authenticated(
        &auth.authenticate_blocking(Some(&basic("gina", "gina-pw")), ip("192.0.2.1")),
        "gina"
    ));
}

#[test]
fn reload_under_concurrent_readers() {
    let dir = tempfile::tempdir().unwrap();
    let one = gomodproxy_access::generate_token();
    let two = gomodproxy_access::generate_token();
    let line = |name, token| gomodproxy_access::token_file_line(name, token).unwrap();
    let users = write(dir.path(), "htpasswd", ALICE_BCRYPT);
    let tokens = write(dir.path(), "tokens", &line("one", &one));
    let cfg = AuthConfig {
        htpasswd_file: Some(users),
        tokens_file: Some(tokens),
        rate_limit: RateLimitConfig {
            enabled: false,
            ..RateLimitConfig::default()
        },
        ..AuthConfig::default()
    };
    let auth = Arc::new(Authenticator::new(&cfg).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let headers = Arc::new([
        (
            "one",
            format!(
                "Bearer {}",
                String::from_utf8(one.expose().to_vec()).unwrap()
            ),
        ),
        (
            "two",
            format!(
                "Bearer {}",
                String::from_utf8(two.expose().to_vec()).unwrap()
            ),
        ),
    ]);
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let (auth, stop, headers) = (auth.clone(), stop.clone(), headers.clone());
            std::thread::spawn(move || {
                let mut seen = [0u64; 2];
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let (name, header) = &headers[(i + r) % 2];
                    match auth.authenticate_blocking(Some(header), ip("192.0.2.1")) {
                        Authentication::Authenticated(id) => {
                            assert_eq!(id.name(), *name, "a token resolved to another identity");
                            seen[(i + r) % 2] += 1;
                        }
                        Authentication::Failed(AuthFailure::InvalidToken) => {}
                        other => panic!("unexpected {other:?}"),
                    }
                    i += 1;
                }
                seen
            })
        })
        .collect();
    for round in 0..200 {
        let (name, token) = if round % 2 == 0 {
            ("two", &two)
        } else {
            ("one", &one)
        };
        write(dir.path(), "tokens", &line(name, token));
        auth.reload().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = [0u64; 2];
    for reader in readers {
        let seen = reader.join().expect("a reader panicked");
        total[0] += seen[0];
        total[1] += seen[1];
    }
    // Round 199 wrote "one": exactly that state is in force now.
    let final_one = auth.authenticate_blocking(Some(&headers[0].1), ip("192.0.2.1"));
    assert!(is_authenticated(&final_one, "one"));
    assert!(matches!(
        auth.authenticate_blocking(Some(&headers[1].1), ip("192.0.2.1")),
        Authentication::Failed(_)
    ));
    assert!(total[0] + total[1] > 0, "the readers never authenticated");
}

#[test]
fn a_verification_racing_a_reload_is_not_cached_into_the_new_set() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), ALICE_BCRYPT);
    let auth = Authenticator::new(&cfg).unwrap();
    let client = ip("192.0.2.1");
    let header = basic("alice", "alice-pw");
    let Step::Verify(pending) = auth.begin(Some(&header), client) else {
        panic!("must verify");
    };
    // The file drops alice while her verification runs.
    write(dir.path(), "htpasswd", GINA_ARGON2ID);
    auth.reload().unwrap();
    let attempt = pending.run();
    // The answer for this request was decided against the old set...
    assert!(is_authenticated(&auth.finish(attempt), "alice"));
    // ...but the next request is checked against the new one.
    match auth.begin(Some(&header), client) {
        Step::Verify(p) => assert!(matches!(auth.finish(p.run()), Authentication::Failed(_))),
        Step::Done(a) => panic!("answered from a stale cache entry: {a:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_path_verifies_on_the_blocking_pool_with_bounded_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AuthConfig {
        max_concurrent_verifications: 1,
        cache_ttl: Duration::ZERO,
        ..config(dir.path(), &format!("{ALICE_BCRYPT}\n{GINA_ARGON2ID}\n"))
    };
    let auth = Arc::new(Authenticator::new(&cfg).unwrap());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let auth = auth.clone();
            tokio::spawn(async move {
                let (user, pw) = if i % 2 == 0 {
                    ("alice", "alice-pw")
                } else {
                    ("gina", "gina-pw")
                };
                let header = basic(user, pw);
                (
                    user,
                    auth.authenticate(Some(&header), ip("192.0.2.1")).await,
                )
            })
        })
        .collect();
    for task in tasks {
        let (user, outcome) = task.await.unwrap();
        assert!(is_authenticated(&outcome, user), "{user}: {outcome:?}");
    }
    assert_eq!(
        auth.authenticate(None, ip("192.0.2.1")).await,
        Authentication::Anonymous
    );
}

#[test]
fn challenge_and_disabled_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Authenticator::new(&config(dir.path(), ALICE_BCRYPT)).unwrap();
    assert_eq!(
        auth.challenge().as_deref(),
        Some("Basic realm=\"gomodproxy\", charset=\"UTF-8\"")
    );
    let off = Authenticator::new(&AuthConfig::default()).unwrap();
    assert!(!off.enabled());
    assert_eq!(off.challenge(), None);
    // With authentication off, credentials are ignored rather than checked.
    assert_eq!(
        off.authenticate_blocking(Some(&basic("alice", "x")), ip("192.0.2.1")),
        Authentication::Anonymous
    );
    let bad_realm = AuthConfig {
        realm: "a\"b".into(),
        ..AuthConfig::default()
    };
    assert!(Authenticator::new(&bad_realm).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_identical_right_credentials_is_verified_once_and_never_limited() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AuthConfig {
        rate_limit: RateLimitConfig {
            burst: 2,
            ..RateLimitConfig::default()
        },
        ..config(dir.path(), ALICE_BCRYPT)
    };
    let auth = Arc::new(Authenticator::new(&cfg).unwrap());
    // 32 requests with the same right password from one address at once, with a cold cache:
    // without coalescing, each would take an attempt before its verification and all but two
    // would be answered 429.
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let auth = auth.clone();
            tokio::spawn(async move {
                auth.authenticate(Some(&basic("alice", "alice-pw")), ip("192.0.2.9"))
                    .await
            })
        })
        .collect();
    for task in tasks {
        let outcome = task.await.unwrap();
        assert!(is_authenticated(&outcome, "alice"), "{outcome:?}");
    }
    // Wrong passwords are still limited.
    for _ in 0..2 {
        assert_eq!(
            auth.authenticate(Some(&basic("alice", "wrong")), ip("192.0.2.9"))
                .await,
            Authentication::Failed(AuthFailure::InvalidPassword)
        );
    }
    assert!(matches!(
        auth.authenticate(Some(&basic("alice", "wrong")), ip("192.0.2.9"))
            .await,
        Authentication::RateLimited { .. }
    ));
}
