#!/usr/bin/env python3
"""What TLS and client authentication cost: cached `.info` req/s over plain HTTP without auth vs
HTTPS with basic auth, side by side in one run, and the TLS handshake rate with and without
session resumption.

What it does (everything on 127.0.0.1):
  1. builds gomodproxy in release mode;
  2. makes a test CA and a server certificate for 127.0.0.1 (openssl), an htpasswd file with a
     bcrypt (cost 10) user (htpasswd -B), and a file:// upstream with one small module;
  3. starts two gomodproxy processes over one fs store: `plain` (HTTP, no auth) and `secure`
     (HTTPS on tls.listen with basic auth required, plus its plain listener, also with auth);
     a third, `audited`, is `secure` with the audit log on (INFO lines to /dev/null);
  4. primes the `.info`, then runs wrk (keep-alive connections, as the go command uses) against
     each, interleaved over --rounds rounds: median req/s and p99, ratios to `plain`;
  5. measures full TLS handshakes per second and resumed ones (openssl s_time -new / -reuse),
     for TLS 1.2 (session IDs) and TLS 1.3 (tickets; s_time's TLS 1.3 resumption still does a
     key exchange, so it gains little).

Needs: cargo, wrk, openssl, htpasswd (apache2-utils).
Usage: python3 tests/bench/access.py [--duration 10] [--connections 64] [--rounds 3]
"""

import argparse
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import ROOT, free_port, median, parse_latency, rss_kib, write_module  # noqa: E402

MODULE, VERSION = "example.com/small", "v1.0.0"


def run(*argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


def make_certs(work):
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", f"{work}/ca.key", "-out", f"{work}/ca.pem", "-days", "2",
        "-subj", "/CN=bench CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{work}/server.key", "-out", f"{work}/server.csr", "-subj", "/CN=127.0.0.1")
    with open(f"{work}/ext", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", f"{work}/server.csr", "-CA", f"{work}/ca.pem",
        "-CAkey", f"{work}/ca.key", "-CAcreateserial", "-out", f"{work}/server.pem",
        "-days", "2", "-extfile", f"{work}/ext")


def wait_for(argv, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if subprocess.run(argv, capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("timed out: %s" % " ".join(argv))


def wrk(url, duration, connections, headers=()):
    argv = ["wrk", "-t2", "-c%d" % connections, "-d%ds" % duration, "--latency"]
    for h in headers:
        argv += ["-H", h]
    out = run(*argv, url, timeout=duration + 60).stdout
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out) or "Socket errors" in out:
        raise RuntimeError("wrk saw errors for %s:\n%s" % (url, out))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p99_ms": parse_latency(re.search(r"^\s+99%\s+([\d.]+\w+)", out, re.M).group(1)),
    }


