//! `Config::load`: defaults, file, environment precedence, and errors that name the key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gomodproxy::config::{Config, ConfigError, LogFormat, Mode, StorageKind};

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("gomodproxy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn load_err(file: Option<&Path>, vars: &[(&str, &str)]) -> String {
    match Config::load(file, env(vars)) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults() {
    let c = Config::load(None, env(&[])).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
    assert_eq!(c.mode, Mode::Online);
    assert_eq!(c.upstream, "https://proxy.golang.org");
    assert_eq!(c.storage.kind, StorageKind::Fs);
    assert_eq!(c.storage.fs.root, PathBuf::from("./data"));
    assert_eq!(c.fetch.retries, 2);
    assert_eq!(c.fetch.connect_timeout, Duration::from_secs(10));
    assert_eq!(c.fetch.max_zip_size, 500 << 20);
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.log.level, "info");
}

#[test]
fn unrelated_environment_is_ignored() {
    let c = Config::load(
        None,
        env(&[("PATH", "/bin"), ("GOPROXY", "off"), ("HOME", "/")]),
    )
    .unwrap();
    assert_eq!(c, Config::default());
}

#[test]
fn file_sets_values() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let file = write(
        dir.path(),
        &format!(
            r#"
listen = "127.0.0.1:4000"
mode = "offline"
upstream = "file:///srv/goproxy"
list_ttl = "5m"
spool_dir = "{}"

[storage]
type = "fs"
[storage.fs]
root = "/srv/cache"

[fetch]
retries = 5
read_timeout = "1m 30s"
max_zip_size = 1048576

[log]
format = "json"
level = "debug"
"#,
            spool.display()
        ),
    );
    let c = Config::load(Some(&file), env(&[])).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:4000");
    assert_eq!(c.mode, Mode::Offline);
    assert_eq!(c.upstream, "file:///srv/goproxy");
    assert_eq!(c.list_ttl, Duration::from_secs(300));
    assert_eq!(c.spool_dir, Some(spool));
    assert_eq!(c.storage.fs.root, PathBuf::from("/srv/cache"));
    assert_eq!(c.fetch.retries, 5);
    assert_eq!(c.fetch.read_timeout, Duration::from_secs(90));
    assert_eq!(c.fetch.max_zip_size, 1 << 20);
    // Keys the file does not set keep their defaults.
    assert_eq!(c.fetch.connect_timeout, Duration::from_secs(10));
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.level, "debug");

    let service = c.service_config();
    assert_eq!(service.mode, gomodproxy_service::Mode::Offline);
    assert_eq!(service.retries, 5);
    assert_eq!(service.list_ttl, Duration::from_secs(300));
    assert_eq!(service.max_zip_size, 1 << 20);
}

#[test]
fn environment_overrides_file_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        r#"
listen = "127.0.0.1:4000"
[storage.fs]
root = "/from/file"
[fetch]
retries = 5
connect_timeout = "3s"
"#,
    );
    let c = Config::load(
        Some(&file),
        env(&[
            ("GOMODPROXY_FETCH__RETRIES", "7"),
            ("GOMODPROXY_MODE", "offline"),
            ("GOMODPROXY_UPSTREAM", "file:///from/env"),
            ("GOMODPROXY_LIST_TTL", "2m"),
            ("GOMODPROXY_LOG__FORMAT", "json"),
        ]),
    )
    .unwrap();
    assert_eq!(c.fetch.retries, 7, "env wins over the file");
    assert_eq!(
        c.fetch.connect_timeout,
        Duration::from_secs(3),
        "file value kept"
    );
    assert_eq!(
        c.storage.fs.root,
        PathBuf::from("/from/file"),
        "sibling section untouched"
    );
    assert_eq!(c.listen.to_string(), "127.0.0.1:4000");
    assert_eq!(c.mode, Mode::Offline);
    assert_eq!(c.upstream, "file:///from/env");
    assert_eq!(c.list_ttl, Duration::from_secs(120));
    assert_eq!(c.log.format, LogFormat::Json);

    let c = Config::load(
        Some(&file),
        env(&[("GOMODPROXY_STORAGE__FS__ROOT", "/from/env")]),
    )
    .unwrap();
    assert_eq!(c.storage.fs.root, PathBuf::from("/from/env"));
    assert_eq!(c.fetch.retries, 5);
}

