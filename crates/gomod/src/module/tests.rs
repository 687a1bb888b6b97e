//! Unit tests of the parent module.

use super::*;

/// (path, module-path error?, import-path error?, file-path error?), after x/mod's table.
const PATHS: &[(&str, bool, bool, bool)] = &[
    ("x.y/z", true, true, true),
    ("x.y", true, true, true),
    ("", false, false, false),
    ("x.y/\u{ff}z", false, false, true),
    ("/x.y/z", false, false, false),
    ("x./z", false, false, false),
    (".x/z", false, true, true),
    ("-x/z", false, false, true),
    ("x..y/z", true, true, true),
    ("x.y/z/../../w", false, false, false),
    ("x.y//z", false, false, false),
    ("x.y/z//w", false, false, false),
    ("x.y/z/", false, false, false),
    ("x.y/z/v0", false, true, true),
    ("x.y/z/v1", false, true, true),
    ("x.y/z/v2", true, true, true),
    ("x.y/z/v2.0", false, true, true),
    ("X.y/z", false, true, true),
    ("!x.y/z", false, false, true),
    ("_x.y/z", false, true, true),
    ("x.y!/z", false, false, true),
    ("x.y\"/z", false, false, false),
    ("x.y#/z", false, false, true),
    ("x.y$/z", false, false, true),
    ("x.y%/z", false, false, true),
    ("x.y&/z", false, false, true),
    ("x.y'/z", false, false, false),
    ("x.y(/z", false, false, true),
    ("x.y)/z", false, false, true),
    ("x.y*/z", false, false, false),
    ("x.y+/z", false, true, true),
    ("x.y,/z", false, false, true),
    ("x.y-/z", true, true, true),
    ("x.y./zt", false, false, false),
    ("x.y:/z", false, false, false),
    ("x.y;/z", false, false, false),
    ("x.y</z", false, false, false),
    ("x.y=/z", false, false, true),
    ("x.y>/z", false, false, false),
    ("x.y?/z", false, false, false),
    ("x.y@/z", false, false, true),
    ("x.y[/z", false, false, true),
    ("x.y\\/z", false, false, false),
    ("x.y]/z", false, false, true),
    ("x.y^/z", false, false, true),
    ("x.y_/z", false, true, true),
    ("x.y`/z", false, false, false),
    ("x.y{/z", false, false, true),
    ("x.y}/z", false, false, true),
    ("x.y~/z", false, true, true),
    ("x.y/z!", false, false, true),
    ("x.y/z\"", false, false, false),
    ("x.y/z#", false, false, true),
    ("x.y/z$", false, false, true),
    ("x.y/z%", false, false, true),
    ("x.y/z&", false, false, true),
    ("x.y/z'", false, false, false),
    ("x.y/z(", false, false, true),
    ("x.y/z)", false, false, true),
    ("x.y/z*", false, false, false),
    ("x.y/z+", false, true, true),
    ("x.y/z,", false, false, true),
    ("x.y/z-", true, true, true),
    ("x.y/z.t", true, true, true),
    ("x.y/z/t", true, true, true),
    ("x.y/z:", false, false, false),
    ("x.y/z;", false, false, false),
    ("x.y/z<", false, false, false),
    ("x.y/z=", false, false, true),
    ("x.y/z>", false, false, false),
    ("x.y/z?", false, false, false),
    ("x.y/z@", false, false, true),
    ("x.y/z[", false, false, true),
    ("x.y/z\\", false, false, false),
    ("x.y/z]", false, false, true),
    ("x.y/z^", false, false, true),
    ("x.y/z_", true, true, true),
    ("x.y/z`", false, false, false),
    ("x.y/z{", false, false, true),
    ("x.y/z}", false, false, true),
    ("x.y/z~", true, true, true),
    ("x.y/x.foo", true, true, true),
    ("x.y/aux.foo", false, false, false),
    ("x.y/prn", false, false, false),
    ("x.y/prn2", true, true, true),
    ("x.y/com", true, true, true),
    ("x.y/com1", false, false, false),
    ("x.y/com1.txt", false, false, false),
    ("x.y/calm1", true, true, true),
    ("x.y/z~", true, true, true),
    ("x.y/z~0", false, false, true),
    ("x.y/z~09", false, false, true),
    ("x.y/z09", true, true, true),
    ("x.y/z09~", true, true, true),
    ("x.y/z09~09z", true, true, true),
    ("x.y/z09~09z~09", false, false, true),
    ("x.y/z~1.go", false, false, true),
    ("github.com/!123/logrus", false, false, true),
    ("github.com/user/unicode/испытание", false, false, true),
    ("../x", false, false, false),
    ("./y", false, false, false),
    ("x:y", false, false, false),
    ("\\temp\\foo", false, false, false),
    (".gitignore", false, true, true),
    (".github/ISSUE_TEMPLATE", false, true, true),
    ("x☺y", false, false, false),
    ("x.y/a b", false, false, true),
    ("x.y/\u{0905}\u{093e}", false, false, false),
    ("x.y/\u{2160}", false, false, false),
    ("gopkg.in/yaml.v2", true, true, true),
    ("gopkg.in/yaml.v0", true, true, true),
    ("gopkg.in/yaml.v00", false, true, true),
    ("gopkg.in/yaml.v1-unstable", true, true, true),
    ("gopkg.in/yaml", false, true, true),
    ("gopkg.in/yaml.v", false, true, true),
    ("gopkg.in/foo/yaml.v2", true, true, true),
    ("example.com/a/v10", true, true, true),
    ("example.com/a/v02", false, true, true),
];

