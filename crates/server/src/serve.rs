//! `gomodproxy serve`: store, service, HTTP server, graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpServer;
use anyhow::Context;
use gomodproxy_service::ProxyService;
use gomodproxy_service::prewarm::prewarm;
use gomodproxy_tls::ListenerTls;

use crate::access::AccessLayer;
use crate::backend;
use crate::config::Config;
use crate::http::{AppState, app};
use crate::metrics::Metrics;

/// Opens the store (and probes it), builds the service, and serves until SIGTERM or SIGINT;
/// then stops accepting and lets in-flight requests finish for up to `shutdown_timeout`.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let access = Arc::new(AccessLayer::new(&config).context("access configuration")?);
    let tls = match config.tls.enabled() {
        true => Some(Arc::new(
            ListenerTls::load(&config.tls).context("TLS listener (tls.cert_file, tls.key_file)")?,
        )),
        false => None,
    };
    let store = backend::open(&config.storage, &config.cache).await?;
    let mut service_config = config.runtime_service_config()?;
    service_config.fetch_lock = backend::fetch_lock(&config.coordination).await?;
    service_config.private_names = Some(access.private_names());
    let service = ProxyService::new(store.storage.clone(), service_config).map_err(|e| {
        anyhow::anyhow!("invalid `upstream` {:?}: {e}", config.upstream.to_string())
    })?;
    let state = AppState::new(service.clone(), config.list_ttl)
        .with_store(store)
        .with_access(access.clone());
    // The watchers reload on file changes while they live: as long as the server runs.
    let _access_watchers = access
        .watch()
        .context("cannot watch the credential files")?;
    let _tls_watcher = match &tls {
        Some(tls) => tls.watch().context("cannot watch the TLS files")?,
        None => None,
    };
    reload_on_sighup(access.clone(), tls.clone());
    start_background_prewarm(
        &config,
        service.clone(),
        access.policy().clone(),
        state.metrics(),
    );
    crate::prewarm::start_refresh_schedule(
        &config,
        service,
        access.policy().clone(),
        state.metrics(),
    );

    let workers = match config.workers {
        0 => std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1),
        n => n,
    };
    let fd_limit = raise_fd_limit();
    let max_connections = connection_budget(config.max_connections, fd_limit, &config);
    let per_worker = max_connections.div_ceil(workers).max(1);
    let server = HttpServer::new(move || app(state.clone()))
        .workers(workers)
        .max_connections(per_worker)
        .shutdown_timeout(whole_seconds(config.shutdown_timeout))
        .shutdown_signal(shutdown_signal());
    let server = match (&tls, config.tls.listen) {
        (None, _) => server
            .bind(config.listen)
            .with_context(|| format!("cannot listen on `listen` = {}", config.listen))?,
        (Some(tls), None) => server
            .bind_rustls_0_23(config.listen, tls.server_config())
            .with_context(|| format!("cannot listen on `listen` = {}", config.listen))?,
        (Some(tls), Some(https)) => server
            .bind(config.listen)
            .with_context(|| format!("cannot listen on `listen` = {}", config.listen))?
            .bind_rustls_0_23(https, tls.server_config())
            .with_context(|| format!("cannot listen on `tls.listen` = {https}"))?,
    };

    let addresses: Vec<String> = server.addrs().iter().map(ToString::to_string).collect();
    tracing::info!(
        listen = %addresses.join(","),
        mode = %config.mode,
        tls = tls.as_ref().map(|t| t.current().fingerprint).unwrap_or_else(|| "off".into()),
        https = %config.tls.listen.map_or_else(String::new, |a| a.to_string()),
        auth = access.control().enabled(),
        storage = %backend::describe(&config.storage),
        upstream = %config.upstream,
        workers,
        max_connections,
        fd_limit,
        "gomodproxy listening on {}",
        addresses.join(",")
    );
    server.run().await.context("HTTP server failed")?;
    tracing::info!("gomodproxy stopped");
    Ok(())
}

