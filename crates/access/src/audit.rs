//! The audit log: one structured `tracing` event per artifact served or refused, on its own
//! target ([`AUDIT_TARGET`], `gomodproxy::audit`) so that a subscriber can route it to a file
//! or a SIEM apart from the operational log (`RUST_LOG=gomodproxy::audit=info`, or a
//! per-target filter on a JSON layer).
//!
//! Fields, all present on every event (`-` when not applicable): `principal` (user or token
//! name, `-` for anonymous), `auth` (`user`, `token`, `anonymous`), `client` (address),
//! `module`, `version`, `kind` (`list`, `latest`, `info`, `mod`, `zip`, `sumdb`), `decision`
//! (`served`, `refused`), `status` (the HTTP status sent), `reason` (why refused), `bytes`
//! (body bytes sent).

use std::fmt;
use std::net::IpAddr;

use crate::credentials::Identity;

/// The tracing target of audit events.
pub const AUDIT_TARGET: &str = "gomodproxy::audit";

/// What was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArtifactKind {
    /// `@v/list`
    List,
    /// `@latest`
    Latest,
    /// `.info`
    Info,
    /// `.mod`
    Mod,
    /// `.zip`
    Zip,
    /// A checksum database request.
    Sumdb,
}

impl ArtifactKind {
    /// The name written in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::List => "list",
            ArtifactKind::Latest => "latest",
            ArtifactKind::Info => "info",
            ArtifactKind::Mod => "mod",
            ArtifactKind::Zip => "zip",
            ArtifactKind::Sumdb => "sumdb",
        }
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Served or refused, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditDecision<'a> {
    /// The artifact (or the store's answer that it does not exist) was sent.
    Served,
    /// Access rules, policy or authentication refused the request.
    Refused {
        /// The one-line reason sent to the client.
        reason: &'a str,
    },
}

/// One audit record; [`AuditRecord::emit`] writes it.
#[derive(Debug, Clone, Copy)]
pub struct AuditRecord<'a> {
    /// Who, if authenticated.
    pub identity: Option<&'a Identity>,
    /// The client's address (after the server's trusted-proxy handling).
    pub client: Option<IpAddr>,
    /// The module path.
    pub module: &'a str,
    /// The version, when the request names one.
    pub version: Option<&'a str>,
    /// What was asked for.
    pub kind: ArtifactKind,
    /// Served or refused.
    pub decision: AuditDecision<'a>,
    /// The HTTP status sent.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
}

impl AuditRecord<'_> {
    /// Emits the record as one INFO event on [`AUDIT_TARGET`].
    pub fn emit(&self) {
        let (principal, auth) = match self.identity {
            Some(identity) => (identity.name(), identity.kind().as_str()),
            None => ("-", "anonymous"),
        };
        let client = self
            .client
            .map_or_else(|| "-".to_string(), |ip| ip.to_string());
        let (decision, reason) = match self.decision {
            AuditDecision::Served => ("served", "-"),
            AuditDecision::Refused { reason } => ("refused", reason),
        };
        tracing::info!(
            target: AUDIT_TARGET,
            principal,
            auth,
            client = %client,
            module = self.module,
            version = self.version.unwrap_or("-"),
            kind = self.kind.as_str(),
            decision,
            status = self.status,
            reason,
            bytes = self.bytes,
            "artifact"
        );
    }
}
