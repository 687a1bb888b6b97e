//! The `GOMODPROXY_*` environment variables: which are ours, the key each one sets, and which
//! one set a key.

use std::collections::BTreeMap;
use std::path::Path;

use super::error::{ConfigError, Origin};

/// Prefix of the environment variables that set configuration keys.
pub const ENV_PREFIX: &str = "GOMODPROXY_";

/// Separator of nested keys in environment variable names.
pub(super) const ENV_SEPARATOR: &str = "__";

/// The `GOMODPROXY_*` variables of an OS environment, as `(name, value)` strings; a variable of
/// ours that is not Unicode is an error rather than silently skipped.
pub fn env_vars<I>(vars: I) -> Result<Vec<(String, String)>, ConfigError>
where
    I: IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
{
    let mut out = Vec::new();
    for (name, value) in vars {
        let lossy = name.to_string_lossy();
        if !is_ours(&lossy) {
            continue;
        }
        match (name.into_string(), value.into_string()) {
            (Ok(name), Ok(value)) => out.push((name, value)),
            (name, _) => {
                let name = name.unwrap_or_else(|n| n.to_string_lossy().into_owned());
                return Err(ConfigError::NotUnicode { name });
            }
        }
    }
    Ok(out)
}

/// Whether an environment variable belongs to us; the `config` crate matches the prefix
/// case-insensitively, so this does too.
pub(super) fn is_ours(name: &str) -> bool {
    name.len() > ENV_PREFIX.len()
        && name.is_char_boundary(ENV_PREFIX.len())
        && name[..ENV_PREFIX.len()].eq_ignore_ascii_case(ENV_PREFIX)
}

/// The dotted key an environment variable sets.
pub(super) fn env_key(name: &str) -> String {
    name[ENV_PREFIX.len()..]
        .to_lowercase()
        .replace(ENV_SEPARATOR, ".")
}

/// The variable that sets `key`, if one does.
pub(super) fn env_var_for(key: &str, env: &BTreeMap<String, String>) -> Option<String> {
    env.keys().find(|name| env_key(name) == key).cloned()
}

/// Where the effective value of `key` came from (for validation errors).
pub(super) fn origin_of(key: &str, file: Option<&Path>, env: &BTreeMap<String, String>) -> Origin {
    if let Some(name) = env_var_for(key, env) {
        Origin::EnvVar(name)
    } else if let Some(path) = file {
        // The key may also be a default; naming the file is still the best lead.
        Origin::File(path.to_path_buf())
    } else {
        Origin::Settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_map_to_keys() {
        assert_eq!(env_key("GOMODPROXY_STORAGE__FS__ROOT"), "storage.fs.root");
        assert_eq!(env_key("GOMODPROXY_LIST_TTL"), "list_ttl");
        assert!(is_ours("gomodproxy_listen"));
        assert!(!is_ours("GOMODPROXY_"));
        assert!(!is_ours("GOPROXY"));
    }
}
