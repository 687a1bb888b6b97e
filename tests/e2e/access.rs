//! Access and corporate networks (issue 12) with the real go command: the proxy serves HTTPS
//! with a certificate of a test CA (go trusts it through `SSL_CERT_FILE`), users from an
//! htpasswd file (go sends them from a `NETRC` file), a token (go sends it through a `GOAUTH`
//! command), access rules by module, a policy that refuses a version with a reason, the audit
//! log, and reloads while serving: the user file and the policy on change and on SIGHUP, the
//! certificate on SIGHUP and on change; go shown our 429 once an address ran out of attempts.
//! Upstream side: a TLS upstream signed by the test CA (`fetch.ca_file`) that wants a bearer
//! token, reached through a CONNECT proxy, and the error words when the CA is missing; the same
//! for `direct`: git http-backend over HTTPS behind the CONNECT proxy.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gomodproxy_test_support::git::GitWorld;
use gomodproxy_tests::redirector::TlsRedirector;
use gomodproxy_tests::tls::{self, TestCa, TlsFront};
use gomodproxy_tests::tunnel::ConnectProxy;
use gomodproxy_tests::{Fixtures, Go, Proxy, ProxyConfig, TestDir, Upstream};

const PUBLIC: &str = "example.com/lib";
const PRIVATE: &str = "example.com/old";
const POLICY_REASON: &str = "known-bad release: use v1.1.0 (SEC-7)";

/// What curl got.
struct Got {
    status: u16,
    headers: String,
    body: String,
}

/// GET `url` with curl, trusting `ca`; `extra` adds arguments (`-u user:pw`, `-H …`).
fn curl(ca: &Path, url: &str, extra: &[&str]) -> Got {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-D", "-", "--cacert"])
        .arg(ca)
        .args(extra)
        .arg(url)
        .env_clear()
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = headers
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "curl {url}: no status: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    Got {
        status,
        headers: headers.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

/// The subject common name of the certificate the server at `url` presents (a full handshake).
fn served_cn(ca: &Path, url: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "-v", "-o", "/dev/null", "--no-sessionid", "--cacert"])
        .arg(ca)
        .arg(format!("{url}/healthz"))
        .env_clear()
        .output()
        .expect("run curl");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    err.lines()
        .find_map(|l| l.split_once("subject:").map(|(_, s)| s.trim().to_string()))
        .unwrap_or_else(|| panic!("no certificate subject in curl -v output:\n{err}"))
}

/// Waits up to 20 s for `cond`.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `go` environment over HTTPS that trusts `ca` and reads credentials from `netrc`.
fn go_env(dir: &Path, url: &str, ca: &Path, netrc: &Path) -> Go {
    Go::new(dir, url)
        .env("SSL_CERT_FILE", ca.to_str().unwrap())
        .env("NETRC", netrc.to_str().unwrap())
}

/// `go mod download -json module@version`; its JSON `Error` (on stdout) is appended to stderr.
fn download(go: &Go, cwd: &Path, module: &str, version: &str) -> gomodproxy_tests::go::GoOutput {
    let mut out = go.run(
        cwd,
        &["mod", "download", "-json", &format!("{module}@{version}")],
    );
    out.stderr.push_str(&out.stdout);
    out
}

/// Audit lines of the proxy's log that mention all of `words`.
fn audit_lines(proxy: &Proxy, words: &[&str]) -> usize {
    proxy
        .logs()
        .lines()
        .filter(|l| l.contains("gomodproxy::audit") && words.iter().all(|w| l.contains(w)))
        .count()
}

struct Files {
    htpasswd: PathBuf,
    groups: PathBuf,
    tokens: PathBuf,
    policy: PathBuf,
    token: String,
}

fn credential_files(dir: &Path) -> Files {
    std::fs::create_dir_all(dir).unwrap();
    let files = Files {
        htpasswd: dir.join("htpasswd"),
        groups: dir.join("groups"),
        tokens: dir.join("tokens"),
        policy: dir.join("policy.toml"),
        token: String::new(),
    };
    let users = tls::htpasswd_line("alice", "alice-pw") + &tls::htpasswd_line("bob", "bob-pw");
    tls::write_atomically(&files.htpasswd, &users);
    tls::write_atomically(&files.groups, "dev: alice ci\n");
    let (token, line) = tls::token("ci");
    tls::write_atomically(&files.tokens, &line);
    tls::write_atomically(&files.policy, &deny_policy());
    Files { token, ..files }
}

