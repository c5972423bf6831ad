//! Server configuration: flags with environment fallbacks, shared by `miaas-server`
//! and `miaas serve`.

use std::time::Duration;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything the server needs to start.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerConfig {
    /// Address to listen on.
    #[arg(long, env = "MIAAS_HOST", default_value = "0.0.0.0")]
    pub host: String,

    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "MIAAS_PORT", default_value_t = 8080)]
    pub port: u16,

    /// Database URL: `sqlite://control_plane.db`, `sqlite:///./control_plane.db`
    /// (SQLAlchemy form), `sqlite::memory:`, or a file path. Created on first run.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://control_plane.db"
    )]
    pub database_url: String,

    /// Log filter: a level (`info`, `debug`, ...) or tracing directives
    /// (`miaas_server=debug,tower_http=info`).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Log line format.
    #[arg(long, env = "MIAAS_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Allowed CORS origins: `*` or a comma-separated list of origins.
    #[arg(long, env = "CORS_ORIGINS", default_value = "*")]
    pub cors_origins: String,

    /// A node not heard from for this long is `offline` (e.g. `30s`, `2m`, or seconds).
    #[arg(long, env = "MIAAS_HEARTBEAT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub heartbeat_timeout: Duration,

    /// URL handed to nodes as `control_plane_url` [default: http://<host>:<port>,
    /// with `localhost` for an unspecified host].
    #[arg(long, env = "MIAAS_PUBLIC_URL")]
    pub public_url: Option<String>,
}

impl ServerConfig {
    /// The configuration with every default, on `database_url`.
    pub fn with_database(database_url: impl Into<String>) -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: 8080,
            database_url: database_url.into(),
            log_level: "info".into(),
            log_format: LogFormat::Text,
            cors_origins: "*".into(),
            heartbeat_timeout: Duration::from_secs(30),
            public_url: None,
        }
    }
}

/// Parses `30s`, `2m`, `1h 30m` (humantime) or a plain number of seconds; never zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => Duration::from_secs_f64(seconds),
        Ok(_) => return Err(format!("{text:?} is not a positive duration")),
        Err(_) => humantime::parse_duration(text).map_err(|err| format!("{text:?}: {err}"))?,
    };
    if duration.is_zero() {
        return Err("the duration must be greater than zero".into());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_units_and_plain_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-3").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
