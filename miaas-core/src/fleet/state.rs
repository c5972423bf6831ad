//! [`FleetState`]: one state of the fleet as the service reads it and decides
//! over it: the nodes and deployments, the node tokens, and the placement ledger
//! that follows them, with the version they are at.

use imbl::HashMap;

use super::snapshot::Snapshot;
use crate::model::{Deployment, NodeMetrics, NodeRecord, NodeUpdate};
use crate::placement::{Candidate, Ledger};
use crate::store::FleetChanges;

/// The fleet at one version. Cheap to copy (persistent collections): a decision
/// changes a copy and the fleet publishes it once committed.
#[derive(Debug, Clone, Default)]
pub struct FleetState {
    /// The cluster version of the database this state holds every write of.
    version: u64,
    /// Counts the states this process published: heartbeats and its own writes
    /// change the state without the version telling it.
    publication: u64,
    snapshot: Snapshot,
    /// What is reserved on each node, with the nodes' liveness: what placement
    /// decides over.
    ledger: Ledger,
    /// Node token hash → node id.
    tokens: HashMap<String, String>,
    /// Node id → its token's hash.
    token_of: HashMap<String, String>,
    /// How long a node stays online after it was last seen (seconds).
    timeout: f64,
}

impl FleetState {
    /// The state `everything` (read from version 0) describes, at time `now`.
    pub(crate) fn load(everything: FleetChanges, now: f64, timeout: f64) -> Self {
        let mut state = Self {
            version: everything.version.version,
            publication: 0,
            snapshot: Snapshot::default(),
            ledger: Ledger::default(),
            tokens: HashMap::new(),
            token_of: HashMap::new(),
            timeout,
        };
        for node in &everything.nodes {
            state.set_token(&node.record.id, &node.token_hash);
        }
        let nodes = everything.nodes.into_iter().map(|n| n.record).collect();
        state.snapshot = Snapshot::of_shared(nodes, everything.deployments);
        state.rebuild_ledger(now);
        state
    }

    /// The cluster version this state holds every write of.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Differs between any two states this process published (the cluster
    /// version and the publication count), so that what is made of one state may
    /// be kept while it stays the same.
    pub fn views_version(&self) -> (u64, u64) {
        (self.version, self.publication)
    }

    /// Counts one more publication (see [`Self::views_version`]).
    pub(crate) fn published(&mut self) {
        self.publication += 1;
    }

    /// Lays over this state, read afresh, the heartbeats `previous` had that are
    /// newer than what was read.
    pub(crate) fn keep_newer_heartbeats(&mut self, previous: &FleetState, now: f64) {
        for node in previous.snapshot.nodes() {
            if let Some(metrics) = &node.metrics
                && self
                    .snapshot
                    .node(&node.id)
                    .is_some_and(|read| read.last_seen < node.last_seen)
            {
                let mut metrics = metrics.clone();
                metrics.reported_at = node.last_seen;
                self.heartbeat(&node.id, &metrics, now);
            }
        }
    }

    /// Counts this state, read afresh, as the publication after `previous`, so
    /// that no two states published by this process share a views version.
    pub(crate) fn published_after(&mut self, previous: &FleetState) {
        self.publication = previous.publication + 1;
    }

    /// The nodes and deployments.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The placement ledger: every node with what is reserved on it.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The id and `last_seen` of the node whose current token has this hash.
    pub fn node_of_token(&self, token_hash: &str) -> Option<(String, f64)> {
        let id = self.tokens.get(token_hash)?;
        let node = self.snapshot.node(id)?;
        Some((node.id.clone(), node.last_seen))
    }

    /// The ledger built afresh from the nodes and deployments.
    fn rebuild_ledger(&mut self, now: f64) {
        let timeout = self.timeout;
        let candidates = (self.snapshot.nodes())
            .map(|n| Candidate::from_record(n, n.is_online(now, timeout)))
            .collect::<Vec<_>>();
        self.ledger = Ledger::for_placement(candidates, self.snapshot.deployments());
    }

