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

/// Where the configuration file is.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}
