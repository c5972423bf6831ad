//! Group commit for registrations: concurrent upserts wait in a queue, and whoever
//! gets the writer next commits all of them in one transaction, with one sync to
//! disk. Each is answered only after that commit, so acknowledged still means
//! durable.

use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::Result;
use crate::model::{NodeCapabilities, NodeRecord};
use crate::store::NodeUpsert;

/// What a registration answers: the node's id, or `None` (an existing name met
/// `only_new`).
pub(crate) type Registered = Result<Option<String>>;

/// A registration waiting for the next commit, owning what it writes.
pub(crate) struct QueuedRegistration {
    new_id: String,
    name: String,
    ip: String,
    capabilities: NodeCapabilities,
    tags: Vec<String>,
    pub(crate) token_hash: String,
    now: f64,
    only_new: bool,
    reply: oneshot::Sender<Registered>,
}

impl QueuedRegistration {
    /// The registration, with where its answer goes.
    pub(crate) fn new(node: &NodeUpsert<'_>) -> (Self, oneshot::Receiver<Registered>) {
        let (reply, answer) = oneshot::channel();
        let queued = Self {
            new_id: node.new_id.to_string(),
            name: node.name.to_string(),
            ip: node.ip.to_string(),
            capabilities: node.capabilities.clone(),
            tags: node.tags.to_vec(),
            token_hash: node.token_hash.to_string(),
            now: node.now,
            only_new: node.only_new,
            reply,
        };
        (queued, answer)
    }

    /// The upsert the store writes.
    pub(crate) fn upsert(&self) -> NodeUpsert<'_> {
        NodeUpsert {
            new_id: &self.new_id,
            name: &self.name,
            ip: &self.ip,
            capabilities: &self.capabilities,
            tags: &self.tags,
            token_hash: &self.token_hash,
            now: self.now,
            only_new: self.only_new,
        }
    }

    /// The node as the upsert stored it, under `id` (a known name keeps its id,
    /// first registration time and schedulability: the snapshot keeps those).
    pub(crate) fn record(&self, id: &str) -> NodeRecord {
        NodeRecord {
            id: id.to_string(),
            name: self.name.clone(),
            ip: self.ip.clone(),
            capabilities: self.capabilities.clone(),
            tags: self.tags.clone(),
            registered_at: self.now,
            last_seen: self.now,
            metrics: None,
            schedulable: true,
        }
    }

    /// Sends the answer.
    pub(crate) fn answer(self, answer: Registered) {
        let _ = self.reply.send(answer);
    }
}

/// Registrations waiting for a commit.
#[derive(Default)]
pub(crate) struct RegistrationQueue {
    waiting: Mutex<Vec<QueuedRegistration>>,
}

impl std::fmt::Debug for RegistrationQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistrationQueue")
    }
}

impl RegistrationQueue {
    pub(crate) fn push(&self, registration: QueuedRegistration) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.push(registration);
        }
    }

    pub(crate) fn take(&self) -> Vec<QueuedRegistration> {
        self.waiting
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }
}
