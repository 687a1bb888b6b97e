#!/usr/bin/env python3
"""Direct-mode benchmark: gomodproxy fetching from git vs the go command's GOPROXY=direct, on the
same repository, in the same run (issue 11). Not a timed test: it prints figures.

What it does (everything on 127.0.0.1):
  1. builds gomodproxy in release mode (or takes --bin);
  2. makes a repository with 20,000 files and 1,000 tags (git fast-import, fixed dates), served
     by `git daemon`, reached as https://github.com/bench/big through an insteadOf rule;
  3. a fresh proxy (upstream `direct`): the first `list` (empty mirror directory), then warm
     `list` (--warm requests, p50/p99); for --versions versions spread over the tags, the first
     `.info`, `.mod`, `.zip` of each (cold: nothing stored yet; the first version also pays the
     first fetch), then warm repeats of each (p50/p99);
  4. a cold `go mod download` of 20 versions: through a fresh proxy (empty store and mirror
     directory) vs GOPROXY=direct, each with a fresh module cache, --rounds times, alternating
     which goes first; wall time, ratio;
  5. the proxy's RSS (VmRSS sampled every 50 ms): after start, peak per phase, at the end.

Goals (issue 11): cold no slower than direct mode, warm `list` under 5 ms, RSS flat.
Usage: python3 tests/direct/bench.py [--bin PATH] [--tags 1000] [--files 20000]
                                     [--rounds 2] [--warm 300] [--keep]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

MODULE = "github.com/bench/big"
EPOCH = 1_672_531_200  # 2023-01-01T00:00:00Z


def tag_name(i):
    return "v1.%d.%d" % (i // 50, i % 50)


def make_repo(world, files, tags):
    """A bare repository: one commit with `files` files, then one commit per tag, each changing
    one file."""
    bare = os.path.join(world.repos, MODULE)
    os.makedirs(bare)
    world.git(bare, "init", "-q", "--bare")
    out = []

    def data(b):
        out.append(b"data %d\n" % len(b))
        out.append(b)
        out.append(b"\n")

    paths = []
    for i in range(files - 1):
        path = "pkg%03d/f%03d.go" % (i // 100, i % 100)
        paths.append(path)
        out.append(b"blob\nmark :%d\n" % (i + 1))
        body = ("package pkg%03d\n\n// File %d of the benchmark module, with some text so that "
                "the zip is not trivially small: %s\nconst C%d = %d\n"
                % (i // 100, i, "lorem ipsum dolor sit amet " * 4, i, i)).encode()
        data(body)
    gomod = b"module github.com/bench/big\n\ngo 1.21\n"
    out.append(b"blob\nmark :%d\n" % files)
    data(gomod)
    paths.append("go.mod")

    mark = files + 1
    out.append(b"commit refs/heads/main\nmark :%d\n" % mark)
    out.append(b"author bench <bench@example.com> %d +0000\n" % EPOCH)
    out.append(b"committer bench <bench@example.com> %d +0000\n" % EPOCH)
    data(b"initial tree\n")
    for i, path in enumerate(paths):
        out.append(b"M 100644 :%d %s\n" % (i + 1, path.encode()))
    out.append(b"\n")
    for t in range(tags):
        prev = mark
        mark += 1
        when = EPOCH + 3600 * (t + 1)
        out.append(b"commit refs/heads/main\nmark :%d\n" % mark)
        out.append(b"author bench <bench@example.com> %d +0000\n" % when)
        out.append(b"committer bench <bench@example.com> %d +0000\n" % when)
        data(b"change %d\n" % t)
        out.append(b"from :%d\n" % prev)
        out.append(b"M 100644 inline pkg%03d/f%03d.go\n" % ((t % (files - 1)) // 100, t % 100))
        data(b"package pkg%03d\n\nconst Changed%d = %d\n" % ((t % (files - 1)) // 100, t, t))
        out.append(b"\n")
        out.append(b"reset refs/tags/%s\nfrom :%d\n\n" % (tag_name(t).encode(), mark))
    world.git(bare, "fast-import", "--quiet", stdin=b"".join(out))
    world.git(bare, "gc", "-q", "--aggressive" if files < 5000 else "--auto")


def timed_get(proxy, path):
    status, body, seconds = common.get(proxy.port, path)
    if status != 200:
        raise RuntimeError("%s: %d %s" % (path, status, body[:300]))
    return seconds, body


def ms(s):
    return "%.1f ms" % (s * 1000)


def artifacts(binary, world, scratch, versions, warm):
    """Phase 3: single-request latencies through a fresh proxy."""
    proxy = common.Proxy(binary, os.path.join(scratch, "proxy-artifacts"), world)
    sampler = common.RssSampler(proxy)
    idle = proxy.rss_kib()
    first_list, body = timed_get(proxy, "/%s/@v/list" % MODULE)
    listed = body.decode().split()
    print("list: %d versions; first (cold, empty mirror directory) %s" % (len(listed), ms(first_list)))
    warm_list = [timed_get(proxy, "/%s/@v/list" % MODULE)[0] for _ in range(warm)]
    print("list warm: p50 %s, p99 %s (%d requests; goal p99 < 5 ms)"
          % (ms(common.percentile(warm_list, 50)), ms(common.percentile(warm_list, 99)), warm))
    cold = {"info": [], "mod": [], "zip": []}
    hot = {"info": [], "mod": [], "zip": []}
    zip_size = 0
    for n, version in enumerate(versions):
        for kind in ("info", "mod", "zip"):
            seconds, body = timed_get(proxy, "/%s/@v/%s.%s" % (MODULE, version, kind))
            cold[kind].append(seconds)
            if kind == "zip":
                zip_size = len(body)
        if n == 0:
            print("first version %s (first fetch of the repository): .info %s, .mod %s, .zip %s"
                  " (%.1f MiB)" % (version, ms(cold["info"][0]), ms(cold["mod"][0]),
                                   ms(cold["zip"][0]), zip_size / 2**20))
    for kind in ("info", "mod", "zip"):
        reps = max(10, warm // (10 if kind == "zip" else 3))
        for i in range(reps):
            version = versions[i % len(versions)]
            hot[kind].append(timed_get(proxy, "/%s/@v/%s.%s" % (MODULE, version, kind))[0])
    for kind in ("info", "mod", "zip"):
        rest = cold[kind][1:]
        print(".%s cold (next %d versions): median %s, max %s; warm p50 %s, p99 %s"
              % (kind, len(rest), ms(statistics.median(rest)), ms(max(rest)),
                 ms(common.percentile(hot[kind], 50)), ms(common.percentile(hot[kind], 99))))
    peak = sampler.stop()
    end = proxy.rss_kib()
    proxy.stop()
    return idle, peak, end


def go_download(world, scratch, goproxy, versions, label):
    modcache = os.path.join(scratch, "go-" + label, "modcache")
    os.makedirs(modcache)
    env = common.go_env(world, modcache, goproxy)
    args = ["go", "mod", "download", "-json"] + ["%s@%s" % (MODULE, v) for v in versions]
    # Both sides extract every zip into the module cache (20,000 files a version): start each
    # with the previous run's writes on disk, not in the page cache, or the second run of a
    # round pays for the first.
    os.sync()
    started = time.perf_counter()
    run = subprocess.run(args, cwd=scratch, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    took = time.perf_counter() - started
    if run.returncode != 0:
        raise RuntimeError("%s: %s\n%s" % (label, run.stderr.decode(), run.stdout.decode()[-2000:]))
    common.rmtree(os.path.dirname(modcache))
    os.sync()
    return took


def downloads(binary, world, scratch, versions, rounds):
    """Phase 4: cold go mod download of `versions`, proxy vs direct."""
    results = {"proxy": [], "direct": []}
    peaks, ends = [], []
    for r in range(rounds):
        order = ["proxy", "direct"] if r % 2 == 0 else ["direct", "proxy"]
        for who in order:
            if who == "direct":
                results["direct"].append(go_download(world, scratch, "direct", versions,
                                                     "direct-%d" % r))
            else:
                proxy = common.Proxy(binary, os.path.join(scratch, "proxy-dl-%d" % r), world)
                sampler = common.RssSampler(proxy)
                results["proxy"].append(go_download(world, scratch, proxy.url, versions,
                                                    "proxy-%d" % r))
                peaks.append(sampler.stop())
                ends.append(proxy.rss_kib())
                proxy.stop()
                common.rmtree(os.path.join(scratch, "proxy-dl-%d" % r))
        print("round %d: go mod download of %d versions, cold: through the proxy %.2f s, "
              "GOPROXY=direct %.2f s (ratio proxy/direct %.2f)"
              % (r + 1, len(versions), results["proxy"][-1], results["direct"][-1],
                 results["proxy"][-1] / results["direct"][-1]))
    p, d = statistics.median(results["proxy"]), statistics.median(results["direct"])
    print("cold go mod download, median of %d: proxy %.2f s, direct %.2f s, ratio %.2f "
          "(goal <= 1)" % (rounds, p, d, p / d))
    return max(peaks), max(ends)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bin", help="gomodproxy binary (default: build this tree in release mode)")
    ap.add_argument("--tags", type=int, default=1000)
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--versions", type=int, default=10, help="versions for phase 3")
    ap.add_argument("--downloads", type=int, default=20, help="versions for phase 4")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--warm", type=int, default=300)
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()
    binary = args.bin or common.release_binary()
    scratch = tempfile.mkdtemp(prefix="gomodproxy-direct-bench.")
    world = common.World(scratch)
    try:
        started = time.perf_counter()
        make_repo(world, args.files, args.tags)
        world.start_daemon()
        world.instead_of(MODULE, MODULE)
        print("repository: %d files, %d tags, built in %.1f s"
              % (args.files, args.tags, time.perf_counter() - started))
        step = max(1, args.tags // args.versions)
        versions = [tag_name(i) for i in range(args.tags - 1, -1, -step)][: args.versions]
        idle, peak_a, end_a = artifacts(binary, world, scratch, versions, args.warm)
        step = max(1, args.tags // args.downloads)
        dl = [tag_name(i) for i in range(0, args.tags, step)][: args.downloads]
        peak_b, end_b = downloads(binary, world, scratch, dl, args.rounds)
        print("proxy RSS: %.1f MiB after start, peak %.1f MiB in the latency phase (%.1f MiB at "
              "its end), peak %.1f MiB during the cold downloads (%.1f MiB at their end; git "
              "runs out of process)"
              % (idle / 1024, peak_a / 1024, end_a / 1024, peak_b / 1024, end_b / 1024))
    finally:
        world.stop()
        if args.keep:
            print("kept", scratch)
        else:
            common.rmtree(scratch)


if __name__ == "__main__":
    main()
