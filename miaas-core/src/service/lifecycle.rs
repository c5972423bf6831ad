//! The lifecycle rules as pure decisions over a [`Snapshot`]: placing, releasing,
//! marking lost, re-placing. The store runs them inside one transaction. Which
//! deployments wait for capacity and which a reconcile looks at are rules on the
//! model ([`DeploymentStatus::waits_for_capacity`], [`Deployment::needs_attention`]),
//! which the snapshot indexes by without knowing the service.

use std::collections::HashMap;

/// Most deployments one reconcile writes in one transaction: the rest waits for
/// the next one, so that a large backlog never holds the writer for long.
pub(super) const RECONCILE_BUDGET: usize = 256;

/// How long a pending deployment's explanation may stay as it is when the only
/// change is nodes that joined and do not fit either: a thousand pending
/// deployments are not all rewritten on every registration.
const EXPLANATION_REFRESH: f64 = 30.0;

use super::ServiceSettings;
use crate::fleet::Snapshot;
use crate::model::{Deployment, DeploymentStatus, PlacementSummary};
use crate::placement::{Decision, Ledger, PlacementEngine};

/// Deployment decisions over one snapshot; collects what to write. The snapshot's
/// deployments are borrowed, and only the ones a decision changes are copied.
pub(super) struct Planner<'a> {
    engine: &'a PlacementEngine,
    settings: &'a ServiceSettings,
    now: f64,
    /// The placement ledger, a copy this planner books on.
    ledger: Ledger,
    snapshot: &'a Snapshot,
    changed: HashMap<String, Deployment>,
    /// Ids of deployments the snapshot did not have, in the order they were put.
    added: Vec<String>,
    /// Whether deployments of offline nodes are marked `lost`.
    marks_lost: bool,
    /// Requirements (as JSON) that fit no node, with why, until the ledger next
    /// changes: a thousand pending deployments alike cost one decision, not a
    /// thousand.
    unplaceable: HashMap<String, PlacementSummary>,
}

