//! The lifecycle rules as pure decisions over a [`Snapshot`]: placing, releasing,
//! marking lost, re-placing. The store runs them inside one transaction.

use std::collections::HashMap;

use super::ServiceSettings;
use super::ledger::Ledger;
use crate::model::{Deployment, DeploymentStatus, PlacementSummary};
use crate::placement::{Cluster, Decision, PlacementEngine};
use crate::store::Snapshot;

/// Deployment decisions over one snapshot; collects what to write. The snapshot's
/// deployments are borrowed, and only the ones a decision changes are copied.
pub(super) struct Planner<'a> {
    engine: &'a PlacementEngine,
    settings: &'a ServiceSettings,
    now: f64,
    cluster: Cluster,
    snapshot: &'a Snapshot,
    changed: HashMap<String, Deployment>,
    /// Ids of deployments the snapshot did not have, in the order they were put.
    added: Vec<String>,
    /// Where the ledger goes once the decisions are made, for the next transaction.
    ledger: &'a Ledger,
    /// Whether deployments of offline nodes are marked `lost`.
    marks_lost: bool,
    /// Requirements (as JSON) that fit no node, with why, until the ledger next
    /// changes: a thousand pending deployments alike cost one decision, not a
    /// thousand.
    unplaceable: HashMap<String, PlacementSummary>,
}

impl<'a> Planner<'a> {
    pub(super) fn new(
        engine: &'a PlacementEngine,
        settings: &'a ServiceSettings,
        now: f64,
        cluster: Cluster,
        snapshot: &'a Snapshot,
        ledger: &'a Ledger,
    ) -> Self {
        Self {
            engine,
            settings,
            now,
            cluster,
            snapshot,
            changed: HashMap::new(),
            added: Vec::new(),
            ledger,
            marks_lost: true,
            unplaceable: HashMap::new(),
        }
    }

    /// Whether [`Self::reconcile`] marks deployments of offline nodes `lost` (not
    /// while the server has just started and nodes had no time to heartbeat).
    pub(super) fn marking_lost(mut self, marks_lost: bool) -> Self {
        self.marks_lost = marks_lost;
        self
    }

    pub(super) fn now(&self) -> f64 {
        self.now
    }

    pub(super) fn get(&self, id: &str) -> Option<&Deployment> {
        self.changed.get(id).or_else(|| self.snapshot.find(id))
    }

    /// Ids of every deployment, oldest first.
    pub(super) fn ids(&self) -> Vec<String> {
        self.snapshot
            .deployments()
            .iter()
            .map(|d| d.deployment_id.clone())
            .chain(self.added.iter().cloned())
            .collect()
    }

    /// Records `deployment` as changed.
    pub(super) fn put(&mut self, deployment: Deployment) {
        let id = deployment.deployment_id.clone();
        if self.snapshot.position(&id).is_none() && !self.changed.contains_key(&id) {
            self.added.push(id.clone());
        }
        self.changed.insert(id, deployment);
    }

    /// The changed deployments, oldest first. Call it last, as the decisions'
    /// result: it also keeps the ledger for the next transaction.
    pub(super) fn into_writes(self) -> Vec<Deployment> {
        let Self {
            cluster,
            snapshot,
            mut changed,
            added,
            ledger,
            ..
        } = self;
        let stored = snapshot.deployments().len();
        let mut writes: Vec<(usize, Deployment)> = changed
            .drain()
            .map(|(id, d)| {
                let rank = snapshot.position(&id).unwrap_or_else(|| {
                    stored + added.iter().position(|a| *a == id).unwrap_or(added.len())
                });
                (rank, d)
            })
            .collect();
        writes.sort_by_key(|(rank, _)| *rank);
        ledger.keep(snapshot, cluster);
        writes.into_iter().map(|(_, d)| d).collect()
    }

    /// Frees what `deployment` holds on its node.
    pub(super) fn release(&mut self, deployment: &Deployment) {
        if let (true, Some(node)) = (deployment.holds_resources(), &deployment.node_id) {
            self.cluster.release(node, deployment);
            self.unplaceable.clear();
        }
    }

