#!/usr/bin/env python3
"""Peak memory of a module zip check (gomod::check_zip), before and after, in one run.

What it does:
  1. builds crates/gomod/examples/check_zip.rs (check_zip on zip files; prints its h1, time and
     the process's VmHWM as JSON) twice, in release mode: against this tree ("after") and against
     the tree of a base revision ("before"; by default the commit before the streaming check
     was added, so the comparison still means something once it is merged), with the same
     example file copied into it;
  2. writes module zips (valid ones, under example.com/zipmem@v1.0.0/): 200,000 and 1,000,000
     tiny files (about 160 bytes of zip per entry, as in issue 9: 31.7 MB for 200k), the
     1,000,000 again with its central directory in a random order, and one
     shaped like the go toolchain's zip (12,071 files, ~76 MB of deflated text), plus any
     --real zip given;
  3. checks each zip with each binary in a fresh process (and the 1M zip three times at once,
     three threads in one process), and prints peak RSS, time and the h1 of each; the two h1
     must be equal.

Needs: cargo, git, python3. Takes a few minutes (the 1M-entry zip is written in ~30 s).
Usage: python3 tests/bench/zip_memory.py [--base REV] [--entries 200000,1000000]
                                         [--real ZIP MODULE VERSION] [--keep DIR]
"""

import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE, VERSION = "example.com/zipmem", "v1.0.0"
EXAMPLE = os.path.join("crates", "gomod", "examples", "check_zip.rs")


class ZipWriter:
    """A streaming zip writer (deflate or store), with zip64 end records past 65,535 entries.

    Python's zipfile keeps a ZipInfo object per entry (~1 KB each): too much for 1M entries."""

    def __init__(self, path, shuffle_directory=False):
        self.out = open(path, "wb")
        self.central = tempfile.TemporaryFile()
        self.count = 0
        # Central directory records kept to be written in a random order (as a hostile zip
        # may list its entries, so that reading them in order jumps around the file).
        self.records = [] if shuffle_directory else None

    def add(self, name, content, deflate=True):
        name = name.encode()
        crc = zlib.crc32(content)
        if deflate:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            data = c.compress(content) + c.flush()
            method = 8
        else:
            data, method = content, 0
        offset = self.out.tell()
        assert offset < 0xFFFFFFFF
        self.out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21,
                                   crc, len(data), len(content), len(name), 0))
        self.out.write(name)
        self.out.write(data)
        record = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x0314, 20, 0, method, 0, 0x21,
                             crc, len(data), len(content), len(name), 0, 0, 0, 0,
                             0o100644 << 16, offset) + name
        if self.records is None:
            self.central.write(record)
        else:
            self.records.append(record)
        self.count += 1

    def close(self):
        if self.records is not None:
            random.Random(5).shuffle(self.records)
            self.central.writelines(self.records)
        start = self.out.tell()
        self.central.seek(0)
        shutil.copyfileobj(self.central, self.out)
        size = self.out.tell() - start
        end64 = self.out.tell()
        if self.count > 0xFFFF:
            self.out.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0,
                                       self.count, self.count, size, start))
            self.out.write(struct.pack("<IIQI", 0x07064B50, 0, end64, 1))
        count16 = min(self.count, 0xFFFF)
        self.out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count16, count16,
                                   size, start, 0))
        self.out.close()
        self.central.close()


def prefix():
    return f"{MODULE}@{VERSION}/"


def many_small(path, entries, shuffle_directory=False):
    """`entries` tiny Go files in 1,000 directories: ~160 bytes of zip each."""
    w = ZipWriter(path, shuffle_directory)
    w.add(prefix() + "go.mod", f"module {MODULE}\n".encode())
    for i in range(entries - 1):
        w.add(f"{prefix()}d{i % 1000:03d}/f{i:07d}.go", b"package d\n")
    w.close()


