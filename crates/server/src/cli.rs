//! Command line (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A caching Go module proxy (GOPROXY protocol).
///
/// Settings come from built-in defaults, then the TOML file given with --config, then
/// GOMODPROXY_* environment variables (`__` separates nested keys, e.g.
/// GOMODPROXY_STORAGE__FS__ROOT).
#[derive(Debug, Parser)]
#[command(name = "gomodproxy", version, arg_required_else_help = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy server.
    Serve(ConfigArgs),
    /// Fetch modules ahead of time into the store, for offline use.
    Prewarm(PrewarmArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration as TOML (exit 0), or the error naming the bad key
    /// (exit 2).
    Check(ConfigArgs),
}

/// `prewarm` arguments.
#[derive(Debug, Args)]
pub struct PrewarmArgs {
    /// TOML configuration file (the same as `serve`'s: store, upstream, checksum database).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to fetch: module@version, module@latest, go.mod:PATH, go.sum:PATH (or a path ending
    /// in go.mod / go.sum), toolchain:go1.X.Y[@GOOS/GOARCH]. Without any, the configuration's
    /// prewarm.items.
    #[arg(value_name = "ITEM")]
    pub items: Vec<String>,
    /// A file of items, one per line (`#` comments). Repeatable.
    #[arg(long = "file", short = 'f', value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// A Go toolchain to fetch (go1.22.1), for each --platform. Repeatable.
    #[arg(long, value_name = "GOVERSION")]
    pub toolchain: Vec<String>,
    /// GOOS/GOARCH of --toolchain (default: this machine's). Repeatable.
    #[arg(long, value_name = "GOOS/GOARCH")]
    pub platform: Vec<String>,
    /// Module versions fetched at once (default: prewarm.concurrency).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Retries after a transient failure (default: prewarm.retries).
    #[arg(long)]
    pub retries: Option<u32>,
    /// Prewarm through the gomodproxy running at this URL instead of opening the store (a
    /// running server holds a sled store locked).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
}

/// Where the configuration file is.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}
