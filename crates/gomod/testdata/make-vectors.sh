#!/usr/bin/env bash
# Regenerates the h1 columns of testdata/vectors/manifest.txt with the real go command.
#
# For each manifest line it builds a module zip from testdata/vectors/<dir>/ (with Python's
# zipfile, so the zip is not made by the code under test), lays out a file:// GOPROXY tree
# (<escaped module>/@v/{list,<v>.info,<v>.mod,<v>.zip}), runs
#   go mod download -json <module>@<version>
# hermetically (GOPROXY=file://…, GOSUMDB=off, GOTOOLCHAIN=local, fresh GOMODCACHE/GOPATH/
# GOCACHE, GOENV=off) and writes its Sum and GoModSum back into the manifest. It does the same
# for the small zips of testdata/vectors/zipcases.txt, recording whether the go command accepts
# each. tests/go_vectors.rs rebuilds the same zips with the zip crate: check_zip must produce the
# same hashes and the same verdicts. Last, the zips of testdata/vectors/zipraw.txt may hold one
# name several times (which the zip crate cannot write): for each, the go command's verdict and,
# if it accepts the zip, its Sum are recorded; tests/go_vectors.rs writes those zips byte by
# byte.
#
# First, testdata/xmod (a tiny Go program using golang.org/x/mod itself, pinned in its go.mod)
# writes vectors/xmod.jsonl: x/mod's answers for path checks, semver, pseudo-versions, escaping,
# GOPRIVATE patterns and path.Match, compared by tests/xmod_vectors.rs. That step fetches
# golang.org/x/mod through your usual GOPROXY; everything after it is hermetic.
#
# Usage: crates/gomod/testdata/make-vectors.sh   (needs go and python3)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
vectors="$here/vectors"
work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

(cd "$here/xmod" && GOFLAGS=-mod=mod GOTOOLCHAIN=local go run .) >"$vectors/xmod.jsonl"

export GOPROXY="file://$work/proxy" GOSUMDB=off GOFLAGS=-mod=mod GOTOOLCHAIN=local GOENV=off
export GOMODCACHE="$work/modcache" GOPATH="$work/gopath" GOCACHE="$work/gocache"
export GONOSUMDB= GOPRIVATE= GONOPROXY= GOINSECURE=

python3 - "$vectors" "$work/proxy" <<'PY'
import json, os, sys, zipfile

vectors, proxy = sys.argv[1], sys.argv[2]

def escape(s):
    return "".join("!" + c.lower() if "A" <= c <= "Z" else c for c in s)

for line in open(os.path.join(vectors, "manifest.txt"), encoding="utf-8"):
    if not line.strip() or line.startswith("#"):
        continue
    d, module, version, dirs = line.split()[:4]
    root = os.path.join(vectors, d)
    prefix = f"{module}@{version}/"
    files, subdirs = [], set()
    for base, dnames, fnames in os.walk(root):
        rel = os.path.relpath(base, root).replace(os.sep, "/")
        if rel != ".":
            subdirs.add(rel + "/")
        for f in fnames:
            files.append(f if rel == "." else f"{rel}/{f}")
    at = os.path.join(proxy, escape(module), "@v")
    os.makedirs(at, exist_ok=True)
    with zipfile.ZipFile(os.path.join(at, escape(version) + ".zip"), "w", zipfile.ZIP_DEFLATED) as z:
        if dirs == "yes":
            for name in [""] + sorted(subdirs):
                z.writestr(zipfile.ZipInfo(prefix + name), b"")
        for f in sorted(files):
            with open(os.path.join(root, f), "rb") as fh:
                z.writestr(prefix + f, fh.read())
    gomod_path = os.path.join(root, "go.mod")
    if os.path.exists(gomod_path):
        gomod = open(gomod_path, "rb").read()
    else:
        gomod = f"module {module}\n".encode()
    open(os.path.join(at, escape(version) + ".mod"), "wb").write(gomod)
    json.dump({"Version": version, "Time": "2024-01-02T03:04:05Z"},
              open(os.path.join(at, escape(version) + ".info"), "w"))
    with open(os.path.join(at, "list"), "a") as fh:
        if "-20" not in version:  # pseudo-versions are not listed
            fh.write(version + "\n")

