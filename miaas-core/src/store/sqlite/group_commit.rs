//! Group commit for registrations: concurrent upserts wait in a queue, and whoever
//! gets the writer next commits all of them in one transaction, with one sync to
//! disk. Each is answered only after that commit, so acknowledged still means
//! durable.

use std::sync::Mutex;

use tokio::sync::oneshot;

use super::SqliteStore;
use crate::model::NodeRecord;
use crate::store::NodeUpsert;
use crate::store::rows::encode_json;
use crate::{Error, Result};

/// A registration waiting for the next commit.
pub(super) struct QueuedUpsert {
    new_id: String,
    name: String,
    ip: String,
    capabilities: String,
    tags: String,
    token_hash: String,
    now: f64,
    only_new: bool,
    /// The node as a new registration stores it (id filled in once known).
    record: NodeRecord,
    reply: oneshot::Sender<Result<Option<String>>>,
}

impl QueuedUpsert {
    /// The upsert, encoded, with where its answer goes.
    pub(super) fn new(
        node: &NodeUpsert<'_>,
    ) -> Result<(Self, oneshot::Receiver<Result<Option<String>>>)> {
        let (reply, answer) = oneshot::channel();
        Ok((
            Self {
                new_id: node.new_id.to_string(),
                name: node.name.to_string(),
                ip: node.ip.to_string(),
                capabilities: encode_json(node.capabilities)?,
                tags: encode_json(&node.tags)?,
                token_hash: node.token_hash.to_string(),
                now: node.now,
                only_new: node.only_new,
                record: NodeRecord {
                    id: String::new(),
                    name: node.name.to_string(),
                    ip: node.ip.to_string(),
                    capabilities: node.capabilities.clone(),
                    tags: node.tags.to_vec(),
                    registered_at: node.now,
                    last_seen: node.now,
                    metrics: None,
                    schedulable: true,
                },
                reply,
            },
            answer,
        ))
    }
}

/// Upserts waiting for a commit.
#[derive(Default)]
pub(super) struct UpsertQueue {
    waiting: Mutex<Vec<QueuedUpsert>>,
}

impl std::fmt::Debug for UpsertQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpsertQueue")
    }
}

impl UpsertQueue {
    pub(super) fn push(&self, upsert: QueuedUpsert) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.push(upsert);
        }
    }

    fn take(&self) -> Vec<QueuedUpsert> {
        self.waiting
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }

    /// Commits everything waiting in one transaction on `writer`, lays it over
    /// `kept` (or drops it when the commit fails) and answers each. The caller
    /// holds the writer's turn.
    pub(super) async fn commit(&self, store: &SqliteStore) {
        let (writer, kept, tokens) = (&store.writer, &store.kept, &store.tokens);
        let batch = self.take();
        if batch.is_empty() {
            return;
        }
        let mut results = Vec::with_capacity(batch.len());
        let outcome = async {
            let mut tx = writer.begin().await?;
            for upsert in &batch {
                // a failed statement is undone alone; the others still commit
                let id = sqlx::query_as::<_, (String,)>(crate::store::UPSERT_NODE_SQL)
                    .bind(&upsert.new_id)
                    .bind(&upsert.name)
                    .bind(&upsert.ip)
                    .bind(&upsert.capabilities)
                    .bind(&upsert.tags)
                    .bind(&upsert.token_hash)
                    .bind(upsert.now)
                    .bind(upsert.only_new)
                    .fetch_optional(&mut *tx)
                    .await;
                results.push(id.map(|row| row.map(|(id,)| id)).map_err(Error::from));
            }
            store.commit_own(tx).await
        }
        .await;
        if outcome.is_err() {
            kept.clear();
        }
        let results = results.into_iter().chain(std::iter::repeat_with(|| {
            Err(Error::Unavailable("not run".into()))
        }));
        let mut answered = Vec::with_capacity(batch.len());
        for (upsert, result) in batch.into_iter().zip(results) {
            let answer = match &outcome {
                Ok(_) => result,
                Err(err) => Err(Error::Unavailable(format!(
                    "registration not committed: {err}"
                ))),
            };
            if let Ok(Some(id)) = &answer {
                tokens.insert(&upsert.token_hash, id, upsert.now);
            } else if outcome.is_err() {
                // the batch may or may not have committed: no token of it is trusted
                tokens.clear();
            }
            answered.push((upsert, answer));
        }
        // one commit, one patch; answered after it, so that reads see the nodes
        if let Ok(commit) = outcome {
            kept.patch(commit, |cached| {
                for (upsert, answer) in &answered {
                    if let Ok(Some(id)) = answer {
                        cached.upsert_node(NodeRecord {
                            id: id.clone(),
                            ..upsert.record.clone()
                        });
                    }
                }
            });
        }
        for (upsert, answer) in answered {
            let _ = upsert.reply.send(answer);
        }
    }
}
