//! Process metrics in the Prometheus text format, at `/metrics`.
//!
//! A handful of counters and gauges kept with atomics and one small map, rendered on request;
//! no registry library, because the set is small and fixed: HTTP requests by route and status,
//! the memory cache, upstream fetches, security refusals, and the background prewarm.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use gomodproxy_service::ServiceStats;
use gomodproxy_service::prewarm::{Outcome, TargetDone};
use gomodproxy_service::progress::Progress;
use gomodproxy_storage::cache::CacheStats;

/// Every metric the server keeps.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests by (route, status).
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// The background prewarm.
    pub prewarm: PrewarmMetrics,
}

/// Figures of the background prewarm.
#[derive(Debug, Default)]
pub struct PrewarmMetrics {
    running: AtomicU64,
    targets: AtomicU64,
    done: AtomicU64,
    fetched: AtomicU64,
    already: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
}

impl PrewarmMetrics {
    /// Marks a run as started or finished.
    pub fn set_running(&self, running: bool) {
        self.running.store(u64::from(running), Ordering::Relaxed);
    }
}

impl Progress<TargetDone> for PrewarmMetrics {
    fn phase(&self, name: &str, total: Option<u64>, _bytes: Option<u64>) {
        tracing::info!(target: "gomodproxy::prewarm", phase = name, total, "prewarm phase");
        if name == "fetching" {
            self.targets.store(total.unwrap_or(0), Ordering::Relaxed);
        }
    }

    fn step(&self, done: &TargetDone, _bytes: u64) {
        let target = &done.target;
        self.done.fetch_add(1, Ordering::Relaxed);
        match &done.outcome {
            Outcome::AlreadyStored => {
                self.already.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(target: "gomodproxy::prewarm", module = %target, "already stored");
            }
            Outcome::Fetched { artifacts, bytes } => {
                self.fetched.fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_add(*bytes, Ordering::Relaxed);
                tracing::info!(target: "gomodproxy::prewarm", module = %target, artifacts, bytes, "prewarmed");
            }
            Outcome::Failed(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target: "gomodproxy::prewarm", module = %target, error = %e, "prewarm failed");
            }
        }
    }
}

