//! Storage: the [`Store`] trait is the only way anything touches the database.
//!
//! One module per backend; [`connect`] picks the backend from the URL's scheme, so
//! callers never name a backend.

pub mod access;
mod backup;
mod copy;
mod location;
mod migrations;
mod options;
mod owner;
pub mod postgres;
mod rows;
mod sql;
pub mod sqlite;
pub mod stream;
mod tables;
pub mod templates;
mod url;
mod version;

use std::sync::Arc;

use async_trait::async_trait;

use crate::Result;
use crate::model::{Deployment, NodeCapabilities, NodeMetrics, NodeRecord, NodeUpdate};

pub use access::{AccessDump, AccessStore, ApiTokenRecord, UserRecord, UserRule};
pub use backup::{BackupReport, backup_sqlite, inspect_backup, restore_sqlite};
pub use copy::{CopyReport, copy};
pub use location::{DatabaseLocation, SqliteTarget};
pub use options::StoreOptions;
pub use owner::{OwnerLock, lock_path};
pub use stream::StreamStore;
pub use templates::{StoredTemplate, TemplateExport, TemplateStore};
pub use url::{DatabaseUrl, redact_url};
pub use version::{ClusterVersion, Committed, Decided, Decider, FleetChanges, StoredNode};

/// A node registration as the store writes it.
#[derive(Debug, Clone)]
pub struct NodeUpsert {
    /// Id to use when the name is new; an existing name keeps its id.
    pub new_id: String,
    /// Unique name; the key of the upsert.
    pub name: String,
    /// Address.
    pub ip: String,
    /// What it offers.
    pub capabilities: NodeCapabilities,
    /// Labels.
    pub tags: Vec<String>,
    /// Hash of the node's new token; replaces any previous one.
    pub token_hash: String,
    /// Registration time: `registered_at` for a new node, `last_seen` always.
    pub now: f64,
    /// Leave a node of the same name as it is (the upsert then answers `None`).
    pub only_new: bool,
}

/// A node with its token hash, for moving an install between databases.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeExport {
    /// The node.
    pub record: NodeRecord,
    /// Hash of its current token (so the node keeps working after a move).
    pub token_hash: String,
}

/// Everything a store holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dump {
    /// Every node, with its token hash.
    pub nodes: Vec<NodeExport>,
    /// Every deployment, deleted ones included.
    pub deployments: Vec<Deployment>,
    /// Users, API tokens and cluster secrets.
    pub access: AccessDump,
    /// Templates added through the API, every version.
    pub templates: Vec<TemplateExport>,
}

/// What [`Store::listen_fleet`] calls: with the nodes concerned, or `None` for all.
pub type FleetListener = Arc<dyn Fn(Option<&[String]>) + Send + Sync>;

/// Persistent state of the control plane. Every write is committed before its
/// method returns.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Users, API tokens and cluster secrets.
    fn access(&self) -> &dyn AccessStore;

    /// The event log and log sessions.
    fn streams(&self) -> &dyn StreamStore;

    /// The templates added through the API.
    fn templates(&self) -> &dyn TemplateStore;

    /// Answers when the database does.
    async fn ping(&self) -> Result<()>;

    /// Closes the connections after the work in flight; later calls fail as
    /// unavailable.
    async fn close(&self);

    /// Inserts each node, or updates the node with the same name (keeping its id,
    /// first registration time and schedulability), in one transaction (one
    /// commit); answers each node's id (`None` where the name exists and
    /// `only_new`).
    async fn upsert_nodes(&self, nodes: &[NodeUpsert]) -> Result<Committed<Vec<Option<String>>>>;

    /// Sets a node's schedulability and/or tags; `false` when it does not exist.
    async fn update_node(&self, id: &str, update: &NodeUpdate) -> Result<Committed<bool>>;

    /// Removes a node (its token stops working); `false` when it did not exist.
    async fn delete_node(&self, id: &str) -> Result<Committed<bool>>;

    /// Stores many heartbeats in one transaction; each only moves `last_seen`
    /// forward, and nodes that no longer exist are skipped.
    async fn record_heartbeats(&self, batch: &[(String, NodeMetrics)]) -> Result<Committed<()>>;

    /// The cluster version now.
    async fn cluster_version(&self) -> Result<ClusterVersion>;

    /// What changed after version `since` (`0`: everything), read consistently.
    async fn changes_since(&self, since: u64) -> Result<FleetChanges>;

    /// One decision: under the cluster's write lock, hands `decider` what changed
    /// since `known` (nothing when `known` is `None`: the caller is the only
    /// writer and knows everything), writes what it returns at the next version,
    /// and commits. Decisions of every process serialize.
    async fn decide(&self, known: Option<u64>, decider: Decider<'_>) -> Result<Decided>;

    /// Whether this process is the database's only writer (a server on its own
    /// SQLite file): then what it wrote is all there is to know.
    fn exclusive(&self) -> bool {
        false
    }

    /// From now on, calls `on_change` with the nodes whose deployments another
    /// replica wrote (`None`: any node), when the store can hear of it
    /// (PostgreSQL's LISTEN/NOTIFY); a store that cannot does nothing.
    fn listen_fleet(&self, on_change: FleetListener) {
        let _ = on_change;
    }

    /// Everything stored, for `miaas db copy`.
    async fn export(&self) -> Result<Dump>;

    /// Writes `dump` into this store in one transaction; refused (`Conflict`) unless
    /// the store has no nodes and no deployments. Users, API tokens and cluster
    /// secrets replace the target's (a fresh target holds at most its bootstrap
    /// admin).
    async fn import(&self, dump: &Dump) -> Result<()>;
}

/// Opens the store a URL names with default options, creating and migrating the
/// database as needed.
///
/// Accepted: `sqlite://path`, `sqlite:path`, `sqlite::memory:`, SQLAlchemy's
/// `sqlite:///./relative.db` and `sqlite:////absolute.db`, a bare file path, and
/// `postgres://` / `postgresql://` (also SQLAlchemy's `postgresql+psycopg2://`).
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    connect_with(url, &StoreOptions::default()).await
}

/// Opens the store a URL names with `options`.
/// With `options.secrets`, the keys are checked against what the database holds
/// before anything is sealed (see [`crate::secrets::Secrets::settle`]).
pub async fn connect_with(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match DatabaseLocation::parse(url)? {
        DatabaseLocation::Sqlite(target) => {
            Arc::new(sqlite::SqliteStore::open(target, options).await?)
        }
        DatabaseLocation::Postgres(url) => {
            Arc::new(postgres::PostgresStore::open(&url, options).await?)
        }
    };
    if let Some(secrets) = &options.secrets {
        secrets.settle(&store.access().sealed_key_ids().await?)?;
    }
    Ok(store)
}
