#!/usr/bin/env python3
"""Real-world check of direct mode (issue 11), run by hand, outside CI: real modules of many
shapes, rebuilt as git repositories, served through gomodproxy's `direct`, and the `h1:` hashes
the proxy produces compared with the go.sum lines of the public checksum database.

What it does:
  1. for each module of MODULES (or --modules FILE, one `path[@version]` a line), asks the
     machine's Go module proxy (the first http(s) entry of `go env GOPROXY`) for its version
     (`@latest` unless given; pseudo-versions are skipped: a rebuilt repository cannot have
     the original commit hash), its `.info` and its zip, and the checksum database's record
     (`<proxy>/sumdb/sum.golang.org/lookup/<module>@<version>`);
  2. rebuilds each repository as a bare git repository: per module version, one commit whose
     tree is the zip's files under the module's directory in the repository (`gopls/` for
     golang.org/x/tools/gopls), committed at the `.info` time, tagged `<dir>/<version>` (the
     version without `+incompatible`); served by `git daemon` on 127.0.0.1;
  3. starts gomodproxy with upstream `direct`, one `[[direct.repos]]` entry per repository
     (`https://<repository root>`, so no go-get page is fetched) and one insteadOf rule per
     repository pointing at the daemon;
  4. fetches `.info`, `.mod` and `.zip` of every module version through the proxy, computes the
     `h1:` of the zip and of the go.mod (dirhash Hash1, as the go command does) and compares
     them with the checksum database's lines, and the `.info` Version/Time with the upstream's.

Every mismatch is printed with the differing file names (zip entries only on one side, or with
other contents). Needs git, go and network access to the machine's module proxy.
Usage: python3 tests/direct/realworld.py [--bin PATH] [--jobs 4] [--cache DIR] [--keep]
                                         [--modules FILE]
"""

import argparse
import base64
import concurrent.futures
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

# Shapes: root modules, submodules (dir/vX tags), v2+ (root layout), +incompatible, gopkg.in
# (2 and 3 elements), vanity hosts, upper-case paths, big zips, C sources, odd test data.
MODULES = """
golang.org/x/tools/gopls
golang.org/x/tools
golang.org/x/mod
golang.org/x/net
golang.org/x/sys
golang.org/x/text
golang.org/x/crypto
golang.org/x/sync
golang.org/x/oauth2
golang.org/x/term
google.golang.org/grpc
google.golang.org/grpc/cmd/protoc-gen-go-grpc
google.golang.org/protobuf
gopkg.in/yaml.v3
gopkg.in/yaml.v2
gopkg.in/ini.v1
gopkg.in/natefinch/lumberjack.v2
go.uber.org/zap
go.uber.org/multierr
go.uber.org/atomic
github.com/stretchr/testify
github.com/spf13/cobra
github.com/spf13/viper
github.com/sirupsen/logrus
github.com/BurntSushi/toml
github.com/Masterminds/semver/v3
github.com/go-redis/redis/v8
github.com/redis/go-redis/v9
github.com/jackc/pgx/v5
github.com/google/go-github/v60
github.com/go-chi/chi/v5
github.com/labstack/echo/v4
github.com/gin-gonic/gin
github.com/gorilla/mux
github.com/google/uuid
github.com/pkg/errors
github.com/dgrijalva/jwt-go@v3.2.0+incompatible
github.com/docker/docker@v24.0.7+incompatible
github.com/docker/distribution@v2.8.3+incompatible
github.com/Azure/go-autorest@v14.2.0+incompatible
github.com/Azure/go-autorest/autorest
github.com/aws/aws-sdk-go-v2/service/s3
github.com/aws/aws-sdk-go-v2
github.com/hashicorp/consul/api
github.com/hashicorp/vault/api
github.com/prometheus/client_golang
github.com/prometheus/common
k8s.io/api
k8s.io/apimachinery
k8s.io/client-go
go.opentelemetry.io/otel
go.opentelemetry.io/otel/sdk
cloud.google.com/go/storage
github.com/golang/protobuf
github.com/klauspost/compress
github.com/mattn/go-sqlite3
honnef.co/go/tools
github.com/cespare/xxhash/v2
github.com/json-iterator/go
github.com/google/go-cmp
github.com/golang-jwt/jwt/v5
"""

PSEUDO = re.compile(r"-(0|\d{14})-[0-9a-f]{12}$|\.0\.\d{14}-[0-9a-f]{12}$|\d{14}-[0-9a-f]{12}(\+incompatible)?$")


def escape(path):
    return re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), path)


def machine_proxy():
    out = subprocess.run(["go", "env", "GOPROXY"], stdout=subprocess.PIPE, check=True)
    for entry in re.split(r"[,|]", out.stdout.decode().strip()):
        if entry.startswith("http"):
            return entry.rstrip("/")
    raise SystemExit("go env GOPROXY has no http(s) proxy")


