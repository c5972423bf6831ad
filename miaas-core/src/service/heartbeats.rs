//! Heartbeats as soft state: the latest metrics of each node wait in memory and are
//! written in batches (one transaction for many nodes), so a heartbeat costs no
//! commit. What a heartbeat changes in status (a node coming back online) is
//! written at once; reads on this server see the buffered values immediately, and
//! other replicas within one flush interval, far below the heartbeat timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::Service;
use crate::Result;
use crate::model::{NodeMetrics, NodeRecord};

/// The latest unwritten heartbeat of each node.
#[derive(Debug, Default, Clone)]
pub(super) struct HeartbeatBuffer {
    latest: Arc<Mutex<HashMap<String, NodeMetrics>>>,
    /// Counts the changes of `latest`.
    revision: Arc<AtomicU64>,
}

impl HeartbeatBuffer {
    /// Changes whenever what is buffered does.
    pub(super) fn revision(&self) -> u64 {
        self.revision.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.revision.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn reported_at(&self, node_id: &str) -> Option<f64> {
        let latest = self.latest.lock().ok()?;
        latest.get(node_id).map(|m| m.reported_at)
    }

    pub(super) fn insert(&self, node_id: &str, metrics: NodeMetrics) {
        if let Ok(mut latest) = self.latest.lock() {
            latest.insert(node_id.to_string(), metrics);
            self.changed();
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.latest.lock().map(|l| l.is_empty()).unwrap_or(true)
    }

    pub(super) fn remove(&self, node_id: &str) {
        if let Ok(mut latest) = self.latest.lock() {
            latest.remove(node_id);
            self.changed();
        }
    }

    fn take(&self) -> Vec<(String, NodeMetrics)> {
        match self.latest.lock() {
            Ok(latest) if latest.is_empty() => Vec::new(),
            Ok(mut latest) => {
                self.changed();
                latest.drain().collect()
            }
            Err(_) => Vec::new(),
        }
    }

    /// Puts back what could not be written, unless newer heartbeats arrived.
    fn restore(&self, batch: Vec<(String, NodeMetrics)>) {
        if let Ok(mut latest) = self.latest.lock() {
            for (node_id, metrics) in batch {
                latest.entry(node_id).or_insert(metrics);
            }
            self.changed();
        }
    }

    /// Brings a kept ledger's liveness up to date with `nodes` and the buffered
    /// heartbeats; `false` when the ledger is not of these nodes.
    pub(super) fn refresh(
        &self,
        cluster: &mut crate::placement::Cluster,
        nodes: &[NodeRecord],
        now: f64,
        timeout: f64,
    ) -> bool {
        let Ok(latest) = self.latest.lock() else {
            return false;
        };
        cluster.refresh(nodes, &latest, |last_seen| now - last_seen <= timeout)
    }

    /// Lays the buffered heartbeats over stored nodes.
    pub(super) fn overlay(&self, records: &mut [NodeRecord]) {
        let Ok(latest) = self.latest.lock() else {
            return;
        };
        if latest.is_empty() {
            return;
        }
        for record in records {
            if let Some(metrics) = latest
                .get(&record.id)
                .filter(|m| m.reported_at > record.last_seen)
            {
                record.last_seen = metrics.reported_at;
                record.metrics = Some(metrics.clone());
            }
        }
    }
}

impl Service {
    /// Writes the buffered heartbeats in one transaction; the server calls this on
    /// a short interval and when it stops. Returns how many nodes were written.
    pub async fn flush_heartbeats(&self) -> Result<usize> {
        let batch = self.heartbeats.take();
        if batch.is_empty() {
            return Ok(0);
        }
        let count = batch.len();
        if let Err(err) = self.store.record_heartbeats(&batch).await {
            self.heartbeats.restore(batch);
            return Err(err);
        }
        Ok(count)
    }
}
