//! The allow/deny policy: modules and versions this proxy serves to nobody, or the only ones it
//! serves, whoever asks. Applies to serving, prewarm and import alike: each calls
//! [`Policy::check`] with the module and, once it is known, the version.
//!
//! The policy file (`policy.file`) is TOML:
//!
//! ```toml
//! # Refused with the given one-line reason; the first matching entry answers.
//! [[deny]]
//! modules = "github.com/evil/pkg"
//! reason = "banned: exfiltrates credentials (SEC-118)"
//!
//! [[deny]]
//! modules = "github.com/acme/lib"
//! versions = ">=v1.2.0,<v1.3.0"
//! reason = "known-bad release: corrupts data, use v1.3.1"
//!
//! # Allow-list mode: with any [[allow]] entry, only modules (and versions) they admit are
//! # served.
//! [[allow]]
//! modules = "github.com/acme/*,golang.org/x"
//!
//! [[allow]]
//! modules = "gopkg.in/yaml.v3"
//! versions = ">=v3.0.1"
//! ```
//!
//! `modules` is a GOPRIVATE-style pattern list (`gomod::glob`); `versions` a
//! [`VersionRange`]. A deny entry with `versions` refuses only those versions: requests that
//! name no version (`list`, `@latest`) pass it, and the server filters the listed versions with
//! [`Policy::check`] so that the go command never picks a refused one. Deny entries are checked
//! before the allow-list.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use gomod::{ModulePath, Version};
use serde::Deserialize;

use crate::AccessError;
use crate::config::PolicyConfig;
use gomodproxy_file_watch::{ChangeTracker, Watcher};

pub mod range;

pub use range::VersionRange;

/// Longest refusal reason accepted, in bytes: it is one line of an HTTP answer.
pub const MAX_REASON_LEN: usize = 300;

/// Why the policy refuses a module or version: one line, safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    /// The reason, as written in the policy (or a default naming the entry's kind).
    pub reason: String,
    /// The entry that refused: `deny[2]` or `allow` (no allow entry admitted it).
    pub entry: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    deny: Vec<EntryFile>,
    #[serde(default)]
    allow: Vec<EntryFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    modules: String,
    #[serde(default)]
    versions: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    modules: String,
    versions: Option<VersionRange>,
    reason: Option<String>,
}

/// A parsed policy, immutable once loaded.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    deny: Vec<Entry>,
    allow: Vec<Entry>,
}

impl PolicySet {
    /// Parses policy TOML; `origin` names the file in errors.
    pub fn parse(origin: &Path, text: &str) -> Result<PolicySet, AccessError> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| AccessError::PolicyToml {
            path: origin.to_path_buf(),
            source: Box::new(e),
        })?;
        let compile = |kind: &str, entries: Vec<EntryFile>| -> Result<Vec<Entry>, AccessError> {
            entries
                .into_iter()
                .enumerate()
                .map(|(i, e)| {
                    let bad = |reason: String| AccessError::Policy {
                        path: origin.to_path_buf(),
                        what: format!("{kind}[{i}]"),
                        reason,
                    };
                    let modules: Vec<&str> = e
                        .modules
                        .split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .collect();
                    if modules.is_empty() {
                        return Err(bad("modules needs at least one pattern".into()));
                    }
                    if let Some(p) = modules
                        .iter()
                        .find(|p| gomod::glob::path_match(p, "").is_err())
                    {
                        return Err(bad(format!("{p:?} is not a valid pattern")));
                    }
                    let versions = e
                        .versions
                        .as_deref()
                        .map(VersionRange::parse)
                        .transpose()
                        .map_err(|why| bad(format!("versions: {why}")))?;
                    if let Some(reason) = &e.reason
                        && (reason.trim().is_empty()
                            || reason.len() > MAX_REASON_LEN
                            || reason.chars().any(char::is_control))
                    {
                        return Err(bad(format!(
                            "reason must be one non-empty line of at most {MAX_REASON_LEN} bytes"
                        )));
                    }
                    Ok(Entry {
                        modules: modules.join(","),
                        versions,
                        reason: e.reason.map(|r| r.trim().to_string()),
                    })
                })
                .collect()
        };
        Ok(PolicySet {
            deny: compile("deny", file.deny)?,
            allow: compile("allow", file.allow)?,
        })
    }

    /// Reports whether the policy is in allow-list mode.
    pub fn is_allow_list(&self) -> bool {
        !self.allow.is_empty()
    }

    /// Checks a module and, if known, a version. See the module docs for the rules.
    pub fn check(&self, module: &str, version: Option<&str>) -> Result<(), Refusal> {
        for (i, entry) in self.deny.iter().enumerate() {
            if !gomod::glob::match_prefix_patterns(&entry.modules, module) {
                continue;
            }
            let refused = match (&entry.versions, version) {
                (None, _) => true,
                (Some(range), Some(v)) => range.contains(v),
                (Some(_), None) => false,
            };
            if refused {
                let reason =
                    entry
                        .reason
                        .clone()
                        .unwrap_or_else(|| match (&entry.versions, version) {
                            (Some(range), Some(v)) => {
                                format!("{module}@{v} is refused by policy (versions {range})")
                            }
                            _ => format!("{module} is refused by policy"),
                        });
                return Err(Refusal {
                    reason,
                    entry: format!("deny[{i}]"),
                });
            }
        }
        if self.allow.is_empty() {
            return Ok(());
        }
        let mut module_listed = false;
        for entry in &self.allow {
            if !gomod::glob::match_prefix_patterns(&entry.modules, module) {
                continue;
            }
            module_listed = true;
            match (&entry.versions, version) {
                (Some(range), Some(v)) if !range.contains(v) => continue,
                _ => return Ok(()),
            }
        }
        let reason = match (module_listed, version) {
            (true, Some(v)) => format!("{module}@{v} is not in this proxy's allow-list"),
            _ => format!("{module} is not in this proxy's allow-list"),
        };
        Err(Refusal {
            reason,
            entry: "allow".into(),
        })
    }
}

