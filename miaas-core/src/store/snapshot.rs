//! [`Snapshot`]: the whole fleet in memory, indexed for placement and for reads.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::page::DeploymentKey;
use crate::model::{Deployment, NodeMetrics, NodeRecord, NodeUpdate};
use crate::placement::Reservation;

/// Numbers the states of snapshots, process-wide (see [`Snapshot::changes`]).
static CHANGES: AtomicU64 = AtomicU64::new(1);

/// Every node and deployment, read inside one transaction; indexed so that one
/// node, a page of nodes by name, or what is placed on a node is found without a
/// scan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Every node, in the order they became known.
    nodes: Vec<NodeRecord>,
    /// Node id → position in `nodes`.
    node_ids: HashMap<String, usize>,
    /// Node name → position in `nodes`.
    node_names: BTreeMap<String, usize>,
    /// Every deployment, oldest first.
    deployments: Vec<Deployment>,
    /// Deployment id → position in `deployments`.
    positions: HashMap<String, usize>,
    /// Node id → positions (ascending) of the deployments holding resources on it.
    placed: HashMap<String, Vec<usize>>,
    /// Node id → positions (ascending) of the deployments moved away from it and
    /// not yet confirmed removed there.
    moved_from: HashMap<String, Vec<usize>>,
    /// How many deployments wait for capacity
    /// ([`DeploymentStatus::waits_for_capacity`](crate::model::DeploymentStatus::waits_for_capacity)).
    waiting: usize,
    /// Positions of the deployments a reconcile looks at whatever their node's
    /// state ([`Deployment::needs_attention`]).
    attention: BTreeSet<usize>,
    /// Unique to this content: a process-wide count of snapshot changes.
    changes: u64,
    /// Names a line of states that differ only by writes laid over them: what
    /// placement derived from one state of the line can be brought to any later
    /// one by replaying [`Self::journal`] (see [`Self::lineage`]).
    lineage: u64,
    /// What each write laid over the snapshot since the lineage began did to the
    /// reservations, one entry per write.
    journal: Vec<ReservationChange>,
    /// The positions of the nodes changed in place or added, in order, the most
    /// recent [`MAX_NODE_CHANGES`] at most (see [`Self::nodes_changed_since`]).
    node_changes: VecDeque<usize>,
    /// How many node changes came before the first in `node_changes`.
    node_changes_dropped: u64,
}

/// Most node changes remembered; a ledger further behind refreshes every node.
const MAX_NODE_CHANGES: usize = 65_536;

/// Most journal entries kept; past it the snapshot starts a new lineage.
const MAX_JOURNAL: usize = 16_384;

/// What one write did to the reservations: the deployment's before and after
/// (`None` where it held nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct ReservationChange {
    /// What it reserved before the write.
    pub before: Option<Reservation>,
    /// What it reserves after.
    pub after: Option<Reservation>,
}

impl Snapshot {
    /// A snapshot of `nodes` and `deployments` (oldest first).
    pub fn new(nodes: Vec<NodeRecord>, deployments: Vec<Deployment>) -> Self {
        let mut snapshot = Self {
            nodes,
            deployments,
            ..Self::default()
        };
        snapshot.index_nodes();
        snapshot.index_deployments();
        snapshot.replaced();
        snapshot
    }

    /// A snapshot of everything `changes` holds (read from version 0).
    pub fn from_changes(changes: super::FleetChanges) -> Self {
        let nodes = changes.nodes.into_iter().map(|n| n.record).collect();
        Self::new(nodes, changes.deployments)
    }

    /// Names the line of states this one belongs to: a ledger made when the
    /// journal had `n` entries serves any later state of the same lineage, once the
    /// journal's entries from `n` on are replayed over it. Nodes that change or
    /// join keep the lineage (a ledger refreshes them); anything else (a node
    /// removed, the fleet read afresh) starts a new one.
    pub fn lineage(&self) -> u64 {
        self.lineage
    }

    /// See [`Self::lineage`].
    pub fn journal(&self) -> &[ReservationChange] {
        &self.journal
    }

    /// A change that what placement derived from the old state does not survive.
    fn replaced(&mut self) {
        self.changed();
        self.lineage = self.changes;
        self.journal.clear();
        self.node_changes_dropped = self.node_mark();
        self.node_changes.clear();
    }