/// The route label of a request path.
pub fn route_of(path: &str) -> &'static str {
    if path.starts_with("/sumdb/") {
        "sumdb"
    } else if path.ends_with("/@v/list") {
        "list"
    } else if path.ends_with("/@latest") {
        "latest"
    } else if path.ends_with(".info") {
        "info"
    } else if path.ends_with(".mod") {
        "mod"
    } else if path.ends_with(".zip") {
        "zip"
    } else if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        "admin"
    } else {
        "other"
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, route: &'static str, status: u16) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((route, status))
            .or_default() += 1;
    }

    /// The text exposition.
    pub fn render(&self, service: &ServiceStats, cache: Option<CacheStats>) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let requests: Vec<(String, u64)> = self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((route, status), n)| (format!("{{route=\"{route}\",status=\"{status}\"}}"), *n))
            .collect();
        metric(
            "gomodproxy_http_requests_total",
            "counter",
            "HTTP requests answered, by route and status.",
            &requests,
        );
        metric(
            "gomodproxy_upstream_fetches_total",
            "counter",
            "Objects fetched from upstream and stored (cache misses filled).",
            &[(String::new(), service.upstream_fetches)],
        );
        metric(
            "gomodproxy_upstream_bytes_total",
            "counter",
            "Bytes of the objects fetched from upstream and stored.",
            &[(String::new(), service.upstream_bytes)],
        );
        metric(
            "gomodproxy_security_refusals_total",
            "counter",
            "Upstream answers refused because they failed checksum-database verification.",
            &[(String::new(), service.security_refusals)],
        );
        let limits = &service.fetch_limits;
        metric(
            "gomodproxy_upstream_requests_in_flight",
            "gauge",
            "Upstream requests running now.",
            &[(String::new(), limits.in_flight)],
        );
        metric(
            "gomodproxy_upstream_requests_queued",
            "gauge",
            "Requests waiting for an upstream slot now.",
            &[(String::new(), limits.queued)],
        );
        metric(
            "gomodproxy_upstream_requests_rejected_total",
            "counter",
            "Requests refused with 503 because upstream fetching was at its limits.",
            &[(String::new(), limits.rejected)],
        );
        metric(
            "gomodproxy_spool_bytes",
            "gauge",
            "Bytes of zips being received (spooled, not yet stored).",
            &[(String::new(), service.spool_bytes)],
        );
        if let Some(d) = &service.direct {
            metric(
                "gomodproxy_direct_moved_tags_total",
                "counter",
                "Tags found moved upstream since they were served (the first commit keeps being served).",
                &[(String::new(), d.moved_tags)],
            );
            metric(
                "gomodproxy_direct_deleted_tags_total",
                "counter",
                "Tags found deleted upstream since they were served (they keep being served).",
                &[(String::new(), d.deleted_tags)],
            );
            metric(
                "gomodproxy_direct_git_operations_total",
                "counter",
                "git operations against repositories, by kind.",
                &[
                    ("{op=\"ls-remote\"}".to_string(), d.ls_remotes),
                    ("{op=\"fetch\"}".to_string(), d.fetches),
                    ("{op=\"full-fetch\"}".to_string(), d.full_fetches),
                    ("{op=\"probe\"}".to_string(), d.probes),
                    ("{op=\"zip\"}".to_string(), d.zips),
                ],
            );
            metric(
                "gomodproxy_direct_git_processes",
                "gauge",
                "git processes running now.",
                &[(String::new(), d.git_processes)],
            );
            metric(
                "gomodproxy_direct_go_get_requests_total",
                "counter",
                "go-get discovery requests (`?go-get=1`).",
                &[(String::new(), d.go_get_requests)],
            );
            metric(
                "gomodproxy_direct_pruned_mirrors_total",
                "counter",
                "Mirrors deleted after going unused for direct.prune_after.",
                &[(String::new(), d.pruned_mirrors)],
            );
        }
        if let Some(c) = cache {
            metric(
                "gomodproxy_memory_cache_hits_total",
                "counter",
                "Reads answered by the memory cache.",
                &[(String::new(), c.hits)],
            );
            metric(
                "gomodproxy_memory_cache_misses_total",
                "counter",
                "Reads of cacheable objects that went to the store.",
                &[(String::new(), c.misses)],
            );
            metric(
                "gomodproxy_memory_cache_entries",
                "gauge",
                "Objects in the memory cache.",
                &[(String::new(), c.entries)],
            );
            metric(
                "gomodproxy_memory_cache_bytes",
                "gauge",
                "Bytes charged to the memory cache.",
                &[(String::new(), c.bytes)],
            );
        }
        let p = &self.prewarm;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        metric(
            "gomodproxy_prewarm_running",
            "gauge",
            "1 while the background prewarm runs.",
            &[(String::new(), load(&p.running))],
        );
        metric(
            "gomodproxy_prewarm_targets",
            "gauge",
            "Module versions the background prewarm planned.",
            &[(String::new(), load(&p.targets))],
        );
        metric(
            "gomodproxy_prewarm_targets_done_total",
            "counter",
            "Module versions the background prewarm finished, by result.",
            &[
                ("{result=\"fetched\"}".to_string(), load(&p.fetched)),
                ("{result=\"already_stored\"}".to_string(), load(&p.already)),
                ("{result=\"failed\"}".to_string(), load(&p.failed)),
            ],
        );
        metric(
            "gomodproxy_prewarm_bytes_total",
            "counter",
            "Bytes the background prewarm fetched.",
            &[(String::new(), load(&p.bytes))],
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route_of("/example.com/m/@v/list"), "list");
        assert_eq!(route_of("/example.com/m/@v/v1.0.0.zip"), "zip");
        assert_eq!(route_of("/sumdb/sum.golang.org/latest"), "sumdb");
        assert_eq!(route_of("/example.com/m/@latest"), "latest");
        assert_eq!(route_of("/metrics"), "admin");
    }
}