#[test]
fn path_tables() {
    for &(path, module_ok, import_ok, file_ok) in PATHS {
        assert_eq!(check_path(path).is_ok(), module_ok, "check_path({path:?})");
        assert_eq!(
            check_import_path(path).is_ok(),
            import_ok,
            "check_import_path({path:?}): {:?}",
            check_import_path(path)
        );
        assert_eq!(
            check_file_path(path).is_ok(),
            file_ok,
            "check_file_path({path:?}): {:?}",
            check_file_path(path)
        );
    }
}

#[test]
fn error_reasons() {
    let reason = |p: &str| match check_path(p).unwrap_err() {
        Error::InvalidPath { reason, .. } => reason,
        e => panic!("{e:?}"),
    };
    assert_eq!(
        reason("x.y/com1.txt"),
        r#""com1" disallowed as path element component on Windows"#
    );
    assert_eq!(reason("github/x"), "missing dot in first path element");
    assert_eq!(
        reason("GitHub.com/x"),
        "invalid char 'G' in first path element"
    );
    assert_eq!(reason("x.y/z/v1"), "invalid version");
    assert_eq!(
        reason("x.y/z~0"),
        "trailing tilde and digits in path element"
    );
    assert_eq!(reason("x.y/.z"), "leading dot in path element");
    assert_eq!(reason("-x.y/z"), "leading dash");
    assert_eq!(reason("x.y/z+"), "invalid char '+'");
}

#[test]
fn split_path_versions() {
    let cases: &[(&str, Option<(&str, &str)>)] = &[
        ("example.com/m", Some(("example.com/m", ""))),
        ("example.com/m/v2", Some(("example.com/m", "/v2"))),
        ("example.com/m/v10", Some(("example.com/m", "/v10"))),
        ("example.com/m/v1", None),
        ("example.com/m/v0", None),
        ("example.com/m/v02", None),
        ("example.com/m/v2.0", None),
        ("example.com/m/v", Some(("example.com/m/v", ""))),
        ("example.com/mv2", Some(("example.com/mv2", ""))),
        ("example.com/m/x2", Some(("example.com/m/x2", ""))),
        ("gopkg.in/yaml.v2", Some(("gopkg.in/yaml", ".v2"))),
        ("gopkg.in/yaml.v0", Some(("gopkg.in/yaml", ".v0"))),
        (
            "gopkg.in/yaml.v1-unstable",
            Some(("gopkg.in/yaml", ".v1-unstable")),
        ),
        ("gopkg.in/yaml.v01", None),
        ("gopkg.in/yaml", None),
        ("gopkg.in/yaml/v2", None),
    ];
    for (path, want) in cases {
        assert_eq!(split_path_version(path), *want, "{path}");
    }
}

#[test]
fn check_pairs() {
    let ok = [
        ("example.com/m", "v0.1.0"),
        ("example.com/m", "v1.2.3"),
        ("example.com/m", "v2.0.0+incompatible"),
        ("example.com/m", "v3.1.0-pre+incompatible"),
        ("example.com/m/v2", "v2.0.0"),
        ("example.com/m/v2", "v2.1.0-0.20190101000000-abcdefabcdef"),
        ("gopkg.in/yaml.v2", "v2.2.1"),
        ("gopkg.in/yaml.v1-unstable", "v1.0.0"),
        ("gopkg.in/check.v1", "v0.0.0-20161208181325-20d25e280405"),
        ("gopkg.in/yaml.v0", "v0.1.0"),
    ];
    for (p, v) in ok {
        assert!(check(p, v).is_ok(), "check({p}, {v}): {:?}", check(p, v));
    }
    let bad = [
        ("example.com/m", "v2.0.0"),
        ("example.com/m", "v1.0.0+incompatible"),
        ("example.com/m", "v0.1.0+incompatible"),
        ("example.com/m/v2", "v1.0.0"),
        ("example.com/m/v2", "v3.0.0"),
        ("example.com/m/v2", "v2.0.0+incompatible"),
        ("gopkg.in/yaml.v2", "v3.0.0"),
        ("gopkg.in/yaml.v2", "v0.0.0-20161208181325-20d25e280405"),
        ("example.com/m", "1.0.0"),
        ("example.com/m/v1", "v1.0.0"),
    ];
    for (p, v) in bad {
        assert!(check(p, v).is_err(), "check({p}, {v}) should fail");
    }
    let msg = check("example.com/m", "v2.0.0").unwrap_err().to_string();
    assert_eq!(
        msg,
        r#"invalid version "v2.0.0": should be v0 or v1, not v2 (module path "example.com/m")"#
    );
}

