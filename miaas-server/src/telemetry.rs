//! Logging set-up, in one place.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::error::ServerError;

/// Installs the global subscriber with `filter` (a level or tracing directives).
/// A second call keeps the first subscriber.
pub fn init(filter: &str, format: LogFormat) -> Result<(), ServerError> {
    let filter = EnvFilter::try_new(filter.to_ascii_lowercase())
        .map_err(|err| ServerError::Config(format!("LOG_LEVEL {filter:?}: {err}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(std::io::stderr);
    // Err only when a subscriber is already installed, which is fine.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    Ok(())
}
