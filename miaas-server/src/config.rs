//! Server configuration: flags with environment fallbacks, shared by `miaas-server`
//! and `miaas serve`.

use std::path::PathBuf;
use std::time::Duration;

use miaas_core::model::Role;
use miaas_core::placement::{PlacementSettings, Strategy, Weights};
use miaas_core::secrets::{KeySettings, Redacted};
use miaas_core::service::ServiceSettings;
use miaas_core::store::{DatabaseLocation, DatabaseUrl, StoreOptions};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How the server gets its TLS certificate besides --tls-cert/--tls-key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsMode {
    /// The server is its own CA: it makes and renews its certificates.
    Auto,
}

/// Whether API calls need credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// Every call but health and documentation needs a credential.
    On,
    /// No credentials at all, as in the original control plane: for local
    /// development and tests only, refused unless listening on loopback.
    Off,
}

/// Which browser origins may call the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorsOrigins<'a> {
    /// `*`, a comma-separated list, or none (empty).
    Configured(&'a str),
    /// Pages served from a loopback address or `localhost`, on any port.
    Loopback,
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
    /// (SQLAlchemy form), `sqlite::memory:`, a file path, or
    /// `postgresql://user:password@host/miaas`. A SQLite file is created on first run.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://control_plane.db",
        hide_env_values = true
    )]
    pub database_url: DatabaseUrl,

    /// Most database connections this server opens (PostgreSQL; SQLite readers).
    #[arg(long, env = "MIAAS_DB_POOL_SIZE", default_value_t = 10)]
    pub db_pool_size: u32,

    /// Longest a database statement may run before it is cancelled (PostgreSQL).
    #[arg(long, env = "MIAAS_DB_STATEMENT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub db_statement_timeout: Duration,

    /// Key sealing deployment environments at rest (64 hex digits) [default: read
    /// or create --secret-key-file]. Every replica on one database needs the same key.
    #[arg(long, env = "MIAAS_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<Redacted>,

    /// File holding the key, created with mode 0600 on first start [default: beside
    /// a SQLite database as <file>.key; miaas.key in the working directory otherwise].
    #[arg(long, env = "MIAAS_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,

    /// Keys used before a rotation (comma-separated): what they sealed is re-sealed
    /// under the current key at start-up.
    #[arg(
        long,
        env = "MIAAS_PREVIOUS_SECRET_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub previous_secret_keys: Vec<Redacted>,

    /// Do not apply database migrations at start-up (apply them with `miaas db
    /// migrate`); the server refuses to start on an outdated schema.
    #[arg(long, env = "MIAAS_NO_MIGRATE")]
    pub no_migrate: bool,

    /// Log filter: a level (`info`, `debug`, ...) or tracing directives
    /// (`miaas_server=debug,tower_http=info`).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Log line format.
    #[arg(long, env = "MIAAS_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Authentication: `on`, or `off` for local development (only allowed when
    /// --host is a loopback address; logs a warning).
    #[arg(long, env = "MIAAS_AUTH", value_enum, default_value = "on")]
    pub auth: AuthMode,

    /// How long an access token from a password login (`POST /api/v1/auth/token`,
    /// `miaas login`) stays valid.
    #[arg(long, env = "MIAAS_ACCESS_TOKEN_TTL", default_value = "1h", value_parser = parse_duration)]
    pub access_token_ttl: Duration,

    /// File the first start writes the admin password and join token to (mode 0600)
    /// [default: beside a SQLite database as <file>.credentials;
    /// miaas.credentials in the working directory otherwise].
    #[arg(long, env = "MIAAS_CREDENTIALS_FILE")]
    pub credentials_file: Option<PathBuf>,

    /// Origins allowed to call the API from a browser: `*` or a comma-separated
    /// list; credentials (cookies) are never allowed cross-origin [default: none
    /// with auth on; with auth off, pages served from localhost or a loopback
    /// address, on any port].
    #[arg(long, env = "CORS_ORIGINS")]
    pub cors_origins: Option<String>,

    /// A node not heard from for this long is `offline` (e.g. `30s`, `2m`, or seconds).
    #[arg(long, env = "MIAAS_HEARTBEAT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub heartbeat_timeout: Duration,

    /// URL handed to nodes as `control_plane_url` [default: http://<host>:<port>,
    /// with `localhost` for an unspecified host].
    #[arg(long, env = "MIAAS_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Deployments of an offline node stay `lost` this long before they are placed
    /// on other nodes (e.g. `60s`, `5m`).
    #[arg(long, env = "MIAAS_RESCHEDULE_GRACE", default_value = "60s", value_parser = parse_duration_or_zero)]
    pub reschedule_grace: Duration,

    /// Place lost deployments on other nodes after the grace (`false` leaves them
    /// `lost` until their node returns).
    #[arg(long, env = "MIAAS_RESCHEDULE_LOST", default_value_t = true, action = clap::ArgAction::Set)]
    pub reschedule_lost: bool,

    /// Placement strategy: `binpack` fills nodes, `spread` balances them.
    #[arg(long, env = "MIAAS_PLACEMENT_STRATEGY", default_value = "binpack")]
    pub placement_strategy: Strategy,

    /// Scoring weight of CPU reservation.
    #[arg(long, env = "MIAAS_WEIGHT_CPU", default_value_t = 1.0, value_parser = parse_weight)]
    pub weight_cpu: f64,

    /// Scoring weight of memory reservation.
    #[arg(long, env = "MIAAS_WEIGHT_MEMORY", default_value_t = 1.0, value_parser = parse_weight)]
    pub weight_memory: f64,

    /// Scoring weight of GPU fit (GPU work packs GPU nodes; other work avoids them).
    #[arg(long, env = "MIAAS_WEIGHT_GPU", default_value_t = 1.0, value_parser = parse_weight)]
    pub weight_gpu: f64,

    /// Scoring weight of live load (heartbeat CPU usage; lower scores higher).
    #[arg(long, env = "MIAAS_WEIGHT_LOAD", default_value_t = 0.5, value_parser = parse_weight)]
    pub weight_load: f64,

    /// How often buffered heartbeats are written to the database (one transaction
    /// for all nodes); keep it far below --heartbeat-timeout.
    #[arg(long, env = "MIAAS_HEARTBEAT_FLUSH_INTERVAL", default_value = "500ms", value_parser = parse_duration)]
    pub heartbeat_flush_interval: Duration,

    /// Failed authentications (401 answers) allowed per client address per minute;
    /// past it the address gets 429 with Retry-After until the minute ends.
    #[arg(long, env = "MIAAS_AUTH_FAILURE_LIMIT", default_value_t = 60)]
    pub auth_failure_limit: u32,

    /// The least role that may deploy compose documents with host access
    /// (privileged, host network/PID/IPC, cap_add, devices, host bind mounts):
    /// `admin`, or `operator` to let operators too.
    #[arg(long, env = "MIAAS_ALLOW_UNSAFE_COMPOSE", default_value = "admin", value_parser = parse_host_access_role)]
    pub allow_unsafe_compose: Role,

    /// Proxies (CIDRs, comma-separated) whose `Forwarded` / `X-Forwarded-For`
    /// headers name the client, for limits and logs; from any other peer those
    /// headers are ignored [default: none].
    #[arg(
        long,
        env = "MIAAS_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_network
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Where templates are rendered: in the server's process (the library's
    /// default, for tests), or in worker processes of the server's own program,
    /// which bound a template's memory (what the binaries choose).
    #[arg(skip)]
    pub template_isolation: miaas_core::templates::Isolation,

    /// How long a client has to send a request's headers before its connection is
    /// closed (slow clients cannot hold connections or stall a shutdown).
    #[arg(long, env = "MIAAS_HEADER_READ_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Longest a request may take to be answered (`503` with `Retry-After` after
    /// it). Agents' long-polls and log uploads are not timed.
    #[arg(long, env = "MIAAS_REQUEST_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Serve HTTPS with this certificate chain (PEM, the server's certificate
    /// first; the last one is the CA that join tokens pin). Read again on SIGHUP.
    #[arg(
        long,
        env = "MIAAS_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM). Read again on SIGHUP.
    #[arg(
        long,
        env = "MIAAS_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// `auto`: serve HTTPS with a CA and server certificate this server makes
    /// itself at first start (kept beside a SQLite database as `<db>.tls/`, or in
    /// --tls-dir) and renews before they expire; join tokens and the install
    /// one-liner pin them.
    #[arg(long, env = "MIAAS_TLS", value_enum, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls: Option<TlsMode>,

    /// The folder of --tls auto's CA and certificates (every replica on one
    /// PostgreSQL database needs the same) [default: beside a SQLite database as
    /// <file>.tls; miaas.tls in the working directory otherwise].
    #[arg(long, env = "MIAAS_TLS_DIR", value_name = "DIR")]
    pub tls_dir: Option<PathBuf>,

    /// More names (or addresses) --tls auto's certificate holds, beside the host
    /// name, `localhost`, the listening addresses and the --public-url host
    /// (repeat, or comma-separated).
    #[arg(
        long = "tls-san",
        env = "MIAAS_TLS_SANS",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub tls_sans: Vec<String>,

    /// How long a certificate made by --tls auto is valid; it is renewed (same
    /// key) once a third of it is left.
    #[arg(long, env = "MIAAS_TLS_LIFETIME", default_value = "365d", value_parser = parse_duration)]
    pub tls_lifetime: Duration,

    /// Requests handled at once; one more is answered `503` with `Retry-After` at
    /// once instead of queueing. `/health`, heartbeats and agents' long-polls are
    /// not counted.
    #[arg(long, env = "MIAAS_MAX_INFLIGHT", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_inflight: u32,

    /// How often the server looks for offline nodes, lost and pending deployments.
    #[arg(long, env = "MIAAS_SWEEP_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub sweep_interval: Duration,

    /// Also serve `GET /metrics` on this address, without authentication (for a
    /// Prometheus scraper on a private network), e.g. `127.0.0.1:9090`.
    #[arg(long, env = "MIAAS_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,

    /// Record no metrics and serve no `/metrics` (`404`).
    #[arg(long, env = "MIAAS_NO_METRICS", conflicts_with_all = ["metrics_listen", "metrics_per_node"])]
    pub no_metrics: bool,

    /// Add per-node series to `/metrics` (one series per node and metric: mind
    /// the cardinality of large fleets).
    #[arg(long, env = "MIAAS_METRICS_PER_NODE")]
    pub metrics_per_node: bool,

    /// The most events kept (older ones are removed; a follower asking for them
    /// gets `410`).
    #[arg(long, env = "MIAAS_EVENT_RETENTION", default_value_t = 100_000)]
    pub event_retention: u64,

    /// How long events are kept.
    #[arg(long, env = "MIAAS_EVENT_MAX_AGE", default_value = "7d", value_parser = parse_duration)]
    pub event_max_age: Duration,

    /// The most log sessions one node serves at once (more are answered `429`).
    #[arg(long, env = "MIAAS_MAX_LOG_SESSIONS_PER_NODE", default_value_t = 8)]
    pub max_log_sessions_per_node: usize,

    /// The agent binaries `/install.sh` offers: files named `miaas-linux-<arch>`
    /// (`miaas-linux-x86_64`, `miaas-linux-aarch64`, …) [default: the `miaas`
    /// binary beside this server's executable, for this machine's architecture].
    #[arg(long, env = "MIAAS_AGENT_BINARIES", value_name = "DIR")]
    pub agent_binaries: Option<PathBuf>,

    /// A folder of your own templates (`*.yaml`, `*.yml`, `*.json`, one template
    /// each), beside the built-in ones: read at start (a bad file stops it), and
    /// read again when a file changes or on SIGHUP (a bad file is then left out and
    /// logged).
    #[arg(long, env = "MIAAS_TEMPLATES_DIR", value_name = "DIR")]
    pub templates_dir: Option<std::path::PathBuf>,
}

