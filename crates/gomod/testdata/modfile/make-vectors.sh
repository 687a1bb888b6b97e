#!/usr/bin/env bash
# Regenerates the go.mod / go.sum vectors in testdata/modfile with the real go command
# (tests/modfile_vectors.rs checks gomod::modfile and gomod::gosum against them):
#
#   modfile.jsonl  for each mod/*.mod:
#                    strict / strictError  `go mod edit -json go.mod` (modfile.Parse, no version
#                                          fixer): its JSON, or its error lines
#                    lax / laxError        golang.org/x/mod/modfile.ParseLax, which the go command
#                                          applies to every dependency's go.mod (oracle/main.go)
#   graph.jsonl    for the mod/*.mod files listed below: each served as a dependency
#                  (file:// GOPROXY) of a go 1.26 main module, and the requirements
#                  `go mod graph` gives it (or the go command's error) — the lax reading as the
#                  go command itself applies it while building the module graph
#   gover.jsonl    go/version.Compare over every pair in goversions.txt, and IsValid
#   gosum.jsonl    {"kind":"verdict"} for each sum/*.sum: whether the go command accepts it as
#                  a go.sum (`go mod download` of a stub module reads it) and its error;
#                  {"kind":"download"} for each module version the real-*.sum files list that is
#                  in your module cache: its Sum and GoModSum from `go mod download -json`
#                  (GOPROXY=file://$(go env GOMODCACHE)/cache/download, so the set of these
#                  depends on your cache; nothing is written to it)
#
# Only building oracle/ uses the network (golang.org/x/mod through your usual GOPROXY).
# Usage: crates/gomod/testdata/modfile/make-vectors.sh   (needs go and python3)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# Files served as dependencies for graph.jsonl.
graph_files="basic.mod crlf.mod deprecated1.mod directives.mod lax.mod laxgo1.mod laxgo2.mod
laxgo3.mod laxgo4.mod noeol.mod real-*.mod invalid-utf8-comments.mod"

(cd "$here/oracle" && GOFLAGS=-mod=mod GOTOOLCHAIN=local go build -o "$work/oracle" .)
realcache="$(go env GOMODCACHE)/cache/download"

export GOFLAGS=-mod=mod GOTOOLCHAIN=local GOPROXY=off GOSUMDB=off GOENV=off GOWORK=off
export GOPATH="$work/gopath" GOCACHE="$work/gocache" GOMODCACHE="$work/modcache"
export GONOSUMDB= GOPRIVATE= GONOPROXY= GOINSECURE= GOEXPERIMENT=

