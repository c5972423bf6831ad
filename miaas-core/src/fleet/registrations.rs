//! Node writes: registrations with group commit (concurrent upserts wait in a
//! queue, and whoever gets the writer next commits all of them in one
//! transaction, with one sync to disk; each is answered only after that commit,
//! so acknowledged still means durable), cordons, tags and removals.

use tokio::sync::{OwnedMutexGuard, oneshot};

use super::Fleet;
use crate::model::{NodeRecord, NodeUpdate};
use crate::store::NodeUpsert;
use crate::{Error, Result};

/// A registration waiting for the next commit, with where its answer goes: the
/// node's id, or `None` (an existing name met `only_new`).
pub(super) type QueuedRegistration = (NodeUpsert, oneshot::Sender<Result<Option<String>>>);

/// The node as `upsert` stored it, under `id` (a known name keeps its id, first
/// registration time and schedulability: the snapshot keeps those).
fn record(upsert: &NodeUpsert, id: &str) -> NodeRecord {
    NodeRecord {
        id: id.to_string(),
        name: upsert.name.clone(),
        ip: upsert.ip.clone(),
        capabilities: upsert.capabilities.clone(),
        tags: upsert.tags.clone(),
        registered_at: upsert.now,
        last_seen: upsert.now,
        metrics: None,
        schedulable: true,
    }
}

impl Fleet {
    /// Inserts a node, or updates the node with the same name (keeping its id,
    /// first registration time and schedulability); answers the node's id, or
    /// `None` when the name exists and `node.only_new`. Concurrent registrations
    /// share one commit.
    pub async fn register(&self, node: NodeUpsert) -> Result<Option<String>> {
        self.load().await?;
        let (reply, answer) = oneshot::channel();
        self.registrations.push((node, reply));
        self.answered_or_commit(answer, |writer| {
            let fleet = self.clone();
            async move { fleet.commit_registrations(writer).await }
        })
        .await
        .ok_or_else(|| Error::Unavailable("the registration was dropped".into()))?
    }

    /// Commits every queued registration in one transaction, publishes them and
    /// answers each. The caller holds the writer's turn.
    async fn commit_registrations(&self, _writer: OwnedMutexGuard<()>) {
        let (upserts, replies): (Vec<_>, Vec<_>) = self.registrations.take().into_iter().unzip();
        if upserts.is_empty() {
            return;
        }
        let outcome = self.written(self.store.upsert_nodes(&upserts).await).await;
        if let Ok(ids) = &outcome {
            let now = self.clock.now();
            self.publish(|state| {
                for (upsert, id) in upserts.iter().zip(ids) {
                    if let Some(id) = id {
                        state.registered(record(upsert, id), &upsert.token_hash, now);
                    }
                }
            });
        }
        for (i, reply) in replies.into_iter().enumerate() {
            let answer = match &outcome {
                Ok(ids) => Ok(ids.get(i).cloned().flatten()),
                Err(err) => Err(Error::Unavailable(format!(
                    "registration not committed: {err}"
                ))),
            };
            let _ = reply.send(answer);
        }
    }

    /// Sets a node's schedulability and/or tags; `false` when it does not exist.
    pub async fn update_node(&self, id: &str, update: &NodeUpdate) -> Result<bool> {
        self.load().await?;
        let _writer = self.writer.lock().await;
        let updated = self
            .written(self.store.update_node(id, update).await)
            .await?;
        if updated {
            let now = self.clock.now();
            self.publish(|state| state.updated(id, update, now));
        }
        Ok(updated)
    }

    /// Removes a node (its token stops working); `false` when it did not exist.
    pub async fn delete_node(&self, id: &str) -> Result<bool> {
        self.load().await?;
        let _writer = self.writer.lock().await;
        let deleted = self.written(self.store.delete_node(id).await).await?;
        let now = self.clock.now();
        self.publish(|state| state.removed(id, now));
        Ok(deleted)
    }

    /// A write's outcome; when it failed, whether it committed is unknown and the
    /// state is read afresh. The caller holds the writer's turn.
    pub(super) async fn written<T>(&self, outcome: Result<T>) -> Result<T> {
        if outcome.is_err()
            && let Err(reload) = self.reload().await
        {
            tracing::warn!(error = %reload, "the fleet could not be read again");
        }
        outcome
    }
}
