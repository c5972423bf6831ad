//! Building and running the server: bind, wire the layers, serve until told to stop.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderValue;
use axum::middleware;
use miaas_core::service::{BootstrapCredentials, Service};
use miaas_core::store::Store;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::client_addr::{ClientAddr, TrustedProxies, resolve_client};
use crate::config::{AuthMode, CorsOrigins, ServerConfig};
use crate::error::ServerError;
use crate::extract::MAX_BODY_BYTES;
use crate::limit::{AuthLimits, limit_auth_failures};
use crate::local_only::{is_loopback_origin, require_loopback_host};
use crate::routes;
use crate::state::AppState;

/// A bound, ready-to-serve server. Tests build it on port 0 and read [`Self::port`].
pub struct Application {
    listener: TcpListener,
    router: Router,
    public_url: String,
    service: Service,
    sweep_interval: std::time::Duration,
    flush_interval: std::time::Duration,
    header_read_timeout: std::time::Duration,
    bootstrap: BootstrapCredentials,
    /// Tells streams that the server shuts down.
    stop_streams: tokio::sync::watch::Sender<bool>,
    /// `--metrics-listen`'s listener and router.
    metrics: Option<(TcpListener, Router)>,
    /// `--tls-cert` and `--tls-key` (or --tls auto's), loaded.
    tls: Option<crate::tls::ServerTls>,
    /// --tls auto's certificates, renewed while the server runs.
    auto_tls: Option<crate::tls_auto::AutoTls>,
}

impl Application {
    /// Binds the listener, opens the database (migrating it; a SQLite file is then
    /// owned by this server, see [`miaas_core::store::OwnerLock`]) and wires the
    /// routes.
    pub async fn build(config: &ServerConfig) -> Result<Self, ServerError> {
        config.check_auth().map_err(ServerError::Config)?;
        let listener = bind(config).await?;
        let mut options = config.store_options()?;
        let https = config.serves_tls();
        options.owner = Some(public_url(config, local_addr(&listener)?, https));
        let rotating = options.secrets.as_ref().is_some_and(|s| s.rotating());
        let store = miaas_core::store::connect_with(&config.database_url, &options).await?;
        let app = Self::build_on(config, store, listener).await?;
        if rotating {
            app.service.reseal_secrets().await?;
        }
        Ok(app)
    }

    /// As [`Self::build`], on a store the caller opened (`config.database_url` unused).
    pub async fn build_with_store(
        config: &ServerConfig,
        store: Arc<dyn Store>,
    ) -> Result<Self, ServerError> {
        let listener = bind(config).await?;
        Self::build_on(config, store, listener).await
    }

