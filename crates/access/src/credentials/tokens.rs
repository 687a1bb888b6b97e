//! The bearer token file (`auth.tokens_file`).
//!
//! One `name:sha256:<64 hex digits>` per line: the token's name (what rules, groups and the
//! audit log call it) and the SHA-256 of the token. Blank lines and `#` comments are skipped.
//! Tokens are made by [`generate_token`] (256 random bits), so a fast hash is enough: nobody
//! can brute-force a 256-bit secret from its digest, and a request pays one SHA-256 instead of
//! a bcrypt. Low-entropy, human-chosen tokens belong in the user file instead, as passwords.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use super::{Lines, valid_name};
use crate::AccessError;
use crate::header::Secret;

/// The prefix of every generated token: lets secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "gmp_";

/// The SHA-256 digest of a token, as stored in the file.
pub(crate) type TokenDigest = [u8; 32];

/// The digest of a presented token.
pub(crate) fn digest(token: &[u8]) -> TokenDigest {
    Sha256::digest(token).into()
}

/// Parses a token file into name → digest.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<(String, TokenDigest)>, AccessError> {
    let mut tokens: Vec<(String, TokenDigest)> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut seen_digest: HashMap<TokenDigest, usize> = HashMap::new();
    for (line_no, line) in Lines::new(text) {
        let bad = |reason: String| AccessError::Line {
            path: path.to_path_buf(),
            line: line_no,
            reason,
        };
        let mut fields = line.splitn(3, ':');
        let (Some(name), Some(scheme), Some(hex_digest)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(bad("expected name:sha256:<hex digest>".into()));
        };
        if !valid_name(name) {
            return Err(bad(
                "the token name is empty or has whitespace or control characters".into(),
            ));
        }
        if scheme != "sha256" {
            return Err(bad(format!(
                "token {name}: only sha256 digests are supported (make lines with gomodproxy's token helper)"
            )));
        }
        let mut digest = [0u8; 32];
        if hex::decode_to_slice(hex_digest.trim(), &mut digest).is_err() {
            return Err(bad(format!(
                "token {name}: the digest is not 64 hex digits"
            )));
        }
        if let Some(first) = seen.get(name) {
            return Err(bad(format!(
                "token {name} is already defined on line {first}"
            )));
        }
        if let Some(first) = seen_digest.get(&digest) {
            return Err(bad(format!(
                "token {name} has the same digest as the token on line {first}"
            )));
        }
        seen.insert(name.to_string(), line_no);
        seen_digest.insert(digest, line_no);
        tokens.push((name.to_string(), digest));
    }
    Ok(tokens)
}

/// Makes a new random token: `gmp_` and 43 base64url characters (256 random bits).
/// Show it to its owner once; store only [`token_file_line`].
pub fn generate_token() -> Secret {
    let mut bytes = [0u8; 32];
    // ThreadRng is a CSPRNG (ChaCha) reseeded from the OS.
    rand::rng().fill_bytes(&mut bytes);
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    Secret::new(format!("{TOKEN_PREFIX}{body}"))
}

/// The token file line for `name` holding `token`: `name:sha256:<hex>`.
pub fn token_file_line(name: &str, token: &Secret) -> Result<String, AccessError> {
    if !valid_name(name) {
        return Err(AccessError::Config {
            key: "token name".into(),
            reason: "must be non-empty, without ':', whitespace or control characters".into(),
        });
    }
    Ok(format!(
        "{name}:sha256:{}",
        hex::encode(digest(token.expose()))
    ))
}
