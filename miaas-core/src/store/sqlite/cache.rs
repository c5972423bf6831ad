//! The fleet as the last transaction left it, so that a placement decision does not
//! re-read every node and deployment.
//!
//! Valid while nothing else wrote the file: every write of this store goes through
//! its one writer connection, which keeps the cache in step (or drops it), and
//! SQLite's `PRAGMA data_version` on that connection changes only when another
//! connection (another process) commits, which forces a reload.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::{Deployment, NodeMetrics, NodeRecord};
use crate::store::{Snapshot, SnapshotVersion};

/// Numbers the reads of the fleet, process-wide.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// A snapshot with the `data_version` it was read at.
#[derive(Debug)]
pub(super) struct CachedSnapshot {
    /// `PRAGMA data_version` of the writer connection when read.
    pub data_version: i64,
    /// The fleet, versioned.
    pub snapshot: Snapshot,
}

impl CachedSnapshot {
    pub(super) fn new(data_version: i64, mut snapshot: Snapshot) -> Self {
        snapshot.version = Some(SnapshotVersion {
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            revision: 0,
        });
        Self {
            data_version,
            snapshot,
        }
    }

    /// Lays committed writes over the snapshot; a new revision.
    pub(super) fn apply(&mut self, writes: &[Deployment]) {
        self.snapshot.apply(writes);
        if let Some(version) = self.snapshot.version.as_mut() {
            version.revision += 1;
        }
    }

    /// Lays a committed registration over the nodes (kept in name order), as the
    /// upsert wrote it. Node capabilities changed, so the snapshot gets a new
    /// generation: what callers derived from the old one is not reused.
    pub(super) fn upsert_node(&mut self, node: NodeRecord) {
        let nodes = &mut self.snapshot.nodes;
        match nodes.binary_search_by(|n| n.name.as_str().cmp(node.name.as_str())) {
            Ok(i) => {
                let existing = &mut nodes[i];
                existing.ip = node.ip;
                existing.capabilities = node.capabilities;
                existing.tags = node.tags;
                existing.last_seen = node.last_seen;
            }
            Err(i) => nodes.insert(i, node),
        }
        self.snapshot.version = Some(SnapshotVersion {
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            revision: 0,
        });
    }

    /// Lays flushed heartbeats over the nodes (each only moves forward). The
    /// deployments, and so the version, do not change.
    pub(super) fn heartbeats(&mut self, batch: &[(String, NodeMetrics)]) {
        let latest: HashMap<&str, &NodeMetrics> =
            batch.iter().map(|(id, m)| (id.as_str(), m)).collect();
        for node in &mut self.snapshot.nodes {
            if let Some(metrics) = latest.get(node.id.as_str())
                && node.last_seen < metrics.reported_at
            {
                node.last_seen = metrics.reported_at;
                node.metrics = Some((*metrics).clone());
            }
        }
    }
}
