//! Signed notes (`golang.org/x/mod/sumdb/note`): the format of the checksum database's tree
//! heads, and the verifier and signer keys in `GOSUMDB` syntax.
//!
//! A note is UTF-8 text ending in a newline, a blank line, then one line per signature:
//! `— <name> <base64(4-byte key hash ‖ 64-byte Ed25519 signature)>`. The signature covers the
//! text including its final newline. A key is `<name>+<8 hex digits of key hash>+<base64(0x01 ‖
//! 32-byte key)>`; the key hash is the first four bytes of SHA-256(`<name>\n` ‖ 0x01 ‖ key).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

use super::SumdbError;

/// The only algorithm of Go's notes.
const ALG_ED25519: u8 = 1;

/// Introduces a signature line (an em dash and a space).
const SIG_PREFIX: &str = "\u{2014} ";

/// Go refuses notes with more signatures than this.
const MAX_SIGNATURES: usize = 100;

fn malformed(why: &str) -> SumdbError {
    SumdbError::new(format!("malformed note: {why}"))
}

/// A name is non-empty, without white space or `+`.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_whitespace) && !name.contains('+')
}

/// The 4-byte key hash of `name` and an algorithm-prefixed key.
pub fn key_hash(name: &str, alg_and_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(alg_and_key);
    let sum = h.finalize();
    u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]])
}

/// A public key that verifies notes: the `GOSUMDB` key syntax
/// (`sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8`).
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    hash: u32,
    key: VerifyingKey,
    text: String,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::fmt::Display for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Verifier {
    /// Parses `<name>+<hash>+<base64 key>`, checking that the hash matches the key.
    pub fn parse(vkey: &str) -> Result<Verifier, SumdbError> {
        let bad = |why: &str| SumdbError::new(format!("invalid verifier key {vkey:?}: {why}"));
        let (name, rest) = vkey
            .split_once('+')
            .ok_or_else(|| bad("want name+hash+key"))?;
        let (hash16, key64) = rest
            .split_once('+')
            .ok_or_else(|| bad("want name+hash+key"))?;
        if !is_valid_name(name) {
            return Err(bad("invalid name"));
        }
        if hash16.len() != 8 || !hash16.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("key hash is not 8 hex digits"));
        }
        let hash = u32::from_str_radix(hash16, 16).map_err(|_| bad("bad key hash"))?;
        let key = STANDARD
            .decode(key64)
            .map_err(|_| bad("key is not base64"))?;
        if key.first() != Some(&ALG_ED25519) || key.len() != 33 {
            return Err(bad("not an Ed25519 key"));
        }
        if key_hash(name, &key) != hash {
            return Err(bad("key hash does not match the key"));
        }
        let mut raw = [0u8; 32];
        raw.copy_from_slice(&key[1..]);
        let key = VerifyingKey::from_bytes(&raw).map_err(|_| bad("invalid Ed25519 public key"))?;
        Ok(Verifier {
            name: name.to_string(),
            hash,
            key,
            text: vkey.to_string(),
        })
    }

    /// The key's name (the checksum database's name, like `sum.golang.org`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key hash.
    pub fn key_hash(&self) -> u32 {
        self.hash
    }

    /// Opens a signed note: checks its form and that this key signed it; returns the text (with
    /// its final newline). Signatures by other keys are ignored, as the go command does; a bad
    /// signature by this key is an error, and so is a note this key did not sign.
    pub fn open<'a>(&self, msg: &'a [u8]) -> Result<&'a str, SumdbError> {
        let msg = std::str::from_utf8(msg).map_err(|_| malformed("not UTF-8"))?;
        if msg.chars().any(|c| c < ' ' && c != '\n') {
            return Err(malformed("control character"));
        }
        let split = msg
            .rfind("\n\n")
            .ok_or_else(|| malformed("no blank line before the signatures"))?;
        let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(malformed("no signature lines"));
        }
        let mut verified = false;
        for (count, line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
            if count >= MAX_SIGNATURES {
                return Err(malformed("too many signatures"));
            }
            let line = line
                .strip_prefix(SIG_PREFIX)
                .ok_or_else(|| malformed("signature line without the '\u{2014} ' prefix"))?;
            let (name, b64) = line.split_once(' ').unwrap_or((line, ""));
            let sig = STANDARD.decode(b64).unwrap_or_default();
            if !is_valid_name(name) || b64.is_empty() || sig.len() < 5 {
                return Err(malformed("bad signature line"));
            }
            let hash = u32::from_be_bytes([sig[0], sig[1], sig[2], sig[3]]);
            if name != self.name || hash != self.hash {
                continue;
            }
            let signature = <[u8; 64]>::try_from(&sig[4..])
                .map(|bytes| Signature::from_bytes(&bytes))
                .map_err(|_| SumdbError::new(format!("invalid signature by {}", self.name)))?;
            if self.key.verify(text.as_bytes(), &signature).is_err() {
                return Err(SumdbError::new(format!(
                    "invalid signature by {} on the note",
                    self.name
                )));
            }
            verified = true;
        }
        if !verified {
            return Err(SumdbError::new(format!(
                "note has no signature by {}+{:08x}",
                self.name, self.hash
            )));
        }
        Ok(text)
    }
}

/// A private key that signs notes (`PRIVATE+KEY+<name>+<hash>+<base64(0x01 ‖ seed)>`). The
/// proxy never signs; the test harness runs its own checksum database with one.
#[derive(Clone)]
pub struct Signer {
    name: String,
    hash: u32,
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({}+{:08x})", self.name, self.hash)
    }
}

