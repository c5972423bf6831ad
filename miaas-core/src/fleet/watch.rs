//! The cluster version as seen by a read that must not miss any write committed
//! before it began (a revoked token, another replica's placement): one query
//! answers every read that arrived before it was sent, so a burst of reads costs
//! one round trip, as etcd batches its read-index requests.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Mutex;

use crate::Result;
use crate::store::{ClusterVersion, Store};

/// Asks the store for its version, once for all the reads waiting.
#[derive(Debug, Default)]
pub(crate) struct VersionWatch {
    /// Counts the queries sent.
    sent: AtomicU64,
    /// The last answer, with the number of the query that brought it.
    last: Mutex<(u64, ClusterVersion)>,
}

impl VersionWatch {
    /// The version as of a query sent after this call began.
    pub(crate) async fn observe(&self, store: &dyn Store) -> Result<ClusterVersion> {
        let needed = self.sent.load(Ordering::Acquire) + 1;
        let mut last = self.last.lock().await;
        if last.0 >= needed {
            return Ok(last.1);
        }
        let query = self.sent.fetch_add(1, Ordering::AcqRel) + 1;
        let version = store.cluster_version().await?;
        *last = (query, version);
        Ok(version)
    }
}
