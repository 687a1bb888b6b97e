#!/usr/bin/env python3
"""Cached-hit benchmark: gomodproxy vs nginx serving the same files, side by side, one run.

What it does (everything on 127.0.0.1, bounded in time):
  1. builds gomodproxy in release mode;
  2. writes a file:// upstream in GOPROXY layout with a small module, a 10 MiB zip module and a
     100 MiB zip module (valid module zips);
  3. starts gomodproxy (fs storage in a temp dir), primes every artifact through it once;
  4. starts nginx with its root at gomodproxy's fs storage root (the store is in GOPROXY layout,
     so nginx serves byte-identical files);
  5. runs wrk against both for .info, .mod, list and the 10 MiB .zip (req/s, p99, bandwidth);
  6. runs 64 concurrent downloads of the 100 MiB zip against gomodproxy while sampling its RSS;
  7. (storage backends) starts a real redis-server and a real MinIO on loopback (the test-server
     scripts in tests/servers/), one gomodproxy per backend (fs, sled, redis, s3) with the memory
     cache off so that the backend itself is measured, plus fs with the memory cache on, primes
     each, and runs wrk against all of them for `.info` and the 10 MiB zip: req/s and p99, and
     ratios to fs.

Needs: cargo, wrk and nginx (Debian packages `wrk`, `nginx-light` or `nginx`); for the backends
part also redis-server, go and curl (MinIO is built once by tests/servers/install-s3.sh).
Usage: python3 tests/bench/bench.py [--duration 10] [--connections 64] [--rounds 3]
                                    [--part all|nginx|backends]
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_module(upstream, module, version, files):
    """Writes .info/.mod/.zip/list for one module version in GOPROXY layout (lower-case paths only)."""
    d = os.path.join(upstream, module, "@v")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "list"), "a") as f:
        f.write(version + "\n")
    with open(os.path.join(d, version + ".info"), "w") as f:
        json.dump({"Version": version, "Time": "2024-01-02T03:04:05Z"}, f)
    gomod = "module %s\n\ngo 1.21\n" % module
    with open(os.path.join(d, version + ".mod"), "w") as f:
        f.write(gomod)
    with zipfile.ZipFile(os.path.join(d, version + ".zip"), "w", zipfile.ZIP_STORED) as z:
        z.writestr("%s@%s/go.mod" % (module, version), gomod)
        for name, data in files.items():
            z.writestr("%s@%s/%s" % (module, version, name), data)


def wait_http(url, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError("timed out waiting for %s" % url)


def fetch(url):
    with urllib.request.urlopen(url, timeout=120) as r:
        return r.read()


def parse_size(s):
    m = re.match(r"([\d.]+)([KMGT]?B)", s)
    mult = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[m.group(2)]
    return float(m.group(1)) * mult


def parse_latency(s):
    m = re.match(r"([\d.]+)(us|ms|s)", s)
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def wrk(url, duration, connections, threads=2):
    # wrk's default 2 s timeout would drop slow requests (a 100 MiB download) from the latencies.
    out = subprocess.run(
        ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration, "--latency",
         "--timeout", "%ds" % (duration + 30), url],
        check=True, capture_output=True, text=True, timeout=duration + 60,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bw = parse_size(re.search(r"Transfer/sec:\s+([\d.]+\w+)", out).group(1))
    p99 = parse_latency(re.search(r"^\s+99%\s+([\d.]+\w+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError("wrk saw %s non-2xx responses for %s:\n%s" % (errors.group(1), url, out))
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        raise RuntimeError("wrk saw socket errors (%s) for %s" % (socket_errors.group(1), url))
    return {"rps": rps, "bw": bw, "p99_ms": p99}


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3,
                    help="proxy/nginx comparisons per artifact (the machine is noisy)")
    ap.add_argument("--part", choices=["all", "nginx", "backends"], default="all")
    args = ap.parse_args()
    for tool in ("cargo", "wrk", "nginx"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            sys.exit("bench: %s is required (apt-get install wrk nginx-light)" % tool)

    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "gomodproxy"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "gomodproxy")

    work = tempfile.mkdtemp(prefix="gomodproxy-bench-")
    # nginx's workers run as an unprivileged user (when started as root): they must be able to
    # enter the directory to read the store.
    os.chmod(work, 0o755)
    procs = []
    try:
        upstream = os.path.join(work, "upstream")
        rnd = random.Random(42)
        write_module(upstream, "bench.test/small", "v1.0.0", {"small.go": "package small\n"})
        write_module(upstream, "bench.test/zip10", "v1.0.0", {"blob.bin": rnd.randbytes(10 << 20)})
        write_module(upstream, "bench.test/zip100", "v1.0.0", {"blob.bin": rnd.randbytes(100 << 20)})

        store = os.path.join(work, "store")
        pport, nport = free_port(), free_port()
        env = dict(os.environ)
        env.update({
            "GOMODPROXY_LISTEN": "127.0.0.1:%d" % pport,
            "GOMODPROXY_UPSTREAM": "file://" + upstream,
            "GOMODPROXY_STORAGE__TYPE": "fs",
            "GOMODPROXY_STORAGE__FS__ROOT": store,
            "GOMODPROXY_LIST_TTL": "1h",
            "GOMODPROXY_LOG__LEVEL": "warn",
            # The benchmark's own modules are in no checksum database.
            "GOMODPROXY_SUMDB__VERIFY": "false",
        })
        proxy = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=open(os.path.join(work, "proxy.log"), "w"))
        procs.append(proxy)
        base = "http://127.0.0.1:%d" % pport
        wait_http(base + "/healthz")
        if args.part == "backends":
            backends(args, binary, upstream, work, procs)
            return

        paths = {
            "info": "/bench.test/small/@v/v1.0.0.info",
            "mod": "/bench.test/small/@v/v1.0.0.mod",
            "list": "/bench.test/small/@v/list",
            "zip 10 MiB": "/bench.test/zip10/@v/v1.0.0.zip",
        }
        for p in list(paths.values()) + ["/bench.test/zip100/@v/v1.0.0.zip"]:
            fetch(base + p)  # prime: fetched from upstream, validated, stored

        nginx_conf = os.path.join(work, "nginx.conf")
        with open(nginx_conf, "w") as f:
            f.write("""
