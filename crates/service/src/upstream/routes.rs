//! Routes: module path patterns with an upstream chain of their own (GONOPROXY-style), so that
//! private modules go to the company's git server or proxy and never to a public upstream.

use std::fmt;

use super::{ModulePatterns, UpstreamChain};

/// One route: modules matching `modules` are fetched from `upstream` instead of the default
/// chain. A `private` route (the default) also keeps its modules away from every checksum
/// database: they are not verified against one, and lookups of their names are never made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The patterns (GOPRIVATE syntax), as a list or one comma-separated string.
    pub modules: ModulePatterns,
    /// The chain for them, in GOPROXY syntax (`direct`, `https://artifactory.corp/go,direct`).
    pub upstream: UpstreamChain,
    /// Never verified against, or looked up in, a checksum database (default true).
    #[serde(default = "private_by_default")]
    pub private: bool,
}

fn private_by_default() -> bool {
    true
}

/// The routes, in order: the first whose patterns match a module decides its chain.
///
/// Deserializes from a list of tables (`[[routes]]` in TOML) or from one string, the form an
/// environment variable can hold: `PATTERNS=CHAIN` pairs separated by `;`, where PATTERNS is
/// comma-separated (`*.corp.example.com=direct;github.com/acme=https://artifactory.corp/go,direct`).
/// Routes given as a string are private.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
#[serde(transparent)]
pub struct Routes(pub Vec<Route>);

/// A route that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route {route:?}: {reason}")]
pub struct RouteError {
    /// The route as written (credentials redacted).
    pub route: String,
    /// What is wrong.
    pub reason: String,
}

impl Routes {
    /// Parses the string form (see the type's docs).
    pub fn parse(text: &str) -> Result<Routes, RouteError> {
        let mut routes = Vec::new();
        for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let shown = gomodproxy_redact::text(item);
            let error = |reason: String| RouteError {
                route: shown.clone(),
                reason,
            };
            let (patterns, chain) = item
                .split_once('=')
                .ok_or_else(|| error("want PATTERNS=UPSTREAM".to_string()))?;
            let modules = ModulePatterns::parse(patterns).map_err(|e| error(e.to_string()))?;
            if modules.is_empty() {
                return Err(error("no module pattern".to_string()));
            }
            let upstream = UpstreamChain::parse(chain).map_err(|e| error(e.to_string()))?;
            routes.push(Route {
                modules,
                upstream,
                private: true,
            });
        }
        Ok(Routes(routes))
    }

    /// The first route whose patterns match `module`.
    pub fn route_for(&self, module: &str) -> Option<&Route> {
        self.0.iter().find(|r| r.modules.matches(module))
    }

    /// The patterns of the private routes, in order: with `private`, the modules exempt from
    /// checksum-database verification and lookups — in serving, and in `gomodproxy import`.
    pub fn private_globs(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(|r| r.private)
            .flat_map(|r| r.modules.globs().iter().map(String::as_str))
    }

    /// Whether `module` matches the patterns of a private route (any, not only the first route
    /// that matches: a name a private route claims never reaches a checksum database, even if
    /// an earlier route fetches it).
    pub fn is_private(&self, module: &str) -> bool {
        self.0
            .iter()
            .any(|r| r.private && r.modules.matches(module))
    }

    /// Whether any route fetches with `direct`.
    pub fn use_direct(&self) -> bool {
        self.0.iter().any(|r| r.upstream.uses_direct())
    }
}

impl fmt::Display for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self
            .0
            .iter()
            .map(|r| format!("{}={}", r.modules, r.upstream))
            .collect();
        f.write_str(&shown.join(";"))
    }
}

impl<'de> serde::Deserialize<'de> for Routes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Tables(Vec<Route>),
        }
        match Form::deserialize(deserializer)? {
            Form::Text(text) => Routes::parse(&text).map_err(serde::de::Error::custom),
            Form::Tables(routes) => Ok(Routes(routes)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_string_form() {
        let routes = Routes::parse(
            "*.corp.example.com=direct; github.com/acme,github.com/acme2=https://u:pw@artifactory.corp/go,direct",
        )
        .unwrap();
        assert_eq!(routes.0.len(), 2);
        assert!(routes.0.iter().all(|r| r.private));
        let r = routes.route_for("github.com/acme2/x").unwrap();
        assert!(r.upstream.uses_direct());
        assert!(routes.route_for("github.com/other/x").is_none());
        assert!(routes.use_direct());
        assert_eq!(
            routes.private_globs().collect::<Vec<_>>(),
            ["*.corp.example.com", "github.com/acme", "github.com/acme2"]
        );
        assert!(!routes.to_string().contains("pw@"), "{routes}");
        for bad in ["nopatterns", "=direct", "a.example=ftp://x", "a[=direct"] {
            assert!(Routes::parse(bad).is_err(), "{bad}");
        }
        let err = Routes::parse("a.example=ftp://u:hunter2@x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn tables_and_strings_deserialize() {
        #[derive(serde::Deserialize)]
        struct C {
            routes: Routes,
        }
        let c: C = toml::from_str(
            r#"
            [[routes]]
            modules = ["*.corp.example.com"]
            upstream = "direct"
            [[routes]]
            modules = "github.com/acme"
            upstream = "https://proxy.example"
            private = false
            "#,
        )
        .unwrap();
        assert_eq!(c.routes.0.len(), 2);
        assert!(c.routes.0[0].private && !c.routes.0[1].private);
        assert_eq!(
            c.routes.private_globs().collect::<Vec<_>>(),
            ["*.corp.example.com"]
        );
        assert!(c.routes.is_private("git.corp.example.com/x"));
        assert!(!c.routes.is_private("github.com/acme/x"));
        // A private route's names stay private even where an earlier route fetches them.
        let shadowed =
            Routes::parse("github.com/acme/pub=https://proxy.example;github.com/acme=direct")
                .unwrap();
        let mut shadowed = shadowed;
        shadowed.0[0].private = false;
        assert!(!shadowed.route_for("github.com/acme/pub/x").unwrap().private);
        assert!(shadowed.is_private("github.com/acme/pub/x"));
        let c: C = toml::from_str(r#"routes = "x.example=direct""#).unwrap();
        assert_eq!(c.routes.0.len(), 1);
        assert!(
            toml::from_str::<C>("[[routes]]\nmodules = \"x\"\nupstream = \"direct\"\nextra = 1\n")
                .is_err()
        );
    }
}