    /// Marks offline in the ledger the nodes silent for longer than the timeout at
    /// `now`, so that the ledgers made of this state need not look again.
    pub(crate) fn expire(&mut self, now: f64) {
        self.ledger.expire(now, self.timeout);
    }

    /// The ledger as of `now`: nodes silent for longer than the timeout offline.
    pub(crate) fn ledger_at(&self, now: f64) -> Ledger {
        let mut ledger = self.ledger.clone();
        ledger.expire(now, self.timeout);
        ledger
    }

    /// Lays committed deployment writes over the state, reservations included.
    pub(crate) fn apply_writes(&mut self, writes: &[Deployment]) {
        let changes = self.snapshot.apply(writes);
        self.book(changes);
    }

    /// Books what writes did to the reservations on the ledger.
    fn book(&mut self, changes: Vec<super::ReservationChange>) {
        for change in changes {
            if let Some(before) = &change.before {
                self.ledger.release_reservation(before);
            }
            if let Some(after) = &change.after {
                self.ledger.book_reservation(after);
            }
        }
    }

    /// Lays what others committed since [`Self::version`] over the state: nodes
    /// replaced whole (a heartbeat laid here and not written yet is kept when it is
    /// newer), removed ones dropped, deployments as [`Self::apply_writes`] does.
    pub(crate) fn apply_changes(&mut self, changes: &FleetChanges, now: f64) {
        if changes.version.version <= self.version && !changes.is_everything() {
            return;
        }
        let mut removed = false;
        if let Some(ids) = &changes.node_ids {
            let live: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
            let gone: Vec<String> = (self.token_of.keys())
                .filter(|id| !live.contains(id.as_str()))
                .cloned()
                .collect();
            removed = !gone.is_empty() || self.snapshot.nodes().len() > live.len();
            for id in gone {
                self.forget_token(&id);
            }
            self.snapshot.retain_nodes(|n| live.contains(n.id.as_str()));
        }
        for node in &changes.nodes {
            self.set_token(&node.record.id, &node.token_hash);
            let mut record = node.record.clone();
            if let Some(known) = self.snapshot.node(&record.id)
                && known.last_seen > record.last_seen
            {
                record.last_seen = known.last_seen;
                record.metrics.clone_from(&known.metrics);
            }
            let record = self.snapshot.put_node(record);
            self.lay_node(&record, now);
        }
        let written = self
            .snapshot
            .apply_shared(changes.deployments.iter().cloned());
        self.book(written);
        if removed {
            self.rebuild_ledger(now);
        }
        self.version = self.version.max(changes.version.version);
    }

    /// Moves the state to cluster version `version`: a decision of this process,
    /// which read every write before its own.
    pub(crate) fn committed(&mut self, version: u64) {
        self.version = self.version.max(version);
    }

    /// Moves the state to cluster version `version`, the version of a write of
    /// this process laid over it, when no other write came in between (else the
    /// next read catches up with the others').
    pub(crate) fn committed_alone(&mut self, version: u64) {
        if version == self.version + 1 {
            self.version = version;
        }
    }

    /// Lays a committed registration over the state.
    pub(crate) fn registered(&mut self, node: NodeRecord, token_hash: &str, now: f64) {
        let node = self.snapshot.upsert_node(node);
        self.set_token(&node.id, token_hash);
        self.lay_node(&node, now);
    }

    /// Lays a node's record over its candidate in the ledger. A node the ledger
    /// did not have gets the reservations of the deployments already placed on it
    /// here: a catch-up may bring a deployment before its node (the node's row was
    /// written again after the version the catch-up read, by a heartbeat), and
    /// the node's candidate must not start empty then.
    fn lay_node(&mut self, node: &NodeRecord, now: f64) {
        let new = self.ledger.get(&node.id).is_none();
        self.ledger.update_node(node, now, self.timeout);
        if new {
            for deployment in self.snapshot.deployments_of_node(&node.id) {
                if deployment.holds_resources()
                    && deployment.node_id.as_deref() == Some(node.id.as_str())
                {
                    self.ledger.reserve(&node.id, &deployment);
                }
            }
        }
    }