#[test]
fn unknown_key_in_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "[storage.fs]\nroott = \"/x\"\n");
    let err = Config::load(Some(&file), env(&[])).unwrap_err();
    match &err {
        ConfigError::UnknownKey { key, .. } => assert_eq!(key, "storage.fs.roott"),
        other => panic!("expected UnknownKey, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("storage.fs.roott"), "{msg}");
    assert!(msg.contains(&file.display().to_string()), "{msg}");

    let file = write(dir.path(), "lisen = \"127.0.0.1:1\"\n");
    let msg = load_err(Some(&file), &[]);
    assert!(msg.contains("unknown key `lisen`"), "{msg}");

    let file = write(
        dir.path(),
        "[storage.redis]\nurll = \"redis://127.0.0.1\"\n",
    );
    let msg = load_err(Some(&file), &[]);
    assert!(msg.contains("storage.redis.urll"), "{msg}");
}

#[test]
fn every_backend_section_is_settable_from_the_environment() {
    let c = Config::load(
        None,
        env(&[
            ("GOMODPROXY_STORAGE__TYPE", "redis"),
            ("GOMODPROXY_STORAGE__REDIS__URL", "redis://cache.internal:6380/2"),
            ("GOMODPROXY_STORAGE__REDIS__KEY_PREFIX", "gmp:"),
            ("GOMODPROXY_STORAGE__REDIS__RESPONSE_TIMEOUT", "3s"),
            ("GOMODPROXY_STORAGE__SLED__PATH", "/var/lib/gmp/sled"),
            ("GOMODPROXY_STORAGE__SLED__CACHE_CAPACITY", "1048576"),
            ("GOMODPROXY_CACHE__MEMORY_BYTES", "0"),
            ("GOMODPROXY_SUMDB__VERIFY", "false"),
            ("GOMODPROXY_SUMDB__DATABASES", "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8 https://sum.golang.org"),
            ("GOMODPROXY_PRIVATE", "*.corp.example.com,github.com/acme"),
        ]),
    )
    .unwrap();
    assert_eq!(c.storage.kind, StorageKind::Redis);
    assert_eq!(c.storage.redis.url, "redis://cache.internal:6380/2");
    assert_eq!(c.storage.redis.key_prefix, "gmp:");
    assert_eq!(c.storage.redis.response_timeout, Duration::from_secs(3));
    assert_eq!(c.storage.sled.path, PathBuf::from("/var/lib/gmp/sled"));
    assert_eq!(c.storage.sled.cache_capacity_bytes, 1 << 20);
    assert_eq!(c.cache.memory_bytes, 0);
    assert!(!c.sumdb.verify);
    assert_eq!(
        c.sumdb.databases,
        [
            "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8 https://sum.golang.org"
        ]
    );
    assert_eq!(c.private, ["*.corp.example.com", "github.com/acme"]);

    let msg = load_err(
        None,
        &[
            ("GOMODPROXY_STORAGE__TYPE", "redis"),
            ("GOMODPROXY_STORAGE__REDIS__URL", "http://cache.internal"),
        ],
    );
    assert!(
        msg.contains("GOMODPROXY_STORAGE__REDIS__URL") && msg.contains("storage.redis.url"),
        "{msg}"
    );
    let msg = load_err(
        None,
        &[(
            "GOMODPROXY_SUMDB__DATABASES",
            "sum.golang.org+00000000+AAAA",
        )],
    );
    assert!(msg.contains("sumdb.databases"), "{msg}");
    let msg = load_err(None, &[("GOMODPROXY_SUMDB__DATABASES", "")]);
    assert!(msg.contains("sumdb.verify"), "{msg}");
}

#[test]
fn unknown_env_key_is_named() {
    let msg = load_err(None, &[("GOMODPROXY_STORAGE__FS__ROOTT", "/x")]);
    assert!(msg.contains("GOMODPROXY_STORAGE__FS__ROOTT"), "{msg}");
    assert!(msg.contains("storage.fs.roott"), "{msg}");

    let msg = load_err(None, &[("GOMODPROXY_LISTN", "127.0.0.1:1")]);
    assert!(
        msg.contains("GOMODPROXY_LISTN") && msg.contains("`listn`"),
        "{msg}"
    );

    // A single `_` where `__` was meant is a different (unknown) key, not a silent no-op.
    let msg = load_err(None, &[("GOMODPROXY_FETCH_RETRIES", "3")]);
    assert!(msg.contains("fetch_retries"), "{msg}");
}

#[test]
fn bad_values_name_the_key() {
    let msg = load_err(None, &[("GOMODPROXY_MODE", "sideways")]);
    assert!(msg.contains("GOMODPROXY_MODE"), "{msg}");
    assert!(msg.contains("`mode`") && msg.contains("sideways"), "{msg}");

    let msg = load_err(None, &[("GOMODPROXY_FETCH__RETRIES", "lots")]);
    assert!(msg.contains("fetch.retries"), "{msg}");

    let msg = load_err(None, &[("GOMODPROXY_FETCH__READ_TIMEOUT", "forever")]);
    assert!(msg.contains("fetch.read_timeout"), "{msg}");

    let msg = load_err(None, &[("GOMODPROXY_LISTEN", "localhost")]);
    assert!(msg.contains("`listen`"), "{msg}");

    let msg = load_err(None, &[("GOMODPROXY_LOG__LEVEL", "info,=[")]);
    assert!(
        msg.contains("log.level") && msg.contains("GOMODPROXY_LOG__LEVEL"),
        "{msg}"
    );

    // The service judges the chain; offline mode may do without one, online mode may not.
    let msg = load_err(None, &[("GOMODPROXY_UPSTREAM", "")]);
    assert!(
        msg.contains("`upstream`") && msg.contains("GOMODPROXY_UPSTREAM"),
        "{msg}"
    );
    Config::load(
        None,
        env(&[("GOMODPROXY_UPSTREAM", ""), ("GOMODPROXY_MODE", "offline")]),
    )
    .unwrap();

    let msg = load_err(None, &[("GOMODPROXY_SPOOL_DIR", "/nonexistent/spool")]);
    assert!(
        msg.contains("`spool_dir`") && msg.contains("/nonexistent/spool"),
        "{msg}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "[fetch]\nretries = -1\n");
    let msg = load_err(Some(&file), &[]);
    assert!(msg.contains("fetch.retries"), "{msg}");

    let file = write(dir.path(), "mode = \"sideways\"\n");
    let msg = load_err(Some(&file), &[]);
    assert!(
        msg.contains("`mode`") && msg.contains(&file.display().to_string()),
        "{msg}"
    );
}

#[test]
fn s3_needs_a_bucket_and_secrets_are_not_printed() {
    let msg = load_err(None, &[("GOMODPROXY_STORAGE__TYPE", "s3")]);
    assert!(
        msg.contains("storage.s3.bucket") && msg.contains("required"),
        "{msg}"
    );
    let msg = load_err(
        None,
        &[
            ("GOMODPROXY_STORAGE__TYPE", "s3"),
            ("GOMODPROXY_STORAGE__S3__BUCKET", "modules"),
            ("GOMODPROXY_STORAGE__S3__ENDPOINT", "http://minio:9000"),
        ],
    );
    assert!(msg.contains("storage.s3.allow_http"), "{msg}");
    let c = Config::load(
        None,
        env(&[
            ("GOMODPROXY_STORAGE__TYPE", "s3"),
            ("GOMODPROXY_STORAGE__S3__BUCKET", "modules"),
            ("GOMODPROXY_STORAGE__S3__ENDPOINT", "http://minio:9000"),
            ("GOMODPROXY_STORAGE__S3__ALLOW_HTTP", "true"),
            ("GOMODPROXY_STORAGE__S3__ACCESS_KEY_ID", "AKIA1"),
            ("GOMODPROXY_STORAGE__S3__SECRET_ACCESS_KEY", "very-secret"),
            (
                "GOMODPROXY_STORAGE__REDIS__URL",
                "redis://:hunter2@redis:6379/0",
            ),
            (
                "GOMODPROXY_COORDINATION__REDIS_URL",
                "redis://:hunter3@redis:6379/1",
            ),
        ]),
    )
    .unwrap();
    assert_eq!(c.storage.kind, StorageKind::S3);
    assert_eq!(c.storage.s3.bucket, "modules");
    let shown = c.to_toml_redacted().unwrap();
    for secret in ["very-secret", "hunter2", "hunter3"] {
        assert!(!shown.contains(secret), "{secret} printed:\n{shown}");
    }
    assert!(
        shown.contains("AKIA1") && shown.contains("redis:6379/1"),
        "{shown}"
    );
    let msg = load_err(None, &[("GOMODPROXY_STORAGE__TYPE", "floppy")]);
    assert!(
        msg.contains("floppy") && msg.contains("storage.type"),
        "{msg}"
    );
}

#[test]
fn missing_or_broken_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let msg = load_err(Some(&missing), &[]);
    assert!(msg.contains("nope.toml"), "{msg}");

    let file = write(dir.path(), "listen = \n");
    let msg = load_err(Some(&file), &[]);
    assert!(msg.contains(&file.display().to_string()), "{msg}");
}

#[test]
fn printed_config_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        &format!(
            "mode = \"offline\"\nspool_dir = \"{}\"\n[fetch]\nretry_backoff = \"150ms\"\n",
            dir.path().display()
        ),
    );
    let loaded = Config::load(
        Some(&file),
        env(&[("GOMODPROXY_LIST_TTL", "90s"), ("GOMODPROXY_WORKERS", "3")]),
    )
    .unwrap();
    for config in [Config::default(), loaded] {
        let text = config.to_toml().unwrap();
        let printed = write(dir.path(), &text);
        let reloaded = Config::load(Some(&printed), env(&[])).unwrap();
        assert_eq!(reloaded, config, "printed:\n{text}");
    }
}

