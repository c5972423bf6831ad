//! The fleet as the last transaction left it, so that a placement decision does not
//! re-read every node and deployment.
//!
//! Valid while nothing else wrote the file: every write of this store goes through
//! its one writer connection, which keeps the cache in step (or drops it), and
//! SQLite's `PRAGMA data_version` on that connection changes only when another
//! connection (another process) commits, which forces a reload.

use std::collections::HashMap;

use crate::model::{Deployment, NodeMetrics};
use crate::store::Snapshot;

/// A snapshot with the `data_version` it was read at.
#[derive(Debug)]
pub(super) struct CachedSnapshot {
    /// `PRAGMA data_version` of the writer connection when read.
    pub data_version: i64,
    /// Nodes by name, deployments by creation.
    pub snapshot: Snapshot,
    /// Deployment id → position in `snapshot.deployments`.
    index: HashMap<String, usize>,
}

impl CachedSnapshot {
    pub(super) fn new(data_version: i64, snapshot: Snapshot) -> Self {
        let index = index_of(&snapshot.deployments);
        Self {
            data_version,
            snapshot,
            index,
        }
    }

    /// Lays committed writes over the snapshot, keeping the order by creation.
    pub(super) fn apply(&mut self, writes: &[Deployment]) {
        let mut reorder = false;
        for deployment in writes {
            match self.index.get(&deployment.deployment_id) {
                Some(&i) => self.snapshot.deployments[i] = deployment.clone(),
                None => {
                    let deployments = &mut self.snapshot.deployments;
                    let in_order = deployments
                        .last()
                        .is_none_or(|last| key(last) <= key(deployment));
                    reorder |= !in_order;
                    self.index
                        .insert(deployment.deployment_id.clone(), deployments.len());
                    deployments.push(deployment.clone());
                }
            }
        }
        if reorder {
            self.snapshot
                .deployments
                .sort_by(|a, b| key(a).partial_cmp(&key(b)).unwrap_or(std::cmp::Ordering::Equal));
            self.index = index_of(&self.snapshot.deployments);
        }
    }

    /// Lays flushed heartbeats over the nodes (each only moves forward).
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

fn key(d: &Deployment) -> (f64, &str) {
    (d.created_at, d.deployment_id.as_str())
}

fn index_of(deployments: &[Deployment]) -> HashMap<String, usize> {
    deployments
        .iter()
        .enumerate()
        .map(|(i, d)| (d.deployment_id.clone(), i))
        .collect()
}
