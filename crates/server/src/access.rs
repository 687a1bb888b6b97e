//! The access layer between HTTP and the service: client authentication, access rules by
//! module, the allow/deny policy and the audit log. The service knows nothing of it.
//!
//! [`guard`] is an actix middleware that runs before every handler:
//! - `/healthz` and `/readyz` are always open; `/metrics` is open unless
//!   `auth.metrics_require_auth`;
//! - every request that names a module (`list`, `@latest`, `.info`, `.mod`, `.zip`, and the
//!   checksum database's `lookup/<module>@<version>`) is decided by the access rules for that
//!   module path; other checksum database paths (`supported`, `latest`, tiles: public data) by
//!   [`AccessControl::authorize_unnamed`];
//! - a refusal is answered here (401 with `WWW-Authenticate`, 403, or 429 with `Retry-After`)
//!   and the service is never called: a private module's name reaches neither the store nor an
//!   upstream nor a checksum database, and since rules decide on the name alone, the answer
//!   is the same whether the module exists or not.
//!
//! The caller ([`Caller`]) is left in the request's extensions for the handler, which applies
//! the policy ([`AccessLayer::check_policy`]) once the version is known and writes the audit
//! line of what it served ([`Caller::audit`]).

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use gomod::request::{InfoVersion, ProxyRequest};
use gomod::sumdb::SumdbPath;
use gomod::{ModulePath, Version};
use gomodproxy_access::{
    AccessControl, AccessError, ArtifactKind, AuditDecision, AuditRecord, Authentication, Decision,
    Policy, Refusal,
};
use gomodproxy_service::PrivateNames;
use gomodproxy_service::prewarm::{StoredModule, Target as WarmTarget, WarmError, Warmed, Warmer};
use gomodproxy_service::{KnownTree, SealReport};

use crate::config::Config;
use crate::http::{AppState, ProxyError};

/// Authentication, access rules and policy, as the HTTP layer holds them.
#[derive(Debug)]
pub struct AccessLayer {
    control: Arc<AccessControl>,
    policy: Arc<Policy>,
}

impl AccessLayer {
    /// Loads the credential files, compiles the rules and loads the policy file.
    pub fn new(config: &Config) -> Result<AccessLayer, AccessError> {
        Ok(AccessLayer {
            control: Arc::new(AccessControl::new(&config.auth, &config.access)?),
            policy: Arc::new(Policy::new(&config.policy)?),
        })
    }

    /// No authentication, every module open, no policy.
    pub fn open() -> AccessLayer {
        AccessLayer::new(&Config::default()).expect("the default access configuration is valid")
    }

    /// The authenticator and rules.
    pub fn control(&self) -> &Arc<AccessControl> {
        &self.control
    }

    /// The policy.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The module names the access rules restrict: kept from every checksum database.
    pub fn private_names(&self) -> PrivateNames {
        let control = self.control.clone();
        Arc::new(move |module: &str| control.rules().keeps_private(module))
    }

    /// The policy's verdict on `module` (and `version`, when known).
    pub fn check_policy(
        &self,
        module: &ModulePath,
        version: Option<&Version>,
    ) -> Result<(), Refusal> {
        self.policy.check(module, version)
    }

    /// Reloads the credential files and the policy (SIGHUP); on error the previous ones stay
    /// and the error is logged.
    pub fn reload(&self) {
        match self.control.reload() {
            Ok(summary) => tracing::info!(
                users = summary.users,
                tokens = summary.tokens,
                groups = summary.groups,
                "credential files reloaded"
            ),
            Err(e) => {
                tracing::error!(error = %e, "credential files not reloaded; the previous ones stay")
            }
        }
        match self.policy.reload() {
            Ok(()) => tracing::info!("policy reloaded"),
            Err(e) => tracing::error!(error = %e, "policy not reloaded; the previous one stays"),
        }
    }

    /// Starts the file watchers (credential files, policy file); keep them alive while
    /// serving.
    pub fn watch(&self) -> std::io::Result<Vec<gomodproxy_access::Watcher>> {
        Ok([self.control.watch()?, self.policy.watch()?]
            .into_iter()
            .flatten()
            .collect())
    }
}

/// The request as the guard parsed it; in the request's extensions for the handler.
pub struct Parsed(pub ProxyRequest);

/// Who made a request that the guard admitted; in the request's extensions.
#[derive(Debug, Clone)]
pub struct Caller {
    /// What the credentials said.
    pub who: Authentication,
    /// The peer address.
    pub client: Option<IpAddr>,
}

impl Caller {
    /// Writes the audit line of one artifact.
    pub fn audit(&self, target: &Target, decision: AuditDecision<'_>, status: u16, bytes: u64) {
        audit(
            self.who.identity(),
            self.client,
            target,
            decision,
            status,
            bytes,
        );
    }
}

