//! Who may read which module: authentication, access rules, the allow/deny policy and the
//! audit log of gomodproxy.
//!
//! A library with narrow interfaces that the HTTP layer calls; it knows nothing of actix-web,
//! the service or storage, and its decisions depend only on what the request says (credentials,
//! client address, module path, version), never on what the store holds.
//!
//! - [`Authenticator`] checks the `Authorization` header ([`parse_authorization`]: HTTP basic
//!   from the go command's `.netrc`/`GOAUTH`, or a bearer token) against an htpasswd-compatible
//!   user file (bcrypt/argon2 only), a token file (SHA-256 digests of random tokens) and a
//!   groups file. Password verification is CPU-heavy, so it is split out
//!   ([`Authenticator::begin`] → [`PendingVerification::run`] on a blocking pool →
//!   [`Authenticator::finish`]), successful verifications are remembered briefly under a keyed
//!   hash, and failed attempts are limited per client address ([`Authentication::RateLimited`]).
//!   The files reload on [`Authenticator::reload`] (SIGHUP) and when they change
//!   ([`Authenticator::watch`]); the new set is swapped in atomically, a bad file keeps the old.
//! - [`AccessRules`] decide from the identity and the module path ([`Decision`]); the most
//!   specific matching pattern wins (see [`rules`]).
//! - [`Policy`] refuses modules and version ranges with a one-line [`Refusal`], or serves only
//!   an allow-list, for serving, prewarm and import alike; reloadable like the user files.
//! - [`AuditRecord::emit`] writes one structured event per artifact on target
//!   `gomodproxy::audit`.
//! - [`config`] has the `[auth]`, `[access]` and `[policy]` sections the server embeds.
//!
//! [`AccessControl`] bundles the authenticator and the rules for the HTTP layer.
//!
//! Design note: the watchers poll file metadata on a plain thread rather than use inotify or a
//! tokio task: it works on every filesystem and in every runtime, and reloading is blocking
//! file I/O anyway.

#![deny(missing_docs)]

pub mod audit;
mod authenticator;
mod cache;
pub mod clock;
pub mod config;
mod control;
pub mod credentials;
mod error;
pub mod header;
pub mod policy;
mod ratelimit;
pub mod rules;

pub use audit::{AUDIT_TARGET, ArtifactKind, AuditDecision, AuditRecord};
pub use authenticator::{
    AuthFailure, Authentication, Authenticator, PendingVerification, Step, VerifiedAttempt,
};
pub use config::{
    AccessConfig, AccessRuleConfig, AuthConfig, DefaultAccess, PolicyConfig, RateLimitConfig,
};
pub use control::AccessControl;
pub use credentials::htpasswd::hash_password;
pub use credentials::tokens::{generate_token, token_file_line};
pub use credentials::{CredentialFiles, CredentialSummary, Identity, IdentityKind};
pub use error::AccessError;
pub use gomodproxy_file_watch::Watcher;
pub use header::{HeaderError, PresentedCredentials, Secret, parse_authorization};
pub use policy::{Policy, PolicySet, Refusal, VersionRange};
pub use rules::{AccessRules, Decision, Matched};
