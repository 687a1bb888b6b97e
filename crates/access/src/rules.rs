//! Access rules by module pattern: who may read which module.
//!
//! Each rule has GOPRIVATE-style patterns (`gomod::glob`: a pattern matches a prefix of whole
//! path elements, `*` within one element) and grants access to anyone (`anonymous`), to any
//! valid identity (`authenticated`), to named users or tokens, and to group members.
//!
//! **Precedence: the most specific matching pattern wins.** A pattern with more path elements
//! is more specific (`github.com/acme/secret` over `github.com/acme` over `github.com`); with
//! equal elements, the one with more elements free of wildcards (`github.com/acme/secret` over
//! `github.com/acme/*`); with equal patterns, the rule written first. Only the winning rule
//! counts: a narrower rule can both open (`anonymous = true` for one public repository under a
//! private host) and close (`groups = ["release"]` for one repository under a `dev` host) what
//! a broader one says. A module no rule matches takes `access.default`.
//!
//! The decision depends only on the identity and the module path, never on what the store
//! holds, so an answer cannot tell a client whether a private module exists.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use crate::AccessError;
use crate::authenticator::Authentication;
use crate::config::{AccessConfig, AccessRuleConfig, DefaultAccess};
use crate::credentials::{Identity, valid_name};

/// What the HTTP layer does with a request, from its credentials and the module it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Serve it.
    Allow,
    /// 401 with the `WWW-Authenticate` challenge: credentials are missing or wrong.
    Unauthorized {
        /// One line for the answer's body (the go command prints it).
        reason: String,
    },
    /// 403: the identity is valid but may not read this module.
    Forbidden {
        /// One line for the answer's body.
        reason: String,
    },
    /// 429 with `Retry-After`: too many failed attempts from this address.
    RateLimited {
        /// When to try again.
        retry_after: Duration,
    },
}

impl Decision {
    /// The decision where no module is named (so no rule applies): a valid identity is
    /// admitted, an anonymous client if `anonymous_allowed`; wrong credentials get 401 and a
    /// limited address 429.
    pub fn without_module(who: &Authentication, anonymous_allowed: bool) -> Decision {
        match who {
            Authentication::Authenticated(_) => Decision::Allow,
            Authentication::Anonymous if anonymous_allowed => Decision::Allow,
            Authentication::Anonymous => Decision::Unauthorized {
                reason: "authentication required".into(),
            },
            Authentication::Failed(failure) => Decision::Unauthorized {
                reason: failure.to_string(),
            },
            Authentication::RateLimited { retry_after } => Decision::RateLimited {
                retry_after: *retry_after,
            },
        }
    }
}

/// Who a rule (or the default) lets in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Grant {
    anonymous: bool,
    authenticated: bool,
    users: BTreeSet<String>,
    groups: BTreeSet<String>,
}

impl Grant {
    fn admits(&self, identity: Option<&Identity>) -> bool {
        if self.anonymous {
            return true;
        }
        let Some(identity) = identity else {
            return false;
        };
        self.authenticated
            || self.users.contains(identity.name())
            || identity.groups().any(|g| self.groups.contains(g))
    }

    fn needs_credentials(&self) -> bool {
        !self.anonymous && (self.authenticated || !self.users.is_empty() || !self.groups.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Specificity {
    elements: usize,
    literal_elements: usize,
}

#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    specificity: Specificity,
}

#[derive(Debug, Clone)]
struct Rule {
    patterns: Vec<Pattern>,
    grant: Grant,
}

/// The compiled `[access]` section.
#[derive(Debug, Clone)]
pub struct AccessRules {
    rules: Vec<Rule>,
    default: Grant,
}

/// Which rule decided for a module, for `config check`-style explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    /// `access.rules[index]`, through this pattern of its list.
    Rule {
        /// Index in `access.rules`.
        index: usize,
        /// Index of the pattern in the rule's comma-separated list.
        pattern: usize,
    },
    /// No rule matched: `access.default`.
    Default,
}

impl fmt::Display for Matched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matched::Rule { index, .. } => write!(f, "access.rules[{index}]"),
            Matched::Default => f.write_str("access.default"),
        }
    }
}