impl ServerConfig {
    /// The configuration with every default, on `database_url`.
    pub fn with_database(database_url: impl Into<String>) -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: 8080,
            database_url: DatabaseUrl::from(database_url.into()),
            db_pool_size: 10,
            db_statement_timeout: Duration::from_secs(30),
            no_migrate: false,
            secret_key: None,
            secret_key_file: None,
            previous_secret_keys: Vec::new(),
            log_level: "info".into(),
            log_format: LogFormat::Text,
            cors_origins: None,
            auth: AuthMode::On,
            access_token_ttl: Duration::from_secs(3600),
            credentials_file: None,
            heartbeat_timeout: Duration::from_secs(30),
            public_url: None,
            reschedule_grace: Duration::from_secs(60),
            reschedule_lost: true,
            placement_strategy: Strategy::Binpack,
            weight_cpu: 1.0,
            weight_memory: 1.0,
            weight_gpu: 1.0,
            weight_load: 0.5,
            sweep_interval: Duration::from_secs(2),
            auth_failure_limit: 60,
            trusted_proxies: Vec::new(),
            template_isolation: Default::default(),
            header_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            max_inflight: 1024,
            tls_cert: None,
            tls_key: None,
            tls: None,
            tls_dir: None,
            tls_sans: Vec::new(),
            tls_lifetime: Duration::from_secs(365 * 24 * 3600),
            allow_unsafe_compose: Role::Admin,
            heartbeat_flush_interval: Duration::from_millis(500),
            metrics_listen: None,
            no_metrics: false,
            metrics_per_node: false,
            event_retention: 100_000,
            event_max_age: Duration::from_secs(7 * 24 * 3600),
            max_log_sessions_per_node: 8,
            templates_dir: None,
            agent_binaries: None,
        }
    }

    /// Whether the server serves HTTPS itself.
    pub fn serves_tls(&self) -> bool {
        self.tls_cert.is_some() || self.tls == Some(TlsMode::Auto)
    }

    /// Where --tls auto keeps its files: --tls-dir, else beside a SQLite file
    /// (`miaas.tls` for an in-memory one). On PostgreSQL --tls-dir is required:
    /// replicas that each made a CA of their own would break every pin.
    pub fn tls_folder(&self) -> Result<PathBuf, String> {
        if let Some(dir) = &self.tls_dir {
            return Ok(dir.clone());
        }
        match DatabaseLocation::parse(&self.database_url) {
            Ok(DatabaseLocation::Postgres(_)) => Err(
                "--tls auto on PostgreSQL needs --tls-dir DIR (MIAAS_TLS_DIR), a folder every \
                 replica shares, so that they serve one CA"
                    .into(),
            ),
            Ok(location) => Ok(location
                .companion_file("tls")
                .unwrap_or_else(|| PathBuf::from("miaas.tls"))),
            Err(_) => Ok(PathBuf::from("miaas.tls")),
        }
    }

    /// The CORS origins in force: as configured, else none with auth on and the
    /// loopback origins with auth off (a page served from this machine, such as
    /// the original's UI on a development port).
    pub fn effective_cors_origins(&self) -> CorsOrigins<'_> {
        match (&self.cors_origins, self.auth) {
            (Some(origins), _) => CorsOrigins::Configured(origins),
            (None, AuthMode::On) => CorsOrigins::Configured(""),
            (None, AuthMode::Off) => CorsOrigins::Loopback,
        }
    }

    /// Refuses `--auth off` unless the server listens on loopback only.
    pub fn check_auth(&self) -> Result<(), String> {
        if self.auth == AuthMode::On {
            return Ok(());
        }
        let host = self
            .host
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            Ok(())
        } else {
            Err(format!(
                "--auth off (MIAAS_AUTH=off) is only allowed on a loopback address, not on \
                 {host:?}: listen with --host 127.0.0.1, or keep authentication on"
            ))
        }
    }

    /// How to open the database, with the keys that seal secrets.
    pub fn store_options(&self) -> Result<StoreOptions, miaas_core::Error> {
        let keys = KeySettings {
            key: self.secret_key.clone(),
            key_file: self.secret_key_file.clone(),
            previous: self.previous_secret_keys.clone(),
        };
        Ok(StoreOptions {
            pool_size: self.db_pool_size,
            statement_timeout: Some(self.db_statement_timeout),
            migrate: !self.no_migrate,
            secrets: Some(
                keys.resolve(DatabaseLocation::default_key_file(&self.database_url)?.as_deref())?,
            ),
            ..StoreOptions::default()
        })
    }

    /// The service settings this configuration asks for.
    pub fn service_settings(&self) -> ServiceSettings {
        ServiceSettings {
            heartbeat_timeout: self.heartbeat_timeout,
            reschedule_grace: self.reschedule_grace,
            reschedule_lost: self.reschedule_lost,
            placement: PlacementSettings {
                strategy: self.placement_strategy,
                weights: Weights {
                    cpu: self.weight_cpu,
                    memory: self.weight_memory,
                    gpu: self.weight_gpu,
                    load: self.weight_load,
                },
            },
            access_token_ttl: self.access_token_ttl,
            host_access_role: self.allow_unsafe_compose,
            max_log_sessions_per_node: self.max_log_sessions_per_node,
            event_retention_count: self.event_retention,
            event_retention_age: self.event_max_age,
            template_isolation: self.template_isolation.clone(),
        }
    }
}

