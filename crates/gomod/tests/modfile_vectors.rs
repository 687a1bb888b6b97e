//! gomod::modfile and gomod::gosum compared with the go command.
//!
//! The vectors in testdata/modfile were written by testdata/modfile/make-vectors.sh:
//!
//! - modfile.jsonl: for each testdata/modfile/mod/*.mod, `go mod edit -json` (the strict parser)
//!   and golang.org/x/mod's `modfile.ParseLax` (the parser the go command applies to
//!   dependencies), or their errors;
//! - graph.jsonl: the requirements `go mod graph` gives some of those files when they are served
//!   as a dependency;
//! - gover.jsonl: go/version's order and validity of Go versions;
//! - gosum.jsonl: whether the go command accepts each testdata/modfile/sum/*.sum, and the hashes
//!   `go mod download -json` computes for module versions the real go.sum files list.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use gomod::gosum::GoSum;
use gomod::modfile::{self, ModFile, ModFileError, Replacement};
use serde_json::{Map, Value, json};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/modfile")
}

fn records(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir().join(file)).unwrap();
    let all: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!all.is_empty(), "no records in {file}");
    all
}

fn read(sub: &str, name: &str) -> Vec<u8> {
    std::fs::read(dir().join(sub).join(name)).unwrap()
}

/// `ModFile` in the shape of `go mod edit -json` (cmd/go/internal/modcmd/edit.go `fileJSON`;
/// testdata/modfile/oracle/main.go prints ParseLax's result in the same shape).
fn to_json(f: &ModFile) -> Value {
    let mut m = Map::new();
    let mut module = Map::new();
    module.insert("Path".into(), json!(f.module_path().unwrap_or("")));
    if let Some(d) = f.module.as_ref().and_then(|m| m.deprecated.as_ref()) {
        module.insert("Deprecated".into(), json!(d));
    }
    m.insert("Module".into(), Value::Object(module));
    if let Some(go) = &f.go {
        m.insert("Go".into(), json!(go));
    }
    if let Some(t) = &f.toolchain {
        m.insert("Toolchain".into(), json!(t));
    }
    if !f.godebug.is_empty() {
        let list: Vec<Value> = f
            .godebug
            .iter()
            .map(|d| json!({"Key": d.key, "Value": d.value}))
            .collect();
        m.insert("GoDebug".into(), json!(list));
    }
    let list = |items: Vec<Value>| {
        if items.is_empty() {
            Value::Null
        } else {
            Value::Array(items)
        }
    };
    let require = f
        .require
        .iter()
        .map(|r| {
            let mut o = json!({"Path": r.path, "Version": r.version.as_str()});
            if r.indirect {
                o["Indirect"] = json!(true);
            }
            o
        })
        .collect();
    m.insert("Require".into(), list(require));
    let exclude = f
        .exclude
        .iter()
        .map(|x| json!({"Path": x.path, "Version": x.version.as_str()}))
        .collect();
    m.insert("Exclude".into(), list(exclude));
    let replace = f
        .replace
        .iter()
        .map(|r| {
            let mut old = json!({"Path": r.old_path});
            if let Some(v) = &r.old_version {
                old["Version"] = json!(v.as_str());
            }
            let new = match &r.new {
                Replacement::Module { path, version } => {
                    json!({"Path": path, "Version": version.as_str()})
                }
                Replacement::Dir(d) => json!({ "Path": d }),
            };
            json!({"Old": old, "New": new})
        })
        .collect();
    m.insert("Replace".into(), list(replace));
    let retract = f
        .retract
        .iter()
        .map(|r| {
            let mut o = Map::new();
            for (k, v) in [
                ("Low", &r.low),
                ("High", &r.high),
                ("Rationale", &r.rationale),
            ] {
                if !v.is_empty() {
                    o.insert(k.into(), json!(v));
                }
            }
            Value::Object(o)
        })
        .collect();
    m.insert("Retract".into(), list(retract));
    let tool = f.tool.iter().map(|t| json!({"Path": t.path})).collect();
    m.insert("Tool".into(), list(tool));
    let ignore = f.ignore.iter().map(|i| json!({"Path": i.path})).collect();
    m.insert("Ignore".into(), list(ignore));
    Value::Object(m)
}

