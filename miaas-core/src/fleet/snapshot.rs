//! [`Snapshot`]: the nodes and deployments of one state of the fleet, indexed so
//! that one node, a page of nodes by name, or what is placed on a node is found
//! without a scan. It is made of persistent collections (`imbl`): a copy costs a
//! few reference counts and shares everything with the original until one of them
//! changes, which is what lets a decision work on a copy while readers keep the
//! published state.

use std::ops::Bound;
use std::sync::Arc;

use imbl::{HashMap, OrdMap, OrdSet, Vector};

use crate::model::page::DeploymentKey;
use crate::model::{Deployment, NodeMetrics, NodeRecord, NodeUpdate};
use crate::placement::Reservation;

/// Every node and deployment of one state of the fleet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Every node, in the order they became known.
    nodes: Vector<Arc<NodeRecord>>,
    /// Node id → position in `nodes`.
    node_ids: HashMap<String, usize>,
    /// Node name → position in `nodes`.
    node_names: OrdMap<String, usize>,
    /// Every deployment, oldest first (by creation time, then id).
    deployments: Vector<Arc<Deployment>>,
    /// Deployment id → position in `deployments` (a B-tree: a hash trie of
    /// 100,000 ids is mostly empty slots).
    positions: OrdMap<String, usize>,
    /// Node id → positions of the deployments holding resources on it.
    placed: HashMap<String, OrdSet<usize>>,
    /// Node id → positions of the deployments moved away from it and not yet
    /// confirmed removed there.
    moved_from: HashMap<String, OrdSet<usize>>,
    /// How many deployments wait for capacity
    /// ([`DeploymentStatus::waits_for_capacity`](crate::model::DeploymentStatus::waits_for_capacity)).
    waiting: usize,
    /// Positions of the deployments a reconcile looks at whatever their node's
    /// state ([`Deployment::needs_attention`]).
    attention: OrdSet<usize>,
}

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
    /// A snapshot of `nodes` and `deployments` (in any order).
    pub fn new(nodes: Vec<NodeRecord>, deployments: Vec<Deployment>) -> Self {
        Self::of_shared(nodes, deployments.into_iter().map(Arc::new).collect())
    }

    /// A snapshot of `nodes` and `deployments` (in any order), holding the
    /// deployments as they are.
    pub fn of_shared(nodes: Vec<NodeRecord>, mut deployments: Vec<Arc<Deployment>>) -> Self {
        deployments.sort_by(|a, b| order(a, b));
        let mut snapshot = Self {
            nodes: nodes.into_iter().map(Arc::new).collect(),
            deployments: deployments.into_iter().collect(),
            ..Self::default()
        };
        snapshot.index_nodes();
        for i in 0..snapshot.deployments.len() {
            snapshot.index_deployment(i);
        }
        snapshot
    }

    /// Every node, in the order they became known.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = &NodeRecord> + '_ {
        self.nodes.iter().map(|n| &**n)
    }

    /// Every deployment, oldest first.
    pub fn deployments(&self) -> impl ExactSizeIterator<Item = &Deployment> + '_ {
        self.deployments.iter().map(|d| &**d)
    }

    /// The deployment at `position` of [`Self::deployments`].
    pub fn deployment_at(&self, position: usize) -> Option<&Deployment> {
        self.deployments.get(position).map(|d| &**d)
    }

    /// One deployment by id.
    pub fn find(&self, id: &str) -> Option<&Deployment> {
        self.positions.get(id).and_then(|&i| self.deployment_at(i))
    }

    /// Where a deployment is in [`Self::deployments`].
    pub fn position(&self, id: &str) -> Option<usize> {
        self.positions.get(id).copied()
    }

    /// One node by id.
    pub fn node(&self, id: &str) -> Option<&NodeRecord> {
        self.node_ids.get(id).map(|&i| &*self.nodes[i])
    }

    /// Up to `limit` nodes named after `after` (all when `None`), by name.
    pub fn nodes_page(&self, after: Option<&str>, limit: usize) -> Vec<NodeRecord> {
        let from = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_string()));
        self.node_names
            .range((from, Bound::Unbounded))
            .take(limit)
            .map(|(_, &i)| (*self.nodes[i]).clone())
            .collect()
    }

    /// Every node, by name.
    pub fn nodes_by_name(&self) -> Vec<NodeRecord> {
        self.nodes_page(None, usize::MAX)
    }

    /// Up to `limit` deployments created after `after` (by creation time, then id).
    pub fn deployments_page(&self, after: Option<&DeploymentKey>, limit: usize) -> Vec<Deployment> {
        let from = after.map_or(0, |key| {
            let key = (key.created_at, key.deployment_id.as_str());
            self.first_after(|d| (d.created_at, d.deployment_id.as_str()) <= key)
        });
        (self.deployments.iter().skip(from).take(limit))
            .map(|d| (**d).clone())
            .collect()
    }

    /// The first position whose deployment is not `before` (they come first).
    fn first_after(&self, before: impl Fn(&Deployment) -> bool) -> usize {
        let (mut low, mut high) = (0, self.deployments.len());
        while low < high {
            let middle = low + (high - low) / 2;
            if before(&self.deployments[middle]) {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low
    }

    /// The deployments placed on `node_id` or still to be removed from it (moved
    /// away), oldest first: what its desired state is made of.
    pub fn deployments_of_node(&self, node_id: &str) -> Vec<Deployment> {
        let mut positions: OrdSet<usize> = self.placed.get(node_id).cloned().unwrap_or_default();
        if let Some(moved) = self.moved_from.get(node_id) {
            positions = positions.union(moved.clone());
        }
        (positions.iter())
            .map(|&i| (*self.deployments[i]).clone())
            .collect()
    }

    /// What the deployments placed on `node_id` use of it, without copying
    /// their reservations.
    pub fn usage_on(&self, node_id: &str) -> crate::model::NodeUsage {
        let mut usage = crate::model::NodeUsage::default();
        for &i in self.placed.get(node_id).into_iter().flatten() {
            crate::placement::book_usage(&mut usage, &self.deployments[i]);
        }
        usage
    }

    /// What the deployments placed on `node_id` reserve, oldest first.
    pub fn reservations_on(&self, node_id: &str) -> Vec<Reservation> {
        (self.placed.get(node_id).into_iter().flatten())
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
    pub fn placed_by_node(&self) -> impl Iterator<Item = (&str, impl Iterator<Item = usize>)> {
        (self.placed.iter()).map(|(node, at)| (node.as_str(), at.iter().copied()))
    }

    /// Whether any deployment [waits for
    /// capacity](crate::model::DeploymentStatus::waits_for_capacity).
    pub fn has_waiting(&self) -> bool {
        self.waiting > 0
    }

    /// What every placed deployment reserves, oldest first.
    pub fn reservations(&self) -> Vec<Reservation> {
        (self.deployments())
            .filter(|d| d.holds_resources())
            .map(reservation)
            .collect()
    }

    /// Lays committed writes over the snapshot (replaced by id, new ones in order
    /// of creation); answers what each did to the reservations.
    pub(crate) fn apply(&mut self, writes: &[Deployment]) -> Vec<ReservationChange> {
        self.apply_shared(writes.iter().map(|d| Arc::new(d.clone())))
    }

    /// [`Self::apply`], holding the deployments as they are.
    pub(crate) fn apply_shared(
        &mut self,
        writes: impl IntoIterator<Item = Arc<Deployment>>,
    ) -> Vec<ReservationChange> {
        let mut changes = Vec::new();
        for deployment in writes {
            let after = deployment
                .holds_resources()
                .then(|| reservation(&deployment));
            let before = match self.positions.get(&deployment.deployment_id) {
                Some(&i) => {
                    let before = self.deployments[i]
                        .holds_resources()
                        .then(|| reservation(&self.deployments[i]));
                    self.unindex_deployment(i);
                    self.deployments.set(i, deployment);
                    self.index_deployment(i);
                    before
                }
                None => {
                    self.insert(deployment);
                    None
                }
            };
            changes.push(ReservationChange { before, after });
        }
        changes
    }

    /// Adds a new deployment at its place in the order: at the end, unless another
    /// replica created it before ones already here.
    fn insert(&mut self, deployment: Arc<Deployment>) {
        let at = self.first_after(|d| order(d, &deployment).is_lt());
        let tail: Vec<Arc<Deployment>> = (at..self.deployments.len())
            .map(|i| self.deployments[i].clone())
            .collect();
        for i in at..self.deployments.len() {
            self.unindex_deployment(i);
        }
        self.deployments.truncate(at);
        self.deployments.push_back(deployment);
        self.deployments.extend(tail);
        for i in at..self.deployments.len() {
            self.index_deployment(i);
        }
    }

    /// Lays a committed registration over the nodes: a new name is added, a known
    /// one takes the new address, capabilities, tags and `last_seen`. Answers the
    /// node as it now is.
    pub(crate) fn upsert_node(&mut self, node: NodeRecord) -> NodeRecord {
        match self.node_names.get(&node.name).copied() {
            Some(i) => {
                let existing = Arc::make_mut(&mut self.nodes[i]);
                existing.ip = node.ip;
                existing.capabilities = node.capabilities;
                existing.tags = node.tags;
                existing.last_seen = node.last_seen;
                existing.clone()
            }
            None => self.put_node(node),
        }
    }

    /// Replaces node `node.id` whole, or adds it.
    pub(crate) fn put_node(&mut self, node: NodeRecord) -> NodeRecord {
        match self.node_ids.get(&node.id).copied() {
            Some(i) => {
                if self.nodes[i].name != node.name {
                    self.node_names.remove(&self.nodes[i].name);
                    self.node_names.insert(node.name.clone(), i);
                }
                self.nodes.set(i, Arc::new(node.clone()));
            }
            None => {
                let i = self.nodes.len();
                self.node_ids.insert(node.id.clone(), i);
                self.node_names.insert(node.name.clone(), i);
                self.nodes.push_back(Arc::new(node.clone()));
            }
        }
        node
    }

    /// Lays a committed [`NodeUpdate`] over node `id`; answers the node as it now is.
    pub(crate) fn update_node(&mut self, id: &str, update: &NodeUpdate) -> Option<NodeRecord> {
        let i = *self.node_ids.get(id)?;
        let node = Arc::make_mut(&mut self.nodes[i]);
        if let Some(schedulable) = update.schedulable {
            node.schedulable = schedulable;
        }
        if let Some(tags) = &update.tags {
            node.tags.clone_from(tags);
        }
        Some(node.clone())
    }

    /// Lays a heartbeat over node `id`, unless it is older than what the node has;
    /// answers whether it was laid.
    pub(crate) fn heartbeat(&mut self, id: &str, metrics: &NodeMetrics) -> bool {
        let Some(&i) = self.node_ids.get(id) else {
            return false;
        };
        if self.nodes[i].last_seen > metrics.reported_at {
            return false;
        }
        let node = Arc::make_mut(&mut self.nodes[i]);
        node.last_seen = metrics.reported_at;
        node.metrics = Some(metrics.clone());
        true
    }

    /// Keeps only the nodes `keep` says yes to (what was placed on the others
    /// stays as stored).
    pub(crate) fn retain_nodes(&mut self, keep: impl Fn(&NodeRecord) -> bool) {
        if self.nodes.iter().all(|n| keep(n)) {
            return;
        }
        self.nodes.retain(|n| keep(n));
        self.index_nodes();
    }

    fn index_nodes(&mut self) {
        self.node_ids = (self.nodes.iter().enumerate())
            .map(|(i, n)| (n.id.clone(), i))
            .collect();
        self.node_names = (self.nodes.iter().enumerate())
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
    }

    /// Indexes deployment `i`: by id, under its node if it holds resources there,
    /// and in the counts of those waiting and needing attention.
    fn index_deployment(&mut self, i: usize) {
        let deployment = self.deployments[i].clone();
        self.positions.insert(deployment.deployment_id.clone(), i);
        self.waiting += usize::from(deployment.status.waits_for_capacity());
        if deployment.needs_attention() {
            self.attention.insert(i);
        }
        if let (true, Some(node)) = (deployment.holds_resources(), &deployment.node_id) {
            self.placed.entry(node.clone()).or_default().insert(i);
        }
        if let Some(node) = &deployment.previous_node_id {
            self.moved_from.entry(node.clone()).or_default().insert(i);
        }
    }

    /// Takes deployment `i` out of the indexes [`Self::index_deployment`] put it in
    /// (by id excepted: its position stays its own).
    fn unindex_deployment(&mut self, i: usize) {
        let deployment = self.deployments[i].clone();
        self.waiting -= usize::from(deployment.status.waits_for_capacity());
        self.attention.remove(&i);
        if let Some(node) = deployment.node_id.as_deref() {
            remove_position(&mut self.placed, node, i);
        }
        if let Some(node) = deployment.previous_node_id.as_deref() {
            remove_position(&mut self.moved_from, node, i);
        }
    }
}

/// The order of deployments: by creation time, then id.
fn order(a: &Deployment, b: &Deployment) -> std::cmp::Ordering {
    (a.created_at.total_cmp(&b.created_at)).then_with(|| a.deployment_id.cmp(&b.deployment_id))
}

/// Takes position `i` out of `node`'s set, and the set once empty.
fn remove_position(by_node: &mut HashMap<String, OrdSet<usize>>, node: &str, i: usize) {
    if let Some(positions) = by_node.get_mut(node) {
        positions.remove(&i);
        if positions.is_empty() {
            by_node.remove(node);
        }
    }
}

/// What a placed deployment reserves.
pub(crate) fn reservation(deployment: &Deployment) -> Reservation {
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

    fn rebuilt(snapshot: &Snapshot) -> Snapshot {
        Snapshot::new(
            snapshot.nodes().cloned().collect(),
            snapshot.deployments().cloned().collect(),
        )
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
        snapshot.retain_nodes(|n| n.id != "1");
        assert_eq!(names(snapshot.nodes_by_name()), ["a", "d"]);
        assert_eq!(snapshot, rebuilt(&snapshot));
    }

    #[test]
    fn a_copy_is_left_as_it_was_when_the_original_changes() {
        let original = Snapshot::new(
            vec![node("n1", "one")],
            vec![deployment("a", Some("n1"), DeploymentStatus::Running, 1.0)],
        );
        let mut copy = original.clone();
        copy.apply(&[deployment("a", None, DeploymentStatus::Pending, 1.0)]);
        copy.update_node(
            "n1",
            &NodeUpdate {
                schedulable: Some(false),
                ..NodeUpdate::default()
            },
        );
        assert_eq!(ids(&original.reservations_on("n1")), ["a"]);
        assert!(!original.has_waiting());
        assert!(original.node("n1").is_some_and(|n| n.schedulable));
        assert!(copy.has_waiting());
        assert!(copy.node("n1").is_some_and(|n| !n.schedulable));
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
        let changes = snapshot.apply(&[
            deployment("c", Some("n1"), Scheduled, 3.0),
            deployment("d", Some("n1"), Lost, 4.0),
            deployment("a", None, Pending, 1.0),
        ]);
        assert_eq!(
            changes[0].before.as_ref().map(|r| r.node_id.as_str()),
            Some("n2")
        );
        assert!(changes[2].after.is_none(), "a holds nothing now");
        assert_eq!(ids(&snapshot.reservations_on("n1")), ["c", "d"]);
        assert!(snapshot.reservations_on("n2").is_empty());
        assert!(snapshot.has_waiting(), "a is pending and d lost");
        snapshot.apply(&[deployment("a", Some("n2"), Scheduled, 1.0)]);
        assert!(snapshot.has_waiting(), "d is lost");
        snapshot.apply(&[deployment("d", Some("n1"), Running, 4.0)]);
        assert!(!snapshot.has_waiting());
        // created before the others: the order and every index follow
        snapshot.apply(&[deployment("early", Some("n1"), Running, 0.5)]);
        assert_eq!(ids(&snapshot.reservations_on("n1")), ["early", "c", "d"]);
        assert_eq!(ids(&snapshot.reservations()), ["early", "a", "c", "d"]);
        assert_eq!(snapshot.find("d").map(|d| d.created_at), Some(4.0));
        assert_eq!(
            snapshot,
            rebuilt(&snapshot),
            "every index as if built afresh"
        );
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
        assert_eq!(snapshot, rebuilt(&snapshot));
        snapshot.apply(&[Deployment {
            previous_node_id: None,
            ..moved
        }]);
        assert!(of_node(&snapshot, "n2").is_empty(), "removal confirmed");
        assert_eq!(snapshot, rebuilt(&snapshot));
        let page = snapshot.deployments_page(
            Some(&DeploymentKey {
                created_at: 1.0,
                deployment_id: "a".into(),
            }),
            2,
        );
        let page: Vec<&str> = page.iter().map(|d| d.deployment_id.as_str()).collect();
        assert_eq!(page, ["b", "c"]);
    }
}
