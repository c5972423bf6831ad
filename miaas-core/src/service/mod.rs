//! The rules of the control plane, over a [`Store`] and a [`Clock`]. The server's
//! handlers and the CLI's local mode both call this, so they cannot disagree.

mod deployments;
mod nodes;

use std::sync::Arc;
use std::time::Duration;

use crate::Result;
use crate::clock::{Clock, SystemClock};
use crate::store::Store;

pub use nodes::NodeCredentials;

/// Tunables of the service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSettings {
    /// A node not seen for longer than this is `offline`.
    pub heartbeat_timeout: Duration,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            heartbeat_timeout: Duration::from_secs(30),
        }
    }
}

/// The control plane's operations. Cheap to clone; clones share the store.
#[derive(Clone)]
pub struct Service {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: ServiceSettings,
}

impl Service {
    /// A service on `store` reading the wall clock.
    pub fn new(store: Arc<dyn Store>, settings: ServiceSettings) -> Self {
        Self::with_clock(store, Arc::new(SystemClock), settings)
    }

    /// A service reading `clock` (tests move it by hand).
    pub fn with_clock(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: ServiceSettings,
    ) -> Self {
        Self {
            store,
            clock,
            settings,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    /// `Ok` when the database answers.
    pub async fn health(&self) -> Result<()> {
        self.store.ping().await
    }

    /// Closes the store: called once serving has stopped.
    pub async fn close(&self) {
        self.store.close().await;
    }

    fn now(&self) -> f64 {
        self.clock.now()
    }
}
