//! The deployment files: `docker-compose.yml`, `deploy/gomodproxy.env` and `deploy/Dockerfile`.
//!
//! No Docker engine is needed. The compose file is read as YAML and interpolated as Compose does
//! (`${VAR:-default}` against an empty host environment, so the shipped defaults are what is
//! checked); the `gomodproxy` service's environment is assembled as the container would get it
//! (the image's `ENV`, then `env_file`, then `environment`) and handed to the real binary's
//! `config check` with nothing else, so a misspelt key or a bad value in any of the three files
//! fails here, and the printed configuration must say what the stack intends: S3 on the `minio`
//! service's port, fetch locks on the `redis` service, the published port, secrets redacted.
//! The rest is structure: start order, health checks, the bucket init, volumes, a non-root image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_yaml_ng::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compose's interpolation of one string against an empty host environment: `$$` is a `$`,
/// `${VAR:-default}` and `${VAR-default}` are the default, `${VAR}` and `$VAR` are empty, and
/// `${VAR:?message}` / `${VAR?message}` are the error Compose would stop with.
fn interpolate(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in {s:?}"));
            let expr = &body[..end];
            let name_end = expr
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(expr.len());
            let (name, op) = expr.split_at(name_end);
            assert!(!name.is_empty(), "empty variable name in {s:?}");
            let value = if let Some(default) = op.strip_prefix(":-").or(op.strip_prefix('-')) {
                assert!(
                    !default.contains('$'),
                    "nested interpolation is not modelled here: {s:?}"
                );
                default.to_string()
            } else if op.starts_with(":?") || op.starts_with('?') {
                panic!("{s:?}: Compose refuses to start without {name}");
            } else {
                assert!(op.is_empty(), "unsupported interpolation {expr:?} in {s:?}");
                String::new()
            };
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            assert!(len > 0, "a lone $ in {s:?} (write $$ for a literal one)");
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

fn interpolate_all(value: &mut Value) {
    match value {
        Value::String(s) => *s = interpolate(s),
        Value::Sequence(items) => items.iter_mut().for_each(interpolate_all),
        Value::Mapping(map) => map.values_mut().for_each(interpolate_all),
        Value::Tagged(tagged) => interpolate_all(&mut tagged.value),
        _ => {}
    }
}

/// A scalar as Compose reads it into a string (`true`, `3000`, `"x"`).
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// A string, or a list of strings (`command`, `env_file`, `healthcheck.test` take both forms).
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items.iter().map(scalar).collect(),
        Value::Null => Vec::new(),
        other => vec![scalar(other)],
    }
}

/// `docker-compose.yml`, interpolated.
struct Compose {
    doc: Value,
}

impl Compose {
    fn load() -> Compose {
        Compose::parse(&read("docker-compose.yml"))
    }

    fn parse(text: &str) -> Compose {
        let mut doc: Value = serde_yaml_ng::from_str(text).expect("docker-compose.yml is YAML");
        interpolate_all(&mut doc);
        Compose { doc }
    }

    fn service(&self, name: &str) -> &Value {
        let services = &self.doc["services"];
        let service = &services[name];
        assert!(
            service.is_mapping(),
            "no service {name:?} in docker-compose.yml (services: {:?})",
            services
                .as_mapping()
                .map(|m| m.keys().map(scalar).collect::<Vec<_>>())
        );
        service
    }

    fn has_service(&self, name: &str) -> bool {
        self.doc["services"][name].is_mapping()
    }