/// What `go mod edit` does to the parsed file before printing it: `SortBlocks` drops duplicate
/// excludes, tools and ignores (the first one stays) and duplicate replaces (the last one
/// stays); `Cleanup` drops entries that edits emptied (godebug without key, require, exclude or
/// replace without path, retract without versions). The order of the lists is the parse order.
fn as_go_mod_edit_prints(mut f: ModFile) -> ModFile {
    let mut seen = HashSet::new();
    f.exclude
        .retain(|x| seen.insert((x.path.clone(), x.version.clone())));
    let mut seen = HashSet::new();
    f.tool.retain(|t| seen.insert(t.path.clone()));
    let mut seen = HashSet::new();
    f.ignore.retain(|i| seen.insert(i.path.clone()));
    let mut seen = HashSet::new();
    let mut keep: Vec<bool> = f
        .replace
        .iter()
        .rev()
        .map(|r| seen.insert((r.old_path.clone(), r.old_version.clone())))
        .collect();
    keep.reverse();
    let mut keep = keep.into_iter();
    f.replace.retain(|_| keep.next().unwrap());

    f.godebug.retain(|d| !d.key.is_empty());
    f.require.retain(|r| !r.path.is_empty());
    f.exclude.retain(|x| !x.path.is_empty());
    f.replace.retain(|r| !r.old_path.is_empty());
    f.retract
        .retain(|r| !r.low.is_empty() || !r.high.is_empty());
    f
}

/// Go's error list text, one error per line (go breaks the replace usage message in two).
fn go_errors(text: &str) -> String {
    text.replace("\n\t or ", " or ")
}

fn ours(e: &ModFileError) -> String {
    e.messages().collect::<Vec<_>>().join("\n")
}

#[test]
fn go_mod_files_match_the_go_command() {
    let mut strict_ok = 0;
    let mut lax_only = 0;
    for r in records("modfile.jsonl") {
        let name = r["file"].as_str().unwrap();
        let data = read("mod", name);

        let strict = ModFile::parse("go.mod", &data);
        match (&strict, &r["strict"], &r["strictError"]) {
            (Ok(f), want, Value::Null) => {
                let got = to_json(&as_go_mod_edit_prints(f.clone()));
                assert_eq!(
                    &got, want,
                    "{name}: strict parse differs from go mod edit -json"
                );
                strict_ok += 1;
            }
            (Err(e), Value::Null, Value::String(want)) => {
                assert_eq!(ours(e), go_errors(want), "{name}: strict errors differ");
                assert_eq!(e.problems.len(), go_errors(want).lines().count(), "{name}");
            }
            (got, _, want) => panic!("{name}: strict: ours {got:?}, go mod edit: {want}"),
        }

        let lax = ModFile::parse_lax("go.mod", &data);
        match (&lax, &r["lax"], &r["laxError"]) {
            (Ok(f), want, Value::Null) => {
                assert_eq!(&to_json(f), want, "{name}: lax parse differs from ParseLax");
                lax_only += usize::from(strict.is_err());
            }
            (Err(e), Value::Null, Value::String(want)) => {
                assert_eq!(ours(e), go_errors(want), "{name}: lax errors differ");
            }
            (got, _, want) => panic!("{name}: lax: ours {got:?}, ParseLax: {want}"),
        }
    }
    // The vectors exercise both outcomes in both modes.
    assert!(strict_ok >= 20, "{strict_ok}");
    assert!(lax_only >= 4, "{lax_only}");
}

#[test]
fn dependency_requirements_match_go_mod_graph() {
    let mut checked = 0;
    for r in records("graph.jsonl") {
        let name = r["file"].as_str().unwrap();
        let lax = ModFile::parse_lax("go.mod", &read("mod", name));
        match (&lax, &r["requires"], &r["error"]) {
            (Ok(f), Value::Array(want), Value::Null) => {
                // The go command adds a requirement on the go version itself from go 1.21 on
                // (modload.summaryFromModFile), which go mod graph prints as go@<version>.
                let mut got: Vec<String> = f
                    .require
                    .iter()
                    .map(|r| format!("{}@{}", r.path, r.version))
                    .collect();
                if f.go.is_some() && f.go_version_at_least("1.21") {
                    got.push(format!("go@{}", f.go_version()));
                }
                got.sort();
                let want: Vec<&str> = want.iter().map(|v| v.as_str().unwrap()).collect();
                assert_eq!(got, want, "{name}");
                checked += 1;
            }
            (Err(e), Value::Null, Value::String(go)) => {
                for m in e.messages() {
                    assert!(go.contains(&m), "{name}: {m:?} not in {go:?}");
                }
            }
            (got, want, go) => panic!("{name}: ours {got:?}, go mod graph {want} {go}"),
        }
    }
    assert!(checked >= 15, "{checked}");
}