impl<'a> Planner<'a> {
    /// Decisions over `snapshot` with the placement ledger `ledger` (of the same
    /// state).
    pub(super) fn new(
        engine: &'a PlacementEngine,
        settings: &'a ServiceSettings,
        now: f64,
        ledger: Ledger,
        snapshot: &'a Snapshot,
    ) -> Self {
        Self {
            engine,
            settings,
            now,
            ledger,
            snapshot,
            changed: HashMap::new(),
            added: Vec::new(),
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
            .map(|d| d.deployment_id.clone())
            .chain(self.added.iter().cloned())
            .collect()
    }

    /// Records `deployment` as changed. Its health goes with the status its
    /// node reported it in: any other status clears it.
    pub(super) fn put(&mut self, mut deployment: Deployment) {
        if !deployment.status.has_health() {
            deployment.health = None;
            deployment.restarts = 0;
        }
        let id = deployment.deployment_id.clone();
        if self.snapshot.position(&id).is_none() && !self.changed.contains_key(&id) {
            self.added.push(id.clone());
        }
        self.changed.insert(id, deployment);
    }

    /// The changed deployments, oldest first: the decisions' result.
    pub(super) fn into_writes(self) -> Vec<Deployment> {
        let Self {
            snapshot,
            mut changed,
            added,
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
        writes.into_iter().map(|(_, d)| d).collect()
    }

    /// Frees what `deployment` holds on its node.
    pub(super) fn release(&mut self, deployment: &Deployment) {
        if let (true, Some(node)) = (deployment.holds_resources(), &deployment.node_id) {
            self.ledger.release(node, deployment);
            self.unplaceable.clear();
        }
    }

    /// Places a deployment that holds nothing: `scheduled` on the best node, or
    /// `pending` with the explanation. Returns whether it was placed.
    pub(super) fn place(&mut self, deployment: &mut Deployment) -> bool {
        deployment.updated_at = self.now;
        let key = serde_json::to_string(&deployment.requirements).ok();
        let known = key.as_ref().and_then(|k| self.unplaceable.get(k)).cloned();
        let started = std::time::Instant::now();
        let decision = match known {
            Some(summary) => Decision::Unplaceable(summary),
            None => self
                .engine
                .decide(self.ledger.candidates(), &deployment.requirements),
        };
        crate::telemetry::scheduled(&decision, started.elapsed());
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
                self.ledger.reserve(&node_id, deployment);
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
        if let Some(old) = old.filter(|id| remember && self.ledger.get(id).is_some()) {
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

    /// Ids of the deployments a reconcile may change, oldest first: those that
    /// [need attention](Deployment::needs_attention), those on nodes not online (or gone), and
    /// those this planner added; never a scan of every deployment.
    fn reconcile_candidates(&self) -> Vec<String> {
        let snapshot = self.snapshot;
        let mut positions: Vec<usize> = snapshot.needing_attention().collect();
        for (node, placed) in snapshot.placed_by_node() {
            if self.node_online(node) != Some(true) {
                positions.extend(placed);
            }
        }
        positions.sort_unstable();
        positions.dedup();
        let mut ids: Vec<String> = positions
            .into_iter()
            .filter_map(|i| snapshot.deployment_at(i))
            .map(|d| d.deployment_id.clone())
            .collect();
        // decisions of this planner may have changed others: look at them too
        let mut changed: Vec<&Deployment> = self.changed.values().collect();
        changed.sort_by(|a, b| {
            (a.created_at, &a.deployment_id)
                .partial_cmp(&(b.created_at, &b.deployment_id))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        for deployment in changed {
            if !ids.contains(&deployment.deployment_id) {
                ids.push(deployment.deployment_id.clone());
            }
        }
        ids
    }

    /// Whether `current` is pending with requirements already known to fit no node,
    /// and an explanation that need not be rewritten: it is left as it is.
    fn stays_pending(&self, current: &Deployment) -> bool {
        if current.status != DeploymentStatus::Pending || self.unplaceable.is_empty() {
            return false;
        }
        let Ok(key) = serde_json::to_string(&current.requirements) else {
            return false;
        };
        self.unplaceable.get(&key).is_some_and(|summary| {
            !explanation_moved(
                current.placement.as_ref(),
                Some(summary),
                current.updated_at,
                self.now,
            )
        })
    }

    fn node_online(&self, node_id: &str) -> Option<bool> {
        self.ledger.get(node_id).map(|c| c.online)
    }

    /// Marks deployments of offline nodes `lost`, brings them back when their node
    /// returns, re-places them elsewhere after the grace, and places pending ones;
    /// at most [`RECONCILE_BUDGET`] of them. Returns whether more is left to do.
    pub(super) fn reconcile(&mut self) -> bool {
        let grace = self.settings.reschedule_grace.as_secs_f64();
        let budget = self.changed.len() + RECONCILE_BUDGET;
        let ids = self.reconcile_candidates();
        for id in &ids {
            if self.changed.len() >= budget {
                return true;
            }
            let Some(current) = self.get(id) else {
                continue;
            };
            if !self.may_change(current, grace) || self.stays_pending(current) {
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
                    let moved = explanation_moved(
                        current.placement.as_ref(),
                        next.placement.as_ref(),
                        current.updated_at,
                        self.now,
                    );
                    if placed || moved {
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
        false
    }
}

/// Whether a deployment still pending should be rewritten with its new
/// explanation: always, unless the only change is that nodes joined and none of
/// them fits (every count grew or stayed); then once the stored one is older than
/// [`EXPLANATION_REFRESH`], so that a fleet growing by a thousand nodes does not
/// rewrite every pending deployment a thousand times.
fn explanation_moved(
    current: Option<&PlacementSummary>,
    next: Option<&PlacementSummary>,
    written_at: f64,
    now: f64,
) -> bool {
    let only_joined = match (current, next) {
        (Some(was), Some(is)) => {
            is.nodes_evaluated > was.nodes_evaluated
                && was.reasons.keys().eq(is.reasons.keys())
                && (was.reasons.iter())
                    .all(|(reason, count)| is.reasons.get(reason).is_some_and(|n| n >= count))
        }
        _ => false,
    };
    if current == next {
        false
    } else if only_joined {
        now - written_at >= EXPLANATION_REFRESH
    } else {
        true
    }
}

/// `Deployment '<template_id>' on node <node_id>`, as the original server says it.
pub(super) fn placed_message(template_id: &str, node_id: &str) -> String {
    format!("Deployment '{template_id}' on node {node_id}")
}

pub(super) fn deleted_message(template_id: &str) -> String {
    format!("Deployment '{template_id}' deleted")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(evaluated: usize, reasons: &[(&str, usize)]) -> PlacementSummary {
        PlacementSummary {
            message: format!("{reasons:?}"),
            nodes_evaluated: evaluated,
            reasons: reasons.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
        }
    }

    #[test]
    fn only_nodes_that_joined_and_do_not_fit_wait_for_the_refresh() {
        let was = summary(3, &[("cordoned", 2), ("cpu", 1)]);
        let moved = |next: PlacementSummary, age: f64| {
            explanation_moved(Some(&was), Some(&next), 100.0, 100.0 + age)
        };
        assert!(!moved(was.clone(), 60.0), "nothing changed");
        let joined = summary(4, &[("cordoned", 2), ("cpu", 2)]);
        assert!(
            !moved(joined.clone(), 1.0),
            "a node joined that does not fit"
        );
        assert!(moved(joined, EXPLANATION_REFRESH), "but not for ever");
        assert!(
            moved(summary(2, &[("cordoned", 1), ("cpu", 1)]), 1.0),
            "a node left"
        );
        assert!(moved(summary(3, &[("cordoned", 3)]), 1.0), "another reason");
        assert!(
            moved(summary(3, &[("cordoned", 1), ("cpu", 2)]), 1.0),
            "counts moved"
        );
        assert!(explanation_moved(None, Some(&was), 0.0, 0.0));
    }
}
