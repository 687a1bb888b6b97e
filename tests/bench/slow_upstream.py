#!/usr/bin/env python3
"""Hostile-upstream load: many requests that a trickling upstream answers at 1 byte a second,
with healthy requests (cache hits) measured at the same time, under a small open-file limit.

Prints, for each gomodproxy binary given: the proxy's open descriptors (peak), how the slow
requests ended (status counts, time to answer), and the latency of healthy cache hits (p50, p99,
errors) while the slow requests are in flight. Run it with the binary of an older commit and the
current one to compare them in the same run:

    python3 tests/bench/slow_upstream.py --bin old=/path/to/old/gomodproxy --bin new=target/release/gomodproxy

Nothing leaves 127.0.0.1. It is a script that prints figures, not a timed test.
"""

import argparse
import asyncio
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HEALTHY = "example.com/healthy/@v/v1.0.0.info"
HEALTHY_BODY = b'{"Version":"v1.0.0","Time":"2023-01-02T03:04:05Z"}'


async def slow_upstream(port, drip_every):
    """Answers the healthy module at once, everything else 200 with a 4 KiB body, one byte at a
    time."""

    async def handle(reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ")[1].decode().lstrip("/")
            if path == HEALTHY:
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                    % len(HEALTHY_BODY)
                    + HEALTHY_BODY
                )
                await writer.drain()
                return
            body = b'{"Version":"v1.0.0"}' + b" " * 4076
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
            )
            await writer.drain()
            for byte in body:
                await asyncio.sleep(drip_every)
                writer.write(bytes([byte]))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except FileNotFoundError:
        return -1


async def http_get(port, path, timeout):
    """One GET on a fresh connection; (status or None, seconds)."""
    start = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), timeout
        )
    except (OSError, asyncio.TimeoutError):
        return None, time.monotonic() - start
    try:
        writer.write(f"GET /{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        status = int(line.split()[1]) if line else None
        await asyncio.wait_for(reader.read(), timeout)
        return status, time.monotonic() - start
    except (OSError, asyncio.TimeoutError, ValueError, IndexError):
        return None, time.monotonic() - start
    finally:
        writer.close()


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))
    return values[k]


async def run_one(name, binary, args):
    up_port, proxy_port = free_port(), free_port()
    upstream = await slow_upstream(up_port, args.drip_every)
    store = tempfile.mkdtemp(prefix="gomodproxy-slow-")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "GOMODPROXY_LISTEN": f"127.0.0.1:{proxy_port}",
        "GOMODPROXY_UPSTREAM": f"http://127.0.0.1:{up_port}",
        "GOMODPROXY_STORAGE__TYPE": "fs",
        "GOMODPROXY_STORAGE__FS__ROOT": store,
        "GOMODPROXY_SUMDB__VERIFY": "false",
        "GOMODPROXY_FETCH__RETRIES": "0",
        "GOMODPROXY_LOG__LEVEL": "warn",
    }

    def limit_fds():
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))

    log = open(os.path.join(store, "..", os.path.basename(store) + ".log"), "w")
    proc = subprocess.Popen(
        [binary, "serve"], env=env, preexec_fn=limit_fds, stdout=log, stderr=log
    )
    try:
        for _ in range(200):
            status, _ = await http_get(proxy_port, "healthz", 1)
            if status == 200:
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"{name}: the proxy did not start")
        status, _ = await http_get(proxy_port, HEALTHY, 5)
        assert status == 200, f"{name}: warming the healthy module gave {status}"

        baseline = []
        for _ in range(50):
            s, t = await http_get(proxy_port, HEALTHY, 5)
            if s == 200:
                baseline.append(t)

        slow_results = []
        started = time.monotonic()

        async def slow(i):
            s, t = await http_get(proxy_port, f"example.com/slow{i}/@v/v1.0.0.info", args.slow_timeout)
            slow_results.append((s, t))

        slow_tasks = [asyncio.create_task(slow(i)) for i in range(args.slow)]
        healthy, healthy_errors, fd_peak = [], 0, 0
        deadline = started + args.duration
        while time.monotonic() < deadline:
            fd_peak = max(fd_peak, open_fds(proc.pid))
            s, t = await http_get(proxy_port, HEALTHY, 10)
            if s == 200:
                healthy.append(t)
            else:
                healthy_errors += 1
            await asyncio.sleep(0.05)
        fd_peak = max(fd_peak, open_fds(proc.pid))
        await asyncio.wait(slow_tasks, timeout=args.slow_timeout)
        for t in slow_tasks:
            t.cancel()

        statuses = {}
        for s, _ in slow_results:
            statuses[s] = statuses.get(s, 0) + 1
        answered = [t for s, t in slow_results if s is not None]
        print(f"== {name}: {binary}")
        print(f"   open-file limit {args.nofile}; {args.slow} slow requests (upstream drips 1 byte/{args.drip_every}s)")
        print(f"   proxy descriptors: peak {fd_peak}")
        print("   slow requests: " + ", ".join(f"{k if k is not None else 'no answer'}: {v}" for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))))
        if answered:
            print(f"   slow requests answered in: p50 {statistics.median(answered):.2f}s, max {max(answered):.2f}s")
        print(f"   healthy hits before the load: p50 {percentile(baseline, 50)*1000:.1f} ms, p99 {percentile(baseline, 99)*1000:.1f} ms")
        print(
            f"   healthy hits during the load ({len(healthy)} ok, {healthy_errors} failed): "
            f"p50 {percentile(healthy, 50)*1000:.1f} ms, p99 {percentile(healthy, 99)*1000:.1f} ms"
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        upstream.close()
        shutil.rmtree(store, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", action="append", required=True, help="NAME=PATH of a gomodproxy binary (repeatable)")
    p.add_argument("--slow", type=int, default=700, help="slow requests at once (700)")
    p.add_argument("--nofile", type=int, default=512, help="open-file limit of the proxy (512)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of healthy requests (20)")
    p.add_argument("--drip-every", type=float, default=1.0, help="seconds between upstream bytes (1)")
    p.add_argument("--slow-timeout", type=float, default=120.0, help="client wait for a slow answer (120 s)")
    args = p.parse_args()
    # The load generator itself holds 700+ sockets.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for spec in args.bin:
        name, _, path = spec.partition("=")
        asyncio.run(run_one(name, path, args))


if __name__ == "__main__":
    sys.exit(main())
