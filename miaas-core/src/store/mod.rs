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
mod snapshot;
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
pub use snapshot::{ReservationChange, Snapshot};
pub use stream::StreamStore;
pub use templates::{StoredTemplate, TemplateExport, TemplateStore};
pub use url::{DatabaseUrl, redact_url};
pub use version::{ClusterVersion, Decided, Decider, FleetChanges, StoredNode};

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

/// What a change decided: the deployments to write (inserted or replaced whole),
/// and what it tells its caller once they are committed.
pub struct Decision {
    /// The deployments to write.
    pub writes: Vec<Deployment>,
    /// The change's own result, for its caller (see [`Decision::new`]).
    pub outcome: Box<dyn std::any::Any + Send>,
}

impl Decision {
    /// Writes `writes`, and answers `outcome` to the caller.
    pub fn new(writes: Vec<Deployment>, outcome: impl std::any::Any + Send) -> Self {
        Self {
            writes,
            outcome: Box::new(outcome),
        }
    }
}

impl std::fmt::Debug for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decision")
            .field("writes", &self.writes.len())
            .finish_non_exhaustive()
    }
}

/// Decides, from a consistent [`Snapshot`], what to write. An error aborts the
/// transaction without writing.
pub type ClusterChange<'a> = &'a (dyn Fn(&Snapshot) -> Result<Decision> + Send + Sync);

/// What [`Store::listen_fleet`] calls: with the nodes concerned, or `None` for all.
pub type FleetListener = Arc<dyn Fn(Option<&[String]>) + Send + Sync>;

/// A [`ClusterChange`] that owns what it needs, so that the store may run it in a
/// transaction shared with other changes (see [`Store::transact_shared`]).
pub type SharedChange = Box<dyn Fn(&Snapshot) -> Result<Decision> + Send + Sync>;

