//! The credential files: users (htpasswd), bearer tokens, groups; loaded together into one
//! immutable [`CredentialSet`] that a reload swaps whole.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use subtle::ConstantTimeEq as _;

use crate::AccessError;

pub(crate) mod groups;
pub mod htpasswd;
pub mod tokens;

pub(crate) use htpasswd::PasswordHash;

/// How an identity proved itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    /// A user of the user file, with a password (HTTP basic).
    User,
    /// A token of the token file (HTTP bearer).
    Token,
}

impl IdentityKind {
    /// `user` or `token`, as the audit log writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::User => "user",
            IdentityKind::Token => "token",
        }
    }
}

/// An authenticated principal: a user or a token, with its groups. Cheap to clone.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    name: Arc<str>,
    kind: IdentityKind,
    groups: Arc<[Arc<str>]>,
}

impl Identity {
    /// Makes an identity (for tests and for callers that authenticate by other means, such as
    /// a client certificate).
    pub fn new(name: &str, kind: IdentityKind, groups: &[&str]) -> Identity {
        let mut groups: Vec<Arc<str>> = groups.iter().map(|g| Arc::from(*g)).collect();
        groups.sort();
        groups.dedup();
        Identity {
            name: Arc::from(name),
            kind,
            groups: groups.into(),
        }
    }

    /// The user or token name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// User or token.
    pub fn kind(&self) -> IdentityKind {
        self.kind
    }

    /// The groups the identity belongs to, sorted.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(|g| &**g)
    }

    /// Reports whether the identity is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.binary_search_by(|g| (**g).cmp(group)).is_ok()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.name)?;
        if !self.groups.is_empty() {
            write!(f, " (groups: {})", self.groups.join(", "))?;
        }
        Ok(())
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The credential files to load, from `auth.htpasswd_file`, `auth.tokens_file` and
/// `auth.groups_file`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialFiles {
    /// The htpasswd-compatible user file.
    pub htpasswd: Option<PathBuf>,
    /// The bearer token file.
    pub tokens: Option<PathBuf>,
    /// The groups file.
    pub groups: Option<PathBuf>,
}

impl CredentialFiles {
    /// Reports whether any credential file is configured (then authentication is on).
    pub fn any(&self) -> bool {
        self.htpasswd.is_some() || self.tokens.is_some()
    }

    /// The configured files, for a change watcher.
    pub fn paths(&self) -> Vec<PathBuf> {
        [&self.htpasswd, &self.tokens, &self.groups]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
}

/// A user of the user file.
#[derive(Debug)]
pub(crate) struct UserEntry {
    pub(crate) hash: Arc<PasswordHash>,
    pub(crate) identity: Identity,
}

/// Counts of what a credential set holds, for logs after a (re)load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CredentialSummary {
    /// Users with a password.
    pub users: usize,
    /// Bearer tokens.
    pub tokens: usize,
    /// Distinct groups.
    pub groups: usize,
}

impl fmt::Display for CredentialSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} users, {} tokens, {} groups",
            self.users, self.tokens, self.groups
        )
    }
}

/// Everything the credential files say, immutable once loaded.
#[derive(Debug, Default)]
pub(crate) struct CredentialSet {
    users: HashMap<String, UserEntry>,
    tokens: Vec<(tokens::TokenDigest, Identity)>,
    /// A hash of the user file's kind and cost, verified against when the user is unknown so
    /// that an unknown user costs about as much time as a wrong password.
    dummy: Option<Arc<PasswordHash>>,
    summary: CredentialSummary,
}

impl CredentialSet {
    /// Reads and parses the configured files. Any error leaves nothing loaded.
    pub(crate) fn load(files: &CredentialFiles) -> Result<CredentialSet, AccessError> {
        let users = match &files.htpasswd {
            Some(path) => htpasswd::parse(path, &read(path)?)?,
            None => HashMap::new(),
        };
        let token_list = match &files.tokens {
            Some(path) => tokens::parse(path, &read(path)?)?,
            None => Vec::new(),
        };
        let membership = match &files.groups {
            Some(path) => groups::parse(path, &read(path)?)?,
            None => HashMap::new(),
        };
        if let Some((name, _)) = token_list.iter().find(|(name, _)| users.contains_key(name)) {
            return Err(AccessError::Config {
                key: "auth.tokens_file".into(),
                reason: format!(
                    "token {name} has the name of a user of auth.htpasswd_file: names must be unique across both files"
                ),
            });
        }
        let identity = |name: &str, kind| {
            let groups: Vec<&str> = membership
                .get(name)
                .map(|g| g.iter().map(String::as_str).collect())
                .unwrap_or_default();
            Identity::new(name, kind, &groups)
        };
        let distinct_groups: std::collections::BTreeSet<&String> =
            membership.values().flatten().collect();
        let summary = CredentialSummary {
            users: users.len(),
            tokens: token_list.len(),
            groups: distinct_groups.len(),
        };
        // The dummy: the user hash that is slowest to check, a fair stand-in for any of them.
        let users: HashMap<String, UserEntry> = users
            .into_iter()
            .map(|(name, hash)| {
                let entry = UserEntry {
                    hash: Arc::new(hash),
                    identity: identity(&name, IdentityKind::User),
                };
                (name, entry)
            })
            .collect();
        let dummy = users
            .values()
            .map(|u| u.hash.clone())
            .max_by_key(|h| h.cost_rank());
        let tokens = token_list
            .into_iter()
            .map(|(name, digest)| (digest, identity(&name, IdentityKind::Token)))
            .collect();
        Ok(CredentialSet {
            users,
            tokens,
            dummy,
            summary,
        })
    }

    /// The user entry for `name`.
    pub(crate) fn user(&self, name: &str) -> Option<&UserEntry> {
        self.users.get(name)
    }

    /// The hash to verify against when the user is unknown.
    pub(crate) fn dummy_hash(&self) -> Option<Arc<PasswordHash>> {
        self.dummy.clone()
    }

    /// The identity of a presented bearer token. Compares the digest against every stored
    /// digest in constant time, without stopping at a match.
    pub(crate) fn find_token(&self, token: &[u8]) -> Option<Identity> {
        let presented = tokens::digest(token);
        let mut found = None;
        for (digest, identity) in &self.tokens {
            if bool::from(digest.ct_eq(&presented)) {
                found = Some(identity);
            }
        }
        found.cloned()
    }

    pub(crate) fn summary(&self) -> CredentialSummary {
        self.summary
    }
}

fn read(path: &Path) -> Result<String, AccessError> {
    std::fs::read_to_string(path).map_err(|source| AccessError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A name of a user, token, group or member: non-empty, no `:`, whitespace or control
/// characters.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c == ':' || c.is_whitespace() || c.is_control())
}

/// The content lines of a credential file with their 1-based numbers: `\r` stripped, blank
/// lines and `#` comments skipped.
pub(crate) struct Lines<'a> {
    inner: std::iter::Enumerate<std::str::Lines<'a>>,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Lines {
            inner: text.lines().enumerate(),
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        for (i, line) in self.inner.by_ref() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            return Some((i + 1, line));
        }
        None
    }
}
