//! What every handler can reach.

use std::sync::Arc;

use miaas_core::service::Service;

/// Shared state of the HTTP server: one reference count to clone (axum clones it
/// for every request).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The state made of `shared`.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What the handlers share.
pub struct Shared {
    /// The control plane's rules.
    pub service: Service,
    /// The URL handed to nodes as `control_plane_url`.
    pub public_url: Arc<str>,
    /// Whether API calls need credentials (`--auth on`).
    pub auth: bool,
    /// The last node page served.
    pub node_pages: Arc<crate::page_cache::PageCache>,
    /// Moves to `true` when the server shuts down: streams end.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// Whether metrics are recorded and served (not `--no-metrics`).
    pub metrics: bool,
    /// Whether `/metrics` has per-node series.
    pub metrics_per_node: bool,
    /// The agent binaries `/install.sh` offers.
    pub agent_binaries: Arc<crate::downloads::AgentBinaries>,
    /// The TLS identity when the server serves HTTPS itself.
    pub tls: Option<crate::tls::ServerTls>,
}
