//! # miaas-core
//!
//! The domain of the MIaaS control plane, with no HTTP and no terminal in it:
//!
//! - [`model`]: the types whose serde form is the API's JSON (nodes, heartbeats,
//!   deployments);
//! - [`store`]: the [`store::Store`] trait, the only thing that touches the database,
//!   and its backends, picked by [`store::connect`] from the URL's scheme;
//! - [`service`]: the rules (register, heartbeat, node status, deployments) over a
//!   store. The HTTP server and the CLI's local mode both call it.
//!
//! ## Example: open a SQLite store, register a node, list it
//!
//! ```
//! use miaas_core::access::Principal;
//! use miaas_core::model::{NodeCapabilities, NodeRegistration, NodeStatus};
//! use miaas_core::service::{Service, ServiceSettings};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), miaas_core::Error> {
//! # let dir = tempfile::tempdir().expect("temp dir");
//! # let url = format!("sqlite://{}", dir.path().join("example.db").display());
//! // `url` is e.g. "sqlite://control_plane.db": created and migrated on first use.
//! let store = miaas_core::store::connect(&url).await?;
//! let service = Service::new(store, ServiceSettings::default());
//!
//! let registration: NodeRegistration = serde_json::from_str(r#"{
//!     "name": "worker-01",
//!     "ip": "192.168.1.10",
//!     "capabilities": {"os": "linux", "cpu_count": 8, "mem_mb": 16000, "disk_mb": 500000}
//! }"#).expect("valid JSON");
//! let credentials = service.register_node(&Principal::Console, &registration).await?;
//!
//! let nodes = service.list_nodes().await?;
//! assert_eq!(nodes.len(), 1);
//! assert_eq!(nodes[0].id, credentials.node_id);
//! assert_eq!(nodes[0].name, "worker-01");
//! assert_eq!(nodes[0].status, NodeStatus::Online);
//! # Ok(())
//! # }
//! ```

// The wire: what the server, the CLI and the agent share (the API's JSON, node
// tokens, the pinned-CA check, compose documents). Builds without `server`.
pub mod access;
pub mod clock;
pub mod compose;
mod error;
pub mod model;
pub mod private_file;
pub mod server_certificate;
pub mod token;
pub mod validate;

// The control plane itself: storage, secrets, templates, placement, the fleet and
// the rules over them. Behind the default `server` feature, which the agent turns
// off so that it links none of the storage, crypto or template crates.
#[cfg(feature = "server")]
pub mod events;
#[cfg(feature = "server")]
pub mod fleet;
#[cfg(feature = "server")]
pub mod placement;
#[cfg(feature = "server")]
pub mod secrets;
#[cfg(feature = "server")]
pub mod service;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
mod telemetry;
#[cfg(feature = "server")]
pub mod templates;

pub use error::{Error, Result};