/// The policy in force, reloadable (on [`Policy::reload`] and, with [`Policy::watch`], when
/// the file changes).
#[derive(Debug)]
pub struct Policy {
    file: Option<PathBuf>,
    current: ArcSwap<PolicySet>,
    reload_lock: Mutex<()>,
    tracker: ChangeTracker,
    watch_interval: Duration,
}

impl Policy {
    /// Loads `policy.file`; without one, the policy allows everything.
    pub fn new(cfg: &PolicyConfig) -> Result<Policy, AccessError> {
        let tracker = ChangeTracker::new(cfg.file.iter().cloned().collect());
        let set = match &cfg.file {
            Some(path) => load(path)?,
            None => PolicySet::default(),
        };
        Ok(Policy {
            file: cfg.file.clone(),
            current: ArcSwap::from_pointee(set),
            reload_lock: Mutex::new(()),
            tracker,
            watch_interval: cfg.watch_interval,
        })
    }

    /// A fixed policy, not backed by a file (for tests and embedding).
    pub fn fixed(set: PolicySet) -> Policy {
        Policy {
            file: None,
            current: ArcSwap::from_pointee(set),
            reload_lock: Mutex::new(()),
            tracker: ChangeTracker::new(Vec::new()),
            watch_interval: Duration::ZERO,
        }
    }

    /// The policy set in force now.
    pub fn current(&self) -> Arc<PolicySet> {
        self.current.load_full()
    }

    /// Checks a module and, if known, a version against the policy in force.
    pub fn check(&self, module: &ModulePath, version: Option<&Version>) -> Result<(), Refusal> {
        self.current
            .load()
            .check(module.as_str(), version.map(Version::as_str))
    }

    /// Re-reads the policy file and swaps it in; on error the previous policy stays.
    pub fn reload(&self) -> Result<(), AccessError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let _serial = self.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.tracker.mark();
        let set = load(path)?;
        self.current.store(Arc::new(set));
        Ok(())
    }

    /// Reloads if the file changed since the last load, logging the outcome on target
    /// `gomodproxy::policy`. Returns whether a reload was attempted.
    pub fn reload_if_changed(&self) -> bool {
        if !self.tracker.changed() {
            return false;
        }
        match self.reload() {
            Ok(()) => tracing::info!(target: "gomodproxy::policy", "policy file reloaded"),
            Err(error) => tracing::warn!(
                target: "gomodproxy::policy",
                %error,
                "policy file changed but could not be loaded; keeping the previous policy"
            ),
        }
        true
    }

    /// Starts a thread that reloads the file when it changes (every `policy.watch_interval`).
    /// `None` without a file or with a zero interval.
    pub fn watch(self: &Arc<Self>) -> std::io::Result<Option<Watcher>> {
        if self.tracker.is_empty() || self.watch_interval.is_zero() {
            return Ok(None);
        }
        Watcher::spawn(
            "policy",
            self.watch_interval,
            Arc::downgrade(self),
            Policy::reload_if_changed,
        )
        .map(Some)
    }
}

