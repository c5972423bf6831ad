//! Storage: the [`Store`] trait is the only way anything touches the database.
//!
//! One module per backend; [`connect`] picks the backend from the URL's scheme, so
//! callers never name a backend.

mod location;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::Result;
use crate::model::{Deployment, NodeCapabilities, NodeMetrics, NodeRecord};

pub use location::{DatabaseLocation, SqliteTarget};

/// A node registration as the store writes it.
#[derive(Debug, Clone)]
pub struct NodeUpsert<'a> {
    /// Id to use when the name is new; an existing name keeps its id.
    pub new_id: &'a str,
    /// Unique name; the key of the upsert.
    pub name: &'a str,
    /// Address.
    pub ip: &'a str,
    /// What it offers.
    pub capabilities: &'a NodeCapabilities,
    /// Labels.
    pub tags: &'a [String],
    /// Hash of the node's new token; replaces any previous one.
    pub token_hash: &'a str,
    /// Registration time: `registered_at` for a new node, `last_seen` always.
    pub now: f64,
}

/// Decides the new state of one deployment from its current state (`None`: absent).
/// `Ok(None)` leaves it as it is; an error aborts without writing.
pub type DeploymentChange<'a> =
    &'a (dyn Fn(Option<&Deployment>) -> Result<Option<Deployment>> + Send + Sync);

/// The states of one deployment around an atomic [`Store::modify_deployment`].
#[derive(Debug, Clone, PartialEq)]
pub struct Modified {
    /// As it was before (`None`: it did not exist).
    pub before: Option<Deployment>,
    /// As it is now (`None`: it still does not exist).
    pub after: Option<Deployment>,
}

/// Persistent state of the control plane. Every write is committed before its
/// method returns.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Answers when the database does.
    async fn ping(&self) -> Result<()>;

    /// Closes the connections after the work in flight; later calls fail as
    /// unavailable.
    async fn close(&self);

    /// Inserts a node, or updates the node with the same name (keeping its id and
    /// first registration time); returns the node's id.
    async fn upsert_node(&self, node: NodeUpsert<'_>) -> Result<String>;

    /// One node by id.
    async fn get_node(&self, id: &str) -> Result<Option<NodeRecord>>;

    /// All nodes, ordered by name.
    async fn list_nodes(&self) -> Result<Vec<NodeRecord>>;

    /// The id of the node whose current token has this hash.
    async fn node_id_by_token_hash(&self, token_hash: &str) -> Result<Option<String>>;

    /// Stores a heartbeat: `last_seen` becomes `metrics.reported_at`. `false` when
    /// the node does not exist.
    async fn record_heartbeat(&self, node_id: &str, metrics: &NodeMetrics) -> Result<bool>;

    /// One deployment by id.
    async fn get_deployment(&self, id: &str) -> Result<Option<Deployment>>;

    /// All deployments, oldest first.
    async fn list_deployments(&self) -> Result<Vec<Deployment>>;

    /// Reads deployment `id`, lets `change` decide its new state, and writes that,
    /// all in one transaction: concurrent changes to one deployment serialize.
    async fn modify_deployment(&self, id: &str, change: DeploymentChange<'_>) -> Result<Modified>;
}

/// Opens the store a URL names, creating and migrating the database as needed.
///
/// Accepted: `sqlite://path`, `sqlite:path`, `sqlite::memory:`, SQLAlchemy's
/// `sqlite:///./relative.db` and `sqlite:////absolute.db`, and a bare file path.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    match DatabaseLocation::parse(url)? {
        DatabaseLocation::Sqlite(target) => Ok(Arc::new(sqlite::SqliteStore::open(target).await?)),
    }
}