    /// Counts the changes of nodes so far: give it to [`Self::nodes_changed_since`]
    /// later.
    pub fn node_mark(&self) -> u64 {
        self.node_changes_dropped + self.node_changes.len() as u64
    }

    /// The positions in [`Self::nodes`] of the nodes changed in place or added
    /// since `mark` (of this lineage), with repeats; `None` when they are no
    /// longer all known (then any node may have changed).
    pub fn nodes_changed_since(&self, mark: u64) -> Option<impl Iterator<Item = usize> + '_> {
        let skip = usize::try_from(mark.checked_sub(self.node_changes_dropped)?).ok()?;
        (skip <= self.node_changes.len()).then(|| self.node_changes.iter().skip(skip).copied())
    }

    fn node_changed(&mut self, position: usize) {
        if self.node_changes.len() == MAX_NODE_CHANGES {
            self.node_changes.pop_front();
            self.node_changes_dropped += 1;
        }
        self.node_changes.push_back(position);
    }

    /// Differs between any two states of any snapshots of this process, so that
    /// what is derived from one state can be kept until it changes.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    fn changed(&mut self) {
        self.changes = CHANGES.fetch_add(1, Ordering::Relaxed);
    }

    /// Every node, in no particular order.
    pub fn nodes(&self) -> &[NodeRecord] {
        &self.nodes
    }

    /// Every deployment, oldest first.
    pub fn deployments(&self) -> &[Deployment] {
        &self.deployments
    }

    /// One deployment by id.
    pub fn find(&self, id: &str) -> Option<&Deployment> {
        self.positions.get(id).map(|&i| &self.deployments[i])
    }

    /// Where a deployment is in [`Self::deployments`].
    pub fn position(&self, id: &str) -> Option<usize> {
        self.positions.get(id).copied()
    }

    /// One node by id.
    pub fn node(&self, id: &str) -> Option<&NodeRecord> {
        self.node_ids.get(id).map(|&i| &self.nodes[i])
    }

    /// Up to `limit` nodes named after `after` (all when `None`), by name.
    pub fn nodes_page(&self, after: Option<&str>, limit: usize) -> Vec<NodeRecord> {
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.node_names
            .range::<str, _>((from, Bound::Unbounded))
            .take(limit)
            .map(|(_, &i)| self.nodes[i].clone())
            .collect()
    }

    /// Every node, by name.
    pub fn nodes_by_name(&self) -> Vec<NodeRecord> {
        self.nodes_page(None, usize::MAX)
    }

    /// Up to `limit` deployments created after `after` (by creation time, then id).
    pub fn deployments_page(&self, after: Option<&DeploymentKey>, limit: usize) -> Vec<Deployment> {
        let from = after.map_or(0, |key| {
            self.deployments.partition_point(|d| {
                (d.created_at, d.deployment_id.as_str())
                    <= (key.created_at, key.deployment_id.as_str())
            })
        });
        self.deployments
            .iter()
            .skip(from)
            .take(limit)
            .cloned()
            .collect()
    }

    /// The deployments placed on `node_id` or still to be removed from it (moved
    /// away), oldest first: what its desired state is made of.
    pub fn deployments_of_node(&self, node_id: &str) -> Vec<Deployment> {
        let placed = self.placed.get(node_id).map_or(&[][..], Vec::as_slice);
        let moved = self.moved_from.get(node_id).map_or(&[][..], Vec::as_slice);
        let mut positions: Vec<usize> = placed.iter().chain(moved).copied().collect();
        positions.sort_unstable();
        positions.dedup();
        positions
            .into_iter()
            .map(|i| self.deployments[i].clone())
            .collect()
    }

    /// What the deployments placed on `node_id` reserve, oldest first.
    pub fn reservations_on(&self, node_id: &str) -> Vec<Reservation> {
        self.placed
            .get(node_id)
            .into_iter()
            .flatten()
            .map(|&i| reservation(&self.deployments[i]))
            .collect()
    }

    /// Positions (ascending) of the deployments that [need
    /// attention](Deployment::needs_attention): what a reconcile looks at besides
    /// the deployments of offline nodes.
    pub fn needing_attention(&self) -> impl Iterator<Item = usize> + '_ {
        self.attention.iter().copied()
    }

    /// Each node id with the positions (ascending) of the deployments holding
    /// resources on it.
    pub fn placed_by_node(&self) -> impl Iterator<Item = (&str, &[usize])> + '_ {
        self.placed
            .iter()
            .map(|(node, at)| (node.as_str(), at.as_slice()))
    }

    /// Whether any deployment [waits for
    /// capacity](crate::model::DeploymentStatus::waits_for_capacity).
    pub fn has_waiting(&self) -> bool {
        self.waiting > 0
    }

    /// What every placed deployment reserves, oldest first.
    pub fn reservations(&self) -> Vec<Reservation> {
        self.deployments
            .iter()
            .filter(|d| d.holds_resources())
            .map(reservation)
            .collect()
    }

    /// Lays committed writes over the snapshot (replaced by id, new ones in order
    /// of creation).
    pub(crate) fn apply(&mut self, writes: &[Deployment]) {
        if writes.is_empty() {
            return;
        }
        if self.journal.len() + writes.len() > MAX_JOURNAL {
            self.replaced();
        }
        self.changed();
        let key = |d: &Deployment| (d.created_at, d.deployment_id.clone());
        let stored = self.deployments.len();
        let mut earliest_new: Option<(f64, String)> = None;
        for deployment in writes {
            let after = deployment
                .holds_resources()
                .then(|| reservation(deployment));
            match self.positions.get(&deployment.deployment_id) {
                Some(&i) => {
                    let before = self.deployments[i]
                        .holds_resources()
                        .then(|| reservation(&self.deployments[i]));
                    self.journal.push(ReservationChange { before, after });
                    self.unplace(i);
                    self.deployments[i] = deployment.clone();
                    self.place(i);
                }
                None => {
                    self.journal.push(ReservationChange {
                        before: None,
                        after,
                    });
                    let new = key(deployment);
                    if earliest_new.as_ref().is_none_or(|e| new < *e) {
                        earliest_new = Some(new);
                    }
                    let i = self.deployments.len();
                    if i == self.deployments.capacity() {
                        // grow by an eighth, not double: the list may be 100,000 long
                        self.deployments.reserve_exact(i / 8 + 16);
                    }
                    self.positions.insert(deployment.deployment_id.clone(), i);
                    self.deployments.push(deployment.clone());
                    self.place(i);
                }
            }
        }
        // new deployments created before stored ones (another replica's, say): only
        // the tail from the first later one is sorted and indexed again
        let Some(earliest) = earliest_new else {
            return;
        };
        let from = self.deployments[..stored].partition_point(|d| key(d) < earliest);
        if from == stored {
            return;
        }
        for i in from..self.deployments.len() {
            self.unplace(i);
        }
        self.deployments[from..].sort_by(|a, b| {
            key(a)
                .partial_cmp(&key(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        for i in from..self.deployments.len() {
            self.positions
                .insert(self.deployments[i].deployment_id.clone(), i);
            self.place(i);
        }
    }

    /// Lays a committed registration over the nodes: a new name is added, a known
    /// one takes the new address, capabilities, tags and `last_seen`.
    pub(crate) fn upsert_node(&mut self, node: NodeRecord) {
        // a known node changes in place and a new one comes last: a kept ledger
        // refreshes both (see `Cluster::refresh`)
        self.changed();
        match self.node_names.get(&node.name) {
            Some(&i) => {
                let existing = &mut self.nodes[i];
                existing.ip = node.ip;
                existing.capabilities = node.capabilities;
                existing.tags = node.tags;
                existing.last_seen = node.last_seen;
                self.node_changed(i);
            }
            None => {
                let i = self.nodes.len();
                self.node_ids.insert(node.id.clone(), i);
                self.node_names.insert(node.name.clone(), i);
                self.nodes.push(node);
                self.node_changed(i);
            }
        }
    }

    /// Lays a committed [`NodeUpdate`] over node `id`.
    pub(crate) fn update_node(&mut self, id: &str, update: &NodeUpdate) {
        self.changed();
        if let Some(&i) = self.node_ids.get(id) {
            let node = &mut self.nodes[i];
            if let Some(schedulable) = update.schedulable {
                node.schedulable = schedulable;
            }
            if let Some(tags) = &update.tags {
                node.tags.clone_from(tags);
            }
            self.node_changed(i);
        }
    }

    /// Lays committed heartbeats over the nodes; with `only_forward`, a heartbeat
    /// older than what the node has is skipped.
    pub(crate) fn heartbeats(&mut self, batch: &[(String, NodeMetrics)], only_forward: bool) {
        self.changed();
        for (id, metrics) in batch {
            if let Some(&i) = self.node_ids.get(id) {
                let node = &mut self.nodes[i];
                if !only_forward || node.last_seen < metrics.reported_at {
                    node.last_seen = metrics.reported_at;
                    node.metrics = Some(metrics.clone());
                    self.node_changed(i);
                }
            }
        }
    }

    /// Takes a removed node out (what was placed on it stays as stored).
    pub(crate) fn remove_node(&mut self, id: &str) {
        if self.node_ids.contains_key(id) {
            self.nodes.retain(|n| n.id != id);
            self.index_nodes();
            self.replaced();
        }
    }

    /// Lays what changed since this snapshot's version over it: nodes replaced
    /// whole by id (removed ones dropped), deployments as [`Self::apply`] does.
    pub(crate) fn apply_changes(&mut self, changes: &super::FleetChanges) {
        if changes.nodes.is_empty() && changes.node_ids.is_none() && changes.deployments.is_empty()
        {
            return;
        }
        if let Some(ids) = &changes.node_ids {
            let ids: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
            self.nodes.retain(|n| ids.contains(n.id.as_str()));
            self.index_nodes();
        }
        for node in &changes.nodes {
            let i = match self.node_ids.get(&node.record.id) {
                Some(&i) => {
                    self.nodes[i] = node.record.clone();
                    i
                }
                None => {
                    let i = self.nodes.len();
                    self.node_ids.insert(node.record.id.clone(), i);
                    self.node_names.insert(node.record.name.clone(), i);
                    self.nodes.push(node.record.clone());
                    i
                }
            };
            self.node_changed(i);
        }
        if changes.node_ids.is_some() {
            // a node may be gone: what placement derived is built again
            self.apply(&changes.deployments);
            self.replaced();
        } else {
            // nodes changed in place or joined (a kept ledger refreshes them), and
            // the deployments' writes are in the journal
            self.changed();
            self.apply(&changes.deployments);
        }
    }

    fn index_nodes(&mut self) {
        self.node_ids = (self.nodes.iter().enumerate())
            .map(|(i, n)| (n.id.clone(), i))
            .collect();
        self.node_names = (self.nodes.iter().enumerate())
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
    }

    fn index_deployments(&mut self) {
        self.positions = (self.deployments.iter().enumerate())
            .map(|(i, d)| (d.deployment_id.clone(), i))
            .collect();
        self.placed.clear();
        self.moved_from.clear();
        self.waiting = 0;
        self.attention.clear();
        for i in 0..self.deployments.len() {
            self.place(i);
        }
    }

    /// Indexes deployment `i` under its node, if it holds resources there, and
    /// counts it if it waits.
    fn place(&mut self, i: usize) {
        let deployment = &self.deployments[i];
        self.waiting += usize::from(deployment.status.waits_for_capacity());
        if deployment.needs_attention() {
            self.attention.insert(i);
        }
        if let (true, Some(node)) = (deployment.holds_resources(), &deployment.node_id) {
            insert_sorted(self.placed.entry(node.clone()).or_default(), i);
        }
        if let Some(node) = &deployment.previous_node_id {
            insert_sorted(self.moved_from.entry(node.clone()).or_default(), i);
        }
    }

    /// Takes deployment `i` out of its node's index and the count of those waiting.
    fn unplace(&mut self, i: usize) {
        self.waiting -= usize::from(self.deployments[i].status.waits_for_capacity());
        self.attention.remove(&i);
        let deployment = &self.deployments[i];
        if let Some(node) = deployment.node_id.as_deref() {
            remove_sorted(&mut self.placed, node, i);
        }
        if let Some(node) = deployment.previous_node_id.as_deref() {
            remove_sorted(&mut self.moved_from, node, i);
        }
    }
}

/// Adds position `i` to an ascending list.
fn insert_sorted(positions: &mut Vec<usize>, i: usize) {
    if let Err(at) = positions.binary_search(&i) {
        positions.insert(at, i);
    }
}

/// Takes position `i` out of `node`'s ascending list, and the list once empty.
fn remove_sorted(by_node: &mut HashMap<String, Vec<usize>>, node: &str, i: usize) {
    if let Some(positions) = by_node.get_mut(node) {
        if let Ok(at) = positions.binary_search(&i) {
            positions.remove(at);
        }
        if positions.is_empty() {
            by_node.remove(node);
        }
    }
}

fn reservation(deployment: &Deployment) -> Reservation {
    Reservation {
        deployment_id: deployment.deployment_id.clone(),
        node_id: deployment.node_id.clone().unwrap_or_default(),
        requirements: deployment.requirements.clone(),
        gpu_ids: deployment.gpu_ids.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DeploymentStatus;

    fn node(id: &str, name: &str) -> NodeRecord {
        NodeRecord {
            id: id.into(),
            name: name.into(),
            ip: "10.0.0.1".into(),
            capabilities: serde_json::from_value(
                serde_json::json!({"os": "linux", "cpu_count": 4, "mem_mb": 8000, "disk_mb": 0}),
            )
            .expect("capabilities"),
            tags: vec![],
            registered_at: 0.0,
            last_seen: 0.0,
            metrics: None,
            schedulable: true,
        }
    }

    fn deployment(id: &str, node: Option<&str>, status: DeploymentStatus, at: f64) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "deployment_id": id, "template_id": "t", "action": "apply",
            "status": status, "message": "", "node_id": node, "env": {},
            "rendered_compose": "", "revision": 1, "created_at": at, "updated_at": at
        }))
        .expect("deployment")
    }

    fn ids(reservations: &[Reservation]) -> Vec<&str> {
        reservations
            .iter()
            .map(|r| r.deployment_id.as_str())
            .collect()
    }

    #[test]
    fn the_nodes_changed_since_a_mark_are_told_until_too_many_or_a_node_goes() {
        let mut snapshot = Snapshot::new(vec![node("1", "a"), node("2", "b")], vec![]);
        let changed = |snapshot: &Snapshot, mark| {
            (snapshot.nodes_changed_since(mark)).map(|changes| changes.collect::<Vec<_>>())
        };
        let start = snapshot.node_mark();
        assert_eq!(changed(&snapshot, start), Some(vec![]));
        let update = NodeUpdate {
            schedulable: Some(false),
            ..NodeUpdate::default()
        };
        snapshot.update_node("2", &update);
        snapshot.upsert_node(node("3", "c"));
        let beat = NodeMetrics {
            cpu_usage: 0.0,
            mem_usage: 0.0,
            disk_free_mb: 0,
            running_containers: vec![],
            gpus: vec![],
            reported_at: 5.0,
        };
        snapshot.heartbeats(&[("1".into(), beat.clone())], true);
        snapshot.heartbeats(&[("1".into(), beat)], true);
        assert_eq!(
            changed(&snapshot, start),
            Some(vec![1, 2, 0]),
            "an old heartbeat changes nothing"
        );
        let later = snapshot.node_mark();
        assert_eq!(changed(&snapshot, later), Some(vec![]));

        for _ in 0..MAX_NODE_CHANGES {
            snapshot.update_node("1", &update);
        }
        assert_eq!(changed(&snapshot, start), None, "forgotten");
        assert_eq!(
            changed(&snapshot, later).map(|c| c.len()),
            Some(MAX_NODE_CHANGES)
        );

        snapshot.remove_node("3");
        assert_eq!(changed(&snapshot, later), None, "a new lineage");
        assert_eq!(changed(&snapshot, snapshot.node_mark()), Some(vec![]));
    }

    #[test]
    fn nodes_are_found_by_id_and_paged_by_name_as_they_change() {
        let mut snapshot = Snapshot::new(vec![node("1", "b"), node("2", "d")], vec![]);
        snapshot.upsert_node(node("3", "a"));
        snapshot.upsert_node(NodeRecord {
            ip: "10.9.9.9".into(),
            ..node("ignored", "d")
        });
        let names = |page: Vec<NodeRecord>| page.into_iter().map(|n| n.name).collect::<Vec<_>>();
        assert_eq!(names(snapshot.nodes_by_name()), ["a", "b", "d"]);
        assert_eq!(names(snapshot.nodes_page(Some("a"), 1)), ["b"]);
        assert_eq!(names(snapshot.nodes_page(Some("b"), 5)), ["d"]);
        assert_eq!(snapshot.node("2").map(|n| n.ip.as_str()), Some("10.9.9.9"));
        assert_eq!(snapshot.node("3").map(|n| n.name.as_str()), Some("a"));
        assert!(
            snapshot.node("ignored").is_none(),
            "a known name keeps its id"
        );
    }

    #[test]
    fn what_is_placed_on_a_node_follows_every_write() {
        use DeploymentStatus::*;
        let mut snapshot = Snapshot::new(
            vec![node("n1", "one"), node("n2", "two")],
            vec![
                deployment("a", Some("n1"), Running, 1.0),
                deployment("b", Some("n1"), Deleted, 2.0),
                deployment("c", Some("n2"), Scheduled, 3.0),
            ],
        );
        assert_eq!(ids(&snapshot.reservations_on("n1")), ["a"]);
        assert!(!snapshot.has_waiting());
        snapshot.apply(&[
            deployment("c", Some("n1"), Scheduled, 3.0),
            deployment("d", Some("n1"), Lost, 4.0),
            deployment("a", None, Pending, 1.0),
        ]);
        assert_eq!(ids(&snapshot.reservations_on("n1")), ["c", "d"]);
        assert!(snapshot.reservations_on("n2").is_empty());
        assert!(snapshot.has_waiting(), "a is pending and d lost");
        snapshot.apply(&[deployment("a", Some("n2"), Scheduled, 1.0)]);
        assert!(snapshot.has_waiting(), "d is lost");
        snapshot.apply(&[deployment("d", Some("n1"), Running, 4.0)]);
        assert!(!snapshot.has_waiting());
        // created before the others: the order and every index are rebuilt
        snapshot.apply(&[deployment("early", Some("n1"), Running, 0.5)]);
        assert_eq!(ids(&snapshot.reservations_on("n1")), ["early", "c", "d"]);
        assert_eq!(ids(&snapshot.reservations()), ["early", "a", "c", "d"]);
        assert_eq!(snapshot.find("d").map(|d| d.created_at), Some(4.0));
        // a moves from n2 to n1: n2 still has it to remove until it confirms
        let moved = Deployment {
            previous_node_id: Some("n2".into()),
            ..deployment("a", Some("n1"), Scheduled, 1.0)
        };
        snapshot.apply(std::slice::from_ref(&moved));
        let of_node = |snapshot: &Snapshot, node| {
            (snapshot.deployments_of_node(node).into_iter())
                .map(|d| d.deployment_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(of_node(&snapshot, "n1"), ["early", "a", "c", "d"]);
        assert_eq!(of_node(&snapshot, "n2"), ["a"]);
        let mut rebuilt = Snapshot::new(snapshot.nodes.clone(), snapshot.deployments.clone());
        rebuilt.changes = snapshot.changes;
        rebuilt.lineage = snapshot.lineage;
        rebuilt.journal.clone_from(&snapshot.journal);
        assert_eq!(snapshot, rebuilt, "the moved-from index as if built afresh");
        snapshot.apply(&[Deployment {
            previous_node_id: None,
            ..moved
        }]);
        assert!(of_node(&snapshot, "n2").is_empty(), "removal confirmed");
        let mut rebuilt = Snapshot::new(snapshot.nodes.clone(), snapshot.deployments.clone());
        assert_ne!(rebuilt.changes(), snapshot.changes());
        rebuilt.changes = snapshot.changes;
        rebuilt.lineage = snapshot.lineage;
        rebuilt.journal.clone_from(&snapshot.journal);
        assert_eq!(snapshot, rebuilt, "every index as if built afresh");
        let before = snapshot.changes();
        snapshot.heartbeats(&[], true);
        assert_ne!(snapshot.changes(), before);
    }
}
