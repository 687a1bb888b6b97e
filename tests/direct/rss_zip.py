#!/usr/bin/env python3
"""Peak RSS of the proxy while it builds cold module zips from git (issue 11). Not a timed test:
it prints figures.

Makes bench.py's repository once (--files files, --tags tags), then for each variant (a fresh
proxy, an empty store and mirror directory) and each of --repeat rounds: `list` and the first
version's `.info` and `.mod` (the fetch), then --concurrent cold `.zip`s at once. VmRSS is
sampled every 10 ms during the zips; VmHWM (the kernel's peak) is read before and after them.
Prints, per run: RSS before the zips, peak RSS during them (the larger of the sampled peak and
VmHWM when it rose during the zips), RSS after them, and the wall time of the zip requests.

A variant is NAME[@BINARY][:VAR=VALUE,VAR=VALUE]: the binary (default --bin) and extra
environment of the proxy (e.g. GLIBC_TUNABLES=glibc.malloc.arena_max=2), so that two builds or
two settings are compared in the same run, rounds interleaved; the default is one variant,
`base`.
Usage: python3 tests/direct/rss_zip.py [--bin PATH] [--files 20000] [--tags 1000]
                                       [--repeat 3] [--concurrent 1] [--variant SPEC]...
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import common  # noqa: E402


def parse_variant(spec, binary):
    name, _, rest = spec.partition(":")
    name, _, path = name.partition("@")
    env = {}
    for kv in filter(None, rest.split(",")):
        k, _, v = kv.partition("=")
        env[k] = v
    return name, path or binary, env


def one_run(binary, world, scratch, env, versions, label):
    """Returns (rss before, peak during, rss after) in KiB and the zips' wall time in s."""
    proxy = common.Proxy(binary, os.path.join(scratch, "proxy-" + label), world, raw_env=env)
    try:
        bench.timed_get(proxy, "/%s/@v/list" % bench.MODULE)
        for v in versions:
            bench.timed_get(proxy, "/%s/@v/%s.info" % (bench.MODULE, v))
            bench.timed_get(proxy, "/%s/@v/%s.mod" % (bench.MODULE, v))
        before = proxy.rss_kib()
        hwm_before = proxy.rss_kib("VmHWM")
        sampler = common.RssSampler(proxy, every=0.01)
        errors = []

        def fetch(v):
            try:
                bench.timed_get(proxy, "/%s/@v/%s.zip" % (bench.MODULE, v))
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        started = time.perf_counter()
        threads = [threading.Thread(target=fetch, args=(v,)) for v in versions]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.perf_counter() - started
        sampled = sampler.stop()
        hwm = proxy.rss_kib("VmHWM")
        peak = max(sampled, hwm) if hwm > hwm_before else sampled
        time.sleep(0.2)
        after = proxy.rss_kib()
        if errors:
            raise errors[0]
        return before, peak, after, took, sampled
    finally:
        proxy.stop()
        common.rmtree(os.path.join(scratch, "proxy-" + label))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bin", help="gomodproxy binary (default: build this tree in release mode)")
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--tags", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--concurrent", type=int, default=1, help="cold zips requested at once")
    ap.add_argument("--variant", action="append", default=[])
    args = ap.parse_args()
    binary = args.bin or common.release_binary()
    variants = [parse_variant(s, binary) for s in (args.variant or ["base"])]
    scratch = tempfile.mkdtemp(prefix="gomodproxy-rss-zip.")
    world = common.World(scratch)
    try:
        started = time.perf_counter()
        bench.make_repo(world, args.files, args.tags)
        world.start_daemon()
        world.instead_of(bench.MODULE, bench.MODULE)
        print("repository: %d files, %d tags, built in %.1f s"
              % (args.files, args.tags, time.perf_counter() - started), flush=True)
        step = max(1, args.tags // args.concurrent)
        versions = [bench.tag_name(i) for i in range(args.tags - 1, -1, -step)][: args.concurrent]
        results = {name: [] for name, _, _ in variants}
        # Rounds interleave the variants, so machine load falls on all of them alike.
        for r in range(args.repeat):
            for name, path, env in variants:
                res = one_run(path, world, scratch, env, versions, "%s-%d" % (name, r))
                results[name].append(res)
                print("%-12s round %d: RSS before %.1f MiB, peak %.1f MiB, after %.1f MiB; "
                      "%d cold zip(s) in %.2f s (sampled peak %.1f MiB)"
                      % (name, r + 1, res[0] / 1024, res[1] / 1024, res[2] / 1024, len(versions),
                         res[3], res[4] / 1024),
                      flush=True)
        for name, path, env in variants:
            rs = results[name]
            print("%-12s median of %d: peak %.1f MiB (max %.1f), after %.1f MiB, zip time %.2f s"
                  "  %s env %s" % (name, len(rs), statistics.median(x[1] for x in rs) / 1024,
                                max(x[1] for x in rs) / 1024,
                                statistics.median(x[2] for x in rs) / 1024,
                                statistics.median(x[3] for x in rs), path, env or "-"))
    finally:
        world.stop()
        common.rmtree(scratch)


if __name__ == "__main__":
    main()
