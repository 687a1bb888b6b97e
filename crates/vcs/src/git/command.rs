//! Running `git`: a clean environment, a cap on concurrent processes, a time bound that kills
//! the whole process group, bounded output, and redacted errors.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::Semaphore;

use crate::config::Settings;
use crate::error::VcsError;
use crate::redact::{redact, trim_stderr};

/// Most bytes of standard error kept from one git process.
const MAX_STDERR: usize = 64 << 10;

/// Where a git process's standard output goes.
pub(crate) enum Stdout<'a> {
    /// Collected in memory, at most this many bytes (more is [`RunFailure::TooLarge`]).
    Capture(usize),
    /// Written to this file, at most this many bytes.
    File(&'a mut tokio::fs::File, u64),
}

/// One git invocation.
pub(crate) struct GitCommand<'a> {
    /// Arguments after `git`.
    pub args: Vec<OsString>,
    /// `GIT_DIR` (a bare mirror), if any.
    pub git_dir: Option<&'a Path>,
    /// Whether this talks to a remote (for the error message and the time bound).
    pub network: bool,
    /// Kill the process if this directory grows past this many bytes.
    pub size_watch: Option<(&'a Path, u64)>,
    pub stdout: Stdout<'a>,
    /// A shorter time bound than `git_timeout` for this command.
    pub timeout: Option<Duration>,
}

impl<'a> GitCommand<'a> {
    pub fn new<I, S>(args: I) -> GitCommand<'a>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        GitCommand {
            args: args.into_iter().map(Into::into).collect(),
            git_dir: None,
            network: false,
            size_watch: None,
            stdout: Stdout::Capture(64 << 20),
            timeout: None,
        }
    }

    /// Bounds this command by `limit` (or `git_timeout`, if that is shorter).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    pub fn dir(mut self, git_dir: &'a Path) -> Self {
        self.git_dir = Some(git_dir);
        self
    }

    pub fn network(mut self) -> Self {
        self.network = true;
        self
    }

    pub fn stdout_limit(mut self, limit: usize) -> Self {
        self.stdout = Stdout::Capture(limit);
        self
    }

    pub fn stdout_file(mut self, file: &'a mut tokio::fs::File, limit: u64) -> Self {
        self.stdout = Stdout::File(file, limit);
        self
    }

    pub fn watch_size(mut self, dir: &'a Path, limit: u64) -> Self {
        self.size_watch = Some((dir, limit));
        self
    }
}

/// How a git process ended, when it did not succeed.
#[derive(Debug)]
pub(crate) enum RunFailure {
    /// It exited with this status (or was killed by a signal: `None`).
    Exit { code: Option<i32>, stderr: String },
    /// It ran past the time bound.
    Timeout(Duration),
    /// Its output, or the directory it writes, grew past the bound.
    TooLarge(String),
    /// No process slot within the queue timeout.
    Busy,
    /// It could not be started, or reading its output failed.
    Io(std::io::Error),
}

/// A failed git run: what ran (redacted), and how it ended.
#[derive(Debug)]
pub(crate) struct RunError {
    pub command: String,
    pub failure: RunFailure,
}

impl RunError {
    pub fn stderr(&self) -> &str {
        match &self.failure {
            RunFailure::Exit { stderr, .. } => stderr,
            _ => "",
        }
    }

    pub fn exit_code(&self) -> Option<i32> {
        match &self.failure {
            RunFailure::Exit { code, .. } => *code,
            _ => None,
        }
    }

    /// The error for the service. `host` names the server for authentication failures.
    pub fn into_vcs(self, host: &str) -> VcsError {
        match self.failure {
            RunFailure::Timeout(after) => VcsError::Timeout {
                operation: self.command,
                after,
            },
            RunFailure::TooLarge(reason) => VcsError::TooLarge { reason },
            RunFailure::Busy => VcsError::Busy {
                reason: format!("all git process slots in use ({})", self.command),
            },
            RunFailure::Io(e) => VcsError::io(self.command, e),
            RunFailure::Exit { stderr, .. } => classify(self.command, stderr, host),
        }
    }
}