/// The example shipped in `deploy/` loads, and says what its comments claim.
#[test]
fn shipped_example_config_is_valid() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/gomodproxy.toml");
    let c = Config::load(Some(&file), env(&[])).unwrap();
    assert_eq!(c.listen.to_string(), "0.0.0.0:3000");
    assert_eq!(c.storage.fs.root, PathBuf::from("/var/lib/gomodproxy"));
    assert_eq!(c.log.format, LogFormat::Json);
    // Every other key is written out at its default.
    let defaults = Config::default();
    assert_eq!(c.fetch, defaults.fetch);
    assert_eq!(c.cache, defaults.cache);
    assert_eq!(c.sumdb, defaults.sumdb);
    assert_eq!(c.prewarm, defaults.prewarm);
    assert_eq!(c.coordination, defaults.coordination);
    assert_eq!(
        (c.mode, &c.upstream, c.list_ttl, c.workers),
        (
            defaults.mode,
            &defaults.upstream,
            defaults.list_ttl,
            defaults.workers
        )
    );
}

#[test]
fn known_trees_and_the_refresh_schedule_come_from_the_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "[prewarm]\nsumdb_known_trees = [\"/etc/gomodproxy/laptop-1.latest\"]\nrefresh_interval = \"1h\"\n",
    );
    let c = Config::load(Some(&file), env(&[])).unwrap();
    assert_eq!(
        c.prewarm.sumdb_known_trees,
        [PathBuf::from("/etc/gomodproxy/laptop-1.latest")]
    );
    assert_eq!(c.prewarm.refresh_interval, Duration::from_secs(3600));
    let c = Config::load(
        Some(&file),
        env(&[
            (
                "GOMODPROXY_PREWARM__SUMDB_KNOWN_TREES",
                "/a.latest,/b.latest",
            ),
            ("GOMODPROXY_PREWARM__REFRESH_INTERVAL", "7d"),
        ]),
    )
    .unwrap();
    assert_eq!(
        c.prewarm.sumdb_known_trees,
        [PathBuf::from("/a.latest"), PathBuf::from("/b.latest")]
    );
    assert_eq!(c.prewarm.refresh_interval, Duration::from_secs(7 * 86400));
    // Off by default; an empty variable is an empty list.
    let c = Config::load(None, env(&[("GOMODPROXY_PREWARM__SUMDB_KNOWN_TREES", "")])).unwrap();
    assert!(c.prewarm.sumdb_known_trees.is_empty());
    assert!(c.prewarm.refresh_interval.is_zero());
}