fn audit(
    identity: Option<&gomodproxy_access::Identity>,
    client: Option<IpAddr>,
    target: &Target,
    decision: AuditDecision<'_>,
    status: u16,
    bytes: u64,
) {
    if let Some(module) = &target.module {
        AuditRecord {
            identity,
            client,
            module: module.as_str(),
            version: target.version.as_deref(),
            kind: target.kind,
            decision,
            status,
            bytes,
        }
        .emit();
    }
}

/// What a request is about, as far as access is concerned.
#[derive(Debug, Clone)]
pub struct Target {
    /// The module it names (`None`: checksum database paths other than lookups, and paths that
    /// do not parse, which the handler answers with 400).
    pub module: Option<ModulePath>,
    /// The version, or the query, it names.
    pub version: Option<String>,
    /// The kind of artifact.
    pub kind: ArtifactKind,
}

impl Target {
    /// Classifies a parsed GOPROXY request.
    pub fn of(request: &ProxyRequest) -> Target {
        let (module, version, kind) = match request {
            ProxyRequest::List { module } => (Some(module), None, ArtifactKind::List),
            ProxyRequest::Latest { module } => (Some(module), None, ArtifactKind::Latest),
            ProxyRequest::Info { module, version } => (
                Some(module),
                Some(match version {
                    InfoVersion::Canonical(v) => v.to_string(),
                    InfoVersion::Query(q) => q.to_string(),
                }),
                ArtifactKind::Info,
            ),
            ProxyRequest::Mod { module, version } => {
                (Some(module), Some(version.to_string()), ArtifactKind::Mod)
            }
            ProxyRequest::Zip { module, version } => {
                (Some(module), Some(version.to_string()), ArtifactKind::Zip)
            }
            ProxyRequest::Sumdb { path, .. } => match path {
                SumdbPath::Lookup { module, version } => {
                    (Some(module), Some(version.to_string()), ArtifactKind::Sumdb)
                }
                _ => (None, None, ArtifactKind::Sumdb),
            },
        };
        Target {
            module: module.cloned(),
            version,
            kind,
        }
    }

    /// Classifies a raw request path; the parsed request, if it parses, is returned too so
    /// that the handler does not parse it again.
    fn of_path(raw: &str) -> (Target, Option<ProxyRequest>) {
        let raw = raw.strip_prefix('/').unwrap_or(raw);
        match ProxyRequest::parse(raw) {
            Ok(request) => (Target::of(&request), Some(request)),
            Err(_) => (
                Target {
                    module: None,
                    version: None,
                    kind: ArtifactKind::Sumdb,
                },
                None,
            ),
        }
    }
}

/// The middleware; see the module documentation.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let path = req.path();
    if matches!(path, "/healthz" | "/readyz") {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let Some(layer) = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.access().clone())
    else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let metrics = path == "/metrics";
    let (target, parsed) = if metrics {
        (None, None)
    } else {
        let (target, parsed) = Target::of_path(req.uri().path());
        (Some(target), parsed)
    };
    let client = req.peer_addr().map(|a| a.ip());
    // A value that is not visible ASCII cannot be valid credentials: authenticate it as the
    // malformed header it is rather than as no header.
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}").to_owned());
    let control = layer.control();
    let who = control
        .authenticate(
            authorization.as_deref(),
            client.unwrap_or(IpAddr::from([0, 0, 0, 0])),
        )
        .await;
    let decision = match &target {
        None => control.authorize_metrics(&who),
        Some(Target {
            module: Some(module),
            ..
        }) => control.authorize_module(&who, module),
        Some(_) => control.authorize_unnamed(&who),
    };
    let error = match decision {
        Decision::Allow => {
            {
                let mut extensions = req.extensions_mut();
                extensions.insert(Caller { who, client });
                if let Some(parsed) = parsed {
                    extensions.insert(Parsed(parsed));
                }
            }
            return Ok(next.call(req).await?.map_into_left_body());
        }
        Decision::Unauthorized { reason } => ProxyError::Unauthorized {
            reason,
            challenge: control.challenge(),
        },
        Decision::Forbidden { reason } => ProxyError::Forbidden(reason),
        Decision::RateLimited { retry_after } => ProxyError::RateLimited(retry_after),
    };
    let response = error.error_response();
    if let Some(target) = &target {
        let reason = error.to_string();
        audit(
            who.identity(),
            client,
            target,
            AuditDecision::Refused { reason: &reason },
            response.status().as_u16(),
            0,
        );
    }
    Ok(req.into_response(response).map_into_right_body())
}