/// Sorts a failed network git command's stderr into the error kinds the service maps.
fn classify(command: String, stderr: String, host: &str) -> VcsError {
    let lower = stderr.to_ascii_lowercase();
    let auth = [
        "could not read username",
        "could not read password",
        "authentication failed",
        "http basic: access denied",
        "permission denied (publickey",
        "returned error: 401",
        "returned error: 403",
        "host key verification failed",
        "the requested url returned error: 401",
    ];
    if auth.iter().any(|p| lower.contains(p)) {
        return VcsError::Auth {
            host: host.to_string(),
            reason: stderr,
        };
    }
    // git's curl does not trust the server's certificate (OpenSSL and GnuTLS builds): say it
    // in the words of the HTTP upstreams, which name the key that fixes it.
    let untrusted = [
        "unable to get local issuer certificate",
        "self-signed certificate in certificate chain",
        "self signed certificate in certificate chain",
        "certificate signer not trusted",
        "server certificate verification failed",
    ];
    if untrusted.iter().any(|p| lower.contains(p)) {
        let words = gomodproxy_tls::TlsProblem::UnknownAuthority;
        return VcsError::Git {
            command,
            stderr: format!("{stderr} ({words})"),
        };
    }
    let missing = [
        "repository not found",
        "not found",
        "does not appear to be a git repository",
        "no such repository",
        "returned error: 404",
        "access denied or repository not exported",
        "repository not exported",
    ];
    if missing.iter().any(|p| lower.contains(p)) {
        return VcsError::not_found(host.to_string(), format!("{command}: {stderr}"));
    }
    if lower.contains("transport '") && lower.contains("not allowed") {
        let never = lower.contains("transport 'file'") || lower.contains("transport 'ext'");
        let hint = if never {
            "local and command transports are never allowed"
        } else {
            "allow the protocol with direct.allowed_protocols, or map the URL with an \
             insteadOf rule"
        };
        return VcsError::Unsupported {
            reason: format!("{command}: {stderr} ({hint})"),
        };
    }
    VcsError::Git { command, stderr }
}

/// Runs git for the whole crate.
pub(crate) struct Git {
    exe: PathBuf,
    env: Vec<(OsString, OsString)>,
    /// Working directory for commands without a repository.
    scratch: PathBuf,
    secrets: Arc<Vec<String>>,
    slots: Semaphore,
    queue_timeout: Duration,
    timeout: Duration,
    /// Processes started, ever (for metrics).
    pub started: AtomicU64,
}