    /// A service's `environment`, in its map or its list form. A bare `- NAME` (taken from the
    /// host) is unset here, as the host environment is empty.
    fn environment(&self, service: &str) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        match &self.service(service)["environment"] {
            Value::Mapping(map) => {
                for (k, v) in map {
                    if !v.is_null() {
                        env.insert(scalar(k), scalar(v));
                    }
                }
            }
            Value::Sequence(items) => {
                for item in items {
                    if let Some((k, v)) = scalar(item).split_once('=') {
                        env.insert(k.to_string(), v.to_string());
                    }
                }
            }
            Value::Null => {}
            other => panic!("{service}.environment: neither a map nor a list: {other:?}"),
        }
        env
    }

    /// The files of a service's `env_file` (short or long form), relative to the repository.
    fn env_files(&self, service: &str) -> Vec<String> {
        match &self.service(service)["env_file"] {
            Value::Sequence(items) => items
                .iter()
                .map(|item| match item {
                    Value::Mapping(_) => scalar(&item["path"]),
                    other => scalar(other),
                })
                .collect(),
            other => strings(other),
        }
    }

    /// The environment a service's container gets: the image's `ENV` (for the service built
    /// from deploy/Dockerfile), then each `env_file` in order, then `environment`.
    fn container_env(&self, service: &str) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        if self.service(service)["build"].is_mapping() {
            env.extend(Dockerfile::load().final_env());
        }
        for file in self.env_files(service) {
            env.extend(parse_env_file(&file));
        }
        env.extend(self.environment(service));
        env
    }

    /// `depends_on` as service → condition (the short list form means `service_started`).
    fn depends_on(&self, service: &str) -> BTreeMap<String, String> {
        match &self.service(service)["depends_on"] {
            Value::Mapping(map) => map
                .iter()
                .map(|(k, v)| (scalar(k), scalar(&v["condition"])))
                .collect(),
            other => strings(other)
                .into_iter()
                .map(|s| (s, "service_started".to_string()))
                .collect(),
        }
    }

    /// A service's volumes as (source, target) pairs (short `src:dst[:mode]` or long form).
    fn volumes(&self, service: &str) -> Vec<(String, String)> {
        let Some(items) = self.service(service)["volumes"].as_sequence() else {
            return Vec::new();
        };
        items
            .iter()
            .map(|item| match item {
                Value::Mapping(_) => (scalar(&item["source"]), scalar(&item["target"])),
                other => {
                    let short = scalar(other);
                    let mut parts = short.split(':');
                    let source = parts.next().unwrap().to_string();
                    let target = parts
                        .next()
                        .unwrap_or_else(|| panic!("{service}: volume {short:?} has no target"))
                        .to_string();
                    (source, target)
                }
            })
            .collect()
    }

    /// The container ports a service publishes.
    fn published_container_ports(&self, service: &str) -> Vec<u16> {
        let Some(items) = self.service(service)["ports"].as_sequence() else {
            return Vec::new();
        };
        items
            .iter()
            .map(|item| {
                let target = match item {
                    Value::Mapping(_) => scalar(&item["target"]),
                    other => {
                        let short = scalar(other);
                        let last = short.rsplit(':').next().unwrap().to_string();
                        last.split('/').next().unwrap().to_string()
                    }
                };
                target
                    .parse()
                    .unwrap_or_else(|_| panic!("{service}: bad container port {target:?}"))
            })
            .collect()
    }

    fn healthcheck(&self, service: &str) -> Vec<String> {
        strings(&self.service(service)["healthcheck"]["test"])
    }
}

/// An env file in the restricted form deploy/local-stack.sh also reads: `KEY=VALUE` lines taken
/// verbatim, `#` comments, blank lines.
fn parse_env_file(relative: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (n, line) in read(relative).lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{relative}:{}: not KEY=VALUE: {line:?}", n + 1));
        assert!(
            key.starts_with("GOMODPROXY_")
                && key
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
            "{relative}:{}: {key:?} is not a GOMODPROXY_ variable",
            n + 1
        );
        assert!(
            !value.contains(['"', '\'', '$']),
            "{relative}:{}: {key}: quotes and $ mean different things to Compose and to \
             deploy/local-stack.sh; keep values plain",
            n + 1
        );
        assert!(
            env.insert(key.to_string(), value.to_string()).is_none(),
            "{relative}: {key} twice"
        );
    }
    env
}

/// One Dockerfile instruction, continuation lines joined.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

/// `deploy/Dockerfile`, split into stages.
struct Dockerfile {
    stages: Vec<Vec<Instruction>>,
}

impl Dockerfile {
    fn load() -> Dockerfile {
        Dockerfile::parse(&read("deploy/Dockerfile"))
    }

