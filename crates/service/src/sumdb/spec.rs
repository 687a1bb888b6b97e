//! One configured checksum database, parsed once: `GOSUMDB` syntax, `<verifier key>` or
//! `<verifier key> <url>`.

use std::fmt;

use gomod::sumdb::SumdbName;
use gomod::sumdb::note::Verifier;

use crate::upstream::{Source, UpstreamChain};

/// A checksum database: its verifier key, and optionally the URL it is fetched from (without
/// one, it is fetched through the upstream chain's `/sumdb/<name>/`).
///
/// `Display` and `Debug` redact the URL's credentials; serialized it is the text it was parsed
/// from.
#[derive(Clone, PartialEq, Eq)]
pub struct SumdbSpec {
    spec: String,
    key: String,
    name: SumdbName,
    url: Option<UpstreamChain>,
}

/// Why a checksum database entry does not parse (credentials redacted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checksum database {spec:?}: {reason}")]
pub struct SumdbSpecError {
    spec: String,
    reason: String,
}

impl SumdbSpec {
    /// Parses `<verifier key>` or `<verifier key> <url>`.
    pub fn parse(spec: &str) -> Result<SumdbSpec, SumdbSpecError> {
        let error = |reason: String| SumdbSpecError {
            spec: gomodproxy_redact::text(spec),
            reason,
        };
        let fields: Vec<&str> = spec.split_whitespace().collect();
        let (key, url) = match fields.as_slice() {
            [key] => (*key, None),
            [key, url] => (*key, Some(*url)),
            _ => {
                return Err(error(
                    "want \"<verifier key>\" or \"<verifier key> <url>\"".into(),
                ));
            }
        };
        let verifier = Verifier::parse(key).map_err(|e| error(e.to_string()))?;
        let name = SumdbName::parse(verifier.name()).map_err(|e| error(e.to_string()))?;
        let url = match url {
            None => None,
            Some(url) => {
                let chain = UpstreamChain::parse(url).map_err(|e| error(format!("URL: {e}")))?;
                let one_location = chain.entries.len() == 1
                    && matches!(chain.entries[0].source, Source::Http(_) | Source::File(_));
                if !one_location {
                    return Err(error(
                        "the URL must be one http(s):// or file:// URL".into(),
                    ));
                }
                Some(chain)
            }
        };
        Ok(SumdbSpec {
            spec: spec.trim().to_string(),
            key: key.to_string(),
            name,
            url,
        })
    }

    /// sum.golang.org, through the upstream chain: the default.
    pub fn sum_golang_org() -> SumdbSpec {
        // A constant of ours; the unit test below parses it.
        SumdbSpec::parse(crate::SUM_GOLANG_ORG_KEY).expect("the built-in sum.golang.org key parses")
    }

    /// The database's name (`sum.golang.org`).
    pub fn name(&self) -> &SumdbName {
        &self.name
    }

    /// The verifier key.
    pub fn verifier_key(&self) -> &str {
        &self.key
    }

    /// The database's own URL, when it is not reached through the upstream chain.
    pub fn url(&self) -> Option<&UpstreamChain> {
        self.url.as_ref()
    }

    /// The text it was parsed from (with any credentials: for configuration files only).
    pub fn as_spec(&self) -> &str {
        &self.spec
    }
}

/// Compares with the text it was parsed from.
impl PartialEq<&str> for SumdbSpec {
    fn eq(&self, other: &&str) -> bool {
        self.spec == other.trim()
    }
}

impl std::str::FromStr for SumdbSpec {
    type Err = SumdbSpecError;
    fn from_str(s: &str) -> Result<Self, SumdbSpecError> {
        SumdbSpec::parse(s)
    }
}

impl fmt::Display for SumdbSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&gomodproxy_redact::text(&self.spec))
    }
}

impl fmt::Debug for SumdbSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SumdbSpec({:?})", gomodproxy_redact::text(&self.spec))
    }
}

impl serde::Serialize for SumdbSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.spec)
    }
}

impl<'de> serde::Deserialize<'de> for SumdbSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spec = String::deserialize(deserializer)?;
        SumdbSpec::parse(&spec).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_redact() {
        let spec = SumdbSpec::sum_golang_org();
        assert_eq!(spec.name().to_string(), "sum.golang.org");
        assert!(spec.url().is_none());
        let with_url = format!(
            "{} https://u:hunter2@sum.example",
            crate::SUM_GOLANG_ORG_KEY
        );
        let spec = SumdbSpec::parse(&with_url).unwrap();
        assert!(spec.url().is_some());
        assert!(!spec.to_string().contains("hunter2"));
        assert_eq!(spec.as_spec(), with_url);
        for bad in [
            "".to_string(),
            "notakey".to_string(),
            format!("{} a b", crate::SUM_GOLANG_ORG_KEY),
            format!("{} direct", crate::SUM_GOLANG_ORG_KEY),
            format!(
                "{} https://a.example,https://b.example",
                crate::SUM_GOLANG_ORG_KEY
            ),
        ] {
            assert!(SumdbSpec::parse(&bad).is_err(), "{bad}");
        }
    }
}