/// Runs the configured `prewarm.items` in the background, reporting in the logs and metrics.
fn start_background_prewarm(
    config: &Config,
    service: ProxyService,
    policy: Arc<gomodproxy_access::Policy>,
    metrics: Arc<Metrics>,
) {
    if config.prewarm.items.is_empty() {
        return;
    }
    let request = crate::prewarm::Request::default();
    let options = match crate::prewarm::options(&request, config) {
        Ok(options) => options,
        Err(e) => {
            tracing::error!(target: "gomodproxy::prewarm", error = %format!("{e:#}"), "prewarm not started");
            return;
        }
    };
    let items = match crate::prewarm::items(&request, config, &options) {
        Ok(items) => items,
        Err(e) => {
            tracing::error!(target: "gomodproxy::prewarm", error = %e, "prewarm not started");
            return;
        }
    };
    tokio::spawn(async move {
        metrics.prewarm.set_running(true);
        tracing::info!(target: "gomodproxy::prewarm", items = items.len(), "background prewarm started");
        let started = std::time::Instant::now();
        let warmer = crate::access::PolicyWarmer::new(&service, policy);
        let report = prewarm(&warmer, &items, &options, &metrics.prewarm).await;
        metrics.prewarm.set_running(false);
        for (what, why) in &report.failures {
            tracing::warn!(target: "gomodproxy::prewarm", item = %what, error = %why, "prewarm failed");
        }
        tracing::info!(
            target: "gomodproxy::prewarm",
            targets = report.targets,
            fetched = report.fetched,
            already_stored = report.already_stored,
            failed = report.failures.len(),
            bytes = report.bytes_fetched,
            sumdb_records = report.sumdb_records,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "background prewarm finished"
        );
    });
}

/// On SIGHUP, reloads the credential files, the policy and the certificate; what fails to load
/// is logged and the previous state stays.
fn reload_on_sighup(access: Arc<AccessLayer>, tls: Option<Arc<ListenerTls>>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(hup) => hup,
            Err(e) => {
                tracing::warn!("cannot listen for SIGHUP ({e}); files reload when they change");
                return;
            }
        };
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP received; reloading credentials, policy and certificate");
                let access = access.clone();
                let tls = tls.clone();
                // File reads and parsing: off the async workers.
                let _ = tokio::task::spawn_blocking(move || {
                    access.reload();
                    if let Some(tls) = tls {
                        match tls.reload() {
                            Ok(cert) => tracing::info!(
                                fingerprint = %cert.fingerprint,
                                chain = cert.chain_len,
                                "TLS certificate reloaded"
                            ),
                            Err(e) => tracing::error!(
                                error = %e,
                                "TLS certificate not reloaded; the previous one stays"
                            ),
                        }
                    }
                })
                .await;
            }
        });
    }
}

/// Raises the soft limit of open files to the hard limit (the usual service setup) and
/// returns the soft limit now in force.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// How many client connections the server holds at once: `max_connections` if set, else what
/// the open-file limit leaves after the descriptors upstream fetches, spool files, the store
/// and the runtime need. Connections beyond it wait in the listen backlog instead of taking
/// the descriptors a healthy request needs (`accept` failing with EMFILE).
fn connection_budget(configured: usize, fd_limit: u64, config: &Config) -> usize {
    if configured > 0 {
        return configured;
    }
    // Each upstream fetch may hold a socket and a spool file; the store, logs and the runtime
    // take some more.
    let reserved = 2 * config.fetch.max_concurrent as u64 + 128;
    let available = fd_limit.saturating_sub(reserved);
    (available as usize).max(16)
}

/// actix takes whole seconds; round up so that a sub-second timeout is not zero.
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Resolves on the first SIGTERM or SIGINT. Both mean a graceful stop here (actix's own
/// handling stops at once on SIGINT).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received; finishing in-flight requests"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received; finishing in-flight requests"),
                }
                return;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM ({e}); only SIGINT stops the server")
            }
        }
    }
    if tokio::signal::ctrl_c().await.is_ok() {
        tracing::info!("SIGINT received; finishing in-flight requests");
    } else {
        // Without any signal handling, never resolve: the process is stopped by other means.
        std::future::pending::<()>().await;
    }
}