def s_time(port, ca, mode, version, seconds):
    out = subprocess.run(
        ["openssl", "s_time", "-connect", "127.0.0.1:%d" % port, "-CAfile", ca, mode, version,
         "-time", str(seconds)],
        capture_output=True, text=True, timeout=seconds + 30).stdout
    m = re.search(r"(\d+) connections in (\d+) real seconds", out)
    if not m:
        raise RuntimeError("openssl s_time %s:\n%s" % (mode, out))
    return int(m.group(1)) / max(int(m.group(2)), 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    for tool in ["wrk", "openssl", "htpasswd", "curl"]:
        if not shutil.which(tool):
            sys.exit("needs %s on PATH" % tool)

    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "gomodproxy"], cwd=ROOT,
                   check=True)
    binary = os.path.join(target, "release", "gomodproxy")

    work = tempfile.mkdtemp(prefix="gomodproxy-bench-access-")
    procs = []
    try:
        make_certs(work)
        with open(f"{work}/htpasswd", "w") as f:
            f.write(run("htpasswd", "-nbB", "-C", "10", "alice", "s3cret").stdout.strip() + "\n")
        upstream = os.path.join(work, "upstream")
        write_module(upstream, MODULE, VERSION, {"a.go": "package small\n"})
        store = os.path.join(work, "store")
        base = {
            "PATH": os.environ["PATH"],
            "GOMODPROXY_UPSTREAM": "file://" + upstream,
            "GOMODPROXY_STORAGE__TYPE": "fs",
            "GOMODPROXY_STORAGE__FS__ROOT": store,
            "GOMODPROXY_SUMDB__VERIFY": "false",
            "GOMODPROXY_LOG__LEVEL": "warn",
        }
        secure = dict(base, GOMODPROXY_TLS__CERT_FILE=f"{work}/server.pem",
                      GOMODPROXY_TLS__KEY_FILE=f"{work}/server.key",
                      GOMODPROXY_AUTH__HTPASSWD_FILE=f"{work}/htpasswd")
        audited = dict(secure, GOMODPROXY_LOG__LEVEL="warn,gomodproxy::audit=info")
        ports = {}
        for name, env in [("plain", base), ("secure", secure), ("audited", audited)]:
            port = free_port()
            env = dict(env, GOMODPROXY_LISTEN="127.0.0.1:%d" % port)
            if name != "plain":
                ports[name + "-plain"] = port
                port = free_port()
                env["GOMODPROXY_TLS__LISTEN"] = "127.0.0.1:%d" % port
            ports[name] = port
            procs.append((name, subprocess.Popen([binary, "serve"], env=env,
                                                 stdout=subprocess.DEVNULL,
                                                 stderr=subprocess.DEVNULL)))
        ca = f"{work}/ca.pem"
        path = "/%s/@v/%s.info" % (MODULE, VERSION)
        auth = "Authorization: Basic " + base64.b64encode(b"alice:s3cret").decode()
        urls = {
            "plain": ("http://127.0.0.1:%d%s" % (ports["plain"], path), ()),
            "auth, plain HTTP": ("http://127.0.0.1:%d%s" % (ports["secure-plain"], path), (auth,)),
            "TLS + auth": ("https://127.0.0.1:%d%s" % (ports["secure"], path), (auth,)),
            "TLS + auth + audit": ("https://127.0.0.1:%d%s" % (ports["audited"], path), (auth,)),
        }
        for url, headers in urls.values():
            argv = ["curl", "-sSf", "--cacert", ca, "-o", "/dev/null", url]
            for h in headers:
                argv += ["-H", h]
            wait_for(argv)
        # wrk does not verify certificates; the curl above did.
        results = {name: [] for name in urls}
        for _ in range(args.rounds):
            for name, (url, headers) in urls.items():
                results[name].append(wrk(url, args.duration, args.connections, headers))
        plain = median([r["rps"] for r in results["plain"]])
        print("\ncached .info, %d connections, %d s x %d rounds (median):" %
              (args.connections, args.duration, args.rounds))
        print("  %-20s %10s %8s %10s" % ("", "req/s", "ratio", "p99 ms"))
        for name, rs in results.items():
            rps = median([r["rps"] for r in rs])
            p99 = median([r["p99_ms"] for r in rs])
            print("  %-20s %10.0f %8.2f %10.2f" % (name, rps, rps / plain, p99))
        cost = 1 - median([r["rps"] for r in results["TLS + auth"]]) / plain
        print("  TLS + basic auth costs %.0f%% of plain throughput (goal: < 25%%)" % (cost * 100))

        print("\nTLS handshakes/s (openssl s_time, one client, a new connection each):")
        for version in ["-tls1_2", "-tls1_3"]:
            new = s_time(ports["secure"], ca, "-new", version, args.duration)
            reused = s_time(ports["secure"], ca, "-reuse", version, args.duration)
            print("  %s: full %.0f, resumed %.0f (x%.1f)" %
                  (version[1:], new, reused, reused / max(new, 1)))
        for name, p in procs:
            print("  RSS %-8s %6d KiB" % (name, rss_kib(p.pid)))
    finally:
        for _, p in procs:
            p.terminate()
        for _, p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