    fn parse(text: &str) -> Dockerfile {
        let mut instructions = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            // Comment lines are dropped, also between continuation lines.
            if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
                continue;
            }
            if let Some(body) = trimmed.strip_suffix('\\') {
                current.push_str(body);
                current.push(' ');
                continue;
            }
            current.push_str(trimmed);
            let joined = std::mem::take(&mut current);
            let (keyword, args) = joined
                .split_once(char::is_whitespace)
                .unwrap_or((&joined, ""));
            instructions.push(Instruction {
                keyword: keyword.to_ascii_uppercase(),
                args: args.split_whitespace().collect::<Vec<_>>().join(" "),
            });
        }
        assert!(current.is_empty(), "Dockerfile ends in a continuation line");
        let mut stages: Vec<Vec<Instruction>> = Vec::new();
        for instruction in instructions {
            if instruction.keyword == "FROM" {
                stages.push(Vec::new());
            }
            if let Some(stage) = stages.last_mut() {
                stage.push(instruction);
            }
        }
        assert!(!stages.is_empty(), "no FROM in deploy/Dockerfile");
        Dockerfile { stages }
    }

    fn final_stage(&self) -> &[Instruction] {
        self.stages.last().unwrap()
    }

    fn all(&self, stage: &[Instruction], keyword: &str) -> Vec<String> {
        stage
            .iter()
            .filter(|i| i.keyword == keyword)
            .map(|i| i.args.clone())
            .collect()
    }

    /// The final stage's `ENV` settings (`ENV K=V K2=V2`, or the old `ENV K V`).
    fn final_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for args in self.all(self.final_stage(), "ENV") {
            assert!(
                !args.contains(['"', '\'']),
                "quoted ENV values are not modelled here: {args}"
            );
            if args
                .split_whitespace()
                .next()
                .is_some_and(|w| w.contains('='))
            {
                for pair in args.split_whitespace() {
                    let (k, v) = pair
                        .split_once('=')
                        .unwrap_or_else(|| panic!("ENV {args}: {pair:?} is not K=V"));
                    env.insert(k.to_string(), v.to_string());
                }
            } else {
                let (k, v) = args.split_once(' ').expect("ENV K V");
                env.insert(k.to_string(), v.to_string());
            }
        }
        env
    }
}

fn config_check(env: &BTreeMap<String, String>) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gomodproxy"))
        .args(["config", "check"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `config check` of the proxy's container environment, parsed.
fn effective_config(env: &BTreeMap<String, String>) -> (toml::Table, String) {
    let out = config_check(env);
    assert!(
        out.status.success(),
        "config check refused the compose environment {env:#?}:\n{}",
        text(&out.stderr)
    );
    let printed = text(&out.stdout);
    let table = printed
        .parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("config check printed no TOML ({e}):\n{printed}"));
    (table, printed)
}

fn key<'a>(table: &'a toml::Table, dotted: &str) -> &'a toml::Value {
    let (parents, last) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let mut current = table;
    for part in parents.split('.').filter(|p| !p.is_empty()) {
        current = current
            .get(part)
            .and_then(toml::Value::as_table)
            .unwrap_or_else(|| panic!("config check printed no table `{part}` (for `{dotted}`)"));
    }
    current
        .get(last)
        .unwrap_or_else(|| panic!("config check printed no `{dotted}`"))
}

fn key_str<'a>(table: &'a toml::Table, dotted: &str) -> &'a str {
    key(table, dotted)
        .as_str()
        .unwrap_or_else(|| panic!("`{dotted}` is not a string"))
}

/// `scheme://host:port/...` → (host, port).
fn host_port(url: &str) -> (String, u16) {
    let authority = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("{url:?} is no URL"));
    let authority = authority.split('/').next().unwrap();
    let authority = authority.rsplit('@').next().unwrap();
    let (host, port) = authority
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{url:?} names no port"));
    (host.to_string(), port.parse().unwrap())
}

/// The value after `flag` in a command line.
fn flag_value(command: &[String], flag: &str) -> Option<String> {
    let at = command.iter().position(|w| w == flag)?;
    command.get(at + 1).cloned()
}