/// Persistent state of the control plane. Every write is committed before its
/// method returns.
#[async_trait]
pub trait Store: AccessStore + Send + Sync + 'static {
    /// The event log and log sessions.
    fn streams(&self) -> &dyn StreamStore;

    /// The templates added through the API.
    fn templates(&self) -> &dyn TemplateStore;

    /// Answers when the database does.
    async fn ping(&self) -> Result<()>;

    /// Closes the connections after the work in flight; later calls fail as
    /// unavailable.
    async fn close(&self);

    /// Inserts a node, or updates the node with the same name (keeping its id,
    /// first registration time and schedulability); returns the node's id.
    async fn upsert_node(&self, node: NodeUpsert<'_>) -> Result<Option<String>> {
        let mut ids = self.upsert_nodes(std::slice::from_ref(&node)).await?;
        Ok(ids.pop().flatten())
    }

    /// [`Store::upsert_node`] for many, in one transaction (one commit).
    async fn upsert_nodes(&self, nodes: &[NodeUpsert<'_>]) -> Result<Vec<Option<String>>>;

    /// Up to `limit` nodes named after `after` (all when `None`), by name.
    async fn nodes_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<NodeRecord>>;

    /// Up to `limit` deployments created after `after` (by creation time, then id).
    async fn deployments_page(
        &self,
        after: Option<&crate::model::page::DeploymentKey>,
        limit: usize,
    ) -> Result<Vec<Deployment>>;

    /// One node by id.
    async fn get_node(&self, id: &str) -> Result<Option<NodeRecord>>;

    /// All nodes, ordered by name.
    async fn list_nodes(&self) -> Result<Vec<NodeRecord>>;

    /// Sets a node's schedulability and/or tags; `false` when it does not exist.
    async fn update_node(&self, id: &str, update: &NodeUpdate) -> Result<bool>;

    /// Removes a node (its token stops working); `false` when it did not exist.
    async fn delete_node(&self, id: &str) -> Result<bool>;

    /// The id and `last_seen` of the node whose current token has this hash.
    async fn node_by_token_hash(&self, token_hash: &str) -> Result<Option<(String, f64)>>;

    /// Stores many heartbeats in one transaction; each only moves `last_seen`
    /// forward, and nodes that no longer exist are skipped.
    async fn record_heartbeats(&self, batch: &[(String, NodeMetrics)]) -> Result<()>;

    /// Stores a heartbeat: `last_seen` becomes `metrics.reported_at`. Returns the
    /// previous `last_seen`, or `None` when the node does not exist.
    async fn record_heartbeat(&self, node_id: &str, metrics: &NodeMetrics) -> Result<Option<f64>>;

    /// One deployment by id.
    async fn get_deployment(&self, id: &str) -> Result<Option<Deployment>>;

    /// All deployments, oldest first.
    async fn list_deployments(&self) -> Result<Vec<Deployment>>;

    /// How many deployments there are of each status and of each health
    /// (those without any left out), without reading their documents.
    async fn deployment_counts(&self) -> Result<DeploymentCounts> {
        let mut counts = DeploymentCounts::default();
        for d in self.list_deployments().await? {
            counts.count(&d);
        }
        Ok(counts)
    }

    /// What every placed deployment reserves (those holding resources), oldest
    /// first: the ledger's input, without compose documents or environments.
    async fn reservations(&self) -> Result<Vec<crate::placement::Reservation>>;

    /// As [`Store::reservations`], on these nodes.
    async fn reservations_on_nodes(
        &self,
        node_ids: &[String],
    ) -> Result<Vec<crate::placement::Reservation>>;

    /// A number that stays the same exactly as long as the nodes and deployments
    /// do, when the store can tell it without a query (`None` otherwise): what is
    /// derived from them may be kept while it holds.
    async fn fleet_version(&self) -> Option<u64> {
        None
    }

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

    /// Whether any deployment waits for capacity
    /// ([`DeploymentStatus::waits_for_capacity`](crate::model::DeploymentStatus::waits_for_capacity)).
    async fn has_waiting_deployments(&self) -> Result<bool>;

    /// Deployments placed on `node_id` or still to be removed from it.
    async fn deployments_of_node(&self, node_id: &str) -> Result<Vec<Deployment>>;

    /// Reads a [`Snapshot`], lets `change` decide, and writes what it returns, all
    /// in one transaction: concurrent changes serialize, so placement can never
    /// book the same free resources twice. Returns the decision, once committed.
    async fn transact(&self, change: ClusterChange<'_>) -> Result<Decision> {
        let mut decided = None;
        let mut decider = |changes: FleetChanges| {
            let decision = change(&Snapshot::from_changes(changes))?;
            let writes = decision.writes.clone();
            decided = Some(decision);
            Ok(writes)
        };
        self.decide(Some(0), &mut decider).await?;
        decided.ok_or_else(|| crate::Error::Unavailable("the change was not run".into()))
    }

    /// As [`Store::transact`], but the store may decide and write this change in one
    /// transaction with concurrent ones (group commit): each sees the writes of the
    /// ones before it, an error undoes only its own change, and each is answered
    /// after the shared commit.
    async fn transact_shared(&self, change: SharedChange) -> Result<Decision> {
        self.transact(&*change).await
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
    let mut store: Arc<dyn Store> = match DatabaseLocation::parse(url)? {
        DatabaseLocation::Sqlite(target) => {
            Arc::new(sqlite::SqliteStore::open(target, options).await?)
        }
        DatabaseLocation::Postgres(url) => {
            Arc::new(postgres::PostgresStore::open(&url, options).await?)
        }
    };
    if options.fleet_in_memory {
        store = Arc::new(crate::fleet::FleetCache::new(store));
    }
    if let Some(secrets) = &options.secrets {
        secrets.settle(&store.sealed_key_ids().await?)?;
    }
    Ok(store)
}

/// Deployments counted by status and by health.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeploymentCounts {
    /// By status (`running`, …).
    pub by_status: std::collections::BTreeMap<&'static str, u64>,
    /// By health (`healthy`, …), of those that have one.
    pub by_health: std::collections::BTreeMap<&'static str, u64>,
}

impl DeploymentCounts {
    /// Counts `deployment`.
    pub fn count(&mut self, deployment: &Deployment) {
        *self
            .by_status
            .entry(deployment.status.as_str())
            .or_default() += 1;
        if let Some(health) = deployment.health {
            *self.by_health.entry(health.as_str()).or_default() += 1;
        }
    }
}
