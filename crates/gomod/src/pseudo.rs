//! Pseudo-versions (`golang.org/x/mod/module/pseudo.go`).
//!
//! A pseudo-version names an untagged commit. There are three forms, each optionally followed
//! by build metadata (in practice `+incompatible`):
//!
//! 1. `vX.0.0-yyyymmddhhmmss-rev`: no earlier tag with that major version;
//! 2. `vX.Y.(Z+1)-0.yyyymmddhhmmss-rev`: the most recent tag is the release `vX.Y.Z`;
//! 3. `vX.Y.Z-pre.0.yyyymmddhhmmss-rev`: the most recent tag is the prerelease `vX.Y.Z-pre`.
//!
//! The timestamp is the commit time in UTC; `rev` is the commit hash prefix (12 hex digits when
//! the go command makes one, but x/mod accepts any ASCII alphanumerics).

use crate::Error;
use crate::error::excerpt;
use crate::semver;

/// Reports whether `v` is a pseudo-version (`module.IsPseudoVersion`).
///
/// This is syntax only: `vX.0.0-…+incompatible` is a pseudo-version here but has no valid base
/// (see [`pseudo_version_base`]), and the timestamp is not checked as a date (see
/// [`pseudo_version_time`]).
pub fn is_pseudo_version(v: &str) -> bool {
    v.bytes().filter(|&b| b == b'-').count() >= 2 && semver::is_valid(v) && matches_syntax(v)
}

/// Matches x/mod's
/// `^v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`.
///
/// No `+` can occur before the build part, and the revision contains no `-`, so the pieces are
/// found by position: build from the first `+`, revision after the last `-`, timestamp the 14
/// bytes before that.
fn matches_syntax(v: &str) -> bool {
    let (s, build) = v.split_at(v.find('+').unwrap_or(v.len()));
    if !build.is_empty()
        && !build[1..]
            .split('.')
            .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        return false;
    }
    let Some(dash) = s.rfind('-') else {
        return false;
    };
    let (head, rev) = (&s[..dash], &s[dash + 1..]);
    if rev.is_empty() || !rev.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    if head.len() < 14 || !head.is_char_boundary(head.len() - 14) {
        return false;
    }
    let (prefix, timestamp) = head.split_at(head.len() - 14);
    if !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Some(rest) = prefix
        .strip_prefix('v')
        .and_then(|r| skip_digits(r)?.strip_prefix('.'))
    else {
        return false;
    };
    if rest == "0.0-" {
        return true;
    }
    let Some(r) = skip_digits(rest)
        .and_then(|r| r.strip_prefix('.'))
        .and_then(skip_digits)
        .and_then(|r| r.strip_prefix('-'))
    else {
        return false;
    };
    r == "0." || r.ends_with(".0.")
}

/// Skips one or more ASCII digits.
fn skip_digits(s: &str) -> Option<&str> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    (n > 0).then(|| &s[n..])
}

/// The parts of a pseudo-version, as `parsePseudoVersion` splits it.
struct Parts<'a> {
    /// `vX.0.0`, `vX.Y.(Z+1)-0` or `vX.Y.Z-pre.0`.
    base: &'a str,
    timestamp: &'a str,
    rev: &'a str,
    build: &'a str,
}

fn parse(v: &str) -> Result<Parts<'_>, Error> {
    if !is_pseudo_version(v) {
        return Err(invalid(v, "not a pseudo-version"));
    }
    let build = semver::build(v).unwrap_or("");
    let s = &v[..v.len() - build.len()];
    // is_pseudo_version guarantees at least two dashes.
    let j = s.rfind('-').unwrap_or(0);
    let (s, rev) = (&s[..j], &s[j + 1..]);
    let i = s.rfind('-').unwrap_or(0);
    let (base, timestamp) = match s.rfind('.') {
        Some(k) if k > i => (&s[..k], &s[k + 1..]),
        _ => (&s[..i], &s[i + 1..]),
    };
    Ok(Parts {
        base,
        timestamp,
        rev,
        build,
    })
}

fn invalid(v: &str, reason: &str) -> Error {
    Error::InvalidVersion {
        version: excerpt(v),
        reason: reason.into(),
    }
}

/// The commit time encoded in a pseudo-version, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PseudoTime {
    /// Four-digit year.
    pub year: u16,
    /// 1–12.
    pub month: u8,
    /// 1–31, valid for the month and year.
    pub day: u8,
    /// 0–23.
    pub hour: u8,
    /// 0–59.
    pub minute: u8,
    /// 0–59.
    pub second: u8,
}

