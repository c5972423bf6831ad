//! What the fleet cache holds: the fleet snapshot, node tokens by hash, and the
//! cluster version they reflect.

use std::collections::HashMap;

use crate::model::{NodeMetrics, NodeRecord, NodeUpdate};
use crate::store::{FleetChanges, Snapshot};

/// The fleet as of one cluster version.
#[derive(Debug)]
pub(crate) struct FleetState {
    /// Every node and deployment.
    pub snapshot: Snapshot,
    /// The cluster version the state is known to be at (it may hold later writes
    /// of this process too).
    pub known: u64,
    /// Node token hash → node id.
    tokens: HashMap<String, String>,
    /// Node id → its token's hash.
    token_of: HashMap<String, String>,
}

impl FleetState {
    /// The state `everything` (read from version 0) describes.
    pub(crate) fn load(everything: FleetChanges) -> Self {
        let mut state = Self {
            snapshot: Snapshot::default(),
            known: everything.version.version,
            tokens: HashMap::new(),
            token_of: HashMap::new(),
        };
        for node in &everything.nodes {
            state.set_token(&node.record.id, &node.token_hash);
        }
        state.snapshot = Snapshot::from_changes(everything);
        state
    }

    /// Lays what changed since [`Self::known`] over the state.
    pub(crate) fn apply_changes(&mut self, changes: &FleetChanges) {
        if let Some(ids) = &changes.node_ids {
            let live: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
            let gone: Vec<String> = (self.token_of.keys())
                .filter(|id| !live.contains(id.as_str()))
                .cloned()
                .collect();
            for id in gone {
                self.forget_token(&id);
            }
        }
        for node in &changes.nodes {
            self.set_token(&node.record.id, &node.token_hash);
        }
        self.snapshot.apply_changes(changes);
        self.known = self.known.max(changes.version.version);
    }

    /// Lays a committed registration over the state.
    pub(crate) fn registered(&mut self, node: NodeRecord, token_hash: &str) {
        self.set_token(&node.id, token_hash);
        self.snapshot.upsert_node(node);
    }

    /// Lays a committed cordon or tag change over the state.
    pub(crate) fn updated(&mut self, node_id: &str, update: &NodeUpdate) {
        self.snapshot.update_node(node_id, update);
    }

    /// Lays committed heartbeats over the state.
    pub(crate) fn heartbeats(&mut self, batch: &[(String, NodeMetrics)], only_forward: bool) {
        self.snapshot.heartbeats(batch, only_forward);
    }

    /// Takes a removed node out.
    pub(crate) fn removed(&mut self, node_id: &str) {
        self.forget_token(node_id);
        self.snapshot.remove_node(node_id);
    }

    /// The node whose current token has this hash, with its `last_seen`.
    pub(crate) fn node_of_token(&self, token_hash: &str) -> Option<(String, f64)> {
        let id = self.tokens.get(token_hash)?;
        let node = self.snapshot.node(id)?;
        Some((node.id.clone(), node.last_seen))
    }

    fn set_token(&mut self, node_id: &str, token_hash: &str) {
        if let Some(old) = self
            .token_of
            .insert(node_id.to_string(), token_hash.to_string())
        {
            self.tokens.remove(&old);
        }
        self.tokens
            .insert(token_hash.to_string(), node_id.to_string());
    }

    fn forget_token(&mut self, node_id: &str) {
        if let Some(old) = self.token_of.remove(node_id) {
            self.tokens.remove(&old);
        }
    }
}