def fetch(url, timeout=300):
    req = urllib.request.Request(url, headers={"User-Agent": "gomodproxy-realworld-check"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read()


def repo_root(path):
    """The repository root of module `path` and the module's directory in it."""
    elems = path.split("/")
    host = elems[0]
    if host in ("github.com", "golang.org", "honnef.co", "bitbucket.org", "gitlab.com"):
        n = 3
    elif host == "gopkg.in":
        n = 2 if ".v" in elems[1] else 3
    else:
        n = 2
    root = "/".join(elems[:n])
    rest = elems[n:]
    if rest and re.fullmatch(r"v[2-9]\d*|v1\d+", rest[-1]):
        rest = rest[:-1]  # a /vN suffix: the rebuild uses the root (or major-branch) layout
    return root, "/".join(rest)


def h1(names_and_data):
    lines = [
        "%s  %s\n" % (hashlib.sha256(data).hexdigest(), name)
        for name, data in sorted(names_and_data, key=lambda nd: nd[0])
    ]
    return "h1:" + base64.b64encode(hashlib.sha256("".join(lines).encode()).digest()).decode()


def zip_files(blob):
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist() if not i.filename.endswith("/")]


class Module:
    def __init__(self, line):
        path, _, version = line.partition("@")
        self.path, self.version = path, version or None
        self.root, self.subdir = repo_root(path)
        self.skip = None
        self.info = None
        self.zip_path = None
        self.want_zip = self.want_mod = None

    @property
    def tag(self):
        v = self.version.replace("+incompatible", "")
        return self.subdir + "/" + v if self.subdir else v

    def __str__(self):
        return "%s@%s" % (self.path, self.version)


def semver_key(v):
    """Orders vX.Y.Z[-pre][+incompatible] (releases after their prereleases)."""
    core, _, pre = v[1:].replace("+incompatible", "").partition("-")
    nums = [int(x) for x in core.split(".")]
    return nums, pre == "", [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")]


def latest(upstream, path):
    """The highest release in the proxy's list, else the highest version; else `@latest`."""
    listed = fetch("%s/%s/@v/list" % (upstream, escape(path))).decode().split()
    listed = [v for v in listed if re.fullmatch(r"v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+incompatible)?", v)]
    releases = [v for v in listed if "-" not in v]
    if releases or listed:
        return max(releases or listed, key=semver_key)
    return json.loads(fetch("%s/%s/@latest" % (upstream, escape(path))))["Version"]


def prepare(m, upstream, cache):
    """Step 1 for one module."""
    base = "%s/%s/@v/" % (upstream, escape(m.path))
    if m.version is None:
        m.version = latest(upstream, m.path)
    if PSEUDO.search(m.version):
        m.skip = "latest is a pseudo-version (%s)" % m.version
        return m
    m.info = json.loads(fetch(base + m.version + ".info"))
    m.zip_path = os.path.join(cache, escape(m.path).replace("/", "_") + "@" + m.version + ".zip")
    if not os.path.exists(m.zip_path):
        blob = fetch(base + m.version + ".zip", timeout=1200)
        with open(m.zip_path + ".tmp", "wb") as f:
            f.write(blob)
        os.rename(m.zip_path + ".tmp", m.zip_path)
    lookup = fetch("%s/sumdb/sum.golang.org/lookup/%s@%s" % (upstream, escape(m.path), m.version))
    for line in lookup.decode().splitlines():
        f = line.split()
        if len(f) == 3 and f[0] == m.path and f[1] == m.version:
            m.want_zip = f[2]
        elif len(f) == 3 and f[0] == m.path and f[1] == m.version + "/go.mod":
            m.want_mod = f[2]
    if not (m.want_zip and m.want_mod):
        m.skip = "no checksum-database record"
    return m


def rebuild(world, root, modules):
    """Step 2 for one repository: a bare repository with one tagged commit per module."""
    bare = os.path.join(world.repos, root)
    os.makedirs(bare, exist_ok=True)
    world.git(bare, "init", "-q", "--bare")
    for m in modules:
        work = tempfile.mkdtemp(prefix="tree.", dir=world.root)
        prefix = "%s@%s/" % (m.path, m.version)
        with zipfile.ZipFile(m.zip_path) as z:
            for info in z.infolist():
                if info.filename.endswith("/"):
                    continue
                rel = info.filename[len(prefix):]
                dest = os.path.join(work, m.subdir, rel)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(dest, "wb") as f:
                    f.write(z.read(info))
        when = m.info["Time"]
        env = world.env(GIT_DIR=bare, GIT_WORK_TREE=work,
                        GIT_INDEX_FILE=work + ".index",
                        GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when)
        # -f: a zip may hold files its own .gitignore names; core.autocrlf off: bytes as in
        # the zip (a .gitattributes in the tree still applies, as it did upstream).
        world.git(work, "-c", "core.autocrlf=false", "add", "-A", "-f", ".", env=env)
        tree = world.git(work, "write-tree", env=env).decode().strip()
        commit = world.git(work, "commit-tree", tree, "-m", str(m), env=env).decode().strip()
        world.git(bare, "tag", "-f", m.tag, commit, env=world.env(GIT_DIR=bare))
        os.unlink(env["GIT_INDEX_FILE"])
        common.rmtree(work)
    # A default branch, for the ls-remote HEAD symref.
    last = world.git(bare, "rev-parse", modules[-1].tag + "^{commit}",
                     env=world.env(GIT_DIR=bare)).decode().strip()
    world.git(bare, "update-ref", "refs/heads/main", last, env=world.env(GIT_DIR=bare))


def check(proxy, m):
    """Step 4 for one module: what differs (empty when it matches)."""
    base = "/%s/@v/%s" % (escape(m.path), m.version)
    problems = []
    status, info, _ = common.get(proxy.port, base + ".info")
    if status != 200:
        return ["%s: .info %d %s" % (m, status, info[:500].decode(errors="replace"))]
    info = json.loads(info)
    if info.get("Version") != m.version or info.get("Time") != m.info["Time"]:
        problems.append("%s: .info %s, upstream %s" % (m, info, m.info))
    status, mod, _ = common.get(proxy.port, base + ".mod")
    if status != 200:
        return problems + ["%s: .mod %d %s" % (m, status, mod[:500].decode(errors="replace"))]
    got_mod = h1([("go.mod", mod)])
    if got_mod != m.want_mod:
        problems.append("%s: go.mod %s, checksum database %s" % (m, got_mod, m.want_mod))
    status, blob, _ = common.get(proxy.port, base + ".zip")
    if status != 200:
        return problems + ["%s: .zip %d %s" % (m, status, blob[:500].decode(errors="replace"))]
    got = zip_files(blob)
    got_zip = h1(got)
    if got_zip != m.want_zip:
        want = dict(zip_files(open(m.zip_path, "rb").read()))
        have = dict(got)
        only_up = sorted(set(want) - set(have))
        only_proxy = sorted(set(have) - set(want))
        changed = sorted(n for n in set(want) & set(have) if want[n] != have[n])
        problems.append("%s: zip %s, checksum database %s; only upstream: %s; only proxy: %s; "
                        "contents differ: %s" % (m, got_zip, m.want_zip, only_up[:10],
                                                 only_proxy[:10], changed[:10]))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bin", help="gomodproxy binary (default: build this tree in release mode)")
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--cache", help="directory for downloaded zips, kept between runs")
    ap.add_argument("--modules", help="file with one module[@version] a line")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    lines = open(args.modules).read() if args.modules else MODULES
    modules = [Module(l.strip()) for l in lines.splitlines() if l.strip() and not l.startswith("#")]
    binary = args.bin or common.release_binary()
    upstream = machine_proxy()
    scratch = tempfile.mkdtemp(prefix="gomodproxy-direct-realworld.")
    cache = args.cache or os.path.join(scratch, "zips")
    os.makedirs(cache, exist_ok=True)
    world = common.World(scratch)
    proxy = None
    try:
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            futures = {pool.submit(prepare, m, upstream, cache): m for m in modules}
            for f in concurrent.futures.as_completed(futures):
                m = futures[f]
                try:
                    f.result()
                except Exception as e:  # noqa: BLE001 - reported, the run goes on
                    m.skip = "upstream: %s" % e
        usable = [m for m in modules if not m.skip]
        for m in modules:
            if m.skip:
                print("skipped %s: %s" % (m, m.skip))
        total_mib = sum(os.path.getsize(m.zip_path) for m in usable) / 2**20
        print("%d modules from %s (%.0f MiB of zips) in %.0f s"
              % (len(usable), upstream, total_mib, time.perf_counter() - started))

        started = time.perf_counter()
        world.start_daemon()
        by_root = {}
        for m in usable:
            by_root.setdefault(m.root, []).append(m)
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(lambda kv: rebuild(world, *kv), by_root.items()))
        toml = ""
        for root in sorted(by_root):
            world.instead_of(root, root)
            toml += '[[direct.repos]]\npattern = "%s"\nurl = "https://%s"\n\n' % (root, root)
        print("%d repositories rebuilt in %.0f s" % (len(by_root), time.perf_counter() - started))

        started = time.perf_counter()
        proxy = common.Proxy(binary, os.path.join(scratch, "proxy"), world, toml=toml)
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda m: check(proxy, m), usable))
        problems = [p for r in results for p in r]
        matched = sum(1 for r in results if not r)
        print("checked through the proxy in %.0f s" % (time.perf_counter() - started))
        for m, r in zip(usable, results):
            print("%-8s %s%s" % ("ok" if not r else "MISMATCH", m,
                                  " (%s in the repository)" % m.tag if m.subdir else ""))
        for p in problems:
            print("MISMATCH " + p)
        print("%d of %d modules match the checksum database (zip and go.mod h1:, .info), "
              "%d skipped" % (matched, len(usable), len(modules) - len(usable)))
        return 0 if matched == len(usable) else 1
    finally:
        if proxy:
            proxy.stop()
        world.stop()
        if args.keep:
            print("kept", scratch)
        else:
            common.rmtree(scratch)


if __name__ == "__main__":
    sys.exit(main())
