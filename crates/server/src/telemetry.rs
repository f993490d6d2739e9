//! Log output: human-readable or JSON lines on stderr, filtered by `RUST_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global tracing subscriber. `rust_log` (the `RUST_LOG` value, passed
/// in by `main`) overrides the default `info` level. Logs go to stderr, keeping stdout for what scripts read (the bound address,
/// a generated token). Call once, from `main`.
///
/// # Errors
/// A subscriber is already installed, or `RUST_LOG` does not parse.
pub fn init(format: LogFormat, rust_log: Option<&str>) -> anyhow::Result<()> {
    let filter = match rust_log {
        Some(directives) => {
            EnvFilter::try_new(directives).map_err(|e| anyhow::anyhow!("invalid RUST_LOG {directives:?}: {e}"))?
        }
        None => EnvFilter::new("info"),
    };
    // Colours only for a terminal, not for files and log collectors.
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let result = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}