/// A [`Warmer`] that applies the policy before the one it wraps: `prewarm` never fetches or
/// stores a refused module or version (a refusal is a failure of that target, with the
/// reason), `list` omits refused versions and `@latest` is refused if it resolves to one.
pub struct PolicyWarmer<'a> {
    inner: &'a dyn Warmer,
    policy: Arc<Policy>,
}

impl<'a> PolicyWarmer<'a> {
    /// Wraps `inner`.
    pub fn new(inner: &'a dyn Warmer, policy: Arc<Policy>) -> PolicyWarmer<'a> {
        PolicyWarmer { inner, policy }
    }

    fn check(&self, module: &ModulePath, version: Option<&str>) -> Result<(), WarmError> {
        self.policy
            .current()
            .check(module.as_str(), version)
            .map_err(|refusal| WarmError::Failed(format!("refused by policy: {refusal}")))
    }
}

impl PolicyWarmer<'_> {
    fn filter_list(&self, module: &ModulePath, body: bytes::Bytes) -> bytes::Bytes {
        let policy = self.policy.current();
        let kept: String = String::from_utf8_lossy(&body)
            .lines()
            .filter(|v| {
                v.trim().is_empty() || policy.check(module.as_str(), Some(v.trim())).is_ok()
            })
            .map(|v| format!("{v}\n"))
            .collect();
        bytes::Bytes::from(kept)
    }

    fn check_resolved(&self, module: &ModulePath, body: &[u8]) -> Result<(), WarmError> {
        #[derive(serde::Deserialize)]
        struct Info {
            #[serde(rename = "Version")]
            version: String,
        }
        match serde_json::from_slice::<Info>(body) {
            Ok(info) => self.check(module, Some(&info.version)),
            Err(_) => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl Warmer for PolicyWarmer<'_> {
    async fn artifact(
        &self,
        module: &ModulePath,
        version: &Version,
        kind: gomodproxy_storage::ArtifactKind,
    ) -> Result<Warmed, WarmError> {
        self.check(module, Some(version.as_str()))?;
        self.inner.artifact(module, version, kind).await
    }

    async fn list(&self, module: &ModulePath) -> Result<bytes::Bytes, WarmError> {
        self.check(module, None)?;
        Ok(self.filter_list(module, self.inner.list(module).await?))
    }

    async fn latest(&self, module: &ModulePath) -> Result<bytes::Bytes, WarmError> {
        self.check(module, None)?;
        let body = self.inner.latest(module).await?;
        self.check_resolved(module, &body)?;
        Ok(body)
    }

    async fn fresh_list(&self, module: &ModulePath) -> Result<bytes::Bytes, WarmError> {
        self.check(module, None)?;
        Ok(self.filter_list(module, self.inner.fresh_list(module).await?))
    }

    async fn fresh_latest(&self, module: &ModulePath) -> Result<bytes::Bytes, WarmError> {
        self.check(module, None)?;
        let body = self.inner.fresh_latest(module).await?;
        self.check_resolved(module, &body)?;
        Ok(body)
    }

    async fn stored_modules(&self) -> Result<Vec<StoredModule>, WarmError> {
        self.inner.stored_modules().await
    }

    async fn seal(
        &self,
        targets: &[WarmTarget],
        known: &[KnownTree],
    ) -> Result<SealReport, WarmError> {
        self.inner.seal(targets, known).await
    }
}

/// The policy of `config` (for `prewarm` and `import`, which have no access layer).
pub fn policy(config: &Config) -> anyhow::Result<Arc<Policy>> {
    Ok(Arc::new(
        Policy::new(&config.policy).map_err(|e| anyhow::anyhow!("policy: {e}"))?,
    ))
}

/// [`Config::runtime_service_config`] with the module names the access rules restrict kept
/// from checksum databases, as `serve` runs it (for `prewarm`, which has no access layer).
pub fn service_config(config: &Config) -> anyhow::Result<gomodproxy_service::ServiceConfig> {
    let mut service = config.runtime_service_config()?;
    let rules = gomodproxy_access::AccessRules::new(&config.access, config.auth.enabled())
        .map_err(|e| anyhow::anyhow!("access rules: {e}"))?;
    service.private_names = Some(Arc::new(move |module: &str| rules.keeps_private(module)));
    Ok(service)
}

/// The policy of `config` as `import` applies it.
pub fn import_policy(config: &Config) -> anyhow::Result<gomodproxy_bundle::ImportPolicy> {
    let policy = policy(config)?;
    Ok(gomodproxy_bundle::ImportPolicy(Arc::new(
        move |module: &ModulePath, version: &Version| {
            policy.check(module, Some(version)).err().map(|r| r.reason)
        },
    )))
}
