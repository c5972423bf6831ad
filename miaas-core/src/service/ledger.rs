//! The placement ledger (every node with what is reserved on it) kept from one
//! decision to the next, so that a decision does not rebuild it from every
//! deployment. It is reused only for the state it describes: the snapshot it was
//! made over, or that snapshot with exactly the decision's writes laid over it
//! (see [`Snapshot::placement_state`]).

use std::sync::Mutex;

use crate::placement::Cluster;
use crate::store::Snapshot;

/// One kept ledger, with the placement state of the snapshot it was made over.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    kept: Mutex<Option<(u64, Cluster)>>,
}

impl Ledger {
    /// The ledger kept for `snapshot`, if there is one.
    pub(super) fn take_for(&self, snapshot: &Snapshot) -> Option<Cluster> {
        let mut kept = self.kept.lock().ok()?;
        match kept.take() {
            Some((over, cluster))
                if over == snapshot.placement_state() || snapshot.applied_over() == Some(over) =>
            {
                Some(cluster)
            }
            _ => None,
        }
    }

    /// Keeps `cluster`, the ledger after decisions over `snapshot` (their writes
    /// included), for the snapshot those writes make.
    pub(super) fn keep(&self, snapshot: &Snapshot, cluster: Cluster) {
        if let Ok(mut kept) = self.kept.lock() {
            *kept = Some((snapshot.placement_state(), cluster));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Deployment;

    fn deployment(id: &str) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "deployment_id": id, "template_id": "t", "action": "apply",
            "status": "pending", "message": "", "node_id": null, "env": {},
            "rendered_compose": "", "revision": 1, "created_at": 1.0, "updated_at": 1.0
        }))
        .expect("deployment")
    }

    #[test]
    fn a_ledger_is_reused_only_for_the_state_its_decisions_lead_to() {
        let ledger = Ledger::default();
        let mut snapshot = Snapshot::default();
        ledger.keep(&snapshot, Cluster::default());
        assert!(ledger.take_for(&snapshot).is_some(), "nothing was written");
        assert!(ledger.take_for(&snapshot).is_none(), "taken once");

        ledger.keep(&snapshot, Cluster::default());
        snapshot.apply(&[deployment("a")]);
        assert!(ledger.take_for(&snapshot).is_some(), "its writes laid over");

        ledger.keep(&snapshot, Cluster::default());
        snapshot.apply(&[deployment("b")]);
        snapshot.apply(&[deployment("c")]);
        assert!(
            ledger.take_for(&snapshot).is_none(),
            "another decision's writes"
        );

        ledger.keep(&snapshot, Cluster::default());
        snapshot.remove_node("none");
        snapshot.heartbeats(&[], true);
        assert!(
            ledger.take_for(&snapshot).is_some(),
            "heartbeats and no-op removals leave placement as it was"
        );

        ledger.keep(&snapshot, Cluster::default());
        let fresh = Snapshot::new(vec![], snapshot.deployments().to_vec());
        assert!(ledger.take_for(&fresh).is_none(), "read afresh");
    }
}