# --- modfile.jsonl -----------------------------------------------------------------------------
"$work/oracle" lax "$here"/mod/*.mod >"$work/lax.jsonl"
mkdir "$work/edit"
for f in "$here"/mod/*.mod; do
    cp "$f" "$work/edit/go.mod"
    rc=0
    (cd "$work/edit" && go mod edit -json go.mod) >"$work/edit.out" 2>"$work/edit.err" || rc=$?
    python3 - "$(basename "$f")" "$rc" "$work/edit.out" "$work/edit.err" >>"$work/strict.jsonl" <<'PY'
import json, sys
name, rc, out, err = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rec = {"file": name, "strict": None, "strictError": None}
if rc == 0:
    rec["strict"] = json.load(open(out, encoding="utf-8"))
else:
    text = open(err, encoding="utf-8", errors="replace").read()
    header = "go: errors parsing go.mod:\n"
    assert text.startswith(header), text
    rec["strictError"] = text[len(header):].rstrip("\n")
print(json.dumps(rec, ensure_ascii=False))
PY
done
python3 - "$work/strict.jsonl" "$work/lax.jsonl" >"$here/modfile.jsonl" <<'PY'
import json, sys
strict = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
lax = {r["file"]: r for r in map(json.loads, open(sys.argv[2], encoding="utf-8"))}
for s in strict:
    s.update({k: lax[s["file"]][k] for k in ("lax", "laxError")})
    print(json.dumps(s, ensure_ascii=False, sort_keys=True))
PY

# --- graph.jsonl -------------------------------------------------------------------------------
# Each file is served as <its module path>@<v1.0.0, or vN.0.0 for a /vN or .vN path>; every module
# it requires (per ParseLax) gets a stub go.mod, in case the go command loads it (it does below
# an unpruned dependency).
python3 - "$here/mod" "$work/lax.jsonl" "$work/graphproxy" "$work/graphcases.txt" "$graph_files" <<'PY'
import fnmatch, json, os, re, sys
moddir, laxfile, proxy, cases, patterns = sys.argv[1:]
files = sorted(f for f in os.listdir(moddir) if any(fnmatch.fnmatch(f, p) for p in patterns.split()))
lax = {r["file"]: r for r in map(json.loads, open(laxfile, encoding="utf-8"))}

def escape(s):
    return "".join("!" + c.lower() if "A" <= c <= "Z" else c for c in s)

def serve(path, version, data):
    at = os.path.join(proxy, escape(path), "@v")
    os.makedirs(at, exist_ok=True)
    with open(os.path.join(at, escape(version) + ".mod"), "wb") as fh:
        fh.write(data)

# Stubs first, so that a tested file wins if it is also someone's requirement.
for f in files:
    for r in (lax[f]["lax"] or {}).get("Require") or []:
        serve(r["Path"], r["Version"], f"module {r['Path']}\n".encode())
served = set()
with open(cases, "w") as out:
    for f in files:
        data = open(os.path.join(moddir, f), "rb").read()
        # The module path as ParseLax reads it, or with a plain regexp if it fails.
        if lax[f]["lax"] is not None:
            path = lax[f]["lax"]["Module"]["Path"]
        else:
            path = re.search(rb"^module\s+(\S+)", data, re.M).group(1).decode()
        m = re.search(r"[/.]v([0-9]+)$", path)
        version = f"v{m.group(1)}.0.0" if m and m.group(1) not in ("0", "1") else "v1.0.0"
        assert path not in served, f"{f}: module path {path} is used twice"
        served.add(path)
        serve(path, version, data)
        out.write(f"{f} {path} {version}\n")
PY
mkdir "$work/graph"
while read -r f path version; do
    printf 'module example.com/graphmain\n\ngo 1.26\n\nrequire %s %s\n' "$path" "$version" >"$work/graph/go.mod"
    rm -f "$work/graph/go.sum"
    rc=0
    (cd "$work/graph" && GOPROXY="file://$work/graphproxy" GOMODCACHE="$work/graphcache-$f" go mod graph) >"$work/graph.out" 2>"$work/graph.err" || rc=$?
    python3 - "$f" "$path@$version" "$rc" "$work/graph.out" "$work/graph.err" <<'PY'
import json, sys
f, dep, rc, out, err = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
rec = {"file": f, "dep": dep, "requires": None, "error": None}
if rc == 0:
    edges = [l.split() for l in open(out, encoding="utf-8") if l.strip()]
    rec["requires"] = sorted(b for a, b in edges if a == dep)
else:
    rec["error"] = open(err, encoding="utf-8", errors="replace").read().rstrip("\n")
print(json.dumps(rec, ensure_ascii=False, sort_keys=True))
PY
done <"$work/graphcases.txt" >"$here/graph.jsonl"

# --- gover.jsonl -------------------------------------------------------------------------------
"$work/oracle" gover "$here/goversions.txt" >"$here/gover.jsonl"

# --- gosum.jsonl -------------------------------------------------------------------------------
stub="$work/stubproxy/example.com/stub/@v"
mkdir -p "$stub"
printf 'module example.com/stub\n' >"$stub/v1.0.0.mod"
printf '{"Version":"v1.0.0"}\n' >"$stub/v1.0.0.info"
python3 -c 'import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("example.com/stub@v1.0.0/go.mod", "module example.com/stub\n")' "$stub/v1.0.0.zip"
mkdir "$work/sum"
printf 'module example.com/summain\n\ngo 1.26\n' >"$work/sum/go.mod.orig"
: >"$work/gosum.jsonl"
for f in "$here"/sum/*.sum; do
    cp "$work/sum/go.mod.orig" "$work/sum/go.mod"
    cp "$f" "$work/sum/go.sum"
    chmod u+w "$work/sum/go.sum"
    rc=0
    (cd "$work/sum" && GOPROXY="file://$work/stubproxy" go mod download -json example.com/stub@v1.0.0) >/dev/null 2>"$work/sum.err" || rc=$?
    python3 - "$(basename "$f")" "$rc" "$work/sum.err" >>"$work/gosum.jsonl" <<'PY'
import json, sys
name, rc, err = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rec = {"kind": "verdict", "file": name, "accepted": rc == 0, "error": None}
if rc != 0:
    # "malformed go.sum:\n/abs/path/go.sum:N: wrong number of fields K"
    lines = open(err, encoding="utf-8", errors="replace").read().splitlines()
    assert lines[0] == "malformed go.sum:", lines
    rec["error"] = lines[1].split("/go.sum:", 1)[1]
print(json.dumps(rec, sort_keys=True))
PY
done
python3 - "$realcache" "$here"/sum/real-*.sum >"$work/cached.txt" <<'PY'
import os, sys
cache, files = sys.argv[1], sys.argv[2:]
def escape(s):
    return "".join("!" + c.lower() if "A" <= c <= "Z" else c for c in s)
seen = set()
for f in files:
    for line in open(f, encoding="utf-8"):
        fields = line.split()
        if len(fields) != 3:
            continue
        path, version = fields[0], fields[1].removesuffix("/go.mod")
        at = os.path.join(cache, escape(path), "@v", escape(version))
        if (path, version) not in seen and os.path.exists(at + ".mod") and os.path.exists(at + ".zip"):
            seen.add((path, version))
            print(f"{path}@{version}")
PY
(cd "$work/sum" && rm -f go.sum && GOPROXY="file://$realcache" xargs go mod download -json <"$work/cached.txt") >"$work/download.json"
python3 - "$work/download.json" >>"$work/gosum.jsonl" <<'PY'
import json, sys
text, dec, i = open(sys.argv[1], encoding="utf-8").read(), json.JSONDecoder(), 0
while True:
    while i < len(text) and text[i].isspace():
        i += 1
    if i == len(text):
        break
    d, i = dec.raw_decode(text, i)
    assert "Error" not in d, d
    print(json.dumps({"kind": "download", "path": d["Path"], "version": d["Version"],
                      "sum": d["Sum"], "goModSum": d["GoModSum"]}, sort_keys=True))
PY
cp "$work/gosum.jsonl" "$here/gosum.jsonl"

go version
wc -l "$here"/*.jsonl