#[test]
fn proxy_environment_passes_config_check_and_means_what_the_stack_intends() {
    let compose = Compose::load();
    let env = compose.container_env("gomodproxy");
    let (config, printed) = effective_config(&env);

    assert_eq!(key_str(&config, "upstream"), "https://proxy.golang.org");
    assert_eq!(key_str(&config, "mode"), "online");
    assert_eq!(key_str(&config, "log.format"), "json");

    // Listens on every interface, on the port the service publishes and the image exposes.
    let listen = key_str(&config, "listen");
    let (ip, port) = listen.rsplit_once(':').unwrap();
    assert_eq!(ip, "0.0.0.0", "listen = {listen}");
    let port: u16 = port.parse().unwrap();
    assert_eq!(
        compose.published_container_ports("gomodproxy"),
        vec![port],
        "the published container port is the listen port"
    );
    let exposed = Dockerfile::load().all(Dockerfile::load().final_stage(), "EXPOSE");
    assert_eq!(
        exposed,
        vec![port.to_string()],
        "EXPOSE in deploy/Dockerfile"
    );

    // S3 on the minio service, at the address its server listens on, over plain http.
    assert_eq!(key_str(&config, "storage.type"), "s3");
    let bucket = key_str(&config, "storage.s3.bucket");
    assert!(!bucket.is_empty());
    let endpoint = key_str(&config, "storage.s3.endpoint");
    assert!(endpoint.starts_with("http://"), "endpoint {endpoint}");
    let (host, s3_port) = host_port(endpoint);
    assert_eq!(host, "minio", "the endpoint names the minio service");
    let minio_command = strings(&compose.service("minio")["command"]);
    let address = flag_value(&minio_command, "--address").unwrap_or_else(|| ":9000".into());
    assert_eq!(
        address.rsplit(':').next().unwrap(),
        s3_port.to_string(),
        "the endpoint's port is the one MinIO serves S3 on ({minio_command:?})"
    );
    assert_eq!(key(&config, "storage.s3.allow_http").as_bool(), Some(true));

    // The proxy logs in as MinIO's root user; the secret is the same and is never printed.
    let minio_env = compose.environment("minio");
    let (user, password) = (
        &minio_env["MINIO_ROOT_USER"],
        &minio_env["MINIO_ROOT_PASSWORD"],
    );
    assert!(
        user.len() >= 3 && password.len() >= 8,
        "MinIO's minimum lengths"
    );
    assert_eq!(key_str(&config, "storage.s3.access_key_id"), user);
    assert_eq!(
        &env["GOMODPROXY_STORAGE__S3__SECRET_ACCESS_KEY"], password,
        "the proxy's secret key is MinIO's root password"
    );
    assert_eq!(
        key_str(&config, "storage.s3.secret_access_key"),
        "<redacted>"
    );
    assert!(
        !printed.contains(password.as_str()),
        "config check printed the secret:\n{printed}"
    );

    // Fetch locks on the redis service, on the port redis-server listens on.
    let redis_url = key_str(&config, "coordination.redis_url");
    assert!(redis_url.starts_with("redis://"), "{redis_url}");
    let (host, redis_port) = host_port(redis_url);
    assert_eq!(host, "redis", "the lock URL names the redis service");
    let redis_command = strings(&compose.service("redis")["command"]);
    let served = flag_value(&redis_command, "--port").unwrap_or_else(|| "6379".into());
    assert_eq!(redis_port.to_string(), served);

    // The memory tier in front of S3 is on.
    assert!(key(&config, "cache.memory_bytes").as_integer().unwrap() > 0);

    // The image keeps its writable state on the service's volume: the spool (TMPDIR) and the
    // filesystem store, were it switched to.
    let image_env = Dockerfile::load().final_env();
    let mounts: Vec<String> = compose
        .volumes("gomodproxy")
        .into_iter()
        .map(|(_, target)| target)
        .collect();
    for path in [
        &image_env["TMPDIR"],
        &key_str(&config, "storage.fs.root").to_string(),
    ] {
        assert!(
            mounts.iter().any(|m| Path::new(path).starts_with(m)),
            "{path} is not on a volume of the gomodproxy service ({mounts:?})"
        );
    }
}

/// The check above is not vacuous: the same environment with one key misspelt, or one value
/// wrong, is refused, naming the variable.
#[test]
fn a_wrong_key_or_value_in_the_compose_environment_fails_the_check() {
    let env = Compose::load().container_env("gomodproxy");

    let mut misspelt = env.clone();
    let bucket = misspelt.remove("GOMODPROXY_STORAGE__S3__BUCKET").unwrap();
    misspelt.insert("GOMODPROXY_STORAGE__S3__BUCKT".into(), bucket);
    let out = config_check(&misspelt);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("GOMODPROXY_STORAGE__S3__BUCKT"),
        "{}",
        text(&out.stderr)
    );

    let mut wrong = env.clone();
    wrong.insert("GOMODPROXY_STORAGE__S3__ALLOW_HTTP".into(), "false".into());
    let out = config_check(&wrong);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("allow_http"),
        "{}",
        text(&out.stderr)
    );
}

