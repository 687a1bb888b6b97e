//! `RevInfo`, the JSON of `.info` and `@latest` answers (`{"Version":"v1.2.3","Time":"…"}`),
//! checked as the go command reads it: `encoding/json` field matching (exact key, else one equal
//! ignoring case), unknown fields such as `Origin` ignored, `Version` canonical, `Time` (optional)
//! an RFC 3339 date-time.

use serde_json::Value;

use crate::{ModulePath, Version};

/// Why a `RevInfo` body is one the go command would refuse.
#[derive(Debug, thiserror::Error)]
pub enum RevInfoError {
    /// Not JSON.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// JSON, but not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// `Version` is not a string.
    #[error("Version is not a string")]
    VersionNotAString,
    /// No `Version`.
    #[error("no Version field")]
    NoVersion,
    /// `Time` (shown as JSON) is not an RFC 3339 date-time.
    #[error("Time {0} is not an RFC 3339 time")]
    Time(String),
    /// `Origin` (of this JSON kind) would not decode into `codehost.Origin`.
    #[error("Origin {0} is not an object")]
    OriginNotAnObject(&'static str),
    /// A string field of `Origin` holds another JSON kind.
    #[error("Origin.{field} is {kind}, not a string")]
    OriginField {
        /// The field.
        field: &'static str,
        /// The JSON kind it holds.
        kind: &'static str,
    },
    /// `Version` is not a canonical semantic version.
    #[error("Version {version:?} is not canonical: {source}")]
    NotCanonical {
        /// The `Version` field.
        version: String,
        /// Why it is not canonical.
        #[source]
        source: crate::Error,
    },
    /// Names another version than the one asked for.
    #[error("info is for version {got} instead of the requested {requested}")]
    OtherVersion {
        /// The version the info names.
        got: Version,
        /// The version asked for.
        requested: Version,
    },
    /// Names a version the module path cannot have (`v2.0.0` of a path without `/v2`).
    #[error("Version {version} is not a version of {module}: {source}")]
    NotOfModule {
        /// The version the info names.
        version: Version,
        /// The module asked for.
        module: ModulePath,
        /// Why the version does not fit the path.
        #[source]
        source: crate::Error,
    },
}

/// A field of a JSON object the way Go's `encoding/json` finds it: the exact key, else a key
/// equal ignoring case.
fn field<'a>(object: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Checks a `RevInfo` and returns its version. Unknown fields (`Origin`, …) are ignored, as the
/// go command does.
pub fn parse(body: &[u8]) -> Result<Version, RevInfoError> {
    let value: Value = serde_json::from_slice(body).map_err(RevInfoError::Json)?;
    let object = value.as_object().ok_or(RevInfoError::NotAnObject)?;
    let version = match field(object, "Version") {
        Some(Value::String(v)) => v,
        Some(_) => return Err(RevInfoError::VersionNotAString),
        None => return Err(RevInfoError::NoVersion),
    };
    match field(object, "Time") {
        None | Some(Value::Null) => {}
        Some(Value::String(time)) if is_rfc3339(time) => {}
        Some(time) => return Err(RevInfoError::Time(time.to_string())),
    }
    check_origin(field(object, "Origin"))?;
    Version::parse(version).map_err(|source| RevInfoError::NotCanonical {
        version: version.clone(),
        source,
    })
}

/// The string fields of `codehost.Origin`: the go command decodes `Origin` into that struct, so
/// anything but `null` or an object whose known fields are strings (or `null`) fails its
/// `json.Unmarshal` ("invalid response from proxy").
const ORIGIN_FIELDS: &[&str] = &[
    "VCS",
    "URL",
    "Subdir",
    "Hash",
    "TagPrefix",
    "TagSum",
    "Ref",
    "RepoSum",
];

fn check_origin(origin: Option<&Value>) -> Result<(), RevInfoError> {
    let object = match origin {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(object)) => object,
        Some(other) => return Err(RevInfoError::OriginNotAnObject(kind(other))),
    };
    for name in ORIGIN_FIELDS {
        match field(object, name) {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(other) => {
                return Err(RevInfoError::OriginField {
                    field: name,
                    kind: kind(other),
                });
            }
        }
    }
    Ok(())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `.info` of a canonical version: must name exactly that version.
pub fn check_for(version: &Version, body: &[u8]) -> Result<(), RevInfoError> {
    let got = parse(body)?;
    if &got != version {
        return Err(RevInfoError::OtherVersion {
            got,
            requested: version.clone(),
        });
    }
    Ok(())
}

/// `.info` of a query, or `@latest`: must name a canonical version of `module`.
pub fn check_of(module: &ModulePath, body: &[u8]) -> Result<Version, RevInfoError> {
    let version = parse(body)?;
    if let Err(source) = module.check_version(&version) {
        return Err(RevInfoError::NotOfModule {
            version,
            module: module.clone(),
            source,
        });
    }
    Ok(version)
}

/// RFC 3339 `date-time` (what Go's `time.Time` accepts in JSON): `YYYY-MM-DDTHH:MM:SS`, optional
/// fraction, then `Z` or `±HH:MM`.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            part.iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')),
        )
    };
    let (Some(year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) = (
        digits(0, 4),
        digits(5, 2),
        digits(8, 2),
        digits(11, 2),
        digits(14, 2),
        digits(17, 2),
    ) else {
        return false;
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days_in_month || hour > 23 || min > 59 || sec > 59 {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            let (Some(oh), Some(om)) = (digits(i + 1, 2), digits(i + 4, 2)) else {
                return false;
            };
            b.get(i + 3) == Some(&b':') && i + 6 == b.len() && oh <= 23 && om <= 59
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        for ok in [
            "2023-01-02T03:04:05Z",
            "2020-02-29T23:59:59.123456789+05:30",
            "2019-12-31t00:00:00-00:00",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "",
            "2023-01-02",
            "2023-01-02 03:04:05Z",
            "2023-13-02T03:04:05Z",
            "2021-02-29T03:04:05Z",
            "2023-01-02T24:04:05Z",
            "2023-01-02T03:04:05",
            "2023-01-02T03:04:05.Z",
            "2023-01-02T03:04:05+0530",
            "2023-01-02T03:04:05Zjunk",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn info_must_echo_the_version() {
        let v = Version::parse("v1.2.3").unwrap();
        assert!(
            check_for(
                &v,
                br#"{"Version":"v1.2.3","Time":"2023-01-02T03:04:05Z","Origin":{}}"#
            )
            .is_ok()
        );
        assert!(check_for(&v, br#"{"Version":"v1.2.3"}"#).is_ok());
        assert!(
            check_for(&v, br#"{"Version":"v1.2.4"}"#)
                .unwrap_err()
                .to_string()
                .contains("instead of")
        );
        assert!(
            check_for(&v, br#"{"Version":"v1.2.3","Time":"yesterday"}"#)
                .unwrap_err()
                .to_string()
                .contains("RFC 3339")
        );
        assert!(check_for(&v, b"not json").is_err());
        assert!(
            check_for(&v, br#"{"Time":"2023-01-02T03:04:05Z"}"#)
                .unwrap_err()
                .to_string()
                .contains("no Version")
        );
        assert!(check_for(&v, br#"["v1.2.3"]"#).is_err());
        assert!(check_for(&v, br#"{"Version":123}"#).is_err());
        // Go's encoding/json matches keys ignoring case.
        assert!(check_for(&v, br#"{"version":"v1.2.3","time":null}"#).is_ok());
    }

    #[test]
    fn origin_must_decode_into_the_go_struct() {
        let v = Version::parse("v1.2.3").unwrap();
        let ok = |body: &str| check_for(&v, body.as_bytes());
        assert!(ok(r#"{"Version":"v1.2.3","Origin":null}"#).is_ok());
        assert!(ok(r#"{"Version":"v1.2.3","Origin":{"VCS":"git","URL":"https://x","Hash":"ab","Extra":1}}"#).is_ok());
        assert!(
            ok(r#"{"Version":"v1.2.3","Origin":"git"}"#)
                .unwrap_err()
                .to_string()
                .contains("not an object")
        );
        assert!(ok(r#"{"Version":"v1.2.3","Origin":[]}"#).is_err());
        assert!(
            ok(r#"{"Version":"v1.2.3","Origin":{"Hash":5}}"#)
                .unwrap_err()
                .to_string()
                .contains("Origin.Hash")
        );
        assert!(ok(r#"{"Version":"v1.2.3","origin":{"vcs":true}}"#).is_err());
    }

    #[test]
    fn query_info_must_belong_to_the_module() {
        let m = ModulePath::parse("example.com/m").unwrap();
        assert!(check_of(&m, br#"{"Version":"v1.2.3"}"#).is_ok());
        assert!(
            check_of(&m, br#"{"Version":"v2.0.0"}"#)
                .unwrap_err()
                .to_string()
                .contains("not a version of")
        );
    }
}