    async fn build_on(
        config: &ServerConfig,
        store: Arc<dyn Store>,
        listener: TcpListener,
    ) -> Result<Self, ServerError> {
        config.check_auth().map_err(ServerError::Config)?;
        let addr = local_addr(&listener)?;
        let (tls, auto_tls) = server_tls(config, addr)?;
        warn_if_plain(config, addr, tls.is_some());
        let cors = cors_layer(config.effective_cors_origins())?;
        let public_url = public_url(config, addr, tls.is_some());
        let service = Service::new(store, config.service_settings());
        if let Some(folder) = &config.templates_dir {
            let catalog = miaas_core::templates::Catalog::with_folder(folder)?;
            tracing::info!(
                folder = %folder.display(),
                templates = catalog.list().len(),
                "templates read"
            );
            service.set_catalog(Arc::new(catalog));
        }
        let bootstrap = service.bootstrap().await?;
        let auth = config.auth == AuthMode::On;
        if !auth {
            tracing::warn!(
                "authentication is OFF (--auth off): anyone who can reach this address \
                 controls the cluster; for local development only"
            );
        }
        if !config.no_metrics {
            crate::metrics::handle()?;
        }
        let (stop_streams, stopping) = tokio::sync::watch::channel(false);
        let state = AppState::new(crate::state::Shared {
            service: service.clone(),
            public_url: Arc::from(public_url.as_str()),
            auth,
            node_pages: Arc::default(),
            stopping,
            metrics: !config.no_metrics,
            metrics_per_node: config.metrics_per_node,
            agent_binaries: Arc::new(crate::downloads::AgentBinaries::new(
                config.agent_binaries.clone(),
            )),
            tls: tls.clone(),
        });
        let metrics = match &config.metrics_listen {
            Some(address) => Some((
                bind_metrics(address).await?,
                crate::routes::metrics_only(state.clone())
                    .layer(middleware::from_fn(crate::request_id::request_id)),
            )),
            None => None,
        };
        let limits = AuthLimits::new(config.auth_failure_limit, Duration::from_secs(60));
        let proxies = TrustedProxies::new(config.trusted_proxies.clone());
        let load =
            crate::overload::LoadLimits::new(config.max_inflight as usize, config.request_timeout);
        let router = routes::router(state)
            .layer(middleware::from_fn_with_state(limits, limit_auth_failures))
            .layer(middleware::from_fn_with_state(
                load.clone(),
                crate::overload::limit_time,
            ))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(cors)
            .layer(TraceLayer::new_for_http().make_span_with(request_span));
        let router = if auth {
            router
        } else {
            router.layer(middleware::from_fn(require_loopback_host))
        };
        let router = router
            .layer(middleware::from_fn(crate::request_id::request_id))
            .layer(middleware::from_fn_with_state(proxies, resolve_client))
            .layer(middleware::from_fn_with_state(
                load,
                crate::overload::limit_inflight,
            ));
        // outermost: every answer has them, a refusal by the layers above too
        let router = crate::security_headers::secured(router);
        Ok(Self {
            listener,
            router,
            public_url,
            service,
            sweep_interval: config.sweep_interval,
            flush_interval: config.heartbeat_flush_interval,
            header_read_timeout: config.header_read_timeout,
            bootstrap,
            stop_streams,
            metrics,
            tls,
            auto_tls,
        })
    }

    /// What this start created on an empty database (the admin password and join
    /// token), to be shown once.
    pub fn bootstrap_credentials(&self) -> &BootstrapCredentials {
        &self.bootstrap
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, ServerError> {
        local_addr(&self.listener)
    }

    /// The whole application as a service, to call in process (benchmarks).
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The address `--metrics-listen` serves on, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// `sha256:<hex>` of the CA certificate, when serving HTTPS.
    pub fn ca_hash(&self) -> Option<String> {
        self.tls.as_ref().map(crate::tls::ServerTls::ca_hash)
    }

    /// The URL handed to nodes as `control_plane_url`.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Serves until `shutdown` completes, finishes the requests in flight, then
    /// closes the database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let sweeper = tokio::spawn(sweep(self.service.clone(), self.sweep_interval));
        let template_watch = tokio::spawn(crate::template_folder::watch(self.service.catalog()));
        let tls_reload = self
            .tls
            .clone()
            .map(|tls| tokio::spawn(crate::tls::reload_on_hangup(tls)));
        let tls_renewal = (self.auto_tls.clone())
            .zip(self.tls.clone())
            .map(|(auto, tls)| tokio::spawn(crate::tls_auto::renew_periodically(auto, tls)));
        let (stop_flushing, stopped) = tokio::sync::watch::channel(false);
        let flusher = tokio::spawn(flush(self.service.clone(), self.flush_interval, stopped));
        let (stop_metrics, metrics_stopping) = tokio::sync::watch::channel(false);
        let metrics = self.metrics.map(|(listener, router)| {
            let stopping = crate::routes::streaming::stopped(metrics_stopping);
            tokio::spawn(crate::serve::serve(
                listener,
                router,
                self.header_read_timeout,
                None,
                stopping,
            ))
        });
        let stop_streams = self.stop_streams;
        let shutdown = async move {
            shutdown.await;
            let _ = stop_streams.send(true);
            let _ = stop_metrics.send(true);
        };
        crate::serve::serve(
            self.listener,
            self.router,
            self.header_read_timeout,
            self.tls,
            shutdown,
        )
        .await;
        for task in tls_reload.into_iter().chain(tls_renewal) {
            task.abort();
        }
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        sweeper.abort();
        let _ = sweeper.await;
        template_watch.abort();
        let _ = template_watch.await;
        // not aborted: a flush in progress finishes, and close() writes the rest
        let _ = stop_flushing.send(true);
        let _ = flusher.await;
        self.service.close().await;
        Ok(())
    }
}

