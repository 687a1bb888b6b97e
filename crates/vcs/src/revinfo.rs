//! [`RevInfo`] and [`Origin`]: what `.info` says, written byte for byte as the go command writes
//! it into `$GOMODCACHE/cache/download/<module>/@v/<version>.info` in direct mode.

use std::fmt::Write as _;

use gomod::Version;

/// Where a revision came from (`codehost.Origin`): the go command uses it to decide whether a
/// cached answer is still current.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// Always `git` here.
    pub vcs: String,
    /// The repository URL, before any `url.<base>.insteadOf` rewrite.
    pub url: String,
    /// The module's directory in the repository (empty at the root).
    pub subdir: String,
    /// The full commit hash.
    pub hash: String,
    /// Prefix of the tags [`Origin::tag_sum`] covers.
    pub tag_prefix: String,
    /// `t1:` checksum of the tags with that prefix (for query results).
    pub tag_sum: String,
    /// The ref the query resolved through (`refs/tags/v1.2.3`, `refs/heads/main`, `HEAD`).
    pub r#ref: String,
    /// `r1:` checksum of all refs (for negative results).
    pub repo_sum: String,
}

/// A resolved module version: the `.info` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevInfo {
    /// The canonical version.
    pub version: Version,
    /// Commit time, Unix seconds (UTC).
    pub time: i64,
    /// The full commit hash the version resolved to.
    pub hash: String,
    /// Provenance, as the go command computed it for this query.
    pub origin: Origin,
}

impl RevInfo {
    /// The `.info` JSON exactly as the go command stores it in direct mode
    /// (`modfetch.writeDiskStat`): `{"Version":…,"Time":…,"Origin":{…}}` with `TagPrefix`,
    /// `TagSum` and `RepoSum` dropped, and `Ref` dropped for pseudo-versions. Strings are escaped
    /// as Go's `encoding/json` escapes them (`<`, `>`, `&` as `\u003c`, …).
    pub fn to_info_json(&self) -> Vec<u8> {
        let mut out = String::with_capacity(256);
        out.push_str("{\"Version\":");
        json_string(&mut out, self.version.as_str());
        out.push_str(",\"Time\":");
        json_string(&mut out, &rfc3339(self.time));
        let o = &self.origin;
        if !o.vcs.is_empty() || !o.url.is_empty() || !o.hash.is_empty() {
            out.push_str(",\"Origin\":{");
            let mut first = true;
            let mut field = |out: &mut String, name: &str, value: &str| {
                if value.is_empty() {
                    return;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                json_string(out, name);
                out.push(':');
                json_string(out, value);
            };
            field(&mut out, "VCS", &o.vcs);
            field(&mut out, "URL", &o.url);
            field(&mut out, "Subdir", &o.subdir);
            field(&mut out, "Hash", &o.hash);
            if !self.version.is_pseudo() {
                field(&mut out, "Ref", &o.r#ref);
            }
            out.push('}');
        }
        out.push('}');
        out.into_bytes()
    }

    /// The commit time as the go command prints it (`2023-01-02T03:04:05Z`).
    pub fn time_rfc3339(&self) -> String {
        rfc3339(self.time)
    }
}

/// Appends `s` as a JSON string the way Go's `encoding/json` (with HTML escaping) writes it.
pub(crate) fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The UTC calendar fields of a Unix time.
fn utc_fields(unix: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (
        y,
        m,
        d,
        (secs / 3600) as u32,
        (secs / 60 % 60) as u32,
        (secs % 60) as u32,
    )
}

/// `2006-01-02T15:04:05Z`.
pub(crate) fn rfc3339(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = utc_fields(unix);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `20060102150405` (`module.PseudoVersionTimestampFormat`).
pub(crate) fn pseudo_timestamp(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = utc_fields(unix);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_672_628_645), "2023-01-02T03:04:05Z");
        assert_eq!(pseudo_timestamp(1_677_726_245), "20230302030405");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn info_json_matches_the_go_command() {
        // Written by `go mod download` in direct mode (go1.26).
        let info = RevInfo {
            version: Version::parse("v1.0.0").unwrap(),
            time: 1_672_628_645,
            hash: "9f6443b969dd81fe00059ea6252b7ba4c731932b".into(),
            origin: Origin {
                vcs: "git".into(),
                url: "https://github.com/acme/widget".into(),
                hash: "9f6443b969dd81fe00059ea6252b7ba4c731932b".into(),
                r#ref: "refs/tags/v1.0.0".into(),
                tag_sum: "t1:x".into(),
                ..Origin::default()
            },
        };
        assert_eq!(
            String::from_utf8(info.to_info_json()).unwrap(),
            r#"{"Version":"v1.0.0","Time":"2023-01-02T03:04:05Z","Origin":{"VCS":"git","URL":"https://github.com/acme/widget","Hash":"9f6443b969dd81fe00059ea6252b7ba4c731932b","Ref":"refs/tags/v1.0.0"}}"#
        );
        let pseudo = RevInfo {
            version: Version::parse("v1.1.1-0.20230302030405-1d37fedeafb1").unwrap(),
            time: 1_677_726_245,
            hash: "1d37fedeafb1b79fc2c56806f032db1c1bcb15e7".into(),
            origin: Origin {
                vcs: "git".into(),
                url: "https://github.com/acme/widget".into(),
                hash: "1d37fedeafb1b79fc2c56806f032db1c1bcb15e7".into(),
                r#ref: "refs/heads/main".into(),
                ..Origin::default()
            },
        };
        assert_eq!(
            String::from_utf8(pseudo.to_info_json()).unwrap(),
            r#"{"Version":"v1.1.1-0.20230302030405-1d37fedeafb1","Time":"2023-03-02T03:04:05Z","Origin":{"VCS":"git","URL":"https://github.com/acme/widget","Hash":"1d37fedeafb1b79fc2c56806f032db1c1bcb15e7"}}"#
        );
    }

    #[test]
    fn go_json_escaping() {
        let mut s = String::new();
        json_string(&mut s, "a<b>&\"\\\n\u{1}\u{2028}é");
        assert_eq!(s, r#""a\u003cb\u003e\u0026\"\\\n\u0001\u2028é""#);
    }
}
