//! [`AccessControl`]: the authenticator and the access rules together, the one object the HTTP
//! layer holds.

use std::net::IpAddr;
use std::sync::Arc;

use gomod::ModulePath;

use crate::AccessError;
use crate::authenticator::{Authentication, Authenticator};
use crate::clock::{Clock, SystemClock};
use crate::config::{AccessConfig, AuthConfig};
use crate::credentials::CredentialSummary;
use crate::rules::{AccessRules, Decision};
use gomodproxy_file_watch::Watcher;

/// Authentication and access rules for the HTTP layer.
#[derive(Debug)]
pub struct AccessControl {
    authenticator: Arc<Authenticator>,
    rules: AccessRules,
    metrics_require_auth: bool,
}

impl AccessControl {
    /// Loads the credential files and compiles the rules.
    pub fn new(auth: &AuthConfig, access: &AccessConfig) -> Result<AccessControl, AccessError> {
        Self::with_clock(auth, access, Arc::new(SystemClock))
    }

    /// [`AccessControl::new`] with the caller's clock (tests).
    pub fn with_clock(
        auth: &AuthConfig,
        access: &AccessConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<AccessControl, AccessError> {
        if auth.metrics_require_auth && !auth.enabled() {
            return Err(AccessError::Config {
                key: "auth.metrics_require_auth".into(),
                reason: "needs auth.htpasswd_file or auth.tokens_file".into(),
            });
        }
        Ok(AccessControl {
            authenticator: Arc::new(Authenticator::with_clock(auth, clock)?),
            rules: AccessRules::new(access, auth.enabled())?,
            metrics_require_auth: auth.metrics_require_auth,
        })
    }

    /// The authenticator (for `begin`/`finish` when the caller runs verifications itself).
    pub fn authenticator(&self) -> &Arc<Authenticator> {
        &self.authenticator
    }

    /// The compiled rules.
    pub fn rules(&self) -> &AccessRules {
        &self.rules
    }

    /// Authenticates a request from its `Authorization` header value and client address; see
    /// [`Authenticator::authenticate`].
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        client: IpAddr,
    ) -> Authentication {
        self.authenticator.authenticate(authorization, client).await
    }

    /// The decision for a request that names `module` (every GOPROXY endpoint, and checksum
    /// database lookups of a module).
    pub fn authorize_module(&self, who: &Authentication, module: &ModulePath) -> Decision {
        self.rules.decide(who, module.as_str())
    }

    /// The decision for a request that names no module (checksum database tiles, `latest`,
    /// `supported`); see [`AccessRules::decide_unnamed`].
    pub fn authorize_unnamed(&self, who: &Authentication) -> Decision {
        self.rules.decide_unnamed(who)
    }

    /// Reports whether authentication is on (a user or token file is configured).
    pub fn enabled(&self) -> bool {
        self.authenticator.enabled()
    }

    /// The decision for `/metrics`: open unless `auth.metrics_require_auth`, then any valid
    /// identity.
    pub fn authorize_metrics(&self, who: &Authentication) -> Decision {
        Decision::without_module(who, !self.metrics_require_auth)
    }

    /// The `WWW-Authenticate` value for 401 answers.
    pub fn challenge(&self) -> Option<String> {
        self.authenticator.challenge()
    }

    /// Reloads the credential files (SIGHUP); the previous ones stay on error.
    pub fn reload(&self) -> Result<CredentialSummary, AccessError> {
        self.authenticator.reload()
    }

    /// Starts the credential file watcher; see [`Authenticator::watch`].
    pub fn watch(&self) -> std::io::Result<Option<Watcher>> {
        self.authenticator.watch()
    }
}
