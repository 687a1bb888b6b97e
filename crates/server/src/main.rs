//! The `gomodproxy` binary: parses the command line, loads the configuration and runs the
//! subcommand. Errors are printed as one line (the whole cause chain) with a non-zero exit:
//! 2 for configuration errors, 1 for everything else.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use gomodproxy::cli::{
    Cli, Command, ConfigCommand, ExportArgs, ImportArgs, PrewarmArgs, VerifyArgs,
};
use gomodproxy::config::{Config, ConfigError, env_vars};

fn main() -> ExitCode {
    return_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args.config.as_deref()),
        Command::Prewarm(args) => prewarm(args),
        Command::Config(ConfigCommand::Check(args)) => config_check(args.config.as_deref()),
        Command::Export(args) => export(args),
        Command::Import(args) => import(args),
        Command::Verify(args) => verify(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The one place errors leave the binary: whatever a library quoted (a URL with a
            // password, a Redis URL with `?pass=`), the credentials stop here.
            eprintln!(
                "gomodproxy: error: {}",
                gomodproxy_redact::text(&format!("{err:#}"))
            );
            if err.downcast_ref::<ConfigError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
    Config::load(file, env_vars(std::env::vars_os())?)
}

fn config_check(file: Option<&Path>) -> anyhow::Result<()> {
    let config = load(file)?;
    print!("{}", config.to_toml_redacted()?);
    Ok(())
}

fn prewarm(args: PrewarmArgs) -> anyhow::Result<()> {
    let config = load(args.config.as_deref())?;
    // Progress and the summary are the output; the service's per-fetch info lines would drown
    // them. `log.level` or RUST_LOG set to anything else still wins.
    let mut log = config.log.clone();
    if log.level == "info" {
        log.level = "warn".to_string();
    }
    gomodproxy::logging::init(&log)?;
    let request = gomodproxy::prewarm::Request {
        items: args.items,
        files: args.files,
        toolchains: args.toolchain,
        platforms: args.platform,
        server: args.server,
        concurrency: args.concurrency,
        retries: args.retries,
        known_trees: args.sumdb_known_trees,
        refresh: args.refresh,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    if runtime.block_on(gomodproxy::prewarm::run(request, config))? {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "prewarm failed for some items (listed above)"
        ))
    }
}

fn serve(file: Option<&Path>) -> anyhow::Result<()> {
    let config = load(file)?;
    gomodproxy::logging::init(&config.log)?;
    actix_web::rt::System::new().block_on(gomodproxy::serve::serve(config))
}

/// Loads the configuration and sets up logging for a command whose output is a progress bar
/// and a summary (the per-object info lines of the libraries would drown them).
fn quiet(file: Option<&Path>) -> anyhow::Result<Config> {
    let config = load(file)?;
    let mut log = config.log.clone();
    if log.level == "info" {
        log.level = "warn".to_string();
    }
    gomodproxy::logging::init(&log)?;
    Ok(config)
}

fn export(args: ExportArgs) -> anyhow::Result<()> {
    let config = quiet(args.config.as_deref())?;
    let request = gomodproxy::transfer::ExportRequest {
        file: args.file,
        modules: args.modules,
        go_sums: args.go_sums,
        sumdb: !args.no_sumdb,
        since: args.since,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    if runtime.block_on(gomodproxy::transfer::export(request, config))? {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "the bundle is incomplete: the store lacks objects it needs (listed above)"
        ))
    }
}

fn import(args: ImportArgs) -> anyhow::Result<()> {
    let config = quiet(args.config.as_deref())?;
    let runtime = tokio::runtime::Runtime::new()?;
    if runtime.block_on(gomodproxy::transfer::import(&args.source, config))? {
        Ok(())
    } else {
        Err(anyhow::anyhow!("some objects were refused (listed above)"))
    }
}

fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let config = quiet(args.config.as_deref())?;
    let runtime = tokio::runtime::Runtime::new()?;
    if runtime.block_on(gomodproxy::transfer::verify(args.modules, config))? {
        Ok(())
    } else {
        Err(anyhow::anyhow!("the store has problems (listed above)"))
    }
}

/// glibc keeps memory freed by a blocking thread in that thread's own arena, so after a few
/// large zip checks the process stays at their peak. Allocations of 128 KiB and more are made
/// with mmap instead, and go back to the system when freed (measured: 6 checks of 1M-entry zips
/// at once leave 17 MiB resident instead of 181 MiB, with 1 MiB). 128 KiB, not 1 MiB, so that
/// the deflate state a direct-mode zip build allocates for every file (about 370 KB, zlib-rs)
/// is not carved from the arena between the build's long-lived small allocations: the peak RSS
/// while one zip of 20,000 files is built (tests/direct/rss_zip.py) stays within 32-57 MiB
/// instead of 32-107 MiB, same build time.
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called once, before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}
