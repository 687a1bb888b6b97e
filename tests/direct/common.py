"""Shared pieces of the direct-mode scripts (bench.py, realworld.py): a git daemon on loopback,
the gomodproxy binary configured for `direct`, the go command with an isolated environment,
timed HTTP GETs and RSS sampling. Standard library only.
"""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Fixed identity and dates: the same repository hashes on every run.
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on 127.0.0.1:%d" % port)


def release_binary(build=True):
    """The release gomodproxy binary of this tree (built first unless build=False)."""
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    if build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "gomodproxy"],
                       cwd=ROOT, check=True)
    return os.path.join(target, "release", "gomodproxy")


class World:
    """A scratch root with its own HOME and global git config; repositories under `repos/`."""

    def __init__(self, root):
        self.root = root
        self.home = os.path.join(root, "home")
        self.repos = os.path.join(root, "repos")
        os.makedirs(self.home, exist_ok=True)
        os.makedirs(self.repos, exist_ok=True)
        self.gitconfig = os.path.join(root, "gitconfig")
        with open(self.gitconfig, "w") as f:
            f.write("[init]\n\tdefaultBranch = main\n")
        self.daemon = None
        self.port = None

    def env(self, **extra):
        env = {
            "PATH": os.environ["PATH"],
            "HOME": self.home,
            "GIT_CONFIG_GLOBAL": self.gitconfig,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
        }
        env.update(GIT_IDENTITY)
        env.update(extra)
        return env

    def git(self, cwd, *args, stdin=None, env=None):
        return subprocess.run(["git", *args], cwd=cwd, env=env or self.env(), input=stdin,
                              check=True, stdout=subprocess.PIPE).stdout

    def start_daemon(self):
        self.port = free_port()
        self.daemon = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--base-path=" + self.repos,
             "--listen=127.0.0.1", "--port=%d" % self.port, self.repos],
            env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def instead_of(self, https_prefix, repo_dir):
        """Maps `https://<https_prefix>` to the daemon's `<repo_dir>` (relative to repos/)."""
        with open(self.gitconfig, "a") as f:
            f.write('[url "git://127.0.0.1:%d/%s"]\n\tinsteadOf = https://%s\n'
                    % (self.port, repo_dir, https_prefix))

    def stop(self):
        if self.daemon:
            self.daemon.terminate()
            self.daemon.wait()


def go_env(world, gomodcache, goproxy, **extra):
    """The go command's environment: isolated caches, GOPROXY as given, no checksum database."""
    base = os.path.dirname(gomodcache)
    env = world.env(
        GOPROXY=goproxy, GOSUMDB="off", GONOSUMDB="", GOPRIVATE="", GONOPROXY="",
        GOTOOLCHAIN="local", GOFLAGS="-modcacherw", GOMODCACHE=gomodcache,
        GOPATH=os.path.join(base, "gopath"), GOCACHE=os.path.join(base, "gocache"),
        GOENV="off", GOINSECURE="", GIT_HTTP_USER_AGENT="")
    env.update(extra)
    return env


class Proxy:
    """gomodproxy `serve` with fs storage under `dir`, upstream `upstream`, configured by
    `GOMODPROXY_*` variables (`env`, keys without the prefix) and an optional TOML file."""

    def __init__(self, binary, dir, world, upstream="direct", env=None, toml=None, raw_env=None):
        os.makedirs(dir, exist_ok=True)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        full = {
            "PATH": os.environ["PATH"],
            "GOMODPROXY_LISTEN": "127.0.0.1:%d" % self.port,
            "GOMODPROXY_MODE": "online",
            "GOMODPROXY_UPSTREAM": upstream,
            "GOMODPROXY_STORAGE__TYPE": "fs",
            "GOMODPROXY_STORAGE__FS__ROOT": os.path.join(dir, "store"),
            "GOMODPROXY_SUMDB__VERIFY": "false",
            "GOMODPROXY_LOG__LEVEL": "warn",
            "GOMODPROXY_DIRECT__CACHE_DIR": os.path.join(dir, "vcs"),
            "GOMODPROXY_DIRECT__HOME": world.home,
            "GOMODPROXY_DIRECT__GIT_CONFIG": world.gitconfig,
            "GOMODPROXY_DIRECT__NETRC": "/dev/null",
            "TMPDIR": dir,
        }
        for k, v in (env or {}).items():
            full["GOMODPROXY_" + k] = v
        full.update(raw_env or {})
        args = [binary, "serve"]
        if toml is not None:
            path = os.path.join(dir, "gomodproxy.toml")
            with open(path, "w") as f:
                f.write(toml)
            args += ["--config", path]
        self.log = open(os.path.join(dir, "proxy.log"), "w")
        self.process = subprocess.Popen(args, env=full, stdout=self.log, stderr=self.log,
                                        stdin=subprocess.DEVNULL)
        deadline = time.time() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("gomodproxy exited:\n" + open(self.log.name).read())
            try:
                if get(self.port, "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("gomodproxy did not start:\n" + open(self.log.name).read())
            time.sleep(0.05)

    def rss_kib(self, field="VmRSS"):
        with open("/proc/%d/status" % self.process.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def get(port, path, timeout=600):
    """GET http://127.0.0.1:port/path → (status, body, seconds)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, body, time.perf_counter() - started
    finally:
        conn.close()


class RssSampler:
    """Samples a process's VmRSS every `every` seconds in a thread; `.peak`, `.samples`."""

    def __init__(self, proxy, every=0.05):
        self.proxy = proxy
        self.every = every
        self.samples = []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_flag.is_set():
            try:
                self.samples.append(self.proxy.rss_kib())
            except OSError:
                return
            time.sleep(self.every)

    def stop(self):
        self.stop_flag.set()
        self.thread.join()
        return max(self.samples or [0])


def percentile(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def rmtree(path):
    """Removes a tree the go command made read-only."""
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            try:
                os.chmod(os.path.join(dirpath, d), 0o755)
            except OSError:
                pass
    shutil.rmtree(path, ignore_errors=True)
