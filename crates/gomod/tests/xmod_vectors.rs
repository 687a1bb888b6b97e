//! gomod's ports compared with golang.org/x/mod itself.
//!
//! testdata/vectors/xmod.jsonl was written by testdata/xmod (a Go program calling x/mod and
//! path.Match on a list of inputs); see testdata/make-vectors.sh. Each record is checked here
//! against the corresponding gomod function.

use std::cmp::Ordering;
use std::path::Path;

use gomod::{escape, glob, module, pseudo, semver};
use serde_json::Value;

fn records(kind: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/vectors/xmod.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let all: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let picked: Vec<Value> = all.into_iter().filter(|r| r["kind"] == kind).collect();
    assert!(!picked.is_empty(), "no {kind} records");
    picked
}

fn s<'a>(r: &'a Value, key: &str) -> &'a str {
    r[key].as_str().unwrap_or_else(|| panic!("{key} in {r}"))
}

/// Go's "" means "none" in these APIs.
fn opt(r: &Value, key: &str) -> Option<String> {
    Some(s(r, key).to_string()).filter(|v| !v.is_empty())
}

/// The Go error message, or None for nil.
fn err(r: &Value, key: &str) -> Option<String> {
    r[key].as_str().map(str::to_string)
}

#[test]
fn path_checks_match_x_mod() {
    for r in records("path") {
        let p = s(&r, "path");
        let ours = [
            module::check_path(p).err().map(|e| e.to_string()),
            module::check_import_path(p).err().map(|e| e.to_string()),
            module::check_file_path(p).err().map(|e| e.to_string()),
        ];
        let theirs = [err(&r, "module"), err(&r, "import"), err(&r, "file")];
        for (ours, theirs) in ours.iter().zip(&theirs) {
            assert_eq!(
                ours.is_none(),
                theirs.is_none(),
                "{p:?}: {ours:?} vs {theirs:?}"
            );
            // Messages match too, except that Rust escapes combining marks Go prints as is.
            if p.is_ascii() {
                assert_eq!(ours, theirs, "{p:?}");
            }
        }
    }
}

#[test]
fn semver_matches_x_mod() {
    for r in records("semver") {
        let v = s(&r, "v");
        assert_eq!(semver::is_valid(v), r["valid"].as_bool().unwrap(), "{v:?}");
        assert_eq!(
            semver::canonical(v),
            opt(&r, "canonical"),
            "canonical {v:?}"
        );
        assert_eq!(
            module::canonical_version(v),
            opt(&r, "module"),
            "module canonical {v:?}"
        );
        assert_eq!(
            semver::major(v).map(str::to_string),
            opt(&r, "major"),
            "{v:?}"
        );
        assert_eq!(semver::major_minor(v), opt(&r, "majorMinor"), "{v:?}");
        assert_eq!(
            semver::prerelease(v).map(str::to_string),
            opt(&r, "prerelease"),
            "{v:?}"
        );
        assert_eq!(
            semver::build(v).map(str::to_string),
            opt(&r, "build"),
            "{v:?}"
        );
    }
}

#[test]
fn semver_compare_matches_x_mod() {
    for r in records("compare") {
        let (v, w) = (s(&r, "v"), s(&r, "w"));
        let want = match r["cmp"].as_i64().unwrap() {
            -1 => Ordering::Less,
            0 => Ordering::Equal,
            _ => Ordering::Greater,
        };
        assert_eq!(semver::compare(v, w), want, "compare({v:?}, {w:?})");
        assert_eq!(semver::max(v, w), opt(&r, "max"), "max({v:?}, {w:?})");
    }
}

#[test]
fn pseudo_versions_match_x_mod() {
    for r in records("pseudo") {
        let v = s(&r, "v");
        assert_eq!(
            pseudo::is_pseudo_version(v),
            r["is"].as_bool().unwrap(),
            "{v:?}"
        );

        let base = pseudo::pseudo_version_base(v);
        assert_eq!(
            base.is_err(),
            r["baseErr"].as_bool().unwrap(),
            "base {v:?}: {base:?}"
        );
        if let Ok(base) = base {
            assert_eq!(base, opt(&r, "base"), "base {v:?}");
        }

        let rev = pseudo::pseudo_version_rev(v);
        assert_eq!(rev.is_err(), r["revErr"].as_bool().unwrap(), "rev {v:?}");
        if let Ok(rev) = rev {
            assert_eq!(rev, s(&r, "rev"), "rev {v:?}");
        }

        let time = pseudo::pseudo_version_time(v);
        assert_eq!(
            time.is_err(),
            r["timeErr"].as_bool().unwrap(),
            "time {v:?}: {time:?}"
        );
        if let Ok(time) = time {
            assert_eq!(time.to_rfc3339(), s(&r, "time"), "time {v:?}");
        }
    }
}

#[test]
fn module_check_matches_x_mod() {
    for r in records("check") {
        let (p, v) = (s(&r, "path"), s(&r, "version"));
        let ours = module::check(p, v);
        assert_eq!(
            ours.is_ok(),
            r["err"].is_null(),
            "check({p}, {v}): {ours:?} vs {}",
            r["err"]
        );
    }
}

#[test]
fn escaping_matches_x_mod() {
    for r in records("escapeVersion") {
        let v = s(&r, "v");
        let ours = escape::escape_version(v);
        assert_eq!(
            ours.is_ok(),
            r["err"].is_null(),
            "escape_version({v:?}): {ours:?}"
        );
        if let Ok(e) = ours {
            assert_eq!(e, s(&r, "escaped"));
            assert_eq!(escape::unescape_version(&e).unwrap(), v);
        }
    }
    for r in records("escapePath") {
        let p = s(&r, "path");
        let ours = escape::escape_path(p);
        assert_eq!(
            ours.is_ok(),
            r["err"].is_null(),
            "escape_path({p:?}): {ours:?}"
        );
        if let Ok(e) = ours {
            assert_eq!(e, s(&r, "escaped"));
            assert!(r["backErr"].is_null());
            assert_eq!(escape::unescape_path(&e).unwrap(), s(&r, "back"));
        }
    }
}

#[test]
fn globs_match_x_mod() {
    for r in records("glob") {
        let (patterns, target) = (s(&r, "patterns"), s(&r, "target"));
        assert_eq!(
            glob::match_prefix_patterns(patterns, target),
            r["match"].as_bool().unwrap(),
            "match_prefix_patterns({patterns:?}, {target:?})"
        );
    }
    for r in records("match") {
        let (pattern, name) = (s(&r, "pattern"), s(&r, "name"));
        let ours = glob::path_match(pattern, name);
        if r["err"].is_null() {
            assert_eq!(
                ours,
                Ok(r["match"].as_bool().unwrap()),
                "path_match({pattern:?}, {name:?})"
            );
        } else {
            assert!(
                ours.is_err(),
                "path_match({pattern:?}, {name:?}) = {ours:?}, Go: {}",
                r["err"]
            );
        }
    }
}