fn load(path: &Path) -> Result<PolicySet, AccessError> {
    let text = std::fs::read_to_string(path).map_err(|source| AccessError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    PolicySet::parse(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> PolicySet {
        PolicySet::parse(Path::new("policy.toml"), text).unwrap()
    }

    #[test]
    fn deny_a_module_and_a_range() {
        let p = set(r#"
            [[deny]]
            modules = "github.com/evil"
            reason = "banned module"
            [[deny]]
            modules = "github.com/acme/lib"
            versions = ">=v1.2.0,<v1.3.0"
            reason = "known-bad release"
            [[deny]]
            modules = "github.com/acme/other"
            versions = "v0.3.0"
        "#);
        assert!(!p.is_allow_list());
        let refused = p.check("github.com/evil/pkg", None).unwrap_err();
        assert_eq!(refused.reason, "banned module");
        assert_eq!(refused.entry, "deny[0]");
        assert!(p.check("github.com/evil/pkg", Some("v1.0.0")).is_err());
        assert_eq!(
            p.check("github.com/acme/lib", Some("v1.2.5"))
                .unwrap_err()
                .reason,
            "known-bad release"
        );
        assert!(p.check("github.com/acme/lib", Some("v1.3.0")).is_ok());
        assert!(
            p.check("github.com/acme/lib", None).is_ok(),
            "list passes a version deny"
        );
        assert_eq!(
            p.check("github.com/acme/other", Some("v0.3.0"))
                .unwrap_err()
                .reason,
            "github.com/acme/other@v0.3.0 is refused by policy (versions v0.3.0)"
        );
        assert!(
            p.check("github.com/evilcorp/x", None).is_ok(),
            "whole elements only"
        );
    }

    #[test]
    fn allow_list_mode() {
        let p = set(r#"
            [[allow]]
            modules = "github.com/acme/*,golang.org/x"
            [[allow]]
            modules = "gopkg.in/yaml.v3"
            versions = ">=v3.0.1"
            [[deny]]
            modules = "github.com/acme/bad"
            reason = "no"
        "#);
        assert!(p.is_allow_list());
        assert!(p.check("golang.org/x/mod", Some("v0.20.0")).is_ok());
        assert!(p.check("github.com/acme/lib/v2", None).is_ok());
        assert_eq!(
            p.check("github.com/acme/bad", None).unwrap_err().reason,
            "no"
        );
        let r = p.check("example.com/m", None).unwrap_err();
        assert_eq!(r.reason, "example.com/m is not in this proxy's allow-list");
        assert_eq!(r.entry, "allow");
        assert!(p.check("gopkg.in/yaml.v3", Some("v3.0.1")).is_ok());
        assert!(p.check("gopkg.in/yaml.v3", None).is_ok());
        assert_eq!(
            p.check("gopkg.in/yaml.v3", Some("v3.0.0"))
                .unwrap_err()
                .reason,
            "gopkg.in/yaml.v3@v3.0.0 is not in this proxy's allow-list"
        );
    }

    #[test]
    fn bad_policy_files_name_the_entry() {
        for (text, what) in [
            ("[[deny]]\nmodules = \"\"", "deny[0]"),
            (
                "[[deny]]\nmodules = \"a\"\n[[deny]]\nmodules = \"x\"\nversions = \">=1\"",
                "deny[1]",
            ),
            ("[[allow]]\nmodules = \"x[\"", "allow[0]"),
            (
                "[[deny]]\nmodules = \"x\"\nreason = \"two\\nlines\"",
                "deny[0]",
            ),
        ] {
            match PolicySet::parse(Path::new("p.toml"), text) {
                Err(AccessError::Policy { what: got, .. }) => assert_eq!(got, what, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            PolicySet::parse(Path::new("p.toml"), "[[deny]]\nmodule = \"x\""),
            Err(AccessError::PolicyToml { .. })
        ));
    }
}