/// A policy that denies v1.2.0 and later of [`PUBLIC`] with [`POLICY_REASON`].
fn deny_policy() -> String {
    format!(
        "[[deny]]\nmodules = \"{PUBLIC}\"\nversions = \">=v1.2.0\"\nreason = \"{POLICY_REASON}\"\n"
    )
}

#[test]
fn go_over_tls_with_netrc_goauth_rules_policy_audit_and_reloads() {
    let fx = Fixtures::shared();
    let t = TestDir::new("access-tls");
    let ca = TestCa::new(&t.sub("ca"), "gomodproxy test CA");
    let cert = ca.server("server", "gomodproxy-first");
    let files = credential_files(&t.sub("auth"));
    let up = Upstream::start(fx.root());
    let proxy = ProxyConfig::new(&t.sub("storage"), &up.url())
        .tls(&cert)
        // The certificate reloads on SIGHUP only here; the user file on change.
        .set("TLS__WATCH_INTERVAL", "0s")
        .set("AUTH__WATCH_INTERVAL", "100ms")
        .set("AUTH__HTPASSWD_FILE", files.htpasswd.display().to_string())
        .set("AUTH__GROUPS_FILE", files.groups.display().to_string())
        .set("AUTH__TOKENS_FILE", files.tokens.display().to_string())
        .set("AUTH__RATE_LIMIT__BURST", "100")
        .set(
            "ACCESS__RULES",
            format!(
                r#"[{{"modules": "example.com", "anonymous": true}}, {{"modules": "{PRIVATE}", "groups": ["dev"]}}]"#
            ),
        )
        .set("POLICY__FILE", files.policy.display().to_string())
        .set("POLICY__WATCH_INTERVAL", "100ms")
        .set("LOG__LEVEL", "info,gomodproxy=debug,gomodproxy::audit=info")
        .start(&t.sub("logs"));
    let url = proxy.https_url();
    let ca_file = ca.ca_file();
    let cwd = t.sub("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let no_netrc = t.path().join("no-netrc");
    std::fs::write(&no_netrc, "").unwrap();
    let host = url.trim_start_matches("https://").to_string();

    // Anonymous over TLS: the public module downloads, the private one is refused with our
    // 401 reason, and the refusal is the same whether the module exists or not.
    let anonymous = go_env(&t.sub("go-anon"), &url, &ca_file, &no_netrc);
    download(&anonymous, &cwd, PUBLIC, "v1.1.0").assert_success();
    let refused = download(&anonymous, &cwd, PRIVATE, "v1.0.0");
    assert!(!refused.success, "anonymous got the private module");
    assert!(
        refused.stderr.contains("401 Unauthorized")
            && refused.stderr.contains("authentication required"),
        "go does not show our 401 reason:\n{}",
        refused.stderr
    );
    let exists = curl(&ca_file, &format!("{url}/{PRIVATE}/@v/list"), &[]);
    let ghost = curl(&ca_file, &format!("{url}/{PRIVATE}/ghost/@v/list"), &[]);
    assert_eq!((exists.status, ghost.status), (401, 401));
    assert_eq!(
        exists.body, ghost.body,
        "the refusal tells whether the module exists"
    );
    assert!(
        exists
            .headers
            .contains("www-authenticate: basic realm=\"gomodproxy\""),
        "{}",
        exists.headers
    );
    // The checksum database is never asked about a private name: anonymous is refused first,
    // an authorized user gets the proxy's own answer.
    let lookup = format!("{url}/sumdb/sum.golang.org/lookup/{PRIVATE}@v1.0.0");
    assert_eq!(curl(&ca_file, &lookup, &[]).status, 401);
    let own = curl(&ca_file, &lookup, &["-u", "alice:alice-pw"]);
    assert!(
        own.status == 404 && own.body.contains("private on this proxy"),
        "{} {}",
        own.status,
        own.body
    );
    assert_eq!(
        up.hits("/sumdb/sum.golang.org/lookup/example.com/old@v1.0.0"),
        0
    );

    // NETRC: alice (group dev) gets the private module; bob is authenticated but not admitted;
    // a wrong password shows our reason.
    let netrc = |name: &str, user: &str, password: &str| {
        let path = t.path().join(name);
        std::fs::write(
            &path,
            format!("machine {host} login {user} password {password}\n"),
        )
        .unwrap();
        path
    };
    let alice = go_env(
        &t.sub("go-alice"),
        &url,
        &ca_file,
        &netrc("netrc-alice", "alice", "alice-pw"),
    );
    let got = download(&alice, &cwd, PRIVATE, "v1.0.0");
    got.assert_success();
    let wrong = go_env(
        &t.sub("go-wrong"),
        &url,
        &ca_file,
        &netrc("netrc-wrong", "alice", "nope"),
    );
    let out = download(&wrong, &cwd, PRIVATE, "v1.0.0");
    assert!(
        !out.success
            && out.stderr.contains("401")
            && out.stderr.contains("invalid username or password"),
        "{}",
        out.stderr
    );
    let bob = curl(
        &ca_file,
        &format!("{url}/{PRIVATE}/@v/list"),
        &["-u", "bob:bob-pw"],
    );
    assert_eq!(bob.status, 403, "{}", bob.body);

    // GOAUTH: a command that hands go the bearer token of `ci` (in group dev).
    let script = t.path().join("goauth.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n\\n%s\\n\\n' '{url}' 'Authorization: Bearer {}'\n",
            files.token
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    let ci =
        go_env(&t.sub("go-ci"), &url, &ca_file, &no_netrc).env("GOAUTH", script.to_str().unwrap());
    download(&ci, &cwd, PRIVATE, "v2.0.0+incompatible").assert_success();

    // Policy: the denied version is refused with the reason, the listed versions omit it, and
    // `@latest`-style resolution never picks it.
    let denied = download(&anonymous, &cwd, PUBLIC, "v1.2.0");
    assert!(
        !denied.success
            && denied.stderr.contains("403 Forbidden")
            && denied.stderr.contains(POLICY_REASON),
        "go does not show the policy reason:\n{}",
        denied.stderr
    );
    let list = curl(&ca_file, &format!("{url}/{PUBLIC}/@v/list"), &[]);
    assert_eq!(list.status, 200);
    assert!(
        list.body.contains("v1.1.0") && !list.body.contains("v1.2.0"),
        "{}",
        list.body
    );
    let latest = download(&anonymous, &cwd, PUBLIC, "latest");
    latest.assert_success();
    assert!(
        latest.stdout.contains("\"Version\": \"v1.1.0\""),
        "{}",
        latest.stdout
    );
    assert_eq!(
        up.hits("/example.com/lib/@v/v1.2.0.zip"),
        0,
        "a refused zip was fetched"
    );

    // The audit log: one line per served artifact with the user, and the refusals.
    assert_eq!(
        audit_lines(&proxy, &["alice", PRIVATE, "kind=\"zip\"", "served"]),
        1,
        "{}",
        proxy.logs()
    );
    assert!(
        audit_lines(
            &proxy,
            &["ci", "v2.0.0+incompatible", "kind=\"zip\"", "served"]
        ) == 1
    );
    assert!(audit_lines(&proxy, &["bob", "refused", "status=403"]) >= 1);
    assert!(audit_lines(&proxy, &[POLICY_REASON, "refused", "v1.2.0"]) >= 1);

    // The user file changes while serving: the new password works at once, the old one not.
    tls::write_atomically(
        &files.htpasswd,
        &(tls::htpasswd_line("alice", "alice-new") + &tls::htpasswd_line("bob", "bob-pw")),
    );
    let private_list = format!("{url}/{PRIVATE}/@v/list");
    wait_for("the new password", || {
        curl(&ca_file, &private_list, &["-u", "alice:alice-new"]).status == 200
    });
    assert_eq!(
        curl(&ca_file, &private_list, &["-u", "alice:alice-pw"]).status,
        401
    );

    // A new certificate, picked up on SIGHUP (the watcher is off): new handshakes see it.
    assert_eq!(served_cn(&ca_file, &url), "CN=gomodproxy-first");
    let renewed = ca.server("server", "gomodproxy-second");
    assert_eq!(renewed.cert, cert.cert);
    assert_eq!(
        served_cn(&ca_file, &url),
        "CN=gomodproxy-first",
        "reloaded without a signal"
    );
    proxy.signal(libc::SIGHUP);
    wait_for("the renewed certificate", || {
        served_cn(&ca_file, &url) == "CN=gomodproxy-second"
    });
    download(&anonymous, &cwd, "example.com/dep", "v1.0.0").assert_success();

    // The policy changes while serving: the version it no longer denies is served.
    tls::write_atomically(&files.policy, "");
    let released = format!("{url}/{PUBLIC}/@v/v1.2.0.info");
    wait_for("the policy reload", || {
        curl(&ca_file, &released, &[]).status == 200
    });
    download(&anonymous, &cwd, PUBLIC, "v1.2.0").assert_success();
}

#[test]
fn tls_upstream_with_a_company_ca_a_bearer_token_and_a_connect_proxy() {
    let fx = Fixtures::shared();
    let t = TestDir::new("access-upstream");
    let ca = TestCa::new(&t.sub("ca"), "corp CA");
    let cert = ca.server("upstream", "artifactory");
    let auth = t.sub("auth");
    std::fs::create_dir_all(&auth).unwrap();
    let (token, line) = tls::token("builder");
    tls::write_atomically(&auth.join("tokens"), &line);
    std::fs::write(auth.join("token"), format!("{token}\n")).unwrap();

    // The "company registry": a gomodproxy over the fixtures, HTTPS with the company CA, every
    // module behind a token.
    let fixtures = Upstream::start(fx.root());
    // HTTPS only, on its one address.
    let registry = ProxyConfig::new(&t.sub("registry-storage"), &fixtures.url())
        .tls_only(&cert)
        .set(
            "AUTH__TOKENS_FILE",
            auth.join("tokens").display().to_string(),
        )
        .start(&t.sub("registry-logs"));
    let registry_url = registry.https_url();
    assert!(
        gomodproxy_tests::http::get(registry.addr(), "/healthz").map_or(true, |r| r.status != 200),
        "plain HTTP answered on an HTTPS-only listener"
    );
    let tunnel = ConnectProxy::start();
    tunnel.require_basic("corp-user", "corp-pw");
    let proxy_url = tunnel.url().replace("http://", "http://corp-user:corp-pw@");

    let base = |name: &str| {
        let mut cfg = ProxyConfig::new(&t.sub(&format!("{name}-storage")), &registry_url);
        // The proxy from the environment, as a company machine sets it.
        cfg.env.insert("HTTPS_PROXY".into(), proxy_url.clone());
        cfg.set(
            "FETCH__CREDENTIALS",
            format!(
                r#"[{{"url": "{registry_url}", "token_file": "{}"}}]"#,
                auth.join("token").display()
            ),
        )
    };

    // Without the company CA: the error names the cause and the key.
    let no_ca = base("no-ca").start(&t.sub("no-ca-logs"));
    let r = no_ca.get(&format!("/{PUBLIC}/@v/v1.0.0.info"));
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        r.text()
            .contains("certificate signed by unknown authority: set fetch.ca_file"),
        "{}",
        r.text()
    );
    drop(no_ca);

    // Wrong proxy credentials: the 407 is named as such, and the password is not shown.
    let wrong = ProxyConfig::new(&t.sub("wrong-storage"), &registry_url)
        .set(
            "FETCH__HTTPS_PROXY",
            tunnel.url().replace("http://", "http://corp-user:stale@"),
        )
        .set("FETCH__CA_FILE", ca.ca_file().display().to_string())
        .start(&t.sub("wrong-logs"));
    let r = wrong.get("/example.com/dep/@v/v1.0.0.info");
    assert!(
        r.status == 502 && r.text().contains("407 Proxy Authentication Required"),
        "{} {}",
        r.status,
        r.text()
    );
    assert!(!r.text().contains("stale"), "{}", r.text());
    drop(wrong);

    // With it, through the CONNECT proxy, with the token: go downloads.
    let proxy = base("ok")
        .set("FETCH__CA_FILE", ca.ca_file().display().to_string())
        .start(&t.sub("ok-logs"));
    let go = Go::new(&t.sub("go"), &proxy.url());
    let cwd = t.sub("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    download(&go, &cwd, PUBLIC, "v1.1.0").assert_success();
    let registry_host = registry_url.trim_start_matches("https://");
    assert!(
        tunnel
            .targets()
            .iter()
            .any(|target| target == registry_host),
        "not tunnelled: {:?}",
        tunnel.targets()
    );
    assert!(audit_lines(&registry, &["builder", PUBLIC, "kind=\"zip\"", "served"]) == 1);
    let logs = proxy.logs();
    assert!(
        !logs.contains(&token) && !logs.contains("corp-pw"),
        "a secret in the log"
    );

    // An upstream that redirects to another host (allowed by fetch.redirect_hosts): its
    // credentials go to it, never to the redirect target, which answers 401 without them.
    let redirector = TlsRedirector::start(
        &ca.server("redirector", "redirector"),
        &registry_url.replace("127.0.0.1", "localhost"),
    );
    // NO_PROXY: these hosts are reached directly, not through the tunnel.
    let tunnelled = tunnel.targets().len();
    let mut redirected = ProxyConfig::new(&t.sub("redirected-storage"), &redirector.url());
    redirected
        .env
        .insert("HTTPS_PROXY".into(), proxy_url.clone());
    redirected
        .env
        .insert("NO_PROXY".into(), "127.0.0.1,localhost".into());
    let redirected = redirected
        .set("FETCH__CA_FILE", ca.ca_file().display().to_string())
        .set("FETCH__REDIRECT_HOSTS", "localhost")
        .set(
            "FETCH__CREDENTIALS",
            format!(
                r#"[{{"url": "{}", "token_file": "{}"}}]"#,
                redirector.url(),
                auth.join("token").display()
            ),
        )
        .start(&t.sub("redirected-logs"));
    let r = redirected.get("/example.com/dep/@v/v1.1.0.info");
    assert!(
        r.status == 502 && r.text().contains("401"),
        "{} {}",
        r.status,
        r.text()
    );
    assert_eq!(
        redirector.seen(),
        [("/example.com/dep/@v/v1.1.0.info".to_string(), true)],
        "the upstream did not get its credentials"
    );
    assert_eq!(
        audit_lines(
            &registry,
            &[
                "example.com/dep",
                "v1.1.0",
                "refused",
                "status=401",
                "anonymous"
            ]
        ),
        1,
        "the redirect target got credentials:\n{}",
        registry.logs()
    );
    assert_eq!(
        tunnel.targets().len(),
        tunnelled,
        "NO_PROXY hosts went through the proxy"
    );
}

#[test]
fn policy_refuses_in_prewarm_and_import_too() {
    let fx = Fixtures::shared();
    let t = TestDir::new("access-policy-batch");
    let files = credential_files(&t.sub("auth"));
    let up = Upstream::start(fx.root());
    let zip_of = |root: &Path, version: &str| {
        root.join(gomodproxy_tests::fixtures::storage_rel_path(
            PUBLIC, version, "zip",
        ))
    };

    // prewarm: the refused version fails with the reason and is neither fetched nor stored.
    let with_policy = |name: &str| {
        ProxyConfig::new(&t.sub(name), &up.url())
            .set("POLICY__FILE", files.policy.display().to_string())
    };
    let warm_root = t.sub("warm");
    let out = with_policy("warm").run(&[
        "prewarm",
        &format!("{PUBLIC}@v1.2.0"),
        &format!("{PUBLIC}@v1.1.0"),
    ]);
    assert!(!out.success, "{out:?}");
    assert!(
        out.stderr.contains(&format!("FAILED {PUBLIC}@v1.2.0"))
            && out.stderr.contains(POLICY_REASON),
        "{}",
        out.stderr
    );
    assert!(zip_of(&warm_root, "v1.1.0").is_file());
    assert!(!zip_of(&warm_root, "v1.2.0").exists());
    assert_eq!(up.hits("/example.com/lib/@v/v1.2.0.zip"), 0);

    // import: a bundle made without the policy holds v1.2.0; importing it with the policy
    // refuses that version with the reason and stores the rest.
    let open_root = t.sub("open");
    let open = ProxyConfig::new(&open_root, &up.url());
    open.run(&[
        "prewarm",
        &format!("{PUBLIC}@v1.2.0"),
        &format!("{PUBLIC}@v1.1.0"),
    ])
    .assert_success();
    let bundle = t.path().join("bundle.tar");
    open.run(&["export", bundle.to_str().unwrap()])
        .assert_success();
    let import_root = t.sub("imported");
    let out = with_policy("imported").run(&["import", bundle.to_str().unwrap()]);
    assert!(!out.success, "{out:?}");
    assert!(
        out.stderr.contains("REFUSED")
            && out.stderr.contains(POLICY_REASON)
            && out.stderr.contains("v1.2.0"),
        "{}",
        out.stderr
    );
    assert!(zip_of(&import_root, "v1.1.0").is_file());
    assert!(!zip_of(&import_root, "v1.2.0").exists());
}

/// curl over TLS trusting `ca`, with `extra` arguments: whether it got any HTTP answer, and
/// its error output (a refused handshake answers nothing).
fn curl_answered(ca: &Path, url: &str, extra: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg("--cacert")
        .arg(ca)
        .args(extra)
        .arg(url)
        .env_clear()
        .output()
        .expect("run curl");
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let answered = out.status.success() || (code != "000" && !code.is_empty());
    (answered, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn mtls_refuses_handshakes_without_a_client_certificate_of_the_client_ca() {
    let fx = Fixtures::shared();
    let t = TestDir::new("access-mtls");
    let ca = TestCa::new(&t.sub("ca"), "gomodproxy test CA");
    let cert = ca.server("server", "gomodproxy");
    let client_ca = TestCa::new(&t.sub("client-ca"), "client CA");
    let builder = client_ca.client("builder", "builder");
    let stranger = TestCa::new(&t.sub("other-ca"), "other CA").client("stranger", "stranger");
    let up = Upstream::start(fx.root());
    // `tls.client_auth` left at its default (`required`).
    let proxy = ProxyConfig::new(&t.sub("storage"), &up.url())
        .tls(&cert)
        .set(
            "TLS__CLIENT_CA_FILE",
            client_ca.ca_file().display().to_string(),
        )
        .start(&t.sub("logs"));
    let info = format!("{}/{PUBLIC}/@v/v1.1.0.info", proxy.https_url());
    let ca_file = ca.ca_file();
    let cert_args = |c: &tls::CertFiles| {
        [
            "--cert".to_string(),
            c.cert.display().to_string(),
            "--key".to_string(),
            c.key.display().to_string(),
        ]
    };

    // No client certificate, or one of another CA: the handshake fails, no HTTP answer.
    let (answered, err) = curl_answered(&ca_file, &info, &[]);
    assert!(!answered, "answered without a client certificate: {err}");
    let args = cert_args(&stranger);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (answered, err) = curl_answered(&ca_file, &info, &args);
    assert!(!answered, "answered a certificate of another CA: {err}");

    // A certificate of the client CA: the module's .info.
    let args = cert_args(&builder);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let got = curl(&ca_file, &info, &args);
    assert_eq!(got.status, 200, "{}", got.body);
    assert!(got.body.contains("\"v1.1.0\""), "{}", got.body);
    assert_eq!(up.hits("/example.com/lib/@v/v1.1.0.info"), 1);
}

#[test]
fn sighup_reloads_the_user_file_before_the_watcher_polls() {
    let fx = Fixtures::shared();
    let t = TestDir::new("access-sighup-users");
    let files = credential_files(&t.sub("auth"));
    let up = Upstream::start(fx.root());
    let proxy = ProxyConfig::new(&t.sub("storage"), &up.url())
        // The watcher's first poll is an hour away: only the signal can bring the change in.
        .set("AUTH__WATCH_INTERVAL", "1h")
        .set("AUTH__HTPASSWD_FILE", files.htpasswd.display().to_string())
        .set("AUTH__GROUPS_FILE", files.groups.display().to_string())
        .set("AUTH__RATE_LIMIT__BURST", "100")
        .set(
            "ACCESS__RULES",
            format!(r#"[{{"modules": "{PRIVATE}", "groups": ["dev"]}}]"#),
        )
        .start(&t.sub("logs"));
    let list = format!("{}/{PRIVATE}/@v/list", proxy.url());
    let status = |user_pw: &str| curl(Path::new("/dev/null"), &list, &["-u", user_pw]).status;
    assert_eq!(status("alice:alice-pw"), 200);

    tls::write_atomically(
        &files.htpasswd,
        &(tls::htpasswd_line("alice", "alice-new") + &tls::htpasswd_line("bob", "bob-pw")),
    );
    assert_eq!(status("alice:alice-new"), 401, "reloaded without a signal");
    assert_eq!(status("alice:alice-pw"), 200, "reloaded without a signal");

    proxy.signal(libc::SIGHUP);
    wait_for("the new password after SIGHUP", || {
        status("alice:alice-new") == 200
    });
    // The old password is refused at once, though it was verified (and cached) before.
    assert_eq!(status("alice:alice-pw"), 401);
}

#[test]
fn sighup_reloads_the_policy_before_the_watcher_polls() {
    let fx = Fixtures::shared();
    let t = TestDir::new("access-sighup-policy");
    let policy = t.path().join("policy.toml");
    tls::write_atomically(&policy, "");
    let up = Upstream::start(fx.root());
    let proxy = ProxyConfig::new(&t.sub("storage"), &up.url())
        .set("POLICY__FILE", policy.display().to_string())
        // The watcher's first poll is an hour away: only the signal can bring the change in.
        .set("POLICY__WATCH_INTERVAL", "1h")
        .start(&t.sub("logs"));
    let cwd = t.sub("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let go = |name: &str| Go::new(&t.sub(name), &proxy.url());
    download(&go("go-before"), &cwd, PUBLIC, "v1.2.0").assert_success();

    tls::write_atomically(&policy, &deny_policy());
    let info = format!("/{PUBLIC}/@v/v1.2.0.info");
    assert_eq!(proxy.get(&info).status, 200, "reloaded without a signal");

    proxy.signal(libc::SIGHUP);
    wait_for("the policy after SIGHUP", || proxy.get(&info).status == 403);
    // Refused though it is stored: a fresh go command gets the reason.
    let denied = download(&go("go-after"), &cwd, PUBLIC, "v1.2.0");
    assert!(
        !denied.success
            && denied.stderr.contains("403 Forbidden")
            && denied.stderr.contains(POLICY_REASON),
        "go does not show the policy reason:\n{}",
        denied.stderr
    );
}

#[test]
fn the_certificate_reloads_when_its_files_change() {
    let fx = Fixtures::shared();
    let t = TestDir::new("access-tls-watch");
    let ca = TestCa::new(&t.sub("ca"), "gomodproxy test CA");
    let cert = ca.server("server", "gomodproxy-first");
    let up = Upstream::start(fx.root());
    let proxy = ProxyConfig::new(&t.sub("storage"), &up.url())
        .tls(&cert)
        .set("TLS__WATCH_INTERVAL", "100ms")
        .start(&t.sub("logs"));
    let (url, ca_file) = (proxy.https_url(), ca.ca_file());
    assert_eq!(served_cn(&ca_file, &url), "CN=gomodproxy-first");

    // Renewed in place (key, then certificate, each by a rename), no signal.
    let renewed = ca.server("server", "gomodproxy-second");
    assert_eq!(renewed.cert, cert.cert);
    wait_for("the renewed certificate", || {
        served_cn(&ca_file, &url) == "CN=gomodproxy-second"
    });
    let cwd = t.sub("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let go = Go::new(&t.sub("go"), &url).env("SSL_CERT_FILE", ca_file.to_str().unwrap());
    download(&go, &cwd, PUBLIC, "v1.1.0").assert_success();
}

#[test]
fn go_shows_our_429_after_too_many_wrong_passwords() {
    let fx = Fixtures::shared();
    let t = TestDir::new("access-rate-limit");
    let ca = TestCa::new(&t.sub("ca"), "gomodproxy test CA");
    let files = credential_files(&t.sub("auth"));
    let up = Upstream::start(fx.root());
    let proxy = ProxyConfig::new(&t.sub("storage"), &up.url())
        .tls(&ca.server("server", "gomodproxy"))
        .set("AUTH__HTPASSWD_FILE", files.htpasswd.display().to_string())
        .set("AUTH__RATE_LIMIT__BURST", "3")
        .set("AUTH__RATE_LIMIT__REFILL_INTERVAL", "1h")
        .start(&t.sub("logs"));
    let (url, ca_file) = (proxy.https_url(), ca.ca_file());
    let list = format!("{url}/{PUBLIC}/@v/list");
    for attempt in 1..=3 {
        let got = curl(&ca_file, &list, &["-u", "alice:nope"]);
        assert_eq!(got.status, 401, "wrong password #{attempt}: {}", got.body);
    }

    // The address is out of attempts: even the right password gets 429, and go shows why.
    let host = url.trim_start_matches("https://");
    let netrc = t.path().join("netrc");
    std::fs::write(
        &netrc,
        format!("machine {host} login alice password alice-pw\n"),
    )
    .unwrap();
    let cwd = t.sub("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let go = go_env(&t.sub("go"), &url, &ca_file, &netrc);
    let out = download(&go, &cwd, PUBLIC, "v1.1.0");
    assert!(
        !out.success
            && out.stderr.contains("429 Too Many Requests")
            && out
                .stderr
                .contains("too many failed authentication attempts; retry in"),
        "go does not show our 429 reason:\n{}",
        out.stderr
    );
    let got = curl(&ca_file, &list, &["-u", "alice:alice-pw"]);
    assert_eq!(got.status, 429, "{}", got.body);
    assert!(got.headers.contains("retry-after: "), "{}", got.headers);
    assert_eq!(up.hits("/example.com/lib/@v/v1.1.0.zip"), 0);
}

#[test]
fn direct_git_over_https_through_the_connect_proxy_with_fetch_ca_file() {
    let fx = Fixtures::shared();
    let t = TestDir::new("access-direct-tls");
    // A private repository of git http-backend (basic auth, from the world's netrc), served
    // over HTTPS by a certificate of the company CA, reached through the company proxy.
    let git = GitWorld::new();
    let repo = git.private_repo("tlslib");
    repo.write(
        "go.mod",
        "module github.com/acmeprivate/tlslib\n\ngo 1.21\n",
    )
    .write("lib.go", "package tlslib\n");
    repo.commit("one");
    repo.tag("v1.0.0");
    repo.push();
    let ca = TestCa::new(&t.sub("ca"), "corp CA");
    let backend = SocketAddr::from(([127, 0, 0, 1], git.private.port));
    let front = TlsFront::start(&ca.server("git", "git.corp"), backend);
    let gitconfig = t.path().join("gitconfig");
    std::fs::write(
        &gitconfig,
        format!(
            "[url \"https://127.0.0.1:{}/\"]\n\tinsteadOf = https://github.com/acmeprivate/\n",
            front.port()
        ),
    )
    .unwrap();
    let tunnel = ConnectProxy::start();
    tunnel.require_basic("corp-user", "corp-pw");
    let up = Upstream::start(fx.root());
    let direct = |name: &str| {
        ProxyConfig::new(&t.sub(&format!("{name}-storage")), &up.url())
            .set("ROUTES", "github.com/acmeprivate=direct")
            .set(
                "DIRECT__CACHE_DIR",
                t.sub(&format!("{name}-vcs")).display().to_string(),
            )
            .set("DIRECT__HOME", git.home.display().to_string())
            .set("DIRECT__GIT_CONFIG", gitconfig.display().to_string())
            .set(
                "FETCH__HTTPS_PROXY",
                tunnel.url().replace("http://", "http://corp-user:corp-pw@"),
            )
    };
    let cwd = t.sub("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let module = "github.com/acmeprivate/tlslib";
    let front_target = format!("127.0.0.1:{}", front.port());

    // With the company CA: go downloads, and git went through the proxy.
    let proxy = direct("ok")
        .set("FETCH__CA_FILE", ca.ca_file().display().to_string())
        .start(&t.sub("ok-logs"));
    let got = download(
        &Go::new(&t.sub("go-ok"), &proxy.url()),
        &cwd,
        module,
        "v1.0.0",
    );
    got.assert_success();
    assert!(
        got.stdout.contains("\"Version\": \"v1.0.0\""),
        "{}",
        got.stdout
    );
    assert!(
        tunnel.targets().contains(&front_target),
        "git did not go through the CONNECT proxy: {:?}",
        tunnel.targets()
    );
    let logs = proxy.logs();
    assert!(!logs.contains("corp-pw"), "the proxy password in the log");
    drop(proxy);

    // Without it: the answer names the unknown authority and the key to set.
    let tunnelled = tunnel.targets().len();
    let proxy = direct("no-ca").start(&t.sub("no-ca-logs"));
    let refused = download(
        &Go::new(&t.sub("go-no-ca"), &proxy.url()),
        &cwd,
        module,
        "v1.0.0",
    );
    assert!(
        !refused.success
            && refused
                .stderr
                .contains("certificate signed by unknown authority: set fetch.ca_file"),
        "{}",
        refused.stderr
    );
    assert!(tunnel.targets().len() > tunnelled, "{:?}", tunnel.targets());
}