impl Signer {
    /// A signer for `name` from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Signer, SumdbError> {
        if !is_valid_name(name) {
            return Err(SumdbError::new(format!("invalid signer name {name:?}")));
        }
        let key = SigningKey::from_bytes(&seed);
        let mut public = vec![ALG_ED25519];
        public.extend_from_slice(key.verifying_key().as_bytes());
        Ok(Signer {
            name: name.to_string(),
            hash: key_hash(name, &public),
            key,
        })
    }

    /// Parses the `PRIVATE+KEY+…` syntax of Go's `note.NewSigner`.
    pub fn parse(skey: &str) -> Result<Signer, SumdbError> {
        let bad = || SumdbError::new("invalid signer key".to_string());
        let rest = skey.strip_prefix("PRIVATE+KEY+").ok_or_else(bad)?;
        let (name, rest) = rest.split_once('+').ok_or_else(bad)?;
        let (hash16, key64) = rest.split_once('+').ok_or_else(bad)?;
        let hash = u32::from_str_radix(hash16, 16).map_err(|_| bad())?;
        let key = STANDARD.decode(key64).map_err(|_| bad())?;
        if hash16.len() != 8 || key.first() != Some(&ALG_ED25519) || key.len() != 33 {
            return Err(bad());
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&key[1..]);
        let signer = Signer::from_seed(name, seed)?;
        if signer.hash != hash {
            return Err(SumdbError::new(
                "signer key hash does not match its key".to_string(),
            ));
        }
        Ok(signer)
    }

    /// The matching verifier key, in `GOSUMDB` syntax.
    pub fn verifier_key(&self) -> String {
        let mut public = vec![ALG_ED25519];
        public.extend_from_slice(self.key.verifying_key().as_bytes());
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.hash,
            STANDARD.encode(public)
        )
    }

    /// The private key in `PRIVATE+KEY+…` syntax.
    pub fn signer_key(&self) -> String {
        let mut private = vec![ALG_ED25519];
        private.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.hash,
            STANDARD.encode(private)
        )
    }

    /// Signs `text` (UTF-8, ending in a newline, no control characters but newlines) and
    /// returns the whole note.
    pub fn sign(&self, text: &str) -> Result<String, SumdbError> {
        if !text.ends_with('\n') {
            return Err(malformed("text does not end in a newline"));
        }
        if text.chars().any(|c| c < ' ' && c != '\n') {
            return Err(malformed("control character"));
        }
        let signature = self.key.sign(text.as_bytes());
        let mut sig = self.hash.to_be_bytes().to_vec();
        sig.extend_from_slice(&signature.to_bytes());
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(sig)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real key of sum.golang.org, and a tree head it signed (fetched through
    /// proxy.golang.org/sumdb/sum.golang.org/latest on 2026-11-29).
    const SUM_GOLANG_ORG: &str =
        "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
    const REAL_LATEST: &str = "go.sum database tree\n72470197\nzn3Ur98p8tbHWCUsglZg8HAVmwMHRKc/UTR2lN1G//A=\n\n\u{2014} sum.golang.org Az3grnoCyOZnuqwJan/1nex80iVk0qpMqqo3cVs9X77X9rEBAfCWej/ryHmx2WQbXvqvsrGgvPd/IWg35g5B0+QNjQU=\n";

    #[test]
    fn verifies_a_real_sum_golang_org_tree_head() {
        let v = Verifier::parse(SUM_GOLANG_ORG).unwrap();
        assert_eq!(v.name(), "sum.golang.org");
        assert_eq!(v.key_hash(), 0x033de0ae);
        let text = v.open(REAL_LATEST.as_bytes()).unwrap();
        assert_eq!(
            text,
            "go.sum database tree\n72470197\nzn3Ur98p8tbHWCUsglZg8HAVmwMHRKc/UTR2lN1G//A=\n"
        );
    }

    #[test]
    fn rejects_tampered_and_unsigned_notes() {
        let v = Verifier::parse(SUM_GOLANG_ORG).unwrap();
        let tampered = REAL_LATEST.replace("72470197", "72470198");
        let err = v.open(tampered.as_bytes()).unwrap_err();
        assert!(err.0.contains("invalid signature"), "{err}");
        let other = Signer::from_seed("sum.golang.org", [7; 32]).unwrap();
        let forged = other.sign("go.sum database tree\n1\nAAAA\n").unwrap();
        let err = v.open(forged.as_bytes()).unwrap_err();
        assert!(err.0.contains("no signature by sum.golang.org"), "{err}");
        for bad in [
            "",
            "text\n",
            "text\n\n",
            "text\n\nno prefix\n",
            "a\x01\n\n\u{2014} x AAAA\n",
        ] {
            assert!(v.open(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_verifier_keys() {
        for bad in [
            "",
            "sum.golang.org",
            "sum.golang.org+033de0ae",
            "sum.golang.org+033de0af+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
            "sum.golang.org+33de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
            "sum golang+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
        ] {
            assert!(Verifier::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sign_then_open_round_trips_and_keys_round_trip() {
        let s = Signer::from_seed("sumdb.test", [42; 32]).unwrap();
        let v = Verifier::parse(&s.verifier_key()).unwrap();
        let note = s.sign("hello\nworld\n").unwrap();
        assert_eq!(v.open(note.as_bytes()).unwrap(), "hello\nworld\n");
        let again = Signer::parse(&s.signer_key()).unwrap();
        assert_eq!(again.verifier_key(), s.verifier_key());
        assert!(s.sign("no newline").is_err());
    }
}