#[test]
fn module_path_type() {
    let p = ModulePath::parse("github.com/Azure/go-autorest").unwrap();
    assert_eq!(p.escaped(), "github.com/!azure/go-autorest");
    assert_eq!(
        ModulePath::from_escaped("github.com/!azure/go-autorest").unwrap(),
        p
    );
    assert!(ModulePath::from_escaped("github.com/Azure/go-autorest").is_err());
    assert_eq!(p.to_string(), "github.com/Azure/go-autorest");
    assert_eq!(
        ModulePath::parse("example.com/m/v3").unwrap().split_major(),
        ("example.com/m", "/v3")
    );

    let long = format!("example.com/{}", "a".repeat(MAX_PATH_LEN));
    let err = ModulePath::parse(&long).unwrap_err();
    assert!(err.to_string().len() < 300, "{err}");
    let huge = format!("example.com/{}", "a/".repeat(5000));
    assert!(ModulePath::parse(&huge).is_err());
    assert!(ModulePath::from_escaped(&huge).is_err());
    // Right at the cap is fine.
    let at_cap = format!(
        "example.com/{}",
        "a".repeat(MAX_PATH_LEN - "example.com/".len())
    );
    assert_eq!(at_cap.len(), MAX_PATH_LEN);
    assert!(ModulePath::parse(&at_cap).is_ok());
}

#[test]
fn version_type() {
    for v in [
        "v1.2.3",
        "v0.0.0",
        "v1.2.3-pre.1",
        "v2.0.0+incompatible",
        "v0.0.0-20191109021931-daa7c04131f5",
        "v1.2.4-0.20191109021931-daa7c04131f5",
        "v1.2.3-RC1",
    ] {
        assert_eq!(Version::parse(v).unwrap().as_str(), v);
    }
    for v in [
        "v1.2",
        "v1",
        "1.2.3",
        "v1.2.3+meta",
        "v1.2.3+incompatible.x",
        "latest",
        "master",
        "v1.2.3/x",
        "",
    ] {
        assert!(Version::parse(v).is_err(), "{v}");
    }
    let msg = Version::parse("v1.2").unwrap_err().to_string();
    assert_eq!(
        msg,
        r#"invalid version "v1.2": not canonical (should be "v1.2.0")"#
    );
    assert!(Version::parse(&format!("v1.0.0-{}", "a".repeat(300))).is_err());
    assert!(Version::parse(&"v1.0.0-a".repeat(2000)).is_err());

    let rc = Version::from_escaped("v1.2.3-!r!c1").unwrap();
    assert_eq!(rc.as_str(), "v1.2.3-RC1");
    assert_eq!(rc.escaped(), "v1.2.3-!r!c1");
    assert!(Version::from_escaped("v1.2.3-RC1").is_err());

    assert!(rc.is_prerelease());
    assert!(!rc.is_pseudo());
    let pseudo = Version::parse("v0.0.0-20191109021931-daa7c04131f5").unwrap();
    assert!(pseudo.is_pseudo() && pseudo.is_prerelease());
    assert_eq!(Version::parse("v12.0.1").unwrap().major(), "v12");
    assert!(
        Version::parse("v2.0.0+incompatible")
            .unwrap()
            .is_incompatible()
    );
}

#[test]
fn version_order() {
    let mut vs: Vec<Version> = [
        "v2.0.0+incompatible",
        "v1.10.0",
        "v1.9.0",
        "v2.0.0",
        "v1.0.0-rc.1",
        "v0.0.0-20191109021931-daa7c04131f5",
        "v1.0.0",
    ]
    .iter()
    .map(|v| Version::parse(v).unwrap())
    .collect();
    vs.sort();
    let got: Vec<&str> = vs.iter().map(Version::as_str).collect();
    assert_eq!(
        got,
        [
            "v0.0.0-20191109021931-daa7c04131f5",
            "v1.0.0-rc.1",
            "v1.0.0",
            "v1.9.0",
            "v1.10.0",
            "v2.0.0",
            "v2.0.0+incompatible"
        ]
    );
    assert!(vs.iter().max().unwrap().is_incompatible());
}
