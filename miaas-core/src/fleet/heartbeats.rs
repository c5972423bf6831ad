//! Heartbeats as soft state: a heartbeat costs neither a commit nor a copy of the
//! state. The latest of each node waits here twice: to be laid over the published
//! state (once, by the next read or write, for every heartbeat that came since)
//! and to be written in batches (one transaction for many nodes). A read begun
//! after a heartbeat was answered sees it; other replicas see it within one flush
//! interval, far below the heartbeat timeout.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Fleet, FleetState};
use crate::Result;
use crate::model::NodeMetrics;

/// The latest heartbeat of each node, not laid over the published state yet and
/// not written yet.
#[derive(Debug, Default)]
pub(super) struct PendingHeartbeats {
    unwritten: Mutex<HashMap<String, NodeMetrics>>,
    unlaid: Mutex<HashMap<String, NodeMetrics>>,
    /// Whether `unlaid` holds any (read without its lock on every read).
    any_unlaid: AtomicBool,
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl PendingHeartbeats {
    fn add(&self, node_id: &str, metrics: NodeMetrics) {
        locked(&self.unwritten).insert(node_id.to_string(), metrics.clone());
        let mut unlaid = locked(&self.unlaid);
        unlaid.insert(node_id.to_string(), metrics);
        self.any_unlaid.store(true, Ordering::Release);
    }

    /// Whether some heartbeats are not laid over the published state yet.
    pub(super) fn any_unlaid(&self) -> bool {
        self.any_unlaid.load(Ordering::Acquire)
    }

    /// When node `node_id` last sent a heartbeat not laid over the state yet.
    fn unlaid_seen(&self, node_id: &str) -> Option<f64> {
        if !self.any_unlaid() {
            return None;
        }
        locked(&self.unlaid).get(node_id).map(|m| m.reported_at)
    }

    /// Lays the heartbeats not laid yet over `state` (the next one to publish).
    pub(super) fn lay_unlaid(&self, state: &mut FleetState, now: f64) {
        let mut unlaid = locked(&self.unlaid);
        for (node_id, metrics) in unlaid.drain() {
            state.heartbeat(&node_id, &metrics, now);
        }
        self.any_unlaid.store(false, Ordering::Release);
    }

    /// Lays every heartbeat not written yet over a state read afresh from the
    /// database.
    pub(super) fn lay_unwritten(&self, state: &mut FleetState, now: f64) {
        for (node_id, metrics) in locked(&self.unwritten).iter() {
            state.heartbeat(node_id, metrics, now);
        }
    }
}

impl Fleet {
    /// Lays a heartbeat over node `node_id`: written at once when `write_now` (a
    /// node coming back online), else with the next flush. Answers when the node
    /// was last seen before, or `None` when it does not exist. Call it after
    /// [`Self::node_of_token`], which caught up with other writers.
    pub async fn heartbeat(
        &self,
        node_id: &str,
        metrics: NodeMetrics,
        write_now: bool,
    ) -> Result<Option<f64>> {
        let Some(previous) = self.last_seen(node_id).await? else {
            return Ok(None);
        };
        if !write_now {
            self.heartbeats.add(node_id, metrics);
            return Ok(Some(previous));
        }
        let id = node_id.to_string();
        self.write_alone(move |fleet| async move {
            let row = [(id.clone(), metrics)];
            let written = fleet.store.record_heartbeats(&row).await?;
            let [(id, metrics)] = row;
            let mut unwritten = locked(&fleet.heartbeats.unwritten);
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

    /// The id of the node whose current token has this hash and when it was last
    /// seen, heartbeats not laid over the state yet included; a heartbeat's check
    /// of its token does not lay them.
    pub async fn node_of_token(&self, token_hash: &str) -> Result<Option<(String, f64)>> {
        let state = self.state_as_published().await?;
        Ok(state.node_of_token(token_hash).map(|(id, last_seen)| {
            let seen = self.heartbeats.unlaid_seen(&id);
            (id, seen.map_or(last_seen, |seen| seen.max(last_seen)))
        }))
    }

    /// When node `node_id` was last seen, heartbeats not laid yet included, or
    /// `None` when it does not exist. Not caught up with other writers: the
    /// heartbeat's caller has just checked the node's token, which was.
    async fn last_seen(&self, node_id: &str) -> Result<Option<f64>> {
        self.load().await?;
        let state = self.published_state();
        let Some(node) = state.snapshot().node(node_id) else {
            return Ok(None);
        };
        let seen = self.heartbeats.unlaid_seen(node_id);
        Ok(Some(
            seen.map_or(node.last_seen, |seen| seen.max(node.last_seen)),
        ))
    }

    /// Writes the heartbeats not written yet in one transaction; the server calls
    /// this on a short interval and when it stops. Answers how many nodes were
    /// written.
    pub async fn flush_heartbeats(&self) -> Result<usize> {
        let batch: Vec<(String, NodeMetrics)> =
            locked(&self.heartbeats.unwritten).drain().collect();
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
                let mut latest = locked(&self.heartbeats.unwritten);
                for (node_id, metrics) in batch {
                    latest.entry(node_id).or_insert(metrics);
                }
                Err(err)
            }
        }
    }
}