#[test]
fn go_versions_match_go_version_package() {
    let recs = records("gover.jsonl");
    let list: Vec<&str> = recs.iter().map(|r| r["v"].as_str().unwrap()).collect();
    for r in &recs {
        let v = r["v"].as_str().unwrap();
        assert_eq!(
            modfile::is_valid_go_version(v),
            r["valid"].as_bool().unwrap(),
            "valid {v:?}"
        );
        for (w, c) in list.iter().zip(r["cmp"].as_array().unwrap()) {
            let want = c.as_i64().unwrap().cmp(&0);
            assert_eq!(
                modfile::compare_go_versions(v, w),
                want,
                "compare({v:?}, {w:?})"
            );
        }
    }
}

#[test]
fn go_version_helpers_on_real_files() {
    let parse = |name: &str| ModFile::parse_lax("go.mod", &read("mod", name)).unwrap();
    // go 1.12: unpruned; no go directive: 1.16, unpruned; go 1.17 and 1.23.0: pruned.
    let old = parse("real-json-iterator.mod");
    assert_eq!((old.go_version(), old.is_pruned()), ("1.12", false));
    let none = parse("real-yaml-v3.mod");
    assert_eq!((none.go.as_deref(), none.go_version()), (None, "1.16"));
    assert!(!none.is_pruned());
    assert!(parse("real-golang-protobuf.mod").is_pruned());
    let text = parse("real-x-text.mod");
    assert!(text.go_version_at_least("1.23") && !text.go_version_at_least("1.24"));
    assert!(text.go_version_at_least("1.23rc1") && text.go_version_at_least("1.23.0"));
    assert!(!text.go_version_at_least("1.23.1"));
}

#[test]
fn replacement_lookup_follows_go() {
    let f = ModFile::parse("go.mod", &read("mod", "directives.mod")).unwrap();
    let module = |p: &str, v: &str| Replacement::Module {
        path: p.into(),
        version: v.parse().unwrap(),
    };
    // An exact-version replace beats the path-wide ones; among those, the last one wins.
    assert_eq!(
        f.replacement("example.com/old", "v1.2.0"),
        Some(&module("example.com/new", "v1.2.1"))
    );
    assert_eq!(
        f.replacement("example.com/old", "v9.0.0"),
        Some(&module("example.com/newer", "v1.3.0"))
    );
    assert_eq!(
        f.replacement("example.com/up", "v1.0.0"),
        Some(&Replacement::Dir("../up".into()))
    );
    assert_eq!(f.replacement("example.com/up", "v1.0.1"), None);
    assert_eq!(f.replacement("example.com/none", "v1.0.0"), None);
}

/// `(path, version)` → `(zip hash, go.mod hash)` as `go mod download -json` reported them.
type Downloads = HashMap<(String, String), (String, String)>;

fn sum_records() -> (Vec<Value>, Downloads) {
    let mut verdicts = Vec::new();
    let mut downloads = HashMap::new();
    for r in records("gosum.jsonl") {
        match r["kind"].as_str().unwrap() {
            "verdict" => verdicts.push(r),
            "download" => {
                let s = |k: &str| r[k].as_str().unwrap().to_string();
                downloads.insert((s("path"), s("version")), (s("sum"), s("goModSum")));
            }
            k => panic!("kind {k}"),
        }
    }
    (verdicts, downloads)
}