/// The span of one request in the logs: method, path and the client's address.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let client = request
        .extensions()
        .get::<ClientAddr>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let id = request
        .extensions()
        .get::<crate::request_id::RequestId>()
        .map(|id| id.0.as_str())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        uri = %request.uri(),
        client = %client,
    )
}

/// Retention removes old events and log sessions once every this many sweeps.
const PRUNE_EVERY_SWEEPS: u32 = 5;

/// Periodically marks deployments of offline nodes lost, re-places lost ones and
/// places pending ones, records nodes going offline, and applies retention (the
/// service decides; this only keeps time).
async fn sweep(service: Service, every: std::time::Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sweeps = 0u32;
    loop {
        ticker.tick().await;
        if let Err(err) = service.reconcile().await {
            tracing::warn!(error = %err, "background reconcile failed; retrying");
        }
        if let Err(err) = service.watch_liveness().await {
            tracing::warn!(error = %err, "looking for offline nodes failed; retrying");
        }
        sweeps = sweeps.wrapping_add(1);
        if sweeps.is_multiple_of(PRUNE_EVERY_SWEEPS)
            && let Err(err) = service.prune_streams().await
        {
            tracing::warn!(error = %err, "removing old events failed; retrying");
        }
    }
}

/// The TLS identity to serve: `--tls-cert`/`--tls-key`, or --tls auto's (made or
/// renewed now), or none.
fn server_tls(
    config: &ServerConfig,
    addr: SocketAddr,
) -> Result<
    (
        Option<crate::tls::ServerTls>,
        Option<crate::tls_auto::AutoTls>,
    ),
    ServerError,
> {
    match (&config.tls_cert, &config.tls_key, config.tls) {
        (Some(cert), Some(key), None) => Ok((Some(crate::tls::ServerTls::load(cert, key)?), None)),
        (None, None, Some(crate::config::TlsMode::Auto)) => {
            let public_host = config
                .public_url
                .as_deref()
                .and_then(crate::config::url_host);
            let auto = crate::tls_auto::AutoTls::new(
                config.tls_folder().map_err(ServerError::Config)?,
                addr,
                public_host.as_deref(),
                &config.tls_sans,
                config.tls_lifetime,
            );
            let files = auto.ensure()?;
            let tls = crate::tls::ServerTls::load(&files.chain, &files.key)?;
            tracing::info!(
                dir = %auto.dir().display(),
                ca_hash = %tls.ca_hash(),
                "TLS: serving this server's own certificate (--tls auto)"
            );
            Ok((Some(tls), Some(auto)))
        }
        (None, None, None) => Ok((None, None)),
        (_, _, Some(_)) => Err(ServerError::Config(
            "--tls auto makes its own certificate: drop --tls-cert and --tls-key".into(),
        )),
        _ => Err(ServerError::Config(
            "--tls-cert and --tls-key go together".into(),
        )),
    }
}

/// Credentials in clear over the network deserve a warning.
fn warn_if_plain(config: &ServerConfig, addr: SocketAddr, tls: bool) {
    if !tls && config.auth == AuthMode::On && !addr.ip().is_loopback() {
        tracing::warn!(
            listen = %addr,
            "serving plain HTTP on a non-loopback address: tokens and deployment secrets \
             cross the network in clear; start with `--tls auto` (MIAAS_TLS=auto) to serve \
             HTTPS with a certificate this server makes itself"
        );
    }
}

/// Listens on `--metrics-listen`.
async fn bind_metrics(address: &str) -> Result<TcpListener, ServerError> {
    let addr: SocketAddr = address.parse().map_err(|_| {
        ServerError::Config(format!(
            "--metrics-listen {address:?}: an address and port, such as 127.0.0.1:9090"
        ))
    })?;
    crate::serve::listen(&addr.ip().to_string(), addr.port())
        .await
        .map_err(|source| ServerError::Io {
            context: format!("cannot listen on {address} (--metrics-listen)"),
            source,
        })
}

/// Writes buffered heartbeats on a short interval (the service batches them).
async fn flush(
    service: Service,
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        if let Err(err) = service.flush_heartbeats().await {
            tracing::warn!(error = %err, "writing heartbeats failed; retrying");
        }
    }
}

