//! The cluster version: one counter every committed write adds one to, and the
//! change feed it makes possible (nodes and deployments carry the version that
//! wrote them), so that a reader that knows version `v` reads only what changed
//! since. The SQL is the same for both backends.

use crate::model::{Deployment, NodeRecord};

/// Adds one to the version and answers the new state. The row lock it takes is
/// held to the end of the transaction: writes commit in version order.
pub(crate) const BUMP_VERSION_SQL: &str = "UPDATE cluster_version SET version = version + 1 \
     WHERE id = 1 RETURNING version, nodes_removed_at, access_changed_at";

/// As [`BUMP_VERSION_SQL`], for a write that removes nodes.
pub(crate) const BUMP_NODES_REMOVED_SQL: &str = "UPDATE cluster_version \
     SET version = version + 1, nodes_removed_at = version + 1 \
     WHERE id = 1 RETURNING version, nodes_removed_at, access_changed_at";

/// As [`BUMP_VERSION_SQL`], for a write of users, API tokens or cluster secrets.
pub(crate) const BUMP_ACCESS_SQL: &str = "UPDATE cluster_version \
     SET version = version + 1, access_changed_at = version + 1 \
     WHERE id = 1 RETURNING version, nodes_removed_at, access_changed_at";

/// The state now.
pub(crate) const READ_VERSION_SQL: &str =
    "SELECT version, nodes_removed_at, access_changed_at FROM cluster_version WHERE id = 1";

/// Every node id (to learn which nodes were removed).
pub(crate) const NODE_IDS_SQL: &str = "SELECT id FROM nodes";

/// A row of the `cluster_version` table.
pub(crate) type VersionRow = (i64, i64, i64);

/// Where the cluster stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterVersion {
    /// Counts the committed writes.
    pub version: u64,
    /// The version of the last write that removed nodes.
    pub nodes_removed_at: u64,
    /// The version of the last change of users, API tokens or cluster secrets.
    pub access_changed_at: u64,
}

impl ClusterVersion {
    pub(crate) fn from_row((version, nodes_removed_at, access_changed_at): VersionRow) -> Self {
        let unsigned = |n: i64| u64::try_from(n).unwrap_or_default();
        Self {
            version: unsigned(version),
            nodes_removed_at: unsigned(nodes_removed_at),
            access_changed_at: unsigned(access_changed_at),
        }
    }

    /// The state just before the write that made this one.
    pub(crate) fn before_write(self) -> u64 {
        self.version.saturating_sub(1)
    }
}

/// A node as the change feed carries it: with its token's hash.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredNode {
    /// The node.
    pub record: NodeRecord,
    /// SHA-256 of its current token.
    pub token_hash: String,
}

/// What changed after a version, up to [`FleetChanges::version`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetChanges {
    /// The state these changes bring a reader to.
    pub version: ClusterVersion,
    /// The version they start after (`0`: everything).
    pub since: u64,
    /// Nodes written since, whole.
    pub nodes: Vec<StoredNode>,
    /// Every node id, when nodes were removed since (`None`: none was).
    pub node_ids: Option<Vec<String>>,
    /// Deployments written since, whole, oldest first (shared: the fleet state
    /// holds them as they were read).
    pub deployments: Vec<std::sync::Arc<Deployment>>,
}

impl FleetChanges {
    /// No change: the reader is at `version` already.
    pub fn none(version: ClusterVersion) -> Self {
        Self {
            version,
            since: version.version,
            ..Self::default()
        }
    }

    /// Whether this is everything (read from version 0).
    pub fn is_everything(&self) -> bool {
        self.since == 0
    }
}

/// What a write answered, with the cluster version it committed at.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed<T> {
    /// The write's own answer.
    pub value: T,
    /// The cluster version it committed at.
    pub version: u64,
}

impl<T> Committed<T> {
    pub(crate) fn at(version: ClusterVersion, value: T) -> Self {
        Self {
            value,
            version: version.version,
        }
    }
}

/// How a decision reached the store: the version the reader is at afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decided {
    /// The state after the decision (its own version when it wrote, the version it
    /// read otherwise).
    pub version: ClusterVersion,
}

/// Decides over the changes since the version the caller knows (read under the
/// cluster's write lock), returning what to write. An error aborts the
/// transaction without writing.
pub type Decider<'a> = &'a mut (dyn FnMut(FleetChanges) -> crate::Result<Vec<Deployment>> + Send);