impl AccessRules {
    /// Compiles the rules. `auth_enabled` says whether a user or token file is configured:
    /// without one, a rule or default that needs credentials could never be met, which is a
    /// configuration error rather than a silent refusal of everything.
    pub fn new(cfg: &AccessConfig, auth_enabled: bool) -> Result<AccessRules, AccessError> {
        let default = match cfg.default.unwrap_or(if auth_enabled {
            DefaultAccess::Authenticated
        } else {
            DefaultAccess::Anonymous
        }) {
            DefaultAccess::Anonymous => Grant {
                anonymous: true,
                ..Grant::default()
            },
            DefaultAccess::Authenticated => Grant {
                authenticated: true,
                ..Grant::default()
            },
            DefaultAccess::Nobody => Grant::default(),
        };
        if default.needs_credentials() && !auth_enabled {
            return Err(AccessError::Config {
                key: "access.default".into(),
                reason: "\"authenticated\" needs auth.htpasswd_file or auth.tokens_file".into(),
            });
        }
        let rules = cfg
            .rules
            .iter()
            .enumerate()
            .map(|(i, rule)| compile(i, rule, auth_enabled))
            .collect::<Result<_, _>>()?;
        Ok(AccessRules { rules, default })
    }

    /// Which rule decides for `module`.
    pub fn matching(&self, module: &str) -> Matched {
        self.best(module)
            .map_or(Matched::Default, |(index, pattern, _)| Matched::Rule {
                index,
                pattern,
            })
    }

    fn best(&self, module: &str) -> Option<(usize, usize, &Rule)> {
        let mut best: Option<(Specificity, usize, usize)> = None;
        for (ri, rule) in self.rules.iter().enumerate() {
            for (pi, pattern) in rule.patterns.iter().enumerate() {
                if !gomod::glob::match_prefix_patterns(&pattern.text, module) {
                    continue;
                }
                // Strictly more specific wins; ties keep the earlier rule.
                if best.is_none_or(|(s, _, _)| pattern.specificity > s) {
                    best = Some((pattern.specificity, ri, pi));
                }
            }
        }
        best.map(|(_, ri, pi)| (ri, pi, &self.rules[ri]))
    }

    fn grant(&self, module: &str) -> &Grant {
        self.best(module)
            .map_or(&self.default, |(_, _, rule)| &rule.grant)
    }

    /// Reports whether anyone, without credentials, may read `module` (the server may then
    /// ask the public checksum database about it; for any other module it must not, since the
    /// lookup itself would leak the private name).
    pub fn is_public(&self, module: &str) -> bool {
        self.grant(module).anonymous
    }

    /// Reports whether the rule that decides for `module` is one of `access.rules` and does
    /// not admit anonymous clients: the operator named the module as restricted, so its name is
    /// private too and must never reach a public checksum database (neither as a lookup nor as
    /// the verification of a download). Modules that only fall under `access.default` are not
    /// private by this rule: a proxy that needs a login for everything still verifies public
    /// modules against the checksum database.
    pub fn keeps_private(&self, module: &str) -> bool {
        self.best(module)
            .is_some_and(|(_, _, rule)| !rule.grant.anonymous)
    }

    /// Reports whether an anonymous client may read at least one module (the default or some
    /// rule admits anonymous clients).
    pub fn admits_anonymous_somewhere(&self) -> bool {
        self.default.anonymous || self.rules.iter().any(|r| r.grant.anonymous)
    }

    /// The decision for a request that names no module: the checksum database's `supported`,
    /// `latest` and tiles, which hold only public data. Wrong credentials are refused and a
    /// limited address gets 429, as everywhere; a valid identity is admitted; an anonymous
    /// client is admitted when anonymous clients may read some module, and otherwise asked to
    /// authenticate (a proxy closed to anonymous clients serves them nothing).
    pub fn decide_unnamed(&self, who: &Authentication) -> Decision {
        Decision::without_module(who, self.admits_anonymous_somewhere())
    }