/// The harness reads the compose file as Compose would: interpolation, both `environment`
/// forms, and a key misspelt in the YAML reaches `config check`.
#[test]
fn compose_reading_is_faithful() {
    assert_eq!(interpolate("${A:-x}/${B-y}/$$C/${D}"), "x/y/$C/");
    let compose = Compose::parse(
        "services:\n  p:\n    environment:\n      - GOMODPROXY_LISTEN=${L:-0.0.0.0:1}\n      - GOMODPROXY_MODEE=offline\n      - FROM_HOST\n",
    );
    let env = compose.environment("p");
    assert_eq!(
        env,
        BTreeMap::from([
            ("GOMODPROXY_LISTEN".to_string(), "0.0.0.0:1".to_string()),
            ("GOMODPROXY_MODEE".to_string(), "offline".to_string()),
        ])
    );
    let out = config_check(&env);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("GOMODPROXY_MODEE"));
}

#[test]
fn the_proxy_starts_only_after_its_store_and_locks_are_ready() {
    let compose = Compose::load();
    assert_eq!(
        compose.depends_on("gomodproxy"),
        BTreeMap::from([
            ("minio".to_string(), "service_healthy".to_string()),
            (
                "minio-init".to_string(),
                "service_completed_successfully".to_string()
            ),
            ("redis".to_string(), "service_healthy".to_string()),
        ])
    );
    for service in ["minio", "redis"] {
        let test = compose.healthcheck(service);
        assert!(
            matches!(test.first().map(String::as_str), Some("CMD" | "CMD-SHELL")) && test.len() > 1,
            "{service} needs a health check for service_healthy: {test:?}"
        );
    }
    assert!(compose.healthcheck("redis").join(" ").contains("ping"));

    // The bucket init: after MinIO is healthy, once, with the proxy's own settings.
    let init = compose.service("minio-init");
    assert_eq!(
        compose.depends_on("minio-init"),
        BTreeMap::from([("minio".to_string(), "service_healthy".to_string())])
    );
    assert_eq!(scalar(&init["restart"]), "no");
    assert_eq!(
        compose.env_files("minio-init"),
        compose.env_files("gomodproxy")
    );
    let proxy_env = compose.container_env("gomodproxy");
    let init_env = compose.container_env("minio-init");
    for key in [
        "GOMODPROXY_STORAGE__S3__ENDPOINT",
        "GOMODPROXY_STORAGE__S3__BUCKET",
        "GOMODPROXY_STORAGE__S3__ACCESS_KEY_ID",
        "GOMODPROXY_STORAGE__S3__SECRET_ACCESS_KEY",
    ] {
        assert_eq!(init_env.get(key), proxy_env.get(key), "{key}");
    }
    let script = strings(&init["entrypoint"])
        .into_iter()
        .chain(strings(&init["command"]))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        script.contains("mc mb --ignore-existing")
            && script.contains("$GOMODPROXY_STORAGE__S3__BUCKET")
            && script.contains("$GOMODPROXY_STORAGE__S3__ENDPOINT"),
        "the init creates the proxy's bucket at the proxy's endpoint: {script}"
    );

    // Redis persists what it holds.
    let redis_command = strings(&compose.service("redis")["command"]);
    assert_eq!(
        flag_value(&redis_command, "--appendonly").as_deref(),
        Some("yes")
    );
}