def toolchain_like(path, files=12071, target=76 * 1000 * 1000):
    """Files of text that compresses about 3:1, in a tree shaped like the go toolchain's."""
    rng = random.Random(9)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
             for _ in range(1024)]
    w = ZipWriter(path)
    w.add(prefix() + "go.mod", f"module {MODULE}\n".encode())
    block = " ".join(rng.choices(words, k=target // 2)).encode()
    # Size the files so that their deflated sizes add up to the target (~2.2:1 here).
    per_file = target // files
    sample = block[:per_file * 2]
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    per_file = int(per_file * len(sample) / len(c.compress(sample) + c.flush()))
    for i in range(files - 1):
        start = rng.randrange(0, len(block) - per_file)
        name = f"{prefix()}src/pkg{i % 400:03d}/internal/file_{i:05d}.go"
        w.add(name, block[start:start + rng.randint(per_file // 2, per_file * 3 // 2)])
    w.close()


def run(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, **kw)


def build(tree, target_dir):
    env = dict(os.environ, CARGO_TARGET_DIR=target_dir)
    run(["cargo", "build", "--release", "-q", "-p", "gomod", "--example", "check_zip"],
        cwd=tree, env=env)
    return os.path.join(target_dir, "release", "examples", "check_zip")


def default_base():
    """The parent of the commit that added the streaming reader (format.rs)."""
    out = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "HEAD", "--",
                          "crates/gomod/src/zipfile/format.rs"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    out = out[-1] if out else ""
    if not out:
        sys.exit("cannot find the commit that added crates/gomod/src/zipfile/format.rs; "
                 "pass --base")
    return out + "^"


def check(binary, module, version, paths):
    out = subprocess.run([binary, module, version, *paths], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


def mib(kib):
    return kib / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", help="revision to compare with (default: before the rewrite)")
    ap.add_argument("--entries", default="200000,1000000")
    ap.add_argument("--real", nargs=3, action="append", default=[],
                    metavar=("ZIP", "MODULE", "VERSION"), help="also check this zip")
    ap.add_argument("--keep", help="write the zips here and keep them (reused if present)")
    args = ap.parse_args()

    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    base = args.base or default_base()
    work = tempfile.mkdtemp(prefix="zip-memory-")
    try:
        zips_dir = args.keep or os.path.join(work, "zips")
        os.makedirs(zips_dir, exist_ok=True)

        after = build(ROOT, target)
        base_tree = os.path.join(work, "base")
        os.makedirs(base_tree)
        archive = subprocess.run(["git", "archive", base], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", base_tree], input=archive, check=True)
        os.makedirs(os.path.join(base_tree, os.path.dirname(EXAMPLE)), exist_ok=True)
        shutil.copy(os.path.join(ROOT, EXAMPLE), os.path.join(base_tree, EXAMPLE))
        before = build(base_tree, os.path.join(target, "zip-memory-base"))

        cases = []
        for n in [int(x) for x in args.entries.split(",") if x]:
            p = os.path.join(zips_dir, f"entries-{n}.zip")
            if not os.path.exists(p):
                t = time.time()
                many_small(p, n)
                print(f"wrote {p} in {time.time() - t:.0f}s", file=sys.stderr)
            cases.append((f"{n:,} entries", MODULE, VERSION, [p]))
        n = max(int(x) for x in args.entries.split(",") if x)
        p = os.path.join(zips_dir, f"entries-{n}-shuffled.zip")
        if not os.path.exists(p):
            many_small(p, n, shuffle_directory=True)
        cases.append((f"{n:,} entries, shuffled directory", MODULE, VERSION, [p]))
        p = os.path.join(zips_dir, "toolchain-like.zip")
        if not os.path.exists(p):
            toolchain_like(p)
        cases.append(("toolchain-like (12,071 files)", MODULE, VERSION, [p]))
        for path, module, version in args.real:
            cases.append((f"real {os.path.basename(path)}", module, version, [path]))
        biggest = [c for c in cases if c[0] == f"{n:,} entries"]
        if biggest:
            label, m, v, paths = biggest[-1]
            cases.append((f"{label}, 3 at once", m, v, paths * 3))

        print(f"\nbase (before): {base}; peak RSS is the whole process's VmHWM "
              f"(an empty run of the binary: ~2.4 MiB)\n")
        header = (f"{'zip':<38} {'size':>9}  {'before RSS':>10} {'after RSS':>10} "
                  f"{'ratio':>6}  {'before s':>8} {'after s':>8}  h1")
        print(header)
        print("-" * len(header))
        for label, m, v, paths in cases:
            size = os.path.getsize(paths[0])
            b = check(before, m, v, paths)
            a = check(after, m, v, paths)
            same = "same" if (a.get("h1"), a["ok"]) == (b.get("h1"), b["ok"]) else "DIFFERENT"
            verdict = a.get("h1") or a.get("error")
            print(f"{label:<38} {size / 1e6:>7.1f}MB  {mib(b['peak_rss_kib']):>7.1f}MiB "
                  f"{mib(a['peak_rss_kib']):>7.1f}MiB {b['peak_rss_kib'] / a['peak_rss_kib']:>5.1f}x"
                  f"  {b['seconds']:>8.2f} {a['seconds']:>8.2f}  {same}: {verdict}", flush=True)
            if same != "same":
                print(f"  before: {b}\n  after:  {a}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