    /// Lays a committed cordon or tag change over the state.
    pub(crate) fn updated(&mut self, node_id: &str, update: &NodeUpdate, now: f64) {
        if let Some(node) = self.snapshot.update_node(node_id, update) {
            self.ledger.update_node(&node, now, self.timeout);
        }
    }

    /// Lays a heartbeat over its node (not written yet: see the fleet's heartbeat
    /// buffer); answers whether the node exists and the heartbeat was newer.
    pub(crate) fn heartbeat(&mut self, node_id: &str, metrics: &NodeMetrics, now: f64) -> bool {
        if !self.snapshot.heartbeat(node_id, metrics) {
            return false;
        }
        if let Some(node) = self.snapshot.node(node_id) {
            let node = node.clone();
            self.ledger.update_node(&node, now, self.timeout);
        }
        true
    }

    /// Takes a removed node out (what was placed on it stays as stored).
    pub(crate) fn removed(&mut self, node_id: &str, now: f64) {
        self.forget_token(node_id);
        if self.snapshot.node(node_id).is_some() {
            self.snapshot.retain_nodes(|n| n.id != node_id);
            self.rebuild_ledger(now);
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::{ClusterVersion, StoredNode};

    fn node(id: &str) -> NodeRecord {
        NodeRecord {
            id: id.into(),
            name: id.into(),
            ip: "10.0.0.1".into(),
            capabilities: serde_json::from_value(serde_json::json!({
                "os": "linux", "cpu_count": 4, "mem_mb": 8000, "disk_mb": 100_000,
                "gpus": [{"id": 0, "model": "L4", "mem_mb": 24000},
                         {"id": 1, "model": "L4", "mem_mb": 24000}]
            }))
            .expect("capabilities"),
            tags: vec![],
            registered_at: 100.0,
            last_seen: 100.0,
            metrics: None,
            schedulable: true,
        }
    }

    fn changes(version: u64, nodes: Vec<NodeRecord>, deployments: Vec<Deployment>) -> FleetChanges {
        FleetChanges {
            version: ClusterVersion {
                version,
                ..ClusterVersion::default()
            },
            since: version - 1,
            nodes: (nodes.into_iter())
                .map(|record| StoredNode {
                    token_hash: format!("hash-{}", record.id),
                    record,
                })
                .collect(),
            node_ids: None,
            deployments: deployments.into_iter().map(Arc::new).collect(),
        }
    }

    #[test]
    fn a_node_that_arrives_after_its_deployment_keeps_the_deployments_reservation() {
        let mut state = FleetState::load(changes(1, vec![], vec![]), 100.0, 60.0);
        let placed: Deployment = serde_json::from_value(serde_json::json!({
            "deployment_id": "d", "template_id": "t", "action": "apply", "status": "running",
            "message": "", "node_id": "n", "env": {}, "rendered_compose": "", "revision": 1,
            "created_at": 100.0, "updated_at": 100.0, "requirements": {"cpus": 1, "gpus": 1},
            "gpu_ids": [0]
        }))
        .expect("a deployment");
        // a catch-up brought the deployment, not yet its node (whose row a
        // heartbeat wrote again after the version read)
        state.apply_changes(&changes(2, vec![], vec![placed]), 100.0);
        state.apply_changes(&changes(3, vec![node("n")], vec![]), 100.0);
        let candidate = state.ledger().get("n").expect("the node's candidate");
        assert_eq!(candidate.reserved.gpu_ids, vec![0], "GPU 0 stays taken");
        assert!((candidate.reserved.cpus - 1.0).abs() < 1e-9);
    }
}
