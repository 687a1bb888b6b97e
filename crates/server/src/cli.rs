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
    /// Write the store, or part of it, to one bundle file (tar + zstd) for an air-gapped proxy.
    Export(ExportArgs),
    /// Load a bundle, or a $GOMODCACHE/cache/download directory, into the store.
    ///
    /// Every object is validated before it is stored; exit 1 if anything was refused.
    Import(ImportArgs),
    /// Re-check the store's zips, go.mod files and checksum-database records.
    ///
    /// Every zip against its .ziphash and the checksum database, every go.mod, every cached
    /// checksum-database record and tile. Exit 1 on any problem.
    Verify(VerifyArgs),
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
    /// A go command `latest` note ($GOPATH/pkg/sumdb/sum.golang.org/latest) of a machine that
    /// will use this proxy: checked with the database's key, proven against the sealed tree,
    /// and remembered for every later seal. Repeatable; also prewarm.sumdb_known_trees.
    #[arg(long = "sumdb-known-tree", value_name = "FILE")]
    pub sumdb_known_trees: Vec<PathBuf>,
    /// Keep the store current instead: ask upstream again for the @v/list and @latest of every
    /// stored module (or of the modules given as ITEMs / in --file) and fetch their new
    /// releases, then seal.
    #[arg(long)]
    pub refresh: bool,
}

/// Where the configuration file is.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `export` arguments.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The bundle to write (`-` for standard output). Written to a temporary file beside it
    /// and renamed into place when complete.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// TOML configuration file (the store to export).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only modules matching these GOPRIVATE-style patterns (comma-separated or repeated).
    #[arg(long = "module", value_name = "PATTERN")]
    pub modules: Vec<String>,
    /// Only the module versions of this go.sum (a `/go.mod` line: its .mod; any other line: its
    /// .info, .mod, .zip and .ziphash). Repeatable; combined with --module as a union.
    #[arg(long = "go-sum", value_name = "PATH")]
    pub go_sums: Vec<PathBuf>,
    /// Leave out the checksum database (tree heads, lookups, tiles).
    #[arg(long)]
    pub no_sumdb: bool,
    /// An incremental bundle: only what is new since this earlier bundle (the bundle file, or
    /// the <bundle>.manifest.json export writes beside it), plus the tiles that prove its tree
    /// against the new one. Importing it needs that bundle imported first.
    #[arg(long, value_name = "BUNDLE|MANIFEST")]
    pub since: Option<PathBuf>,
}

/// `import` arguments.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A bundle file (`-` for standard input), or a directory in GOPROXY layout such as
    /// $GOMODCACHE/cache/download.
    #[arg(value_name = "FILE|DIR")]
    pub source: PathBuf,
    /// TOML configuration file (the store to import into; sumdb.databases holds the keys the
    /// checksum-database objects are checked with).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `verify` arguments.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// TOML configuration file (the store to verify).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only modules matching these GOPRIVATE-style patterns (comma-separated or repeated).
    #[arg(long = "module", value_name = "PATTERN")]
    pub modules: Vec<String>,
}