    /// Places a deployment that holds nothing: `scheduled` on the best node, or
    /// `pending` with the explanation. Returns whether it was placed.
    pub(super) fn place(&mut self, deployment: &mut Deployment) -> bool {
        deployment.updated_at = self.now;
        let key = serde_json::to_string(&deployment.requirements).ok();
        let known = key.as_ref().and_then(|k| self.unplaceable.get(k)).cloned();
        let decision = match known {
            Some(summary) => Decision::Unplaceable(summary),
            None => self
                .engine
                .decide(self.cluster.candidates(), &deployment.requirements),
        };
        match decision {
            Decision::Placed {
                node_id, gpu_ids, ..
            } => {
                deployment.status = DeploymentStatus::Scheduled;
                deployment.message = placed_message(&deployment.template_id, &node_id);
                deployment.gpu_ids = gpu_ids;
                deployment.placement = None;
                if deployment.previous_node_id.as_deref() == Some(node_id.as_str()) {
                    // back where the old copy runs: nothing there is to be removed
                    deployment.previous_node_id = None;
                }
                deployment.node_id = Some(node_id.clone());
                self.cluster.reserve(&node_id, deployment);
                self.unplaceable.clear();
                true
            }
            Decision::Unplaceable(summary) => {
                if let Some(key) = key {
                    self.unplaceable.insert(key, summary.clone());
                }
                deployment.status = DeploymentStatus::Pending;
                deployment.message = format!(
                    "Deployment '{}' is pending: {}",
                    deployment.template_id, summary.message
                );
                deployment.node_id = None;
                deployment.gpu_ids.clear();
                deployment.placement = Some(summary);
                false
            }
        }
    }

    /// Moves a deployment off its node: releases it there, remembers that node as
    /// the one to remove the old copy (when `remember` and the node still exists),
    /// and places it again.
    pub(super) fn move_off(&mut self, deployment: &mut Deployment, remember: bool) -> bool {
        self.release(deployment);
        let old = deployment.node_id.take();
        if let Some(old) = old.filter(|id| remember && self.cluster.get(id).is_some()) {
            deployment.previous_node_id = Some(old);
        }
        self.place(deployment)
    }

    /// Whether [`Self::reconcile`] may change `current` (most deployments it leaves
    /// alone, and those it need not copy).
    fn may_change(&self, current: &Deployment, grace: f64) -> bool {
        let online = current.node_id.as_deref().and_then(|n| self.node_online(n));
        match current.status {
            DeploymentStatus::Scheduled | DeploymentStatus::Running | DeploymentStatus::Failed => {
                self.marks_lost && online != Some(true)
            }
            DeploymentStatus::Lost => {
                online == Some(true)
                    || (self.settings.reschedule_lost && self.now - current.updated_at >= grace)
            }
            DeploymentStatus::Pending => true,
            DeploymentStatus::Deleting => current.node_id.is_none(),
            DeploymentStatus::Deleted => false,
        }
    }

    fn node_online(&self, node_id: &str) -> Option<bool> {
        self.cluster.get(node_id).map(|c| c.online)
    }

    /// Marks deployments of offline nodes `lost`, brings them back when their node
    /// returns, re-places them elsewhere after the grace, and places pending ones.
    pub(super) fn reconcile(&mut self) {
        let grace = self.settings.reschedule_grace.as_secs_f64();
        for id in self.ids() {
            let Some(current) = self.get(&id) else {
                continue;
            };
            if !self.may_change(current, grace) {
                continue;
            }
            let current = current.clone();
            let mut next = current.clone();
            let online = current.node_id.as_deref().and_then(|n| self.node_online(n));
            match current.status {
                DeploymentStatus::Scheduled
                | DeploymentStatus::Running
                | DeploymentStatus::Failed
                    if self.marks_lost && online != Some(true) =>
                {
                    next.status = DeploymentStatus::Lost;
                    next.message = format!(
                        "Deployment '{}' is lost: node {} went offline",
                        current.template_id,
                        current.node_id.as_deref().unwrap_or("?")
                    );
                    next.updated_at = self.now;
                    self.put(next);
                }
                DeploymentStatus::Lost if online == Some(true) => {
                    next.status = DeploymentStatus::Scheduled;
                    let node = current.node_id.as_deref().unwrap_or_default();
                    next.message = placed_message(&current.template_id, node);
                    next.updated_at = self.now;
                    self.put(next);
                }
                DeploymentStatus::Lost
                    if self.settings.reschedule_lost && self.now - current.updated_at >= grace =>
                {
                    self.move_off(&mut next, true);
                    self.put(next);
                }
                DeploymentStatus::Pending => {
                    let placed = self.place(&mut next);
                    if placed || next.placement != current.placement {
                        self.put(next);
                    }
                }
                DeploymentStatus::Deleting if current.node_id.is_none() => {
                    next.status = DeploymentStatus::Deleted;
                    next.message = deleted_message(&current.template_id);
                    next.updated_at = self.now;
                    self.put(next);
                }
                _ => {}
            }
        }
    }
}

/// `Deployment '<template_id>' on node <node_id>`, as the original server says it.
pub(super) fn placed_message(template_id: &str, node_id: &str) -> String {
    format!("Deployment '{template_id}' on node {node_id}")
}

pub(super) fn deleted_message(template_id: &str) -> String {
    format!("Deployment '{template_id}' deleted")
}