/// Listens on the configured address.
async fn bind(config: &ServerConfig) -> Result<TcpListener, ServerError> {
    crate::serve::listen(&config.host, config.port)
        .await
        .map_err(|source| ServerError::Io {
            context: format!("cannot listen on {}:{}", config.host, config.port),
            source,
        })
}

/// The URL clients reach this server at: `--public-url`, or the listener's.
fn public_url(config: &ServerConfig, addr: SocketAddr, https: bool) -> String {
    config
        .public_url
        .clone()
        .map(|url| url.trim_end_matches('/').to_string())
        .unwrap_or_else(|| default_public_url(addr, https))
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, ServerError> {
    listener.local_addr().map_err(|source| ServerError::Io {
        context: "cannot read the bound address".into(),
        source,
    })
}

/// `http://<host>:<port>` (`https` when serving TLS), with `localhost` when bound
/// to every interface.
fn default_public_url(addr: SocketAddr, https: bool) -> String {
    let scheme = if https { "https" } else { "http" };
    match addr.ip() {
        ip if ip.is_unspecified() => format!("{scheme}://localhost:{}", addr.port()),
        IpAddr::V6(ip) => format!("{scheme}://[{ip}]:{}", addr.port()),
        IpAddr::V4(ip) => format!("{scheme}://{ip}:{}", addr.port()),
    }
}

/// No cross-origin access unless `origins` allows it; credentials (cookies) are
/// never allowed cross-origin (the API's credentials are bearer tokens).
fn cors_layer(origins: CorsOrigins<'_>) -> Result<CorsLayer, ServerError> {
    let layer = CorsLayer::new().allow_methods(Any).allow_headers(Any);
    let origins = match origins {
        CorsOrigins::Loopback => {
            return Ok(layer.allow_origin(AllowOrigin::predicate(|origin, _| {
                is_loopback_origin(origin)
            })));
        }
        CorsOrigins::Configured(origins) => origins.trim(),
    };
    if origins.is_empty() {
        return Ok(CorsLayer::new());
    }
    if origins == "*" {
        return Ok(layer.allow_origin(Any));
    }
    let list = origins
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            HeaderValue::from_str(o)
                .map_err(|_| ServerError::Config(format!("CORS_ORIGINS: invalid origin {o:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(layer.allow_origin(AllowOrigin::list(list)))
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled, so a signal that arrives as soon
/// as the server says it listens still shuts it down gracefully.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |handler: Option<tokio::signal::unix::Signal>| async move {
                match handler {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {},
                () = wait(terminate) => {},
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("shutdown signal received; finishing requests in flight");
    }
}

/// Sets up logging, builds the server from `config` and serves until SIGINT/SIGTERM.
/// `miaas-server` and `miaas serve` both call this.
pub async fn run(config: ServerConfig) -> Result<(), ServerError> {
    crate::telemetry::init(&config.log_level, config.log_format)?;
    let app = Application::build(&config).await?;
    let shutdown = shutdown_signal();
    crate::bootstrap::announce(
        &config,
        app.bootstrap_credentials(),
        app.ca_hash().as_deref(),
    )?;
    let metrics = app
        .metrics_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(
        address = %app.local_addr()?,
        public_url = %app.public_url(),
        metrics_address = %metrics,
        ca_hash = %app.ca_hash().unwrap_or_default(),
        "MIaaS control plane listening"
    );
    app.run_until(shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_defaults_to_localhost_for_unspecified_hosts() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(default_public_url(any, false), "http://localhost:8080");
        let v6: SocketAddr = "[::1]:9000".parse().unwrap();
        assert_eq!(default_public_url(v6, false), "http://[::1]:9000");
        let v4: SocketAddr = "10.0.0.5:80".parse().unwrap();
        assert_eq!(default_public_url(v4, true), "https://10.0.0.5:80");
    }

    #[test]
    fn cors_origins_must_be_valid_header_values() {
        let configured = |o| cors_layer(CorsOrigins::Configured(o));
        assert!(configured("*").is_ok());
        assert!(configured("http://a.example, http://b.example").is_ok());
        assert!(configured("http://bad\norigin").is_err());
    }
}