/// As [`parse_duration`], but zero is allowed.
pub fn parse_duration_or_zero(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    match text.parse::<f64>() {
        Ok(seconds) => Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("{text:?} is not a positive duration of a sensible length")),
        Err(_) => humantime::parse_duration(text).map_err(|err| format!("{text:?}: {err}")),
    }
}

/// `admin` or `operator`: who may deploy compose documents with host access.
fn parse_host_access_role(text: &str) -> Result<Role, String> {
    match text.trim().parse::<Role>() {
        Ok(role @ (Role::Admin | Role::Operator)) => Ok(role),
        _ => Err(format!("{text:?}: give admin or operator")),
    }
}

/// `10.0.0.0/8`, `2001:db8::/32`, or a single address (`10.0.0.1`).
pub fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not an address or CIDR (e.g. 10.0.0.0/8)"))
}

fn parse_weight(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(w) if w.is_finite() && w >= 0.0 => Ok(w),
        _ => Err(format!("{text:?} is not a weight (a number >= 0)")),
    }
}

/// Parses `30s`, `2m`, `1h 30m` (humantime) or a plain number of seconds; never zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration_or_zero(text)?;
    if duration.is_zero() {
        return Err("the duration must be greater than zero".into());
    }
    Ok(duration)
}

/// The host of a URL, without brackets (`https://[::1]:8443/x` → `::1`).
pub(crate) fn url_host(url: &str) -> Option<String> {
    let uri: axum::http::Uri = url.parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_of_a_url() {
        assert_eq!(
            url_host("https://cp.example:8443/x").as_deref(),
            Some("cp.example")
        );
        assert_eq!(url_host("https://[::1]:8443").as_deref(), Some("::1"));
        assert_eq!(url_host("http://10.0.0.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(url_host("not a url"), None);
    }

    #[test]
    fn auth_off_is_allowed_on_loopback_only() {
        let mut config = ServerConfig::with_database("sqlite::memory:");
        config.auth = AuthMode::Off;
        assert!(config.check_auth().is_err(), "0.0.0.0 by default");
        for host in ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"] {
            config.host = host.into();
            assert!(config.check_auth().is_ok(), "{host}");
        }
        config.host = "192.168.1.5".into();
        assert!(config.check_auth().is_err());
        config.auth = AuthMode::On;
        assert!(config.check_auth().is_ok());
        assert_eq!(config.effective_cors_origins(), CorsOrigins::Configured(""));
        config.auth = AuthMode::Off;
        assert_eq!(config.effective_cors_origins(), CorsOrigins::Loopback);
        config.cors_origins = Some("*".into());
        assert_eq!(
            config.effective_cors_origins(),
            CorsOrigins::Configured("*")
        );
    }

    #[test]
    fn the_configuration_never_prints_a_database_password() {
        let mut config = ServerConfig::with_database("postgres://miaas:hunter2@db/miaas");
        config.secret_key = Some(Redacted("ab".repeat(32)));
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains(&"ab".repeat(32)),
            "{shown}"
        );
        assert!(shown.contains("postgres://miaas:***@db/miaas"), "{shown}");
    }

    #[test]
    fn trusted_proxies_are_networks_or_addresses() {
        assert_eq!(
            parse_network("10.0.0.0/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(parse_network(" ::1 ").unwrap().to_string(), "::1/128");
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("proxy.local").is_err());
    }

    #[test]
    fn durations_accept_units_and_plain_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-3").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(
            parse_duration("1e300").is_err(),
            "too long is an error, not a panic"
        );
        assert!(parse_duration("NaN").is_err());
        assert_eq!(parse_duration_or_zero("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse_duration_or_zero("0"), Ok(Duration::ZERO));
        assert!(parse_duration_or_zero("-1").is_err());
    }
}
