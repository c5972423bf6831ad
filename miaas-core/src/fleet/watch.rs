//! The cluster version as seen by a read that must not miss any write committed
//! before it began (a revoked token, another replica's placement): one query
//! answers every read that arrived before it was sent, so a burst of reads costs
//! one round trip, as etcd batches its read-index requests.

use super::rounds::Rounds;
use crate::Result;
use crate::store::{ClusterVersion, Store};

/// Asks the store for its version, once for all the reads waiting.
#[derive(Debug, Default)]
pub(super) struct VersionWatch {
    rounds: Rounds<ClusterVersion>,
}

impl VersionWatch {
    /// The version as of a query sent after this call began.
    pub(super) async fn observe(&self, store: &dyn Store) -> Result<ClusterVersion> {
        self.rounds.after_now(|| store.cluster_version()).await
    }
}