#[test]
fn volumes_are_named_and_where_each_service_keeps_its_data() {
    let compose = Compose::load();
    let declared: Vec<String> = compose.doc["volumes"]
        .as_mapping()
        .expect("top-level volumes")
        .keys()
        .map(scalar)
        .collect();
    let minio_command = strings(&compose.service("minio")["command"]);
    let minio_data = minio_command
        .iter()
        .skip_while(|w| *w != "server")
        .nth(1)
        .expect("minio server DIR")
        .clone();
    let image_volume = Dockerfile::load().all(Dockerfile::load().final_stage(), "VOLUME");
    assert_eq!(image_volume, vec![r#"["/var/lib/gomodproxy"]"#]);
    for (service, data) in [
        ("minio", minio_data.as_str()),
        ("redis", "/data"),
        ("gomodproxy", "/var/lib/gomodproxy"),
    ] {
        let volumes = compose.volumes(service);
        let (source, _) = volumes
            .iter()
            .find(|(_, target)| target == data)
            .unwrap_or_else(|| panic!("{service}: no volume at {data} ({volumes:?})"));
        assert!(
            declared.contains(source),
            "{service}: volume {source} is not a named volume ({declared:?})"
        );
    }
    for name in &declared {
        assert!(
            ["gomodproxy", "minio", "minio-init", "redis"]
                .iter()
                .any(|s| compose.has_service(s)
                    && compose.volumes(s).iter().any(|(src, _)| src == name)),
            "volume {name} is declared but unused"
        );
    }
}

#[test]
fn the_image_is_built_from_the_workspace_and_runs_as_non_root() {
    let compose = Compose::load();
    let build = &compose.service("gomodproxy")["build"];
    assert_eq!(scalar(&build["context"]), ".");
    assert_eq!(scalar(&build["dockerfile"]), "deploy/Dockerfile");

    let dockerfile = Dockerfile::load();
    assert!(dockerfile.stages.len() >= 2, "a multi-stage build");
    let build_stage = &dockerfile.stages[0];
    let runs = dockerfile.all(build_stage, "RUN").join("\n");
    assert!(
        runs.contains("cargo build --locked --release -p gomodproxy"),
        "{runs}"
    );
    // The binary links against the builder's glibc: both stages come from one Debian release.
    let from_build = &dockerfile.all(build_stage, "FROM")[0];
    let from_final = &dockerfile.all(dockerfile.final_stage(), "FROM")[0];
    assert!(
        from_build.contains("${DEBIAN_RELEASE}") && from_final.contains("${DEBIAN_RELEASE}"),
        "{from_build} / {from_final}"
    );

    let final_stage = dockerfile.final_stage();
    let users = dockerfile.all(final_stage, "USER");
    let user = users.last().expect("the final stage sets USER");
    let name = user.split(':').next().unwrap();
    assert!(
        !name.is_empty() && name != "root" && name != "0",
        "the final stage runs as {user:?}"
    );
    // USER is in force for what runs: nothing after it switches back.
    let last_user = final_stage
        .iter()
        .rposition(|i| i.keyword == "USER")
        .unwrap();
    assert!(
        !final_stage[last_user..].iter().any(|i| i.keyword == "RUN"),
        "no RUN after USER"
    );

    let healthcheck = dockerfile.all(final_stage, "HEALTHCHECK");
    assert_eq!(healthcheck.len(), 1, "{healthcheck:?}");
    assert!(
        healthcheck[0].contains(" CMD ") && healthcheck[0].contains("/healthz"),
        "{}",
        healthcheck[0]
    );
    assert_eq!(
        dockerfile.all(final_stage, "ENTRYPOINT"),
        vec![r#"["/usr/local/bin/gomodproxy"]"#]
    );
    assert_eq!(dockerfile.all(final_stage, "CMD"), vec![r#"["serve"]"#]);
}

/// deploy/local-stack.sh runs the same proxy environment: it reads the shared file, maps exactly
/// the compose addresses the file uses, and logs in with the compose file's credentials.
#[test]
fn local_stack_shares_the_compose_environment() {
    let compose = Compose::load();
    let shared = compose.env_files("gomodproxy");
    assert_eq!(shared, vec!["deploy/gomodproxy.env"]);
    let env = parse_env_file("deploy/gomodproxy.env");
    assert!(
        !env.keys()
            .any(|k| k.contains("ACCESS_KEY") || k.contains("SECRET")),
        "credentials stay out of the shared file"
    );
    let script = read("deploy/local-stack.sh");
    assert!(script.contains(r#"env_file="$repo/deploy/gomodproxy.env""#));
    let assignment = |name: &str| {
        script
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("deploy/local-stack.sh sets no {name}"))
            .to_string()
    };
    let endpoint = host_port(&env["GOMODPROXY_STORAGE__S3__ENDPOINT"]);
    assert_eq!(
        assignment("COMPOSE_MINIO"),
        format!("{}:{}", endpoint.0, endpoint.1)
    );
    let redis = host_port(&env["GOMODPROXY_COORDINATION__REDIS_URL"]);
    assert_eq!(
        assignment("COMPOSE_REDIS"),
        format!("{}:{}", redis.0, redis.1)
    );
    let minio_env = compose.environment("minio");
    assert_eq!(
        assignment("MINIO_USER"),
        format!("${{MINIO_ROOT_USER:-{}}}", minio_env["MINIO_ROOT_USER"])
    );
    assert_eq!(
        assignment("MINIO_PASSWORD"),
        format!(
            "${{MINIO_ROOT_PASSWORD:-{}}}",
            minio_env["MINIO_ROOT_PASSWORD"]
        )
    );
}
