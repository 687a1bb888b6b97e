//! The htpasswd-compatible user file (`auth.htpasswd_file`).
//!
//! One `user:hash` per line, as Apache's `htpasswd -B` writes it; blank lines and lines starting
//! with `#` are skipped; like Apache, anything after a second `:` is ignored. Only slow, salted
//! hashes are accepted: bcrypt (`$2y$`, `$2a$`, `$2b$`) and argon2 (`$argon2id$`, `$argon2i$`).
//! Plaintext, crypt(3) DES, `{SHA}`, apr1-MD5 and the other crypt(3) schemes are refused at load
//! with an error naming the line and the user, never the hash.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use argon2::PasswordVerifier as _;

use super::{Lines, valid_name};
use crate::AccessError;

/// Highest bcrypt cost accepted. Each step doubles the verification time; cost 15 is already
/// about two seconds of CPU on a server core, and a file entry above it would let every failed
/// login cost more than the rate limiter can account for.
pub const MAX_BCRYPT_COST: u32 = 15;

/// Largest argon2 memory cost accepted, in KiB (256 MiB): a verification allocates this much.
pub const MAX_ARGON2_MEMORY_KIB: u32 = 256 * 1024;

/// Largest argon2 time cost (passes) accepted.
pub const MAX_ARGON2_PASSES: u32 = 16;

/// A password hash of a supported scheme, parsed and checked at load.
#[derive(Clone)]
pub(crate) enum PasswordHash {
    /// A bcrypt hash in modular crypt format.
    Bcrypt(String),
    /// An argon2 hash in PHC string format.
    Argon2(Box<argon2::PasswordHash>),
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordHash::Bcrypt(_) => f.write_str("Bcrypt(<redacted>)"),
            PasswordHash::Argon2(_) => f.write_str("Argon2(<redacted>)"),
        }
    }
}

impl PasswordHash {
    /// Parses a hash, or says (without quoting it) why it is refused.
    pub(crate) fn parse(hash: &str) -> Result<PasswordHash, String> {
        if ["$2y$", "$2a$", "$2b$"].iter().any(|p| hash.starts_with(p)) {
            let parts = bcrypt::HashParts::from_str(hash)
                .map_err(|_| "malformed bcrypt hash".to_string())?;
            if parts.get_cost() > MAX_BCRYPT_COST {
                return Err(format!(
                    "bcrypt cost {} is above the maximum of {MAX_BCRYPT_COST}",
                    parts.get_cost()
                ));
            }
            return Ok(PasswordHash::Bcrypt(hash.to_string()));
        }
        if hash.starts_with("$argon2id$") || hash.starts_with("$argon2i$") {
            let parsed =
                argon2::PasswordHash::new(hash).map_err(|_| "malformed argon2 hash".to_string())?;
            let params = argon2::Params::try_from(&parsed)
                .map_err(|_| "malformed argon2 parameters".to_string())?;
            if params.m_cost() > MAX_ARGON2_MEMORY_KIB || params.t_cost() > MAX_ARGON2_PASSES {
                return Err(format!(
                    "argon2 cost (m={} KiB, t={}) is above the maximum (m={MAX_ARGON2_MEMORY_KIB}, t={MAX_ARGON2_PASSES})",
                    params.m_cost(),
                    params.t_cost()
                ));
            }
            return Ok(PasswordHash::Argon2(Box::new(parsed)));
        }
        Err(refusal(hash).to_string())
    }

    /// A rank of how long a verification takes, to pick the slowest hash as the stand-in for
    /// unknown users (bcrypt cost in doublings; argon2 by memory × passes, in the same rough
    /// scale: bcrypt cost 10 and argon2 at 19 MiB × 2 both take tens of milliseconds).
    pub(crate) fn cost_rank(&self) -> u64 {
        match self {
            PasswordHash::Bcrypt(hash) => bcrypt::HashParts::from_str(hash)
                .map(|p| 1u64 << p.get_cost())
                .unwrap_or(0),
            PasswordHash::Argon2(hash) => argon2::Params::try_from(&**hash)
                .map(|p| u64::from(p.m_cost()) * u64::from(p.t_cost()) / 38)
                .unwrap_or(0),
        }
    }

    /// Checks a password against the hash: CPU heavy (milliseconds to seconds), call it off
    /// the async executor. bcrypt compares in constant time; argon2's output type compares in
    /// constant time too.
    pub(crate) fn verify(&self, password: &[u8]) -> bool {
        match self {
            PasswordHash::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            PasswordHash::Argon2(hash) => argon2::Argon2::default()
                .verify_password(password, &**hash)
                .is_ok(),
        }
    }
}

/// The reason an unsupported hash is refused, named by its scheme.
fn refusal(hash: &str) -> &'static str {
    if hash.starts_with("$apr1$") {
        "apr1-MD5 hashes are refused: rehash with htpasswd -B (bcrypt) or argon2id"
    } else if hash.starts_with("{SHA}") {
        "{SHA} (unsalted SHA-1) hashes are refused: rehash with htpasswd -B (bcrypt) or argon2id"
    } else if hash.starts_with("$argon2d$") {
        "argon2d hashes are refused: use argon2id"
    } else if hash.starts_with("$1$") || hash.starts_with("$5$") || hash.starts_with("$6$") {
        "crypt(3) MD5/SHA hashes are refused: rehash with htpasswd -B (bcrypt) or argon2id"
    } else if hash.len() == 13
        && hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
    {
        "crypt(3) DES hashes are refused: rehash with htpasswd -B (bcrypt) or argon2id"
    } else {
        "plaintext or unknown password hashes are refused: hash with htpasswd -B (bcrypt) or argon2id"
    }
}

/// Parses a user file into user name → hash.
pub(crate) fn parse(path: &Path, text: &str) -> Result<HashMap<String, PasswordHash>, AccessError> {
    let mut users: HashMap<String, (usize, PasswordHash)> = HashMap::new();
    for (line_no, line) in Lines::new(text) {
        let bad = |reason: String| AccessError::Line {
            path: path.to_path_buf(),
            line: line_no,
            reason,
        };
        let Some((user, rest)) = line.split_once(':') else {
            return Err(bad("expected user:hash".into()));
        };
        if !valid_name(user) {
            return Err(bad(
                "the user name is empty or has whitespace or control characters".into(),
            ));
        }
        let hash = rest.split(':').next().unwrap_or_default();
        let hash = PasswordHash::parse(hash).map_err(|why| bad(format!("user {user}: {why}")))?;
        if let Some((first, _)) = users.get(user) {
            return Err(bad(format!(
                "user {user} is already defined on line {first}"
            )));
        }
        users.insert(user.to_string(), (line_no, hash));
    }
    Ok(users.into_iter().map(|(u, (_, h))| (u, h)).collect())
}

/// Hashes a password for a user file line, with bcrypt at `cost` in the `$2y$` form
/// `htpasswd -B` writes. Cost 10 (about 50–100 ms a verification) is a reasonable default with
/// the verification cache in front; see [`MAX_BCRYPT_COST`].
pub fn hash_password(password: &[u8], cost: u32) -> Result<String, AccessError> {
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(AccessError::Config {
            key: "bcrypt cost".into(),
            reason: format!("must be between 4 and {MAX_BCRYPT_COST}"),
        });
    }
    bcrypt::hash_with_result(password, cost)
        .map(|parts| parts.format_for_version(bcrypt::Version::TwoY))
        .map_err(|e| AccessError::Config {
            key: "bcrypt cost".into(),
            reason: e.to_string(),
        })
}
