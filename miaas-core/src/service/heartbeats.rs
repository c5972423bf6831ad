//! Heartbeats as soft state: the latest metrics of each node wait in memory and are
//! written in batches (one transaction for many nodes), so a heartbeat costs no
//! commit. What a heartbeat changes in status (a node coming back online) is
//! written at once; reads on this server see the buffered values immediately, and
//! other replicas within one flush interval, far below the heartbeat timeout.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::Service;
use super::ledger::Since;
use crate::Result;
use crate::model::{NodeMetrics, NodeRecord};
use crate::placement::NodeChanges;

/// Most buffered-heartbeat changes remembered for ledgers; one further behind
/// looks at every buffered heartbeat.
const MAX_LOGGED: usize = 65_536;

/// The latest unwritten heartbeat of each node.
#[derive(Debug, Default, Clone)]
pub(super) struct HeartbeatBuffer {
    buffered: Arc<Mutex<Buffered>>,
    /// Counts the changes of what is buffered.
    revision: Arc<AtomicU64>,
}

#[derive(Debug, Default)]
struct Buffered {
    latest: HashMap<String, NodeMetrics>,
    /// The nodes whose entry was set, in order, the latest [`MAX_LOGGED`] (a kept
    /// ledger refreshes only these; entries written out need not be: the stored
    /// nodes then carry them, and report their own change).
    log: VecDeque<String>,
    /// How many were logged before the first in `log`.
    dropped: u64,
}

impl Buffered {
    fn mark(&self) -> u64 {
        self.dropped + self.log.len() as u64
    }

    fn logged(&mut self, node_id: &str) {
        if self.log.len() == MAX_LOGGED {
            self.log.pop_front();
            self.dropped += 1;
        }
        self.log.push_back(node_id.to_string());
    }

    /// The nodes logged since `mark`, or `None` when some are forgotten.
    fn since(&self, mark: u64) -> Option<Vec<&str>> {
        let skip = usize::try_from(mark.checked_sub(self.dropped)?).ok()?;
        (skip <= self.log.len()).then(|| self.log.iter().skip(skip).map(String::as_str).collect())
    }
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
        let buffered = self.buffered.lock().ok()?;
        buffered.latest.get(node_id).map(|m| m.reported_at)
    }

    pub(super) fn insert(&self, node_id: &str, metrics: NodeMetrics) {
        if let Ok(mut buffered) = self.buffered.lock() {
            buffered.latest.insert(node_id.to_string(), metrics);
            buffered.logged(node_id);
            self.changed();
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.buffered
            .lock()
            .map(|b| b.latest.is_empty())
            .unwrap_or(true)
    }

    pub(super) fn remove(&self, node_id: &str) {
        if let Ok(mut buffered) = self.buffered.lock() {
            buffered.latest.remove(node_id);
            buffered.logged(node_id);
            self.changed();
        }
    }

    fn take(&self) -> Vec<(String, NodeMetrics)> {
        match self.buffered.lock() {
            Ok(buffered) if buffered.latest.is_empty() => Vec::new(),
            Ok(mut buffered) => {
                self.changed();
                buffered.latest.drain().collect()
            }
            Err(_) => Vec::new(),
        }
    }

    /// Puts back what could not be written, unless newer heartbeats arrived.
    fn restore(&self, batch: Vec<(String, NodeMetrics)>) {
        if let Ok(mut buffered) = self.buffered.lock() {
            for (node_id, metrics) in batch {
                if !buffered.latest.contains_key(&node_id) {
                    buffered.logged(&node_id);
                    buffered.latest.insert(node_id, metrics);
                }
            }
            self.changed();
        }
    }

    /// Marks what is buffered now, for [`Self::refresh`]: read it before what it
    /// describes.
    pub(super) fn mark(&self) -> u64 {
        self.buffered.lock().map_or(0, |b| b.mark())
    }

    /// Brings a kept ledger's nodes up to date with `nodes` (those changed since,
    /// as `since` says) and the heartbeats buffered since; answers the mark it
    /// refreshed to, or `None` when the ledger is not of these nodes.
    pub(super) fn refresh(
        &self,
        cluster: &mut crate::placement::Cluster,
        nodes: &[NodeRecord],
        since: Since,
        now: f64,
        timeout: f64,
    ) -> Option<u64> {
        let buffered = self.buffered.lock().ok()?;
        let changes = NodeChanges {
            nodes,
            changed: since.nodes,
            buffered: &buffered.latest,
            buffered_changed: buffered.since(since.heartbeats_seen),
            now,
            timeout,
        };
        cluster.refresh(&changes).then(|| buffered.mark())
    }

    /// Lays the buffered heartbeats over stored nodes.
    pub(super) fn overlay(&self, records: &mut [NodeRecord]) {
        let Ok(buffered) = self.buffered.lock() else {
            return;
        };
        if buffered.latest.is_empty() {
            return;
        }
        for record in records {
            if let Some(metrics) = (buffered.latest)
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