#[test]
fn go_sum_verdicts_match_the_go_command() {
    let (verdicts, _) = sum_records();
    let mut rejected = 0;
    for r in verdicts {
        let name = r["file"].as_str().unwrap();
        let got = GoSum::parse("go.sum", &read("sum", name));
        if r["accepted"].as_bool().unwrap() {
            assert!(got.is_ok(), "{name}: go accepts it, we say {got:?}");
        } else {
            let e = got.expect_err(name);
            assert_eq!(
                format!("{}: {}", e.line, e.reason),
                r["error"].as_str().unwrap(),
                "{name}"
            );
            rejected += 1;
        }
    }
    assert!(rejected >= 4, "{rejected}");
}

#[test]
fn real_go_sum_hashes_match_go_mod_download() {
    let (verdicts, downloads) = sum_records();
    let mut used = HashSet::new();
    let mut matched = 0;
    for r in verdicts {
        let name = r["file"].as_str().unwrap();
        if !name.starts_with("real-") {
            continue;
        }
        let data = read("sum", name);
        let sum = GoSum::parse("go.sum", &data).unwrap();
        let lines = data
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        assert_eq!(sum.entries.len(), lines, "{name}: one entry per line");
        for e in &sum.entries {
            // Everything the go command wrote is a valid module version with an h1 hash.
            e.module()
                .unwrap_or_else(|err| panic!("{name}:{}: {err}", e.line));
            assert!(e.h1().is_some(), "{name}:{}", e.line);
            let key = (e.path.clone(), e.version.clone());
            if let Some((zip, go_mod)) = downloads.get(&key) {
                let want = if e.go_mod { go_mod } else { zip };
                assert_eq!(&e.hash, want, "{name}:{}", e.line);
                used.insert(key);
                matched += 1;
            }
        }
    }
    assert!(matched >= 300, "{matched}");
    assert_eq!(
        used.len(),
        downloads.len(),
        "every downloaded module is found in a go.sum"
    );
}

#[test]
fn go_sum_whitespace_is_unicode_white_space() {
    let sum = GoSum::parse("go.sum", &read("sum", "ok-whitespace.sum")).unwrap();
    let got: BTreeMap<usize, (&str, &str, bool, &str)> = sum
        .entries
        .iter()
        .map(|e| {
            let t = (
                e.path.as_str(),
                e.version.as_str(),
                e.go_mod,
                e.hash.as_str(),
            );
            (e.line, t)
        })
        .collect();
    let h = "h1:dd5Bzh4yt5KYA8f9CJHCP4FB4D51c2c6JvN37xJJkJ0=";
    // Line 4 (NBSP and ideographic space separators) has the empty go.mod hash: dropped.
    let want = BTreeMap::from([
        (1, ("example.com/a", "v1.0.0", false, h)),
        (5, ("example.com/b", "v0.1.0", false, "h2:future-algorithm")),
        (6, ("example.com/b", "v0.1.0", false, h)),
        (7, ("example.com/b", "v0.1.0", false, h)),
        (8, ("example.com/c", "v1.0.0", false, "h1:x\u{200b}y")),
        (9, ("not-a-path", "not-a-version", false, "not-a-hash")),
        (
            10,
            ("example.com/d", "v1.0.0", false, "h1:\u{fffd}\u{fffd}"),
        ),
    ]);
    assert_eq!(got, want);
    assert_eq!(
        sum.hashes("example.com/b", "v0.1.0", false).count(),
        3,
        "duplicates are kept"
    );
}

#[test]
fn deliberate_strictness_beyond_go() {
    // go keeps these bytes (and fails later, when the path is used); we refuse them up front.
    let e = ModFile::parse("go.mod", b"module example.com/\xff\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "go.mod:1: invalid UTF-8 in \"example.com/\u{fffd}\""
    );
    let e = ModFile::parse_lax(
        "go.mod",
        b"module m\nrequire \"example.com/\\xff\" v1.0.0\n",
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with("go.mod:2: invalid UTF-8 in"),
        "{e}"
    );
    // Replace is skipped in lax mode, so nothing is refused there.
    let f = ModFile::parse_lax("go.mod", b"module m\nreplace a\xff => ./b\n").unwrap();
    assert!(f.replace.is_empty());
    let long = format!(
        "module m\nrequire example.com/a v1.0.0-{}\n",
        "a".repeat(300)
    );
    let e = ModFile::parse("go.mod", long.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("longer than 256 bytes"), "{e}");
}
