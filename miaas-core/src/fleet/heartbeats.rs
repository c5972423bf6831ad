//! Heartbeats as soft state: each is laid over the published state at once, and
//! the latest of each node waits here to be written in batches (one transaction
//! for many nodes), so a heartbeat costs no commit. Other replicas see them within
//! one flush interval, far below the heartbeat timeout.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Fleet, FleetState};
use crate::Result;
use crate::model::NodeMetrics;

/// The latest heartbeat of each node not written yet.
#[derive(Debug, Default)]
pub(super) struct Unwritten {
    latest: Mutex<HashMap<String, NodeMetrics>>,
}

impl Unwritten {
    fn latest(&self) -> std::sync::MutexGuard<'_, HashMap<String, NodeMetrics>> {
        self.latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lays them over a state read afresh from the database.
    pub(super) fn lay_over(&self, state: &mut FleetState, now: f64) {
        for (node_id, metrics) in self.latest().iter() {
            state.heartbeat(node_id, metrics, now);
        }
    }
}

impl Fleet {
    /// Lays a heartbeat over node `node_id`: written at once when `write_now` (a
    /// node coming back online), else with the next flush. Answers when the node
    /// was last seen before, or `None` when it does not exist.
    pub async fn heartbeat(
        &self,
        node_id: &str,
        metrics: NodeMetrics,
        write_now: bool,
    ) -> Result<Option<f64>> {
        let state = self.state().await?;
        let Some(previous) = state.snapshot().node(node_id).map(|n| n.last_seen) else {
            return Ok(None);
        };
        if !write_now {
            self.unwritten
                .latest()
                .insert(node_id.to_string(), metrics.clone());
            let now = self.clock.now();
            self.publish(|state| {
                state.heartbeat(node_id, &metrics, now);
            });
            return Ok(Some(previous));
        }
        let id = node_id.to_string();
        self.write_alone(move |fleet| async move {
            let row = [(id.clone(), metrics)];
            let written = fleet.store.record_heartbeats(&row).await?;
            let [(id, metrics)] = row;
            let mut unwritten = fleet.unwritten.latest();
            // a newer one may have come meanwhile: it is still to be written
            if unwritten
                .get(&id)
                .is_some_and(|m| m.reported_at <= metrics.reported_at)
            {
                unwritten.remove(&id);
            }
            drop(unwritten);
            let now = fleet.clock.now();
            fleet.publish(|state| {
                state.heartbeat(&id, &metrics, now);
                state.committed_alone(written.version);
            });
            Ok(Some(previous))
        })
        .await
    }

    /// Writes the heartbeats not written yet in one transaction; the server calls
    /// this on a short interval and when it stops. Answers how many nodes were
    /// written.
    pub async fn flush_heartbeats(&self) -> Result<usize> {
        let batch: Vec<(String, NodeMetrics)> = self.unwritten.latest().drain().collect();
        if batch.is_empty() {
            return Ok(0);
        }
        let count = batch.len();
        match self.store.record_heartbeats(&batch).await {
            Ok(written) => {
                self.publish(|state| state.committed_alone(written.version));
                Ok(count)
            }
            Err(err) => {
                // put back, unless newer ones arrived meanwhile
                let mut latest = self.unwritten.latest();
                for (node_id, metrics) in batch {
                    latest.entry(node_id).or_insert(metrics);
                }
                Err(err)
            }
        }
    }
}