worker_processes auto;
daemon off;
pid %(w)s/nginx.pid;
error_log %(w)s/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path %(w)s/nginx-tmp;
    proxy_temp_path %(w)s/nginx-tmp;
    fastcgi_temp_path %(w)s/nginx-tmp;
    uwsgi_temp_path %(w)s/nginx-tmp;
    scgi_temp_path %(w)s/nginx-tmp;
    server {
        listen 127.0.0.1:%(port)d;
        root %(root)s;
        location / { try_files $uri =404; }
    }
}
""" % {"w": work, "port": nport, "root": store})
        nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        ngx = subprocess.Popen([nginx_bin, "-c", nginx_conf, "-p", work], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        procs.append(ngx)
        nbase = "http://127.0.0.1:%d" % nport
        wait_http(nbase + paths["info"])
        for name, p in paths.items():
            if fetch(base + p) != fetch(nbase + p):
                sys.exit("bench: proxy and nginx bodies differ for %s" % p)

        print("\ncached hits, wrk -t2 -c%d -d%ds, client and servers on one %d-core machine;"
              " %d rounds alternating proxy and nginx, medians (ratio: median of the rounds'"
              " ratios, range in brackets)" % (args.connections, args.duration, os.cpu_count(),
                                              args.rounds))
        print("%-12s %12s %12s %6s %13s %11s %11s %8s %8s" % (
            "artifact", "proxy req/s", "nginx req/s", "ratio", "", "proxy MiB/s", "nginx MiB/s",
            "p99 px", "p99 ngx"))
        for name, p in paths.items():
            rounds = []
            for _ in range(args.rounds):
                rounds.append((wrk(base + p, args.duration, args.connections),
                               wrk(nbase + p, args.duration, args.connections)))
            ratios = [a["rps"] / b["rps"] for a, b in rounds]
            a = {k: median([r[0][k] for r in rounds]) for k in rounds[0][0]}
            b = {k: median([r[1][k] for r in rounds]) for k in rounds[0][1]}
            print("%-12s %12.0f %12.0f %5.2fx [%4.2f-%4.2f] %11.1f %11.1f %6.2fms %6.2fms" % (
                name, a["rps"], b["rps"], median(ratios), min(ratios), max(ratios),
                a["bw"] / (1 << 20), b["bw"] / (1 << 20), a["p99_ms"], b["p99_ms"]))

        big = base + "/bench.test/zip100/@v/v1.0.0.zip"
        sampler = RssSampler(proxy.pid)
        idle = rss_kib(proxy.pid)
        sampler.start()
        r = wrk(big, args.duration, 64)
        sampler.stop.set()
        sampler.join()
        print("\n64 concurrent downloads of a 100 MiB zip for %ds: %.1f MiB/s, p99 %.0f ms" % (
            args.duration, r["bw"] / (1 << 20), r["p99_ms"]))
        print("gomodproxy RSS: idle %.1f MiB, peak under load %.1f MiB (target < 50 MiB)" % (
            idle / 1024, sampler.peak / 1024))
        if args.part == "all":
            backends(args, binary, upstream, work, procs)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


def script(*argv):
    """Runs a tests/servers script; returns its stdout lines as a dict of VAR=value."""
    out = subprocess.run([os.path.join(ROOT, "tests", "servers", argv[0])] + list(argv[1:]),
                         check=True, capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def backends(args, binary, upstream, work, procs):
    """Cached hits on every storage backend, side by side, as ratios to fs."""
    subprocess.run([os.path.join(ROOT, "tests", "servers", "install-s3.sh")], check=True,
                   stdout=subprocess.DEVNULL)
    redis_dir, s3_dir = os.path.join(work, "redis"), os.path.join(work, "s3")
    os.makedirs(redis_dir)
    os.makedirs(s3_dir)
    redis_url = script("redis.sh", "start", redis_dir)["GOMODPROXY_TEST_REDIS_URL"]
    stops = [("redis.sh", "stop", redis_dir)]
    try:
        s3 = script("s3.sh", "start", s3_dir)
        stops.append(("s3.sh", "stop", s3_dir))
        common = {
            "GOMODPROXY_UPSTREAM": "file://" + upstream,
            "GOMODPROXY_LIST_TTL": "1h",
            "GOMODPROXY_LOG__LEVEL": "warn",
            "GOMODPROXY_SUMDB__VERIFY": "false",
            "GOMODPROXY_CACHE__MEMORY_BYTES": "0",
        }
        setups = [
            ("fs", {"GOMODPROXY_STORAGE__TYPE": "fs",
                    "GOMODPROXY_STORAGE__FS__ROOT": os.path.join(work, "b-fs")}),
            ("sled", {"GOMODPROXY_STORAGE__TYPE": "sled",
                      "GOMODPROXY_STORAGE__SLED__PATH": os.path.join(work, "b-sled")}),
            ("redis", {"GOMODPROXY_STORAGE__TYPE": "redis",
                       "GOMODPROXY_STORAGE__REDIS__URL": redis_url,
                       "GOMODPROXY_STORAGE__REDIS__KEY_PREFIX": "bench:"}),
            ("s3 (MinIO)", {"GOMODPROXY_STORAGE__TYPE": "s3",
                            "GOMODPROXY_STORAGE__S3__BUCKET": s3["GOMODPROXY_TEST_S3_BUCKET"],
                            "GOMODPROXY_STORAGE__S3__ENDPOINT": s3["GOMODPROXY_TEST_S3_ENDPOINT"],
                            "GOMODPROXY_STORAGE__S3__ALLOW_HTTP": "true",
                            "GOMODPROXY_STORAGE__S3__ACCESS_KEY_ID": s3["GOMODPROXY_TEST_S3_ACCESS_KEY"],
                            "GOMODPROXY_STORAGE__S3__SECRET_ACCESS_KEY": s3["GOMODPROXY_TEST_S3_SECRET_KEY"],
                            "GOMODPROXY_STORAGE__S3__KEY_PREFIX": "bench/"}),
            ("fs + memory cache", {"GOMODPROXY_STORAGE__TYPE": "fs",
                                   "GOMODPROXY_STORAGE__FS__ROOT": os.path.join(work, "b-fs"),
                                   "GOMODPROXY_CACHE__MEMORY_BYTES": str(64 << 20)}),
        ]
        paths = [("info", "/bench.test/small/@v/v1.0.0.info"),
                 ("zip 10 MiB", "/bench.test/zip10/@v/v1.0.0.zip")]
        bases = []
        for name, extra in setups:
            port = free_port()
            env = dict(os.environ)
            env.update(common)
            env.update(extra)
            env["GOMODPROXY_LISTEN"] = "127.0.0.1:%d" % port
            p = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=open(os.path.join(work, "backend-%d.log" % port), "w"))
            procs.append(p)
            base = "http://127.0.0.1:%d" % port
            wait_http(base + "/healthz")
            for _, path in paths:
                fetch(base + path)  # prime
            bases.append((name, base))
        print("\nstorage backends: cached hits, wrk -t2 -c%d -d%ds (memory cache off unless named)"
              % (args.connections, args.duration))
        print("%-18s %-11s %11s %9s %11s %9s" % ("backend", "artifact", "req/s", "vs fs", "p99", "MiB/s"))
        reference = {}
        for name, base in bases:
            for label, path in paths:
                r = wrk(base + path, args.duration, args.connections)
                reference.setdefault(label, r["rps"])
                print("%-18s %-11s %11.0f %8.2fx %9.2fms %9.1f" % (
                    name, label, r["rps"], r["rps"] / reference[label], r["p99_ms"],
                    r["bw"] / (1 << 20)))
    finally:
        for stop in stops:
            subprocess.run([os.path.join(ROOT, "tests", "servers", stop[0])] + list(stop[1:]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