/// Quotes a word for the shell git runs `GIT_SSH_COMMAND` with.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Git {
    /// Builds the environment every git process gets. `protocols` is the allow-list.
    pub fn new(settings: &Settings, protocols: &[String], secrets: Arc<Vec<String>>) -> Git {
        let mut env: Vec<(OsString, OsString)> = Vec::new();
        let mut set = |k: &str, v: &str| env.push((k.into(), v.into()));
        set(
            "PATH",
            settings
                .path_env
                .as_deref()
                .unwrap_or("/usr/local/bin:/usr/bin:/bin"),
        );
        let home = settings
            .home
            .clone()
            .unwrap_or_else(|| settings.cache_dir.join("home"));
        set("HOME", &home.to_string_lossy());
        match &settings.git_config {
            Some(p) => set("GIT_CONFIG_GLOBAL", &p.to_string_lossy()),
            None => set("GIT_CONFIG_GLOBAL", "/dev/null"),
        }
        if !settings.system_git_config {
            set("GIT_CONFIG_NOSYSTEM", "1");
        }
        // Never ask anyone anything: there is no one to answer.
        set("GIT_TERMINAL_PROMPT", "0");
        set("GCM_INTERACTIVE", "never");
        set("GIT_ASKPASS", "");
        set("SSH_ASKPASS", "");
        // English messages, so failures can be classified.
        set("LC_ALL", "C");
        set("LANG", "C");
        set("GIT_ALLOW_PROTOCOL", &protocols.join(":"));
        let ceiling = settings.cache_dir.to_string_lossy().to_string();
        set("GIT_CEILING_DIRECTORIES", &ceiling);
        if let Some(sock) = &settings.ssh_auth_sock {
            set("SSH_AUTH_SOCK", sock);
        }
        if settings.ssh_key.is_some() || settings.ssh_known_hosts.is_some() {
            let mut ssh = String::from("ssh -o BatchMode=yes");
            if let Some(key) = &settings.ssh_key {
                ssh.push_str(&format!(
                    " -o IdentitiesOnly=yes -i {}",
                    shell_quote(&key.to_string_lossy())
                ));
            }
            if let Some(kh) = &settings.ssh_known_hosts {
                ssh.push_str(&format!(
                    " -o StrictHostKeyChecking=yes -o UserKnownHostsFile={}",
                    shell_quote(&kh.to_string_lossy())
                ));
            }
            set("GIT_SSH_COMMAND", &ssh);
        }
        if let Some(proxy) = &settings.http_proxy {
            for k in ["http_proxy", "https_proxy", "HTTPS_PROXY"] {
                set(k, proxy);
            }
        }
        if let Some(no_proxy) = &settings.no_proxy {
            set("no_proxy", no_proxy);
            set("NO_PROXY", no_proxy);
        }

        // Configuration that no git config file may override (GIT_CONFIG_COUNT is the
        // command-line level): no hooks, no submodules, no detached background work, and the
        // per-host credentials as headers (so secrets are never on a command line).
        let mut config: Vec<(String, String)> = vec![
            ("core.hooksPath".into(), "/dev/null".into()),
            ("submodule.recurse".into(), "false".into()),
            ("fetch.recurseSubmodules".into(), "false".into()),
            ("gc.autoDetach".into(), "false".into()),
            ("maintenance.auto".into(), "false".into()),
            ("credential.interactive".into(), "false".into()),
            ("advice.detachedHead".into(), "false".into()),
        ];
        config.extend(settings.git_tls.iter().cloned());
        for c in &settings.credentials {
            config.push((
                format!("http.{}.extraHeader", c.prefix),
                format!("Authorization: {}", c.basic_auth()),
            ));
        }
        set("GIT_CONFIG_COUNT", &config.len().to_string());
        for (i, (k, v)) in config.iter().enumerate() {
            set(&format!("GIT_CONFIG_KEY_{i}"), k);
            set(&format!("GIT_CONFIG_VALUE_{i}"), v);
        }

        Git {
            exe: settings.git.clone(),
            env,
            scratch: settings.cache_dir.join("tmp"),
            secrets,
            slots: Semaphore::new(settings.max_git_processes),
            queue_timeout: settings.queue_timeout,
            timeout: settings.git_timeout,
            started: AtomicU64::new(0),
        }
    }

    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    pub fn redact(&self, text: &str) -> String {
        redact(text, &self.secrets)
    }

    /// The environment and executable, for the synchronous start-up probes.
    pub fn std_command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.exe);
        c.env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.scratch)
            .stdin(Stdio::null());
        c
    }

    /// Runs one git command; returns its standard output (empty when it went to a file).
    pub async fn run(&self, cmd: GitCommand<'_>) -> Result<Vec<u8>, RunError> {
        let shown = {
            let mut s = String::from("git");
            for a in &cmd.args {
                s.push(' ');
                s.push_str(&a.to_string_lossy());
            }
            self.redact(&s)
        };
        let fail = |failure| RunError {
            command: shown.clone(),
            failure,
        };

        let _permit = match tokio::time::timeout(self.queue_timeout, self.slots.acquire()).await {
            Ok(Ok(permit)) => permit,
            _ => return Err(fail(RunFailure::Busy)),
        };
        self.started.fetch_add(1, Ordering::Relaxed);

        let mut command = Command::new(&self.exe);
        command
            .args(&cmd.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        match cmd.git_dir {
            Some(dir) => {
                command.env("GIT_DIR", dir).current_dir(dir);
            }
            None => {
                command.current_dir(&self.scratch);
            }
        }
        // A session of its own: no controlling terminal (ssh cannot prompt), and one process
        // group to kill with everything git started (remote helpers, ssh).
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = match command.spawn() {
            Ok(c) => c,
            Err(e) => return Err(fail(RunFailure::Io(e))),
        };
        let pgid = child.id().map(|p| p as i32);
        let kill_group = || {
            if let Some(pgid) = pgid {
                // SAFETY: plain syscall on a process group we created.
                unsafe {
                    libc::killpg(pgid, libc::SIGKILL);
                }
            }
        };

        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let started = Instant::now();
        let limit = cmd.timeout.map_or(self.timeout, |t| t.min(self.timeout));
        let deadline = started + limit;

        let work = async {
            let out = async {
                let result = match (stdout, cmd.stdout) {
                    (Some(out), Stdout::Capture(limit)) => read_capped(out, limit).await,
                    (Some(out), Stdout::File(file, limit)) => {
                        copy_capped(out, file, limit).await.map(|_| Vec::new())
                    }
                    (None, _) => Ok(Vec::new()),
                };
                // Stop a process whose output we no longer read, or it blocks until the
                // time bound.
                if result.is_err() {
                    kill_group();
                }
                result
            };
            let err = async {
                match stderr {
                    Some(e) => read_tail(e, MAX_STDERR).await,
                    None => Ok(Vec::new()),
                }
            };
            let watch = async {
                match cmd.size_watch {
                    Some((dir, limit)) => watch_size(dir, limit).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                (out, err) = async { tokio::join!(out, err) } => Ok((out, err)),
                over = watch => Err(over),
            }
        };

        let outcome = tokio::time::timeout_at(deadline.into(), work).await;
        let (out, err) = match outcome {
            Err(_) => {
                kill_group();
                let _ = child.wait().await;
                return Err(fail(RunFailure::Timeout(limit)));
            }
            Ok(Err(size)) => {
                kill_group();
                let _ = child.wait().await;
                return Err(fail(RunFailure::TooLarge(size)));
            }
            Ok(Ok(streams)) => streams,
        };
        let stderr_bytes = err.unwrap_or_default();
        let out = match out {
            Ok(o) => o,
            Err(Capped::Over) => {
                kill_group();
                let _ = child.wait().await;
                return Err(fail(RunFailure::TooLarge(format!(
                    "output of {shown} is over its size limit"
                ))));
            }
            Err(Capped::Io(e)) => {
                kill_group();
                let _ = child.wait().await;
                return Err(fail(RunFailure::Io(e)));
            }
        };
        let status = match tokio::time::timeout_at(deadline.into(), child.wait()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(fail(RunFailure::Io(e))),
            Err(_) => {
                kill_group();
                let _ = child.wait().await;
                return Err(fail(RunFailure::Timeout(limit)));
            }
        };
        if status.success() {
            tracing::debug!(command = %shown, elapsed_ms = started.elapsed().as_millis() as u64, "git");
            Ok(out)
        } else {
            Err(fail(RunFailure::Exit {
                code: status.code(),
                stderr: trim_stderr(&stderr_bytes, &self.secrets),
            }))
        }
    }
}

enum Capped {
    Over,
    Io(std::io::Error),
}

async fn read_capped(mut r: impl AsyncRead + Unpin, limit: usize) -> Result<Vec<u8>, Capped> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = r.read(&mut chunk).await.map_err(Capped::Io)?;
        if n == 0 {
            return Ok(buf);
        }
        if buf.len() + n > limit {
            return Err(Capped::Over);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads `r` to its end, keeping the last `limit` bytes or so.
async fn read_tail(mut r: impl AsyncRead + Unpin, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 << 10];
    loop {
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 2 * limit {
            buf.drain(..buf.len() - limit);
        }
    }
}

async fn copy_capped(
    mut r: impl AsyncRead + Unpin,
    file: &mut tokio::fs::File,
    limit: u64,
) -> Result<u64, Capped> {
    let mut total = 0u64;
    let mut chunk = vec![0u8; 256 << 10];
    loop {
        let n = r.read(&mut chunk).await.map_err(Capped::Io)?;
        if n == 0 {
            file.flush().await.map_err(Capped::Io)?;
            return Ok(total);
        }
        total += n as u64;
        if total > limit {
            return Err(Capped::Over);
        }
        file.write_all(&chunk[..n]).await.map_err(Capped::Io)?;
    }
}

/// Resolves when `dir` holds more than `limit` bytes (checked every 500 ms).
async fn watch_size(dir: &Path, limit: u64) -> String {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let dir2 = dir.to_path_buf();
        let size = tokio::task::spawn_blocking(move || dir_size(&dir2))
            .await
            .unwrap_or(0);
        if size > limit {
            return format!("repository mirror grew past max_repo_size ({size} > {limit} bytes)");
        }
    }
}

