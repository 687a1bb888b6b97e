//! Which chain a module is fetched from: the first route whose patterns match it, else the
//! default chain. Every chain shares the fetch limits and the one version-control source.

use gomod::ModulePath;
use gomodproxy_vcs::Direct;

use super::Fetcher;
use super::limits::FetchLimits;
use crate::upstream::{Chain, ModulePatterns, UpstreamChain};
use crate::{ServiceConfig, ServiceInitError};

/// The chains of an online service.
#[derive(Debug)]
pub(crate) struct Upstreams {
    default: Fetcher,
    routes: Vec<(ModulePatterns, Fetcher)>,
    direct: Option<Direct>,
}

impl Upstreams {
    /// Builds a fetcher per chain (the default and each route's), and the version-control
    /// source when a chain has `direct`.
    pub(crate) fn new(
        config: &ServiceConfig,
        limits: &std::sync::Arc<FetchLimits>,
    ) -> Result<Upstreams, ServiceInitError> {
        let direct = if config.upstream.uses_direct() || config.routes.use_direct() {
            Some(
                Direct::new(config.direct.clone())
                    .map_err(|e| ServiceInitError::Direct(e.to_string()))?,
            )
        } else {
            None
        };
        let fetcher = |chain: &UpstreamChain| {
            Fetcher::new(
                Chain {
                    entries: chain.entries.clone(),
                },
                config,
                limits.clone(),
                direct.clone(),
            )
            .map_err(ServiceInitError::HttpClient)
        };
        let mut routes = Vec::new();
        for route in &config.routes.0 {
            if route.upstream.is_empty() {
                return Err(ServiceInitError::Upstream(format!(
                    "the route for {} has an empty upstream",
                    route.modules
                )));
            }
            routes.push((route.modules.clone(), fetcher(&route.upstream)?));
        }
        Ok(Upstreams {
            default: fetcher(&config.upstream)?,
            routes,
            direct,
        })
    }

    /// The fetcher of the chain `module` is routed to.
    pub(crate) fn for_module(&self, module: &ModulePath) -> &Fetcher {
        self.routes
            .iter()
            .find(|(patterns, _)| patterns.matches(module.as_str()))
            .map_or(&self.default, |(_, fetcher)| fetcher)
    }

    /// The default chain's fetcher (the checksum database is proxied through it).
    pub(crate) fn default(&self) -> &Fetcher {
        &self.default
    }

    /// The version-control source, if a chain uses it.
    pub(crate) fn direct(&self) -> Option<&Direct> {
        self.direct.as_ref()
    }
}
