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
//! let credentials = service.register_node(&registration).await?;
//!
//! let nodes = service.list_nodes().await?;
//! assert_eq!(nodes.len(), 1);
//! assert_eq!(nodes[0].id, credentials.node_id);
//! assert_eq!(nodes[0].name, "worker-01");
//! assert_eq!(nodes[0].status, NodeStatus::Online);
//! # Ok(())
//! # }
//! ```

pub mod access;
pub mod clock;
pub mod compose;
mod error;
pub mod events;
pub mod fleet;
pub mod model;
pub mod placement;
pub mod private_file;
mod rounds;
pub mod secrets;
pub mod server_certificate;
pub mod service;
pub mod store;
mod telemetry;
pub mod templates;
pub mod token;
pub mod validate;

pub use error::{Error, Result};