impl PseudoTime {
    /// Parses the 14-digit `yyyymmddhhmmss` form, validating it as a calendar date and time as
    /// Go's `time.Parse("20060102150405", …)` does.
    pub fn parse_timestamp(ts: &str) -> Option<Self> {
        if ts.len() != 14 || !ts.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let num = |r: std::ops::Range<usize>| ts[r].parse::<u16>().ok();
        let t = PseudoTime {
            year: num(0..4)?,
            month: u8::try_from(num(4..6)?).ok()?,
            day: u8::try_from(num(6..8)?).ok()?,
            hour: u8::try_from(num(8..10)?).ok()?,
            minute: u8::try_from(num(10..12)?).ok()?,
            second: u8::try_from(num(12..14)?).ok()?,
        };
        let valid = (1..=12).contains(&t.month)
            && t.day >= 1
            && t.day <= days_in_month(t.year, t.month)
            && t.hour < 24
            && t.minute < 60
            && t.second < 60;
        valid.then_some(t)
    }

    /// RFC 3339 form, as the `Time` field of a `.info` file (`2019-11-09T02:19:31Z`).
    pub fn to_rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// Seconds since the Unix epoch (negative before 1970).
    pub fn unix_seconds(&self) -> i64 {
        days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        ) * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

fn is_leap(year: u16) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The commit time of a pseudo-version (`module.PseudoVersionTime`).
pub fn pseudo_version_time(v: &str) -> Result<PseudoTime, Error> {
    let parts = parse(v)?;
    PseudoTime::parse_timestamp(parts.timestamp)
        .ok_or_else(|| invalid(v, &format!("malformed time {:?}", parts.timestamp)))
}

/// The revision identifier of a pseudo-version (`module.PseudoVersionRev`).
pub fn pseudo_version_rev(v: &str) -> Result<&str, Error> {
    parse(v).map(|p| p.rev)
}

/// The version a pseudo-version is based on (`module.PseudoVersionBase`): `None` for form 1,
/// `vX.Y.Z` for form 2, `vX.Y.Z-pre` for form 3, each with the build suffix kept.
///
/// Fails for `vX.0.0-…+incompatible` (form 1 cannot be incompatible: it claims there is no
/// earlier tag, while `+incompatible` claims the earlier tag's major version does not match the
/// path) and for a form 2 whose patch would be negative (`vX.Y.0-0.…`).
pub fn pseudo_version_base(v: &str) -> Result<Option<String>, Error> {
    let parts = parse(v)?;
    let base = parts.base;
    match semver::prerelease(base) {
        None => {
            if !parts.build.is_empty() {
                return Err(invalid(
                    v,
                    &format!(
                        "lacks base version, but has build metadata {:?}",
                        parts.build
                    ),
                ));
            }
            Ok(None)
        }
        Some("-0") => {
            let release = &base[..base.len() - 2];
            let dot = release.rfind('.').unwrap_or(0);
            let patch = dec_decimal(&release[dot + 1..]).ok_or_else(|| {
                invalid(
                    v,
                    &format!("version before {release} would have negative patch number"),
                )
            })?;
            Ok(Some(format!("{}{patch}{}", &release[..=dot], parts.build)))
        }
        Some(_) => {
            // Form 3: base is "vX.Y.Z-pre.0".
            let pre = base.strip_suffix(".0").unwrap_or(base);
            Ok(Some(format!("{pre}{}", parts.build)))
        }
    }
}

/// Checks everything x/mod can check about a pseudo-version on its own: syntax, a valid commit
/// time and a valid base.
pub fn check_pseudo_version(v: &str) -> Result<(), Error> {
    pseudo_version_time(v)?;
    pseudo_version_base(v)?;
    Ok(())
}

/// Subtracts one from a decimal string; `None` for zero.
fn dec_decimal(decimal: &str) -> Option<String> {
    let mut digits = decimal.as_bytes().to_vec();
    let mut i = digits.len();
    while i > 0 && digits[i - 1] == b'0' {
        digits[i - 1] = b'9';
        i -= 1;
    }
    if i == 0 {
        return None;
    }
    if i == 1 && digits[0] == b'1' && digits.len() > 1 {
        digits.remove(0);
    } else {
        digits[i - 1] -= 1;
    }
    String::from_utf8(digits).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_the_three_forms() {
        for v in [
            "v0.0.0-20191109021931-daa7c04131f5",
            "v1.0.0-20191109021931-daa7c04131f5",
            "v2.0.0-20191109021931-daa7c04131f5+incompatible",
            "v1.2.4-0.20191109021931-daa7c04131f5",
            "v1.2.4-0.20191109021931-daa7c04131f5+incompatible",
            "v1.2.3-pre.0.20191109021931-daa7c04131f5",
            "v1.2.3-pre.1.0.20191109021931-daa7c04131f5",
            "v1.2.3-0.0.20191109021931-daa7c04131f5",
            "v0.0.0-20191109021931-DAA7C04131F5",
            "v0.0.0-20191109021931-x",
            "v0.0.0-99999999999999-daa7c04131f5",
        ] {
            assert!(is_pseudo_version(v), "{v}");
        }
        for v in [
            "v1.2.3",
            "v1.2.3-pre",
            "v1.0.0-20191109021931",
            "v1.2.3-20191109021931-daa7c04131f5",
            "v1.2.4-1.20191109021931-daa7c04131f5",
            "v1.2.3-pre.20191109021931-daa7c04131f5",
            "v0.0.0-2019110902193-daa7c04131f5",
            "v0.0.0-201911090219310-daa7c04131f5",
            "v0.0.0-20191109021931-",
            "v0.0.0-20191109021931-daa7c04131f5+",
            "v0.0.0-20191109021931-daa7c04131f5+a..b",
            "v0.0-20191109021931-daa7c04131f5",
            "0.0.0-20191109021931-daa7c04131f5",
            "v0.0.0-20191109021931-daa7c041_31f5",
            "v0.0.0-20191109021931-daa7c04131f5-",
        ] {
            assert!(!is_pseudo_version(v), "{v}");
        }
    }

    #[test]
    fn time_rev_base() {
        let v = "v1.2.4-0.20191109021931-daa7c04131f5";
        let t = pseudo_version_time(v).unwrap();
        assert_eq!(t.to_rfc3339(), "2019-11-09T02:19:31Z");
        assert_eq!(t.unix_seconds(), 1_573_265_971);
        assert_eq!(pseudo_version_rev(v).unwrap(), "daa7c04131f5");
        assert_eq!(pseudo_version_base(v).unwrap().as_deref(), Some("v1.2.3"));

        let cases: &[(&str, Option<&str>)] = &[
            ("v0.0.0-20191109021931-daa7c04131f5", None),
            ("v2.0.0-20191109021931-daa7c04131f5", None),
            ("v1.0.1-0.20191109021931-daa7c04131f5", Some("v1.0.0")),
            ("v1.2.10-0.20191109021931-daa7c04131f5", Some("v1.2.9")),
            ("v1.2.100-0.20191109021931-daa7c04131f5", Some("v1.2.99")),
            (
                "v1.2.3-pre.0.20191109021931-daa7c04131f5",
                Some("v1.2.3-pre"),
            ),
            (
                "v1.2.3-pre.1.0.20191109021931-daa7c04131f5",
                Some("v1.2.3-pre.1"),
            ),
            ("v1.2.3-0.0.20191109021931-daa7c04131f5", Some("v1.2.3-0")),
            (
                "v2.2.4-0.20191109021931-daa7c04131f5+incompatible",
                Some("v2.2.3+incompatible"),
            ),
            (
                "v2.2.3-pre.0.20191109021931-daa7c04131f5+incompatible",
                Some("v2.2.3-pre+incompatible"),
            ),
        ];
        for (v, want) in cases {
            assert_eq!(pseudo_version_base(v).unwrap().as_deref(), *want, "{v}");
        }
        // Form 2 with patch 0 has no valid base.
        assert!(pseudo_version_base("v1.3.0-0.20191109021931-daa7c04131f5").is_err());
        // Form 1 with +incompatible is nonsensical.
        let err = pseudo_version_base("v2.0.0-20191109021931-daa7c04131f5+incompatible")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lacks base version"), "{err}");
        assert!(pseudo_version_base("v1.2.3").is_err());
    }

    #[test]
    fn timestamps_are_calendar_checked() {
        assert!(pseudo_version_time("v0.0.0-20200229000000-abcdefabcdef").is_ok());
        assert!(pseudo_version_time("v0.0.0-20000229235959-abcdefabcdef").is_ok());
        for bad in [
            "v0.0.0-20190229000000-abcdefabcdef",
            "v0.0.0-19000229000000-abcdefabcdef",
            "v0.0.0-20191301000000-abcdefabcdef",
            "v0.0.0-20191100000000-abcdefabcdef",
            "v0.0.0-20191131000000-abcdefabcdef",
            "v0.0.0-20191109240000-abcdefabcdef",
            "v0.0.0-20191109006000-abcdefabcdef",
            "v0.0.0-20191109000060-abcdefabcdef",
            "v0.0.0-99999999999999-abcdefabcdef",
        ] {
            assert!(is_pseudo_version(bad), "{bad} is still pseudo syntax");
            assert!(pseudo_version_time(bad).is_err(), "{bad}");
            assert!(check_pseudo_version(bad).is_err(), "{bad}");
        }
        assert_eq!(
            PseudoTime::parse_timestamp("19700101000000")
                .unwrap()
                .unix_seconds(),
            0
        );
        assert_eq!(
            PseudoTime::parse_timestamp("19691231235959")
                .unwrap()
                .unix_seconds(),
            -1
        );
        assert!(check_pseudo_version("v1.2.4-0.20191109021931-daa7c04131f5").is_ok());
    }

    #[test]
    fn decrement() {
        assert_eq!(dec_decimal("1").as_deref(), Some("0"));
        assert_eq!(dec_decimal("10").as_deref(), Some("9"));
        assert_eq!(dec_decimal("100").as_deref(), Some("99"));
        assert_eq!(dec_decimal("101").as_deref(), Some("100"));
        assert_eq!(dec_decimal("20").as_deref(), Some("19"));
        assert_eq!(dec_decimal("0"), None);
    }
}