    /// The decision for an identity (`None`: anonymous) and a module path.
    pub fn decide_identity(&self, identity: Option<&Identity>, module: &str) -> Decision {
        if self.grant(module).admits(identity) {
            return Decision::Allow;
        }
        match identity {
            None => Decision::Unauthorized {
                reason: "authentication required".into(),
            },
            Some(identity) => Decision::Forbidden {
                reason: format!(
                    "{} {} may not read this module",
                    identity.kind().as_str(),
                    identity.name()
                ),
            },
        }
    }

    /// The decision for a request's authentication outcome and the module it names. Wrong
    /// credentials are refused whatever the module (the client learns its password is wrong
    /// rather than silently becoming anonymous).
    pub fn decide(&self, who: &Authentication, module: &str) -> Decision {
        match who {
            Authentication::Anonymous => self.decide_identity(None, module),
            Authentication::Authenticated(identity) => self.decide_identity(Some(identity), module),
            Authentication::Failed(failure) => Decision::Unauthorized {
                reason: failure.to_string(),
            },
            Authentication::RateLimited { retry_after } => Decision::RateLimited {
                retry_after: *retry_after,
            },
        }
    }
}

fn compile(index: usize, rule: &AccessRuleConfig, auth_enabled: bool) -> Result<Rule, AccessError> {
    let bad = |field: &str, reason: String| AccessError::Config {
        key: format!("access.rules[{index}].{field}"),
        reason,
    };
    let mut patterns = Vec::new();
    for text in rule.modules.split(',') {
        let text = text.trim();
        let text = text.strip_suffix('/').unwrap_or(text);
        if text.is_empty() {
            continue;
        }
        if gomod::glob::path_match(text, "").is_err()
            || text.starts_with('/')
            || text.contains("//")
        {
            return Err(bad("modules", format!("{text:?} is not a valid pattern")));
        }
        let elements: Vec<&str> = text.split('/').collect();
        let literal_elements = elements
            .iter()
            .filter(|e| !e.contains(['*', '?', '[', '\\']))
            .count();
        patterns.push(Pattern {
            text: text.to_string(),
            specificity: Specificity {
                elements: elements.len(),
                literal_elements,
            },
        });
    }
    if patterns.is_empty() {
        return Err(bad("modules", "needs at least one pattern".into()));
    }
    for name in rule.users.iter().chain(&rule.groups) {
        if !valid_name(name) {
            return Err(bad("users", format!("{name:?} is not a valid name")));
        }
    }
    let grant = Grant {
        anonymous: rule.anonymous,
        authenticated: rule.authenticated,
        users: rule.users.iter().cloned().collect(),
        groups: rule.groups.iter().cloned().collect(),
    };
    if grant.needs_credentials() && !auth_enabled {
        return Err(bad(
            "modules",
            "the rule admits users or groups but neither auth.htpasswd_file nor auth.tokens_file is set".into(),
        ));
    }
    Ok(Rule { patterns, grant })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::IdentityKind;

    fn rule(modules: &str) -> AccessRuleConfig {
        AccessRuleConfig {
            modules: modules.into(),
            ..Default::default()
        }
    }

    fn example() -> AccessRules {
        AccessRules::new(
            &AccessConfig {
                default: Some(DefaultAccess::Anonymous),
                rules: vec![
                    AccessRuleConfig {
                        groups: vec!["dev".into()],
                        ..rule("*.corp.example.com")
                    },
                    AccessRuleConfig {
                        groups: vec!["release".into()],
                        ..rule("github.com/acme/secret")
                    },
                    AccessRuleConfig {
                        authenticated: true,
                        ..rule("github.com/acme")
                    },
                    AccessRuleConfig {
                        anonymous: true,
                        ..rule("github.com/acme/public,github.com/acme/*/docs")
                    },
                    AccessRuleConfig {
                        users: vec!["ci-bot".into()],
                        ..rule("git.corp.example.com/tools/*")
                    },
                ],
            },
            true,
        )
        .unwrap()
    }

    fn user(name: &str, groups: &[&str]) -> Identity {
        Identity::new(name, IdentityKind::User, groups)
    }

    #[test]
    fn the_issue_example() {
        let r = example();
        let dev = user("dana", &["dev"]);
        let rel = user("rene", &["release"]);
        // Public modules (no rule matches): anonymous.
        assert_eq!(r.decide_identity(None, "golang.org/x/mod"), Decision::Allow);
        // *.corp.example.com for dev.
        assert!(matches!(
            r.decide_identity(None, "git.corp.example.com/lib"),
            Decision::Unauthorized { .. }
        ));
        assert_eq!(
            r.decide_identity(Some(&dev), "git.corp.example.com/lib"),
            Decision::Allow
        );
        assert!(matches!(
            r.decide_identity(Some(&rel), "git.corp.example.com/lib"),
            Decision::Forbidden { .. }
        ));
        // github.com/acme/secret for release only, even though github.com/acme admits any user.
        assert_eq!(
            r.decide_identity(Some(&rel), "github.com/acme/secret/v2"),
            Decision::Allow
        );
        assert!(matches!(
            r.decide_identity(Some(&dev), "github.com/acme/secret"),
            Decision::Forbidden { .. }
        ));
        assert_eq!(
            r.decide_identity(Some(&dev), "github.com/acme/other"),
            Decision::Allow
        );
        // A narrower anonymous rule opens one repository of a closed organisation.
        assert_eq!(
            r.decide_identity(None, "github.com/acme/public"),
            Decision::Allow
        );
        assert!(matches!(
            r.decide_identity(None, "github.com/acme/other"),
            Decision::Unauthorized { .. }
        ));
    }

    #[test]
    fn precedence_elements_then_literals_then_order() {
        let r = example();
        // git.corp.example.com/tools/x: "*.corp.example.com" (1 element) loses to
        // "git.corp.example.com/tools/*" (3 elements).
        assert_eq!(
            r.matching("git.corp.example.com/tools/x"),
            Matched::Rule {
                index: 4,
                pattern: 0
            }
        );
        assert_eq!(
            r.decide_identity(Some(&user("ci-bot", &[])), "git.corp.example.com/tools/x"),
            Decision::Allow
        );
        assert!(matches!(
            r.decide_identity(
                Some(&user("dana", &["dev"])),
                "git.corp.example.com/tools/x"
            ),
            Decision::Forbidden { .. }
        ));
        // github.com/acme/secret/docs: "github.com/acme/*/docs" (4 elements) beats
        // "github.com/acme/secret" (3).
        assert_eq!(
            r.matching("github.com/acme/secret/docs"),
            Matched::Rule {
                index: 3,
                pattern: 1
            }
        );
        // Equal element counts: the literal pattern beats the wildcard.
        let r2 = AccessRules::new(
            &AccessConfig {
                default: None,
                rules: vec![
                    AccessRuleConfig {
                        anonymous: true,
                        ..rule("github.com/acme/*")
                    },
                    AccessRuleConfig {
                        groups: vec!["x".into()],
                        ..rule("github.com/acme/secret")
                    },
                    AccessRuleConfig {
                        anonymous: true,
                        ..rule("github.com/acme/secret")
                    },
                ],
            },
            true,
        )
        .unwrap();
        assert_eq!(
            r2.matching("github.com/acme/secret"),
            Matched::Rule {
                index: 1,
                pattern: 0
            },
            "the literal pattern wins, and of two equal ones the first"
        );
        assert_eq!(
            r2.matching("github.com/acme/open"),
            Matched::Rule {
                index: 0,
                pattern: 0
            }
        );
        assert_eq!(r2.matching("example.com/m"), Matched::Default);
    }

    #[test]
    fn with_users_and_no_rules_everything_needs_a_valid_user() {
        let r = AccessRules::new(&AccessConfig::default(), true).unwrap();
        assert!(matches!(
            r.decide_identity(None, "golang.org/x/mod"),
            Decision::Unauthorized { .. }
        ));
        assert_eq!(
            r.decide_identity(Some(&user("a", &[])), "golang.org/x/mod"),
            Decision::Allow
        );
        assert!(!r.is_public("golang.org/x/mod"));
        // Without credentials configured, everything is open.
        let open = AccessRules::new(&AccessConfig::default(), false).unwrap();
        assert_eq!(
            open.decide_identity(None, "golang.org/x/mod"),
            Decision::Allow
        );
        assert!(open.is_public("golang.org/x/mod"));
    }

    #[test]
    fn failed_and_limited_credentials_are_refused_even_for_public_modules() {
        let r = example();
        assert_eq!(
            r.decide(
                &Authentication::Failed(crate::AuthFailure::InvalidPassword),
                "golang.org/x/mod"
            ),
            Decision::Unauthorized {
                reason: "invalid username or password".into()
            }
        );
        assert_eq!(
            r.decide(
                &Authentication::RateLimited {
                    retry_after: Duration::from_secs(3)
                },
                "golang.org/x/mod"
            ),
            Decision::RateLimited {
                retry_after: Duration::from_secs(3)
            }
        );
    }

    #[test]
    fn restricted_rules_keep_names_private_and_the_default_does_not() {
        let r = example();
        assert!(r.keeps_private("git.corp.example.com/lib"));
        assert!(r.keeps_private("github.com/acme/secret"));
        assert!(r.keeps_private("github.com/acme/other"));
        assert!(
            !r.keeps_private("github.com/acme/public"),
            "opened by a narrower rule"
        );
        assert!(
            !r.keeps_private("golang.org/x/mod"),
            "no rule: the default decides"
        );
        let closed = AccessRules::new(&AccessConfig::default(), true).unwrap();
        assert!(!closed.keeps_private("golang.org/x/mod"));
    }

    #[test]
    fn requests_naming_no_module() {
        let anonymous = Authentication::Anonymous;
        assert_eq!(example().decide_unnamed(&anonymous), Decision::Allow);
        let closed = AccessRules::new(&AccessConfig::default(), true).unwrap();
        assert!(matches!(
            closed.decide_unnamed(&anonymous),
            Decision::Unauthorized { .. }
        ));
        assert_eq!(
            closed.decide_unnamed(&Authentication::Authenticated(user("a", &[]))),
            Decision::Allow
        );
        assert!(matches!(
            example().decide_unnamed(&Authentication::Failed(crate::AuthFailure::InvalidToken)),
            Decision::Unauthorized { .. }
        ));
    }

    #[test]
    fn a_rule_naming_nobody_closes_its_modules() {
        let r = AccessRules::new(
            &AccessConfig {
                default: Some(DefaultAccess::Anonymous),
                rules: vec![rule("example.com/banned")],
            },
            false,
        )
        .unwrap();
        assert!(matches!(
            r.decide_identity(None, "example.com/banned"),
            Decision::Unauthorized { .. }
        ));
    }

    #[test]
    fn configuration_errors() {
        let cases = [
            (
                AccessConfig {
                    default: Some(DefaultAccess::Authenticated),
                    rules: vec![],
                },
                false,
                "access.default",
            ),
            (
                AccessConfig {
                    default: None,
                    rules: vec![AccessRuleConfig {
                        groups: vec!["dev".into()],
                        ..rule("x.com")
                    }],
                },
                false,
                "access.rules[0].modules",
            ),
            (
                AccessConfig {
                    default: None,
                    rules: vec![rule(" , ")],
                },
                true,
                "access.rules[0].modules",
            ),
            (
                AccessConfig {
                    default: None,
                    rules: vec![rule("x.com/[a")],
                },
                true,
                "access.rules[0].modules",
            ),
            (
                AccessConfig {
                    default: None,
                    rules: vec![AccessRuleConfig {
                        users: vec!["a b".into()],
                        ..rule("x.com")
                    }],
                },
                true,
                "access.rules[0].users",
            ),
        ];
        for (cfg, auth, key) in cases {
            match AccessRules::new(&cfg, auth) {
                Err(AccessError::Config { key: got, .. }) => assert_eq!(got, key, "{cfg:?}"),
                other => panic!("{cfg:?}: {other:?}"),
            }
        }
    }
}
