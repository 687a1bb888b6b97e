//! [`ConfigError`]: what went wrong, the key, and where it was set ([`Origin`]); and the
//! translation of the `config` crate's errors into it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::env::{ENV_PREFIX, env_key, env_var_for};

/// Where a bad setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The TOML file.
    File(PathBuf),
    /// One environment variable.
    EnvVar(String),
    /// The `GOMODPROXY_*` variables, when the culprit could not be singled out.
    Env,
    /// A combination of settings.
    Settings,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::EnvVar(name) => write!(f, "environment variable {name}"),
            Origin::Env => write!(f, "environment ({ENV_PREFIX}*)"),
            Origin::Settings => write!(f, "configuration"),
        }
    }
}

/// Why the configuration could not be loaded. `Display` names the key and its origin.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key no struct has.
    #[error("{origin}: unknown key `{key}`{expected}")]
    UnknownKey {
        /// Where it was set.
        origin: Origin,
        /// The full dotted key.
        key: String,
        /// `" (expected one of …)"`, or empty.
        expected: String,
    },
    /// The file could not be read or parsed, or a value has the wrong type or form (the
    /// message of the `config` crate names the key).
    #[error("{origin}: {error}")]
    Source {
        /// Where it was set.
        origin: Origin,
        /// What the `config` crate reported (shown in this error's message, hence not its
        /// `source()`, so that a printed cause chain does not repeat it).
        error: Box<config::ConfigError>,
    },
    /// A value parsed but is not acceptable.
    #[error("{origin}: invalid `{key}`: {reason}")]
    Invalid {
        /// Where it was set (the file, the variable, or [`Origin::Settings`]).
        origin: Origin,
        /// The dotted key.
        key: String,
        /// Why.
        reason: String,
    },
    /// An environment variable of ours whose name or value is not Unicode.
    #[error("environment variable {name}: value is not valid Unicode")]
    NotUnicode {
        /// The variable's name (lossily decoded).
        name: String,
    },
}

/// Turns a `config` crate error into ours: unknown fields become [`ConfigError::UnknownKey`]
/// with the full dotted key, and an error in the environment names the variable when it can.
pub(super) fn classify(
    error: config::ConfigError,
    origin: Origin,
    env: &BTreeMap<String, String>,
) -> ConfigError {
    let (key, message) = match &error {
        config::ConfigError::At {
            error: inner, key, ..
        } => (key.clone(), inner.to_string()),
        config::ConfigError::Type { key, .. } => (key.clone(), String::new()),
        config::ConfigError::NotFound(key) => (Some(key.clone()), String::new()),
        other => (None, other.to_string()),
    };
    let unknown = parse_unknown_field(&message);
    let full_key = match (&key, &unknown) {
        (Some(k), Some((field, _))) if !k.is_empty() => Some(format!("{k}.{field}")),
        (_, Some((field, _))) => Some(field.clone()),
        (k, None) => k.clone(),
    };
    let origin = match origin {
        Origin::Env => full_key
            .as_deref()
            .and_then(|k| {
                // A type error on a table names the table; the variable may set a key below it.
                env_var_for(k, env).or_else(|| {
                    let below: Vec<_> = env
                        .keys()
                        .filter(|n| env_key(n).starts_with(&format!("{k}.")))
                        .collect();
                    (below.len() == 1).then(|| below[0].clone())
                })
            })
            .map(Origin::EnvVar)
            .unwrap_or(Origin::Env),
        other => other,
    };
    match (unknown, full_key) {
        (Some((_, expected)), Some(key)) => ConfigError::UnknownKey {
            origin,
            key,
            expected,
        },
        _ => ConfigError::Source {
            origin,
            error: Box::new(error),
        },
    }
}

/// Parses serde's "unknown field `x`, expected …" message into the field and a suffix naming
/// the expected fields.
fn parse_unknown_field(message: &str) -> Option<(String, String)> {
    let rest = message.strip_prefix("unknown field `")?;
    let end = rest.find('`')?;
    let field = rest[..end].to_string();
    let tail = rest[end + 1..].trim_start_matches(',').trim();
    let expected = if tail.is_empty() {
        String::new()
    } else {
        format!(" ({tail})")
    };
    Some((field, expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_message_is_parsed() {
        assert_eq!(
            parse_unknown_field("unknown field `roott`, expected `root`"),
            Some(("roott".to_string(), " (expected `root`)".to_string()))
        );
        assert_eq!(parse_unknown_field("invalid type"), None);
    }
}
