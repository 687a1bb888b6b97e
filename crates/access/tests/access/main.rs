//! Integration tests of gomodproxy-access through its public API, with real files in a temp
//! dir and real bcrypt/argon2 hashes. Time is a manual clock: no assertion depends on how fast
//! the machine is.

mod audit;
mod authenticate;
mod credential_files;
mod policy;
mod rules;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;

/// Hashes made with Apache's `htpasswd` 2.4 (`htpasswd -nbB -C 5 alice alice-pw`, …) and the
/// reference `argon2` tool (`echo -n gina-pw | argon2 somesalt12345678 -id -t 2 -m 12 -p 1 -e`).
pub const ALICE_BCRYPT: &str = "alice:$2y$05$0Lv1O/gERvJHEEEn6ALBhOuqL2OJsb2bSbs7C8gvMqCTdbwaREy76";
pub const BOB_BCRYPT_COLON_PASSWORD: &str =
    "bob:$2y$04$BgZbgsh/wwyiiIVFWKWkje84PuEIs07vSnep72MHNVUYLdle1mJIa";
pub const CAROL_APR1: &str = "carol:$apr1$lgRe7sJ0$qARPPV0zZbkzinea5O/Za.";
pub const DAVE_SHA: &str = "dave:{SHA}uE1+cBGmURe+4zihKsjfuHZgJbQ=";
pub const ERIN_CRYPT: &str = "erin:ISFijSY5I.umY";
pub const FRANK_PLAIN: &str = "frank:frank-pw";
pub const GINA_ARGON2ID: &str = "gina:$argon2id$v=19$m=4096,t=2,p=1$c29tZXNhbHQxMjM0NTY3OA$lTBMSt3NKespIf/0pLj3mDd7YNyW1+FkB1SsvE42H5I";

pub fn basic(user: &str, password: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {b64}")
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Writes `content` to `dir/name` atomically (write + rename), as config management does.
pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}