/// Total size of the regular files under `dir` (0 if it cannot be read).
pub(crate) fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::{CredentialConfig, DirectConfig, Secret};

    #[test]
    fn environment_carries_ssh_options_protocols_and_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("deploy key's");
        let known = dir.path().join("known_hosts");
        std::fs::write(&key, "k").unwrap();
        std::fs::write(&known, "h").unwrap();
        let config = DirectConfig {
            cache_dir: dir.path().to_path_buf(),
            home: Some(dir.path().to_path_buf()),
            git_config: None,
            ssh_key: Some(key.clone()),
            ssh_known_hosts: Some(known.clone()),
            credentials: vec![CredentialConfig {
                host: "git.example.com".into(),
                username: "u".into(),
                token: Some(Secret::new("tok-123456")),
                token_file: None,
            }],
            ..DirectConfig::default()
        };
        let settings = config.resolve().unwrap();
        let git = Git::new(
            &settings,
            &["https".to_string(), "ssh".to_string()],
            Arc::new(vec!["tok-123456".into()]),
        );
        let env: HashMap<String, String> = git
            .env
            .iter()
            .map(|(k, v)| (k.to_string_lossy().into(), v.to_string_lossy().into()))
            .collect();
        assert_eq!(
            env["GIT_SSH_COMMAND"],
            format!(
                "ssh -o BatchMode=yes -o IdentitiesOnly=yes -i '{}/deploy key'\\''s' \
                 -o StrictHostKeyChecking=yes -o UserKnownHostsFile='{}'",
                dir.path().display(),
                known.display()
            )
        );
        assert_eq!(env["GIT_ALLOW_PROTOCOL"], "https:ssh");
        assert_eq!(env["GIT_TERMINAL_PROMPT"], "0");
        assert_eq!(env["GIT_CONFIG_GLOBAL"], "/dev/null");
        let n: usize = env["GIT_CONFIG_COUNT"].parse().unwrap();
        let config: Vec<(String, String)> = (0..n)
            .map(|i| {
                (
                    env[&format!("GIT_CONFIG_KEY_{i}")].clone(),
                    env[&format!("GIT_CONFIG_VALUE_{i}")].clone(),
                )
            })
            .collect();
        assert!(config.contains(&("core.hooksPath".into(), "/dev/null".into())));
        // base64("u:tok-123456")
        assert!(config.contains(&(
            "http.https://git.example.com/.extraHeader".into(),
            "Authorization: Basic dTp0b2stMTIzNDU2".into()
        )));
        assert_eq!(git.redact("x tok-123456 y"), "x *** y");
    }

    #[test]
    fn failures_are_classified() {
        let c = |stderr: &str| classify("git ls-remote".into(), stderr.into(), "git.example.com");
        assert!(matches!(
            c(
                "fatal: could not read Username for 'https://git.example.com': terminal prompts disabled"
            ),
            VcsError::Auth { .. }
        ));
        assert!(matches!(
            c("remote: HTTP Basic: Access denied\nfatal: Authentication failed for 'https://x/'"),
            VcsError::Auth { .. }
        ));
        assert!(matches!(
            c("git@x: Permission denied (publickey)."),
            VcsError::Auth { .. }
        ));
        assert!(matches!(
            c("remote: Repository not found."),
            VcsError::NotFound { .. }
        ));
        assert!(matches!(
            c("fatal: remote error: access denied or repository not exported: /x"),
            VcsError::NotFound { .. }
        ));
        assert!(matches!(
            c("fatal: transport 'file' not allowed"),
            VcsError::Unsupported { .. }
        ));
        assert!(matches!(c("fatal: early EOF"), VcsError::Git { .. }));
        for untrusted in [
            "fatal: unable to access 'https://x/': SSL certificate problem: unable to get local issuer certificate",
            "fatal: unable to access 'https://x/': server certificate verification failed. CAfile: none CRLfile: none",
        ] {
            let VcsError::Git { stderr, .. } = c(untrusted) else {
                panic!("{untrusted}: not a git error");
            };
            assert!(
                stderr.starts_with(untrusted)
                    && stderr
                        .ends_with("(certificate signed by unknown authority: set fetch.ca_file)"),
                "{stderr}"
            );
        }
    }
}