for line in open(os.path.join(vectors, "zipcases.txt"), encoding="utf-8"):
    if not line.strip() or line.startswith("#"):
        continue
    module, version, _, *entries = line.split()
    at = os.path.join(proxy, escape(module), "@v")
    os.makedirs(at, exist_ok=True)
    with zipfile.ZipFile(os.path.join(at, version + ".zip"), "w", zipfile.ZIP_DEFLATED) as z:
        for e in entries:
            z.writestr(zipfile.ZipInfo(f"{module}@{version}/{e}"), b"" if e.endswith("/") else b"x\n")
    open(os.path.join(at, version + ".mod"), "w").write(f"module {module}\n")
    json.dump({"Version": version}, open(os.path.join(at, version + ".info"), "w"))
    open(os.path.join(at, "list"), "w").write(version + "\n")

# zipraw.txt: like zipcases.txt, but names may repeat and <root> is the entry module@version/.
import warnings
warnings.simplefilter("ignore")  # zipfile warns about duplicate names: they are the point
for line in open(os.path.join(vectors, "zipraw.txt"), encoding="utf-8"):
    if not line.strip() or line.startswith("#"):
        continue
    module, version, _, _, *entries = line.split()
    at = os.path.join(proxy, escape(module), "@v")
    os.makedirs(at, exist_ok=True)
    with zipfile.ZipFile(os.path.join(at, version + ".zip"), "w", zipfile.ZIP_STORED) as z:
        for e in entries:
            e = "" if e == "<root>" else e
            z.writestr(zipfile.ZipInfo(f"{module}@{version}/{e}"), b"" if e == "" or e.endswith("/") else b"x\n")
    open(os.path.join(at, version + ".mod"), "w").write(f"module {module}\n")
    json.dump({"Version": version}, open(os.path.join(at, version + ".info"), "w"))
    open(os.path.join(at, "list"), "w").write(version + "\n")
PY

cd "$work"
out="$work/manifest.txt"
while IFS= read -r line; do
    if [[ -z "$line" || "$line" == \#* ]]; then
        printf '%s\n' "$line" >>"$out"
        continue
    fi
    read -r dir module version dirs _ <<<"$line"
    json="$(go mod download -json "$module@$version")"
    sums="$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["Sum"], d["GoModSum"])' <<<"$json")"
    printf '%s %s %s %s %s\n' "$dir" "$module" "$version" "$dirs" "$sums" >>"$out"
done <"$vectors/manifest.txt"

cp "$out" "$vectors/manifest.txt"

out="$work/zipcases.txt"
while IFS= read -r line; do
    if [[ -z "$line" || "$line" == \#* ]]; then
        printf '%s\n' "$line" >>"$out"
        continue
    fi
    read -r module version _ entries <<<"$line"
    if go mod download "$module@$version" 2>"$work/err"; then
        verdict=accept
    else
        verdict=reject
        echo "$module: $(tail -1 "$work/err")" >&2
    fi
    printf '%s %s %s %s\n' "$module" "$version" "$verdict" "$entries" >>"$out"
done <"$vectors/zipcases.txt"
cp "$out" "$vectors/zipcases.txt"

out="$work/zipraw.txt"
while IFS= read -r line; do
    if [[ -z "$line" || "$line" == \#* ]]; then
        printf '%s\n' "$line" >>"$out"
        continue
    fi
    read -r module version _ _ entries <<<"$line"
    if json="$(go mod download -json "$module@$version" 2>"$work/err")"; then
        verdict=accept
        sum="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Sum"])' <<<"$json")"
    else
        verdict=reject
        sum=-
        echo "$module: $(python3 -c 'import json,sys; print(json.load(sys.stdin).get("Error", ""))' <<<"$json" 2>/dev/null || tail -1 "$work/err")" >&2
    fi
    printf '%s %s %s %s %s\n' "$module" "$version" "$verdict" "$sum" "$entries" >>"$out"
done <"$vectors/zipraw.txt"
cp "$out" "$vectors/zipraw.txt"

go version
cat "$vectors/manifest.txt" "$vectors/zipcases.txt" "$vectors/zipraw.txt"
