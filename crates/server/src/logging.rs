//! Log setup: `tracing` to stderr, as text or JSON lines.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. The filter is `RUST_LOG` when that is set (the usual
/// override for debugging), otherwise `log.level`.
pub fn init(config: &LogConfig) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec)
            .map_err(|e| anyhow::anyhow!("invalid RUST_LOG {spec:?}: {e}"))?,
        _ => EnvFilter::try_new(&config.level)
            .map_err(|e| anyhow::anyhow!("invalid `log.level` {:?}: {e}", config.level))?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}
