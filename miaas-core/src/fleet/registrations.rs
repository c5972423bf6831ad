//! Node writes: registrations with group commit (concurrent upserts wait in a
//! queue, and whoever gets the writer next commits all of them in one
//! transaction, with one sync to disk; each is answered only after that commit,
//! so acknowledged still means durable), cordons, tags and removals.

use std::future::Future;

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
        let mut batch = self.registrations.take();
        // a caller gone before its registration was written: it is not made
        batch.retain(|(_, reply)| !reply.is_closed());
        let (upserts, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        if upserts.is_empty() {
            return;
        }
        let outcome = match self.reload_if_stale().await {
            Ok(()) => (self.written(self.store.upsert_nodes(&upserts).await).await)
                .map(|written| (written.value, written.version)),
            Err(err) => Err(err),
        };
        if let Ok((ids, version)) = &outcome {
            let now = self.clock.now();
            self.publish(|state| {
                for (upsert, id) in upserts.iter().zip(ids) {
                    if let Some(id) = id {
                        state.registered(record(upsert, id), &upsert.token_hash, now);
                    }
                }
                state.committed_alone(*version);
            });
        }
        for (i, reply) in replies.into_iter().enumerate() {
            let answer = match &outcome {
                Ok((ids, _)) => Ok(ids.get(i).cloned().flatten()),
                Err(err) => Err(Error::Unavailable(format!(
                    "registration not committed: {err}"
                ))),
            };
            let _ = reply.send(answer);
        }
    }

    /// Sets a node's schedulability and/or tags; `false` when it does not exist.
    pub async fn update_node(&self, id: &str, update: &NodeUpdate) -> Result<bool> {
        let (id, update) = (id.to_string(), update.clone());
        self.write_alone(move |fleet| async move {
            let updated = fleet.store.update_node(&id, &update).await;
            let updated = fleet.written(updated).await?;
            let now = fleet.clock.now();
            fleet.publish(|state| {
                if updated.value {
                    state.updated(&id, &update, now);
                }
                state.committed_alone(updated.version);
            });
            Ok(updated.value)
        })
        .await
    }

    /// Removes a node (its token stops working); `false` when it did not exist.
    pub async fn delete_node(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.write_alone(move |fleet| async move {
            let deleted = fleet.written(fleet.store.delete_node(&id).await).await?;
            let now = fleet.clock.now();
            fleet.publish(|state| {
                state.removed(&id, now);
                state.committed_alone(deleted.version);
            });
            Ok(deleted.value)
        })
        .await
    }

    /// Runs `write` (a store write and its publication) with the writer's turn,
    /// in a task of its own: a caller that goes away cannot leave a write
    /// committed and not published.
    pub(super) async fn write_alone<T, F>(&self, write: impl FnOnce(Fleet) -> F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        self.load().await?;
        let fleet = self.clone();
        let writer = self.writer.clone().lock_owned().await;
        let work = write(fleet.clone());
        tokio::spawn(async move {
            let _writer = writer;
            fleet.reload_if_stale().await?;
            work.await
        })
        .await
        .map_err(|err| Error::Unavailable(format!("the write was not finished: {err}")))?
    }

    /// A write's outcome; when it failed, whether it committed is unknown and the
    /// state is read afresh (or marked stale, to be read before anything else,
    /// when it cannot be). The caller holds the writer's turn.
    pub(super) async fn written<T>(&self, outcome: Result<T>) -> Result<T> {
        if outcome.is_err() {
            self.stale.store(true, std::sync::atomic::Ordering::Release);
            if let Err(reload) = self.reload_if_stale().await {
                tracing::warn!(error = %reload, "the fleet could not be read again");
            }
        }
        outcome
    }
}
